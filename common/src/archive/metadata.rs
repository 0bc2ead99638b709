//! The small JSON files of an archive: collecting them while streaming, turning them into the
//! archive's images (from `manifest.json`, or from `index.json` and OCI manifests when there is no
//! `manifest.json`), following nested indexes (only the wanted platform's descriptors of a
//! multi-platform index, but every platform of one that travels whole, see
//! [`super::layout_index`]) with bounds against hostile input.

use super::names::{role_of, EntryRole};
use super::{ArchiveError, IndexedImage, SourceImage};
use crate::digest::Digest;
use crate::image::{Platform, SourceManifest, MEDIA_MANIFEST};
use crate::plan::Layout;
use crate::reference::{familiar, tag_of_bare_name};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// The biggest metadata entry buffered in memory.
pub(crate) const MAX_JSON: u64 = 16 << 20;

/// The most index descriptors followed from one `index.json` (real archives have a handful).
const MAX_WALK: usize = 1 << 16;

/// An image below an index entry: config digest, manifest digest, parent indexes, and whether
/// it is another platform than the one wanted (an index that travels whole lists it).
type Found = (Digest, Digest, Vec<Digest>, bool);

/// The work done walking one `index.json`: descriptors visited, and blobs parsed (each once).
#[derive(Default)]
struct WalkState {
    visits: usize,
    parsed: HashMap<Digest, Option<Rc<Value>>>,
    /// Follow every platform of an index that travels whole (else only the wanted one).
    every_platform: bool,
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
    /// In multi-platform indexes, follow only the descriptors of this platform (`None`: all).
    pub platform: Option<Platform>,
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

/// What an index descriptor's annotations name: a full reference (a tag), or a bare
/// `org.opencontainers.image.ref.name` such as `app2` or `1.0` (a tag of the layout, no
/// repository), which also gives the tag [`tag_of_bare_name`] when it is a valid name.
pub(crate) enum RefName {
    Tag(String),
    Bare(String),
}

pub(crate) fn ref_name_of(desc: &Value) -> Option<RefName> {
    let ann = desc.get("annotations")?;
    if let Some(n) = ann.get("io.containerd.image.name").and_then(Value::as_str) {
        return familiar(n).map(RefName::Tag);
    }
    let n = ann
        .get("org.opencontainers.image.ref.name")
        .and_then(Value::as_str)?;
    if n.contains('/') || n.contains(':') {
        familiar(n).map(RefName::Tag)
    } else if n.is_empty() {
        None
    } else {
        Some(RefName::Bare(n.to_string()))
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
                let mut st = WalkState {
                    every_platform: true,
                    ..Default::default()
                };
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
            // The platforms of an index that travels whole are all followed.
            let whole = st.every_platform && depth == 0 && self.travels_whole(&v);
            parents.push(d.clone());
            for c in children {
                if let (Some(want), Some(p), false) = (&self.platform, c.get("platform"), whole) {
                    if !want.matches(p) {
                        continue;
                    }
                }
                if c.pointer("/platform/os").and_then(Value::as_str) == Some("unknown") {
                    continue; // an attestation, no image (it travels as its index's)
                }
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

    /// The images below the index entry `desc` (config digest, manifest digest, parent
    /// indexes): the wanted platform's first (a tag names it), then the other platforms of an
    /// index that travels whole.
    fn walk_ordered(&self, desc: &Value, st: &mut WalkState) -> Vec<Found> {
        let mut found = BTreeMap::new();
        self.walk(desc, &mut Vec::new(), &mut found, 0, st);
        let mut every = BTreeMap::new();
        st.every_platform = true;
        self.walk(desc, &mut Vec::new(), &mut every, 0, st);
        st.every_platform = false;
        let rest: Vec<Found> = every
            .into_iter()
            .filter(|(cfg, _)| !found.contains_key(cfg))
            .map(|(cfg, (m, parents))| (cfg, m, parents, true))
            .collect();
        let wanted = found.into_iter().map(|(cfg, (m, p))| (cfg, m, p, false));
        wanted.chain(rest).collect()
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
                        .filter_map(familiar)
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
                source_manifest: None,
                ref_names: Vec::new(),
                other_platform: false,
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
            if let (Some(want), Some(p)) = (&self.platform, desc.get("platform")) {
                if !want.matches(p) {
                    continue;
                }
            }
            let found = self.walk_ordered(desc, &mut st);
            // A bare ref name is also a tag when Docker would take it as one (`app2`).
            let (tag, bare) = match ref_name_of(desc) {
                Some(RefName::Tag(t)) => (Some(t), None),
                Some(RefName::Bare(b)) => (tag_of_bare_name(&b), Some(b)),
                None => (None, None),
            };
            for (cfg, mdigest, parents, other_platform) in found {
                let centry = blob_entry(&cfg);
                if !self.json.contains_key(&centry) {
                    continue; // a platform the archive does not carry
                }
                let (id, diff_ids) = self.config(&centry)?;
                let layers = self.manifest_layers(&mdigest, &id, diff_ids.len())?;
                let source_manifest = self.source_manifest(&mdigest)?;
                if let Some(prev) = out.iter_mut().find(|i| i.source.id == id) {
                    prev.add_names(tag.as_ref(), bare.as_ref());
                    prev.other_platform &= other_platform;
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
                    source_manifest,
                    ref_names: bare.iter().cloned().collect(),
                    other_platform,
                });
            }
        }
        Ok(out)
    }

    /// The OCI manifest blob `mdigest` byte for byte, checked to hash to its digest (a layout's
    /// manifest is the image's identity: one that does not hash right is refused, naming it).
    fn source_manifest(&self, mdigest: &Digest) -> Result<Option<SourceManifest>, ArchiveError> {
        let entry = blob_entry(mdigest);
        let Some(bytes) = self.json.get(&entry) else {
            return Ok(None);
        };
        let actual = Digest::of_bytes(bytes);
        if actual != *mdigest {
            return Err(ArchiveError::DigestMismatch {
                entry,
                expected: mdigest.clone(),
                actual,
            });
        }
        let v = parse_json(&entry, bytes)?;
        let media_type = v
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or(MEDIA_MANIFEST);
        Ok(SourceManifest::new(media_type, bytes))
    }

    /// The layer entries of the OCI manifest `mdigest` of image `id`, which must be as many as
    /// its config's `diff_ids`.
    fn manifest_layers(
        &self,
        mdigest: &Digest,
        id: &Digest,
        diff_ids: usize,
    ) -> Result<Vec<String>, ArchiveError> {
        let m = self.blob_json(mdigest).unwrap_or(Value::Null);
        let layers: Vec<String> = m
            .get("layers")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|x| x.get("digest").and_then(Value::as_str))
                    .map(|s| {
                        Digest::parse(s)
                            .map(|d| blob_entry(&d))
                            .map_err(|_| bad(&blob_entry(mdigest), format!("bad layer digest {s}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        if layers.len() != diff_ids {
            return Err(bad(
                &blob_entry(mdigest),
                format!(
                    "image {id}: {} layers but its config has {diff_ids} diffIDs",
                    layers.len()
                ),
            ));
        }
        Ok(layers)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn only_layouts_without_manifest_json_keep_their_manifests_checked() {
        use crate::testutil::archive::{image, layer, oci};
        let app = image(&["app:2"], &[&layer("a.txt", b"a"), &layer("b.txt", b"b")]);
        let scanned = |with_manifest_json| {
            let tar = oci(&[&app], true, with_manifest_json).tar();
            crate::archive::scan(&tar[..])
        };
        let layout = scanned(false).unwrap();
        let img = &layout.images[0];
        let kept = img.source_manifest.as_ref().expect("a layout's manifest");
        assert_eq!(Some(&kept.digest), img.manifest_digest.as_ref());
        assert_eq!(Digest::of_bytes(kept.text.as_bytes()), kept.digest);
        assert_eq!(kept.media_type, MEDIA_MANIFEST);
        assert_eq!(layout.model(img).source_manifest.as_ref(), Some(kept));
        let saved = scanned(true).unwrap();
        assert!(saved.images[0].source_manifest.is_none(), "docker save");

        // A manifest blob that does not hash to its name is refused, naming it.
        let mut c = Collected::default();
        let mut tampered = None;
        for e in oci(&[&app], true, false).entries {
            let crate::testutil::archive::Kind::File(bytes) = e.kind else {
                continue;
            };
            if e.name.ends_with(&kept.digest.hex()) {
                let mut b = bytes.clone();
                b.push(b' ');
                tampered = Some(e.name.clone());
                c.add(&e.name, b).unwrap();
            } else if bytes.first() == Some(&b'{') {
                c.add(&e.name, bytes).unwrap();
            }
        }
        let e = c.images().unwrap_err();
        assert!(
            matches!(&e, ArchiveError::DigestMismatch { entry, .. } if Some(entry) == tampered.as_ref()),
            "{e}"
        );
    }
}
