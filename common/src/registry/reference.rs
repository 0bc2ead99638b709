//! Image references as Docker spells them, `[HOST[:PORT]/]REPO[:TAG][@sha256:…]`, and registry
//! destinations `HOST[:PORT][/PREFIX]`. A first component without `.` or `:` that is not
//! `localhost` is a Docker Hub repository (`docker.io`, `library/` for one-component names), as in
//! `docker pull`.

use super::error::RegistryError;
use crate::digest::Digest;
use std::fmt;

/// The name Docker gives Docker Hub in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host serving Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key of Docker Hub in Docker's `config.json` `auths`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A parsed image reference. `tag` and `digest` may both be set (`repo:tag@sha256:…`); the digest
/// then decides what is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `HOST[:PORT]` as written (`docker.io` for Docker Hub).
    pub registry: String,
    /// The repository path, e.g. `library/debian` or `mirror/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference; without tag or digest the tag is `latest`.
    pub fn parse(input: &str) -> Result<Reference, RegistryError> {
        let bad = |reason: &str| RegistryError::BadReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest =
                    Digest::parse(d).map_err(|_| bad("the digest is not sha256:<64 hex>"))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                check_tag(tag).map_err(|r| bad(&r))?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let (registry, repository) = split_registry(name);
        check_registry(&registry).map_err(|r| bad(&r))?;
        check_repository(&repository).map_err(|r| bad(&r))?;
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// A push destination `HOST[:PORT][/PREFIX]`: images go to `PREFIX/<their repository>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub registry: String,
    pub prefix: Option<String>,
}

impl Destination {
    /// Parses `HOST[:PORT][/PREFIX]`; the host part is required (no Docker Hub default).
    pub fn parse(input: &str) -> Result<Destination, RegistryError> {
        let bad = |reason: String| RegistryError::BadReference {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim_end_matches('/');
        let (registry, prefix) = match trimmed.split_once('/') {
            Some((r, p)) => (r, Some(p)),
            None => (trimmed, None),
        };
        check_registry(registry).map_err(bad)?;
        if let Some(p) = prefix {
            check_repository(p).map_err(bad)?;
        }
        Ok(Destination {
            registry: registry.to_string(),
            prefix: prefix.map(str::to_string),
        })
    }

    /// The repository an image whose own repository path is `repository` goes to.
    pub fn repository_for(&self, repository: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}/{repository}"),
            None => repository.to_string(),
        }
    }
}

/// Splits `name` into registry and repository the way Docker does.
fn split_registry(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        Some(_) => (DOCKER_HUB.to_string(), name.to_string()),
        None => (DOCKER_HUB.to_string(), format!("library/{name}")),
    }
}

/// The host that serves the registry API for `registry` (Docker Hub's differs from its name).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" {
        DOCKER_HUB_API
    } else {
        registry
    }
}

/// The key under which Docker's `config.json` keeps the credentials of `registry`.
pub fn auth_key(registry: &str) -> &str {
    if registry == DOCKER_HUB || registry == "index.docker.io" || registry == DOCKER_HUB_API {
        DOCKER_HUB_AUTH_KEY
    } else {
        registry
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let ok = !registry.is_empty()
        && registry
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if ok {
        Ok(())
    } else {
        Err(format!("{registry:?} is not a registry host[:port]"))
    }
}

/// Repository paths: lowercase components of `[a-z0-9]` joined by `.`, `_`, `__` or `-` runs.
fn check_repository(repository: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.ends_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.chars().all(|ch| {
                ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')
            })
    };
    if !repository.is_empty() && repository.len() <= 255 && repository.split('/').all(component_ok)
    {
        Ok(())
    } else {
        Err(format!(
            "{repository:?} is not a repository path (lowercase letters, digits and . _ - between /)"
        ))
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!("{tag:?} is not a tag"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_defaults() {
        let r = Reference::parse("debian").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/debian");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let r = Reference::parse("team/app:2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "team/app")
        );
        assert_eq!(r.tag.as_deref(), Some("2"));
        assert_eq!(api_host(&r.registry), DOCKER_HUB_API);
        assert_eq!(auth_key(&r.registry), DOCKER_HUB_AUTH_KEY);
    }

    #[test]
    fn host_port_tag_and_digest() {
        let r = Reference::parse("127.0.0.1:5000/mirror/app:2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "mirror/app");
        assert_eq!(r.target(), "2");
        assert_eq!(r.to_string(), "127.0.0.1:5000/mirror/app:2");
        let r = Reference::parse(&format!("localhost:5000/app@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.target(), D);
        let r = Reference::parse(&format!("reg.example.com/app:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.target(), D);
        let r = Reference::parse("localhost/app").unwrap();
        assert_eq!(r.registry, "localhost");
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn rejects_bad_references_naming_the_input() {
        for bad in [
            "",
            "App:1",
            "app:",
            "app@sha256:abc",
            "a//b",
            "reg.io/app:-x",
            "reg.io/",
        ] {
            let e = Reference::parse(bad).unwrap_err();
            assert!(
                matches!(e, RegistryError::BadReference { .. }),
                "{bad}: {e}"
            );
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn destinations() {
        let d = Destination::parse("127.0.0.1:5000/mirror").unwrap();
        assert_eq!(d.registry, "127.0.0.1:5000");
        assert_eq!(d.repository_for("app"), "mirror/app");
        let d = Destination::parse("reg.local/").unwrap();
        assert_eq!(d.prefix, None);
        assert_eq!(d.repository_for("team/app"), "team/app");
        assert!(Destination::parse("reg.local/Bad").is_err());
    }
}
