//! Multi-platform images: the index (or Docker manifest list) a registry reference named, carried
//! in the signed manifest byte for byte (or, when `--platform` narrowed the selection, re-made
//! with only the platforms that travel, saying its digest changes), so `partial-load push` can
//! write it under its tags after its platform manifests and the destination serves the same
//! digest. Each platform image travels as an image of the bundle of its own; [`SourceIndex::check`]
//! ties the index to them: its text hashes to its digest and it lists only manifests that travel.

use partial_core::digest::Digest;
use partial_model::image::Attached;
use serde::{Deserialize, Serialize};

/// An index that travels: its bytes and where it is pushed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIndex {
    pub media_type: String,
    /// The sha256 of `text`'s bytes.
    pub digest: Digest,
    /// The index's exact bytes (JSON).
    pub text: String,
    /// The repository it was read from, familiar (`127.0.0.1:5000/fx/app`): `push` writes the
    /// index and its platform manifests there (under the destination's prefix).
    pub repository: String,
    /// Its tags (familiar, `127.0.0.1:5000/fx/app:1`); none when it was named by digest.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The platform image manifests it lists, each a bundle image's `source_manifest`.
    pub manifests: Vec<IndexedManifest>,
    /// Other manifests it lists (build attestations: platform `unknown/unknown`), carried inside
    /// the signed manifest with their blobs and pushed by digest before the index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<Attached>,
    /// Signatures, attestations and SBOMs attached to the index's digest in its registry
    /// (cosign's tag scheme, OCI referrers), as an image's `attached`: pushed after the index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<Attached>,
    /// Set when the index was re-made (`--platform` narrowed it): the source index's digest,
    /// which the destination will not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remade_from: Option<Digest>,
}

/// One platform image an index lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedManifest {
    pub digest: Digest,
    /// `os/arch[/variant]`.
    pub platform: String,
}

/// The digests listed by an index's `manifests`.
pub fn listed(text: &str) -> Result<Vec<Digest>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("its text is not JSON: {e}"))?;
    let list = v["manifests"]
        .as_array()
        .ok_or("its text has no manifests list")?;
    list.iter()
        .map(|d| {
            d["digest"]
                .as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| format!("it lists a bad digest {}", d["digest"]))
        })
        .collect()
}

/// The index `text` with only the entries whose digest is in `keep`: the bytes of a re-made
/// index (its other fields kept).
pub fn remake(text: &str, keep: &[Digest]) -> Result<Vec<u8>, String> {
    let mut v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let list = v["manifests"]
        .as_array_mut()
        .ok_or("the index has no manifests list")?;
    list.retain(|d| {
        d["digest"]
            .as_str()
            .is_some_and(|s| keep.iter().any(|k| k.as_str() == s))
    });
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

impl SourceIndex {
    /// Checks the index against the image manifests that travel (`travelling`: the bundle's
    /// images' source digests): its text hashes to its digest, its platform manifests are among
    /// them, and the text lists exactly those and its extra manifests. `Err` says what is wrong.
    pub fn check(&self, travelling: &[&Digest]) -> Result<(), String> {
        let actual = Digest::of_bytes(self.text.as_bytes());
        if actual != self.digest {
            return Err(format!("its text hashes to {actual}, not {}", self.digest));
        }
        for m in &self.manifests {
            if !travelling.contains(&&m.digest) {
                return Err(format!(
                    "it lists the {} manifest {}, which is no image of the bundle",
                    m.platform, m.digest
                ));
            }
        }
        for e in &self.extra {
            let d = Digest::of_bytes(e.manifest.text.as_bytes());
            if d != e.manifest.digest || e.tag != d.as_str() {
                return Err(format!("its extra manifest {} does not hash right", e.tag));
            }
        }
        for d in listed(&self.text)? {
            let known = self.manifests.iter().any(|m| m.digest == d)
                || self.extra.iter().any(|e| e.manifest.digest == d);
            if !known {
                return Err(format!("its text lists {d}, which does not travel"));
            }
        }
        Ok(())
    }

    /// The platform image of this index that runs on `os`/`architecture`, if it has one.
    pub fn for_platform(&self, os: &str, architecture: &str) -> Option<&IndexedManifest> {
        let want = format!("{os}/{architecture}");
        self.manifests
            .iter()
            .find(|m| m.platform == want || m.platform.starts_with(&format!("{want}/")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_model::image::SourceManifest;

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    fn index(entries: &[(&Digest, &str)]) -> SourceIndex {
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|(d, p)| {
                let (os, arch) = p.split_once('/').unwrap();
                serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": 1,
                    "platform": {"os": os, "architecture": arch}})
            })
            .collect();
        let text = serde_json::json!({"schemaVersion": 2, "manifests": list}).to_string();
        SourceIndex {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: Digest::of_bytes(text.as_bytes()),
            text,
            repository: "r/app".into(),
            tags: vec!["r/app:1".into()],
            manifests: entries
                .iter()
                .map(|(d, p)| IndexedManifest {
                    digest: (*d).clone(),
                    platform: p.to_string(),
                })
                .collect(),
            extra: Vec::new(),
            attached: Vec::new(),
            remade_from: None,
        }
    }

    #[test]
    fn an_index_of_travelling_platforms_passes_and_picks_the_daemons() {
        let (a, b) = (Digest::of_bytes(b"amd"), Digest::of_bytes(b"arm"));
        let i = index(&[(&a, "linux/amd64"), (&b, "linux/arm64/v8")]);
        i.check(&[&a, &b]).unwrap();
        assert_eq!(i.for_platform("linux", "amd64").unwrap().digest, a);
        assert_eq!(i.for_platform("linux", "arm64").unwrap().digest, b);
        assert!(i.for_platform("windows", "amd64").is_none());
    }

    #[test]
    fn altered_text_a_missing_image_or_an_unlisted_entry_is_refused() {
        let (a, b) = (Digest::of_bytes(b"amd"), Digest::of_bytes(b"arm"));
        let mut i = index(&[(&a, "linux/amd64"), (&b, "linux/arm64")]);
        let e = i.check(&[&a]).unwrap_err();
        assert!(e.contains("no image of the bundle"), "{e}");
        i.manifests.pop();
        let e = i.check(&[&a, &b]).unwrap_err();
        assert!(e.contains("does not travel"), "{e}");
        i.text.push(' ');
        let e = i.check(&[&a, &b]).unwrap_err();
        assert!(e.contains("hashes to"), "{e}");
    }

    #[test]
    fn an_extra_manifest_travels_by_its_digest() {
        let a = Digest::of_bytes(b"amd");
        let att = SourceManifest::new(OCI_MANIFEST, b"{\"att\":1}").unwrap();
        let mut i = index(&[(&a, "linux/amd64"), (&att.digest, "unknown/unknown")]);
        i.manifests.pop();
        assert!(i.check(&[&a]).is_err());
        i.extra.push(Attached {
            tag: att.digest.to_string(),
            manifest: att,
            blobs: Vec::new(),
        });
        i.check(&[&a]).unwrap();
    }

    #[test]
    fn a_remade_index_keeps_only_the_chosen_entries() {
        let (a, b) = (Digest::of_bytes(b"amd"), Digest::of_bytes(b"arm"));
        let i = index(&[(&a, "linux/amd64"), (&b, "linux/arm64")]);
        let text = remake(&i.text, std::slice::from_ref(&b)).unwrap();
        assert_eq!(listed(std::str::from_utf8(&text).unwrap()).unwrap(), [b]);
    }
}
