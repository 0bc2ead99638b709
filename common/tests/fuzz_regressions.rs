//! Replays the fuzzers' interesting inputs (`fuzz/regressions/<target>/`: crashes found and fixed,
//! plus each target's minimized corpus) through the same harness functions the cargo-fuzz targets
//! call (`fuzz/src/lib.rs`, compiled in here), so plain `cargo test --workspace` catches a
//! regression without nightly or libFuzzer. Every input must return (Ok or Err) without panicking.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

fn replay(target: &str) {
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
        let res = catch_unwind(AssertUnwindSafe(|| harness::run(target, &data)));
        match res {
            Ok(true) => {}
            Ok(false) => panic!("unknown fuzz target {target}"),
            Err(_) => failed.push(f.display().to_string()),
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs panicked: {failed:#?}",
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
