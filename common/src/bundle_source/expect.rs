//! What the signed manifest says a bundle holds, indexed for the reader: each image's config by
//! its ID, each carried blob by the digest of its tar entry (the layer blob, or the delta blob of
//! a delta layer not yet rebuilt), and the tags each image may carry. Built, and its own
//! consistency checked (tags are valid references and name one image each; an uncompressed
//! blob is named by its diffID), before a single byte of the bundle is read.

use super::BundleSourceError;
use crate::codec::Compression;
use crate::digest::Digest;
use crate::image::{self, Blob};
use crate::manifest::{BundleManifest, Image, Layer};
use std::collections::BTreeMap;

/// How delta layers appear in the tar being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeltaForm {
    /// As the bundle carries them: `blobs/sha256/<delta digest>` (`verify --offline`).
    Encoded,
    /// Rebuilt into the layer they stand for: `blobs/sha256/<diffID>` (after `rebuild`).
    Rebuilt,
}

/// A carried blob the tar must hold exactly once.
#[derive(Clone, Debug)]
pub struct ExpectedBlob {
    /// The entry's size, when the manifest states it.
    pub size: Option<u64>,
    /// The layer's diffID when the entry must decompress (gzip, zstd) to it; `None` when the
    /// entry's own digest is the whole check (uncompressed layers, encoded deltas).
    pub compressed_diff: Option<(Compression, Digest)>,
    /// For messages: `image X layer N`.
    pub what: String,
}

/// The signed manifest, indexed.
pub struct Expected<'a> {
    pub manifest: &'a BundleManifest,
    /// Image ID → the images with that config (normally one).
    pub configs: BTreeMap<Digest, Vec<&'a Image>>,
    /// Entry digest → the carried blob it must be.
    pub blobs: BTreeMap<Digest, ExpectedBlob>,
}

impl<'a> Expected<'a> {
    pub fn new(manifest: &'a BundleManifest, form: DeltaForm) -> Result<Self, BundleSourceError> {
        check_tags(manifest)?;
        let mut configs: BTreeMap<Digest, Vec<&Image>> = BTreeMap::new();
        let mut blobs = BTreeMap::new();
        for img in &manifest.images {
            configs.entry(img.id.clone()).or_default().push(img);
            for (i, l) in img.layers.iter().enumerate().filter(|(_, l)| l.carried) {
                let (digest, blob) = expected_blob(img, i, l, form)?;
                blobs.entry(digest).or_insert(blob);
            }
        }
        Ok(Expected {
            manifest,
            configs,
            blobs,
        })
    }

    /// The blob digest of every layer position of image `id` (what its OCI manifest lists).
    pub fn layer_digests(&self, id: &Digest) -> Option<Vec<Digest>> {
        let img = self.configs.get(id)?.first()?;
        Some(img.layers.iter().map(|l| blob_of(l).digest).collect())
    }

    /// Whether `tag` is signed for image `id`.
    pub fn tagged(&self, id: &Digest, tag: &str) -> bool {
        self.configs
            .get(id)
            .is_some_and(|imgs| imgs.iter().any(|i| i.tags.iter().any(|t| t == tag)))
    }

    /// The images in the model the bundle writer writes from, with the configs read.
    pub fn model(&self, configs: &BTreeMap<Digest, Vec<u8>>) -> Vec<image::Image> {
        self.manifest
            .images
            .iter()
            .map(|img| image::Image {
                id: img.id.clone(),
                config: configs.get(&img.id).cloned(),
                tags: img.tags.clone(),
                layers: img
                    .layers
                    .iter()
                    .map(|l| image::Layer {
                        diff_id: l.diff_id.clone(),
                        chain_id: l.chain_id.clone(),
                        blob: blob_of(l),
                    })
                    .collect(),
                aliases: Vec::new(),
                source_manifest: None,
                attached: Vec::new(),
            })
            .collect()
    }
}

/// A layer's blob as the manifest states it; manifests of earlier versions stated none, and
/// their layers were uncompressed, named by diffID.
fn blob_of(l: &Layer) -> Blob {
    l.blob
        .clone()
        .unwrap_or_else(|| Blob::uncompressed(&l.diff_id, l.size))
}

/// The tar entry digest and expectations of carried layer `i` of `img`.
fn expected_blob(
    img: &Image,
    i: usize,
    l: &Layer,
    form: DeltaForm,
) -> Result<(Digest, ExpectedBlob), BundleSourceError> {
    let what = format!("image {} layer {i} (diffID {})", img.id, l.diff_id);
    if let (Some(d), DeltaForm::Encoded) = (&l.delta, form) {
        let blob = ExpectedBlob {
            size: Some(d.size),
            compressed_diff: None,
            what: format!("{what} (delta)"),
        };
        return Ok((d.digest.clone(), blob));
    }
    let b = blob_of(l);
    let size = match &l.delta {
        Some(d) => Some(d.target_size),
        None => b.size,
    };
    let compressed_diff = match b.compression {
        Compression::None if b.digest != l.diff_id => {
            return Err(BundleSourceError::BadManifest(format!(
                "{what}: an uncompressed blob {} is not named by its diffID {}",
                b.digest, l.diff_id
            )))
        }
        Compression::None => None,
        c => Some((c, l.diff_id.clone())),
    };
    let blob = ExpectedBlob {
        size,
        compressed_diff,
        what,
    };
    Ok((b.digest, blob))
}

/// Every tag is a valid image reference by tag, and names one image only.
fn check_tags(m: &BundleManifest) -> Result<(), BundleSourceError> {
    let mut owner: BTreeMap<&str, &Digest> = BTreeMap::new();
    for img in &m.images {
        for t in &img.tags {
            let valid = crate::reference::ImageRef::parse(t)
                .is_ok_and(|r| r.digest.is_none() && r.tag.is_some());
            if !valid {
                return Err(BundleSourceError::BadManifest(format!(
                    "image {}: {:?} is not a valid image tag",
                    img.id, t
                )));
            }
            if let Some(other) = owner.insert(t, &img.id) {
                if other != &img.id {
                    return Err(BundleSourceError::BadManifest(format!(
                        "tag {t} names two images, {other} and {}",
                        img.id
                    )));
                }
            }
        }
    }
    Ok(())
}
