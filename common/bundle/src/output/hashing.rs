//! Hashing while streaming: [`HashingWriter`] and [`HashingReader`] pass bytes through unchanged
//! and compute their SHA-256, BLAKE3 and length, reported as [`FileDigests`].

use partial_core::digest::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// The size and hashes of one file or stream, as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileDigests {
    /// Length in bytes.
    pub size: u64,
    /// SHA-256, as `sha256:<hex>`.
    pub sha256: Digest,
    /// BLAKE3-256, as 64 lowercase hex digits.
    pub blake3: String,
}

impl FileDigests {
    /// The digests of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        let mut h = Hashers::new();
        h.update(data);
        h.finish()
    }
}

/// SHA-256, BLAKE3 and a byte count fed together.
#[derive(Clone)]
pub struct Hashers {
    sha256: Sha256,
    blake3: blake3::Hasher,
    size: u64,
}

impl Default for Hashers {
    fn default() -> Self {
        Self::new()
    }
}

impl Hashers {
    pub fn new() -> Self {
        Hashers {
            sha256: Sha256::new(),
            blake3: blake3::Hasher::new(),
            size: 0,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.blake3.update(data);
        self.size += data.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finish(self) -> FileDigests {
        FileDigests {
            size: self.size,
            sha256: Digest::from_sha256(self.sha256.finalize().into()),
            blake3: self.blake3.finalize().to_hex().to_string(),
        }
    }
}

/// A writer that hashes (SHA-256, BLAKE3) and counts everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hashers: Hashers,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hashers: Hashers::new(),
        }
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.hashers.size()
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the inner writer (not flushed) and the digests of what was written.
    pub fn finish(self) -> (W, FileDigests) {
        (self.inner, self.hashers.finish())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hashers.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes (SHA-256, BLAKE3) and counts everything read through it.
pub struct HashingReader<R> {
    inner: R,
    hashers: Hashers,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hashers: Hashers::new(),
        }
    }

    /// Bytes read so far.
    pub fn size(&self) -> u64 {
        self.hashers.size()
    }

    /// Returns the inner reader and the digests of what was read (read to the end first if the
    /// whole stream is meant).
    pub fn finish(self) -> (R, FileDigests) {
        (self.inner, self.hashers.finish())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hashers.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const EMPTY_B3: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    #[test]
    fn writer_and_reader_agree() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut w = HashingWriter::new(Vec::new());
        for piece in data.chunks(333) {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.size(), data.len() as u64);
        let (inner, d) = w.finish();
        assert_eq!(inner, data);
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, Digest::of_bytes(&data));
        assert_eq!(d.blake3, blake3::hash(&data).to_hex().to_string());

        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        let (_, d2) = r.finish();
        assert_eq!(d, d2);
        assert_eq!(FileDigests::of_bytes(&data), d);
    }

    #[test]
    fn known_empty_digests_and_serde() {
        let d = FileDigests::of_bytes(b"");
        assert_eq!(d.sha256.as_str(), EMPTY_SHA);
        assert_eq!(d.blake3, EMPTY_B3);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            format!(r#"{{"size":0,"sha256":"{EMPTY_SHA}","blake3":"{EMPTY_B3}"}}"#)
        );
        assert_eq!(serde_json::from_str::<FileDigests>(&json).unwrap(), d);
    }
}
