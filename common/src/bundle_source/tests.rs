//! The checked bundle source on bundles written here by the bundle writer, and on hostile
//! variants of them: each case is a bundle whose tar says more, or other, than its manifest.

use super::*;
use crate::digest::chain_ids;
use crate::image::{self, Blob};
use serde_json::json;

/// A small layer tar whose content depends on `seed`.
fn layer(seed: u8) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data = vec![seed; 3000 + seed as usize];
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, format!("file-{seed}"), &data[..])
        .unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Fixture {
    tar: Vec<u8>,
    manifest: BundleManifest,
    layers: Vec<Vec<u8>>,
}

fn config_of(diffs: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diffs}}))
    .unwrap()
}

/// `app:2`: layer 0 at the destination, layer 1 carried uncompressed, layer 2 carried as gzip.
fn fixture() -> Fixture {
    let layers = vec![layer(1), layer(2), layer(3)];
    let diffs: Vec<Digest> = layers.iter().map(|l| Digest::of_bytes(l)).collect();
    let chains = chain_ids(&diffs);
    let gz = gzip(&layers[2]);
    let blobs = [
        Blob::uncompressed(&diffs[0], Some(layers[0].len() as u64)),
        Blob::uncompressed(&diffs[1], Some(layers[1].len() as u64)),
        Blob {
            digest: Digest::of_bytes(&gz),
            media_type: image::layer_media_type(crate::codec::Compression::Gzip).into(),
            size: Some(gz.len() as u64),
            compression: crate::codec::Compression::Gzip,
        },
    ];
    let config = config_of(&diffs);
    let id = Digest::of_bytes(&config);
    let model = image::Image {
        id: id.clone(),
        config: Some(config.clone()),
        tags: vec!["app:2".into()],
        layers: (0..3)
            .map(|i| image::Layer {
                diff_id: diffs[i].clone(),
                chain_id: chains[i].clone(),
                blob: blobs[i].clone(),
            })
            .collect(),
        aliases: vec![],
        source_manifest: None,
        attached: vec![],
    };
    let mut w = BundleWriter::new(Vec::new());
    w.write_small_blob(&config).unwrap();
    w.write_blob(
        &diffs[1],
        layers[1].len() as u64,
        &mut &layers[1][..],
        |_| {},
    )
    .unwrap();
    w.write_blob(&blobs[2].digest, gz.len() as u64, &mut &gz[..], |_| {})
        .unwrap();
    let (tar, _) = w.finish(&[model]).unwrap();
    let manifest = manifest_for(&id, &diffs, &chains, &blobs, &["app:2"]);
    Fixture {
        tar,
        manifest,
        layers,
    }
}

fn manifest_for(
    id: &Digest,
    diffs: &[Digest],
    chains: &[Digest],
    blobs: &[Blob],
    tags: &[&str],
) -> BundleManifest {
    let layers: Vec<_> = (0..diffs.len())
        .map(|i| {
            json!({"diff_id": diffs[i], "chain_id": chains[i], "size": blobs[i].size,
                   "carried": i > 0, "blob": blobs[i]})
        })
        .collect();
    let file = json!({"name": "b.tar", "size": 1, "sha256": Digest::of_bytes(b""), "blake3": "0".repeat(64)});
    serde_json::from_value(json!({
        "schema": crate::manifest::SCHEMA, "version": 1,
        "tool": {"name": "partial-save", "version": "0"}, "created": "2026-01-01T00:00:00Z",
        "source": {"kind": "archives", "files": []},
        "bundle": {"name": "b.tar", "compression": "none", "layout": "oci", "size": 1,
                   "sha256": Digest::of_bytes(b""), "blake3": "0".repeat(64), "tar_size": 1,
                   "volumes": [file]},
        "images": [{"id": id, "tags": tags, "layers": layers}],
        "required_base": [{"chain_id": chains[0], "diff_id": diffs[0],
                           "origin": {"kind": "image", "name": "base:1", "image_id": id}}],
        "totals": {"layers_carried": 2, "layers_left_out": 1, "bytes_carried": 0,
                   "bytes_left_out": 0, "full_save_bytes": 0}
    }))
    .unwrap()
}

/// The regular-file entries of a tar, in order.
fn entries(tar: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .filter(|(n, _)| !n.ends_with('/'))
        .collect()
}

fn build(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn check(tar: &[u8], m: &BundleManifest) -> Result<Checked<Vec<u8>>, BundleSourceError> {
    copy_checked(tar, m, DeltaForm::Encoded, Vec::new())
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

#[test]
fn a_bundle_as_written_passes_and_comes_out_with_only_what_is_signed() {
    let f = fixture();
    let out = check(&f.tar, &f.manifest).unwrap();
    assert_eq!(out.blobs, 2);
    let names: Vec<String> = entries(&out.out).into_iter().map(|(n, _)| n).collect();
    let id = &f.manifest.images[0].id;
    assert!(names.contains(&blob_name(id)), "{names:?}");
    assert!(names.contains(&blob_name(&Digest::of_bytes(&f.layers[1]))));
    assert!(!names.contains(&blob_name(&Digest::of_bytes(&f.layers[0]))));
    assert!(names.contains(&"manifest.json".to_string()));
    // What comes out passes again, unchanged.
    let again = check(&out.out, &f.manifest).unwrap();
    assert_eq!(again.out, out.out);
}

/// The fixture's tar with `edit` applied to its entries.
fn edited(f: &Fixture, edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut e = entries(&f.tar);
    edit(&mut e);
    build(&e)
}

fn err_of(tar: &[u8], m: &BundleManifest) -> BundleSourceError {
    match check(tar, m) {
        Ok(_) => panic!("a hostile bundle passed"),
        Err(e) => {
            assert!(e.is_bundles_fault(), "{e}");
            e
        }
    }
}

#[test]
fn an_extra_image_tagged_as_a_base_image_is_refused() {
    let f = fixture();
    let hidden = config_of(&[Digest::of_bytes(&f.layers[0])]);
    let hid = Digest::of_bytes(&hidden);
    let tar = edited(&f, |e| {
        e.insert(0, (blob_name(&hid), hidden.clone()));
        let m = e.iter_mut().find(|(n, _)| n == "manifest.json").unwrap();
        let mut v: serde_json::Value = serde_json::from_slice(&m.1).unwrap();
        v.as_array_mut()
            .unwrap()
            .push(json!({"Config": blob_name(&hid),
            "RepoTags": ["base:1"], "Layers": [blob_name(&Digest::of_bytes(&f.layers[0]))]}));
        m.1 = serde_json::to_vec(&v).unwrap();
    });
    let e = err_of(&tar, &f.manifest);
    assert!(matches!(e, BundleSourceError::Unlisted { .. }), "{e}");
    assert!(e.to_string().contains(hid.hex()), "{e}");
}

#[test]
fn an_unlisted_tag_in_the_tars_own_metadata_is_refused() {
    let f = fixture();
    for file in ["manifest.json", "repositories"] {
        let tar = edited(&f, |e| {
            let m = e.iter_mut().find(|(n, _)| n == file).unwrap();
            let text = String::from_utf8(m.1.clone()).unwrap();
            m.1 = text
                .replace("\"app\"", "\"base\"")
                .replace("app:2", "base:1")
                .into_bytes();
        });
        let e = err_of(&tar, &f.manifest);
        assert!(
            matches!(e, BundleSourceError::Contradicts { .. }),
            "{file}: {e}"
        );
        assert!(e.to_string().contains(file), "{e}");
    }
}

#[test]
fn a_second_manifest_json_is_refused() {
    let f = fixture();
    let tar = edited(&f, |e| {
        let m = e
            .iter()
            .find(|(n, _)| n == "manifest.json")
            .unwrap()
            .clone();
        e.push(m);
    });
    let e = err_of(&tar, &f.manifest);
    assert!(matches!(e, BundleSourceError::Duplicate { .. }), "{e}");
}

#[test]
fn an_image_the_manifest_does_not_list_is_refused() {
    let f = fixture();
    let mut m = f.manifest.clone();
    m.images.clear();
    let e = err_of(&f.tar, &m);
    assert!(matches!(e, BundleSourceError::Unlisted { .. }), "{e}");
}

#[test]
fn a_missing_or_doubled_layer_is_refused() {
    let f = fixture();
    let l1 = blob_name(&Digest::of_bytes(&f.layers[1]));
    let tar = edited(&f, |e| e.retain(|(n, _)| *n != l1));
    let e = err_of(&tar, &f.manifest);
    assert!(matches!(e, BundleSourceError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("layer 1"), "{e}");
    let tar = edited(&f, |e| {
        let l = e.iter().find(|(n, _)| *n == l1).unwrap().clone();
        e.insert(2, l);
    });
    let e = err_of(&tar, &f.manifest);
    assert!(matches!(e, BundleSourceError::Duplicate { .. }), "{e}");
}

#[test]
fn a_config_whose_diff_ids_are_not_the_signed_layers_is_refused() {
    let f = fixture();
    // A config listing other layers, signed under its own ID.
    let other = config_of(&[Digest::of_bytes(&f.layers[0])]);
    let oid = Digest::of_bytes(&other);
    let mut m = f.manifest.clone();
    m.images[0].id = oid.clone();
    let tar = edited(&f, |e| {
        e.retain(|(n, _)| *n != blob_name(&f.manifest.images[0].id));
        e.insert(0, (blob_name(&oid), other.clone()));
    });
    let e = err_of(&tar, &m);
    assert!(matches!(e, BundleSourceError::Contradicts { .. }), "{e}");
    assert!(e.to_string().contains("diffIDs"), "{e}");
}

#[test]
fn links_and_special_files_are_refused() {
    let f = fixture();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "blobs/sha256/x", "/etc/passwd")
        .unwrap();
    let mut tar = b.into_inner().unwrap();
    tar.truncate(512); // just the link header, then the fixture's entries
    tar.extend_from_slice(&f.tar);
    let e = err_of(&tar, &f.manifest);
    assert!(matches!(e, BundleSourceError::NotAFile { .. }), "{e}");
}

#[test]
fn names_escaping_the_archive_and_data_after_its_end_are_refused() {
    let f = fixture();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..7].copy_from_slice(b"../evil");
    h.set_size(0);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&f.tar);
    assert!(matches!(
        err_of(&tar, &f.manifest),
        BundleSourceError::Tar(ArchiveError::UnsafeName(_))
    ));
    let mut tar = f.tar.clone();
    tar.extend_from_slice(&[0x41; 1024]);
    assert!(matches!(
        err_of(&tar, &f.manifest),
        BundleSourceError::Tar(ArchiveError::TrailingData { .. })
    ));
}

#[test]
fn a_compressed_blob_must_decompress_to_its_diff_id() {
    let f = fixture();
    // Layer 2's diffID (signed, and in the config) names other content than its gzip blob.
    let mut diffs: Vec<Digest> = f.layers.iter().map(|l| Digest::of_bytes(l)).collect();
    diffs[2] = Digest::of_bytes(b"something else");
    let config = config_of(&diffs);
    let id = Digest::of_bytes(&config);
    let mut m = f.manifest.clone();
    m.images[0].id = id.clone();
    let chains = chain_ids(&diffs);
    for (i, l) in m.images[0].layers.iter_mut().enumerate() {
        l.diff_id = diffs[i].clone();
        l.chain_id = chains[i].clone();
    }
    let tar = edited(&f, |e| {
        e.retain(|(n, _)| {
            *n != blob_name(&f.manifest.images[0].id)
                && !n.ends_with(".json")
                && *n != "repositories"
        });
        e.insert(0, (blob_name(&id), config.clone()));
        // The OCI manifest blob names the old config: drop it too.
        e.retain(|(n, d)| !(n.starts_with("blobs/") && d.starts_with(b"{\"config\"")));
    });
    let e = err_of(&tar, &m);
    assert!(e.to_string().contains("decompresses to"), "{e}");
}

/// A destination that records what it was handed, reading only part of each blob (the source
/// must hash the rest itself).
#[derive(Debug, Default)]
struct Recorder {
    configs: Vec<Digest>,
    blobs: Vec<(Digest, u64)>,
}

impl ImageDestination for Recorder {
    type Committed = (Recorder, Vec<Digest>);

    fn put_config(&mut self, id: &Digest, _bytes: &[u8]) -> Result<(), ArchiveError> {
        self.configs.push(id.clone());
        Ok(())
    }

    fn put_blob(&mut self, d: &Digest, size: u64, data: &mut dyn Read) -> Result<(), ArchiveError> {
        let mut first = [0u8; 10];
        data.read_exact(&mut first)?;
        self.blobs.push((d.clone(), size));
        Ok(())
    }

    fn commit(self, images: &[image::Image]) -> Result<Self::Committed, ArchiveError> {
        let ids = images.iter().map(|i| i.id.clone()).collect();
        Ok((self, ids))
    }
}

#[test]
fn a_destination_gets_each_listed_config_and_carried_blob_then_one_commit() {
    let f = fixture();
    let copied = copy_into(
        &f.tar[..],
        &f.manifest,
        DeltaForm::Encoded,
        Recorder::default(),
    )
    .unwrap();
    let (rec, committed) = copied.committed;
    let ids: Vec<Digest> = f.manifest.images.iter().map(|i| i.id.clone()).collect();
    assert_eq!(committed, ids);
    assert_eq!(rec.configs, ids);
    let carried: Vec<&Digest> = f.manifest.images[0]
        .layers
        .iter()
        .filter(|l| l.carried)
        .filter_map(|l| l.blob.as_ref().map(|b| &b.digest))
        .collect();
    assert_eq!(carried.len(), 2);
    assert_eq!(rec.blobs.len(), carried.len());
    assert_eq!(copied.blobs, carried.len());
    for (d, size) in &rec.blobs {
        assert!(carried.contains(&d), "{d} was not carried");
        assert!(*size > 10);
    }
}

#[test]
fn a_tampered_blob_fails_the_copy_before_the_commit_even_when_the_destination_skims_it() {
    let f = fixture();
    let carried = f.manifest.images[0].layers[1].blob.clone().unwrap().digest;
    let tar = edited(&f, |e| {
        for (n, data) in e.iter_mut() {
            if *n == blob_name(&carried) {
                let last = data.len() - 1;
                data[last] ^= 1;
            }
        }
    });
    let e = copy_into(
        &tar[..],
        &f.manifest,
        DeltaForm::Encoded,
        Recorder::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains(&carried.hex()[..12]), "{e}");
}

/// A destination that completes each blob on a clean end of its data (as a registry upload
/// does), recording what it completed and which reads failed (kept outside it: a failed copy
/// drops the destination).
#[derive(Default)]
struct Completer {
    seen: std::rc::Rc<std::cell::RefCell<Completed>>,
}

#[derive(Debug, Default)]
struct Completed {
    blobs: Vec<Digest>,
    failed_reads: Vec<(Digest, String)>,
}

impl ImageDestination for Completer {
    type Committed = ();

    fn put_config(&mut self, _id: &Digest, _bytes: &[u8]) -> Result<(), ArchiveError> {
        Ok(())
    }

    fn put_blob(
        &mut self,
        d: &Digest,
        _size: u64,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let mut all = Vec::new();
        let mut seen = self.seen.borrow_mut();
        match data.read_to_end(&mut all) {
            Ok(_) => seen.blobs.push(Digest::of_bytes(&all)),
            Err(e) => seen.failed_reads.push((d.clone(), e.to_string())),
        }
        Ok(())
    }

    fn commit(self, _images: &[image::Image]) -> Result<(), ArchiveError> {
        Ok(())
    }
}

#[test]
fn a_destination_reading_a_tampered_blob_to_its_end_gets_an_error_in_place_of_the_end() {
    let f = fixture();
    let good = Completer::default();
    let seen = good.seen.clone();
    copy_into(&f.tar[..], &f.manifest, DeltaForm::Encoded, good).unwrap();
    assert_eq!(seen.borrow().blobs.len(), 2);
    assert!(seen.borrow().failed_reads.is_empty(), "{:?}", seen.borrow());

    let carried = f.manifest.images[0].layers[1].blob.clone().unwrap().digest;
    let tar = edited(&f, |e| {
        for (n, data) in e.iter_mut() {
            if *n == blob_name(&carried) {
                let last = data.len() - 1;
                data[last] ^= 1;
            }
        }
    });
    let dest = Completer::default();
    let seen = dest.seen.clone();
    let e = copy_into(&tar[..], &f.manifest, DeltaForm::Encoded, dest).unwrap_err();
    assert!(e.to_string().contains(&carried.hex()[..12]), "{e}");
    assert!(
        matches!(
            e,
            BundleSourceError::Tar(ArchiveError::DigestMismatch { .. })
        ),
        "{e:?}"
    );
    // The tampered blob never reached a clean end: its last read failed instead.
    let seen = seen.borrow();
    assert!(!seen.blobs.contains(&carried), "{seen:?}");
    assert_eq!(seen.failed_reads.len(), 1, "{seen:?}");
    assert_eq!(seen.failed_reads[0].0, carried);
    assert!(
        seen.failed_reads[0].1.contains("digest mismatch"),
        "{seen:?}"
    );
}

#[test]
fn the_left_out_layers_are_what_the_checked_archive_names_and_lacks() {
    let f = fixture();
    let mut out = Vec::new();
    copy_checked(&f.tar[..], &f.manifest, DeltaForm::Encoded, &mut out).unwrap();
    let written = entries(&out);
    let names: BTreeSet<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    let listed: Vec<serde_json::Value> = written
        .iter()
        .find(|(n, _)| n == "manifest.json")
        .map(|(_, d)| serde_json::from_slice(d).unwrap())
        .unwrap();
    let lacking: BTreeSet<String> = listed[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .filter(|l| !names.contains(l.as_str()))
        .collect();
    let left_out = left_out_layers(&f.manifest, DeltaForm::Encoded, &BTreeSet::new()).unwrap();
    assert_eq!(left_out.keys().cloned().collect::<BTreeSet<_>>(), lacking);
    // Layer 0 is the one at the destination, named by its diffID.
    let base = Digest::of_bytes(&f.layers[0]);
    assert_eq!(
        left_out.into_iter().collect::<Vec<_>>(),
        [(blob_name(&base), base)]
    );
    // An image the daemon leaves out asks for nothing.
    let id = f.manifest.images[0].id.clone();
    let none = left_out_layers(&f.manifest, DeltaForm::Encoded, &BTreeSet::from([id])).unwrap();
    assert!(none.is_empty());
}

#[test]
fn an_invalid_signed_tag_is_refused_before_anything_is_written() {
    let f = fixture();
    let mut m = f.manifest.clone();
    m.images[0].tags = vec!["Bad Tag!".into()];
    let mut out = Vec::new();
    let e = copy_checked(&f.tar[..], &m, DeltaForm::Encoded, &mut out).unwrap_err();
    assert!(matches!(e, BundleSourceError::BadManifest(_)), "{e}");
    assert!(out.is_empty());
}

#[test]
fn a_blob_of_another_size_than_signed_is_refused() {
    let f = fixture();
    let mut m = f.manifest.clone();
    if let Some(b) = m.images[0].layers[1].blob.as_mut() {
        b.size = Some(7);
    }
    let e = err_of(&f.tar, &m);
    assert!(
        e.to_string().contains("bytes, the signed manifest says 7"),
        "{e}"
    );
}

/// Writes the `bundle_source` fuzz target's seeds (the fixture and two hostile variants) into
/// `fuzz/regressions/bundle_source/`: `cargo test -p partial-common --lib
/// write_bundle_source_seeds -- --ignored`.
#[test]
#[ignore]
fn write_bundle_source_seeds() {
    let f = fixture();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/bundle_source");
    std::fs::create_dir_all(&dir).unwrap();
    let m = f.manifest.to_bytes();
    let seed = |name: &str, control: u8, tar: &[u8]| {
        let mut v = vec![control];
        v.extend_from_slice(&(m.len() as u16).to_le_bytes());
        v.extend_from_slice(&m);
        v.extend_from_slice(tar);
        std::fs::write(dir.join(name), v).unwrap();
    };
    seed("as-written", 0, &f.tar);
    seed("as-written-rebuilt", 1, &f.tar);
    let doubled = edited(&f, |e| {
        let m = e
            .iter()
            .find(|(n, _)| n == "manifest.json")
            .unwrap()
            .clone();
        e.push(m);
    });
    seed("second-manifest-json", 0, &doubled);
}

#[test]
fn the_fixture_manifest_passes_the_readers_own_checks() {
    let f = fixture();
    crate::manifest::BundleManifest::parse(&f.manifest.to_bytes(), "fixture").unwrap();
}
