//! Image configs as a reviewer reads them: what runs (entrypoint, cmd, user, working folder), its
//! environment, exposed ports, volumes and labels, and which of these an update changes against
//! the base image's config.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The fields of an image config that matter for review.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub platform: Option<String>,
    /// Field name → value, for single-valued fields (`entrypoint`, `cmd`, `user`, `working_dir`).
    pub single: BTreeMap<&'static str, String>,
    /// Field name → key → value, for keyed fields (`env`, `exposed_ports`, `volumes`, `labels`).
    pub keyed: BTreeMap<&'static str, BTreeMap<String, String>>,
}

/// One change: a field (and key, for keyed fields) with its value in the base and in the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    pub field: String,
    pub key: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Deserialize, Default)]
struct Raw {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    config: Option<RawConfig>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    user: Option<String>,
    working_dir: Option<String>,
    env: Option<Vec<String>>,
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    volumes: Option<BTreeMap<String, serde_json::Value>>,
    labels: Option<BTreeMap<String, String>>,
}

impl ImageConfig {
    /// Parses an image config's JSON; `None` when it is not one.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let raw: Raw = serde_json::from_slice(bytes).ok()?;
        let platform = match (&raw.os, &raw.architecture) {
            (Some(os), Some(arch)) => Some(match &raw.variant {
                Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
                _ => format!("{os}/{arch}"),
            }),
            _ => None,
        };
        let c = raw.config.unwrap_or_default();
        let mut single = BTreeMap::new();
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
        let mut put = |k, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                single.insert(k, v);
            }
        };
        put("entrypoint", c.entrypoint.as_ref().map(json));
        put("cmd", c.cmd.as_ref().map(json));
        put("user", c.user);
        put("working_dir", c.working_dir);
        let mut keyed = BTreeMap::new();
        let env = c
            .env
            .unwrap_or_default()
            .into_iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e, String::new()),
            });
        keyed.insert("env", env.collect());
        let keys = |m: Option<BTreeMap<String, serde_json::Value>>| {
            m.unwrap_or_default()
                .into_keys()
                .map(|k| (k, "yes".to_string()))
                .collect()
        };
        keyed.insert("exposed_ports", keys(c.exposed_ports));
        keyed.insert("volumes", keys(c.volumes));
        keyed.insert("labels", c.labels.unwrap_or_default());
        Some(ImageConfig {
            platform,
            single,
            keyed,
        })
    }
}

/// What differs from `base` in `new`; without a base, every value `new` sets.
pub fn diff(base: Option<&ImageConfig>, new: &ImageConfig) -> Vec<ConfigChange> {
    let empty = ImageConfig::default();
    let base = base.unwrap_or(&empty);
    let mut out = Vec::new();
    for field in ["entrypoint", "cmd", "user", "working_dir"] {
        let (o, n) = (base.single.get(field), new.single.get(field));
        if o != n {
            out.push(ConfigChange {
                field: field.to_string(),
                key: None,
                old: o.cloned(),
                new: n.cloned(),
            });
        }
    }
    let none = BTreeMap::new();
    for field in ["env", "exposed_ports", "volumes", "labels"] {
        let (o, n) = (
            base.keyed.get(field).unwrap_or(&none),
            new.keyed.get(field).unwrap_or(&none),
        );
        let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let (ov, nv) = (o.get(k), n.get(k));
            if ov != nv {
                out.push(ConfigChange {
                    field: field.to_string(),
                    key: Some(k.clone()),
                    old: ov.cloned(),
                    new: nv.cloned(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> ImageConfig {
        ImageConfig::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn changes_name_field_key_and_both_values() {
        let base = cfg(
            r#"{"os":"linux","architecture":"amd64","config":{"Cmd":["sh"],
               "Env":["PATH=/bin","A=1"],"Labels":{"keep":"x","drop":"y"}}}"#,
        );
        let new = cfg(
            r#"{"os":"linux","architecture":"arm64","variant":"v8","config":{"Cmd":["app"],
               "User":"1000","Env":["PATH=/bin","A=2"],"ExposedPorts":{"8080/tcp":{}},
               "Labels":{"keep":"x","new":"<script>"}}}"#,
        );
        assert_eq!(new.platform.as_deref(), Some("linux/arm64/v8"));
        let d = diff(Some(&base), &new);
        let find = |f: &str, k: Option<&str>| {
            d.iter()
                .find(|c| c.field == f && c.key.as_deref() == k)
                .cloned()
        };
        assert_eq!(
            find("cmd", None).unwrap().new.as_deref(),
            Some(r#"["app"]"#)
        );
        assert_eq!(find("user", None).unwrap().old, None);
        let a = find("env", Some("A")).unwrap();
        assert_eq!((a.old.as_deref(), a.new.as_deref()), (Some("1"), Some("2")));
        assert!(find("env", Some("PATH")).is_none());
        assert!(find("exposed_ports", Some("8080/tcp")).is_some());
        assert_eq!(find("labels", Some("drop")).unwrap().new, None);
        assert!(find("labels", Some("keep")).is_none());
        assert_eq!(d.len(), 6, "{d:?}");
        // Without a base: every value set.
        assert_eq!(diff(None, &base).len(), 5);
        assert!(ImageConfig::parse(b"[1]").is_none());
    }
}
