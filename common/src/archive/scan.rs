//! [`scan`]: one pass over an archive that keeps only its metadata (manifest.json, configs,
//! index.json, OCI manifests) and, for every other regular file, its size and compression (and
//! the digest of compressed files whose name does not say it), plus its symlinks; layer data is
//! never held. Returns an [`ArchiveIndex`].

use super::metadata::{Collected, MAX_JSON};
use super::names::{clean_name, named_digest, resolve_link, role_of, EntryRole};
use super::tarstream::TarReader;
use super::{ArchiveError, ArchiveIndex, EntryInfo};
use crate::codec::{self, Compression};
use crate::digest::Digest;
use crate::image::Platform;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;

/// How many leading bytes are read to tell a JSON blob from layer data.
pub(crate) const PEEK: usize = 64;

pub(crate) use super::tarstream::looks_like_json;

/// Reads up to `n` bytes of the current entry.
pub(crate) fn read_prefix<R: Read>(
    r: &mut TarReader<R>,
    n: usize,
) -> Result<Vec<u8>, ArchiveError> {
    let want = (r.remaining() as usize).min(n);
    let mut buf = vec![0u8; want];
    r.data()
        .read_exact(&mut buf)
        .map_err(|e| r.map_data_err(e))?;
    Ok(buf)
}

/// Hashes the rest of the current entry (after `prefix`).
fn hash_rest<R: Read>(r: &mut TarReader<R>, prefix: &[u8]) -> Result<Digest, ArchiveError> {
    let mut h = Sha256::new();
    h.update(prefix);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.data().read(&mut buf).map_err(|e| r.map_data_err(e))?;
        if n == 0 {
            return Ok(Digest::from_sha256(h.finalize().into()));
        }
        h.update(&buf[..n]);
    }
}

/// Reads an archive (plain tar) and returns its layout and images, following every platform of
/// multi-platform indexes. Layer data is skipped, small JSON entries (≤ 16 MiB) are parsed.
pub fn scan<R: Read>(input: R) -> Result<ArchiveIndex, ArchiveError> {
    scan_with(input, None)
}

/// [`scan`], following only `platform`'s descriptors in multi-platform indexes.
pub fn scan_with<R: Read>(
    input: R,
    platform: Option<&Platform>,
) -> Result<ArchiveIndex, ArchiveError> {
    let mut r = TarReader::new(input);
    let mut c = Collected {
        label: "archive".into(),
        platform: platform.cloned(),
        ..Default::default()
    };
    let mut entries = BTreeMap::new();
    let mut links = BTreeMap::new();
    while let Some(head) = r.next_entry()? {
        let name = clean_name(&head.name)?;
        let role = role_of(&name);
        match &role {
            EntryRole::Blob(_) | EntryRole::Other if name.starts_with("blobs/") => {
                c.saw_blobs = true
            }
            EntryRole::FolderDir(_)
            | EntryRole::FolderJson(_)
            | EntryRole::FolderLayer(_)
            | EntryRole::FolderOther(_) => c.saw_folders = true,
            _ => {}
        }
        if head.is_symlink() {
            if let Some(t) = &head.link_name {
                links.insert(name.clone(), resolve_link(&name, t)?);
            }
            continue;
        }
        if !head.is_file() {
            continue;
        }
        match role {
            EntryRole::Manifest
            | EntryRole::Repositories
            | EntryRole::Index
            | EntryRole::OciLayout
            | EntryRole::LegacyConfig(_) => {
                let data = r.read_all(MAX_JSON)?;
                c.add(&name, data)?;
            }
            EntryRole::FolderJson(_) | EntryRole::FolderOther(_) => {}
            _ => {
                let mut data = read_prefix(&mut r, PEEK)?;
                if head.size <= MAX_JSON && looks_like_json(&data) {
                    data.extend(r.read_all(MAX_JSON)?);
                    c.add(&name, data)?;
                    continue;
                }
                let compression = codec::detect(&data);
                let digest = if compression != Compression::None && named_digest(&name).is_none() {
                    Some(hash_rest(&mut r, &data)?)
                } else {
                    None
                };
                entries.insert(
                    name,
                    EntryInfo {
                        size: head.size,
                        compression,
                        digest,
                    },
                );
            }
        }
    }
    index_of(&c, entries, links)
}

/// The index of an archive whose metadata is `c`.
pub(crate) fn index_of(
    c: &Collected,
    entries: BTreeMap<String, EntryInfo>,
    links: BTreeMap<String, String>,
) -> Result<ArchiveIndex, ArchiveError> {
    if c.manifest.is_none() && c.index.is_none() {
        return Err(ArchiveError::MissingManifest(c.label.clone()));
    }
    let images = c.images()?;
    let layout = c.layout(&images);
    let configs = images
        .iter()
        .filter_map(|i| {
            c.json
                .get(&i.config_entry)
                .map(|b| (i.config_entry.clone(), b.clone()))
        })
        .collect();
    Ok(ArchiveIndex {
        layout,
        images,
        entries,
        links,
        configs,
        indexes: c.layout_indexes()?,
    })
}
