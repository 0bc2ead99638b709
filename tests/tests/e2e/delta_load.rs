//! The importer side of layer deltas against real daemons, on a delta bundle made here
//! from a real `partial-save` bundle: its app layer replaced by a delta (`partial_delta_encode::encode`) against
//! the previous app layer, the manifest updated as the exporter writes it (version 2, the layer's
//! `delta`, the reference chain a required base, `docker_loadable: false`) and signed again.
//! Checked: the reference missing (exit 4, before anything is read), `verify` with and without a
//! daemon, a tampered delta (exit 3, nothing loaded), `load` (the source's image ID), `rehydrate`
//! into an archive a plain `docker load` takes, and `push` refusing the bundle.

use partial_common::manifest::BundleManifest;
use partial_common::output::hashing::FileDigests;
use partial_common::Digest;
use partial_delta_encode::{encode, ChunkIndex, EncodeOptions, Encoded};
use partial_tests::bundle_check::manifest_path;
use partial_tests::cli::{keygen, load, save};
use partial_tests::scenario::give_airgap;
use partial_tests::{layer_files, Content, DaemonPair};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// Files of the app layer; `version` changes one small file only.
fn app_files(version: u8) -> partial_tests::LayerFiles {
    let mut files = layer_files(31, "app", 4, 200_000, Content::Random);
    files.push(("app/VERSION".into(), vec![b'0' + version; 64]));
    files
}

/// base:1, app:1 and app:2 (app:2 = app:1 with one small file changed) on the source.
fn scene(pair: &DaemonPair) -> String {
    let s = &pair.source;
    s.import_rootfs("base:1", 41, &[200_000, 4096], Content::Random)
        .unwrap();
    s.build("app:1", "base:1", &[app_files(1)]).unwrap();
    s.build("app:2", "base:1", &[app_files(2)]).unwrap()
}

/// Every regular file of a tar: name → data.
fn files_of(tar_bytes: &[u8]) -> Vec<(String, tar::Header, Vec<u8>)> {
    let mut a = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, header, data));
    }
    out
}

/// The layer of diffID `diff` from a `docker save` archive (any layout, uncompressed).
fn layer_from_save(archive: &Path, diff: &str) -> Vec<u8> {
    let bytes = std::fs::read(archive).unwrap();
    files_of(&bytes)
        .into_iter()
        .map(|(_, _, d)| d)
        .find(|d| Digest::of_bytes(d).to_string() == diff)
        .unwrap_or_else(|| panic!("{diff} not in {}", archive.display()))
}

/// The bundle tar of `entries` with the entry `new_name` replaced by `delta`, named by its digest.
fn tar_with_delta(
    entries: Vec<(String, tar::Header, Vec<u8>)>,
    new_name: &str,
    delta: &[u8],
    delta_digest: &Digest,
) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, mut h, data) in entries {
        if name == new_name {
            let mut h = tar::Header::new_ustar();
            h.set_size(delta.len() as u64);
            h.set_mode(0o644);
            b.append_data(
                &mut h,
                format!("blobs/sha256/{}", delta_digest.hex()),
                delta,
            )
            .unwrap();
        } else {
            b.append_data(&mut h, &name, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// The manifest `m` describes `tar_bytes`, written as `out`, as its one volume.
fn set_bundle_file(m: &mut Value, out: &Path, tar_bytes: &[u8]) {
    let digests = FileDigests::of_bytes(tar_bytes);
    let name = out.file_name().unwrap().to_str().unwrap();
    let bundle = &mut m["bundle"];
    bundle["name"] = json!(name);
    bundle["size"] = json!(digests.size);
    bundle["sha256"] = json!(digests.sha256.to_string());
    bundle["blake3"] = json!(digests.blake3);
    bundle["tar_size"] = json!(digests.size);
    bundle["volumes"] = json!([{
        "name": name,
        "size": digests.size,
        "sha256": digests.sha256.to_string(),
        "blake3": digests.blake3,
    }]);
}

/// Parts of the delta bundle.
struct Made {
    bundle: PathBuf,
    delta_len: usize,
}

/// Turns the plain bundle `plain` (uncompressed, app:2 with -e app:1) into the delta bundle
/// `out`: its top layer a delta against app:1's. With `tamper`, a byte of the delta is changed
/// after its digest was recorded (the bundle's own hashes and signature cover the changed bytes,
/// so only the delta checks can notice).
fn make_delta_bundle(pair: &DaemonPair, d: &Path, plain: &Path, out: &Path, tamper: bool) -> Made {
    let app1 = pair.source.diff_ids("app:1").unwrap();
    let app2 = pair.source.diff_ids("app:2").unwrap();
    let (old_diff, new_diff) = (app1.last().unwrap().clone(), app2.last().unwrap().clone());
    let save1 = d.join("app1.tar");
    pair.source.save_to(&["app:1"], &save1).unwrap();
    let old = layer_from_save(&save1, &old_diff);
    let entries = files_of(&std::fs::read(plain).unwrap());
    let new_name = format!("blobs/sha256/{}", new_diff.trim_start_matches("sha256:"));
    let new = entries
        .iter()
        .find(|(n, _, _)| *n == new_name)
        .map(|(_, _, data)| data.clone())
        .expect("the plain bundle carries the app layer as a blob named by its diffID");
    let index = ChunkIndex::build(&old[..]).unwrap();
    let mut delta = Vec::new();
    let r = encode(
        &index,
        &mut Cursor::new(&old),
        &new[..],
        &mut delta,
        &EncodeOptions::default(),
    )
    .unwrap();
    assert!(matches!(r, Encoded::Delta(_)), "{r:?}");
    let delta_digest = Digest::of_bytes(&delta);
    let delta_len = delta.len();
    if tamper {
        let n = delta.len();
        delta[n - 10] ^= 0x55;
    }
    let tar_bytes = tar_with_delta(entries, &new_name, &delta, &delta_digest);
    std::fs::write(out, &tar_bytes).unwrap();
    // The manifest.
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(manifest_path(plain)).unwrap()).unwrap();
    let chains = partial_common::digest::chain_ids(
        &app1
            .iter()
            .map(|s| Digest::parse(s).unwrap())
            .collect::<Vec<_>>(),
    );
    let ref_chain = chains.last().unwrap().to_string();
    let origin = m["required_base"][0]["origin"].clone();
    m["version"] = json!(2);
    m["docker_loadable"] = json!(false);
    let layers = m["images"][0]["layers"].as_array_mut().unwrap();
    let top = layers.last_mut().unwrap();
    assert_eq!(top["diff_id"], json!(new_diff));
    top["delta"] = json!({
        "encoding": "chunks",
        "digest": delta_digest.to_string(),
        "size": delta_len,
        "reference_diff_id": old_diff,
        "reference_chain_id": ref_chain,
        "reference_origin": origin,
        "target_size": new.len(),
    });
    m["required_base"].as_array_mut().unwrap().push(json!({
        "chain_id": ref_chain,
        "diff_id": old_diff,
        "origin": origin,
    }));
    set_bundle_file(&mut m, out, &tar_bytes);
    let mut bytes = serde_json::to_vec_pretty(&m).unwrap();
    bytes.push(b'\n');
    let manifest = BundleManifest::parse(&bytes, "delta manifest").unwrap();
    assert_eq!(manifest.deltas().len(), 1);
    let mpath = manifest_path(out);
    std::fs::write(&mpath, &bytes).unwrap();
    let sk = partial_common::sign::load_secret_key(&d.join("team.key"), None).unwrap();
    let sig = partial_common::sign::sign_bytes(&sk, &bytes, &manifest.trusted_comment()).unwrap();
    std::fs::write(partial_common::output::naming::signature_path(&mpath), sig).unwrap();
    Made {
        bundle: out.to_path_buf(),
        delta_len,
    }
}

fn pl(args: &[&std::ffi::OsStr]) -> partial_tests::cli::Run {
    load(args)
}

/// Tags and IDs of the daemon's images, to show nothing was loaded.
fn images_of(daemon: &partial_tests::Daemon) -> BTreeMap<String, String> {
    let out = daemon
        .docker(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ])
        .unwrap();
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The scene, a signed plain bundle of app:2 against app:1, and the good and tampered delta
/// bundles made from it; returns app:2's image ID.
fn prepare(pair: &DaemonPair, d: &Path) -> (String, Made, Made) {
    let app2_id = scene(pair);
    keygen(d, "team");
    let plain = d.join("plain.tar");
    save(&[
        "-H".as_ref(),
        pair.source.host().as_ref(),
        "-i".as_ref(),
        "app:2".as_ref(),
        "-e".as_ref(),
        "app:1".as_ref(),
        "--compression".as_ref(),
        "none".as_ref(),
        "-o".as_ref(),
        plain.as_os_str(),
        "--sign-key".as_ref(),
        d.join("team.key").as_os_str(),
    ])
    .ok();
    let good = make_delta_bundle(pair, d, &plain, &d.join("delta.tar"), false);
    let bad = make_delta_bundle(pair, d, &plain, &d.join("tampered.tar"), true);
    assert!(good.delta_len < 50_000, "delta of {} bytes", good.delta_len);
    (app2_id, good, bad)
}

#[test]
fn delta_bundles_load_verify_and_rehydrate_with_every_check() {
    let Some(pair) = partial_tests::require_daemons() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (app2_id, good, bad) = prepare(&pair, d);
    let key = d.join("team.pub");
    let host = pair.airgap.host();
    let with = |cmd: &str, bundle: &Path| -> Vec<std::ffi::OsString> {
        vec![
            cmd.into(),
            bundle.into(),
            "--key".into(),
            key.clone().into(),
            "-H".into(),
            host.clone().into(),
        ]
    };
    let run = |args: Vec<std::ffi::OsString>| {
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        pl(&refs)
    };

    // Offline: hashes only, and it says so.
    run(vec![
        "verify".into(),
        good.bundle.clone().into(),
        "--key".into(),
        key.clone().into(),
        "--offline".into(),
    ])
    .ok()
    .stderr_has("1 delta layer(s) were not rebuilt");

    // The air gap holds the base only: the delta's reference is missing, exit 4.
    give_airgap(&pair, &["base:1"]);
    run(with("load", &good.bundle))
        .expect_code(4)
        .stderr_has("the reference of delta layer");
    give_airgap(&pair, &["app:1"]);

    // With the reference: verify rebuilds the layer.
    let mut v = with("verify", &good.bundle);
    v.push("--json".into());
    let out = run(v).ok();
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["deltas_rebuilt"], json!(1), "{}", out.stdout);
    run(with("verify", &bad.bundle)).expect_code(3);

    // A tampered delta aborts the load: exit 3, nothing new on the daemon.
    let before = images_of(&pair.airgap);
    run(with("load", &bad.bundle))
        .expect_code(3)
        .stderr_has("nothing was loaded");
    assert_eq!(images_of(&pair.airgap), before);
    assert!(!pair.airgap.has_image("app:2"));

    // The good bundle loads, with the source's image ID.
    run(with("load", &good.bundle)).ok();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), app2_id);

    // Rehydrate: a plain archive that a plain `docker load` takes, on a daemon without app:2.
    let full = d.join("full.tar");
    let mut r = with("rehydrate", &good.bundle);
    r.extend(["-o".into(), full.clone().into()]);
    run(r).ok();
    pair.airgap.remove_image("app:2").unwrap();
    pair.airgap.load(&full).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), app2_id);

    // Push refuses a delta bundle before contacting anything.
    run(vec![
        "push".into(),
        good.bundle.clone().into(),
        "--key".into(),
        key.clone().into(),
        "--to".into(),
        "127.0.0.1:9/mirror".into(),
    ])
    .expect_code(2)
    .stderr_has("delta layer");
}
