//! Reading the daemon's own export for the layers a bundle lacks, keeping each one found in a
//! spool folder under the hex of its digest (checked while writing, never trusted by name).
//!
//! A daemon on a graphdriver store exports uncompressed layers (`<v1id>/layer.tar`, or blobs
//! named by diffID); the containerd store exports compressed blobs. An uncompressed layer of a
//! wanted diffID is kept as it is; a compressed blob is decompressed into the spool while a
//! diffID is still wanted, and kept when it is one.

use crate::errors::daemon_err;
use anyhow::{Context, Result};
use partial_common::archive::entries::{clean_name, named_digest, role_of, EntryRole, TarReader};
use partial_common::codec::{self, Compression};
use partial_common::digest::Sha256Writer;
use partial_common::Digest;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::needed::{first_unfilled, Needed};

/// What the spool is looking for and what it found so far.
struct Search<'a> {
    needed: &'a Needed,
    /// The diffIDs of the needed entries.
    wanted: BTreeSet<Digest>,
    found: BTreeSet<Digest>,
}

impl<'a> Search<'a> {
    fn new(needed: &'a Needed) -> Self {
        Search {
            needed,
            wanted: needed.values().flat_map(|w| w.keys().cloned()).collect(),
            found: BTreeSet::new(),
        }
    }

    fn wants(&self, d: &Digest) -> bool {
        self.wanted.contains(d) && !self.found.contains(d)
    }

    fn wants_some_diff_id(&self) -> bool {
        self.wanted.iter().any(|d| !self.found.contains(d))
    }

    /// Every needed entry can be filled: the rest of the export is only read to its end.
    fn complete(&self) -> bool {
        first_unfilled(self.needed, &self.found).is_none()
    }
}

/// Reads the daemon's export (a plain tar) and keeps, in `dir`, every layer that can fill an
/// entry of `needed`. Returns the digests found.
pub fn spool_layers(reader: impl Read, dir: &Path, needed: &Needed) -> Result<BTreeSet<Digest>> {
    let ctx = "reading the daemon's export";
    let mut search = Search::new(needed);
    let mut r = TarReader::new(reader);
    let mut n = 0usize;
    // A daemon whose export fails midway appends its error to the stream: the daemon's failure.
    let export_err = |e| daemon_err(e).context(ctx);
    while let Some(head) = r.next_entry().map_err(export_err)? {
        if !head.is_file() || search.complete() {
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
        let (compression, mut data) =
            codec::sniff(r.data()).with_context(|| format!("{ctx}: {name}"))?;
        // A blob is named by its digest: skip those no entry wants, unless a compressed one
        // might hold a wanted diffID.
        if let Some(d) = &named {
            let maybe = compression != Compression::None && search.wants_some_diff_id();
            if !search.wants(d) && !maybe {
                continue;
            }
        }
        n += 1;
        let tmp = dir.join(format!("part-{n}"));
        let digest = write_hashed(&mut data, &tmp).with_context(|| format!("{ctx}: {name}"))?;
        keep_or_unpack(&mut search, dir, &tmp, digest, compression)
            .with_context(|| format!("spooling {name}"))?;
    }
    Ok(search.found)
}

/// Keeps the spooled file under its digest when wanted; else, when compressed and a diffID is
/// still wanted, its decompressed content when that is a wanted diffID. Removes the rest.
fn keep_or_unpack(
    search: &mut Search,
    dir: &Path,
    tmp: &Path,
    digest: Digest,
    compression: Compression,
) -> Result<()> {
    if search.wants(&digest) {
        keep(search, dir, tmp, digest)?;
        return Ok(());
    }
    if compression != Compression::None && search.wants_some_diff_id() {
        let unpacked = PathBuf::from(format!("{}.tar", tmp.display()));
        let f = File::open(tmp).with_context(|| format!("reopening {}", tmp.display()))?;
        let mut plain = codec::decompress(f).context("decompressing")?;
        let diff_id = write_hashed(&mut plain, &unpacked).context("decompressing")?;
        remove(tmp);
        if search.wants(&diff_id) {
            keep(search, dir, &unpacked, diff_id)?;
        } else {
            remove(&unpacked);
        }
        return Ok(());
    }
    remove(tmp);
    Ok(())
}

fn keep(search: &mut Search, dir: &Path, tmp: &Path, digest: Digest) -> Result<()> {
    std::fs::rename(tmp, dir.join(digest.hex()))
        .with_context(|| format!("renaming {}", tmp.display()))?;
    search.found.insert(digest);
    Ok(())
}

fn remove(p: &Path) {
    // Inside the spool folder, which is removed as a whole at the end.
    let _ = std::fs::remove_file(p);
}

/// Copies `data` into a new file `path`; returns the sha256 of what was written.
fn write_hashed(data: &mut impl Read, path: &Path) -> Result<Digest> {
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = Sha256Writer::new(BufWriter::new(f));
    io::copy(data, &mut w)?;
    let (bw, digest, _) = w.finish();
    let mut f = bw
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    f.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(digest)
}
