//! Bundle files by the name given: the file named on the command line is the bundle (or
//! its first volume), further volumes are found beside it by that name plus the split suffix, and
//! the names recorded in the manifest are informative. So the three files renamed together verify
//! and load (also split volumes), and a corrupted bundle named on the command line is refused
//! (exit 3, nothing loaded) even when an intact bundle with the recorded name lies beside it.

use partial_tests::cli::{keygen, load, save, Run};
use partial_tests::scenario::{build_standard, give_airgap};
use partial_tests::{require_daemons, DaemonPair};
use std::path::{Path, PathBuf};

/// `partial-load CMD BUNDLE --key team.pub -H airgap`.
fn pl(pair: &DaemonPair, cmd: &str, bundle: &Path, key: &Path) -> Run {
    load(&[
        cmd.as_ref(),
        bundle.as_os_str(),
        "--key".as_ref(),
        key.as_os_str(),
        "-H".as_ref(),
        pair.airgap.host().as_ref(),
    ])
}

/// Copies `from` (a file name in `src`) to `to` in `dst`.
fn copy(src: &Path, from: &str, dst: &Path, to: &str) -> PathBuf {
    std::fs::create_dir_all(dst).unwrap();
    std::fs::copy(src.join(from), dst.join(to)).unwrap();
    dst.join(to)
}

/// Copies a bundle's sidecars (`FROM.manifest.json`, `FROM.manifest.json.minisig`) under `TO`.
fn copy_sidecars(src: &Path, from: &str, dst: &Path, to: &str) {
    for suffix in [".manifest.json", ".manifest.json.minisig"] {
        copy(
            src,
            &format!("{from}{suffix}"),
            dst,
            &format!("{to}{suffix}"),
        );
    }
}

#[test]
fn renamed_bundles_load_and_the_named_file_is_the_one_read() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let key = d.join("team.pub");
    let export = |name: &str, extra: &[&str]| {
        let mut a: Vec<String> = vec![
            "-H".into(),
            pair.source.host(),
            "-i".into(),
            "app:2".into(),
            "-e".into(),
            "base:1".into(),
            "-o".into(),
            d.join(name).to_string_lossy().into_owned(),
            "--sign-key".into(),
            d.join("team.key").to_string_lossy().into_owned(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        save(&a).ok();
    };
    export("app.tgz", &[]);
    export("split.tgz", &["--split", "100K"]);
    let only_base = |what: &str| {
        assert!(
            !pair.airgap.has_image("app:2"),
            "{what}: app:2 must not be loaded"
        );
        let ids = pair.airgap.image_ids().unwrap();
        assert_eq!(ids.len(), 1, "{what}: only the base may be there: {ids:?}");
    };

    // The three files renamed together, alone in a folder: verify and load work, and the tool
    // says that the recorded name differs.
    let renamed = d.join("renamed");
    let bundle = copy(d, "app.tgz", &renamed, "carried.tgz");
    copy_sidecars(d, "app.tgz", &renamed, "carried.tgz");
    pl(&pair, "verify", &bundle, &key).ok();
    let r = pl(&pair, "load", &bundle, &key).ok();
    assert!(
        format!("{}{}", r.stdout, r.stderr).contains("app.tgz"),
        "the recorded name app.tgz differs from carried.tgz and is not mentioned:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    pair.airgap.remove_image("app:2").unwrap();

    // Split volumes renamed together: found by the given name plus the suffix.
    let renamed_split = d.join("renamed-split");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("split.tgz.manifest.json")).unwrap()).unwrap();
    let volumes = m["bundle"]["volumes"].as_array().unwrap().len();
    assert!(volumes >= 2, "{m}");
    for i in 1..=volumes {
        copy(
            d,
            &format!("split.tgz.{i:03}"),
            &renamed_split,
            &format!("moved.tgz.{i:03}"),
        );
    }
    copy_sidecars(d, "split.tgz", &renamed_split, "moved.tgz");
    pl(&pair, "load", &renamed_split.join("moved.tgz.001"), &key).ok();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    pair.airgap.remove_image("app:2").unwrap();

    // A corrupted copy named on the command line, the intact bundle with the recorded name (and
    // its sidecars) beside it: the named file is the one checked, so exit 3 and nothing loaded.
    let beside = d.join("beside");
    copy(d, "app.tgz", &beside, "app.tgz");
    copy_sidecars(d, "app.tgz", &beside, "app.tgz");
    let bad = copy(d, "app.tgz", &beside, "b.tgz");
    copy_sidecars(d, "app.tgz", &beside, "b.tgz");
    let mut data = std::fs::read(&bad).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x01;
    std::fs::write(&bad, data).unwrap();
    let r = pl(&pair, "load", &bad, &key).expect_code(3);
    assert!(
        r.stderr.contains("b.tgz"),
        "the error must name b.tgz:\n{}",
        r.stderr
    );
    only_base("corrupted b.tgz beside an intact app.tgz");
    pl(&pair, "verify", &bad, &key).expect_code(3);
}
