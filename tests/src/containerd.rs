//! A private containerd per test: the destination and base the containerd end-to-end tests talk
//! to with `partial-load --containerd SOCKET`.
//!
//! [`Containerd::start`] runs, as root, `containerd --config D/config.toml` with everything
//! under one temp dir `D`: its root, state, gRPC and ttrpc sockets, the `opt` folder, and the
//! CRI plugin disabled unless a test asks for the kubelet's view ([`Containerd::start_with`]).
//! It waits until `ctr version` answers, then picks the snapshotter: `overlayfs` when containerd loaded that plugin (it test-mounts overlay on its
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
//! Three releases ([`Release`]), each run with its own `ctr`, shim and runc:
//! - [`Release::V1_6`]: the system's, Debian bookworm's 1.6 (`containerd` package, a dependency
//!   of `docker.io`);
//! - [`Release::V1_7`]: Debian trixie's 1.7, from the unpacked Docker 26 (`PARTIAL_DOCKER26_DIR`,
//!   [`crate::docker26`]);
//! - [`Release::V2`]: Debian forky's 2.x, unpacked by `scripts/setup.sh`'s `setup_containerd2`
//!   into the folder `PARTIAL_CONTAINERD2_DIR` names, with a `version = 3` config.
//!
//! A release whose folder is not set skips loudly (fails under `PARTIAL_REQUIRE_DAEMON=1`), and
//! one whose `containerd --version` is not of that release is an error.

use crate::daemon::{
    log_tail, run_checked, signal, spawn_watchdog, tool_path, unmount_below, wait_child, wait_gone,
};
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the unpacked containerd 2.x root.
pub const V2_ENV: &str = "PARTIAL_CONTAINERD2_DIR";

/// Which containerd a test runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The system's (Debian bookworm: 1.6).
    V1_6,
    /// Debian trixie's 1.7, from the unpacked Docker 26 ([`crate::docker26::ENV`]).
    V1_7,
    /// Debian forky's 2.x, from [`V2_ENV`].
    V2,
}

impl Release {
    /// The version prefix `containerd --version` must show.
    fn version_prefix(self) -> &'static str {
        match self {
            Release::V1_6 => "1.6.",
            Release::V1_7 => "1.7.",
            Release::V2 => "2.",
        }
    }

    /// The folder with `usr/bin/containerd`, `ctr`, the shim and runc; `None` for the system's.
    fn root(self) -> Result<Option<PathBuf>> {
        let env = match self {
            Release::V1_6 => return Ok(None),
            Release::V1_7 => crate::docker26::ENV,
            Release::V2 => V2_ENV,
        };
        match std::env::var_os(env).filter(|v| !v.is_empty()) {
            Some(dir) => Ok(Some(PathBuf::from(dir))),
            None => bail!(
                "{env} is not set (sudo scripts/test.sh fetches Debian's containerd {}x and sets it)",
                self.version_prefix()
            ),
        }
    }

    /// `tool` (`containerd` or `ctr`) of this release.
    fn tool(self, tool: &str) -> Result<PathBuf> {
        match self.root()? {
            Some(root) => {
                let p = crate::docker_root::binary(&root, tool);
                if !p.is_file() {
                    bail!("{} has no {tool}", root.display());
                }
                Ok(p)
            }
            None => tool_path(tool).with_context(|| {
                format!("`{tool}` is not on PATH (Debian: apt-get install containerd)")
            }),
        }
    }

    /// containerd's config for this release in folder `dir`, CRI disabled unless `cri`. 2.x
    /// takes `version = 3` (it would migrate a version 2 file at every start, with a warning),
    /// and its CRI is three plugins.
    fn config(self, dir: &str, cri: bool) -> String {
        let (version, cri_plugins) = match self {
            Release::V1_6 | Release::V1_7 => (2, &["io.containerd.grpc.v1.cri"][..]),
            Release::V2 => (
                3,
                &[
                    "io.containerd.grpc.v1.cri",
                    "io.containerd.cri.v1.images",
                    "io.containerd.cri.v1.runtime",
                ][..],
            ),
        };
        let disabled: &[&str] = if cri { &[] } else { cri_plugins };
        let disabled = disabled
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "version = {version}\ndisabled_plugins = [{disabled}]\n{}",
            CONFIG.replace("@D@", dir)
        )
    }
}

/// A running private containerd.
pub struct Containerd {
    release: Release,
    /// Whether the CRI plugin runs (it is disabled unless a test asks for the kubelet's view).
    cri: bool,
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

/// containerd's config, after a `version = N` line and the disabled plugins; `@D@` is replaced
/// by its folder.
const CONFIG: &str = r#"root = "@D@/root"
state = "@D@/state"

[grpc]
  address = "@D@/containerd.sock"

[ttrpc]
  address = "@D@/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "@D@/opt"
"#;

impl Containerd {
    /// Starts a private containerd of `release`; waits (at most `PARTIAL_DAEMON_TIMEOUT`
    /// seconds, default 60) until `ctr version` answers, then checks the server's version.
    pub fn start(release: Release) -> Result<Containerd> {
        Self::start_with(release, false)
    }

    /// [`Containerd::start`], with the CRI plugin running when `cri` (its image service is what
    /// the kubelet asks: [`crate::cri`]; no CNI config, which only its pods would need).
    pub fn start_with(release: Release, cri: bool) -> Result<Containerd> {
        let containerd = release.tool("containerd")?;
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
            release,
            cri,
            dir,
            child: None,
            watchdog: None,
            snapshotter: String::new(),
        };
        // On failure `c` is dropped here, which stops whatever started and removes the folder.
        c.spawn(&containerd)?;
        let version = c.server_version()?;
        if !version.starts_with(release.version_prefix()) {
            bail!(
                "{} is containerd {version}, not {}x",
                containerd.display(),
                release.version_prefix()
            );
        }
        c.snapshotter = c.pick_snapshotter()?;
        eprintln!(
            "containerd {version} in {}: snapshotter {}",
            c.dir.display(),
            c.snapshotter
        );
        Ok(c)
    }

    fn spawn(&mut self, containerd: &Path) -> Result<()> {
        let d = self.dir.to_string_lossy().into_owned();
        let config = self.dir.join("config.toml");
        fs::write(&config, self.release.config(&d, self.cri))?;
        let log = fs::File::create(self.log_path()).context("creating the containerd log")?;
        let mut cmd = Command::new(containerd);
        cmd.arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C for the test run must not reach it before the watchdog.
            .process_group(0);
        if let Some(root) = self.release.root()? {
            // Its own shim and runc before the system's.
            cmd.env("PATH", crate::docker_root::path_with(&root));
        }
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

    /// The server's version, as `ctr version` shows it (`1.6.20~ds1`, `2.1.9+unknown`).
    fn server_version(&self) -> Result<String> {
        let out = self.ctr(&["version"])?;
        out.split("Server:")
            .nth(1)
            .and_then(|server| {
                server
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("Version:"))
            })
            .map(|v| v.trim().to_string())
            .with_context(|| format!("no server version in `ctr version`: {out}"))
    }

    /// Which release this is.
    pub fn release(&self) -> Release {
        self.release
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
        let ctr = self.release.tool("ctr")?;
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
        let containerd = self.release.tool("containerd")?;
        self.spawn(&containerd)
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

/// A private containerd of the system's release ([`Release::V1_6`]); see [`require_release`].
pub fn require_containerd() -> Option<Containerd> {
    require_release(Release::V1_6)
}

/// A private containerd of `release`, or `None` after a loud skip: the system's without
/// `containerd`/`ctr` on PATH under `PARTIAL_REQUIRE_TOOLS`; an unpacked one whose folder is not
/// set, or any that cannot start, under `PARTIAL_REQUIRE_DAEMON`.
pub fn require_release(release: Release) -> Option<Containerd> {
    require_release_with(release, false)
}

/// [`require_release`], with the CRI plugin running when `cri`.
pub fn require_release_with(release: Release, cri: bool) -> Option<Containerd> {
    if release == Release::V1_6 {
        for tool in ["containerd", "ctr"] {
            if let Err(e) = release.tool(tool) {
                return crate::pair::skip_or_panic(
                    "PARTIAL_REQUIRE_TOOLS",
                    "containerd is missing",
                    &e,
                );
            }
        }
    }
    match Containerd::start_with(release, cri) {
        Ok(c) => Some(c),
        Err(e) => crate::pair::skip_or_panic(
            "PARTIAL_REQUIRE_DAEMON",
            &format!(
                "no containerd {}x could be started",
                release.version_prefix()
            ),
            &e,
        ),
    }
}
