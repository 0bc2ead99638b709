//! The one image-reference module of the project. [`ImageRef::parse`] reads Docker's grammar,
//! `[HOST[:PORT]/]REPO[:TAG][@sha256:…]`, with Docker's rules for hosts, repository paths, tags and
//! digests, and gives the fully qualified form (`docker.io/library/app:latest`); the registry client
//! and chart discovery use it. [`familiar`] is the lenient other direction: `docker.io/library/app:1`,
//! `library/app:1` and `app:1` all name the tag `app:1`, `app` names `app:latest`. Every place that
//! compares a reference with a tag (selection on a daemon, in archives, tags written to bundles)
//! goes through [`familiar`], so two spellings of one tag never disagree.

use crate::digest::Digest;
use std::fmt;

/// The name Docker gives Docker Hub in references.
pub const DOCKER_HUB: &str = "docker.io";

/// A reference that is not an image reference, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an image reference: {reason}")]
pub struct BadReference {
    pub input: String,
    pub reason: String,
}

/// A parsed image reference in its normal form: the registry always set (`docker.io` for Docker
/// Hub, `index.docker.io` folded into it), `library/` before one-component Docker Hub names, and
/// the tag `latest` when neither tag nor digest is given. `tag` and `digest` may both be set
/// (`repo:tag@sha256:…`); the digest then decides what the reference names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// `HOST[:PORT]`.
    pub registry: String,
    /// The repository path, e.g. `library/debian` or `mirror/app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses `input` as Docker does (`docker pull`'s normalisation); nothing is trimmed.
    pub fn parse(input: &str) -> Result<ImageRef, BadReference> {
        let bad = |reason: String| BadReference {
            input: input.to_string(),
            reason,
        };
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d)
                    .map_err(|_| bad(format!("the digest {d:?} is not sha256:<64 hex>")))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                check_tag(tag).map_err(bad)?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let (registry, repository) = split_registry(name);
        check_registry(&registry).map_err(bad)?;
        check_repository(&repository).map_err(bad)?;
        if registry.len() + 1 + repository.len() > 255 {
            return Err(bad("the name is longer than 255 characters".to_string()));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag,
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The familiar tag this reference names (`app:1`, `me/app:1`, `reg:5000/app:1`), as
    /// [`familiar`] gives it; `None` when a digest decides what it names.
    pub fn familiar(&self) -> Option<String> {
        if self.digest.is_some() {
            return None;
        }
        let tag = self.tag.as_deref()?;
        if self.registry != DOCKER_HUB {
            return Some(format!("{}/{}:{tag}", self.registry, self.repository));
        }
        let repository = self
            .repository
            .strip_prefix("library/")
            .unwrap_or(&self.repository);
        Some(format!("{repository}:{tag}"))
    }

    /// What to ask a registry for: the digest when there is one, else the tag.
    pub fn target(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

/// The fully qualified form, `docker.io/library/app:1` (`…:tag@sha256:…` when both are set).
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

impl std::str::FromStr for ImageRef {
    type Err = BadReference;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Whether the first path component of a name is a registry host, as Docker decides: it has a
/// `.` or a `:`, is `localhost`, or has upper-case letters (which no repository path may have).
fn is_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// Splits `name` into registry and repository the way Docker does.
fn split_registry(name: &str) -> (String, String) {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain(first) => (first, rest),
        _ => (DOCKER_HUB, name),
    };
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB
    } else {
        registry
    };
    if registry == DOCKER_HUB && !path.contains('/') {
        (registry.to_string(), format!("library/{path}"))
    } else {
        (registry.to_string(), path.to_string())
    }
}

/// A registry `HOST[:PORT]`: DNS labels of letters, digits and inner `-` joined by `.`, or an IPv6
/// address in brackets, and an optional numeric port.
pub fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.contains(']') => (h, Some(p)),
        _ => (registry, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => host.split('.').all(label_ok),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!("{registry:?} is not a registry host[:port]"))
    }
}

/// A repository path: `/`-separated components of Docker's grammar (see [`is_path_component`]).
pub fn check_repository(repository: &str) -> Result<(), String> {
    if !repository.is_empty()
        && repository.len() <= 255
        && repository.split('/').all(is_path_component)
    {
        Ok(())
    } else {
        Err(format!(
            "{repository:?} is not a repository path (lowercase letters and digits, separated by \
             one `.`, `_`, `__` or `-`s, between /)"
        ))
    }
}

/// A tag: up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`.
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

/// The familiar form of a tag reference (`docker.io/library/x:t` → `x:t`, `docker.io/u/x` →
/// `u/x:latest`, `reg:5000/x` → `reg:5000/x:latest`); `None` for references that name no tag:
/// digest references (`x@sha256:…`), `sha256:…` IDs and bare hex IDs of 12 to 64 digits.
pub fn familiar(reference: &str) -> Option<String> {
    let r = reference.trim();
    if r.is_empty() || r.contains('@') || r.starts_with("sha256:") || is_hex_id(r) {
        return None;
    }
    let r = r
        .strip_prefix("docker.io/library/")
        .or_else(|| r.strip_prefix("index.docker.io/library/"))
        .or_else(|| r.strip_prefix("docker.io/"))
        .or_else(|| r.strip_prefix("index.docker.io/"))
        .unwrap_or(r);
    let r = r.strip_prefix("library/").unwrap_or(r);
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') {
        Some(r.to_string())
    } else {
        Some(format!("{r}:latest"))
    }
}

/// The tag `reference` names among `tags` (one image's `RepoTags`, as the daemon reports them),
/// in the form to record: the familiar one when a tag has it (Docker reports `app:1`; podman's
/// compat API `docker.io/library/app:1` for the same name), else podman's own name for a short
/// name's local image, `localhost/app:1`, which is what `app:1` means there. `None` when
/// `reference` is no tag (an ID, a digest) or names none of `tags`.
pub fn tag_among(reference: &str, tags: &[String]) -> Option<String> {
    let t = familiar(reference)?;
    if tags
        .iter()
        .any(|x| familiar(x).as_deref() == Some(t.as_str()))
    {
        return Some(t);
    }
    let local = format!("localhost/{t}");
    tags.iter().find(|x| **x == local).cloned()
}

/// The fully qualified form of a familiar tag, as Docker ≥ 25 writes it into
/// `io.containerd.image.name`: `app:1` → `docker.io/library/app:1`, `me/app:1` →
/// `docker.io/me/app:1`, `reg:5000/app:1` unchanged.
pub fn qualified(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or(tag);
    let has_domain = tag.contains('/') && is_domain(first);
    if has_domain {
        tag.to_string()
    } else if tag.contains('/') {
        format!("docker.io/{tag}")
    } else {
        format!("docker.io/library/{tag}")
    }
}

/// The tag a bare OCI ref name (`app2`: no repository, no tag, as umoci and `skopeo oci:DIR:NAME`
/// write `org.opencontainers.image.ref.name`) gives its image, deciding as Docker does (its
/// containerd loader parses the ref name as a reference): `app2` → `app2:latest`, `1.0` →
/// `1.0:latest`. `None` when the name is not a valid repository name on its own (`V1`, `1.0-`,
/// `a..b`) or looks like an image ID: such an image stays untagged.
pub fn tag_of_bare_name(name: &str) -> Option<String> {
    let n = name.trim();
    if n.len() > 255 || !is_path_component(n) {
        return None;
    }
    familiar(n)
}

/// A repository path component of Docker's reference grammar: lowercase letters and digits,
/// separated by one `.`, one `_`, `__`, or a run of `-`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) if alnum(*f) && alnum(*l) => {}
        _ => return false,
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|c| *c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `s` looks like an image ID or an ID prefix: 12 to 64 lowercase hex digits.
pub fn is_hex_id(s: &str) -> bool {
    (12..=64).contains(&s.len()) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The hex digits of an ID reference (`sha256:<hex>` or a bare `<hex>`, 12 to 64 digits).
pub fn id_hex(reference: &str) -> Option<&str> {
    let r = reference.trim();
    let hex = r.strip_prefix("sha256:").unwrap_or(r);
    is_hex_id(hex).then_some(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_finds_its_tag_as_docker_and_podman_name_it() {
        let v = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Docker: familiar names.
        assert_eq!(tag_among("app:2", &v(&["app:2"])), Some("app:2".into()));
        assert_eq!(
            tag_among("docker.io/library/app:2", &v(&["app:2"])),
            Some("app:2".into())
        );
        // podman: fully qualified names, and localhost/ for short names it made.
        assert_eq!(
            tag_among("app:2", &v(&["docker.io/library/app:2"])),
            Some("app:2".into())
        );
        assert_eq!(
            tag_among("app:2", &v(&["localhost/app:2"])),
            Some("localhost/app:2".into())
        );
        assert_eq!(
            tag_among("localhost/app:2", &v(&["localhost/app:2"])),
            Some("localhost/app:2".into())
        );
        assert_eq!(
            tag_among("app", &v(&["localhost/app:latest"])),
            Some("localhost/app:latest".into())
        );
        // Not a tag of the image, or not a tag at all.
        assert_eq!(tag_among("app:3", &v(&["localhost/app:2", "app:2"])), None);
        assert_eq!(tag_among("other/app:2", &v(&["localhost/app:2"])), None);
        assert_eq!(tag_among(D, &v(&["app:2"])), None);
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_hub_defaults() {
        let r = ImageRef::parse("debian").unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/debian");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let r = ImageRef::parse("team/app:2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "team/app")
        );
        assert_eq!(r.tag.as_deref(), Some("2"));
        let r = ImageRef::parse("index.docker.io/app").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/app:latest");
        let r = ImageRef::parse("docker.io/app").unwrap();
        assert_eq!(r.repository, "library/app");
    }

    #[test]
    fn host_port_tag_and_digest() {
        let r = ImageRef::parse("127.0.0.1:5000/mirror/app:2").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "mirror/app");
        assert_eq!(r.target(), "2");
        assert_eq!(r.to_string(), "127.0.0.1:5000/mirror/app:2");
        let r = ImageRef::parse(&format!("localhost:5000/app@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.target(), D);
        let r = ImageRef::parse(&format!("reg.example.com/app:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.target(), D);
        let r = ImageRef::parse("localhost/app").unwrap();
        assert_eq!(r.registry, "localhost");
        let r = ImageRef::parse("[::1]:5000/app").unwrap();
        assert_eq!(r.registry, "[::1]:5000");
        let r = ImageRef::parse("Reg/app").unwrap();
        assert_eq!(r.registry, "Reg");
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
            "a..b",
            "a___b",
            "reg..io/app",
            "-reg.io/app",
            "reg.io:x/app",
            " app",
        ] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!(ImageRef::parse(&format!("{}:1", "a".repeat(256))).is_err());
    }

    #[test]
    fn the_parser_agrees_with_familiar_and_qualified() {
        for x in [
            "app",
            "app:2",
            "library/app:2",
            "docker.io/library/app:2",
            "index.docker.io/library/app",
            "docker.io/me/app",
            "me/app:1",
            "registry:5000/team/app",
            "reg:5000/app:2",
            "localhost/app:1",
            "reg.example.com/a/b/c:v1.0_x",
        ] {
            let r = ImageRef::parse(x).unwrap();
            let f = familiar(x);
            assert!(f.is_some(), "{x}");
            assert_eq!(r.familiar(), f, "{x}");
            assert_eq!(qualified(f.as_deref().unwrap()), r.to_string(), "{x}");
        }
        for x in [format!("app@{D}"), format!("reg.io/app:1@{D}")] {
            assert_eq!(ImageRef::parse(&x).unwrap().familiar(), None, "{x}");
            assert_eq!(familiar(&x), None, "{x}");
        }
    }

    #[test]
    fn tags_are_normalised_like_docker() {
        assert_eq!(familiar("app").as_deref(), Some("app:latest"));
        assert_eq!(familiar("app:2").as_deref(), Some("app:2"));
        assert_eq!(
            familiar("docker.io/library/app:2").as_deref(),
            Some("app:2")
        );
        assert_eq!(familiar("library/app:2").as_deref(), Some("app:2"));
        assert_eq!(
            familiar("docker.io/me/app").as_deref(),
            Some("me/app:latest")
        );
        assert_eq!(
            familiar("registry:5000/team/app").as_deref(),
            Some("registry:5000/team/app:latest")
        );
        assert_eq!(
            familiar("reg:5000/app:2").as_deref(),
            Some("reg:5000/app:2")
        );
        assert_eq!(familiar("sha256:abcdef"), None);
        assert_eq!(familiar("0123456789abcdef"), None);
        assert_eq!(familiar("app@sha256:00"), None);
        assert_eq!(familiar(""), None);
    }

    #[test]
    fn bare_ref_names_become_tags_when_docker_would_take_them() {
        for (n, t) in [
            ("app2", "app2:latest"),
            ("1.0", "1.0:latest"),
            ("my-app__x.y", "my-app__x.y:latest"),
            ("a---b", "a---b:latest"),
        ] {
            assert_eq!(tag_of_bare_name(n).as_deref(), Some(t), "{n}");
        }
        for n in [
            "",
            "V1",
            "1.0-",
            "-a",
            "a..b",
            "a___b",
            "a-_b",
            "app 2",
            "äpp",
            "0123456789abcdef",
        ] {
            assert_eq!(tag_of_bare_name(n), None, "{n:?}");
        }
        assert_eq!(tag_of_bare_name(&"a".repeat(256)), None);
        assert!(tag_of_bare_name(&"a".repeat(255)).is_some());
    }

    #[test]
    fn qualified_names_round_trip() {
        for (t, q) in [
            ("app:1", "docker.io/library/app:1"),
            ("me/app:1", "docker.io/me/app:1"),
            ("reg:5000/app:1", "reg:5000/app:1"),
            ("localhost/app:1", "localhost/app:1"),
        ] {
            assert_eq!(qualified(t), q);
            assert_eq!(familiar(q).as_deref(), Some(t));
        }
    }

    #[test]
    fn id_references() {
        assert_eq!(id_hex("sha256:0123456789ab"), Some("0123456789ab"));
        assert_eq!(id_hex("0123456789ab"), Some("0123456789ab"));
        assert_eq!(id_hex("0123456789a"), None);
        assert_eq!(id_hex("app:1"), None);
    }
}
