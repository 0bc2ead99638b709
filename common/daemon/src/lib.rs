//! Access to a Docker daemon through the Engine API (bollard): connecting with the right timeouts,
//! describing the daemon, inspecting and listing images with their layers, streaming an export and
//! uploading a load while treating every daemon error — also one inside a stream — as failure.

use bollard::query_parameters::{ImportImageOptions, ListImagesOptions};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use partial_core::digest::{chain_ids, Digest};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long the tools wait for a daemon to answer a ping. A daemon that does not answer a ping in
/// this time is hung or gone; failing fast is better than waiting for a request timeout.
pub const PING_TIMEOUT: Duration = Duration::from_secs(30);

/// Environment variable overriding [`PING_TIMEOUT`] (whole seconds, at least 1), e.g. for tests
/// that hang a daemon on purpose.
pub const PING_TIMEOUT_ENV: &str = "PARTIAL_PING_TIMEOUT";

/// The ping bound in force: `PARTIAL_PING_TIMEOUT` seconds when set to a positive whole number,
/// else [`PING_TIMEOUT`].
pub fn ping_timeout() -> Duration {
    parse_ping_timeout(std::env::var(PING_TIMEOUT_ENV).ok().as_deref())
}

fn parse_ping_timeout(value: Option<&str>) -> Duration {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&secs| secs > 0)
        .map(Duration::from_secs)
        .unwrap_or(PING_TIMEOUT)
}

/// Silence, once a daemon's export has started, that ends reading it: `partial-save`'s
/// `--idle-timeout` default, and the bound of every export the other commands read (base layers
/// for a rebuild or a rehydrate, a report's comparison).
pub const EXPORT_IDLE: Duration = Duration::from_secs(600);

/// Default bound on waiting for the response headers of one request. The daemon stages a whole
/// export before its first byte, and reads a whole load before answering, so this must cover the
/// biggest image; bollard's default (120 s) is far too short.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Errors talking to a daemon. Every message names the daemon address or the image concerned.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot connect to the Docker daemon at {host}: {source}")]
    Connect {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the Docker daemon at {host} did not answer a ping within {secs} s")]
    PingTimeout { host: String, secs: u64 },
    #[error("image {0} does not exist on the daemon (partial-save never pulls)")]
    NoSuchImage(String),
    #[error("the daemon returned an invalid digest for image {image}: {value:?}")]
    BadDigest { image: String, value: String },
    #[error("Docker daemon error ({context}): {source}")]
    Api {
        context: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("the daemon reported an error while loading: {0}")]
    LoadFailed(String),
    #[error(
        "the Docker daemon did not answer within {secs} s ({context}); --timeout sets this bound"
    )]
    RequestTimeout { context: String, secs: u64 },
}

impl DaemonError {
    /// An API error; bollard's request timeout (`secs`, the client's bound on waiting for the
    /// response headers) becomes [`DaemonError::RequestTimeout`], which says which bound it was.
    fn api(context: impl Into<String>, secs: u64, source: bollard::errors::Error) -> Self {
        match source {
            bollard::errors::Error::RequestTimeoutError => DaemonError::RequestTimeout {
                context: context.into(),
                secs,
            },
            source => DaemonError::Api {
                context: context.into(),
                source,
            },
        }
    }
}

/// The address to use: `--host`, else `DOCKER_HOST`, else the local socket.
pub fn resolve_host(host: Option<&str>) -> String {
    match host {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string()),
    }
}

/// A connected daemon and the address it was reached at.
#[derive(Clone, Debug)]
pub struct Daemon {
    pub docker: Docker,
    pub host: String,
}

/// Connects to `host` (see [`resolve_host`]), negotiates the API version (a 20.10 daemon speaks
/// 1.41), and checks that the daemon answers a ping within [`ping_timeout`] (30 s by default).
pub async fn connect(host: Option<&str>, request_timeout: Duration) -> Result<Daemon, DaemonError> {
    let host = resolve_host(host);
    let docker = if host.starts_with("unix://") || host.starts_with('/') {
        let path = host.trim_start_matches("unix://");
        Docker::connect_with_unix(
            path,
            request_timeout.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(
            &host,
            request_timeout.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
    } else {
        Docker::connect_with_host(&host).map(|d| d.with_timeout(request_timeout))
    }
    .map_err(|source| DaemonError::Connect {
        host: host.clone(),
        source,
    })?;
    let bound = ping_timeout();
    let ping = docker.clone().with_timeout(bound);
    match tokio::time::timeout(bound, ping.ping()).await {
        // bollard's own timeout (the same bound) may fire first: still a ping timeout.
        Err(_) | Ok(Err(bollard::errors::Error::RequestTimeoutError)) => {
            return Err(DaemonError::PingTimeout {
                host,
                secs: bound.as_secs(),
            })
        }
        Ok(Err(source)) => return Err(DaemonError::Connect { host, source }),
        Ok(Ok(_)) => {}
    }
    let docker = match tokio::time::timeout(bound, docker.negotiate_version()).await {
        Err(_) => {
            return Err(DaemonError::PingTimeout {
                host,
                secs: bound.as_secs(),
            })
        }
        Ok(Err(source)) => return Err(DaemonError::Connect { host, source }),
        Ok(Ok(d)) => d,
    };
    Ok(Daemon { docker, host })
}

/// What a daemon is: recorded in bundle manifests and inventories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
    /// The graph driver (`overlay2`, `vfs`, …) or, on the containerd store, its snapshotter.
    pub storage_driver: String,
    /// True when the daemon uses the containerd image store (snapshotter), whose `docker load`
    /// needs complete archives.
    pub containerd_store: bool,
    /// True when the daemon is podman's Docker-compatible service (`/version` names the
    /// component `Podman Engine`), whose load takes a partial archive only when it holds one
    /// image name (see [`DaemonInfo::loads_partial`]). Not recorded in bundles or inventories.
    #[serde(skip)]
    pub podman: bool,
}

/// The `/version` component podman's service names itself by.
pub const PODMAN_COMPONENT: &str = "Podman Engine";

impl DaemonInfo {
    /// Whether this daemon's load can take a partial archive (base layers left out) whose
    /// `index.json` lists `names` entries (one per tag, one per untagged image). Docker with its
    /// graphdriver store can; its containerd store never can. podman 4.3 loads an archive with
    /// one entry as an OCI archive, taking the left-out layers from its own storage; with more
    /// entries it refuses the OCI archive ("more than one image in oci") and reads it as a
    /// `docker save` archive, whose every layer file must be there.
    pub fn loads_partial(&self, names: usize) -> bool {
        let podman_refuses = self.podman && names > 1;
        !self.containerd_store && !podman_refuses
    }
}

impl Daemon {
    fn api_err(&self, context: String, e: bollard::errors::Error) -> DaemonError {
        DaemonError::api(context, self.docker.timeout().as_secs(), e)
    }

    /// Version, platform and store of the daemon.
    pub async fn info(&self) -> Result<DaemonInfo, DaemonError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(|e| self.api_err(format!("GET /info on {}", self.host), e))?;
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| self.api_err(format!("GET /version on {}", self.host), e))?;
        let containerd_store = info.driver_status.as_ref().is_some_and(|rows| {
            rows.iter().any(|r| {
                r.len() == 2 && r[0] == "driver-type" && r[1] == "io.containerd.snapshotter.v1"
            })
        });
        let podman = version
            .components
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c.name == PODMAN_COMPONENT));
        Ok(DaemonInfo {
            version: version.version.or(info.server_version).unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
            os: info.os_type.unwrap_or_default(),
            arch: info.architecture.unwrap_or_default(),
            storage_driver: info.driver.unwrap_or_default(),
            containerd_store,
            podman,
        })
    }

    /// Inspects one image: `Ok(None)` when the daemon does not have it.
    pub async fn inspect(&self, name: &str) -> Result<Option<ImageMeta>, DaemonError> {
        match self.docker.inspect_image(name).await {
            Ok(img) => {
                let id = img.id.clone().unwrap_or_default();
                let id = Digest::parse(&id).map_err(|_| DaemonError::BadDigest {
                    image: name.to_string(),
                    value: id.clone(),
                })?;
                let mut diff_ids = Vec::new();
                for l in img.root_fs.and_then(|r| r.layers).unwrap_or_default() {
                    diff_ids.push(Digest::parse(&l).map_err(|_| DaemonError::BadDigest {
                        image: name.to_string(),
                        value: l.clone(),
                    })?);
                }
                let tags = img
                    .repo_tags
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect();
                Ok(Some(ImageMeta::new(id, tags, diff_ids)))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.api_err(format!("inspecting image {name}"), e)),
        }
    }

    /// About how many bytes an export of `names` streams, for a progress bar: the images' sizes
    /// as inspect reports them (the sum of their layers), an image counted once, and an image
    /// whose layers all belong to another named image not at all. Layers shared otherwise are
    /// counted twice, and tar headers not at all; `None` when the daemon does not say.
    pub async fn export_size(&self, names: &[String]) -> Option<u64> {
        let mut images: Vec<(Vec<String>, u64)> = Vec::new();
        for name in names {
            let img = self.docker.inspect_image(name).await.ok()?;
            let layers = img.root_fs.and_then(|r| r.layers).unwrap_or_default();
            let size = u64::try_from(img.size?).ok()?;
            if !images.iter().any(|(l, _)| *l == layers) {
                images.push((layers, size));
            }
        }
        let contained = |l: &Vec<String>| {
            images
                .iter()
                .any(|(other, _)| other.len() > l.len() && other.starts_with(l))
        };
        let total = images
            .iter()
            .filter(|(l, _)| !contained(l))
            .map(|(_, s)| s)
            .sum();
        (total > 0).then_some(total)
    }

    /// Inspects one image that must exist.
    pub async fn require(&self, name: &str) -> Result<ImageMeta, DaemonError> {
        self.inspect(name)
            .await?
            .ok_or_else(|| DaemonError::NoSuchImage(name.to_string()))
    }

    /// Every image on the daemon (also untagged ones), with its layers.
    pub async fn all_images(&self) -> Result<Vec<ImageMeta>, DaemonError> {
        let list = self
            .docker
            .list_images(Some(ListImagesOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .map_err(|e| self.api_err(format!("listing images on {}", self.host), e))?;
        let mut out = Vec::with_capacity(list.len());
        for summary in list {
            // An image can vanish between the list and the inspect; skip it then.
            if let Some(meta) = self.inspect(&summary.id).await? {
                out.push(meta);
            }
        }
        Ok(out)
    }

    /// `GET /images/get` for all `names` as one tar stream. Errors of the daemon, also those
    /// reported inside the stream, come out as stream errors; an export that fails midway also
    /// shows up as a tar that does not parse to its end.
    pub fn export(&self, names: &[String]) -> impl Stream<Item = Result<Bytes, DaemonError>> {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let ctx = format!("exporting {} from {}", names.join(", "), self.host);
        let secs = self.docker.timeout().as_secs();
        self.docker
            .export_images(&refs)
            .map(move |r| r.map_err(|e| DaemonError::api(ctx.clone(), secs, e)))
    }

    /// `POST /images/load` with `body` as the archive. Reads the whole response; any error object
    /// or `Error …` line is failure. Returns the `Loaded image…` lines. If `body` yields an error
    /// the upload is aborted and the daemon commits nothing.
    pub async fn load<S, E>(
        &self,
        body: S,
        mut on_status: impl FnMut(&str),
    ) -> Result<Vec<String>, DaemonError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let mut stream = Box::pin(self.docker.import_image_stream(
            ImportImageOptions {
                // Per-layer progress only when someone can see it (as `docker load` does).
                quiet: !partial_core::progress::enabled(),
                ..Default::default()
            },
            body,
            None,
        ));
        let mut loaded = Vec::new();
        while let Some(item) = stream.next().await {
            let info = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(DaemonError::LoadFailed(error))
                }
                Err(e) => return Err(self.api_err(format!("loading into {}", self.host), e)),
            };
            if let Some(detail) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
                return Err(DaemonError::LoadFailed(detail));
            }
            if let Some(line) = info.stream.as_deref() {
                let line = line.trim();
                if line.starts_with("Error") || line.starts_with("error") {
                    return Err(DaemonError::LoadFailed(line.to_string()));
                }
                loaded.extend(loaded_names(line));
                if !line.is_empty() {
                    on_status(line);
                }
            }
            if let Some(status) = info.status.as_deref() {
                let text = match info.id.as_deref() {
                    Some(id) => format!("{id}: {status}"),
                    None => status.to_string(),
                };
                on_status(&text);
            }
        }
        Ok(loaded)
    }
}

/// The names in one line of a load's response: Docker writes `Loaded image: NAME` (or
/// `Loaded image ID: sha256:…`) once per image; podman one line for all of them,
/// `Loaded image: NAME,NAME,…` (a reference never holds a comma).
fn loaded_names(line: &str) -> Vec<String> {
    line.strip_prefix("Loaded image: ")
        .or_else(|| line.strip_prefix("Loaded image ID: "))
        .map(|rest| {
            rest.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// An image as the daemon describes it: ID, tags, layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    pub id: Digest,
    pub tags: Vec<String>,
    pub diff_ids: Vec<Digest>,
    pub chain_ids: Vec<Digest>,
    /// The blob each layer is stored as, when the holder says (a registry: its manifest's layer
    /// digests); empty for daemons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blobs: Vec<Digest>,
}

impl ImageMeta {
    pub fn new(id: Digest, tags: Vec<String>, diff_ids: Vec<Digest>) -> Self {
        let chain_ids = chain_ids(&diff_ids);
        ImageMeta {
            id,
            tags,
            diff_ids,
            chain_ids,
            blobs: Vec::new(),
        }
    }
}

/// Test helpers (feature `testutil`, which `partial-common`'s own `testutil` turns on).
#[cfg(any(test, feature = "testutil"))]
pub mod testutil {
    use super::DaemonInfo;

    /// A 20.10 daemon on overlay2, for the tests of the files that record one.
    pub fn sample_info() -> DaemonInfo {
        DaemonInfo {
            version: "20.10.24".into(),
            api_version: "1.41".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            storage_driver: "overlay2".into(),
            containerd_store: false,
            podman: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::sample_info;
    use super::*;

    #[test]
    fn load_lines_give_every_name_as_docker_and_podman_write_them() {
        assert_eq!(loaded_names("Loaded image: app:2"), vec!["app:2"]);
        let id = "sha256:9e5ab430de9580343c36903e9e59c15c4851a9c5be45cfc248d8f04b13bdb344";
        assert_eq!(loaded_names(&format!("Loaded image ID: {id}")), vec![id]);
        assert_eq!(
            loaded_names("Loaded image: localhost/app:2,localhost/app:3,localhost/other/app:9"),
            vec![
                "localhost/app:2",
                "localhost/app:3",
                "localhost/other/app:9"
            ]
        );
        assert!(loaded_names("Loading layer 1/2").is_empty());
    }

    #[test]
    fn podman_loads_a_partial_archive_only_with_one_name() {
        let docker = sample_info();
        assert!(docker.loads_partial(1) && docker.loads_partial(5));
        let containerd = DaemonInfo {
            containerd_store: true,
            ..sample_info()
        };
        assert!(!containerd.loads_partial(1));
        let podman = DaemonInfo {
            podman: true,
            storage_driver: "overlay".into(),
            ..sample_info()
        };
        assert!(podman.loads_partial(1));
        assert!(!podman.loads_partial(2));
    }

    #[test]
    fn host_resolution_prefers_flag_then_env() {
        assert_eq!(resolve_host(Some("unix:///x.sock")), "unix:///x.sock");
        // Without a flag, DOCKER_HOST or the default socket; both are non-empty.
        assert!(!resolve_host(None).is_empty());
        assert!(!resolve_host(Some("")).is_empty());
    }

    #[test]
    fn ping_timeout_comes_from_the_environment_or_defaults_to_30_s() {
        assert_eq!(parse_ping_timeout(None), PING_TIMEOUT);
        assert_eq!(parse_ping_timeout(Some("3")), Duration::from_secs(3));
        assert_eq!(parse_ping_timeout(Some(" 7 ")), Duration::from_secs(7));
        for bad in ["0", "", "x", "-1", "1.5"] {
            assert_eq!(parse_ping_timeout(Some(bad)), PING_TIMEOUT, "{bad:?}");
        }
    }

    #[test]
    fn request_timeouts_say_which_bound() {
        let e = DaemonError::api(
            "loading into x",
            5,
            bollard::errors::Error::RequestTimeoutError,
        );
        let msg = e.to_string();
        assert!(
            msg.contains("did not answer within 5 s (loading into x)"),
            "{msg}"
        );
        assert!(msg.contains("--timeout"), "{msg}");
        let e = DaemonError::api(
            "listing",
            5,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: "boom".into(),
            },
        );
        assert!(matches!(e, DaemonError::Api { .. }));
    }

    #[test]
    fn image_meta_computes_chains() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let m = ImageMeta::new(Digest::of_bytes(b"cfg"), vec![], vec![a.clone(), b.clone()]);
        assert_eq!(m.chain_ids, chain_ids(&[a, b]));
    }
}
