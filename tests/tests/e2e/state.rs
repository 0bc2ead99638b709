//! Rollback protection end to end: rollback protection on a fresh host. A load whose state folder
//! does not exist yet creates it (mode 0700) before it takes the lock, and records its bundle
//! before it reports the load, so a replay is refused at once (exit 3); a load that cannot take
//! the lock or write its state loads nothing.

use partial_tests::cli::{keygen, load, save, Run};
use partial_tests::{require_daemons, Content, DaemonPair};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `partial-load load dir/b1.tgz --key dir/team.pub -H airgap --state STATE`.
fn load_b1(pair: &DaemonPair, d: &Path, state: &Path) -> Run {
    load(&[
        "load".to_string(),
        path_str(&d.join("b1.tgz")),
        "--key".into(),
        path_str(&d.join("team.pub")),
        "-H".into(),
        pair.airgap.host(),
        "--state".into(),
        path_str(state),
    ])
}

#[test]
fn a_fresh_state_folder_is_created_and_a_load_that_cannot_record_loads_nothing() {
    let pair = require_daemons!();
    pair.source
        .import_rootfs("base:1", 31, &[20_000, 4096], Content::Random)
        .expect("import base:1");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    save(&[
        "-H".to_string(),
        pair.source.host(),
        "-i".into(),
        "base:1".into(),
        "--ledger".into(),
        path_str(&d.join("site-a.json")),
        "-o".into(),
        path_str(&d.join("b1.tgz")),
        "--sign-key".into(),
        path_str(&d.join("team.key")),
    ])
    .ok();

    // The state's folder cannot be made (a file is in the way): nothing is loaded.
    std::fs::write(d.join("blocker"), b"").unwrap();
    load_b1(&pair, d, &d.join("blocker/state.json"))
        .expect_code(1)
        .stderr_has("blocker");
    assert!(
        !pair.airgap.has_image("base:1"),
        "a load that cannot write its state must load nothing"
    );

    // The lock file is a symbolic link: refused, nothing loaded, nothing made at its target.
    std::fs::create_dir(d.join("linked")).unwrap();
    std::os::unix::fs::symlink(d.join("target"), d.join("linked/state.json.lock")).unwrap();
    load_b1(&pair, d, &d.join("linked/state.json"))
        .expect_code(1)
        .stderr_has("symbolic link");
    assert!(!pair.airgap.has_image("base:1"));
    assert!(!d.join("target").exists());

    // A state folder that does not exist yet: created (0700), the bundle loaded and recorded.
    let state = d.join("fresh/sub/state.json");
    load_b1(&pair, d, &state)
        .ok()
        .stderr_has("recorded bundle 1 of site-a");
    assert!(pair.airgap.has_image("base:1"));
    let mode = std::fs::metadata(d.join("fresh/sub"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    assert!(state.is_file());

    // So a replay is refused at once, and loads nothing.
    pair.airgap.docker(&["rmi", "base:1"]).unwrap();
    load_b1(&pair, d, &state)
        .expect_code(3)
        .stderr_has("bundle 1 of site-a was already loaded on");
    assert!(!pair.airgap.has_image("base:1"));
}
