//! A private containerd per test: the destination and base the containerd end-to-end tests talk
//! to with `partial-load --containerd SOCKET`.
//!
//! [`Containerd::start`] runs, as root, `containerd --config D/config.toml` with everything
//! under one temp dir `D`: its root, state, gRPC and ttrpc sockets, the `opt` folder, and the
//! CRI plugin disabled (no kubelet here). It waits until `ctr version` answers, then picks the
//! snapshotter: `overlayfs` when containerd loaded that plugin (it test-mounts overlay on its
//! root at start), else `native` (a root folder on a filesystem overlay cannot stack on); the
//! choice is printed, and tests pass it to `partial-load --snapshotter` and `ctr`.
//!
//! Stopping is by containerd's own pid (SIGTERM, then SIGKILL); [`Drop`] stops it, detaches the
//! mounts left below `D` and removes `D`. The same watchdog as the private `dockerd`
//! ([`crate::daemon`]) stops it and removes `D` when the test process dies first.
//!
//! Skip policy ([`require_containerd`]): without `containerd` or `ctr` on PATH the test skips
//! loudly (fails under `PARTIAL_REQUIRE_TOOLS=1`); when it cannot start (not root, a start
//! failure) the same under `PARTIAL_REQUIRE_DAEMON=1`.
//!
//! Tested with Debian bookworm's containerd 1.6.20 (`containerd` package, a dependency of
//! `docker.io`). `PARTIAL_CONTAINERD_BIN=PATH` runs another `containerd` binary instead (the
//! Docker 26 test cache's 1.7.24: `/var/cache/partial-tests/docker26/root/usr/bin/containerd`);
//! `ctr` stays the system's.

use crate::daemon::{
    log_tail, run_checked, signal, spawn_watchdog, tool_path, unmount_below, wait_child, wait_gone,
};
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private containerd.
pub struct Containerd {
    dir: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
    /// `overlayfs`, or `native` where overlay does not work.
    pub snapshotter: String,
}

impl std::fmt::Debug for Containerd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containerd")
            .field("dir", &self.dir)
            .field("pid", &self.child.as_ref().map(|c| c.id()))
            .field("snapshotter", &self.snapshotter)
            .finish()
    }
}

/// containerd's config; `@D@` is replaced by its folder.
const CONFIG: &str = r#"version = 2
root = "@D@/root"
state = "@D@/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "@D@/containerd.sock"

[ttrpc]
  address = "@D@/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "@D@/opt"
"#;

impl Containerd {
    /// Starts a private containerd; waits (at most `PARTIAL_DAEMON_TIMEOUT` seconds, default
    /// 60) until `ctr version` answers.
    pub fn start() -> Result<Containerd> {
        let containerd = containerd_bin()?;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("not running as root (the containerd of the tests runs as root)");
        }
        let dir = tempfile::Builder::new()
            .prefix("partial-containerd-")
            .tempdir()
            .context("creating containerd's temp dir")?
            .keep();
        let mut c = Containerd {
            dir,
            child: None,
            watchdog: None,
            snapshotter: String::new(),
        };
        // On failure `c` is dropped here, which stops whatever started and removes the folder.
        c.spawn(&containerd)?;
        c.snapshotter = c.pick_snapshotter()?;
        eprintln!(
            "containerd {}: snapshotter {}",
            c.dir.display(),
            c.snapshotter
        );
        Ok(c)
    }

    fn spawn(&mut self, containerd: &Path) -> Result<()> {
        let d = self.dir.to_string_lossy().into_owned();
        let config = self.dir.join("config.toml");
        fs::write(&config, CONFIG.replace("@D@", &d))?;
        let log = fs::File::create(self.log_path()).context("creating the containerd log")?;
        let mut cmd = Command::new(containerd);
        cmd.arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C for the test run must not reach it before the watchdog.
            .process_group(0);
        let t0 = Instant::now();
        let child = cmd.spawn().context("spawning containerd")?;
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
            if self.socket().exists() && self.ctr(&["version"]).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "containerd exited during start with {status}; log:\n{}",
                    log_tail(&self.log_path())
                );
            }
            if t0.elapsed() > timeout {
                bail!(
                    "containerd did not answer within {timeout:?}; log:\n{}",
                    log_tail(&self.log_path())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `overlayfs` when containerd loaded that snapshotter, else `native`.
    fn pick_snapshotter(&self) -> Result<String> {
        let plugins = self.ctr(&["plugins", "ls"])?;
        let overlay_ok = plugins.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4
                && f[0] == "io.containerd.snapshotter.v1"
                && f[1] == "overlayfs"
                && f[3] == "ok"
        });
        Ok(if overlay_ok { "overlayfs" } else { "native" }.to_string())
    }

    /// The folder holding everything of this containerd.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// containerd's log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// Where the snapshotter keeps its snapshots.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.dir
            .join("root")
            .join(format!("io.containerd.snapshotter.v1.{}", self.snapshotter))
            .join("snapshots")
    }

    /// Where containerd keeps the blobs being written (one folder per write in progress).
    pub fn ingest_dir(&self) -> PathBuf {
        self.dir
            .join("root")
            .join("io.containerd.content.v1.content")
            .join("ingest")
    }

    /// `ctr -a SOCKET ARGS…`, which must succeed; its stdout.
    pub fn ctr(&self, args: &[&str]) -> Result<String> {
        let ctr = tool_path("ctr").context("`ctr` is not on PATH")?;
        let mut cmd = Command::new(ctr);
        cmd.arg("-a").arg(self.socket()).args(args);
        run_checked(&format!("ctr {}", args.join(" ")), &mut cmd)
    }

    /// `ctr -n NS images import --snapshotter S ARCHIVE` (a plain `docker save` archive: the
    /// images are unpacked too).
    pub fn import(&self, ns: &str, archive: &Path) -> Result<String> {
        self.ctr(&[
            "-n",
            ns,
            "images",
            "import",
            "--snapshotter",
            &self.snapshotter,
            &archive.to_string_lossy(),
        ])
    }

    /// The image records of namespace `ns`: (name, target digest).
    pub fn images(&self, ns: &str) -> Result<Vec<(String, String)>> {
        let out = self.ctr(&["-n", ns, "images", "ls"])?;
        Ok(out
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((f.first()?.to_string(), f.get(2)?.to_string()))
            })
            .collect())
    }

    /// The names of the committed snapshots of namespace `ns` (chain IDs, for unpacked images).
    pub fn committed_snapshots(&self, ns: &str) -> Result<Vec<String>> {
        let out = self.ctr(&[
            "-n",
            ns,
            "snapshots",
            "--snapshotter",
            &self.snapshotter,
            "ls",
        ])?;
        Ok(out
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.last() == Some(&"Committed")).then(|| f[0].to_string())
            })
            .collect())
    }

    /// Stops containerd (SIGTERM, SIGKILL after 20 s) and its watchdog, keeping the folder.
    pub fn stop(&mut self) -> Result<()> {
        let mut result = Ok(());
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            signal(pid, libc::SIGTERM);
            if wait_child(&mut child, Duration::from_secs(20)).is_err() {
                signal(pid, libc::SIGKILL);
                let _ = child.wait();
                result = Err(anyhow::anyhow!(
                    "containerd ignored SIGTERM for 20 s and was killed"
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

    /// Kills containerd at once (SIGKILL), as a crash would; the folder stays for a restart.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
        }
        if let Some(mut w) = self.watchdog.take() {
            signal(w.id() as i32, libc::SIGKILL);
            let _ = w.wait();
        }
    }

    /// Starts containerd again on the same folder (after [`Containerd::kill`] or `stop`).
    pub fn restart(&mut self) -> Result<()> {
        let containerd = containerd_bin()?;
        self.spawn(&containerd)
    }
}

/// `PARTIAL_CONTAINERD_BIN`, else `containerd` on PATH.
fn containerd_bin() -> Result<PathBuf> {
    match std::env::var_os("PARTIAL_CONTAINERD_BIN") {
        Some(p) => Ok(PathBuf::from(p)),
        None => tool_path("containerd")
            .context("`containerd` is not on PATH (Debian: apt-get install containerd)"),
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping containerd: {e:#}");
        }
        if std::env::var_os("PARTIAL_KEEP_DAEMON_DIRS").is_some() {
            eprintln!("kept containerd folder {}", self.dir.display());
            return;
        }
        unmount_below(&self.dir);
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!(
                "warning: removing containerd folder {}: {e}",
                self.dir.display()
            );
        }
    }
}

/// A private containerd, or `None` after a loud skip: without `containerd`/`ctr` on PATH under
/// `PARTIAL_REQUIRE_TOOLS`, when it cannot start under `PARTIAL_REQUIRE_DAEMON`.
pub fn require_containerd() -> Option<Containerd> {
    for tool in ["containerd", "ctr"] {
        if tool_path(tool).is_none() {
            let e = anyhow::anyhow!("`{tool}` is not on PATH (Debian: apt-get install containerd)");
            return crate::pair::skip_or_panic(
                "PARTIAL_REQUIRE_TOOLS",
                "containerd is missing",
                &e,
            );
        }
    }
    match Containerd::start() {
        Ok(c) => Some(c),
        Err(e) => crate::pair::skip_or_panic(
            "PARTIAL_REQUIRE_DAEMON",
            "no containerd could be started",
            &e,
        ),
    }
}
