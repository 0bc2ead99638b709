//! The registry client (`partial_common::registry`) against a real registry: Debian's
//! `docker-registry` (distribution 2.8), one private instance per test, plain http, TLS with a CA
//! made for it, and htpasswd basic auth. Images are built here (blobs, config, manifests), so no
//! daemon is needed; the registry's access log shows which requests were made.

use futures_util::StreamExt;
use partial_common::registry::manifest::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP,
    OCI_MANIFEST,
};
use partial_common::registry::{
    BlobOutcome, Credentials, Descriptor, ImageIndex, ImageManifest, Platform, RawManifest,
    Registry, RegistryError, RegistryOptions as ClientOptions, TransportOptions,
};
use partial_common::testutil::archive::noise;
use partial_common::Digest;
use partial_tests::{require_registry, RegistryOptions, RegistryServer};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// A layer blob: `noise` gzipped, with its diffID.
struct Blob {
    bytes: Vec<u8>,
    digest: Digest,
    diff_id: Digest,
}

fn layer(seed: u64, len: usize) -> Blob {
    let raw = noise(seed, len);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let bytes = gz.finish().unwrap();
    Blob {
        digest: Digest::of_bytes(&bytes),
        diff_id: Digest::of_bytes(&raw),
        bytes,
    }
}

/// An image: layers, config and its manifest (Docker v2 schema 2 or OCI).
struct Image {
    layers: Vec<Blob>,
    config: Vec<u8>,
    manifest: RawManifest,
}

fn image(seed: u64, sizes: &[usize], oci: bool, arch: &str) -> Image {
    let layers: Vec<Blob> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| layer(seed * 100 + i as u64, *n))
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let (mt, config_mt, layer_mt) = if oci {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP)
    } else {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_GZIP)
    };
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(mt.to_string()),
        config: Descriptor::new(config_mt, Digest::of_bytes(&config), config.len() as u64),
        layers: layers
            .iter()
            .map(|l| Descriptor::new(layer_mt, l.digest.clone(), l.bytes.len() as u64))
            .collect(),
        annotations: None,
    };
    // Pretty-printed: the digest must be of exactly these bytes.
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap();
    Image {
        layers,
        config,
        manifest: RawManifest::new(mt, bytes.into()),
    }
}

fn opts(creds: Credentials) -> ClientOptions {
    ClientOptions {
        transport: TransportOptions {
            // Not /etc/docker/certs.d: the tests decide which CAs are known.
            certs_dir: PathBuf::from("/nonexistent/partial-test-certs.d"),
            ..TransportOptions::default()
        },
        credentials: Some(creds),
        allow_realms: Vec::new(),
    }
}

fn anonymous() -> ClientOptions {
    opts(Credentials::none("test without credentials"))
}

async fn reader(bytes: Vec<u8>) -> std::io::Result<std::io::Cursor<Vec<u8>>> {
    Ok(std::io::Cursor::new(bytes))
}

/// Pushes an image's blobs (the first layer streamed, size unknown; the rest monolithic) and
/// its manifest as `repo:tag`, mounting from `from` where possible.
async fn push(
    reg: &Registry,
    repo: &str,
    tag: &str,
    img: &Image,
    from: &[&str],
) -> Vec<BlobOutcome> {
    let mut outcomes = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let size = (i > 0).then_some(l.bytes.len() as u64);
        let data = l.bytes.clone();
        let out = reg
            .ensure_blob(repo, &l.digest, size, from, || reader(data))
            .await
            .unwrap();
        outcomes.push(out);
    }
    let config = img.config.clone();
    let cd = Digest::of_bytes(&config);
    let out = reg
        .ensure_blob(repo, &cd, Some(config.len() as u64), from, || {
            reader(config)
        })
        .await
        .unwrap();
    outcomes.push(out);
    let digest = reg.put_manifest(repo, tag, &img.manifest).await.unwrap();
    // The digest of the bytes sent, computed here (not the client's own record of it).
    assert_eq!(digest, Digest::of_bytes(&img.manifest.bytes));
    outcomes
}

async fn read_blob(reg: &Registry, repo: &str, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
    let mut stream = reg.get_blob(repo, digest).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// The error reading a blob ends with (its bytes are not printed when there is none).
async fn read_blob_err(reg: &Registry, repo: &str, digest: &Digest) -> RegistryError {
    match read_blob(reg, repo, digest).await {
        Ok(b) => panic!("read all {} bytes of {digest} without an error", b.len()),
        Err(e) => e,
    }
}

fn host() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

/// Read back from `reg`: `img`'s manifest bytes and digest (by tag and by digest), config,
/// layers, HEAD, and the tag list.
async fn check_read_back(reg: &Registry, img: &Image) {
    let raw = reg.get_manifest("app", "1").await.unwrap();
    assert_eq!(raw.bytes, img.manifest.bytes);
    assert_eq!(raw.digest, img.manifest.digest);
    assert_eq!(raw.media_type, DOCKER_MANIFEST);
    let by_digest = reg
        .get_manifest("app", img.manifest.digest.as_str())
        .await
        .unwrap();
    assert_eq!(by_digest.bytes, img.manifest.bytes);
    let resolved = reg.get_image("app", "1", &host()).await.unwrap();
    assert!(resolved.index.is_none());
    let config = reg
        .get_blob_bytes("app", &resolved.manifest.config.digest)
        .await
        .unwrap();
    assert_eq!(&config[..], &img.config[..]);
    for l in &img.layers {
        let back = read_blob(reg, "app", &l.digest).await.unwrap();
        assert!(back == l.bytes, "blob {} read back differs", l.digest);
        assert_eq!(
            reg.blob_exists("app", &l.digest).await.unwrap(),
            Some(l.bytes.len() as u64)
        );
    }
    assert_eq!(reg.list_tags("app").await.unwrap(), ["1"]);
}

/// Layers uploaded by spawned tasks at once through one shared `reg`, each then present.
async fn check_concurrent_uploads(reg: &std::sync::Arc<Registry>) {
    let many = image(12, &[300_000, 300_001, 300_002, 300_003], false, "amd64");
    let tasks: Vec<_> = many
        .layers
        .iter()
        .map(|l| {
            let (reg, digest, data) = (reg.clone(), l.digest.clone(), l.bytes.clone());
            tokio::spawn(async move {
                let size = Some(data.len() as u64);
                reg.ensure_blob("app", &digest, size, &[], || reader(data))
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert!(matches!(
            t.await.unwrap().unwrap(),
            BlobOutcome::Uploaded { .. }
        ));
    }
    for l in &many.layers {
        assert_eq!(
            reg.blob_exists("app", &l.digest).await.unwrap(),
            Some(l.bytes.len() as u64)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_read_back_mount_and_rerun_over_http() {
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let reg = Registry::connect(&server.addr, &anonymous()).await.unwrap();
    assert!(
        reg.base_url().starts_with("http://"),
        "loopback falls back to http: {}",
        reg.base_url()
    );
    assert!(reg.challenge().is_none());

    let img = image(1, &[3 << 20, 1 << 20], false, "amd64");
    let outcomes = push(&reg, "app", "1", &img, &[]).await;
    // What the registry serves, read back by skopeo: the very bytes pushed.
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/app:1", server.addr))
        .output()
        .expect("skopeo");
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(
        Digest::of_bytes(&raw.stdout),
        Digest::of_bytes(&img.manifest.bytes)
    );
    let sizes: Vec<u64> = img.layers.iter().map(|l| l.bytes.len() as u64).collect();
    assert_eq!(
        outcomes,
        [
            BlobOutcome::Uploaded { bytes: sizes[0] },
            BlobOutcome::Uploaded { bytes: sizes[1] },
            BlobOutcome::Uploaded {
                bytes: img.config.len() as u64
            },
        ]
    );
    assert_eq!(
        server.count_requests("PATCH", "/v2/app/blobs/uploads/"),
        1,
        "the streamed layer"
    );
    let uploads = server.blob_uploads();

    check_read_back(&reg, &img).await;

    // A rerun uploads nothing.
    let again = push(&reg, "app", "1", &img, &[]).await;
    assert!(
        again.iter().all(|o| *o == BlobOutcome::Present),
        "{again:?}"
    );
    assert_eq!(server.blob_uploads(), uploads, "the rerun sent blob data");

    // Another repository of the same registry gets every blob by mounting.
    let mounted = push(&reg, "mirror/app", "1", &img, &["app"]).await;
    assert!(
        mounted
            .iter()
            .all(|o| *o == BlobOutcome::Mounted { from: "app".into() }),
        "{mounted:?}"
    );
    assert_eq!(server.blob_uploads(), uploads, "a mount sent blob data");
    assert_eq!(
        server.count_requests("POST", "/v2/mirror/app/blobs/uploads/?mount="),
        3
    );
    assert_eq!(
        reg.get_manifest("mirror/app", "1").await.unwrap().bytes,
        img.manifest.bytes
    );

    // A mount from a repository that lacks the blob falls back to an upload (202).
    let other = image(2, &[200_000], false, "amd64");
    let outcomes = push(&reg, "second", "1", &other, &["app"]).await;
    assert!(
        matches!(outcomes[0], BlobOutcome::Uploaded { .. }),
        "{outcomes:?}"
    );

    // Concurrent uploads from spawned tasks share one connection (the futures are Send).
    let reg = std::sync::Arc::new(reg);
    check_concurrent_uploads(&reg).await;

    let mut catalog = reg.catalog().await.unwrap();
    catalog.sort();
    assert_eq!(catalog, ["app", "mirror/app", "second"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_things_are_said_plainly_and_corruption_is_caught() {
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let reg = Registry::connect(&server.addr, &anonymous()).await.unwrap();
    let img = image(3, &[100_000], false, "amd64");
    push(&reg, "app", "1", &img, &[]).await;

    let e = reg.get_manifest("nosuch/repo", "1").await.unwrap_err();
    assert!(matches!(e, RegistryError::NoRepository { .. }), "{e:?}");
    eprintln!("missing repository: {e}");
    assert!(
        e.to_string()
            .contains("repository nosuch/repo does not exist"),
        "{e}"
    );
    assert!(e.to_string().contains(&server.addr), "{e}");
    let e = reg.get_manifest("app", "2").await.unwrap_err();
    assert!(matches!(e, RegistryError::NoManifest { .. }), "{e:?}");
    let absent = Digest::of_bytes(b"absent");
    assert_eq!(reg.blob_exists("app", &absent).await.unwrap(), None);
    let e = read_blob_err(&reg, "app", &absent).await;
    assert!(matches!(e, RegistryError::NoBlob { .. }), "{e:?}");
    assert!(e.to_string().contains(absent.as_str()), "{e}");
    let e = reg.list_tags("nosuch").await.unwrap_err();
    assert!(matches!(e, RegistryError::NoRepository { .. }), "{e:?}");

    // Flip a byte of the stored layer: the stream ends with a digest mismatch naming the blob.
    let d = &img.layers[0].digest;
    let data = server
        .dir()
        .join("data/docker/registry/v2/blobs/sha256")
        .join(&d.hex()[..2])
        .join(d.hex())
        .join("data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let e = read_blob_err(&reg, "app", d).await;
    assert!(
        matches!(e, RegistryError::BlobDigestMismatch { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(d.as_str()), "{e}");
    assert_eq!(e.exit_code(), partial_common::exit::VERIFY);

    // The same through the synchronous bridge the archive code reads with: all bytes arrive,
    // then the read fails with the mismatch inside the io::Error.
    let stream = reg.get_blob("app", d).await.unwrap();
    let mut sync = partial_common::channel_reader::ChannelReader::spawn(
        stream,
        std::time::Duration::from_secs(30),
    );
    let (read, err) = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        let err = std::io::Read::read_to_end(&mut sync, &mut buf).unwrap_err();
        (buf.len(), err)
    })
    .await
    .unwrap();
    assert_eq!(read, img.layers[0].bytes.len());
    let inner = err
        .get_ref()
        .and_then(|i| i.downcast_ref::<RegistryError>());
    assert!(
        matches!(inner, Some(RegistryError::BlobDigestMismatch { .. })),
        "{err:?}"
    );

    // A source that fails mid-upload is the source's fault, not the registry's.
    let data = noise(11, 1 << 20);
    let digest = Digest::of_bytes(&data);
    let e = reg
        .ensure_blob("app", &digest, Some(data.len() as u64), &[], || async {
            Ok(FailingReader { left: 300_000 })
        })
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Source { .. }), "{e:?}");
    assert!(!e.is_unreachable());
    assert!(
        e.to_string().contains(digest.as_str()) && e.to_string().contains("disk on fire"),
        "{e}"
    );
    assert_eq!(reg.blob_exists("app", &digest).await.unwrap(), None);
}

/// Yields `left` bytes, then an error.
struct FailingReader {
    left: usize,
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(std::io::Error::other("disk on fire")));
        }
        let n = self.left.min(buf.remaining()).min(64 << 10);
        buf.put_slice(&vec![1u8; n]);
        self.left -= n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_is_resolved_to_the_platform() {
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let reg = Registry::connect(&server.addr, &anonymous()).await.unwrap();
    let amd = image(4, &[50_000], true, "amd64");
    let arm = image(5, &[60_000], true, "arm64");
    push(&reg, "multi", "amd64", &amd, &[]).await;
    push(&reg, "multi", "arm64", &arm, &[]).await;
    let entry = |img: &Image, p: &str| Descriptor {
        platform: Platform::parse(p),
        ..Descriptor::new(
            OCI_MANIFEST,
            img.manifest.digest.clone(),
            img.manifest.bytes.len() as u64,
        )
    };
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(OCI_INDEX.into()),
        manifests: vec![entry(&arm, "linux/arm64/v8"), entry(&amd, "linux/amd64")],
        annotations: None,
    };
    let raw = RawManifest::new(OCI_INDEX, serde_json::to_vec(&index).unwrap().into());
    reg.put_manifest("multi", "1", &raw).await.unwrap();

    let got = reg.get_image("multi", "1", &host()).await.unwrap();
    assert_eq!(got.raw.digest, amd.manifest.digest);
    assert_eq!(got.index.as_ref().map(|i| &i.digest), Some(&raw.digest));
    let got = reg
        .get_image("multi", "1", &Platform::parse("linux/arm64").unwrap())
        .await
        .unwrap();
    assert_eq!(got.raw.bytes, arm.manifest.bytes);
    let e = reg
        .get_image("multi", "1", &Platform::parse("linux/s390x").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::NoPlatform { .. }), "{e:?}");
    assert!(e.to_string().contains("linux/arm64/v8, linux/amd64"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_needs_the_right_credentials_and_says_which_were_tried() {
    let auth = Some(("alice".to_string(), "s3cret".to_string()));
    let Some(server) = require_registry(RegistryOptions {
        basic_auth: auth,
        ..Default::default()
    }) else {
        return;
    };
    let img = image(6, &[100_000], false, "amd64");

    let reg = Registry::connect(&server.addr, &anonymous()).await.unwrap();
    let e = reg
        .blob_exists("app", &img.layers[0].digest)
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    eprintln!("without credentials: {e}");
    let text = e.to_string();
    assert!(
        text.contains(&server.addr) && text.contains("none (test without credentials)"),
        "{text}"
    );
    assert_eq!(e.exit_code(), partial_common::exit::DAEMON);

    let wrong = Registry::connect(&server.addr, &opts(Credentials::explicit("alice", "wrong")))
        .await
        .unwrap();
    let e = wrong.list_tags("app").await.unwrap_err();
    assert!(e.to_string().contains("--username alice"), "{e}");

    let good = Registry::connect(
        &server.addr,
        &opts(Credentials::explicit("alice", "s3cret")),
    )
    .await
    .unwrap();
    push(&good, "app", "1", &img, &[]).await;
    assert_eq!(
        good.get_manifest("app", "1").await.unwrap().digest,
        img.manifest.digest
    );
}

/// The variable naming the registry to `docker_config_child`, set only in its process.
const CHILD_REGISTRY: &str = "PARTIAL_TEST_CREDENTIALS_REGISTRY";

/// Credentials from Docker's `config.json` (`auths`), then from a credential helper
/// (`credHelpers`, then `credsStore`): docker-credential-partialtest, first on `PATH`, answers `get`
/// for this registry only. `DOCKER_CONFIG` and `PATH` are the process's, so the client runs in a
/// process of its own, this test binary running `docker_config_child` with both set for it alone:
/// setting them here would race the other tests' child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_docker_config_and_credential_helpers() {
    let auth = Some(("alice".to_string(), "s3cret".to_string()));
    let Some(server) = require_registry(RegistryOptions {
        basic_auth: auth,
        ..Default::default()
    }) else {
        return;
    };
    let img = image(6, &[100_000], false, "amd64");
    let good = Registry::connect(
        &server.addr,
        &opts(Credentials::explicit("alice", "s3cret")),
    )
    .await
    .unwrap();
    push(&good, "app", "1", &img, &[]).await;

    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-partialtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread url\n\
             [ \"$url\" = \"{addr}\" ] || {{ echo \"credentials not found in native keychain\"; exit 1; }}\n\
             echo '{{\"ServerURL\":\"{addr}\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\n",
            addr = server.addr
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![dir.path().to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let name = "registry_client::docker_config_child";
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_REGISTRY, &server.addr)
        .env("DOCKER_CONFIG", dir.path())
        .env("PATH", std::env::join_paths(dirs).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 passed"), "{name} did not run: {stdout}");
}

/// The client's side of `credentials_come_from_docker_config_and_credential_helpers`, run by it
/// in a process of its own (`DOCKER_CONFIG` and `PATH` set for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by credentials_come_from_docker_config_and_credential_helpers, in a process of its own"]
async fn docker_config_child() {
    let (Some(addr), Some(dir)) = (
        std::env::var_os(CHILD_REGISTRY),
        std::env::var_os("DOCKER_CONFIG"),
    ) else {
        panic!("run by credentials_come_from_docker_config_and_credential_helpers only");
    };
    let addr = addr.to_string_lossy().into_owned();
    let dir = PathBuf::from(dir);
    // Docker's config.json (`auths`, base64 "alice:s3cret").
    let config = serde_json::json!({"auths": {addr.clone(): {"auth": "YWxpY2U6czNjcmV0"}}});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    // (No credentials in the options: `connect` reads DOCKER_CONFIG itself.)
    let mut from_docker = anonymous();
    from_docker.credentials = None;
    let from_config = Registry::connect(&addr, &from_docker).await.unwrap();
    let origin = from_config.credentials_origin().to_string();
    assert!(
        origin.contains("config.json") && origin.contains(&addr),
        "{origin}"
    );
    assert_eq!(from_config.list_tags("app").await.unwrap(), ["1"]);

    // A credential helper (`credHelpers`, then `credsStore`), found on PATH.
    for config in [
        serde_json::json!({"credHelpers": {addr.clone(): "partialtest"}}),
        serde_json::json!({"credsStore": "partialtest"}),
    ] {
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let creds = Credentials::from_docker_config(&addr);
        let reg = Registry::connect(&addr, &opts(creds.unwrap()))
            .await
            .unwrap();
        assert_eq!(reg.list_tags("app").await.unwrap(), ["1"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_works_with_the_ca_and_fails_clearly_without() {
    let Some(server) = require_registry(RegistryOptions {
        tls: true,
        ..Default::default()
    }) else {
        return;
    };
    let ca = server.ca_cert.clone().unwrap();

    let e = Registry::connect(&server.addr, &anonymous())
        .await
        .unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e:?}");
    eprintln!("without the CA: {e}");
    let text = e.to_string();
    assert!(
        text.contains(&server.addr) && text.contains("--ca-file"),
        "{text}"
    );

    let mut with_ca = anonymous();
    with_ca.transport.ca_files = vec![ca.clone()];
    let reg = Registry::connect(&server.addr, &with_ca).await.unwrap();
    assert!(reg.base_url().starts_with("https://"), "{}", reg.base_url());
    let img = image(7, &[300_000], false, "amd64");
    push(&reg, "app", "1", &img, &[]).await;
    let back = read_blob(&reg, "app", &img.layers[0].digest).await.unwrap();
    assert!(
        back == img.layers[0].bytes,
        "the layer read back over TLS differs"
    );

    // Docker's per-registry folder: certs.d/HOST:PORT/ca.crt.
    let certs = tempfile::tempdir().unwrap();
    std::fs::create_dir(certs.path().join(&server.addr)).unwrap();
    std::fs::copy(&ca, certs.path().join(&server.addr).join("ca.crt")).unwrap();
    let mut certs_d = anonymous();
    certs_d.transport.certs_dir = certs.path().to_path_buf();
    let reg = Registry::connect(&server.addr, &certs_d).await.unwrap();
    assert_eq!(
        reg.get_manifest("app", "1").await.unwrap().digest,
        img.manifest.digest
    );

    // --insecure: https without verification.
    let mut insecure = anonymous();
    insecure.transport.insecure = true;
    let reg = Registry::connect(&server.addr, &insecure).await.unwrap();
    assert!(reg.base_url().starts_with("https://"), "{}", reg.base_url());
    assert_eq!(reg.list_tags("app").await.unwrap(), ["1"]);
}

/// Yields `data` and sends `signal` to `pid` once `at` bytes were read.
struct SignallingReader {
    data: Vec<u8>,
    pos: usize,
    at: usize,
    pid: i32,
    signal: i32,
}

impl AsyncRead for SignallingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.pos >= self.at && self.pid != 0 {
            // SAFETY: plain kill(2) of the registry this test started.
            unsafe { libc::kill(self.pid, self.signal) };
            self.pid = 0;
        }
        let n = buf
            .remaining()
            .min(self.data.len() - self.pos)
            .min(64 << 10);
        let start = self.pos;
        buf.put_slice(&self.data[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_dying_mid_upload_is_unreachable_naming_registry_and_blob() {
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let reg = Registry::connect(&server.addr, &anonymous()).await.unwrap();
    let pid = server.pid().unwrap() as i32;
    let data = noise(8, 32 << 20);
    let digest = Digest::of_bytes(&data);
    let size = data.len() as u64;
    let started = std::time::Instant::now();
    let e = reg
        .ensure_blob("app", &digest, Some(size), &[], || async move {
            Ok(SignallingReader {
                data,
                pos: 0,
                at: 4 << 20,
                pid,
                signal: libc::SIGKILL,
            })
        })
        .await
        .unwrap_err();
    eprintln!(
        "failed {:?} after the start of the upload: {e}",
        started.elapsed()
    );
    assert!(e.is_unreachable(), "{e:?}");
    assert_eq!(e.exit_code(), partial_common::exit::DAEMON);
    let text = e.to_string();
    assert!(
        text.contains(&server.addr) && text.contains(digest.as_str()),
        "{text}"
    );
    drop(server);

    // A registry that is not there at all.
    let e = Registry::connect(reg.name(), &anonymous())
        .await
        .unwrap_err();
    assert!(e.is_unreachable(), "{e:?}");
    eprintln!("registry gone: {e}");
    assert!(e.to_string().contains(reg.name()), "{e}");
}

#[test]
fn the_runner_counts_requests_from_the_access_log() {
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let reg = Registry::connect(&server.addr, &anonymous()).await.unwrap();
        reg.blob_exists("app", &Digest::of_bytes(b"x"))
            .await
            .unwrap();
    });
    assert_eq!(
        server.count_requests("HEAD", "/v2/app/blobs/"),
        1,
        "{}",
        server.log()
    );
    assert_eq!(server.blob_uploads(), 0);
    let _: &RegistryServer = &server;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_from_the_realm_with_credentials_and_scopes_when_allowed() {
    let Some(server) = require_registry(RegistryOptions {
        tls: false,
        basic_auth: None,
        token_auth: Some(("bob".into(), "t0ken-pass".into())),
        token_repositories: vec!["app".into(), "mirror/app".into()],
    }) else {
        return;
    };
    let tokens = server.token_server.as_ref().unwrap();
    let img = image(9, &[150_000], false, "amd64");

    let anon = Registry::connect(&server.addr, &anonymous()).await.unwrap();
    assert!(
        matches!(
            anon.challenge(),
            Some(partial_common::registry::Challenge::Bearer { .. })
        ),
        "{:?}",
        anon.challenge()
    );
    let e = anon.list_tags("app").await.unwrap_err();
    eprintln!("token refused: {e}");
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    assert!(
        e.to_string().contains("none (test without credentials)"),
        "{e}"
    );

    // The realm is another port over plain http: the credentials stay home unless allowed.
    let bob = || opts(Credentials::explicit("bob", "t0ken-pass"));
    let withheld = Registry::connect(&server.addr, &bob()).await.unwrap();
    let e = withheld.list_tags("app").await.unwrap_err();
    let allow = format!("--allow-realm {}", tokens.addr);
    assert!(
        e.to_string().contains("withheld") && e.to_string().contains(&allow),
        "{e}"
    );
    assert_eq!(e.exit_code(), 5);
    let seen = tokens.requests();
    assert!(
        !seen.is_empty() && seen.iter().all(|r| r.authorization.is_none()),
        "{seen:?}"
    );
    let mut allowed = bob();
    allowed.allow_realms = vec![tokens.addr.clone()];
    let reg = Registry::connect(&server.addr, &allowed).await.unwrap();
    push(&reg, "app", "1", &img, &[]).await;
    let mounted = push(&reg, "mirror/app", "1", &img, &["app"]).await;
    assert!(
        mounted
            .iter()
            .all(|o| matches!(o, BlobOutcome::Mounted { .. })),
        "{mounted:?}"
    );
    assert_eq!(
        reg.get_manifest("mirror/app", "1").await.unwrap().digest,
        img.manifest.digest
    );
    assert_eq!(reg.catalog().await.unwrap().len(), 2);

    let seen = tokens.requests();
    let ok: Vec<_> = seen
        .iter()
        .filter(|r| {
            r.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        })
        .collect();
    assert!(
        ok.iter()
            .all(|r| r.query.contains("service=partial-test-registry")),
        "{seen:?}"
    );
    let has = |scope: &str| ok.iter().any(|r| r.query.contains(scope));
    assert!(has("scope=repository%3Aapp%3Apull%2Cpush"), "{seen:?}");
    assert!(
        ok.iter().any(|r| r
            .query
            .contains("scope=repository%3Amirror%2Fapp%3Apull%2Cpush")
            && r.query.contains("scope=repository%3Aapp%3Apull")),
        "a mount asks for both repositories: {seen:?}"
    );
    // One token per scope: far fewer token requests than registry requests.
    assert!(ok.len() <= 6, "{} token requests: {seen:?}", ok.len());
}

/// Yields `left` bytes, 1000 every 200 ms.
struct SlowReader {
    left: usize,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for SlowReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Ok(()));
        }
        let sleep = self.sleep.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep(std::time::Duration::from_millis(200)))
        });
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep = None;
        let n = self.left.min(1000).min(buf.remaining());
        buf.put_slice(&vec![7u8; n]);
        self.left -= n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_lives_and_a_stalled_registry_is_noticed() {
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let mut short = anonymous();
    short.transport.idle_timeout = std::time::Duration::from_secs(1);
    let reg = Registry::connect(&server.addr, &short).await.unwrap();

    // 20 kB at 5 kB/s: four times the idle bound in all, but never silent that long.
    for (len, size) in [(20_000, Some(20_000)), (20_001, None)] {
        let digest = Digest::of_bytes(&vec![7u8; len]);
        let started = std::time::Instant::now();
        let out = reg
            .ensure_blob("slow", &digest, size, &[], || async move {
                Ok(SlowReader {
                    left: len,
                    sleep: None,
                })
            })
            .await
            .unwrap();
        assert_eq!(out, BlobOutcome::Uploaded { bytes: len as u64 });
        assert!(started.elapsed() > std::time::Duration::from_secs(3));
    }

    // SIGSTOP the registry 4 MiB into a 32 MiB upload: the upload stalls, then fails.
    let pid = server.pid().unwrap() as i32;
    let data = noise(10, 32 << 20);
    let digest = Digest::of_bytes(&data);
    let started = std::time::Instant::now();
    let e = reg
        .ensure_blob(
            "app",
            &digest,
            Some(data.len() as u64),
            &[],
            || async move {
                Ok(SignallingReader {
                    data,
                    pos: 0,
                    at: 4 << 20,
                    pid,
                    signal: libc::SIGSTOP,
                })
            },
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    eprintln!("stalled upload failed after {took:?}: {e}");
    assert!(matches!(e, RegistryError::Stalled { .. }), "{e:?}");
    assert!(e.is_unreachable());
    assert!(e.to_string().contains(digest.as_str()), "{e}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    // A read from the stopped registry is bounded too.
    let e = reg.blob_exists("app", &digest).await.unwrap_err();
    assert!(e.is_unreachable(), "{e:?}");
    // SAFETY: kill(2) of the registry this test started (let it die normally on drop).
    unsafe { libc::kill(pid, libc::SIGCONT) };
}

/// Runs skopeo with plain http allowed, returning its stdout.
fn skopeo(args: &[&str]) -> String {
    let out = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_what_we_push_and_we_read_what_it_copies() {
    if !partial_tests::require_tool("skopeo") {
        return;
    }
    let Some(server) = require_registry(RegistryOptions::default()) else {
        return;
    };
    let reg = Registry::connect(&server.addr, &anonymous()).await.unwrap();
    let img = image(13, &[400_000, 100_000], false, "amd64");
    push(&reg, "app", "1", &img, &[]).await;

    let ours = format!("docker://{}/app:1", server.addr);
    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &ours]);
    assert_eq!(
        raw.as_bytes(),
        &img.manifest.bytes[..],
        "skopeo sees other manifest bytes"
    );
    let info: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &ours])).unwrap();
    assert_eq!(info["Digest"], img.manifest.digest.as_str());
    assert_eq!(info["Layers"].as_array().map(Vec::len), Some(2));

    // skopeo copies it to another repository; we read that back, byte for byte.
    let copy = format!("docker://{}/copied/app:2", server.addr);
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &ours,
        &copy,
    ]);
    let got = reg.get_image("copied/app", "2", &host()).await.unwrap();
    assert_eq!(got.raw.digest, img.manifest.digest);
    let config = reg
        .get_blob_bytes("copied/app", &got.manifest.config.digest)
        .await
        .unwrap();
    assert_eq!(&config[..], &img.config[..]);
    for l in &img.layers {
        let back = read_blob(&reg, "copied/app", &l.digest).await.unwrap();
        assert!(
            back == l.bytes,
            "layer {} copied by skopeo differs",
            l.digest
        );
    }
}
