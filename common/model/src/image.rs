//! The image model every source is read into and the bundle writer writes from: an image is its
//! ID (sha256 of its config bytes), its config bytes (when the source has them ahead of the
//! stream; a daemon sends them in its export), its tags and its ordered layers, each with its
//! diffID, chain ID and the blob as the source stores it (media type, digest, size, compression).
//! What the destination holds is decided on diffID chains only, never on blob digests: every
//! conversion between tools re-compresses, the uncompressed content stays the same.

use crate::codec::Compression;
use partial_core::digest::{chain_ids, Digest};
use serde::{Deserialize, Serialize};

/// OCI media type of an uncompressed layer.
pub const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI media type of an image config.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI media type of an image manifest.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI media type of an image index.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The OCI layer media type for a compression.
pub fn layer_media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => MEDIA_LAYER,
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// A layer blob as a source stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// sha256 of the stored bytes (equal to the diffID when uncompressed).
    pub digest: Digest,
    pub media_type: String,
    /// Stored size in bytes, when known ahead of the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub compression: Compression,
}

impl Blob {
    /// An uncompressed layer blob: named by its diffID.
    pub fn uncompressed(diff_id: &Digest, size: Option<u64>) -> Self {
        Blob {
            digest: diff_id.clone(),
            media_type: MEDIA_LAYER.to_string(),
            size,
            compression: Compression::None,
        }
    }
}

/// One layer position of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub diff_id: Digest,
    /// The chain ID of this position (the layer with everything below it).
    pub chain_id: Digest,
    pub blob: Blob,
}

/// An image of a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// sha256 of the config bytes.
    pub id: Digest,
    /// The config, byte for byte, when the source has it before streaming (archives, layouts).
    pub config: Option<Vec<u8>>,
    /// Familiar tags (`app:1`), see [`partial_core::reference::familiar`].
    pub tags: Vec<String>,
    /// Bottom first.
    pub layers: Vec<Layer>,
    /// Other digests naming this image in its source: its OCI manifest, the indexes above it.
    pub aliases: Vec<Digest>,
    /// The image manifest as a registry served it, when the image came from one.
    pub source_manifest: Option<SourceManifest>,
    /// Signatures, attestations and SBOMs attached to it in its source registry.
    pub attached: Vec<Attached>,
}

/// The tag suffixes of cosign's tag scheme: a signature, an attestation, an SBOM.
pub const ATTACHED_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// The largest blob of an attached manifest carried (inside the signed manifest, so small).
pub const MAX_ATTACHED_BLOB: u64 = 4 << 20;

/// The tag under which cosign's tag scheme attaches `suffix` to the image manifest `digest`:
/// `sha256-<hex>.sig`.
pub fn attached_tag(digest: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", digest.hex())
}

/// The tag of the OCI 1.1 referrers fallback index of the image manifest `digest`
/// (`sha256-<hex>`): an index listing the manifests whose `subject` is the image, kept by
/// registries without the referrers API (distribution 2.8).
pub fn referrers_tag(digest: &Digest) -> String {
    format!("sha256-{}", digest.hex())
}

/// A manifest attached to an image in its source registry, with every blob it names: by cosign's
/// tag scheme (see [`attached_tag`]), or as an OCI 1.1 referrer (a manifest whose `subject` is
/// the image, listed by the fallback index under [`referrers_tag`]). Signatures and attestations
/// are small, so they travel inside the signed manifest, each blob at most [`MAX_ATTACHED_BLOB`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    /// Its tag in the source repository (`sha256-<hex>.sig`, or `sha256-<hex>` for the
    /// referrers index), or for a referrer its own digest (`sha256:<hex>`): it is pushed by
    /// digest, before the index that lists it.
    pub tag: String,
    pub manifest: SourceManifest,
    /// The config and layers it names, in its order.
    pub blobs: Vec<AttachedBlob>,
}

/// A blob of an attached manifest, its bytes base64-encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedBlob {
    pub digest: Digest,
    pub base64: String,
}

impl AttachedBlob {
    pub fn new(bytes: &[u8]) -> Self {
        use base64::Engine as _;
        AttachedBlob {
            digest: Digest::of_bytes(bytes),
            base64: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    /// The bytes, which must hash to `digest`; `Err` says what is wrong.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.base64)
            .map_err(|e| format!("blob {} is not base64: {e}", self.digest))?;
        let actual = Digest::of_bytes(&bytes);
        if actual != self.digest {
            return Err(format!("blob {} hashes to {actual}", self.digest));
        }
        Ok(bytes)
    }
}

/// An image manifest as its source stored it, byte for byte, so that a registry push can write
/// the very same manifest, and so give the image the same digest, when every blob it names is
/// there as stored. It travels in the signed manifest; a push checks it against the image's
/// config and layers before using it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceManifest {
    pub media_type: String,
    /// The sha256 of `text`'s bytes: the image's digest in its source.
    pub digest: Digest,
    /// The manifest's exact bytes (JSON, so UTF-8 text).
    pub text: String,
}

impl SourceManifest {
    /// The manifest `bytes` of `media_type`; `None` when they are not UTF-8 (no JSON document
    /// is not).
    pub fn new(media_type: &str, bytes: &[u8]) -> Option<Self> {
        Some(SourceManifest {
            media_type: media_type.to_string(),
            digest: Digest::of_bytes(bytes),
            text: String::from_utf8(bytes.to_vec()).ok()?,
        })
    }
}

impl Image {
    /// An image whose layers are all stored uncompressed (what a graphdriver daemon exports).
    pub fn from_diff_ids(id: Digest, tags: Vec<String>, diff_ids: &[Digest]) -> Self {
        let layers = diff_ids
            .iter()
            .zip(chain_ids(diff_ids))
            .map(|(d, c)| Layer {
                diff_id: d.clone(),
                chain_id: c,
                blob: Blob::uncompressed(d, None),
            })
            .collect();
        Image {
            id,
            config: None,
            tags,
            layers,
            aliases: Vec::new(),
            source_manifest: None,
            attached: Vec::new(),
        }
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    /// The first tag, else the ID: how messages name the image.
    pub fn name(&self) -> String {
        self.tags
            .first()
            .cloned()
            .unwrap_or_else(|| self.id.to_string())
    }

    /// Whether `d` is this image's ID or one of its aliases.
    pub fn is_named_by(&self, d: &Digest) -> bool {
        self.id == *d || self.aliases.contains(d)
    }

    /// Adds a tag unless present.
    pub fn add_tag(&mut self, tag: &str) {
        if !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.to_string());
        }
    }
}

/// A platform `OS/ARCH[/VARIANT]`, to pick one image of a multi-platform index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `linux/amd64` or `linux/arm/v7`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.trim().split('/');
        let os = it.next().filter(|x| !x.is_empty())?.to_string();
        let architecture = it.next().filter(|x| !x.is_empty())?.to_string();
        let variant = it.next().map(str::to_string);
        if it.next().is_some() {
            return None;
        }
        Some(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// The platform this program runs on, in OCI names (`linux/amd64`, `linux/arm64/v8`).
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }

    /// Whether an OCI descriptor's `platform` object matches; a variant is compared only when
    /// both sides name one.
    pub fn matches(&self, p: &serde_json::Value) -> bool {
        let get = |k: &str| p.get(k).and_then(serde_json::Value::as_str);
        if get("os") != Some(self.os.as_str()) || get("architecture") != Some(&self.architecture) {
            return false;
        }
        match (&self.variant, get("variant")) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!(p.matches(&serde_json::json!({"os":"linux","architecture":"arm","variant":"v7"})));
        assert!(!p.matches(&serde_json::json!({"os":"linux","architecture":"arm","variant":"v6"})));
        assert!(Platform::parse("linux").is_none());
        assert!(Platform::parse("linux/amd64/x/y").is_none());
        let h = Platform::parse("linux/amd64").unwrap();
        assert!(h.matches(&serde_json::json!({"os":"linux","architecture":"amd64"})));
    }

    #[test]
    fn from_diff_ids_builds_chains() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let img = Image::from_diff_ids(Digest::of_bytes(b"c"), vec![], &[a.clone(), b.clone()]);
        assert_eq!(img.layers[1].chain_id, chain_ids(&[a, b])[1]);
        assert_eq!(img.layers[1].blob.compression, Compression::None);
    }
}
