//! Checks a file the tools wrote against its JSON Schema in `docs/schema/` (used by the
//! end-to-end modules `approval` and `ledger`).

pub use partial_common::testutil::schema::assert_valid;
use serde_json::Value;
use std::path::Path;

/// The JSON file at `file`, checked against schema `name`.
#[allow(dead_code)] // not every test that includes this file reads files
pub fn assert_file_valid(name: &str, file: &Path) {
    let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_valid(name, &file.display().to_string(), &doc);
}
