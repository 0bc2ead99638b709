//! Images keep their identity across the gap. `app:2` is pushed by `docker push` into registry
//! A; registry B got `app:1` from A with its digests (`skopeo copy --preserve-digests`), as an
//! earlier transfer would have left it. `partial-load inventory --registry B` feeds
//! `partial-save -i docker://A/app:2 --have`, and `partial-load push` into B gives `app:2` the
//! very manifest digest it has in A: tag and digest references resolve alike. Registry C holds
//! `app:1` as other blobs (pushed by `partial-load push` from a daemon export, whose gzip is not
//! Docker's): the push is refused with exit 4 naming the image and the layer, before a single
//! blob is uploaded, and `--allow-new-digest` pushes a re-made manifest with a warning. Made
//! against C's own inventory (which names its blobs), the bundle carries C's base layer as the
//! source stores it, saying so, and the push into C keeps the digest; `partial-save
//! --allow-new-digest` leaves the layer out and warns instead.
//! A cosign-style signature attached in A to app:2's digest (`sha256-<hex>.sig`, written here
//! with curl as cosign would lay it out) travels inside the signed manifest and arrives in B
//! under the same tag, byte for byte; next to C's re-made manifest it is left out, said so.
//! An SBOM attached as an OCI 1.1 referrer (its fallback index under `sha256-<hex>`, as
//! distribution 2.8 has no referrers API) arrives by digest, its index under the same tag.
//! Signed with an openssl-made P-256 key, it passes `verify --image-key cosign.pub` offline;
//! another key is exit 3 naming the image. The same bundle loaded into a Docker daemon that
//! pulled the base gives the image with the source's ID.

use partial_tests::cli::{load, push_args, Export, Run};
use partial_tests::scenario::build_standard_on;
use partial_tests::{require_daemon, require_registry, DaemonOptions, RegistryOptions};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `skopeo inspect --raw` of `docker://REF` over plain http: the manifest's digest.
pub(crate) fn manifest_digest(reference: &str) -> String {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    partial_tests::sha256_digest(&out.stdout)
}

fn skopeo_copy(from: &str, to: &str) {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--quiet", "--preserve-digests"])
        .args(["--src-tls-verify=false", "--dest-tls-verify=false"])
        .args([format!("docker://{from}"), format!("docker://{to}")])
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo copy {from} {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `curl` against the registry at `addr` (plain http): the response headers and body.
pub(crate) fn curl(args: &[&str], body: &[u8]) -> String {
    let mut child = Command::new("curl")
        .args(["-sS", "-i", "--data-binary", "@-"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "curl {args:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Uploads `bytes` as a blob of `repo` (POST, then PUT with the digest); returns its digest.
pub(crate) fn put_blob(addr: &str, repo: &str, bytes: &[u8]) -> String {
    let digest = partial_tests::sha256_digest(bytes);
    let started = curl(
        &[
            "-X",
            "POST",
            &format!("http://{addr}/v2/{repo}/blobs/uploads/"),
        ],
        b"",
    );
    let location = started
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("location: "))
        })
        .unwrap_or_else(|| panic!("no Location: {started}"))
        .trim()
        .to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let url = if location.starts_with("http") {
        format!("{location}{sep}digest={digest}")
    } else {
        format!("http://{addr}{location}{sep}digest={digest}")
    };
    let done = curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            &url,
        ],
        bytes,
    );
    assert!(done.starts_with("HTTP/1.1 201"), "{done}");
    digest
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An ECDSA P-256 key pair as cosign uses: `DIR/NAME.key` (PEM) and `DIR/NAME.pub`.
pub(crate) fn cosign_keys(dir: &Path, name: &str) -> (String, String) {
    let key = s(&dir.join(format!("{name}.key")));
    let public = s(&dir.join(format!("{name}.pub")));
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &key,
    ]);
    openssl(&["ec", "-in", &key, "-pubout", "-out", &public]);
    (key, public)
}

/// Signs `digest` in `repo` as cosign does, with the private key `key`: the simple-signing
/// payload as a layer of an OCI manifest, its ECDSA signature (base64 DER) in the layer's
/// annotation, tagged `sha256-<hex>.sig`. Returns the tag and the manifest bytes.
pub(crate) fn attach_signature(
    addr: &str,
    repo: &str,
    digest: &str,
    key: &str,
    dir: &Path,
) -> (String, Vec<u8>) {
    use base64::Engine as _;
    let config = put_blob(addr, repo, b"{}");
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{addr}/{repo}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    let payload_file = dir.join("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let der = openssl(&["dgst", "-sha256", "-sign", key, &s(&payload_file)]);
    let signature = base64::engine::general_purpose::STANDARD.encode(der);
    let layer = put_blob(addr, repo, payload.as_bytes());
    let media = "application/vnd.oci.image.manifest.v1+json";
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{media}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"{config}"}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":{},"digest":"{layer}","annotations":{{"dev.cosignproject.cosign/signature":"{signature}"}}}}]}}"#,
        payload.len()
    );
    let tag = format!("sha256-{}.sig", digest.trim_start_matches("sha256:"));
    let url = format!("http://{addr}/v2/{repo}/manifests/{tag}");
    let put = curl(
        &["-X", "PUT", "-H", &format!("Content-Type: {media}"), &url],
        manifest.as_bytes(),
    );
    assert!(put.starts_with("HTTP/1.1 201"), "{put}");
    (tag, manifest.into_bytes())
}

/// Attaches an SBOM to `digest` in `repo` as an OCI 1.1 referrer (a manifest whose `subject`
/// is the image, pushed by digest) with the fallback index listing it under `sha256-<hex>`, as
/// clients do for registries without the referrers API. Returns (referrer digest, its bytes,
/// index tag, index bytes).
fn attach_referrer(addr: &str, repo: &str, digest: &str) -> (String, Vec<u8>, String, Vec<u8>) {
    let empty = put_blob(addr, repo, b"{}");
    let sbom = br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#;
    let layer = put_blob(addr, repo, sbom);
    let media = "application/vnd.oci.image.manifest.v1+json";
    let subject_size = manifest_size(addr, repo, digest);
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"{media}","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"{empty}"}},"layers":[{{"mediaType":"application/spdx+json","size":{},"digest":"{layer}"}}],"subject":{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":{subject_size},"digest":"{digest}"}}}}"#,
        sbom.len()
    );
    let referrer_digest = partial_tests::sha256_digest(referrer.as_bytes());
    let url = format!("http://{addr}/v2/{repo}/manifests/{referrer_digest}");
    let put = curl(
        &["-X", "PUT", "-H", &format!("Content-Type: {media}"), &url],
        referrer.as_bytes(),
    );
    assert!(put.starts_with("HTTP/1.1 201"), "{put}");
    let index_media = "application/vnd.oci.image.index.v1+json";
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{index_media}","manifests":[{{"mediaType":"{media}","size":{},"digest":"{referrer_digest}","artifactType":"application/spdx+json"}}]}}"#,
        referrer.len()
    );
    let tag = format!("sha256-{}", digest.trim_start_matches("sha256:"));
    let url = format!("http://{addr}/v2/{repo}/manifests/{tag}");
    let put = curl(
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {index_media}"),
            &url,
        ],
        index.as_bytes(),
    );
    assert!(put.starts_with("HTTP/1.1 201"), "{put}");
    (
        referrer_digest,
        referrer.into_bytes(),
        tag,
        index.into_bytes(),
    )
}

/// The size of the manifest `repo@digest`.
fn manifest_size(addr: &str, repo: &str, digest: &str) -> usize {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{addr}/{repo}@{digest}"))
        .output()
        .expect("skopeo");
    assert!(out.status.success());
    out.stdout.len()
}

/// The manifest `repo:tag` of the registry at `addr`, raw.
pub(crate) fn get_manifest(addr: &str, repo: &str, tag: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json, \
             application/vnd.oci.image.index.v1+json",
        ])
        .arg(format!("http://{addr}/v2/{repo}/manifests/{tag}"))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "GET {repo}:{tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(crate) fn push(bundle: &Path, dir: &Path, to: &str, state: &str, extra: &[&str]) -> Run {
    load(&push_args(bundle, dir, to, state, extra))
}

#[test]
fn a_registry_image_keeps_its_digest_or_the_push_says_why_not() {
    if !partial_tests::require_tool("skopeo") {
        return;
    }
    let Some(daemon) = require_daemon(DaemonOptions::labelled("identity")) else {
        return;
    };
    let (Some(a), Some(b), Some(c)) = (
        require_registry(RegistryOptions::default()),
        require_registry(RegistryOptions::default()),
        require_registry(RegistryOptions::default()),
    ) else {
        return;
    };
    build_standard_on(&daemon);
    for tag in ["app:1", "app:2"] {
        let remote = format!("{}/{tag}", a.addr);
        daemon.docker(&["tag", tag, &remote]).unwrap();
        daemon.docker(&["push", &remote]).unwrap();
    }
    skopeo_copy(&format!("{}/app:1", a.addr), &format!("{}/app:1", b.addr));
    let source_digest = manifest_digest(&format!("{}/app:2", a.addr));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (cosign_key, cosign_pub) = cosign_keys(d, "cosign");
    let (_, other_pub) = cosign_keys(d, "other");
    let (sig_tag, sig_manifest) = attach_signature(&a.addr, "app", &source_digest, &cosign_key, d);
    let (referrer, referrer_bytes, index_tag, index_bytes) =
        attach_referrer(&a.addr, "app", &source_digest);
    let have = d.join("have.json");
    let inventory = ["inventory", "--registry", &b.addr, "--repo", "app", "-o"];
    load(&[&inventory[..], &[s(&have).as_str()]].concat()).ok();
    let bundle = Export::new(daemon.host(), d, "app2.tgz")
        .images(&[&format!("docker://{}/app:2", a.addr)])
        .base(&["--have", &s(&have)])
        .bundle();
    let signed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{}.manifest.json", bundle.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(signed["images"][0]["attached"][0]["tag"], sig_tag.as_str());

    let cx = Kept {
        daemon: &daemon,
        a: &a,
        b: &b,
        c: &c,
        d,
        bundle: &bundle,
        team: &s(&d.join("team.pub")),
        cosign_pub: &cosign_pub,
        other_pub: &other_pub,
        sig_tag: &sig_tag,
        sig_manifest: &sig_manifest,
        referrer: &referrer,
        referrer_bytes: &referrer_bytes,
        index_tag: &index_tag,
        index_bytes: &index_bytes,
        source_digest: &source_digest,
    };
    the_cosign_signature_is_checked_offline(&cx);
    a_daemon_gets_the_very_image(&cx);
    b_gets_the_same_manifest(&cx);
    c_refuses_a_new_digest_unless_allowed(&cx);
    c_inventory_keeps_the_digest(&cx);
}

/// What the parts of `a_registry_image_keeps_its_digest_or_the_push_says_why_not` share: a daemon,
/// registries A (the source), B (holding app:1 as A does) and C, the app:2 bundle and what is
/// attached to app:2 in A.
struct Kept<'a> {
    daemon: &'a partial_tests::Daemon,
    a: &'a partial_tests::RegistryServer,
    b: &'a partial_tests::RegistryServer,
    c: &'a partial_tests::RegistryServer,
    d: &'a Path,
    bundle: &'a Path,
    team: &'a str,
    cosign_pub: &'a str,
    other_pub: &'a str,
    sig_tag: &'a str,
    sig_manifest: &'a [u8],
    referrer: &'a str,
    referrer_bytes: &'a [u8],
    index_tag: &'a str,
    index_bytes: &'a [u8],
    source_digest: &'a str,
}

/// The cosign signature is checked offline, from the bundle alone.
fn the_cosign_signature_is_checked_offline(cx: &Kept) {
    let Kept {
        bundle,
        team,
        cosign_pub,
        other_pub,
        ..
    } = *cx;
    // The cosign signature is checked offline, from the bundle alone.
    let verify = |image_key: &str| {
        load(&[
            "verify",
            &s(bundle),
            "--key",
            team,
            "--offline",
            "--image-key",
            image_key,
        ])
    };
    verify(cosign_pub).ok().stderr_has("signature by");
    let refused = verify(other_pub).expect_code(3);
    for needle in ["app:2", "no valid signature", "none of the keys"] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
}

/// The same bundle loads into a Docker daemon holding the base: the very image.
fn a_daemon_gets_the_very_image(cx: &Kept) {
    let Kept {
        daemon,
        a,
        d,
        bundle,
        team,
        ..
    } = *cx;
    // The same bundle loads into a Docker daemon holding the base: the very image (its ID is
    // the config digest, which docker push kept).
    let airgap = require_daemon(DaemonOptions::labelled("identity-airgap")).expect("daemon");
    airgap
        .docker(&["pull", &format!("{}/app:1", a.addr)])
        .unwrap();
    load(&[
        "load",
        &s(bundle),
        "--key",
        team,
        "-H",
        &airgap.host(),
        "--state",
        &s(&d.join("airgap.state")),
    ])
    .ok();
    assert_eq!(
        airgap.image_id(&format!("{}/app:2", a.addr)).unwrap(),
        daemon.image_id("app:2").unwrap()
    );
    drop(airgap);
}

/// Into B: the same manifest, byte for byte, with what is attached to it.
fn b_gets_the_same_manifest(cx: &Kept) {
    let Kept {
        b,
        d,
        bundle,
        cosign_pub,
        sig_tag,
        sig_manifest,
        referrer,
        referrer_bytes,
        index_tag,
        index_bytes,
        source_digest,
        ..
    } = *cx;
    // Into B: the same manifest, byte for byte.
    let run = push(
        bundle,
        d,
        &b.addr,
        "b.state",
        &["--json", "--image-key", cosign_pub],
    )
    .ok();
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["images"][0]["digest_as_source"], true, "{}", run.stdout);
    assert_eq!(out["images"][0]["attached"][0], sig_tag);
    assert_eq!(get_manifest(&b.addr, "app", sig_tag), sig_manifest);
    let attached = out["images"][0]["attached"].to_string();
    assert!(
        attached.contains(referrer) && attached.contains(index_tag),
        "{attached}"
    );
    assert_eq!(get_manifest(&b.addr, "app", referrer), referrer_bytes);
    assert_eq!(get_manifest(&b.addr, "app", index_tag), index_bytes);
    assert_eq!(out["images"][0]["manifest_digest"], source_digest);
    assert_eq!(manifest_digest(&format!("{}/app:2", b.addr)), source_digest);
    let pinned = format!("{}/app@{source_digest}", b.addr);
    assert_eq!(manifest_digest(&pinned), source_digest);
}

/// C holds app:1 as blobs of its own: refused before any upload, unless `--allow-new-digest`.
fn c_refuses_a_new_digest_unless_allowed(cx: &Kept) {
    let Kept {
        daemon,
        c,
        d,
        bundle,
        source_digest,
        ..
    } = *cx;
    // C holds app:1 as blobs of its own: refused before any upload.
    let full = Export::new(daemon.host(), d, "app1-full.tgz")
        .images(&["app:1"])
        .base(&[])
        .bundle();
    push(&full, d, &c.addr, "c1.state", &[]).ok();
    let uploads = c.blob_uploads();
    let refused = push(bundle, d, &c.addr, "c.state", &[]).expect_code(4);
    for needle in ["app:2", source_digest, "layer 0", "--allow-new-digest"] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
    assert_eq!(c.blob_uploads(), uploads, "a refused push uploads nothing");
    let run = push(
        bundle,
        d,
        &c.addr,
        "c.state",
        &["--allow-new-digest", "--json"],
    )
    .ok();
    assert!(run.stderr.contains("new manifest digest"), "{}", run.stderr);
    assert!(run.stderr.contains("not pushed"), "{}", run.stderr);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["images"][0]["digest_as_source"], false);
    let remade = manifest_digest(&format!("{}/app:2", c.addr));
    assert_ne!(remade, source_digest);
    assert_eq!(out["images"][0]["manifest_digest"], remade.as_str());
}

/// With C's own inventory the connected side carries C's base layer as the source stores it.
fn c_inventory_keeps_the_digest(cx: &Kept) {
    let Kept {
        daemon,
        a,
        c,
        d,
        source_digest,
        ..
    } = *cx;
    // With C's own inventory the connected side knows: it carries C's base layer as the source
    // stores it (saying so), and the push keeps the digest, base and all.
    let have_c = d.join("have-c.json");
    let inventory = ["inventory", "--registry", &c.addr, "--repo", "app", "-o"];
    load(&[&inventory[..], &[s(&have_c).as_str()]].concat()).ok();
    let inv = std::fs::read_to_string(&have_c).unwrap();
    assert!(
        inv.contains("\"blobs\""),
        "a registry inventory names the blobs: {inv}"
    );
    let export_c = |name: &str, extra: &[&str]| {
        Export::new(daemon.host(), d, name)
            .images(&[&format!("docker://{}/app:2", a.addr)])
            .base(&["--have", &s(&have_c)])
            .args(extra)
            .run()
            .ok()
    };
    let kept = export_c("app2-c.tgz", &[]);
    assert!(kept.stderr.contains("carrying layer 0"), "{}", kept.stderr);
    let allowed = export_c("app2-c-new.tgz", &["--allow-new-digest"]);
    assert!(
        allowed.stderr.contains("new manifest digest"),
        "{}",
        allowed.stderr
    );
    let carried = |name: &str| {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(d.join(format!("{name}.manifest.json"))).unwrap(),
        )
        .unwrap();
        m["images"][0]["layers"][0]["carried"].clone()
    };
    assert_eq!(carried("app2-c.tgz"), true);
    assert_eq!(carried("app2-c-new.tgz"), false);
    let to = format!("{}/keep", c.addr);
    let run = push(&d.join("app2-c.tgz"), d, &to, "keep.state", &["--json"]).ok();
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["images"][0]["digest_as_source"], true, "{}", run.stdout);
    assert_eq!(manifest_digest(&format!("{to}/app:2")), source_digest);
}
