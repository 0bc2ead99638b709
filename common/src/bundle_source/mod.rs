//! The bundle as a source that yields exactly what its signed manifest lists, nothing else.
//!
//! The signed manifest is the only truth: the bundle's tar comes from the transfer medium, which
//! anyone may have written to, and even a holder of the signing key is not trusted beyond the
//! manifest a reviewer approved. [`copy_into`] reads the tar strictly ([`TarReader`]: proper
//! end, nothing after it, no name escaping the archive) and hands an [image
//! destination](crate::destination) exactly this, committing it once at the end:
//! * each listed image's config, checked against the image ID, its `rootfs.diff_ids` against the
//!   signed layers;
//! * each carried layer blob once, its digest and size checked, and a compressed blob's diffID
//!   computed as it streams ([`diff_check`]);
//! * the images as the signed manifest has them, at the commit: [`copy_checked`] writes a new
//!   archive of the bundle's shape ([`BundleWriter`]) whose metadata (`manifest.json`, OCI
//!   manifests, `index.json`, `repositories`) comes from the signed manifest alone;
//!   `partial-load push` uploads to a registry instead.
//!
//! The tar's own metadata is checked against the signed manifest too ([`metadata`]) and then
//! dropped. Anything else (an unlisted blob, a second `manifest.json`, a link or a device, a
//! duplicate) is refused, as is a listed config or carried layer that never comes. Every command
//! that reads a bundle (`load`, `verify`, `rehydrate`) reads it through here, so `verify` passing
//! means `load` accepts the same bundle; `push` reads it through here too, into its own
//! destination. Errors name the entry and what is wrong; the output is only complete when the
//! call returns `Ok`, and a consumer that commits on a clean end (the daemon upload) must be
//! handed the error in place of that end.

mod expect;
mod metadata;

pub use expect::DeltaForm;

use crate::archive::entries::{clean_name, role_of, EntryHead, EntryRole, TarReader};
use crate::archive::ArchiveError;
use crate::bundle_writer::BundleWriter;
use crate::destination::ImageDestination;
use crate::diff_check::DiffHashThread;
use crate::digest::{Digest, Sha256Writer};
use crate::manifest::BundleManifest;
use crate::platform_view::{DaemonView, Viewed};
use expect::{Expected, ExpectedBlob};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

/// The biggest image config accepted (Docker's own configs are a few KiB; long histories reach
/// a few hundred).
pub const MAX_CONFIG: u64 = 16 << 20;
/// The biggest metadata file accepted (`manifest.json`, `index.json`, `repositories`).
pub const MAX_METADATA: u64 = 16 << 20;
/// The biggest OCI image manifest accepted (the distribution spec's limit for registries).
pub const MAX_OCI_MANIFEST: u64 = 4 << 20;

/// A bundle that contradicts its signed manifest, or cannot be read; each names the entry.
#[derive(Debug, thiserror::Error)]
pub enum BundleSourceError {
    #[error(transparent)]
    Tar(#[from] ArchiveError),
    #[error("the signed manifest is unusable: {0}")]
    BadManifest(String),
    #[error("entry {entry} is not in the signed manifest: {why}")]
    Unlisted { entry: String, why: String },
    #[error("entry {entry} appears twice")]
    Duplicate { entry: String },
    #[error("entry {entry} is a {kind}; a bundle holds regular files only")]
    NotAFile { entry: String, kind: String },
    #[error("entry {entry} contradicts the signed manifest: {what}")]
    Contradicts { entry: String, what: String },
    #[error("{what} is missing from the bundle")]
    Missing { what: String },
    #[error("writing the checked archive: {0}")]
    Write(io::Error),
}

impl BundleSourceError {
    /// Whether the bundle is at fault (exit 3), rather than the reading or writing itself (a
    /// volume that vanished, a destination that stopped reading).
    pub fn is_bundles_fault(&self) -> bool {
        match self {
            BundleSourceError::Write(_) | BundleSourceError::Tar(ArchiveError::Write(_)) => false,
            BundleSourceError::Tar(ArchiveError::Io(e) | ArchiveError::Read { source: e, .. }) => {
                !matches!(
                    e.kind(),
                    io::ErrorKind::NotFound
                        | io::ErrorKind::PermissionDenied
                        | io::ErrorKind::BrokenPipe
                )
            }
            _ => true,
        }
    }
}

/// What [`copy_checked`] wrote.
#[derive(Debug)]
pub struct Checked<W> {
    pub out: W,
    /// The size of the archive written.
    pub tar_size: u64,
    /// Carried blobs written (configs not counted).
    pub blobs: usize,
    /// The OCI manifest written for each image: image ID (config digest) → manifest digest.
    pub manifests: BTreeMap<Digest, Digest>,
}

/// What was seen of the tar so far.
#[derive(Default)]
struct Seen {
    /// Config bytes by image ID.
    configs: BTreeMap<Digest, Vec<u8>>,
    blobs: BTreeSet<Digest>,
    /// Checked OCI manifests: digest → image ID.
    oci_manifests: BTreeMap<Digest, Digest>,
    metadata: BTreeSet<String>,
}

/// What [`copy_into`] gave a destination: what its commit returned, and how many carried blobs
/// it took (configs not counted).
#[derive(Debug)]
pub struct Copied<C> {
    pub committed: C,
    pub blobs: usize,
}

/// Reads the bundle tar `input`, checks it against `manifest` and writes what it lists to `out`
/// as an archive of the bundle's shape (see the module documentation). `form`: whether delta
/// layers are still encoded in `input`.
pub fn copy_checked<R: Read, W: Write>(
    input: R,
    manifest: &BundleManifest,
    form: DeltaForm,
    out: W,
) -> Result<Checked<W>, BundleSourceError> {
    copy_checked_for(input, manifest, form, out, DaemonView::default())
}

/// [`copy_checked`], the images written as a daemon of a given platform loads them (`view`:
/// see [`crate::platform_view`]); everything is checked all the same.
pub fn copy_checked_for<R: Read, W: Write>(
    input: R,
    manifest: &BundleManifest,
    form: DeltaForm,
    out: W,
    view: DaemonView,
) -> Result<Checked<W>, BundleSourceError> {
    let dest = Viewed {
        inner: BundleWriter::new(out),
        view,
    };
    let copied = copy_into(input, manifest, form, dest)?;
    let finished = copied.committed;
    Ok(Checked {
        out: finished.out,
        tar_size: finished.tar_size,
        blobs: copied.blobs,
        manifests: finished.manifests,
    })
}

/// The layer entries that the archive [`copy_checked`] writes names in its `manifest.json` and
/// does not hold (the positions the destination has), each with its diffID: what a tool that
/// completes the archive adds (`partial-load rehydrate`). Known from the signed manifest alone,
/// before a byte of the bundle is read. `form` as for the copy; the images `leave_out` (a
/// [`DaemonView`]'s) are not written, so their layers are not asked for.
pub fn left_out_layers(
    manifest: &BundleManifest,
    form: DeltaForm,
    leave_out: &BTreeSet<Digest>,
) -> Result<BTreeMap<String, Digest>, BundleSourceError> {
    let exp = Expected::new(manifest, form)?;
    let written = |d: &Digest| exp.blobs.contains_key(d) || exp.configs.contains_key(d);
    let mut out = BTreeMap::new();
    for img in exp.model(&BTreeMap::new()) {
        if leave_out.contains(&img.id) {
            continue;
        }
        for l in &img.layers {
            let d = crate::bundle_writer::layer_entry(l, written);
            if !written(d) {
                out.insert(crate::bundle_writer::blob_path(d), l.diff_id.clone());
            }
        }
    }
    Ok(out)
}

/// Reads the bundle tar `input`, checks it against `manifest` and hands what it lists to `dest`,
/// committing the images once every listed config and carried blob came and checked out.
pub fn copy_into<R: Read, D: ImageDestination>(
    input: R,
    manifest: &BundleManifest,
    form: DeltaForm,
    mut dest: D,
) -> Result<Copied<D::Committed>, BundleSourceError> {
    let exp = Expected::new(manifest, form)?;
    let mut r = TarReader::new(input);
    let mut seen = Seen::default();
    while let Some(head) = r.next_entry()? {
        copy_entry(&mut r, &head, &exp, &mut seen, &mut dest)?;
    }
    check_complete(&exp, &seen)?;
    let committed = dest.commit(&exp.model(&seen.configs)).map_err(write_err)?;
    Ok(Copied {
        committed,
        blobs: seen.blobs.len(),
    })
}

fn write_err(e: ArchiveError) -> BundleSourceError {
    match e {
        ArchiveError::Write(e) => BundleSourceError::Write(e),
        e => BundleSourceError::Tar(e),
    }
}

/// One entry: checked, and handed over when it is a listed config or carried blob.
fn copy_entry<R: Read, D: ImageDestination>(
    r: &mut TarReader<R>,
    head: &EntryHead,
    exp: &Expected,
    seen: &mut Seen,
    w: &mut D,
) -> Result<(), BundleSourceError> {
    let name = clean_name(&head.name)?;
    if head.kind.is_dir() {
        return match name.as_str() {
            "blobs/" | "blobs/sha256/" | "blobs" | "blobs/sha256" => Ok(()),
            _ => Err(unlisted(&name, "a folder a bundle does not have")),
        };
    }
    if !head.is_file() {
        return Err(BundleSourceError::NotAFile {
            entry: name,
            kind: format!("{:?}", head.kind).to_lowercase(),
        });
    }
    match role_of(&name) {
        EntryRole::Blob(d) if exp.configs.contains_key(&d) => {
            copy_config(r, &name, d, exp, seen, w)
        }
        EntryRole::Blob(d) => match exp.blobs.get(&d) {
            Some(b) => copy_blob(r, head, &name, d, b, seen, w),
            None => check_oci_manifest(r, head, &name, d, exp, seen),
        },
        EntryRole::Manifest | EntryRole::Index | EntryRole::Repositories | EntryRole::OciLayout => {
            check_metadata(r, &name, exp, seen)
        }
        _ => Err(unlisted(&name, "a file a bundle does not have")),
    }
}

fn unlisted(entry: &str, why: &str) -> BundleSourceError {
    BundleSourceError::Unlisted {
        entry: entry.to_string(),
        why: why.to_string(),
    }
}

fn duplicate(entry: &str) -> BundleSourceError {
    BundleSourceError::Duplicate {
        entry: entry.to_string(),
    }
}

/// Reads an entry known to be small, checking it is named by its digest.
fn read_named<R: Read>(
    r: &mut TarReader<R>,
    name: &str,
    d: &Digest,
    limit: u64,
) -> Result<Vec<u8>, BundleSourceError> {
    let bytes = r.read_all(limit)?;
    let actual = Digest::of_bytes(&bytes);
    if actual != *d {
        return Err(ArchiveError::DigestMismatch {
            entry: name.to_string(),
            expected: d.clone(),
            actual,
        }
        .into());
    }
    Ok(bytes)
}

/// A listed config: its digest, and its diffIDs against the signed layers.
fn copy_config<R: Read, D: ImageDestination>(
    r: &mut TarReader<R>,
    name: &str,
    id: Digest,
    exp: &Expected,
    seen: &mut Seen,
    w: &mut D,
) -> Result<(), BundleSourceError> {
    if seen.configs.contains_key(&id) {
        return Err(duplicate(name));
    }
    let bytes = read_named(r, name, &id, MAX_CONFIG)?;
    let diff_ids = config_diff_ids(&bytes).ok_or_else(|| BundleSourceError::Contradicts {
        entry: name.to_string(),
        what: "it is not an image config with rootfs.diff_ids".to_string(),
    })?;
    for img in exp.configs.get(&id).into_iter().flatten() {
        let signed: Vec<&Digest> = img.layers.iter().map(|l| &l.diff_id).collect();
        if diff_ids.iter().collect::<Vec<_>>() != signed {
            return Err(BundleSourceError::Contradicts {
                entry: name.to_string(),
                what: format!(
                    "the config of image {id} lists {} layer diffIDs that are not the {} the \
                     signed manifest lists",
                    diff_ids.len(),
                    signed.len()
                ),
            });
        }
    }
    w.put_config(&id, &bytes).map_err(write_err)?;
    seen.configs.insert(id, bytes);
    Ok(())
}

/// `rootfs.diff_ids` of a config.
fn config_diff_ids(bytes: &[u8]) -> Option<Vec<Digest>> {
    #[derive(serde::Deserialize)]
    struct RootFs {
        diff_ids: Vec<Digest>,
    }
    #[derive(serde::Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    serde_json::from_slice::<Config>(bytes)
        .ok()
        .map(|c| c.rootfs.diff_ids)
}

/// A carried blob, streamed to `w`: size, digest and (compressed) diffID checked.
fn copy_blob<R: Read, D: ImageDestination>(
    r: &mut TarReader<R>,
    head: &EntryHead,
    name: &str,
    d: Digest,
    b: &ExpectedBlob,
    seen: &mut Seen,
    w: &mut D,
) -> Result<(), BundleSourceError> {
    if !seen.blobs.insert(d.clone()) {
        return Err(duplicate(name));
    }
    if b.size.is_some_and(|s| s != head.size) {
        return Err(BundleSourceError::Contradicts {
            entry: name.to_string(),
            what: format!(
                "{} is {} bytes, the signed manifest says {}",
                b.what,
                head.size,
                b.size.unwrap_or_default()
            ),
        });
    }
    let diff = match &b.compressed_diff {
        Some((c, _)) => DiffHashThread::start(*c).map_err(ArchiveError::Io)?,
        None => None,
    };
    let mut tap = Tap {
        inner: r.data(),
        check: Some(BlobCheck {
            name,
            d: &d,
            b,
            hash: Sha256Writer::new(io::sink()),
            diff,
        }),
        verdict: None,
    };
    let handed = w.put_blob(&d, head.size, &mut tap);
    // What the destination left unread is checked all the same.
    let drained = handed.and_then(|()| {
        io::copy(&mut tap, &mut io::sink())
            .map(|_| ())
            .map_err(ArchiveError::Io)
    });
    let (verdict, rest) = (tap.verdict.take(), tap.check.take());
    drop(tap);
    match (verdict, drained) {
        // The bytes did not match: that, whatever the destination made of the failed read.
        (Some(Err(e)), _) => Err(e),
        (_, Err(ArchiveError::Io(e))) => Err(r.map_data_err(e).into()),
        (_, Err(e)) => Err(write_err(e)),
        (Some(Ok(())), Ok(())) => Ok(()),
        (None, Ok(())) => rest.map_or(Ok(()), BlobCheck::finish),
    }
}

/// The checks of one blob as it streams: its digest, and a compressed blob's diffID.
struct BlobCheck<'a> {
    name: &'a str,
    d: &'a Digest,
    b: &'a ExpectedBlob,
    hash: Sha256Writer<io::Sink>,
    diff: Option<DiffHashThread>,
}

impl BlobCheck<'_> {
    fn update(&mut self, chunk: &[u8]) {
        let _ = self.hash.write_all(chunk);
        if let Some(h) = self.diff.as_mut() {
            h.update(chunk);
        }
    }

    fn finish(self) -> Result<(), BundleSourceError> {
        check_blob_digests(self.name, self.d, self.b, self.hash, self.diff)
    }
}

/// The reader a destination gets for a blob: the entry's bytes, checked as they pass. Its end
/// (a read of 0) comes only once every check passed; when one failed, that read is an error
/// instead (`InvalidData`, naming the entry), so a destination that completes a blob on a clean
/// end of its data never completes one that did not match. The verdict is kept for the copy.
struct Tap<'a, R> {
    inner: R,
    check: Option<BlobCheck<'a>>,
    verdict: Option<Result<(), BundleSourceError>>,
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 || buf.is_empty() {
            if let Some(c) = self.check.as_mut() {
                c.update(&buf[..n]);
            }
            return Ok(n);
        }
        if let Some(c) = self.check.take() {
            self.verdict = Some(c.finish());
        }
        match &self.verdict {
            Some(Err(e)) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            _ => Ok(0),
        }
    }
}

fn check_blob_digests(
    name: &str,
    d: &Digest,
    b: &ExpectedBlob,
    hash: Sha256Writer<io::Sink>,
    diff: Option<DiffHashThread>,
) -> Result<(), BundleSourceError> {
    let actual = hash.finish().1;
    if actual != *d {
        return Err(ArchiveError::DigestMismatch {
            entry: name.to_string(),
            expected: d.clone(),
            actual,
        }
        .into());
    }
    let (Some(h), Some((c, want))) = (diff, &b.compressed_diff) else {
        return Ok(());
    };
    match h.finish() {
        Ok(got) if got == *want => Ok(()),
        Ok(got) => Err(BundleSourceError::Contradicts {
            entry: name.to_string(),
            what: format!("{} decompresses to {got}, its diffID is {want}", b.what),
        }),
        Err(e) => Err(BundleSourceError::Contradicts {
            entry: name.to_string(),
            what: format!("{} does not decompress as {}: {e}", b.what, c.as_str()),
        }),
    }
}

/// A blob that is neither a listed config nor a carried blob: only an OCI manifest of a listed
/// image may be (checked, not written).
fn check_oci_manifest<R: Read>(
    r: &mut TarReader<R>,
    head: &EntryHead,
    name: &str,
    d: Digest,
    exp: &Expected,
    seen: &mut Seen,
) -> Result<(), BundleSourceError> {
    if head.size > MAX_OCI_MANIFEST {
        return Err(unlisted(
            name,
            "neither a listed config or layer nor an image manifest",
        ));
    }
    if seen.oci_manifests.contains_key(&d) {
        return Err(duplicate(name));
    }
    let bytes = read_named(r, name, &d, MAX_OCI_MANIFEST)?;
    let id = metadata::check_oci_manifest(name, &bytes, exp)?;
    seen.oci_manifests.insert(d, id);
    Ok(())
}

/// `manifest.json`, `index.json`, `repositories`, `oci-layout`: once each, checked, not written.
fn check_metadata<R: Read>(
    r: &mut TarReader<R>,
    name: &str,
    exp: &Expected,
    seen: &mut Seen,
) -> Result<(), BundleSourceError> {
    if !seen.metadata.insert(name.to_string()) {
        return Err(duplicate(name));
    }
    let bytes = r.read_all(MAX_METADATA)?;
    match name {
        "manifest.json" => metadata::check_manifest_json(&bytes, exp),
        "repositories" => metadata::check_repositories(&bytes, exp),
        "index.json" => metadata::check_index(&bytes, exp, &seen.oci_manifests),
        _ => Ok(()),
    }
}

/// Every listed config and carried blob came.
fn check_complete(exp: &Expected, seen: &Seen) -> Result<(), BundleSourceError> {
    if let Some(id) = exp
        .configs
        .keys()
        .find(|id| !seen.configs.contains_key(*id))
    {
        return Err(BundleSourceError::Missing {
            what: format!("the config of image {id} (blobs/sha256/{})", id.hex()),
        });
    }
    if let Some((d, b)) = exp.blobs.iter().find(|(d, _)| !seen.blobs.contains(*d)) {
        return Err(BundleSourceError::Missing {
            what: format!("{} (blobs/sha256/{})", b.what, d.hex()),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
