//! A private podman service per test: podman's Docker-compatible API on a socket of its own,
//! the destination (or source) the podman end-to-end tests talk to with `-H unix://…`.
//!
//! [`Podman::start`] runs, as root, `podman --root D/root --runroot D/runroot system service
//! --time=0 unix://D/podman.sock` with everything under one temp dir `D`: a private
//! `containers.conf` (`CONTAINERS_CONF`: cgroupfs, events to a file, file locks instead of the
//! shared `/dev/shm/libpod_lock`, its temp folders, a CNI config folder of its own) and
//! `storage.conf` (`CONTAINERS_STORAGE_CONF`: the overlay driver on D/root), and `TMPDIR=D/tmp`
//! (with it, the upload podman copies and the OCI archive it unpacks stay in D/tmp; a service
//! started without it was seen unpacking under `/var/tmp`). No systemd is needed. It waits
//! until the socket answers `/_ping`.
//!
//! Stopping is by the service's own pid (SIGTERM, then SIGKILL); [`Drop`] stops it, detaches the
//! overlay mounts podman leaves below `D` and removes `D`. The same watchdog as the private
//! `dockerd` ([`crate::daemon`]) stops it and removes `D` when the test process dies first.
//!
//! Skip policy ([`require_podman`]): without `podman` on PATH the test skips loudly (fails under
//! `PARTIAL_REQUIRE_TOOLS=1`); when it cannot start (not root, a start failure) the same under
//! `PARTIAL_REQUIRE_DAEMON=1`. Both go through `partial_common::testutil::gate`.
//!
//! Tested with Debian bookworm's podman 4.3.1 (`apt-get install podman`; `scripts/setup.sh test`
//! installs it).

use crate::daemon::{
    log_tail, ping, run_checked, signal, spawn_watchdog, tool_path, unmount_below, wait_child,
    wait_gone,
};
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private podman service with its own storage.
pub struct Podman {
    dir: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl std::fmt::Debug for Podman {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Podman")
            .field("dir", &self.dir)
            .field("pid", &self.child.as_ref().map(|c| c.id()))
            .finish()
    }
}

/// The service's `containers.conf`; `@D@` is replaced by its folder.
const CONTAINERS_CONF: &str = r#"[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "@D@/events.log"
lock_type = "file"
tmp_dir = "@D@/tmp"
image_copy_tmp_dir = "@D@/tmp"
static_dir = "@D@/root/libpod"
volume_path = "@D@/root/volumes"

[network]
network_backend = "cni"
network_config_dir = "@D@/net"
"#;

/// The service's `storage.conf`.
const STORAGE_CONF: &str = r#"[storage]
driver = "overlay"
graphroot = "@D@/root"
runroot = "@D@/runroot"
"#;

impl Podman {
    /// Starts a private service; waits (at most `PARTIAL_DAEMON_TIMEOUT` seconds, default 60)
    /// until its socket answers `/_ping`.
    pub fn start() -> Result<Podman> {
        let podman = tool_path("podman")
            .context("`podman` is not on PATH (Debian: apt-get install podman)")?;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("not running as root (the podman service of the tests runs as root)");
        }
        let dir = tempfile::Builder::new()
            .prefix("partial-podman-")
            .tempdir()
            .context("creating the podman service's temp dir")?
            .keep();
        let mut p = Podman {
            dir,
            child: None,
            watchdog: None,
        };
        // On failure `p` is dropped here, which stops whatever started and removes the folder.
        p.spawn(&podman)?;
        Ok(p)
    }

    fn spawn(&mut self, podman: &Path) -> Result<()> {
        let d = self.dir.to_string_lossy().into_owned();
        for sub in ["root", "runroot", "tmp", "net"] {
            fs::create_dir_all(self.dir.join(sub))
                .with_context(|| format!("creating {d}/{sub}"))?;
        }
        let containers_conf = self.dir.join("containers.conf");
        let storage_conf = self.dir.join("storage.conf");
        fs::write(&containers_conf, CONTAINERS_CONF.replace("@D@", &d))?;
        fs::write(&storage_conf, STORAGE_CONF.replace("@D@", &d))?;
        let log = fs::File::create(self.log_path()).context("creating the podman log")?;
        let mut cmd = Command::new(podman);
        cmd.arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            .args(["system", "service", "--time=0"])
            .arg(self.host())
            .env("CONTAINERS_CONF", &containers_conf)
            .env("CONTAINERS_STORAGE_CONF", &storage_conf)
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C for the test run must not reach it before the watchdog.
            .process_group(0);
        let t0 = Instant::now();
        let child = cmd.spawn().context("spawning podman system service")?;
        let pid = child.id();
        self.child = Some(child);
        self.watchdog = spawn_watchdog(pid, &self.dir).ok();
        let timeout = Duration::from_secs(
            std::env::var("PARTIAL_DAEMON_TIMEOUT")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(60),
        );
        loop {
            if ping(&self.socket()) {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "podman system service exited during start with {status}; log:\n{}",
                    log_tail(&self.log_path())
                );
            }
            if t0.elapsed() > timeout {
                bail!(
                    "podman system service did not answer /_ping within {timeout:?}; log:\n{}",
                    log_tail(&self.log_path())
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The folder holding everything of this service.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("podman.sock")
    }

    /// `unix:///…/podman.sock`, for `-H`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The service's log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("podman.log")
    }

    /// `podman --url unix://…/podman.sock ARGS…` (podman's own client over the service's
    /// libpod API), which must succeed; its stdout.
    pub fn podman(&self, args: &[&str]) -> Result<String> {
        let podman = tool_path("podman").context("`podman` is not on PATH")?;
        let mut cmd = Command::new(podman);
        cmd.arg("--url").arg(self.host()).args(args);
        run_checked(&format!("podman {}", args.join(" ")), &mut cmd)
    }

    /// `podman load -i archive` (a plain `docker save` archive, say).
    pub fn load(&self, archive: &Path) -> Result<String> {
        self.podman(&["load", "-i", &archive.to_string_lossy()])
    }

    /// The image ID of `name`, as `sha256:…` (podman's client prints it bare).
    pub fn image_id(&self, name: &str) -> Result<String> {
        let out = self.podman(&["image", "inspect", "--format", "{{.Id}}", name])?;
        let id = out.trim();
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("unexpected image ID for {name}: {id:?}");
        }
        Ok(format!("sha256:{hex}"))
    }

    /// The names podman gives the image `name` (`RepoTags`, e.g. `localhost/app:2`).
    pub fn tags(&self, name: &str) -> Result<Vec<String>> {
        let out = self.podman(&["image", "inspect", "--format", "{{json .RepoTags}}", name])?;
        let v: Option<Vec<String>> = serde_json::from_str(out.trim())
            .with_context(|| format!("parsing RepoTags of {name}: {out}"))?;
        Ok(v.unwrap_or_default())
    }

    /// True when podman has an image by that name or ID.
    pub fn has_image(&self, name: &str) -> bool {
        self.podman(&["image", "exists", name]).is_ok()
    }

    /// Every image ID podman holds, as `sha256:…`, sorted.
    pub fn image_ids(&self) -> Result<Vec<String>> {
        let out = self.podman(&["images", "-a", "-q", "--no-trunc"])?;
        let mut v: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("sha256:{}", l.strip_prefix("sha256:").unwrap_or(l)))
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// `podman rmi -f name`.
    pub fn remove_image(&self, name: &str) -> Result<()> {
        self.podman(&["rmi", "-f", name]).map(|_| ())
    }

    /// Stops the service (SIGTERM, SIGKILL after 20 s) and its watchdog, keeping the folder.
    pub fn stop(&mut self) -> Result<()> {
        let mut result = Ok(());
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            signal(pid, libc::SIGTERM);
            if wait_child(&mut child, Duration::from_secs(20)).is_err() {
                signal(pid, libc::SIGKILL);
                let _ = child.wait();
                result = Err(anyhow::anyhow!(
                    "podman system service ignored SIGTERM for 20 s and was killed"
                ));
            }
            let _ = wait_gone(pid, Duration::from_secs(10));
        }
        if let Some(mut w) = self.watchdog.take() {
            signal(w.id() as i32, libc::SIGKILL);
            let _ = w.wait();
        }
        result
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping the podman service: {e:#}");
        }
        if std::env::var_os("PARTIAL_KEEP_DAEMON_DIRS").is_some() {
            eprintln!("kept podman folder {}", self.dir.display());
            return;
        }
        unmount_below(&self.dir);
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!(
                "warning: removing podman folder {}: {e}",
                self.dir.display()
            );
        }
    }
}

/// A private podman service, or `None` after a loud skip: without `podman` on PATH under
/// `PARTIAL_REQUIRE_TOOLS`, when it cannot start under `PARTIAL_REQUIRE_DAEMON` (a failure
/// instead of a skip when that variable is `1`).
pub fn require_podman() -> Option<Podman> {
    if tool_path("podman").is_none() {
        let e = anyhow::anyhow!("`podman` is not on PATH (Debian: apt-get install podman)");
        return crate::pair::skip_or_panic("PARTIAL_REQUIRE_TOOLS", "podman is missing", &e);
    }
    match Podman::start() {
        Ok(p) => Some(p),
        Err(e) => crate::pair::skip_or_panic(
            "PARTIAL_REQUIRE_DAEMON",
            "no podman service could be started",
            &e,
        ),
    }
}
