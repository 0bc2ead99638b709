//! Removal of temporary files when the process is interrupted: a process-wide registry of
//! temporary paths ([`register`], which returns a [`Guard`] that unregisters on drop; anonymous
//! temporary files need none) and a SIGINT / SIGTERM handler
//! ([`install_handler`]) that removes everything registered and exits with code 130. What a
//! SIGKILL leaves behind is swept by the next run ([`super::stale`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The signal handler could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("cannot install the SIGINT/SIGTERM handler that removes temporary files: {0}")]
    Install(#[from] ctrlc::Error),
}

/// The exit code after an interrupt.
pub const INTERRUPTED_EXIT_CODE: i32 = partial_core::exit::INTERRUPTED as i32;

static REGISTRY: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn registry() -> MutexGuard<'static, BTreeMap<u64, PathBuf>> {
    // A panic while holding the lock leaves the map consistent: ignore poisoning.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// A registered temporary path; dropping it unregisters the path (without removing the file).
#[derive(Debug)]
#[must_use = "dropping the guard unregisters the path at once"]
pub struct Guard {
    id: u64,
}

impl Guard {
    /// The registered path (None once unregistered elsewhere, which does not happen through this
    /// API).
    pub fn path(&self) -> Option<PathBuf> {
        registry().get(&self.id).cloned()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        registry().remove(&self.id);
    }
}

/// Registers `path` to be removed if the process is interrupted while the guard lives.
pub fn register(path: &Path) -> Guard {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    registry().insert(id, path.to_path_buf());
    Guard { id }
}

/// The paths registered now.
pub fn registered() -> Vec<PathBuf> {
    registry().values().cloned().collect()
}

/// Removes every registered file (ignoring those already gone) and empties the registry.
/// Returns the paths that were removed.
pub fn remove_all() -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = std::mem::take(&mut *registry()).into_values().collect();
    paths
        .into_iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .collect()
}

/// Installs a SIGINT/SIGTERM (and SIGHUP) handler that removes every registered temporary file,
/// says so on stderr, and exits with code 130. Calling it again is a no-op.
pub fn install_handler() -> Result<(), CleanupError> {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let result = ctrlc::set_handler(|| {
        let removed = remove_all();
        if removed.is_empty() {
            eprintln!("interrupted");
        } else {
            eprintln!(
                "interrupted: removed {} incomplete file(s) or folder(s): {}",
                removed.len(),
                removed
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        std::process::exit(INTERRUPTED_EXIT_CODE);
    });
    if let Err(e) = result {
        INSTALLED.store(false, Ordering::SeqCst);
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_registers_and_unregisters() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.partial");
        let g = register(&p);
        assert!(registered().contains(&p));
        assert_eq!(g.path().as_deref(), Some(p.as_path()));
        drop(g);
        assert!(!registered().contains(&p));
    }

    /// Runs in a child process (see `signal_removes_registered_files`): registers a file,
    /// installs the handler and sends itself SIGTERM. A no-op in the normal test run.
    #[test]
    fn child_process_interrupted() {
        let Ok(dir) = std::env::var("PARTIAL_CLEANUP_CHILD_DIR") else {
            return;
        };
        let p = Path::new(&dir).join(".out.partial-child");
        std::fs::write(&p, b"incomplete").unwrap();
        let _g = register(&p);
        let second = Path::new(&dir).join(".out2.partial-child");
        std::fs::write(&second, b"incomplete").unwrap();
        let _h = register(&second);
        install_handler().unwrap();
        install_handler().unwrap(); // idempotent
        let pid = std::process::id().to_string();
        // The shell's builtin `kill`, so that no procps is needed.
        std::process::Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(10));
        panic!("still alive after SIGTERM");
    }

    #[test]
    fn signal_removes_registered_files() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "output::cleanup::tests::child_process_interrupted",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PARTIAL_CLEANUP_CHILD_DIR", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(INTERRUPTED_EXIT_CODE), "{stderr}");
        assert!(stderr.contains("removed 2 incomplete file"), "{stderr}");
        assert!(!dir.path().join(".out.partial-child").exists());
        assert!(!dir.path().join(".out2.partial-child").exists());
    }
}
