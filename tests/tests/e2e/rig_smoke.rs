//! Smoke test of the rig: an image built on the source daemon moves with a plain `docker save` /
//! `docker load` into the air-gapped daemon and keeps its image ID.

use partial_tests::{layer_files, require_daemons, Content};

#[test]
fn plain_save_load_moves_an_image_between_daemons() {
    let pair = require_daemons!();
    eprintln!(
        "daemon start times: source {:?}, airgap {:?}",
        pair.source.start_time(),
        pair.airgap.start_time()
    );
    let base = pair
        .source
        .import_rootfs("smoke-base:1", 1, &[4096, 20_000], Content::Random)
        .unwrap();
    let app = pair
        .source
        .build(
            "smoke-app:1",
            "smoke-base:1",
            &[layer_files(2, "app", 3, 10_000, Content::Compressible)],
        )
        .unwrap();
    assert_ne!(base, app);
    let diffs = pair.source.diff_ids("smoke-app:1").unwrap();
    assert_eq!(diffs.len(), 2, "import layer + one COPY layer");
    assert_eq!(diffs[0], pair.source.diff_ids("smoke-base:1").unwrap()[0]);

    assert!(!pair.airgap.has_image("smoke-app:1"));
    assert!(!pair.airgap.has_image(&app));
    assert!(
        pair.airgap.image_ids().unwrap().is_empty(),
        "a fresh daemon holds no image"
    );

    let tar = pair.source.save(&["smoke-app:1"]).unwrap();
    let out = pair.airgap.load(&tar).unwrap();
    assert!(out.contains("smoke-app:1"), "load output: {out}");

    assert_eq!(pair.airgap.image_id("smoke-app:1").unwrap(), app);
    assert_eq!(pair.source.image_id("smoke-app:1").unwrap(), app);
    assert_eq!(pair.airgap.diff_ids("smoke-app:1").unwrap(), diffs);
}

/// `into_parts` hands out both daemons; each still cleans up on its own.
#[test]
fn pair_into_parts_keeps_both_daemons_working() {
    let pair = require_daemons!();
    let (source, airgap) = pair.into_parts();
    assert!(source.ping() && airgap.ping());
    let dirs = [source.dir().to_path_buf(), airgap.dir().to_path_buf()];
    drop(source);
    assert!(airgap.ping());
    drop(airgap);
    assert!(dirs.iter().all(|d| !d.exists()));
}
