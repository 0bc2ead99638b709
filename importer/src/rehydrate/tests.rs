//! Rehydrate's completion, offline: checked bundle streams as the bundle writer shapes them (the
//! left-out base layer named by its diffID; the carried layer uncompressed, gzip or zstd)
//! against daemon exports of every store (graphdriver layer folders, containerd blobs with
//! either compression, podman's top-level layers). Which entries are left out is
//! `bundle_source::left_out_layers`, tested beside it.

use super::write::{write_complete, Needed};
use crate::layer_files::{self, LayerFiles};
use partial_common::archive::entries::TarReader;
use partial_common::archive::{self, ArchiveIndex};
use partial_common::{exit, Digest};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// A small layer tar whose content depends on `seed`.
fn layer(seed: u8) -> Vec<u8> {
    tar_of(&[(format!("file-{seed}"), vec![seed; 3000 + seed as usize])])
}

fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn sha(data: &[u8]) -> Digest {
    Digest::of_bytes(data)
}

fn blob(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn config(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

/// How the bundle carries the app layer.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Uncompressed,
    Gzip,
    Zstd,
}

/// The base layer (the bundle leaves it out) and the app layer (carried).
struct Layers {
    base: Vec<u8>,
    app: Vec<u8>,
}

fn layers() -> Layers {
    Layers {
        base: layer(1),
        app: layer(2),
    }
}

/// What the checked stream of a bundle of app:2 = [base, app] lacks: the base layer, by diffID.
fn needed_of(l: &Layers) -> Needed {
    let base = sha(&l.base);
    BTreeMap::from([(blob(&base), base)])
}

/// The checked stream of a bundle of app:2 = [base, app], the app layer carried in `shape`.
fn bundle(shape: Shape, l: &Layers) -> Vec<u8> {
    let diffs = [sha(&l.base), sha(&l.app)];
    let cfg = config(&diffs);
    let cfg_id = sha(&cfg);
    let app = match shape {
        Shape::Uncompressed => l.app.clone(),
        Shape::Gzip => gzip(&l.app),
        Shape::Zstd => zstd(&l.app),
    };
    let entries = vec![
        (blob(&cfg_id), cfg.clone()),
        (blob(&sha(&app)), app.clone()),
        (
            "index.json".into(),
            br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(),
        ),
        (
            "manifest.json".into(),
            serde_json::to_vec(&json!([{
                "Config": blob(&cfg_id),
                "RepoTags": ["app:2"],
                "Layers": [blob(&diffs[0]), blob(&sha(&app))],
            }]))
            .unwrap(),
        ),
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("repositories".into(), br#"{"app":{"2":"x"}}"#.to_vec()),
    ];
    tar_of(&entries)
}

#[derive(Clone, Copy, Debug)]
enum Store {
    /// A graphdriver daemon: uncompressed `<v1id>/layer.tar` folders.
    Graphdriver,
    /// The containerd store holding the base as a gzip blob.
    ContainerdGzip,
    /// The containerd store holding the base as a zstd blob.
    ContainerdZstd,
    /// podman (containers/image): uncompressed top-level `<diffID>.tar` layers, each
    /// `<v1id>/layer.tar` a symbolic link to one.
    Podman,
}

/// The daemon's export of the base image (and an unrelated layer first).
fn export(store: Store, l: &Layers) -> Vec<u8> {
    let other = layer(9);
    let entries = match store {
        Store::Graphdriver => vec![
            (format!("{}/layer.tar", "c".repeat(64)), other),
            (format!("{}/layer.tar", "d".repeat(64)), l.base.clone()),
            ("manifest.json".into(), b"[]".to_vec()),
        ],
        Store::ContainerdGzip | Store::ContainerdZstd => {
            let base = match store {
                Store::ContainerdGzip => gzip(&l.base),
                _ => zstd(&l.base),
            };
            let other = gzip(&other);
            vec![
                (blob(&sha(&other)), other),
                (blob(&sha(&base)), base),
                ("index.json".into(), br#"{"manifests":[]}"#.to_vec()),
            ]
        }
        Store::Podman => {
            let mut b = tar::Builder::new(Vec::new());
            for (v1, data) in [("c", &other), ("d", &l.base)] {
                let name = format!("{}.tar", sha(data).hex());
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o444);
                b.append_data(&mut h, &name, &data[..]).unwrap();
                let mut link = tar::Header::new_gnu();
                link.set_entry_type(tar::EntryType::Symlink);
                link.set_size(0);
                b.append_link(
                    &mut link,
                    format!("{}/layer.tar", v1.repeat(64)),
                    format!("../{name}"),
                )
                .unwrap();
            }
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            b.append_data(&mut h, "manifest.json", &b"[]"[..]).unwrap();
            return b.into_inner().unwrap();
        }
    };
    tar_of(&entries)
}

/// Every entry of a tar: name → data.
fn entries_of(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut r = TarReader::new(data);
    let mut out = Vec::new();
    while let Some(h) = r.next_entry().unwrap() {
        out.push((h.name.clone(), r.read_all(1 << 20).unwrap()));
    }
    out
}

/// The layers `needed` out of the daemon's `export`, into `dir`; every one must be found.
fn read_layers(
    export: &[u8],
    needed: &Needed,
    dir: &std::path::Path,
) -> anyhow::Result<LayerFiles> {
    let wanted = needed.values().cloned().collect();
    let found = layer_files::read(export, &wanted, dir)?;
    if let Some((entry, _)) = needed.iter().find(|(_, d)| !found.contains_key(*d)) {
        anyhow::bail!("unfilled {entry}");
    }
    Ok(found)
}

/// Runs rehydrate's layer reading and write offline; returns the complete archive.
fn rehydrate(bundle: &[u8], export: &[u8], needed: &Needed) -> anyhow::Result<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let found = read_layers(export, needed, dir.path())?;
    let out = dir.path().join("full.tar");
    write_complete(bundle, "b", &out, found, needed)?;
    let full = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the layer files are anonymous: nothing else is left in the folder"
    );
    Ok(full)
}

/// The complete archive holds every layer of every image (its own bytes, or the uncompressed
/// layer of the right diffID), keeps the bundle's entries byte for byte, and ends with the
/// top-level metadata.
fn check_complete(shape: Shape, store: Store, bundle: &[u8], full: &[u8]) {
    let what = format!("{shape:?} bundle, {store:?} daemon");
    let index: ArchiveIndex = archive::scan(full).unwrap();
    let entries: BTreeMap<String, Vec<u8>> = entries_of(full).into_iter().collect();
    for img in &index.images {
        for (entry, diff_id) in img.layer_entries.iter().zip(&img.source.diff_ids) {
            let data = entries
                .get(entry)
                .unwrap_or_else(|| panic!("{what}: {entry} is missing"));
            let mut plain = Vec::new();
            partial_common::codec::decompress(std::io::Cursor::new(data.clone()))
                .unwrap()
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(sha(&plain), *diff_id, "{what}: {entry}");
            // Every blob holds the bytes it is named by (the added ones: uncompressed).
            let hex = entry.strip_prefix("blobs/sha256/").unwrap();
            assert_eq!(sha(data).hex(), hex, "{what}: {entry}");
        }
    }
    for (name, data) in entries_of(bundle) {
        assert_eq!(entries.get(&name), Some(&data), "{what}: {name} changed");
    }
    let names: Vec<String> = entries_of(full).into_iter().map(|(n, _)| n).collect();
    let first_meta = names
        .iter()
        .position(|n| matches!(n.as_str(), "manifest.json" | "repositories" | "index.json"))
        .unwrap();
    assert!(
        names[first_meta..]
            .iter()
            .all(|n| !n.contains("layer.tar") && !n.starts_with("blobs/")),
        "{what}: metadata must come last: {names:?}"
    );
}

#[test]
fn every_bundle_shape_is_completed_from_every_store() {
    let l = layers();
    for shape in [Shape::Uncompressed, Shape::Gzip, Shape::Zstd] {
        let b = bundle(shape, &l);
        for store in [
            Store::Graphdriver,
            Store::ContainerdGzip,
            Store::ContainerdZstd,
            Store::Podman,
        ] {
            let full = rehydrate(&b, &export(store, &l), &needed_of(&l))
                .unwrap_or_else(|e| panic!("{shape:?} bundle, {store:?} daemon: {e:#}"));
            check_complete(shape, store, &b, &full);
        }
    }
}

#[test]
fn an_export_without_the_base_layer_fills_nothing() {
    let l = layers();
    let other = Layers {
        base: layer(7),
        app: layer(8),
    };
    for store in [Store::Graphdriver, Store::ContainerdZstd] {
        let e = rehydrate(
            &bundle(Shape::Gzip, &l),
            &export(store, &other),
            &needed_of(&l),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unfilled"), "{e}");
    }
}

#[test]
fn a_broken_bundle_stream_is_a_verification_failure_and_leaves_nothing() {
    let l = layers();
    let b = bundle(Shape::Gzip, &l);
    let dir = tempfile::tempdir().unwrap();
    let needed = needed_of(&l);
    let ex = export(Store::Graphdriver, &l);
    let out = dir.path().join("full.tar");
    // Cut inside the entries: the strict reader refuses it (the `tar` crate took a clean end).
    let cut = b[..b.len() - 2048].to_vec();
    // Garbage after the end (a daemon's error message) is refused too.
    let mut tail = b.clone();
    tail.extend_from_slice(br#"{"error":"boom"}"#);
    for stream in [cut, tail] {
        let found = read_layers(&ex, &needed, dir.path()).unwrap();
        let e = write_complete(&stream[..], "b.tgz", &out, found, &needed).unwrap_err();
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY, "{e:#}");
        assert!(format!("{e:#}").contains("b.tgz"), "{e:#}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing is left"
        );
    }
}

#[test]
fn a_daemon_export_that_fails_before_the_base_layer_is_a_daemon_failure() {
    let l = layers();
    // The export stops being read once every layer was found: here it fails before that.
    let other = Layers {
        base: layer(7),
        app: layer(8),
    };
    let mut ex = export(Store::Graphdriver, &other);
    ex.truncate(ex.len() - 1024);
    ex.extend_from_slice(br#"{"errorDetail":{"message":"layer vanished"}}"#);
    let dir = tempfile::tempdir().unwrap();
    let e = read_layers(&ex, &needed_of(&l), dir.path()).unwrap_err();
    assert_eq!(exit::code_of(e.chain()), exit::DAEMON, "{e:#}");
    assert!(format!("{e:#}").contains("layer vanished"), "{e:#}");
}

#[test]
fn a_delta_bundle_is_completed_with_its_layers_rebuilt() {
    use crate::rebuild::tests::{blob, case, entries_of as all_entries, refs_of, tar_of};
    let c = case();
    let bundle = tar_of(&c.entries);
    let deltas = vec![c.layer.clone()];
    // The delta's layer is rebuilt; only the base is taken from the daemon.
    let needed = BTreeMap::from([(blob(&c.base.diff), c.base.diff.clone())]);
    let export = tar_of(&[partial_common::testutil::archive::TEntry::file(
        &format!("{}/layer.tar", "d".repeat(64)),
        c.base.data.clone(),
    )]);
    let dir = tempfile::tempdir().unwrap();
    let found = read_layers(&export, &needed, dir.path()).unwrap();
    // The write reads the rebuilt stream.
    let stream = crate::rebuild::rebuilt_stream(
        Box::new(std::io::Cursor::new(bundle)),
        "b".into(),
        deltas,
        refs_of(&[&c.old]),
    )
    .unwrap();
    let out = dir.path().join("full.tar");
    write_complete(stream, "b", &out, found, &needed).unwrap();
    let full = std::fs::read(&out).unwrap();
    // The plain archive, every entry (the metadata moved last).
    let got = all_entries(&full);
    let want = all_entries(&tar_of(&c.full));
    assert_eq!(got, want);
    assert!(archive::scan(&full[..]).is_ok());
}

#[test]
fn a_tampered_delta_leaves_no_complete_archive() {
    use crate::rebuild::tests::{blob, case, refs_of, tar_of};
    let c = case();
    let name = blob(&c.layer.delta.digest);
    let mut entries = c.entries.clone();
    entries.retain(|e| e.name != name);
    let mut bad = c.delta.clone();
    let n = bad.len();
    bad[n / 2] ^= 1;
    entries.push(partial_common::testutil::archive::TEntry::file(&name, bad));
    let stream = crate::rebuild::rebuilt_stream(
        Box::new(std::io::Cursor::new(tar_of(&entries))),
        "b".into(),
        vec![c.layer.clone()],
        refs_of(&[&c.old]),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("full.tar");
    let e = write_complete(stream, "b", &out, LayerFiles::new(), &Needed::new()).unwrap_err();
    assert_eq!(exit::code_of(e.chain()), exit::VERIFY, "{e:#}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temporary files left"
    );
}

#[test]
fn exported_images_are_named_by_tag_and_id() {
    let id = Digest::of_bytes(b"base");
    let other = Digest::of_bytes(b"other");
    let local = [
        partial_common::daemon::ImageMeta::new(id.clone(), vec!["base:1".into()], vec![]),
        partial_common::daemon::ImageMeta::new(other.clone(), vec![], vec![]),
    ];
    assert_eq!(
        super::described(&[id.to_string(), other.to_string()], &local),
        format!("base:1 ({id}), {other}")
    );
}
