//! Manifests as registries serve them: Docker v2 schema 2 and OCI image manifests, Docker manifest
//! lists and OCI indexes, with platform selection. The raw bytes are kept beside the parsed form:
//! a manifest's digest is that of its exact bytes, so it is never re-serialised.

use bytes::Bytes;
use partial_core::digest::Digest;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The `Accept` header for manifest requests: every type this client understands.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Docker limits manifests to 4 MiB; so does this client.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            urls: Vec::new(),
            annotations: None,
        }
    }
}

/// A platform of an index entry, or the one asked for (`os/arch[/variant]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Platform> {
        let mut parts = s.split('/');
        let os = parts.next().filter(|p| !p.is_empty())?;
        let arch = parts.next().filter(|p| !p.is_empty())?;
        let variant = parts.next().map(str::to_string);
        if parts.next().is_some() {
            return None;
        }
        Some(Platform {
            architecture: arch.to_string(),
            os: os.to_string(),
            os_version: None,
            variant,
        })
    }

    /// This machine's platform in Go's names (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            architecture: arch.to_string(),
            os: std::env::consts::OS.to_string(),
            os_version: None,
            variant: variant.map(str::to_string),
        }
    }

    /// Whether an index entry for `self` serves a request for `wanted`: same os and architecture,
    /// and the same variant when both name one (`arm64` without a variant is `v8`).
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v.map(str::to_string),
        };
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && match (norm(self), norm(wanted)) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An image manifest (Docker v2 schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A Docker manifest list or OCI index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageIndex {
    /// The first entry that is an image manifest for `wanted`.
    pub fn select(&self, wanted: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            is_image_manifest(&d.media_type)
                && d.platform.as_ref().is_some_and(|p| p.satisfies(wanted))
        })
    }

    /// The platforms the index offers, for messages.
    pub fn platforms(&self) -> Vec<String> {
        self.manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(Platform::to_string))
            .collect()
    }
}

/// A parsed manifest of either kind. (Few exist at a time and they are short-lived: the size
/// difference of the variants does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

/// A manifest exactly as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    /// The media type: the response's `Content-Type`, else the document's `mediaType`.
    pub media_type: String,
    /// The digest of `bytes`.
    pub digest: Digest,
    pub bytes: Bytes,
}

impl RawManifest {
    /// Wraps `bytes` of a manifest of `media_type` (computing its digest).
    pub fn new(media_type: &str, bytes: Bytes) -> RawManifest {
        RawManifest {
            media_type: media_type.to_string(),
            digest: Digest::of_bytes(&bytes),
            bytes,
        }
    }

    /// Parses the bytes by media type; `Err` says what is wrong.
    pub fn parse(&self) -> Result<Manifest, String> {
        if is_index(&self.media_type) {
            serde_json::from_slice(&self.bytes)
                .map(Manifest::Index)
                .map_err(|e| format!("not an image index: {e}"))
        } else if is_image_manifest(&self.media_type) {
            serde_json::from_slice(&self.bytes)
                .map(Manifest::Image)
                .map_err(|e| format!("not an image manifest: {e}"))
        } else {
            Err(format!("unsupported media type {:?}", self.media_type))
        }
    }
}

/// The `mediaType` field of a JSON manifest, if it has one.
pub fn embedded_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    probe.media_type.or_else(|| {
        // An OCI index may omit its mediaType; its `manifests` array gives it away.
        probe.manifests.map(|_| OCI_INDEX.to_string())
    })
}

pub fn is_index(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST_LIST || media_type == OCI_INDEX
}

pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == DOCKER_MANIFEST || media_type == OCI_MANIFEST
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of_bytes(&[n])
    }

    #[test]
    fn selects_the_platform_of_an_index() {
        let entry = |p: &str| Descriptor {
            platform: Platform::parse(p),
            ..Descriptor::new(OCI_MANIFEST, d(p.len() as u8), 10)
        };
        let index = ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.into()),
            manifests: vec![
                entry("linux/arm/v7"),
                entry("linux/arm64"),
                entry("linux/amd64"),
            ],
            annotations: None,
        };
        let pick = |p: &str| {
            index
                .select(&Platform::parse(p).unwrap())
                .map(|d| d.platform.clone())
        };
        assert_eq!(pick("linux/amd64"), Some(Platform::parse("linux/amd64")));
        assert_eq!(pick("linux/arm64/v8"), Some(Platform::parse("linux/arm64")));
        assert_eq!(pick("linux/arm"), Some(Platform::parse("linux/arm/v7")));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("windows/amd64"), None);
        assert_eq!(
            index.platforms(),
            ["linux/arm/v7", "linux/arm64", "linux/amd64"]
        );
        assert!(Platform::parse("linux").is_none());
        assert!(!Platform::host().os.is_empty());
    }

    #[test]
    fn keeps_raw_bytes_and_parses_by_media_type() {
        let m = ImageManifest {
            schema_version: 2,
            media_type: Some(DOCKER_MANIFEST.into()),
            config: Descriptor::new(DOCKER_CONFIG, d(1), 3),
            layers: vec![Descriptor::new(DOCKER_LAYER_GZIP, d(2), 5)],
            annotations: None,
        };
        // Odd spacing: the digest must be that of these bytes, not of a re-serialisation.
        let text = serde_json::to_string_pretty(&m).unwrap();
        let raw = RawManifest::new(DOCKER_MANIFEST, Bytes::from(text.clone()));
        assert_eq!(raw.digest, Digest::of_bytes(text.as_bytes()));
        assert_eq!(raw.parse().unwrap(), Manifest::Image(m));
        assert_eq!(
            embedded_media_type(text.as_bytes()).as_deref(),
            Some(DOCKER_MANIFEST)
        );
        assert_eq!(
            embedded_media_type(br#"{"manifests":[]}"#).as_deref(),
            Some(OCI_INDEX)
        );
        let bad = RawManifest::new("text/plain", Bytes::from_static(b"{}"));
        assert!(bad.parse().unwrap_err().contains("text/plain"));
    }
}
