//! Test helpers of the workspace, compiled only for the crate's own unit tests and with the
//! `testutil` feature (which the end-to-end tests in `tests/` enable), so that no test code ships
//! in the library and `tests/` does not keep near-copies of it.
//!
//! - [`archive`]: builders of `docker save` archives in all three layouts (legacy folders named by
//!   the real v1id recipe, Docker ≥ 25 OCI layouts, containerd layouts with gzip blobs), a tar
//!   writer that can also write broken archives, and a tar reader for checking outputs.
//! - [`schema`]: a written file checked against its JSON Schema in `docs/schema/`.
//! - [`gate`]: the one skip gate (loud skip, or a failure under `PARTIAL_REQUIRE_*=1`).
//! - [`sample_manifest`]: a bundle manifest of one image, two of its layers at the destination;
//!   [`empty_manifest`]: one of no image, for tests that add their own.
//! - `fuzz_seeds` (unit tests only): writes the cargo-fuzz targets' seed inputs.

pub mod archive;
#[cfg(test)]
mod fuzz_seeds;
pub use partial_bundle::testutil::{empty_manifest, sample_manifest};
pub use partial_core::testutil::{gate, schema};
