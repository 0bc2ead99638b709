//! The layer delta wire format, version 1 (all integers little-endian).
//!
//! ```text
//! header (92 bytes)
//!   0  magic           8 bytes  "PSLDELTA"
//!   8  version         u8       1
//!   9  encoding        u8       1 = chunks (COPY/LITERAL operations), 2 = zstd patch
//!  10  reserved        2 bytes  zero
//!  12  reference diff  32 bytes sha256 of the uncompressed reference layer tar
//!  44  reference size  u64
//!  52  target diff     32 bytes sha256 of the uncompressed layer the delta rebuilds
//!  84  target size     u64
//! body, encoding 1: operations until END
//!   0x01 COPY     offset u64, len u64      copy reference[offset..offset+len]
//!   0x02 LITERAL  raw u32, packed u32,     one zstd frame (with checksum) of `raw` bytes,
//!                 then `packed` bytes      raw ≤ MAX_LITERAL (4 MiB), packed ≤ zstd bound of that
//!   0x00 END                               nothing may follow
//! body, encoding 2: one zstd frame (with checksum) compressed with the whole reference as its
//!   prefix (zstd `--patch-from`); reference ≤ PATCH_MAX_REFERENCE (16 MiB), window ≤
//!   2^PATCH_WINDOW_LOG (32 MiB); nothing may follow
//! ```
//!
//! A decoder checks the reference's diffID and size before reading the body, bounds every length
//! by a constant before acting on it, and checks the rebuilt size and sha256 at the end, so a
//! tampered or truncated delta is an error, never wrong output.

use super::error::DeltaError;
use partial_core::Digest;
use std::io::{self, Read, Write};

/// The first bytes of every layer delta.
pub const MAGIC: [u8; 8] = *b"PSLDELTA";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 92;
/// Largest uncompressed LITERAL run.
pub const MAX_LITERAL: usize = 4 << 20;

/// Largest reference the zstd patch mode holds in memory (on both sides); larger references use
/// the chunk encoding only. With the window of up to 32 MiB that goes with it, a decoder stays inside
/// the 64 MiB budget.
pub const PATCH_MAX_REFERENCE: u64 = 16 << 20;

/// The zstd window (log2 bytes) of the patch mode; the decoder refuses frames asking for more.
pub const PATCH_WINDOW_LOG: u32 = 25;

pub const OP_END: u8 = 0x00;
pub const OP_COPY: u8 = 0x01;
pub const OP_LITERAL: u8 = 0x02;

/// How the body of a delta rebuilds the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// COPY operations for chunks the reference has, zstd LITERAL runs for the rest.
    Chunks,
    /// One zstd frame with the reference as its prefix.
    Patch,
}

impl Encoding {
    fn code(self) -> u8 {
        match self {
            Encoding::Chunks => 1,
            Encoding::Patch => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Chunks => "chunks",
            Encoding::Patch => "zstd-patch",
        }
    }
}

/// The header of a delta: what it was made against and what it rebuilds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub encoding: Encoding,
    pub reference_diff_id: Digest,
    pub reference_size: u64,
    pub target_diff_id: Digest,
    pub target_size: u64,
}

impl Header {
    /// Writes the header.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let mut buf = Vec::with_capacity(HEADER_LEN);
        buf.extend_from_slice(&MAGIC);
        buf.push(VERSION);
        buf.push(self.encoding.code());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&digest_bytes(&self.reference_diff_id));
        buf.extend_from_slice(&self.reference_size.to_le_bytes());
        buf.extend_from_slice(&digest_bytes(&self.target_diff_id));
        buf.extend_from_slice(&self.target_size.to_le_bytes());
        w.write_all(&buf)
    }

    /// Reads and checks a header (magic, version, encoding, reserved bytes).
    pub(crate) fn read_from<R: Read>(r: &mut DeltaReader<R>) -> Result<Header, DeltaError> {
        let mut magic = [0u8; 8];
        r.exact(&mut magic, "the header")?;
        if magic != MAGIC {
            return Err(DeltaError::BadMagic { found: magic });
        }
        let mut rest = [0u8; HEADER_LEN - 8];
        r.exact(&mut rest, "the header")?;
        if rest[0] != VERSION {
            return Err(DeltaError::UnknownVersion {
                found: rest[0],
                supported: VERSION,
            });
        }
        let encoding = match rest[1] {
            1 => Encoding::Chunks,
            2 => Encoding::Patch,
            other => return Err(DeltaError::UnknownEncoding(other)),
        };
        if rest[2..4] != [0, 0] {
            return Err(DeltaError::Reserved);
        }
        Ok(Header {
            encoding,
            reference_diff_id: digest_at(&rest, 4),
            reference_size: u64_at(&rest, 36),
            target_diff_id: digest_at(&rest, 44),
            target_size: u64_at(&rest, 76),
        })
    }
}

fn digest_bytes(d: &Digest) -> [u8; 32] {
    let mut out = [0u8; 32];
    // A `Digest` always holds 64 valid hex digits.
    if hex::decode_to_slice(d.hex(), &mut out).is_err() {
        unreachable!("Digest holds 64 hex digits");
    }
    out
}

fn digest_at(buf: &[u8], at: usize) -> Digest {
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&buf[at..at + 32]);
    Digest::from_sha256(raw)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(raw)
}

/// Writes a COPY operation.
pub fn write_copy<W: Write>(w: &mut W, offset: u64, len: u64) -> io::Result<usize> {
    let mut op = [0u8; 17];
    op[0] = OP_COPY;
    op[1..9].copy_from_slice(&offset.to_le_bytes());
    op[9..17].copy_from_slice(&len.to_le_bytes());
    w.write_all(&op)?;
    Ok(op.len())
}

/// Writes a LITERAL operation holding `packed`, a zstd frame of `raw_len` bytes.
pub fn write_literal<W: Write>(w: &mut W, raw_len: usize, packed: &[u8]) -> io::Result<usize> {
    let mut op = [0u8; 9];
    op[0] = OP_LITERAL;
    op[1..5].copy_from_slice(&(raw_len as u32).to_le_bytes());
    op[5..9].copy_from_slice(&(packed.len() as u32).to_le_bytes());
    w.write_all(&op)?;
    w.write_all(packed)?;
    Ok(op.len() + packed.len())
}

/// A reader that knows how many bytes it has given out, so errors can name a delta offset.
pub(crate) struct DeltaReader<R> {
    pub inner: R,
    pub pos: u64,
}

impl<R: Read> DeltaReader<R> {
    pub fn new(inner: R) -> Self {
        DeltaReader { inner, pos: 0 }
    }

    /// `read_exact`, where an early end is [`DeltaError::Truncated`] inside `what`.
    pub fn exact(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), DeltaError> {
        let at = self.pos;
        match self.read_exact(buf) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(DeltaError::Truncated { what, at })
            }
            Err(e) => Err(DeltaError::ReadDelta(e)),
        }
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, DeltaError> {
        let mut b = [0u8; 1];
        self.exact(&mut b, what)?;
        Ok(b[0])
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DeltaError> {
        let mut b = [0u8; 4];
        self.exact(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DeltaError> {
        let mut b = [0u8; 8];
        self.exact(&mut b, what)?;
        Ok(u64::from_le_bytes(b))
    }

    /// True when the stream has nothing left.
    pub fn at_end(&mut self) -> Result<bool, DeltaError> {
        let mut b = [0u8; 1];
        loop {
            match self.inner.read(&mut b) {
                Ok(0) => return Ok(true),
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(DeltaError::ReadDelta(e)),
            }
        }
    }
}

impl<R: Read> Read for DeltaReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            encoding: Encoding::Patch,
            reference_diff_id: Digest::of_bytes(b"ref"),
            reference_size: 12345,
            target_diff_id: Digest::of_bytes(b"target"),
            target_size: u64::MAX - 1,
        }
    }

    #[test]
    fn header_round_trips() {
        let mut buf = Vec::new();
        header().write_to(&mut buf).unwrap();
        assert_eq!(buf.len(), HEADER_LEN);
        let read = Header::read_from(&mut DeltaReader::new(&buf[..])).unwrap();
        assert_eq!(read, header());
    }

    #[test]
    fn header_errors_name_the_field() {
        let mut buf = Vec::new();
        header().write_to(&mut buf).unwrap();
        let check = |mutate: &dyn Fn(&mut Vec<u8>)| {
            let mut b = buf.clone();
            mutate(&mut b);
            Header::read_from(&mut DeltaReader::new(&b[..])).unwrap_err()
        };
        assert!(matches!(
            check(&|b| b[0] = b'X'),
            DeltaError::BadMagic { .. }
        ));
        assert!(matches!(
            check(&|b| b[8] = 9),
            DeltaError::UnknownVersion { found: 9, .. }
        ));
        assert!(matches!(
            check(&|b| b[9] = 7),
            DeltaError::UnknownEncoding(7)
        ));
        assert!(matches!(check(&|b| b[11] = 1), DeltaError::Reserved));
        assert!(matches!(
            check(&|b| b.truncate(50)),
            DeltaError::Truncated { at: 8, .. }
        ));
    }
}
