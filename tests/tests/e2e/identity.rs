//! Images keep their identity across the gap. `app:2` is pushed by `docker push` into registry
//! A; registry B got `app:1` from A with its digests (`skopeo copy --preserve-digests`), as an
//! earlier transfer would have left it. `partial-load inventory --registry B` feeds
//! `partial-save -i docker://A/app:2 --have`, and `partial-load push` into B gives `app:2` the
//! very manifest digest it has in A: tag and digest references resolve alike. Registry C holds
//! `app:1` as other blobs (pushed by `partial-load push` from a daemon export, whose gzip is not
//! Docker's): the push is refused with exit 4 naming the image and the layer, before a single
//! blob is uploaded, and `--allow-new-digest` pushes a re-made manifest with a warning.

use partial_tests::cli::{load, push_args, Export, Run};
use partial_tests::scenario::build_standard_on;
use partial_tests::{require_daemon, require_registry, DaemonOptions, RegistryOptions};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `skopeo inspect --raw` of `docker://REF` over plain http: the manifest's digest.
fn manifest_digest(reference: &str) -> String {
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

fn push(bundle: &Path, dir: &Path, to: &str, state: &str, extra: &[&str]) -> Run {
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
    let have = d.join("have.json");
    let inventory = ["inventory", "--registry", &b.addr, "--repo", "app", "-o"];
    load(&[&inventory[..], &[s(&have).as_str()]].concat()).ok();
    let bundle = Export::new(daemon.host(), d, "app2.tgz")
        .images(&[&format!("docker://{}/app:2", a.addr)])
        .base(&["--have", &s(&have)])
        .bundle();

    // Into B: the same manifest, byte for byte.
    let run = push(&bundle, d, &b.addr, "b.state", &["--json"]).ok();
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["images"][0]["digest_as_source"], true, "{}", run.stdout);
    assert_eq!(out["images"][0]["manifest_digest"], source_digest.as_str());
    assert_eq!(manifest_digest(&format!("{}/app:2", b.addr)), source_digest);
    let pinned = format!("{}/app@{source_digest}", b.addr);
    assert_eq!(manifest_digest(&pinned), source_digest);

    // C holds app:1 as blobs of its own: refused before any upload.
    let full = Export::new(daemon.host(), d, "app1-full.tgz")
        .images(&["app:1"])
        .base(&[])
        .bundle();
    push(&full, d, &c.addr, "c1.state", &[]).ok();
    let uploads = c.blob_uploads();
    let refused = push(&bundle, d, &c.addr, "c.state", &[]).expect_code(4);
    for needle in ["app:2", &source_digest, "layer 0", "--allow-new-digest"] {
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
    }
    assert_eq!(c.blob_uploads(), uploads, "a refused push uploads nothing");
    let run = push(
        &bundle,
        d,
        &c.addr,
        "c.state",
        &["--allow-new-digest", "--json"],
    )
    .ok();
    assert!(run.stderr.contains("new manifest digest"), "{}", run.stderr);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["images"][0]["digest_as_source"], false);
    let remade = manifest_digest(&format!("{}/app:2", c.addr));
    assert_ne!(remade, source_digest);
    assert_eq!(out["images"][0]["manifest_digest"], remade.as_str());
}
