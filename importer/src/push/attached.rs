//! The signatures, attestations and SBOMs that travel with an image (`attached` in the signed
//! manifest: manifests that cosign's tag scheme attaches to the image's source digest, with
//! their blobs). [`check`] runs before anything is uploaded: each must be attached by its tag
//! to its own image's source digest (so no signed manifest can use it to write another tag),
//! hash to its digest and name only blobs that travel with it. [`push`] writes them next to the
//! image once its manifest is in place, and only when the image kept its digest: they name that
//! digest, so next to a re-made manifest they would sign nothing.

use super::manifests::put_and_confirm;
use super::target::Target;
use crate::errors::verify_failed;
use crate::registry_connect::registry_err;
use anyhow::Result;
use partial_common::image::{attached_tag, Attached, ATTACHED_SUFFIXES};
use partial_common::manifest::{BundleManifest, Image};
use partial_common::registry::{Manifest, RawManifest, Registry};
use partial_common::text::escape;

/// Checks every attached manifest of the bundle (see the module documentation); exit 3 naming
/// the image and the tag.
pub fn check(manifest: &BundleManifest) -> Result<()> {
    for image in &manifest.images {
        for a in &image.attached {
            check_one(image, a).map_err(|why| {
                verify_failed(format!(
                    "image {} of the signed manifest: attached {}: {why}",
                    image.id,
                    escape(&a.tag)
                ))
            })?;
        }
    }
    Ok(())
}

fn check_one(image: &Image, a: &Attached) -> Result<RawManifest, String> {
    let source = image
        .source_manifest
        .as_ref()
        .ok_or("the image has no source manifest to be attached to")?;
    if !ATTACHED_SUFFIXES
        .iter()
        .any(|s| attached_tag(&source.digest, s) == a.tag)
    {
        return Err(format!(
            "the tag is not cosign's tag of the image's source digest {}",
            source.digest
        ));
    }
    let raw = RawManifest::new(
        &a.manifest.media_type,
        a.manifest.text.clone().into_bytes().into(),
    );
    if raw.digest != a.manifest.digest {
        return Err(format!(
            "its manifest hashes to {}, not {}",
            raw.digest, a.manifest.digest
        ));
    }
    let Manifest::Image(m) = raw.parse()? else {
        return Err("its manifest is an index".to_string());
    };
    for d in std::iter::once(&m.config).chain(&m.layers) {
        let blob = a
            .blobs
            .iter()
            .find(|b| b.digest == d.digest)
            .ok_or_else(|| {
                format!(
                    "its manifest names blob {}, which does not travel",
                    d.digest
                )
            })?;
        blob.bytes()?;
    }
    Ok(raw)
}

/// Pushes the attached manifests of `image` into each of `repositories`: their blobs (left
/// alone where present), then each manifest under its tag, read back. Returns the tags pushed.
pub async fn push(
    registry: &Registry,
    image: &Image,
    repositories: &[&str],
) -> Result<Vec<String>> {
    let mut tags = Vec::new();
    for a in &image.attached {
        let raw = check_one(image, a).map_err(|why| verify_failed(why.to_string()))?;
        for repo in repositories {
            for blob in &a.blobs {
                let bytes = blob.bytes().map_err(verify_failed)?;
                let size = bytes.len() as u64;
                registry
                    .ensure_blob(repo, &blob.digest, Some(size), &[], || async move {
                        Ok(std::io::Cursor::new(bytes))
                    })
                    .await
                    .map_err(registry_err)?;
            }
            let target = Target {
                repository: repo.to_string(),
                tag: a.tag.clone(),
            };
            put_and_confirm(registry, &target, &raw).await?;
        }
        tags.push(a.tag.clone());
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::image::{AttachedBlob, SourceManifest};
    use partial_common::registry::manifest::OCI_MANIFEST;
    use partial_common::Digest;

    /// An image with a source manifest and a cosign-style signature attached to it.
    fn signed_image() -> Image {
        let source = SourceManifest::new(OCI_MANIFEST, br#"{"schemaVersion":2}"#).unwrap();
        let config = AttachedBlob::new(b"{}");
        let payload = AttachedBlob::new(br#"{"critical":{}}"#);
        let sig = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"{}","size":15}}]}}"#,
            config.digest, payload.digest
        );
        let tag = attached_tag(&source.digest, "sig");
        Image {
            id: Digest::of_bytes(b"config"),
            tags: vec!["app:2".into()],
            layers: vec![],
            attached: vec![Attached {
                tag,
                manifest: SourceManifest::new(OCI_MANIFEST, sig.as_bytes()).unwrap(),
                blobs: vec![config, payload],
            }],
            source_manifest: Some(source),
        }
    }

    fn checked(image: Image) -> Result<()> {
        let mut m: BundleManifest = serde_json::from_value(serde_json::json!({
            "schema": "partial-save/bundle-manifest", "version": 1,
            "created": "2026-12-03T00:00:00Z",
            "tool": {"name": "partial-save", "version": "0"},
            "source": {"kind": "registry", "references": []},
            "bundle": {"name": "b", "compression": "none", "layout": "oci", "size": 0,
                       "sha256": format!("sha256:{}", "0".repeat(64)), "blake3": "0",
                       "tar_size": 0, "volumes": []},
            "images": [], "required_base": [],
            "totals": {"layers_carried": 0, "layers_left_out": 0, "bytes_carried": 0,
                       "bytes_left_out": 0, "full_save_bytes": 0},
            "warnings": []
        }))
        .unwrap();
        m.images.push(image);
        check(&m)
    }

    #[test]
    fn an_attached_signature_of_the_images_own_digest_with_its_blobs_passes() {
        checked(signed_image()).unwrap();
    }

    #[test]
    fn attached_manifests_are_refused_for_another_tag_a_missing_or_altered_blob() {
        let mut img = signed_image();
        img.attached[0].tag = "latest".into();
        let e = checked(img).unwrap_err().to_string();
        assert!(
            e.contains("not cosign's tag") && e.contains("latest"),
            "{e}"
        );

        let mut img = signed_image();
        img.attached[0].blobs.pop();
        let e = checked(img).unwrap_err().to_string();
        assert!(e.contains("does not travel"), "{e}");

        let mut img = signed_image();
        img.attached[0].blobs[1].base64 = "e30=".into(); // "{}", not the payload
        let e = checked(img).unwrap_err().to_string();
        assert!(e.contains("hashes to"), "{e}");

        let mut img = signed_image();
        img.source_manifest = None;
        let e = checked(img).unwrap_err().to_string();
        assert!(e.contains("no source manifest"), "{e}");
    }
}
