//! Shared library of `partial-save` and `partial-load`: the image model (`image`) and its
//! sources (`source`: daemon, archive files of every writer, OCI layouts, registries), what a
//! destination holds (`have`), reading archives (`archive`), the engine that streams a source
//! into a bundle (`engine`, `bundle_writer`), the bundle read back as its signed manifest governs
//! it (`bundle_source`) and where it goes (`destination`), the plan, the signed bundle manifest,
//! the inventory, the send ledger, signing, compression (`codec`), atomic and split output.
//!
//! The crates it builds on are re-exported under the module names the workspace uses:
//! `partial-core` (digests, references, exit codes, help tables, size caps, safe text, streams,
//! progress), `partial-daemon` (the Engine API), `partial-registry` (the registry client) and
//! `partial-delta` (the layer delta format and decoder).

pub mod archive;
pub mod bundle_source;
pub mod bundle_writer;
pub mod destination;
pub mod diff_check;
pub mod engine;
pub mod platform_view;
pub mod source;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

// The crates along the seams, under the names the rest of the workspace has always used.
pub use partial_bundle::{inventory, ledger, manifest, output, schema, sign, source_index};
pub use partial_core::{
    channel_reader, digest, exit, help, limits, pipe, progress, reference, text, Digest,
};
pub use partial_daemon as daemon;
pub use partial_delta as delta;
pub use partial_model::{codec, have, image, plan};
pub use partial_registry as registry;
