//! Image references as discovery reports them: one normal form, so that the same image named
//! `nginx`, `library/nginx:latest` or `index.docker.io/library/nginx` is found once.
//!
//! The form is the fully qualified one of [`partial_common::reference::ImageRef`],
//! `docker.io/library/nginx:latest`, which the daemon resolves to the same image as the short one;
//! this module only trims what templates leave around a reference.

pub use partial_common::reference::{BadReference, ImageRef};

/// Parses and normalises `reference` (surrounding white space ignored).
pub fn normalise(reference: &str) -> Result<ImageRef, BadReference> {
    ImageRef::parse(reference.trim()).map_err(|e| BadReference {
        input: reference.to_string(),
        reason: e.reason,
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
