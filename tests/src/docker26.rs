//! Docker 26 next to the system's Docker 20.10: which Docker a private daemon runs, and pairs
//! of them for the tests of modern Docker (with and without the containerd image store).
//!
//! `scripts/setup.sh`'s `setup_docker26` unpacks Debian trixie's `docker.io`, `docker-cli`,
//! `containerd`, `runc` and `tini` into a cache folder, and `scripts/test.sh` exports its root as
//! `PARTIAL_DOCKER26_DIR`. A daemon of [`Engine::Docker26`] runs `dockerd` from that folder with
//! its bin dirs first on `PATH`, so it starts its own containerd 1.7, shim and runc, never the
//! system's. Without the variable the tests skip loudly, or fail under
//! `PARTIAL_REQUIRE_DAEMON=1`; a folder whose `dockerd --version` is not 26.x is an error.

use crate::daemon::{Daemon, DaemonOptions};
pub use crate::docker_root::{binary, path_with};
use crate::pair::{skip_or_panic, DaemonPair};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the unpacked Docker 26 root.
pub const ENV: &str = "PARTIAL_DOCKER26_DIR";

/// Which Docker a daemon of a test runs, and on which image store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The system's `dockerd` (Debian bookworm: 20.10), graphdriver store.
    System,
    /// Docker 26 from [`ENV`], classic graphdriver store (overlay2).
    Docker26,
    /// Docker 26 from [`ENV`] with the containerd image store (overlayfs snapshotter).
    Docker26Containerd,
}

impl Engine {
    /// A short name for labels and messages.
    pub fn name(self) -> &'static str {
        match self {
            Engine::System => "docker",
            Engine::Docker26 => "docker26",
            Engine::Docker26Containerd => "docker26-containerd-store",
        }
    }

    /// Options for a daemon of this engine labelled `label`; an error when Docker 26 is asked
    /// for and [`ENV`] is not set or not a Docker 26.
    pub fn options(self, label: &str) -> Result<DaemonOptions> {
        let opts = DaemonOptions::labelled(&format!("{label}-{}", self.name()));
        Ok(match self {
            Engine::System => opts,
            Engine::Docker26 => opts.docker_root(&root()?),
            Engine::Docker26Containerd => opts.docker_root(&root()?).containerd_snapshotter(true),
        })
    }
}

/// The checked Docker 26 root from [`ENV`] (checked once per process).
pub fn root() -> Result<PathBuf> {
    static ROOT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| check_root().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}

fn check_root() -> Result<PathBuf> {
    let Some(dir) = std::env::var_os(ENV).filter(|v| !v.is_empty()) else {
        bail!(
            "{ENV} is not set (sudo scripts/test.sh fetches Debian trixie's Docker 26 and sets it)"
        );
    };
    let root = PathBuf::from(dir);
    let dockerd = binary(&root, "dockerd");
    let out = Command::new(&dockerd)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version ({ENV})", dockerd.display()))?;
    let version = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !version.starts_with("Docker version 26.") {
        bail!(
            "{} --version says {:?}, not Docker 26 ({ENV}={})",
            dockerd.display(),
            version.trim(),
            root.display()
        );
    }
    for tool in ["docker", "containerd", "containerd-shim-runc-v2", "runc"] {
        if !binary(&root, tool).is_file() {
            bail!("{ENV}={} has no {tool}", root.display());
        }
    }
    Ok(root)
}

/// A pair with `source` and `airgap` running the given engines, or `None` after a loud skip
/// (no [`ENV`], no root, a start failure); panics under `PARTIAL_REQUIRE_DAEMON=1`.
pub fn require_pair(source: Engine, airgap: Engine) -> Option<DaemonPair> {
    let opts = source
        .options("source")
        .and_then(|s| Ok((s, airgap.options("airgap")?)));
    let started = opts.and_then(|(s, a)| DaemonPair::start_with(s, a));
    match started {
        Ok(pair) => Some(pair),
        Err(e) => skip_or_panic(
            "PARTIAL_REQUIRE_DAEMON",
            &format!(
                "no {} → {} pair of daemons could be started",
                source.name(),
                airgap.name()
            ),
            &e,
        ),
    }
}

/// The config digest (`sha256:…`) of image `name` on `daemon`, from `docker save`'s
/// `manifest.json` (`Config`: `blobs/sha256/HEX` or the legacy `HEX.json`): the identity every
/// store keeps, where the containerd store's image ID is the manifest digest instead.
pub fn config_digest(daemon: &Daemon, name: &str) -> Result<String> {
    let entry = saved_entry(daemon, name)?;
    let config = entry["Config"].as_str().unwrap_or_default();
    let hex = config
        .strip_prefix("blobs/sha256/")
        .or_else(|| config.strip_suffix(".json"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("{name}: manifest.json names config {config:?}"))?;
    Ok(format!("sha256:{hex}"))
}

/// The layer files of image `name` in `docker save`'s `manifest.json` (`Layers`), bottom first:
/// `blobs/sha256/<diffID>` for uncompressed layers, the compressed blob's digest otherwise.
pub fn saved_layers(daemon: &Daemon, name: &str) -> Result<Vec<String>> {
    let entry = saved_entry(daemon, name)?;
    serde_json::from_value(entry["Layers"].clone())
        .with_context(|| format!("{name}: manifest.json Layers: {entry}"))
}

/// The first `manifest.json` entry of `docker save NAME` on `daemon`.
fn saved_entry(daemon: &Daemon, name: &str) -> Result<serde_json::Value> {
    let tar = daemon.save(&[name])?;
    let found = manifest_entry(&tar);
    let _ = std::fs::remove_file(&tar);
    found.with_context(|| format!("reading docker save of {name}"))
}

/// The first `manifest.json` entry of the archive at `tar`.
fn manifest_entry(tar: &Path) -> Result<serde_json::Value> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_ref() != Path::new("manifest.json") {
            continue;
        }
        let v: serde_json::Value = serde_json::from_reader(&mut entry)?;
        return Ok(v[0].clone());
    }
    bail!("no manifest.json in {}", tar.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_looked_up_below_the_root_and_first_on_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/runc"), b"").unwrap();
        assert_eq!(binary(dir.path(), "runc"), dir.path().join("usr/bin/runc"));
        assert_eq!(
            binary(dir.path(), "dockerd"),
            dir.path().join("usr/sbin/dockerd")
        );
        let path = path_with(dir.path());
        let first = std::env::split_paths(&path).next().unwrap();
        assert_eq!(first, dir.path().join("usr/bin"));
    }
}
