//! Layer deltas: rebuild a new layer tar from a reference layer tar the destination already holds,
//! shipping only the bytes the reference lacks. This crate holds the format and the decoder
//! (all `partial-load` needs); the encoder, the chunk index and `partial-save`'s `--delta`
//! plug-in are the `partial-delta-encode` crate (`common/delta-encode/`), so that the air-gapped
//! binary links no encoder.
//!
//! Why: a layer rebuilt with one file changed gets a new diffID, so layer-level exclusion carries
//! all of it again; a delta against the old layer is a few kilobytes.
//!
//! - [`format`]: the wire format (a header naming the reference and the result, then COPY/LITERAL
//!   operations over the reference, or a zstd frame compressed with the reference as its prefix);
//! - [`decode`] rebuilds the layer from the delta and the reference, checking its size and sha256.
//!
//! Memory is bounded: literals are cut at [`format::MAX_LITERAL`], and the zstd patch mode is used
//! only for references of at most [`PATCH_MAX_REFERENCE`] bytes (that reference is held in memory
//! on both sides).

mod decode;
mod error;
pub mod format;

pub use decode::{decode, read_header, DecodeSummary};
pub use error::DeltaError;
pub use format::{Encoding, Header, PATCH_MAX_REFERENCE, PATCH_WINDOW_LOG};
