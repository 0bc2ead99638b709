//! Locating the tools under test (`partial-save`, `partial-load`) from a test.
//!
//! A test executable lives in `target/<profile>/deps/`; the binaries are in `target/<profile>/`.
//! The tools are this package's own binaries `e2e-partial-save` and `e2e-partial-load`: each is
//! the shipped tool's library with a one-line `main`, so Cargo builds them, up to date, before it
//! runs the end-to-end tests (it gives an integration test only its own package's binaries, and
//! artifact dependencies are not stable Cargo). No test starts a nested `cargo build`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// Path of the tool `name` (`partial-save` or `partial-load`) under test. Panics when it is not
/// there, as no test can go on without it.
pub fn bin(name: &str) -> PathBuf {
    try_bin(name).unwrap_or_else(|e| panic!("locating binary {name}: {e:#}"))
}

/// [`bin`] returning an error instead of panicking.
pub fn try_bin(name: &str) -> Result<PathBuf> {
    let path = profile_dir()?.join(format!("e2e-{name}"));
    if path.is_file() {
        Ok(path)
    } else {
        bail!(
            "{} is not there: run the tests with `cargo test -p partial-tests`, which builds it",
            path.display()
        )
    }
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
