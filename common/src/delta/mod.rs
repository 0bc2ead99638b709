//! Layer deltas: rebuild a new layer tar from a reference layer tar the destination already holds,
//! shipping only the bytes the reference lacks. This crate holds the format and the decoder
//! (all `partial-load` needs); the encoder, the chunk index and `partial-save`'s `--delta`
//! plug-in are the `partial-delta-encode` crate (`common/delta-encode/`).
//!
//! Why: a layer rebuilt with one file changed gets a new diffID, so layer-level exclusion carries
//! all of it again; a delta against the old layer is a few kilobytes. This module is the engine
//! only (not yet wired into `partial-save`/`partial-load`):
//!
//! - [`ChunkIndex`] chunks a reference layer with content-defined chunking (FastCDC 2020) and keeps
//!   the BLAKE3 hash, offset and length of each chunk, never the data;
//! - [`Sketch`] is a cheap sampled fingerprint of a layer, to pick the best reference among
//!   candidates and skip deltas when none shares content;
//! - [`encode`] writes a delta: either COPY/LITERAL operations over the chunks, or a zstd frame
//!   compressed with the reference as its prefix (`--patch-from`), whichever is smaller, or reports
//!   that no delta gains anything;
//! - [`decode`] rebuilds the layer from the delta and the reference, checking its size and sha256.
//!
//! The wire format is in [`format`]. Memory is bounded: the index holds 48-odd bytes per chunk
//! (64 KiB average), literals are cut at [`format::MAX_LITERAL`], the encoder's bodies are spooled
//! to temporary files beyond a few MiB, and the zstd patch mode is used only for references of at
//! most [`PATCH_MAX_REFERENCE`] bytes (that reference is held in memory on both sides).

mod decode;
mod error;
pub mod format;

pub use decode::{decode, read_header, DecodeSummary};
pub use error::DeltaError;
pub use format::{Encoding, Header, PATCH_MAX_REFERENCE, PATCH_WINDOW_LOG};
