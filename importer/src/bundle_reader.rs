//! Reading a bundle back: its volumes as one stream whose every volume, and the whole, must
//! match the sizes and hashes of the signed manifest ([`VolumeReader`]), and the streams built on
//! it: what the daemon gets ([`daemon_stream`]: zstd undone on the client) and the plain tar
//! ([`tar_stream`]).

use crate::bundle::{Bundle, Volume};
use crate::errors::verify_failed;
use anyhow::{anyhow, Context, Result};
use indicatif::ProgressBar;
use partial_common::manifest::FileEntry;
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

impl VolumeReader {
    /// A reader over every volume of `bundle` in order, checking each volume's size, sha256 and
    /// BLAKE3 and the whole stream's, failing (instead of ending) on any mismatch.
    pub fn new(bundle: &Bundle) -> Self {
        VolumeReader {
            label: bundle.name(),
            volumes: bundle.volumes.clone(),
            whole: bundle.manifest.bundle.clone(),
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
    /// The bundle as named, for messages.
    label: String,
    volumes: Vec<Volume>,
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
                self.label, self.whole_count, self.whole.size, self.whole.sha256
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
                let Volume {
                    path,
                    expected: entry,
                } = self.volumes[self.next].clone();
                self.next += 1;
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

/// A reader that moves a progress bar.
pub struct Counting<R> {
    pub inner: R,
    pub bar: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The bundle's tar stream as the daemon should get it: verified volumes, zstd undone on the
/// client (a 20.10 daemon rejects zstd), gzip and plain tar passed through.
pub fn daemon_stream(bundle: &Bundle, bar: ProgressBar) -> Result<Box<dyn Read + Send>> {
    let r = Counting {
        inner: VolumeReader::new(bundle),
        bar,
    };
    Ok(match bundle.manifest.bundle.compression.as_str() {
        "zstd" => Box::new(zstd::stream::read::Decoder::new(r).context("starting zstd")?),
        "gzip" | "none" => Box::new(r),
        other => {
            return Err(verify_failed(format!(
                "unknown compression {other:?} in {}",
                bundle.manifest_path.display()
            )))
        }
    })
}

/// The bundle's plain tar stream (verified volumes, any compression undone).
pub fn tar_stream(bundle: &Bundle, bar: ProgressBar) -> Result<Box<dyn Read + Send>> {
    partial_common::codec::decompress(daemon_stream(bundle, bar)?)
        .with_context(|| format!("reading the bundle {}", bundle.name()))
}

/// Reads the whole bundle through the verifying reader, for `verify`.
pub fn verify_content(bundle: &Bundle, on_bytes: impl Fn(u64)) -> Result<()> {
    let mut r = VolumeReader::new(bundle);
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
