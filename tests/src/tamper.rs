//! Hostile bundles that carry a valid signature: what a holder of the signing key (or a broken
//! exporter) could sign. A bundle is opened into its plain tar and manifest JSON with decoders of
//! the `flate2` and `zstd` crates (not the code under test), edited entry by entry, then written
//! back compressed, its manifest's `bundle` fields made to match, and signed again with the key.

use partial_common::output::hashing::FileDigests;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::Path;

/// One regular file or other entry of a tar: its header as built, name and data.
pub type Entry = (tar::Header, String, Vec<u8>);

/// A bundle opened: its plain tar's entries and its manifest.
#[derive(Clone)]
pub struct Parts {
    pub entries: Vec<Entry>,
    pub manifest: Value,
}

/// Opens `bundle` (one volume, any compression) and its manifest `bundle.manifest.json`.
pub fn open(bundle: &Path) -> Parts {
    let raw = std::fs::read(bundle).unwrap();
    let mut tar = Vec::new();
    crate::bundle_check::decode_any(&raw, &mut tar).unwrap();
    let mut entries = Vec::new();
    let mut a = tar::Archive::new(&tar[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let header = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        entries.push((header, name, data));
    }
    let manifest = serde_json::from_slice(&std::fs::read(manifest_of(bundle)).unwrap()).unwrap();
    Parts { entries, manifest }
}

fn manifest_of(bundle: &Path) -> std::path::PathBuf {
    partial_common::output::naming::BundleFiles::resolve(bundle).manifest()
}

/// The tar of `entries` (headers kept: links stay links).
pub fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (h, name, data) in entries {
        let mut h = h.clone();
        if h.entry_type().is_hard_link() || h.entry_type().is_symlink() {
            let target = h.link_name().unwrap().unwrap().into_owned();
            b.append_link(&mut h, name, target).unwrap();
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

/// Compresses `tar` as `compression` (`gzip`, `zstd`, `none`).
pub fn compress(tar: &[u8], compression: &str) -> Vec<u8> {
    match compression {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        "zstd" => zstd::encode_all(tar, 3).unwrap(),
        _ => tar.to_vec(),
    }
}

/// Writes `bytes` as the single-volume bundle `out`, with `manifest` (its `bundle` fields set to
/// match `bytes`, `tar_size` to `tar_size`) signed with `key`.
pub fn write_signed(
    bytes: &[u8],
    compression: &str,
    tar_size: u64,
    manifest: &Value,
    key: &Path,
    out: &Path,
) {
    std::fs::write(out, bytes).unwrap();
    let digests = FileDigests::of_bytes(bytes);
    let name = out.file_name().unwrap().to_str().unwrap();
    let mut m = manifest.clone();
    let file = json!({"name": name, "size": digests.size,
        "sha256": digests.sha256.to_string(), "blake3": digests.blake3});
    let b = &mut m["bundle"];
    b["name"] = json!(name);
    b["compression"] = json!(compression);
    b["size"] = json!(digests.size);
    b["sha256"] = json!(digests.sha256.to_string());
    b["blake3"] = json!(digests.blake3);
    b["tar_size"] = json!(tar_size);
    b["volumes"] = json!([file]);
    sign_manifest(&m, key, out);
}

/// Writes `m` as the manifest of bundle `out`, with its signature by `key`.
pub fn sign_manifest(m: &Value, key: &Path, out: &Path) {
    let mut bytes = serde_json::to_vec_pretty(m).unwrap();
    bytes.push(b'\n');
    let parsed = partial_common::manifest::BundleManifest::parse(&bytes, "edited manifest")
        .unwrap_or_else(|e| panic!("the edited manifest does not parse: {e}"));
    let mpath = manifest_of(out);
    std::fs::write(&mpath, &bytes).unwrap();
    let sk = partial_common::sign::load_secret_key(key, None).unwrap();
    let sig = partial_common::sign::sign_bytes(&sk, &bytes, &parsed.trusted_comment()).unwrap();
    std::fs::write(partial_common::output::naming::signature_path(&mpath), sig).unwrap();
}

/// Writes `parts` as bundle `out`, compressed with `compression`, signed with `key`.
pub fn write_parts(parts: &Parts, compression: &str, key: &Path, out: &Path) {
    let tar = tar_of(&parts.entries);
    let bytes = compress(&tar, compression);
    write_signed(
        &bytes,
        compression,
        tar.len() as u64,
        &parts.manifest,
        key,
        out,
    );
}

/// A regular-file entry.
pub fn file(name: &str, data: Vec<u8>) -> Entry {
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    (h, name.to_string(), data)
}

/// The data of entry `name`.
pub fn data<'a>(parts: &'a Parts, name: &str) -> &'a [u8] {
    parts
        .entries
        .iter()
        .find(|(_, n, _)| n == name)
        .map(|(_, _, d)| &d[..])
        .unwrap_or_else(|| panic!("no entry {name}"))
}

/// Replaces the data of entry `name`.
pub fn set_data(parts: &mut Parts, name: &str, data: Vec<u8>) {
    let e = parts
        .entries
        .iter_mut()
        .find(|(_, n, _)| n == name)
        .unwrap_or_else(|| panic!("no entry {name}"));
    e.2 = data;
}
