//! The head every versioned JSON document of the project starts with (`schema`, `version`):
//! checked before the rest is read, so that another kind of file, or a newer version than this
//! tool knows, is refused by name instead of half-understood.

use serde::Deserialize;

/// A document that is not the expected schema, or is too new. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{file}: not a {expected} file: {source}")]
    Parse {
        file: String,
        expected: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{file}: schema {found:?} is not {expected:?}")]
    Schema {
        file: String,
        expected: &'static str,
        found: String,
    },
    #[error("{file}: version {found} is newer than this tool understands ({max})")]
    Version { file: String, found: u32, max: u32 },
}

/// Parses `bytes` as a `T` after checking its `schema` and `version` fields.
pub fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    file: &str,
    schema: &'static str,
    max_version: u32,
) -> Result<T, SchemaError> {
    #[derive(Deserialize)]
    struct Head {
        schema: String,
        version: u32,
    }
    let parse_err = |source| SchemaError::Parse {
        file: file.to_string(),
        expected: schema,
        source,
    };
    let head: Head = serde_json::from_slice(bytes).map_err(parse_err)?;
    if head.schema != schema {
        return Err(SchemaError::Schema {
            file: file.to_string(),
            expected: schema,
            found: head.schema,
        });
    }
    if head.version > max_version {
        return Err(SchemaError::Version {
            file: file.to_string(),
            found: head.version,
            max: max_version,
        });
    }
    serde_json::from_slice(bytes).map_err(parse_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    struct Doc {
        #[allow(dead_code)]
        schema: String,
        n: u32,
    }

    #[test]
    fn checks_schema_then_version_then_body() {
        let ok: Doc = parse(br#"{"schema":"x","version":1,"n":7}"#, "f.json", "x", 1).unwrap();
        assert_eq!(ok.n, 7);
        let e = parse::<Doc>(br#"{"schema":"y","version":1,"n":7}"#, "f.json", "x", 1).unwrap_err();
        assert!(matches!(e, SchemaError::Schema { .. }), "{e}");
        let e = parse::<Doc>(br#"{"schema":"x","version":2,"n":7}"#, "f.json", "x", 1).unwrap_err();
        assert!(
            matches!(
                e,
                SchemaError::Version {
                    found: 2,
                    max: 1,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse::<Doc>(br#"{"schema":"x","version":1}"#, "f.json", "x", 1).unwrap_err();
        assert!(e.to_string().starts_with("f.json: not a x file"), "{e}");
        assert!(parse::<Doc>(b"[1,2]", "f.json", "x", 1).is_err());
    }
}
