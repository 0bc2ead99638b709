//! Reading, scanning and filtering `docker save` archives, for all three layouts (legacy,
//! OCI ≥ 25, containerd store), in one streaming pass and bounded memory.
//!
//! PUBLIC API CONTRACT (other modules and the binaries are written against it):
//!
//! * [`SourceImage`]: what is known ahead of the stream about an image being exported (from
//!   `docker image inspect` on a live daemon, or from [`scan`] of an archive file).
//! * [`scan`]: one pass over an archive keeping only metadata → [`ArchiveIndex`].
//! * [`Filter`]: feed it one or more archive streams, get a filtered archive plus a
//!   [`Plan`](crate::plan::Plan).
//!
//! Inputs are plain tar streams; the caller undoes gzip/zstd first (see `codec`).
//!
//! Modules: `tarstream` (byte-exact tar pass-through, strict end-of-archive checks), `names`
//! (entry roles, unsafe names), `legacy_id` (identifying `<v1id>/` folders from their `json`),
//! `metadata` (manifest.json / index.json / OCI manifests → images; rewriting for a selection),
//! `scan`, `filter` (streaming decisions), `finish` (decisions needing the whole archive, the
//! plan), `testutil` (test-archive builders), `filter_tests`, `tarstream_big_tests` (entries over 8 GiB), `fuzz_seeds` (writes the fuzz targets' seed inputs), `real_daemon` (ignored checks
//! against real `docker save` output).
//!
//! After an error from [`Filter::add_input`] the output is incomplete: abort the export.

mod filter;
#[cfg(test)]
mod filter_tests;
mod finish;
#[cfg(test)]
mod fuzz_seeds;
mod legacy_id;
mod metadata;
mod names;
#[cfg(test)]
mod real_daemon;
mod scan;
mod tarstream;
#[cfg(test)]
mod tarstream_big_tests;
#[cfg(test)]
pub(crate) mod testutil;

pub use filter::{Filter, FilterObserver};
pub use scan::scan;

use crate::digest::{is_sha256_hex, Digest};
use crate::plan::Layout;

/// An image that is exported: its ID (config digest), its tags and its diffIDs, bottom first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceImage {
    pub id: Digest,
    pub tags: Vec<String>,
    pub diff_ids: Vec<Digest>,
}

/// Metadata of one archive, read by [`scan`].
#[derive(Clone, Debug)]
pub struct ArchiveIndex {
    pub layout: Layout,
    pub images: Vec<IndexedImage>,
}

/// One image of an archive, as its `manifest.json` (and config, and for the containerd layout its
/// OCI manifest) describe it.
#[derive(Clone, Debug)]
pub struct IndexedImage {
    pub source: SourceImage,
    /// The archive entry holding each layer position, e.g. `<v1id>/layer.tar`, `blobs/sha256/<hex>`.
    pub layer_entries: Vec<String>,
    /// The archive entry holding the image config (`<id>.json` or `blobs/sha256/<id>`).
    pub config_entry: String,
    /// The OCI manifest blob of the image (OCI and containerd layouts), when the archive has one.
    pub manifest_digest: Option<Digest>,
    /// OCI image indexes (nested in `index.json`) leading to the image's manifest, outermost first.
    pub index_digests: Vec<Digest>,
}

impl ArchiveIndex {
    /// Finds an image by tag (`name:tag`, `name` meaning `name:latest`, `docker.io/library/name:tag`
    /// meaning `name:tag`), full image ID (also its OCI manifest or index digest), or a unique
    /// prefix of the image ID (with or without `sha256:`, at least 12 hex digits). An ambiguous
    /// prefix finds nothing.
    pub fn find(&self, reference: &str) -> Option<&IndexedImage> {
        let reference = reference.trim();
        if let Some(want) = metadata::familiar(reference) {
            let hit = self.images.iter().find(|img| {
                img.source
                    .tags
                    .iter()
                    .any(|t| metadata::familiar(t).as_deref() == Some(want.as_str()))
            });
            if hit.is_some() {
                return hit;
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if hex.len() < 12
            || hex.len() > 64
            || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        if is_sha256_hex(hex) {
            // The containerd store names images by their manifest or index digest.
            return self
                .images
                .iter()
                .find(|i| i.source.id.hex() == hex)
                .or_else(|| {
                    self.images.iter().find(|i| {
                        i.manifest_digest
                            .iter()
                            .chain(&i.index_digests)
                            .any(|d| d.hex() == hex)
                    })
                });
        }
        let mut hits = self
            .images
            .iter()
            .filter(|i| i.source.id.hex().starts_with(hex));
        let first = hits.next()?;
        if hits.any(|h| h.source.id != first.source.id) {
            return None;
        }
        Some(first)
    }

    /// The images as [`SourceImage`]s, e.g. to export all of them.
    pub fn sources(&self) -> Vec<SourceImage> {
        self.images.iter().map(|i| i.source.clone()).collect()
    }
}

/// Errors of the archive engine; each names the entry or image concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("I/O error reading the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a docker save archive: {0}")]
    NotAnArchive(String),
    #[error("reading the archive failed after {after}: {source}")]
    Read {
        after: String,
        source: std::io::Error,
    },
    #[error("I/O error on the temporary file holding a blob: {0}")]
    Spool(std::io::Error),
    #[error("I/O error writing the filtered archive: {0}")]
    Write(std::io::Error),
    #[error("truncated archive: {0}")]
    Truncated(String),
    #[error("the archive does not end properly after {after}: found {text:?} (a daemon that fails midway appends its error message to the stream)")]
    TrailingData { after: String, text: String },
    #[error("invalid tar header at byte {offset}, after {after}: found {text:?} (a daemon that fails midway appends its error message to the stream)")]
    BadHeader {
        after: String,
        offset: u64,
        text: String,
    },
    #[error("invalid tar stream: {0}")]
    BadTar(String),
    #[error("entry name escapes the archive: {0}")]
    UnsafeName(String),
    #[error("entry {entry} is {size} bytes, too big for a metadata file")]
    TooLarge { entry: String, size: u64 },
    #[error("digest mismatch in entry {entry}: expected {expected}, content is {actual}")]
    DigestMismatch {
        entry: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("invalid metadata in {entry}: {message}")]
    BadMetadata { entry: String, message: String },
    #[error("missing entry {entry}: {context}")]
    MissingEntry { entry: String, context: String },
    #[error("{0}: no manifest.json in the archive (is it a docker save archive?)")]
    MissingManifest(String),
    #[error("image {image}: layer {position} ({entry}) is needed by the destination but absent from the archive")]
    MissingLayer {
        image: String,
        position: usize,
        entry: String,
    },
    #[error("image {0} is not in the archive")]
    ImageNotFound(String),
    #[error("image {image}: the archive says its layers are {found}, expected {expected}")]
    ImageMismatch {
        image: String,
        expected: String,
        found: String,
    },
    #[error("{label}: archive layout {found} differs from the earlier inputs' layout {expected}; convert them to one layout")]
    LayoutMismatch {
        label: String,
        expected: Layout,
        found: Layout,
    },
    #[error("symlink {entry} points at {target}, which is not in the output")]
    DanglingLink { entry: String, target: String },
    #[error("could not identify layer folder {folder}: {message}")]
    Identification { folder: String, message: String },
}
