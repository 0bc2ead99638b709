//! Multi-platform images (issue 20, item 2). Registry A holds `fx/multi:1`, a Docker manifest
//! list of three platform images (linux/amd64, linux/arm64, linux/arm/v7, each its own config
//! and layer),
//! uploaded here with curl as a registry client would. Exported by tag, the bundle carries both
//! platform images and the list byte for byte; pushed into registry B, the tag serves the very
//! list (same digest, read back raw) and each platform manifest is there by digest. With
//! `--platform linux/amd64` the list is not carried, and the run says so naming its digest; with
//! two platforms it is re-made (a new digest, said so) and B gets that one; against B's
//! inventory nothing is carried, platform by platform, and the list still travels; pinned by
//! digest with every platform it travels untagged and is pushed by digest; the
//! list pinned by digest and narrowed so is refused (exit 2). Loaded into a Docker daemon (the
//! rig's is linux/amd64), the bundle gives the amd64 image, tagged with the list's tag, and
//! leaves the arm64 one out. A cosign-style signature of the list's digest travels with it.

use crate::identity::{attach_signature, cosign_keys, curl, manifest_digest, push, put_blob};
use partial_tests::cli::{load, Export};
use partial_tests::{require_daemon, require_registry, DaemonOptions, RegistryOptions};
use std::path::Path;

const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// One platform image of `arch` uploaded into `repo` by digest: (manifest digest, its bytes,
/// config digest = image ID).
fn platform_image(addr: &str, repo: &str, platform: &str) -> (String, Vec<u8>, String) {
    let mut parts = platform.split('/').skip(1);
    let (arch, variant) = (parts.next().unwrap(), parts.next());
    let mut tar = tar::Builder::new(Vec::new());
    let body = format!("built for {platform}\n");
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    tar.append_data(&mut h, "platform.txt", body.as_bytes())
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = partial_tests::sha256_digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let layer = put_blob(addr, repo, &gz);
    let mut config = serde_json::json!({
        "architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/true"]},
        "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "fixture"}]
    });
    if let Some(v) = variant {
        config["variant"] = v.into();
    }
    let config = config.to_string();
    let config_digest = put_blob(addr, repo, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{config_digest}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{layer}"}}]}}"#,
        config.len(),
        gz.len()
    );
    let digest = partial_tests::sha256_digest(manifest.as_bytes());
    put_manifest(addr, repo, &digest, MANIFEST, manifest.as_bytes());
    (digest, manifest.into_bytes(), config_digest)
}

fn put_manifest(addr: &str, repo: &str, reference: &str, media: &str, bytes: &[u8]) {
    let url = format!("http://{addr}/v2/{repo}/manifests/{reference}");
    let put = curl(
        &["-X", "PUT", "-H", &format!("Content-Type: {media}"), &url],
        bytes,
    );
    assert!(put.starts_with("HTTP/1.1 201"), "{put}");
}

/// The manifest list `repo:tag` of the platform images (platform, digest, size); returns its
/// digest.
fn manifest_list(addr: &str, repo: &str, tag: &str, images: &[(&str, &str, usize)]) -> String {
    let entries: Vec<String> = images
        .iter()
        .map(|(platform, digest, size)| {
            let mut parts = platform.split('/').skip(1);
            let arch = parts.next().unwrap();
            let variant = parts
                .next()
                .map(|v| format!(r#","variant":"{v}""#))
                .unwrap_or_default();
            format!(
                r#"{{"mediaType":"{MANIFEST}","size":{size},"digest":"{digest}","platform":{{"architecture":"{arch}","os":"linux"{variant}}}}}"#
            )
        })
        .collect();
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{LIST}","manifests":[{}]}}"#,
        entries.join(",")
    );
    put_manifest(addr, repo, tag, LIST, list.as_bytes());
    partial_tests::sha256_digest(list.as_bytes())
}

/// The manifest `repo:reference` of the registry at `addr`, raw, any kind accepted.
fn get_manifest(addr: &str, repo: &str, reference: &str) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-f", "-H"])
        .arg(format!("Accept: {LIST}, {MANIFEST}"))
        .arg(format!("http://{addr}/v2/{repo}/manifests/{reference}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {repo}:{reference}");
    out.stdout
}

fn signed(bundle: &Path) -> serde_json::Value {
    let text = std::fs::read(format!("{}.manifest.json", bundle.display())).unwrap();
    serde_json::from_slice(&text).unwrap()
}

#[test]
fn a_multi_platform_image_travels_with_its_index_digest() {
    if !partial_tests::require_tool("skopeo") {
        return;
    }
    let Some(daemon) = require_daemon(DaemonOptions::labelled("platforms")) else {
        return;
    };
    let (Some(a), Some(b)) = (
        require_registry(RegistryOptions::default()),
        require_registry(RegistryOptions::default()),
    ) else {
        return;
    };
    let (amd, amd_bytes, amd_id) = platform_image(&a.addr, "fx/multi", "linux/amd64");
    let (arm, arm_bytes, arm_id) = platform_image(&a.addr, "fx/multi", "linux/arm64");
    let (v7, v7_bytes, v7_id) = platform_image(&a.addr, "fx/multi", "linux/arm/v7");
    let list = manifest_list(
        &a.addr,
        "fx/multi",
        "1",
        &[
            ("linux/amd64", &amd, amd_bytes.len()),
            ("linux/arm64", &arm, arm_bytes.len()),
            ("linux/arm/v7", &v7, v7_bytes.len()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let reference = format!("docker://{}/fx/multi:1", a.addr);
    let (cosign_key, cosign_pub) = cosign_keys(d, "cosign");
    let (sig_tag, sig_bytes) = attach_signature(&a.addr, "fx/multi", &list, &cosign_key, d);

    // By tag: both platforms and the list, byte for byte.
    let bundle = Export::new(daemon.host(), d, "multi.tgz")
        .images(&[&reference])
        .base(&[])
        .bundle();
    let team = s(&d.join("team.pub"));

    let c = Multi {
        daemon: &daemon,
        a: &a,
        b: &b,
        d,
        reference: &reference,
        list: &list,
        bundle: &bundle,
        team: &team,
        amd: &amd,
        arm: &arm,
        v7: &v7,
        amd_bytes: &amd_bytes,
        arm_bytes: &arm_bytes,
        v7_bytes: &v7_bytes,
        amd_id: &amd_id,
        arm_id: &arm_id,
        v7_id: &v7_id,
        sig_tag: &sig_tag,
        sig_bytes: &sig_bytes,
    };
    the_bundle_holds_the_list_and_its_signature(&c, &cosign_pub);
    the_list_is_pushed_with_its_digest(&c);
    one_platform_leaves_the_list_behind(&c);
    a_pinned_list_is_pushed_by_digest(&c);
    two_platforms_remake_the_list(&c);
    an_inventory_is_decided_per_platform(&c);
    a_pinned_list_cannot_be_narrowed(&c);
    a_daemon_loads_its_own_platform(&c);
}

/// What the parts of `a_multi_platform_image_travels_with_its_index_digest` share: a daemon, registries A
/// (the source) and B, the list and its platform images, the bundle of it by tag.
struct Multi<'a> {
    daemon: &'a partial_tests::Daemon,
    a: &'a partial_tests::RegistryServer,
    b: &'a partial_tests::RegistryServer,
    d: &'a Path,
    reference: &'a str,
    list: &'a str,
    bundle: &'a Path,
    team: &'a str,
    amd: &'a str,
    arm: &'a str,
    v7: &'a str,
    amd_bytes: &'a [u8],
    arm_bytes: &'a [u8],
    v7_bytes: &'a [u8],
    amd_id: &'a str,
    arm_id: &'a str,
    v7_id: &'a str,
    sig_tag: &'a str,
    sig_bytes: &'a [u8],
}

/// By tag: every platform image and the list in the bundle; the list's signature covers its
/// platform images, checked offline with `cosign_pub`.
fn the_bundle_holds_the_list_and_its_signature(c: &Multi, cosign_pub: &str) {
    let Multi {
        list,
        bundle,
        team,
        amd_id,
        arm_id,
        v7_id,
        sig_tag,
        ..
    } = *c;
    let m = signed(bundle);
    assert_eq!(m["indexes"][0]["digest"], list, "{m}");
    let ids: Vec<&str> = m["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for id in [amd_id, arm_id, v7_id] {
        assert!(ids.contains(&id), "{id}: {ids:?}");
    }
    assert_eq!(m["images"][0]["tags"], serde_json::json!([]), "{m}");
    assert_eq!(m["indexes"][0]["attached"][0]["tag"], sig_tag);
    // The list's signature covers its platform images, checked offline.
    let verified = load(&[
        "verify",
        &s(bundle),
        "--key",
        team,
        "--offline",
        "--image-key",
        cosign_pub,
    ])
    .ok();
    assert!(
        verified.stderr.contains("linux/arm64: signature by"),
        "{}",
        verified.stderr
    );
}

/// Into B: the list under its tag with the source's digest, each platform by digest, and the
/// list's signature byte for byte.
fn the_list_is_pushed_with_its_digest(c: &Multi) {
    let Multi {
        b,
        d,
        list,
        bundle,
        amd,
        arm,
        v7,
        amd_bytes,
        arm_bytes,
        v7_bytes,
        sig_tag,
        sig_bytes,
        ..
    } = *c;
    // Into B: the list under its tag with the source's digest, each platform by digest.
    let run = push(bundle, d, &b.addr, "b.state", &["--json"]).ok();
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["indexes"][0]["digest"], list, "{}", run.stdout);
    let back = get_manifest(&b.addr, "fx/multi", "1");
    assert_eq!(partial_tests::sha256_digest(&back), list);
    assert_eq!(manifest_digest(&format!("{}/fx/multi:1", b.addr)), list);
    assert_eq!(get_manifest(&b.addr, "fx/multi", amd), amd_bytes);
    assert_eq!(get_manifest(&b.addr, "fx/multi", arm), arm_bytes);
    assert_eq!(get_manifest(&b.addr, "fx/multi", v7), v7_bytes);
    assert_eq!(out["indexes"][0]["attached"][0], sig_tag);
    let sig = std::process::Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("http://{}/v2/fx/multi/manifests/{sig_tag}", b.addr))
        .output()
        .unwrap();
    assert_eq!(
        sig.stdout, sig_bytes,
        "the list's signature arrives byte for byte"
    );
}

/// `--platform` narrows to one: the list is not carried, said on stderr and in the manifest.
fn one_platform_leaves_the_list_behind(c: &Multi) {
    let Multi {
        daemon,
        d,
        reference,
        list,
        amd_id,
        ..
    } = *c;
    // --platform narrows: the list is not carried, said on stderr and in the manifest.
    let narrowed = Export::new(daemon.host(), d, "amd.tgz")
        .images(&[reference])
        .base(&[])
        .args(&["--platform", "linux/amd64"])
        .run()
        .ok();
    assert!(
        narrowed.stderr.contains(list) && narrowed.stderr.contains("not carried"),
        "{}",
        narrowed.stderr
    );
    let m = signed(&d.join("amd.tgz"));
    assert!(m.get("indexes").is_none(), "{m}");
    assert_eq!(m["images"].as_array().unwrap().len(), 1);
    assert_eq!(m["images"][0]["id"], amd_id);
    assert!(m["warnings"].to_string().contains(list), "{m}");
}

/// Pinned by digest, every platform: the list travels untagged and is pushed by digest.
fn a_pinned_list_is_pushed_by_digest(c: &Multi) {
    let Multi {
        daemon,
        a,
        b,
        d,
        list,
        ..
    } = *c;
    // Pinned by digest, every platform: the list travels untagged and is pushed by digest.
    let pinned = format!("docker://{}/fx/multi@{list}", a.addr);
    let by_digest = Export::new(daemon.host(), d, "pinned-all.tgz")
        .images(&[&pinned])
        .base(&[])
        .bundle();
    let to = format!("{}/pinned", b.addr);
    let run = push(&by_digest, d, &to, "pinned.state", &["--json"]).ok();
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let expected = format!("{to}/fx/multi@{list}");
    assert_eq!(out["indexes"][0]["references"][0], expected.as_str());
    let back = get_manifest(&b.addr, "pinned/fx/multi", list);
    assert_eq!(partial_tests::sha256_digest(&back), list);
}

/// Narrowed to two platforms: the list is re-made with their entries only.
fn two_platforms_remake_the_list(c: &Multi) {
    let Multi {
        daemon,
        b,
        d,
        reference,
        list,
        v7,
        ..
    } = *c;
    // Narrowed to two platforms: the list is re-made with their entries only, its digest
    // changes (said so), and that is the list B gets under the tag.
    let two = Export::new(daemon.host(), d, "two.tgz")
        .images(&[reference])
        .base(&[])
        .args(&["--platform", "linux/amd64", "--platform", "linux/arm64"])
        .run()
        .ok();
    assert!(
        two.stderr.contains(list) && two.stderr.contains("re-made"),
        "{}",
        two.stderr
    );
    let m = signed(&d.join("two.tgz"));
    assert_eq!(m["indexes"][0]["remade_from"], list, "{m}");
    let remade = m["indexes"][0]["digest"].as_str().unwrap().to_string();
    assert_ne!(remade, list);
    assert_eq!(m["images"].as_array().unwrap().len(), 2);
    let to = format!("{}/two", b.addr);
    push(&d.join("two.tgz"), d, &to, "two.state", &[]).ok();
    let back = get_manifest(&b.addr, "two/fx/multi", "1");
    assert_eq!(partial_tests::sha256_digest(&back), remade);
    assert!(!String::from_utf8_lossy(&back).contains(v7));
}

/// Against B's inventory, left-out layers are decided per platform image.
fn an_inventory_is_decided_per_platform(c: &Multi) {
    let Multi {
        daemon,
        b,
        d,
        reference,
        list,
        ..
    } = *c;
    // Against B's inventory (every platform of its list), left-out layers are decided per
    // platform image: nothing is carried, and the list still travels.
    let have = d.join("have.json");
    let inventory = [
        "inventory",
        "--registry",
        &b.addr,
        "--repo",
        "fx/multi",
        "-o",
    ];
    load(&[&inventory[..], &[s(&have).as_str()]].concat()).ok();
    let again = Export::new(daemon.host(), d, "again.tgz")
        .images(&[reference])
        .base(&["--have", &s(&have)])
        .bundle();
    let m = signed(&again);
    assert_eq!(m["totals"]["layers_carried"], 0, "{m}");
    assert_eq!(m["totals"]["layers_left_out"], 3, "{m}");
    assert_eq!(m["indexes"][0]["digest"], list);
}

/// Pinned by digest and narrowed: refused, naming the list and the way out.
fn a_pinned_list_cannot_be_narrowed(c: &Multi) {
    let Multi {
        daemon, a, d, list, ..
    } = *c;
    let pinned = format!("docker://{}/fx/multi@{list}", a.addr);
    // Pinned by digest and narrowed: refused, naming the list and the way out.
    let refused = Export::new(daemon.host(), d, "pinned.tgz")
        .images(&[&pinned])
        .base(&[])
        .args(&["--platform", "linux/amd64"])
        .run()
        .expect_code(2);
    for needle in [list, "--allow-new-digest", "linux/arm64"] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
    assert!(!d.join("pinned.tgz").exists());
}

/// Into a Docker daemon (linux/amd64): the amd64 image, tagged with the list's tag.
fn a_daemon_loads_its_own_platform(c: &Multi) {
    let Multi {
        daemon,
        a,
        d,
        bundle,
        team,
        amd_id,
        arm_id,
        v7_id,
        ..
    } = *c;
    // Into a Docker daemon (linux/amd64): the amd64 image, tagged with the list's tag.
    let run = load(&[
        "load",
        &s(bundle),
        "--key",
        team,
        "-H",
        &daemon.host(),
        "--state",
        &s(&d.join("load.state")),
        "--json",
    ])
    .ok();
    let tag = format!("{}/fx/multi:1", a.addr);
    assert_eq!(daemon.image_id(&tag).unwrap(), amd_id, "{}", run.stderr);
    assert!(run.stderr.contains("linux/arm64"), "{}", run.stderr);
    assert!(
        !daemon.has_image(arm_id),
        "the arm64 image is left out of the load"
    );
    assert!(!daemon.has_image(v7_id), "arm/v7 is left out too");
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["images"].as_array().unwrap().len(), 1, "{}", run.stdout);
    assert!(
        out["left_out"].to_string().contains(arm_id),
        "{}",
        run.stdout
    );
}
