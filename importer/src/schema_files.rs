//! Test helper: checks a file `partial-load` writes against its JSON Schema in `docs/schema/`
//! (the load state in `state.rs`'s tests, the audit log in `audit.rs`'s). The files two
//! versions of the tools exchange are described there; a change to one of the serialized types
//! must come with its schema.

use serde_json::Value;
use std::path::PathBuf;

/// Fails naming every violation of `doc` against `docs/schema/<name>.schema.json` (itself
/// checked against its meta-schema).
pub fn assert_valid(name: &str, what: &str, doc: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/schema")
        .join(format!("{name}.schema.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("{} is not a valid JSON Schema: {e}", path.display());
    }
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
