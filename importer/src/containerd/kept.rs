//! An image keeps its manifest in containerd when it can. A bundle exported from a registry (or
//! a layout that holds the original manifests) carries each image's source manifest byte for
//! byte; when every blob that manifest names is in the content store (carried by this load, or
//! held by the namespace under that very digest), the load writes those bytes, so the image's
//! digest in the namespace is its digest at the source: what a pod pinned by digest
//! (`image: app@sha256:…`) asks the kubelet's CRI for. Otherwise (no source manifest, or a base
//! layer the namespace holds under another compression) the load makes a manifest of its own,
//! and says so when a source digest is lost.

use super::content;
use super::dest::Written;
use super::grpc::{CallError, Client};
use super::proto::Descriptor;
use super::unpack::Step;
use partial_common::manifest::Image;
use partial_common::Digest;
use serde::Deserialize;

/// The source manifest to write as it is, and the layer blobs it names, bottom first.
pub struct Kept {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
struct Doc {
    config: ConfigDesc,
    layers: Vec<Desc>,
}

#[derive(Deserialize)]
struct ConfigDesc {
    digest: Digest,
}

#[derive(Deserialize)]
struct Desc {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: Digest,
    size: u64,
}

/// Why an image's source manifest could not be kept.
pub enum NotKept {
    /// The bundle carries none (a daemon's images): nothing to say.
    NoSource,
    /// The source digest is lost; the text says why, for a warning.
    Lost(String),
}

/// The source manifest of `image` when every blob it names is in the content store; the blobs
/// held by the namespace (not written by this load) are held by `lease` ([`content::held`]) so
/// that the collector keeps them until the manifest refers to them.
pub async fn kept(
    c: &Client,
    lease: &str,
    image: &Image,
    written: &Written,
) -> Result<Result<Kept, NotKept>, CallError> {
    let Some(source) = &image.source_manifest else {
        return Ok(Err(NotKept::NoSource));
    };
    let lost = |why: String| Ok(Err(NotKept::Lost(why)));
    let doc: Doc = match serde_json::from_str(&source.text) {
        Ok(d) => d,
        Err(e) => {
            return lost(format!(
                "its source manifest is not an image manifest ({e})"
            ))
        }
    };
    if doc.config.digest != image.id || doc.layers.len() != image.layers.len() {
        return lost("its source manifest names another config or other layers".into());
    }
    let mut steps = Vec::with_capacity(doc.layers.len());
    for (d, l) in doc.layers.iter().zip(&image.layers) {
        if !written.sizes.contains_key(&d.digest) && !content::held(c, lease, &d.digest).await? {
            return lost(format!(
                "the namespace holds its layer {} under another blob than {}",
                l.diff_id, d.digest
            ));
        }
        steps.push(Step {
            blob: Descriptor {
                media_type: d.media_type.clone(),
                digest: d.digest.to_string(),
                size: d.size as i64,
            },
            diff_id: l.diff_id.clone(),
            chain_id: l.chain_id.clone(),
        });
    }
    let bytes = source.text.as_bytes().to_vec();
    let digest = Digest::of_bytes(&bytes);
    if digest != source.digest {
        return lost(format!(
            "its source manifest hashes to {digest}, not {}",
            source.digest
        ));
    }
    Ok(Ok(Kept {
        media_type: source.media_type.clone(),
        bytes,
        steps,
    }))
}
