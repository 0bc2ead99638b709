//! The small JSON files of an archive: collecting them while streaming, turning them into the
//! archive's images (from `manifest.json`, or from `index.json` and OCI manifests when there is no
//! `manifest.json`), and rewriting `manifest.json`, `repositories` and `index.json` for a selection
//! of images (unknown fields are kept as they are).

use super::names::{role_of, EntryRole};
use super::{ArchiveError, IndexedImage, SourceImage};
use crate::digest::Digest;
use crate::plan::Layout;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

/// The biggest metadata entry buffered in memory.
pub(crate) const MAX_JSON: u64 = 16 << 20;

/// The most index descriptors followed from one `index.json` (real archives have a handful).
const MAX_WALK: usize = 1 << 16;

/// The work done walking one `index.json`: descriptors visited, and blobs parsed (each once).
#[derive(Default)]
struct WalkState {
    visits: usize,
    parsed: HashMap<Digest, Option<Rc<Value>>>,
}

/// The metadata of one input archive.
#[derive(Default, Debug, Clone)]
pub(crate) struct Collected {
    pub label: String,
    pub manifest: Option<Vec<Value>>,
    pub repositories: Option<Value>,
    pub index: Option<Value>,
    pub oci_layout: Option<Vec<u8>>,
    /// Small JSON files by entry name: legacy configs and JSON blobs.
    pub json: BTreeMap<String, Vec<u8>>,
    /// Whether `blobs/` entries were seen.
    pub saw_blobs: bool,
    /// Whether `<v1id>/` folders were seen.
    pub saw_folders: bool,
}

fn bad(entry: &str, message: impl Into<String>) -> ArchiveError {
    ArchiveError::BadMetadata {
        entry: entry.to_string(),
        message: message.into(),
    }
}

pub(crate) fn parse_json(entry: &str, bytes: &[u8]) -> Result<Value, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|e| bad(entry, format!("invalid JSON: {e}")))
}

/// `rootfs.diff_ids` of an image config.
pub(crate) fn config_diff_ids(entry: &str, config: &[u8]) -> Result<Vec<Digest>, ArchiveError> {
    let v = parse_json(entry, config)?;
    let ids = v
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .ok_or_else(|| bad(entry, "image config without rootfs.diff_ids"))?;
    ids.iter()
        .map(|d| {
            d.as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| bad(entry, format!("bad diffID {d}")))
        })
        .collect()
}

/// The entry name of a blob.
pub(crate) fn blob_entry(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// `docker.io/library/x:t` → `x:t`, `docker.io/u/x` → `u/x:latest`; `None` for digest references.
pub(crate) fn familiar(reference: &str) -> Option<String> {
    let r = reference.trim();
    if r.is_empty() || r.contains('@') {
        return None;
    }
    let r = r
        .strip_prefix("docker.io/library/")
        .or_else(|| r.strip_prefix("index.docker.io/library/"))
        .or_else(|| r.strip_prefix("docker.io/"))
        .or_else(|| r.strip_prefix("index.docker.io/"))
        .unwrap_or(r);
    let r = r.strip_prefix("library/").unwrap_or(r);
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') {
        Some(r.to_string())
    } else {
        Some(format!("{r}:latest"))
    }
}

/// A tag from an OCI index descriptor's annotations.
fn tag_of(desc: &Value) -> Option<String> {
    let ann = desc.get("annotations")?;
    if let Some(n) = ann.get("io.containerd.image.name").and_then(Value::as_str) {
        return familiar(n);
    }
    let n = ann
        .get("org.opencontainers.image.ref.name")
        .and_then(Value::as_str)?;
    // A bare tag (`1.0`) names no repository; only full references are tags here.
    if n.contains('/') || n.contains(':') {
        familiar(n)
    } else {
        None
    }
}

impl Collected {
    /// Records a JSON metadata entry; `name` is cleaned.
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) -> Result<(), ArchiveError> {
        match role_of(name) {
            EntryRole::Manifest => {
                let v = parse_json(name, &bytes)?;
                let Value::Array(items) = v else {
                    return Err(bad(name, "not a JSON array"));
                };
                self.manifest = Some(items);
            }
            EntryRole::Repositories => self.repositories = Some(parse_json(name, &bytes)?),
            EntryRole::Index => self.index = Some(parse_json(name, &bytes)?),
            EntryRole::OciLayout => self.oci_layout = Some(bytes),
            _ => {
                self.json.insert(name.to_string(), bytes);
            }
        }
        Ok(())
    }

    fn blob_json(&self, d: &Digest) -> Option<Value> {
        let bytes = self.json.get(&blob_entry(d))?;
        serde_json::from_slice(bytes).ok()
    }

    /// The images this archive describes.
    pub fn images(&self) -> Result<Vec<IndexedImage>, ArchiveError> {
        let mut images = match &self.manifest {
            Some(items) => self.images_from_manifest(items)?,
            None => self.images_from_index()?,
        };
        // OCI manifests and the index descriptors leading to them.
        if let Some(index) = &self.index {
            let mut found = BTreeMap::new();
            if let Some(list) = index.get("manifests").and_then(Value::as_array) {
                let mut st = WalkState::default();
                for desc in list {
                    self.walk(desc, &mut Vec::new(), &mut found, 0, &mut st);
                }
            }
            for img in &mut images {
                if let Some((m, parents)) = found.get(&img.source.id) {
                    img.manifest_digest = Some(m.clone());
                    img.index_digests = parents.clone();
                }
            }
        }
        Ok(images)
    }

    /// Follows an index descriptor down to image manifests present in the archive; records
    /// config digest → (manifest digest, parent index digests). `st` bounds the work: nested
    /// indexes listing each other (or themselves) many times would otherwise cost fanout^depth
    /// blob parses.
    fn walk(
        &self,
        desc: &Value,
        parents: &mut Vec<Digest>,
        found: &mut BTreeMap<Digest, (Digest, Vec<Digest>)>,
        depth: usize,
        st: &mut WalkState,
    ) {
        if st.visits >= MAX_WALK {
            return;
        }
        st.visits += 1;
        let Some(d) = desc
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|s| Digest::parse(s).ok())
        else {
            return;
        };
        if parents.contains(&d) {
            return; // an index listing itself, directly or not
        }
        let v = match st.parsed.get(&d) {
            Some(v) => v.clone(),
            None => {
                let v = self.blob_json(&d).map(Rc::new);
                st.parsed.insert(d.clone(), v.clone());
                v
            }
        };
        let Some(v) = v else {
            return;
        };
        if let Some(children) = v.get("manifests").and_then(Value::as_array) {
            if depth > 8 {
                return;
            }
            parents.push(d.clone());
            for c in children {
                self.walk(c, parents, found, depth + 1, st);
            }
            parents.pop();
        } else if let Some(cfg) = v
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(Value::as_str)
            .and_then(|s| Digest::parse(s).ok())
        {
            let entry = found.entry(cfg).or_insert_with(|| (d.clone(), Vec::new()));
            for p in parents.iter() {
                if !entry.1.contains(p) {
                    entry.1.push(p.clone());
                }
            }
        }
    }

    fn config(&self, entry: &str) -> Result<(Digest, Vec<Digest>), ArchiveError> {
        let bytes = self
            .json
            .get(entry)
            .ok_or_else(|| ArchiveError::MissingEntry {
                entry: entry.to_string(),
                context: format!("the image config named by manifest.json in {}", self.label),
            })?;
        let id = Digest::of_bytes(bytes);
        let named = match role_of(entry) {
            EntryRole::LegacyConfig(d) | EntryRole::Blob(d) => Some(d),
            _ => None,
        };
        if let Some(n) = named {
            if n != id {
                return Err(ArchiveError::DigestMismatch {
                    entry: entry.to_string(),
                    expected: n,
                    actual: id,
                });
            }
        }
        Ok((id, config_diff_ids(entry, bytes)?))
    }

    fn images_from_manifest(&self, items: &[Value]) -> Result<Vec<IndexedImage>, ArchiveError> {
        let mut out: Vec<IndexedImage> = Vec::new();
        for item in items {
            let cfg = item
                .get("Config")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("manifest.json", "an entry without Config"))?;
            let cfg = super::names::clean_name(cfg)?;
            let (id, diff_ids) = self.config(&cfg)?;
            let layers: Vec<String> = item
                .get("Layers")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|x| x.as_str())
                        .map(super::names::clean_name)
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            if layers.len() != diff_ids.len() {
                return Err(bad(
                    "manifest.json",
                    format!(
                        "image {id}: {} layers listed but its config {cfg} has {} diffIDs",
                        layers.len(),
                        diff_ids.len()
                    ),
                ));
            }
            let tags: Vec<String> = item
                .get("RepoTags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(|x| x.as_str())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            if let Some(prev) = out.iter_mut().find(|i| i.source.id == id) {
                for t in tags {
                    if !prev.source.tags.contains(&t) {
                        prev.source.tags.push(t);
                    }
                }
                continue;
            }
            out.push(IndexedImage {
                source: SourceImage { id, tags, diff_ids },
                layer_entries: layers,
                config_entry: cfg,
                manifest_digest: None,
                index_digests: Vec::new(),
            });
        }
        Ok(out)
    }

    fn images_from_index(&self) -> Result<Vec<IndexedImage>, ArchiveError> {
        let Some(index) = &self.index else {
            return Ok(Vec::new());
        };
        let mut out: Vec<IndexedImage> = Vec::new();
        let list = index
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut st = WalkState::default();
        for desc in &list {
            let mut found = BTreeMap::new();
            self.walk(desc, &mut Vec::new(), &mut found, 0, &mut st);
            let tag = tag_of(desc);
            for (cfg, (mdigest, parents)) in found {
                let centry = blob_entry(&cfg);
                if !self.json.contains_key(&centry) {
                    continue; // a platform the archive does not carry
                }
                let (id, diff_ids) = self.config(&centry)?;
                let m = self.blob_json(&mdigest).unwrap_or(Value::Null);
                let layers: Vec<String> = m
                    .get("layers")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .filter_map(|x| x.get("digest").and_then(Value::as_str))
                            .map(|s| {
                                Digest::parse(s).map(|d| blob_entry(&d)).map_err(|_| {
                                    bad(&blob_entry(&mdigest), format!("bad layer digest {s}"))
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                if layers.len() != diff_ids.len() {
                    return Err(bad(
                        &blob_entry(&mdigest),
                        format!(
                            "image {id}: {} layers but its config has {} diffIDs",
                            layers.len(),
                            diff_ids.len()
                        ),
                    ));
                }
                if let Some(prev) = out.iter_mut().find(|i| i.source.id == id) {
                    if let Some(t) = &tag {
                        if !prev.source.tags.contains(t) {
                            prev.source.tags.push(t.clone());
                        }
                    }
                    continue;
                }
                out.push(IndexedImage {
                    source: SourceImage {
                        id,
                        tags: tag.iter().cloned().collect(),
                        diff_ids,
                    },
                    layer_entries: layers,
                    config_entry: centry,
                    manifest_digest: Some(mdigest),
                    index_digests: parents,
                });
            }
        }
        Ok(out)
    }

    /// The layout these images are in.
    pub fn layout(&self, images: &[IndexedImage]) -> Layout {
        if !self.saw_blobs && self.index.is_none() {
            return Layout::Legacy;
        }
        let compressed = images.iter().any(|img| {
            img.layer_entries
                .iter()
                .zip(&img.source.diff_ids)
                .any(|(e, d)| *e != blob_entry(d))
        });
        // Uncompressed layers without manifest.json: a Docker >= 25 archive that lost it (the
        // caller reports it); the containerd store compresses its layers.
        if compressed {
            Layout::Containerd
        } else {
            Layout::Oci
        }
    }
}

/// Keeps the `manifest.json` items of the selected images (by config entry), merging duplicates.
pub(crate) fn rewrite_manifest(items: &[Value], selected_configs: &BTreeSet<String>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        let Some(cfg) = item.get("Config").and_then(Value::as_str) else {
            continue;
        };
        let cfg = cfg.strip_prefix("./").unwrap_or(cfg);
        if !selected_configs.contains(cfg) {
            continue;
        }
        if let Some(prev) = out.iter_mut().find(|p| {
            p.get("Config")
                .and_then(Value::as_str)
                .map(|c| c.strip_prefix("./").unwrap_or(c) == cfg)
                .unwrap_or(false)
        }) {
            // The same image from two inputs: union of tags.
            let new_tags: Vec<Value> = item
                .get("RepoTags")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(Value::Array(tags)) = prev.get_mut("RepoTags") {
                for t in new_tags {
                    if !tags.contains(&t) {
                        tags.push(t);
                    }
                }
            }
            continue;
        }
        out.push(item.clone());
    }
    out
}

/// Keeps the `repositories` tags that belong to `selected_tags` (familiar `name:tag` forms).
pub(crate) fn rewrite_repositories(
    repos: &Value,
    selected_tags: &BTreeSet<String>,
    into: &mut serde_json::Map<String, Value>,
) {
    let Some(map) = repos.as_object() else {
        return;
    };
    for (name, tags) in map {
        let Some(tags) = tags.as_object() else {
            continue;
        };
        for (tag, id) in tags {
            let full = familiar(&format!("{name}:{tag}")).unwrap_or_default();
            if selected_tags.contains(&full) {
                let slot = into
                    .entry(name.clone())
                    .or_insert_with(|| Value::Object(Default::default()));
                if let Some(obj) = slot.as_object_mut() {
                    obj.insert(tag.clone(), id.clone());
                }
            }
        }
    }
}

/// Keeps the `index.json` descriptors whose digest is in `keep`; `into` gathers them across inputs.
pub(crate) fn rewrite_index(index: &Value, keep: &BTreeSet<Digest>, into: &mut Vec<Value>) {
    let Some(list) = index.get("manifests").and_then(Value::as_array) else {
        return;
    };
    for desc in list {
        let d = desc
            .get("digest")
            .and_then(Value::as_str)
            .and_then(|s| Digest::parse(s).ok());
        if d.map(|d| keep.contains(&d)).unwrap_or(false) && !into.contains(desc) {
            into.push(desc.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names() {
        assert_eq!(familiar("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            familiar("docker.io/library/busybox:1").unwrap(),
            "busybox:1"
        );
        assert_eq!(familiar("docker.io/me/app").unwrap(), "me/app:latest");
        assert_eq!(familiar("reg:5000/app").unwrap(), "reg:5000/app:latest");
        assert_eq!(familiar("reg:5000/app:2").unwrap(), "reg:5000/app:2");
        assert!(familiar("a@sha256:00").is_none());
    }

    #[test]
    fn repositories_keep_selected_tags() {
        let repos: Value =
            serde_json::from_str(r#"{"a":{"1":"x","2":"y"},"b":{"latest":"z"}}"#).unwrap();
        let sel: BTreeSet<String> = ["a:2".to_string()].into();
        let mut out = serde_json::Map::new();
        rewrite_repositories(&repos, &sel, &mut out);
        assert_eq!(Value::Object(out), serde_json::json!({"a":{"2":"y"}}));
    }

    #[test]
    fn self_referencing_index_blobs_do_not_explode() {
        // An index blob listing itself (or a chain of indexes each listing the next many times)
        // made the walk visit fanout^depth descriptors, re-parsing the blob each time: minutes of
        // CPU for a few hundred bytes of hostile input.
        let x = Digest::of_bytes(b"loop");
        let desc = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
                                      "digest": x.to_string(), "size": 1});
        let blob = serde_json::json!({"schemaVersion": 2, "manifests": vec![desc.clone(); 16]});
        let mut c = Collected::default();
        let top = serde_json::json!({"schemaVersion": 2, "manifests": vec![desc.clone(); 5000]});
        c.add("index.json", serde_json::to_vec(&top).unwrap())
            .unwrap();
        c.add(&blob_entry(&x), serde_json::to_vec(&blob).unwrap())
            .unwrap();
        let t = std::time::Instant::now();
        assert!(c.images().unwrap().is_empty());
        assert!(t.elapsed().as_secs() < 2, "{:?}", t.elapsed());
    }
}
