//! Opening a bundle: finding its manifest and signature, checking the signature against the
//! trusted keys, parsing the manifest, and reading the volumes back as one stream whose every
//! volume, and the whole, must match the sizes and hashes the signed manifest states.

use crate::cli::BundleArgs;
use anyhow::{anyhow, Context, Result};
use partial_common::exit::{self, Coded};
use partial_common::manifest::BundleManifest;
use partial_common::manifest::FileEntry;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// A verification failure: exit code 3.
pub fn verify_failed(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::VERIFY, msg.into()))
}

/// A bundle whose manifest has been read and (unless allowed otherwise) signature-checked.
pub struct Bundle {
    pub manifest: BundleManifest,
    pub manifest_path: PathBuf,
    /// The sha256 of the manifest's exact bytes (what the next bundle of a series names as
    /// `previous`).
    pub manifest_sha256: partial_common::Digest,
    /// The folder holding the volumes.
    pub dir: PathBuf,
    /// Who signed it, when signed.
    pub signature: Option<Signed>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Signed {
    pub key_id: String,
    pub trusted_comment: String,
}

/// `app.tgz.001` → `app.tgz`; anything else unchanged.
fn bundle_base(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    if let Some(base) = s.strip_suffix(".001") {
        return PathBuf::from(base);
    }
    p.to_path_buf()
}

/// Opens the bundle: reads the manifest, checks the signature, checks the volumes exist with
/// the stated sizes. Content hashes are checked while streaming (see [`VolumeReader`]).
pub fn open(args: &BundleArgs) -> Result<Bundle> {
    let base = bundle_base(&args.bundle);
    let manifest_path = args.manifest.clone().unwrap_or_else(|| {
        let mut s = base.as_os_str().to_owned();
        s.push(".manifest.json");
        PathBuf::from(s)
    });
    let mlabel = manifest_path.display().to_string();
    let bytes = std::fs::read(&manifest_path)
        .map_err(|e| verify_failed(format!("cannot read manifest {mlabel}: {e}")))?;
    let mut sig_path = manifest_path.as_os_str().to_owned();
    sig_path.push(".minisig");
    let sig_path = PathBuf::from(sig_path);
    let signature = check_signature(args, &bytes, &sig_path)?;
    let manifest =
        BundleManifest::parse(&bytes, &mlabel).map_err(|e| verify_failed(e.to_string()))?;
    if let Some(s) = &signature {
        let expected = manifest.trusted_comment();
        if s.trusted_comment != expected {
            return Err(verify_failed(format!(
                "{}: the signature's trusted comment ({:?}) does not match the manifest ({expected:?})",
                sig_path.display(),
                s.trusted_comment
            )));
        }
    }
    // An empty folder (the manifest is in the current one) keeps file names short in messages.
    let dir = manifest_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for v in &manifest.bundle.volumes {
        let path = dir.join(&v.name);
        let meta = std::fs::metadata(&path).map_err(|e| {
            verify_failed(format!(
                "bundle file {} (listed in {mlabel}) cannot be read: {e}",
                path.display()
            ))
        })?;
        if meta.len() != v.size {
            return Err(verify_failed(format!(
                "bundle file {} is {} bytes, the manifest says {}{}",
                path.display(),
                meta.len(),
                v.size,
                if meta.len() < v.size {
                    " (truncated)"
                } else {
                    ""
                }
            )));
        }
    }
    Ok(Bundle {
        manifest,
        manifest_path,
        manifest_sha256: partial_common::Digest::of_bytes(&bytes),
        dir,
        signature,
    })
}

fn check_signature(args: &BundleArgs, manifest: &[u8], sig_path: &Path) -> Result<Option<Signed>> {
    let sig_text = match std::fs::read_to_string(sig_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(verify_failed(format!(
                "cannot read signature {}: {e}",
                sig_path.display()
            )))
        }
    };
    let mut keys = Vec::new();
    for k in &args.keys {
        keys.push(
            partial_common::sign::load_public_key(k)
                .map_err(|e| verify_failed(format!("public key {}: {e}", k.display())))?,
        );
    }
    match (sig_text, keys.is_empty()) {
        (None, _) if args.allow_unsigned => {
            eprintln!(
                "warning: {} is missing; loading an UNSIGNED bundle (--allow-unsigned), hashes \
                 are still checked",
                sig_path.display()
            );
            Ok(None)
        }
        (None, _) => Err(verify_failed(format!(
            "the manifest is not signed: {} is missing (refusing; --allow-unsigned accepts \
             unsigned bundles)",
            sig_path.display()
        ))),
        (Some(_), true) if args.allow_unsigned => {
            eprintln!(
                "warning: no --key given; the signature {} is NOT checked (--allow-unsigned)",
                sig_path.display()
            );
            Ok(None)
        }
        (Some(_), true) => Err(verify_failed(
            "no --key given: name the public key(s) the manifest must be signed with".to_string(),
        )),
        (Some(text), false) => {
            let v = partial_common::sign::verify(manifest, &text, &keys).map_err(|e| {
                verify_failed(format!(
                    "signature {} does not verify with {}: {e}",
                    sig_path.display(),
                    args.keys
                        .iter()
                        .map(|k| k.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            Ok(Some(Signed {
                key_id: v.key_id,
                trusted_comment: v.trusted_comment,
            }))
        }
    }
}

impl Bundle {
    /// A reader over every volume in order, checking each volume's size, sha256 and BLAKE3 and
    /// the whole stream's, failing (instead of ending) on any mismatch.
    pub fn reader(&self) -> VolumeReader {
        VolumeReader {
            dir: self.dir.clone(),
            volumes: self.manifest.bundle.volumes.clone(),
            whole: self.manifest.bundle.clone(),
            next: 0,
            current: None,
            whole_sha: Sha256::new(),
            whole_blake: blake3::Hasher::new(),
            whole_count: 0,
        }
    }
}

struct Current {
    file: File,
    path: PathBuf,
    entry: FileEntry,
    sha: Sha256,
    blake: blake3::Hasher,
    count: u64,
}

/// Reads the volumes as one stream; see [`Bundle::reader`]. A mismatch is an `InvalidData` error
/// whose message names the file; it is returned in place of the end of the stream, so a
/// consumer never sees a clean end of unverified data.
pub struct VolumeReader {
    dir: PathBuf,
    volumes: Vec<FileEntry>,
    whole: partial_common::manifest::Bundle,
    next: usize,
    current: Option<Current>,
    whole_sha: Sha256,
    whole_blake: blake3::Hasher,
    whole_count: u64,
}

fn mismatch(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl VolumeReader {
    fn finish_current(&mut self) -> io::Result<()> {
        if let Some(c) = self.current.take() {
            let sha = partial_common::Digest::from_sha256(c.sha.finalize().into());
            let blake = c.blake.finalize().to_hex().to_string();
            if c.count != c.entry.size {
                return Err(mismatch(format!(
                    "{}: read {} bytes, the manifest says {}",
                    c.path.display(),
                    c.count,
                    c.entry.size
                )));
            }
            if sha != c.entry.sha256 {
                return Err(mismatch(format!(
                    "{}: sha256 {} does not match the manifest's {}",
                    c.path.display(),
                    sha,
                    c.entry.sha256
                )));
            }
            if blake != c.entry.blake3 {
                return Err(mismatch(format!(
                    "{}: BLAKE3 {} does not match the manifest's {}",
                    c.path.display(),
                    blake,
                    c.entry.blake3
                )));
            }
        }
        Ok(())
    }

    fn finish_whole(&mut self) -> io::Result<()> {
        let sha = partial_common::Digest::from_sha256(self.whole_sha.clone().finalize().into());
        let blake = self.whole_blake.finalize().to_hex().to_string();
        if self.whole_count != self.whole.size
            || sha != self.whole.sha256
            || blake != self.whole.blake3
        {
            return Err(mismatch(format!(
                "bundle {}: the volumes together ({} bytes, sha256 {sha}) do not match the manifest \
                 ({} bytes, sha256 {})",
                self.whole.name, self.whole_count, self.whole.size, self.whole.sha256
            )));
        }
        Ok(())
    }
}

impl Read for VolumeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                if self.next >= self.volumes.len() {
                    if self.next == self.volumes.len() {
                        self.next += 1;
                        self.finish_whole()?;
                    }
                    return Ok(0);
                }
                let entry = self.volumes[self.next].clone();
                self.next += 1;
                let path = self.dir.join(&entry.name);
                let file = File::open(&path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                self.current = Some(Current {
                    file,
                    path,
                    entry,
                    sha: Sha256::new(),
                    blake: blake3::Hasher::new(),
                    count: 0,
                });
            }
            let Some(c) = self.current.as_mut() else {
                continue;
            };
            let n = c.file.read(buf)?;
            if n == 0 {
                self.finish_current()?;
                continue;
            }
            if c.count + n as u64 > c.entry.size {
                return Err(mismatch(format!(
                    "{}: longer than the {} bytes the manifest says",
                    c.path.display(),
                    c.entry.size
                )));
            }
            c.sha.update(&buf[..n]);
            c.blake.update(&buf[..n]);
            c.count += n as u64;
            self.whole_sha.update(&buf[..n]);
            self.whole_blake.update(&buf[..n]);
            self.whole_count += n as u64;
            return Ok(n);
        }
    }
}

/// Reads the whole bundle through the verifying reader, for `verify`.
pub fn verify_content(bundle: &Bundle, on_bytes: impl Fn(u64)) -> Result<()> {
    let mut r = bundle.reader();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                total += n as u64;
                on_bytes(total);
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(verify_failed(e.to_string()))
            }
            Err(e) => return Err(anyhow!(e)).context("reading the bundle"),
        }
    }
}
