//! The one image-reference normaliser of the project: `docker.io/library/app:1`, `library/app:1`
//! and `app:1` all name the tag `app:1`, `app` names `app:latest`. Every place that compares a
//! reference with a tag (selection on a daemon, in archives, tags written to bundles) goes through
//! [`familiar`], so two spellings of one tag never disagree.

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

/// The fully qualified form of a familiar tag, as Docker ≥ 25 writes it into
/// `io.containerd.image.name`: `app:1` → `docker.io/library/app:1`, `me/app:1` →
/// `docker.io/me/app:1`, `reg:5000/app:1` unchanged.
pub fn qualified(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or(tag);
    let has_domain =
        tag.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
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
