//! Images named in Kubernetes YAML (rendered charts, `--images-from` manifests): every container,
//! init container and ephemeral container of the pod spec of a Pod, Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job or CronJob; in any other object (custom resources, whose schema we
//! cannot know) every string under a key `image`, as a fallback. `List` objects are opened.

use super::{parse_yaml, ChartError, MAX_FOUND};
use serde_yaml_ng::Value;

/// One image found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub image: String,
    /// The template it came from (helm's `# Source:` line), when known.
    pub source: Option<String>,
    /// `Kind/name` of the object.
    pub object: String,
    /// The container's name (pod specs only).
    pub container: Option<String>,
    /// Found by the `image:` fallback, not in a pod spec.
    pub fallback: bool,
}

const WORKLOADS: [&str; 6] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "ReplicationController",
];

/// The documents of a YAML stream, each with its `# Source:` comment. Split on `---` lines (a
/// block scalar's content is always indented, so a `---` at column 0 is a document marker).
fn documents(text: &str) -> Vec<(Option<String>, String)> {
    let mut docs = vec![(None, String::new())];
    for line in text.lines() {
        let is_marker = line == "---"
            || line
                .strip_prefix("---")
                .is_some_and(|r| r.starts_with([' ', '\t']));
        if is_marker {
            docs.push((None, String::new()));
            continue;
        }
        let doc = docs.last_mut().expect("never empty");
        if doc.0.is_none() {
            if let Some(s) = line.strip_prefix("# Source:") {
                doc.0 = Some(s.trim().to_string());
            }
        }
        doc.1.push_str(line);
        doc.1.push('\n');
    }
    docs
}

/// Every image in the YAML stream `text`; `file` names it in errors.
pub fn images(text: &str, file: &str) -> Result<Vec<Found>, ChartError> {
    let mut out = Vec::new();
    for (i, (source, doc)) in documents(text).into_iter().enumerate() {
        let value = parse_yaml(&doc, &format!("{file} (document {})", i + 1))?;
        object(&value, source.as_deref(), &mut out);
        if out.len() > MAX_FOUND {
            return Err(ChartError::TooManyImages {
                origin: file.to_string(),
                limit: MAX_FOUND,
            });
        }
    }
    Ok(out)
}

fn object(v: &Value, source: Option<&str>, out: &mut Vec<Found>) {
    let Value::Mapping(_) = v else { return };
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = v
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let label = format!("{}/{name}", if kind.is_empty() { "?" } else { kind });
    let spec = v.get("spec");
    let pod_spec = match kind {
        "Pod" => spec,
        "CronJob" => spec
            .and_then(|s| s.get("jobTemplate"))
            .and_then(|j| j.get("spec"))
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec")),
        k if WORKLOADS.contains(&k) => spec
            .and_then(|s| s.get("template"))
            .and_then(|t| t.get("spec")),
        "List" => {
            if let Some(Value::Sequence(items)) = v.get("items") {
                for item in items {
                    object(item, source, out);
                }
            }
            return;
        }
        _ => None,
    };
    if let Some(pod) = pod_spec {
        for key in ["initContainers", "containers", "ephemeralContainers"] {
            let Some(Value::Sequence(cs)) = pod.get(key) else {
                continue;
            };
            for c in cs {
                if let Some(image) = c.get("image").and_then(Value::as_str) {
                    out.push(Found {
                        image: image.to_string(),
                        source: source.map(str::to_string),
                        object: label.clone(),
                        container: c.get("name").and_then(Value::as_str).map(str::to_string),
                        fallback: false,
                    });
                }
            }
        }
    } else if !WORKLOADS.contains(&kind) && kind != "Pod" && kind != "CronJob" {
        let mut found = Vec::new();
        image_fields(v, &mut found);
        out.extend(found.into_iter().map(|image| Found {
            image,
            source: source.map(str::to_string),
            object: label.clone(),
            container: None,
            fallback: true,
        }));
    }
}

/// Every non-empty string under a key `image`, anywhere in `v`.
pub fn image_fields(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m {
                match (k.as_str(), val) {
                    (Some("image"), Value::String(s)) if !s.trim().is_empty() => {
                        out.push(s.trim().to_string())
                    }
                    _ => image_fields(val, out),
                }
            }
        }
        Value::Sequence(s) => s.iter().for_each(|x| image_fields(x, out)),
        Value::Tagged(t) => image_fields(&t.value, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "\
---
# Source: app/templates/svc.yaml
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
---
# Source: app/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1
      containers:
        - name: web
          image: nginx
          env:
            - name: SIDECAR_IMAGE
              value: not-an-image-field
---
kind: CronJob
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: 'reg.io/tools/job:3'}]
---
kind: Pod
metadata: {name: debug}
spec:
  ephemeralContainers: [{name: dbg, image: debug:1}]
---
apiVersion: monitoring.coreos.com/v1
kind: Alertmanager
metadata: {name: main}
spec:
  image: quay.io/prometheus/alertmanager:v0.27.0
  nested: {deeper: [{image: ''}]}
---
kind: List
items:
  - kind: Job
    metadata: {name: once}
    spec: {template: {spec: {containers: [{name: c, image: 'once:1'}]}}}
";

    #[test]
    fn finds_pod_spec_containers_and_falls_back_to_image_fields() {
        let found = images(RENDERED, "rendered").unwrap();
        let got: Vec<(&str, &str, Option<&str>, bool)> = found
            .iter()
            .map(|f| {
                (
                    f.image.as_str(),
                    f.object.as_str(),
                    f.container.as_deref(),
                    f.fallback,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("busybox:1", "Deployment/web", Some("init"), false),
                ("nginx", "Deployment/web", Some("web"), false),
                ("reg.io/tools/job:3", "CronJob/nightly", Some("job"), false),
                ("debug:1", "Pod/debug", Some("dbg"), false),
                (
                    "quay.io/prometheus/alertmanager:v0.27.0",
                    "Alertmanager/main",
                    None,
                    true
                ),
                ("once:1", "Job/once", Some("c"), false),
            ]
        );
        assert_eq!(
            found[0].source.as_deref(),
            Some("app/templates/deploy.yaml")
        );
        assert_eq!(found[2].source, None);
    }

    #[test]
    fn broken_yaml_names_the_file_and_document() {
        let e = images("kind: Pod\n---\nkind: [\n", "x.yaml").unwrap_err();
        assert!(e.to_string().contains("x.yaml (document 2)"), "{e}");
    }
}
