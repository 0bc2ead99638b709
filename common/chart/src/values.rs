//! Chart values without helm: `values.yaml` deep-merged with `--values` files and `--set`
//! expressions (Helm's precedence: later wins), a subchart's share of its parent's values, and
//! the `condition`/`tags` that switch subcharts off when they are plain values. Only what
//! discovery needs: `--set` takes `a.b.c=value` pairs (comma-separated, `\,` and `\.` escaped);
//! list indices (`a[0]=x`) are left to helm and refused here.

use super::load::{Chart, Dependency};
use super::{parse_yaml, ChartError, MAX_YAML_BYTES, MAX_YAML_DEPTH};
use serde_yaml_ng::{Mapping, Value};

/// Merges `over` into `base`: mappings key by key, anything else replaced.
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Reads a `--values` file (at most [`MAX_YAML_BYTES`], see [`parse_yaml`]).
pub fn read_values_file(path: &std::path::Path) -> Result<Value, ChartError> {
    use std::io::Read;
    let label = path.display().to_string();
    let io = |source| ChartError::Io {
        path: label.clone(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_YAML_BYTES as u64 + 1).read_to_string(&mut text))
        .map_err(io)?;
    match parse_yaml(&text, &label)? {
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        v @ Value::Mapping(_) => Ok(v),
        _ => Err(ChartError::Usage(format!(
            "--values {label}: not a mapping"
        ))),
    }
}

/// Splits on `sep` outside a backslash escape, unescaping `\sep`.
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| *n == sep) {
            parts.last_mut().expect("never empty").push(sep);
            chars.next();
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

/// Typed like `helm --set`: true/false, null, integers; everything else a string.
fn scalar(s: &str) -> Value {
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match s.parse::<i64>() {
            Ok(n) if !s.starts_with('0') || s == "0" => Value::Number(n.into()),
            _ => Value::String(s.to_string()),
        },
    }
}

/// Applies one `--set` expression to `values`.
pub fn apply_set(values: &mut Value, expr: &str) -> Result<(), ChartError> {
    for pair in split_escaped(expr, ',') {
        let (key, val) = pair
            .split_once('=')
            .ok_or_else(|| ChartError::Usage(format!("--set {expr:?}: expected KEY=VALUE")))?;
        if key.is_empty() || key.contains('[') {
            return Err(ChartError::Usage(format!(
                "--set {expr:?}: only KEY.PATH=VALUE is understood without helm (no list indices)"
            )));
        }
        let parts = split_escaped(key, '.');
        if parts.len() > MAX_YAML_DEPTH {
            let shown: String = key.chars().take(60).collect();
            return Err(ChartError::Usage(format!(
                "--set {shown}…: the key is {} levels deep, more than {MAX_YAML_DEPTH} (the limit)",
                parts.len()
            )));
        }
        let mut over = scalar(val);
        for part in parts.into_iter().rev() {
            let mut m = Mapping::new();
            m.insert(Value::String(part), over);
            over = Value::Mapping(m);
        }
        merge(values, &over);
    }
    Ok(())
}

/// The values of `dep` (a subchart `sub` of a chart whose values are `parent`): its own
/// `values.yaml`, overridden by the parent's section under its name (or alias), with the
/// parent's `global`.
pub fn subchart_values(sub: &Chart, dep: Option<&Dependency>, parent: &Value) -> Value {
    let key = dep
        .and_then(|d| d.alias.clone())
        .unwrap_or_else(|| sub.name.clone());
    let mut v = sub.values.clone();
    if let Some(section) = parent.get(key.as_str()) {
        merge(&mut v, section);
    }
    if let Some(global) = parent.get("global") {
        let mut g = Mapping::new();
        g.insert(Value::String("global".into()), global.clone());
        merge(&mut v, &Value::Mapping(g));
    }
    v
}

fn lookup<'a>(values: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(values, |v, k| v.get(k))
}

/// Whether a subchart is on: its first `condition` path that holds a boolean decides; else its
/// `tags` (on when any listed tag is true under `tags:`, off when all that are set are false);
/// else on. `top` holds the top chart's values (where `tags:` lives).
pub fn enabled(dep: Option<&Dependency>, parent: &Value, top: &Value) -> bool {
    let Some(dep) = dep else { return true };
    if let Some(cond) = &dep.condition {
        for path in cond.split(',').map(str::trim) {
            if let Some(Value::Bool(b)) = lookup(parent, path) {
                return *b;
            }
        }
    }
    let set: Vec<bool> = dep
        .tags
        .iter()
        .filter_map(|t| match top.get("tags").and_then(|m| m.get(t.as_str())) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        })
        .collect();
    set.is_empty() || set.contains(&true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn set_merges_typed_paths_and_escapes() {
        let mut v = y("image: {repository: app, tag: '1'}\nkeep: 1\n");
        apply_set(&mut v, "image.tag=2,db.enabled=false,port=8080,name=a\\,b").unwrap();
        apply_set(&mut v, "dotted\\.key=x").unwrap();
        assert_eq!(
            v,
            y("image: {repository: app, tag: 2}\nkeep: 1\ndb: {enabled: false}\nport: 8080\nname: 'a,b'\ndotted.key: x\n")
        );
        assert!(apply_set(&mut v, "novalue").is_err());
        assert!(apply_set(&mut v, "a[0]=x").is_err());
    }

    #[test]
    fn set_keys_nested_beyond_the_limit_are_refused() {
        let mut v = y("{}");
        apply_set(&mut v, &format!("{}b=1", "a.".repeat(99))).unwrap();
        // 20,000 levels once overflowed the stack; 1,000 stay safe to try on the old code.
        let e = apply_set(&mut v, &format!("{}b=1", "a.".repeat(1000))).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("--set") && msg.contains("more than 100"),
            "{msg}"
        );
        assert!(msg.len() < 400, "the key is not repeated whole: {msg}");
    }

    #[test]
    fn values_files_over_the_limits_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("deep.yaml");
        std::fs::write(
            &deep,
            format!("a: {}{}\n", "{b: ".repeat(5000), "}".repeat(5000)),
        )
        .unwrap();
        let e = read_values_file(&deep).unwrap_err().to_string();
        assert!(
            e.contains("deep.yaml") && e.contains("nested more than 100"),
            "{e}"
        );
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; 5 << 20]).unwrap();
        let e = read_values_file(&big).unwrap_err().to_string();
        assert!(e.contains("big.yaml") && e.contains("4 MiB"), "{e}");
    }

    #[test]
    fn conditions_then_tags_then_on() {
        let dep = |condition: Option<&str>, tags: &[&str]| Dependency {
            name: "db".into(),
            alias: None,
            condition: condition.map(str::to_string),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        let vals =
            y("db: {enabled: false}\nother: {enabled: true}\ntags: {data: false, web: true}\n");
        assert!(!enabled(Some(&dep(Some("db.enabled"), &[])), &vals, &vals));
        assert!(enabled(
            Some(&dep(Some("missing.enabled, other.enabled"), &[])),
            &vals,
            &vals
        ));
        assert!(!enabled(Some(&dep(None, &["data"])), &vals, &vals));
        assert!(enabled(Some(&dep(None, &["data", "web"])), &vals, &vals));
        assert!(enabled(
            Some(&dep(Some("nowhere"), &["unset"])),
            &vals,
            &vals
        ));
        assert!(enabled(None, &vals, &vals));
    }
}
