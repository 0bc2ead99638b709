//! The one pass over the bundle: its tar stream, read through the verifying volume reader on a
//! blocking thread by the checked bundle source (`partial_common::bundle_source::copy_into`,
//! the same strict reading `load` and `verify` get), whose image destination here ([`Feed`])
//! hands each blob to push to an upload job as it passes. The source checks every byte: a blob's
//! reader ends only once its digest matched, and fails in place of the end when it did not
//! (`partial_common::destination`), so the feed hashes nothing itself.
//!
//! - A blob pushed as stored streams straight into its upload, the last piece held back until
//!   its reader ended, so the registry never completes a blob that did not verify.
//! - An uncompressed layer pushed gzip-compressed is compressed into an anonymous temporary
//!   file (deleted on every path), which is handed over only once its reader ended (the diffID
//!   matched). The gzip is deterministic, so the same layer gives the same blob every time: its
//!   job HEADs that digest in each repository, mounts, else uploads the file.
//!
//! Up to `--jobs` uploads run at a time while the pass reads on (the file of a compressed layer
//! uploads while the next one is compressed); the first that fails cancels the others and ends
//! the pass. A volume whose hash fails ends the pass with an error (exit 3). Either way no
//! manifest is pushed.

use super::plan::PushPlan;
use crate::bundle::Bundle;
use crate::bundle_reader;
use crate::errors::verify_failed;
use crate::registry_connect::registry_err;
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use indicatif::ProgressBar;
use partial_common::archive::ArchiveError;
use partial_common::bundle_source::{self, BundleSourceError, DeltaForm};
use partial_common::codec;
use partial_common::destination::ImageDestination;
use partial_common::digest::Sha256Writer;
use partial_common::image::Image;
use partial_common::manifest::BundleManifest;
use partial_common::registry::{BlobOutcome, MountOutcome, Registry};
use partial_common::Digest;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek, Write};
use tokio::sync::mpsc;

/// Size of the pieces a blob is handed over in.
const PIECE: usize = 256 << 10;

/// One blob to push.
enum Item {
    /// Pushed as stored, its content following on `data`.
    Stream {
        digest: Digest,
        size: u64,
        data: mpsc::Receiver<io::Result<Bytes>>,
    },
    /// An uncompressed layer, verified and compressed.
    Gzipped(Gzipped),
}

/// A verified layer compressed into an anonymous temporary file.
struct Gzipped {
    /// Its digest in the bundle (the diffID).
    layer: Digest,
    /// The digest and size of the gzip.
    digest: Digest,
    size: u64,
    file: std::fs::File,
}

/// What the pass found: the size of every expected blob, the gzip made of each layer pushed
/// compressed, and what was uploaded or mounted.
#[derive(Debug, Default)]
pub struct Pass {
    pub sizes: HashMap<Digest, u64>,
    /// Bundle digest (diffID) → digest and size of the gzip pushed.
    pub gzipped: HashMap<Digest, (Digest, u64)>,
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
    pub mounted_blobs: usize,
}

/// What one job did.
#[derive(Default)]
struct Done {
    uploaded_blobs: usize,
    uploaded_bytes: u64,
    mounted_blobs: usize,
    gzipped: Option<(Digest, Digest, u64)>,
}

impl Pass {
    fn add(&mut self, done: Done) {
        self.uploaded_blobs += done.uploaded_blobs;
        self.uploaded_bytes += done.uploaded_bytes;
        self.mounted_blobs += done.mounted_blobs;
        if let Some((layer, digest, size)) = done.gzipped {
            self.gzipped.insert(layer, (digest, size));
        }
    }
}

/// Reads the bundle once, checked as every command reads it: uploads `plan.missing` as stored (to the
/// first repository lacking each, mounted from there into the others) and `plan.compress`
/// gzip-compressed, `jobs` uploads at a time.
pub async fn pass(
    registry: &Registry,
    bundle: &Bundle,
    plan: &PushPlan,
    jobs: usize,
    bar: ProgressBar,
) -> Result<Pass> {
    // Checked against the signed manifest to the last byte of the last volume before the copy
    // commits (the whole-bundle hash included).
    let reader = bundle_reader::tar_stream(bundle, bar)?;
    let manifest = bundle.manifest.clone();
    let label = bundle.name();
    let wanted: HashSet<Digest> = plan.missing.keys().cloned().collect();
    let gzip: HashSet<Digest> = plan.compress.keys().cloned().collect();
    let (tx, mut rx) = mpsc::channel::<Item>(1);
    let producer = tokio::task::spawn_blocking(move || {
        let feed = Feed {
            wanted: &wanted,
            gzip: &gzip,
            tx: &tx,
            sizes: HashMap::new(),
        };
        produce(reader, &manifest, &label, feed)
    });
    let mut out = Pass::default();
    let mut running = FuturesUnordered::new();
    let mut failed = None;
    let mut open = true;
    while open || !running.is_empty() {
        tokio::select! {
            Some(done) = running.next(), if !running.is_empty() => match done {
                Ok(done) => out.add(done),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            },
            item = rx.recv(), if open && running.len() < jobs => match item {
                Some(item) => running.push(job(registry, plan, item)),
                None => open = false,
            },
            else => break,
        }
    }
    // Cancels the uploads still running, and stops the reading thread.
    drop(running);
    drop(rx);
    let produced = producer
        .await
        .map_err(|e| anyhow!("the bundle reading thread failed: {e}"))?;
    match (produced, failed) {
        (Err(e), _) if is_bundle_fault(&e) => Err(verify_failed(format!(
            "bundle {}: {e}; no manifest was pushed (blobs already uploaded are unreferenced)",
            bundle.name()
        ))),
        (_, Some(e)) => Err(e.context("no manifest was pushed")),
        (Err(e), None) if is_temp_fault(&e) => Err(anyhow!(e).context("no manifest was pushed")),
        (Err(e), None) => Err(anyhow!(e).context(format!("reading the bundle {}", bundle.name()))),
        (Ok(sizes), None) => {
            out.sizes = sizes;
            Ok(out)
        }
    }
}

type Job<'a> = futures_util::future::BoxFuture<'a, Result<Done>>;

/// The upload job of one blob.
fn job<'a>(registry: &'a Registry, plan: &'a PushPlan, item: Item) -> Job<'a> {
    match item {
        Item::Stream { digest, size, data } => async move {
            let repos = plan.missing.get(&digest).map(Vec::as_slice).unwrap_or(&[]);
            let bytes = upload(registry, &digest, size, data, repos).await?;
            Ok(Done {
                uploaded_blobs: 1,
                uploaded_bytes: bytes,
                ..Done::default()
            })
        }
        .boxed(),
        Item::Gzipped(z) => async move {
            let repos = plan
                .compress
                .get(&z.layer)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            push_gzipped(registry, &z, repos, &plan.holders)
                .await
                .with_context(|| format!("pushing layer {} as gzip {}", z.layer, z.digest))
        }
        .boxed(),
    }
}

/// A read error that says the bundle is bad (a hash mismatch, corrupt compression, a malformed
/// tar), as opposed to a file that is gone or unreadable, a temporary file that could not be
/// written, or the uploader having stopped.
fn is_bundle_fault(e: &io::Error) -> bool {
    !is_temp_fault(e)
        && !matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::BrokenPipe
        )
}

/// Writing a compressed layer to its temporary file failed (a full disk, say).
#[derive(Debug)]
struct TempFault {
    dir: String,
    source: io::Error,
}

impl std::fmt::Display for TempFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writing a compressed layer to a temporary file in {} (TMPDIR): {}",
            self.dir, self.source
        )
    }
}

impl std::error::Error for TempFault {}

fn temp_fault(source: io::Error) -> io::Error {
    let dir = std::env::temp_dir().display().to_string();
    io::Error::new(source.kind(), TempFault { dir, source })
}

fn is_temp_fault(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<TempFault>())
}

/// Uploads one blob to the first of `repos`, then mounts it into the others; returns the bytes
/// sent.
async fn upload(
    registry: &Registry,
    digest: &Digest,
    size: u64,
    mut data: mpsc::Receiver<io::Result<Bytes>>,
    repos: &[String],
) -> Result<u64> {
    let Some((first, others)) = repos.split_first() else {
        return Err(anyhow!("blob {digest} has no repository to go to"));
    };
    let body = tokio_util::io::StreamReader::new(futures_util::stream::poll_fn(move |cx| {
        data.poll_recv(cx)
    }));
    let session = registry.start_upload(first).await.map_err(registry_err)?;
    registry
        .upload_monolithic(session, digest, size, body)
        .await
        .map_err(registry_err)?;
    for repo in others {
        if let MountOutcome::NotMounted(s) = registry
            .mount_blob(repo, digest, first)
            .await
            .map_err(registry_err)?
        {
            registry.cancel_upload(s).await;
            return Err(anyhow!(
                "the registry {} did not mount blob {digest} from {first} into {repo}",
                registry.name(),
            ));
        }
    }
    Ok(size)
}

/// Makes the gzip of a layer present in every one of `repos`: HEAD in each, then for those
/// lacking it a mount from one that has it (or from a repository of the base images), else an
/// upload of the file.
async fn push_gzipped(
    registry: &Registry,
    z: &Gzipped,
    repos: &[String],
    holders: &[String],
) -> Result<Done> {
    let mut there = Vec::new();
    let mut lacking = Vec::new();
    for repo in repos {
        match registry
            .blob_exists(repo, &z.digest)
            .await
            .map_err(registry_err)?
        {
            Some(_) => there.push(repo.clone()),
            None => lacking.push(repo.clone()),
        }
    }
    let mut done = Done {
        gzipped: Some((z.layer.clone(), z.digest.clone(), z.size)),
        ..Done::default()
    };
    for repo in lacking {
        let from: Vec<&str> = there.iter().chain(holders).map(String::as_str).collect();
        let file = &z.file;
        let outcome = registry
            .ensure_blob(&repo, &z.digest, Some(z.size), &from, || async move {
                reopen(file)
            })
            .await
            .map_err(registry_err)?;
        match outcome {
            BlobOutcome::Uploaded { bytes } => {
                done.uploaded_blobs += 1;
                done.uploaded_bytes += bytes;
            }
            BlobOutcome::Mounted { .. } => done.mounted_blobs += 1,
            BlobOutcome::Present => {}
        }
        there.insert(0, repo);
    }
    Ok(done)
}

/// The temporary file of a compressed layer, read from its start.
fn reopen(file: &std::fs::File) -> io::Result<tokio::fs::File> {
    let mut f = file.try_clone()?;
    f.seek(io::SeekFrom::Start(0))?;
    Ok(tokio::fs::File::from_std(f))
}

/// The registry side of the pass, as the checked bundle source's destination: a wanted blob goes
/// to an upload job as it streams, a layer to push compressed is compressed first, the others
/// are only checked (by the source). Nothing refers to an uploaded blob before the manifests are
/// pushed, after the whole pass.
struct Feed<'a> {
    wanted: &'a HashSet<Digest>,
    gzip: &'a HashSet<Digest>,
    tx: &'a mpsc::Sender<Item>,
    /// The size of every config and carried blob.
    sizes: HashMap<Digest, u64>,
}

impl ImageDestination for Feed<'_> {
    type Committed = HashMap<Digest, u64>;

    fn put_config(&mut self, id: &Digest, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.put_blob(id, bytes.len() as u64, &mut &bytes[..])
    }

    fn put_blob(&mut self, d: &Digest, size: u64, data: &mut dyn Read) -> Result<(), ArchiveError> {
        if self.wanted.contains(d) {
            let (dtx, drx) = mpsc::channel(4);
            let item = Item::Stream {
                digest: d.clone(),
                size,
                data: drx,
            };
            self.tx.blocking_send(item).map_err(|_| side(stopped()))?;
            hand_over(data, &dtx).map_err(side)?;
        } else if self.gzip.contains(d) {
            let z = gzip_layer(data, d).map_err(side)?;
            self.tx
                .blocking_send(Item::Gzipped(z))
                .map_err(|_| side(stopped()))?;
        }
        self.sizes.insert(d.clone(), size);
        Ok(())
    }

    fn commit(self, _images: &[Image]) -> Result<Self::Committed, ArchiveError> {
        Ok(self.sizes)
    }
}

/// Which side an error of the feed is on: the uploads having stopped or a temporary file that
/// could not be written are the destination's; anything else came from reading the bundle.
fn side(e: io::Error) -> ArchiveError {
    if e.kind() == io::ErrorKind::BrokenPipe || is_temp_fault(&e) {
        ArchiveError::Write(e)
    } else {
        ArchiveError::Io(e)
    }
}

/// The blocking side: the checked copy of the bundle's tar into `feed`. Returns the sizes of
/// the configs and carried blobs; every one the manifest lists came and checked out.
fn produce(
    tar: Box<dyn Read + Send>,
    manifest: &BundleManifest,
    label: &str,
    feed: Feed,
) -> io::Result<HashMap<Digest, u64>> {
    match bundle_source::copy_into(tar, manifest, DeltaForm::Encoded, feed) {
        Ok(copied) => Ok(copied.committed),
        Err(BundleSourceError::Write(e) | BundleSourceError::Tar(ArchiveError::Write(e))) => Err(e),
        Err(e) => Err(bundle_reader::checked_err(label, e)),
    }
}

/// Compresses the uncompressed layer `layer` (deterministic gzip) into an anonymous temporary
/// file; a read that fails (a layer that did not hash to its diffID, say) is an error, and the
/// file is gone with it.
fn gzip_layer(entry: &mut dyn Read, layer: &Digest) -> io::Result<Gzipped> {
    let file = tempfile::tempfile().map_err(temp_fault)?;
    let out = Sha256Writer::new(io::BufWriter::with_capacity(PIECE, file));
    let mut enc = codec::gzip_deterministic(out, None, codec::default_threads())
        .map_err(|e| temp_fault(io::Error::other(e)))?;
    let mut buf = vec![0u8; PIECE];
    loop {
        let n = read_full(entry, &mut buf)?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n]).map_err(temp_fault)?;
    }
    let (out, digest, size) = enc.finish().map_err(temp_fault)?.finish();
    let file = out.into_inner().map_err(|e| temp_fault(e.into_error()))?;
    Ok(Gzipped {
        layer: layer.clone(),
        digest,
        size,
        file,
    })
}

/// Reads one blob and sends it on to its upload, holding back the last piece until the reader
/// ended (checked: see the module documentation); a read error is sent instead, so the upload
/// fails.
fn hand_over(entry: &mut dyn Read, to: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
    let send = |piece: io::Result<Bytes>| to.blocking_send(piece).map_err(|_| stopped());
    let mut held: Option<Bytes> = None;
    loop {
        let mut buf = vec![0u8; PIECE];
        let n = match read_full(entry, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = send(Err(io::Error::new(e.kind(), e.to_string())));
                return Err(e);
            }
        };
        if n == 0 {
            break;
        }
        buf.truncate(n);
        if let Some(h) = held.replace(Bytes::from(buf)) {
            send(Ok(h))?;
        }
    }
    if let Some(h) = held {
        send(Ok(h))?;
    }
    Ok(())
}

/// Fills `buf` as far as the reader goes.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The uploader stopped taking data (its request failed); its own error says why.
fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that gives `data`, then fails where its end would be (as the checked bundle
    /// source does when a blob did not match).
    struct FailsAtEnd<'a>(&'a [u8]);

    impl Read for FailsAtEnd<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() && !buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "digest mismatch",
                ));
            }
            self.0.read(buf)
        }
    }

    fn received(mut rx: mpsc::Receiver<io::Result<Bytes>>) -> (Vec<u8>, Option<io::Error>) {
        let mut got = Vec::new();
        while let Some(p) = rx.blocking_recv() {
            match p {
                Ok(b) => got.extend_from_slice(&b),
                Err(e) => return (got, Some(e)),
            }
        }
        (got, None)
    }

    #[test]
    fn a_blob_whose_reader_fails_at_its_end_is_never_completed() {
        let good: Vec<u8> = (0..3 * PIECE + 17).map(|i| i as u8).collect();
        let (tx, rx) = mpsc::channel(64);
        hand_over(&mut &good[..], &tx).unwrap();
        drop(tx);
        let (got, err) = received(rx);
        assert_eq!(got, good);
        assert!(err.is_none());

        let (tx, rx) = mpsc::channel(64);
        let e = hand_over(&mut FailsAtEnd(&good), &tx).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        drop(tx);
        let (got, err) = received(rx);
        // The upload gets the error before the last piece: it can never complete the blob.
        assert!(
            got.len() < good.len(),
            "{} of {} bytes sent",
            got.len(),
            good.len()
        );
        assert!(err.is_some(), "the upload must end in an error");
    }
}
