//! What a registry holds, image by image: for each tag of the repositories looked at, the image
//! manifest (for a multi-platform index, the manifest of every platform it lists: a bundle
//! carries them all), its config's diffIDs and their chain IDs. Used by the
//! base check of `push` (which chains the registry has, and the blob descriptors to reference)
//! and by `inventory --registry`.

use crate::registry_connect::registry_err;
use anyhow::Result;
use partial_common::daemon::ImageMeta;
use partial_common::registry::manifest::is_image_manifest;
use partial_common::registry::{ImageManifest, Manifest, Registry, RegistryError};
use partial_common::Digest;

/// One image of the registry.
#[derive(Debug, Clone)]
pub struct RegistryImage {
    pub repository: String,
    pub tag: String,
    pub manifest: ImageManifest,
    pub diff_ids: Vec<Digest>,
    pub chain_ids: Vec<Digest>,
}

impl RegistryImage {
    /// The image as an inventory entry (`REGISTRY/REPO:TAG`), with the blob of each layer (so
    /// that the connected side knows whether an image from a registry keeps its digest here).
    pub fn meta(&self, registry: &str) -> ImageMeta {
        let mut meta = ImageMeta::new(
            self.manifest.config.digest.clone(),
            vec![format!("{registry}/{}:{}", self.repository, self.tag)],
            self.diff_ids.clone(),
        );
        meta.blobs = self
            .manifest
            .layers
            .iter()
            .map(|l| l.digest.clone())
            .collect();
        meta
    }
}

/// The diffIDs of an image config.
fn diff_ids(config: &[u8]) -> Result<Vec<Digest>, String> {
    #[derive(serde::Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<Digest>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    serde_json::from_slice::<Config>(config)
        .map(|c| c.rootfs.diff_ids)
        .map_err(|e| e.to_string())
}

/// Every image tagged in `repository`; a repository that does not exist holds none.
pub async fn images_of(registry: &Registry, repository: &str) -> Result<Vec<RegistryImage>> {
    let tags = match registry.list_tags(repository).await {
        Ok(t) => t,
        Err(RegistryError::NoRepository { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(registry_err(e)),
    };
    let mut out = Vec::new();
    for tag in tags {
        let manifests = match manifests_of(registry, repository, &tag).await {
            Ok(m) => m,
            // A manifest type this tool does not read: not a base.
            Err(RegistryError::UnsupportedManifest { .. }) => continue,
            Err(e) => return Err(registry_err(e)),
        };
        for manifest in manifests {
            if let Some(image) = image_of(registry, repository, &tag, manifest).await? {
                out.push(image);
            }
        }
    }
    Ok(out)
}

/// The image manifests `repository:tag` names: itself, or each platform image of an index.
async fn manifests_of(
    registry: &Registry,
    repository: &str,
    tag: &str,
) -> Result<Vec<ImageManifest>, RegistryError> {
    let raw = registry.get_manifest(repository, tag).await?;
    let index = match registry.parse(&raw, repository, tag)? {
        Manifest::Image(m) => return Ok(vec![m]),
        Manifest::Index(index) => index,
    };
    let mut out = Vec::new();
    let entries = index.manifests.iter().filter(|d| {
        is_image_manifest(&d.media_type) && d.platform.as_ref().is_some_and(|p| p.os != "unknown")
    });
    for d in entries {
        let raw = registry.get_manifest(repository, d.digest.as_str()).await?;
        if let Manifest::Image(m) = registry.parse(&raw, repository, d.digest.as_str())? {
            out.push(m);
        }
    }
    Ok(out)
}

/// The image of `manifest` (tagged `tag`), with its config's diffIDs; `None` when it is not a
/// layered image this tool can pair with blobs (a signature, an SBOM).
async fn image_of(
    registry: &Registry,
    repository: &str,
    tag: &str,
    manifest: ImageManifest,
) -> Result<Option<RegistryImage>> {
    let config = registry
        .get_blob_bytes(repository, &manifest.config.digest)
        .await
        .map_err(registry_err)?;
    // A config without `rootfs` is an artefact's (a cosign signature's `{}`), not an image's.
    let Ok(diff_ids) = diff_ids(&config) else {
        return Ok(None);
    };
    if diff_ids.len() != manifest.layers.len() {
        return Ok(None);
    }
    Ok(Some(RegistryImage {
        repository: repository.to_string(),
        tag: tag.to_string(),
        manifest,
        chain_ids: partial_common::digest::chain_ids(&diff_ids),
        diff_ids,
    }))
}

/// The repositories of the catalog, or `None` when the registry does not allow listing them.
pub async fn catalog(registry: &Registry) -> Result<Option<Vec<String>>> {
    match registry.catalog().await {
        Ok(repos) => Ok(Some(repos)),
        Err(RegistryError::CatalogNotAllowed { .. }) => Ok(None),
        Err(e) => Err(registry_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ids_come_from_the_config_rootfs() {
        let d = Digest::of_bytes(b"x");
        let cfg = format!(
            r#"{{"architecture":"amd64","rootfs":{{"type":"layers","diff_ids":["{d}"]}}}}"#
        );
        assert_eq!(diff_ids(cfg.as_bytes()).unwrap(), vec![d]);
        assert!(diff_ids(b"{}").is_err());
    }
}
