//! Checking a layer blob while it streams: the sha256 of the stored bytes (the blob digest) and,
//! for a compressed blob, the sha256 of its decompressed bytes (the diffID), computed on the side
//! by a streaming decoder, so nothing is held in memory.

use crate::codec::Compression;
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Write};

/// A writer that only hashes.
struct HashSink(Sha256);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Side {
    Plain,
    Gzip(Box<flate2::write::MultiGzDecoder<HashSink>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, HashSink>>),
}

/// Hashes a blob's bytes as they pass, and its decompressed content when compressed.
pub(crate) struct Verifier {
    blob: Sha256,
    side: Side,
    /// The first decoding error: the blob is not valid in its compression.
    error: Option<String>,
}

/// What a [`Verifier`] computed.
pub(crate) struct Verified {
    /// sha256 of the stored bytes.
    pub blob: Digest,
    /// sha256 of the uncompressed content (the diffID); `Err` when it does not decompress.
    pub diff: Result<Digest, String>,
}

impl Verifier {
    pub fn new(c: Compression) -> io::Result<Self> {
        let side = match c {
            Compression::None => Side::Plain,
            Compression::Gzip => Side::Gzip(Box::new(flate2::write::MultiGzDecoder::new(
                HashSink(Sha256::new()),
            ))),
            Compression::Zstd => Side::Zstd(Box::new(zstd::stream::write::Decoder::new(
                HashSink(Sha256::new()),
            )?)),
        };
        Ok(Verifier {
            blob: Sha256::new(),
            side,
            error: None,
        })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.blob.update(bytes);
        if self.error.is_some() {
            return;
        }
        let r = match &mut self.side {
            Side::Plain => Ok(()),
            Side::Gzip(d) => d.write_all(bytes),
            Side::Zstd(d) => d.write_all(bytes),
        };
        if let Err(e) = r {
            self.error = Some(e.to_string());
        }
    }

    pub fn finish(self) -> Verified {
        let blob = Digest::from_sha256(self.blob.finalize().into());
        let diff = match (self.error, self.side) {
            (Some(e), _) => Err(e),
            (None, Side::Plain) => Ok(blob.clone()),
            (None, Side::Gzip(d)) => d
                .finish()
                .map(|h| Digest::from_sha256(h.0.finalize().into()))
                .map_err(|e| e.to_string()),
            (None, Side::Zstd(mut d)) => match d.flush() {
                Ok(()) => Ok(Digest::from_sha256(d.into_inner().0.finalize().into())),
                Err(e) => Err(e.to_string()),
            },
        };
        Verified { blob, diff }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: Compression, data: &[u8]) -> Verified {
        let mut v = Verifier::new(c).unwrap();
        for chunk in data.chunks(7) {
            v.update(chunk);
        }
        v.finish()
    }

    #[test]
    fn hashes_stored_and_decompressed_bytes() {
        let content = b"some layer content".repeat(1000);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&content).unwrap();
        let gz = e.finish().unwrap();
        let zs = zstd::encode_all(&content[..], 3).unwrap();
        let want = Digest::of_bytes(&content);
        for (c, bytes) in [(Compression::Gzip, gz), (Compression::Zstd, zs)] {
            let v = run(c, &bytes);
            assert_eq!(v.blob, Digest::of_bytes(&bytes));
            assert_eq!(v.diff.unwrap(), want);
        }
        let v = run(Compression::None, &content);
        assert_eq!(v.diff.unwrap(), want);
        assert!(run(Compression::Gzip, b"\x1f\x8bnot gzip at all")
            .diff
            .is_err());
    }
}
