//! Running the project's binaries in tests: a captured run with its exit code, stdout and stderr,
//! and assertions that print everything when they fail.

use std::path::Path;
use std::process::{Command, Output};

/// The outcome of one run of a tool.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics (showing the whole run) unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the run succeeded.
    #[track_caller]
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }

    /// Panics unless stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `cmd` to its end, capturing everything.
pub fn run_cmd(mut cmd: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `partial-save` with `args` (no DOCKER_HOST from the environment leaks in).
pub fn save<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let mut cmd = Command::new(crate::bin("partial-save"));
    cmd.args(args).env_remove("DOCKER_HOST");
    run_cmd(cmd)
}

/// Runs `partial-load` with `args`.
pub fn load<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let mut cmd = Command::new(crate::bin("partial-load"));
    cmd.args(args).env_remove("DOCKER_HOST");
    run_cmd(cmd)
}

/// Names of the files in `dir`, sorted (to check that nothing was left behind).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Writes a fresh unprotected key pair `dir/NAME.key`, `dir/NAME.pub`.
pub fn keygen(dir: &Path, name: &str) {
    save(&[
        "keygen".as_ref(),
        "-o".as_ref(),
        dir.join(name).as_os_str(),
        "--no-password".as_ref(),
    ])
    .ok();
}

/// One `partial-save` export as the end-to-end tests make it, the one place their export
/// arguments are written: `-H HOST -i IMAGE… BASE… -o DIR/NAME --sign-key DIR/team.key EXTRA…`.
/// Defaults: `-i app:2 -e base:1`; the key pair `DIR/team.*` is made on first use.
pub struct Export {
    host: String,
    dir: std::path::PathBuf,
    out: std::path::PathBuf,
    key: std::path::PathBuf,
    images: Vec<String>,
    base: Vec<String>,
    extra: Vec<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Export {
    /// `app:2` against `base:1` from the daemon at `host`, written to `dir/name`.
    pub fn new(host: impl Into<String>, dir: &Path, name: &str) -> Export {
        Export {
            host: host.into(),
            dir: dir.to_path_buf(),
            out: dir.join(name),
            key: dir.join("team.key"),
            images: strings(&["app:2"]),
            base: strings(&["-e", "base:1"]),
            extra: Vec::new(),
        }
    }

    /// The images to export (`-i` each).
    pub fn images(mut self, images: &[&str]) -> Export {
        self.images = strings(images);
        self
    }

    /// The flags naming what the destination has (`-e base:1` by default; `&[]` for none).
    pub fn base(mut self, flags: &[&str]) -> Export {
        self.base = strings(flags);
        self
    }

    /// Flags appended last.
    pub fn args(mut self, extra: &[&str]) -> Export {
        self.extra.extend(strings(extra));
        self
    }

    /// Another secret key than `dir/team.key` (not made here).
    pub fn key(mut self, key: &Path) -> Export {
        self.key = key.to_path_buf();
        self
    }

    /// Runs it, whatever the exit code.
    pub fn run(self) -> Run {
        if self.key == self.dir.join("team.key") && !self.key.exists() {
            keygen(&self.dir, "team");
        }
        let mut args: Vec<String> = vec!["-H".into(), self.host];
        for i in self.images {
            args.extend(["-i".to_string(), i]);
        }
        args.extend(self.base);
        args.extend([
            "-o".into(),
            self.out.to_string_lossy().into_owned(),
            "--sign-key".into(),
            self.key.to_string_lossy().into_owned(),
        ]);
        args.extend(self.extra);
        save(&args)
    }

    /// Runs it, which must succeed; returns the bundle's path.
    #[track_caller]
    pub fn bundle(self) -> std::path::PathBuf {
        let out = self.out.clone();
        self.run().ok();
        out
    }
}

/// `partial-save -H host -i image BASE_FLAGS… -o dir/NAME --sign-key dir/team.key`, which must
/// succeed; returns the bundle's path.
pub fn export_signed(
    host: &str,
    dir: &Path,
    name: &str,
    image: &str,
    base_flags: &[&str],
) -> std::path::PathBuf {
    Export::new(host, dir, name)
        .images(&[image])
        .base(base_flags)
        .bundle()
}

/// The arguments of `partial-load push BUNDLE --key dir/team.pub --to TO --state dir/STATE
/// EXTRA…` (each push test keeps its own state file).
pub fn push_args(bundle: &Path, dir: &Path, to: &str, state: &str, extra: &[&str]) -> Vec<String> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut args = vec![
        "push".to_string(),
        s(bundle),
        "--key".into(),
        s(&dir.join("team.pub")),
        "--to".into(),
        to.into(),
        "--state".into(),
        s(&dir.join(state)),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}
