//! The reference layers of a bundle's deltas, read from this daemon: one `docker save` of local
//! images holding every reference chain, keeping each wanted layer (by diffID) in an anonymous
//! temporary file. Why anonymous (`tempfile::tempfile`, unlinked at creation): nothing is left
//! behind on any error, Ctrl-C or SIGKILL, and no cleanup registration is needed.
//!
//! Every content is hashed while it is written and kept only when its sha256 is the wanted diffID,
//! never trusted by name. A graphdriver daemon exports uncompressed layers (`<v1id>/layer.tar`, or
//! blobs named by diffID); the containerd store exports compressed blobs, which are decompressed
//! into the file while a diffID is still wanted. Memory stays flat (fixed copy buffers); the
//! export is dropped as soon as every reference is found.

use crate::errors::daemon_err;
use anyhow::{anyhow, Context, Result};
use partial_common::archive::entries::{clean_name, named_digest, role_of, EntryRole, TarReader};
use partial_common::codec::{self, Compression};
use partial_common::daemon::ImageMeta;
use partial_common::exit::{self, Coded};
use partial_common::manifest::BundleManifest;
use partial_common::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// The reference layers, by diffID, each in an anonymous temporary file.
#[derive(Debug, Default)]
pub struct References {
    files: BTreeMap<Digest, File>,
}

impl References {
    /// The reference layer `diff_id`, when it was read.
    pub fn get_mut(&mut self, diff_id: &Digest) -> Option<&mut File> {
        self.files.get_mut(diff_id)
    }

    #[cfg(test)]
    pub fn from_files(files: BTreeMap<Digest, File>) -> Self {
        References { files }
    }
}

/// Reads, from `daemon`, every reference layer of the deltas of `manifest`; `local` is the
/// daemon's images as `base::check` returned them (which must have passed). Nothing is read when
/// the bundle has no deltas.
pub async fn spool(
    bases: crate::base::BaseSource<'_>,
    manifest: &BundleManifest,
    local: &[ImageMeta],
) -> Result<References> {
    // Reference diffID → its chain.
    let wanted: BTreeMap<Digest, Digest> = manifest
        .deltas()
        .into_iter()
        .map(|d| (d.reference_diff_id.clone(), d.reference_chain_id.clone()))
        .collect();
    if wanted.is_empty() {
        return Ok(References::default());
    }
    let (names, reader) = bases.export(wanted.values(), local)?;
    let keys: BTreeSet<Digest> = wanted.keys().cloned().collect();
    let files = tokio::task::spawn_blocking(move || read_references(reader, &keys))
        .await
        .context("the reference spool thread failed")??;
    if let Some((diff_id, chain)) = wanted.iter().find(|(d, _)| !files.contains_key(*d)) {
        let image = local
            .iter()
            .find(|i| names.contains(&i.id.to_string()) && i.chain_ids.contains(chain))
            .map(|i| match i.tags.first() {
                Some(t) => format!("{t} ({})", i.id),
                None => i.id.to_string(),
            })
            .unwrap_or_else(|| names.join(", "));
        return Err(anyhow::Error::new(Coded::new(
            exit::BASE_MISSING,
            format!(
                "the daemon's export of {image}, which holds chain {chain}, did not contain \
                 layer {diff_id}, the reference of a delta layer"
            ),
        )));
    }
    Ok(References { files })
}

/// Reads the daemon's export `reader` (a plain tar) until every layer of `wanted` (diffIDs) is
/// found, each into an anonymous temporary file checked against its diffID. Returns what was
/// found (the caller names what was not).
pub fn read_references(
    reader: impl Read,
    wanted: &BTreeSet<Digest>,
) -> Result<BTreeMap<Digest, File>> {
    let ctx = "reading the daemon's export";
    // A daemon whose export fails midway appends its error to the stream: the daemon's failure.
    let export_err = |e| daemon_err(e).context(ctx);
    let mut found: BTreeMap<Digest, File> = BTreeMap::new();
    let mut r = TarReader::new(reader);
    // A file whose content was not wanted, reused for the next candidate.
    let mut spare: Option<File> = None;
    while found.len() < wanted.len() {
        let Some(head) = r.next_entry().map_err(export_err)? else {
            break;
        };
        if !head.is_file() {
            continue;
        }
        let name = clean_name(&head.name).map_err(export_err)?;
        let named = match role_of(&name) {
            EntryRole::FolderLayer(_) => None,
            EntryRole::Blob(d) => Some(d),
            // containers/image (podman's export) keeps layers as top-level `<diffID>.tar`, the
            // `<v1id>/layer.tar` entries being links to them.
            _ => match named_digest(&name) {
                Some(d) => Some(d),
                None => continue,
            },
        };
        if named.as_ref().is_some_and(|d| found.contains_key(d)) {
            continue;
        }
        let (compression, data) = codec::sniff(r.data())
            .map_err(daemon_err)
            .with_context(|| format!("{ctx}: {name}"))?;
        // An uncompressed blob is named by its diffID: only a wanted name can be wanted content.
        if compression == Compression::None && named.as_ref().is_some_and(|d| !wanted.contains(d)) {
            continue;
        }
        let mut file = match spare.take() {
            Some(f) => f,
            None => {
                tempfile::tempfile().context("creating a temporary file for a reference layer")?
            }
        };
        let digest = match compression {
            Compression::None => copy_hashed(data, &mut file),
            Compression::Gzip => copy_hashed(flate2::read::MultiGzDecoder::new(data), &mut file),
            Compression::Zstd => {
                let d = zstd::stream::read::Decoder::new(data).context("starting zstd")?;
                copy_hashed(d, &mut file)
            }
        }
        .with_context(|| format!("{ctx}: {name}"))?;
        if wanted.contains(&digest) && !found.contains_key(&digest) {
            found.insert(digest, file);
        } else {
            spare = Some(file);
        }
    }
    Ok(found)
}

/// Replaces the content of `file` with `data`; returns its sha256. A read error of the export
/// (or of its decompression) is the daemon's; a write error is this host's.
fn copy_hashed(mut data: impl Read, file: &mut File) -> Result<Digest> {
    file.seek(SeekFrom::Start(0))?;
    file.set_len(0)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match data.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(daemon_err(e)),
        };
        sha.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| anyhow!(e).context("writing a temporary file"))?;
    }
    file.flush()?;
    Ok(Digest::from_sha256(sha.finalize().into()))
}
