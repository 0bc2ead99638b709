//! Image destinations: where a copy puts what it has checked. The bundle source
//! ([`crate::bundle_source::copy_into`]) reads a bundle strictly against its signed manifest and
//! hands each listed config and carried blob to one destination, then commits the images once:
//! the checked archive that `verify` and `rehydrate` read ([`crate::bundle_writer`]), the
//! Docker Engine (`partial-load load`: that archive streamed into the daemon's load, its end the
//! commit), a registry (`partial-load push`) and a containerd content store (`load
//! --containerd`). Adding a destination is one implementation of [`ImageDestination`].
//!
//! The contract, as containers/image's `ImageDestination` has it: a blob's bytes are checked by
//! the caller as the destination reads them, and the copy fails after `put_blob` returns when
//! they did not match. The reader ends (a read of 0) only once they matched; a mismatch comes as
//! an error (`InvalidData`) in place of that end. So a destination that completes a blob as it
//! streams (a registry upload) holds back its last piece until it read the end, and needs no
//! hash of its own. Nothing that refers to a blob becomes visible before
//! [`ImageDestination::commit`]. A copy that fails never commits: the destination is dropped,
//! and must leave nothing behind that anything refers to.

use crate::archive::ArchiveError;
use crate::digest::Digest;
use crate::image::Image;
use std::io::Read;

/// Takes the checked configs and blobs of a copy, then commits its images once.
pub trait ImageDestination {
    /// What a commit gives back (the archive written, the manifests pushed, …).
    type Committed;

    /// Takes the config of image `id` (its bytes already checked against `id`).
    fn put_config(&mut self, id: &Digest, bytes: &[u8]) -> Result<(), ArchiveError>;

    /// Takes blob `d` of `size` bytes, reading exactly that much from `data` (read errors come
    /// as [`ArchiveError::Io`], the destination's own as [`ArchiveError::Write`]). The caller
    /// checks the bytes as they are read, and `data` ends only when they matched; see the
    /// module documentation.
    fn put_blob(&mut self, d: &Digest, size: u64, data: &mut dyn Read) -> Result<(), ArchiveError>;

    /// Every config and blob came and checked out: the images as the signed manifest has them
    /// (each config in place). Called once, and only after a whole copy.
    fn commit(self, images: &[Image]) -> Result<Self::Committed, ArchiveError>;
}
