//! Layers by diffID out of a daemon's export, each in an anonymous temporary file: the base
//! layers `rehydrate` adds to the archive, and the reference layers of a bundle's deltas
//! (`crate::rebuild`). Why anonymous (`tempfile::tempfile_in`, unlinked at creation): nothing is
//! left behind on any error, Ctrl-C or SIGKILL, and no cleanup registration is needed.
//!
//! Every content is hashed while it is written and kept only when its sha256 is a wanted diffID,
//! never trusted by name. A graphdriver daemon exports uncompressed layers (`<v1id>/layer.tar`, or
//! blobs named by diffID); podman keeps them as top-level `<diffID>.tar`; the containerd store
//! exports compressed blobs, which are decompressed into the file while a diffID is still wanted.
//! Memory stays flat (fixed copy buffers); reading stops as soon as every layer is found.

use crate::errors::daemon_err;
use anyhow::{anyhow, Context, Result};
use partial_common::archive::entries::{clean_name, named_digest, role_of, EntryRole, TarReader};
use partial_common::codec::{self, Compression};
use partial_common::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Layers by diffID, each in an anonymous temporary file.
pub type LayerFiles = BTreeMap<Digest, File>;

/// Reads the daemon's export `reader` (a plain tar) until every layer of `wanted` (diffIDs) is
/// found, each into an anonymous temporary file in `dir` checked against its diffID. Returns
/// what was found (the caller names what was not).
pub fn read(reader: impl Read, wanted: &BTreeSet<Digest>, dir: &Path) -> Result<LayerFiles> {
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
            None => tempfile::tempfile_in(dir).with_context(|| {
                format!("creating a temporary file for a layer in {}", dir.display())
            })?,
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
