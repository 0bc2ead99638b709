//! Reading, scanning and filtering `docker save` archives, for all three layouts (legacy,
//! OCI ≥ 25, containerd store), in one streaming pass and bounded memory.
//!
//! PUBLIC API CONTRACT (other modules and the binaries are written against it):
//!
//! * [`SourceImage`]: what is known ahead of the stream about an image being exported (from
//!   `docker image inspect` on a live daemon, or from [`scan`] of an archive file).
//! * [`scan`]: one pass over an archive keeping only metadata → [`ArchiveIndex`].
//! * [`Filter`]: feed it one or more archive streams, get a filtered archive plus a [`Plan`].
//!
//! Inputs are plain tar streams; the caller undoes gzip/zstd first (see `codec`).

use crate::digest::Digest;
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
}

impl ArchiveIndex {
    /// Finds an image by tag (`name:tag`, `name` meaning `name:latest`), full image ID, or a unique
    /// prefix of the image ID (with or without `sha256:`, at least 12 hex digits).
    pub fn find(&self, reference: &str) -> Option<&IndexedImage> {
        let _ = reference;
        todo!("archive engine")
    }
}

/// Errors of the archive engine; each names the entry or image concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("I/O error reading the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a docker save archive: {0}")]
    NotAnArchive(String),
}
