//! Where each image of a bundle goes in the registry: every tag `NAME:TAG` becomes
//! `PREFIX/PATH:TAG`, PATH being the repository path of the name without its registry host
//! (Docker Hub's `library/` dropped: `app:2` → `PREFIX/app:2`, `ghcr.io/o/x:1` → `PREFIX/o/x:1`).

use anyhow::{anyhow, Result};
use partial_common::registry::reference::DOCKER_HUB;
use partial_common::registry::{Destination, Reference};

/// A repository and tag in the destination registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub repository: String,
    pub tag: String,
}

impl Target {
    /// `REGISTRY/REPO:TAG`, or `REGISTRY/REPO@sha256:…` for a manifest pushed by digest.
    pub fn reference(&self, registry: &str) -> String {
        let sep = if self.tag.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        format!("{registry}/{}{sep}{}", self.repository, self.tag)
    }
}

/// The repository path of an image name, without its registry host (and Docker Hub's
/// `library/`); `None` when the name is not a reference (an image ID).
pub fn repository_path(name: &str) -> Option<(String, Option<String>)> {
    let r = Reference::parse(name).ok()?;
    let path = match r.repository.strip_prefix("library/") {
        Some(rest) if r.registry == DOCKER_HUB => rest.to_string(),
        _ => r.repository,
    };
    Some((path, r.tag))
}

/// The destination of `tag` (a bundle image's `NAME:TAG`).
pub fn target_of(dest: &Destination, tag: &str) -> Result<Target> {
    match repository_path(tag) {
        Some((path, Some(t))) => Ok(Target {
            repository: dest.repository_for(&path),
            tag: t,
        }),
        _ => Err(anyhow!(
            "the bundle's tag {tag:?} is not an image reference"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_under_the_prefix_without_host_or_library() {
        let d = Destination::parse("127.0.0.1:5000/mirror").unwrap();
        let t = target_of(&d, "app:2").unwrap();
        assert_eq!((t.repository.as_str(), t.tag.as_str()), ("mirror/app", "2"));
        let t = target_of(&d, "ghcr.io/o/x:1").unwrap();
        assert_eq!(t.repository, "mirror/o/x");
        let t = target_of(&d, "team/svc:3").unwrap();
        assert_eq!(t.repository, "mirror/team/svc");
        let bare = Destination::parse("127.0.0.1:5000").unwrap();
        assert_eq!(target_of(&bare, "app:2").unwrap().repository, "app");
        assert_eq!(t.reference("r:5000"), "r:5000/mirror/team/svc:3");
        let by_digest = Target {
            repository: "app".into(),
            tag: partial_common::Digest::of_bytes(b"m").to_string(),
        };
        assert!(by_digest
            .reference("r:5000")
            .starts_with("r:5000/app@sha256:"));
    }
}
