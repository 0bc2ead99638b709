//! The transfer report: what a reviewer needs to sign off a bundle, built on either side of the
//! gap (`partial-save --report` where the bundle is made, `partial-load report` where it
//! arrives), so both sides show the same page for the same bundle. It is its own crate because
//! both binaries use it and neither may depend on the other.
//!
//! Layout: `model` (the data, also the JSON), `scan` (streaming a bundle's tar and a base's
//! export), `layers` (one layer's files), `packages` (dpkg/apk databases), `config_diff`,
//! `bases` (finding each image's base on a daemon), `build` (assembly), `html` (rendering).
//! The caller opens the bundle (checked as it sees fit) and says who signed and approved it.

pub mod bases;
pub mod build;
pub mod config_diff;
mod error;
pub mod html;
pub mod layers;
pub mod model;
pub mod packages;
pub mod scan;

pub use error::ReportError;

#[cfg(test)]
mod tests;
