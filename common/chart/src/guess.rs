//! The last resort, without helm and without declarations: images guessed from the values.yaml
//! conventions. Any mapping named `image` (or `…Image`) with a `repository` gives
//! `[registry/]repository:tag[@digest]`, the tag defaulting to the chart's appVersion and the
//! registry to `global.imageRegistry` when that is set (as Bitnami's and prometheus-community's
//! helpers do). A mapping whose parent says `enabled: false` is skipped. Guesses can be wrong (a template may add a
//! `v` to the tag, or pick another image entirely), which is why they are marked and warned about.

use super::load::Chart;
use serde_yaml_ng::Value;

/// A guessed reference and the values path it came from (`image`, `metrics.image`).
pub struct Guess {
    pub image: String,
    pub path: String,
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Guesses from `values` (the chart's values, with the user's merged in).
pub fn guesses(chart: &Chart, values: &Value) -> Vec<Guess> {
    let global = scalar(values.get("global").and_then(|g| g.get("imageRegistry")));
    let mut out = Vec::new();
    walk(chart, global.as_deref(), values, "", &mut out);
    out
}

fn walk(chart: &Chart, global: Option<&str>, v: &Value, path: &str, out: &mut Vec<Guess>) {
    let Value::Mapping(m) = v else { return };
    if matches!(m.get("enabled"), Some(Value::Bool(false))) {
        return;
    }
    for (k, val) in m {
        let Some(key) = k.as_str() else { continue };
        let here = if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        };
        let named_image = key == "image" || key.ends_with("Image");
        match scalar(val.get("repository")) {
            Some(repo) if named_image => {
                let registry = global
                    .map(str::to_string)
                    .or_else(|| scalar(val.get("registry")));
                let mut r = match registry {
                    Some(reg) => format!("{reg}/{repo}"),
                    None => repo,
                };
                if let Some(tag) = scalar(val.get("tag")).or_else(|| chart.app_version.clone()) {
                    r = format!("{r}:{tag}");
                }
                if let Some(d) = scalar(val.get("digest")) {
                    r = format!("{r}@{d}");
                }
                out.push(Guess {
                    image: r,
                    path: here,
                });
            }
            _ => walk(chart, global, val, &here, out),
        }
    }
}
