//! Checks a file the tools write against its JSON Schema in `docs/schema/`. The two sides of an
//! air gap may run different versions of the tools: these files are their interface, so a change
//! to one of the serialized types must come with its schema. Every crate's tests check through
//! here.

use serde_json::Value;
use std::path::PathBuf;

/// The schema `docs/schema/<name>.schema.json`, itself checked against its meta-schema.
pub fn validator(name: &str) -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schema")
        .join(format!("{name}.schema.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("{} is not a valid JSON Schema: {e}", path.display());
    }
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
}

/// Fails naming every violation of `doc` (`what`, for the message) against schema `name`.
pub fn assert_valid(name: &str, what: &str, doc: &Value) {
    let errors: Vec<String> = validator(name)
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match {name}.schema.json:\n{}\n{doc:#}",
        errors.join("\n")
    );
}
