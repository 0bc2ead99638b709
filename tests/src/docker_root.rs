//! A Docker unpacked into a folder (Docker 26 for the rig, see `docker26`): where its binaries
//! are and the `PATH` its `dockerd` runs with. Apart from `docker26` so that the daemon rig
//! (`daemon`), which `docker26` builds on, can start such a Docker without naming it back.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// `name` in the unpacked root: `usr/sbin`, `usr/bin`, `sbin` or `bin`, in that order (the
/// `usr/sbin` path when none has it, for the error message of whoever runs it).
pub fn binary(root: &Path, name: &str) -> PathBuf {
    ["usr/sbin", "usr/bin", "sbin", "bin"]
        .iter()
        .map(|d| root.join(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| root.join("usr/sbin").join(name))
}

/// `PATH` with the root's bin dirs first, so its `dockerd` finds its own containerd, shim and
/// runc (and `docker-init`) before the system's.
pub fn path_with(root: &Path) -> OsString {
    let mut dirs: Vec<PathBuf> = ["usr/bin", "usr/sbin"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap_or_default()
}
