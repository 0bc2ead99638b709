//! Test rig for `partial-save` / `partial-load`: private Docker daemons, deterministic image
//! fixtures, archive layouts and the workspace binaries.
//!
//! ```no_run
//! let pair = partial_tests::require_daemons!(); // or skips loudly (panics in CI)
//! pair.source.import_rootfs("base:1", 1, &[4096], partial_tests::Content::Random).unwrap();
//! let tar = pair.source.save(&["base:1"]).unwrap();
//! pair.airgap.load(&tar).unwrap();
//! let save = partial_tests::bin("partial-save");
//! # let _ = save;
//! ```
//!
//! - [`daemon`]: one private `dockerd` ([`Daemon`]): start, stop, kill, restart, orphan watchdog.
//! - [`docker26`]: Docker 26 from `PARTIAL_DOCKER26_DIR` (classic or containerd image store) and
//!   pairs of engines ([`docker26::require_pair`]).
//! - [`docker_root`]: a Docker unpacked into a folder: its binaries and the `PATH` it runs with.
//! - [`pair`]: [`DaemonPair`] (source and air-gapped side) and the skip policy.
//! - [`fixtures`]: tars, `docker import`, `FROM`+`COPY` builds, save/load/inspect helpers.
//! - [`layout`]: hand-written legacy archives and rewriters from the legacy layout into the Docker ≥ 25
//!   one and into the containerd image store's one.
//! - [`bins`]: locating (and if needed building) `partial-save` and `partial-load`.
//! - [`podman`]: a private podman service per test ([`Podman`]: podman's Docker-compatible API on
//!   a socket and storage of its own).
//! - [`registry`]: a private `docker-registry` per test (plain http, TLS with its own CA, basic auth).
//! - [`bundle_check`]: the check that a bundle never contradicts its manifest.
//! - [`writers`]: archives as other tools write them (skopeo, umoci, crane), multi-platform
//!   OCI indexes; [`roundtrip`]: the scene and the save/check/load round trip of the writer tests.
//!
//! Test-archive builders shared with the library's unit tests come from
//! `partial_common::testutil` (feature `testutil`).
//!
//! Environment:
//! - `PARTIAL_REQUIRE_DAEMON=1` / `PARTIAL_REQUIRE_TOOLS=1`: a test that cannot get a daemon / a
//!   tool fails instead of skipping (set by `.ci/run`).
//! - `PARTIAL_MAX_DAEMONS` (default 4): daemons running at once in one test process.
//! - `PARTIAL_DAEMON_TIMEOUT` (seconds, default 60): how long a start may take.
//! - `PARTIAL_STORAGE_DRIVER`: `--storage-driver` (default: the daemon's; overlay2 works here).
//! - `PARTIAL_DOCKER26_DIR`: the unpacked Docker 26 (scripts/setup.sh `setup_docker26`) for the
//!   docker26 tests, whose containerd 1.7 the containerd tests run too.
//! - `PARTIAL_CONTAINERD2_DIR`: the unpacked containerd 2.x (scripts/setup.sh
//!   `setup_containerd2`) for the containerd tests.
//! - `PARTIAL_KEEP_DAEMON_DIRS`: keep each daemon's folder (log, data) after the test.

pub mod bins;
pub mod bundle_check;
pub mod charts;
pub mod cli;
pub mod containerd;
pub mod cri;
pub mod daemon;
pub mod docker26;
pub mod docker_root;
pub mod fixtures;
pub mod layout;
pub mod pair;
pub mod podman;
pub mod registry;
pub mod roundtrip;
pub mod scenario;
pub mod tamper;
pub mod writers;

pub use bins::{bin, workspace_root};
pub use containerd::{require_containerd, Containerd};
pub use daemon::{Daemon, DaemonOptions};
pub use fixtures::{
    content, layer_files, rootfs_tar, sha256_digest, Content, LayerFiles, TarBuilder,
};
pub use layout::{
    legacy_to_containerd_layout, legacy_to_oci_layout, write_legacy_archive, ImageSpec,
};
pub use pair::{require_daemon, require_daemons, require_daemons_with, require_tool, DaemonPair};
pub use podman::{require_podman, Podman};
pub use registry::{require_registry, RegistryOptions, RegistryServer, TokenServer};
