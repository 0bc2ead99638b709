//! Locating the workspace's binaries (`partial-save`, `partial-load`) from a test.
//!
//! A test executable lives in `target/<profile>/deps/`; the binaries are in `target/<profile>/`.
//! When one is missing, [`bin`] builds both once per process with
//! `cargo build -p partial-save -p partial-load` in the same profile and target dir.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root (the parent of this package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/<profile>` (or `target/<triple>/<profile>`) of the running test executable.
pub fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("current_exe")?;
    let mut dir = exe
        .parent()
        .context("test exe has no folder")?
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Path of a workspace binary, brought up to date by one `cargo build` per test process (same
/// profile; a no-op when nothing changed), so a test never runs a stale binary. Panics with the
/// cargo output when that build fails, as no test can go on without it.
pub fn bin(name: &str) -> PathBuf {
    try_bin(name).unwrap_or_else(|e| panic!("locating binary {name}: {e:#}"))
}

/// [`bin`] returning an error instead of panicking.
pub fn try_bin(name: &str) -> Result<PathBuf> {
    static BUILD: Mutex<bool> = Mutex::new(false);
    let dir = profile_dir()?;
    let path = dir.join(name);
    let mut built = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        build_binaries(&dir)?;
        *built = true;
    }
    if path.is_file() {
        Ok(path)
    } else {
        bail!("{} is not there even after cargo build", path.display())
    }
}

fn build_binaries(profile_dir: &Path) -> Result<()> {
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("profile folder name")?
        .to_string();
    let parent = profile_dir.parent().context("no target dir")?;
    // target/<profile> or target/<triple>/<profile>: the target dir holds CACHEDIR.TAG.
    let (target_dir, triple) = if parent.join("CACHEDIR.TAG").exists() {
        (parent.to_path_buf(), None)
    } else {
        let t = parent.parent().context("no target dir")?.to_path_buf();
        let triple = parent.file_name().map(|s| s.to_string_lossy().into_owned());
        (t, triple)
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "partial-save", "-p", "partial-load"])
        .arg("--target-dir")
        .arg(&target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(t) = triple {
        cmd.args(["--target", &t]);
    }
    eprintln!("building the workspace binaries: {cmd:?}");
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of partial-save/partial-load failed with {status}");
    }
    Ok(())
}

/// The first `name` on PATH, if any.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
