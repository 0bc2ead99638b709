//! The diffID of a compressed layer blob, computed while the blob streams past: the compressed
//! bytes are written into a decoder whose output is hashed, so checking costs no second read.
//! A blob that does not decompress (corrupt, or not gzip/zstd at all) is reported as such.
//! Used by the checked bundle source (every read on the far side) and by the export's check
//! (`engine::verify`, on a thread of its own).

use crate::codec::Compression;
use crate::digest::{Digest, Sha256Writer};
use std::io::{self, Sink, Write};

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
}
