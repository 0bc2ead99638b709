//! The rebuilt stream: the bundle's plain tar with each delta entry (`blobs/sha256/<delta
//! digest>`) replaced by the layer it rebuilds (`blobs/sha256/<diffID>`, the name the bundle's
//! `manifest.json` and OCI manifests give it), decoded while it streams. Every other entry passes
//! through byte for byte, so the result is the plain archive a `docker load` accepts.
//!
//! Why it checks so much on the way: the consumer (the upload) commits the load when the stream
//! ends cleanly. The decoder checks each rebuilt layer's size and diffID, the delta's own bytes are
//! hashed against the signed manifest, and a delta entry missing, doubled or unlisted is refused;
//! any failure reaches the consumer as an error in place of the end (see [`partial_common::pipe`]).

use super::references::References;
use super::DeltaLayer;
use crate::errors::{bad_bundle, verify_failed};
use anyhow::{anyhow, Context, Result};
use partial_common::archive::entries::{clean_name, role_of, EntryHead, EntryRole};
use partial_common::archive::entries::{TarReader, TarWriter};
use partial_common::delta::{self, format::MAGIC, DeltaError};
use partial_common::exit;
use partial_common::pipe;
use partial_common::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

/// The bundle's plain tar `input` (`label` names the bundle in errors) with every delta of
/// `layers` rebuilt from `refs`, produced on its own thread. Reading it yields an error, never a
/// clean end, when anything fails.
pub fn rebuilt_stream(
    input: Box<dyn Read + Send>,
    label: String,
    layers: Vec<DeltaLayer>,
    refs: References,
) -> Result<Box<dyn Read + Send>> {
    let r = pipe::spawn("layer-rebuild", move |w| {
        rebuild(input, &label, &layers, refs, w)
            .map(|_| ())
            .map_err(to_io)
    })
    .context("starting the layer rebuild thread")?;
    Ok(Box::new(r))
}

/// An error for the pipe: a verification failure (exit 3) keeps kind `InvalidData`, which the
/// upload and the tar readers report as the bundle's fault; the whole chain is the message.
fn to_io(e: anyhow::Error) -> io::Error {
    let kind = match exit::code_of(e.chain()) {
        exit::VERIFY => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{e:#}"))
}

/// Writes the rebuilt tar of `input` to `out`; returns the number of delta layers rebuilt.
pub fn rebuild(
    input: impl Read,
    label: &str,
    layers: &[DeltaLayer],
    mut refs: References,
    out: impl Write,
) -> Result<usize> {
    let berr = |e| bad_bundle(label, e);
    let by_digest: BTreeMap<&Digest, &DeltaLayer> =
        layers.iter().map(|l| (&l.delta.digest, l)).collect();
    let targets: BTreeSet<&Digest> = layers.iter().map(|l| &l.target).collect();
    let mut seen: BTreeSet<&Digest> = BTreeSet::new();
    let mut written: BTreeSet<&Digest> = BTreeSet::new();
    let mut r = TarReader::new(input);
    let mut w = TarWriter::new(out);
    while let Some(head) = r.next_entry().map_err(berr)? {
        let name = clean_name(&head.name).map_err(berr)?;
        let blob = match role_of(&name) {
            EntryRole::Blob(d) if head.is_file() => Some(d),
            _ => None,
        };
        if let Some(d) = &blob {
            if let Some(layer) = by_digest.get(d) {
                if !seen.insert(&layer.delta.digest) {
                    return Err(verify_failed(format!(
                        "bundle {label}: the delta entry {name} appears twice"
                    )));
                }
                let write = written.insert(&layer.target);
                rebuild_layer(&mut r, &head, layer, &mut refs, &mut w, write, label)?;
                continue;
            }
            if targets.contains(d) {
                return Err(verify_failed(format!(
                    "bundle {label}: layer {d} is carried both whole ({name}) and as a delta"
                )));
            }
        }
        copy_entry(&mut r, &head, &name, blob.is_some(), &mut w, label)?;
    }
    if let Some(l) = layers.iter().find(|l| !seen.contains(&l.delta.digest)) {
        return Err(verify_failed(format!(
            "bundle {label}: the delta of layer {} (entry blobs/sha256/{}) is missing",
            l.target,
            l.delta.digest.hex()
        )));
    }
    w.finish().map_err(write_err)?;
    Ok(seen.len())
}

fn write_err(e: partial_common::archive::ArchiveError) -> anyhow::Error {
    anyhow!(e).context("writing the rebuilt stream")
}

/// Copies one entry as it is. A blob is first checked not to be a layer delta the manifest does
/// not list (it could not load, and the signed manifest would not say what it rebuilds).
fn copy_entry<R: Read, W: Write>(
    r: &mut TarReader<R>,
    head: &EntryHead,
    name: &str,
    blob: bool,
    w: &mut TarWriter<W>,
    label: &str,
) -> Result<()> {
    let berr = |e| bad_bundle(label, e);
    w.write_raw(&head.raw).map_err(write_err)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut first = true;
    loop {
        let want = if first && blob {
            MAGIC.len()
        } else {
            buf.len()
        };
        let n = read_full(&mut r.data(), &mut buf[..want]).map_err(|e| berr(r.map_data_err(e)))?;
        if n == 0 {
            break;
        }
        if first && blob && buf[..n] == MAGIC {
            return Err(verify_failed(format!(
                "bundle {label}: entry {name} is a layer delta that the manifest does not list"
            )));
        }
        first = false;
        w.write_raw(&buf[..n]).map_err(write_err)?;
    }
    w.pad(head.size).map_err(write_err)?;
    Ok(())
}

/// Reads until `buf` is full or the data ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The header blocks of the rebuilt layer entry `blobs/sha256/<diffID hex>` of `size` bytes
/// (a base-256 size field from 8 GiB on, as the `tar` crate and Go's reader handle it).
pub fn layer_header<W: Write>(w: &mut TarWriter<W>, diff_id: &Digest, size: u64) -> Result<()> {
    w.begin_file(&format!("blobs/sha256/{}", diff_id.hex()), size)
        .map_err(write_err)
}

/// Replaces the delta entry `head` (data next in `r`) with the layer it rebuilds (or, when that
/// layer was already written by another delta, only checks it: `write` false).
fn rebuild_layer<R: Read, W: Write>(
    r: &mut TarReader<R>,
    head: &EntryHead,
    layer: &DeltaLayer,
    refs: &mut References,
    w: &mut TarWriter<W>,
    write: bool,
    label: &str,
) -> Result<()> {
    let (target, d) = (&layer.target, &layer.delta);
    let what = format!(
        "bundle {label}: layer {target} (delta blobs/sha256/{})",
        d.digest.hex()
    );
    if head.size != d.size {
        return Err(verify_failed(format!(
            "{what}: the delta is {} bytes, the manifest says {}",
            head.size, d.size
        )));
    }
    let reference = refs.get_mut(&d.reference_diff_id).ok_or_else(|| {
        anyhow!(
            "{what}: its reference layer {} was not read from the daemon",
            d.reference_diff_id
        )
    })?;
    if write {
        layer_header(w, target, d.target_size)?;
    }
    let mut delta = ShaReader {
        inner: r.data(),
        sha: Sha256::new(),
        count: 0,
        err: None,
    };
    let mut sink = io::sink();
    let out: &mut dyn Write = if write { &mut *w } else { &mut sink };
    let decoded = delta::decode(
        &mut delta,
        reference,
        &d.reference_diff_id,
        out,
        Some(target),
    );
    let (sha, count, read_err) = (delta.sha, delta.count, delta.err);
    if let Err(e) = decoded {
        return Err(match (e, read_err) {
            // The bundle stream failed under the delta (a volume's hash, a cut): its own error.
            (_, Some(e)) => bad_bundle(label, r.map_data_err(e)),
            (DeltaError::WriteOutput(e), _) => anyhow!(e).context("writing the rebuilt stream"),
            (DeltaError::ReadReference(e), _) => anyhow!(e).context(format!(
                "{what}: reading the reference layer {} from its temporary file",
                d.reference_diff_id
            )),
            (e, None) => verify_failed(format!("{what}: {e}")),
        });
    }
    let digest = Digest::from_sha256(sha.finalize().into());
    if count != d.size || digest != d.digest {
        return Err(verify_failed(format!(
            "{what}: the delta's bytes ({count} bytes, sha256 {digest}) do not match the manifest \
             ({} bytes, {})",
            d.size, d.digest
        )));
    }
    if write {
        w.pad(d.target_size).map_err(write_err)?;
    }
    Ok(())
}

/// Hashes and counts the delta's bytes as the decoder reads them; keeps a read error (the
/// bundle's) so it is not mistaken for a bad delta.
struct ShaReader<R> {
    inner: R,
    sha: Sha256,
    count: u64,
    err: Option<io::Error>,
}

impl<R: Read> Read for ShaReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.sha.update(&buf[..n]);
                self.count += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.err = Some(e);
                Err(copy)
            }
        }
    }
}
