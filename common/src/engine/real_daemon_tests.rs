//! Checks against real `docker save` archives (ignored by default: they need a daemon's output).
//!
//! `PARTIAL_REAL_SAVE=/path/a.tar:/path/b.tar cargo test -p partial-common --lib real_daemon_tests -- --ignored`
//! checks that every legacy folder of each archive is identified from its own `json` (no index),
//! and that the engine gives the same bundle without an index as with one. With
//! `PARTIAL_REAL_EXPORT=image PARTIAL_REAL_BASE=image PARTIAL_REAL_OUT=file`, it also writes the
//! no-index filter of the first archive (exporting one image, the destination holding the other)
//! for a real `docker load`.

use super::Engine;
use crate::archive::legacy_id::V1Json;
use crate::archive::names::{role_of, EntryRole};
use crate::archive::tarstream::TarReader;
use crate::archive::*;
use crate::digest::{chain_ids, Digest};
use crate::have::{HaveSet, Origin};
use crate::image::Image;
use crate::plan::Layout;

fn archives() -> Vec<String> {
    std::env::var("PARTIAL_REAL_SAVE")
        .unwrap_or_default()
        .split(':')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[test]
#[ignore]
fn real_archives_every_folder_identified() {
    let paths = archives();
    assert!(!paths.is_empty(), "set PARTIAL_REAL_SAVE");
    for path in paths {
        let data = std::fs::read(&path).unwrap();
        let ix = scan(&data[..]).unwrap();
        assert_eq!(ix.layout, Layout::Legacy);
        let candidates: Vec<Digest> = ix
            .images
            .iter()
            .flat_map(|i| chain_ids(&i.source.diff_ids))
            .collect();
        let mut r = TarReader::new(&data[..]);
        let mut folders = 0;
        while let Some(h) = r.next_entry().unwrap() {
            if let EntryRole::FolderJson(f) = role_of(&h.name) {
                let json = r.read_all(1 << 20).unwrap();
                let id = V1Json::parse(&json).unwrap().identify(&f, &candidates);
                assert!(id.is_some(), "{path}: folder {f} not identified");
                // It is the chain manifest.json gives for this folder.
                let entry = format!("{f}/layer.tar");
                for img in &ix.images {
                    let chains = chain_ids(&img.source.diff_ids);
                    for (e, c) in img.layer_entries.iter().zip(&chains) {
                        if *e == entry {
                            assert_eq!(Some(c), id.as_ref(), "{path}: {f}");
                        }
                    }
                }
                folders += 1;
            }
        }
        eprintln!("{path}: {folders} folders, all identified");
        assert!(folders > 0);

        // Every image exported, the destination holding the first one: no-index and index agree.
        let first = &ix.images[0];
        let mut have = HaveSet::new();
        have.add_image(
            &first.source.diff_ids,
            &Origin::Image {
                name: "first".into(),
                image_id: first.source.id.clone(),
            },
        );
        let mut outs = Vec::new();
        for indexed in [true, false] {
            let mut f = Engine::new(Vec::new(), ix.models(), have.clone());
            f.add_input(&data[..], &path, indexed.then(|| ix.clone()))
                .unwrap();
            let (plan, out) = f.finish().unwrap();
            assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
            outs.push((plan, out));
        }
        assert_eq!(outs[0].0.images, outs[1].0.images);
        assert_eq!(outs[0].1, outs[1].1);
        scan(&outs[0].1[..]).unwrap();
    }
}

#[test]
#[ignore]
fn real_archive_write_filtered() {
    let (Ok(export), Ok(base), Ok(out)) = (
        std::env::var("PARTIAL_REAL_EXPORT"),
        std::env::var("PARTIAL_REAL_BASE"),
        std::env::var("PARTIAL_REAL_OUT"),
    ) else {
        panic!("set PARTIAL_REAL_EXPORT, PARTIAL_REAL_BASE, PARTIAL_REAL_OUT");
    };
    let path = archives().into_iter().next().unwrap();
    let data = std::fs::read(&path).unwrap();
    let ix = scan(&data[..]).unwrap();
    let src = ix.model(ix.find(&export).unwrap());
    let b = ix.find(&base).unwrap();
    let mut have = HaveSet::new();
    have.add_image(
        &b.source.diff_ids,
        &Origin::Image {
            name: base.clone(),
            image_id: b.source.id.clone(),
        },
    );
    let mut f = Engine::new(Vec::new(), vec![src], have);
    f.add_input(&data[..], &path, None).unwrap();
    let (plan, bytes) = f.finish().unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&plan).unwrap());
    std::fs::write(out, bytes).unwrap();
}

/// Writes synthetic archives for a real `docker load` check into `PARTIAL_SYNTH_DIR`:
/// `<layout>-base.tar` (complete) and `<layout>-app-filtered.tar` (app without base's layer).
#[test]
#[ignore]
fn synthetic_archives_for_docker_load() {
    use crate::testutil::archive::*;
    let dir = std::env::var("PARTIAL_SYNTH_DIR").expect("set PARTIAL_SYNTH_DIR");
    let a = layer("a.txt", b"layer a");
    let b = layer("b.txt", b"layer b");
    let c = layer("c.txt", b"layer c, repeated");
    let base = image(&["sbase:1"], &[&a]);
    let app = image(&["sapp:1"], &[&a, &b, &c, &c]);
    let other = image(&["sother:1"], &[&b, &a]);
    for (name, built) in [
        (
            "legacy",
            legacy(&[&base, &app, &other], "1970-01-01T00:00:00Z"),
        ),
        ("oci", oci(&[&base, &app, &other], false, true)),
    ] {
        let tar = built.tar();
        let as_image =
            |t: &TestImage| Image::from_diff_ids(t.id.clone(), t.tags.clone(), &t.diffs());
        let mut f = Engine::new(Vec::new(), vec![as_image(&base)], HaveSet::new());
        f.add_input(&tar[..], name, None).unwrap();
        let (_, full) = f.finish().unwrap();
        std::fs::write(format!("{dir}/{name}-base.tar"), full).unwrap();
        let mut f = Engine::new(Vec::new(), vec![as_image(&app)], have(&[&base]));
        f.add_input(&tar[..], name, None).unwrap();
        let (plan, out) = f.finish().unwrap();
        assert_eq!(plan.blobs_left_out, 1);
        std::fs::write(format!("{dir}/{name}-app-filtered.tar"), out).unwrap();
    }
}
