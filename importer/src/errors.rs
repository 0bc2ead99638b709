//! The two error kinds every command reports with their own exit code: a bundle that does not
//! check out (3) and a daemon that fails or cannot be reached (5).

use partial_common::archive::ArchiveError;
use partial_common::exit::{self, Coded};
use std::io;

/// A verification failure: exit code 3.
pub fn verify_failed(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::VERIFY, msg.into()))
}

/// A usage error: exit code 2.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::USAGE, msg.into()))
}

/// A daemon failure: exit code 5.
pub fn daemon_err(
    e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::DAEMON, e))
}

/// An error of the engine reading a bundle's tar stream. The stream is the verified volumes,
/// decompressed: a hash mismatch, a corrupt compressed stream or a malformed archive is the
/// bundle's fault (exit 3); a file that vanished or cannot be opened is not (exit 1).
pub fn bad_bundle(label: &str, e: ArchiveError) -> anyhow::Error {
    let kind = match &e {
        ArchiveError::Io(source) | ArchiveError::Read { source, .. } => Some(source.kind()),
        _ => None,
    };
    match kind {
        Some(io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) => {
            anyhow::Error::new(e).context(format!("reading the bundle {label}"))
        }
        _ => verify_failed(format!("bundle {label}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_errors_are_the_bundles_fault_unless_a_file_is_gone() {
        let code = |e: anyhow::Error| exit::code_of(e.chain());
        let read = |kind| ArchiveError::Read {
            after: "entry x".into(),
            source: io::Error::new(kind, "boom"),
        };
        assert_eq!(
            code(bad_bundle("b", read(io::ErrorKind::InvalidData))),
            exit::VERIFY
        );
        assert_eq!(
            code(bad_bundle("b", read(io::ErrorKind::InvalidInput))),
            exit::VERIFY
        );
        assert_eq!(
            code(bad_bundle("b", ArchiveError::Truncated("t".into()))),
            exit::VERIFY
        );
        let gone = bad_bundle("b", read(io::ErrorKind::NotFound));
        assert!(
            format!("{gone:#}").contains("reading the bundle b"),
            "{gone:#}"
        );
        assert_eq!(code(gone), exit::FAILURE);
    }
}
