//! The bundle tar's own metadata checked against the signed manifest. None of it reaches a
//! destination (the reader writes its own from the signed manifest), but a bundle whose metadata
//! names an image, a tag or a manifest the signed manifest does not is tampered with, and is
//! refused: `manifest.json` (`Config` a listed image, `RepoTags` signed for it), `repositories`
//! (each `repo:tag` signed for that image), the OCI manifests under `blobs/` (config and layers
//! exactly those of a listed image) and `index.json` (each entry one of those manifests, its
//! image-name annotation a signed tag of that image).

use super::expect::Expected;
use super::BundleSourceError;
use crate::digest::Digest;
use crate::reference::qualified;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

fn contradicts(entry: &str, what: String) -> BundleSourceError {
    BundleSourceError::Contradicts {
        entry: entry.to_string(),
        what,
    }
}

fn parse<'de, T: Deserialize<'de>>(entry: &str, bytes: &'de [u8]) -> Result<T, BundleSourceError> {
    serde_json::from_slice(bytes).map_err(|e| contradicts(entry, format!("not valid JSON: {e}")))
}

/// The image ID of a `Config` path, `blobs/sha256/<hex>`.
fn config_id(path: &str) -> Option<Digest> {
    Digest::from_hex(path.strip_prefix("blobs/sha256/")?).ok()
}

#[derive(Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

/// `manifest.json`: every image it names is listed, with only tags signed for it.
pub fn check_manifest_json(bytes: &[u8], exp: &Expected) -> Result<(), BundleSourceError> {
    let entry = "manifest.json";
    let entries: Vec<ManifestEntry> = parse(entry, bytes)?;
    for e in entries {
        let id = config_id(&e.config)
            .filter(|id| exp.configs.contains_key(id))
            .ok_or_else(|| {
                contradicts(
                    entry,
                    format!(
                        "it names the config {}, an image the signed manifest does not list",
                        e.config
                    ),
                )
            })?;
        for tag in e.repo_tags.unwrap_or_default() {
            if !exp.tagged(&id, &tag) {
                return Err(contradicts(
                    entry,
                    format!("it tags image {id} as {tag:?}, which the signed manifest does not"),
                ));
            }
        }
    }
    Ok(())
}

/// `repositories`: `{repo: {tag: image hex}}`, each pair signed for that image.
pub fn check_repositories(bytes: &[u8], exp: &Expected) -> Result<(), BundleSourceError> {
    let entry = "repositories";
    let repos: BTreeMap<String, BTreeMap<String, String>> = parse(entry, bytes)?;
    for (repo, tags) in repos {
        for (tag, hex) in tags {
            let name = format!("{repo}:{tag}");
            let ok = Digest::from_hex(&hex).is_ok_and(|id| exp.tagged(&id, &name));
            if !ok {
                return Err(contradicts(
                    entry,
                    format!("it tags {hex} as {name:?}, which the signed manifest does not"),
                ));
            }
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

#[derive(Deserialize)]
struct OciManifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// An OCI manifest blob: its config is a listed image and its layers are that image's blobs, in
/// order. Returns the image ID.
pub fn check_oci_manifest(
    entry: &str,
    bytes: &[u8],
    exp: &Expected,
) -> Result<Digest, BundleSourceError> {
    let unlisted = |why: String| BundleSourceError::Unlisted {
        entry: entry.to_string(),
        why,
    };
    let m: OciManifest = serde_json::from_slice(bytes)
        .map_err(|_| unlisted("neither a listed config or layer nor an image manifest".into()))?;
    let id = Digest::parse(&m.config.digest)
        .ok()
        .filter(|id| exp.configs.contains_key(id))
        .ok_or_else(|| {
            unlisted(format!(
                "an image manifest of the unlisted config {}",
                m.config.digest
            ))
        })?;
    let layers: Vec<&str> = m.layers.iter().map(|l| l.digest.as_str()).collect();
    let want = exp.layer_digests(&id).unwrap_or_default();
    if layers != want.iter().map(Digest::as_str).collect::<Vec<_>>() {
        return Err(unlisted(format!(
            "an image manifest of {id} whose layers are not the ones the signed manifest lists"
        )));
    }
    Ok(id)
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<IndexEntry>,
}

/// `index.json`: each entry one of the checked OCI manifests (`manifests`: digest → image ID),
/// its image name a signed tag of that image.
pub fn check_index(
    bytes: &[u8],
    exp: &Expected,
    manifests: &BTreeMap<Digest, Digest>,
) -> Result<(), BundleSourceError> {
    let entry = "index.json";
    let index: Index = parse(entry, bytes)?;
    for m in index.manifests {
        let id = Digest::parse(&m.digest)
            .ok()
            .and_then(|d| manifests.get(&d))
            .ok_or_else(|| {
                contradicts(
                    entry,
                    format!(
                        "it names {}, not an image manifest checked before it",
                        m.digest
                    ),
                )
            })?;
        if let Some(name) = m.annotations.get("io.containerd.image.name") {
            let signed = exp
                .configs
                .get(id)
                .into_iter()
                .flatten()
                .flat_map(|i| &i.tags)
                .any(|t| qualified(t) == *name);
            if !signed {
                return Err(contradicts(
                    entry,
                    format!("it names image {id} {name:?}, which the signed manifest does not"),
                ));
            }
        }
    }
    Ok(())
}
