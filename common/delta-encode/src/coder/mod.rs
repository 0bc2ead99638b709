//! `partial-save --delta`: the engine plug-in that ships a carried layer as a delta against a
//! layer the destination holds. Two steps, each its own module:
//!
//! - [`references`]: the reference layers this side can read (the `-e` images, base archives,
//!   images of the same repositories holding chains an inventory names) are streamed once
//!   through the engine and indexed ([`ChunkIndex`](crate::ChunkIndex)): hashes only, no
//!   data kept, except references small enough for the zstd patch mode (kept in anonymous
//!   temporary files, gone on any exit);
//! - [`hook`]: the [`CarriedLayers`](partial_common::engine::CarriedLayers) hook. For each carried layer
//!   it picks a reference, by position first (the same index in a reference image of the same
//!   repository), else by shared content (sampled chunk hashes), encodes against it and gives the
//!   delta when it saves at least a tenth of the layer compressed (a delta bundle no longer
//!   loads with a plain `docker load`); else the layer travels whole.
//!
//! It knows the engine and the delta codec; neither knows it.

mod hook;
mod references;

pub use hook::{DeltaCoder, DeltaNote, PendingReferences, MIN_SAVING, MIN_SHARED};
pub use references::{index_references, Reference, References};

#[cfg(test)]
mod tests;
