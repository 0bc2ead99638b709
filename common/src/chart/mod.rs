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

pub mod declared;
pub mod extract;
pub mod guess;
pub mod list;
pub mod load;
pub mod reference;
pub mod render;
pub mod values;

use crate::manifest::ChartEntry;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
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
    #[error("{path}: more than {} MiB: not a chart", load::MAX_CHART_BYTES >> 20)]
    TooLarge { path: String },
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
    #[error("{origin}: {source}")]
    Reference {
        origin: String,
        #[source]
        source: reference::BadReference,
    },
    #[error("{0}")]
    Usage(String),
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
        match self.images.iter_mut().find(|i| i.reference == reference) {
            Some(found) => {
                found.guess &= guess;
                if !found.origins.contains(&origin) {
                    found.origins.push(origin);
                }
            }
            None => self.images.push(FoundImage {
                reference,
                guess,
                origins: vec![origin],
            }),
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
        for sub in &chart.subcharts {
            let dep = chart.dependencies.iter().find(|d| d.name == sub.name);
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
