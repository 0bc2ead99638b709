//! Reading from a registry: manifests (with the index resolved to one platform), whole small blobs
//! such as configs, and layer blobs as a stream whose digest is checked when it ends. Nothing read
//! is trusted before its digest matched.

use super::auth::repository_scope;
use super::client::{read_limited, Registry, Subject};
use super::error::RegistryError;
use super::manifest::{
    embedded_media_type, is_image_manifest, is_index, ImageManifest, Manifest, Platform,
    RawManifest, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use partial_core::digest::Digest;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The header in which registries state the digest of what they serve or stored.
pub const DIGEST_HEADER: &str = "Docker-Content-Digest";

/// Bound on a blob read whole into memory (configs): 64 MiB.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// An image manifest together with the index it was picked from, if any.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub raw: RawManifest,
    pub manifest: ImageManifest,
    /// The index (or manifest list) the reference named, when it named one.
    pub index: Option<RawManifest>,
}

impl Registry {
    /// GETs the manifest `reference` (tag or digest) of `repository`, as raw bytes. Its digest is
    /// checked against the digest asked for, else against the registry's `Docker-Content-Digest`.
    pub async fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<RawManifest, RegistryError> {
        let context = format!("GET manifest {repository}:{reference}");
        let subject = Subject::Manifest(repository, reference);
        let req = self
            .http()
            .get(self.url(&format!("/v2/{repository}/manifests/{reference}")))
            .header(ACCEPT, MANIFEST_ACCEPT);
        let resp = self
            .send(req, &repository_scope(repository, "pull"), &context)
            .await?;
        if !resp.status().is_success() {
            let e = self.status_error(resp, &context, subject).await;
            return Err(self.missing_repository_or(repository, e).await);
        }
        let content_type = header(&resp, CONTENT_TYPE.as_str());
        let stated = header(&resp, DIGEST_HEADER);
        let bytes = read_limited(resp, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| self.transport_error(&context, e))?
            .ok_or_else(|| RegistryError::TooLarge {
                registry: self.name().to_string(),
                repository: repository.to_string(),
                what: format!("manifest {reference}"),
                limit: MAX_MANIFEST_BYTES,
            })?;
        let media_type = content_type
            .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
            .filter(|c| is_index(c) || is_image_manifest(c))
            .or_else(|| embedded_media_type(&bytes))
            .unwrap_or_default();
        let raw = RawManifest::new(&media_type, bytes);
        let expected = if reference.starts_with("sha256:") {
            Some(reference.to_string())
        } else {
            stated
        };
        if let Some(expected) = expected.filter(|e| e.starts_with("sha256:")) {
            if expected != raw.digest.as_str() {
                return Err(RegistryError::ManifestDigestMismatch {
                    registry: self.name().to_string(),
                    repository: repository.to_string(),
                    reference: reference.to_string(),
                    expected,
                    actual: raw.digest,
                });
            }
        }
        Ok(raw)
    }

    /// Distribution answers "manifest unknown" also when the whole repository is missing; its tag
    /// list tells the two apart, so that a wrong repository name is said plainly.
    async fn missing_repository_or(&self, repository: &str, e: RegistryError) -> RegistryError {
        if !matches!(e, RegistryError::NoManifest { .. }) {
            return e;
        }
        match self.list_tags(repository).await {
            Err(missing @ RegistryError::NoRepository { .. }) => missing,
            _ => e,
        }
    }

    /// The image manifest `reference` names; an index or manifest list is resolved to the entry
    /// for `platform` (an error lists the platforms it has).
    pub async fn get_image(
        &self,
        repository: &str,
        reference: &str,
        platform: &Platform,
    ) -> Result<ResolvedImage, RegistryError> {
        let first = self.get_manifest(repository, reference).await?;
        match self.parse(&first, repository, reference)? {
            Manifest::Image(manifest) => Ok(ResolvedImage {
                raw: first,
                manifest,
                index: None,
            }),
            Manifest::Index(index) => {
                let entry = index
                    .select(platform)
                    .ok_or_else(|| RegistryError::NoPlatform {
                        registry: self.name().to_string(),
                        reference: format!("{repository}:{reference}"),
                        platform: platform.to_string(),
                        available: index.platforms().join(", "),
                    })?;
                let digest = entry.digest.to_string();
                let raw = self.get_manifest(repository, &digest).await?;
                match self.parse(&raw, repository, &digest)? {
                    Manifest::Image(manifest) => Ok(ResolvedImage {
                        raw,
                        manifest,
                        index: Some(first),
                    }),
                    Manifest::Index(_) => Err(RegistryError::Protocol {
                        registry: self.name().to_string(),
                        what: format!("manifest {repository}@{digest}"),
                        reason: "an index entry points at another index".into(),
                    }),
                }
            }
        }
    }

    /// Parses `raw`, read as `repository:reference`; an error names it.
    pub fn parse(
        &self,
        raw: &RawManifest,
        repository: &str,
        reference: &str,
    ) -> Result<Manifest, RegistryError> {
        if !is_index(&raw.media_type) && !is_image_manifest(&raw.media_type) {
            return Err(RegistryError::UnsupportedManifest {
                registry: self.name().to_string(),
                reference: format!("{repository}:{reference}"),
                media_type: raw.media_type.clone(),
            });
        }
        raw.parse().map_err(|reason| RegistryError::Protocol {
            registry: self.name().to_string(),
            what: format!("manifest {repository}:{reference}"),
            reason,
        })
    }

    /// HEADs blob `digest` in `repository`: its size when present, `None` when absent.
    pub async fn blob_exists(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let context = format!("HEAD blob {digest} in {repository}");
        let req = self
            .http()
            .head(self.url(&format!("/v2/{repository}/blobs/{digest}")));
        let resp = self
            .send(req, &repository_scope(repository, "pull"), &context)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                header(&resp, CONTENT_LENGTH.as_str())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            // A HEAD has no body: a 404 is an absent blob (also when the repository is new).
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self
                .status_error(resp, &context, Subject::Blob(repository, digest))
                .await),
        }
    }

    /// A small blob (a config) read whole, at most [`MAX_CONFIG_BYTES`], digest-checked.
    pub async fn get_blob_bytes(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Bytes, RegistryError> {
        let mut stream = self.get_blob(repository, digest).await?;
        if stream.size().is_some_and(|n| n > MAX_CONFIG_BYTES) {
            return Err(self.too_large(repository, digest));
        }
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if (buf.len() + chunk.len()) as u64 > MAX_CONFIG_BYTES {
                return Err(self.too_large(repository, digest));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }

    fn too_large(&self, repository: &str, digest: &Digest) -> RegistryError {
        RegistryError::TooLarge {
            registry: self.name().to_string(),
            repository: repository.to_string(),
            what: format!("blob {digest}"),
            limit: MAX_CONFIG_BYTES,
        }
    }

    /// GETs blob `digest` of `repository` as a stream of chunks. The stream hashes what passes;
    /// when the body ends it yields [`RegistryError::BlobDigestMismatch`] instead of ending if
    /// the bytes do not match, so a consumer must treat any `Err` item as failure of the blob.
    pub async fn get_blob(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<BlobStream, RegistryError> {
        let context = format!("GET blob {digest} from {repository}");
        let req = self
            .http()
            .get(self.url(&format!("/v2/{repository}/blobs/{digest}")));
        let resp = self
            .send(req, &repository_scope(repository, "pull"), &context)
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .status_error(resp, &context, Subject::Blob(repository, digest))
                .await);
        }
        let size = resp.content_length();
        let state = Verify {
            body: Box::pin(resp.bytes_stream()),
            hash: Sha256::new(),
            count: 0,
            done: false,
            registry: self.name().to_string(),
            repository: repository.to_string(),
            expected: digest.clone(),
            context,
        };
        let stream = futures_util::stream::unfold(state, |mut st| async move {
            if st.done {
                return None;
            }
            let item = match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.hash.update(&chunk);
                    st.count += chunk.len() as u64;
                    Ok(chunk)
                }
                Some(Err(source)) => Err(RegistryError::Unreachable {
                    registry: st.registry.clone(),
                    context: st.context.clone(),
                    source,
                }),
                None => {
                    let actual = Digest::from_sha256(st.hash.clone().finalize().into());
                    if actual == st.expected {
                        return None;
                    }
                    Err(RegistryError::BlobDigestMismatch {
                        registry: st.registry.clone(),
                        repository: st.repository.clone(),
                        digest: st.expected.clone(),
                        actual,
                        size: st.count,
                    })
                }
            };
            st.done = item.is_err();
            Some((item, st))
        });
        Ok(BlobStream {
            size,
            inner: Box::pin(stream),
        })
    }
}

/// The state of a blob download: the body, the running hash and what an error must name.
struct Verify {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    hash: Sha256,
    count: u64,
    done: bool,
    registry: String,
    repository: String,
    expected: Digest,
    context: String,
}

/// A blob's bytes as they arrive; ends with an error if they do not match the digest.
pub struct BlobStream {
    size: Option<u64>,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, RegistryError>> + Send>>,
}

impl BlobStream {
    /// The size the registry announced (`Content-Length`).
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, RegistryError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
