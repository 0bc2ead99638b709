//! Checks a file the tools wrote against its JSON Schema in `docs/schema/` (used by the
//! end-to-end modules `approval` and `ledger`).

use serde_json::Value;
use std::path::{Path, PathBuf};

/// Fails naming every violation of `doc` against `docs/schema/<name>.schema.json`.
pub fn assert_valid(name: &str, what: &str, doc: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/schema")
        .join(format!("{name}.schema.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match {name}.schema.json:\n{}\n{doc:#}",
        errors.join("\n")
    );
}

/// The JSON file at `file`, checked against schema `name`.
#[allow(dead_code)] // not every test that includes this file reads files
pub fn assert_file_valid(name: &str, file: &Path) {
    let doc: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_valid(name, &file.display().to_string(), &doc);
}
