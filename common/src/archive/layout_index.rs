//! The image indexes an OCI layout or oci-archive names in its `index.json` (entries whose blob
//! is an index of image manifests): kept byte for byte, checked to hash to their digest, so that
//! a reference to one carries the whole index as a registry reference does (which of its
//! platforms travel is decided by `crate::source::layout_index`). Their entries that are no
//! platform image (build attestations) are kept whole when the layout holds every blob they
//! name. Only layouts without `manifest.json` (whose manifests are the images' identity) and
//! indexes listing no other index (nested indexes still follow one platform) travel whole.

use super::metadata::{blob_entry, parse_json, ref_name_of, Collected, RefName};
use super::ArchiveError;
use crate::digest::Digest;
use crate::image::{Attached, AttachedBlob, SourceManifest, MAX_ATTACHED_BLOB, MEDIA_INDEX};
use crate::reference::tag_of_bare_name;
use crate::registry::manifest::{is_image_manifest, is_index};
use serde_json::Value;

/// An index of a layout's `index.json` that can travel whole; see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutIndex {
    pub digest: Digest,
    pub media_type: String,
    /// Its exact bytes (JSON), which hash to `digest`.
    pub text: String,
    /// The tag its ref name gives (`app:2`, or `app2:latest` for a bare `app2`), if any.
    pub tag: Option<String>,
    /// Its bare ref name (`app2`, `1.0`), if it has one.
    pub bare: Option<String>,
    /// Its entries that are no platform image, kept whole (each by its digest).
    pub others: Vec<Attached>,
}

fn digest_of(desc: &Value) -> Option<Digest> {
    desc.get("digest")
        .and_then(Value::as_str)
        .and_then(|s| Digest::parse(s).ok())
}

/// Whether the entry `c` of an index is itself an index (a nested one).
fn is_nested(c: &Value) -> bool {
    c.get("mediaType")
        .and_then(Value::as_str)
        .is_some_and(is_index)
}

impl Collected {
    /// Whether the index `v` (a blob of this archive) travels whole: see the module docs.
    pub(crate) fn travels_whole(&self, v: &Value) -> bool {
        self.manifest.is_none()
            && v.get("manifests")
                .and_then(Value::as_array)
                .is_some_and(|l| !l.iter().any(is_nested))
    }

    /// The indexes of `index.json` that travel whole, their digests checked.
    pub(crate) fn layout_indexes(&self) -> Result<Vec<LayoutIndex>, ArchiveError> {
        let list = self
            .index
            .as_ref()
            .and_then(|i| i.get("manifests"))
            .and_then(Value::as_array);
        let mut out: Vec<LayoutIndex> = Vec::new();
        for desc in list.into_iter().flatten() {
            let Some(d) = digest_of(desc) else {
                continue;
            };
            let entry = blob_entry(&d);
            let Some(bytes) = self.json.get(&entry) else {
                continue;
            };
            let v = parse_json(&entry, bytes)?;
            if !v.get("manifests").is_some_and(Value::is_array) || !self.travels_whole(&v) {
                continue;
            }
            let actual = Digest::of_bytes(bytes);
            if actual != d {
                return Err(ArchiveError::DigestMismatch {
                    entry,
                    expected: d,
                    actual,
                });
            }
            let text = String::from_utf8(bytes.clone()).map_err(|_| ArchiveError::BadMetadata {
                entry: entry.clone(),
                message: "an image index that is not UTF-8 text".into(),
            })?;
            let (tag, bare) = match ref_name_of(desc) {
                Some(RefName::Tag(t)) => (Some(t), None),
                Some(RefName::Bare(b)) => (tag_of_bare_name(&b), Some(b)),
                None => (None, None),
            };
            if let Some(prev) = out.iter_mut().find(|i| i.digest == d) {
                // Another ref name of the same index: the first one names it.
                prev.tag = prev.tag.take().or(tag);
                prev.bare = prev.bare.take().or(bare);
                continue;
            }
            let media_type = v
                .get("mediaType")
                .and_then(Value::as_str)
                .or_else(|| desc.get("mediaType").and_then(Value::as_str))
                .unwrap_or(MEDIA_INDEX)
                .to_string();
            let others = v["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| !is_platform_image(c))
                .filter_map(|c| self.whole_other(c))
                .collect();
            out.push(LayoutIndex {
                digest: d,
                media_type,
                text,
                tag,
                bare,
                others,
            });
        }
        Ok(out)
    }

    /// The entry `c` (no platform image) with every blob it names, when the layout holds them
    /// all as JSON and each is small enough to travel inside the signed manifest.
    fn whole_other(&self, c: &Value) -> Option<Attached> {
        let d = digest_of(c)?;
        let bytes = self.json.get(&blob_entry(&d))?;
        if Digest::of_bytes(bytes) != d {
            return None;
        }
        let v: Value = serde_json::from_slice(bytes).ok()?;
        let media_type = v
            .get("mediaType")
            .and_then(Value::as_str)
            .or_else(|| c.get("mediaType").and_then(Value::as_str))?;
        let manifest = SourceManifest::new(media_type, bytes)?;
        let named = std::iter::once(v.get("config")?).chain(v.get("layers")?.as_array()?);
        let mut blobs = Vec::new();
        for n in named {
            let data = self.json.get(&blob_entry(&digest_of(n)?))?;
            if data.len() as u64 > MAX_ATTACHED_BLOB || Some(Digest::of_bytes(data)) != digest_of(n)
            {
                return None;
            }
            blobs.push(AttachedBlob::new(data));
        }
        Some(Attached {
            tag: d.to_string(),
            manifest,
            blobs,
        })
    }
}

/// Whether an index entry is a runnable platform image (an image manifest, not `unknown/…`).
pub(crate) fn is_platform_image(c: &Value) -> bool {
    let image = c
        .get("mediaType")
        .and_then(Value::as_str)
        .is_some_and(is_image_manifest);
    let os = c
        .get("platform")
        .and_then(|p| p.get("os"))
        .and_then(Value::as_str);
    image && os.is_some_and(|o| o != "unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    /// The metadata of a layout whose `index.json` names `child` (an index blob) `app:1`.
    fn collected(child: &Value, manifest_json: bool) -> (Collected, Digest) {
        let bytes = serde_json::to_vec(child).unwrap();
        let d = Digest::of_bytes(&bytes);
        let mut c = Collected::default();
        let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": MEDIA_INDEX,
            "digest": d, "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "app:1"}}]});
        c.add("index.json", serde_json::to_vec(&top).unwrap())
            .unwrap();
        c.add(&blob_entry(&d), bytes).unwrap();
        if manifest_json {
            c.add("manifest.json", b"[]".to_vec()).unwrap();
        }
        (c, d)
    }

    fn entry(digest: &Digest, media_type: &str) -> Value {
        json!({"mediaType": media_type, "digest": digest, "size": 1,
               "platform": {"os": "linux", "architecture": "amd64"}})
    }

    #[test]
    fn only_flat_indexes_of_layouts_travel_whole_checked() {
        let m = Digest::of_bytes(b"manifest");
        let flat = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX,
                          "manifests": [entry(&m, MANIFEST)]});
        let (c, d) = collected(&flat, false);
        let got = c.layout_indexes().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((&got[0].digest, got[0].tag.as_deref()), (&d, Some("app:1")));
        assert_eq!(Digest::of_bytes(got[0].text.as_bytes()), d);
        assert!(got[0].others.is_empty());
        // `docker save` (manifest.json): the daemon's export, no index travels.
        assert!(collected(&flat, true)
            .0
            .layout_indexes()
            .unwrap()
            .is_empty());
        // Nested: one platform of it is taken, as before.
        let nested = json!({"schemaVersion": 2, "manifests": [entry(&m, MEDIA_INDEX)]});
        assert!(collected(&nested, false)
            .0
            .layout_indexes()
            .unwrap()
            .is_empty());
        // An index blob that does not hash to its name is refused, naming it.
        let (mut c, d) = collected(&flat, false);
        let mut bad = c.json[&blob_entry(&d)].clone();
        bad.push(b' ');
        c.json.insert(blob_entry(&d), bad);
        let e = c.layout_indexes().unwrap_err();
        assert!(
            matches!(&e, ArchiveError::DigestMismatch { entry, .. } if *entry == blob_entry(&d)),
            "{e}"
        );
    }
}
