//! Checking a layer blob while it streams: the sha256 of the stored bytes (the blob digest) and,
//! for a compressed blob, the sha256 of its decompressed bytes (the diffID), computed on the side
//! by a streaming decoder on a thread of its own ([`DiffHashThread`]), so nothing is held in
//! memory and the decompression runs beside the copy.

use crate::codec::Compression;
use crate::diff_check::DiffHashThread;
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::io;

/// Hashes a blob's bytes as they pass, and its decompressed content when compressed.
pub(crate) struct Verifier {
    blob: Sha256,
    /// `None` for an uncompressed blob, whose content is its bytes.
    side: Option<DiffHashThread>,
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
            Compression::None => None,
            _ => DiffHashThread::start(c)?,
        };
        Ok(Verifier {
            blob: Sha256::new(),
            side,
        })
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.blob.update(bytes);
        if let Some(d) = &mut self.side {
            d.update(bytes);
        }
    }

    pub fn finish(self) -> Verified {
        let blob = Digest::from_sha256(self.blob.finalize().into());
        let diff = match self.side {
            None => Ok(blob.clone()),
            Some(d) => d.finish().map_err(|e| e.to_string()),
        };
        Verified { blob, diff }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
