//! Carried zstd layers are written uncompressed. Docker before 23 cannot decompress zstd layer
//! files (`docker load` on 20.10 fails with `archive/tar: invalid tar header`), whereas every
//! version loads an uncompressed tar; gzip layers stay as they are (every version handles them).
//! A tar entry needs its size before its data, so the layer is decompressed into a temporary
//! file (bounded memory), hashing the stored bytes (the blob digest) and the decompressed ones
//! (the diffID) on the way; then it is written as `blobs/sha256/<diffID>`.

use super::verify::Verified;
use super::Engine;
use crate::archive::ArchiveError;
use crate::codec::Compression;
use crate::digest::Digest;
use crate::image::Blob;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// Whether a carried layer stored with `c` is decompressed before it is written.
pub(crate) fn unpacked(c: Compression) -> bool {
    c == Compression::Zstd
}

/// The temporary file the decompressed bytes go to, hashed and counted.
struct Tee {
    file: BufWriter<File>,
    sha: Sha256,
    size: u64,
    /// A failure of the temporary file (not of the decoding).
    failed: Option<io::Error>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Err(e) = self.file.write_all(buf) {
            let msg = e.to_string();
            self.failed = Some(e);
            return Err(io::Error::other(msg));
        }
        self.sha.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decompresses a zstd blob fed chunk by chunk into a temporary file; see the module
/// documentation.
pub(crate) struct Unpacker {
    blob: Sha256,
    dec: zstd::stream::write::Decoder<'static, Tee>,
    /// The first decoding error: the blob is not valid zstd.
    error: Option<String>,
}

/// A decompressed layer: the temporary file (at its start), its size, and the digests.
pub(crate) struct Unpacked {
    pub file: File,
    pub size: u64,
    pub got: Verified,
}

impl Unpacker {
    pub fn new() -> Result<Self, ArchiveError> {
        let file = tempfile::tempfile().map_err(ArchiveError::Spool)?;
        let tee = Tee {
            file: BufWriter::with_capacity(256 * 1024, file),
            sha: Sha256::new(),
            size: 0,
            failed: None,
        };
        Ok(Unpacker {
            blob: Sha256::new(),
            dec: zstd::stream::write::Decoder::new(tee).map_err(ArchiveError::Spool)?,
            error: None,
        })
    }

    /// Feeds the next stored bytes. Fails only when the temporary file does; a decoding error
    /// is kept for [`finish`](Self::finish) (the diffID check reports it, naming the entry).
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.blob.update(bytes);
        if self.error.is_some() {
            return Ok(());
        }
        let r = self.dec.write_all(bytes);
        self.settle(r)
    }

    fn settle(&mut self, r: io::Result<()>) -> Result<(), ArchiveError> {
        if let Err(e) = r {
            if let Some(f) = self.dec.get_mut().failed.take() {
                return Err(ArchiveError::Spool(f));
            }
            self.error = Some(e.to_string());
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Unpacked, ArchiveError> {
        if self.error.is_none() {
            let r = self.dec.flush();
            self.settle(r)?;
        }
        let blob = Digest::from_sha256(self.blob.finalize().into());
        let tee = self.dec.into_inner();
        let mut file = tee
            .file
            .into_inner()
            .map_err(|e| ArchiveError::Spool(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(ArchiveError::Spool)?;
        let diff = match self.error {
            Some(e) => Err(e),
            None => Ok(Digest::from_sha256(tee.sha.finalize().into())),
        };
        Ok(Unpacked {
            file,
            size: tee.size,
            got: Verified { blob, diff },
        })
    }
}

impl<W: Write> Engine<W> {
    /// Writes a decompressed layer (checked) as `blobs/sha256/<diff>` and records it.
    pub(super) fn write_unpacked(
        &mut self,
        diff: Digest,
        mut file: File,
        size: u64,
    ) -> Result<(), ArchiveError> {
        self.out
            .write_blob(&diff, size, &mut file, |_| {})
            .map_err(|e| match e {
                ArchiveError::Io(io) => ArchiveError::Spool(io),
                e => e,
            })?;
        let blob = Blob::uncompressed(&diff, Some(size));
        self.seen.insert(diff.clone(), blob.clone());
        self.written.insert(diff, blob);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn decompresses_to_a_file_and_hashes_both_sides() {
        let content = b"a layer tar, more or less ".repeat(50_000);
        let zs = zstd::encode_all(&content[..], 3).unwrap();
        let mut u = Unpacker::new().unwrap();
        for chunk in zs.chunks(1000) {
            u.update(chunk).unwrap();
        }
        let mut done = u.finish().unwrap();
        assert_eq!(done.size, content.len() as u64);
        assert_eq!(done.got.blob, Digest::of_bytes(&zs));
        assert_eq!(done.got.diff.unwrap(), Digest::of_bytes(&content));
        let mut back = Vec::new();
        done.file.read_to_end(&mut back).unwrap();
        assert!(back == content);
        // Not zstd after the magic: the diffID is an error, the blob digest still computed.
        let mut bad = zs[..4].to_vec();
        bad.extend_from_slice(b"\xff\xff\xff\xff garbage, not a zstd frame");
        let mut u = Unpacker::new().unwrap();
        u.update(&bad).unwrap();
        let done = u.finish().unwrap();
        assert_eq!(done.got.blob, Digest::of_bytes(&bad));
        assert!(done.got.diff.is_err());
        assert!(unpacked(Compression::Zstd));
        assert!(!unpacked(Compression::Gzip) && !unpacked(Compression::None));
    }
}
