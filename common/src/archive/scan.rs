//! [`scan`]: one pass over an archive that keeps only its metadata (manifest.json, configs,
//! index.json, OCI manifests; never layer data) and returns an [`ArchiveIndex`].

use super::metadata::{Collected, MAX_JSON};
use super::names::{clean_name, role_of, EntryRole};
use super::tarstream::TarReader;
use super::{ArchiveError, ArchiveIndex};
use std::io::Read;

/// How many leading bytes are read to tell a JSON blob from layer data.
pub(crate) const PEEK: usize = 64;

/// Whether the first bytes of an entry look like a JSON object.
pub(crate) fn looks_like_json(prefix: &[u8]) -> bool {
    prefix
        .iter()
        .find(|b| !b" \t\r\n".contains(b))
        .map(|b| *b == b'{')
        .unwrap_or(false)
}

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

/// Reads an archive (plain tar) and returns its layout and images. Layer data is skipped, small
/// JSON entries (≤ 16 MiB) are parsed.
pub fn scan<R: Read>(input: R) -> Result<ArchiveIndex, ArchiveError> {
    let mut r = TarReader::new(input);
    let mut c = Collected {
        label: "archive".into(),
        ..Default::default()
    };
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
            EntryRole::Blob(_) if head.size <= MAX_JSON => {
                let mut data = read_prefix(&mut r, PEEK)?;
                if looks_like_json(&data) {
                    data.extend(r.read_all(MAX_JSON)?);
                    c.add(&name, data)?;
                }
            }
            _ => {}
        }
    }
    if c.manifest.is_none() && c.index.is_none() {
        return Err(ArchiveError::MissingManifest("archive".into()));
    }
    let images = c.images()?;
    let layout = c.layout(&images);
    if c.manifest.is_none() && layout != super::Layout::Containerd {
        return Err(ArchiveError::MissingManifest("archive".into()));
    }
    Ok(ArchiveIndex { layout, images })
}
