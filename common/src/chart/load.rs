//! Reading a chart (a directory or a `.tgz`) into memory: its `Chart.yaml`, `values.yaml`, image
//! lock files and its subcharts in `charts/` (directories and `.tgz`, recursively), plus the
//! sha256 the bundle manifest records for it. Charts are small text files; the total read is
//! capped so that a wrong path (a disk image named `.tgz`) fails instead of filling memory.

use super::ChartError;
use crate::digest::Digest;
use serde_yaml_ng::Value;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Most bytes one chart may hold, subcharts included (the largest public charts are a few MiB).
pub const MAX_CHART_BYTES: u64 = 64 << 20;

/// The image lock file names a chart may ship.
pub const LOCK_FILES: [&str; 4] = [
    "images.lock",
    "images-lock.yaml",
    "images.lock.yaml",
    ".images.lock.yaml",
];

/// A chart's files by path relative to its root (`/`-separated).
pub type Files = BTreeMap<String, Vec<u8>>;

/// A dependency listed in `Chart.yaml`.
#[derive(Debug, Clone, Default)]
pub struct Dependency {
    pub name: String,
    pub alias: Option<String>,
    pub condition: Option<String>,
    pub tags: Vec<String>,
}

/// A chart as discovery needs it.
#[derive(Debug, Clone)]
pub struct Chart {
    pub name: String,
    pub version: String,
    pub app_version: Option<String>,
    /// `type: library` (templates only, never images).
    pub library: bool,
    pub annotations: BTreeMap<String, String>,
    pub dependencies: Vec<Dependency>,
    /// `values.yaml` (an empty mapping when absent).
    pub values: Value,
    /// Lock files present: (file name, text).
    pub lock_files: Vec<(String, String)>,
    /// Subcharts found in `charts/`, keyed by their folder or file name there.
    pub subcharts: Vec<Chart>,
}

/// Reads a chart directory or `.tgz`; returns the chart and its sha256 (of the `.tgz` file, or of
/// the directory listing: see [`dir_digest`]).
pub fn load(path: &Path) -> Result<(Chart, Digest), ChartError> {
    let io = |source| ChartError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let label = path.display().to_string();
    if meta.is_dir() {
        let mut files = Files::new();
        let mut total = 0u64;
        read_dir(path, "", &mut files, &mut total, &label)?;
        let digest = dir_digest(&files);
        Ok((parse(&files, &label)?, digest))
    } else {
        if meta.len() > MAX_CHART_BYTES {
            return Err(ChartError::TooLarge { path: label });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let digest = Digest::of_bytes(&bytes);
        Ok((parse_archive(&bytes, &label)?, digest))
    }
}

/// Parses a chart `.tgz` held in memory; `label` names it in errors.
pub fn parse_archive(gz: &[u8], label: &str) -> Result<Chart, ChartError> {
    parse(&untar(gz, label)?, label)
}

/// sha256 of a chart directory: over its files in path order, each as the path, a NUL, the
/// length in decimal, a NUL, then the contents. Stable across machines (no times, owners or
/// modes) and changed by any renamed, added, removed or edited file.
pub fn dir_digest(files: &Files) -> Digest {
    let mut h = Sha256::new();
    for (path, data) in files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(data.len().to_string().as_bytes());
        h.update([0]);
        h.update(data);
    }
    Digest::from_sha256(h.finalize().into())
}

fn read_dir(
    dir: &Path,
    prefix: &str,
    files: &mut Files,
    total: &mut u64,
    label: &str,
) -> Result<(), ChartError> {
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| ChartError::Io { path: p, source }
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let p = e.path();
        let rel = format!("{prefix}{name}");
        let meta = std::fs::metadata(&p).map_err(io(&p))?;
        if meta.is_dir() {
            read_dir(&p, &format!("{rel}/"), files, total, label)?;
        } else if meta.is_file() {
            *total += meta.len();
            if *total > MAX_CHART_BYTES {
                return Err(ChartError::TooLarge {
                    path: label.to_string(),
                });
            }
            files.insert(rel, std::fs::read(&p).map_err(io(&p))?);
        }
    }
    Ok(())
}

/// The files of a chart archive, with the archive's top folder (the chart's name) removed.
fn untar(gz: &[u8], label: &str) -> Result<Files, ChartError> {
    let bad = |source| ChartError::Archive {
        path: label.to_string(),
        source,
    };
    let mut files = Files::new();
    let mut total = 0u64;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let Some((_, rel)) = path.trim_start_matches("./").split_once('/') else {
            continue;
        };
        if rel.split('/').any(|c| c == "..") {
            continue;
        }
        total += entry.size();
        if total > MAX_CHART_BYTES {
            return Err(ChartError::TooLarge {
                path: label.to_string(),
            });
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        files.insert(rel.to_string(), data);
    }
    if files.is_empty() {
        return Err(bad(std::io::Error::other("no files in the archive")));
    }
    Ok(files)
}

fn text<'a>(files: &'a Files, name: &str, label: &str) -> Result<Option<&'a str>, ChartError> {
    match files.get(name) {
        None => Ok(None),
        Some(b) => std::str::from_utf8(b)
            .map(Some)
            .map_err(|_| ChartError::Invalid {
                chart: label.to_string(),
                what: format!("{name} is not UTF-8"),
            }),
    }
}

fn yaml(text: &str, file: String) -> Result<Value, ChartError> {
    serde_yaml_ng::from_str::<Value>(text).map_err(|source| ChartError::Yaml { file, source })
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses the chart rooted at `files` (and its subcharts); `label` names it in errors.
pub fn parse(files: &Files, label: &str) -> Result<Chart, ChartError> {
    let invalid = |what: String| ChartError::Invalid {
        chart: label.to_string(),
        what,
    };
    let chart_yaml = text(files, "Chart.yaml", label)?
        .ok_or_else(|| invalid("no Chart.yaml (not a Helm chart)".into()))?;
    let meta = yaml(chart_yaml, format!("{label}/Chart.yaml"))?;
    let field = |k: &str| meta.get(k).and_then(str_of);
    let name = field("name").ok_or_else(|| invalid("Chart.yaml has no name".into()))?;
    let version = field("version").ok_or_else(|| invalid("Chart.yaml has no version".into()))?;
    let annotations = match meta.get("annotations") {
        Some(Value::Mapping(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((str_of(k)?, str_of(v)?)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let dependencies = match meta.get("dependencies") {
        Some(Value::Sequence(deps)) => deps
            .iter()
            .filter_map(|d| {
                Some(Dependency {
                    name: d.get("name").and_then(str_of)?,
                    alias: d.get("alias").and_then(str_of),
                    condition: d.get("condition").and_then(str_of),
                    tags: match d.get("tags") {
                        Some(Value::Sequence(t)) => t.iter().filter_map(str_of).collect(),
                        _ => vec![],
                    },
                })
            })
            .collect(),
        _ => vec![],
    };
    let values = match text(files, "values.yaml", label)? {
        Some(t) => match yaml(t, format!("{label}/values.yaml"))? {
            Value::Null => Value::Mapping(Default::default()),
            v @ Value::Mapping(_) => v,
            _ => return Err(invalid("values.yaml is not a mapping".into())),
        },
        None => Value::Mapping(Default::default()),
    };
    let mut lock_files = Vec::new();
    for f in LOCK_FILES {
        if let Some(t) = text(files, f, label)? {
            lock_files.push((f.to_string(), t.to_string()));
        }
    }
    Ok(Chart {
        name,
        version,
        app_version: field("appVersion"),
        library: field("type").as_deref() == Some("library"),
        annotations,
        dependencies,
        values,
        lock_files,
        subcharts: subcharts(files, label)?,
    })
}

/// The charts in `charts/`: folders holding a `Chart.yaml`, and `.tgz` files.
fn subcharts(files: &Files, label: &str) -> Result<Vec<Chart>, ChartError> {
    let mut dirs: BTreeMap<&str, Files> = BTreeMap::new();
    let mut out = Vec::new();
    for (path, data) in files.range("charts/".to_string()..) {
        let Some(rest) = path.strip_prefix("charts/") else {
            break;
        };
        match rest.split_once('/') {
            Some((dir, inner)) => {
                dirs.entry(dir)
                    .or_default()
                    .insert(inner.to_string(), data.clone());
            }
            None if rest.ends_with(".tgz") => {
                let sub_label = format!("{label}/charts/{rest}");
                out.push(parse(&untar(data, &sub_label)?, &sub_label)?);
            }
            None => {}
        }
    }
    for (dir, sub) in dirs {
        if sub.contains_key("Chart.yaml") {
            out.push(parse(&sub, &format!("{label}/charts/{dir}"))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> Files {
        entries
            .iter()
            .map(|(p, d)| (p.to_string(), d.as_bytes().to_vec()))
            .collect()
    }

    fn tgz(top: &str, entries: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (p, d) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, format!("{top}/{p}"), d.as_bytes())
                .unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn reads_metadata_values_locks_and_nested_subcharts() {
        let inner = tgz(
            "db",
            &[
                ("Chart.yaml", "name: db\nversion: 1.0.0\n"),
                ("images.lock", "x"),
            ],
        );
        let mut f = files(&[
            (
                "Chart.yaml",
                "name: app\nversion: 2.0.0\nappVersion: 1.5\nannotations:\n  images: |\n    - image: a\ndependencies:\n  - name: db\n    condition: db.enabled\n    tags: [data]\n",
            ),
            ("values.yaml", "image:\n  repository: app\n"),
            ("images-lock.yaml", "images: []"),
            ("charts/lib/Chart.yaml", "name: lib\nversion: 0.1.0\ntype: library\n"),
            ("charts/notachart/README", "x"),
        ]);
        f.insert("charts/db-1.0.0.tgz".into(), inner);
        let c = parse(&f, "app").unwrap();
        assert_eq!((c.name.as_str(), c.version.as_str()), ("app", "2.0.0"));
        assert_eq!(c.app_version.as_deref(), Some("1.5"));
        assert!(c.annotations["images"].contains("image: a"));
        assert_eq!(c.dependencies[0].condition.as_deref(), Some("db.enabled"));
        assert_eq!(c.dependencies[0].tags, vec!["data".to_string()]);
        assert_eq!(c.lock_files[0].0, "images-lock.yaml");
        let names: Vec<_> = c.subcharts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "lib"]);
        assert!(c.subcharts[1].library);
        assert_eq!(c.subcharts[0].lock_files[0].0, "images.lock");
    }

    #[test]
    fn a_folder_without_chart_yaml_is_refused_by_name() {
        let e = parse(&files(&[("values.yaml", "{}")]), "/x/y").unwrap_err();
        assert!(
            e.to_string().contains("/x/y") && e.to_string().contains("Chart.yaml"),
            "{e}"
        );
    }

    #[test]
    fn tgz_and_directory_load_alike_and_digests_differ_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let entries = [
            ("Chart.yaml", "name: a\nversion: 1.0.0\n"),
            ("values.yaml", "x: 1\n"),
        ];
        let gz = tgz("a", &entries);
        let p = dir.path().join("a-1.0.0.tgz");
        std::fs::write(&p, &gz).unwrap();
        let (c, d) = load(&p).unwrap();
        assert_eq!(c.name, "a");
        assert_eq!(d, Digest::of_bytes(&gz));
        let cd = dir.path().join("a");
        std::fs::create_dir(&cd).unwrap();
        for (n, t) in entries {
            std::fs::write(cd.join(n), t).unwrap();
        }
        let (c2, d1) = load(&cd).unwrap();
        assert_eq!(c2.version, "1.0.0");
        assert_eq!(d1, load(&cd).unwrap().1);
        std::fs::write(cd.join("values.yaml"), "x: 2\n").unwrap();
        assert_ne!(d1, load(&cd).unwrap().1);
    }
}
