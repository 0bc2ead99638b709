//! The diffID of a compressed layer blob, computed while the blob streams past: the compressed
//! bytes are written into a decoder whose output is hashed, so checking costs no second read.
//! A blob that does not decompress (corrupt, or not gzip/zstd at all) is reported as such.
//! Used by the checked bundle source (every read on the far side) and by the export's check
//! (`engine::verify`, on a thread of its own).

use crate::codec::Compression;
use crate::digest::{Digest, Sha256Writer};
use crate::pipe::{self, PipeReader, PipeWriter};
use std::io::{self, Read, Sink, Write};
use std::thread::JoinHandle;

/// Hashes the decompressed form of the bytes written to it.
pub enum DiffHasher {
    Gzip(Box<flate2::write::MultiGzDecoder<Sha256Writer<Sink>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Sha256Writer<Sink>>>),
}

impl DiffHasher {
    pub fn new(c: Compression) -> io::Result<Option<Self>> {
        let sink = Sha256Writer::new(io::sink());
        Ok(match c {
            Compression::None => None,
            Compression::Gzip => Some(DiffHasher::Gzip(Box::new(
                flate2::write::MultiGzDecoder::new(sink),
            ))),
            Compression::Zstd => Some(DiffHasher::Zstd(Box::new(
                zstd::stream::write::Decoder::new(sink)?,
            ))),
        })
    }

    pub fn update(&mut self, compressed: &[u8]) -> io::Result<()> {
        match self {
            DiffHasher::Gzip(d) => d.write_all(compressed),
            DiffHasher::Zstd(d) => d.write_all(compressed),
        }
    }

    /// The digest of everything decompressed; an error when the stream stopped inside a frame.
    pub fn finish(self) -> io::Result<Digest> {
        let sink = match self {
            DiffHasher::Gzip(d) => d.finish()?,
            DiffHasher::Zstd(mut d) => {
                d.flush()?;
                d.into_inner()
            }
        };
        Ok(sink.finish().1)
    }
}

/// A [`DiffHasher`] on a thread of its own: inflating a layer and hashing what comes out costs
/// more than everything else a copy does with the blob (reading, hashing, writing), so with a
/// second core the two run side by side. The bytes go through a [`pipe`], a few chunks at a
/// time; a decoding error comes at [`DiffHashThread::finish`].
pub struct DiffHashThread {
    /// `None` once the thread stopped reading (at a decoding error, which it returns).
    pipe: Option<PipeWriter>,
    thread: JoinHandle<io::Result<Digest>>,
}

impl DiffHashThread {
    /// The thread for a blob in compression `c`; `None` when uncompressed (nothing to decode).
    pub fn start(c: Compression) -> io::Result<Option<Self>> {
        let Some(h) = DiffHasher::new(c)? else {
            return Ok(None);
        };
        let (pipe, r) = pipe::pair();
        let thread = std::thread::Builder::new()
            .name("diffid".into())
            .spawn(move || decode(h, r))?;
        Ok(Some(DiffHashThread {
            pipe: Some(pipe),
            thread,
        }))
    }

    pub fn update(&mut self, compressed: &[u8]) {
        if let Some(w) = self.pipe.as_mut() {
            if w.write_all(compressed).is_err() {
                self.pipe = None;
            }
        }
    }

    /// The digest of everything decompressed, or why it did not decompress.
    pub fn finish(mut self) -> io::Result<Digest> {
        let ended = match self.pipe.take() {
            Some(w) => w.finish(),
            None => Ok(()),
        };
        let decoded = self
            .thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the decompressing thread failed")));
        // The thread's own error says more than a pipe it stopped reading.
        decoded.and_then(|d| ended.map(|()| d))
    }
}

/// The decoding thread: decompresses what comes through the pipe and hashes the result.
fn decode(mut h: DiffHasher, mut r: PipeReader) -> io::Result<Digest> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        match r.read(&mut buf)? {
            0 => return h.finish(),
            n => h.update(&buf[..n])?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn hashes_what_a_gzip_or_zstd_blob_decompresses_to() {
        let data = b"layer bytes ".repeat(5000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for (c, blob) in [(Compression::Gzip, &gz), (Compression::Zstd, &zs)] {
            let mut h = DiffHasher::new(c).unwrap().unwrap();
            for chunk in blob.chunks(777) {
                h.update(chunk).unwrap();
            }
            assert_eq!(h.finish().unwrap(), Digest::of_bytes(&data), "{c:?}");
        }
        // Garbage does not decompress.
        let mut h = DiffHasher::new(Compression::Gzip).unwrap().unwrap();
        assert!(h
            .update(b"not gzip at all")
            .and_then(|_| h.finish())
            .is_err());
        assert!(DiffHasher::new(Compression::None).unwrap().is_none());
    }

    /// The thread gives what the hasher gives, over more data than the pipe holds at once, and
    /// a stream that stops decoding halfway is an error at the finish, never a digest.
    #[test]
    fn the_thread_hashes_as_the_hasher_and_reports_a_bad_stream_at_the_finish() {
        let data: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let mut t = DiffHashThread::start(Compression::Gzip).unwrap().unwrap();
        for chunk in gz.chunks(100_003) {
            t.update(chunk);
        }
        assert_eq!(t.finish().unwrap(), Digest::of_bytes(&data));
        let mut t = DiffHashThread::start(Compression::Gzip).unwrap().unwrap();
        t.update(&gz[..gz.len() / 2]);
        assert!(t.finish().is_err(), "a truncated gzip stream has no diffID");
        let mut t = DiffHashThread::start(Compression::Zstd).unwrap().unwrap();
        for _ in 0..100 {
            t.update(&[0x55; 100_000]); // not zstd: the thread stops reading, the writes go on
        }
        assert!(t.finish().is_err());
        assert!(DiffHashThread::start(Compression::None).unwrap().is_none());
    }
}
