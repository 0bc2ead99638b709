//! Saving from a registry, end to end: `partial-save -i docker://REGISTRY/REPO:TAG` reads images
//! from a registry with no daemon on the connected side. A private `docker-registry` is seeded by
//! `docker push` from the source daemon (127.0.0.1 registries are insecure-allowed for Docker); the
//! export from the registry excluding `-e docker://…/base:1` carries only app's layers, never
//! touches a daemon (a bogus `-H`), fetches only the carried blobs (the registry's access log), and
//! `partial-load load` on the air-gapped daemon holding base:1 gives the very image (same ID:
//! `docker push` keeps the config bytes). Also: digest references, a missing tag, a daemon image
//! mixed with a registry one, a corrupted blob, and the errors of an unreachable registry and a
//! wrong password.

use partial_tests::cli::save;
use partial_tests::roundtrip::{build_writer_scene, round_trip, Expect};
use partial_tests::{require_daemons, require_registry, RegistryOptions};
use std::path::Path;

/// The signed manifest of `bundle` says its source is of `kind`.
fn check_manifest_source(bundle: &Path, kind: &str) {
    let m = partial_tests::bundle_check::manifest_path(bundle);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    assert_eq!(v["source"]["kind"], kind, "{}", v["source"]);
}

/// A socket nothing listens on: a run that tried the daemon would fail.
const NO_DAEMON: &str = "unix:///nonexistent/partial-regsource.sock";

#[test]
fn exports_from_a_registry_without_a_daemon() {
    let Some(reg) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let r = &reg.addr;
    for (local, remote) in [("base:1", "base:1"), ("app:2", "app:2")] {
        let target = format!("{r}/{remote}");
        pair.source.docker(&["tag", local, &target]).unwrap();
        pair.source.docker(&["push", &target]).unwrap();
    }
    let before_app = reg.count_requests("GET", "/v2/app/blobs/");
    let before_base = reg.count_requests("GET", "/v2/base/blobs/");

    // 1. From the registry, base:1 excluded by its registry reference; no daemon involved.
    let expect = Expect {
        id: Some(scene.app2_id.clone()),
        diff_ids: scene.app2_diffs.clone(),
        tag: Some(format!("{r}/app:2")),
        tag_containing: None,
    };
    let args: Vec<String> = [
        format!("docker://{r}/app:2"),
        format!("docker://{r}/base:1"),
        NO_DAEMON.to_string(),
    ]
    .iter()
    .zip(["-i", "-e", "-H"])
    .flat_map(|(v, f)| [f.to_string(), v.clone()])
    .collect();
    let summary = round_trip(&pair, &scene, "registry", &args, &expect)
        .unwrap_or_else(|e| panic!("round trip from the registry: {e:#}"));
    eprintln!("registry round trip: {summary}");
    let out = scene.dir.path().join("registry").join("out.tgz");
    check_manifest_source(&out, "registry");
    // Only the config and the carried layers were fetched: app:2 has two layers of its own;
    // base:1 gave its config only.
    let carried = scene.app2_diffs.len() - scene.base_diffs.len();
    assert_eq!(
        reg.count_requests("GET", "/v2/app/blobs/") - before_app,
        1 + carried,
        "blob GETs in app: {}",
        reg.log()
    );
    assert_eq!(
        reg.count_requests("GET", "/v2/base/blobs/") - before_base,
        1
    );

    let cx = FromRegistry {
        reg: &reg,
        pair: &pair,
        scene: &scene,
        r,
        out: &out,
    };
    by_digest(&cx);
    a_missing_tag(&cx);
    a_daemon_image_and_a_registry_image(&cx);
    a_corrupted_blob(&cx);
}

/// What the parts of `exports_from_a_registry_without_a_daemon` share: the registry seeded with
/// base:1 and app:2, the daemon pair and scene, and the bundle of app:2 from the registry (`out`).
struct FromRegistry<'a> {
    reg: &'a partial_tests::RegistryServer,
    pair: &'a partial_tests::DaemonPair,
    scene: &'a partial_tests::roundtrip::WriterScene,
    r: &'a str,
    out: &'a Path,
}

/// By digest: the manifest digest docker push reported.
fn by_digest(cx: &FromRegistry) {
    let FromRegistry { pair, scene, r, .. } = *cx;
    // 2. By digest: the manifest digest docker push reported.
    let repo_digest = pair
        .source
        .docker(&[
            "image",
            "inspect",
            "--format",
            "{{index .RepoDigests 0}}",
            &format!("{r}/app:2"),
        ])
        .unwrap();
    let digest = repo_digest.trim().rsplit('@').next().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{repo_digest}");
    let by_digest = scene.dir.path().join("digest.tgz");
    let run = save(&[
        "-i",
        &format!("docker://{r}/app@{digest}"),
        "-e",
        &format!("docker://{r}/base:1"),
        "-H",
        NO_DAEMON,
        "-o",
        by_digest.to_str().unwrap(),
    ])
    .ok();
    let facts = partial_tests::bundle_check::check_bundle(&by_digest).unwrap();
    assert_eq!(facts.images.len(), 1, "{}", run.stderr);
    assert_eq!(facts.images[0].id, scene.app2_id);
    assert_eq!(facts.images[0].diff_ids, scene.app2_diffs);
    assert_eq!(facts.required_base, scene.base_chains);
}

/// A missing tag: exit 1, naming it.
fn a_missing_tag(cx: &FromRegistry) {
    let FromRegistry { scene, r, .. } = *cx;
    // 3. A missing tag: exit 1, naming it.
    let missing = scene.dir.path().join("missing.tgz");
    save(&[
        "-i",
        &format!("docker://{r}/app:nope"),
        "-H",
        NO_DAEMON,
        "-o",
        missing.to_str().unwrap(),
    ])
    .expect_code(1)
    .stderr_has("manifest nope not found in repository app");
    assert!(!missing.exists());
}

/// A daemon image and a registry image in one run.
fn a_daemon_image_and_a_registry_image(cx: &FromRegistry) {
    let FromRegistry { pair, scene, r, .. } = *cx;
    // 4. A daemon image and a registry image in one run.
    let mixed = scene.dir.path().join("mixed.tgz");
    save(&[
        "-i",
        "base:1",
        "-i",
        &format!("docker://{r}/app:2"),
        "-H",
        &pair.source.host(),
        "-o",
        mixed.to_str().unwrap(),
    ])
    .ok();
    let facts = partial_tests::bundle_check::check_bundle(&mixed).unwrap();
    let mut ids: Vec<&str> = facts.images.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    let base_id = pair.source.image_id("base:1").unwrap();
    let mut want = vec![base_id.as_str(), scene.app2_id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert!(facts.images.iter().all(|i| i.carried.iter().all(|c| *c)));
    check_manifest_source(&mixed, "daemon_and_registry");
}

/// A carried blob the registry serves corrupted: exit 3 naming the blob, no bundle left behind.
fn a_corrupted_blob(cx: &FromRegistry) {
    let FromRegistry {
        reg, scene, r, out, ..
    } = *cx;
    // 5. A carried blob the registry serves corrupted (one byte flipped in its storage): exit 3
    //    naming the blob, no bundle left behind.
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(partial_tests::bundle_check::manifest_path(out)).unwrap(),
    )
    .unwrap();
    let top = m["images"][0]["layers"].as_array().unwrap().last().unwrap()["blob"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let hex = top.trim_start_matches("sha256:");
    let data = reg
        .dir()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let bad = scene.dir.path().join("bad.tgz");
    save(&[
        "-i",
        &format!("docker://{r}/app:2"),
        "-e",
        &format!("docker://{r}/base:1"),
        "-H",
        NO_DAEMON,
        "-o",
        bad.to_str().unwrap(),
    ])
    .expect_code(3)
    .stderr_has(hex);
    assert!(!bad.exists());
}

#[test]
fn registry_errors_name_the_registry_and_the_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.tgz");
    let out_s = out.to_str().unwrap();

    // Nothing listens: exit 5 naming the registry.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    save(&[
        "-i",
        &format!("docker://127.0.0.1:{port}/app:2"),
        "-H",
        NO_DAEMON,
        "-o",
        out_s,
    ])
    .expect_code(5)
    .stderr_has(&format!("registry 127.0.0.1:{port} is unreachable"));

    let Some(reg) = require_registry(RegistryOptions {
        basic_auth: Some(("alice".into(), "right".into())),
        ..Default::default()
    }) else {
        return;
    };
    // A wrong password: exit 5, saying which credentials were tried.
    let mut cmd = std::process::Command::new(partial_tests::bin("partial-save"));
    cmd.args([
        "-i",
        &format!("docker://{}/app:2", reg.addr),
        "-H",
        NO_DAEMON,
        "-o",
        out_s,
        "--username",
        "alice",
        "--password-stdin",
    ])
    .env_remove("DOCKER_HOST")
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"wrong\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(
        stderr.contains("credentials tried: --username alice"),
        "{stderr}"
    );
    assert!(!out.exists());

    // No credentials at all (an empty Docker config): exit 5, naming config.json.
    let cfg = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(partial_tests::bin("partial-save"));
    cmd.args([
        "-i",
        &format!("docker://{}/app:2", reg.addr),
        "-H",
        NO_DAEMON,
        "-o",
        out_s,
    ])
    .env_remove("DOCKER_HOST")
    .env("DOCKER_CONFIG", cfg.path());
    partial_tests::cli::run_cmd(cmd)
        .expect_code(5)
        .stderr_has("config.json");
}

/// Not a timed test: prints the export time from the registry against the same image from the
/// daemon (base:1 left out either way), best of three each. `PARTIAL_SAVE_BIN` names the binary
/// to time (e.g. `target/release/partial-save`).
/// `cargo test -p partial-tests --test e2e -- regsource::measure --ignored --nocapture`
#[test]
#[ignore]
fn measure_registry_against_daemon() {
    let Some(reg) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let r = &reg.addr;
    // And a bigger one: 48 MiB of new random layers on base:1.
    pair.source
        .build(
            "big:1",
            "base:1",
            &[partial_tests::layer_files(
                46,
                "big",
                4,
                12 << 20,
                partial_tests::Content::Random,
            )],
        )
        .unwrap();
    for name in ["base:1", "app:2", "big:1"] {
        let target = format!("{r}/{name}");
        pair.source.docker(&["tag", name, &target]).unwrap();
        pair.source.docker(&["push", &target]).unwrap();
    }
    let bin = std::env::var_os("PARTIAL_SAVE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| partial_tests::bin("partial-save"));
    let out = scene.dir.path().join("m.tgz");
    let time = |args: &[String]| {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            let mut cmd = std::process::Command::new(&bin);
            cmd.args(args)
                .args(["--force", "-o", out.to_str().unwrap()])
                .env_remove("DOCKER_HOST");
            partial_tests::cli::run_cmd(cmd).ok();
            best = best.min(t.elapsed().as_secs_f64());
        }
        best
    };
    let host = pair.source.host();
    for image in ["app:2", "big:1"] {
        let daemon = time(&[
            "-i".into(),
            image.into(),
            "-e".into(),
            "base:1".into(),
            "-H".into(),
            host.clone(),
        ]);
        let registry = time(&[
            "-i".into(),
            format!("docker://{r}/{image}"),
            "-e".into(),
            format!("docker://{r}/base:1"),
        ]);
        eprintln!(
            "{image} without base:1: daemon {daemon:.3} s, registry {registry:.3} s ({:.2}x)",
            registry / daemon
        );
    }
}
