//! The one pass over the bundle: its tar stream, read through the verifying volume reader on a
//! blocking thread, hands every blob the registry lacks to the uploader as it passes, and hashes
//! every config and carried layer against the digest it is named by. The last piece of each
//! blob is held back until its hash matched, so the registry never completes a blob that did not
//! verify; a volume whose hash fails ends the pass with an error (exit 3) before any manifest is
//! pushed. Uploads are one at a time, in stream order (the bundle is read once).

use crate::bundle::Bundle;
use crate::bundle_reader;
use crate::errors::verify_failed;
use crate::registry_connect::registry_err;
use anyhow::{anyhow, Result};
use bytes::Bytes;
use indicatif::ProgressBar;
use partial_common::registry::{MountOutcome, Registry};
use partial_common::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use tokio::sync::mpsc;

/// Size of the pieces a blob is handed over in.
const PIECE: usize = 256 << 10;

/// One blob to upload, its content following on `data`.
struct Item {
    digest: Digest,
    size: u64,
    data: mpsc::Receiver<io::Result<Bytes>>,
}

/// What the pass found: the size of every expected blob, and what was uploaded.
#[derive(Debug, Default)]
pub struct Pass {
    pub sizes: HashMap<Digest, u64>,
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
}

/// Reads the bundle once; `expected` are the blobs to hash (configs, carried layers), `missing`
/// those to upload, each with the repositories lacking it (uploaded to the first, mounted from
/// there into the others).
pub async fn pass(
    registry: &Registry,
    bundle: &Bundle,
    expected: HashSet<Digest>,
    missing: HashMap<Digest, Vec<String>>,
    bar: ProgressBar,
) -> Result<Pass> {
    let reader = bundle_reader::tar_stream(bundle, bar)?;
    let wanted: HashSet<Digest> = missing.keys().cloned().collect();
    let (tx, mut rx) = mpsc::channel::<Item>(1);
    let producer = tokio::task::spawn_blocking(move || produce(reader, &expected, &wanted, &tx));
    let mut out = Pass::default();
    let mut failed = None;
    while let Some(item) = rx.recv().await {
        let repos = missing.get(&item.digest).cloned().unwrap_or_default();
        match upload(registry, item, &repos).await {
            Ok(bytes) => {
                out.uploaded_blobs += 1;
                out.uploaded_bytes += bytes;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
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
        (Err(e), None) => Err(anyhow!(e).context(format!("reading the bundle {}", bundle.name()))),
        (Ok(sizes), None) => {
            out.sizes = sizes;
            Ok(out)
        }
    }
}

/// A read error that says the bundle is bad (a hash mismatch, corrupt compression, a malformed
/// tar), as opposed to a file that is gone or unreadable, or the uploader having stopped.
fn is_bundle_fault(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied | io::ErrorKind::BrokenPipe
    )
}

/// Uploads one blob to the first of `repos`, then mounts it into the others; returns the bytes
/// sent.
async fn upload(registry: &Registry, item: Item, repos: &[String]) -> Result<u64> {
    let Some((first, others)) = repos.split_first() else {
        return Err(anyhow!("blob {} has no repository to go to", item.digest));
    };
    let mut data = item.data;
    let body = tokio_util::io::StreamReader::new(futures_util::stream::poll_fn(move |cx| {
        data.poll_recv(cx)
    }));
    let session = registry.start_upload(first).await.map_err(registry_err)?;
    registry
        .upload_monolithic(session, &item.digest, item.size, body)
        .await
        .map_err(registry_err)?;
    for repo in others {
        if let MountOutcome::NotMounted(s) = registry
            .mount_blob(repo, &item.digest, first)
            .await
            .map_err(registry_err)?
        {
            registry.cancel_upload(s).await;
            return Err(anyhow!(
                "the registry {} did not mount blob {} from {first} into {repo}",
                registry.name(),
                item.digest
            ));
        }
    }
    Ok(item.size)
}

/// The digest a tar entry `blobs/sha256/<hex>` is named by.
fn blob_name(path: &str) -> Option<Digest> {
    let hex = path
        .trim_start_matches("./")
        .strip_prefix("blobs/sha256/")?;
    Digest::from_hex(hex).ok()
}

/// The blocking side: walks the tar, hashes expected blobs, sends the wanted ones. Returns the
/// sizes of the expected blobs; every one must be there.
fn produce(
    reader: Box<dyn Read + Send>,
    expected: &HashSet<Digest>,
    wanted: &HashSet<Digest>,
    tx: &mpsc::Sender<Item>,
) -> io::Result<HashMap<Digest, u64>> {
    let mut archive = tar::Archive::new(reader);
    let mut sizes = HashMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some(digest) = blob_name(&path).filter(|d| expected.contains(d)) else {
            continue;
        };
        if sizes.contains_key(&digest) {
            continue;
        }
        let size = entry.size();
        if wanted.contains(&digest) {
            let (dtx, drx) = mpsc::channel(4);
            let item = Item {
                digest: digest.clone(),
                size,
                data: drx,
            };
            tx.blocking_send(item).map_err(|_| stopped())?;
            hand_over(&mut entry, &digest, Some(&dtx))?;
        } else {
            hand_over(&mut entry, &digest, None)?;
        }
        sizes.insert(digest, size);
    }
    // The end of the stream: every volume's and the whole bundle's hashes matched.
    let absent: Vec<String> = expected
        .iter()
        .filter(|d| !sizes.contains_key(*d))
        .map(|d| d.to_string())
        .collect();
    if !absent.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the bundle lacks blob(s) its manifest carries: {}",
                absent.join(", ")
            ),
        ));
    }
    Ok(sizes)
}

/// Reads one blob, hashing it; with `to`, sends it on, holding back the last piece until the
/// hash matched (a mismatch or read error is sent instead, so the upload fails).
fn hand_over(
    entry: &mut impl Read,
    digest: &Digest,
    to: Option<&mpsc::Sender<io::Result<Bytes>>>,
) -> io::Result<()> {
    let send = |piece: io::Result<Bytes>| match to {
        Some(tx) => tx.blocking_send(piece).map_err(|_| stopped()),
        None => Ok(()),
    };
    let mut hash = Sha256::new();
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
        hash.update(&buf);
        if let Some(h) = held.replace(Bytes::from(buf)) {
            send(Ok(h))?;
        }
    }
    let actual = Digest::from_sha256(hash.finalize().into());
    if &actual != digest {
        let msg = format!("blob {digest} of the bundle hashes to {actual}");
        let _ = send(Err(io::Error::new(io::ErrorKind::InvalidData, msg.clone())));
        return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
    }
    if let Some(h) = held {
        send(Ok(h))?;
    }
    Ok(())
}

/// Fills `buf` as far as the reader goes.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

    #[test]
    fn blobs_are_named_by_their_digest() {
        let d = Digest::of_bytes(b"x");
        assert_eq!(
            blob_name(&format!("blobs/sha256/{}", d.hex())),
            Some(d.clone())
        );
        assert_eq!(blob_name(&format!("./blobs/sha256/{}", d.hex())), Some(d));
        assert_eq!(blob_name("manifest.json"), None);
        assert_eq!(blob_name("blobs/sha256/zz"), None);
    }

    #[test]
    fn a_blob_that_does_not_hash_to_its_name_is_never_completed() {
        let good = b"layer bytes".to_vec();
        let d = Digest::of_bytes(&good);
        let (tx, mut rx) = mpsc::channel(64);
        hand_over(&mut &good[..], &d, Some(&tx)).unwrap();
        drop(tx);
        let mut got = Vec::new();
        while let Some(p) = rx.blocking_recv() {
            got.extend_from_slice(&p.unwrap());
        }
        assert_eq!(got, good);

        let (tx, mut rx) = mpsc::channel(64);
        let e = hand_over(&mut &b"tampered"[..], &d, Some(&tx)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        drop(tx);
        let mut last = None;
        while let Some(p) = rx.blocking_recv() {
            last = Some(p);
        }
        assert!(
            matches!(last, Some(Err(_))),
            "the upload must end in an error"
        );
    }
}
