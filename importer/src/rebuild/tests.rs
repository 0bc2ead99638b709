//! The rebuild offline: bundles built here (a Docker ≥ 25 layout, the base layer left out, the
//! app layer replaced by its delta against the previous app layer), daemon exports of every store
//! shape for the reference, and every way a delta bundle can be wrong.

use super::splice::{layer_header, rebuild};
use super::*;
use partial_common::archive::entries::{TarReader, TarWriter};
use partial_common::have::Origin;
use partial_common::testutil::archive::{gzip, image, noise, oci, Layer, TEntry};
use partial_common::{archive, exit};
use partial_delta_encode::{encode, ChunkIndex, EncodeOptions, Encoded};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Cursor, Read, Seek, Write};

/// An app layer: a big file that stays, and a small one that changes with `version`.
fn app_layer(version: u8) -> Layer {
    app_layer_of(7, version)
}

/// An app layer whose big file is made from `seed`.
fn app_layer_of(seed: u64, version: u8) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("app/big.bin", noise(seed, 300_000)),
        ("app/version", vec![version; 100]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    let data = b.into_inner().unwrap();
    let diff = Digest::of_bytes(&data);
    Layer { data, diff }
}

pub(crate) fn blob(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn delta_of(reference: &Layer, new: &Layer) -> Vec<u8> {
    let index = ChunkIndex::build(&reference.data[..]).unwrap();
    let mut out = Vec::new();
    let r = encode(
        &index,
        &mut Cursor::new(&reference.data),
        &new.data[..],
        &mut out,
        &EncodeOptions::default(),
    )
    .unwrap();
    assert!(matches!(r, Encoded::Delta(_)), "{r:?}");
    out
}

/// A delta bundle and what it needs.
pub(crate) struct Case {
    pub base: Layer,
    pub old: Layer,
    pub new: Layer,
    /// The plain archive (every layer whole).
    pub full: Vec<TEntry>,
    /// The bundle's entries: base left out, the app layer as a delta.
    pub entries: Vec<TEntry>,
    pub delta: Vec<u8>,
    pub layer: DeltaLayer,
}

pub(crate) fn case() -> Case {
    let base = partial_common::testutil::archive::layer("etc/os-release", b"base");
    let (old, new) = (app_layer(1), app_layer(2));
    let img = image(&["app:2"], &[&base, &new]);
    let built = oci(&[&img], false, true);
    let full = built.entries.clone();
    let mut b = built;
    b.remove(&blob(&base.diff));
    b.remove(&blob(&new.diff));
    let delta = delta_of(&old, &new);
    let digest = Digest::of_bytes(&delta);
    b.entries.push(TEntry::file(&blob(&digest), delta.clone()));
    let chain =
        partial_common::digest::chain_ids(&[base.diff.clone(), old.diff.clone()])[1].clone();
    let layer = DeltaLayer {
        target: new.diff.clone(),
        delta: LayerDelta {
            encoding: "chunks".into(),
            digest,
            size: delta.len() as u64,
            reference_diff_id: old.diff.clone(),
            reference_chain_id: chain,
            reference_origin: Origin::Image {
                name: "app:1".into(),
                image_id: Digest::of_bytes(b"app:1"),
            },
            target_size: new.data.len() as u64,
        },
    };
    Case {
        base,
        old,
        new,
        full,
        entries: b.entries,
        delta,
        layer,
    }
}

pub(crate) fn tar_of(entries: &[TEntry]) -> Vec<u8> {
    partial_common::testutil::archive::write_tar(
        entries,
        partial_common::testutil::archive::End::Proper,
    )
}

pub(crate) fn refs_of(layers: &[&Layer]) -> References {
    let files = layers
        .iter()
        .map(|l| {
            let mut f = tempfile::tempfile().unwrap();
            f.write_all(&l.data).unwrap();
            (l.diff.clone(), f)
        })
        .collect();
    References::from_files(files)
}

/// Every entry of a tar: name → data.
pub(crate) fn entries_of(data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut r = TarReader::new(data);
    let mut out = BTreeMap::new();
    while let Some(h) = r.next_entry().unwrap() {
        out.insert(h.name.clone(), r.read_all(1 << 30).unwrap());
    }
    out
}

/// The rebuilt tar (its length only in a failure's message).
struct Out(Vec<u8>);

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes of rebuilt tar", self.0.len())
    }
}

fn run(bundle: &[u8], layers: &[DeltaLayer], refs: References) -> anyhow::Result<Out> {
    let mut out = Vec::new();
    rebuild(bundle, "b.tgz", layers, refs, &mut out)?;
    Ok(Out(out))
}

fn code(e: &anyhow::Error) -> u8 {
    exit::code_of(e.chain())
}

#[test]
fn the_rebuilt_stream_is_the_plain_archive_but_the_base() {
    let c = case();
    let bundle = tar_of(&c.entries);
    let out = run(&bundle, std::slice::from_ref(&c.layer), refs_of(&[&c.old]))
        .unwrap()
        .0;
    let got = entries_of(&out);
    assert_eq!(got[&blob(&c.new.diff)], c.new.data);
    assert!(!got.contains_key(&blob(&c.layer.delta.digest)));
    // Every other entry as the plain archive has it (the base is still left out).
    let full = entries_of(&tar_of(&c.full));
    for (name, data) in &full {
        if *name == blob(&c.base.diff) {
            assert!(!got.contains_key(name));
        } else {
            assert_eq!(got.get(name), Some(data), "{name}");
        }
    }
    assert_eq!(got.len(), full.len() - 1);
    // The engine reads it as the image it is.
    let index = archive::scan(&out[..]).unwrap();
    assert_eq!(index.images[0].source.diff_ids[1], c.new.diff);

    // The same through the thread and pipe.
    let mut r = rebuilt_stream(
        Box::new(Cursor::new(bundle)),
        "b.tgz".into(),
        vec![c.layer.clone()],
        refs_of(&[&c.old]),
    )
    .unwrap();
    let mut piped = Vec::new();
    r.read_to_end(&mut piped).unwrap();
    assert_eq!(piped, out);
}

/// Reads the piped stream to its end: it must fail, never end cleanly.
fn piped_error(bundle: Vec<u8>, layers: Vec<DeltaLayer>, refs: References) -> std::io::Error {
    let mut r =
        rebuilt_stream(Box::new(Cursor::new(bundle)), "b.tgz".into(), layers, refs).unwrap();
    let mut sink = Vec::new();
    match r.read_to_end(&mut sink) {
        Ok(n) => panic!("the stream ended cleanly after {n} bytes"),
        Err(e) => e,
    }
}

#[test]
fn a_tampered_delta_is_a_verification_failure_not_an_end() {
    let c = case();
    let name = blob(&c.layer.delta.digest);
    // A byte of the delta's body changed (the manifest still names the original).
    for at in [100, c.delta.len() / 2, c.delta.len() - 2] {
        let mut bad = c.delta.clone();
        bad[at] ^= 0x40;
        let mut entries = c.entries.clone();
        entries.retain(|e| e.name != name);
        entries.push(TEntry::file(&name, bad));
        let bundle = tar_of(&entries);
        let e = run(&bundle, std::slice::from_ref(&c.layer), refs_of(&[&c.old])).unwrap_err();
        assert_eq!(code(&e), exit::VERIFY, "byte {at}: {e:#}");
        assert!(format!("{e:#}").contains(&c.new.diff.to_string()), "{e:#}");
        let e = piped_error(bundle, vec![c.layer.clone()], refs_of(&[&c.old]));
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "byte {at}: {e}");
    }
    // Good bytes, but not those the manifest names: caught by the delta's own digest.
    let mut layer = c.layer.clone();
    layer.delta.digest = Digest::of_bytes(b"other");
    let mut entries = c.entries.clone();
    entries.retain(|e| e.name != name);
    entries.push(TEntry::file(&blob(&layer.delta.digest), c.delta.clone()));
    let e = run(&tar_of(&entries), &[layer], refs_of(&[&c.old])).unwrap_err();
    assert_eq!(code(&e), exit::VERIFY, "{e:#}");
    assert!(
        format!("{e:#}").contains("do not match the manifest"),
        "{e:#}"
    );
}

#[test]
fn a_wrong_or_absent_reference_fails() {
    let c = case();
    let bundle = tar_of(&c.entries);
    // Another layer of the same size filed under the reference's diffID.
    let mut wrong = app_layer_of(8, 1);
    wrong.diff = c.old.diff.clone();
    let e = run(&bundle, std::slice::from_ref(&c.layer), refs_of(&[&wrong])).unwrap_err();
    assert_eq!(code(&e), exit::VERIFY, "{e:#}");
    let e = piped_error(bundle.clone(), vec![c.layer.clone()], refs_of(&[&wrong]));
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    // No reference at all.
    let e = run(&bundle, std::slice::from_ref(&c.layer), refs_of(&[])).unwrap_err();
    assert!(
        format!("{e:#}").contains("was not read from the daemon"),
        "{e:#}"
    );
    let e = piped_error(bundle, vec![c.layer.clone()], refs_of(&[]));
    assert!(e.to_string().contains(&c.old.diff.to_string()), "{e}");
}

#[test]
fn missing_doubled_unlisted_or_redundant_deltas_are_refused() {
    let c = case();
    let name = blob(&c.layer.delta.digest);
    let check = |entries: &[TEntry], layers: &[DeltaLayer], what: &str| {
        let e = run(&tar_of(entries), layers, refs_of(&[&c.old])).unwrap_err();
        assert_eq!(code(&e), exit::VERIFY, "{e:#}");
        assert!(format!("{e:#}").contains(what), "{e:#}");
    };
    let mut without = c.entries.clone();
    without.retain(|e| e.name != name);
    check(&without, std::slice::from_ref(&c.layer), "is missing");
    let mut doubled = c.entries.clone();
    doubled.push(TEntry::file(&name, c.delta.clone()));
    check(&doubled, std::slice::from_ref(&c.layer), "appears twice");
    check(&c.entries, &[], "does not list");
    let mut both = c.entries.clone();
    both.push(TEntry::file(&blob(&c.new.diff), c.new.data.clone()));
    check(&both, std::slice::from_ref(&c.layer), "both whole");
}

#[test]
fn a_broken_bundle_stream_under_a_delta_is_the_bundles_fault() {
    let c = case();
    let bundle = tar_of(&c.entries);
    // Cut in the middle of the delta entry.
    let at = bundle.windows(8).position(|w| w == b"PSLDELTA").unwrap();
    let cut = bundle[..at + 200].to_vec();
    let e = run(&cut, std::slice::from_ref(&c.layer), refs_of(&[&c.old])).unwrap_err();
    assert_eq!(code(&e), exit::VERIFY, "{e:#}");
    assert!(format!("{e:#}").contains("b.tgz"), "{e:#}");
}

#[test]
fn headers_of_layers_from_8_gib_on_are_valid() {
    let d = Digest::of_bytes(b"x");
    for size in [(8u64 << 30) - 1, 8 << 30, 10 << 30, 300 << 30] {
        let mut w = TarWriter::new(Vec::new());
        layer_header(&mut w, &d, size).unwrap();
        let (raw, _) = w.finish().unwrap();
        let h = tar::Header::from_byte_slice(&raw[..512]);
        assert_eq!(h.entry_size().unwrap(), size);
        assert_eq!(h.path().unwrap().to_str().unwrap(), blob(&d));
        // The engine's strict reader (checksum, size) takes it as well.
        let mut r = TarReader::new(&raw[..]);
        let head = r.next_entry().unwrap().unwrap();
        assert_eq!((head.size, head.name.as_str()), (size, blob(&d).as_str()));
    }
}

#[test]
fn references_are_found_in_every_store_shape_and_checked() {
    let c = case();
    let other = app_layer(9);
    let wanted = BTreeSet::from([c.old.diff.clone()]);
    let zstd = zstd::stream::encode_all(&c.old.data[..], 3).unwrap();
    let shapes: Vec<(&str, Vec<TEntry>)> = vec![
        (
            "graphdriver folder",
            vec![
                TEntry::file(&format!("{}/layer.tar", "c".repeat(64)), other.data.clone()),
                TEntry::file(&format!("{}/layer.tar", "d".repeat(64)), c.old.data.clone()),
            ],
        ),
        (
            "blob by diffID",
            vec![TEntry::file(&blob(&c.old.diff), c.old.data.clone())],
        ),
        (
            "gzip blob",
            vec![
                TEntry::file(&blob(&Digest::of_bytes(b"g")), gzip(&other.data)),
                TEntry::file(&blob(&Digest::of_bytes(b"h")), gzip(&c.old.data)),
            ],
        ),
        (
            "zstd blob",
            vec![TEntry::file(&blob(&Digest::of_bytes(&zstd)), zstd.clone())],
        ),
        (
            // podman's export (containers/image): top-level `<diffID>.tar`, linked from the folders
            "podman <diffID>.tar",
            vec![
                TEntry::file(&format!("{}.tar", other.diff.hex()), other.data.clone()),
                TEntry::file(&format!("{}.tar", c.old.diff.hex()), c.old.data.clone()),
                TEntry {
                    name: format!("{}/layer.tar", "d".repeat(64)),
                    kind: partial_common::testutil::archive::Kind::Symlink(format!(
                        "../{}.tar",
                        c.old.diff.hex()
                    )),
                    style: partial_common::testutil::archive::NameStyle::Plain,
                },
            ],
        ),
    ];
    for (what, entries) in shapes {
        let export = tar_of(&entries);
        let mut found =
            crate::layer_files::read(&export[..], &wanted, &std::env::temp_dir()).unwrap();
        let f = found
            .get_mut(&c.old.diff)
            .unwrap_or_else(|| panic!("{what}: not found"));
        let mut data = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut data).unwrap();
        assert_eq!(data, c.old.data, "{what}");
    }
    // A blob named by the wanted diffID but holding other bytes is not taken.
    let export = tar_of(&[TEntry::file(&blob(&c.old.diff), other.data.clone())]);
    assert!(
        crate::layer_files::read(&export[..], &wanted, &std::env::temp_dir())
            .unwrap()
            .is_empty()
    );
    // A daemon export that fails midway is the daemon's failure.
    let mut export = tar_of(&[TEntry::file("x/layer.tar", other.data.clone())]);
    export.truncate(export.len() - 1024);
    export.extend_from_slice(br#"{"errorDetail":{"message":"layer vanished"}}"#);
    let e = crate::layer_files::read(&export[..], &wanted, &std::env::temp_dir()).unwrap_err();
    assert_eq!(code(&e), exit::DAEMON, "{e:#}");
}

#[test]
fn a_delta_claimed_by_two_layers_is_an_inconsistent_manifest() {
    let c = case();
    let d = &c.layer.delta;
    let once = delta_layers_of([(&c.new.diff, d), (&c.new.diff, d)]).unwrap();
    assert_eq!(once.len(), 1);
    let e = delta_layers_of([(&c.new.diff, d), (&c.old.diff, d)]).unwrap_err();
    assert_eq!(code(&e), exit::VERIFY, "{e:#}");
}
