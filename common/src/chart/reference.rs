//! Image references as discovery reports them: one normal form, so that the same image named
//! `nginx`, `library/nginx:latest` or `index.docker.io/library/nginx` is found once.
//!
//! The form is the fully qualified one, `docker.io/library/nginx:latest`: a registry always
//! (`docker.io` when the first path component is not a host, i.e. has no `.` or `:` and is not
//! `localhost`), `library/` for single-component Docker Hub names, `:latest` when neither a tag
//! nor a digest is given, and a digest kept after the tag (`repo:tag@sha256:…`). The daemon
//! resolves this form to the same image as the short one. (The exporter's `select::tag_of`
//! normalises the other way, to Docker's short tag names; the lead reconciles the two.)

use std::fmt;

/// A reference that is not an image name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reference:?} is not an image reference: {why}")]
pub struct BadReference {
    pub reference: String,
    pub why: &'static str,
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl fmt::Display for ImageRef {
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

/// Parses and normalises `reference` (see the module doc for the form).
pub fn normalise(reference: &str) -> Result<ImageRef, BadReference> {
    let bad = |why| BadReference {
        reference: reference.to_string(),
        why,
    };
    let r = reference.trim();
    if r.is_empty() {
        return Err(bad("it is empty"));
    }
    if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it contains white space"));
    }
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let (algo, hex) = d
            .split_once(':')
            .ok_or_else(|| bad("the digest has no algorithm"))?;
        if algo.is_empty()
            || hex.len() < 32
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad("the digest is not ALGO:HEX"));
        }
    }
    // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (path, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && !t.starts_with(['.', '-'])
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return Err(bad("the tag is not valid"));
        }
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    let registry = if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        let host = parts.remove(0);
        if host == "index.docker.io" || host == "registry-1.docker.io" {
            "docker.io".to_string()
        } else {
            host.to_string()
        }
    } else {
        "docker.io".to_string()
    };
    for p in &parts {
        let ok = !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && p.as_bytes()[0].is_ascii_alphanumeric()
            && p.as_bytes()[p.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(bad(
                "a path component is empty, upper-case or has other characters",
            ));
        }
    }
    if registry == "docker.io" && parts.len() == 1 {
        parts.insert(0, "library");
    }
    Ok(ImageRef {
        registry,
        repository: parts.join("/"),
        tag: match (tag, digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        },
        digest: digest.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::normalise;

    fn n(r: &str) -> String {
        normalise(r).unwrap().to_string()
    }

    #[test]
    fn docker_hub_names_get_registry_library_and_latest() {
        assert_eq!(n("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(n("library/nginx:1"), "docker.io/library/nginx:1");
        assert_eq!(
            n("index.docker.io/library/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(
            n("bitnami/git:2.51.0-debian-12-r0"),
            "docker.io/bitnami/git:2.51.0-debian-12-r0"
        );
    }

    #[test]
    fn hosts_ports_and_digests_are_kept() {
        assert_eq!(
            n("quay.io/prometheus/node-exporter:v1.12.1"),
            "quay.io/prometheus/node-exporter:v1.12.1"
        );
        assert_eq!(n("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(n("localhost/app:2"), "localhost/app:2");
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(n(&format!("app@{d}")), format!("docker.io/library/app@{d}"));
        assert_eq!(
            n(&format!("reg.io:443/a/b:1@{d}")),
            format!("reg.io:443/a/b:1@{d}")
        );
    }

    #[test]
    fn junk_is_refused_with_the_reason() {
        for bad in [
            "",
            "Nginx",
            "a b",
            "app:",
            "app:-x",
            "app@sha256:12",
            "reg.io//x",
            "-app",
        ] {
            assert!(normalise(bad).is_err(), "{bad:?} accepted");
        }
        let e = normalise("App:1").unwrap_err();
        assert!(e.to_string().contains("\"App:1\""), "{e}");
    }
}
