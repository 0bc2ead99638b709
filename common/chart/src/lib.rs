//! Which images a Helm chart (or a list of references, or rendered Kubernetes YAML) needs, so that
//! `partial-save --chart` can save them, and `--exclude-chart` leave out what an older version
//! of the chart already brought. Discovery, each image recorded with its origin:
//!
//! 1. **Rendering** with `helm template` when helm is there ([`render`], [`extract`]): exact.
//! 2. **Declared lists**: chart annotations and image lock files ([`declared`]), of the chart
//!    and of its subcharts in `charts/` that are switched on (plain `condition`/`tags` values,
//!    [`values`]). They add what the chart can deploy with other values.
//! 3. **Guesses**, only without helm, for a chart that declares nothing: the values.yaml
//!    conventions ([`guess`]), marked as guesses, with a warning.
//!
//! References are normalised to one form ([`reference`]) and deduplicated.
//!
//! Charts, values files and lists are hostile input: reading is bounded ([`load`]: a byte budget
//! and nesting limits per chart), and all YAML goes through [`parse_yaml`], which refuses a file
//! over [`MAX_YAML_BYTES`] or nested deeper than [`MAX_YAML_DEPTH`] before the parser sees it.

pub mod declared;
pub mod extract;
pub mod guess;
pub mod list;
pub mod load;
pub mod reference;
pub mod render;
pub mod values;

use partial_common::manifest::ChartEntry;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Errors of discovery; each names the chart, file or reference concerned.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a readable chart archive: {source}")]
    Archive {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: more than {} MiB in all (its files and nested archives, decompressed): over \
         the limit for one chart",
        load::MAX_CHART_BYTES >> 20
    )]
    TooLarge { path: String },
    #[error("{path}: {what} nested more than {limit} deep: over the limit for a chart")]
    TooDeep {
        path: String,
        what: String,
        limit: usize,
    },
    #[error("{file}: more than {} MiB of YAML: over the limit for one file", MAX_YAML_BYTES >> 20)]
    YamlTooLarge { file: String },
    #[error(
        "{file}: YAML nested more than {} deep: over the limit",
        MAX_YAML_DEPTH
    )]
    YamlTooDeep { file: String },
    #[error(
        "{file}: the values of the chart and its subcharts pass {} MiB in all: over the limit \
         for one chart",
        load::MAX_VALUES_BYTES >> 20
    )]
    ValuesTooLarge { file: String },
    #[error(
        "{file}: YAML of more than {} nodes (aliases expanded): over the limit",
        MAX_YAML_NODES
    )]
    YamlTooManyNodes { file: String },
    #[error("{file}: not valid YAML: {source}")]
    Yaml {
        file: String,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("chart {chart}: {what}")]
    Invalid { chart: String, what: String },
    #[error("cannot run {helm}: {source}")]
    HelmStart {
        helm: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{helm} template` failed on {chart}: {message}")]
    Render {
        chart: String,
        helm: String,
        message: String,
    },
    #[error(
        "`helm template` of {chart} wrote more than {} MiB: over the limit for one chart",
        render::MAX_OUTPUT_BYTES >> 20
    )]
    RenderTooLarge { chart: String },
    #[error("{origin}: more than {limit} images: over the limit")]
    TooManyImages { origin: String, limit: usize },
    #[error("{origin}: {source}")]
    Reference {
        origin: String,
        #[source]
        source: reference::BadReference,
    },
    #[error("{0}")]
    Usage(String),
}

/// Most distinct images one run discovers (charts name tens).
pub const MAX_IMAGES: usize = 100_000;

/// Most images found, repeats and origins included (one YAML file can name millions).
pub const MAX_FOUND: usize = 1_000_000;

/// Most bytes of one YAML file (or document) read: values, lock files, annotations, rendered
/// objects (Kubernetes refuses objects over 1.5 MiB). The parsed form takes many times more.
pub const MAX_YAML_BYTES: usize = 4 << 20;

/// Deepest YAML nesting read (and of a `--set` key). The parser's cost grows with the square of
/// the nesting, and serde's own limit (128) applies only once the whole document is parsed.
pub const MAX_YAML_DEPTH: usize = 100;

/// Most nodes of one YAML document with its aliases expanded: a few anchors referenced many times
/// expand to billions (a 1 KB file took 6.5 GB). Without aliases a 4 MiB file holds fewer.
pub const MAX_YAML_NODES: u64 = 2_000_000;

/// Parses the YAML `text` (of `file`, named in errors) after checking it against
/// [`MAX_YAML_BYTES`], with [`nesting_exceeds`] against [`MAX_YAML_DEPTH`], and with a counting
/// pass (nothing kept) against [`MAX_YAML_NODES`].
pub fn parse_yaml(text: &str, file: &str) -> Result<Value, ChartError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(ChartError::YamlTooLarge {
            file: file.to_string(),
        });
    }
    if nesting_exceeds(text, MAX_YAML_DEPTH) {
        return Err(ChartError::YamlTooDeep {
            file: file.to_string(),
        });
    }
    let yaml_err = |source| ChartError::Yaml {
        file: file.to_string(),
        source,
    };
    let nodes = std::cell::Cell::new(0);
    if let Err(e) = serde::de::DeserializeSeed::deserialize(
        NodeCounter(&nodes),
        serde_yaml_ng::Deserializer::from_str(text),
    ) {
        return Err(if nodes.get() > MAX_YAML_NODES {
            ChartError::YamlTooManyNodes {
                file: file.to_string(),
            }
        } else {
            yaml_err(e)
        });
    }
    serde_yaml_ng::from_str(text).map_err(yaml_err)
}

/// Counts the nodes of a document as the deserializer replays it (aliases expanded), failing
/// past [`MAX_YAML_NODES`]; keeps nothing.
struct NodeCounter<'a>(&'a std::cell::Cell<u64>);

impl NodeCounter<'_> {
    fn tick<E: serde::de::Error>(&self) -> Result<(), E> {
        let n = self.0.get() + 1;
        self.0.set(n);
        if n > MAX_YAML_NODES {
            return Err(E::custom("too many nodes"));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for NodeCounter<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NodeCounter<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.tick()
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.tick()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.tick()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.tick()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.tick()?;
        serde::de::DeserializeSeed::deserialize(NodeCounter(self.0), d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(NodeCounter(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick()?;
        while map.next_key_seed(NodeCounter(self.0))?.is_some() {
            map.next_value_seed(NodeCounter(self.0))?;
        }
        Ok(())
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag x`): the tag, then the value.
        use serde::de::VariantAccess;
        self.tick()?;
        let (_, variant) = data.variant_seed(NodeCounter(self.0))?;
        variant.newtype_variant_seed(NodeCounter(self.0))
    }
}

/// Whether the YAML `text` may nest deeper than `limit`, found in one pass without parsing: an
/// estimate of the depth of each line, the block levels (indentations open, plus compact
/// `- `/`? ` indicators) and the flow levels (`[`/`{` open, outside quotes and comments). Lines
/// of a block scalar (`|`, `>`), or continuing a scalar, are skipped: they are text. A mapping
/// opened on a line of its own indicators is not counted, so the true depth may reach about
/// twice the estimate: harmless, the parser's cost only matters for thousands of levels, and
/// serde's own limit (128) then applies.
pub fn nesting_exceeds(text: &str, limit: usize) -> bool {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    // The indentation of the line whose scalar the more indented lines continue.
    let mut scalar_of: Option<usize> = None;
    for line in text.lines() {
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        let body = body.trim_end();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if flow == 0 {
            if scalar_of.is_some_and(|open| indent > open) {
                continue;
            }
            scalar_of = None;
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
        }
        let (rest, compact) = strip_compact_indicators(body);
        let block = indents.len() + compact;
        if block + flow > limit {
            return true;
        }
        let Some(code_end) = scan_flow(rest, &mut flow, limit.saturating_sub(block)) else {
            return true;
        };
        if flow == 0 && opens_scalar(&rest[..code_end], compact) {
            // The column where this line's node starts (after its `- ` indicators).
            scalar_of = Some(indent + (body.len() - rest.len()));
        }
    }
    false
}

/// The line after its compact block indicators (`- `, `? `, each a level), and their count.
fn strip_compact_indicators(body: &str) -> (&str, usize) {
    let mut rest = body;
    let mut compact = 0;
    while let Some(r) = ["- ", "? ", "-\t", "?\t"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
    {
        compact += 1;
        rest = r.trim_start_matches([' ', '\t']);
    }
    if rest == "-" || rest == "?" {
        compact += 1;
    }
    (rest, compact)
}

/// Follows the flow brackets of one line (outside quoted scalars and comments) in `flow`;
/// `None` as soon as they nest deeper than `room`, else where the line's code ends (a comment
/// starts).
fn scan_flow(rest: &str, flow: &mut usize, room: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    // The last character before `prev`'s run of blanks: a quote opens a scalar only where
    // one starts (a line's start, after `:`, `,`, `[`, `{`); elsewhere it is text.
    let mut last = ':';
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('"') if c == '\\' => {
                chars.next();
            }
            // `''` is a quote inside a single-quoted scalar.
            Some('\'') if c == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') => {
                chars.next();
            }
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' if "[{,:".contains(last) => quote = Some(c),
                '#' if prev.is_whitespace() => return Some(i),
                '[' | '{' => {
                    *flow += 1;
                    if *flow > room {
                        return None;
                    }
                }
                ']' | '}' => *flow = flow.saturating_sub(1),
                _ => {}
            },
        }
        if !c.is_whitespace() && quote.is_none() || c == '"' || c == '\'' {
            last = c;
        }
        prev = c;
    }
    Some(rest.len())
}

/// Whether a line outside any flow collection holds a scalar value (after `key:` or `- `):
/// more indented lines then continue it (block scalar or multi-line plain/quoted scalar), they
/// cannot nest. Anchors and tags (`&a`, `!!map`) alone announce a node on the next lines; a
/// flow collection is not continued.
fn opens_scalar(code: &str, compact: usize) -> bool {
    let code = code.trim_end();
    let value = match code.split_once(": ") {
        Some((_, v)) => v,
        None if compact > 0 && !code.ends_with(':') => code,
        None => "",
    };
    let value = value
        .split_whitespace()
        .find(|t| !t.starts_with(['&', '!']))
        .unwrap_or("");
    !value.is_empty() && !value.starts_with(['[', '{'])
}

/// Where an image was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// `helm template` output of a chart.
    Rendered {
        chart: String,
        template: Option<String>,
        object: String,
        container: Option<String>,
    },
    /// A chart annotation.
    Annotation { chart: String, key: String },
    /// An image lock file of a chart.
    LockFile { chart: String, file: String },
    /// A guess from a chart's values (see [`guess`]).
    ValuesGuess { chart: String, path: String },
    /// A line of a plain list (`--images-from`).
    List { file: String, line: usize },
    /// Kubernetes YAML given as a list (`--images-from`).
    Manifest {
        file: String,
        object: String,
        container: Option<String>,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let container = |c: &Option<String>| c.as_ref().map(|c| format!(" container {c}"));
        match self {
            Origin::Rendered {
                chart,
                template,
                object,
                container: c,
            } => write!(
                f,
                "chart {chart}, rendered {object}{}{}",
                container(c).unwrap_or_default(),
                template
                    .as_ref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            ),
            Origin::Annotation { chart, key } => write!(f, "chart {chart}, annotation {key}"),
            Origin::LockFile { chart, file } => write!(f, "chart {chart}, {file}"),
            Origin::ValuesGuess { chart, path } => {
                write!(f, "chart {chart}, guessed from values {path}")
            }
            Origin::List { file, line } => write!(f, "{file}:{line}"),
            Origin::Manifest {
                file,
                object,
                container: c,
            } => write!(f, "{file}, {object}{}", container(c).unwrap_or_default()),
        }
    }
}

/// One discovered image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundImage {
    /// Normalised (see [`reference`]).
    pub reference: String,
    /// Only guessed from values conventions, never rendered or declared.
    pub guess: bool,
    pub origins: Vec<Origin>,
}

/// How to discover.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The helm binary to render with; `None`: no rendering.
    pub helm: Option<PathBuf>,
    /// `--values` files, in order.
    pub values: Vec<PathBuf>,
    /// `--set` expressions, in order.
    pub set: Vec<String>,
}

/// What discovery found so far.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub images: Vec<FoundImage>,
    /// The charts read (for the bundle manifest).
    pub charts: Vec<ChartEntry>,
    pub warnings: Vec<String>,
    /// Where each reference is in `images` (a list can name 100,000s: no linear search).
    index: HashMap<String, usize>,
    /// Origins recorded, over all images (at most [`MAX_FOUND`]).
    origins: usize,
}

impl Discovery {
    /// Records `raw` (normalised) as found at `origin`.
    pub fn add(&mut self, raw: &str, origin: Origin, guess: bool) -> Result<(), ChartError> {
        let reference = reference::normalise(raw)
            .map_err(|source| ChartError::Reference {
                origin: origin.to_string(),
                source,
            })?
            .to_string();
        if self.index.len() != self.images.len() {
            // `images` was changed from outside: index it again.
            self.index = (self.images.iter().enumerate())
                .map(|(n, i)| (i.reference.clone(), n))
                .collect();
        }
        let at = (self.index.get(&reference).copied())
            .filter(|&n| self.images.get(n).is_some_and(|i| i.reference == reference));
        let too_many = |origin: &Origin, limit| ChartError::TooManyImages {
            origin: origin.to_string(),
            limit,
        };
        if self.origins >= MAX_FOUND {
            return Err(too_many(&origin, MAX_FOUND));
        }
        match at.and_then(|n| self.images.get_mut(n)) {
            Some(found) => {
                found.guess &= guess;
                if !found.origins.contains(&origin) {
                    found.origins.push(origin);
                    self.origins += 1;
                }
            }
            None => {
                if self.images.len() >= MAX_IMAGES {
                    return Err(too_many(&origin, MAX_IMAGES));
                }
                self.origins += 1;
                self.index.insert(reference.clone(), self.images.len());
                self.images.push(FoundImage {
                    reference,
                    guess,
                    origins: vec![origin],
                })
            }
        }
        Ok(())
    }

    /// The references found, in discovery order.
    pub fn references(&self) -> Vec<String> {
        self.images.iter().map(|i| i.reference.clone()).collect()
    }

    /// Adds the images of the list or YAML `text` (read from `file`).
    pub fn add_list(&mut self, text: &str, file: &str) -> Result<(), ChartError> {
        if list::is_yaml(text) {
            for f in extract::images(text, file)? {
                let origin = Origin::Manifest {
                    file: file.to_string(),
                    object: f.object,
                    container: f.container,
                };
                self.add(&f.image, origin, false)?;
            }
        } else {
            for (line, r) in list::lines(text) {
                let origin = Origin::List {
                    file: file.to_string(),
                    line,
                };
                self.add(&r, origin, false)?;
            }
        }
        Ok(())
    }

    /// Adds the images of the chart at `path` (see the module doc); `excluded` marks an
    /// `--exclude-chart` in the recorded chart list.
    pub fn add_chart(
        &mut self,
        path: &Path,
        opts: &Options,
        excluded: bool,
    ) -> Result<(), ChartError> {
        let (chart, sha256) = load::load(path)?;
        let label = format!("{} {}", chart.name, chart.version);
        self.charts.push(ChartEntry {
            name: chart.name.clone(),
            version: chart.version.clone(),
            sha256,
            path: path.display().to_string(),
            excluded,
        });
        let mut vals = chart.values.clone();
        for f in &opts.values {
            values::merge(&mut vals, &values::read_values_file(f)?);
        }
        for s in &opts.set {
            values::apply_set(&mut vals, s)?;
        }
        if let Some(helm) = &opts.helm {
            self.add_rendered(helm, path, opts, &label)?;
        }
        let guess = opts.helm.is_none();
        self.add_declared(&chart, &vals, &vals, &label, guess)
    }

    fn add_rendered(
        &mut self,
        helm: &Path,
        path: &Path,
        opts: &Options,
        label: &str,
    ) -> Result<(), ChartError> {
        let text = render::template(helm, path, &opts.values, &opts.set)?;
        let file = format!("`helm template` of {}", path.display());
        for f in extract::images(&text, &file)? {
            let origin = Origin::Rendered {
                chart: label.to_string(),
                template: f.source,
                object: f.object,
                container: f.container,
            };
            match self.add(&f.image, origin, false) {
                // A custom resource's `image:` may be something else entirely.
                Err(e) if f.fallback => self.warnings.push(format!("skipped: {e}")),
                r => r?,
            }
        }
        Ok(())
    }

    /// Declared images of `chart` and its subcharts that are on; guesses (when `guess`) for
    /// those that declare nothing.
    fn add_declared(
        &mut self,
        chart: &load::Chart,
        vals: &Value,
        top: &Value,
        label: &str,
        guess: bool,
    ) -> Result<(), ChartError> {
        let declared = declared::declared(chart, label)?;
        let declares = !declared.is_empty();
        for d in declared {
            let origin = match (d.annotation, d.lock_file) {
                (Some(key), _) => Origin::Annotation {
                    chart: label.to_string(),
                    key,
                },
                (None, file) => Origin::LockFile {
                    chart: label.to_string(),
                    file: file.unwrap_or_default(),
                },
            };
            self.add(&d.image, origin, false)?;
        }
        if guess && !declares && !chart.library {
            self.add_guesses(chart, vals, label)?;
        }
        // The first dependency of each name (a chart may list 100,000s: no linear search).
        let mut deps: HashMap<&str, &load::Dependency> = HashMap::new();
        for d in &chart.dependencies {
            deps.entry(d.name.as_str()).or_insert(d);
        }
        for sub in &chart.subcharts {
            let dep = deps.get(sub.name.as_str()).copied();
            if !values::enabled(dep, vals, top) {
                continue;
            }
            let sub_vals = values::subchart_values(sub, dep, vals);
            let sub_label = format!("{label}/{} {}", sub.name, sub.version);
            self.add_declared(sub, &sub_vals, top, &sub_label, guess)?;
        }
        Ok(())
    }

    fn add_guesses(
        &mut self,
        chart: &load::Chart,
        vals: &Value,
        label: &str,
    ) -> Result<(), ChartError> {
        let guesses = guess::guesses(chart, vals);
        if guesses.is_empty() {
            return Ok(());
        }
        let mut names = Vec::new();
        for g in guesses {
            let origin = Origin::ValuesGuess {
                chart: label.to_string(),
                path: g.path,
            };
            self.add(&g.image, origin, true)?;
            names.push(g.image);
        }
        self.warnings.push(format!(
            "chart {label} declares no images and was not rendered: guessed {} from its \
             values.yaml conventions, which may be wrong (its templates decide); install helm \
             or pass --helm BIN for the exact images",
            names.join(", ")
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
