//! The transfer report end to end (`partial-load report`, and `partial-save --report` where the
//! bundle is made, which must say the same): a base image with a Debian package
//! database, an update that upgrades, adds and removes packages, adds a setuid file and an
//! executable, and changes its config (with a hostile label and file name). Reported against the
//! air-gapped daemon holding the base (packages and config compared), without a daemon (says it
//! cannot compare), and refused for a tampered bundle or a wrong key with nothing written. The
//! HTML is rendered in headless chromium: its text must hold the package names and versions,
//! its screenshot must not be blank (`PARTIAL_WRITE_DOCS=1` copies it to docs/report.png). A delta
//! layer is rebuilt from the daemon's reference and walked; offline the report says it cannot.

use partial_tests::cli::{keygen, load, Export, Run};
use partial_tests::fixtures::TarBuilder;
use partial_tests::scenario::give_airgap;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::schema;

const BASE_STATUS: &str = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\
Architecture: amd64\n\nPackage: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\n\
Package: oldpkg\nStatus: install ok installed\nVersion: 0.9-1\n";
const NEW_STATUS: &str = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\
Architecture: amd64\n\nPackage: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\n\n\
Package: curl\nStatus: install ok installed\nVersion: 7.88.1-10+deb12u5\n";
const EVIL_LABEL: &str = "<script>alert(1)</script>";
const EVIL_FILE: &str = "<img src=x onerror=alert(2)>.txt";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `rbase:1` (imported: a dpkg status and a tool) and `rapp:2` (FROM it: one layer added from a
/// tar, and config changes) on the source daemon.
fn build_fixture(pair: &partial_tests::DaemonPair) {
    let base = TarBuilder::new()
        .dir("etc")
        .file("etc/os-release", b"ID=debian\nVERSION_ID=12\n")
        .dir("usr")
        .dir("usr/bin")
        .file("usr/bin/tool", b"old tool")
        .dir("var")
        .dir("var/lib")
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", BASE_STATUS.as_bytes())
        .finish();
    pair.source
        .import_tar(&base, "rbase:1")
        .expect("import rbase:1");
    // ADD of a tar keeps its modes (a COPY from the build context loses the setuid bit).
    let layer = TarBuilder::new()
        .dir("usr")
        .dir("usr/bin")
        .file_mode("usr/bin/su-helper", b"setuid helper", 0o4755)
        .file_mode("usr/bin/app", b"#!/bin/sh\necho app\n", 0o755)
        .file("usr/bin/tool", b"new tool")
        .dir("var")
        .dir("var/lib")
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", NEW_STATUS.as_bytes())
        .dir("srv")
        .file(&format!("srv/{EVIL_FILE}"), b"x")
        .finish();
    let dockerfile = format!(
        "FROM rbase:1\nADD l0.tar /\nLABEL org.example.evil=\"{}\"\nENV APP_MODE=prod\n\
         USER 1000\nEXPOSE 8080/tcp\nCMD [\"/usr/bin/app\"]\n",
        EVIL_LABEL.replace('"', "\\\"")
    );
    pair.source
        .build_dockerfile("rapp:2", &dockerfile, &[("l0.tar".to_string(), layer)])
        .expect("build rapp:2");
}

fn json_of(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("report --json is not JSON: {e}\n{}", run.stdout))
}

fn change<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|c| c["name"] == name)
}

fn paths(capped: &Value) -> Vec<String> {
    capped["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap().to_string())
        .collect()
}

/// The packages, files and config of the report compared against the base.
fn check_compared(r: &Value) {
    let img = &r["images"][0];
    assert_eq!(img["tags"][0], "rapp:2", "{img:#}");
    assert!(img["base"]["found"].as_str().unwrap().contains("rbase:1"));
    assert_eq!(
        img["platform"].as_str().map(|p| p.starts_with("linux/")),
        Some(true)
    );
    let p = &img["packages"];
    assert_eq!(
        (p["status"].as_str(), p["manager"].as_str()),
        (Some("compared"), Some("dpkg"))
    );
    let c = &p["changes"];
    let libc = change(c, "libc6").expect("libc6 upgraded");
    assert_eq!(
        (libc["old"].as_str(), libc["new"].as_str()),
        (Some("2.36-9"), Some("2.36-9+deb12u4"))
    );
    assert_eq!(change(c, "curl").unwrap()["old"], Value::Null);
    assert_eq!(change(c, "oldpkg").unwrap()["new"], Value::Null);
    assert!(
        change(c, "zlib1g").is_none(),
        "unchanged zlib1g listed: {c:#}"
    );
    let layer = img["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["carried"] == true)
        .unwrap();
    let f = &layer["files"];
    assert_eq!(
        paths(&f["setuid"]),
        ["usr/bin/su-helper"],
        "{:#}",
        f["files"]
    );
    let new_exec = paths(&f["new_executables"]);
    assert!(
        new_exec.contains(&"usr/bin/app".to_string()),
        "{new_exec:?}"
    );
    let kind_of = |path: &str| {
        f["files"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["path"] == path)
            .unwrap()["change"]
            .clone()
    };
    assert_eq!(kind_of("usr/bin/tool"), "changed");
    assert_eq!(kind_of("usr/bin/app"), "added");
    let cfg = &img["config"];
    assert_eq!(cfg["status"], "compared");
    let find = |field: &str, key: Option<&str>| {
        cfg["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["field"] == field && c["key"].as_str() == key)
            .cloned()
    };
    assert_eq!(
        find("labels", Some("org.example.evil")).unwrap()["new"],
        EVIL_LABEL
    );
    assert_eq!(find("env", Some("APP_MODE")).unwrap()["new"], "prod");
    assert_eq!(find("user", None).unwrap()["new"], "1000");
    assert!(find("exposed_ports", Some("8080/tcp")).is_some());
    assert!(r["bundle"]["signed_by"].is_string());
}

#[test]
fn report_shows_packages_files_and_config_and_renders_in_chromium() {
    let pair = partial_tests::require_daemons!();
    build_fixture(&pair);
    give_airgap(&pair, &["rbase:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let b = Export::new(pair.source.host(), &d, "rep.tgz")
        .images(&["rapp:2"])
        .base(&["-e", "rbase:1"])
        .bundle();
    let key = s(&d.join("team.pub"));
    let html = d.join("report.html");
    let airgap = pair.airgap.host();
    let run = load(&[
        "report",
        &s(&b),
        "--key",
        &key,
        "-H",
        &airgap,
        "--json",
        "-o",
        &s(&html),
    ])
    .ok();
    let r = json_of(&run);
    schema::assert_valid("report", "the report", &r);
    check_compared(&r);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "label not shown escaped"
    );
    assert!(
        !page.contains("<script") && !page.contains("<img src=x"),
        "hostile text unescaped"
    );

    check_offline_and_refusals(&b, &d, &key);
    render_in_chromium(&html, &d);
}

/// `partial-save --report` on the connected side: the same report as the far side's (packages,
/// files and config against the base, which the source daemon holds as the `-e` image), the
/// HTML page with the package changes; refused before anything is written when its file exists
/// or with `--dry-run`.
#[test]
fn partial_save_reports_what_partial_load_reports() {
    let pair = partial_tests::require_daemons!();
    build_fixture(&pair);
    give_airgap(&pair, &["rbase:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let saved = d.join("saved.json");
    let b = Export::new(pair.source.host(), &d, "rep.tgz")
        .images(&["rapp:2"])
        .base(&["-e", "rbase:1"])
        .args(&["--report", &s(&saved)])
        .bundle();
    let text = std::fs::read_to_string(&saved).expect("partial-save wrote no report");
    let near: Value = serde_json::from_str(&text).expect("the report is not JSON");
    schema::assert_valid("report", "partial-save's report", &near);
    check_compared(&near);
    assert!(near["tool"].as_str().unwrap().starts_with("partial-save "));

    let key = s(&d.join("team.pub"));
    let airgap = pair.airgap.host();
    let far = json_of(&load(&["report", &s(&b), "--key", &key, "-H", &airgap, "--json"]).ok());
    assert_eq!(near["images"], far["images"], "the two sides disagree");
    for k in [
        "manifest_sha256",
        "signed_by",
        "trusted_comment",
        "sequence",
    ] {
        assert_eq!(near["bundle"][k], far["bundle"][k], "bundle.{k}");
    }

    let page = d.join("saved.html");
    Export::new(pair.source.host(), &d, "page.tgz")
        .images(&["rapp:2"])
        .base(&["-e", "rbase:1"])
        .args(&["--report", &s(&page)])
        .bundle();
    let html = std::fs::read_to_string(&page).unwrap();
    for t in ["libc6", "2.36-9+deb12u4", "usr/bin/su-helper"] {
        assert!(html.contains(t), "the page lacks {t}");
    }

    // Refusals: an existing report file, and --dry-run; no bundle is started.
    let again = Export::new(pair.source.host(), &d, "again.tgz")
        .images(&["rapp:2"])
        .base(&["-e", "rbase:1"]);
    again
        .args(&["--report", &s(&page)])
        .run()
        .expect_code(2)
        .stderr_has("saved.html already exists");
    Export::new(pair.source.host(), &d, "dry.tgz")
        .images(&["rapp:2"])
        .args(&["--dry-run", "--report", &s(&d.join("dry.html"))])
        .run()
        .expect_code(2)
        .stderr_has("--dry-run");
    let left: Vec<String> = partial_tests::cli::files_in(&d)
        .into_iter()
        .filter(|f| f.starts_with("again") || f.starts_with("dry"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `partial-load report --containerd`: the base read from a containerd namespace (its config
/// and layer blobs from the content store) gives the same comparison as from a Docker daemon.
#[test]
fn report_compares_against_a_base_held_by_containerd() {
    let pair = partial_tests::require_daemons!();
    let Some(c) = partial_tests::require_containerd() else {
        return;
    };
    build_fixture(&pair);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let tar = pair.source.save(&["rbase:1"]).expect("docker save");
    c.import("k8s.io", &tar).expect("ctr images import");
    let b = Export::new(pair.source.host(), &d, "rep.tgz")
        .images(&["rapp:2"])
        .base(&["-e", "rbase:1"])
        .bundle();
    let key = s(&d.join("team.pub"));
    let socket = s(&c.socket());
    let args = ["report", &s(&b), "--key", &key, "--containerd", &socket];
    let r = json_of(&load(&[&args[..], &["--namespace", "k8s.io", "--json"]].concat()).ok());
    schema::assert_valid("report", "the report against containerd", &r);
    check_compared(&r);
    assert!(
        r["base_source"]["host"]
            .as_str()
            .is_some_and(|h| h.contains("containerd")),
        "{:#}",
        r["base_source"]
    );
    // Another namespace holds nothing: the report says it cannot compare.
    let r = json_of(&load(&[&args[..], &["--namespace", "empty", "--json"]].concat()).ok());
    assert_eq!(r["images"][0]["packages"]["status"], "base_not_available");
}

/// Without a daemon the report says it cannot compare; a tampered bundle, a wrong key and an
/// existing output are refused, writing nothing.
fn check_offline_and_refusals(b: &Path, d: &Path, key: &str) {
    let run = load(&["report", &s(b), "--key", key, "--offline", "--json"]).ok();
    let r = json_of(&run);
    schema::assert_valid("report", "the offline report", &r);
    let p = &r["images"][0]["packages"];
    assert_eq!(p["status"], "base_not_available");
    assert!(p["note"]
        .as_str()
        .unwrap()
        .contains("base not available: cannot compare"));
    assert_eq!(r["images"][0]["config"]["status"], "base_not_available");
    // Neither -o nor --json: the page on stdout.
    let run = load(&["report", &s(b), "--key", key, "--offline"]).ok();
    assert!(run.stdout.starts_with("<!DOCTYPE html>"));
    assert!(run.stdout.contains("base not available: cannot compare"));

    let out = d.join("refused.html");
    keygen(d, "other");
    let other = s(&d.join("other.pub"));
    load(&[
        "report",
        &s(b),
        "--key",
        &other,
        "--offline",
        "-o",
        &s(&out),
    ])
    .expect_code(3)
    .stderr_has("does not verify");
    assert!(!out.exists());
    // A byte of the bundle changed: refused by the hashes.
    let t = d.join("tampered");
    std::fs::create_dir(&t).unwrap();
    let tb = t.join("rep.tgz");
    let mut bytes = std::fs::read(b).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&tb, bytes).unwrap();
    for ext in [".manifest.json", ".manifest.json.minisig"] {
        std::fs::copy(format!("{}{ext}", s(b)), format!("{}{ext}", s(&tb))).unwrap();
    }
    load(&["report", &s(&tb), "--key", key, "--offline", "-o", &s(&out)]).expect_code(3);
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(&t).unwrap().count(),
        3,
        "a file was left behind"
    );
    // An existing output without --force.
    std::fs::write(&out, b"keep").unwrap();
    load(&["report", &s(b), "--key", key, "--offline", "-o", &s(&out)])
        .expect_code(2)
        .stderr_has("--force");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}

/// Headless chromium as the tests run it (root: no sandbox), with a fresh profile.
fn chromium(d: &Path, args: &[String]) -> Run {
    let profile = tempfile::tempdir_in(d).unwrap();
    let mut cmd = Command::new("timeout");
    cmd.args([
        "120",
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
    ])
    .args([
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
    ])
    .args(["--disable-sync", "--hide-scrollbars"])
    .arg(format!("--user-data-dir={}", s(profile.path())))
    .args(args);
    partial_tests::cli::run_cmd(cmd)
}

fn render_in_chromium(html: &Path, d: &Path) {
    if !partial_tests::require_tool("chromium") {
        return;
    }
    let url = format!("file://{}", s(html));
    let dom = chromium(d, &["--dump-dom".into(), url.clone()]).ok().stdout;
    for text in [
        "libc6",
        "2.36-9+deb12u4",
        "curl",
        "7.88.1-10+deb12u5",
        "oldpkg",
        "usr/bin/su-helper",
    ] {
        assert!(
            dom.contains(text),
            "the rendered page lacks {text:?}:\n{dom}"
        );
    }
    let shot = d.join("report.png");
    chromium(
        d,
        &[
            format!("--screenshot={}", s(&shot)),
            "--window-size=1200,1600".into(),
            url,
        ],
    )
    .ok();
    let colours = distinct_colours(&shot);
    assert!(colours > 8, "the screenshot is blank: {colours} colour(s)");
    if std::env::var("PARTIAL_WRITE_DOCS").as_deref() == Ok("1") {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/report.png");
        std::fs::copy(&shot, docs).unwrap();
    }
}

/// How many distinct colours the PNG at `path` has.
fn distinct_colours(path: &Path) -> usize {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().expect("a PNG of sensible size")];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let set: std::collections::HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    set.len()
}

/// `dapp:1` and `dapp:2` on `rbase:1`: the same 24 MiB tree, one file changed in the second.
fn build_delta_fixture(pair: &partial_tests::DaemonPair) {
    let base = TarBuilder::new()
        .dir("var")
        .dir("var/lib")
        .dir("var/lib/dpkg")
        .file("var/lib/dpkg/status", BASE_STATUS.as_bytes())
        .finish();
    pair.source
        .import_tar(&base, "rbase:1")
        .expect("import rbase:1");
    let tree = partial_tests::layer_files(9, "app", 96, 256 << 10, partial_tests::Content::Random);
    pair.source
        .build("dapp:1", "rbase:1", std::slice::from_ref(&tree))
        .unwrap();
    let mut changed = tree;
    changed[48].1 = b"one small file changed in the rebuild\n".to_vec();
    pair.source.build("dapp:2", "rbase:1", &[changed]).unwrap();
}

#[test]
fn a_delta_layer_is_walked_when_the_daemon_holds_its_reference() {
    let pair = partial_tests::require_daemons!();
    build_delta_fixture(&pair);
    give_airgap(&pair, &["dapp:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let b = Export::new(pair.source.host(), &d, "delta.tgz")
        .images(&["dapp:2"])
        .base(&["-e", "dapp:1"])
        .args(&["--delta"])
        .bundle();
    let key = s(&d.join("team.pub"));
    let airgap = pair.airgap.host();
    let r = json_of(&load(&["report", &s(&b), "--key", &key, "-H", &airgap, "--json"]).ok());
    schema::assert_valid("report", "the report of a delta bundle", &r);
    let img = &r["images"][0];
    assert_eq!(img["deltas"].as_array().unwrap().len(), 1, "{img:#}");
    assert_eq!(r["bundle"]["docker_loadable"], false);
    let layer = img["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["delta"] == true)
        .unwrap();
    let f = &layer["files"];
    // Rebuilt from the daemon's reference and walked: against the image's own base (rbase:1),
    // every file of the tree is new.
    let listed = f["files"]["items"].as_array().unwrap();
    assert!(
        listed
            .iter()
            .any(|i| i["path"] == "app/file048" && i["change"] == "added"),
        "{f:#}"
    );
    assert_eq!(
        (f["entries"].as_u64(), f["added"].as_u64()),
        (Some(97), Some(97)),
        "{f:#}"
    );
    // The package database is the base's: unchanged.
    assert_eq!(img["packages"]["status"], "unchanged");

    // Offline: the delta cannot be rebuilt; the report says so instead of listing files.
    let r = json_of(&load(&["report", &s(&b), "--key", &key, "--offline", "--json"]).ok());
    let layer = r["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["delta"] == true)
        .unwrap()
        .clone();
    assert_eq!(layer["files"], Value::Null);
    assert!(
        layer["note"].as_str().unwrap().contains("delta layer"),
        "{layer:#}"
    );
}
