//! Shared library of `partial-save` and `partial-load`: digests and chain IDs, what a destination
//! holds, the archive engine (layouts, scanning, filtering), the plan, the signed bundle manifest,
//! the inventory, the send ledger, signing, compression, atomic and split output, and daemon access.

pub mod archive;
pub mod chart;
pub mod codec;
pub mod daemon;
pub mod delta;
pub mod digest;
pub mod exit;
pub mod have;
pub mod inventory;
pub mod ledger;
pub mod manifest;
pub mod output;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod schema;
pub mod sign;
pub mod stream;

pub use digest::Digest;
