//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>` lists the manifests whose
//! `subject` is that digest, as an OCI index. Registries without it (distribution 2.8) answer
//! 404 or 405, or something that is no index; then the caller reads the fallback tag
//! `sha256-<hex>` instead (`partial_model::image::referrers_tag`). The answer is decided by
//! [`answer_of`] from the status and content type alone. A listing the registry pages (`Link:
//! <…>; rel="next"`, parsed as for tag lists) is followed on the registry's own host, up to
//! [`MAX_REFERRER_PAGES`] pages and [`MAX_REFERRERS`] entries, and merged into one index.

use super::auth::repository_scope;
use super::client::{read_limited, Registry, Subject};
use super::error::RegistryError;
use super::listing::next_link;
use super::manifest::{RawManifest, MAX_MANIFEST_BYTES, OCI_INDEX};
use bytes::Bytes;
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

/// The most pages of one referrers listing followed (`Link: <…>; rel="next"`).
pub const MAX_REFERRER_PAGES: usize = 16;

/// The most referrers listed for one digest over all pages. The listing travels as one index
/// pushed under the fallback tag, so it must also stay within a manifest's size.
pub const MAX_REFERRERS: usize = 1024;

/// One page of a listing: its body and the next page's URL, if any.
struct Page {
    body: Bytes,
    next: Option<String>,
}

impl Registry {
    /// The referrers of `digest` in `repository` as the API lists them (an OCI index: its bytes
    /// as served when it has one page; the first page with every page's `manifests` when the
    /// registry pages it, at most [`MAX_REFERRER_PAGES`] pages and [`MAX_REFERRERS`] entries);
    /// `None` when the registry has no referrers API.
    pub async fn get_referrers(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<RawManifest>, RegistryError> {
        let what = format!("referrers of {repository}@{digest}");
        let mut url = self.url(&format!("/v2/{repository}/referrers/{digest}"));
        let mut pages = Vec::new();
        loop {
            let Some(page) = self
                .referrers_page(&url, repository, digest, pages.len())
                .await?
            else {
                return Ok(None);
            };
            pages.push(page.body);
            let Some(next) = page.next else { break };
            if pages.len() >= MAX_REFERRER_PAGES {
                return Err(self.protocol(
                    &what,
                    format!("more than {MAX_REFERRER_PAGES} pages (the most followed)"),
                ));
            }
            url = same_origin(self.base_url(), &self.resolve(&next))
                .map_err(|reason| self.protocol(&what, reason))?;
        }
        if let [one] = pages.as_slice() {
            return Ok(Some(RawManifest::new(OCI_INDEX, one.clone())));
        }
        let merged = merge_pages(&pages).map_err(|reason| self.protocol(&what, reason))?;
        if merged.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(RegistryError::TooLarge {
                registry: self.name().to_string(),
                repository: repository.to_string(),
                what,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        Ok(Some(RawManifest::new(OCI_INDEX, merged.into())))
    }

    /// Page `number` (from 0) of a referrers listing at `url`; `None` when the first page says
    /// the registry has no API. A later page must be an index.
    async fn referrers_page(
        &self,
        url: &str,
        repository: &str,
        digest: &Digest,
        number: usize,
    ) -> Result<Option<Page>, RegistryError> {
        let context = format!(
            "GET referrers of {repository}@{digest} (page {})",
            number + 1
        );
        let req = self.http().get(url).header(ACCEPT, OCI_INDEX);
        let resp = self
            .send(req, &repository_scope(repository, "pull"), &context)
            .await?;
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match answer_of(resp.status().as_u16(), content_type.as_deref()) {
            Answer::Fallback if number == 0 => return Ok(None),
            Answer::Fallback | Answer::Failed => {
                let subject = Subject::Manifest(repository, digest.as_str());
                return Err(self.status_error(resp, &context, subject).await);
            }
            Answer::Listed => {}
        }
        let next = next_link(&resp);
        let body = read_limited(resp, MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| self.transport_error(&context, e))?
            .ok_or_else(|| RegistryError::TooLarge {
                registry: self.name().to_string(),
                repository: repository.to_string(),
                what: format!("referrers of {digest}"),
                limit: MAX_MANIFEST_BYTES,
            })?;
        Ok(Some(Page { body, next }))
    }

    fn protocol(&self, what: &str, reason: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.name().to_string(),
            what: what.to_string(),
            reason,
        }
    }
}

/// `url` when it is on the registry at `base` (`http[s]://HOST[:PORT]`): a next page elsewhere
/// would get the registry's credentials, so it is an error naming it.
fn same_origin(base: &str, url: &str) -> Result<String, String> {
    let rest = url.strip_prefix(base).unwrap_or("x");
    if rest.starts_with('/') {
        Ok(url.to_string())
    } else {
        Err(format!(
            "its next page {url:?} is not on the registry {base}"
        ))
    }
}

/// One index of the pages' `manifests` (the first page's other fields kept), at most
/// [`MAX_REFERRERS`] entries; `Err` says which page is wrong.
fn merge_pages(pages: &[Bytes]) -> Result<Vec<u8>, String> {
    let mut merged: Option<serde_json::Value> = None;
    let mut all = Vec::new();
    for (k, body) in pages.iter().enumerate() {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| format!("page {} is not JSON: {e}", k + 1))?;
        let list = v["manifests"]
            .as_array()
            .ok_or_else(|| format!("page {} has no manifests list", k + 1))?;
        all.extend(list.iter().cloned());
        if all.len() > MAX_REFERRERS {
            return Err(format!(
                "more than {MAX_REFERRERS} referrers (the most carried), by page {}",
                k + 1
            ));
        }
        merged.get_or_insert(v);
    }
    let mut index = merged.ok_or("no page")?;
    index["manifests"] = serde_json::Value::Array(all);
    serde_json::to_vec(&index).map_err(|e| e.to_string())
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

    fn page(digests: &[&str], extra: &str) -> Bytes {
        let list: Vec<String> = digests
            .iter()
            .map(|d| {
                format!(
                    r#"{{"mediaType":"m","digest":"sha256:{}","size":1}}"#,
                    d.repeat(64)
                )
            })
            .collect();
        Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}"{extra},"manifests":[{}]}}"#,
            list.join(",")
        ))
    }

    #[test]
    fn pages_merge_into_one_index_within_the_bound() {
        let merged = merge_pages(&[
            page(&["a", "b"], r#","annotations":{"x":"1"}"#),
            page(&["c"], ""),
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&merged).unwrap();
        let digests: Vec<&str> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["digest"].as_str().unwrap()[7..8])
            .collect();
        assert_eq!(digests, ["a", "b", "c"]);
        assert_eq!(v["annotations"]["x"], "1", "the first page's other fields");
        let e = merge_pages(&[page(&["a"], ""), Bytes::from_static(b"{}")]).unwrap_err();
        assert!(e.contains("page 2"), "{e}");
        let many: Vec<&str> = vec!["d"; MAX_REFERRERS / 2 + 1];
        let e = merge_pages(&[page(&many, ""), page(&many, "")]).unwrap_err();
        assert!(
            e.contains(&MAX_REFERRERS.to_string()) && e.contains("page 2"),
            "{e}"
        );
    }

    #[test]
    fn a_next_page_must_be_on_the_registry() {
        let base = "http://127.0.0.1:5000";
        let ok = "http://127.0.0.1:5000/v2/app/referrers/sha256:aa?n=1&last=x";
        assert_eq!(same_origin(base, ok).unwrap(), ok);
        for bad in [
            "http://127.0.0.1:50001/v2/app/referrers/x",
            "http://evil.example/v2/app/referrers/x",
            "https://127.0.0.1:5000/v2/x",
            "http://127.0.0.1:5000@evil.example/v2/x",
        ] {
            assert!(same_origin(base, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_links_of_referrer_listings_parse() {
        let link = r#"</v2/app/referrers/sha256:aa?n=2&last=b>; rel="next""#;
        assert_eq!(
            crate::listing::parse_next(link).as_deref(),
            Some("/v2/app/referrers/sha256:aa?n=2&last=b")
        );
        let two = r#"<https://r/x?p=0>; rel="prev", </y?p=2>; rel=next"#;
        assert_eq!(crate::listing::parse_next(two).as_deref(), Some("/y?p=2"));
        assert_eq!(crate::listing::parse_next(r#"</x>; rel="prev""#), None);
    }
}
