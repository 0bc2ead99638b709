//! Content-defined chunking of layers: the chunk index of a reference and sampled sketches.
//!
//! Chunk boundaries depend only on the bytes around them (FastCDC 2020, 16/64/256 KiB, and the
//! start and end of each large file's content in a tar: `tarcut`), so a file that moved inside a
//! tar, or a tar with one file changed, still cuts into mostly the same chunks.
//! The index maps the BLAKE3 hash of each reference chunk to its offset and length, and keeps no
//! data: its size is bounded by the number of chunks (capped at [`MAX_INDEX_CHUNKS`]).

use crate::chunk_sizes::{AVG_CHUNK, MAX_CHUNK, MIN_CHUNK};
use fastcdc::v2020::ChunkData;
use partial_common::delta::DeltaError;
use partial_common::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::{self, Read};

/// Most chunks an index holds (about 48 MiB of index at most; 64 GiB of reference at the average
/// chunk size). Chunks past it are not indexed, so they travel as literals.
pub const MAX_INDEX_CHUNKS: usize = 1 << 20;

/// One chunk in every 2^SAMPLE_BITS (chosen by content) goes into a sketch.
const SAMPLE_BITS: u32 = 4;

type ChunkHash = [u8; 32];

/// Where a chunk lies in the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLoc {
    pub offset: u64,
    pub len: u32,
}

/// Chunks a stream, cutting also around large file contents when it is a tar (see `tarcut`);
/// I/O errors are the stream's.
pub(crate) fn chunks<R: Read>(r: R) -> impl Iterator<Item = io::Result<ChunkData>> {
    crate::tarcut::TarChunks::new(r, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK)
}

/// Whether a chunk, known by its gear hash at the cut point, is sampled into sketches. The gear
/// hash depends only on the chunk's content, so both sides sample the same chunks.
fn sampled(gear: u64) -> bool {
    gear.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SAMPLE_BITS) == 0
}

/// The chunk index of a reference layer: BLAKE3 → (offset, length), plus its diffID, size and
/// sketch, all from one streaming pass.
pub struct ChunkIndex {
    map: HashMap<ChunkHash, ChunkLoc>,
    diff_id: Digest,
    size: u64,
    chunks: u64,
    sketch: Sketch,
}

impl ChunkIndex {
    /// Reads the reference layer to its end and indexes it.
    pub fn build<R: Read>(reference: R) -> Result<ChunkIndex, DeltaError> {
        Self::build_with_limit(reference, MAX_INDEX_CHUNKS)
    }

    /// [`ChunkIndex::build`] holding at most `max_entries` chunks.
    pub fn build_with_limit<R: Read>(
        reference: R,
        max_entries: usize,
    ) -> Result<ChunkIndex, DeltaError> {
        let mut hashing = HashingReader::new(reference);
        let mut map = HashMap::new();
        let mut sketch = Sketch::default();
        let mut count = 0u64;
        for chunk in chunks(&mut hashing) {
            let chunk = chunk.map_err(DeltaError::ReadReference)?;
            count += 1;
            let hash = *blake3::hash(&chunk.data).as_bytes();
            if sampled(chunk.hash) {
                sketch.add(hash, chunk.length);
            }
            sketch.total += chunk.length as u64;
            if map.len() < max_entries {
                map.entry(hash).or_insert(ChunkLoc {
                    offset: chunk.offset,
                    len: chunk.length as u32,
                });
            }
        }
        let (diff_id, size) = hashing.finish();
        Ok(ChunkIndex {
            map,
            diff_id,
            size,
            chunks: count,
            sketch,
        })
    }

    pub(crate) fn lookup(&self, hash: &ChunkHash) -> Option<ChunkLoc> {
        self.map.get(hash).copied()
    }

    /// The reference's diffID (sha256 of what was read).
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The reference's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Chunks the reference was cut into.
    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// Distinct chunks held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// An upper estimate of the index's heap memory in bytes (table slots and control bytes).
    pub fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(ChunkHash, ChunkLoc)>() + 1;
        self.map.capacity() * slot + self.sketch.heap_bytes()
    }

    /// The reference's sketch.
    pub fn sketch(&self) -> &Sketch {
        &self.sketch
    }

    /// Estimated fraction (0–1) of a new layer's bytes this reference holds, from the new layer's
    /// sketch looked up in the whole index; `None` when the sketch is too small to tell.
    pub fn estimate(&self, new_layer: &Sketch) -> Option<f64> {
        new_layer.fraction_in(|h| self.map.contains_key(h))
    }
}

impl std::fmt::Debug for ChunkIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkIndex")
            .field("diff_id", &self.diff_id)
            .field("size", &self.size)
            .field("chunks", &self.chunks)
            .field("entries", &self.map.len())
            .finish()
    }
}

/// A sampled fingerprint of a layer: the BLAKE3 hashes and lengths of about one chunk in 16,
/// chosen by content. Small (about 40 KiB per GiB of layer), cheap to compare.
#[derive(Debug, Default, Clone)]
pub struct Sketch {
    samples: HashMap<ChunkHash, u32>,
    total: u64,
}

impl Sketch {
    /// Reads a layer to its end and sketches it (BLAKE3 only of the sampled chunks).
    pub fn of_layer<R: Read>(layer: R) -> Result<Sketch, DeltaError> {
        let mut sketch = Sketch::default();
        for chunk in chunks(layer) {
            let chunk = chunk.map_err(DeltaError::ReadLayer)?;
            if sampled(chunk.hash) {
                sketch.add(*blake3::hash(&chunk.data).as_bytes(), chunk.length);
            }
            sketch.total += chunk.length as u64;
        }
        Ok(sketch)
    }

    fn add(&mut self, hash: ChunkHash, len: usize) {
        if self.samples.len() < MAX_INDEX_CHUNKS >> SAMPLE_BITS {
            self.samples.insert(hash, len as u32);
        }
    }

    /// Estimated fraction (0–1) of `new_layer`'s bytes found in the layer this sketch is of (the
    /// reference); `None` when `new_layer` is too small to have sampled chunks.
    pub fn similarity(&self, new_layer: &Sketch) -> Option<f64> {
        new_layer.fraction_in(|h| self.samples.contains_key(h))
    }

    /// Bytes of the sketched layer.
    pub fn layer_size(&self) -> u64 {
        self.total
    }

    /// Sampled chunks.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    fn heap_bytes(&self) -> usize {
        self.samples.capacity() * (std::mem::size_of::<(ChunkHash, u32)>() + 1)
    }

    fn fraction_in(&self, holds: impl Fn(&ChunkHash) -> bool) -> Option<f64> {
        let sampled: u64 = self.samples.values().map(|&l| u64::from(l)).sum();
        if sampled == 0 {
            return None;
        }
        let found: u64 = self
            .samples
            .iter()
            .filter(|(h, _)| holds(h))
            .map(|(_, &l)| u64::from(l))
            .sum();
        Some(found as f64 / sampled as f64)
    }
}

/// A reader that hashes (sha256) and counts what passes through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The digest and the byte count of everything read.
    pub fn finish(self) -> (Digest, u64) {
        (
            Digest::from_sha256(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::pseudo_random;

    #[test]
    fn index_is_bounded_by_the_chunk_count_and_the_limit() {
        let data = pseudo_random(1, 8 << 20);
        let index = ChunkIndex::build(&data[..]).unwrap();
        assert_eq!(index.size(), data.len() as u64);
        assert_eq!(index.diff_id(), &Digest::of_bytes(&data));
        // 8 MiB at 16..256 KiB per chunk.
        assert!(
            (32..=512).contains(&index.chunk_count()),
            "{}",
            index.chunk_count()
        );
        assert!(index.len() as u64 <= index.chunk_count());
        // Memory is per chunk, not per byte: far below the data's size.
        assert!(index.heap_bytes() < 128 * index.chunk_count() as usize + 4096);
        assert!(index.heap_bytes() < data.len() / 100);

        let capped = ChunkIndex::build_with_limit(&data[..], 10).unwrap();
        assert_eq!(capped.len(), 10);
        assert_eq!(capped.chunk_count(), index.chunk_count());
    }

    #[test]
    fn sketch_tells_related_from_unrelated() {
        let a = pseudo_random(2, 16 << 20);
        let mut b = a.clone();
        b[5 << 20..(5 << 20) + 1000].fill(0);
        let c = pseudo_random(3, 16 << 20);
        let index = ChunkIndex::build(&a[..]).unwrap();
        let sb = Sketch::of_layer(&b[..]).unwrap();
        let sc = Sketch::of_layer(&c[..]).unwrap();
        assert!(!sb.is_empty() && !sc.is_empty());
        assert!(index.estimate(&sb).unwrap() > 0.9);
        assert!(index.sketch().similarity(&sb).unwrap() > 0.9);
        assert_eq!(index.estimate(&sc), Some(0.0));
        assert_eq!(index.sketch().similarity(&sc), Some(0.0));
        let empty = Sketch::of_layer(&b""[..]).unwrap();
        assert_eq!(empty.similarity(&sb), Some(0.0));
        assert_eq!(index.estimate(&empty), None);
    }
}
