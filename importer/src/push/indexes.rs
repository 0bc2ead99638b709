//! The multi-platform indexes of a bundle (`indexes` in the signed manifest, checked when it was
//! read): each platform image goes by its digest into the index's repository
//! ([`platform_targets`]); once they are all in place, [`push`] writes each index's other
//! manifests (build attestations) by digest and then the index itself, byte for byte, under its
//! tags (by digest when it has none), read back: the destination serves the source's digest;
//! then the signatures, attestations and SBOMs attached to the index's digest.
//! An index one of whose images got a re-made manifest (`--allow-new-digest`) would name a
//! manifest the registry does not have: it is left out, said so.

use super::attached::push_list;
use super::manifests::put_and_confirm;
use super::target::{repository_path, target_of, Target};
use crate::errors::verify_failed;
use crate::registry_connect::registry_err;
use anyhow::{anyhow, Result};
use partial_common::manifest::{BundleManifest, Image};
use partial_common::registry::{Destination, RawManifest, Registry};
use partial_common::source_index::SourceIndex;
use partial_common::text::escape;

/// An index pushed, for the report.
#[derive(serde::Serialize)]
pub struct PushedIndex {
    pub digest: String,
    /// The source's digest, when the index was re-made on export (`--platform`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remade_from: Option<String>,
    pub references: Vec<String>,
    /// The tags of the signatures, attestations and SBOMs of the index pushed with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<String>,
}

/// The destination repository of `index`.
fn repository(index: &SourceIndex, dest: &Destination) -> Result<String> {
    let (path, _) = repository_path(&index.repository).ok_or_else(|| {
        anyhow!(
            "the index {} names the repository {:?}, which is not an image name",
            index.digest,
            escape(&index.repository)
        )
    })?;
    Ok(dest.repository_for(&path))
}

/// Where `img` goes as a platform image of the bundle's indexes: by its source digest into each
/// listing index's repository. None when no index lists it.
pub fn platform_targets(
    manifest: &BundleManifest,
    img: &Image,
    dest: &Destination,
) -> Result<Vec<Target>> {
    let Some(source) = &img.source_manifest else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Target> = Vec::new();
    for index in &manifest.indexes {
        if !index.manifests.iter().any(|m| m.digest == source.digest) {
            continue;
        }
        let t = Target {
            repository: repository(index, dest)?,
            tag: source.digest.to_string(),
        };
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Where `index` goes: under each of its tags, or by its digest when it has none.
fn index_targets(index: &SourceIndex, dest: &Destination) -> Result<Vec<Target>> {
    if index.tags.is_empty() {
        return Ok(vec![Target {
            repository: repository(index, dest)?,
            tag: index.digest.to_string(),
        }]);
    }
    index.tags.iter().map(|t| target_of(dest, t)).collect()
}

/// Pushes every index of the bundle whose images all kept their digest (`kept`, parallel to
/// the manifest's images); see the module documentation.
pub async fn push(
    registry: &Registry,
    manifest: &BundleManifest,
    dest: &Destination,
    kept: &[bool],
) -> Result<Vec<PushedIndex>> {
    let mut out = Vec::new();
    for index in &manifest.indexes {
        let changed: Vec<String> = index
            .manifests
            .iter()
            .filter(|m| {
                !manifest.images.iter().zip(kept).any(|(i, k)| {
                    *k && i.source_manifest.as_ref().map(|s| &s.digest) == Some(&m.digest)
                })
            })
            .map(|m| m.platform.clone())
            .collect();
        if !changed.is_empty() {
            eprintln!(
                "warning: the index {} ({}) is not pushed: the image(s) of {} got a new \
                 manifest digest, which it does not list",
                index.digest,
                escape(&index.tags.join(", ")),
                changed.join(", ")
            );
            continue;
        }
        out.push(push_one(registry, index, dest).await?);
    }
    Ok(out)
}

/// The extra manifests of `index` by digest, then the index under each of its targets.
async fn push_one(
    registry: &Registry,
    index: &SourceIndex,
    dest: &Destination,
) -> Result<PushedIndex> {
    let repo = repository(index, dest)?;
    for a in &index.extra {
        for blob in &a.blobs {
            let bytes = blob.bytes().map_err(verify_failed)?;
            let size = bytes.len() as u64;
            registry
                .ensure_blob(&repo, &blob.digest, Some(size), &[], || async move {
                    Ok(std::io::Cursor::new(bytes))
                })
                .await
                .map_err(registry_err)?;
        }
        let raw = RawManifest::new(
            &a.manifest.media_type,
            a.manifest.text.clone().into_bytes().into(),
        );
        let target = Target {
            repository: repo.clone(),
            tag: raw.digest.to_string(),
        };
        put_and_confirm(registry, &target, &raw).await?;
    }
    let raw = RawManifest::new(&index.media_type, index.text.clone().into_bytes().into());
    let mut references = Vec::new();
    for t in index_targets(index, dest)? {
        put_and_confirm(registry, &t, &raw).await?;
        references.push(t.reference(registry.name()));
    }
    let attached = push_list(registry, Some(&index.digest), &index.attached, &[&repo]).await?;
    Ok(PushedIndex {
        digest: raw.digest.to_string(),
        remade_from: index.remade_from.as_ref().map(|d| d.to_string()),
        references,
        attached,
    })
}
