//! Shared library of `partial-save` and `partial-load`: digests and chain IDs, the image model
//! (`image`) and its sources (`source`: daemon, archive files of every writer, OCI layouts), what
//! a destination holds, reading archives (`archive`), the engine that streams a source into a
//! bundle (`engine`, `bundle_writer`), where a checked bundle goes (`destination`: the checked
//! archive, a registry), the plan, the signed bundle manifest, the inventory, the
//! send ledger, the images of Helm charts (`chart`), the exit codes and the tables behind `--help`
//! and the man pages (`exit`, `help`), signing, compression, atomic and split
//! output, daemon access, the registry client (`registry`), layer deltas (`delta`), the size
//! caps of small input files (`limits`) and untrusted text made safe to print (`text`).

pub mod archive;
pub mod bundle_source;
pub mod bundle_writer;
pub mod codec;
pub mod daemon;
pub mod delta;
pub mod destination;
pub mod digest;
pub mod engine;
pub mod exit;
pub mod have;
pub mod help;
pub mod image;
pub mod inventory;
pub mod ledger;
pub mod limits;
pub mod manifest;
pub mod output;
pub mod plan;
pub mod platform_view;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod schema;
#[cfg(test)]
mod schema_files;
pub mod sign;
pub mod source;
pub mod source_index;
pub mod stream;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod text;

pub use digest::Digest;
