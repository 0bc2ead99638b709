//! Listing what a registry holds: the tags of a repository and the catalog of repositories
//! (which many registries refuse; that refusal is its own error so callers can fall back).
//! Both follow the `Link: <…>; rel="next"` pagination.

use super::auth::{repository_scope, CATALOG_SCOPE};
use super::client::{read_limited, Registry, Subject};
use super::error::RegistryError;
use reqwest::header::LINK;

/// Entries asked for per page.
const PAGE: usize = 1000;

impl Registry {
    /// The tags of `repository` (a repository that does not exist is [`RegistryError::NoRepository`]).
    pub async fn list_tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let scope = repository_scope(repository, "pull");
        let mut url = self.url(&format!("/v2/{repository}/tags/list?n={PAGE}"));
        let mut all = Vec::new();
        loop {
            let context = format!("list the tags of {repository}");
            let resp = self.send(self.http().get(&url), &scope, &context).await?;
            if !resp.status().is_success() {
                return Err(self
                    .status_error(resp, &context, Subject::Repository(repository))
                    .await);
            }
            let next = next_link(&resp);
            let page: Tags = self.json(resp, &context).await?;
            all.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) => url = self.resolve(&n),
                None => return Ok(all),
            }
        }
    }

    /// The repositories of the registry, when it allows listing them; a refusal (401, 403, 404)
    /// is [`RegistryError::CatalogNotAllowed`].
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            repositories: Option<Vec<String>>,
        }
        let mut url = self.url(&format!("/v2/_catalog?n={PAGE}"));
        let mut all = Vec::new();
        loop {
            let context = "list the catalog".to_string();
            let resp = self
                .send(self.http().get(&url), CATALOG_SCOPE, &context)
                .await?;
            let status = resp.status().as_u16();
            if matches!(status, 401 | 403 | 404) {
                return Err(RegistryError::CatalogNotAllowed {
                    registry: self.name().to_string(),
                    status,
                });
            }
            if !resp.status().is_success() {
                return Err(self.status_error(resp, &context, Subject::Registry).await);
            }
            let next = next_link(&resp);
            let page: Catalog = self.json(resp, &context).await?;
            all.extend(page.repositories.unwrap_or_default());
            match next {
                Some(n) => url = self.resolve(&n),
                None => return Ok(all),
            }
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
        context: &str,
    ) -> Result<T, RegistryError> {
        let protocol = |reason: String| RegistryError::Protocol {
            registry: self.name().to_string(),
            what: format!("answer to {context}"),
            reason,
        };
        let body = read_limited(resp, 16 << 20)
            .await
            .map_err(|e| self.transport_error(context, e))?
            .ok_or_else(|| protocol("larger than 16 MiB".into()))?;
        serde_json::from_slice(&body).map_err(|e| protocol(e.to_string()))
    }
}

/// The target of a `Link: <URL>; rel="next"` header.
pub(crate) fn next_link(resp: &reqwest::Response) -> Option<String> {
    let link = resp.headers().get(LINK)?.to_str().ok()?;
    parse_next(link)
}

pub(crate) fn parse_next(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_next_links() {
        assert_eq!(
            super::parse_next(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(super::parse_next(r#"</x>; rel="prev""#), None);
    }
}
