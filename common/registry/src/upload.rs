//! Writing to a registry: blobs (present already, mounted from another repository of the same
//! registry, or uploaded: one streamed PUT when the size is known, else one streamed PATCH whose
//! digest is computed on the way) and manifests, byte for byte. Memory stays flat: bodies stream
//! from the caller's reader in 256 KiB pieces.

use super::auth::repository_scope;
use super::client::{Registry, Subject};
use super::error::RegistryError;
use super::manifest::RawManifest;
use super::read::DIGEST_HEADER;
use futures_util::StreamExt;
use partial_core::digest::Digest;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncRead;

/// Size of the pieces a body is read and sent in.
const PIECE: usize = 256 << 10;

/// An open upload session (the registry's `Location` for it).
#[derive(Debug, Clone)]
pub struct UploadSession {
    pub repository: String,
    location: String,
}

/// What a cross-repository mount did.
#[derive(Debug)]
pub enum MountOutcome {
    Mounted,
    /// The registry did not mount (202) and opened an upload session instead.
    NotMounted(UploadSession),
}

/// How [`Registry::ensure_blob`] got the blob into the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    /// It was there already (HEAD).
    Present,
    /// Mounted from this repository.
    Mounted { from: String },
    /// Uploaded, this many bytes.
    Uploaded { bytes: u64 },
}

impl Registry {
    /// Asks the registry to mount blob `digest` of repository `from` into `repository`.
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<MountOutcome, RegistryError> {
        let context = format!("mount blob {digest} from {from} into {repository}");
        let url = self.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let scope = format!(
            "{} {}",
            push_scope(repository),
            repository_scope(from, "pull")
        );
        let req = self.http().post(url).header(CONTENT_LENGTH, "0");
        let resp = self.send(req, &scope, &context).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::NotMounted(
                self.session(repository, &resp, &context)?,
            )),
            _ => Err(self
                .status_error(resp, &context, Subject::Repository(repository))
                .await),
        }
    }

    /// Opens an upload session in `repository`.
    pub async fn start_upload(&self, repository: &str) -> Result<UploadSession, RegistryError> {
        let context = format!("start a blob upload to {repository}");
        let req = self
            .http()
            .post(self.url(&format!("/v2/{repository}/blobs/uploads/")))
            .header(CONTENT_LENGTH, "0");
        let resp = self.send(req, &push_scope(repository), &context).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self
                .status_error(resp, &context, Subject::Repository(repository))
                .await);
        }
        self.session(repository, &resp, &context)
    }

    fn session(
        &self,
        repository: &str,
        resp: &reqwest::Response,
        context: &str,
    ) -> Result<UploadSession, RegistryError> {
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.name().to_string(),
                what: format!("answer to {context}"),
                reason: "HTTP 202 without a Location".into(),
            })?;
        Ok(UploadSession {
            repository: repository.to_string(),
            location: self.resolve(location),
        })
    }

    /// Abandons an upload session (best effort: the registry expires it anyway).
    pub async fn cancel_upload(&self, session: UploadSession) {
        let req = self.http().delete(&session.location);
        let _ = self
            .send(req, &push_scope(&session.repository), "cancel upload")
            .await;
    }

    /// Uploads a blob of known `digest` and `size` in one streamed PUT. The registry checks the
    /// digest; a reader that yields another length fails the request.
    pub async fn upload_monolithic<R>(
        &self,
        session: UploadSession,
        digest: &Digest,
        size: u64,
        reader: R,
    ) -> Result<(), RegistryError>
    where
        R: AsyncRead + Send + 'static,
    {
        let context = format!(
            "upload blob {digest} ({size} bytes) to {}",
            session.repository
        );
        let url = self.with_digest(&session.location, digest, &context)?;
        let tap = Tap::new();
        let req = self
            .upload_http()
            .put(url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, size)
            .body(tap.body(reader));
        let result = self
            .send_watched(req, &push_scope(&session.repository), &context, &tap)
            .await;
        let resp = tap.check(self, &session.repository, digest.as_str(), result)?;
        if resp.status() != StatusCode::CREATED {
            return Err(self
                .status_error(resp, &context, Subject::Blob(&session.repository, digest))
                .await);
        }
        Ok(())
    }

    /// Uploads a blob of unknown size and digest: one streamed PATCH (the digest is computed on
    /// the way), then a PUT that commits it under that digest. Returns digest and size.
    pub async fn upload_streamed<R>(
        &self,
        session: UploadSession,
        reader: R,
    ) -> Result<(Digest, u64), RegistryError>
    where
        R: AsyncRead + Send + 'static,
    {
        let repository = session.repository.clone();
        let context = format!("upload a blob (streamed) to {repository}");
        let tap = Tap::new();
        let req = self
            .upload_http()
            .patch(&session.location)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(tap.body(reader));
        let result = self
            .send_watched(req, &push_scope(&repository), &context, &tap)
            .await;
        let resp = tap.check(self, &repository, "(streamed)", result)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self
                .status_error(resp, &context, Subject::Repository(&repository))
                .await);
        }
        let next = self.session(&repository, &resp, &context)?;
        let (digest, size) = tap.finish();
        let context = format!("commit blob {digest} ({size} bytes) in {repository}");
        let url = self.with_digest(&next.location, &digest, &context)?;
        let req = self.http().put(url).header(CONTENT_LENGTH, "0");
        let resp = self.send(req, &push_scope(&repository), &context).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self
                .status_error(resp, &context, Subject::Blob(&repository, &digest))
                .await);
        }
        Ok((digest, size))
    }

    /// Makes sure blob `digest` is in `repository` doing the least: HEAD, then a mount from each
    /// of `mount_from` in turn, then an upload of what `open` returns (monolithic when `size` is
    /// known, streamed otherwise; the uploaded digest must be `digest`).
    pub async fn ensure_blob<F, Fut, R>(
        &self,
        repository: &str,
        digest: &Digest,
        size: Option<u64>,
        mount_from: &[&str],
        open: F,
    ) -> Result<BlobOutcome, RegistryError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::io::Result<R>>,
        R: AsyncRead + Send + 'static,
    {
        if self.blob_exists(repository, digest).await?.is_some() {
            return Ok(BlobOutcome::Present);
        }
        let mut session = None;
        for from in mount_from.iter().filter(|f| **f != repository) {
            if let Some(stale) = session.take() {
                self.cancel_upload(stale).await;
            }
            match self.mount_blob(repository, digest, from).await? {
                MountOutcome::Mounted => {
                    return Ok(BlobOutcome::Mounted {
                        from: from.to_string(),
                    })
                }
                MountOutcome::NotMounted(s) => session = Some(s),
            }
        }
        let session = match session {
            Some(s) => s,
            None => self.start_upload(repository).await?,
        };
        let reader = open().await.map_err(|source| RegistryError::Source {
            registry: self.name().to_string(),
            repository: repository.to_string(),
            blob: digest.to_string(),
            source,
        })?;
        match size {
            Some(size) => {
                self.upload_monolithic(session, digest, size, reader)
                    .await?;
                Ok(BlobOutcome::Uploaded { bytes: size })
            }
            None => {
                let (actual, bytes) = self.upload_streamed(session, reader).await?;
                if &actual != digest {
                    return Err(RegistryError::BlobDigestMismatch {
                        registry: self.name().to_string(),
                        repository: repository.to_string(),
                        digest: digest.clone(),
                        actual,
                        size: bytes,
                    });
                }
                Ok(BlobOutcome::Uploaded { bytes })
            }
        }
    }

    /// PUTs `manifest` (its exact bytes, with its media type) as `reference` (a tag or its digest)
    /// in `repository`; the digest the registry states must be the manifest's.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        manifest: &RawManifest,
    ) -> Result<Digest, RegistryError> {
        let context = format!(
            "PUT manifest {repository}:{reference} ({})",
            manifest.digest
        );
        let req = self
            .http()
            .put(self.url(&format!("/v2/{repository}/manifests/{reference}")))
            .header(CONTENT_TYPE, &manifest.media_type)
            .body(manifest.bytes.clone());
        let resp = self.send(req, &push_scope(repository), &context).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self
                .status_error(resp, &context, Subject::Manifest(repository, reference))
                .await);
        }
        let stated = resp
            .headers()
            .get(DIGEST_HEADER)
            .and_then(|v| v.to_str().ok());
        if let Some(stated) = stated {
            if stated != manifest.digest.as_str() {
                return Err(RegistryError::Protocol {
                    registry: self.name().to_string(),
                    what: format!("answer to {context}"),
                    reason: format!("it stored the manifest as {stated}"),
                });
            }
        }
        Ok(manifest.digest.clone())
    }

    /// Sends an upload, failing with [`RegistryError::Stalled`] when neither the body advanced
    /// nor an answer came for the idle bound (a registry that stopped reading, or hung).
    async fn send_watched(
        &self,
        req: reqwest::RequestBuilder,
        scope: &str,
        context: &str,
        tap: &Tap,
    ) -> Result<reqwest::Response, RegistryError> {
        let idle = self.idle_timeout();
        let watchdog = async {
            loop {
                let since = tap.lock().last.elapsed();
                if since >= idle {
                    return;
                }
                tokio::time::sleep(idle - since).await;
            }
        };
        tokio::select! {
            resp = self.send(req, scope, context) => resp,
            () = watchdog => Err(RegistryError::Stalled {
                registry: self.name().to_string(),
                context: context.to_string(),
                secs: idle.as_secs(),
            }),
        }
    }

    fn with_digest(
        &self,
        location: &str,
        digest: &Digest,
        context: &str,
    ) -> Result<reqwest::Url, RegistryError> {
        let mut url = reqwest::Url::parse(location).map_err(|e| RegistryError::Protocol {
            registry: self.name().to_string(),
            what: format!("upload location for {context}"),
            reason: format!("{location:?}: {e}"),
        })?;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        Ok(url)
    }
}

fn push_scope(repository: &str) -> String {
    repository_scope(repository, "pull,push")
}

/// Watches a request body as it streams: hash, byte count, and the reader's error if it failed
/// (so that it is reported as the source's fault, not the registry's).
#[derive(Clone)]
struct Tap(Arc<Mutex<TapState>>);

struct TapState {
    hash: Sha256,
    count: u64,
    error: Option<std::io::Error>,
    /// When the body last advanced (or the request started).
    last: std::time::Instant,
}

impl Tap {
    fn new() -> Tap {
        Tap(Arc::new(Mutex::new(TapState {
            hash: Sha256::new(),
            count: 0,
            error: None,
            last: std::time::Instant::now(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TapState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn body<R: AsyncRead + Send + 'static>(&self, reader: R) -> reqwest::Body {
        let tap = self.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, PIECE).map(move |item| {
            let mut st = tap.lock();
            match &item {
                Ok(chunk) => {
                    st.hash.update(chunk);
                    st.count += chunk.len() as u64;
                    st.last = std::time::Instant::now();
                }
                Err(e) => st.error = Some(std::io::Error::new(e.kind(), e.to_string())),
            }
            item
        });
        reqwest::Body::wrap_stream(stream)
    }

    /// A failed request whose body reader failed becomes [`RegistryError::Source`].
    fn check(
        &self,
        registry: &Registry,
        repository: &str,
        blob: &str,
        result: Result<reqwest::Response, RegistryError>,
    ) -> Result<reqwest::Response, RegistryError> {
        match result {
            Err(e) => match self.lock().error.take() {
                Some(source) => Err(RegistryError::Source {
                    registry: registry.name().to_string(),
                    repository: repository.to_string(),
                    blob: blob.to_string(),
                    source,
                }),
                None => Err(e),
            },
            ok => ok,
        }
    }

    fn finish(&self) -> (Digest, u64) {
        let st = self.lock();
        (
            Digest::from_sha256(st.hash.clone().finalize().into()),
            st.count,
        )
    }
}
