//! The manifests `push` writes: one OCI image manifest per image, whose config is the bundle's
//! config (pushed byte for byte, so the image ID is unchanged), whose carried layers are the
//! blobs pushed (gzip made on the way from an uncompressed layer, `…layer.v1.tar+gzip`; else the
//! bundle's blob as stored: uncompressed `…layer.v1.tar` named by the diffID, or gzip/zstd by
//! their digest) and whose other layers are the blob descriptors of the registry's own base
//! image (Docker layer media types given their OCI names). An image that came from a registry
//! instead keeps its manifest ([`source_manifest`]): the signed manifest carries it byte for
//! byte, and when every blob it names is in the registry as stored (the carried blobs pushed as
//! they are, the base layers the very blobs of the registry's base image) it is pushed as it is,
//! so the image keeps its digest, and tags and digest references alike resolve. Each manifest is
//! put under every tag and read back to confirm its digest.

use super::base::BaseIndex;
use super::target::Target;
use crate::registry_connect::registry_err;
use anyhow::{anyhow, Result};
use partial_common::codec::Compression;
use partial_common::manifest::{Image, Layer};
use partial_common::registry::manifest::{
    DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use partial_common::registry::{Descriptor, ImageManifest, Manifest, RawManifest, Registry};
use partial_common::Digest;
use std::collections::HashMap;

/// The blob a carried layer is in the bundle (and in the registry).
pub fn carried_blob(layer: &Layer) -> (Digest, &'static str) {
    match &layer.blob {
        Some(b) => (
            b.digest.clone(),
            match b.compression {
                Compression::None => OCI_LAYER,
                Compression::Gzip => OCI_LAYER_GZIP,
                Compression::Zstd => OCI_LAYER_ZSTD,
            },
        ),
        None => (layer.diff_id.clone(), OCI_LAYER),
    }
}

/// Whether the bundle holds a carried layer uncompressed (its blob is then named by the diffID).
pub fn stored_uncompressed(layer: &Layer) -> bool {
    layer
        .blob
        .as_ref()
        .is_none_or(|b| b.compression == Compression::None)
}

/// The OCI name of a layer media type.
fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        "application/vnd.docker.image.rootfs.diff.tar" => OCI_LAYER,
        other => other,
    }
}

/// The manifest of `image`; `sizes` has every config and carried blob (from the bundle pass),
/// `gzipped` the digest and size of those pushed compressed, by their bundle digest.
pub fn build(
    image: &Image,
    sizes: &HashMap<Digest, u64>,
    gzipped: &HashMap<Digest, (Digest, u64)>,
    base: &BaseIndex,
) -> Result<RawManifest> {
    let size_of = |d: &Digest| {
        sizes
            .get(d)
            .copied()
            .ok_or_else(|| anyhow!("no size known for blob {d} of image {}", image.id))
    };
    let mut layers = Vec::with_capacity(image.layers.len());
    for layer in &image.layers {
        let desc = if layer.carried {
            let (digest, media_type) = carried_blob(layer);
            match gzipped.get(&digest) {
                Some((gz, size)) => Descriptor::new(OCI_LAYER_GZIP, gz.clone(), *size),
                None => Descriptor::new(media_type, digest.clone(), size_of(&digest)?),
            }
        } else {
            let found = base.chains.get(&layer.chain_id).ok_or_else(|| {
                anyhow!(
                    "chain {} of image {} was not found",
                    layer.chain_id,
                    image.id
                )
            })?;
            let d = &found.descriptor;
            Descriptor::new(oci_layer_type(&d.media_type), d.digest.clone(), d.size)
        };
        layers.push(desc);
    }
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        config: Descriptor::new(OCI_CONFIG, image.id.clone(), size_of(&image.id)?),
        layers,
        annotations: None,
    };
    let bytes = serde_json::to_vec(&manifest)?;
    Ok(RawManifest::new(OCI_MANIFEST, bytes.into()))
}

/// The source manifest of `image`, to push byte for byte, when it has one; `Err` says why it
/// cannot be kept: the first layer whose blob in the registry would not be the one it names
/// (`compressed`: the carried layers the push gzips on the way), or a manifest that does not
/// describe this image (its config, its number of layers).
pub fn source_manifest(
    image: &Image,
    base: &BaseIndex,
    compressed: &HashMap<Digest, Vec<String>>,
) -> Result<Option<RawManifest>, String> {
    let Some(src) = &image.source_manifest else {
        return Ok(None);
    };
    let raw = RawManifest::new(&src.media_type, src.text.clone().into_bytes().into());
    if raw.digest != src.digest {
        return Err(format!(
            "its source manifest hashes to {}, not the {} it is stated to be",
            raw.digest, src.digest
        ));
    }
    let m = match raw.parse()? {
        Manifest::Image(m) => m,
        Manifest::Index(_) => return Err("its source manifest is an index".to_string()),
    };
    if let Some(d) = std::iter::once(&m.config)
        .chain(&m.layers)
        .find(|d| !d.urls.is_empty())
    {
        return Err(format!(
            "its source manifest sends clients to other URLs for blob {} (foreign layers are \
             not kept)",
            d.digest
        ));
    }
    if m.config.digest != image.id {
        return Err(format!(
            "its source manifest names config {}, not the image's",
            m.config.digest
        ));
    }
    if m.layers.len() != image.layers.len() {
        return Err(format!(
            "its source manifest names {} layers, the image has {}",
            m.layers.len(),
            image.layers.len()
        ));
    }
    for (pos, (layer, desc)) in image.layers.iter().zip(&m.layers).enumerate() {
        let (have, place) = blob_at_destination(layer, base, compressed)
            .map_err(|why| format!("layer {pos}: {why}"))?;
        if desc.digest != have {
            return Err(format!(
                "layer {pos} is blob {} in the source, {have} {place}",
                desc.digest
            ));
        }
    }
    Ok(Some(raw))
}

/// The blob a layer position will be in the registry after the push, and where it comes from.
fn blob_at_destination(
    layer: &Layer,
    base: &BaseIndex,
    compressed: &HashMap<Digest, Vec<String>>,
) -> Result<(Digest, &'static str), String> {
    if layer.carried {
        let (d, _) = carried_blob(layer);
        if compressed.contains_key(&d) {
            return Err(
                "the bundle holds it uncompressed and the push would gzip it (--layer-compression \
                 none pushes it as it is)"
                    .to_string(),
            );
        }
        return Ok((d, "in the bundle"));
    }
    base.chains
        .get(&layer.chain_id)
        .map(|b| (b.descriptor.digest.clone(), "in the registry's base image"))
        .ok_or_else(|| format!("chain {} is not in the registry", layer.chain_id))
}

/// Puts `manifest` as `target` and reads it back: the registry must serve the same digest.
pub async fn put_and_confirm(
    registry: &Registry,
    target: &Target,
    manifest: &RawManifest,
) -> Result<()> {
    registry
        .put_manifest(&target.repository, &target.tag, manifest)
        .await
        .map_err(registry_err)?;
    let back = registry
        .get_manifest(&target.repository, &target.tag)
        .await
        .map_err(registry_err)?;
    if back.digest != manifest.digest {
        return Err(anyhow!(
            "after the push, {}/{}:{} is {} instead of {}",
            registry.name(),
            target.repository,
            target.tag,
            back.digest,
            manifest.digest
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::registry::manifest::{DOCKER_LAYER_GZIP, DOCKER_MANIFEST};

    #[test]
    fn a_manifest_references_carried_blobs_and_the_registrys_base_blobs() {
        let base_diff = Digest::of_bytes(b"base");
        let base_chain = partial_common::digest::chain_id(None, &base_diff);
        let top_diff = Digest::of_bytes(b"top");
        let top_chain = partial_common::digest::chain_id(Some(&base_chain), &top_diff);
        let id = Digest::of_bytes(b"config");
        let image = Image {
            id: id.clone(),
            tags: vec!["app:2".into()],
            layers: vec![
                Layer {
                    diff_id: base_diff,
                    chain_id: base_chain.clone(),
                    size: None,
                    carried: false,
                    blob: None,
                    delta: None,
                },
                Layer {
                    diff_id: top_diff.clone(),
                    chain_id: top_chain,
                    size: None,
                    carried: true,
                    blob: None,
                    delta: None,
                },
            ],
            source_manifest: None,
            attached: Vec::new(),
        };
        let gz = Digest::of_bytes(b"base.gz");
        let mut base = BaseIndex::default();
        base.chains.insert(
            base_chain,
            super::super::base::BaseLayer {
                repository: "app".into(),
                descriptor: Descriptor::new(DOCKER_LAYER_GZIP, gz.clone(), 7),
            },
        );
        let sizes = HashMap::from([(id.clone(), 6), (top_diff.clone(), 3)]);
        let none = HashMap::new();
        let raw = build(&image, &sizes, &none, &base).unwrap();
        let m: ImageManifest = serde_json::from_slice(&raw.bytes).unwrap();
        assert_eq!(m.config, Descriptor::new(OCI_CONFIG, id.clone(), 6));
        assert_eq!(m.layers[0], Descriptor::new(OCI_LAYER_GZIP, gz.clone(), 7));
        assert_eq!(m.layers[1], Descriptor::new(OCI_LAYER, top_diff.clone(), 3));
        assert_eq!(raw.digest, Digest::of_bytes(&raw.bytes));
        // Pushed compressed: the gzip blob, not the bundle's.
        let top_gz = Digest::of_bytes(b"top.gz");
        let gzipped = HashMap::from([(top_diff, (top_gz.clone(), 2))]);
        let raw = build(&image, &sizes, &gzipped, &base).unwrap();
        let m: ImageManifest = serde_json::from_slice(&raw.bytes).unwrap();
        assert_eq!(m.config, Descriptor::new(OCI_CONFIG, id, 6));
        assert_eq!(m.layers[0], Descriptor::new(OCI_LAYER_GZIP, gz, 7));
        assert_eq!(m.layers[1], Descriptor::new(OCI_LAYER_GZIP, top_gz, 2));
        // A carried blob of unknown size is an error, not a guess.
        assert!(build(&image, &HashMap::new(), &none, &base).is_err());
    }

    fn layer(diff: &[u8], parent: Option<&Digest>, carried: bool) -> Layer {
        let diff_id = Digest::of_bytes(diff);
        Layer {
            chain_id: partial_common::digest::chain_id(parent, &diff_id),
            diff_id,
            size: None,
            carried,
            blob: None,
            delta: None,
        }
    }

    /// `app:2` (base layer at the destination, top layer carried uncompressed) whose source
    /// manifest names `base_blob` and `top_blob`.
    fn sourced(base_blob: &Digest, top_blob: &Digest) -> (Image, BaseIndex) {
        let base = layer(b"base", None, false);
        let top = layer(b"top", Some(&base.chain_id), true);
        let id = Digest::of_bytes(b"config");
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.to_string()),
            config: Descriptor::new(
                "application/vnd.docker.container.image.v1+json",
                id.clone(),
                6,
            ),
            layers: vec![
                Descriptor::new(DOCKER_LAYER_GZIP, base_blob.clone(), 7),
                Descriptor::new(DOCKER_LAYER_GZIP, top_blob.clone(), 3),
            ],
            annotations: None,
        };
        let bytes = serde_json::to_vec_pretty(&m).unwrap();
        let mut index = BaseIndex::default();
        index.chains.insert(
            base.chain_id.clone(),
            super::super::base::BaseLayer {
                repository: "app".into(),
                descriptor: Descriptor::new(DOCKER_LAYER_GZIP, Digest::of_bytes(b"base.gz"), 7),
            },
        );
        let image = Image {
            id,
            tags: vec!["app:2".into()],
            layers: vec![base, top],
            source_manifest: partial_common::image::SourceManifest::new(DOCKER_MANIFEST, &bytes),
            attached: Vec::new(),
        };
        (image, index)
    }

    #[test]
    fn a_source_manifest_is_kept_byte_for_byte_only_when_every_blob_it_names_is_there() {
        let top_diff = Digest::of_bytes(b"top");
        let (image, index) = sourced(&Digest::of_bytes(b"base.gz"), &top_diff);
        let none = HashMap::new();
        let kept = source_manifest(&image, &index, &none).unwrap().unwrap();
        let src = image.source_manifest.clone().unwrap();
        assert_eq!(kept.digest, src.digest);
        assert_eq!(&kept.bytes[..], src.text.as_bytes());
        assert_eq!(kept.media_type, DOCKER_MANIFEST);

        // The registry's base image holds the base layer as another blob.
        let (image, index) = sourced(&Digest::of_bytes(b"base.zst"), &top_diff);
        let why = source_manifest(&image, &index, &none).unwrap_err();
        assert!(
            why.contains("layer 0") && why.contains("base image"),
            "{why}"
        );

        // The carried layer would be gzipped on the way.
        let (image, index) = sourced(&Digest::of_bytes(b"base.gz"), &top_diff);
        let gzip = HashMap::from([(top_diff.clone(), vec!["app".to_string()])]);
        let why = source_manifest(&image, &index, &gzip).unwrap_err();
        assert!(
            why.contains("layer 1") && why.contains("--layer-compression"),
            "{why}"
        );

        // Bytes that are not what the stated digest says.
        let (mut image, index) = sourced(&Digest::of_bytes(b"base.gz"), &top_diff);
        if let Some(s) = image.source_manifest.as_mut() {
            s.text.push(' ');
        }
        let why = source_manifest(&image, &index, &none).unwrap_err();
        assert!(why.contains("hashes to"), "{why}");

        // Foreign-layer URLs, which would send clients elsewhere.
        let (mut image, index) = sourced(&Digest::of_bytes(b"base.gz"), &top_diff);
        if let Some(src) = image.source_manifest.as_mut() {
            let mut m: ImageManifest = serde_json::from_str(&src.text).unwrap();
            m.layers[1].urls = vec!["http://elsewhere.invalid/blob".into()];
            let bytes = serde_json::to_vec(&m).unwrap();
            *src = partial_common::image::SourceManifest::new(DOCKER_MANIFEST, &bytes).unwrap();
        }
        let why = source_manifest(&image, &index, &none).unwrap_err();
        assert!(why.contains("other URLs"), "{why}");

        // A manifest of another image.
        let (mut image, index) = sourced(&Digest::of_bytes(b"base.gz"), &top_diff);
        image.id = Digest::of_bytes(b"other config");
        let why = source_manifest(&image, &index, &none).unwrap_err();
        assert!(why.contains("names config"), "{why}");
    }
}
