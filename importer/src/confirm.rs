//! The confirmation after a load: every image of the bundle is on the daemon, by its identity
//! and under each of its names. What a store calls an image differs, and this module is where
//! that is known:
//! - Docker's graphdriver store (20.10, and ≥ 25 without the containerd snapshotter) and podman
//!   name an image by its config digest, the bundle's image ID.
//! - Docker's containerd image store (`"containerd-snapshotter": true`, the default of fresh
//!   installs of current Docker) names it by the digest of the manifest it was loaded with, and
//!   its API (1.45, Docker 26) shows no config digest at all. That manifest is the OCI manifest
//!   the upload wrote for the image (`bundle_writer::oci_manifest`, noted in [`Written`] when
//!   the daemon destination committed, or as the rehydrated archive was written); it is
//!   content-addressed and names the image's config, so
//!   finding that digest under a name confirms the same config arrived.
//!
//! Either identity is accepted on any daemon: a config digest cannot be a manifest digest.
//! Layers (`RootFS`) are not compared: both identities already fix them.

use crate::errors::daemon_err;
use anyhow::{anyhow, Result};
use partial_common::daemon::{Daemon, ImageMeta};
use partial_common::manifest::Image;
use partial_common::Digest;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The OCI manifests the upload wrote: image ID → manifest digest, filled once the archive was
/// written whole (the daemon destination's commit, the end of a checked stream). Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Written(Arc<Mutex<BTreeMap<Digest, Digest>>>);

impl Written {
    /// Notes the manifests written (the archive's end).
    pub fn record(&self, manifests: BTreeMap<Digest, Digest>) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.extend(manifests);
    }

    /// The manifest written for image `id`, when one was.
    pub fn manifest_of(&self, id: &Digest) -> Option<Digest> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(id).cloned()
    }
}

/// Whether `found` is image `img` as the daemon's store names it (see the module doc).
fn is_image(found: &ImageMeta, img: &Image, written: &Written) -> bool {
    found.id == img.id || written.manifest_of(&img.id).as_ref() == Some(&found.id)
}

/// Every image of the bundle exists (by config digest, or on the containerd store by the
/// manifest written for it), and each of its tags points at it.
pub async fn confirm(daemon: &Daemon, images: &[Image], written: &Written) -> Result<()> {
    for img in images {
        if img.tags.is_empty() {
            confirm_by_id(daemon, img, written).await?;
        }
        for tag in &img.tags {
            match daemon.inspect(tag).await.map_err(daemon_err)? {
                Some(m) if is_image(&m, img, written) => {}
                Some(m) => {
                    return Err(anyhow!(
                        "after the load, tag {tag} points at {} instead of {}{}",
                        m.id,
                        img.id,
                        manifest_note(img, written)
                    ))
                }
                None => return Err(anyhow!("after the load, tag {tag} is missing")),
            }
        }
    }
    Ok(())
}

/// An untagged image: by its config digest, else by the manifest written for it.
async fn confirm_by_id(daemon: &Daemon, img: &Image, written: &Written) -> Result<()> {
    let mut ids = vec![img.id.clone()];
    ids.extend(written.manifest_of(&img.id));
    for id in &ids {
        if let Some(m) = daemon.inspect(id.as_str()).await.map_err(daemon_err)? {
            if is_image(&m, img, written) {
                return Ok(());
            }
        }
    }
    Err(anyhow!(
        "after the load, image {}{} is not on the daemon at {}",
        img.id,
        manifest_note(img, written),
        daemon.host
    ))
}

/// ` (manifest sha256:…)` when a manifest was written for `img`, for messages.
fn manifest_note(img: &Image, written: &Written) -> String {
    written
        .manifest_of(&img.id)
        .map(|m| format!(" (manifest {m})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &Digest) -> Image {
        Image {
            id: id.clone(),
            tags: vec!["app:1".into()],
            layers: vec![],
            source_manifest: None,
            attached: vec![],
        }
    }

    #[test]
    fn an_image_is_known_by_its_config_or_by_the_manifest_written_for_it() {
        let config = Digest::of_bytes(b"config");
        let manifest = Digest::of_bytes(b"manifest");
        let other = Digest::of_bytes(b"other");
        let img = image(&config);
        let written = Written::default();
        let found = |id: &Digest| ImageMeta::new(id.clone(), vec![], vec![]);
        assert!(is_image(&found(&config), &img, &written));
        assert!(!is_image(&found(&manifest), &img, &written));
        written.record(BTreeMap::from([(config.clone(), manifest.clone())]));
        assert!(is_image(&found(&manifest), &img, &written));
        assert!(!is_image(&found(&other), &img, &written));
        assert_eq!(
            manifest_note(&img, &written),
            format!(" (manifest {manifest})")
        );
    }
}
