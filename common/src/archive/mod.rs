//! Reading archives of every writer (Docker ≤ 24 legacy, Docker ≥ 25 OCI + `manifest.json`, the
//! containerd store, containers/image `docker-archive`, go-containerregistry tarballs,
//! `oci-archive`) into the [image model](crate::image), in one streaming pass and bounded memory.
//!
//! * [`scan`]: one pass over an archive keeping only metadata (and, per layer file, its size and
//!   compression) → [`ArchiveIndex`], which [`ArchiveIndex::images`] turns into model images.
//! * The engine that streams the wanted blobs into a bundle (`crate::engine`) reads its input
//!   through the pieces here; this module knows nothing of it (the dependency goes one way,
//!   `engine` → `archive`, see docs/design.md).
//!
//! Inputs are plain tar streams; the caller undoes gzip/zstd first (see `codec`).
//!
//! Modules: `tarstream` (strict tar reader/writer), `names` (entry roles, unsafe names),
//! `legacy_id` (identifying `<v1id>/` folders from their `json`), `metadata` (manifest.json /
//! index.json / OCI manifests → images), `scan`, `to_model` (index → model images),
//! `blob_files` (a layout source's files as an entry stream, no tar made), `tarstream_big_tests` (entries
//! over 8 GiB). The test-archive builders
//! and the fuzz seeds live in `crate::testutil` (feature `testutil`).

pub mod blob_files;
pub mod entries;
pub(crate) mod entry_stream;
pub mod layout_index;
pub(crate) mod legacy_id;
pub(crate) mod metadata;
pub(crate) mod names;
pub(crate) mod scan;
pub(crate) mod tarstream;
#[cfg(test)]
mod tarstream_big_tests;
mod to_model;

pub use scan::{scan, scan_with};

use crate::codec::Compression;
use crate::digest::Digest;
use crate::plan::Layout;
use crate::reference::{familiar, id_hex};
use std::collections::BTreeMap;

/// An image as an archive's metadata describes it: its ID (config digest), its tags and its
/// diffIDs, bottom first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceImage {
    pub id: Digest,
    pub tags: Vec<String>,
    pub diff_ids: Vec<Digest>,
}

/// A layer-sized file of an archive, as [`scan`] saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    pub size: u64,
    pub compression: Compression,
    /// sha256 of the stored bytes, computed by the scan for compressed files whose name does not
    /// say their digest.
    pub digest: Option<Digest>,
}

/// Metadata of one archive, read by [`scan`].
#[derive(Clone, Debug)]
pub struct ArchiveIndex {
    pub layout: Layout,
    pub images: Vec<IndexedImage>,
    /// Every regular file that is not metadata (layers, mostly), by entry name.
    pub entries: BTreeMap<String, EntryInfo>,
    /// Symlinks: entry name → resolved target entry.
    pub links: BTreeMap<String, String>,
    /// Config bytes by config entry name.
    pub configs: BTreeMap<String, Vec<u8>>,
    /// The indexes of `index.json` that travel whole (layouts without `manifest.json`).
    pub indexes: Vec<layout_index::LayoutIndex>,
}

/// One image of an archive, as its `manifest.json` (and config, and for OCI layouts its OCI
/// manifest) describe it.
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
    /// The OCI manifest byte for byte, for layouts that hold only OCI manifests (no
    /// `manifest.json`: skopeo `oci:`/`oci-archive:`, umoci, buildah), whose manifests are the
    /// images' identity: it travels so that `push` keeps the manifest digest. `None` for
    /// `docker save` archives, whose manifests are the daemon's export and not kept.
    pub source_manifest: Option<crate::image::SourceManifest>,
    /// Bare `org.opencontainers.image.ref.name` annotations (`app2`, `1.0`): tags of the layout
    /// that name no repository. `-i app2` and `-i NAME:app2` select the image; a bare name that
    /// is a valid repository name is also in `source.tags` as `app2:latest`
    /// ([`tag_of_bare_name`](crate::reference::tag_of_bare_name)).
    pub ref_names: Vec<String>,
    /// A platform image of a multi-platform index that travels whole (see [`layout_index`]),
    /// of another platform than the one the archive was read for: references (tags, digests)
    /// do not find it, the index's selection does.
    pub other_platform: bool,
}

impl IndexedImage {
    /// Another index entry names this image: its tag and bare ref name are added (once each).
    pub(crate) fn add_names(&mut self, tag: Option<&String>, bare: Option<&String>) {
        if let Some(t) = tag {
            if !self.source.tags.contains(t) {
                self.source.tags.push(t.clone());
            }
        }
        if let Some(b) = bare {
            if !self.ref_names.contains(b) {
                self.ref_names.push(b.clone());
            }
        }
    }
}

impl IndexedImage {
    /// Whether `d` names this image (its ID, its OCI manifest or an index above it).
    pub fn named_by(&self, d: &Digest) -> bool {
        self.source.id == *d
            || self.manifest_digest.as_ref() == Some(d)
            || self.index_digests.contains(d)
    }
}

impl ArchiveIndex {
    /// Finds an image by tag (`name:tag`, `name` meaning `name:latest`, `docker.io/library/name:tag`
    /// meaning `name:tag`), by a bare layout tag (`1.0`, or `NAME:1.0` for any NAME), full image ID
    /// (also its OCI manifest or index digest), or a unique prefix of the image ID (with or without
    /// `sha256:`, at least 12 hex digits). An ambiguous prefix finds nothing.
    pub fn find(&self, reference: &str) -> Option<&IndexedImage> {
        let reference = reference.trim();
        if let Some(want) = familiar(reference) {
            let hit = self.on_platform().find(|img| {
                img.source
                    .tags
                    .iter()
                    .any(|t| familiar(t).as_deref() == Some(want.as_str()))
            });
            if hit.is_some() {
                return hit;
            }
        }
        if let Some(hit) = self.find_bare(reference) {
            return Some(hit);
        }
        let hex = id_hex(reference)?;
        if let Ok(d) = Digest::from_hex(hex) {
            // The containerd store names images by their manifest or index digest.
            return self
                .on_platform()
                .find(|i| i.source.id == d)
                .or_else(|| self.on_platform().find(|i| i.named_by(&d)));
        }
        let mut hits = self
            .on_platform()
            .filter(|i| i.source.id.hex().starts_with(hex));
        let first = hits.next()?;
        if hits.any(|h| h.source.id != first.source.id) {
            return None;
        }
        Some(first)
    }

    /// The images references find: not those of other platforms than the one read for.
    fn on_platform(&self) -> impl Iterator<Item = &IndexedImage> + Clone {
        self.images.iter().filter(|i| !i.other_platform)
    }

    /// An image by a bare layout tag: `1.0` itself, or `NAME:1.0`.
    fn find_bare(&self, reference: &str) -> Option<&IndexedImage> {
        let last = reference.rsplit('/').next().unwrap_or(reference);
        let tag = last.rsplit_once(':').map(|(_, t)| t).unwrap_or(reference);
        self.on_platform().find(|img| {
            img.ref_names
                .iter()
                .any(|r| r == reference || (last.contains(':') && r == tag))
        })
    }

    /// The images as [`SourceImage`]s.
    pub fn sources(&self) -> Vec<SourceImage> {
        self.images.iter().map(|i| i.source.clone()).collect()
    }
}

/// Errors of the archive engine; each names the entry or image concerned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("I/O error reading the archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("the delta of layer {layer}: {source}")]
    Delta {
        layer: crate::digest::Digest,
        source: crate::delta::DeltaError,
    },
    #[error("{0}")]
    NotALayout(String),
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
    #[error("{0}: neither manifest.json nor index.json in the archive (is it an image archive?)")]
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
    #[error("could not identify layer folder {folder}: {message}")]
    Identification { folder: String, message: String },
}
