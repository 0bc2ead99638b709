//! The errors of the delta engine: each names the thing that is wrong (which digest, which offset).

use partial_core::Digest;
use std::io;

/// Why a delta could not be made or applied.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("not a layer delta (wrong magic bytes {found:02x?})")]
    BadMagic { found: [u8; 8] },
    #[error("layer delta format version {found} is not supported (this build reads version {supported})")]
    UnknownVersion { found: u8, supported: u8 },
    #[error("layer delta uses unknown encoding {0}")]
    UnknownEncoding(u8),
    #[error("layer delta header has non-zero reserved bytes")]
    Reserved,
    #[error("unknown delta operation 0x{tag:02x} at delta byte {at}")]
    UnknownOp { tag: u8, at: u64 },
    #[error("layer delta is truncated: it ends inside {what} at delta byte {at}")]
    Truncated { what: &'static str, at: u64 },
    #[error("delta was made against reference layer {delta} but the reference given is {given}")]
    ReferenceMismatch { delta: Digest, given: Digest },
    #[error("reference layer {diff_id} is {actual} bytes but the delta expects {expected}")]
    ReferenceSize {
        diff_id: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("reference layer changed since it was indexed: expected {expected}, read {actual}")]
    ReferenceChanged { expected: Digest, actual: Digest },
    #[error("COPY at delta byte {at} reads {len} bytes at offset {offset} but reference layer {diff_id} has only {size} bytes")]
    CopyOutOfRange {
        at: u64,
        offset: u64,
        len: u64,
        size: u64,
        diff_id: Digest,
    },
    #[error("{what} at delta byte {at} claims {len} bytes, above the limit of {max}")]
    TooLarge {
        what: &'static str,
        at: u64,
        len: u64,
        max: u64,
    },
    #[error("LITERAL at delta byte {at} is corrupt: {reason}")]
    LiteralCorrupt { at: u64, reason: String },
    #[error("zstd patch body is corrupt: {0}")]
    PatchCorrupt(#[source] io::Error),
    #[error(
        "zstd patch delta needs its {size}-byte reference in memory, above the limit of {max}"
    )]
    PatchReferenceTooLarge { size: u64, max: u64 },
    #[error("unexpected data after the end of the layer delta (delta byte {at})")]
    TrailingData { at: u64 },
    #[error("delta rebuilds layer {delta} but {expected} was expected")]
    TargetMismatch { delta: Digest, expected: Digest },
    #[error("rebuilt layer {diff_id} is {actual} bytes but the delta promised {expected}")]
    SizeMismatch {
        diff_id: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("rebuilt layer has digest {actual} but the delta promised {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("reading the reference layer: {0}")]
    ReadReference(#[source] io::Error),
    #[error("reading the new layer: {0}")]
    ReadLayer(#[source] io::Error),
    #[error("reading the delta: {0}")]
    ReadDelta(#[source] io::Error),
    #[error("writing the delta: {0}")]
    WriteDelta(#[source] io::Error),
    #[error("writing the rebuilt layer: {0}")]
    WriteOutput(#[source] io::Error),
    #[error("temporary spool file: {0}")]
    Spool(#[source] io::Error),
    #[error("zstd: {0}")]
    Zstd(#[source] io::Error),
}
