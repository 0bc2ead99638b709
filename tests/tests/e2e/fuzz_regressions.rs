//! Replays the fuzzers' interesting inputs (`fuzz/regressions/<target>/`: crashes found and fixed,
//! plus each target's minimized corpus) through the same harness functions the cargo-fuzz targets
//! call (`fuzz/src/lib.rs`, compiled in here), so plain `cargo test --workspace` catches a
//! regression without nightly or libFuzzer. Every input must return (Ok or Err) without panicking,
//! within a time limit.

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Per input; the inputs are small, so anything near this is a hang (e.g. exponential work).
const LIMIT: Duration = Duration::from_secs(30);

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// Runs one input on its own thread: `Err` says how it failed (panic or hang).
fn run_bounded(target: &'static str, data: Vec<u8>) -> Result<(), &'static str> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let res = catch_unwind(AssertUnwindSafe(|| harness::run(target, &data)));
        let _ = tx.send(res);
    });
    match rx.recv_timeout(LIMIT) {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => panic!("unknown fuzz target {target}"),
        Ok(Err(_)) => Err("panicked"),
        Err(_) => Err("did not return in time"),
    }
}

fn replay(target: &'static str) {
    let dir = regressions_dir().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "{}: no regression inputs (the folder must hold the target's corpus)",
        dir.display()
    );
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        if let Err(how) = run_bounded(target, data) {
            failed.push(format!("{} {how}", f.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs failed: {failed:#?}",
        failed.len(),
        files.len()
    );
}

#[test]
fn every_target_has_a_regression_folder() {
    for t in harness::TARGETS {
        assert!(
            regressions_dir().join(t).is_dir(),
            "no fuzz/regressions/{t}/"
        );
    }
    // And no stray folder for a target that does not exist (e.g. after a rename).
    for e in std::fs::read_dir(regressions_dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            harness::TARGETS.contains(&name.as_str()),
            "fuzz/regressions/{name}/ matches no target"
        );
    }
}

#[test]
fn archive_scan() {
    replay("archive_scan");
}

#[test]
fn archive_filter() {
    replay("archive_filter");
}

#[test]
fn manifest_parse() {
    replay("manifest_parse");
}

#[test]
fn inventory_parse() {
    replay("inventory_parse");
}

#[test]
fn signature_verify() {
    replay("signature_verify");
}

#[test]
fn public_key_parse() {
    replay("public_key_parse");
}

#[test]
fn chart_discover() {
    replay("chart_discover");
}

#[test]
fn bundle_source() {
    replay("bundle_source");
}

#[test]
fn registry_response() {
    replay("registry_response");
}
