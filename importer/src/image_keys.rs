//! `--image-key cosign.pub`: before anything is loaded or pushed, every image of the bundle must
//! carry a valid cosign signature by one of these keys, checked from the bundle alone (offline).
//! The signatures travel in the signed manifest (`attached`, cosign's tag scheme: the manifest
//! `sha256-<source digest hex>.sig`, whose layers are simple-signing payloads, each signed in its
//! `dev.cosignproject.cosign/signature` annotation: base64 ASN.1 ECDSA P-256 over the payload's
//! bytes). One is valid when a key verifies it and its payload names the image's own manifest
//! digest (`critical.image.docker-manifest-digest`). Keys are ECDSA P-256 public keys in PEM, as
//! `cosign generate-key-pair` writes `cosign.pub`. A missing or invalid signature is exit 3,
//! naming the image and what was found.

use crate::errors::verify_failed;
use anyhow::Result;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use partial_common::image::{attached_tag, Attached};
use partial_common::limits;
use partial_common::manifest::{BundleManifest, Image};
use partial_common::text::escape;
use partial_common::Digest;
use std::path::{Path, PathBuf};

/// The annotation of a signature layer holding its signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// A trusted image-signing key, with the file it came from (for messages).
pub struct ImageKey {
    file: String,
    key: VerifyingKey,
}

/// Reads `--image-key` files (PEM public keys); exit 3 naming a file that is not one.
pub fn load(paths: &[PathBuf]) -> Result<Vec<ImageKey>> {
    paths.iter().map(|p| load_one(p)).collect()
}

fn load_one(path: &Path) -> Result<ImageKey> {
    let file = path.display().to_string();
    let text = limits::read_capped_text(path, limits::PUBLIC_KEY, "image key")
        .map_err(|e| verify_failed(format!("image key {file}: {e}")))?;
    let key = VerifyingKey::from_public_key_pem(text.trim()).map_err(|e| {
        verify_failed(format!(
            "image key {file}: not an ECDSA P-256 public key in PEM (as cosign.pub): {e}"
        ))
    })?;
    Ok(ImageKey { file, key })
}

/// Requires a valid signature by one of `keys` for every image of `manifest` (nothing to do
/// without keys); exit 3 naming the first image without one and what its signatures are.
pub fn check(manifest: &BundleManifest, keys: &[ImageKey]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    for image in &manifest.images {
        let name = escape(&name_of(manifest, image)).into_owned();
        let found = signed_by(manifest, image, keys).map_err(|why| {
            verify_failed(format!(
                "image {name} ({}) has no valid signature by --image-key {}: {why}",
                image.id,
                keys.iter()
                    .map(|k| k.file.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        eprintln!("image {name}: signature by {found} verified");
    }
    Ok(())
}

/// How messages name `image`: its tags, else its index's tags and its platform, else its ID.
fn name_of(manifest: &BundleManifest, image: &Image) -> String {
    if !image.tags.is_empty() {
        return image.tags.join(", ");
    }
    let source = image.source_manifest.as_ref().map(|s| &s.digest);
    for index in &manifest.indexes {
        if let Some(m) = index.manifests.iter().find(|m| Some(&m.digest) == source) {
            return format!("{} {}", index.tags.join(", "), m.platform);
        }
    }
    image.id.to_string()
}

/// The key file that signed `image`, its manifest digest or that of an index of `manifest`
/// listing it, or why none did.
fn signed_by<'k>(
    manifest: &BundleManifest,
    image: &Image,
    keys: &'k [ImageKey],
) -> Result<&'k str, String> {
    let source = image.source_manifest.as_ref().ok_or(
        "it carries no manifest digest to be signed (only images exported from a registry do)",
    )?;
    let own = signed_for(&source.digest, &image.attached, keys);
    let mut why = match own {
        Ok(file) => return Ok(file),
        Err(e) => vec![e],
    };
    let indexes = manifest
        .indexes
        .iter()
        .filter(|i| i.manifests.iter().any(|m| m.digest == source.digest));
    for index in indexes {
        match signed_for(&index.digest, &index.attached, keys) {
            Ok(file) => return Ok(file),
            Err(e) => why.push(format!("its index {}: {e}", index.digest)),
        }
    }
    Err(why.join("; "))
}

/// The key file that signed `digest` by a signature among `attached`, or why none did.
fn signed_for<'k>(
    digest: &Digest,
    attached: &[Attached],
    keys: &'k [ImageKey],
) -> Result<&'k str, String> {
    let tag = attached_tag(digest, "sig");
    let sig = attached
        .iter()
        .find(|a| a.tag == tag)
        .ok_or_else(|| format!("no signature ({tag}) travels with it"))?;
    let mut why = Vec::new();
    for (payload, signature) in signatures(sig)? {
        match verify_one(&payload, &signature, &digest.to_string(), keys) {
            Ok(file) => return Ok(file),
            Err(e) => why.push(e),
        }
    }
    if why.is_empty() {
        why.push(format!("{tag} holds no signed payload"));
    }
    Err(why.join("; "))
}

/// Each (payload bytes, signature text) of a signature manifest.
fn signatures(sig: &Attached) -> Result<Vec<(Vec<u8>, String)>, String> {
    let m: serde_json::Value = serde_json::from_str(&sig.manifest.text)
        .map_err(|e| format!("{}: not JSON: {e}", sig.tag))?;
    let layers = m["layers"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for layer in layers {
        let Some(signature) = layer["annotations"][SIGNATURE_ANNOTATION].as_str() else {
            continue;
        };
        let digest = layer["digest"].as_str().unwrap_or_default();
        let blob = sig
            .blobs
            .iter()
            .find(|b| b.digest.as_str() == digest)
            .ok_or_else(|| format!("{}: payload {digest} does not travel", sig.tag))?;
        out.push((blob.bytes()?, signature.to_string()));
    }
    Ok(out)
}

/// Checks one payload: a key verifies its signature and it names `digest`.
fn verify_one<'k>(
    payload: &[u8],
    signature: &str,
    digest: &str,
    keys: &'k [ImageKey],
) -> Result<&'k str, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|e| format!("a signature is not base64: {e}"))?;
    let sig = Signature::from_der(&der).map_err(|e| format!("a signature is not ECDSA: {e}"))?;
    let key = keys
        .iter()
        .find(|k| k.key.verify(payload, &sig).is_ok())
        .ok_or("a signature is by none of the keys")?;
    let p: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("a payload is not JSON: {e}"))?;
    let named = p["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap_or_default();
    if named != digest {
        return Err(format!(
            "a signature by {} signs {}, not this image's {digest}",
            key.file,
            escape(named)
        ));
    }
    Ok(&key.file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::EncodePublicKey;
    use partial_common::image::{AttachedBlob, SourceManifest};

    fn signing_key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32].into()).unwrap()
    }

    fn key_of(sk: &SigningKey, file: &str) -> ImageKey {
        let pem = sk
            .verifying_key()
            .to_public_key_pem(p256::pkcs8::LineEnding::LF)
            .unwrap();
        ImageKey {
            file: file.to_string(),
            key: VerifyingKey::from_public_key_pem(&pem).unwrap(),
        }
    }

    /// An image whose `.sig` holds a payload naming `signed` (default: its own digest), signed
    /// by `sk`.
    fn image_signed(sk: &SigningKey, signed: Option<&str>) -> Image {
        let source = SourceManifest::new("application/json", br#"{"schemaVersion":2}"#).unwrap();
        let named = signed.map_or(source.digest.to_string(), str::to_string);
        let payload = format!(
            r#"{{"critical":{{"image":{{"docker-manifest-digest":"{named}"}},"type":"cosign container image signature"}}}}"#
        );
        let sig: Signature = sk.sign(payload.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
        let blob = AttachedBlob::new(payload.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"layers":[{{"digest":"{}","annotations":{{"{SIGNATURE_ANNOTATION}":"{b64}"}}}}]}}"#,
            blob.digest
        );
        Image {
            id: Digest::of_bytes(b"config"),
            tags: vec!["app:2".into()],
            layers: vec![],
            attached: vec![Attached {
                tag: attached_tag(&source.digest, "sig"),
                manifest: SourceManifest::new("application/json", manifest.as_bytes()).unwrap(),
                blobs: vec![blob],
            }],
            source_manifest: Some(source),
        }
    }

    #[test]
    fn a_platform_image_counts_as_signed_by_a_signature_of_its_index() {
        use partial_common::source_index::{IndexedManifest, SourceIndex};
        let sk = signing_key(7);
        let keys = [key_of(&sk, "cosign.pub")];
        let mut image = image_signed(&sk, None);
        image.attached.clear();
        let index = Digest::of_bytes(b"index");
        let mut sig = image_signed(&sk, Some(index.as_str())).attached.remove(0);
        sig.tag = attached_tag(&index, "sig");
        let mut m = partial_common::testutil::empty_manifest();
        m.indexes.push(SourceIndex {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: index.clone(),
            text: String::new(),
            repository: "r/app".into(),
            tags: vec!["r/app:1".into()],
            manifests: vec![IndexedManifest {
                digest: image.source_manifest.clone().unwrap().digest,
                platform: "linux/amd64".into(),
            }],
            extra: Vec::new(),
            attached: vec![sig],
            remade_from: None,
        });
        assert_eq!(signed_by(&m, &image, &keys), Ok("cosign.pub"));
        // Not listed by the index: its signature says nothing of the image.
        m.indexes[0].manifests.clear();
        let why = signed_by(&m, &image, &keys).unwrap_err();
        assert!(why.contains("no signature"), "{why}");
    }

    #[test]
    fn a_signature_by_a_trusted_key_of_the_images_own_digest_passes() {
        let sk = signing_key(7);
        let keys = [
            key_of(&signing_key(9), "other.pub"),
            key_of(&sk, "cosign.pub"),
        ];
        assert_eq!(
            signed_by(
                &partial_common::testutil::empty_manifest(),
                &image_signed(&sk, None),
                &keys
            ),
            Ok("cosign.pub")
        );
    }

    #[test]
    fn another_key_another_digest_or_no_signature_is_refused_saying_why() {
        let sk = signing_key(7);
        let keys = [key_of(&sk, "cosign.pub")];
        let by_other = image_signed(&signing_key(8), None);
        let why = signed_by(
            &partial_common::testutil::empty_manifest(),
            &by_other,
            &keys,
        )
        .unwrap_err();
        assert!(why.contains("none of the keys"), "{why}");

        let other = Digest::of_bytes(b"another image").to_string();
        let why = signed_by(
            &partial_common::testutil::empty_manifest(),
            &image_signed(&sk, Some(&other)),
            &keys,
        )
        .unwrap_err();
        assert!(why.contains(&other) && why.contains("cosign.pub"), "{why}");

        let mut unsigned = image_signed(&sk, None);
        unsigned.attached.clear();
        let why = signed_by(
            &partial_common::testutil::empty_manifest(),
            &unsigned,
            &keys,
        )
        .unwrap_err();
        assert!(why.contains("no signature"), "{why}");

        let mut daemon_image = image_signed(&sk, None);
        daemon_image.source_manifest = None;
        let why = signed_by(
            &partial_common::testutil::empty_manifest(),
            &daemon_image,
            &keys,
        )
        .unwrap_err();
        assert!(
            why.contains("only images exported from a registry"),
            "{why}"
        );
    }
}
