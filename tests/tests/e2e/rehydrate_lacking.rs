//! A bundle lacking a carried layer, end to end: a bundle that lacks a layer it should carry (the
//! layer is not a base layer its manifest requires, so no daemon export can fill it) is refused by
//! `rehydrate` as a bundle that does not check out (exit 3), naming the layer and its entry — not
//! "the daemon's export of  did not contain …" with an empty image list.

use partial_tests::cli::{load, save};
use partial_tests::scenario::{build_standard, give_airgap};
use partial_tests::{require_daemons, sha256_digest};
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Rewrites the uncompressed bundle at `bundle` without the entry whose content has the sha256
/// `diff_id`, and its manifest with the new size and hashes. Returns the entry's name.
fn drop_layer(bundle: &Path, diff_id: &str) -> String {
    let data = std::fs::read(bundle).unwrap();
    let mut out = tar::Builder::new(Vec::new());
    let mut dropped = None;
    let mut archive = tar::Archive::new(&data[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if entry.header().entry_type().is_file() && sha256_digest(&content) == diff_id {
            dropped = Some(name);
            continue;
        }
        let mut header = entry.header().clone();
        out.append_data(&mut header, &name, &content[..]).unwrap();
    }
    let tar = out.into_inner().unwrap();
    std::fs::write(bundle, &tar).unwrap();

    let mpath = bundle.with_file_name(format!(
        "{}.manifest.json",
        bundle.file_name().unwrap().to_string_lossy()
    ));
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let (sha, b3, size) = (
        sha256_digest(&tar),
        blake3::hash(&tar).to_hex().to_string(),
        tar.len() as u64,
    );
    let file = json!({ "size": size, "sha256": sha, "blake3": b3 });
    for key in ["size", "sha256", "blake3"] {
        m["bundle"][key] = file[key].clone();
        m["bundle"]["volumes"][0][key] = file[key].clone();
    }
    m["bundle"]["tar_size"] = json!(size);
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    dropped.expect("the carried layer is in the bundle")
}

/// Saves `app:1` (leaving out base:1's layers when `exclude_base`) uncompressed, drops one
/// carried layer, and rehydrates it: refused with exit 3 naming the layer, its entry and the
/// bundle, nothing written.
fn lacking_layer_case(pair: &partial_tests::DaemonPair, exclude_base: bool) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = d.join("b.tar");
    let mut args: Vec<String> = vec!["-H".into(), pair.source.host(), "-i".into(), "app:1".into()];
    if exclude_base {
        args.extend(["-e".into(), "base:1".into()]);
    }
    args.extend([
        "--compression".into(),
        "none".into(),
        "-o".into(),
        path_str(&bundle),
        "--json".into(),
    ]);
    let r = save(&args).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let carried: Vec<&Value> = v["manifest"]["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["carried"] == true)
        .collect();
    let diff_id = carried.last().unwrap()["diff_id"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = drop_layer(&bundle, &diff_id);

    let r = load(&[
        "rehydrate".to_string(),
        path_str(&bundle),
        "--allow-unsigned".into(),
        "-H".into(),
        pair.airgap.host(),
        "-o".into(),
        path_str(&d.join("full.tar")),
    ]);
    assert!(!r.stderr.contains("export of  did"), "{}", r.stderr);
    let r = r
        .expect_code(3)
        .stderr_has(&diff_id)
        .stderr_has(&entry)
        .stderr_has("b.tar");
    assert!(!d.join("full.tar").exists(), "{}", r.stderr);
}

#[test]
fn a_bundle_lacking_a_carried_layer_is_refused_by_rehydrate_naming_the_layer() {
    let pair = require_daemons!();
    build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    // Every layer carried: no base layer to export at all.
    lacking_layer_case(&pair, false);
    // Base layers left out: the daemon exports them, but the lacking layer is not among them.
    lacking_layer_case(&pair, true);
}
