//! Pushing into a registry, end to end: `partial-load push` into a private docker-registry seeded
//! with `app:1` by `docker push`. A bundle of app:2 made against app:1 is pushed; `docker pull`
//! into the air-gapped daemon gives the source's image ID; the access log shows that only the
//! carried blobs were uploaded (gzip-compressed), none of the base's, and that a rerun uploads
//! nothing, also when the manifest was deleted in between. A bundle
//! whose base is not in the registry gives exit 4 naming it and pushes no manifest; a tampered
//! bundle gives exit 3 and pushes no manifest. A split zstd bundle pushes the same way.
//! `inventory --registry` feeds `partial-save --have`; an unreachable registry and a wrong
//! password are exit 5.
//! One daemon pair and one registry for all of it (2 cores).

use partial_tests::cli::{export_signed as export, keygen, load, push_args, Run};
use partial_tests::scenario::build_standard;
use partial_tests::{layer_files, require_daemons, require_registry, Content, RegistryOptions};
use std::path::Path;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn push(bundle: &Path, dir: &Path, to: &str, state: &str) -> Run {
    push_with(bundle, dir, to, state, &[])
}

fn push_with(bundle: &Path, dir: &Path, to: &str, state: &str, extra: &[&str]) -> Run {
    load(&push_args(bundle, dir, to, state, extra))
}

/// The bundle manifest's carried-layer count of its single image.
fn carried(bundle: &Path) -> usize {
    layers(bundle)
        .iter()
        .filter(|l| l["carried"] == true)
        .count()
}

/// The layers of the bundle manifest's single image.
fn layers(bundle: &Path) -> Vec<serde_json::Value> {
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{}.manifest.json", bundle.display())).unwrap(),
    )
    .unwrap();
    m["images"][0]["layers"].as_array().unwrap().clone()
}

/// `skopeo inspect [FLAGS] docker://REGISTRY/REPO_TAG` (plain http), as JSON.
fn inspect(registry: &str, repo_tag: &str, flags: &[&str]) -> serde_json::Value {
    let raw = std::process::Command::new("skopeo")
        .arg("inspect")
        .args(flags)
        .args([
            "--tls-verify=false",
            &format!("docker://{registry}/{repo_tag}"),
        ])
        .output()
        .expect("skopeo");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    serde_json::from_slice(&raw.stdout).unwrap()
}

/// Digests (hex) of the layers of `image` as `docker push` stored them.
fn base_blobs(registry: &str, repo_tag: &str) -> Vec<String> {
    inspect(registry, repo_tag, &[])["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d.as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect()
}

/// The manifest of `repo_tag` as the registry serves it.
fn raw_manifest(registry: &str, repo_tag: &str) -> serde_json::Value {
    inspect(registry, repo_tag, &["--raw"])
}

#[test]
fn push_into_a_registry_holding_the_base() {
    let Some(pair) = require_daemons() else {
        return;
    };
    if !partial_tests::require_tool("skopeo") {
        return;
    }
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let addr = server.addr.clone();
    let scene = build_standard(&pair);
    let src = &pair.source;
    // Seed the registry with app:1 the ordinary way.
    src.docker(&["tag", "app:1", &format!("{addr}/app:1")])
        .unwrap();
    src.docker(&["push", &format!("{addr}/app:1")]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    // inventory --registry (before app:2 is there) feeds partial-save --have: app:1's layers
    // are left out.
    let have = d.join("have.json");
    load(&[
        "inventory",
        "--registry",
        &addr,
        "--repo",
        "app",
        "-o",
        &s(&have),
    ])
    .ok();
    let inv = std::fs::read_to_string(&have).unwrap();
    assert!(
        inv.contains(&scene.app1) && inv.contains(&format!("{addr}/app:1")),
        "{inv}"
    );
    let planned = export(
        &src.host(),
        d,
        "app2-have.tgz",
        "app:2",
        &["--have", &s(&have)],
    );
    assert_eq!(
        carried(&planned),
        2,
        "the inventory left out app:1's layers"
    );
    let bundle = export(&src.host(), d, "app2.tgz", "app:2", &["-e", "app:1"]);
    assert_eq!(carried(&bundle), 2, "app:2 carries its two own layers");

    let c = Pushed {
        pair: &pair,
        server: &server,
        addr: &addr,
        d,
        scene: &scene,
        bundle: &bundle,
        src,
    };
    push_uploads_only_the_carried_blobs(&c);
    carried_layers_go_up_gzipped(&c);
    reruns_upload_nothing(&c);
    a_prefix_mounts_every_blob(&c);
    serial_push_and_base_repo(&c);
    split_zstd_and_uncompressed_layers(&c);
    tampered_bundles_push_no_manifest(&c);
    missing_base_and_rollback(&c);
    catalog_and_unreachable_registry(&c);
    passwords_against_htpasswd(&c);
}

/// What the parts of `push_into_a_registry_holding_the_base` share: one daemon pair, one registry,
/// the standard scene and its app:2 bundle made against app:1.
struct Pushed<'a> {
    pair: &'a partial_tests::DaemonPair,
    server: &'a partial_tests::RegistryServer,
    addr: &'a str,
    d: &'a Path,
    scene: &'a partial_tests::scenario::Scene,
    bundle: &'a Path,
    src: &'a partial_tests::Daemon,
}

/// Push: only the two carried layers and the config go up; `docker pull` gives the source's image ID.
fn push_uploads_only_the_carried_blobs(c: &Pushed) {
    let Pushed {
        pair,
        server,
        addr,
        d,
        scene,
        bundle,
        ..
    } = *c;
    // Push: only the two carried layers and the config go up.
    let before = server.blob_uploads();
    let mark = server.settled_log().len();
    let run = push(bundle, d, addr, "state.json").ok();
    assert!(
        run.stderr.contains(&format!("{addr}/app:2")),
        "{}",
        run.stderr
    );
    let log = server.settled_log();
    let uploads: Vec<&str> = log[mark..]
        .lines()
        .filter(|l| l.contains("\"PUT /v2/") && l.contains("/blobs/uploads/"))
        .collect();
    assert_eq!(server.blob_uploads() - before, 3, "{uploads:#?}");
    for hex in base_blobs(addr, "app:1") {
        assert!(
            !uploads.iter().any(|l| l.contains(&hex)),
            "base layer {hex} was uploaded: {uploads:#?}"
        );
    }

    // docker pull gives the source's image ID.
    pair.airgap
        .docker(&["pull", &format!("{addr}/app:2")])
        .unwrap();
    assert_eq!(
        pair.airgap.image_id(&format!("{addr}/app:2")).unwrap(),
        scene.app2
    );
}

/// The carried layers went up gzip-compressed.
fn carried_layers_go_up_gzipped(c: &Pushed) {
    let Pushed {
        addr,
        scene,
        bundle,
        ..
    } = *c;
    // The carried layers went up gzip-compressed (the bundle holds them uncompressed, named by
    // their diffIDs): the manifest references the gzip blobs; random content is stored, no
    // bigger but for the gzip framing; the compressible top layer shrinks.
    let pushed = raw_manifest(addr, "app:2");
    let bundle_layers = layers(bundle);
    let manifest_layers = pushed["layers"].as_array().unwrap();
    assert_eq!(manifest_layers.len(), bundle_layers.len(), "{pushed}");
    for (m, b) in manifest_layers.iter().zip(&bundle_layers) {
        if b["carried"] == true {
            assert_eq!(
                m["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
                "{pushed}"
            );
            assert_ne!(m["digest"], b["diff_id"], "{pushed}");
            let size = b["size"].as_u64().unwrap();
            assert!(m["size"].as_u64().unwrap() <= size + 1024, "{m} vs {b}");
        }
    }
    let top = manifest_layers.last().unwrap()["size"].as_u64().unwrap();
    let top_tar = bundle_layers.last().unwrap()["size"].as_u64().unwrap();
    assert!(
        top < top_tar / 2,
        "top layer {top} bytes gzipped, {top_tar} as a tar"
    );
    assert_eq!(pushed["config"]["digest"], scene.app2.as_str(), "{pushed}");
}

/// A rerun uploads nothing, also without the manifest.
fn reruns_upload_nothing(c: &Pushed) {
    let Pushed {
        server,
        addr,
        d,
        scene,
        bundle,
        ..
    } = *c;
    // A rerun uploads nothing.
    let before = server.blob_uploads();
    let rerun = push_with(bundle, d, addr, "state-rerun.json", &["--json"]).ok();
    assert_eq!(server.blob_uploads(), before, "a rerun uploaded blobs");
    let out: serde_json::Value = serde_json::from_str(&rerun.stdout).unwrap();
    assert_eq!(out["uploaded_blobs"], 0, "{out}");
    assert_eq!(out["images"][0]["id"], scene.app2.as_str(), "{out}");
    assert_eq!(
        out["images"][0]["references"][0],
        format!("{addr}/app:2").as_str(),
        "{out}"
    );
    assert_eq!(out["images"][0]["already_there"], true, "{out}");
    let first_digest = out["images"][0]["manifest_digest"].clone();

    // Without the manifest, a rerun compresses the layers again and finds the same gzip blobs
    // (the compression is deterministic): nothing uploaded, the same manifest pushed.
    let deleted = std::process::Command::new("skopeo")
        .args([
            "delete",
            "--tls-verify=false",
            &format!("docker://{addr}/app:2"),
        ])
        .output()
        .expect("skopeo");
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let before = server.blob_uploads();
    let again = push_with(bundle, d, addr, "state-again.json", &["--json"]).ok();
    assert_eq!(server.blob_uploads(), before, "a rerun uploaded blobs");
    let out: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(out["images"][0]["already_there"], false, "{out}");
    assert_eq!(out["images"][0]["manifest_digest"], first_digest, "{out}");
}

/// Under a prefix, every blob is mounted from the base's repository.
fn a_prefix_mounts_every_blob(c: &Pushed) {
    let Pushed {
        pair,
        server,
        addr,
        d,
        scene,
        bundle,
        ..
    } = *c;
    // Under a prefix: every blob mounted from app (the base's repository, which now also holds
    // the carried blobs), nothing uploaded.
    let before = server.blob_uploads();
    push(bundle, d, &format!("{addr}/mirror"), "state-mirror.json").ok();
    assert_eq!(
        server.blob_uploads(),
        before,
        "blobs in app are mounted, not uploaded"
    );
    let mounts: Vec<String> = server
        .settled_log()
        .lines()
        .filter(|l| l.contains("mount="))
        .map(str::to_string)
        .collect();
    let left_out = layers(bundle).len() - carried(bundle);
    assert!(left_out >= 1);
    assert_eq!(
        mounts
            .iter()
            .filter(
                |l| l.contains("\"POST /v2/mirror/app/blobs/uploads/?mount=")
                    && l.contains("&from=app ")
            )
            .count(),
        left_out + 3,
        "every blob (base layers, carried layers, config) mounted from app: {mounts:#?}"
    );
    pair.airgap
        .docker(&["pull", &format!("{addr}/mirror/app:2")])
        .unwrap();
    assert_eq!(
        pair.airgap
            .image_id(&format!("{addr}/mirror/app:2"))
            .unwrap(),
        scene.app2
    );
}

/// `--jobs 1`, `--insecure` and `--base-repo`.
fn serial_push_and_base_repo(c: &Pushed) {
    let Pushed {
        pair,
        server,
        addr,
        d,
        scene,
        bundle,
        ..
    } = *c;
    // --jobs 1, --insecure and --base-repo app: one blob at a time over plain http, the base
    // found in the repository named; the image arrives whole.
    push_with(
        bundle,
        d,
        &format!("{addr}/serial"),
        "state-serial.json",
        &["--jobs", "1", "--insecure", "--base-repo", "app"],
    )
    .ok();
    pair.airgap
        .docker(&["pull", &format!("{addr}/serial/app:2")])
        .unwrap();
    assert_eq!(
        pair.airgap
            .image_id(&format!("{addr}/serial/app:2"))
            .unwrap(),
        scene.app2
    );
    // --base-repo naming a repository without the base: exit 4 naming it, no manifest.
    push_with(
        bundle,
        d,
        &format!("{addr}/nobase"),
        "state-nobase.json",
        &["--base-repo", "zs-empty"],
    )
    .expect_code(4);
    assert_eq!(server.count_requests("PUT", "/v2/nobase/app/manifests/"), 0);
}

/// A split zstd bundle, and `--layer-compression none`.
fn split_zstd_and_uncompressed_layers(c: &Pushed) {
    let Pushed {
        pair,
        addr,
        d,
        scene,
        bundle,
        src,
        ..
    } = *c;
    // A zstd bundle split into volumes reads the same way.
    let split = export(
        &src.host(),
        d,
        "app2.zst",
        "app:2",
        &["-e", "app:1", "--compression", "zstd", "--split", "100K"],
    );
    assert!(d.join("app2.zst.002").exists(), "the bundle is split");
    push(&split, d, &format!("{addr}/zs"), "state-zs.json").ok();
    pair.airgap
        .docker(&["pull", &format!("{addr}/zs/app:2")])
        .unwrap();
    assert_eq!(
        pair.airgap.image_id(&format!("{addr}/zs/app:2")).unwrap(),
        scene.app2
    );

    let bundle_layers = layers(bundle);
    // --layer-compression none: the carried layers go up as the bundle holds them, named by
    // their diffIDs.
    push_with(
        bundle,
        d,
        &format!("{addr}/plain"),
        "state-plain.json",
        &["--layer-compression", "none"],
    )
    .ok();
    let plain = raw_manifest(addr, "plain/app:2");
    for (m, b) in plain["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&bundle_layers)
    {
        if b["carried"] == true {
            assert_eq!(m["mediaType"], "application/vnd.oci.image.layer.v1.tar");
            assert_eq!(m["digest"], b["diff_id"], "{plain}");
        }
    }
}

/// Tampered bundles: exit 3, no manifest pushed.
fn tampered_bundles_push_no_manifest(c: &Pushed) {
    let Pushed {
        server, addr, d, ..
    } = *c;
    // A tampered bundle: exit 3, no manifest pushed.
    let bad_dir = d.join("bad");
    std::fs::create_dir(&bad_dir).unwrap();
    for f in [
        "app2.tgz",
        "app2.tgz.manifest.json",
        "app2.tgz.manifest.json.minisig",
    ] {
        std::fs::copy(d.join(f), bad_dir.join(f)).unwrap();
    }
    let bad = bad_dir.join("app2.tgz");
    let mut bytes = std::fs::read(&bad).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&bad, bytes).unwrap();
    push(&bad, d, &format!("{addr}/tampered"), "state-bad.json").expect_code(3);
    assert_eq!(
        server.count_requests("PUT", "/v2/tampered/app/manifests/"),
        0
    );
    // The last byte flipped (the gzip trailer's size field): every blob still matches its own
    // digest, only the whole-bundle hash tells. Exit 3, no manifest pushed.
    let mut bytes = std::fs::read(d.join("app2.tgz")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&bad, bytes).unwrap();
    push(&bad, d, &format!("{addr}/trailer"), "state-trailer.json").expect_code(3);
    assert_eq!(
        server.count_requests("PUT", "/v2/trailer/app/manifests/"),
        0
    );
}

/// A base the registry lacks (exit 4), and a rollback in a series (exit 3).
fn missing_base_and_rollback(c: &Pushed) {
    let Pushed {
        server,
        addr,
        d,
        src,
        ..
    } = *c;
    // A base the registry lacks: exit 4 naming it, no manifest.
    src.import_rootfs("other:1", 31, &[50_000], Content::Random)
        .unwrap();
    src.build(
        "other:2",
        "other:1",
        &[layer_files(32, "x", 1, 10_000, Content::Random)],
    )
    .unwrap();
    let other = export(&src.host(), d, "other.tgz", "other:2", &["-e", "other:1"]);
    push(&other, d, addr, "state-other.json")
        .expect_code(4)
        .stderr_has("other:1");
    assert_eq!(server.count_requests("PUT", "/v2/other/manifests/"), 0);

    // A series: bundle 2 pushed, then bundle 1 is refused as a rollback (exit 3, no manifest),
    // unless --allow-rollback.
    let ledger = d.join("site.json");
    let l = s(&ledger);
    let b1 = export(
        &src.host(),
        d,
        "s1.tgz",
        "app:1",
        &["-e", "base:1", "--ledger", &l],
    );
    let b2 = export(
        &src.host(),
        d,
        "s2.tgz",
        "app:2",
        &["-e", "base:1", "--ledger", &l],
    );
    push(&b2, d, &format!("{addr}/series"), "state-series.json").ok();
    push(&b1, d, &format!("{addr}/series"), "state-series.json")
        .expect_code(3)
        .stderr_has("--allow-rollback");
    assert_eq!(
        server.count_requests("PUT", "/v2/series/app/manifests/1"),
        0
    );
    push_with(
        &b1,
        d,
        &format!("{addr}/series"),
        "state-series.json",
        &["--allow-rollback"],
    )
    .ok();
    assert_eq!(
        server.count_requests("PUT", "/v2/series/app/manifests/1"),
        1
    );
}

/// The catalog without `--repo`; an unreachable registry (exit 5).
fn catalog_and_unreachable_registry(c: &Pushed) {
    let Pushed {
        addr, d, bundle, ..
    } = *c;
    // The catalog is used without --repo.
    let all = load(&["inventory", "--registry", addr]).ok();
    assert!(all.stdout.contains("mirror/app:2"), "{}", all.stdout);

    // An unreachable registry: exit 5 naming it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = format!("127.0.0.1:{port}");
    push(bundle, d, &gone, "state-gone.json")
        .expect_code(5)
        .stderr_has(&gone);
}

/// htpasswd: a wrong password is exit 5, the right one gets through to the base check.
fn passwords_against_htpasswd(c: &Pushed) {
    let Pushed { d, bundle, .. } = *c;
    // htpasswd: a wrong password is exit 5 naming the credentials tried; the right one gets
    // through to the base check (this registry has no app:1: exit 4).
    let Some(authed) = require_registry(RegistryOptions {
        basic_auth: Some(("pusher".into(), "s3cret".into())),
        ..Default::default()
    }) else {
        return;
    };
    let empty_config = d.join("docker-config");
    std::fs::create_dir(&empty_config).unwrap();
    let with_password = |password: &str, state: &str| {
        let mut cmd = std::process::Command::new(partial_tests::bin("partial-load"));
        cmd.args([
            "push".to_string(),
            s(bundle),
            "--key".into(),
            s(&d.join("team.pub")),
            "--to".into(),
            authed.addr.clone(),
            "--state".into(),
            s(&d.join(state)),
            "--username".into(),
            "pusher".into(),
            "--password-stdin".into(),
        ])
        .env("DOCKER_CONFIG", &empty_config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{password}").unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    with_password("wrong", "state-auth1.json")
        .expect_code(5)
        .stderr_has("--username pusher");
    with_password("s3cret", "state-auth2.json")
        .expect_code(4)
        .stderr_has("app:1");
    assert_eq!(
        authed.count_requests("PUT", "/v2/"),
        0,
        "nothing was pushed"
    );
}
