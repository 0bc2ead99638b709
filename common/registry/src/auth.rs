//! Authentication: where credentials come from (explicit, or Docker's `config.json` with its
//! `auths`, `credsStore` and `credHelpers`, read through the `docker_credential` crate) and the
//! `WWW-Authenticate` challenge a registry answers `/v2/` with (Basic, or Bearer with
//! realm/service/scope for the token flow). Each credential set remembers where it came from, so
//! a 401 can say which source was tried. Credentials go to a token realm only on the registry's
//! own host, over https, or on a host the user allowed ([`realm_credentials`]).

use super::error::RegistryError;
use super::reference::auth_key;
use docker_credential::{CredentialRetrievalError, DockerCredential};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

/// Why `--password-stdin` gave no password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("--password-stdin: cannot read the password from standard input: {0}")]
    Read(#[source] io::Error),
    #[error(
        "--password-stdin: standard input held no password (pipe it in, e.g. `… --password-stdin \
         < password-file`)"
    )]
    Empty,
}

/// A secret: username and password, or an identity (refresh) token from `docker login`.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Basic { username: String, password: String },
    IdentityToken(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Secret::IdentityToken(_) => f.write_str("IdentityToken(***)"),
        }
    }
}

/// The credentials for one registry and a description of their origin (for messages).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub secret: Option<Secret>,
    /// E.g. `--username alice`, `/root/.docker/config.json (credsStore "pass")`, `none (…)`.
    pub origin: String,
}

impl Credentials {
    /// No credentials, saying why.
    pub fn none(why: &str) -> Credentials {
        Credentials {
            secret: None,
            origin: format!("none ({why})"),
        }
    }

    /// Username and password given explicitly (`--username`, `--password-stdin`).
    pub fn explicit(username: &str, password: &str) -> Credentials {
        Credentials {
            secret: Some(Secret::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }),
            origin: format!("--username {username}"),
        }
    }

    /// `--username USER --password-stdin`: the password is all of `input` but its line end. An
    /// empty one is refused here: the registry's refusal of it would not name the cause.
    pub fn from_password_input(
        username: &str,
        mut input: impl Read,
    ) -> Result<Credentials, PasswordError> {
        let mut password = String::new();
        input
            .read_to_string(&mut password)
            .map_err(PasswordError::Read)?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(PasswordError::Empty);
        }
        Ok(Credentials::explicit(username, password))
    }

    /// What Docker's `config.json` holds for `registry` (in `$DOCKER_CONFIG`, else `~/.docker`),
    /// running a credential helper if it names one. A missing file or entry is no credentials;
    /// a helper that fails or a malformed entry is an error.
    pub fn from_docker_config(registry: &str) -> Result<Credentials, RegistryError> {
        let Some(dir) = docker_config_dir() else {
            return Ok(Credentials::none(
                "no DOCKER_CONFIG or HOME to find config.json",
            ));
        };
        let path = dir.join("config.json");
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Credentials::none(&format!(
                    "{} does not exist",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(RegistryError::Credentials {
                    registry: registry.to_string(),
                    origin: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let key = auth_key(registry);
        let origin = path.display().to_string();
        match docker_credential::get_credential_from_reader(std::io::BufReader::new(file), key) {
            Ok(DockerCredential::UsernamePassword(username, password)) => Ok(Credentials {
                secret: Some(Secret::Basic { username, password }),
                origin: format!("{origin} (entry {key})"),
            }),
            Ok(DockerCredential::IdentityToken(token)) => Ok(Credentials {
                secret: Some(Secret::IdentityToken(token)),
                origin: format!("{origin} (identity token for {key})"),
            }),
            Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(Credentials::none(
                &format!("no entry for {key} in {origin}"),
            )),
            Err(e) => Err(RegistryError::Credentials {
                registry: registry.to_string(),
                origin,
                reason: e.to_string().trim().to_string(),
            }),
        }
    }
}

/// Docker's configuration folder: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        /// The scope the registry asked for (present on 401s to a specific request).
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a `WWW-Authenticate` header value; `None` for schemes other than Basic and Bearer
    /// or a Bearer challenge without a realm.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let params = parse_params(rest);
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        } else {
            None
        }
    }
}

/// `key="value", key=value, …` with quoted values that may hold commas and `\"` escapes.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// Whether the token realm `realm` may receive the credentials of the registry at `base` (the
/// `https://HOST[:PORT]` or `http://…` the client settled on): yes for the registry's own host
/// (same name and port), for another host over https, and for a host the user allowed
/// (`allowed`: `--allow-realm HOST[:PORT]`, a bare HOST allowing any port). Otherwise the
/// reason they are withheld (a registry could name any host as its realm and collect them in
/// clear).
pub fn realm_credentials(base: &str, realm: &str, allowed: &[String]) -> Result<(), String> {
    let Some((host, port)) = host_port(realm) else {
        return Err(format!(
            "the token realm {realm:?} is not a URL with a host"
        ));
    };
    if host_port(base).is_some_and(|own| own == (host.clone(), port)) {
        return Ok(());
    }
    if realm
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        return Ok(());
    }
    let allowed_here = allowed.iter().any(|a| {
        let (h, p) = split_host_port(a);
        h.eq_ignore_ascii_case(&host) && p.is_none_or(|p| p == port)
    });
    if allowed_here {
        return Ok(());
    }
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Err(format!(
        "the token realm {realm} is on {shown}, not the registry's own host, over plain http; \
         --allow-realm {shown} sends them there if you trust it"
    ))
}

/// Checks an `--allow-realm` value: `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT` (for clap).
pub fn parse_allow_realm(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?}: expected HOST or HOST:PORT (e.g. auth.local:5001)");
    let (host, port) = split_host_port(s);
    let port_given = match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, after)| !after.is_empty()),
        None => s.rsplit_once(':').is_some_and(|(h, _)| !h.contains(':')),
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) || (port_given && port.is_none()) {
        return Err(bad());
    }
    Ok(s.to_string())
}

/// Whether the URLs `a` and `b` are on the same host and port.
pub fn same_host(a: &str, b: &str) -> bool {
    host_port(a).is_some_and(|h| Some(h) == host_port(b))
}

/// The host (lowercase, IPv6 without brackets) and port (or the scheme's default) of `url`.
fn host_port(url: &str) -> Option<(String, u16)> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_ascii_lowercase(), u.port_or_known_default()?))
}

/// `HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT` (a bare IPv6 address has no port).
fn split_host_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (h, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (s, None),
    }
}

/// The token scope for `repository` with `actions` (`pull` or `pull,push`).
pub fn repository_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// The scope of the catalog.
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

/// A token endpoint's answer (`token`, or OAuth2's `access_token`, and its lifetime).
#[derive(serde::Deserialize)]
pub(crate) struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long to use it: its lifetime (the distribution spec's default and
    /// minimum is 60 s) less a 10 s margin for requests under way.
    pub(crate) fn into_token(self) -> Option<(String, std::time::Duration)> {
        let lifetime = self.expires_in.unwrap_or(60).max(60);
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        Some((token, std::time::Duration::from_secs(lifetime - 10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_input_loses_its_line_end_and_must_not_be_empty() {
        let c = Credentials::from_password_input("alice", &b"s3cret\r\n"[..]).unwrap();
        assert_eq!(
            c.secret,
            Some(Secret::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            })
        );
        assert_eq!(c.origin, "--username alice");
        // Inner spaces and a trailing space are the password's own.
        let c = Credentials::from_password_input("bob", &b"a b \n"[..]).unwrap();
        assert!(matches!(c.secret, Some(Secret::Basic { password, .. }) if password == "a b "));
        for empty in [&b""[..], b"\n", b"\r\n\n"] {
            let e = Credentials::from_password_input("alice", empty).unwrap_err();
            assert!(matches!(e, PasswordError::Empty), "{e:?}");
            assert!(e.to_string().contains("--password-stdin"), "{e}");
        }
        let e = Credentials::from_password_input("alice", &[0xffu8, 0xfe][..]).unwrap_err();
        assert!(matches!(e, PasswordError::Read(_)), "{e:?}");
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse("bearer realm=https://h/t, service=s"),
            Some(Challenge::Bearer {
                realm: "https://h/t".into(),
                service: Some("s".into()),
                scope: None
            })
        );
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(
            parse_params(r#"a="x\"y,z", b=2"#)
                .get("a")
                .map(String::as_str),
            Some("x\"y,z")
        );
    }

    #[test]
    fn credentials_go_to_a_realm_on_the_registrys_host_over_https_or_when_allowed() {
        let none: &[String] = &[];
        // The registry's own host: name and port, whatever the scheme says.
        for (base, realm) in [
            ("http://127.0.0.1:5077", "http://127.0.0.1:5077/token"),
            ("http://LocalHost:5077", "http://localhost:5077/token?x=1"),
            ("https://reg.example", "https://reg.example:443/auth"),
            ("http://reg.example", "http://reg.example:80/auth"),
            ("http://[::1]:5000", "http://[::1]:5000/t"),
        ] {
            assert_eq!(
                realm_credentials(base, realm, none),
                Ok(()),
                "{base} {realm}"
            );
        }
        // Another host over https (Docker Hub: registry-1.docker.io, auth.docker.io).
        for (base, realm) in [
            (
                "https://registry-1.docker.io",
                "https://auth.docker.io/token",
            ),
            ("http://127.0.0.1:5077", "https://localhost:5078/token"),
        ] {
            assert_eq!(
                realm_credentials(base, realm, none),
                Ok(()),
                "{base} {realm}"
            );
        }
        // Another host or port over plain http: withheld, saying why and how to allow it.
        for (base, realm) in [
            ("http://127.0.0.1:5077", "http://localhost:5078/token"),
            ("http://127.0.0.1:5077", "http://127.0.0.1:5078/token"),
            ("https://reg.example", "http://reg.example/token"),
            ("https://reg.example", "http://evil.example/token"),
            ("http://[::1]:5000", "http://[::1]:5001/t"),
        ] {
            let why = realm_credentials(base, realm, none).unwrap_err();
            assert!(
                why.contains("--allow-realm") && why.contains("plain http"),
                "{why}"
            );
        }
        let why = realm_credentials("https://reg.example", "not a url", none).unwrap_err();
        assert!(why.contains("not a URL"), "{why}");
    }

    #[test]
    fn realms_allowed_explicitly_are_host_port_for_that_port_or_host_for_any() {
        let allowed = |hosts: &[&str]| hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        // Allowed explicitly: HOST:PORT that port only, HOST any port.
        let realm = "http://localhost:5078/token";
        let base = "http://127.0.0.1:5077";
        assert_eq!(
            realm_credentials(base, realm, &allowed(&["localhost:5078"])),
            Ok(())
        );
        assert_eq!(
            realm_credentials(base, realm, &allowed(&["LOCALHOST"])),
            Ok(())
        );
        assert!(realm_credentials(base, realm, &allowed(&["localhost:5079"])).is_err());
        assert!(realm_credentials(base, realm, &allowed(&["127.0.0.1:5078"])).is_err());
        for good in [
            "auth.local",
            "auth.local:5001",
            "[::1]:5001",
            "[::1]",
            "::1",
            "10.0.0.1",
        ] {
            assert_eq!(parse_allow_realm(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "auth.local:",
            "auth.local:x",
            "http://auth.local",
            "[::1]:",
            "[::1]x",
            "u@h",
        ] {
            assert!(parse_allow_realm(bad).is_err(), "{bad:?}");
        }
        let v6 = "http://[::1]:5001/t";
        assert_eq!(
            realm_credentials(base, v6, &allowed(&["[::1]:5001"])),
            Ok(())
        );
        assert_eq!(realm_credentials(base, v6, &allowed(&["::1"])), Ok(()));
        assert!(realm_credentials(base, v6, &allowed(&["[::1]:5002"])).is_err());
    }

    #[test]
    fn token_answers_and_lifetimes() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","expires_in":300}"#).unwrap();
        assert_eq!(
            t.into_token(),
            Some(("a".into(), std::time::Duration::from_secs(290)))
        );
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"b","expires_in":5}"#).unwrap();
        assert_eq!(
            t.into_token(),
            Some(("b".into(), std::time::Duration::from_secs(50)))
        );
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert_eq!(t.into_token(), None);
    }

    #[test]
    fn reads_docker_config_auths_and_says_where_from() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            // "alice:s3cret" in base64
            r#"{"auths":{"reg.local:5000":{"auth":"YWxpY2U6czNjcmV0"}}}"#,
        )
        .unwrap();
        // The environment is process-wide: this is the only test in common that sets it.
        std::env::set_var("DOCKER_CONFIG", dir.path());
        let c = Credentials::from_docker_config("reg.local:5000").unwrap();
        assert_eq!(
            c.secret,
            Some(Secret::Basic {
                username: "alice".into(),
                password: "s3cret".into()
            })
        );
        assert!(c.origin.contains("config.json"), "{}", c.origin);
        let none = Credentials::from_docker_config("other.local").unwrap();
        assert!(none.secret.is_none());
        assert!(
            none.origin.contains("no entry for other.local"),
            "{}",
            none.origin
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"partial-test-missing-helper"}"#,
        )
        .unwrap();
        let e = Credentials::from_docker_config("reg.local:5000").unwrap_err();
        assert!(e.to_string().contains("reg.local:5000"), "{e}");
        std::env::remove_var("DOCKER_CONFIG");
    }
}
