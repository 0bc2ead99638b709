//! Issue 21, parts 1 and 3: containerd as a destination and a base (`partial-load load|verify|
//! inventory --containerd SOCKET --namespace NS`). Bundles are exported by `partial-save` from a
//! private `dockerd`; containerd is a private one per test (`partial_tests::containerd`, overlayfs
//! or native), given the base with `ctr images import` of a plain `docker save` archive (ctr in
//! tests only; partial-load speaks gRPC). Cases: the load keeps the source's image ID (config
//! digest), `ctr images check` calls it complete, the new layers are unpacked (committed
//! snapshots; the fixture's new file in the snapshotter), `verify` passes and a second load
//! changes nothing; a missing base is exit 4 with nothing loaded; `inventory --containerd`
//! lists the base's chains and `partial-save --have` of it leaves the base out; a tampered
//! bundle is exit 3 with no image record; containerd killed while a blob is being written
//! (its ingest folder appears) fails the load (exit 5) and, restarted, has no image record;
//! `rehydrate --containerd` writes an archive that a namespace holding nothing imports whole; a
//! delta bundle is rebuilt against the reference layer in containerd's content store. Each case
//! An image exported from a registry keeps its manifest digest in a namespace that pulled its
//! base from that registry (records by tag and by digest, as CRI's pull makes them), and gets
//! a manifest of its own, said so, in one that holds the base as other blobs. Each case
//! CRI's image service (what the kubelet asks, over the same socket) finds a loaded image by
//! tag and by `REPO@digest`, with the source's image ID. Each case
//! runs against containerd 1.6, 1.7 and 2.x (`containerd::v1_6::…`, `v1_7::…`, `v2::…`).

use partial_tests::cli::{load, Export, Run};
use partial_tests::containerd::{require_release, require_release_with, Release};
use partial_tests::scenario::build_standard_on;
use partial_tests::{content, require_daemon, Containerd, Content, Daemon, DaemonOptions};
use std::path::{Path, PathBuf};

/// Kubernetes nodes keep their images in this namespace.
const NS: &str = "k8s.io";

/// `partial-load CMD BUNDLE --key dir/team.pub --containerd SOCK --namespace NS --state … EXTRA…`.
fn pl(cmd: &str, bundle: &Path, dir: &Path, c: &Containerd, ns: &str, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        cmd.into(),
        bundle.to_string_lossy().into_owned(),
        "--key".into(),
        dir.join("team.pub").to_string_lossy().into_owned(),
        "--containerd".into(),
        c.socket().to_string_lossy().into_owned(),
        "--namespace".into(),
        ns.into(),
        "--state".into(),
        dir.join("state.json").to_string_lossy().into_owned(),
    ];
    if cmd == "load" {
        args.extend(["--snapshotter".into(), c.snapshotter.clone()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    load(&args)
}

/// Gives containerd's namespace `ns` the `images` of `source` (docker save, ctr images import).
fn give(source: &Daemon, c: &Containerd, ns: &str, images: &[&str]) {
    let tar = source.save(images).expect("docker save");
    c.import(ns, &tar).expect("ctr images import");
    let _ = std::fs::remove_file(tar);
}

/// A source daemon with the standard scene, a containerd whose k8s.io namespace holds base:1.
fn setup(release: Release) -> Option<(Daemon, Containerd, tempfile::TempDir)> {
    let source = require_daemon(DaemonOptions::labelled("source"))?;
    let c = require_release(release)?;
    build_standard_on(&source);
    give(&source, &c, NS, &["base:1"]);
    Some((source, c, tempfile::tempdir().unwrap()))
}

/// `Export` of `app:2` against `base:1` from `source`.
fn export(source: &Daemon, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    Export::new(source.host(), dir, name)
        .images(&["app:2"])
        .args(extra)
        .bundle()
}

/// The config digest of the manifest `digest` in namespace `ns` (`ctr content get`).
fn config_of(c: &Containerd, ns: &str, digest: &str) -> String {
    let m = c.ctr(&["-n", ns, "content", "get", digest]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&m).unwrap();
    v["config"]["digest"].as_str().unwrap().to_string()
}

/// Files named `rel` anywhere in the snapshotter's snapshots (`fs/rel` for overlayfs).
fn files_in_snapshots(c: &Containerd, rel: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(c.snapshots_dir()) else {
        return out;
    };
    for e in rd.flatten() {
        for p in [e.path().join("fs").join(rel), e.path().join(rel)] {
            if let Ok(b) = std::fs::read(&p) {
                out.push(b);
            }
        }
    }
    out
}

/// Every case runs against each containerd release: Debian bookworm's 1.6 (the system's),
/// trixie's 1.7 and forky's 2.x ([`Release`]), a module each.
macro_rules! on_each_release {
    ($($case:ident),* $(,)?) => {
        mod v1_6 {
            $(#[test] fn $case() { super::$case(super::Release::V1_6) })*
        }
        mod v1_7 {
            $(#[test] fn $case() { super::$case(super::Release::V1_7) })*
        }
        mod v2 {
            $(#[test] fn $case() { super::$case(super::Release::V2) })*
        }
    };
}

on_each_release!(
    a_docker_bundle_loads_into_containerd_unpacked_with_the_source_id,
    a_missing_base_is_exit_4_with_nothing_loaded,
    the_inventory_of_a_namespace_lets_partial_save_leave_the_base_out,
    a_tampered_bundle_is_exit_3_with_no_image_record,
    containerd_killed_while_a_blob_is_written_leaves_no_image_record,
    rehydrate_from_containerd_bases_writes_an_archive_that_imports_whole,
    a_delta_bundle_rebuilds_against_containerd_held_references,
    a_registry_image_keeps_its_manifest_digest_where_the_namespace_holds_its_blobs,
    the_kubelet_finds_the_loaded_image_by_tag_and_by_digest,
);

fn a_docker_bundle_loads_into_containerd_unpacked_with_the_source_id(release: Release) {
    let Some((source, c, dir)) = setup(release) else {
        return;
    };
    let d = dir.path();
    let bundle = export(&source, d, "app.tgz", &[]);
    let id = source.image_id("app:2").unwrap();
    let before = c.committed_snapshots(NS).unwrap();
    let hotfix = content(23u64.wrapping_mul(7919), 2_000, Content::Compressible);
    assert!(files_in_snapshots(&c, "hotfix/file000").is_empty());

    pl("verify", &bundle, d, &c, NS, &[]).ok();
    let r = pl("load", &bundle, d, &c, NS, &["--json"]).ok();
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["images"][0]["id"], id.as_str(), "{}", r.stdout);
    assert_eq!(out["verified"], true);
    assert!(r.stderr.contains("unpacked"), "{}", r.stderr);

    let images = c.images(NS).unwrap();
    let (_, target) = images
        .iter()
        .find(|(n, _)| n == "docker.io/library/app:2")
        .unwrap_or_else(|| panic!("no app:2 record: {images:?}"));
    assert_eq!(
        config_of(&c, NS, target),
        id,
        "the image ID is the config digest"
    );
    let check = c.ctr(&["-n", NS, "images", "check"]).unwrap();
    let line = check
        .lines()
        .find(|l| l.starts_with("docker.io/library/app:2"))
        .unwrap_or_else(|| panic!("{check}"));
    assert!(line.contains("complete"), "{check}");

    let after = c.committed_snapshots(NS).unwrap();
    assert_eq!(after.len(), before.len() + 2, "{before:?} → {after:?}");
    assert_eq!(files_in_snapshots(&c, "hotfix/file000"), vec![hotfix]);

    // Loading it again (the state allows the same bundle) leaves everything as it was, the
    // labels others put on the record (the kubelet's pins) included.
    let name = "docker.io/library/app:2";
    c.ctr(&[
        "-n",
        NS,
        "images",
        "label",
        name,
        "io.cri-containerd.pinned=pinned",
    ])
    .unwrap();
    pl("load", &bundle, d, &c, NS, &["--allow-rollback"]).ok();
    assert_eq!(c.committed_snapshots(NS).unwrap().len(), after.len());
    assert_eq!(c.images(NS).unwrap(), images);
    let listed = c.ctr(&["-n", NS, "images", "ls"]).unwrap();
    let line = listed.lines().find(|l| l.starts_with(name)).unwrap();
    assert!(line.contains("io.cri-containerd.pinned=pinned"), "{listed}");
}

fn a_missing_base_is_exit_4_with_nothing_loaded(release: Release) {
    let Some((source, c, dir)) = setup(release) else {
        return;
    };
    let d = dir.path();
    let bundle = export(&source, d, "app.tgz", &[]);
    // The default namespace holds nothing; k8s.io holds the base.
    let r = pl("load", &bundle, d, &c, "default", &[]).expect_code(4);
    assert!(r.stderr.contains("base:1"), "{}", r.stderr);
    assert!(r.stderr.contains("namespace default"), "{}", r.stderr);
    assert!(c.images("default").unwrap().is_empty());
    assert!(c.committed_snapshots("default").unwrap().is_empty());
    pl("verify", &bundle, d, &c, "default", &[]).expect_code(4);
}

fn the_inventory_of_a_namespace_lets_partial_save_leave_the_base_out(release: Release) {
    let Some((source, c, dir)) = setup(release) else {
        return;
    };
    let d = dir.path();
    let inv = d.join("have.json");
    load(&[
        "inventory",
        "--containerd",
        &c.socket().to_string_lossy(),
        "--namespace",
        NS,
        "-o",
        &inv.to_string_lossy(),
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    let base_id = source.image_id("base:1").unwrap();
    let images = v["images"].as_array().unwrap();
    let base = images
        .iter()
        .find(|i| i["id"] == base_id.as_str())
        .unwrap_or_else(|| panic!("{v}"));
    let n_base = base["chain_ids"].as_array().unwrap().len();
    assert!(n_base >= 1, "{v}");
    assert_eq!(base["diff_ids"].as_array().unwrap().len(), n_base, "{v}");
    assert!(
        base["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "base:1"),
        "{v}"
    );

    let bundle = Export::new(source.host(), d, "have.tgz")
        .images(&["app:2"])
        .base(&["--have", &inv.to_string_lossy()])
        .bundle();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("have.tgz.manifest.json")).unwrap()).unwrap();
    let carried: Vec<bool> = m["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["carried"].as_bool().unwrap())
        .collect();
    assert_eq!(carried.len(), n_base + 2, "{m}");
    assert!(
        carried[..n_base].iter().all(|c| !c),
        "the base is left out: {m}"
    );
    assert!(carried[n_base..].iter().all(|c| *c), "{m}");
    pl("load", &bundle, d, &c, NS, &[]).ok();
    let id = source.image_id("app:2").unwrap();
    let (_, target) = c
        .images(NS)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == "docker.io/library/app:2")
        .unwrap();
    assert_eq!(config_of(&c, NS, &target), id);
}

fn a_tampered_bundle_is_exit_3_with_no_image_record(release: Release) {
    let Some((source, c, dir)) = setup(release) else {
        return;
    };
    let d = dir.path();
    let bundle = export(&source, d, "app.tgz", &[]);
    let original = std::fs::read(&bundle).unwrap();
    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    std::fs::write(&bundle, &flipped).unwrap();
    let r = pl("load", &bundle, d, &c, NS, &[]).expect_code(3);
    assert!(r.stderr.contains("app.tgz"), "{}", r.stderr);
    let names: Vec<String> = c.images(NS).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.contains("app")), "{names:?}");
    // Untouched, it loads.
    std::fs::write(&bundle, &original).unwrap();
    pl("load", &bundle, d, &c, NS, &[]).ok();
    assert!(c
        .images(NS)
        .unwrap()
        .iter()
        .any(|(n, _)| n == "docker.io/library/app:2"));
}

fn containerd_killed_while_a_blob_is_written_leaves_no_image_record(release: Release) {
    let Some((source, mut c, dir)) = setup(release) else {
        return;
    };
    let d = dir.path();
    // One big carried layer (48 MiB), so that its write is long enough to be seen.
    source
        .build(
            "big:1",
            "base:1",
            &[partial_tests::layer_files(
                31,
                "big",
                12,
                4 << 20,
                Content::Random,
            )],
        )
        .expect("build big:1");
    let bundle = Export::new(source.host(), d, "big.tar")
        .images(&["big:1"])
        .args(&["--compression", "none"])
        .bundle();
    let mut cmd = std::process::Command::new(partial_tests::bin("partial-load"));
    cmd.args(["load", &bundle.to_string_lossy(), "--key"])
        .arg(d.join("team.pub"))
        .arg("--containerd")
        .arg(c.socket())
        .args([
            "--namespace",
            NS,
            "--snapshotter",
            &c.snapshotter,
            "--state",
        ])
        .arg(d.join("state.json"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawning partial-load");
    let t0 = std::time::Instant::now();
    let seen = loop {
        let writing = std::fs::read_dir(c.ingest_dir())
            .map(|mut r| r.next().is_some())
            .unwrap_or(false);
        if writing {
            break true;
        }
        if child.try_wait().unwrap().is_some() || t0.elapsed().as_secs() > 120 {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    assert!(
        seen,
        "no blob write of containerd was seen before the load ended"
    );
    c.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("containerd"), "{stderr}");
    c.restart().expect("restarting containerd");
    let names: Vec<String> = c.images(NS).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.contains("big")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("base:1")), "{names:?}");
}

fn rehydrate_from_containerd_bases_writes_an_archive_that_imports_whole(release: Release) {
    let Some((source, c, dir)) = setup(release) else {
        return;
    };
    let d = dir.path();
    let bundle = export(&source, d, "app.tgz", &[]);
    let full = d.join("full.tar");
    load(&[
        "rehydrate",
        &bundle.to_string_lossy(),
        "--key",
        &d.join("team.pub").to_string_lossy(),
        "--containerd",
        &c.socket().to_string_lossy(),
        "--namespace",
        NS,
        "-o",
        &full.to_string_lossy(),
    ])
    .ok();
    // A namespace holding nothing takes the archive whole.
    c.import("other", &full)
        .expect("ctr images import of the rehydrated archive");
    let (_, target) = c
        .images("other")
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == "docker.io/library/app:2")
        .unwrap_or_else(|| panic!("{:?}", c.images("other")));
    assert_eq!(
        config_of(&c, "other", &target),
        source.image_id("app:2").unwrap()
    );
    let check = c.ctr(&["-n", "other", "images", "check"]).unwrap();
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("docker.io/library/app:2") && l.contains("complete")),
        "{check}"
    );
}

fn a_delta_bundle_rebuilds_against_containerd_held_references(release: Release) {
    let Some(source) = require_daemon(DaemonOptions::labelled("source")) else {
        return;
    };
    let Some(c) = require_release(release) else {
        return;
    };
    // app:1 and app:2: the same app layer but for one small file.
    let app = |version: u8| {
        let mut files = partial_tests::layer_files(31, "app", 4, 200_000, Content::Random);
        files.push(("app/VERSION".into(), vec![b'0' + version; 64]));
        files
    };
    source
        .import_rootfs("base:1", 11, &[100_000], Content::Random)
        .unwrap();
    source.build("app:1", "base:1", &[app(1)]).unwrap();
    let app2 = source.build("app:2", "base:1", &[app(2)]).unwrap();
    give(&source, &c, NS, &["app:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = Export::new(source.host(), d, "delta.tgz")
        .images(&["app:2"])
        .base(&["-e", "app:1"])
        .args(&["--delta"])
        .bundle();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("delta.tgz.manifest.json")).unwrap()).unwrap();
    let deltas = m["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l.get("delta").is_some())
        .count();
    assert_eq!(deltas, 1, "the app layer travels as a delta: {m}");
    // The reference layer is read from containerd's content store.
    let r = pl("verify", &bundle, d, &c, NS, &[]).ok();
    assert!(r.stderr.contains("rebuilt"), "{}", r.stderr);
    let r = pl("load", &bundle, d, &c, NS, &["--json"]).ok();
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["deltas_rebuilt"], 1, "{}", r.stdout);
    let (_, target) = c
        .images(NS)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == "docker.io/library/app:2")
        .unwrap();
    assert_eq!(config_of(&c, NS, &target), app2);
    let check = c.ctr(&["-n", NS, "images", "check"]).unwrap();
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("docker.io/library/app:2") && l.contains("complete")),
        "{check}"
    );
    // Unpacked: app:2's own app layer is in the snapshotter next to app:1's.
    let versions = files_in_snapshots(&c, "app/VERSION");
    assert!(versions.contains(&vec![b'2'; 64]), "{versions:?}");
}

/// A namespace that pulls from a registry.
const MIRROR: &str = "mirror";

/// The record `name` of namespace `ns`: its target digest.
fn target_of(c: &Containerd, ns: &str, name: &str) -> Option<String> {
    c.images(ns)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
}

fn a_registry_image_keeps_its_manifest_digest_where_the_namespace_holds_its_blobs(
    release: Release,
) {
    if !partial_tests::require_tool("skopeo") {
        return;
    }
    let Some((source, c, dir)) = setup(release) else {
        return;
    };
    let Some(reg) = partial_tests::require_registry(partial_tests::RegistryOptions::default())
    else {
        return;
    };
    for tag in ["app:1", "app:2"] {
        let remote = format!("{}/{tag}", reg.addr);
        source.docker(&["tag", tag, &remote]).unwrap();
        source.docker(&["push", &remote]).unwrap();
    }
    // A node that pulled app:1 from the registry before the gap: its blobs as the registry has
    // them. (Into a namespace of its own: containerd 2.x's pull fetches no blob for a layer whose
    // snapshot exists, such as base:1's in k8s.io.)
    let app1 = format!("{}/app:1", reg.addr);
    let snap = c.snapshotter.clone();
    c.ctr(&[
        "-n",
        MIRROR,
        "images",
        "pull",
        "--plain-http",
        "--snapshotter",
        &snap,
        &app1,
    ])
    .unwrap();
    // Another namespace holds app:1 from a `docker save` (uncompressed layers: other blobs).
    give(&source, &c, "other", &["app:1"]);
    let d = dir.path();
    let app2 = format!("{}/app:2", reg.addr);
    let bundle = Export::new(source.host(), d, "reg.tgz")
        .images(&[&format!("docker://{app2}")])
        .base(&["-e", &format!("docker://{app1}")])
        .bundle();
    let source_digest = super::identity::manifest_digest(&app2);
    let id = source.image_id("app:2").unwrap();

    let r = pl("load", &bundle, d, &c, MIRROR, &["--json"]).ok();
    assert!(!r.stderr.contains("manifest of its own"), "{}", r.stderr);
    let by_tag = target_of(&c, MIRROR, &app2);
    assert_eq!(
        by_tag.as_deref(),
        Some(source_digest.as_str()),
        "{}",
        r.stderr
    );
    let by_digest = format!("{}/app@{source_digest}", reg.addr);
    assert_eq!(
        target_of(&c, MIRROR, &by_digest).as_deref(),
        Some(source_digest.as_str()),
        "a pod pinned by digest finds the record: {:?}",
        c.images(MIRROR).unwrap()
    );
    let out: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        out["loaded"].to_string().contains(&by_digest),
        "{}",
        r.stdout
    );
    assert_eq!(config_of(&c, MIRROR, &source_digest), id);
    let check = c.ctr(&["-n", MIRROR, "images", "check"]).unwrap();
    assert!(
        check
            .lines()
            .any(|l| l.starts_with(&app2) && l.contains("complete")),
        "{check}"
    );

    // Where the base is other blobs, the image is the same but its manifest is made here.
    let r = pl("load", &bundle, d, &c, "other", &[]).ok();
    r.stderr_has("gets a manifest of its own here");
    let target = target_of(&c, "other", &app2).expect("loaded into the other namespace");
    assert_ne!(target, source_digest);
    assert_eq!(config_of(&c, "other", &target), id);
}

fn the_kubelet_finds_the_loaded_image_by_tag_and_by_digest(release: Release) {
    let Some(source) = require_daemon(DaemonOptions::labelled("source")) else {
        return;
    };
    let Some(c) = require_release_with(release, true) else {
        return;
    };
    build_standard_on(&source);
    give(&source, &c, NS, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = export(&source, d, "app.tgz", &[]);
    let id = source.image_id("app:2").unwrap();
    let status = |reference: &str| partial_tests::cri::image_status(&c.socket(), reference);
    let tag = "docker.io/library/app:2";
    assert_eq!(
        status(tag).unwrap(),
        None,
        "CRI knows app:2 before the load"
    );

    pl("load", &bundle, d, &c, NS, &[]).ok();
    let manifest = target_of(&c, NS, tag).expect("the record app:2");
    let by_digest = format!("docker.io/library/app@{manifest}");
    // CRI picks new records up from containerd's events: give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let seen = loop {
        match status(tag).unwrap() {
            Some(image) => break image,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            None => panic!("CRI does not know {tag} 10 s after the load"),
        }
    };
    assert_eq!(seen.id, id, "CRI's image ID is the config digest");
    assert!(seen.repo_tags.contains(&tag.to_string()), "{seen:?}");
    assert!(seen.repo_digests.contains(&by_digest), "{seen:?}");
    let pinned = status(&by_digest)
        .unwrap()
        .expect("a pod pinned by digest finds it");
    assert_eq!(pinned.id, id);
    assert_eq!(status(&id).unwrap().map(|i| i.id), Some(id.clone()));
}
