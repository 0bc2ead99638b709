//! The files of a bundle besides its archive, and of the pair's records: the signed bundle
//! manifest (`manifest`, with its `schema` versions), minisign keys and signatures (`sign`),
//! atomic, split and hashed output files with their Ctrl-C cleanup (`output`), the destination's
//! inventory (`inventory`), the send ledger (`ledger`) and the multi-platform indexes a manifest
//! carries (`source_index`). Its own crate: these are the
//! interface between the two sides of the gap, and they know the image model but nothing of how
//! archives are read or copied.

pub mod inventory;
pub mod ledger;
pub mod manifest;
pub mod output;
pub mod schema;
#[cfg(test)]
mod schema_files;
pub mod sign;
pub mod source_index;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
