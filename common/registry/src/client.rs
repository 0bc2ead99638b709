//! The connection to one registry: choosing https or (where allowed) http by pinging `/v2/`,
//! keeping the challenge it answers with, authorising each request for its scope (Basic, or a
//! Bearer token fetched from the challenge's realm and cached per scope; the credentials go to a
//! realm only where [`realm_credentials`] allows, else the token is asked for anonymously; Basic
//! also when only a repository asks for it, on the registry's own host), and turning transport
//! failures and error statuses into [`RegistryError`]s that name the registry and the subject.

use super::auth::{realm_credentials, same_host, Challenge, Credentials, Secret, TokenResponse};
use super::error::RegistryError;
use super::reference::api_host;
use super::transport::{build_clients, is_tls_error, Clients, TransportOptions};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use partial_core::digest::Digest;
use reqwest::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// How to connect to a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    pub transport: TransportOptions,
    /// Credentials to use; `None` reads Docker's `config.json` for the registry.
    pub credentials: Option<Credentials>,
    /// Token realms on other hosts that may get the credentials over plain http
    /// (`--allow-realm HOST[:PORT]`; see [`realm_credentials`]).
    pub allow_realms: Vec<String>,
}

/// A connected registry. Shareable between concurrent operations (`&self` everywhere).
pub struct Registry {
    name: String,
    base: String,
    http: Clients,
    idle_timeout: std::time::Duration,
    credentials: Credentials,
    challenge: Option<Challenge>,
    allow_realms: Vec<String>,
    /// Why the credentials were withheld from a token realm (for the errors that follow).
    withheld: Mutex<Option<String>>,
    /// `/v2/` is anonymous but a repository asked for Basic: send it from now on.
    basic_on_demand: AtomicBool,
    /// Bearer tokens by scope, each with the instant it stops being used.
    tokens: Mutex<HashMap<String, (String, Instant)>>,
    certs_dir: String,
}

/// Shows where the registry is and whose credentials are used, never secrets or tokens.
impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("credentials", &self.credentials.origin)
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

/// What a request is about, for the error a 404 becomes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Subject<'a> {
    Registry,
    Repository(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a Digest),
}

impl Registry {
    /// Connects to `registry` (`HOST[:PORT]`, `docker.io` for Docker Hub): reads the credentials,
    /// builds the TLS client and pings `/v2/` over https, falling back to http for loopback
    /// registries and with `insecure`.
    pub async fn connect(
        registry: &str,
        opts: &RegistryOptions,
    ) -> Result<Registry, RegistryError> {
        let credentials = match &opts.credentials {
            Some(c) => c.clone(),
            None => {
                // A credential helper is a process to run: not on the async workers.
                let name = registry.to_string();
                tokio::task::spawn_blocking(move || Credentials::from_docker_config(&name))
                    .await
                    .map_err(|e| RegistryError::Credentials {
                        registry: registry.to_string(),
                        origin: "Docker's config.json".into(),
                        reason: e.to_string(),
                    })??
            }
        };
        let http = build_clients(registry, &opts.transport)?;
        let host = api_host(registry);
        let certs_dir = opts
            .transport
            .registry_certs_dir(registry)
            .display()
            .to_string();
        let mut reg = Registry {
            name: registry.to_string(),
            base: format!("https://{host}"),
            http,
            idle_timeout: opts.transport.idle_timeout,
            credentials,
            challenge: None,
            allow_realms: opts.allow_realms.clone(),
            withheld: Mutex::new(None),
            basic_on_demand: AtomicBool::new(false),
            tokens: Mutex::new(HashMap::new()),
            certs_dir,
        };
        let timeout = opts.transport.connect_timeout;
        let resp = match reg.ping(timeout).await {
            Ok(resp) => resp,
            Err(https_err) if opts.transport.allows_http(registry) => {
                reg.base = format!("http://{host}");
                match reg.ping(timeout).await {
                    Ok(r) if matches!(r.status().as_u16(), 200 | 401) => r,
                    _ => return Err(reg.connect_error(https_err)),
                }
            }
            Err(e) => return Err(reg.connect_error(e)),
        };
        reg.challenge = match resp.status() {
            StatusCode::OK => None,
            StatusCode::UNAUTHORIZED => {
                Some(challenge_of(&resp).ok_or_else(|| RegistryError::Protocol {
                    registry: reg.name.clone(),
                    what: "answer to /v2/".into(),
                    reason: "HTTP 401 without a Basic or Bearer WWW-Authenticate challenge".into(),
                })?)
            }
            status => {
                return Err(RegistryError::Protocol {
                    registry: reg.name.clone(),
                    what: "answer to /v2/".into(),
                    reason: format!("HTTP {status}: not a registry (API v2) at {}", reg.base),
                })
            }
        };
        Ok(reg)
    }

    async fn ping(&self, timeout: std::time::Duration) -> Result<Response, reqwest::Error> {
        self.http
            .read
            .get(self.url("/v2/"))
            .timeout(timeout)
            .send()
            .await
    }

    fn connect_error(&self, e: reqwest::Error) -> RegistryError {
        if is_tls_error(&e) {
            RegistryError::Tls {
                registry: self.name.clone(),
                certs_dir: self.certs_dir.clone(),
                source: e,
            }
        } else {
            self.transport_error("ping /v2/", e)
        }
    }

    /// The registry as named by the user (`HOST[:PORT]`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `https://HOST[:PORT]` or `http://…`: what the ping settled on.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Where the credentials in use came from (or why there are none).
    pub fn credentials_origin(&self) -> &str {
        &self.credentials.origin
    }

    /// The challenge `/v2/` answered with (`None`: no authentication required).
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Resolves an upload `Location` (absolute, or relative to the registry).
    pub(crate) fn resolve(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            self.url(location)
        }
    }

    /// The client for requests without a streaming body.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http.read
    }

    /// The client for uploads (see [`Clients::upload`]).
    pub(crate) fn upload_http(&self) -> &reqwest::Client {
        &self.http.upload
    }

    /// The bound on silence: no response byte, or no upload progress, for this long.
    pub(crate) fn idle_timeout(&self) -> std::time::Duration {
        self.idle_timeout
    }

    /// Sends `req` authorised for `scope`. A request without a streaming body is resent once
    /// when a 401 carries a Bearer challenge (token expired, or another scope wanted).
    pub(crate) async fn send(
        &self,
        req: RequestBuilder,
        scope: &str,
        context: &str,
    ) -> Result<Response, RegistryError> {
        let again = req.try_clone();
        let resp = self.send_once(req, scope, context).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let Some(again) = again else {
            return Ok(resp);
        };
        let (realm, service, wanted) = match challenge_of(&resp) {
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => (realm, service, scope),
            // An anonymous `/v2/` with Basic per repository: the credentials, to the registry's
            // own host only, and from now on with every request.
            Some(Challenge::Basic) if self.basic_wanted_by(&resp) => {
                self.basic_on_demand.store(true, Ordering::SeqCst);
                let Some(value) = self.basic_value()? else {
                    return Ok(resp);
                };
                return again
                    .header(AUTHORIZATION, value)
                    .send()
                    .await
                    .map_err(|e| self.transport_error(context, e));
            }
            _ => return Ok(resp),
        };
        let wanted = wanted.unwrap_or_else(|| scope.to_string());
        let token = self
            .fetch_token(&realm, service.as_deref(), &wanted)
            .await?;
        self.store_token(scope, &token);
        again
            .bearer_auth(&token.0)
            .send()
            .await
            .map_err(|e| self.transport_error(context, e))
    }

    async fn send_once(
        &self,
        req: RequestBuilder,
        scope: &str,
        context: &str,
    ) -> Result<Response, RegistryError> {
        let req = match self.authorization(scope).await? {
            Some(value) => req.header(AUTHORIZATION, value),
            None => req,
        };
        req.send()
            .await
            .map_err(|e| self.transport_error(context, e))
    }

    /// Whether a 401 Basic challenge came from the registry's own host, while no Basic
    /// credentials were sent (else they were wrong: the 401 stands).
    fn basic_wanted_by(&self, resp: &Response) -> bool {
        !matches!(self.challenge, Some(Challenge::Basic))
            && !self.basic_on_demand.load(Ordering::SeqCst)
            && same_host(resp.url().as_str(), &self.base)
    }

    /// `Basic …` of the credentials, when they are a username and password.
    fn basic_value(&self) -> Result<Option<HeaderValue>, RegistryError> {
        let Some(Secret::Basic { username, password }) = &self.credentials.secret else {
            return Ok(None);
        };
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.header_value(format!("Basic {b64}")).map(Some)
    }

    fn header_value(&self, value: String) -> Result<HeaderValue, RegistryError> {
        HeaderValue::from_str(&value).map_err(|_| RegistryError::Credentials {
            registry: self.name.clone(),
            origin: self.credentials.origin.clone(),
            reason: "the credentials or token hold characters not allowed in an HTTP header".into(),
        })
    }

    /// The `Authorization` value for `scope`, fetching a token when the registry wants Bearer.
    pub(crate) async fn authorization(
        &self,
        scope: &str,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let value = match &self.challenge {
            None if self.basic_on_demand.load(Ordering::SeqCst) => return self.basic_value(),
            None => return Ok(None),
            Some(Challenge::Basic) => return self.basic_value(),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let cached = self
                    .lock_tokens()
                    .get(scope)
                    .filter(|(_, until)| Instant::now() < *until)
                    .map(|(t, _)| t.clone());
                let token = match cached {
                    Some(t) => t,
                    None => {
                        let t = self.fetch_token(realm, service.as_deref(), scope).await?;
                        self.store_token(scope, &t);
                        t.0
                    }
                };
                format!("Bearer {token}")
            }
        };
        self.header_value(value).map(Some)
    }

    fn store_token(&self, scope: &str, (token, lifetime): &(String, std::time::Duration)) {
        self.lock_tokens().insert(
            scope.to_string(),
            (token.clone(), Instant::now() + *lifetime),
        );
    }

    fn lock_withheld(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.withheld
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The credentials tried, as errors name them: withheld from the token realm, if they were.
    fn tried(&self) -> String {
        match &*self.lock_withheld() {
            Some(why) => format!(
                "{} (withheld from the token realm: {why})",
                self.credentials.origin
            ),
            None => self.credentials.origin.clone(),
        }
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The Bearer token flow: GET the realm with service and scope (Basic credentials if any), or
    /// POST an OAuth2 refresh-token grant when the credential is an identity token.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<(String, std::time::Duration), RegistryError> {
        let context = format!("a token for {scope} from {realm}");
        // Credentials go to a realm elsewhere only over https or when allowed.
        let withheld = match (
            &self.credentials.secret,
            realm_credentials(&self.base, realm, &self.allow_realms),
        ) {
            (Some(_), Err(why)) => Some(why),
            _ => None,
        };
        let secret = match withheld {
            Some(_) => &None,
            None => &self.credentials.secret,
        };
        let req = self.token_request(realm, service, scope, secret)?;
        let protocol = |reason: String| self.realm_error(realm, reason);
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(&context, e))?;
        if !resp.status().is_success() {
            let err = self.status_error(resp, &context, Subject::Registry).await;
            return Err(match withheld {
                Some(why) => RegistryError::CredentialsWithheld {
                    registry: self.name.clone(),
                    origin: self.credentials.origin.clone(),
                    why,
                    source: Box::new(err),
                },
                None => err,
            });
        }
        if let Some(why) = withheld {
            // Anonymous tokens were enough so far; a later refusal says why.
            *self.lock_withheld() = Some(why);
        }
        let body = read_limited(resp, 1 << 20)
            .await
            .map_err(|e| self.transport_error(&context, e))?;
        let body = body.ok_or_else(|| protocol("token answer larger than 1 MiB".into()))?;
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| protocol(format!("token answer: {e}")))?;
        parsed
            .into_token()
            .ok_or_else(|| protocol("token answer without a token".into()))
    }

    /// A realm's answer or address that makes no sense, naming the realm.
    fn realm_error(&self, realm: &str, reason: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.name.clone(),
            what: format!("token realm {realm:?}"),
            reason,
        }
    }

    /// The token request to `realm`: a GET with service and scope (Basic credentials if any), or
    /// a POST of an OAuth2 refresh-token grant when the credential is an identity token.
    fn token_request(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        secret: &Option<Secret>,
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = service {
            params.push(("service", s));
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            params.push(("scope", s));
        }
        if let Some(Secret::IdentityToken(refresh)) = secret {
            params.push(("grant_type", "refresh_token"));
            params.push(("refresh_token", refresh));
            params.push(("client_id", "partial-save"));
            let mut form = reqwest::Url::parse("http://form.invalid/")
                .map_err(|e| self.realm_error(realm, e.to_string()))?;
            form.query_pairs_mut().extend_pairs(&params);
            return Ok(self
                .http
                .read
                .post(realm)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.query().unwrap_or_default().to_string()));
        }
        let url = reqwest::Url::parse_with_params(realm, &params)
            .map_err(|e| self.realm_error(realm, e.to_string()))?;
        let req = self.http.read.get(url);
        Ok(match secret {
            Some(Secret::Basic { username, password }) => req.basic_auth(username, Some(password)),
            _ => req,
        })
    }

    /// A transport failure (refused, reset, timed out, cut off mid-body) as the unreachable error.
    pub(crate) fn transport_error(&self, context: &str, source: reqwest::Error) -> RegistryError {
        // An upload session's URL carries a long opaque state: the context names the blob.
        let source = if source.url().is_some_and(|u| u.query().is_some()) {
            source.without_url()
        } else {
            source
        };
        RegistryError::Unreachable {
            registry: self.name.clone(),
            context: context.to_string(),
            source,
        }
    }

    /// The error for an unexpected status, read from the registry's JSON error body when any.
    pub(crate) async fn status_error(
        &self,
        resp: Response,
        context: &str,
        subject: Subject<'_>,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let body = read_limited(resp, 64 << 10)
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let (codes, message) = error_codes(&body);
        let detail = if message.is_empty() {
            String::new()
        } else {
            format!(": {message}")
        };
        let registry = self.name.clone();
        let has = |c: &str| codes.iter().any(|x| x == c);
        match status {
            401 => RegistryError::Unauthorized {
                registry,
                context: context.to_string(),
                tried: self.tried(),
                detail,
            },
            403 => RegistryError::Denied {
                registry,
                context: context.to_string(),
                tried: self.tried(),
                detail,
            },
            404 => match subject {
                _ if has("NAME_UNKNOWN") || message.to_ascii_lowercase().contains("project") => {
                    RegistryError::NoRepository {
                        registry,
                        repository: subject_repository(subject).to_string(),
                        detail,
                    }
                }
                Subject::Manifest(repository, reference) => RegistryError::NoManifest {
                    registry,
                    repository: repository.to_string(),
                    reference: reference.to_string(),
                },
                Subject::Blob(repository, digest) => RegistryError::NoBlob {
                    registry,
                    repository: repository.to_string(),
                    digest: digest.clone(),
                },
                Subject::Repository(repository) => RegistryError::NoRepository {
                    registry,
                    repository: repository.to_string(),
                    detail,
                },
                Subject::Registry => RegistryError::Rejected {
                    registry,
                    context: context.to_string(),
                    status,
                    detail: message,
                },
            },
            500..=599 => RegistryError::ServerError {
                registry,
                context: context.to_string(),
                status,
                detail: message,
            },
            _ => RegistryError::Rejected {
                registry,
                context: context.to_string(),
                status,
                detail: message,
            },
        }
    }
}

fn subject_repository<'a>(subject: Subject<'a>) -> &'a str {
    match subject {
        Subject::Registry => "",
        Subject::Repository(r) | Subject::Manifest(r, _) | Subject::Blob(r, _) => r,
    }
}

/// The first Basic or Bearer challenge of a response.
fn challenge_of(resp: &Response) -> Option<Challenge> {
    resp.headers()
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Challenge::parse)
}

/// The codes and messages of a distribution error body `{"errors":[{"code","message"}]}`; a
/// non-JSON body becomes the message (trimmed).
fn error_codes(body: &[u8]) -> (Vec<String>, String) {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(b) => {
            let codes = b.errors.iter().filter_map(|e| e.code.clone()).collect();
            let message = b
                .errors
                .iter()
                .map(|e| match (&e.code, &e.message) {
                    (Some(c), Some(m)) => format!("{c}: {m}"),
                    (Some(c), None) => c.clone(),
                    (None, Some(m)) => m.clone(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            (codes, message)
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.trim().chars().take(300).collect();
            (Vec::new(), text)
        }
    }
}

/// Reads a whole body of at most `limit` bytes; `Ok(None)` when it is longer.
pub(crate) async fn read_limited(
    mut resp: Response,
    limit: u64,
) -> Result<Option<Bytes>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = resp.chunk().await? {
        if buf.len() as u64 + chunk.len() as u64 > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    /// One request a fake server saw: `METHOD PATH` and its `Authorization` header.
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// A fake HTTP server on 127.0.0.1 (one request per connection; a TLS hello is dropped):
    /// `answer(request line, authorization)` gives the status line, extra headers and body.
    fn fake_server(
        answer: impl Fn(&str, Option<&str>) -> (&'static str, String, String) + Send + 'static,
    ) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Seen = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || !line.starts_with("GET ") {
                    continue;
                }
                let mut auth = None;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = Some(v.trim().to_string());
                        }
                    }
                }
                let request: String = line.split(' ').take(2).collect::<Vec<_>>().join(" ");
                let (status, headers, body) = answer(&request, auth.as_deref());
                log.lock().unwrap().push((request, auth));
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (addr, seen)
    }

    fn with(credentials: Credentials, allow_realms: &[&str]) -> RegistryOptions {
        RegistryOptions {
            transport: TransportOptions {
                connect_timeout: std::time::Duration::from_secs(5),
                ..TransportOptions::default()
            },
            credentials: Some(credentials),
            allow_realms: allow_realms.iter().map(|s| s.to_string()).collect(),
        }
    }

    const ALICE: &str = "Basic YWxpY2U6czNjcmV0"; // alice:s3cret

    #[tokio::test]
    async fn a_basic_challenge_on_a_repository_gets_the_credentials() {
        // `/v2/` is anonymous; the repository wants Basic.
        let (addr, seen) = fake_server(|req, auth| match (req, auth) {
            ("GET /v2/", _) => ("200 OK", String::new(), "{}".into()),
            (_, Some(ALICE)) => ("200 OK", String::new(), r#"{"tags":["1"]}"#.into()),
            _ => (
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"repo\"\r\n".into(),
                "{}".into(),
            ),
        });
        let reg = Registry::connect(&addr, &with(Credentials::explicit("alice", "s3cret"), &[]))
            .await
            .unwrap();
        assert_eq!(reg.challenge(), None);
        assert_eq!(reg.list_tags("app").await.unwrap(), ["1"]);
        // Once asked for, sent with every request.
        assert_eq!(reg.list_tags("other").await.unwrap(), ["1"]);
        let seen = seen.lock().unwrap().clone();
        let tags: Vec<_> = seen.iter().filter(|(r, _)| r.contains("/tags/")).collect();
        assert_eq!(tags.len(), 3, "{seen:?}");
        assert_eq!(tags[0].1, None);
        assert_eq!(tags[1].1.as_deref(), Some(ALICE));
        assert_eq!(tags[2].1.as_deref(), Some(ALICE));
        // Wrong credentials: the 401 stands, naming them.
        let reg = Registry::connect(&addr, &with(Credentials::explicit("alice", "nope"), &[]))
            .await
            .unwrap();
        let e = reg.list_tags("app").await.unwrap_err();
        assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    }

    /// A registry whose realm is the token server `token` (another port, plain http); the token
    /// server gives a token only with alice's credentials when `needs_auth`.
    fn realm_pair(needs_auth: bool) -> (String, String, Seen) {
        let (token, token_seen) = fake_server(move |_, auth| {
            if needs_auth && auth != Some(ALICE) {
                ("401 Unauthorized", String::new(), "{}".into())
            } else {
                ("200 OK", String::new(), r#"{"token":"t0k"}"#.into())
            }
        });
        let realm = format!(
            "http://localhost:{}/token",
            token.rsplit_once(':').unwrap().1
        );
        let (reg, _) = fake_server(move |req, auth| match (req, auth) {
            (r, Some("Bearer t0k")) if r.contains("/tags/") => {
                ("200 OK", String::new(), r#"{"tags":["1"]}"#.into())
            }
            _ => (
                "401 Unauthorized",
                format!("WWW-Authenticate: Bearer realm=\"{realm}\",service=\"reg\"\r\n"),
                "{}".into(),
            ),
        });
        (reg, token, token_seen)
    }

    #[tokio::test]
    async fn a_realm_on_another_port_over_http_gets_no_credentials_unless_allowed() {
        let alice = || Credentials::explicit("alice", "s3cret");
        // An anonymous token is enough: it is used, the credentials stay home.
        let (reg_addr, _, token_seen) = realm_pair(false);
        let reg = Registry::connect(&reg_addr, &with(alice(), &[]))
            .await
            .unwrap();
        assert_eq!(reg.list_tags("app").await.unwrap(), ["1"]);
        assert!(
            token_seen.lock().unwrap().iter().all(|(_, a)| a.is_none()),
            "{token_seen:?}"
        );
        // The realm wants them: refused, saying why and how to allow it.
        let (reg_addr, token_addr, token_seen) = realm_pair(true);
        let port = token_addr.rsplit_once(':').unwrap().1;
        let reg = Registry::connect(&reg_addr, &with(alice(), &[]))
            .await
            .unwrap();
        let e = reg.list_tags("app").await.unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("withheld") && msg.contains(&format!("--allow-realm localhost:{port}")),
            "{msg}"
        );
        assert_eq!(e.exit_code(), partial_core::exit::DAEMON);
        assert!(token_seen.lock().unwrap().iter().all(|(_, a)| a.is_none()));
        // Allowed: sent.
        let allow = format!("localhost:{port}");
        let reg = Registry::connect(&reg_addr, &with(alice(), &[&allow]))
            .await
            .unwrap();
        assert_eq!(reg.list_tags("app").await.unwrap(), ["1"]);
        assert!(token_seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, a)| a.as_deref() == Some(ALICE)));
    }

    #[test]
    fn reads_distribution_error_bodies() {
        let (codes, msg) = error_codes(
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#,
        );
        assert_eq!(codes, ["NAME_UNKNOWN"]);
        assert_eq!(msg, "NAME_UNKNOWN: repository name not known to registry");
        let (codes, msg) = error_codes(b"  plain failure\n");
        assert!(codes.is_empty());
        assert_eq!(msg, "plain failure");
    }
}
