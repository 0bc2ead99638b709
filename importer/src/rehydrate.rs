//! `partial-load rehydrate`: a complete `docker save` archive from the bundle plus the base
//! layers this daemon already holds. The daemon's own export of the images holding those chains
//! is read once, and only the layers the bundle lacks are spooled to a temporary folder (checked
//! against their digests); then the verified bundle is copied entry by entry and the missing
//! layer entries are added under the names the bundle's `manifest.json` expects.

use crate::base;
use crate::bundle::{self, verify_failed, Bundle};
use crate::cli::RehydrateArgs;
use crate::load::{connect, upload_stream};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use partial_common::archive::{self, ArchiveIndex};
use partial_common::daemon::{Daemon, ImageMeta};
use partial_common::digest::{is_sha256_hex, Digest, Sha256Writer};
use partial_common::plan::Layout;
use partial_common::progress;
use partial_common::stream::ChannelReader;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

pub async fn run(args: RehydrateArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    if args.output.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite)",
            args.output.display()
        );
    }
    let daemon = connect(&args.daemon).await?;
    let local = base::check(&daemon, &bundle.manifest).await?;
    // Both passes over the bundle move the bar (the daemon's export between them does not).
    let bar = progress::bytes("rehydrating", Some(2 * bundle.manifest.bundle.size));
    build(&daemon, &bundle, &local, &args.output, &bar).await?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {}: a complete archive of {} image(s) that loads into a daemon without the base",
        args.output.display(),
        bundle.manifest.images.len()
    );
    Ok(())
}

/// Which layer entries the bundle lacks, and the digest of the content each must hold.
fn missing_entries(index: &ArchiveIndex, present: &BTreeSet<String>) -> BTreeMap<String, Digest> {
    let mut out = BTreeMap::new();
    for img in &index.images {
        for (pos, entry) in img.layer_entries.iter().enumerate() {
            if present.contains(entry) {
                continue;
            }
            let key = match index.layout {
                // Compressed blobs: the content is named by the blob's own digest.
                Layout::Containerd => entry
                    .strip_prefix("blobs/sha256/")
                    .and_then(|h| Digest::from_hex(h).ok()),
                _ => img.source.diff_ids.get(pos).cloned(),
            };
            if let Some(k) = key {
                out.insert(entry.clone(), k);
            }
        }
    }
    out
}

/// Writes the complete archive to `out_path` (atomically). `local` is the daemon's images as
/// the base check (`base::check`) returned them, which must have passed.
pub async fn build(
    daemon: &Daemon,
    bundle: &Bundle,
    local: &[ImageMeta],
    out_path: &Path,
    bar: &ProgressBar,
) -> Result<()> {
    // Pass 1 over the bundle: verify it and learn its layout and entries.
    let stream = partial_common::codec::decompress(upload_stream(bundle, bar.clone())?)
        .context("reading the bundle")?;
    let (index, present) = tokio::task::spawn_blocking(move || scan_with_names(stream))
        .await
        .context("the scan thread failed")??;
    let needed = missing_entries(&index, &present);
    let keys: BTreeSet<Digest> = needed.values().cloned().collect();

    // The daemon's own export of images that hold the required chains.
    let names = images_holding(&bundle.manifest.required_base, local)?;
    let spool = tempfile::Builder::new()
        .prefix(".partial-load-spool-")
        .tempdir_in(
            out_path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
        )
        .context("creating a spool folder")?;
    if !keys.is_empty() {
        let stream = daemon.export(&names);
        let reader = ChannelReader::spawn(stream, std::time::Duration::from_secs(600));
        let dir = spool.path().to_path_buf();
        let keys2 = keys.clone();
        let found = tokio::task::spawn_blocking(move || spool_layers(reader, &dir, &keys2))
            .await
            .context("the spool thread failed")??;
        if let Some(missing) = keys.iter().find(|k| !found.contains(*k)) {
            bail!(
                "the daemon's export of {} did not contain layer {missing}",
                names.join(", ")
            );
        }
    }

    // Pass 2: copy the bundle and add the missing layers.
    let stream = partial_common::codec::decompress(upload_stream(bundle, bar.clone())?)
        .context("reading the bundle")?;
    let out_path = out_path.to_path_buf();
    let dir = spool.path().to_path_buf();
    tokio::task::spawn_blocking(move || write_complete(stream, &out_path, &dir, &needed))
        .await
        .context("the writer thread failed")??;
    Ok(())
}

/// Scans a (verified) stream, also collecting every entry name.
fn scan_with_names(stream: Box<dyn Read + Send>) -> Result<(ArchiveIndex, BTreeSet<String>)> {
    // Two things from one pass: names (here) and metadata (the engine's scan, on a tee).
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let scanner = std::thread::spawn(move || {
        archive::scan(ChanRead {
            rx,
            cur: Vec::new(),
            pos: 0,
        })
    });
    let mut names = BTreeSet::new();
    let tee = Tee { inner: stream, tx };
    let mut ar = tar::Archive::new(tee);
    let entries = ar
        .entries()
        .map_err(|e| verify_failed(format!("bundle: {e}")))?;
    for e in entries {
        let e = e.map_err(|e| read_err("bundle", e))?;
        let p = e.path().map_err(|e| read_err("bundle", e))?;
        names.insert(p.to_string_lossy().trim_start_matches("./").to_string());
    }
    // Drain the rest (tar trailer) so the scanner sees the whole stream.
    let mut inner = ar.into_inner();
    io::copy(&mut inner, &mut io::sink()).map_err(|e| read_err("bundle", e))?;
    drop(inner);
    let index = scanner
        .join()
        .map_err(|_| anyhow!("the scanner thread panicked"))?
        .context("bundle")?;
    Ok((index, names))
}

fn read_err(what: &str, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::InvalidData {
        verify_failed(format!("{what}: {e}"))
    } else {
        anyhow!(e).context(format!("reading {what}"))
    }
}

struct Tee {
    inner: Box<dyn Read + Send>,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            // The scanner may have stopped early (an error it will report); ignore a closed channel.
            let _ = self.tx.send(buf[..n].to_vec());
        }
        Ok(n)
    }
}

struct ChanRead {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(v) => {
                    self.cur = v;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Local images that together hold every required chain (one per chain, reusing choices).
fn images_holding(
    required: &[partial_common::manifest::RequiredBase],
    local: &[ImageMeta],
) -> Result<Vec<String>> {
    let mut chosen: Vec<&ImageMeta> = Vec::new();
    for r in required {
        if chosen.iter().any(|i| i.chain_ids.contains(&r.chain_id)) {
            continue;
        }
        // Prefer the image with the fewest layers above the chain (less to export).
        let best = local
            .iter()
            .filter(|i| i.chain_ids.contains(&r.chain_id))
            .min_by_key(|i| i.chain_ids.len())
            .ok_or_else(|| anyhow!("no local image holds chain {}", r.chain_id))?;
        chosen.push(best);
    }
    Ok(chosen.iter().map(|i| i.id.to_string()).collect())
}

/// Reads the daemon's export and keeps, in `dir`, each layer blob whose sha256 is in `keys`
/// (named by its hex). Returns the digests found.
fn spool_layers(
    reader: impl Read,
    dir: &Path,
    keys: &BTreeSet<Digest>,
) -> Result<BTreeSet<Digest>> {
    let mut found = BTreeSet::new();
    let mut ar = tar::Archive::new(reader);
    for (n, e) in ar
        .entries()
        .context("reading the daemon's export")?
        .enumerate()
    {
        let mut e = e.context("reading the daemon's export")?;
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = e
            .path()
            .context("reading the daemon's export")?
            .to_string_lossy()
            .to_string();
        let is_layer = name.ends_with("/layer.tar") || name.starts_with("blobs/sha256/");
        if !is_layer {
            continue;
        }
        // OCI blobs are named by their digest: skip those not needed without writing them.
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            if is_sha256_hex(hex) {
                if let Ok(d) = Digest::from_hex(hex) {
                    if !keys.contains(&d) || found.contains(&d) {
                        continue;
                    }
                }
            }
        }
        let tmp = dir.join(format!("part-{n}"));
        let f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut w = Sha256Writer::new(io::BufWriter::new(f));
        io::copy(&mut e, &mut w).with_context(|| format!("spooling {name}"))?;
        let (bw, digest, _) = w.finish();
        bw.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", tmp.display()))?;
        if keys.contains(&digest) && !found.contains(&digest) {
            std::fs::rename(&tmp, dir.join(digest.hex()))
                .with_context(|| format!("renaming {}", tmp.display()))?;
            found.insert(digest);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(found)
}

/// Copies the bundle's entries and appends the missing layers from `spool`.
fn write_complete(
    stream: Box<dyn Read + Send>,
    out_path: &Path,
    spool: &Path,
    needed: &BTreeMap<String, Digest>,
) -> Result<()> {
    let mut out = partial_common::output::AtomicFile::create(out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    {
        let mut builder = tar::Builder::new(&mut out);
        let mut ar = tar::Archive::new(stream);
        let mut trailing: Vec<(tar::Header, PathBuf, Vec<u8>)> = Vec::new();
        for e in ar.entries().map_err(|e| read_err("bundle", e))? {
            let mut e = e.map_err(|e| read_err("bundle", e))?;
            let path = e.path().map_err(|e| read_err("bundle", e))?.into_owned();
            let mut header = e.header().clone();
            let name = path.to_string_lossy().trim_start_matches("./").to_string();
            let top_meta = matches!(
                name.as_str(),
                "manifest.json" | "repositories" | "index.json" | "oci-layout"
            );
            match header.entry_type() {
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let target = e
                        .link_name()
                        .map_err(|e| read_err("bundle", e))?
                        .ok_or_else(|| {
                            verify_failed(format!("bundle: link {name} without target"))
                        })?
                        .into_owned();
                    builder
                        .append_link(&mut header, &path, &target)
                        .with_context(|| format!("writing {}", out_path.display()))?;
                }
                _ if top_meta => {
                    // Keep metadata last, after the layers added below, as docker save does.
                    let mut v = Vec::new();
                    e.read_to_end(&mut v).map_err(|e| read_err("bundle", e))?;
                    trailing.push((header, path, v));
                }
                _ => {
                    builder
                        .append_data(&mut header, &path, &mut e)
                        .map_err(|e| read_err("bundle", e))
                        .with_context(|| format!("writing {}", out_path.display()))?;
                }
            }
        }
        let mut added = BTreeSet::new();
        for (entry, digest) in needed {
            if !added.insert(entry.clone()) {
                continue;
            }
            let src = spool.join(digest.hex());
            let f = std::fs::File::open(&src)
                .with_context(|| format!("layer {digest} was not spooled"))?;
            let size = f.metadata()?.len();
            let mut h = tar::Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mtime(0);
            builder
                .append_data(&mut h, entry, io::BufReader::new(f))
                .with_context(|| format!("writing {} into {}", entry, out_path.display()))?;
        }
        for (mut h, p, v) in trailing {
            builder
                .append_data(&mut h, &p, &v[..])
                .with_context(|| format!("writing {}", out_path.display()))?;
        }
        builder
            .finish()
            .with_context(|| format!("writing {}", out_path.display()))?;
    }
    out.flush().ok();
    out.commit()
        .with_context(|| format!("renaming {}", out_path.display()))?;
    Ok(())
}
