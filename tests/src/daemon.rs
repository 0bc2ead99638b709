//! Private `dockerd` instances for end-to-end tests.
//!
//! [`Daemon::start`] runs a `dockerd` of its own (as root) with every folder under one temp dir:
//! `--data-root D/root --exec-root D/exec --pidfile D/pid -H unix://D/docker.sock`, no bridge and no
//! iptables, and the default storage driver (overlay2 works in this sandbox; set
//! `PARTIAL_STORAGE_DRIVER=vfs` where it does not). It waits until the socket answers `/_ping`.
//! Its configuration is always `--config-file D/daemon.json`, so the host's
//! `/etc/docker/daemon.json` never counts; [`DaemonOptions::containerd_snapshotter`] turns the
//! containerd image store on there, and [`DaemonOptions::docker_root`] runs another Docker than
//! the system's (Docker 26 from `PARTIAL_DOCKER26_DIR`: [`crate::docker26`]).
//!
//! Stopping is done by the daemon's *own* pid (never by name): SIGTERM, wait, SIGKILL, then the same
//! for the containerd it started (`D/exec/containerd/containerd.pid`), waiting until both are gone,
//! so the next daemon on the same folders does not find "containerd is still running". [`Drop`] does
//! all of it and removes the folders, so a panicking test cleans up too.
//!
//! Orphans: if the test process itself is killed (SIGKILL, a timeout, Ctrl-C), `Drop` never runs.
//! Each daemon therefore gets a watchdog: a tiny `sh` loop, started in its own process group so a
//! terminal's Ctrl-C cannot take it down first, that polls every half second whether the test process
//! and the daemon are still there. When the test process is gone it stops the daemon and its
//! containerd the same way and removes the folders; when the daemon is gone it just exits.
//! `PR_SET_PDEATHSIG` was rejected: it fires when the *thread* that spawned the child exits (libtest
//! runs each test on its own short-lived thread), and a SIGKILLed dockerd leaves its containerd and
//! its files behind anyway.
//!
//! Concurrency: tests in one binary run on several threads; each test starts its own daemons (a start
//! takes well under a second here), and a process-wide semaphore bounds how many run at once
//! (`PARTIAL_MAX_DAEMONS`, default 4, i.e. two [`crate::DaemonPair`]s on a 2-core machine).

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Options for a private daemon.
#[derive(Clone, Debug, Default)]
pub struct DaemonOptions {
    /// A short label used in the temp dir name and in messages (e.g. `source`, `airgap`).
    pub label: String,
    /// Extra environment for `dockerd`, e.g. `("TZ", "Asia/Shanghai")`.
    pub env: Vec<(String, String)>,
    /// `--storage-driver`; `None` takes `PARTIAL_STORAGE_DRIVER` or the daemon's default.
    pub storage_driver: Option<String>,
    /// How long to wait for `/_ping`; `None` takes `PARTIAL_DAEMON_TIMEOUT` (seconds) or 60 s.
    pub start_timeout: Option<Duration>,
    /// An unpacked Docker (a folder with `usr/sbin/dockerd`, `usr/bin/docker`, its containerd,
    /// shim and runc, e.g. `PARTIAL_DOCKER26_DIR`): the daemon and the CLI run from it, with its
    /// bin dirs first on `PATH`. `None`: the system's `dockerd`.
    pub docker_root: Option<PathBuf>,
    /// The containerd image store (`"features": {"containerd-snapshotter": true}` in a
    /// `daemon.json` given with `--config-file`; Docker ≥ 24).
    pub containerd_snapshotter: bool,
}

impl DaemonOptions {
    /// Options with a label and nothing else.
    pub fn labelled(label: &str) -> Self {
        DaemonOptions {
            label: label.to_string(),
            ..Default::default()
        }
    }

    /// Adds one environment variable for `dockerd` (builder style).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the Docker unpacked in `root` (see [`DaemonOptions::docker_root`]; builder style).
    pub fn docker_root(mut self, root: &Path) -> Self {
        self.docker_root = Some(root.to_path_buf());
        self
    }

    /// Turns the containerd image store on or off (builder style).
    pub fn containerd_snapshotter(mut self, on: bool) -> Self {
        self.containerd_snapshotter = on;
        self
    }

    /// `dockerd`: from [`DaemonOptions::docker_root`] when set, else the system's.
    fn dockerd(&self) -> PathBuf {
        match &self.docker_root {
            Some(root) => crate::docker_root::binary(root, "dockerd"),
            None => tool_path("dockerd").unwrap_or_else(|| "dockerd".into()),
        }
    }

    /// The `docker` CLI that goes with the daemon.
    fn docker_cli(&self) -> PathBuf {
        match &self.docker_root {
            Some(root) => crate::docker_root::binary(root, "docker"),
            None => tool_path("docker").unwrap_or_else(|| "docker".into()),
        }
    }
}

/// A running (or stopped, after [`Daemon::kill`]) private `dockerd` with its own folders.
pub struct Daemon {
    opts: DaemonOptions,
    dir: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
    containerd_pid: Option<i32>,
    last_start: Duration,
    scratch_counter: std::sync::atomic::AtomicU64,
    _permit: Option<Permit>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("label", &self.opts.label)
            .field("dir", &self.dir)
            .field("pid", &self.pid())
            .finish()
    }
}

impl Daemon {
    /// Starts a daemon with default options and the given label.
    pub fn start(label: &str) -> Result<Daemon> {
        Daemon::start_with(DaemonOptions::labelled(label))
    }

    /// Starts a daemon; waits (bounded) until it answers. Takes one slot of the process-wide limit.
    pub fn start_with(opts: DaemonOptions) -> Result<Daemon> {
        let permit = Permit::acquire(1);
        Daemon::start_with_permit(opts, Some(permit))
    }

    pub(crate) fn start_with_permit(opts: DaemonOptions, permit: Option<Permit>) -> Result<Daemon> {
        preflight()?;
        let label = if opts.label.is_empty() {
            "d".to_string()
        } else {
            opts.label.clone()
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("partial-dockerd-{label}-"))
            .tempdir()
            .context("creating the daemon's temp dir")?
            .keep();
        let mut d = Daemon {
            opts,
            dir,
            child: None,
            watchdog: None,
            containerd_pid: None,
            last_start: Duration::ZERO,
            scratch_counter: Default::default(),
            _permit: permit,
        };
        // On failure `d` is dropped here, which stops whatever started and removes the folder.
        d.spawn()?;
        Ok(d)
    }

    /// The temp dir holding everything of this daemon.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The label given at start.
    pub fn label(&self) -> &str {
        &self.opts.label
    }

    /// Path of the API socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// `unix:///…/docker.sock`, for `docker -H` or `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// The daemon's log file (stdout and stderr of every start, appended).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }

    /// The daemon's log so far (the last 8 KiB), for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// How long the last start took until `/_ping` answered.
    pub fn start_time(&self) -> Duration {
        self.last_start
    }

    /// The dockerd pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The pid of the containerd this daemon started, if known and still there.
    pub fn containerd_pid(&self) -> Option<i32> {
        read_pid(&self.containerd_pidfile()).or(self.containerd_pid)
    }

    /// A fresh path inside this daemon's scratch folder (removed with the daemon).
    pub fn scratch_path(&self, name: &str) -> PathBuf {
        let n = self
            .scratch_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.dir.join("scratch");
        let _ = fs::create_dir_all(&dir);
        dir.join(format!("{n}-{name}"))
    }

    /// A `docker` CLI command aimed at this daemon (its own `DOCKER_CONFIG`, no hints).
    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new(self.opts.docker_cli());
        c.arg("-H")
            .arg(self.host())
            .env("DOCKER_CONFIG", self.dir.join("cli-config"))
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    /// Runs `docker -H … ARGS`; returns stdout, or an error with the command, stderr and stdout.
    pub fn docker(&self, args: &[&str]) -> Result<String> {
        let out = self
            .docker_cmd()
            .args(args)
            .output()
            .context("running the docker CLI")?;
        check_output(&format!("docker {}", args.join(" ")), out)
    }

    /// A command for a workspace binary (`partial-save`, `partial-load`; located or built by
    /// [`crate::bin`]) aimed at this daemon through `DOCKER_HOST`, with no stdin.
    pub fn tool_cmd(&self, name: &str) -> Command {
        let mut c = Command::new(crate::bins::bin(name));
        c.env("DOCKER_HOST", self.host()).stdin(Stdio::null());
        c
    }

    /// `GET /_ping` on the socket; true when the daemon answered `OK`.
    pub fn ping(&self) -> bool {
        ping(&self.socket())
    }

    fn containerd_pidfile(&self) -> PathBuf {
        self.dir.join("exec/containerd/containerd.pid")
    }

    fn spawn(&mut self) -> Result<()> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("opening the daemon log")?;
        self.remove_stale_pidfiles();
        let mut cmd = Command::new(self.opts.dockerd());
        cmd.arg("--data-root")
            .arg(self.dir.join("root"))
            .arg("--exec-root")
            .arg(self.dir.join("exec"))
            .arg("--pidfile")
            .arg(self.dir.join("pid"))
            .arg("-H")
            .arg(self.host())
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--log-level=info",
            ]);
        let driver = self
            .opts
            .storage_driver
            .clone()
            .or_else(|| std::env::var("PARTIAL_STORAGE_DRIVER").ok())
            .filter(|s| !s.is_empty());
        if let Some(driver) = driver.filter(|_| !self.opts.containerd_snapshotter) {
            cmd.arg(format!("--storage-driver={driver}"));
        }
        self.config_file(&mut cmd)?;
        if let Some(root) = &self.opts.docker_root {
            cmd.env("PATH", crate::docker_root::path_with(root));
        }
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C for the test run must not reach the daemon before the
            // watchdog can do an orderly stop.
            .process_group(0);
        let t0 = Instant::now();
        let child = cmd.spawn().context("spawning dockerd")?;
        let pid = child.id();
        self.child = Some(child);
        self.watchdog = spawn_watchdog(pid, &self.dir).ok();

        self.wait_until_up(t0)?;
        self.last_start = t0.elapsed();
        self.containerd_pid = read_pid(&self.containerd_pidfile());
        Ok(())
    }

    /// Pid files left by a killed daemon whose processes are gone only confuse the next start
    /// (and a reused pid would make dockerd refuse to start).
    fn remove_stale_pidfiles(&self) {
        for pidfile in [self.containerd_pidfile(), self.dir.join("pid")] {
            if let Some(pid) = read_pid(&pidfile) {
                if !is_alive(pid) {
                    let _ = fs::remove_file(&pidfile);
                }
            }
        }
    }

    /// Waits, from the spawn at `t0`, until the daemon answers `/_ping`; an error with the log's
    /// tail when it exits or the start timeout passes first.
    fn wait_until_up(&mut self, t0: Instant) -> Result<()> {
        let timeout = self.opts.start_timeout.unwrap_or_else(|| {
            Duration::from_secs(
                std::env::var("PARTIAL_DAEMON_TIMEOUT")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(60),
            )
        });
        loop {
            if ping(&self.socket()) {
                break;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                bail!(
                    "dockerd ({}) exited during start with {status}; log:\n{}",
                    self.opts.label,
                    self.log_tail()
                );
            }
            if t0.elapsed() > timeout {
                bail!(
                    "dockerd ({}) did not answer /_ping within {timeout:?}; log:\n{}",
                    self.opts.label,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(())
    }

    /// `--config-file D/daemon.json`, always (so the host's `/etc/docker/daemon.json` never
    /// counts): `{}`, or the containerd image store's feature flag.
    fn config_file(&self, cmd: &mut Command) -> Result<()> {
        let path = self.dir.join("daemon.json");
        let config = match self.opts.containerd_snapshotter {
            true => serde_json::json!({ "features": { "containerd-snapshotter": true } }),
            false => serde_json::json!({}),
        };
        fs::write(&path, config.to_string()).context("writing the daemon's daemon.json")?;
        cmd.arg("--config-file").arg(path);
        Ok(())
    }

    /// SIGKILLs dockerd and its containerd (a crash, for fault tests) and waits until both are gone.
    /// The folders stay; [`Daemon::restart`] starts a new daemon on them.
    pub fn kill(&mut self) -> Result<()> {
        let cpid = self.containerd_pid();
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
        }
        if let Some(cpid) = cpid.filter(|p| self.owns(*p)) {
            signal(cpid, libc::SIGKILL);
            wait_gone(cpid, Duration::from_secs(30))?;
        }
        self.stop_watchdog();
        Ok(())
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after a grace period) and its containerd, keeping
    /// the folders.
    pub fn stop(&mut self) -> Result<()> {
        let cpid = self.containerd_pid();
        let mut result = Ok(());
        if let Some(mut child) = self.child.take() {
            let pid = child.id() as i32;
            signal(pid, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(25))
                    }
                    _ => {
                        signal(pid, libc::SIGKILL);
                        let _ = child.wait();
                        result = Err(anyhow!(
                            "dockerd ({}) ignored SIGTERM for 20 s and was killed",
                            self.opts.label
                        ));
                        break;
                    }
                }
            }
        }
        if let Some(cpid) = cpid.filter(|p| self.owns(*p)) {
            if is_alive(cpid) {
                signal(cpid, libc::SIGTERM);
                if wait_gone(cpid, Duration::from_secs(10)).is_err() {
                    signal(cpid, libc::SIGKILL);
                }
            }
            wait_gone(cpid, Duration::from_secs(30))?;
        }
        self.stop_watchdog();
        result
    }

    /// Stops (if running) and starts a new daemon on the same folders, with the same options.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// True when `pid` is a process whose command line mentions this daemon's folder (so a reused
    /// pid is never signalled).
    fn owns(&self, pid: i32) -> bool {
        match fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cmdline) => {
                let needle = self.dir.to_string_lossy();
                String::from_utf8_lossy(&cmdline).contains(needle.as_ref())
            }
            Err(_) => false,
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            signal(w.id() as i32, libc::SIGKILL);
            let _ = w.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("warning: stopping dockerd ({}): {e:#}", self.opts.label);
        }
        if std::env::var_os("PARTIAL_KEEP_DAEMON_DIRS").is_some() {
            eprintln!("kept daemon folder {}", self.dir.display());
            return;
        }
        unmount_below(&self.dir);
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!(
                "warning: removing daemon folder {}: {e}",
                self.dir.display()
            );
        }
    }
}

/// The watchdog script: `$1` test pid, `$2` dockerd pid, `$3` daemon folder.
const WATCHDOG: &str = r#"
trap '' INT HUP QUIT
alive() { s=$(cat /proc/$1/stat 2>/dev/null) || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
while alive "$1" && alive "$2"; do sleep 0.5; done
alive "$1" && exit 0
cp=$(cat "$3/exec/containerd/containerd.pid" 2>/dev/null || true)
kill -TERM "$2" 2>/dev/null
i=0; while alive "$2" && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done
kill -KILL "$2" 2>/dev/null
if [ -n "$cp" ] && grep -q "$3" "/proc/$cp/cmdline" 2>/dev/null; then
  kill -TERM "$cp" 2>/dev/null; sleep 1; kill -KILL "$cp" 2>/dev/null
  i=0; while alive "$cp" && [ $i -lt 40 ]; do sleep 0.5; i=$((i+1)); done
fi
grep " $3/" /proc/mounts | cut -d' ' -f2 | sort -r | while read -r m; do umount -l "$m"; done
rm -rf --one-file-system "$3"
"#;

pub(crate) fn spawn_watchdog(dockerd_pid: u32, dir: &Path) -> Result<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("partial-dockerd-watchdog")
        .arg(std::process::id().to_string())
        .arg(dockerd_pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("spawning the daemon watchdog")
}

/// `name` on PATH, or in `/usr/sbin` / `/usr/bin` (a non-login root shell may lack sbin in PATH).
pub fn tool_path(name: &str) -> Option<PathBuf> {
    crate::bins::which(name).or_else(|| {
        ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// Checks once per process what does not change: `dockerd` and `docker` on PATH, running as root.
pub fn preflight() -> Result<()> {
    static CHECK: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    CHECK
        .get_or_init(|| {
            for tool in ["dockerd", "docker"] {
                if tool_path(tool).is_none() {
                    return Err(format!(
                        "`{tool}` is not on PATH (Debian: apt-get install docker.io)"
                    ));
                }
            }
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Err("not running as root (dockerd needs root)".to_string());
            }
            Ok(())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn check_output(what: &str, out: Output) -> Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        bail!(
            "`{what}` failed with {}:\nstderr: {}\nstdout: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )
    }
}

pub(crate) fn run_checked(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{what}`"))?;
    check_output(what, out)
}

pub(crate) fn ping(sock: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.take(4096).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.starts_with("HTTP/1.") && text.contains(" 200 ") && text.ends_with("OK")
}

pub(crate) fn log_tail(path: &Path) -> String {
    let data = fs::read(path).unwrap_or_default();
    let start = data.len().saturating_sub(8192);
    String::from_utf8_lossy(&data[start..]).into_owned()
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(crate) fn signal(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: plain kill(2) on one positive pid that this rig started.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Waits until `child` (a private containerd or podman service) exits (reaping it), at most `timeout`.
pub(crate) fn wait_child(child: &mut Child, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Ok(()),
            Ok(None) if t0.elapsed() < timeout => std::thread::sleep(Duration::from_millis(25)),
            Ok(None) => bail!("still running after {timeout:?}"),
            Err(e) => return Err(e.into()),
        }
    }
}

/// True while `pid` exists and is not a zombie (a zombie has exited; its parent may never reap it).
pub fn is_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match stat.rfind(") ") {
            Some(i) => !stat[i + 2..].starts_with('Z'),
            None => true,
        },
        Err(_) => false,
    }
}

pub(crate) fn wait_gone(pid: i32, timeout: Duration) -> Result<()> {
    let t0 = Instant::now();
    while is_alive(pid) {
        if t0.elapsed() > timeout {
            bail!("process {pid} still there after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}

/// Lazily detaches any mount below `dir` (deepest first), so removing it never crosses into one.
pub(crate) fn unmount_below(dir: &Path) {
    let Ok(mounts) = fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in points {
        if let Ok(c) = std::ffi::CString::new(m) {
            // SAFETY: umount2 on a NUL-terminated path below our own folder.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}

/// Process-wide limit on running daemons (a counting semaphore taken `n` slots at a time, all at
/// once, so two tests each holding half a pair can never deadlock).
pub(crate) struct Permit(usize);

static SLOTS: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// How many daemons may run at once in this process (`PARTIAL_MAX_DAEMONS`, default 4).
pub fn max_daemons() -> usize {
    std::env::var("PARTIAL_MAX_DAEMONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n: &usize| *n >= 2)
        .unwrap_or(4)
}

impl Permit {
    pub(crate) fn acquire(n: usize) -> Permit {
        let max = max_daemons();
        let n = n.min(max);
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *used + n > max {
            used = FREED.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += n;
        Permit(n)
    }

    /// Splits off one slot (used by a pair to hand one slot to each daemon).
    pub(crate) fn split_one(&mut self) -> Permit {
        assert!(self.0 >= 1);
        self.0 -= 1;
        Permit(1)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.0;
        FREED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Pairs taken from many threads never exceed the limit, and never deadlock.
    #[test]
    fn slot_limit_holds_across_threads() {
        let max = max_daemons();
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (live, peak) = (live.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        let n = if i % 2 == 0 { 2 } else { 1 };
                        let mut p = Permit::acquire(n);
                        let _one = if n == 2 { Some(p.split_one()) } else { None };
                        let now = live.fetch_add(n, Ordering::SeqCst) + n;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(2));
                        live.fetch_sub(n, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= max);
        assert_eq!(*SLOTS.lock().unwrap(), 0);
    }
}
