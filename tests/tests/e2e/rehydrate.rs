//! `partial-load rehydrate` on bundles of every shape against a real daemon: bundles filtered
//! offline from Docker ≥ 25 archives (uncompressed blobs named by diffID) and from containerd
//! store archives (gzip blobs named by their own digest) are completed with the air-gapped
//! daemon's own base layer, and the complete archive loads into a daemon that holds nothing.

use partial_tests::cli::{keygen, load, save};
use partial_tests::layout::{legacy_to_containerd_layout, legacy_to_oci_layout, tar_listing};
use partial_tests::scenario::{build_standard, give_airgap};
use partial_tests::DaemonPair;
use std::path::{Path, PathBuf};

/// Removes every image of the source daemon (children first, so a few rounds).
fn empty_source(pair: &DaemonPair) {
    for _ in 0..5 {
        for id in pair.source.image_ids().unwrap() {
            let _ = pair.source.remove_image(&id);
        }
    }
    assert!(pair.source.image_ids().unwrap().is_empty());
}

/// The `Layers` entries of every image in an archive's `manifest.json`.
fn manifest_layers(archive: &Path) -> Vec<String> {
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("manifest.json") {
            let v: serde_json::Value = serde_json::from_reader(&mut entry).unwrap();
            return v
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|i| i["Layers"].as_array().unwrap().clone())
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
        }
    }
    panic!("{} has no manifest.json", archive.display());
}

/// `partial-save --from-archive full --exclude-archive base -o dir/name`, signed.
fn bundle_from(dir: &Path, full: &Path, base: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    save(&[
        "--from-archive".as_ref(),
        full.as_os_str(),
        "--exclude-archive".as_ref(),
        base.as_os_str(),
        "-i".as_ref(),
        "app:2".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--sign-key".as_ref(),
        dir.join("team.key").as_os_str(),
    ])
    .ok();
    out
}

#[test]
fn bundles_of_every_shape_rehydrate_into_archives_that_load_anywhere() {
    let Some(pair) = partial_tests::require_daemons() else {
        return;
    };
    let scene = build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let (full_legacy, base_legacy) = (d.join("full-legacy.tar"), d.join("base-legacy.tar"));
    pair.source.save_to(&["app:2"], &full_legacy).unwrap();
    pair.source.save_to(&["base:1"], &base_legacy).unwrap();

    type Rewrite = fn(&Path, &Path) -> anyhow::Result<Vec<String>>;
    let shapes: [(&str, Option<Rewrite>); 3] = [
        ("legacy", None),
        ("oci", Some(legacy_to_oci_layout)),
        ("containerd", Some(legacy_to_containerd_layout)),
    ];
    let mut complete = Vec::new();
    for (shape, rewrite) in shapes {
        let (full, base) = match rewrite {
            None => (full_legacy.clone(), base_legacy.clone()),
            Some(f) => {
                let (full, base) = (
                    d.join(format!("full-{shape}.tar")),
                    d.join(format!("base-{shape}.tar")),
                );
                f(&full_legacy, &full).unwrap();
                f(&base_legacy, &base).unwrap();
                (full, base)
            }
        };
        let bundle = bundle_from(d, &full, &base, &format!("{shape}.tgz"));
        let out = d.join(format!("complete-{shape}.tar"));
        load(&[
            "rehydrate".as_ref(),
            bundle.as_os_str(),
            "--key".as_ref(),
            d.join("team.pub").as_os_str(),
            "-H".as_ref(),
            pair.airgap.host().as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
        .ok();
        // Bundles are Docker >= 25 shaped whatever the input: the complete archive must hold
        // every layer its manifest.json lists (the base layer added back).
        let got = tar_listing(&out).unwrap();
        let layers = manifest_layers(&out);
        assert_eq!(layers.len(), 3, "{shape}: {layers:?}");
        for name in &layers {
            assert!(got.contains(name), "{shape}: {name} missing from {got:?}");
        }
        complete.push((shape, out));
    }

    empty_source(&pair);
    for (shape, archive) in complete {
        pair.source
            .load(&archive)
            .unwrap_or_else(|e| panic!("{shape}: the complete archive does not load: {e:#}"));
        assert_eq!(
            pair.source.image_id("app:2").unwrap(),
            scene.app2,
            "{shape}"
        );
        empty_source(&pair);
    }
}
