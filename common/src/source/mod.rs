//! Sources of images: each resolves references to images of the [model](crate::image), lists
//! its images, and streams what the engine needs into a [`Sink`] (the engine, which knows
//! nothing of where its input comes from). Implementations: [`DaemonSource`] (a live daemon's
//! `docker save` stream), [`ArchiveSource`] (archive files of every writer, plain, gzip or zstd,
//! auto-detected), [`OciDirSource`] (OCI image layout directories) and [`RegistrySource`]
//! (`docker://` references read from a registry, no daemon).
//!
//! References: a tag (`app:1`, `docker.io/library/app:1`), a full or 12+-hex-digit prefix of an
//! image ID, an OCI manifest or index digest, or (OCI layouts and `oci-archive` files) a bare
//! `org.opencontainers.image.ref.name` such as `app2`, also written `NAME:app2`. A reference to
//! a multi-platform index of a layout gives every platform image and the index
//! ([`Source::find_index`], see [`layout_index`]), as a registry reference to one does.

mod archive_file;
mod daemon;
pub mod layout_index;
mod oci_dir;
mod registry;
mod registry_index;

pub use crate::archive::blob_files::{BlobFile, BlobFiles};
pub use archive_file::ArchiveSource;
pub use daemon::DaemonSource;
pub use layout_index::{IndexChoice, LayoutIndexError};
pub use oci_dir::OciDirSource;
pub use registry::{strip_scheme, RegistrySource, Selection, SCHEME};

use crate::archive::{ArchiveError, ArchiveIndex};
use crate::digest::Digest;
use crate::engine::Engine;
use crate::image::Image;
use std::io::{Read, Write};

/// Where a source streams to: one input per call, with its scan when the source has one.
/// Sources stored as one archive (a daemon's export, an archive file) hand over a plain tar;
/// layout sources (OCI layout directories, registries) hand over their files one by one.
pub trait Sink {
    fn input(
        &mut self,
        tar: &mut dyn Read,
        label: &str,
        index: Option<ArchiveIndex>,
    ) -> Result<(), ArchiveError>;

    /// One input handed over file by file (metadata first, then the blobs wanted), each opened
    /// when it is reached.
    fn files(
        &mut self,
        files: &mut dyn Iterator<Item = BlobFile>,
        label: &str,
        index: Option<ArchiveIndex>,
    ) -> Result<(), ArchiveError>;

    /// Whether the bundle needs the layer of `diff_id` (some wanted position using it is a chain
    /// the destination lacks). Sources that fetch blobs one by one (registries) skip the rest.
    fn needs(&self, _diff_id: &Digest) -> bool {
        true
    }
}

impl<W: Write> Sink for Engine<W> {
    fn input(
        &mut self,
        tar: &mut dyn Read,
        label: &str,
        index: Option<ArchiveIndex>,
    ) -> Result<(), ArchiveError> {
        self.add_input(tar, label, index)
    }

    fn files(
        &mut self,
        files: &mut dyn Iterator<Item = BlobFile>,
        label: &str,
        index: Option<ArchiveIndex>,
    ) -> Result<(), ArchiveError> {
        self.add_files(files, label, index)
    }

    fn needs(&self, diff_id: &Digest) -> bool {
        self.diff_needed(diff_id)
    }
}

/// Whose fault it is when reading a source fails, for the exit code: the source says it, so
/// that no caller guesses it from a mode or a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Blame {
    /// Files the user named (archives, layouts): a read error is bad input (exit 3).
    Input,
    /// A registry: its failures (refused, unreachable, stalled) are exit 5; content that
    /// contradicts its digests is bad input.
    Registry,
    /// A live daemon: whatever goes wrong in its export is the daemon's (exit 5).
    Daemon,
}

/// A source of images; see the module documentation.
pub trait Source: Send {
    /// How messages name the source (a file, a folder, a daemon).
    fn label(&self) -> String;
    /// Whose fault a failure to read it is (default: the user's files).
    fn blame(&self) -> Blame {
        Blame::Input
    }
    /// Every image the source holds (for a daemon: the images resolved when it was opened).
    fn images(&self) -> &[Image];
    /// The image a reference names, with the tag the reference gives it (when it is a tag).
    fn find(&self, reference: &str) -> Option<Image>;
    /// The index of a source read from files (archives, OCI layouts), whose multi-platform
    /// indexes travel whole (see [`layout_index`]); `None` for daemons and registries.
    fn file_index(&self) -> Option<&ArchiveIndex> {
        None
    }
    /// What travels of the multi-platform index `reference` names (OCI layouts and
    /// oci-archives, see [`layout_index`]): its platform images chosen by `sel`, and the index;
    /// `Ok(None)` when it names no such index (an image: see [`Source::find`]).
    fn find_index(
        &self,
        reference: &str,
        sel: &Selection,
    ) -> Result<Option<IndexChoice>, LayoutIndexError> {
        match self.file_index() {
            Some(ix) => layout_index::choose(ix, &self.label(), reference, sel),
            None => Ok(None),
        }
    }
    /// What travels of every multi-platform index of the source (an export of all its images).
    fn every_index(&self, sel: &Selection) -> Result<Vec<IndexChoice>, LayoutIndexError> {
        match self.file_index() {
            Some(ix) => layout_index::every(ix, &self.label(), sel),
            None => Ok(Vec::new()),
        }
    }
    /// Streams the blobs of `wanted` (images of this source) into `sink`.
    fn stream(&self, wanted: &[Image], sink: &mut dyn Sink) -> Result<(), ArchiveError>;
    /// Whether the source holds `img` (by ID or alias).
    fn holds(&self, img: &Image) -> bool {
        self.images()
            .iter()
            .any(|i| i.id == img.id || img.aliases.iter().any(|a| i.is_named_by(a)))
    }
}

/// The image `reference` names in an index, in the model, tagged as the reference says: a tag
/// reference keeps only that tag; an ID keeps all the image's tags; a bare layout tag (`app2`)
/// gives the tag Docker would (`app2:latest`, see
/// [`tag_of_bare_name`](crate::reference::tag_of_bare_name)), or none when it is not a valid
/// repository name (`V1`); `NAME:app2` gives `NAME:app2`.
pub(crate) fn find_in_index(ix: &ArchiveIndex, reference: &str) -> Option<Image> {
    let hit = ix.find(reference)?;
    let mut img = ix.model(hit);
    let tag = crate::reference::familiar(reference);
    match tag {
        Some(t) if hit.source.tags.contains(&t) => img.tags = vec![t],
        _ if hit.ref_names.iter().any(|r| r == reference.trim()) => {
            img.tags = crate::reference::tag_of_bare_name(reference)
                .into_iter()
                .collect()
        }
        Some(t) => img.tags = vec![t],
        None => {}
    }
    Some(img)
}
