//! Checking a layer blob while it streams: the sha256 of the stored bytes (the blob digest) and,
//! for a compressed blob, the sha256 of its decompressed bytes (the diffID), computed on the side
//! by a streaming decoder on a thread of its own, so nothing is held in memory and the
//! decompression runs beside the copy.

use crate::codec::Compression;
use crate::diff_check::DiffHasher;
use crate::digest::Digest;
use crate::pipe::{self, PipeReader, PipeWriter};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};
use std::thread::JoinHandle;

/// The decompressing half of a check, on a thread of its own: inflating a layer and hashing
/// what comes out costs more than everything else an export does with the blob (reading,
/// hashing, writing), so with a second core the two run side by side. The bytes go through a
/// [`pipe`], a few chunks at a time.
struct Decoding {
    /// `None` once the thread stopped reading (at a decoding error, which it returns).
    pipe: Option<PipeWriter>,
    thread: JoinHandle<Result<Digest, String>>,
}

impl Decoding {
    fn start(c: Compression) -> io::Result<Self> {
        let (pipe, r) = pipe::pair();
        let thread = std::thread::Builder::new()
            .name("diffid".into())
            .spawn(move || decode(c, r))?;
        Ok(Decoding {
            pipe: Some(pipe),
            thread,
        })
    }

    fn update(&mut self, bytes: &[u8]) {
        if let Some(w) = self.pipe.as_mut() {
            if w.write_all(bytes).is_err() {
                self.pipe = None;
            }
        }
    }

    fn finish(mut self) -> Result<Digest, String> {
        let ended = match self.pipe.take() {
            Some(w) => w.finish().map_err(|e| e.to_string()),
            None => Ok(()),
        };
        let decoded = self
            .thread
            .join()
            .unwrap_or_else(|_| Err("the decompressing thread failed".into()));
        // The thread's own error says more than a pipe it stopped reading.
        decoded.and_then(|d| ended.map(|()| d))
    }
}

/// The decoding thread: decompresses what comes through the pipe and hashes the result.
fn decode(c: Compression, mut r: PipeReader) -> Result<Digest, String> {
    let Some(mut h) = DiffHasher::new(c).map_err(|e| e.to_string())? else {
        return Err("nothing to decompress".into());
    };
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return h.finish().map_err(|e| e.to_string()),
            Ok(n) => h.update(&buf[..n]).map_err(|e| e.to_string())?,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Hashes a blob's bytes as they pass, and its decompressed content when compressed.
pub(crate) struct Verifier {
    blob: Sha256,
    /// `None` for an uncompressed blob, whose content is its bytes.
    side: Option<Decoding>,
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
            _ => Some(Decoding::start(c)?),
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
            Some(d) => d.finish(),
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
