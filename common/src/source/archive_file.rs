//! [`ArchiveSource`]: an archive file of any writer (plain, gzip or zstd): `docker save` in the
//! legacy, ≥ 25 and containerd layouts, containers/image `docker-archive`, go-containerregistry
//! tarballs, `oci-archive`. Scanned once for its metadata, then streamed a second time.

use super::{find_in_index, Sink, Source};
use crate::archive::{scan_with, ArchiveError, ArchiveIndex};
use crate::image::{Image, Platform};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// An archive file; see the module documentation.
pub struct ArchiveSource {
    path: PathBuf,
    index: ArchiveIndex,
    images: Vec<Image>,
}

/// Opens an archive file as a plain tar stream, undoing gzip or zstd.
pub fn open_plain(path: &Path) -> Result<Box<dyn Read + Send>, ArchiveError> {
    let f = std::fs::File::open(path)?;
    Ok(crate::codec::decompress(BufReader::with_capacity(
        1 << 20,
        f,
    ))?)
}

impl ArchiveSource {
    /// Scans `path`; in nested multi-platform indexes only `platform`'s images are
    /// read (references find `platform`'s image; a multi-platform index keeps every platform).
    pub fn open(path: &Path, platform: Option<&Platform>) -> Result<Self, ArchiveError> {
        let index = scan_with(open_plain(path)?, platform)?;
        let images = index.models();
        Ok(ArchiveSource {
            path: path.to_path_buf(),
            index,
            images,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The scan of the file.
    pub fn index(&self) -> &ArchiveIndex {
        &self.index
    }
}

impl Source for ArchiveSource {
    fn label(&self) -> String {
        self.path.display().to_string()
    }

    fn images(&self) -> &[Image] {
        &self.images
    }

    fn find(&self, reference: &str) -> Option<Image> {
        find_in_index(&self.index, reference)
    }

    fn file_index(&self) -> Option<&ArchiveIndex> {
        Some(&self.index)
    }

    fn stream(&self, _wanted: &[Image], sink: &mut dyn Sink) -> Result<(), ArchiveError> {
        let mut r = open_plain(&self.path)?;
        sink.input(&mut r, &self.label(), Some(self.index.clone()))
    }
}
