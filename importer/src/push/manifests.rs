//! The manifests `push` writes: one OCI image manifest per image, whose config is the bundle's
//! config (pushed byte for byte, so the image ID is unchanged), whose carried layers are the
//! blobs pushed (gzip made on the way from an uncompressed layer, `…layer.v1.tar+gzip`; else the
//! bundle's blob as stored: uncompressed `…layer.v1.tar` named by the diffID, or gzip/zstd by
//! their digest) and whose other layers are the blob descriptors of the registry's own base
//! image (Docker layer media types given their OCI names). Each is put under every tag and read
//! back to confirm its digest.

use super::base::BaseIndex;
use super::target::Target;
use crate::registry_connect::registry_err;
use anyhow::{anyhow, Result};
use partial_common::codec::Compression;
use partial_common::manifest::{Image, Layer};
use partial_common::registry::manifest::{
    DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use partial_common::registry::{Descriptor, ImageManifest, RawManifest, Registry};
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
    use partial_common::registry::manifest::DOCKER_LAYER_GZIP;

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
}
