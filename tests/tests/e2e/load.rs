//! Loading end to end: `partial-load` on the air-gapped daemon. Good bundles (gzip, zstd, none,
//! split) load with the same image ID; a flipped byte, a truncated file, a wrong key, an edited
//! manifest and an unsigned bundle give exit 3 and leave the image absent; a missing base gives
//! exit 4 naming the base image; inventory → --have → load; rehydrate → load into an empty daemon.

use partial_tests::cli::{keygen, load, save};
use partial_tests::require_daemons;
use partial_tests::scenario::{
    build_standard, export_app as export, give_airgap, on_airgap as pl, standard_pair as setup,
};

#[test]
fn good_bundles_load_gzip_zstd_none_split() {
    let Some((pair, scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    for (name, extra) in [
        ("a.tgz", vec![]),
        ("a.tzst", vec!["--compression", "zstd"]),
        ("a.tar", vec!["--compression", "none"]),
        ("s.tgz", vec!["--split", "64K"]),
    ] {
        let b = export(&pair, d, name, &extra);
        let first = if name == "s.tgz" {
            d.join("s.tgz.001")
        } else {
            b
        };
        let r = pl(&pair, "load", &first, d, &["--json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        // What the run reports is the bundle's: its image and the key that signed it.
        assert_eq!(v["images"][0]["id"], scene.app2, "{name}: {v}");
        assert_eq!(v["images"][0]["tags"][0], "app:2", "{name}: {v}");
        assert!(
            v["signed_by"]["key_id"]
                .as_str()
                .is_some_and(|k| !k.is_empty()),
            "{name}: {v}"
        );
        assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2, "{name}");
        pair.airgap.remove_image("app:2").unwrap();
    }
}

#[test]
fn tampering_and_bad_signatures_exit_3_and_load_nothing() {
    let Some((pair, _scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    let bundle = export(&pair, d, "app.tgz", &[]);
    let manifest = d.join("app.tgz.manifest.json");
    let sig = d.join("app.tgz.manifest.json.minisig");
    let original = std::fs::read(&bundle).unwrap();
    let check_absent = |what: &str| {
        assert!(
            !pair.airgap.has_image("app:2"),
            "{what}: app:2 must not be loaded"
        );
        let ids = pair.airgap.image_ids().unwrap();
        assert_eq!(ids.len(), 1, "{what}: only the base may be there: {ids:?}");
    };

    // One flipped byte in the middle of the bundle.
    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    std::fs::write(&bundle, &flipped).unwrap();
    let r = pl(&pair, "load", &bundle, d, &[]).expect_code(3);
    assert!(r.stderr.contains("app.tgz"), "{}", r.stderr);
    check_absent("flipped byte");
    pl(&pair, "verify", &bundle, d, &["--offline"]).expect_code(3);

    // A truncated bundle.
    std::fs::write(&bundle, &original[..original.len() - 100]).unwrap();
    pl(&pair, "load", &bundle, d, &[])
        .expect_code(3)
        .stderr_has("truncated");
    check_absent("truncated");
    std::fs::write(&bundle, &original).unwrap();

    // A wrong key.
    keygen(d, "other");
    let r = load(&[
        "load".to_string(),
        bundle.to_string_lossy().into_owned(),
        "--key".into(),
        d.join("other.pub").to_string_lossy().into_owned(),
        "-H".into(),
        pair.airgap.host(),
    ])
    .expect_code(3);
    assert!(r.stderr.contains("other.pub"), "{}", r.stderr);
    check_absent("wrong key");

    // An edited manifest (a tag renamed), signature unchanged.
    let m = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, m.replace("\"app:2\"", "\"app:3\"")).unwrap();
    pl(&pair, "load", &bundle, d, &[])
        .expect_code(3)
        .stderr_has("signature");
    check_absent("edited manifest");
    std::fs::write(&manifest, &m).unwrap();

    // Unsigned: refused, unless --allow-unsigned (and then hashes still count).
    let sig_text = std::fs::read(&sig).unwrap();
    std::fs::remove_file(&sig).unwrap();
    pl(&pair, "load", &bundle, d, &[])
        .expect_code(3)
        .stderr_has("not signed");
    check_absent("unsigned");
    std::fs::write(&bundle, &flipped).unwrap();
    pl(&pair, "load", &bundle, d, &["--allow-unsigned"]).expect_code(3);
    check_absent("unsigned and flipped");
    std::fs::write(&bundle, &original).unwrap();
    std::fs::write(&sig, &sig_text).unwrap();

    // And the untouched bundle still loads.
    pl(&pair, "load", &bundle, d, &[]).ok();
    assert!(pair.airgap.has_image("app:2"));
}

#[test]
fn missing_base_exits_4_and_names_the_base_image() {
    let pair = require_daemons!();
    build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = export(&pair, d, "app.tgz", &[]);
    let r = pl(&pair, "load", &bundle, d, &[]).expect_code(4);
    assert!(r.stderr.contains("base:1"), "{}", r.stderr);
    assert!(!pair.airgap.has_image("app:2"));
    pl(&pair, "verify", &bundle, d, &[]).expect_code(4);
    // Offline verification has no daemon to ask: it passes.
    pl(&pair, "verify", &bundle, d, &["--offline"]).ok();
}

#[test]
fn inventory_feeds_the_next_export() {
    let Some((pair, scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    give_airgap(&pair, &["app:1"]);
    let inv = d.join("have.json");
    load(&[
        "inventory".to_string(),
        "-H".into(),
        pair.airgap.host(),
        "-o".into(),
        inv.to_string_lossy().into_owned(),
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    assert_eq!(v["schema"], "partial-load/inventory");
    assert_eq!(v["images"].as_array().unwrap().len(), 2);
    keygen(d, "team");
    let out = d.join("app.tgz");
    let r = save(&[
        "-H".to_string(),
        pair.source.host(),
        "-i".into(),
        "app:2".into(),
        "--have".into(),
        inv.to_string_lossy().into_owned(),
        "-o".into(),
        out.to_string_lossy().into_owned(),
        "--sign-key".into(),
        d.join("team.key").to_string_lossy().into_owned(),
        "--json".into(),
    ])
    .ok();
    let res: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        res["manifest"]["required_base"][0]["origin"]["kind"],
        "inventory"
    );
    pl(&pair, "load", &out, d, &[]).ok();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}

#[test]
fn rehydrated_archive_loads_into_an_empty_daemon() {
    let Some((pair, scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    let bundle = export(&pair, d, "app.tgz", &[]);
    let full = d.join("full.tar");
    pl(
        &pair,
        "rehydrate",
        &bundle,
        d,
        &["-o", &full.to_string_lossy()],
    )
    .ok();
    // Empty the source daemon, then load the complete archive there.
    // Children first: an image with dependent child images cannot be removed, so go round
    // until nothing is left (a few rounds at most for this scene).
    for _ in 0..5 {
        for id in pair.source.image_ids().unwrap() {
            let _ = pair.source.remove_image(&id);
        }
    }
    assert!(pair.source.image_ids().unwrap().is_empty());
    pair.source.load(&full).unwrap();
    assert_eq!(pair.source.image_id("app:2").unwrap(), scene.app2);
}
