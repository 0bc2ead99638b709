//! Registry destinations `HOST[:PORT][/PREFIX]` and Docker Hub's registry-specific names (API
//! host, credentials key). Image references themselves are parsed by [`partial_core::reference`]; this
//! module re-exports its [`ImageRef`](partial_core::reference::ImageRef) as [`Reference`] and maps its errors to
//! [`RegistryError::BadReference`].

use super::error::RegistryError;
pub use partial_core::reference::DOCKER_HUB;
use partial_core::reference::{check_registry, check_repository, BadReference};

/// A parsed image reference (`[HOST[:PORT]/]REPO[:TAG][@sha256:…]`).
pub use partial_core::reference::ImageRef as Reference;

/// The host serving Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key of Docker Hub in Docker's `config.json` `auths`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

impl From<BadReference> for RegistryError {
    fn from(e: BadReference) -> Self {
        RegistryError::BadReference {
            input: e.input,
            reason: e.reason,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_hosts_and_keys() {
        let r = Reference::parse("team/app:2").unwrap();
        assert_eq!(api_host(&r.registry), DOCKER_HUB_API);
        assert_eq!(auth_key(&r.registry), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key(DOCKER_HUB_API), DOCKER_HUB_AUTH_KEY);
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn bad_references_are_registry_errors_naming_the_input() {
        for bad in ["", "App:1", "app@sha256:abc", "reg.io/"] {
            let e = RegistryError::from(Reference::parse(bad).unwrap_err());
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
        assert!(Destination::parse("reg..local").is_err());
    }
}
