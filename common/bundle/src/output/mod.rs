//! Writing the bundle safely: hashing while writing ([`hashing`]), files that appear under their
//! final names only once complete ([`atomic`]), split volumes and reading them back ([`split`]),
//! bundle file names ([`naming`]), and removal of temporary files when the process is interrupted ([`cleanup`])
//! or, after it was killed, by the next run ([`stale`]).

pub mod atomic;
pub mod cleanup;
pub mod hashing;
pub mod naming;
pub mod split;
pub mod stale;

pub use atomic::{AtomicFile, AtomicOutput, CommittedOutput, FinishedOutput};
pub use hashing::{FileDigests, HashingReader, HashingWriter};
pub use naming::{part_path, volume_paths, BundleFiles};
pub use split::{parse_size, MultiFileReader};

use std::io;
use std::path::{Path, PathBuf};

/// Errors of output files, each naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("disk full while writing {}: free some space or write elsewhere", path.display())]
    DiskFull {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot rename {} to {}: {source}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} has no file name", path.display())]
    NoFileName { path: PathBuf },
    #[error("split size must be at least 1 byte (writing {})", path.display())]
    ZeroSplit { path: PathBuf },
    #[error("invalid size {input:?}: {reason} (examples: 4G, 700M, 512K, 1.5G, 1024)")]
    BadSize { input: String, reason: &'static str },
}

impl OutputError {
    /// A write-side I/O error on `path`, recognising a full disk.
    pub fn write(path: &Path, source: io::Error) -> Self {
        if is_disk_full(&source) {
            OutputError::DiskFull {
                path: path.to_path_buf(),
                source,
            }
        } else {
            OutputError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// Converts into an `io::Error` of the same kind whose message names the file, for `Write`
    /// implementations.
    pub fn into_io(self) -> io::Error {
        let kind = match &self {
            OutputError::DiskFull { source, .. }
            | OutputError::Create { source, .. }
            | OutputError::Write { source, .. }
            | OutputError::Rename { source, .. }
            | OutputError::Open { source, .. }
            | OutputError::Read { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, self)
    }
}

/// True for "no space left on device" (and "quota exceeded").
pub fn is_disk_full(e: &io::Error) -> bool {
    // ENOSPC and EDQUOT on Linux (`ErrorKind::StorageFull` is newer than our MSRV).
    matches!(e.raw_os_error(), Some(28) | Some(122))
        || matches!(e.get_ref(), Some(inner) if inner.to_string().contains("No space left"))
}
