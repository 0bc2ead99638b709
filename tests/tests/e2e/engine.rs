//! The engine end to end: real `docker save` archives from the source daemon, filtered offline
//! against a real save of the base, load with a plain `docker load` on an air-gapped daemon
//! holding the base, with the same image ID — in the legacy layout and rewritten into the
//! Docker ≥ 25 layout. Also the live path on a daemon running on Shanghai time.

use partial_tests::cli::{files_in, save};
use partial_tests::layout::tar_listing;
use partial_tests::scenario::{build_standard, give_airgap};
use partial_tests::{legacy_to_oci_layout, require_daemons, require_daemons_with, DaemonOptions};

#[test]
fn offline_legacy_save_filtered_against_base_archive_loads() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.tar");
    let base = dir.path().join("base.tar");
    pair.source.save_to(&["app:2"], &full).unwrap();
    pair.source.save_to(&["base:1"], &base).unwrap();
    let out = dir.path().join("app.tar");
    save(&[
        "--from-archive".as_ref(),
        full.as_os_str(),
        "--exclude-archive".as_ref(),
        base.as_os_str(),
        "--compression".as_ref(),
        "none".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .ok();
    // The base layer is left out: the bundle is far smaller than the full save.
    let full_len = std::fs::metadata(&full).unwrap().len();
    let out_len = std::fs::metadata(&out).unwrap().len();
    assert!(
        out_len < full_len - 300_000,
        "bundle {out_len} vs full {full_len}"
    );
    // The bundle has the Docker >= 25 shape: only the two app:2 layers are carried, as blobs
    // named by their diffIDs (uncompressed in the save), the base layer is absent.
    let listing = tar_listing(&out).unwrap();
    let diffs = pair.source.diff_ids("app:2").unwrap();
    let has = |d: &str| listing.contains(&format!("blobs/sha256/{}", &d[7..]));
    assert!(!has(&diffs[0]), "the base layer is left out: {listing:?}");
    assert!(has(&diffs[1]) && has(&diffs[2]), "{listing:?}");
    assert!(
        !listing.iter().any(|n| n.ends_with("layer.tar")),
        "{listing:?}"
    );

    give_airgap(&pair, &["base:1"]);
    pair.airgap.load(&out).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}

#[test]
fn offline_oci_layout_filtered_against_base_archive_loads() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let full_legacy = dir.path().join("full-legacy.tar");
    let base_legacy = dir.path().join("base-legacy.tar");
    pair.source
        .save_to(&["app:1", "app:2"], &full_legacy)
        .unwrap();
    pair.source.save_to(&["base:1"], &base_legacy).unwrap();
    let full = dir.path().join("full.tar");
    let base = dir.path().join("base.tar");
    legacy_to_oci_layout(&full_legacy, &full).unwrap();
    legacy_to_oci_layout(&base_legacy, &base).unwrap();
    let out = dir.path().join("apps.tgz");
    save(&[
        "--from-archive".as_ref(),
        full.as_os_str(),
        "--exclude-archive".as_ref(),
        base.as_os_str(),
        "-i".as_ref(),
        "app:2".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .ok();
    // Only app:2 is in the output (selection), without the base layer.
    let listing = tar_listing(&out).unwrap();
    let blobs: Vec<_> = listing
        .iter()
        .filter(|n| n.starts_with("blobs/sha256/"))
        .collect();
    let base_diff = pair.source.diff_ids("base:1").unwrap()[0].clone();
    let base_hex = base_diff.trim_start_matches("sha256:");
    assert!(
        !blobs.iter().any(|b| b.ends_with(base_hex)),
        "the base layer must be left out: {listing:?}"
    );
    for d in pair.source.diff_ids("app:2").unwrap().iter().skip(1) {
        let hex = d.trim_start_matches("sha256:");
        assert!(
            blobs.iter().any(|b| b.ends_with(hex)),
            "app:2 layer {d} missing"
        );
    }
    let app1_top = pair.source.diff_ids("app:1").unwrap()[1].clone();
    assert!(
        !blobs
            .iter()
            .any(|b| b.ends_with(app1_top.trim_start_matches("sha256:"))),
        "app:1 was not selected, its layer must not be there"
    );
    give_airgap(&pair, &["base:1"]);
    pair.airgap.load(&out).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    assert!(!pair.airgap.has_image("app:1"));
}

#[test]
fn live_export_from_daemon_on_shanghai_time_identifies_every_layer() {
    let Some(pair) = partial_tests::require_daemons_with(
        DaemonOptions::labelled("source").env("TZ", "Asia/Shanghai"),
        DaemonOptions::labelled("airgap"),
    ) else {
        return;
    };
    let scene = build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.tar");
    let plan = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:2",
        "-e",
        "app:1",
        "--dry-run",
        "--json",
    ])
    .ok();
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let layers = plan["images"][0]["layers"].as_array().unwrap();
    let decisions: Vec<&str> = layers
        .iter()
        .map(|l| l["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["at_destination", "carried", "carried"]);
    assert!(plan["warnings"].as_array().unwrap().is_empty(), "{plan}");
    assert_eq!(
        files_in(dir.path()),
        Vec::<String>::new(),
        "--dry-run writes nothing"
    );

    save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:2",
        "-e",
        "app:1",
        "--compression",
        "none",
        "-o",
        &out.to_string_lossy(),
    ])
    .ok();
    give_airgap(&pair, &["app:1"]);
    pair.airgap.load(&out).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    let _ = require_daemons_with;
}

#[test]
fn offline_bad_input_names_the_problem_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all, not even close").unwrap();
    let out = dir.path().join("out.tgz");
    let r = save(&[
        "--from-archive".as_ref(),
        junk.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("junk.tar"), "{}", r.stderr);
    assert_eq!(files_in(dir.path()), vec!["junk.tar".to_string()]);
    let missing = dir.path().join("missing.tar");
    let r = save(&[
        "--from-archive".as_ref(),
        missing.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("missing.tar"), "{}", r.stderr);
    assert_eq!(files_in(dir.path()), vec!["junk.tar".to_string()]);
}

#[test]
fn offline_containerd_layout_filtered_against_base_archive_loads() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let full_legacy = dir.path().join("full-legacy.tar");
    let base_legacy = dir.path().join("base-legacy.tar");
    pair.source.save_to(&["app:2"], &full_legacy).unwrap();
    pair.source.save_to(&["base:1"], &base_legacy).unwrap();
    // The containerd image store saves compressed layer blobs whose names are not diffIDs.
    let full = dir.path().join("full.tar");
    let base = dir.path().join("base.tar");
    partial_tests::layout::legacy_to_containerd_layout(&full_legacy, &full).unwrap();
    partial_tests::layout::legacy_to_containerd_layout(&base_legacy, &base).unwrap();
    let out = dir.path().join("app.tar");
    let r = save(&[
        "--from-archive".as_ref(),
        full.as_os_str(),
        "--exclude-archive".as_ref(),
        base.as_os_str(),
        "--compression".as_ref(),
        "none".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
    ])
    .ok();
    let res: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(res["manifest"]["bundle"]["layout"], "containerd");
    let layers = res["manifest"]["images"][0]["layers"].as_array().unwrap();
    let carried: Vec<bool> = layers
        .iter()
        .map(|l| l["carried"].as_bool().unwrap())
        .collect();
    assert_eq!(carried, [false, true, true]);
    // Exactly one layer blob fewer than the full archive: the base layer's compressed blob.
    let full_blobs = tar_listing(&full)
        .unwrap()
        .iter()
        .filter(|n| n.starts_with("blobs/"))
        .count();
    let out_blobs = tar_listing(&out)
        .unwrap()
        .iter()
        .filter(|n| n.starts_with("blobs/"))
        .count();
    assert_eq!(out_blobs + 1, full_blobs);
    give_airgap(&pair, &["base:1"]);
    pair.airgap.load(&out).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}

#[test]
fn live_export_against_a_base_archive_loads() {
    // The have-set is one, whatever the source: a base archive works with a live daemon too.
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.tar");
    pair.source.save_to(&["base:1"], &base).unwrap();
    let out = dir.path().join("app.tgz");
    let r = save(&[
        "-H".as_ref(),
        pair.source.host().as_ref(),
        "-i".as_ref(),
        "app:2".as_ref(),
        "--exclude-archive".as_ref(),
        base.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--json".as_ref(),
    ])
    .ok();
    let res: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let layers = res["manifest"]["images"][0]["layers"].as_array().unwrap();
    let carried: Vec<bool> = layers
        .iter()
        .map(|l| l["carried"].as_bool().unwrap())
        .collect();
    assert_eq!(carried, [false, true, true]);
    // Each layer records its blob; carried ones are in the bundle under their digest.
    let listing = tar_listing(&out).unwrap();
    for l in layers {
        let digest = l["blob"]["digest"].as_str().unwrap();
        let present = listing.contains(&format!("blobs/sha256/{}", &digest[7..]));
        assert_eq!(
            present,
            l["carried"].as_bool().unwrap(),
            "{l} / {listing:?}"
        );
    }
    give_airgap(&pair, &["base:1"]);
    pair.airgap.load(&out).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    assert_eq!(
        pair.airgap.diff_ids("app:2").unwrap(),
        pair.source.diff_ids("app:2").unwrap()
    );
}
