//! Size caps for the small files both tools read whole before anything in them is trusted (the
//! bundle manifest and its signature, public keys, inventories, the send ledger, the load state),
//! and the one reader that enforces them: [`read_capped`] checks the file's length first, then
//! reads at most one byte more than the cap, so a huge file, a file growing while read or a
//! device such as `/dev/zero` costs no more memory than the cap. A file over its cap is bad
//! input (exit 3), named with its limit.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A bundle manifest (`OUT.manifest.json`). A manifest lists every image with its layers and the
/// base layers the bundle needs, a few hundred bytes per layer: 64 MiB holds some 200,000 layers.
pub const MANIFEST: u64 = 64 * MIB;
/// A minisign signature (`.minisig`): four lines, the trusted comment the longest (it names the
/// bundle, its size, hash and image count); ours are about 350 bytes.
pub const SIGNATURE: u64 = 4 * KIB;
/// A minisign public key file (`NAME.pub`): a comment line and a 56-character key, about 100
/// bytes.
pub const PUBLIC_KEY: u64 = 4 * KIB;
/// An inventory (`partial-load inventory`, read by `partial-save --have`): about 200 bytes per
/// layer of every image of a daemon or registry.
pub const INVENTORY: u64 = 64 * MIB;
/// A send ledger (`--ledger SITE.json`): every image of every bundle sent, with its layers; it
/// grows with every export, so it gets the most room.
pub const LEDGER: u64 = 256 * MIB;
/// The load state (`partial-load --state`): one short entry per signing key and site.
pub const STATE: u64 = 16 * MIB;

/// Reading a capped file failed.
#[derive(Debug, thiserror::Error)]
pub enum CappedError {
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{what} {} is larger than the limit of {} ({}): refusing to read it",
        path.display(),
        human(*limit),
        match size { Some(n) => format!("{n} bytes"), None => "it kept growing".to_string() }
    )]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        limit: u64,
        /// The length the file's metadata states, when that already exceeds the limit.
        size: Option<u64>,
    },
}

impl CappedError {
    /// Whether the file does not exist (a missing ledger or state file is a new one).
    pub fn is_not_found(&self) -> bool {
        matches!(self, CappedError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The exit code: 3 (bad input) for a file over its cap, 1 for one that cannot be read.
    pub fn exit_code(&self) -> u8 {
        match self {
            CappedError::TooLarge { .. } => crate::exit::VERIFY,
            CappedError::Read { .. } => crate::exit::FAILURE,
        }
    }
}

/// "64 MiB", "4 KiB", "100 bytes".
fn human(n: u64) -> String {
    if n >= MIB && n & (MIB - 1) == 0 {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n & (KIB - 1) == 0 {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// Reads the whole file at `path`, refusing one of more than `limit` bytes. `what` names the
/// kind of file in errors ("manifest", "public key", …).
pub fn read_capped(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, CappedError> {
    let read_err = |source| CappedError::Read {
        what,
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| CappedError::TooLarge {
        what,
        path: path.to_path_buf(),
        limit,
        size,
    };
    let file = File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    if len > limit {
        return Err(too_large(Some(len)));
    }
    // The metadata of a pipe or a device says nothing: the read itself stops one byte past.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(None));
    }
    Ok(bytes)
}

/// [`read_capped`] for a text file: the bytes must be UTF-8.
pub fn read_capped_text(
    path: &Path,
    limit: u64,
    what: &'static str,
) -> Result<String, CappedError> {
    let bytes = read_capped(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| CappedError::Read {
        what,
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_a_byte_more_naming_file_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        std::fs::write(&p, vec![b'x'; 4096]).unwrap();
        assert_eq!(read_capped(&p, 4096, "manifest").unwrap().len(), 4096);
        let e = read_capped(&p, 4095, "manifest").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "manifest {} is larger than the limit of 4095 bytes (4096 bytes): refusing to \
                 read it",
                p.display()
            )
        );
        assert_eq!(e.exit_code(), crate::exit::VERIFY);
        assert!(!e.is_not_found());

        // A sparse file far over the limit is refused by its length, without reading it.
        let big = dir.path().join("big.minisig");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(1 << 40)
            .unwrap();
        let e = read_capped(&big, SIGNATURE, "signature").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("big.minisig") && msg.contains("4 KiB"),
            "{msg}"
        );

        let e = read_capped(&dir.path().join("nope"), 10, "ledger").unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.exit_code(), crate::exit::FAILURE);
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn a_device_without_a_length_is_stopped_by_the_read() {
        // /dev/zero states length 0 and never ends: only the bounded read can stop it.
        let e = read_capped(Path::new("/dev/zero"), 16 * KIB, "public key").unwrap_err();
        assert!(matches!(e, CappedError::TooLarge { size: None, .. }), "{e}");
        assert!(e.to_string().contains("16 KiB"), "{e}");
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.pub");
        std::fs::write(&p, b"\xff\xfe").unwrap();
        let e = read_capped_text(&p, PUBLIC_KEY, "public key").unwrap_err();
        assert!(e.to_string().contains("k.pub"), "{e}");
        std::fs::write(&p, "untrusted comment: x\n").unwrap();
        assert_eq!(
            read_capped_text(&p, PUBLIC_KEY, "public key").unwrap(),
            "untrusted comment: x\n"
        );
        assert_eq!(human(MANIFEST), "64 MiB");
    }
}
