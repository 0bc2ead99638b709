//! Images a chart declares about itself: the annotations `helm.sh/images`,
//! `artifacthub.io/images` and Bitnami's `images` (a YAML list of `{name, image}` or of plain
//! references), and image lock files (`images.lock`, `images-lock.yaml`, …: every `image:`
//! string in them, or one reference a line when the file is not YAML).

use super::extract::image_fields;
use super::load::Chart;
use super::{parse_yaml, ChartError};
use serde_yaml_ng::Value;

/// The annotations that declare images, in the order they are read.
pub const ANNOTATIONS: [&str; 3] = ["helm.sh/images", "artifacthub.io/images", "images"];

/// A declared image: the reference and where it was declared (annotation key or lock file).
pub struct Declared {
    pub image: String,
    pub annotation: Option<String>,
    pub lock_file: Option<String>,
}

/// The images `chart` (not its subcharts) declares; `label` names it in errors.
pub fn declared(chart: &Chart, label: &str) -> Result<Vec<Declared>, ChartError> {
    let mut out = Vec::new();
    for key in ANNOTATIONS {
        let Some(text) = chart.annotations.get(key) else {
            continue;
        };
        let v = parse_yaml(text, &format!("{label}: annotation {key}"))?;
        let Value::Sequence(items) = v else {
            return Err(ChartError::Invalid {
                chart: label.to_string(),
                what: format!("annotation {key} is not a list"),
            });
        };
        for item in items {
            let image = match &item {
                Value::String(s) => Some(s.clone()),
                other => other
                    .get("image")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            if let Some(image) = image {
                out.push(Declared {
                    image,
                    annotation: Some(key.to_string()),
                    lock_file: None,
                });
            }
        }
    }
    for (file, text) in &chart.lock_files {
        let mut images = Vec::new();
        // Not YAML: one reference a line. Over the YAML limits: refused.
        match parse_yaml(text, &format!("{label}/{file}")) {
            Ok(v @ (Value::Mapping(_) | Value::Sequence(_))) => image_fields(&v, &mut images),
            Err(
                e @ (ChartError::YamlTooLarge { .. }
                | ChartError::YamlTooDeep { .. }
                | ChartError::YamlTooManyNodes { .. }),
            ) => return Err(e),
            _ => images.extend(super::list::lines(text).into_iter().map(|(_, r)| r)),
        }
        out.extend(images.into_iter().map(|image| Declared {
            image,
            annotation: None,
            lock_file: Some(file.clone()),
        }));
    }
    Ok(out)
}
