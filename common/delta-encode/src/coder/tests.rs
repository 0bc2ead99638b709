//! The delta plug-in end to end in the library: references indexed from an archive file, the
//! engine writing a bundle with the hook, and the delta in the bundle rebuilding the layer.

use super::*;
use crate::tests::{tar_of, tree};
use partial_common::engine::Engine;
use partial_common::image::Image;
use partial_common::plan::Plan;
use partial_common::source::{ArchiveSource, Source};
use partial_common::testutil::archive::*;
use std::io::Cursor;

/// A layer from files.
fn files_layer(files: &[(String, Vec<u8>)]) -> Layer {
    let data = tar_of(files);
    let diff = partial_common::Digest::of_bytes(&data);
    Layer { data, diff }
}

struct Case {
    base: Layer,
    old: Layer,
    new: Layer,
    unrelated: Layer,
}

fn case() -> Case {
    let files = tree(7, 3 << 20);
    let mut changed = files.clone();
    changed[5].1 = b"one small file changed".to_vec();
    Case {
        base: layer("etc/os-release", b"ID=test"),
        old: files_layer(&files),
        new: files_layer(&changed),
        unrelated: files_layer(&tree(99, 1 << 20)),
    }
}

fn archive_file(dir: &tempfile::TempDir, name: &str, built: &Built) -> ArchiveSource {
    let path = dir.path().join(name);
    std::fs::write(&path, built.tar()).unwrap();
    ArchiveSource::open(&path, None).unwrap()
}

/// Exports `wanted` (all layers of `app` in `main`) with the hook built from `refs_src`.
fn export(
    main: &ArchiveSource,
    app: &TestImage,
    refs_src: &ArchiveSource,
    reference: &TestImage,
) -> (Plan, Vec<u8>) {
    let have = have(&[reference]);
    let ref_img: Image = refs_src.find(&reference.tags[0]).unwrap();
    let wanted = vec![main.find(&app.tags[0]).unwrap()];
    let refs = index_references(&[refs_src as &dyn Source], &[ref_img], &have, &wanted).unwrap();
    // Every reference layer but the base the exported image shares.
    let shared = reference
        .chains()
        .iter()
        .filter(|c| app.chains().contains(c))
        .count();
    assert_eq!(refs.layers.len(), reference.layers.len() - shared);
    let coder = DeltaCoder::new(refs, &wanted);
    let mut engine = Engine::new(Vec::new(), wanted.clone(), have);
    engine.set_hook(Box::new(coder));
    main.stream(&wanted, &mut engine).unwrap();
    engine.finish().unwrap()
}

/// The one delta of the plan, rebuilt from the bundle against `reference`.
fn rebuild(plan: &Plan, bundle: &[u8], reference: &Layer) -> Vec<u8> {
    let deltas = plan.deltas();
    assert_eq!(deltas.len(), 1, "one delta layer");
    let d = deltas[0];
    let entries = read_tar(bundle);
    let blob = match entries.get(&partial_common::bundle_writer::blob_path(&d.digest)) {
        Some(Kind::File(b)) => b.clone(),
        other => panic!("delta blob missing from the bundle: {other:?}"),
    };
    assert_eq!(blob.len() as u64, d.size);
    let mut out = Vec::new();
    partial_common::delta::decode(
        &blob[..],
        &mut Cursor::new(reference.data.clone()),
        &reference.diff,
        &mut out,
        None,
    )
    .unwrap();
    out
}

#[test]
fn a_rebuilt_layer_travels_as_a_small_delta_and_rebuilds_exactly() {
    let c = case();
    let app1 = image(&["app:1"], &[&c.base, &c.old]);
    let app2 = image(&["app:2"], &[&c.base, &c.new]);
    let dir = tempfile::tempdir().unwrap();
    for (name, compressed) in [("oci.tar", false), ("containerd.tar", true)] {
        let src = archive_file(&dir, name, &oci(&[&app1, &app2], compressed, true));
        let (plan, bundle) = export(&src, &app2, &src, &app1);
        let l = &plan.images[0].layers[1];
        let d = l.delta.as_ref().expect("layer 1 is a delta");
        assert_eq!(d.reference_diff_id, c.old.diff, "{name}: by position");
        assert_eq!(d.target_size, c.new.data.len() as u64);
        assert!(d.size < 64 << 10, "{name}: delta of {} bytes", d.size);
        let b = l.blob.as_ref().unwrap();
        assert_eq!(b.digest, c.new.diff, "{name}: the layer as rebuilt");
        let entries = read_tar(&bundle);
        assert!(
            !entries.contains_key(&partial_common::bundle_writer::blob_path(&c.new.diff)),
            "{name}: the whole layer must not be in the bundle"
        );
        assert!(rebuild(&plan, &bundle, &c.old) == c.new.data, "{name}");
        let req = plan.required_base();
        assert!(req.iter().any(|(chain, _, _)| chain == &app1.chains()[1]));
        assert!(plan.bytes_carried < 64 << 10);
    }
}

#[test]
fn an_unrelated_layer_travels_whole() {
    let c = case();
    let app1 = image(&["app:1"], &[&c.base, &c.old]);
    let app3 = image(&["app:3"], &[&c.base, &c.unrelated]);
    let dir = tempfile::tempdir().unwrap();
    let src = archive_file(&dir, "a.tar", &oci(&[&app1, &app3], false, true));
    let (plan, bundle) = export(&src, &app3, &src, &app1);
    assert!(plan.deltas().is_empty());
    let entries = read_tar(&bundle);
    assert!(entries.contains_key(&partial_common::bundle_writer::blob_path(&c.unrelated.diff)));
}

#[test]
fn the_best_sharing_reference_wins_when_the_position_differs() {
    // The reference sits at another position (and in another repository): found by content.
    let c = case();
    let other = image(&["other:1"], &[&c.old]);
    let app2 = image(&["app:2"], &[&c.base, &c.new]);
    let dir = tempfile::tempdir().unwrap();
    let refs = archive_file(&dir, "refs.tar", &legacy(&[&other], "2024-01-01T00:00:00Z"));
    let main = archive_file(&dir, "main.tar", &oci(&[&app2], false, true));
    let (plan, bundle) = export(&main, &app2, &refs, &other);
    // The base layer is not at the destination here: it is carried whole (nothing shares it).
    assert!(plan.images[0].layers[0].delta.is_none());
    assert!(rebuild(&plan, &bundle, &c.old) == c.new.data);
}
