//! What a containerd namespace holds: every image record, its target resolved to image
//! manifests (an index: those of its manifests the content store holds), each manifest's config
//! read for its diffIDs. The result serves the base check and the inventory (as
//! [`ImageMeta`], named by config digest: the image ID), and gives the layer descriptors a new
//! manifest needs for the base layers a bundle left out.

use super::content;
use super::grpc::{CallError, Client};
use super::proto::*;
use partial_common::daemon::ImageMeta;
use partial_common::image::{MEDIA_INDEX, MEDIA_MANIFEST};
use partial_common::reference::familiar;
use partial_common::Digest;
use serde::Deserialize;
use std::collections::BTreeMap;

const IMAGES: &str = "/containerd.services.images.v1.Images";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The biggest manifest or config read.
const MAX_SMALL: usize = 16 << 20;

/// A layer blob as a manifest in the namespace names it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LayerDesc {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// One image of the namespace: its meta (ID, names, diffIDs, chains) and its layer blobs.
#[derive(Clone, Debug)]
pub struct Held {
    pub meta: ImageMeta,
    /// The config blob (its digest is the image ID).
    pub config: LayerDesc,
    pub layers: Vec<LayerDesc>,
}

#[derive(Deserialize)]
struct ManifestDoc {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<LayerDesc>,
    #[serde(default)]
    layers: Vec<LayerDesc>,
}

#[derive(Deserialize)]
struct IndexEntry {
    digest: Digest,
}

#[derive(Deserialize)]
struct ConfigDoc {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<Digest>,
}

/// Every image of the namespace (one per config; its names merged), those whose content is
/// incomplete left out.
pub async fn list(c: &Client) -> Result<Vec<Held>, CallError> {
    let req = ListImagesRequest { filters: vec![] };
    let resp: ListImagesResponse = c.unary(&format!("{IMAGES}/List"), &req).await?;
    let mut by_id: BTreeMap<Digest, Held> = BTreeMap::new();
    for image in resp.images {
        let Some(target) = image.target else { continue };
        let Ok(d) = Digest::parse(&target.digest) else {
            continue;
        };
        for held in resolve(c, &d, &target.media_type).await? {
            let entry = by_id.entry(held.meta.id.clone()).or_insert(held);
            if let Some(t) = familiar(&image.name) {
                if !entry.meta.tags.contains(&t) {
                    entry.meta.tags.push(t);
                }
            }
        }
    }
    Ok(by_id.into_values().collect())
}

/// The images an image record's target stands for (none when its content is missing).
async fn resolve(c: &Client, d: &Digest, media_type: &str) -> Result<Vec<Held>, CallError> {
    let Some(doc) = read_doc(c, d).await? else {
        return Ok(vec![]);
    };
    let is_index = doc.manifests.is_some()
        || [MEDIA_INDEX, DOCKER_LIST].contains(&media_type)
        || doc.media_type.as_deref() == Some(MEDIA_INDEX);
    if !is_index {
        return Ok(of_manifest(c, doc).await?.into_iter().collect());
    }
    let mut out = Vec::new();
    for entry in doc.manifests.unwrap_or_default() {
        if let Some(m) = read_doc(c, &entry.digest).await? {
            out.extend(of_manifest(c, m).await?);
        }
    }
    Ok(out)
}

/// A manifest or index from the content store; `None` when it is missing or not JSON of either.
async fn read_doc(c: &Client, d: &Digest) -> Result<Option<ManifestDoc>, CallError> {
    if !content::exists(c, d).await? {
        return Ok(None);
    }
    let bytes = content::read_small(c, d, MAX_SMALL).await?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// The image of one manifest, when its config and every layer blob are in the content store.
async fn of_manifest(c: &Client, m: ManifestDoc) -> Result<Option<Held>, CallError> {
    if let Some(t) = &m.media_type {
        if ![MEDIA_MANIFEST, DOCKER_MANIFEST].contains(&t.as_str()) {
            return Ok(None);
        }
    }
    let Some(config) = m.config else {
        return Ok(None);
    };
    if !content::exists(c, &config.digest).await? {
        return Ok(None);
    }
    let bytes = content::read_small(c, &config.digest, MAX_SMALL).await?;
    let Ok(cfg) = serde_json::from_slice::<ConfigDoc>(&bytes) else {
        return Ok(None);
    };
    if cfg.rootfs.diff_ids.len() != m.layers.len() {
        return Ok(None);
    }
    for l in &m.layers {
        if !content::exists(c, &l.digest).await? {
            return Ok(None);
        }
    }
    let mut meta = ImageMeta::new(config.digest.clone(), vec![], cfg.rootfs.diff_ids);
    meta.blobs = m.layers.iter().map(|l| l.digest.clone()).collect();
    Ok(Some(Held {
        meta,
        config,
        layers: m.layers,
    }))
}

/// The layer blob that holds chain `chain` on top of its parent, from any held image.
pub fn layer_for_chain<'a>(held: &'a [Held], chain: &Digest) -> Option<&'a LayerDesc> {
    held.iter().find_map(|h| {
        let i = h.meta.chain_ids.iter().position(|c| c == chain)?;
        h.layers.get(i)
    })
}

/// The image record `name`, when there is one.
pub async fn get(c: &Client, name: &str) -> Result<Option<Image>, CallError> {
    let req = GetImageRequest {
        name: name.to_string(),
    };
    match c
        .unary::<_, ImageResponse>(&format!("{IMAGES}/Get"), &req)
        .await
    {
        Ok(r) => Ok(r.image),
        Err(e) if e.code() == Some(super::grpc::NOT_FOUND) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the image record, or points the existing one of that name at `target`, keeping its
/// labels (the CRI plugin's `io.cri-containerd.image=managed`, pins).
pub async fn put(c: &Client, name: &str, target: Descriptor) -> Result<(), CallError> {
    let record = |labels| ImageRequest {
        image: Some(Image {
            name: name.to_string(),
            labels,
            target: Some(target.clone()),
        }),
    };
    match c
        .unary::<_, ImageResponse>(&format!("{IMAGES}/Create"), &record(Default::default()))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(super::grpc::ALREADY_EXISTS) => {
            let labels = get(c, name).await?.map(|i| i.labels).unwrap_or_default();
            c.unary::<_, ImageResponse>(&format!("{IMAGES}/Update"), &record(labels))
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}
