//! The delta encoder: one pass over the new layer feeds both encodings (chunk operations, and the
//! zstd patch when the reference is small enough), each spooled to a temporary file; the smaller
//! one is written out after the header, or nothing when no delta gains anything.

use crate::index::{chunks, ChunkIndex, HashingReader};
use partial_common::delta::format::{self, Encoding, Header, MAX_LITERAL};
use partial_common::delta::format::{PATCH_MAX_REFERENCE, PATCH_WINDOW_LOG};
use partial_common::delta::DeltaError;
use partial_common::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Seek, SeekFrom, Write};
use tempfile::SpooledTempFile;

/// Bytes of an encoding body held in memory before it spills to a temporary file.
const SPOOL_IN_MEMORY: usize = 4 << 20;

/// How to encode.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// zstd level of literals and of the patch mode.
    pub level: i32,
    /// Try the zstd patch mode when the reference is at most this many bytes (capped at
    /// [`PATCH_MAX_REFERENCE`]; 0 turns it off).
    pub patch_max_reference: u64,
    /// The delta gains nothing unless it is smaller than this (e.g. the compressed plain layer
    /// the caller would ship otherwise).
    pub max_delta_size: Option<u64>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            level: 3,
            patch_max_reference: PATCH_MAX_REFERENCE,
            max_delta_size: None,
        }
    }
}

/// What the encoder made.
#[derive(Debug, Clone)]
pub struct EncodeSummary {
    /// The encoding chosen (the smaller one).
    pub encoding: Encoding,
    /// Size of the delta (header and body of the chosen encoding).
    pub delta_size: u64,
    /// Size the chunk encoding would have.
    pub chunks_size: u64,
    /// Size the zstd patch would have, when it was tried.
    pub patch_size: Option<u64>,
    pub target_diff_id: Digest,
    pub target_size: u64,
    /// Bytes of the new layer the chunk encoding copies from the reference.
    pub copied_bytes: u64,
    /// Bytes of the new layer the chunk encoding carries as literals.
    pub literal_bytes: u64,
}

/// The encoder's result.
#[derive(Debug, Clone)]
pub enum Encoded {
    /// The delta was written.
    Delta(EncodeSummary),
    /// Nothing was written: the delta would not be smaller than the plain layer (the reference
    /// shares nothing, or the delta reaches `max_delta_size` or the layer's own size).
    NoGain(EncodeSummary),
}

impl Encoded {
    pub fn summary(&self) -> &EncodeSummary {
        match self {
            Encoded::Delta(s) | Encoded::NoGain(s) => s,
        }
    }
}

/// Encodes `new_layer` against the reference that `index` was built from (read again from
/// `reference` only for the zstd patch mode), writing the delta to `out` when it gains.
pub fn encode<F, R, W>(
    index: &ChunkIndex,
    reference: &mut F,
    new_layer: R,
    out: &mut W,
    opts: &EncodeOptions,
) -> Result<Encoded, DeltaError>
where
    F: Read + Seek,
    R: Read,
    W: Write,
{
    let bodies = encode_both(index, reference, new_layer, opts)?;
    let summary = bodies.summary();
    if !gains(&summary, opts) {
        return Ok(Encoded::NoGain(summary));
    }
    write_delta(index, &summary, bodies, out)?;
    Ok(Encoded::Delta(summary))
}

/// Both encodings of one layer, spooled: the chunk operations always, the zstd patch when the
/// reference prefix allowed one and it did not give up.
struct Bodies {
    chunks: (SpooledTempFile, u64),
    patch: Option<(SpooledTempFile, u64)>,
    target_diff_id: Digest,
    target_size: u64,
    copied_bytes: u64,
    literal_bytes: u64,
}

impl Bodies {
    /// The sizes of both, and the smaller chosen.
    fn summary(&self) -> EncodeSummary {
        let header_len = format::HEADER_LEN as u64;
        let chunks_size = header_len + self.chunks.1;
        let patch_size = self.patch.as_ref().map(|(_, len)| header_len + len);
        let use_patch = patch_size.is_some_and(|p| p < chunks_size);
        EncodeSummary {
            encoding: if use_patch {
                Encoding::Patch
            } else {
                Encoding::Chunks
            },
            delta_size: match patch_size {
                Some(p) if use_patch => p,
                _ => chunks_size,
            },
            chunks_size,
            patch_size,
            target_diff_id: self.target_diff_id.clone(),
            target_size: self.target_size,
            copied_bytes: self.copied_bytes,
            literal_bytes: self.literal_bytes,
        }
    }
}

/// Reads `new_layer` once, feeding the chunk encoder and (while within its window) the patch
/// encoder, hashing it on the way.
fn encode_both<F: Read + Seek, R: Read>(
    index: &ChunkIndex,
    reference: &mut F,
    new_layer: R,
    opts: &EncodeOptions,
) -> Result<Bodies, DeltaError> {
    let prefix = load_prefix(index, reference, opts)?;
    let mut patch = match &prefix {
        Some(p) => Some(patch_encoder(p, opts.level)?),
        None => None,
    };
    let mut ops = OpWriter::new(opts.level)?;
    let mut tee = PatchFeed {
        inner: HashingReader::new(new_layer),
        patch: patch.as_mut(),
        patch_until: prefix
            .as_ref()
            .map_or(0, |p| 2 << patch_window_log(p.len())),
        failed: None,
    };
    if let Err(e) = feed(&mut tee, index, &mut ops) {
        return Err(match tee.failed.take() {
            Some(spool) => DeltaError::Spool(spool),
            None => e,
        });
    }
    let gave_up = tee.patch.is_none();
    let (target_diff_id, target_size) = tee.inner.finish();
    let patch = match patch {
        Some(enc) if !gave_up => {
            let mut body = enc.finish().map_err(DeltaError::Spool)?;
            let len = body.stream_position().map_err(DeltaError::Spool)?;
            Some((body, len))
        }
        _ => None,
    };
    Ok(Bodies {
        chunks: ops.finish()?,
        patch,
        target_diff_id,
        target_size,
        copied_bytes: ops.copied,
        literal_bytes: ops.literal_bytes,
    })
}

/// Writes the header and the chosen body to `out`.
fn write_delta<W: Write>(
    index: &ChunkIndex,
    summary: &EncodeSummary,
    bodies: Bodies,
    out: &mut W,
) -> Result<(), DeltaError> {
    let header = Header {
        encoding: summary.encoding,
        reference_diff_id: index.diff_id().clone(),
        reference_size: index.size(),
        target_diff_id: summary.target_diff_id.clone(),
        target_size: summary.target_size,
    };
    header.write_to(out).map_err(DeltaError::WriteDelta)?;
    let body = match bodies.patch {
        Some((body, _)) if summary.encoding == Encoding::Patch => body,
        _ => {
            let mut chunk_body = bodies.chunks.0;
            chunk_body.flush().map_err(DeltaError::Spool)?;
            chunk_body
        }
    };
    copy_spool(body, out)?;
    out.flush().map_err(DeltaError::WriteDelta)
}

/// Whether a delta is worth shipping instead of the plain layer.
///
/// A chunk encoding that copies less than one smallest chunk (a tar's end-of-archive blocks, a
/// few identical headers) is just the layer compressed, and a patch must beat it by 10% to show
/// the reference helps; any delta must be smaller than the layer itself and than the caller's
/// `max_delta_size`.
fn gains(s: &EncodeSummary, opts: &EncodeOptions) -> bool {
    if s.delta_size >= s.target_size || opts.max_delta_size.is_some_and(|m| s.delta_size >= m) {
        return false;
    }
    s.copied_bytes >= crate::chunk_sizes::MIN_CHUNK as u64
        || s.patch_size.is_some_and(|p| p * 10 < s.chunks_size * 9)
}

/// Chunks the new layer and writes a COPY for each chunk the index has, literals for the rest.
fn feed<R: Read>(
    tee: &mut PatchFeed<'_, '_, R>,
    index: &ChunkIndex,
    ops: &mut OpWriter,
) -> Result<(), DeltaError> {
    for chunk in chunks(tee) {
        let chunk = chunk.map_err(DeltaError::ReadLayer)?;
        let hash = *blake3::hash(&chunk.data).as_bytes();
        match index.lookup(&hash) {
            Some(loc) if loc.len as usize == chunk.length => {
                ops.copy(loc.offset, u64::from(loc.len))?
            }
            _ => ops.literal(&chunk.data)?,
        }
    }
    Ok(())
}

/// Reads the whole reference into memory for the zstd patch mode, when it is small enough, and
/// checks it is still what was indexed.
fn load_prefix<F: Read + Seek>(
    index: &ChunkIndex,
    reference: &mut F,
    opts: &EncodeOptions,
) -> Result<Option<Vec<u8>>, DeltaError> {
    let limit = opts.patch_max_reference.min(PATCH_MAX_REFERENCE);
    if index.size() == 0 || index.size() > limit {
        return Ok(None);
    }
    reference
        .seek(SeekFrom::Start(0))
        .map_err(DeltaError::ReadReference)?;
    // The size is the index's own count, at most `limit`.
    let mut prefix = Vec::with_capacity(index.size() as usize);
    reference
        .take(index.size() + 1)
        .read_to_end(&mut prefix)
        .map_err(DeltaError::ReadReference)?;
    let actual = Digest::from_sha256(Sha256::digest(&prefix).into());
    if &actual != index.diff_id() {
        return Err(DeltaError::ReferenceChanged {
            expected: index.diff_id().clone(),
            actual,
        });
    }
    Ok(Some(prefix))
}

type PatchEncoder<'a> = zstd::stream::write::Encoder<'a, SpooledTempFile>;

/// A zstd encoder with `prefix` as its reference, long-distance matching, a window covering the
/// prefix (at most 2^PATCH_WINDOW_LOG) and a checksum.
fn patch_encoder(prefix: &[u8], level: i32) -> Result<PatchEncoder<'_>, DeltaError> {
    let spool = tempfile::spooled_tempfile(SPOOL_IN_MEMORY);
    let mut enc = PatchEncoder::with_ref_prefix(spool, level, prefix).map_err(DeltaError::Zstd)?;
    enc.include_checksum(true).map_err(DeltaError::Zstd)?;
    enc.window_log(patch_window_log(prefix.len()))
        .map_err(DeltaError::Zstd)?;
    enc.long_distance_matching(true).map_err(DeltaError::Zstd)?;
    Ok(enc)
}

/// Twice the prefix rounded up to a power of two, within zstd's minimum and PATCH_WINDOW_LOG.
pub(crate) fn patch_window_log(prefix_len: usize) -> u32 {
    let log = usize::BITS - prefix_len.max(1).saturating_sub(1).leading_zeros();
    (log + 1).clamp(10, PATCH_WINDOW_LOG)
}

/// A reader that also feeds what it reads to the patch encoder; a failure there is kept in
/// `failed` (the read itself then fails). Past `patch_until` bytes (twice the window: the prefix
/// is out of reach, and the patch only costs time) it gives the patch up.
struct PatchFeed<'p, 'a, R> {
    inner: HashingReader<R>,
    patch: Option<&'p mut PatchEncoder<'a>>,
    patch_until: u64,
    failed: Option<io::Error>,
}

impl<R: Read> Read for PatchFeed<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.inner.count() > self.patch_until {
            self.patch = None;
        }
        if let Some(patch) = self.patch.as_mut() {
            if let Err(e) = patch.write_all(&buf[..n]) {
                self.failed = Some(e);
                return Err(io::Error::other("spooling the zstd patch failed"));
            }
        }
        Ok(n)
    }
}

/// Writes chunk-encoding operations to a spool: adjacent COPYs are merged, literal chunks are
/// gathered into runs of at most MAX_LITERAL bytes, each one zstd frame.
struct OpWriter {
    out: SpooledTempFile,
    written: u64,
    pending_copy: Option<(u64, u64)>,
    literal: Vec<u8>,
    compressor: zstd::bulk::Compressor<'static>,
    copied: u64,
    literal_bytes: u64,
}

impl OpWriter {
    fn new(level: i32) -> Result<OpWriter, DeltaError> {
        let mut compressor = zstd::bulk::Compressor::new(level).map_err(DeltaError::Zstd)?;
        compressor
            .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .map_err(DeltaError::Zstd)?;
        Ok(OpWriter {
            out: tempfile::spooled_tempfile(SPOOL_IN_MEMORY),
            written: 0,
            pending_copy: None,
            literal: Vec::new(),
            compressor,
            copied: 0,
            literal_bytes: 0,
        })
    }

    fn copy(&mut self, offset: u64, len: u64) -> Result<(), DeltaError> {
        self.flush_literal()?;
        self.copied += len;
        match &mut self.pending_copy {
            Some((start, run)) if *start + *run == offset => *run += len,
            _ => {
                self.flush_copy()?;
                self.pending_copy = Some((offset, len));
            }
        }
        Ok(())
    }

    fn literal(&mut self, mut data: &[u8]) -> Result<(), DeltaError> {
        self.flush_copy()?;
        self.literal_bytes += data.len() as u64;
        while !data.is_empty() {
            let room = MAX_LITERAL - self.literal.len();
            let (now, later) = data.split_at(room.min(data.len()));
            self.literal.extend_from_slice(now);
            data = later;
            if self.literal.len() == MAX_LITERAL {
                self.flush_literal()?;
            }
        }
        Ok(())
    }

    fn flush_copy(&mut self) -> Result<(), DeltaError> {
        if let Some((offset, len)) = self.pending_copy.take() {
            let n = format::write_copy(&mut self.out, offset, len).map_err(DeltaError::Spool)?;
            self.written += n as u64;
        }
        Ok(())
    }

    fn flush_literal(&mut self) -> Result<(), DeltaError> {
        if self.literal.is_empty() {
            return Ok(());
        }
        let packed = self
            .compressor
            .compress(&self.literal)
            .map_err(DeltaError::Zstd)?;
        let n = format::write_literal(&mut self.out, self.literal.len(), &packed)
            .map_err(DeltaError::Spool)?;
        self.written += n as u64;
        self.literal.clear();
        Ok(())
    }

    /// Writes the last operations and END; returns the spool and the body's length.
    fn finish(&mut self) -> Result<(SpooledTempFile, u64), DeltaError> {
        self.flush_copy()?;
        self.flush_literal()?;
        self.out
            .write_all(&[format::OP_END])
            .map_err(DeltaError::Spool)?;
        self.written += 1;
        let out = std::mem::replace(&mut self.out, tempfile::spooled_tempfile(0));
        Ok((out, self.written))
    }
}

/// Copies a spooled body from its start to `out`.
fn copy_spool<W: Write>(mut body: SpooledTempFile, out: &mut W) -> Result<(), DeltaError> {
    body.seek(SeekFrom::Start(0)).map_err(DeltaError::Spool)?;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(DeltaError::Spool(e)),
        };
        out.write_all(&buf[..n]).map_err(DeltaError::WriteDelta)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_window_covers_twice_the_prefix_within_bounds() {
        assert_eq!(patch_window_log(0), 10);
        assert_eq!(patch_window_log(1000), 11);
        assert_eq!(patch_window_log(1 << 20), 21);
        assert_eq!(patch_window_log((1 << 20) + 1), 22);
        assert_eq!(
            patch_window_log(PATCH_MAX_REFERENCE as usize),
            PATCH_WINDOW_LOG
        );
    }
}
