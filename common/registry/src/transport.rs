//! Transport to a registry: HTTPS verified against the system roots plus the CAs the user gives
//! (`--ca-file`, `/etc/docker/certs.d/HOST[:PORT]/*.crt` as Docker reads them), `insecure` for an
//! unverified certificate or plain http, and plain http as a fallback for loopback registries
//! (127.0.0.0/8, `::1`, `localhost`), which Docker also treats as insecure.

use super::error::RegistryError;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where Docker keeps per-registry CA certificates.
pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Accept an unverified certificate, and fall back to plain http.
    pub insecure: bool,
    /// Extra CA certificates (PEM, may hold several).
    pub ca_files: Vec<PathBuf>,
    /// Folder of per-registry CA folders (default [`DOCKER_CERTS_DIR`]).
    pub certs_dir: PathBuf,
    /// Bound on connecting (and on the `/v2/` ping).
    pub connect_timeout: Duration,
    /// Bound on silence while waiting for or reading a response.
    pub idle_timeout: Duration,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            insecure: false,
            ca_files: Vec::new(),
            certs_dir: PathBuf::from(DOCKER_CERTS_DIR),
            connect_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
        }
    }
}

impl TransportOptions {
    /// The per-registry CA folder for `registry` (`HOST[:PORT]`).
    pub fn registry_certs_dir(&self, registry: &str) -> PathBuf {
        self.certs_dir.join(registry)
    }

    /// Whether plain http may be tried for `registry` when https fails.
    pub fn allows_http(&self, registry: &str) -> bool {
        self.insecure || is_loopback(registry)
    }
}

/// True for `localhost`, 127.0.0.0/8 and `::1`, with or without a port.
pub fn is_loopback(registry: &str) -> bool {
    if registry.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The HTTP clients of one registry.
#[derive(Debug, Clone)]
pub struct Clients {
    /// For requests without a streaming body: reads fail after `idle_timeout` of silence.
    pub read: reqwest::Client,
    /// For uploads: no read bound (hyper watches the socket for an early answer while it
    /// sends, so a read bound would cut off a long healthy upload); the upload watches its own
    /// progress instead.
    pub upload: reqwest::Client,
}

/// Builds the HTTP clients for `registry`: connect and idle bounds, the system roots plus the
/// extra and per-registry CAs, certificate checks off when `insecure`.
pub fn build_clients(registry: &str, opts: &TransportOptions) -> Result<Clients, RegistryError> {
    let mut certs = Vec::new();
    for path in ca_paths(registry, opts)? {
        certs.extend(read_ca(registry, &path)?);
    }
    let builder = || {
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("partial-save/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(opts.connect_timeout)
            .danger_accept_invalid_certs(opts.insecure);
        for cert in &certs {
            b = b.add_root_certificate(cert.clone());
        }
        b
    };
    let client_error = |source| RegistryError::Client {
        registry: registry.to_string(),
        source,
    };
    Ok(Clients {
        read: builder()
            .read_timeout(opts.idle_timeout)
            .build()
            .map_err(client_error)?,
        upload: builder().build().map_err(client_error)?,
    })
}

/// The explicit CA files and the `*.crt` files of the registry's certs.d folder (if any).
fn ca_paths(registry: &str, opts: &TransportOptions) -> Result<Vec<PathBuf>, RegistryError> {
    let mut paths = opts.ca_files.clone();
    let dir = opts.registry_certs_dir(registry);
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect();
            found.sort();
            paths.extend(found);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(RegistryError::CaFile {
                registry: registry.to_string(),
                path: dir.display().to_string(),
                reason: e.to_string(),
            })
        }
    }
    Ok(paths)
}

fn read_ca(registry: &str, path: &Path) -> Result<Vec<reqwest::Certificate>, RegistryError> {
    let err = |reason: String| RegistryError::CaFile {
        registry: registry.to_string(),
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".to_string()));
    }
    Ok(certs)
}

/// True when the error chain of a failed request shows a TLS failure (handshake, certificate),
/// as opposed to a refused or broken connection.
pub fn is_tls_error(e: &reqwest::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string().to_ascii_lowercase();
        if [
            "certificate",
            "tls",
            "handshake",
            "invalidcontenttype",
            "corrupt message",
            "peer is incompatible",
        ]
        .iter()
        .any(|w| text.contains(w))
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "reg.local:5000",
            "10.0.0.1:5000",
            "docker.io",
            "[fe80::1]:443",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
        let opts = TransportOptions::default();
        assert!(opts.allows_http("127.0.0.1:5000"));
        assert!(!opts.allows_http("reg.local"));
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let opts = TransportOptions {
            ca_files: vec![path.clone()],
            certs_dir: dir.path().join("certs.d"),
            ..TransportOptions::default()
        };
        let e = build_clients("reg.local", &opts).unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }
}
