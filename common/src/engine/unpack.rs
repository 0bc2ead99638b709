//! Carried zstd layers are written uncompressed. Docker before 23 cannot decompress zstd layer
//! files (`docker load` on 20.10 fails with `archive/tar: invalid tar header`), whereas every
//! version loads an uncompressed tar; gzip layers stay as they are (every version handles them).
//! A tar entry needs its size before its data, so the layer is decompressed into a temporary
//! file (bounded memory), hashing the stored bytes (the blob digest) and the decompressed ones
//! (the diffID) on the way; then it is written as `blobs/sha256/<diffID>`.
//!
//! With a [`CarriedLayers`](super::CarriedLayers) hook (deltas), every carried layer takes this
//! path whatever its compression, so the hook sees the uncompressed layer in a file before it
//! is written; the hook may give a replacement to write instead.

use super::verify::Verified;
use super::Engine;
use crate::archive::ArchiveError;
use crate::codec::Compression;
use crate::digest::Digest;
use crate::image::Blob;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

/// Whether a carried layer stored with `c` is decompressed before it is written (without a
/// hook; with one, every carried layer is).
pub(crate) fn unpacked(c: Compression) -> bool {
    c == Compression::Zstd
}

/// The decoder in front of the temporary file.
enum Dec {
    Plain(SpoolFile),
    Gzip(Box<flate2::write::MultiGzDecoder<SpoolFile>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, SpoolFile>>),
}

impl Dec {
    fn new(c: Compression, spool: SpoolFile) -> io::Result<Dec> {
        Ok(match c {
            Compression::None => Dec::Plain(spool),
            Compression::Gzip => Dec::Gzip(Box::new(flate2::write::MultiGzDecoder::new(spool))),
            Compression::Zstd => Dec::Zstd(Box::new(zstd::stream::write::Decoder::new(spool)?)),
        })
    }

    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Dec::Plain(t) => t.write_all(b),
            Dec::Gzip(d) => d.write_all(b),
            Dec::Zstd(d) => d.write_all(b),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Dec::Plain(_) => Ok(()),
            Dec::Gzip(d) => d.try_finish(),
            Dec::Zstd(d) => d.flush(),
        }
    }

    fn spool_mut(&mut self) -> &mut SpoolFile {
        match self {
            Dec::Plain(t) => t,
            Dec::Gzip(d) => d.get_mut(),
            Dec::Zstd(d) => d.get_mut(),
        }
    }

    fn into_spool(self) -> io::Result<SpoolFile> {
        match self {
            Dec::Plain(t) => Ok(t),
            Dec::Gzip(d) => d.finish(),
            Dec::Zstd(d) => Ok(d.into_inner()),
        }
    }
}

/// The temporary file the decompressed bytes go to, hashed and counted.
struct SpoolFile {
    file: BufWriter<File>,
    sha: Sha256,
    size: u64,
    /// A failure of the temporary file (not of the decoding).
    failed: Option<io::Error>,
}

impl Write for SpoolFile {
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

/// Decompresses a blob fed chunk by chunk into a temporary file; see the module documentation.
pub(crate) struct Unpacker {
    blob: Sha256,
    dec: Dec,
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
    /// A zstd blob.
    pub fn new() -> Result<Self, ArchiveError> {
        Self::of(Compression::Zstd)
    }

    /// A blob stored with `c`.
    pub fn of(c: Compression) -> Result<Self, ArchiveError> {
        let file = tempfile::tempfile().map_err(ArchiveError::Spool)?;
        let spool = SpoolFile {
            file: BufWriter::with_capacity(256 * 1024, file),
            sha: Sha256::new(),
            size: 0,
            failed: None,
        };
        Ok(Unpacker {
            blob: Sha256::new(),
            dec: Dec::new(c, spool).map_err(ArchiveError::Spool)?,
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
            if let Some(f) = self.dec.spool_mut().failed.take() {
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
        let mut spool = match self.dec.into_spool() {
            Ok(t) => t,
            Err(e) => return Err(ArchiveError::Spool(e)),
        };
        if let Some(f) = spool.failed.take() {
            return Err(ArchiveError::Spool(f));
        }
        let mut file = spool
            .file
            .into_inner()
            .map_err(|e| ArchiveError::Spool(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(ArchiveError::Spool)?;
        let diff = match self.error {
            Some(e) => Err(e),
            None => Ok(Digest::from_sha256(spool.sha.finalize().into())),
        };
        Ok(Unpacked {
            file,
            size: spool.size,
            got: Verified { blob, diff },
        })
    }
}

impl<W: Write> Engine<W> {
    /// Writes a decompressed layer (checked) as `blobs/sha256/<diff>` and records it; with a
    /// hook, writes its replacement instead when it gives one.
    pub(super) fn write_unpacked(
        &mut self,
        diff: Digest,
        mut file: File,
        size: u64,
    ) -> Result<(), ArchiveError> {
        if let Some(hook) = self.hook.as_mut() {
            if let Some(r) = hook.offer(&diff, &mut file, size)? {
                return self.write_replacement(diff, r, size);
            }
            file.seek(SeekFrom::Start(0)).map_err(ArchiveError::Spool)?;
        }
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

    /// Writes a hook's replacement of the layer `diff` (checked against the digest it states);
    /// the layer is recorded as it will be rebuilt: uncompressed, named by its diffID.
    fn write_replacement(
        &mut self,
        diff: Digest,
        mut r: super::Replacement,
        size: u64,
    ) -> Result<(), ArchiveError> {
        r.file
            .seek(SeekFrom::Start(0))
            .map_err(ArchiveError::Spool)?;
        let mut sha = Sha256::new();
        self.out
            .write_blob(&r.delta.digest, r.delta.size, &mut r.file, |c| {
                sha.update(c)
            })
            .map_err(|e| match e {
                ArchiveError::Io(io) => ArchiveError::Spool(io),
                e => e,
            })?;
        let got = Digest::from_sha256(sha.finalize().into());
        if got != r.delta.digest {
            return Err(ArchiveError::DigestMismatch {
                entry: format!("the delta of layer {diff}"),
                expected: r.delta.digest.clone(),
                actual: got,
            });
        }
        let blob = Blob::uncompressed(&diff, Some(size));
        self.seen.insert(diff.clone(), blob.clone());
        self.written.insert(diff.clone(), blob);
        self.deltas.insert(diff, r.delta);
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
