//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>` lists the manifests whose
//! `subject` is that digest, as an OCI index. Registries without it (distribution 2.8) answer
//! 404 or 405, or something that is no index; then the caller reads the fallback tag
//! `sha256-<hex>` instead (`partial_model::image::referrers_tag`). The answer is decided by
//! [`answer_of`] from the status and content type alone.

use super::auth::repository_scope;
use super::client::{read_limited, Registry, Subject};
use super::error::RegistryError;
use super::manifest::{RawManifest, MAX_MANIFEST_BYTES, OCI_INDEX};
use partial_core::digest::Digest;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

/// What a registry's answer to the referrers API means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It has the API: the body is the index of referrers.
    Listed,
    /// It has no API: use the fallback tag.
    Fallback,
    /// Another failure: an error.
    Failed,
}

/// The meaning of `status` with `content_type` (see the module documentation).
pub fn answer_of(status: u16, content_type: Option<&str>) -> Answer {
    let media = content_type.map(|c| c.split(';').next().unwrap_or_default().trim());
    match status {
        200 if media == Some(OCI_INDEX) => Answer::Listed,
        // A 200 that is no index (a proxy's page) is no referrers API either.
        200 | 404 | 405 => Answer::Fallback,
        _ => Answer::Failed,
    }
}

impl Registry {
    /// The referrers of `digest` in `repository` as the API lists them (an OCI index, its bytes
    /// as served); `None` when the registry has no referrers API.
    pub async fn get_referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<RawManifest>, RegistryError> {
        let context = format!("GET referrers of {repository}@{digest}");
        let req = self
            .http()
            .get(self.url(&format!("/v2/{repository}/referrers/{digest}")))
            .header(ACCEPT, OCI_INDEX);
        let resp = self
            .send(req, &repository_scope(repository, "pull"), &context)
            .await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match answer_of(resp.status().as_u16(), content_type.as_deref()) {
            Answer::Fallback => Ok(None),
            Answer::Failed => {
                let subject = Subject::Manifest(repository, digest.as_str());
                Err(self.status_error(resp, &context, subject).await)
            }
            Answer::Listed => {
                let bytes = read_limited(resp, MAX_MANIFEST_BYTES)
                    .await
                    .map_err(|e| self.transport_error(&context, e))?
                    .ok_or_else(|| RegistryError::TooLarge {
                        registry: self.name().to_string(),
                        repository: repository.to_string(),
                        what: format!("referrers of {digest}"),
                        limit: MAX_MANIFEST_BYTES,
                    })?;
                Ok(Some(RawManifest::new(OCI_INDEX, bytes)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_the_api_404_405_or_no_index_the_fallback_else_an_error() {
        assert_eq!(answer_of(200, Some(OCI_INDEX)), Answer::Listed);
        assert_eq!(
            answer_of(200, Some(&format!("{OCI_INDEX}; charset=utf-8"))),
            Answer::Listed
        );
        assert_eq!(answer_of(404, Some("application/json")), Answer::Fallback);
        assert_eq!(answer_of(405, None), Answer::Fallback);
        assert_eq!(answer_of(200, Some("text/html")), Answer::Fallback);
        assert_eq!(answer_of(500, Some(OCI_INDEX)), Answer::Failed);
        assert_eq!(answer_of(403, None), Answer::Failed);
    }
}
