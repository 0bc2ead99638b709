//! Temporary files of a run that was killed outright (SIGKILL, OOM killer, power loss), which
//! no interrupt handler could remove: `.NAME.partial-XXXXXX` files of [`super::atomic`] and
//! `.partial-load-spool-XXXXXX` folders that `partial-load rehydrate` made before it kept its
//! layers in anonymous files. The next run that writes into the same folder sweeps them
//! ([`sweep_once`]).
//!
//! Whose is a temporary file? Each live writer holds an exclusive `flock` on its temporary file
//! or folder ([`hold`]) for as long as it exists; the kernel drops the lock when the process
//! ends, however it ends. So a sweeper that can take the lock (without waiting) knows the owner
//! is gone. A PID in the name, checked in `/proc`, was the alternative, and is weaker: a PID is
//! reused, and a writer in another PID namespace (a container writing to a shared folder) looks
//! dead from outside. `flock` is neither fooled by that nor needs `/proc`, and on NFS Linux maps
//! it to the server's locks. Where the file system has no locks at all, nothing is swept: a file
//! that cannot be locked is kept. To be removed a candidate must also be older than
//! [`GRACE`] (the moment between creating a file and locking it), carry exactly the tool's name
//! pattern, and be a plain file or folder (links are never followed).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How old a candidate must be (its modification time) before it is swept.
pub const GRACE: Duration = Duration::from_secs(60);

/// The prefix of `rehydrate`'s spool folders.
pub const SPOOL_PREFIX: &str = ".partial-load-spool-";

/// The random part of a temporary name: `tempfile`'s 6 alphanumeric characters.
const RANDOM_LEN: usize = 6;

/// Takes an exclusive lock on the open file or folder `file` for as long as the returned handle
/// (a duplicate of it) lives: the mark of a live writer. `None` where the file system has no locks
/// (then the temporary file is never swept).
pub fn hold(file: &File) -> Option<File> {
    let dup = file.try_clone().ok()?;
    rustix::fs::flock(&dup, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(dup)
}

/// What kind of temporary the tool names `name` (a file, a folder), if any.
fn tool_temp(name: &str) -> Option<bool> {
    let random = |r: &str| r.len() == RANDOM_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric());
    if let Some(r) = name.strip_prefix(SPOOL_PREFIX) {
        return random(r).then_some(true);
    }
    let (base, r) = name.strip_prefix('.')?.rsplit_once(".partial-")?;
    (!base.is_empty() && random(r)).then_some(false)
}

/// Whether `path` (a file or folder of the tool) is stale: old enough and no live writer holds it.
fn is_stale(path: &Path, meta: &std::fs::Metadata) -> bool {
    let old = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age >= GRACE);
    // A lock taken here is dropped with the handle at once.
    old && File::open(path).ok().and_then(|f| hold(&f)).is_some()
}

/// Removes the stale temporary files and folders of the tool in `dir`; returns those removed.
/// Errors (a folder that cannot be listed, a file that cannot be removed) leave things as they are.
pub fn sweep(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(is_dir) = name.to_str().and_then(tool_temp) else {
            continue;
        };
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let right_kind = if is_dir {
            meta.is_dir()
        } else {
            meta.is_file()
        };
        if !right_kind || !is_stale(&path, &meta) {
            continue;
        }
        let gone = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if gone.is_ok() {
            removed.push(path);
        }
    }
    removed
}

static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// [`sweep`] of `dir`, once per process (a run writes many files into one folder), saying on
/// stderr what it removed.
pub fn sweep_once(dir: &Path) {
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if !SWEPT.lock().unwrap_or_else(|e| e.into_inner()).insert(key) {
        return;
    }
    for p in sweep(dir) {
        eprintln!(
            "removed {}, left by an earlier run that was killed",
            p.display()
        );
    }
}

/// Lets [`sweep_once`] sweep every folder again (for tests).
#[cfg(test)]
pub(crate) fn forget_swept() {
    SWEPT.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_tools_own_names_are_candidates() {
        assert_eq!(tool_temp(".b.tar.gz.partial-AbC123"), Some(false));
        assert_eq!(tool_temp(".x.partial-y.partial-000000"), Some(false));
        assert_eq!(tool_temp(".partial-load-spool-a1B2c3"), Some(true));
        for other in [
            "b.tar.partial-AbC123",
            "..partial-AbC123",
            ".b.partial-AbC12",
            ".b.partial-AbC1234",
            ".b.partial-AbC-12",
            ".partial-load-spool-",
            ".partial-load-spool-abc",
            "state.json.lock",
        ] {
            assert_eq!(tool_temp(other), None, "{other}");
        }
    }

    #[test]
    fn a_held_file_is_kept_and_an_abandoned_one_swept() {
        let dir = tempfile::tempdir().unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        let held = dir.path().join(".a.partial-HELD01");
        let abandoned = dir.path().join(".a.partial-GONE01");
        for p in [&held, &abandoned] {
            File::create(p).unwrap().set_modified(hour_ago).unwrap();
        }
        let lock = hold(&File::open(&held).unwrap()).expect("this file system takes locks");
        assert_eq!(sweep(dir.path()), vec![abandoned.clone()]);
        assert!(held.exists());
        drop(lock);
        assert_eq!(sweep(dir.path()), vec![held]);
        // A held spool folder (of an earlier version's live rehydrate) likewise.
        let spool = dir.path().join(".partial-load-spool-HELD02");
        std::fs::create_dir(&spool).unwrap();
        File::open(&spool).unwrap().set_modified(hour_ago).unwrap();
        let lock = hold(&File::open(&spool).unwrap()).unwrap();
        assert!(sweep(dir.path()).is_empty());
        drop(lock);
        assert_eq!(sweep(dir.path()), vec![spool]);
    }
}
