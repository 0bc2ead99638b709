//! The signatures, attestations and SBOMs that travel with an image (`attached` in the signed
//! manifest: manifests that cosign's tag scheme attaches to the image's source digest, and OCI
//! 1.1 referrers with their fallback index, with their blobs). [`check`] runs before anything is
//! uploaded: each must be attached to its own image's source digest, by its tag
//! (`sha256-<hex>.sig|.att|.sbom`, the index `sha256-<hex>`) or, for a referrer, by its
//! `subject` and pushed by its own digest (so no signed manifest can use them to write another
//! tag); hash to its digest; name only blobs that travel with it (an index: only referrers
//! that travel before it). [`push`] writes them next to the
//! image once its manifest is in place, and only when the image kept its digest: they name that
//! digest, so next to a re-made manifest they would sign nothing.

use super::manifests::put_and_confirm;
use super::target::Target;
use crate::errors::verify_failed;
use crate::registry_connect::registry_err;
use anyhow::Result;
use partial_common::image::{attached_tag, referrers_tag, Attached, ATTACHED_SUFFIXES};
use partial_common::manifest::{BundleManifest, Image};
use partial_common::registry::{Manifest, RawManifest, Registry};
use partial_common::text::escape;
use partial_common::Digest;

/// Checks every attached manifest of the bundle (see the module documentation); exit 3 naming
/// the image and the tag.
pub fn check(manifest: &BundleManifest) -> Result<()> {
    for image in &manifest.images {
        let source = image.source_manifest.as_ref().map(|m| &m.digest);
        check_list(source, &image.attached, &format!("image {}", image.id))?;
    }
    for index in &manifest.indexes {
        check_list(
            Some(&index.digest),
            &index.attached,
            &format!("index {}", index.digest),
        )?;
    }
    Ok(())
}

/// Checks the manifests attached to `source` (`what` names its owner in errors).
fn check_list(source: Option<&Digest>, list: &[Attached], what: &str) -> Result<()> {
    for (i, a) in list.iter().enumerate() {
        check_one(source, a, &list[..i]).map_err(|why| {
            verify_failed(format!(
                "{what} of the signed manifest: attached {}: {why}",
                escape(&a.tag)
            ))
        })?;
    }
    Ok(())
}

/// How a manifest is attached to its image.
enum Kind {
    /// cosign's tag scheme: `sha256-<hex>.sig|.att|.sbom`.
    Tagged,
    /// An OCI 1.1 referrer, pushed by its digest.
    Referrer,
    /// The referrers fallback index, `sha256-<hex>`.
    ReferrersIndex,
}

fn kind_of(tag: &str, source: &Digest) -> Option<Kind> {
    if ATTACHED_SUFFIXES
        .iter()
        .any(|s| attached_tag(source, s) == tag)
    {
        Some(Kind::Tagged)
    } else if referrers_tag(source) == tag {
        Some(Kind::ReferrersIndex)
    } else if Digest::parse(tag).is_ok() {
        Some(Kind::Referrer)
    } else {
        None
    }
}

/// Checks one manifest attached to the source digest `source` of an image or index (`earlier`:
/// those before it); its manifest to push.
fn check_one(
    source: Option<&Digest>,
    a: &Attached,
    earlier: &[Attached],
) -> Result<RawManifest, String> {
    let source = source.ok_or("the image has no source manifest to be attached to")?;
    let kind = kind_of(&a.tag, source).ok_or_else(|| {
        format!(
            "the tag is neither cosign's tag nor the referrers tag of the image's source digest \
             {source}"
        )
    })?;
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
    match (kind, raw.parse()?) {
        (Kind::Tagged, Manifest::Image(m)) => blobs_travel(a, &m),
        (Kind::Referrer, Manifest::Image(m)) => {
            if a.tag != raw.digest.as_str() {
                return Err("a referrer is pushed by its own digest only".to_string());
            }
            let subject = serde_json::from_str::<serde_json::Value>(&a.manifest.text)
                .ok()
                .and_then(|v| v["subject"]["digest"].as_str().map(str::to_string));
            if subject.as_deref() != Some(source.as_str()) {
                return Err(format!(
                    "a referrer's subject must be the image's source digest {source}"
                ));
            }
            blobs_travel(a, &m)
        }
        (Kind::ReferrersIndex, Manifest::Index(index)) => {
            let listed = index.manifests.iter().map(|d| &d.digest);
            for d in listed {
                if !earlier.iter().any(|e| e.tag == d.as_str()) {
                    return Err(format!("it lists {d}, which does not travel before it"));
                }
            }
            Ok(())
        }
        _ => Err("its manifest is not of the kind its tag says".to_string()),
    }?;
    Ok(raw)
}

/// Every blob image manifest `m` names travels with `a`, and hashes right.
fn blobs_travel(a: &Attached, m: &partial_common::registry::ImageManifest) -> Result<(), String> {
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
    Ok(())
}

/// Pushes the attached manifests of `image` into each of `repositories`: their blobs (left
/// alone where present), then each manifest under its tag, read back. Returns the tags pushed.
pub async fn push(
    registry: &Registry,
    image: &Image,
    repositories: &[&str],
) -> Result<Vec<String>> {
    let source = image.source_manifest.as_ref().map(|m| &m.digest);
    push_list(registry, source, &image.attached, repositories).await
}

/// Pushes the manifests `list` attached to `source` (an image's or an index's source digest)
/// into each of `repositories`; returns the tags pushed.
pub async fn push_list(
    registry: &Registry,
    source: Option<&Digest>,
    list: &[Attached],
    repositories: &[&str],
) -> Result<Vec<String>> {
    let mut tags = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let raw = check_one(source, a, &list[..i]).map_err(verify_failed)?;
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
        let mut m = partial_common::testutil::empty_manifest();
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
            e.contains("neither cosign's tag") && e.contains("latest"),
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

    /// `signed_image()` plus an SBOM referrer whose subject is `subject` (default: the image's
    /// source digest), and the fallback index listing it.
    fn with_referrer(subject: Option<&str>) -> Image {
        let mut img = signed_image();
        let source = img.source_manifest.clone().unwrap();
        let subject = subject.map_or(source.digest.to_string(), str::to_string);
        let empty = AttachedBlob::new(b"{}");
        let sbom = AttachedBlob::new(b"sbom");
        let referrer = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/spdx+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"application/spdx+json","digest":"{}","size":4}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{subject}","size":19}}}}"#,
            empty.digest, sbom.digest
        );
        let referrer = SourceManifest::new(OCI_MANIFEST, referrer.as_bytes()).unwrap();
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":{}}}]}}"#,
            referrer.digest,
            referrer.text.len()
        );
        img.attached.push(Attached {
            tag: referrer.digest.to_string(),
            manifest: referrer,
            blobs: vec![empty, sbom],
        });
        img.attached.push(Attached {
            tag: referrers_tag(&source.digest),
            manifest: SourceManifest::new(
                "application/vnd.oci.image.index.v1+json",
                index.as_bytes(),
            )
            .unwrap(),
            blobs: vec![],
        });
        img
    }

    #[test]
    fn a_referrer_of_the_image_and_its_fallback_index_pass() {
        checked(with_referrer(None)).unwrap();
    }

    #[test]
    fn a_referrer_of_another_image_or_an_index_listing_what_does_not_travel_is_refused() {
        let other = Digest::of_bytes(b"another image").to_string();
        let e = checked(with_referrer(Some(&other)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("subject"), "{e}");

        let mut img = with_referrer(None);
        img.attached.remove(1);
        let e = checked(img).unwrap_err().to_string();
        assert!(e.contains("does not travel before it"), "{e}");

        let mut img = with_referrer(None);
        img.attached[1].tag = Digest::of_bytes(b"x").to_string();
        let e = checked(img).unwrap_err().to_string();
        assert!(e.contains("its own digest"), "{e}");
    }
}
