//! Images read from OCI layouts and oci-archives keep their identity, as registry images do.
//! skopeo writes `app:2` and `base:1` from a daemon into OCI layouts (`oci:DIR`, gzip layers) and
//! an oci-archive; `base:1`'s layout is copied into registry B with its blobs. `partial-save
//! --from-oci` against B's inventory leaves the base layers out and carries the layout's manifest
//! byte for byte: `partial-load push` into B gives `app:2` the manifest digest the layout's
//! `index.json` names, read back raw (`skopeo inspect --raw | sha256`). The same from an
//! oci-archive, and from a layout with uncompressed layers (pushed as they are, not gzipped, so
//! the digest holds), and from a umoci layout, into registry C; zstd layers (carried
//! decompressed) are said at the export to lose the digest, and the push refuses them (exit 4)
//! unless `--allow-new-digest`. A layout whose layer blob or manifest was altered is exit
//! 3 naming the blob. A two-platform index in a layout travels whole, as a registry's: pushed
//! into C it keeps the layout's index digest and every platform manifest's, and a daemon loads
//! its own platform, tagged; `--platform` narrowing says the index stays behind or its digest
//! changes (named by digest: exit 2 unless `--allow-new-digest`). The bundle still loads into a
//! Docker daemon holding the base, giving the layout's image ID.

use super::identity::manifest_digest;
use partial_tests::cli::{keygen, load, push_args, save, Run};
use partial_tests::scenario::build_standard_on;
use partial_tests::writers::{
    add_platform_variant, oci_config_digest, skopeo_copy, skopeo_copy_with, umoci_layout,
};
use partial_tests::{
    require_daemon, require_registry, rootfs_tar, Content, DaemonOptions, RegistryOptions,
};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The manifest digest `index.json` (the text given) lists under ref name `name`.
fn listed_digest(index: &[u8], name: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(index).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == name)
        .and_then(|d| d["digest"].as_str())
        .unwrap_or_else(|| panic!("no {name} in {v}"))
        .to_string()
}

/// The manifest digest an oci-archive's `index.json` lists under `name`.
fn archive_digest(archive: &Path, name: &str) -> String {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg("index.json")
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar -xOf {}", archive.display());
    listed_digest(&out.stdout, name)
}

/// `skopeo copy oci:LAYOUT:NAME docker://TO` over plain http, blobs as stored.
fn skopeo_push(layout: &Path, name: &str, to: &str) {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:{name}", layout.display()))
        .arg(format!("docker://{to}"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo copy to {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `partial-save FROM… -o DIR/NAME --sign-key DIR/team.key EXTRA…`.
fn export(d: &Path, from: &[&str], name: &str, extra: &[&str]) -> Run {
    let out = s(&d.join(name));
    let key = s(&d.join("team.key"));
    let tail = ["-o", out.as_str(), "--sign-key", key.as_str()];
    save(&[from, &tail[..], extra].concat())
}

fn push(bundle: &Path, d: &Path, to: &str, state: &str) -> Run {
    load(&push_args(bundle, d, to, state, &["--json"]))
}

/// The signed manifest of `bundle`.
fn signed(bundle: &Path) -> serde_json::Value {
    let text = std::fs::read(format!("{}.manifest.json", bundle.display())).unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// Flips one byte in the middle of `file`.
fn flip_byte(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(file, bytes).unwrap();
}

/// Copies the layout `from` to `to` (files only: the layout has no deeper folders).
fn copy_layout(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// What the parts of the test share: the daemon, registries B and C, the work folder, the
/// layout of `app:2` with its manifest digest, and B's inventory.
struct Scene {
    daemon: partial_tests::Daemon,
    b: partial_tests::RegistryServer,
    c: partial_tests::RegistryServer,
    dir: tempfile::TempDir,
    app: std::path::PathBuf,
    layout_digest: String,
    have: std::path::PathBuf,
}

impl Scene {
    fn d(&self) -> &Path {
        self.dir.path()
    }
}

#[test]
fn an_oci_layout_image_keeps_its_manifest_digest() {
    let Some(scene) = setup() else {
        return;
    };
    let layers = kept_against_the_inventory(&scene);
    loads_into_docker_with_the_layouts_id(&scene);
    archive_and_uncompressed_layout_keep_it(&scene);
    umoci_layout_keeps_it(&scene);
    zstd_layers_lose_it_said_so(&scene);
    tampered_layouts_are_exit_3(&scene, &layers);
    two_platform_index_travels_whole(&scene);
}

/// The daemon's standard scene, `app:2` and `base:1` as skopeo layouts, `base:1` in B, and B's
/// inventory; `None` after a loud skip.
fn setup() -> Option<Scene> {
    if !partial_tests::require_tool("skopeo") {
        return None;
    }
    let daemon = require_daemon(DaemonOptions::labelled("layout-identity"))?;
    let b = require_registry(RegistryOptions::default())?;
    let c = require_registry(RegistryOptions::default())?;
    build_standard_on(&daemon);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let (app, base) = (d.join("app-oci"), d.join("base-oci"));
    skopeo_copy(&daemon, "app:2", &format!("oci:{}:app:2", app.display())).unwrap();
    skopeo_copy(&daemon, "base:1", &format!("oci:{}:base:1", base.display())).unwrap();
    let layout_digest = listed_digest(&std::fs::read(app.join("index.json")).unwrap(), "app:2");
    skopeo_push(&base, "base:1", &format!("{}/base:1", b.addr));
    let have = d.join("have.json");
    let inventory = ["inventory", "--registry", &b.addr, "--repo", "base", "-o"];
    load(&[&inventory[..], &[s(&have).as_str()]].concat()).ok();
    Some(Scene {
        daemon,
        b,
        c,
        dir,
        app,
        layout_digest,
        have,
    })
}

/// From the layout against B's inventory: the base layers are left out, the manifest kept, and
/// the push into B gives the layout's digest by tag and by digest. The signed layers.
fn kept_against_the_inventory(scene: &Scene) -> Vec<serde_json::Value> {
    let (d, b, layout_digest) = (scene.d(), &scene.b, &scene.layout_digest);
    let bundle = d.join("app2.tgz");
    let from = ["--from-oci", &s(&scene.app)];
    export(d, &from, "app2.tgz", &["--have", &s(&scene.have)]).ok();
    let m = signed(&bundle);
    let image = &m["images"][0];
    assert_eq!(image["source_manifest"]["digest"], layout_digest.as_str());
    let layers = image["layers"].as_array().unwrap().clone();
    assert!(
        layers.iter().any(|l| l["carried"] == false) && layers.iter().any(|l| l["carried"] == true),
        "some layers left out (B has them as the layout stores them), some carried: {image}"
    );
    let run = push(&bundle, d, &b.addr, "b.state").ok();
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["images"][0]["digest_as_source"], true, "{}", run.stdout);
    assert_eq!(
        &manifest_digest(&format!("{}/app:2", b.addr)),
        layout_digest
    );
    let pinned = format!("{}/app@{layout_digest}", b.addr);
    assert_eq!(&manifest_digest(&pinned), layout_digest);
    layers
}

/// The same bundle still loads into a Docker daemon holding the base: the layout's image ID
/// (skopeo converted the config, so it is the layout's config digest, not the daemon's).
fn loads_into_docker_with_the_layouts_id(scene: &Scene) {
    let (d, b) = (scene.d(), &scene.b);
    let bundle = d.join("app2.tgz");
    let airgap = require_daemon(DaemonOptions::labelled("layout-identity-airgap")).expect("daemon");
    airgap
        .docker(&["pull", &format!("{}/base:1", b.addr)])
        .unwrap();
    let team = s(&d.join("team.pub"));
    let state = s(&d.join("airgap.state"));
    load(&[
        "load",
        &s(&bundle),
        "--key",
        &team,
        "-H",
        &airgap.host(),
        "--state",
        &state,
    ])
    .ok();
    assert_eq!(
        airgap.image_id("app:2").unwrap(),
        oci_config_digest(&scene.app, "app:2").unwrap()
    );
    drop(airgap);
}

/// An oci-archive, and a layout with uncompressed layers, whole, into C.
fn archive_and_uncompressed_layout_keep_it(scene: &Scene) {
    let (d, c, daemon) = (scene.d(), &scene.c, &scene.daemon);
    let archive = d.join("app.oci.tar");
    skopeo_copy(
        daemon,
        "app:2",
        &format!("oci-archive:{}:app:2", archive.display()),
    )
    .unwrap();
    let archive_layout = archive_digest(&archive, "app:2");
    let plain = d.join("app-plain");
    let uncompressed = ["--dest-oci-accept-uncompressed-layers"];
    let dest = format!("oci:{}:app:3", plain.display());
    skopeo_copy_with(daemon, "app:2", &dest, &uncompressed).unwrap();
    let plain_layout = listed_digest(&std::fs::read(plain.join("index.json")).unwrap(), "app:3");
    for (from, name, tag, want) in [
        (
            ["--from-archive", &s(&archive)],
            "archive.tgz",
            "app:2",
            &archive_layout,
        ),
        (
            ["--from-oci", &s(&plain)],
            "plain.tgz",
            "app:3",
            &plain_layout,
        ),
    ] {
        export(d, &from, name, &[]).ok();
        let run = push(&d.join(name), d, &c.addr, &format!("{name}.state")).ok();
        let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(out["images"][0]["digest_as_source"], true, "{}", run.stdout);
        assert_eq!(
            &manifest_digest(&format!("{}/{tag}", c.addr)),
            want,
            "{name}"
        );
    }
}

/// A umoci layout (umoci's own gzip and config, bare tag `app2`), whole, into C.
fn umoci_layout_keeps_it(scene: &Scene) {
    let (d, c, daemon) = (scene.d(), &scene.c, &scene.daemon);
    if partial_tests::require_tool("umoci") {
        let save = d.join("app2.docker.tar");
        daemon.save_to(&["app:2"], &save).unwrap();
        let umoci = d.join("app-umoci");
        umoci_layout(&save, &umoci, &[("app:2", "app2")]).unwrap();
        let want = listed_digest(&std::fs::read(umoci.join("index.json")).unwrap(), "app2");
        export(d, &["--from-oci", &s(&umoci)], "umoci.tgz", &[]).ok();
        let run = push(&d.join("umoci.tgz"), d, &c.addr, "umoci.state").ok();
        let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(out["images"][0]["digest_as_source"], true, "{}", run.stdout);
        assert_eq!(manifest_digest(&format!("{}/app2:latest", c.addr)), want);
    }
}

/// zstd layers are carried decompressed: the export says the digest cannot be kept, and the
/// push refuses (exit 4) unless --allow-new-digest.
fn zstd_layers_lose_it_said_so(scene: &Scene) {
    let (d, c, daemon) = (scene.d(), &scene.c, &scene.daemon);
    let zstd = d.join("app-zstd");
    let dest = format!("oci:{}:app:4", zstd.display());
    skopeo_copy_with(daemon, "app:2", &dest, &["--dest-compress-format", "zstd"]).unwrap();
    let zstd_layout = listed_digest(&std::fs::read(zstd.join("index.json")).unwrap(), "app:4");
    let run = export(d, &["--from-oci", &s(&zstd)], "zstd.tgz", &[]).ok();
    assert!(
        run.stderr.contains("zstd") && run.stderr.contains(&zstd_layout),
        "{}",
        run.stderr
    );
    let refused = load(&push_args(&d.join("zstd.tgz"), d, &c.addr, "z.state", &[])).expect_code(4);
    assert!(refused.stderr.contains(&zstd_layout), "{}", refused.stderr);
    let allowed = ["--allow-new-digest"];
    load(&push_args(
        &d.join("zstd.tgz"),
        d,
        &c.addr,
        "z.state",
        &allowed,
    ))
    .ok();
}

/// Tampered: a layer blob (exit 3 naming it), then the manifest itself.
fn tampered_layouts_are_exit_3(scene: &Scene, layers: &[serde_json::Value]) {
    let (d, app, layout_digest) = (scene.d(), &scene.app, &scene.layout_digest);
    let have = &scene.have;
    let layer = layers
        .iter()
        .find(|l| l["carried"] == true)
        .and_then(|l| l["blob"]["digest"].as_str())
        .expect("a carried layer")
        .trim_start_matches("sha256:")
        .to_string();
    let bad = d.join("bad-oci");
    copy_layout(app, &bad);
    flip_byte(&bad.join("blobs/sha256").join(&layer));
    let from = ["--from-oci", &s(&bad)];
    let refused = export(d, &from, "bad.tgz", &["--have", &s(have)]).expect_code(3);
    assert!(refused.stderr.contains(&layer), "{}", refused.stderr);
    assert!(!d.join("bad.tgz").exists(), "nothing half-written");
    let bad = d.join("bad-manifest");
    copy_layout(app, &bad);
    let hex = layout_digest.trim_start_matches("sha256:");
    let path = bad.join("blobs/sha256").join(hex);
    let mut text = std::fs::read(&path).unwrap();
    text.push(b' ');
    std::fs::write(&path, text).unwrap();
    let from = ["--from-oci", &s(&bad)];
    let refused = export(d, &from, "bad2.tgz", &[]).expect_code(3);
    assert!(refused.stderr.contains(hex), "{}", refused.stderr);
}

/// The manifest digests the index blob `index` of `layout` lists (platform images first).
fn index_entries(layout: &Path, index: &str) -> Vec<String> {
    let text = std::fs::read(layout.join("blobs/sha256").join(&index[7..])).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let list = v["manifests"].as_array().expect("an index");
    list.iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Adds a build attestation (platform `unknown/unknown`, as buildx writes) to the index that
/// `layout` names `name`; returns the new index digest and the attestation's.
fn add_attestation(layout: &Path, name: &str) -> (String, String) {
    let blobs = layout.join("blobs/sha256");
    let write = |bytes: &[u8]| -> (String, usize) {
        let d = partial_tests::sha256_digest(bytes);
        std::fs::write(blobs.join(&d[7..]), bytes).unwrap();
        (d, bytes.len())
    };
    let top_path = layout.join("index.json");
    let mut top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&top_path).unwrap()).unwrap();
    let old = listed_digest(&std::fs::read(&top_path).unwrap(), name);
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&old[7..])).unwrap()).unwrap();
    let (config, config_size) = write(b"{}");
    let statement = serde_json::json!({"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": &index["manifests"][0]["digest"].as_str().unwrap()[7..]}}]});
    let (layer, layer_size) = write(&serde_json::to_vec(&statement).unwrap());
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config,
                   "size": config_size},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer,
                    "size": layer_size}]});
    let (att, att_size) = write(&serde_json::to_vec(&manifest).unwrap());
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": att,
        "size": att_size, "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}));
    let (new, new_size) = write(&serde_json::to_vec(&index).unwrap());
    for d in top["manifests"].as_array_mut().unwrap() {
        if d["digest"] == old.as_str() {
            d["digest"] = serde_json::json!(new);
            d["size"] = serde_json::json!(new_size);
        }
    }
    std::fs::write(&top_path, serde_json::to_vec(&top).unwrap()).unwrap();
    (new, att)
}

/// A two-platform index in a layout (with a build attestation) travels whole, as a registry
/// index does: every platform image untagged and the index byte for byte; `push` into C gives
/// the layout's index digest under its tag and each platform manifest by digest, and a Docker
/// daemon loads its own platform, tagged. `--platform` narrows it, said so (one platform: the
/// index stays behind; two of its three entries: re-made, its digest changes); named by its
/// digest it is exit 2 unless `--allow-new-digest`.
fn two_platform_index_travels_whole(scene: &Scene) {
    let (d, app) = (scene.d(), &scene.app);
    let multi = d.join("multi-oci");
    copy_layout(app, &multi);
    let extra = rootfs_tar(46, &[16 << 10], Content::Compressible);
    add_platform_variant(&multi, "app:2", "arm64", &extra).unwrap();
    let (index, attestation) = add_attestation(&multi, "app:2");
    let entries = index_entries(&multi, &index);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0], scene.layout_digest);
    let from = ["--from-oci", &s(&multi)];
    let run = export(d, &from, "multi.tgz", &[]).ok();
    assert!(!run.stderr.contains("not carried"), "{}", run.stderr);
    let m = signed(&d.join("multi.tgz"));
    assert_eq!(m["indexes"][0]["digest"], index.as_str(), "{m}");
    assert_eq!(m["indexes"][0]["extra"][0]["tag"], attestation.as_str());
    let images = m["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{m}");
    for img in images {
        let digest = img["source_manifest"]["digest"].as_str().unwrap();
        assert!(entries[..2].iter().any(|e| e == digest), "{digest}");
        assert!(img["tags"].as_array().is_none_or(|t| t.is_empty()), "{img}");
    }
    whole_index_is_pushed_and_loaded(scene, &index, &entries);
    narrowed_index_is_said(scene, &multi, &index);
}

/// The whole-index bundle into C (the index digest under its tag, every entry by digest) and
/// into a Docker daemon (its own platform, tagged).
fn whole_index_is_pushed_and_loaded(scene: &Scene, index: &str, entries: &[String]) {
    let (d, c) = (scene.d(), &scene.c);
    let bundle = d.join("multi.tgz");
    let run = push(&bundle, d, &c.addr, "multi.state").ok();
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["indexes"][0]["digest"], index, "{}", run.stdout);
    assert_eq!(manifest_digest(&format!("{}/app:2", c.addr)), index);
    for e in entries {
        assert_eq!(&manifest_digest(&format!("{}/app@{e}", c.addr)), e);
    }
    let airgap = require_daemon(DaemonOptions::labelled("layout-identity-multi")).expect("daemon");
    let state = s(&d.join("multi-load.state"));
    let team = s(&d.join("team.pub"));
    let args = [
        "load",
        &s(&bundle),
        "--key",
        &team,
        "-H",
        &airgap.host(),
        "--state",
        &state,
    ];
    let run = load(&args).ok();
    assert_eq!(
        airgap.image_id("app:2").unwrap(),
        oci_config_digest(&scene.app, "app:2").unwrap(),
        "{}",
        run.stderr
    );
    drop(airgap);
}

/// `--platform` narrows the index, said so: one platform leaves it behind (that image keeps its
/// manifest digest and takes the tag); two of its three entries re-make it (its digest changes);
/// pinned by digest, narrowing is exit 2 unless `--allow-new-digest`.
fn narrowed_index_is_said(scene: &Scene, multi: &Path, index: &str) {
    let (d, layout_digest) = (scene.d(), &scene.layout_digest);
    let from = ["--from-oci", &s(multi), "--platform", "linux/amd64"];
    let run = export(d, &from, "amd.tgz", &[]).ok();
    assert!(
        run.stderr.contains(&format!("the index {index}")) && run.stderr.contains("not carried"),
        "{}",
        run.stderr
    );
    let m = signed(&d.join("amd.tgz"));
    assert_eq!(
        m["images"][0]["source_manifest"]["digest"],
        layout_digest.as_str()
    );
    assert_eq!(m["images"][0]["tags"][0], "app:2", "{m}");
    assert!(m.get("indexes").is_none(), "{m}");
    assert!(m["warnings"].to_string().contains(index), "{m}");
    let both = [&from[..], &["--platform", "linux/arm64"][..]].concat();
    let run = export(d, &both, "both.tgz", &[]).ok();
    let m = signed(&d.join("both.tgz"));
    let remade = m["indexes"][0]["digest"].as_str().unwrap().to_string();
    assert_ne!(remade, index);
    assert_eq!(m["indexes"][0]["remade_from"], index);
    assert!(
        run.stderr
            .contains(&format!("its digest changes to {remade}")),
        "{}",
        run.stderr
    );
    let pinned = ["-i", index];
    let refused = export(d, &[&from[..], &pinned[..]].concat(), "pin.tgz", &[]).expect_code(2);
    assert!(
        refused.stderr.contains("--allow-new-digest"),
        "{}",
        refused.stderr
    );
    let allowed = ["--allow-new-digest"];
    export(d, &[&from[..], &pinned[..]].concat(), "pin.tgz", &allowed).ok();
}
