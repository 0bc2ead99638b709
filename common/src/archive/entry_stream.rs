//! What the engine reads an input as: named entries, one after the other, each with its data.
//! A tar stream is one ([`TarReader`]: a daemon's export, an archive file); the files a layout
//! source hands over one by one are another (`source::blob_files`: an OCI layout directory's
//! blobs, a registry's downloads), so those sources need not be turned into a tar that the
//! engine would only take apart again.

use super::tarstream::{EntryHead, TarReader};
use super::ArchiveError;
use std::io::{self, Read};

/// A sequence of entries; see the module documentation. Reading an entry's data past what it
/// announced, or finding less, is an error naming the entry.
pub trait EntryStream {
    /// The reader of the current entry's data.
    type Data<'a>: Read
    where
        Self: 'a;

    /// The next entry (skipping what is left of the current one); `None` at the end.
    fn next_entry(&mut self) -> Result<Option<EntryHead>, ArchiveError>;
    /// A reader over the current entry's data.
    fn data(&mut self) -> Self::Data<'_>;
    /// Reads the current entry's whole data into memory (small metadata entries only).
    fn read_all(&mut self, limit: u64) -> Result<Vec<u8>, ArchiveError>;
    /// Turns an error from [`EntryStream::data`] into an archive error naming the entry.
    fn map_data_err(&self, e: io::Error) -> ArchiveError;
    /// Data bytes of the current entry not read yet.
    fn remaining(&self) -> u64;
    /// Bytes of input read so far (for progress).
    fn position(&self) -> u64;
}

impl<R: Read> EntryStream for TarReader<R> {
    type Data<'a>
        = super::tarstream::EntryData<'a, R>
    where
        Self: 'a;

    fn next_entry(&mut self) -> Result<Option<EntryHead>, ArchiveError> {
        TarReader::next_entry(self)
    }
    fn data(&mut self) -> Self::Data<'_> {
        TarReader::data(self)
    }
    fn read_all(&mut self, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        TarReader::read_all(self, limit)
    }
    fn map_data_err(&self, e: io::Error) -> ArchiveError {
        TarReader::map_data_err(self, e)
    }
    fn remaining(&self) -> u64 {
        TarReader::remaining(self)
    }
    fn position(&self) -> u64 {
        TarReader::position(self)
    }
}
