//! Pushing into a registry, transport: `partial-load push` over TLS into a private docker-registry
//! whose certificate is a leaf signed by a CA made in the test; without `--ca-file` it is exit 5
//! with the hint, with it the base image and then an image on top of it go up (gzip layers, the
//! source's config). Then the registry is killed (SIGKILL) while a big carried layer uploads:
//! exit 5 naming the registry and the layer, no manifest PUT in its access log, and once it is
//! restarted on the same storage its tag list lacks the image; a rerun completes.
//! One source daemon, no air-gapped one: the registry is read back with skopeo.

use partial_tests::cli::{export_signed as export, keygen, load, push_args, Run};
use partial_tests::{
    layer_files, require_daemon, require_registry, require_tool, Content, Daemon, DaemonOptions,
    RegistryOptions, RegistryServer,
};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// skopeo with the test's CA (`--cert-dir` takes a folder of `*.crt`); its stdout.
fn skopeo(certs: &Path, args: &[&str]) -> String {
    let cert_dir = s(certs);
    let out = Command::new("skopeo")
        .args([args[0], "--cert-dir", &cert_dir])
        .args(&args[1..])
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tags(certs: &Path, addr: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&skopeo(
        certs,
        &["list-tags", &format!("docker://{addr}/app")],
    ))
    .unwrap();
    v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Waits until the registry holds more than `bytes` of some blob upload in progress.
fn wait_for_upload(server: &RegistryServer, bytes: u64) {
    let uploads = server
        .dir()
        .join("data/docker/registry/v2/repositories/app/_uploads");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let biggest = std::fs::read_dir(&uploads)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::metadata(e.path().join("data")).ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0);
        if biggest > bytes {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no upload of more than {bytes} bytes began"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn push_over_tls_and_a_registry_dying_mid_push() {
    let Some(src) = require_daemon(DaemonOptions::labelled("source")) else {
        return;
    };
    if !require_tool("skopeo") {
        return;
    }
    let Some(mut server) = require_registry(RegistryOptions {
        tls: true,
        ..Default::default()
    }) else {
        return;
    };
    let addr = server.addr.clone();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = d.join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::copy(server.ca_cert.as_ref().unwrap(), certs.join("ca.crt")).unwrap();
    let ca = s(&certs.join("ca.crt"));
    keygen(d, "team");

    let app2 = build_images(&src);
    let full = export(&src.host(), d, "app1.tgz", "app:1", &[]);
    let on_top = export(&src.host(), d, "app2.tgz", "app:2", &["-e", "app:1"]);

    // Without the CA: exit 5 naming the registry, with the hint; nothing pushed.
    load(&push_args(&full, d, &addr, "state-noca.json", &[]))
        .expect_code(5)
        .stderr_has(&addr)
        .stderr_has("--ca-file");
    assert_eq!(server.count_requests("PUT", "/v2/"), 0);

    // With it: the whole app:1, then app:2 on top of it.
    load(&push_args(
        &full,
        d,
        &addr,
        "state-1.json",
        &["--ca-file", &ca],
    ))
    .ok();
    load(&push_args(
        &on_top,
        d,
        &addr,
        "state-2.json",
        &["--ca-file", &ca],
    ))
    .ok();
    check_pushed_layers(&certs, &addr, &app2, &on_top);

    // The registry dies while a big layer uploads.
    src.build(
        "app:3",
        "app:1",
        &[layer_files(44, "big", 1, 96 << 20, Content::Random)],
    )
    .unwrap();
    let big = export(&src.host(), d, "app3.tgz", "app:3", &["-e", "app:1"]);
    let big_layer = big_layer_of(&big);
    let died = push_while_the_registry_dies(&mut server, &big, d, &ca);
    died.expect_code(5)
        .stderr_has(&addr)
        .stderr_has(&big_layer)
        .stderr_has("no manifest was pushed");
    assert_eq!(
        server.count_requests("PUT", "/v2/app/manifests/"),
        2,
        "only app:1's and app:2's manifests were put"
    );

    // Restarted on the same storage: no app:3; a rerun completes.
    server.restart().unwrap();
    let before = tags(&certs, &addr);
    assert!(
        before.contains(&"2".to_string()) && !before.contains(&"3".to_string()),
        "{before:?}"
    );
    load(&push_args(
        &big,
        d,
        &addr,
        "state-3b.json",
        &["--ca-file", &ca],
    ))
    .ok();
    assert!(tags(&certs, &addr).contains(&"3".to_string()));
}

/// What the registry at `addr` holds as app:2 (`on_top`'s image, config `app2`): its config and
/// as many layers as the bundle, each gzip-compressed.
fn check_pushed_layers(certs: &Path, addr: &str, app2: &str, on_top: &Path) {
    let raw: serde_json::Value = serde_json::from_str(&skopeo(
        certs,
        &["inspect", "--raw", &format!("docker://{addr}/app:2")],
    ))
    .unwrap();
    assert_eq!(raw["config"]["digest"], app2, "{raw}");
    let layers = raw["layers"].as_array().unwrap();
    let bundled: serde_json::Value = serde_json::from_slice(
        &std::fs::read(format!("{}.manifest.json", on_top.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(
        layers.len(),
        bundled["images"][0]["layers"].as_array().unwrap().len(),
        "{raw}"
    );
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{raw}"
        );
    }
}

/// The diffID of the bundle `big`'s carried layer over 90 MiB.
fn big_layer_of(big: &Path) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.manifest.json", big.display())).unwrap())
            .unwrap();
    m["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["carried"] == true && l["size"].as_u64().unwrap() > 90 << 20)
        .expect("the big layer is carried")["diff_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `partial-load push` of `big`, the registry killed once 8 MiB of it arrived.
fn push_while_the_registry_dies(
    server: &mut RegistryServer,
    big: &Path,
    d: &Path,
    ca: &str,
) -> Run {
    let addr = server.addr.clone();
    let child = Command::new(partial_tests::bin("partial-load"))
        .args(push_args(big, d, &addr, "state-3.json", &["--ca-file", ca]))
        .env_remove("DOCKER_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_upload(server, 8 << 20);
    server.kill();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// base:1, app:1 on it and app:2 (compressible) on app:1, on `src`: app:2's ID.
fn build_images(src: &Daemon) -> String {
    src.import_rootfs("base:1", 41, &[200_000, 30_000], Content::Random)
        .unwrap();
    src.build(
        "app:1",
        "base:1",
        &[layer_files(42, "app", 2, 50_000, Content::Random)],
    )
    .unwrap();
    src.build(
        "app:2",
        "app:1",
        &[layer_files(43, "v2", 3, 40_000, Content::Compressible)],
    )
    .unwrap()
}
