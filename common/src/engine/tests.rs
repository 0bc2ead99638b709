//! Tests of the [`Engine`] on archives built in the test, for the three `docker save` layouts,
//! with an index (archive files) and without (a one-pass daemon stream, where legacy folders are
//! identified from their `json` and unknown blobs are spooled). Every run checks that the bundle
//! and the plan agree (see [`check_bundle`]).

use super::*;
use crate::archive::{scan, ArchiveError, ArchiveIndex};
use crate::bundle_writer::blob_path;
use crate::digest::Digest;
use crate::plan::{Decision, Layout, Plan};
use crate::testutil::archive::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

pub(super) struct World {
    pub base: TestImage,
    pub app: TestImage,
    pub other: TestImage,
    pub y: TestImage,
}

pub(super) fn world() -> World {
    let a = layer("a.txt", b"layer a");
    let b = layer("b.txt", b"layer b");
    let c = layer("c.txt", b"layer c, repeated");
    World {
        base: image(&["base:1"], &[&a]),
        app: image(&["app:1"], &[&a, &b, &c, &c]),
        other: image(&["other:1"], &[&b, &a]),
        y: image(&["y:1"], &[&c]),
    }
}

pub(super) type Out = BTreeMap<String, Kind>;

/// The wanted image as a source gives it: from the scan (archive files) or, without an index,
/// from its diffIDs only (what a daemon's inspect gives).
pub(super) fn wanted(ix: Option<&ArchiveIndex>, t: &TestImage) -> Image {
    match ix {
        Some(ix) => {
            let found = ix
                .images
                .iter()
                .find(|i| i.source.id == t.id)
                .expect("image in the index");
            let mut img = ix.model(found);
            img.tags = t.tags.clone();
            img
        }
        None => Image::from_diff_ids(t.id.clone(), t.tags.clone(), &t.diffs()),
    }
}

pub(super) fn run(
    archive: &[u8],
    images: &[&TestImage],
    have: HaveSet,
    indexed: bool,
) -> Result<(Plan, Out, Vec<u8>), ArchiveError> {
    let idx = if indexed { Some(scan(archive)?) } else { None };
    let want = images.iter().map(|t| wanted(idx.as_ref(), t)).collect();
    let mut e = Engine::new(Vec::new(), want, have);
    e.add_input(archive, "test.tar", idx)?;
    let (plan, out) = e.finish()?;
    check_bundle(&out, &plan);
    Ok((plan, read_tar(&out), out))
}

/// Runs with and without an index; both must give the same bundle and plan.
pub(super) fn both(archive: &[u8], images: &[&TestImage], have: &HaveSet) -> (Plan, Out, Vec<u8>) {
    let (p1, o1, raw) = run(archive, images, have.clone(), true).unwrap();
    let (p2, o2, _) = run(archive, images, have.clone(), false).unwrap();
    assert_eq!(
        o1.keys().collect::<Vec<_>>(),
        o2.keys().collect::<Vec<_>>(),
        "index and no-index outputs differ"
    );
    let strip = |p: &Plan| -> Vec<Vec<(bool, Digest)>> {
        p.images
            .iter()
            .map(|i| {
                i.layers
                    .iter()
                    .map(|l| (l.decision.is_carried(), l.chain_id.clone()))
                    .collect()
            })
            .collect()
    };
    assert_eq!(strip(&p1), strip(&p2));
    assert_eq!(
        (p1.blobs_carried, p1.bytes_carried, p1.blobs_left_out),
        (p2.blobs_carried, p2.bytes_carried, p2.blobs_left_out)
    );
    (p1, o1, raw)
}

pub(super) fn both_err(archive: &[u8], images: &[&TestImage], have: &HaveSet) -> (String, String) {
    let e1 = run(archive, images, have.clone(), true).expect_err("indexed run must fail");
    let e2 = run(archive, images, have.clone(), false).expect_err("streamed run must fail");
    (e1.to_string(), e2.to_string())
}

fn sha(data: &[u8]) -> Digest {
    Digest::of_bytes(data)
}

fn uncompressed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::codec::decompress(std::io::Cursor::new(data.to_vec()))
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Image ID → the layer descriptors of its OCI manifest (through `index.json`).
fn oci_layers_by_image(file: &dyn Fn(&str) -> Option<Vec<u8>>) -> BTreeMap<String, Vec<Value>> {
    let ix: Value = serde_json::from_slice(&file("index.json").unwrap()).unwrap();
    let mut oci_layers = BTreeMap::new();
    for d in ix["manifests"].as_array().unwrap() {
        let m: Value = serde_json::from_slice(
            &file(&format!(
                "blobs/sha256/{}",
                Digest::parse(d["digest"].as_str().unwrap()).unwrap().hex()
            ))
            .expect("OCI manifest present"),
        )
        .unwrap();
        let id = m["config"]["digest"].as_str().unwrap().to_string();
        oci_layers.insert(id, m["layers"].as_array().unwrap().clone());
    }
    oci_layers
}

/// A carried layer's file `data` at `path`: named by its digest, holding its diffID, never zstd,
/// and described alike by the plan (`l`) and the OCI manifest (`desc`).
fn check_carried_layer(path: &str, data: &[u8], l: &crate::plan::PlannedLayer, desc: &Value) {
    assert_eq!(format!("blobs/sha256/{}", sha(data).hex()), path);
    assert_eq!(sha(&uncompressed(data)), l.diff_id, "{path}");
    // Docker < 23 cannot load zstd layers: they are written decompressed.
    let c = crate::codec::detect(data);
    assert_ne!(c, crate::codec::Compression::Zstd, "{path} is zstd");
    // The plan, manifest.json and the OCI manifest say what was written.
    let b = l.blob.as_ref().expect("a carried layer has its blob");
    assert_eq!(b.digest, sha(data), "{path}");
    assert_eq!(b.compression, c, "{path}");
    assert_eq!(b.size, Some(data.len() as u64), "{path}");
    assert_eq!(desc["digest"].as_str(), Some(b.digest.as_str()), "{path}");
    assert_eq!(desc["size"].as_u64(), Some(data.len() as u64), "{path}");
    assert_eq!(desc["mediaType"].as_str(), Some(b.media_type.as_str()));
}

/// No blob of the bundle holds the left-out layer `l`.
fn check_left_out_layer(out: &BTreeMap<String, Kind>, l: &crate::plan::PlannedLayer) {
    for (n, k) in out {
        if let (Kind::File(d), true) = (k, n.starts_with("blobs/")) {
            if d.first() != Some(&b'{') {
                assert_ne!(
                    sha(&uncompressed(d)),
                    l.diff_id,
                    "{n} holds a left-out layer"
                );
            }
        }
    }
}

/// The bundle never contradicts the plan: `manifest.json` lists every image of the plan with
/// its config (hashing to the image ID) and one path per layer position; each carried position's
/// file is present, named by its digest, and holds its diffID; a layer whose every position is
/// left out is absent; nothing but configs, manifests and carried layers is in `blobs/`; the
/// bundle scans back to the plan's images.
pub(super) fn check_bundle(bundle: &[u8], plan: &Plan) {
    let out = read_tar(bundle);
    let file = |n: &str| match out.get(n) {
        Some(Kind::File(d)) => Some(d.clone()),
        _ => None,
    };
    for n in ["manifest.json", "index.json", "oci-layout"] {
        assert!(file(n).is_some(), "{n} missing: {:?}", out.keys());
    }
    let m: Vec<Value> = serde_json::from_slice(&file("manifest.json").unwrap()).unwrap();
    assert_eq!(m.len(), plan.images.len());
    let carried_diffs: BTreeSet<&Digest> = plan
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .filter(|l| l.decision.is_carried())
        .map(|l| &l.diff_id)
        .collect();
    let oci_layers = oci_layers_by_image(&file);
    let mut expected_blobs: BTreeSet<String> = BTreeSet::new();
    for (img, item) in plan.images.iter().zip(&m) {
        let descs = &oci_layers[img.id.as_str()];
        assert_eq!(descs.len(), img.layers.len());
        let cfg = item["Config"].as_str().unwrap();
        assert_eq!(cfg, blob_path(&img.id));
        assert_eq!(sha(&file(cfg).expect("config present")), img.id);
        expected_blobs.insert(cfg.to_string());
        let tags: Vec<String> = serde_json::from_value(item["RepoTags"].clone()).unwrap();
        assert_eq!(tags, img.tags);
        let layers = item["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), img.layers.len());
        for ((l, path), desc) in img.layers.iter().zip(layers).zip(descs) {
            let path = path.as_str().unwrap();
            let data = file(path);
            if l.decision.is_carried() || carried_diffs.contains(&l.diff_id) {
                let data = data.unwrap_or_else(|| panic!("carried layer {path} missing"));
                check_carried_layer(path, &data, l, desc);
                expected_blobs.insert(path.to_string());
            } else {
                assert!(data.is_none(), "left-out layer {path} is in the bundle");
                check_left_out_layer(&out, l);
            }
        }
    }
    for (n, k) in &out {
        if let (Kind::File(d), true) = (k, n.starts_with("blobs/")) {
            if d.first() != Some(&b'{') {
                assert!(expected_blobs.contains(n), "unexpected blob {n}");
            }
            assert_eq!(n, &format!("blobs/sha256/{}", sha(d).hex()));
        }
    }
    let back = scan(bundle).unwrap();
    let ids: Vec<&Digest> = back.images.iter().map(|i| &i.source.id).collect();
    let want: Vec<&Digest> = plan.images.iter().map(|i| &i.id).collect();
    assert_eq!(ids, want);
    assert_eq!(plan.output_tar_bytes, bundle.len() as u64);
}

pub(super) fn decisions(plan: &Plan, img: usize) -> Vec<bool> {
    plan.images[img]
        .layers
        .iter()
        .map(|l| l.decision.is_carried())
        .collect()
}

/// The layer blobs (not JSON) of a bundle.
pub(super) fn layer_blobs(out: &Out) -> BTreeSet<String> {
    out.iter()
        .filter(|(n, k)| {
            n.starts_with("blobs/") && matches!(k, Kind::File(d) if d.first() != Some(&b'{'))
        })
        .map(|(n, _)| n.clone())
        .collect()
}

fn blob(d: &Digest) -> String {
    blob_path(d)
}

// ---------- legacy layout ----------

#[test]
fn legacy_selection_and_base_at_destination() {
    let w = world();
    let built = legacy(&[&w.base, &w.app, &w.other], "1970-01-01T00:00:00Z");
    // The daemon's way: diff a first saved in base's folder; app's bottom links to it.
    assert!(built.is_symlink(&built.layer_entries[1][0]));
    assert!(built.is_symlink(&built.layer_entries[1][3]));
    let (plan, out, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    // b and c once each (c is repeated), a left out.
    let want: BTreeSet<String> = [&w.app.layers[1], &w.app.layers[2]]
        .iter()
        .map(|l| blob(&l.diff))
        .collect();
    assert_eq!(layer_blobs(&out), want);
    let Kind::File(m) = &out["manifest.json"] else {
        panic!()
    };
    let m: Value = serde_json::from_slice(m).unwrap();
    assert_eq!(m.as_array().unwrap().len(), 1);
    assert_eq!(m[0]["RepoTags"][0], "app:1");
    let Kind::File(r) = &out["repositories"] else {
        panic!()
    };
    let r: Value = serde_json::from_slice(r).unwrap();
    assert_eq!(r, serde_json::json!({"app": {"1": w.app.id.hex()}}));
    assert_eq!(plan.layout, Layout::Oci);
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert!(matches!(
        &plan.images[0].layers[0].decision,
        Decision::AtDestination { origin } if origin.image() == "base:1"
    ));
    assert_eq!((plan.blobs_carried, plan.blobs_left_out), (2, 1));
    assert_eq!(
        plan.images[0].layers[1].entry.as_deref(),
        Some(&built.layer_entries[1][1][..])
    );
}

#[test]
fn legacy_same_diff_at_other_position_is_carried_once() {
    let w = world();
    let built = legacy(&[&w.base, &w.app, &w.other], "1970-01-01T00:00:00Z");
    // other = [b, a]: a at position 1 is a chain the destination lacks, so a is carried.
    let (plan, out, _) = both(&built.tar(), &[&w.app, &w.other], &have(&[&w.base]));
    assert!(layer_blobs(&out).contains(&blob(&w.base.layers[0].diff)));
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert_eq!(decisions(&plan, 1), vec![true, true]);
    assert_eq!((plan.blobs_carried, plan.blobs_left_out), (3, 0));
    assert!(
        !out.contains_key(&blob(&w.base.id)),
        "base's config is not exported"
    );
}

#[test]
fn legacy_excluded_chain_sharing_a_diff_id() {
    let w = world();
    let built = legacy(&[&w.base, &w.app, &w.other], "1970-01-01T00:00:00Z");
    // The destination has app (so chain [a,b]); other's bottom b is another chain: carried.
    let (plan, out, _) = both(&built.tar(), &[&w.other], &have(&[&w.app]));
    let ix = scan(&built.tar()[..]).unwrap();
    assert_eq!(
        ix.find("other:1").unwrap().config_entry,
        built.config_entries[2]
    );
    assert_eq!(decisions(&plan, 0), vec![true, true]);
    assert_eq!(layer_blobs(&out).len(), 2);
    assert!(plan.warnings.is_empty());
}

#[test]
fn legacy_repeated_layer_link_target_at_destination() {
    let w = world();
    let built = legacy(&[&w.y, &w.app], "1970-01-01T00:00:00Z");
    assert!(built.is_symlink(&built.layer_entries[1][2]));
    // The destination has y (chain c alone); app's c positions are other chains: carried.
    let (plan, out, _) = both(&built.tar(), &[&w.y, &w.app], &have(&[&w.y]));
    assert_eq!(decisions(&plan, 0), vec![false]);
    assert_eq!(decisions(&plan, 1), vec![true, true, true, true]);
    assert!(layer_blobs(&out).contains(&blob(&w.y.layers[0].diff)));
}

#[test]
fn legacy_repeated_layer_link_at_destination_target_carried() {
    let w = world();
    let built = legacy(&[&w.y, &w.app], "1970-01-01T00:00:00Z");
    let (plan, out, _) = both(&built.tar(), &[&w.y, &w.app], &have(&[&w.app]));
    assert_eq!(decisions(&plan, 0), vec![true]);
    assert_eq!(decisions(&plan, 1), vec![false; 4]);
    // c is carried for y; app's config stays, so docker load finds the image.
    assert_eq!(layer_blobs(&out), [blob(&w.y.layers[0].diff)].into());
    assert!(out.contains_key(&blob(&w.app.id)));
}

#[test]
fn legacy_shanghai_daemon_folders_are_identified() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T08:00:00+08:00");
    let utc = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    assert_ne!(built.layer_entries[1][1], utc.layer_entries[1][1]);
    let (plan, out, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(plan.warnings.is_empty());
    assert!(!layer_blobs(&out).contains(&blob(&w.base.layers[0].diff)));
}

#[test]
fn legacy_unidentified_folder_is_spooled_and_decided_exactly() {
    let w = world();
    let mut built = legacy(&[&w.app], "1970-01-01T00:00:00Z");
    // A daemon with an unknown scheme: the json no longer hashes to the folder name.
    for pos in [0, 1] {
        let json_name = format!("{}/json", built.folder(0, pos));
        let Kind::File(j) = built
            .entries
            .iter()
            .find(|e| e.name == json_name)
            .unwrap()
            .kind
            .clone()
        else {
            panic!()
        };
        let j = String::from_utf8(j)
            .unwrap()
            .replace("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.5Z");
        built.set_data(&json_name, j.into_bytes());
    }
    let partial = image(&["part:1"], &[&w.app.layers[0]]);
    let (plan, out, _) = both(&built.tar(), &[&w.app], &have(&[&partial]));
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert!(!layer_blobs(&out).contains(&blob(&w.app.layers[0].diff)));
    assert!(layer_blobs(&out).contains(&blob(&w.app.layers[1].diff)));
    assert!(plan.warnings.is_empty());
}

#[test]
fn legacy_long_names_gnu_and_pax_are_read() {
    let w = world();
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let f = built.folder(1, 1);
    built.entries.push(TEntry::file(
        &format!("{f}/{}", "g".repeat(120)),
        b"gnu".to_vec(),
    ));
    built.entries.push(TEntry {
        name: format!("{f}/{}", "p".repeat(130)),
        kind: Kind::File(b"pax".to_vec()),
        style: NameStyle::Pax,
    });
    built.entries.sort_by(|a, b| a.name.cmp(&b.name));
    both(&built.tar(), &[&w.app], &have(&[&w.base]));
}

#[test]
fn truncated_streams_fail() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let no_end = write_tar(&built.entries, End::Missing);
    let (e1, e2) = both_err(&no_end, &[&w.app], &have(&[&w.base]));
    assert!(
        e1.contains("truncated") && e2.contains("truncated"),
        "{e1} / {e2}"
    );
    assert!(e2.contains("repositories"), "names the last entry: {e2}");
    let full = built.tar();
    let cut = &full[..full.len() / 2 + 100];
    let e = run(cut, &[&w.app], have(&[&w.base]), false).err().unwrap();
    assert!(matches!(e, ArchiveError::Truncated(_)), "{e}");
}

#[test]
fn trailing_error_json_fails() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let bad = write_tar(&built.entries, End::ErrorJson);
    let (e1, e2) = both_err(&bad, &[&w.app], &have(&[&w.base]));
    for e in [e1, e2] {
        assert!(e.contains("no such file"), "{e}");
        assert!(e.contains("repositories"), "{e}");
    }
}

#[test]
fn legacy_diff_id_mismatch_fails() {
    let w = world();
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let victim = built.layer_entries[1][1].clone();
    built.set_data(&victim, layer("b.txt", b"tampered").data);
    let e = run(&built.tar(), &[&w.app], have(&[&w.base]), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("digest mismatch") && e.contains(&victim), "{e}");
    // With an index the scan already fails on the folder, or the engine on the content.
    assert!(run(&built.tar(), &[&w.app], have(&[&w.base]), true).is_err());
}

#[test]
fn missing_metadata_fails() {
    let w = world();
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    built.remove("manifest.json");
    let e = run(&built.tar(), &[&w.app], have(&[&w.base]), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("neither manifest.json nor index.json"), "{e}");
    assert!(e.contains("test.tar"), "{e}");
    assert!(scan(&built.tar()[..]).is_err());
}

#[test]
fn referenced_layer_absent() {
    let w = world();
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let needed = built.layer_entries[1][1].clone();
    built.remove(&needed);
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    for e in [e1, e2] {
        assert!(e.contains(&needed) && e.contains("app:1"), "{e}");
    }
    // Absent but at the destination: fine.
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let real_a = built.layer_entries[0][0].clone();
    built.remove(&real_a);
    let (plan, _, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert_eq!(plan.images[0].layers[0].size, None);
}

#[test]
fn source_image_absent_and_unsafe_names() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let e = run(&built.tar(), &[&w.app, &w.other], have(&[]), false)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("other:1"), "{e}");
    let mut evil = built.clone();
    evil.entries
        .insert(0, TEntry::file("../evil", b"x".to_vec()));
    let e = run(&evil.tar(), &[&w.app], have(&[]), false).err().unwrap();
    assert!(
        matches!(&e, ArchiveError::UnsafeName(n) if n == "../evil"),
        "{e}"
    );
    let mut evil = built.clone();
    evil.entries
        .insert(0, TEntry::file("/etc/evil", b"x".to_vec()));
    assert!(run(&evil.tar(), &[&w.app], have(&[]), false).is_err());
}

#[test]
fn several_inputs_of_any_layouts_merge() {
    let w = world();
    let inputs = [
        legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z").tar(),
        oci(&[&w.base, &w.other], true, false).tar(),
        oci(&[&w.y], false, true).tar(),
    ];
    for indexed in [true, false] {
        let idx: Vec<Option<ArchiveIndex>> = inputs
            .iter()
            .map(|t| indexed.then(|| scan(&t[..]).unwrap()))
            .collect();
        let want = vec![
            wanted(idx[0].as_ref(), &w.app),
            wanted(idx[1].as_ref(), &w.other),
            wanted(idx[2].as_ref(), &w.y),
        ];
        let mut e = Engine::new(Vec::new(), want, have(&[&w.base]));
        for (t, ix) in inputs.iter().zip(idx) {
            e.add_input(&t[..], "in", ix).unwrap();
        }
        let (plan, out) = e.finish().unwrap();
        check_bundle(&out, &plan);
        assert_eq!(decisions(&plan, 1), vec![true, true]);
        let mut r = crate::archive::tarstream::TarReader::new(&out[..]);
        let mut seen = BTreeSet::new();
        while let Some(h) = r.next_entry().unwrap() {
            assert!(seen.insert(h.name.clone()), "duplicate {}", h.name);
        }
    }
}

// ---------- OCI (Docker >= 25) and containerd layouts ----------

#[test]
fn oci_selection_and_shared_blobs() {
    let w = world();
    let built = oci(&[&w.base, &w.app, &w.other], false, true);
    let (plan, out, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert_eq!(plan.layout, Layout::Oci);
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert_eq!(layer_blobs(&out).len(), 2);
    // other keeps the shared a blob.
    let (_, out, _) = both(&built.tar(), &[&w.app, &w.other], &have(&[&w.base]));
    assert!(layer_blobs(&out).contains(&blob(&w.base.layers[0].diff)));
}

#[test]
fn oci_diff_id_mismatch_and_absent_blob() {
    let w = world();
    let mut built = oci(&[&w.base, &w.app], false, true);
    let victim = built.layer_entries[1][1].clone();
    built.set_data(&victim, b"tampered".to_vec());
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(e1.contains(&victim) && e2.contains(&victim), "{e1} / {e2}");
    let mut built = oci(&[&w.base, &w.app], false, true);
    built.remove(&built.layer_entries[1][2].clone());
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(e1.contains("app:1") && e2.contains("app:1"), "{e1} / {e2}");
}

#[test]
fn containerd_selection_with_and_without_manifest_json() {
    let w = world();
    for with_manifest in [false, true] {
        let built = oci(&[&w.base, &w.app, &w.other], true, with_manifest);
        let ix = scan(&built.tar()[..]).unwrap();
        assert_eq!(ix.layout, Layout::Containerd);
        assert_eq!(ix.images.len(), 3);
        assert_eq!(
            ix.find("docker.io/library/app:1").unwrap().source,
            w.app.source()
        );
        let (plan, out, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
        // Compressed blobs are carried as they are, named by their digest.
        assert_eq!(plan.layout, Layout::Containerd);
        let app = ix.find("app:1").unwrap();
        let want: BTreeSet<String> =
            [app.layer_entries[1].clone(), app.layer_entries[2].clone()].into();
        assert_eq!(layer_blobs(&out), want);
        let Kind::File(gz) = &out[&app.layer_entries[1]] else {
            panic!()
        };
        assert_eq!(gunzip(gz), w.app.layers[1].data);
        assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
        let b = plan.images[0].layers[1].blob.as_ref().unwrap();
        assert_eq!(b.compression, crate::codec::Compression::Gzip);
        assert!(b.media_type.ends_with("+gzip"));
    }
}

#[test]
fn containerd_corrupt_blob_fails() {
    let w = world();
    let mut built = oci(&[&w.base, &w.app], true, false);
    let ix = scan(&built.tar()[..]).unwrap();
    let victim = ix.find("app:1").unwrap().layer_entries[1].clone();
    built.set_data(&victim, b"\x1f\x8bgarbage".to_vec());
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(e1.contains(&victim) && e2.contains(&victim), "{e1} / {e2}");
}

#[test]
fn containerd_blob_order_does_not_matter() {
    // Manifests before the layers (roles known on arrival) or after them (layers spooled).
    let w = world();
    let built = oci(&[&w.base, &w.app, &w.other], true, false);
    let is_json = |e: &TEntry| matches!(&e.kind, Kind::File(d) if d.first() == Some(&b'{'));
    let mut first = built.clone();
    first.entries.sort_by_key(|e| !is_json(e));
    let mut last = built.clone();
    last.entries.sort_by_key(&is_json);
    let (_, o0, _) = run(&built.tar(), &[&w.app], have(&[&w.base]), false).unwrap();
    for b in [first, last] {
        let (p, o, _) = both(&b.tar(), &[&w.app], &have(&[&w.base]));
        assert_eq!(layer_blobs(&o), layer_blobs(&o0));
        assert_eq!((p.blobs_carried, p.blobs_left_out), (2, 1));
    }
}

#[test]
fn containerd_nested_index_and_platforms() {
    use serde_json::json;
    let w = world();
    let mut built = oci(&[&w.base, &w.app], true, false);
    let Kind::File(ix) = built
        .entries
        .iter()
        .find(|e| e.name == "index.json")
        .unwrap()
        .kind
        .clone()
    else {
        panic!()
    };
    let mut ix: Value = serde_json::from_slice(&ix).unwrap();
    let descs = ix["manifests"].as_array().unwrap().clone();
    let (app_desc, base_desc): (Vec<Value>, Vec<Value>) = descs.into_iter().partition(|d| {
        d["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap()
            .contains("app")
    });
    // app behind a multi-platform image index, as a pulled image is.
    let mut inner = app_desc[0].clone();
    inner.as_object_mut().unwrap().remove("annotations");
    inner["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let missing = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::of_bytes(b"arm64 manifest, not exported").to_string(),
        "size": 10, "platform": {"architecture": "arm64", "os": "linux"}});
    let list = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [inner, missing]}))
    .unwrap();
    let list_digest = Digest::of_bytes(&list);
    built
        .entries
        .push(TEntry::file(&blob(&list_digest), list.clone()));
    let mut outer = app_desc[0].clone();
    outer["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
    outer["digest"] = json!(list_digest.to_string());
    outer["size"] = json!(list.len());
    ix["manifests"] = Value::Array(vec![base_desc[0].clone(), outer]);
    built.set_data("index.json", serde_json::to_vec(&ix).unwrap());
    built.entries.sort_by(|a, b| a.name.cmp(&b.name));
    let tar = built.tar();

    let scanned = scan(&tar[..]).unwrap();
    let app = scanned.find("app:1").unwrap();
    assert_eq!(app.source, w.app.source());
    assert_eq!(app.index_digests, vec![list_digest.clone()]);
    assert_eq!(
        scanned.find(list_digest.as_str()).unwrap().source.id,
        w.app.id
    );
    // Another platform: the app is not there.
    let arm = crate::image::Platform::parse("linux/arm64").unwrap();
    let on_arm = crate::archive::scan_with(&tar[..], Some(&arm)).unwrap();
    assert!(on_arm.find("app:1").is_none());
    assert!(on_arm.find("base:1").is_some());
    // The source may name the image by its config digest or, as the containerd store does, by
    // the digest of its index.
    let mut by_list =
        Image::from_diff_ids(list_digest.clone(), vec!["app:1".into()], &w.app.diffs());
    by_list.layers = scanned.model(app).layers;
    for img in [scanned.model(app), by_list] {
        for indexed in [true, false] {
            let mut e = Engine::new(Vec::new(), vec![img.clone()], have(&[&w.base]));
            e.add_input(&tar[..], "t", indexed.then(|| scanned.clone()))
                .unwrap();
            let (plan, out) = e.finish().unwrap();
            check_bundle(&out, &plan);
            assert_eq!(
                plan.images[0].id, w.app.id,
                "the bundle names the image by its config"
            );
            assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
        }
    }
}

#[test]
fn archive_with_other_diff_ids_than_the_source_fails() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let mut img = wanted(None, &w.app);
    img.layers.pop();
    let mut e = Engine::new(Vec::new(), vec![img], have(&[&w.base]));
    e.add_input(&built.tar()[..], "t", None).unwrap();
    let e = e.finish().err().unwrap();
    assert!(matches!(e, ArchiveError::ImageMismatch { .. }), "{e}");
    assert!(e.to_string().contains("app:1"), "{e}");
}

// ---------- references ----------

#[test]
fn find_by_tag_id_and_prefix() {
    let w = world();
    let ix = scan(&legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z").tar()[..]).unwrap();
    assert_eq!(ix.find("app:1").unwrap().source.id, w.app.id);
    assert_eq!(
        ix.find("docker.io/library/app:1").unwrap().source.id,
        w.app.id
    );
    assert!(ix.find("app").is_none(), "app means app:latest");
    assert_eq!(ix.find(w.app.id.as_str()).unwrap().source.id, w.app.id);
    assert_eq!(ix.find(w.app.id.hex()).unwrap().source.id, w.app.id);
    assert_eq!(ix.find(&w.app.id.hex()[..12]).unwrap().source.id, w.app.id);
    assert!(ix.find(&w.app.id.hex()[..11]).is_none(), "too short");
    let latest = image(&["solo:latest"], &[&w.app.layers[0]]);
    let ix = scan(&legacy(&[&latest], "1970-01-01T00:00:00Z").tar()[..]).unwrap();
    assert!(ix.find("solo").is_some());
    assert!(ix.find("docker.io/library/solo").is_some());
}

// ---------- progress, size, threads ----------

#[test]
fn observer_sees_every_layer_decision() {
    use std::sync::{Arc, Mutex};
    struct Obs(Arc<Mutex<Vec<bool>>>, Arc<Mutex<u64>>);
    impl EngineObserver for Obs {
        fn bytes_read(&self, total: u64) {
            *self.1.lock().unwrap() = total;
        }
        fn layer(&self, _e: &str, _s: u64, kept: bool) {
            self.0.lock().unwrap().push(kept);
        }
    }
    let w = world();
    for built in [
        legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z"),
        oci(&[&w.base, &w.app], true, false),
    ] {
        let tar = built.tar();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let read = Arc::new(Mutex::new(0));
        let mut e = Engine::new(Vec::new(), vec![wanted(None, &w.app)], have(&[&w.base]));
        e.set_observer(Box::new(Obs(seen.clone(), read.clone())));
        e.add_input(&tar[..], "t", None).unwrap();
        e.finish().unwrap();
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, vec![false, true, true]);
        assert_eq!(*read.lock().unwrap(), tar.len() as u64);
    }
}

#[test]
fn big_layers_stream_through_and_are_verified() {
    let big: Vec<u8> = (0..(6u32 << 20) / 4)
        .flat_map(|i| i.to_le_bytes())
        .collect();
    let big = layer("big.bin", &big);
    let small = layer("s", b"s");
    let base = image(&["base:1"], &[&small]);
    let app = image(&["app:1"], &[&small, &big]);
    for built in [
        legacy(&[&base, &app], "1970-01-01T00:00:00Z"),
        oci(&[&base, &app], false, true),
        oci(&[&base, &app], true, false),
    ] {
        let tar = built.tar();
        let mut e = Engine::new(std::io::sink(), vec![wanted(None, &app)], have(&[&base]));
        e.add_input(&tar[..], "big", None).unwrap();
        let (plan, _) = e.finish().unwrap();
        assert_eq!(plan.blobs_carried, 1);
        assert!(plan.bytes_carried > 0);
        assert_eq!(plan.input_bytes, tar.len() as u64);
    }
}

#[test]
fn engine_can_move_to_another_thread() {
    fn send<T: Send>() {}
    send::<Engine<Vec<u8>>>();
    send::<ArchiveIndex>();
    send::<ArchiveError>();
}

/// A layer whose config names another diffID than its content holds, stored compressed and
/// named by its (right) digest: with the diffID check off it is carried, its digest checked
/// (partial-load's check of every carried diffID finds it on the far side); with the check on
/// the export fails naming it.
#[test]
fn a_compressed_layers_diff_id_is_checked_unless_told_not_to() {
    let w = world();
    let mut lying = layer("b.txt", b"layer b");
    lying.diff = sha(b"not what the layer holds");
    let app = image(&["app:1"], &[&w.base.layers[0], &lying]);
    let built = oci(&[&w.base, &app], true, false);
    for on in [false, true] {
        let ix = scan(&built.tar()[..]).unwrap();
        let mut e = Engine::new(Vec::new(), vec![wanted(Some(&ix), &app)], have(&[&w.base]));
        e.set_diff_check(on);
        let r = e
            .add_input(&built.tar()[..], "test.tar", Some(ix))
            .and_then(|()| e.finish());
        match (on, r) {
            (false, Ok((plan, _))) => assert_eq!(decisions(&plan, 0), vec![false, true]),
            (true, Err(e)) => assert!(e.to_string().contains("(uncompressed)"), "{e}"),
            (on, r) => panic!("check {on}: {:?}", r.map(|(p, _)| p.blobs_carried)),
        }
    }
}
