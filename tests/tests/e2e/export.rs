//! Exporting end to end: `partial-save` against a live source daemon; bundles load with a plain
//! `docker load` on the air-gapped daemon holding the base; signatures check with the stock
//! `minisign`; split volumes, zstd and no compression; errors leave nothing behind.

use partial_tests::cli::{files_in, keygen, save};
use partial_tests::scenario::{build_standard, give_airgap};
use partial_tests::{layer_files, require_daemons, require_tool, Content};
use std::path::Path;
use std::process::Command;

#[test]
fn signed_gzip_bundle_loads_with_plain_docker_load_and_minisign_verifies() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "team");
    let out = dir.path().join("app.tgz");
    let r = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:2",
        "-e",
        "base:1",
        "-o",
        &out.to_string_lossy(),
        "--sign-key",
        &dir.path().join("team.key").to_string_lossy(),
        "--json",
    ])
    .ok();
    let result: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let m = &result["manifest"];
    assert_eq!(m["schema"], "partial-save/bundle-manifest");
    assert_eq!(m["images"][0]["id"], scene.app2.as_str());
    assert_eq!(m["images"][0]["tags"][0], "app:2");
    assert_eq!(m["required_base"].as_array().unwrap().len(), 1);
    assert_eq!(m["required_base"][0]["origin"]["name"], "base:1");
    assert_eq!(
        m["source"]["daemon"]["version"]
            .as_str()
            .map(|v| !v.is_empty()),
        Some(true)
    );
    let manifest_file = dir.path().join("app.tgz.manifest.json");
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_file).unwrap()).unwrap();
    assert_eq!(&on_disk, m);
    assert_eq!(
        m["bundle"]["size"].as_u64().unwrap(),
        std::fs::metadata(&out).unwrap().len()
    );
    // The bundle from a live daemon never contradicts its manifest either.
    let facts = partial_tests::bundle_check::check_bundle(&out).unwrap();
    assert_eq!(facts.images[0].carried, vec![false, true, true]);

    if require_tool("minisign") {
        let o = Command::new("minisign")
            .arg("-Vm")
            .arg(&manifest_file)
            .arg("-p")
            .arg(dir.path().join("team.pub"))
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "minisign refused: {text}");
        assert!(
            text.contains("bundle=app.tgz"),
            "trusted comment binds the bundle: {text}"
        );
    }

    give_airgap(&pair, &["base:1"]);
    pair.airgap.load(&out).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}

#[test]
fn several_images_sharing_layers_and_a_repeated_layer() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    // rep:1 repeats one layer: the same files copied at positions 1 and 3 (same diffID).
    let a = layer_files(31, "a", 2, 30_000, Content::Random);
    let b = layer_files(32, "b", 2, 30_000, Content::Random);
    let rep = pair
        .source
        .build("rep:1", "base:1", &[a.clone(), b, a])
        .unwrap();
    let diffs = pair.source.diff_ids("rep:1").unwrap();
    assert_eq!(diffs[1], diffs[3], "the fixture must repeat a diffID");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("all.tar");
    save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:1",
        "-i",
        "app:2",
        "-i",
        "rep:1",
        "-e",
        "base:1",
        "--compression",
        "none",
        "-o",
        &out.to_string_lossy(),
    ])
    .ok();
    let listing = partial_tests::layout::tar_listing(&out).unwrap();
    // The base's layers are left out; the repeated layer travels once.
    let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
    for base_diff in pair.source.diff_ids("base:1").unwrap() {
        assert!(
            !listing.contains(&blob(&base_diff)),
            "base layer {base_diff} was carried: {listing:?}"
        );
    }
    let repeated = listing.iter().filter(|n| **n == blob(&diffs[1])).count();
    assert_eq!(repeated, 1, "{listing:?}");
    give_airgap(&pair, &["base:1"]);
    let loaded = pair.airgap.load(&out).unwrap();
    assert!(loaded.contains("rep:1"), "{loaded} / {listing:?}");
    assert_eq!(pair.airgap.image_id("app:1").unwrap(), scene.app1);
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    assert_eq!(pair.airgap.image_id("rep:1").unwrap(), rep);
}

#[test]
fn shared_diff_id_at_a_new_position_is_carried_even_when_the_destination_has_it_elsewhere() {
    let pair = require_daemons!();
    build_standard(&pair);
    let a = layer_files(41, "a", 2, 40_000, Content::Random);
    let b = layer_files(42, "b", 2, 40_000, Content::Random);
    // The destination has base2 = base + A; mix = base + B + A has A's diffID at a new chain.
    pair.source
        .build("base2:1", "base:1", std::slice::from_ref(&a))
        .unwrap();
    let mix = pair.source.build("mix:1", "base:1", &[b, a]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Export mix together with base2 (which the destination has): in the legacy layout one of
    // them holds A's file and the other a symlink to it, whatever the name order.
    let out = dir.path().join("mix.tar");
    let r = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "mix:1",
        "-i",
        "base2:1",
        "-e",
        "base2:1",
        "--compression",
        "none",
        "-o",
        &out.to_string_lossy(),
        "--dry-run",
        "--json",
    ])
    .ok();
    let plan: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let mix_plan = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == mix.as_str())
        .unwrap()
        .clone();
    let d: Vec<&str> = mix_plan["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["decision"].as_str().unwrap())
        .collect();
    assert_eq!(d, ["at_destination", "carried", "carried"]);
    save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "mix:1",
        "-i",
        "base2:1",
        "-e",
        "base2:1",
        "--compression",
        "none",
        "-o",
        &out.to_string_lossy(),
    ])
    .ok();
    give_airgap(&pair, &["base2:1"]);
    pair.airgap.load(&out).unwrap();
    assert_eq!(pair.airgap.image_id("mix:1").unwrap(), mix);
}

#[test]
fn unknown_image_is_an_error_naming_it_and_writes_nothing() {
    let pair = require_daemons!();
    build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.tgz");
    for args in [
        vec!["-i", "nope:404"],
        vec!["-i", "app:2", "-e", "nope:404"],
    ] {
        let mut a: Vec<String> = vec!["-H".into(), pair.source.host()];
        a.extend(args.iter().map(|s| s.to_string()));
        a.extend(["-o".to_string(), out.to_string_lossy().into_owned()]);
        let r = save(&a);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("nope:404"), "{}", r.stderr);
        assert_eq!(files_in(dir.path()), Vec::<String>::new());
    }
    // An unreachable daemon is exit code 5.
    let r = save(&[
        "-H",
        "unix:///nonexistent/docker.sock",
        "-i",
        "app:2",
        "-o",
        &out.to_string_lossy(),
    ]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

/// The volumes `vols` of a bundle split at 100K, in `dir`, each named and sized as the manifest
/// says: their bytes concatenated.
fn join_volumes(dir: &Path, vols: &[serde_json::Value]) -> Vec<u8> {
    let mut all = Vec::new();
    for (i, v) in vols.iter().enumerate() {
        assert_eq!(v["name"], format!("split.tgz.{:03}", i + 1));
        let data = std::fs::read(dir.join(v["name"].as_str().unwrap())).unwrap();
        assert!(data.len() as u64 <= 100 * 1024);
        assert_eq!(data.len() as u64, v["size"].as_u64().unwrap());
        all.extend(data);
    }
    all
}

#[test]
fn split_volumes_zstd_and_none_all_load() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let host = pair.source.host();

    // Split gzip volumes: concatenated, they load.
    let out = dir.path().join("split.tgz");
    save(&[
        "-H",
        &host,
        "-i",
        "app:2",
        "-e",
        "base:1",
        "--split",
        "100K",
        "-o",
        &out.to_string_lossy(),
    ])
    .ok();
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("split.tgz.manifest.json")).unwrap())
            .unwrap();
    let vols = m["bundle"]["volumes"].as_array().unwrap();
    assert!(vols.len() >= 2, "{m}");
    let joined = dir.path().join("joined.tgz");
    let all = join_volumes(dir.path(), vols);
    assert!(!out.exists(), "with --split there is no unsplit file");
    std::fs::write(&joined, &all).unwrap();
    pair.airgap.load(&joined).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    pair.airgap.remove_image("app:2").unwrap();

    // zstd: decompressed with the stock tool, it loads.
    let z = dir.path().join("app.tzst");
    save(&[
        "-H",
        &host,
        "-i",
        "app:2",
        "-e",
        "base:1",
        "--compression",
        "zstd",
        "-o",
        &z.to_string_lossy(),
    ])
    .ok();
    assert_eq!(&std::fs::read(&z).unwrap()[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    if require_tool("zstd") {
        let plain = dir.path().join("app-from-zstd.tar");
        let st = Command::new("zstd")
            .args(["-q", "-d", "-o"])
            .arg(&plain)
            .arg(&z)
            .status()
            .unwrap();
        assert!(st.success());
        pair.airgap.load(&plain).unwrap();
        assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
        pair.airgap.remove_image("app:2").unwrap();
    }

    // none: a plain tar.
    let n = dir.path().join("app.tar");
    save(&[
        "-H",
        &host,
        "-i",
        "app:2",
        "-e",
        "base:1",
        "--compression",
        "none",
        "-o",
        &n.to_string_lossy(),
    ])
    .ok();
    assert_eq!(&std::fs::read(&n).unwrap()[257..262], b"ustar");
    pair.airgap.load(&n).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}
