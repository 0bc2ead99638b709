//! Reading a chart (a directory or a `.tgz`) into memory: its `Chart.yaml`, `values.yaml`, image
//! lock files and its subcharts in `charts/` (directories and `.tgz`, recursively), plus the
//! sha256 the bundle manifest records for it.
//!
//! A chart archive is hostile input (a 173 KB `.tgz` once took 24 GB), so every read is bounded
//! for the chart as a whole: one byte budget ([`MAX_CHART_BYTES`]) for everything decompressed
//! (the chart's files, every nested archive's stream, tar headers and long names included), a
//! nesting limit for subcharts ([`MAX_SUBCHART_DEPTH`], folders and `.tgz` alike, checked on each
//! entry's path before anything is built) and for folders ([`MAX_PATH_DEPTH`]), and the YAML
//! limits of [`super::parse_yaml`], with [`MAX_VALUES_BYTES`] for all the values kept. Of an archive only the files discovery reads are kept; the
//! files of a subchart are moved, never copied, into it.

use super::{parse_yaml, ChartError, MAX_YAML_BYTES};
use partial_common::digest::Digest;
use serde_yaml_ng::Value;
use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Most bytes one chart may hold, decompressed: its files and those of all its subcharts, and
/// every nested archive's stream (the largest public charts are a few MiB).
pub const MAX_CHART_BYTES: u64 = 64 << 20;

/// Deepest nesting of subcharts (`charts/a/charts/b/…`, folders or `.tgz`); umbrella charts
/// rarely go beyond three.
pub const MAX_SUBCHART_DEPTH: usize = 10;

/// Most bytes of `values.yaml` of a chart and all its subcharts together: they are kept parsed,
/// which takes many times their size (the largest public umbrella charts hold well under 1 MiB).
pub const MAX_VALUES_BYTES: u64 = 4 << 20;

/// Deepest folder nesting of a file in a chart.
pub const MAX_PATH_DEPTH: usize = 64;

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
    /// Lock files present: (file name, text), each at most [`MAX_YAML_BYTES`].
    pub lock_files: Vec<(String, String)>,
    /// Subcharts found in `charts/`, keyed by their folder or file name there.
    pub subcharts: Vec<Chart>,
}

/// What is left of one chart's byte budget; shared by the chart and all its nested archives.
struct Budget {
    left: Cell<u64>,
    /// Of [`MAX_VALUES_BYTES`].
    values_left: Cell<u64>,
    /// A read was cut short by the budget (the tar reader's error then says something else).
    exceeded: Cell<bool>,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            left: Cell::new(MAX_CHART_BYTES),
            values_left: Cell::new(MAX_VALUES_BYTES),
            exceeded: Cell::new(false),
        }
    }

    /// Takes `n` bytes; false (and marked exceeded) when fewer are left.
    fn take(&self, n: u64) -> bool {
        match self.left.get().checked_sub(n) {
            Some(rest) => {
                self.left.set(rest);
                true
            }
            None => {
                self.exceeded.set(true);
                false
            }
        }
    }

    fn too_large(label: &str) -> ChartError {
        ChartError::TooLarge {
            path: label.to_string(),
        }
    }
}

/// A reader that charges every byte to the budget and fails once it is spent.
struct Metered<'a, R> {
    inner: R,
    budget: &'a Budget,
}

impl<R: Read> Read for Metered<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte more than is left, so that going over is seen without reading far beyond.
        let room = usize::try_from(self.budget.left.get().saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        if !self.budget.take(n as u64) {
            return Err(std::io::Error::other("over the chart's byte budget"));
        }
        Ok(n)
    }
}

/// How deep `rel` (a path in a chart) sits in subchart folders (`charts/X/charts/Y/…`), and
/// whether discovery reads it: `Chart.yaml`, `values.yaml`, lock files, and `.tgz` subcharts.
fn place(rel: &str) -> (usize, bool) {
    let mut depth = 0;
    let mut rest = rel;
    loop {
        match rest.strip_prefix("charts/") {
            Some(r) => match r.split_once('/') {
                Some((_, inner)) => {
                    depth += 1;
                    rest = inner;
                }
                None => return (depth, r.ends_with(".tgz")),
            },
            None => {
                let read =
                    rest == "Chart.yaml" || rest == "values.yaml" || LOCK_FILES.contains(&rest);
                return (depth, read);
            }
        }
    }
}

/// Refuses the file `rel` of a chart at subchart depth `depth` when it nests too deep.
fn check_nesting(rel: &str, depth: usize, label: &str) -> Result<bool, ChartError> {
    if rel.split('/').count() > MAX_PATH_DEPTH {
        return Err(ChartError::TooDeep {
            path: label.to_string(),
            what: "folders".into(),
            limit: MAX_PATH_DEPTH,
        });
    }
    let (sub, read) = place(rel);
    if depth + sub > MAX_SUBCHART_DEPTH {
        return Err(too_deep_subcharts(label));
    }
    Ok(read)
}

fn too_deep_subcharts(label: &str) -> ChartError {
    ChartError::TooDeep {
        path: label.to_string(),
        what: "subcharts".into(),
        limit: MAX_SUBCHART_DEPTH,
    }
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
    let budget = Budget::new();
    if meta.is_dir() {
        let mut files = Files::new();
        read_dir(path, "", &mut files, &budget, &label)?;
        let digest = dir_digest(&files);
        Ok((parse_in(files, &label, &budget, 0)?, digest))
    } else {
        if meta.len() > MAX_CHART_BYTES {
            return Err(Budget::too_large(&label));
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CHART_BYTES + 1).read_to_end(&mut bytes))
            .map_err(io)?;
        if bytes.len() as u64 > MAX_CHART_BYTES {
            return Err(Budget::too_large(&label));
        }
        let digest = Digest::of_bytes(&bytes);
        let files = untar(&bytes, &label, &budget, 0)?;
        drop(bytes);
        Ok((parse_in(files, &label, &budget, 0)?, digest))
    }
}

/// Parses a chart `.tgz` held in memory; `label` names it in errors.
pub fn parse_archive(gz: &[u8], label: &str) -> Result<Chart, ChartError> {
    let budget = Budget::new();
    let files = untar(gz, label, &budget, 0)?;
    parse_in(files, label, &budget, 0)
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

/// Reads every file under `dir` (all of them: the digest covers them), charged to `budget`.
fn read_dir(
    dir: &Path,
    prefix: &str,
    files: &mut Files,
    budget: &Budget,
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
        check_nesting(&rel, 0, label)?;
        let meta = std::fs::metadata(&p).map_err(io(&p))?;
        if meta.is_dir() {
            read_dir(&p, &format!("{rel}/"), files, budget, label)?;
        } else if meta.is_file() {
            if meta.len() > budget.left.get() {
                return Err(Budget::too_large(label));
            }
            let mut data = Vec::new();
            let file = std::fs::File::open(&p).map_err(io(&p))?;
            Metered {
                inner: file,
                budget,
            }
            .read_to_end(&mut data)
            .map_err(|e| {
                if budget.exceeded.get() {
                    Budget::too_large(label)
                } else {
                    io(&p)(e)
                }
            })?;
            files.insert(rel, data);
        }
    }
    Ok(())
}

/// The files discovery reads of a chart archive (see [`place`]), with the archive's top folder
/// (the chart's name) removed. Every byte of the decompressed stream is charged to `budget`;
/// `depth` is the archive's own subchart depth.
fn untar(gz: &[u8], label: &str, budget: &Budget, depth: usize) -> Result<Files, ChartError> {
    let bad = |source| {
        if budget.exceeded.get() {
            Budget::too_large(label)
        } else {
            ChartError::Archive {
                path: label.to_string(),
                source,
            }
        }
    };
    let mut files = Files::new();
    let mut any = false;
    let mut ar = tar::Archive::new(Metered {
        inner: flate2::read::GzDecoder::new(gz),
        budget,
    });
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
        any = true;
        if !check_nesting(rel, depth, label)? {
            continue;
        }
        if entry.size() > budget.left.get() {
            budget.exceeded.set(true);
            return Err(Budget::too_large(label));
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        files.insert(rel.to_string(), data);
    }
    if !any {
        return Err(bad(std::io::Error::other("no files in the archive")));
    }
    Ok(files)
}

fn text(files: &mut Files, name: &str, label: &str) -> Result<Option<String>, ChartError> {
    match files.remove(name) {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| ChartError::Invalid {
                chart: label.to_string(),
                what: format!("{name} is not UTF-8"),
            }),
    }
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses a `values.yaml` (`file`), charged to the chart's values budget.
fn parse_values(text: &str, file: &str, budget: &Budget) -> Result<Value, ChartError> {
    match budget.values_left.get().checked_sub(text.len() as u64) {
        Some(rest) => budget.values_left.set(rest),
        None => {
            return Err(ChartError::ValuesTooLarge {
                file: file.to_string(),
            })
        }
    }
    parse_yaml(text, file)
}

/// Parses the chart rooted at `files` (and its subcharts); `label` names it in errors.
pub fn parse(files: Files, label: &str) -> Result<Chart, ChartError> {
    parse_in(files, label, &Budget::new(), 0)
}

/// [`parse`] of a chart at subchart depth `depth`, its nested archives charged to `budget`.
fn parse_in(
    mut files: Files,
    label: &str,
    budget: &Budget,
    depth: usize,
) -> Result<Chart, ChartError> {
    let invalid = |what: String| ChartError::Invalid {
        chart: label.to_string(),
        what,
    };
    let chart_yaml = text(&mut files, "Chart.yaml", label)?
        .ok_or_else(|| invalid("no Chart.yaml (not a Helm chart)".into()))?;
    let meta = parse_yaml(&chart_yaml, &format!("{label}/Chart.yaml"))?;
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
    let values = match text(&mut files, "values.yaml", label)? {
        Some(t) => match parse_values(&t, &format!("{label}/values.yaml"), budget)? {
            Value::Null => Value::Mapping(Default::default()),
            v @ Value::Mapping(_) => v,
            _ => return Err(invalid("values.yaml is not a mapping".into())),
        },
        None => Value::Mapping(Default::default()),
    };
    let mut lock_files = Vec::new();
    for f in LOCK_FILES {
        if let Some(t) = text(&mut files, f, label)? {
            // Parsed later (`declared`): held to the YAML limit now.
            if t.len() > MAX_YAML_BYTES {
                return Err(ChartError::YamlTooLarge {
                    file: format!("{label}/{f}"),
                });
            }
            lock_files.push((f.to_string(), t));
        }
    }
    let app_version = field("appVersion");
    let library = field("type").as_deref() == Some("library");
    // The parsed Chart.yaml goes before the subcharts are read (it may hold 100,000s of entries).
    drop(meta);
    Ok(Chart {
        name,
        version,
        app_version,
        library,
        annotations,
        dependencies,
        values,
        lock_files,
        subcharts: subcharts(files, label, budget, depth)?,
    })
}

/// The charts in `charts/`: folders holding a `Chart.yaml`, and `.tgz` files. Their files are
/// moved out of `files`.
fn subcharts(
    mut files: Files,
    label: &str,
    budget: &Budget,
    depth: usize,
) -> Result<Vec<Chart>, ChartError> {
    let nested = files.split_off("charts/");
    drop(files);
    let mut dirs: BTreeMap<String, Files> = BTreeMap::new();
    let mut out = Vec::new();
    for (path, data) in nested {
        let Some(rest) = path.strip_prefix("charts/") else {
            break;
        };
        match rest.split_once('/') {
            Some((dir, inner)) => {
                dirs.entry(dir.to_string())
                    .or_default()
                    .insert(inner.to_string(), data);
            }
            None if rest.ends_with(".tgz") => {
                let sub_label = format!("{label}/charts/{rest}");
                if depth + 1 > MAX_SUBCHART_DEPTH {
                    return Err(too_deep_subcharts(&sub_label));
                }
                let sub = untar(&data, &sub_label, budget, depth + 1)?;
                drop(data);
                out.push(parse_in(sub, &sub_label, budget, depth + 1)?);
            }
            None => {}
        }
    }
    for (dir, sub) in dirs {
        if sub.contains_key("Chart.yaml") {
            let sub_label = format!("{label}/charts/{dir}");
            if depth + 1 > MAX_SUBCHART_DEPTH {
                return Err(too_deep_subcharts(&sub_label));
            }
            out.push(parse_in(sub, &sub_label, budget, depth + 1)?);
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

    fn tgz_bytes(top: &str, entries: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (p, d) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            // `append_data` writes a GNU long-name entry for paths over 100 bytes.
            b.append_data(&mut h, format!("{top}/{p}"), d.as_slice())
                .unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    const META: &[u8] = b"name: c\nversion: 1.0.0\n";

    /// A chart whose subchart folders nest `levels` deep: `charts/c/charts/c/…/Chart.yaml`.
    fn nested_folders(levels: usize) -> Vec<u8> {
        let mut entries = vec![("Chart.yaml".to_string(), META.to_vec())];
        let mut prefix = String::new();
        for _ in 0..levels {
            prefix.push_str("charts/c/");
            entries.push((format!("{prefix}Chart.yaml"), META.to_vec()));
        }
        tgz_bytes("c", &entries)
    }

    /// A chart whose subchart archives nest `levels` deep: `charts/c-1.0.0.tgz` in each.
    fn nested_archives(levels: usize) -> Vec<u8> {
        let mut gz = tgz_bytes("c", &[("Chart.yaml".to_string(), META.to_vec())]);
        for _ in 0..levels {
            gz = tgz_bytes(
                "c",
                &[
                    ("Chart.yaml".to_string(), META.to_vec()),
                    ("charts/c-1.0.0.tgz".to_string(), gz),
                ],
            );
        }
        gz
    }

    /// The message of the error `r` must be.
    fn refused(r: Result<Chart, ChartError>) -> String {
        match r {
            Ok(c) => panic!("accepted: chart {} {}", c.name, c.version),
            Err(e) => e.to_string(),
        }
    }

    fn depth_of(c: &Chart) -> usize {
        c.subcharts.first().map_or(0, |s| 1 + depth_of(s))
    }

    #[test]
    fn subchart_folders_nested_beyond_the_limit_are_refused_by_name() {
        let c = parse_archive(&nested_folders(10), "ok.tgz").unwrap();
        assert_eq!(depth_of(&c), 10);
        // 3000 levels once cost minutes and gigabytes (the folders were copied at every level).
        for levels in [11, 3000] {
            let started = std::time::Instant::now();
            let msg = refused(parse_archive(&nested_folders(levels), "/x/deep.tgz"));
            assert!(
                msg.contains("/x/deep.tgz") && msg.contains("subcharts nested more than 10"),
                "{msg}"
            );
            assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
        }
    }

    #[test]
    fn subchart_archives_nested_beyond_the_limit_are_refused_by_name() {
        let c = parse_archive(&nested_archives(10), "ok.tgz").unwrap();
        assert_eq!(depth_of(&c), 10);
        let msg = refused(parse_archive(&nested_archives(40), "/x/deep.tgz"));
        assert!(
            msg.contains("/x/deep.tgz") && msg.contains("subcharts nested more than 10"),
            "{msg}"
        );
    }

    #[test]
    fn the_byte_budget_holds_for_the_whole_chart_not_each_archive() {
        // Three subcharts of 30 MiB each (compressed to a few KiB): each archive is under the
        // limit, the chart is not.
        let big = vec![b'#'; 30 << 20];
        let sub = tgz_bytes(
            "s",
            &[
                ("Chart.yaml".to_string(), META.to_vec()),
                ("templates/x.yaml".to_string(), big),
            ],
        );
        let mut entries = vec![("Chart.yaml".to_string(), META.to_vec())];
        for i in 0..3 {
            entries.push((format!("charts/s{i}-1.0.0.tgz"), sub.clone()));
        }
        let gz = tgz_bytes("c", &entries);
        assert!(gz.len() < 1 << 20);
        let msg = refused(parse_archive(&gz, "/x/wide.tgz"));
        assert!(
            msg.contains("/x/wide.tgz") && msg.contains("64 MiB") && msg.contains("limit"),
            "{msg}"
        );
    }

    #[test]
    fn a_long_name_entry_counts_against_the_budget() {
        // A GNU long-name entry is read whole by the tar reader: 100 MiB of name.
        let mut raw = Vec::new();
        {
            let mut b = tar::Builder::new(&mut raw);
            let mut h = tar::Header::new_gnu();
            h.set_size(META.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, "c/Chart.yaml", META).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::GNULongName);
            h.set_size(100 << 20);
            h.set_cksum();
            b.append(&h, std::io::repeat(b'a').take(100 << 20)).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
            b.finish().unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        drop(raw);
        let msg = refused(parse_archive(&gz, "/x/name.tgz"));
        assert!(
            msg.contains("/x/name.tgz") && msg.contains("64 MiB"),
            "{msg}"
        );
    }

    #[test]
    fn the_values_of_a_chart_and_its_subcharts_are_bounded_together() {
        // Parsed values take many times their size and are kept: 15 subcharts of 4 MiB of
        // values once took 1.7 GB. Here three of 2 MiB: each under the file limit, not together.
        let values = format!("a: 1\n{}", "#".repeat(2 << 20));
        let sub = tgz_bytes(
            "s",
            &[
                ("Chart.yaml".to_string(), META.to_vec()),
                ("values.yaml".to_string(), values.into_bytes()),
            ],
        );
        let mut entries = vec![("Chart.yaml".to_string(), META.to_vec())];
        for i in 0..3 {
            entries.push((format!("charts/s{i}-1.0.0.tgz"), sub.clone()));
        }
        let msg = refused(parse_archive(&tgz_bytes("c", &entries), "/x/vals.tgz"));
        assert!(
            msg.contains("/x/vals.tgz/charts/s")
                && msg.contains("values.yaml")
                && msg.contains("4 MiB"),
            "{msg}"
        );
        entries.truncate(2);
        assert!(parse_archive(&tgz_bytes("c", &entries), "/x/vals.tgz").is_ok());
    }

    #[test]
    fn a_lock_file_over_the_yaml_limit_is_refused_by_name() {
        let mut f = files(&[("Chart.yaml", "name: a\nversion: 1.0.0\n")]);
        f.insert("images.lock".into(), vec![b'#'; 5 << 20]);
        let msg = refused(parse(f, "/x/lock.tgz"));
        assert!(
            msg.contains("/x/lock.tgz/images.lock") && msg.contains("4 MiB"),
            "{msg}"
        );
    }

    #[test]
    fn deep_yaml_is_refused_before_it_is_parsed() {
        for deep in [
            format!("a: {}{}\n", "[".repeat(20_000), "]".repeat(20_000)),
            format!("{}x\n", "- ".repeat(20_000)),
        ] {
            let f = files(&[
                ("Chart.yaml", "name: a\nversion: 1.0.0\n"),
                ("values.yaml", &deep),
            ]);
            let started = std::time::Instant::now();
            let msg = refused(parse(f, "/x/y.tgz"));
            assert!(
                msg.contains("/x/y.tgz/values.yaml") && msg.contains("nested more than 100"),
                "{msg}"
            );
            assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
        }
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
        let c = parse(f, "app").unwrap();
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
        let e = parse(files(&[("values.yaml", "{}")]), "/x/y").unwrap_err();
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
