//! The encoding side of layer deltas, apart from `partial-common` so that `partial-load`, which
//! only decodes (`partial_common::delta`), links neither FastCDC nor the encoder:
//!
//! - [`ChunkIndex`] chunks a reference layer with content-defined chunking (FastCDC 2020), cut
//!   around the content of large files ([`tarcut`]), and keeps the BLAKE3 hash, offset and length
//!   of each chunk, never the data; [`Sketch`] is a sampled fingerprint to pick a reference;
//! - [`encode`] writes a delta in the format of `partial_common::delta::format`: COPY/LITERAL
//!   operations over the chunks, or a zstd frame with the reference as its prefix, whichever is
//!   smaller, or says that no delta gains anything;
//! - [`coder`]: `partial-save --delta`, the engine plug-in that picks references and encodes
//!   carried layers.

mod chunk_sizes;
pub mod coder;
mod encode;
mod index;
mod tarcut;

#[cfg(test)]
pub(crate) mod tests;

pub use encode::{encode, EncodeOptions, EncodeSummary, Encoded};
pub use index::{ChunkIndex, Sketch, MAX_INDEX_CHUNKS};
