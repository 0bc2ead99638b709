//! Tests of [`Filter`] and [`scan`] on archives built in the test, for all three layouts, with and
//! without an index (the no-index path identifies legacy folders from their `json`).

use super::testutil::*;
use super::*;
use crate::have::HaveSet;
use crate::plan::{Decision, Plan};
use std::collections::{BTreeMap, BTreeSet};

struct World {
    base: TestImage,
    app: TestImage,
    other: TestImage,
    y: TestImage,
}

fn world() -> World {
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

type Out = BTreeMap<String, Kind>;

fn run(
    archive: &[u8],
    sources: &[&TestImage],
    have: HaveSet,
    indexed: bool,
) -> Result<(Plan, Out, Vec<u8>), ArchiveError> {
    let idx = if indexed { Some(scan(archive)?) } else { None };
    let mut f = Filter::new(
        Vec::new(),
        sources.iter().map(|s| s.source()).collect(),
        have,
    );
    f.add_input(archive, "test.tar", idx.as_ref())?;
    let (plan, out) = f.finish()?;
    Ok((plan, read_tar(&out), out))
}

/// Runs with and without an index; both must give the same output and plan.
fn both(archive: &[u8], sources: &[&TestImage], have: &HaveSet) -> (Plan, Out, Vec<u8>) {
    let (p1, o1, raw) = run(archive, sources, have.clone(), true).unwrap();
    let (p2, o2, _) = run(archive, sources, have.clone(), false).unwrap();
    assert_eq!(
        o1.keys().collect::<Vec<_>>(),
        o2.keys().collect::<Vec<_>>(),
        "index and no-index outputs differ"
    );
    assert_eq!(p1.images, p2.images);
    assert_eq!(
        (p1.blobs_carried, p1.bytes_carried, p1.blobs_left_out),
        (p2.blobs_carried, p2.bytes_carried, p2.blobs_left_out)
    );
    (p1, o1, raw)
}

fn both_err(archive: &[u8], sources: &[&TestImage], have: &HaveSet) -> (String, String) {
    let e1 = run(archive, sources, have.clone(), true).expect_err("indexed run must fail");
    let e2 = run(archive, sources, have.clone(), false).expect_err("streamed run must fail");
    (e1.to_string(), e2.to_string())
}

fn names(out: &Out) -> BTreeSet<String> {
    out.keys().cloned().collect()
}

/// The entries of a legacy folder (dir, VERSION, json) plus, optionally, its layer.tar.
fn folder_entries(f: &str, with_layer: bool) -> Vec<String> {
    let mut v = vec![format!("{f}/"), format!("{f}/VERSION"), format!("{f}/json")];
    if with_layer {
        v.push(format!("{f}/layer.tar"));
    }
    v
}

fn set(items: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    items.into_iter().collect()
}

fn decisions(plan: &Plan, img: usize) -> Vec<bool> {
    plan.images[img]
        .layers
        .iter()
        .map(|l| l.decision.is_carried())
        .collect()
}

// ---------- legacy layout ----------

#[test]
fn legacy_selection_and_base_at_destination() {
    let w = world();
    let built = legacy(&[&w.base, &w.app, &w.other], "1970-01-01T00:00:00Z");
    // The daemon's way: diff a first saved in base's folder; app's bottom links to it.
    assert!(built.is_symlink(&built.layer_entries[1][0]));
    assert!(built.is_symlink(&built.layer_entries[1][3]));
    let (plan, out, raw) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    let mut want = BTreeSet::new();
    for pos in 0..4 {
        want.extend(folder_entries(&built.folder(1, pos), pos != 0));
    }
    want.insert(built.config_entries[1].clone());
    want.insert("manifest.json".into());
    want.insert("repositories".into());
    assert_eq!(names(&out), want);
    // The kept symlink still points at its real file, which is kept.
    let link = &out[&built.layer_entries[1][3]];
    assert_eq!(
        link,
        &Kind::Symlink(format!("../{}", built.layer_entries[1][2]))
    );
    // Only app in manifest.json and repositories.
    let Kind::File(m) = &out["manifest.json"] else {
        panic!()
    };
    let m: serde_json::Value = serde_json::from_slice(m).unwrap();
    assert_eq!(m.as_array().unwrap().len(), 1);
    assert_eq!(m[0]["RepoTags"][0], "app:1");
    let Kind::File(r) = &out["repositories"] else {
        panic!()
    };
    let r: serde_json::Value = serde_json::from_slice(r).unwrap();
    assert_eq!(
        r.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["app"]
    );
    // Plan.
    assert_eq!(plan.layout, Layout::Legacy);
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert!(matches!(
        &plan.images[0].layers[0].decision,
        Decision::AtDestination { origin } if origin.image() == "base:1"
    ));
    assert_eq!(plan.blobs_carried, 2);
    assert_eq!(plan.blobs_left_out, 1);
    let lb = w.app.layers[1].data.len() as u64 + w.app.layers[2].data.len() as u64;
    assert_eq!(plan.bytes_carried, lb);
    assert_eq!(plan.bytes_left_out, w.base.layers[0].data.len() as u64);
    assert_eq!(plan.output_tar_bytes, raw.len() as u64);
    assert_eq!(plan.input_bytes, built.tar().len() as u64);
    assert!(plan.warnings.is_empty());
    // The output is itself an archive `scan` accepts, with app only.
    let ix = scan(&raw[..]).unwrap();
    assert_eq!(ix.layout, Layout::Legacy);
    assert_eq!(ix.images.len(), 1);
    assert_eq!(ix.images[0].source, w.app.source());
}

#[test]
fn legacy_same_diff_at_other_position_keeps_the_file() {
    let w = world();
    let built = legacy(&[&w.base, &w.app, &w.other], "1970-01-01T00:00:00Z");
    // other = [b, a]: a at position 1 is a chain the destination lacks, so base's real a stays.
    let (plan, out, _) = both(&built.tar(), &[&w.app, &w.other], &have(&[&w.base]));
    let real_a = built.layer_entries[0][0].clone();
    assert!(!built.is_symlink(&real_a));
    assert!(
        out.contains_key(&real_a),
        "real file of diff a must be kept"
    );
    assert!(
        !out.contains_key(&built.layer_entries[1][0]),
        "app's own a link is at destination"
    );
    assert!(out.contains_key(&built.layer_entries[2][1]));
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert_eq!(decisions(&plan, 1), vec![true, true]);
    assert_eq!(plan.blobs_carried, 3);
    assert_eq!(plan.blobs_left_out, 0);
    // Base's folder metadata comes along with its kept layer; base's config does not.
    assert!(out.contains_key(&format!("{}/json", built.folder(0, 0))));
    assert!(!out.contains_key(&built.config_entries[0]));
}

#[test]
fn legacy_excluded_chain_sharing_a_diff_id() {
    let w = world();
    let built = legacy(&[&w.base, &w.app, &w.other], "1970-01-01T00:00:00Z");
    // The destination has app (so chain [a,b]); other's bottom b is another chain: carried.
    let (plan, out, _) = run(&built.tar(), &[&w.other], have(&[&w.app]), true).unwrap();
    assert_eq!(decisions(&plan, 0), vec![true, true]);
    let mut want = BTreeSet::new();
    want.extend(folder_entries(&built.folder(2, 0), true));
    want.extend(folder_entries(&built.folder(2, 1), true));
    // Targets of other's links: app's real b and base's real a, with their folders.
    want.extend(folder_entries(&built.folder(1, 1), true));
    want.extend(folder_entries(&built.folder(0, 0), true));
    want.insert(built.config_entries[2].clone());
    want.insert("manifest.json".into());
    want.insert("repositories".into());
    assert_eq!(names(&out), want);
    // Without an index, a folder of a non-exported image cannot be identified before
    // manifest.json: its layer is kept (safe), nothing else changes, and no warning is due.
    let (plan2, out2, _) = run(&built.tar(), &[&w.other], have(&[&w.app]), false).unwrap();
    want.extend(folder_entries(&built.folder(1, 2), true));
    assert_eq!(names(&out2), want);
    assert_eq!(plan2.images, plan.images);
    assert!(plan2.warnings.is_empty());
}

#[test]
fn legacy_repeated_layer_link_target_at_destination() {
    let w = world();
    let built = legacy(&[&w.y, &w.app], "1970-01-01T00:00:00Z");
    let target = built.layer_entries[0][0].clone();
    assert!(built.is_symlink(&built.layer_entries[1][2]));
    assert!(built.is_symlink(&built.layer_entries[1][3]));
    // The destination has y (chain c alone); app's c positions are other chains: carried.
    let (plan, out, raw) = both(&built.tar(), &[&w.y, &w.app], &have(&[&w.y]));
    assert_eq!(decisions(&plan, 0), vec![false]);
    assert_eq!(decisions(&plan, 1), vec![true, true, true, true]);
    assert!(out.contains_key(&target), "link target must not dangle");
    assert!(matches!(out[&built.layer_entries[1][2]], Kind::Symlink(_)));
    assert!(matches!(out[&built.layer_entries[1][3]], Kind::Symlink(_)));
    scan(&raw[..]).unwrap();
}

#[test]
fn legacy_repeated_layer_link_at_destination_target_carried() {
    let w = world();
    let built = legacy(&[&w.y, &w.app], "1970-01-01T00:00:00Z");
    let (plan, out, _) = both(&built.tar(), &[&w.y, &w.app], &have(&[&w.app]));
    assert_eq!(decisions(&plan, 0), vec![true]);
    assert_eq!(decisions(&plan, 1), vec![false; 4]);
    assert!(out.contains_key(&built.layer_entries[0][0]));
    for e in &built.layer_entries[1] {
        assert!(!out.contains_key(e), "{e} should be left out");
    }
    // app's folders' metadata and config stay, so docker load finds the image.
    assert!(out.contains_key(&built.config_entries[1]));
    assert!(out.contains_key(&format!("{}/json", built.folder(1, 2))));
}

#[test]
fn legacy_shanghai_daemon_folders_are_identified() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T08:00:00+08:00");
    let utc = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    assert_ne!(built.layer_entries[1][1], utc.layer_entries[1][1]);
    let (plan, out, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(plan.warnings.is_empty());
    assert!(!out.contains_key(&built.layer_entries[0][0]));
    assert!(out.contains_key(&built.layer_entries[1][1]));
}

#[test]
fn legacy_unidentified_folder_is_kept_with_a_warning() {
    let w = world();
    let mut built = legacy(&[&w.app], "1970-01-01T00:00:00Z");
    // A daemon with an unknown scheme: the json no longer hashes to the folder name.
    let f = built.folder(0, 1);
    let json_name = format!("{f}/json");
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
    let partial = image(&["part:1"], &[&w.app.layers[0], &w.app.layers[1]]);
    let (plan, out, _) = run(&built.tar(), &[&w.app], have(&[&partial]), false).unwrap();
    assert!(
        out.contains_key(&built.layer_entries[0][1]),
        "unknown folder kept"
    );
    assert!(
        !out.contains_key(&built.layer_entries[0][0]),
        "identified folder left out"
    );
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains(&built.layer_entries[0][1]));
    // With an index, manifest.json decides: no warning, layer left out.
    let (plan, out, _) = run(&built.tar(), &[&w.app], have(&[&partial]), true).unwrap();
    assert!(!out.contains_key(&built.layer_entries[0][1]));
    assert!(plan.warnings.is_empty());
}

#[test]
fn legacy_long_names_gnu_and_pax_survive() {
    let w = world();
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let f = built.folder(1, 1);
    let gnu = format!("{f}/{}", "g".repeat(120));
    let pax = format!("{f}/{}", "p".repeat(130));
    built.entries.push(TEntry::file(&gnu, b"gnu".to_vec()));
    built.entries.push(TEntry {
        name: pax.clone(),
        kind: Kind::File(b"pax".to_vec()),
        style: NameStyle::Pax,
    });
    built.entries.sort_by(|a, b| a.name.cmp(&b.name));
    let (_, out, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert_eq!(out[&gnu], Kind::File(b"gnu".to_vec()));
    assert_eq!(out[&pax], Kind::File(b"pax".to_vec()));
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
    // Cut inside a layer.
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
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    for e in [e1, e2] {
        assert!(e.contains("digest mismatch") && e.contains(&victim), "{e}");
    }
}

#[test]
fn missing_manifest_fails() {
    let w = world();
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    built.remove("manifest.json");
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(
        e1.contains("no manifest.json") && e2.contains("no manifest.json"),
        "{e1} / {e2}"
    );
    assert!(e2.contains("test.tar"), "{e2}");
    let mut built = oci(&[&w.base, &w.app], false, true);
    built.remove("manifest.json");
    let e = run(&built.tar(), &[&w.app], have(&[&w.base]), false)
        .err()
        .unwrap();
    assert!(e.to_string().contains("no manifest.json"), "{e}");
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
    let (plan, out, _) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(!out.contains_key(&real_a));
    assert_eq!(plan.images[0].layers[0].size, None);
}

#[test]
fn source_image_absent_and_unsafe_names() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let (e1, e2) = both_err(&built.tar(), &[&w.app, &w.other], &have(&[]));
    assert!(
        e1.contains("other:1") && e2.contains("other:1"),
        "{e1} / {e2}"
    );
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
fn several_inputs_merge_and_layouts_must_agree() {
    let w = world();
    let one = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z").tar();
    let two = legacy(&[&w.base, &w.other], "1970-01-01T00:00:00Z").tar();
    for indexed in [true, false] {
        let mut f = Filter::new(
            Vec::new(),
            vec![w.app.source(), w.other.source()],
            have(&[&w.base]),
        );
        let i1 = scan(&one[..]).unwrap();
        let i2 = scan(&two[..]).unwrap();
        f.add_input(&one[..], "one", indexed.then_some(&i1))
            .unwrap();
        f.add_input(&two[..], "two", indexed.then_some(&i2))
            .unwrap();
        let (plan, out) = f.finish().unwrap();
        assert_eq!(plan.images.len(), 2);
        let ix = scan(&out[..]).unwrap();
        let ids: BTreeSet<_> = ix.images.iter().map(|i| i.source.id.clone()).collect();
        assert_eq!(ids, [w.app.id.clone(), w.other.id.clone()].into());
        // Every name once.
        let mut r = tarstream::TarReader::new(&out[..]);
        let mut seen = BTreeSet::new();
        while let Some(h) = r.next_entry().unwrap() {
            assert!(seen.insert(h.name.clone()), "duplicate {}", h.name);
        }
    }
    // The same for OCI and containerd archives sharing blobs.
    for compressed in [false, true] {
        let one = oci(&[&w.base, &w.app], compressed, !compressed).tar();
        let two = oci(&[&w.base, &w.other], compressed, !compressed).tar();
        for indexed in [true, false] {
            let mut f = Filter::new(
                Vec::new(),
                vec![w.app.source(), w.other.source()],
                have(&[&w.base]),
            );
            let i1 = scan(&one[..]).unwrap();
            let i2 = scan(&two[..]).unwrap();
            f.add_input(&one[..], "one", indexed.then_some(&i1))
                .unwrap();
            f.add_input(&two[..], "two", indexed.then_some(&i2))
                .unwrap();
            let (plan, out) = f.finish().unwrap();
            assert_eq!(decisions(&plan, 1), vec![true, true]);
            let ix = scan(&out[..]).unwrap();
            assert_eq!(
                ix.images.len(),
                2,
                "compressed {compressed} indexed {indexed}"
            );
            let out = read_tar(&out);
            let Kind::File(i) = &out["index.json"] else {
                panic!()
            };
            let i: serde_json::Value = serde_json::from_slice(i).unwrap();
            assert_eq!(i["manifests"].as_array().unwrap().len(), 2);
        }
    }
    let three = oci(&[&w.other], false, true).tar();
    let mut f = Filter::new(
        Vec::new(),
        vec![w.app.source(), w.other.source()],
        have(&[]),
    );
    f.add_input(&one[..], "one", None).unwrap();
    let e = f.add_input(&three[..], "three", None).err().unwrap();
    assert!(matches!(e, ArchiveError::LayoutMismatch { .. }), "{e}");
    assert!(e.to_string().contains("three"));
}

// ---------- OCI (Docker >= 25) layout ----------

fn blob(d: &crate::digest::Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

#[test]
fn oci_selection_and_shared_blobs() {
    let w = world();
    let built = oci(&[&w.base, &w.app, &w.other], false, true);
    let (plan, out, raw) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert_eq!(plan.layout, Layout::Oci);
    let ix = scan(&built.tar()[..]).unwrap();
    let app_m = ix.find("app:1").unwrap().manifest_digest.clone().unwrap();
    let mut want = set([
        "blobs/".to_string(),
        "blobs/sha256/".to_string(),
        blob(&w.app.layers[1].diff),
        blob(&w.app.layers[2].diff),
        blob(&w.app.id),
        blob(&app_m),
        "index.json".into(),
        "manifest.json".into(),
        "oci-layout".into(),
        "repositories".into(),
    ]);
    // Docker >= 25's per-layer v1 json blobs stay for chains app uses (base's top layer is app's
    // bottom chain); other's go.
    let v1 = |i: &TestImage| -> Vec<String> {
        v1_jsons(i, "1970-01-01T00:00:00Z")
            .iter()
            .map(|j| blob(&crate::digest::Digest::of_bytes(j)))
            .collect()
    };
    want.extend(v1(&w.app));
    want.extend(v1(&w.base));
    for j in v1(&w.other) {
        assert!(built.entries.iter().any(|e| e.name == j));
        assert!(!want.contains(&j));
    }
    assert_eq!(names(&out), want);
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert_eq!((plan.blobs_carried, plan.blobs_left_out), (2, 1));
    let Kind::File(i) = &out["index.json"] else {
        panic!()
    };
    let i: serde_json::Value = serde_json::from_slice(i).unwrap();
    assert_eq!(i["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(i["manifests"][0]["digest"], app_m.to_string());
    let back = scan(&raw[..]).unwrap();
    assert_eq!(back.layout, Layout::Oci);
    assert_eq!(back.images.len(), 1);
    // Unknown manifest.json fields survive.
    let Kind::File(m) = &out["manifest.json"] else {
        panic!()
    };
    assert!(String::from_utf8_lossy(m).contains("LayerSources"));

    // other needs a at position 1: the blob stays although app's position 0 is at destination.
    let (plan, out, _) = both(&built.tar(), &[&w.app, &w.other], &have(&[&w.base]));
    assert!(out.contains_key(&blob(&w.base.layers[0].diff)));
    assert!(!decisions(&plan, 0)[0]);
    assert_eq!((plan.blobs_carried, plan.blobs_left_out), (3, 0));
}

#[test]
fn oci_diff_id_mismatch_and_absent_blob() {
    let w = world();
    let mut built = oci(&[&w.base, &w.app], false, true);
    let victim = blob(&w.app.layers[1].diff);
    built.set_data(&victim, b"not the layer".to_vec());
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(e1.contains(&victim) && e2.contains(&victim), "{e1} / {e2}");
    let mut built = oci(&[&w.base, &w.app], false, true);
    built.remove(&victim);
    let (e1, e2) = both_err(&built.tar(), &[&w.app], &have(&[&w.base]));
    assert!(e1.contains(&victim) && e2.contains("needed"), "{e1} / {e2}");
}

// ---------- containerd layout ----------

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
        let (plan, out, raw) = both(&built.tar(), &[&w.app], &have(&[&w.base]));
        assert_eq!(plan.layout, Layout::Containerd);
        let app = ix.find("app:1").unwrap();
        let mut want = set([
            "blobs/".to_string(),
            "blobs/sha256/".to_string(),
            app.layer_entries[1].clone(),
            app.layer_entries[2].clone(),
            app.config_entry.clone(),
            blob(app.manifest_digest.as_ref().unwrap()),
            "index.json".into(),
            "oci-layout".into(),
        ]);
        if with_manifest {
            want.insert("manifest.json".into());
        }
        assert_eq!(names(&out), want, "with manifest.json: {with_manifest}");
        // Compressed blobs are carried as they are.
        let Kind::File(gz) = &out[&app.layer_entries[1]] else {
            panic!()
        };
        assert_eq!(gunzip(gz), w.app.layers[1].data);
        assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
        assert_eq!(
            plan.images[0].layers[1].entry.as_deref(),
            Some(&app.layer_entries[1][..])
        );
        let back = scan(&raw[..]).unwrap();
        assert_eq!(back.images.len(), 1);
        assert_eq!(back.images[0].source.tags, vec!["app:1".to_string()]);

        // other keeps the shared a blob.
        let (_, out, _) = both(&built.tar(), &[&w.app, &w.other], &have(&[&w.base]));
        assert!(out.contains_key(&app.layer_entries[0]));
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
    assert_eq!(
        ix.find(&format!("sha256:{}", &w.app.id.hex()[..14]))
            .unwrap()
            .source
            .id,
        w.app.id
    );
    assert!(ix.find(&w.app.id.hex()[..11]).is_none(), "too short");
    let latest = image(&["solo:latest"], &[&w.app.layers[0]]);
    let ix = scan(&legacy(&[&latest], "1970-01-01T00:00:00Z").tar()[..]).unwrap();
    assert!(ix.find("solo").is_some());
    assert!(ix.find("docker.io/library/solo").is_some());
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
    let (p0, o0, _) = run(&built.tar(), &[&w.app], have(&[&w.base]), false).unwrap();
    for b in [first, last] {
        let (p, o, _) = both(&b.tar(), &[&w.app], &have(&[&w.base]));
        assert_eq!(names(&o), names(&o0));
        assert_eq!(p.images, p0.images);
        assert_eq!((p.blobs_carried, p.blobs_left_out), (2, 1));
    }
}

#[test]
fn observer_sees_every_layer_decision() {
    use std::sync::{Arc, Mutex};
    type Log = (u64, Vec<(String, bool)>);
    #[derive(Clone, Default)]
    struct Rec(Arc<Mutex<Log>>);
    impl FilterObserver for Rec {
        fn bytes_read(&self, total: u64) {
            self.0.lock().unwrap().0 = total;
        }
        fn layer(&self, entry: &str, _size: u64, kept: bool) {
            self.0.lock().unwrap().1.push((entry.to_string(), kept));
        }
    }
    let w = world();
    for built in [
        legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z"),
        oci(&[&w.base, &w.app], true, false),
    ] {
        let tar = built.tar();
        let rec = Rec::default();
        let mut f = Filter::new(Vec::new(), vec![w.app.source()], have(&[&w.base]));
        f.set_observer(Box::new(rec.clone()));
        f.add_input(&tar[..], "t", None).unwrap();
        f.finish().unwrap();
        let (total, layers) = rec.0.lock().unwrap().clone();
        assert_eq!(total, tar.len() as u64);
        let kept: Vec<bool> = layers.iter().map(|l| l.1).collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), 2, "{layers:?}");
        assert_eq!(kept.iter().filter(|k| !**k).count(), 1, "{layers:?}");
    }
}

#[test]
fn scan_rejects_broken_archives_and_reports_layouts() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    assert!(matches!(
        scan(&write_tar(&built.entries, End::Missing)[..]),
        Err(ArchiveError::Truncated(_))
    ));
    assert!(scan(&write_tar(&built.entries, End::ErrorJson)[..]).is_err());
    assert_eq!(
        scan(&oci(&[&w.app], false, true).tar()[..]).unwrap().layout,
        Layout::Oci
    );
    let ix = scan(&built.tar()[..]).unwrap();
    assert_eq!(ix.images.len(), 2);
    assert_eq!(ix.images[1].layer_entries, built.layer_entries[1]);
    assert_eq!(ix.images[1].config_entry, built.config_entries[1]);
    assert_eq!(ix.sources(), vec![w.base.source(), w.app.source()]);
}

#[test]
fn archive_with_other_diff_ids_than_the_source_fails() {
    let w = world();
    let built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let mut wrong = w.app.source();
    wrong.diff_ids.pop();
    let mut f = Filter::new(Vec::new(), vec![wrong], have(&[&w.base]));
    f.add_input(&built.tar()[..], "t", None).unwrap();
    let e = f.finish().err().unwrap();
    assert!(matches!(e, ArchiveError::ImageMismatch { .. }), "{e}");
    assert!(e.to_string().contains("app:1"), "{e}");
}

#[test]
fn containerd_nested_index_and_manifest_list_ids() {
    use serde_json::{json, Value};
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
        "digest": crate::digest::Digest::of_bytes(b"arm64 manifest, not exported").to_string(),
        "size": 10, "platform": {"architecture": "arm64", "os": "linux"}});
    let list = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [inner, missing]}))
    .unwrap();
    let list_digest = crate::digest::Digest::of_bytes(&list);
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
    // The source may name the image by its config digest or, as the containerd store does, by
    // the digest of its index.
    let mut by_list = w.app.source();
    by_list.id = list_digest.clone();
    for src in [w.app.source(), by_list] {
        for indexed in [true, false] {
            let mut f = Filter::new(Vec::new(), vec![src.clone()], have(&[&w.base]));
            f.add_input(&tar[..], "t", indexed.then_some(&scanned))
                .unwrap();
            let (plan, out) = f.finish().unwrap();
            let out = read_tar(&out);
            assert!(out.contains_key(&blob(&list_digest)));
            assert!(out.contains_key(&app.config_entry));
            assert!(out.contains_key(&app.layer_entries[1]));
            assert!(!out.contains_key(&app.layer_entries[0]));
            assert!(!out.contains_key(&scanned.find("base:1").unwrap().config_entry));
            let Kind::File(i) = &out["index.json"] else {
                panic!()
            };
            let i: Value = serde_json::from_slice(i).unwrap();
            assert_eq!(i["manifests"].as_array().unwrap().len(), 1);
            assert_eq!(i["manifests"][0]["digest"], list_digest.to_string());
            assert_eq!(plan.images[0].id, src.id);
            assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
        }
    }
}

#[test]
fn inputs_saved_in_different_orders_keep_link_chains() {
    let w = world();
    // In `one`, app's bottom is a link to base's real file; in `two`, app's bottom is the real
    // file and other's a link to it. The merge keeps the first `app` folder (a link).
    let one = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let two = legacy(&[&w.app, &w.other], "1970-01-01T00:00:00Z");
    let app0 = one.layer_entries[1][0].clone();
    assert!(one.is_symlink(&app0) && !two.is_symlink(&app0));
    let other1 = two.layer_entries[1][1].clone();
    assert!(two.is_symlink(&other1));
    for indexed in [true, false] {
        let (t1, t2) = (one.tar(), two.tar());
        let (i1, i2) = (scan(&t1[..]).unwrap(), scan(&t2[..]).unwrap());
        let mut f = Filter::new(
            Vec::new(),
            vec![w.app.source(), w.other.source()],
            have(&[&w.base]),
        );
        f.add_input(&t1[..], "one", indexed.then_some(&i1)).unwrap();
        f.add_input(&t2[..], "two", indexed.then_some(&i2)).unwrap();
        let (_, out) = f.finish().unwrap();
        let out = read_tar(&out);
        // other1 -> app0 -> base0: every link of the chain and the real file are there.
        assert_eq!(out[&other1], Kind::Symlink(format!("../{app0}")));
        assert!(matches!(out[&app0], Kind::Symlink(_)));
        assert!(matches!(out[&one.layer_entries[0][0]], Kind::File(_)));
    }
    // The other way round: the real app0 comes first and stays real.
    let (t1, t2) = (two.tar(), one.tar());
    let mut f = Filter::new(
        Vec::new(),
        vec![w.app.source(), w.other.source()],
        have(&[]),
    );
    f.add_input(&t1[..], "two", None).unwrap();
    f.add_input(&t2[..], "one", None).unwrap();
    let (plan, out) = f.finish().unwrap();
    let out = read_tar(&out);
    assert!(matches!(out[&app0], Kind::File(_)));
    assert_eq!(
        plan.images[0].layers[0].size,
        Some(w.app.layers[0].data.len() as u64)
    );
}

fn raw_headers(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut r = tarstream::TarReader::new(data);
    let mut out = BTreeMap::new();
    while let Some(h) = r.next_entry().unwrap() {
        out.insert(h.name.clone(), h.raw.clone());
    }
    out
}

#[test]
fn kept_entries_keep_their_headers_byte_for_byte() {
    let w = world();
    let mut built = legacy(&[&w.base, &w.app], "1970-01-01T00:00:00Z");
    let f = built.folder(1, 1);
    built.entries.push(TEntry {
        name: format!("{f}/{}", "p".repeat(130)),
        kind: Kind::File(b"pax".to_vec()),
        style: NameStyle::Pax,
    });
    built.entries.sort_by(|a, b| a.name.cmp(&b.name));
    let input = built.tar();
    let (_, out, raw) = both(&input, &[&w.app], &have(&[&w.base]));
    let before = raw_headers(&input);
    let after = raw_headers(&raw);
    let mut compared = 0;
    for (name, h) in &after {
        if name == "manifest.json" || name == "repositories" {
            continue; // rewritten
        }
        assert_eq!(Some(h), before.get(name), "{name}");
        compared += 1;
    }
    assert_eq!(compared, out.len() - 2);
}

#[test]
fn big_layers_stream_through_and_are_verified() {
    // Several MiB, so data crosses many read chunks; the output goes to a sink.
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
        let mut f = Filter::new(std::io::sink(), vec![app.source()], have(&[&base]));
        f.add_input(&tar[..], "big", None).unwrap();
        let (plan, _) = f.finish().unwrap();
        assert_eq!(plan.blobs_carried, 1);
        assert!(plan.bytes_carried > 0);
        assert_eq!(plan.input_bytes, tar.len() as u64);
    }
}

#[test]
fn filter_can_move_to_another_thread() {
    fn send<T: Send>() {}
    send::<Filter<Vec<u8>>>();
    send::<ArchiveIndex>();
    send::<ArchiveError>();
}
