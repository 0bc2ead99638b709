//! The delta decoder: rebuilds a layer from a delta and its reference, streaming into a writer
//! while it hashes, and checks the reference before and the rebuilt size and diffID after.

use super::error::DeltaError;
use super::format::{DeltaReader, Encoding, Header, MAX_LITERAL, OP_COPY, OP_END, OP_LITERAL};
use super::format::{PATCH_MAX_REFERENCE, PATCH_WINDOW_LOG};
use partial_core::digest::Sha256Writer;
use partial_core::Digest;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};

/// Bytes read from the reference (or the patch decoder) at a time.
const COPY_BUF: usize = 256 << 10;

/// What the decoder rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeSummary {
    pub encoding: Encoding,
    /// The rebuilt layer's diffID (checked against the delta's header).
    pub diff_id: Digest,
    pub size: u64,
}

/// Reads and checks the header of a delta (to learn which reference it needs).
pub fn read_header<D: Read>(delta: D) -> Result<Header, DeltaError> {
    Header::read_from(&mut DeltaReader::new(delta))
}

/// Rebuilds a layer from `delta` and `reference` (whose diffID the caller knows), writing it to
/// `out`. Fails before writing anything when the delta is for another reference or, given
/// `expected`, rebuilds another layer; fails at the end when the rebuilt size or sha256 differs
/// from the header (the caller must then discard what was written).
pub fn decode<D, F, W>(
    delta: D,
    reference: &mut F,
    reference_diff_id: &Digest,
    out: W,
    expected: Option<&Digest>,
) -> Result<DecodeSummary, DeltaError>
where
    D: Read,
    F: Read + Seek,
    W: Write,
{
    let mut delta = DeltaReader::new(delta);
    let header = Header::read_from(&mut delta)?;
    if &header.reference_diff_id != reference_diff_id {
        return Err(DeltaError::ReferenceMismatch {
            delta: header.reference_diff_id,
            given: reference_diff_id.clone(),
        });
    }
    if let Some(expected) = expected.filter(|e| **e != header.target_diff_id) {
        return Err(DeltaError::TargetMismatch {
            delta: header.target_diff_id,
            expected: expected.clone(),
        });
    }
    let actual = reference
        .seek(SeekFrom::End(0))
        .map_err(DeltaError::ReadReference)?;
    if actual != header.reference_size {
        return Err(DeltaError::ReferenceSize {
            diff_id: header.reference_diff_id,
            expected: header.reference_size,
            actual,
        });
    }
    let mut sink = Sink {
        out: Sha256Writer::new(out),
        header: &header,
    };
    match header.encoding {
        Encoding::Chunks => apply_ops(&mut delta, reference, &header, &mut sink)?,
        Encoding::Patch => apply_patch(&mut delta, reference, &header, &mut sink)?,
    }
    sink.finish()
}

/// The output: hashes and counts, and refuses to grow past the promised size.
struct Sink<'h, W> {
    out: Sha256Writer<W>,
    header: &'h Header,
}

impl<W: Write> Sink<'_, W> {
    fn write(&mut self, data: &[u8]) -> Result<(), DeltaError> {
        let total = self.out.count() + data.len() as u64;
        if total > self.header.target_size {
            return Err(DeltaError::SizeMismatch {
                diff_id: self.header.target_diff_id.clone(),
                expected: self.header.target_size,
                actual: total,
            });
        }
        self.out.write_all(data).map_err(DeltaError::WriteOutput)
    }

    fn finish(self) -> Result<DecodeSummary, DeltaError> {
        let header = self.header;
        let (mut out, diff_id, size) = self.out.finish();
        out.flush().map_err(DeltaError::WriteOutput)?;
        if size != header.target_size {
            return Err(DeltaError::SizeMismatch {
                diff_id: header.target_diff_id.clone(),
                expected: header.target_size,
                actual: size,
            });
        }
        if diff_id != header.target_diff_id {
            return Err(DeltaError::DigestMismatch {
                expected: header.target_diff_id.clone(),
                actual: diff_id,
            });
        }
        Ok(DecodeSummary {
            encoding: header.encoding,
            diff_id,
            size,
        })
    }
}

/// Applies COPY and LITERAL operations until END.
fn apply_ops<D: Read, F: Read + Seek, W: Write>(
    delta: &mut DeltaReader<D>,
    reference: &mut F,
    header: &Header,
    sink: &mut Sink<'_, W>,
) -> Result<(), DeltaError> {
    let mut copier = Copier {
        reference,
        pos: None,
        buf: vec![0u8; COPY_BUF],
    };
    let mut literal = Literal::new()?;
    loop {
        let at = delta.pos;
        match delta.u8("an operation (no END marker)")? {
            OP_END => {
                return if delta.at_end()? {
                    Ok(())
                } else {
                    Err(DeltaError::TrailingData { at: delta.pos })
                };
            }
            OP_COPY => {
                let offset = delta.u64("a COPY")?;
                let len = delta.u64("a COPY")?;
                if offset
                    .checked_add(len)
                    .is_none_or(|end| end > header.reference_size)
                {
                    return Err(DeltaError::CopyOutOfRange {
                        at,
                        offset,
                        len,
                        size: header.reference_size,
                        diff_id: header.reference_diff_id.clone(),
                    });
                }
                copier.copy(offset, len, sink)?;
            }
            OP_LITERAL => {
                let data = literal.read(delta, at)?;
                sink.write(data)?;
            }
            tag => return Err(DeltaError::UnknownOp { tag, at }),
        }
    }
}

/// Copies ranges of the reference, seeking only when a range does not follow the last one.
struct Copier<'r, F> {
    reference: &'r mut F,
    pos: Option<u64>,
    buf: Vec<u8>,
}

impl<F: Read + Seek> Copier<'_, F> {
    fn copy<W: Write>(
        &mut self,
        offset: u64,
        len: u64,
        sink: &mut Sink<'_, W>,
    ) -> Result<(), DeltaError> {
        if self.pos != Some(offset) {
            self.reference
                .seek(SeekFrom::Start(offset))
                .map_err(DeltaError::ReadReference)?;
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(self.buf.len() as u64) as usize;
            self.reference
                .read_exact(&mut self.buf[..n])
                .map_err(DeltaError::ReadReference)?;
            sink.write(&self.buf[..n])?;
            left -= n as u64;
        }
        self.pos = Some(offset + len);
        Ok(())
    }
}

/// Reads and unpacks LITERAL operations into reused buffers bounded by MAX_LITERAL.
struct Literal {
    packed: Vec<u8>,
    raw: Vec<u8>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl Literal {
    fn new() -> Result<Literal, DeltaError> {
        Ok(Literal {
            packed: Vec::new(),
            raw: Vec::new(),
            decompressor: zstd::bulk::Decompressor::new().map_err(DeltaError::Zstd)?,
        })
    }

    /// Reads the rest of the LITERAL that starts at delta byte `at` and returns its bytes.
    fn read<D: Read>(&mut self, delta: &mut DeltaReader<D>, at: u64) -> Result<&[u8], DeltaError> {
        let raw_len = delta.u32("a LITERAL")? as usize;
        let packed_len = delta.u32("a LITERAL")? as usize;
        if raw_len > MAX_LITERAL {
            return Err(DeltaError::TooLarge {
                what: "LITERAL",
                at,
                len: raw_len as u64,
                max: MAX_LITERAL as u64,
            });
        }
        let max_packed = zstd::zstd_safe::compress_bound(MAX_LITERAL);
        if packed_len > max_packed {
            return Err(DeltaError::TooLarge {
                what: "compressed LITERAL",
                at,
                len: packed_len as u64,
                max: max_packed as u64,
            });
        }
        self.packed.clear();
        // Grows only as bytes arrive, never to a size the delta merely claims.
        (&mut *delta)
            .take(packed_len as u64)
            .read_to_end(&mut self.packed)
            .map_err(DeltaError::ReadDelta)?;
        if self.packed.len() < packed_len {
            return Err(DeltaError::Truncated {
                what: "a LITERAL",
                at: delta.pos,
            });
        }
        self.raw.clear();
        self.raw.reserve(raw_len);
        self.decompressor
            .decompress_to_buffer(&self.packed[..], &mut self.raw)
            .map_err(|e| DeltaError::LiteralCorrupt {
                at,
                reason: e.to_string(),
            })?;
        if self.raw.len() != raw_len {
            return Err(DeltaError::LiteralCorrupt {
                at,
                reason: format!("{} bytes unpacked, {raw_len} announced", self.raw.len()),
            });
        }
        Ok(&self.raw)
    }
}

/// Decodes the one zstd frame of a patch, with the whole reference as its prefix.
fn apply_patch<D: Read, F: Read + Seek, W: Write>(
    delta: &mut DeltaReader<D>,
    reference: &mut F,
    header: &Header,
    sink: &mut Sink<'_, W>,
) -> Result<(), DeltaError> {
    if header.reference_size > PATCH_MAX_REFERENCE {
        return Err(DeltaError::PatchReferenceTooLarge {
            size: header.reference_size,
            max: PATCH_MAX_REFERENCE,
        });
    }
    reference
        .seek(SeekFrom::Start(0))
        .map_err(DeltaError::ReadReference)?;
    // The size was checked against the reference itself and the limit above.
    let mut prefix = Vec::with_capacity(header.reference_size as usize);
    reference
        .take(header.reference_size)
        .read_to_end(&mut prefix)
        .map_err(DeltaError::ReadReference)?;
    if prefix.len() as u64 != header.reference_size {
        return Err(DeltaError::ReadReference(
            io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    let mut decoder =
        zstd::stream::read::Decoder::with_ref_prefix(BufReader::new(&mut *delta), &prefix)
            .map_err(DeltaError::Zstd)?
            .single_frame();
    decoder
        .window_log_max(PATCH_WINDOW_LOG)
        .map_err(DeltaError::Zstd)?;
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => sink.write(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(DeltaError::Truncated {
                    what: "the zstd patch",
                    at: decoder.get_ref().get_ref().pos,
                })
            }
            Err(e) => return Err(DeltaError::PatchCorrupt(e)),
        }
    }
    let rest = decoder.finish();
    let buffered = rest.buffer().len() as u64;
    let delta = rest.into_inner();
    if buffered > 0 || !delta.at_end()? {
        return Err(DeltaError::TrailingData {
            at: delta.pos - buffered,
        });
    }
    Ok(())
}
