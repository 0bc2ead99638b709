//! Reading a bundle back: its volumes as one stream whose every volume, and the whole, must
//! match the sizes and hashes of the signed manifest ([`VolumeReader`]); the plain tar inside,
//! decompressed no further than the signed `tar_size` ([`tar_stream`]), with its delta layers
//! rebuilt when their references are at hand ([`checked_input`], what the checked source reads
//! for `load`); and what `verify`, `rehydrate`, `approve` and `report` consume, the bundle as the
//! signed manifest governs it written as a checked archive ([`checked_stream`]: nothing the
//! manifest does not list gets through, see `partial_common::bundle_source`).

use crate::bundle::{Bundle, Volume};
use crate::confirm::Written;
use crate::errors::verify_failed;
use crate::rebuild::{self, DeltaLayer, References};
use anyhow::{anyhow, Context, Result};
use indicatif::ProgressBar;
use partial_common::archive::ArchiveError;
use partial_common::bundle_source::{self, BundleSourceError, DeltaForm};
use partial_common::codec::Compression;
use partial_common::manifest::FileEntry;
use partial_common::pipe;
use partial_common::platform_view::DaemonView;
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
pub struct Progressing<R> {
    pub inner: R,
    pub bar: ProgressBar,
}

impl<R: Read> Read for Progressing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The bundle's plain tar: the verified volumes decompressed as the signed manifest says
/// (`compression`), never beyond the `tar_size` it states. Whatever goes wrong in the compressed
/// stream is the bundle's fault (`InvalidData`), unless a file could not be read at all.
pub fn tar_stream(bundle: &Bundle, bar: ProgressBar) -> Result<Box<dyn Read + Send>> {
    let r = Progressing {
        inner: VolumeReader::new(bundle),
        bar,
    };
    let label = bundle.name();
    let decoded: Box<dyn Read + Send> = match bundle.manifest.bundle.compression {
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(r).context("starting zstd")?)
        }
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::None => Box::new(r),
    };
    Ok(Box::new(Bounded {
        inner: decoded,
        label,
        compression: bundle.manifest.bundle.compression,
        limit: bundle.manifest.bundle.tar_size,
        count: 0,
    }))
}

/// The decompressed stream, held to the signed `tar_size`: a byte beyond it is an error (a
/// decompression bomb stops there), and so is an end before it.
struct Bounded {
    inner: Box<dyn Read + Send>,
    label: String,
    compression: Compression,
    limit: u64,
    count: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte more than allowed is enough to tell.
        let room = self.limit.saturating_sub(self.count).saturating_add(1);
        let want = buf.len().min(room.min(usize::MAX as u64) as usize);
        let n = self
            .inner
            .read(&mut buf[..want])
            .map_err(|e| self.blame(e))?;
        self.count += n as u64;
        if self.count > self.limit {
            return Err(mismatch(format!(
                "bundle {}: its tar is longer than the {} bytes the signed manifest states \
                 (tar_size); refusing to decompress further",
                self.label, self.limit
            )));
        }
        if n == 0 && want > 0 && self.count != self.limit {
            return Err(mismatch(format!(
                "bundle {}: its tar is {} bytes, the signed manifest states {} (tar_size)",
                self.label, self.count, self.limit
            )));
        }
        Ok(n)
    }
}

impl Bounded {
    /// A read error: a file that cannot be read stays what it is; anything else in the
    /// compressed stream (a corrupt gzip or zstd frame, a hash mismatch) is the bundle's fault.
    fn blame(&self, e: io::Error) -> io::Error {
        match e.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidData => e,
            _ if self.compression == Compression::None => e,
            _ => mismatch(format!(
                "bundle {}: the {} stream is corrupt: {e}",
                self.label,
                self.compression.as_str()
            )),
        }
    }
}

/// What the checked stream is made from: the bundle's own tar, or (delta bundles, with the
/// daemon's reference layers at hand) its tar with the delta layers rebuilt.
pub enum Layers {
    AsCarried,
    Rebuilt(Vec<DeltaLayer>, References),
}

/// The bundle as its signed manifest governs it (`partial_common::bundle_source`): exactly the
/// listed configs and carried blobs, every digest checked, metadata written from the signed
/// manifest, produced on a thread. Reading it yields an error, never a clean end, when the
/// bundle contradicts its manifest in any way (`InvalidData`: the bundle's fault).
pub fn checked_stream(
    bundle: &Bundle,
    bar: ProgressBar,
    layers: Layers,
) -> Result<Box<dyn Read + Send>> {
    checked_stream_for(
        bundle,
        bar,
        layers,
        Written::default(),
        DaemonView::default(),
    )
}

/// [`checked_stream`] with the images written as a daemon of one platform loads them (`view`,
/// see `partial_common::platform_view`), noting in `written` the OCI manifest written for each
/// image once the stream reached its end (what the containerd image store names the images by:
/// `confirm`). The complete archive `rehydrate` writes is made from it.
pub fn checked_stream_for(
    bundle: &Bundle,
    bar: ProgressBar,
    layers: Layers,
    written: Written,
    view: DaemonView,
) -> Result<Box<dyn Read + Send>> {
    let label = bundle.name();
    let (input, form) = checked_input(bundle, bar, layers)?;
    let manifest = bundle.manifest.clone();
    let r = pipe::spawn("bundle-check", move |w| {
        bundle_source::copy_checked_for(input, &manifest, form, w, view)
            .map(|checked| written.record(checked.manifests))
            .map_err(|e| checked_err(&label, e))
    })
    .context("starting the bundle reading thread")?;
    Ok(Box::new(r))
}

/// What the checked source reads (`partial_common::bundle_source::copy_into`): the bundle's
/// plain tar ([`tar_stream`]), its delta layers rebuilt when `layers` has their references, and
/// the form its delta layers come in.
pub fn checked_input(
    bundle: &Bundle,
    bar: ProgressBar,
    layers: Layers,
) -> Result<(Box<dyn Read + Send>, DeltaForm)> {
    let raw = tar_stream(bundle, bar)?;
    Ok(match layers {
        Layers::AsCarried => (raw, DeltaForm::Encoded),
        Layers::Rebuilt(deltas, refs) if !deltas.is_empty() => (
            rebuild::rebuilt_stream(raw, bundle.name(), deltas, refs)?,
            DeltaForm::Rebuilt,
        ),
        Layers::Rebuilt(..) => (raw, DeltaForm::Rebuilt),
    })
}

/// An error of the checked source as the pipe hands it on: `InvalidData` when the bundle is at
/// fault, else the kind of the I/O error behind it.
pub fn checked_err(label: &str, e: BundleSourceError) -> io::Error {
    let kind = match &e {
        _ if e.is_bundles_fault() => io::ErrorKind::InvalidData,
        BundleSourceError::Write(w) => w.kind(),
        BundleSourceError::Tar(
            ArchiveError::Io(w) | ArchiveError::Read { source: w, .. } | ArchiveError::Write(w),
        ) => w.kind(),
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("bundle {label}: {e}"))
}

/// Reads the whole bundle as `load` would (every volume's hashes, every entry against the signed
/// manifest, delta layers rebuilt when `layers` has their references), discarding it.
pub fn verify_content(bundle: &Bundle, layers: Layers, bar: ProgressBar) -> Result<()> {
    let mut r = checked_stream(bundle, bar, layers)?;
    match io::copy(&mut r, &mut io::sink()) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(verify_failed(e.to_string())),
        Err(e) => Err(anyhow!(e)).context("reading the bundle"),
    }
}
