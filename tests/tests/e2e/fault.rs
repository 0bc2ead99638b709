//! Fault injection, end to end on private daemons: the source daemon killed mid-export,
//! Ctrl-C mid-export, a full output filesystem, the destination daemon killed mid-load, and a hung
//! (SIGSTOPped) daemon: before any request (ping bound), mid-export (`--idle-timeout`) and
//! mid-load (`--timeout`).
//!
//! Every test runs the tool as a child process with a bound on its run time, checks the exit
//! code, the message, and that nothing (no bundle, no `.NAME.partial-XXXXXX` temporary file) is
//! left in the output folder; the load test also checks that the image is absent after a restart.
//! Each prints what it measured (`--nocapture` shows it).

use partial_tests::cli::files_in;
use partial_tests::{bin, rootfs_tar, Content, Daemon, DaemonOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Size of each file of the big image, and how many: 256 MiB of random bytes, so that gzip cannot
/// shrink it and an export or a load is still under way when the fault strikes.
const BIG_FILE: usize = 32 << 20;
const BIG_FILES: usize = 8;

/// The temporary output file must have grown past this before a fault is injected (so the export
/// is really streaming), and far below the whole export (about 256 MiB).
const MID_STREAM: u64 = 16 << 20;

/// How long a tool may take to give up after a fault that it must notice at once.
const PROMPT: Duration = Duration::from_secs(30);

/// Slack on top of a configured bound (process start, connecting, draining buffered data).
const MARGIN: Duration = Duration::from_secs(10);

/// The big image's root filesystem tar, built once per test process and shared.
fn big_rootfs() -> &'static [u8] {
    static TAR: OnceLock<Vec<u8>> = OnceLock::new();
    TAR.get_or_init(|| rootfs_tar(606, &[BIG_FILE; BIG_FILES], Content::Random))
}

/// Imports the big image as `tag` on `d`.
fn import_big(d: &Daemon, tag: &str) {
    let t0 = Instant::now();
    d.import_tar(big_rootfs(), tag)
        .expect("import the big image");
    eprintln!(
        "[{}] imported {tag} ({} MiB) in {:.1?}",
        d.label(),
        big_rootfs().len() >> 20,
        t0.elapsed()
    );
}

/// A tool running as a child process, its stdout and stderr drained by threads.
struct Spawned {
    child: Child,
    started: Instant,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

/// How a bounded run ended.
#[derive(Debug)]
struct Ended {
    code: Option<i32>,
    /// From the start of the process.
    elapsed: Duration,
    stdout: String,
    stderr: String,
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> Option<JoinHandle<String>> {
    r.map(|mut r| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        })
    })
}

impl Spawned {
    fn start(mut cmd: Command) -> Spawned {
        cmd.env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Spawned {
            child,
            started,
            stdout,
            stderr,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// True while the process has not exited.
    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits until the process exits; after `bound` it is killed and the test fails.
    fn wait_within(mut self, bound: Duration, what: &str) -> Ended {
        let t0 = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if t0.elapsed() > bound {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.stderr.take().map(|h| h.join().unwrap_or_default());
                panic!(
                    "{what}: still running {bound:?} after the fault; killed it. stderr:\n{}",
                    err.unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ended {
            code: status.code(),
            elapsed: self.started.elapsed(),
            stdout: self
                .stdout
                .take()
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default(),
            stderr: self
                .stderr
                .take()
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default(),
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A panicking test must not leave the tool running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `partial-save` with `args`, as a child process.
fn save_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin("partial-save"));
    c.args(args);
    c
}

/// `partial-load` with `args`, as a child process.
fn load_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin("partial-load"));
    c.args(args);
    c
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The size of the largest `.NAME.partial-*` temporary file of `out` (0 when there is none).
fn temp_size(out: &Path) -> u64 {
    let name = out.file_name().unwrap().to_string_lossy();
    let prefix = format!(".{name}.partial-");
    std::fs::read_dir(out.parent().unwrap())
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Polls until `out`'s temporary file holds more than `min` bytes, i.e. the export is streaming.
/// Fails the test if the tool exits first or nothing happens in time. Returns the size seen.
fn wait_mid_stream(p: &mut Spawned, out: &Path, min: u64) -> u64 {
    let t0 = Instant::now();
    loop {
        let n = temp_size(out);
        if n > min {
            return n;
        }
        assert!(
            p.running(),
            "the tool ended before the export reached {min} bytes (temp file: {n} bytes); \
             the fault would not be mid-stream"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the export did not reach {min} bytes in 180 s (temp file: {n} bytes)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bytes the process has read so far (`rchar` of /proc/PID/io).
fn bytes_read(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("rchar: ").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

/// Asserts that `dir` is empty (no output, no temporary file).
#[track_caller]
fn assert_nothing_left(dir: &Path, e: &Ended) {
    let left = files_in(dir);
    assert!(
        left.is_empty(),
        "left behind in {}: {left:?}\nstderr:\n{}",
        dir.display(),
        e.stderr
    );
}

#[track_caller]
fn assert_failed(e: &Ended) {
    assert!(
        matches!(e.code, Some(c) if c != 0),
        "expected a non-zero exit (not a signal), got {:?}\nstdout:\n{}\nstderr:\n{}",
        e.code,
        e.stdout,
        e.stderr
    );
}

/// SIGSTOPs a process; SIGCONT on drop (declare it after the daemon so it drops first).
struct Stopped(i32);

impl Stopped {
    fn new(pid: u32) -> Stopped {
        let pid = pid as i32;
        // SAFETY: kill(2) on the pid of a daemon this test started.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGSTOP) },
            0,
            "SIGSTOP {pid}"
        );
        Stopped(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::kill(self.0, libc::SIGCONT);
        }
    }
}

/// A small tmpfs mounted on a fresh folder; unmounted (lazily) and removed on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::Builder::new()
            .prefix("partial-fault-tmpfs-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(Tmpfs { dir }),
            Ok(o) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!(
                    "mount -t tmpfs failed: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(format!("cannot run mount: {e}"))
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Ok(c) = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()) {
            // SAFETY: umount2 on the NUL-terminated path of the tmpfs this guard mounted.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fault 1: the source daemon (dockerd and its containerd) SIGKILLed while it streams an export.
#[test]
fn source_daemon_killed_mid_export_fails_promptly_and_leaves_nothing() {
    let mut pair = partial_tests::require_daemons!();
    import_big(&pair.source, "big:1");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.tgz");
    let host = pair.source.host();
    let mut p = Spawned::start(save_cmd(&["-H", &host, "-i", "big:1", "-o", &s(&out)]));
    let seen = wait_mid_stream(&mut p, &out, MID_STREAM);
    let t0 = Instant::now();
    pair.source.kill().expect("kill the source daemon");
    let killed_in = t0.elapsed();
    let e = p.wait_within(PROMPT, "partial-save after the source daemon was killed");
    let after_kill = t0.elapsed();
    eprintln!(
        "measured: killed at {seen} bytes written (kill took {killed_in:.1?}); partial-save exited \
         {:?} {after_kill:.1?} after the kill; stderr:\n{}",
        e.code, e.stderr
    );
    assert_failed(&e);
    assert_eq!(e.code, Some(5), "a daemon failure is exit 5:\n{}", e.stderr);
    assert!(e.stderr.contains("big:1"), "{}", e.stderr);
    assert_nothing_left(dir.path(), &e);
}

/// Fault 2: SIGINT (Ctrl-C) to partial-save mid-export: exit 130, the temporary file removed.
#[test]
fn sigint_mid_export_exits_130_and_leaves_nothing() {
    let pair = partial_tests::require_daemons!();
    import_big(&pair.source, "big:1");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.tgz");
    let host = pair.source.host();
    let mut p = Spawned::start(save_cmd(&["-H", &host, "-i", "big:1", "-o", &s(&out)]));
    let seen = wait_mid_stream(&mut p, &out, MID_STREAM);
    let t0 = Instant::now();
    // SAFETY: kill(2) on our own child's pid, which has not been reaped (it is running).
    assert_eq!(unsafe { libc::kill(p.pid(), libc::SIGINT) }, 0);
    let e = p.wait_within(PROMPT, "partial-save after SIGINT");
    eprintln!(
        "measured: SIGINT at {seen} bytes written; exited {:?} {:.1?} later; stderr:\n{}",
        e.code,
        t0.elapsed(),
        e.stderr
    );
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    assert!(e.stderr.contains("interrupted"), "{}", e.stderr);
    assert_nothing_left(dir.path(), &e);
    // The daemon is unharmed.
    assert!(pair.source.ping());
}

/// Total bytes of the anonymous (deleted) files under `dir` that process `pid` holds open:
/// `rehydrate`'s base layers read from the daemon (0 when there is none).
fn spool_size(pid: i32, dir: &Path) -> u64 {
    let mut total = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if target.starts_with(&*dir.to_string_lossy()) && target.ends_with(" (deleted)") {
            total += std::fs::metadata(fd.path()).map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

/// Fault 2b: SIGINT to `partial-load rehydrate` while it spools the daemon's base
/// layer (into an anonymous file beside the output): exit 130, nothing left in the folder.
#[test]
fn sigint_mid_rehydrate_spool_exits_130_and_leaves_nothing() {
    let pair = partial_tests::require_daemons!();
    import_big(&pair.source, "big:1");
    import_big(&pair.airgap, "big:1");
    let app = partial_tests::layer_files(607, "app", 1, 4096, Content::Random);
    pair.source.build("app:1", "big:1", &[app]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("app.tar");
    let src = pair.source.host();
    let e = Spawned::start(save_cmd(&[
        "-H",
        &src,
        "-i",
        "app:1",
        "-e",
        "big:1",
        "-o",
        &s(&bundle),
        "--compression",
        "none",
    ]))
    .wait_within(Duration::from_secs(180), "the export of the bundle");
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("full.tar");
    let dst = pair.airgap.host();
    let mut p = Spawned::start(load_cmd(&[
        "rehydrate",
        "--allow-unsigned",
        "-H",
        &dst,
        &s(&bundle),
        "-o",
        &s(&out),
    ]));
    let t0 = Instant::now();
    let seen = loop {
        let n = spool_size(p.pid(), out_dir.path());
        if n > MID_STREAM {
            break n;
        }
        assert!(
            p.running(),
            "rehydrate ended before its spool held {MID_STREAM} bytes"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the spool did not grow"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    // SAFETY: kill(2) on our own child's pid, which has not been reaped (it is running).
    assert_eq!(unsafe { libc::kill(p.pid(), libc::SIGINT) }, 0);
    let e = p.wait_within(PROMPT, "partial-load rehydrate after SIGINT");
    eprintln!(
        "measured: SIGINT with {seen} bytes spooled; exited {:?}; stderr:\n{}",
        e.code, e.stderr
    );
    assert_eq!(e.code, Some(130), "{}", e.stderr);
    assert_nothing_left(out_dir.path(), &e);
}

/// Fault 2c: partial-save SIGKILLed mid-export leaves its `.NAME.partial-XXXXXX`
/// (no handler runs); the next export into the same folder removes it once it is stale.
#[test]
fn sigkill_leftover_is_swept_by_the_next_run() {
    let pair = partial_tests::require_daemons!();
    import_big(&pair.source, "big:1");
    pair.source
        .import_rootfs("small:1", 608, &[4096], Content::Random)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.tgz");
    let host = pair.source.host();
    let mut p = Spawned::start(save_cmd(&["-H", &host, "-i", "big:1", "-o", &s(&out)]));
    wait_mid_stream(&mut p, &out, MID_STREAM);
    // SAFETY: kill(2) on our own child's pid, which has not been reaped (it is running).
    assert_eq!(unsafe { libc::kill(p.pid(), libc::SIGKILL) }, 0);
    let e = p.wait_within(PROMPT, "partial-save after SIGKILL");
    assert_eq!(e.code, None, "killed by a signal");
    let left = files_in(dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    let leftover = dir.path().join(&left[0]);
    // Stale once older than the grace period: an hour back.
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let small = dir.path().join("small.tgz");
    let e = Spawned::start(save_cmd(&["-H", &host, "-i", "small:1", "-o", &s(&small)]))
        .wait_within(Duration::from_secs(120), "the next export");
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert!(!leftover.exists(), "not swept; stderr:\n{}", e.stderr);
    assert!(e.stderr.contains("left by an earlier run"), "{}", e.stderr);
    eprintln!("measured: swept {}", leftover.display());
}

/// Fault 3: the output filesystem fills up (a 2 MiB tmpfs, an 8 MiB random image).
#[test]
fn full_output_filesystem_says_disk_full_and_leaves_nothing() {
    let pair = partial_tests::require_daemons!();
    let fs = match Tmpfs::mount("2m") {
        Ok(fs) => fs,
        Err(why) => {
            let what = format!("no tmpfs could be mounted: {why}");
            partial_common::testutil::gate::skip_or_fail("PARTIAL_REQUIRE_DAEMON", &what);
            return;
        }
    };
    pair.source
        .import_rootfs("mid:1", 33, &[4 << 20, 4 << 20], Content::Random)
        .unwrap();
    let out = fs.dir.join("app.tgz");
    let host = pair.source.host();
    let p = Spawned::start(save_cmd(&["-H", &host, "-i", "mid:1", "-o", &s(&out)]));
    let e = p.wait_within(Duration::from_secs(120), "partial-save on a full disk");
    eprintln!(
        "measured: exited {:?} after {:.1?}; stderr:\n{}",
        e.code, e.elapsed, e.stderr
    );
    assert_failed(&e);
    assert!(e.stderr.contains("disk full"), "{}", e.stderr);
    assert!(
        e.stderr.contains(&s(&out)),
        "must name the file:\n{}",
        e.stderr
    );
    assert_nothing_left(&fs.dir, &e);
}

/// Exports the big image from the source daemon as an uncompressed, unsigned bundle in `dir`;
/// returns its path and size.
fn big_bundle(pair: &partial_tests::DaemonPair, dir: &Path) -> (PathBuf, u64) {
    import_big(&pair.source, "big:1");
    let bundle = dir.join("big.tar");
    let src = pair.source.host();
    let t0 = Instant::now();
    let e = Spawned::start(save_cmd(&[
        "-H",
        &src,
        "-i",
        "big:1",
        "-o",
        &s(&bundle),
        "--compression",
        "none",
    ]))
    .wait_within(Duration::from_secs(180), "the export of the bundle");
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    let size = std::fs::metadata(&bundle).unwrap().len();
    eprintln!(
        "bundle of {} MiB written in {:.1?}",
        size >> 20,
        t0.elapsed()
    );
    (bundle, size)
}

/// Starts `partial-load load` of `bundle` into `host` (with extra flags) and returns once it has
/// read a quarter of the bundle, i.e. the upload is well under way (it buffers only a few MiB)
/// and far from its end. Returns the bytes read then.
fn load_until_under_way(bundle: &Path, size: u64, host: &str, extra: &[&str]) -> (Spawned, u64) {
    let mut args = vec!["load", "--allow-unsigned", "-H", host];
    args.extend_from_slice(extra);
    let b = s(bundle);
    args.push(&b);
    let mut p = Spawned::start(load_cmd(&args));
    let t0 = Instant::now();
    while bytes_read(p.pid()) < size / 4 {
        assert!(
            p.running(),
            "partial-load ended before the upload was under way"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the upload did not start"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen = bytes_read(p.pid());
    (p, seen)
}

/// Fault 4: the destination daemon SIGKILLed while `partial-load load` uploads a big bundle:
/// exit 5, and after a restart the image is not there.
#[test]
fn destination_daemon_killed_mid_load_exits_5_and_loads_nothing() {
    let mut pair = partial_tests::require_daemons!();
    let dir = tempfile::tempdir().unwrap();
    let (bundle, size) = big_bundle(&pair, dir.path());
    let dst = pair.airgap.host();
    let (p, seen) = load_until_under_way(&bundle, size, &dst, &[]);
    let t0 = Instant::now();
    pair.airgap.kill().expect("kill the destination daemon");
    let e = p.wait_within(
        PROMPT,
        "partial-load after the destination daemon was killed",
    );
    eprintln!(
        "measured: killed after {} MiB of {} MiB read; partial-load exited {:?} {:.1?} after the \
         kill; stderr:\n{}",
        seen >> 20,
        size >> 20,
        e.code,
        t0.elapsed(),
        e.stderr
    );
    assert_eq!(e.code, Some(5), "a daemon failure is exit 5:\n{}", e.stderr);
    assert!(
        e.stderr.contains(&dst),
        "must name the daemon:\n{}",
        e.stderr
    );
    assert!(
        e.stderr.contains("nothing was loaded") && !e.stderr.contains("reading the bundle"),
        "the bundle is fine; blame the daemon:\n{}",
        e.stderr
    );
    pair.airgap
        .restart()
        .expect("restart the destination daemon");
    assert!(!pair.airgap.has_image("big:1"), "big:1 must not be loaded");
    let ids = pair.airgap.image_ids().unwrap();
    assert!(ids.is_empty(), "nothing may be loaded: {ids:?}");
    // The bundle itself is intact: it loads now.
    let e = Spawned::start(load_cmd(&[
        "load",
        &s(&bundle),
        "--allow-unsigned",
        "-H",
        &dst,
    ]))
    .wait_within(Duration::from_secs(180), "the load after the restart");
    assert_eq!(e.code, Some(0), "{}", e.stderr);
    assert!(pair.airgap.has_image("big:1"));
}

/// Fault 5c: the destination daemon hangs (SIGSTOP) mid-upload. The daemon answers a load only
/// once it has read the whole body, so the bound is `--timeout` (default 6 h; 8 s here); nothing
/// is loaded once the daemon runs again.
#[test]
fn destination_daemon_hung_mid_load_hits_the_request_timeout() {
    let pair = partial_tests::require_daemons!();
    let dir = tempfile::tempdir().unwrap();
    let (bundle, size) = big_bundle(&pair, dir.path());
    let dst = pair.airgap.host();
    // Long enough for the upload to get well under way first (it takes about 1 s here).
    let timeout = Duration::from_secs(8);
    let secs = timeout.as_secs().to_string();
    let (p, seen) = load_until_under_way(&bundle, size, &dst, &["--timeout", &secs]);
    let t0 = Instant::now();
    let stopped = Stopped::new(pair.airgap.pid().expect("dockerd pid"));
    let e = p.wait_within(timeout + MARGIN, "partial-load with a hung daemon");
    eprintln!(
        "measured: dockerd stopped after {} MiB of {} MiB read; partial-load exited {:?} {:.1?} \
         later, {:.1?} after its start (--timeout {timeout:?}); stderr:\n{}",
        seen >> 20,
        size >> 20,
        e.code,
        t0.elapsed(),
        e.elapsed,
        e.stderr
    );
    assert_eq!(e.code, Some(5), "{}", e.stderr);
    assert!(
        e.stderr
            .contains(&format!("did not answer within {secs} s"))
            && e.stderr.contains("--timeout"),
        "must say what timed out:\n{}",
        e.stderr
    );
    assert!(e.elapsed >= timeout, "{e:?}");
    drop(stopped);
    let t1 = Instant::now();
    while !pair.airgap.ping() {
        assert!(
            t1.elapsed() < PROMPT,
            "the daemon did not come back after SIGCONT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!pair.airgap.has_image("big:1"), "big:1 must not be loaded");
    assert!(pair.airgap.image_ids().unwrap().is_empty());
}

/// Fault 5a: a hung daemon (SIGSTOPped dockerd: the socket accepts, nothing answers) before any
/// request: both tools give up after the ping bound (PARTIAL_PING_TIMEOUT, 30 s by default) with
/// exit 5.
#[test]
fn hung_daemon_fails_the_ping_within_its_bound() {
    let Some(d) = partial_tests::require_daemon(DaemonOptions::labelled("hung")) else {
        return;
    };
    d.import_rootfs("small:1", 3, &[4096], Content::Random)
        .unwrap();
    let _stopped = Stopped::new(d.pid().expect("dockerd pid"));
    let bound = Duration::from_secs(3);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small.tgz");
    let host = d.host();
    let runs = [
        (
            "partial-save",
            save_cmd(&["-H", &host, "-i", "small:1", "-o", &s(&out)]),
        ),
        (
            "partial-load inventory",
            load_cmd(&[
                "inventory",
                "-H",
                &host,
                "-o",
                &s(&dir.path().join("inv.json")),
            ]),
        ),
    ];
    // Both at once: the test takes one bound, not two.
    let spawned: Vec<(&str, Spawned)> = runs
        .into_iter()
        .map(|(what, mut cmd)| {
            cmd.env("PARTIAL_PING_TIMEOUT", bound.as_secs().to_string());
            (what, Spawned::start(cmd))
        })
        .collect();
    for (what, p) in spawned {
        let e = p.wait_within(bound + MARGIN, what);
        eprintln!(
            "measured: {what} against a hung daemon exited {:?} after {:.1?}; stderr:\n{}",
            e.code, e.elapsed, e.stderr
        );
        assert_eq!(e.code, Some(5), "{what}: {}", e.stderr);
        assert!(
            e.stderr.contains("did not answer a ping within 3 s"),
            "{what}: {}",
            e.stderr
        );
        assert!(
            e.elapsed >= bound - Duration::from_millis(200),
            "{what}: {e:?}"
        );
        assert!(e.elapsed < bound + MARGIN, "{what}: {e:?}");
        assert_nothing_left(dir.path(), &e);
    }
}

/// Fault 5b: the source daemon hangs (SIGSTOP) in the middle of an export: `--idle-timeout` ends
/// it.
#[test]
fn daemon_hung_mid_export_hits_the_idle_timeout() {
    let pair = partial_tests::require_daemons!();
    import_big(&pair.source, "big:1");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.tgz");
    let host = pair.source.host();
    let idle = Duration::from_secs(3);
    let mut p = Spawned::start(save_cmd(&[
        "-H",
        &host,
        "-i",
        "big:1",
        "-o",
        &s(&out),
        "--idle-timeout",
        &idle.as_secs().to_string(),
    ]));
    let seen = wait_mid_stream(&mut p, &out, MID_STREAM);
    let t0 = Instant::now();
    let _stopped = Stopped::new(pair.source.pid().expect("dockerd pid"));
    let e = p.wait_within(idle + MARGIN, "partial-save with a hung daemon");
    let after = t0.elapsed();
    eprintln!(
        "measured: dockerd stopped at {seen} bytes written; partial-save exited {:?} {after:.1?} \
         later (idle bound {idle:?}); stderr:\n{}",
        e.code, e.stderr
    );
    assert_eq!(
        e.code,
        Some(5),
        "a hung daemon is a daemon failure:\n{}",
        e.stderr
    );
    assert!(
        e.stderr.contains("sent nothing for 3 s"),
        "must say what timed out:\n{}",
        e.stderr
    );
    assert!(after >= idle - Duration::from_millis(200), "{after:?}");
    assert_nothing_left(dir.path(), &e);
}
