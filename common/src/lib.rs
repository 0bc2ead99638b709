//! Shared library of `partial-save` and `partial-load`: digests and chain IDs, what a destination
//! holds, the archive engine (layouts, scanning, filtering), the plan, the signed bundle manifest,
//! the inventory, signing, compression, atomic and split output, and daemon access.

pub mod archive;
pub mod codec;
pub mod daemon;
pub mod digest;
pub mod exit;
pub mod have;
pub mod inventory;
pub mod manifest;
pub mod output;
pub mod plan;
pub mod progress;
pub mod schema;
pub mod sign;
pub mod stream;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

pub use digest::Digest;
