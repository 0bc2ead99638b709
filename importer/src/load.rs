//! The checked load, in order: signature (bundle::open), base layers on the daemon, content
//! hashes checked while uploading (the end of the upload is held back until they match, so a bad
//! bundle is aborted before the daemon can commit anything), the daemon's load response, and a
//! final confirmation that every image exists with the expected ID and tags.

use crate::base;
use crate::bundle::{self, verify_failed, Bundle};
use crate::cli::{DaemonArgs, LoadArgs, VerifyArgs};
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use indicatif::ProgressBar;
use partial_common::daemon::{self, Daemon};
use partial_common::exit::{self, Coded};
use partial_common::progress;
use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

/// Chunk size of the upload; the last chunk is held back until every hash has been checked.
const CHUNK: usize = 1 << 20;

pub async fn connect(args: &DaemonArgs) -> Result<Daemon> {
    daemon::connect(args.host.as_deref(), Duration::from_secs(args.timeout))
        .await
        .map_err(|e| anyhow::Error::new(Coded::new(exit::DAEMON, e)))
}

fn daemon_err(e: partial_common::daemon::DaemonError) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::DAEMON, e))
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
pub fn upload_stream(bundle: &Bundle, bar: ProgressBar) -> Result<Box<dyn Read + Send>> {
    let r = Counting {
        inner: bundle.reader(),
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

/// Uploads `reader` to `POST /images/load`, holding back the last chunk until `reader` has
/// ended cleanly; any read error aborts the upload so the daemon loads nothing.
pub async fn upload(
    daemon: &Daemon,
    mut reader: Box<dyn Read + Send>,
    status: ProgressBar,
) -> Result<Vec<String>> {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let producer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut held: Option<Bytes> = None;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            // Fill whole chunks so the held-back tail is always a full chunk (or the whole rest).
            while filled < CHUNK {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let msg = e.to_string();
                        let _ = tx.blocking_send(Err(io::Error::new(e.kind(), msg)));
                        return Err(e);
                    }
                }
            }
            if filled == 0 {
                // Clean end: every hash matched. Release the tail.
                if let Some(h) = held.take() {
                    if tx.blocking_send(Ok(h)).is_err() {
                        return Err(stopped_reading());
                    }
                }
                return Ok(());
            }
            buf.truncate(filled);
            if let Some(h) = held.replace(Bytes::from(buf)) {
                if tx.blocking_send(Ok(h)).is_err() {
                    return Err(stopped_reading());
                }
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let loaded = daemon
        .load(body, |line| status.set_message(line.to_string()))
        .await;
    let produced = if loaded.is_err() {
        // The request has failed, but the connection may still hold the body: a hung daemon
        // stops reading without closing it, and the producer then waits in `blocking_send`
        // forever. It has nothing more to say after a moment (a verification failure ends it at
        // once); don't wait longer. The runtime's shutdown drops the connection and frees it.
        match tokio::time::timeout(PRODUCER_GRACE, producer).await {
            Ok(joined) => joined.context("the upload thread failed")?,
            Err(_) => Err(stopped_reading()),
        }
    } else {
        producer.await.context("the upload thread failed")?
    };
    upload_outcome(produced, loaded)
}

/// How long a failed upload waits for the reading thread's own verdict.
const PRODUCER_GRACE: Duration = Duration::from_secs(2);

/// The producer's error when the request dropped the body: the daemon (or the connection to it)
/// went away mid-upload. Not a problem of the bundle.
fn stopped_reading() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the daemon stopped reading the upload",
    )
}

/// Which side to blame when an upload ends: a verification failure explains an aborted upload
/// better than the daemon's side of it; a daemon that stopped reading (died, hung up) is a daemon
/// failure (exit 5) with the daemon's own error; other read errors are the bundle's.
fn upload_outcome(
    produced: io::Result<()>,
    loaded: Result<Vec<String>, partial_common::daemon::DaemonError>,
) -> Result<Vec<String>> {
    match (produced, loaded) {
        (Err(e), _) if e.kind() == io::ErrorKind::InvalidData => Err(verify_failed(format!(
            "{e}; the upload was aborted and nothing was loaded"
        ))),
        (Err(e), Err(d)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Err(daemon_err(d).context("the upload was cut off; nothing was loaded"))
        }
        (Err(e), Ok(_)) if e.kind() == io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(Coded::new(exit::DAEMON, e))
                .context("the upload was cut off; nothing was loaded"))
        }
        (Err(e), _) => Err(anyhow!(e).context("reading the bundle")),
        (Ok(()), loaded) => loaded.map_err(daemon_err),
    }
}

/// Every image of the manifest exists with the expected ID, and each tag points at it.
pub async fn confirm(daemon: &Daemon, bundle: &Bundle) -> Result<()> {
    for img in &bundle.manifest.images {
        let found = daemon.inspect(img.id.as_str()).await.map_err(daemon_err)?;
        match found {
            Some(m) if m.id == img.id => {}
            _ => {
                return Err(anyhow!(
                    "after the load, image {} is not on the daemon at {}",
                    img.id,
                    daemon.host
                ))
            }
        }
        for tag in &img.tags {
            match daemon.inspect(tag).await.map_err(daemon_err)? {
                Some(m) if m.id == img.id => {}
                Some(m) => {
                    return Err(anyhow!(
                        "after the load, tag {tag} points at {} instead of {}",
                        m.id,
                        img.id
                    ))
                }
                None => return Err(anyhow!("after the load, tag {tag} is missing")),
            }
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Outcome<'a> {
    manifest: String,
    signed_by: Option<&'a bundle::Signed>,
    images: Vec<ImageOut>,
    loaded: Vec<String>,
    verified: bool,
    /// The Helm charts the images were discovered in (manifest `charts`), when any.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    charts: &'a [partial_common::manifest::ChartEntry],
}

#[derive(serde::Serialize)]
struct ImageOut {
    id: String,
    tags: Vec<String>,
}

fn images_of(b: &Bundle) -> Vec<ImageOut> {
    b.manifest
        .images
        .iter()
        .map(|i| ImageOut {
            id: i.id.to_string(),
            tags: i.tags.clone(),
        })
        .collect()
}

pub async fn run_load(args: LoadArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    let series = crate::state::check(&args.sequence, &bundle)?; // rollback check (issue 14)
    let daemon = connect(&args.daemon).await?;
    let info = daemon.info().await.map_err(daemon_err)?;
    let local = base::check(&daemon, &bundle.manifest)
        .await
        .map_err(|e| series.explain(e))?; // names a missing bundle of the series (issue 14)
    let bar = progress::bytes("uploading", Some(bundle.manifest.bundle.size));
    let loaded = if info.containerd_store {
        // The containerd store cannot take a partial archive (see the docs): send the bundle
        // rehydrated with this daemon's own base layers.
        bar.set_message("rehydrating");
        let tmp = tempfile::Builder::new()
            .prefix(".partial-load-full-")
            .suffix(".tar")
            .tempfile_in(if bundle.dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &bundle.dir
            })
            .context("creating a temporary file for the complete archive")?;
        crate::rehydrate::build(&daemon, &bundle, &local, tmp.path(), &bar).await?;
        let f = std::fs::File::open(tmp.path()).context("reopening the complete archive")?;
        upload(&daemon, Box::new(io::BufReader::new(f)), bar.clone()).await?
    } else {
        let stream = upload_stream(&bundle, bar.clone())?;
        upload(&daemon, stream, bar.clone()).await?
    };
    bar.finish_and_clear();
    confirm(&daemon, &bundle).await?;
    series.record()?; // only after a successful load (issue 14)
    if args.bundle.json {
        let out = Outcome {
            manifest: bundle.manifest_path.display().to_string(),
            signed_by: bundle.signature.as_ref(),
            images: images_of(&bundle),
            loaded,
            verified: true,
            charts: &bundle.manifest.charts,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for img in &bundle.manifest.images {
            eprintln!(
                "loaded {} ({})",
                if img.tags.is_empty() {
                    "<untagged>".to_string()
                } else {
                    img.tags.join(", ")
                },
                img.id
            );
        }
        eprintln!(
            "verified {} and loaded {} image(s) into {}",
            bundle.manifest.bundle.name,
            bundle.manifest.images.len(),
            daemon.host
        );
    }
    Ok(())
}

pub async fn run_verify(args: VerifyArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    let series = crate::state::check(&args.sequence, &bundle)?; // read-only (issue 14)
    if !args.offline {
        let daemon = connect(&args.daemon).await?;
        base::check(&daemon, &bundle.manifest)
            .await
            .map_err(|e| series.explain(e))?; // (issue 14)
    }
    let bar = progress::bytes("verifying", Some(bundle.manifest.bundle.size));
    let b2 = bar.clone();
    let result = tokio::task::spawn_blocking(move || {
        bundle::verify_content(&bundle, |n| b2.set_position(n)).map(|_| bundle)
    })
    .await
    .context("the verify thread failed")?;
    bar.finish_and_clear();
    let bundle = result?;
    if args.bundle.json {
        let out = Outcome {
            manifest: bundle.manifest_path.display().to_string(),
            signed_by: bundle.signature.as_ref(),
            images: images_of(&bundle),
            loaded: vec![],
            verified: true,
            charts: &bundle.manifest.charts,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        eprintln!(
            "{}: signature{}, manifest and {} file(s) verified{}",
            bundle.manifest.bundle.name,
            match &bundle.signature {
                Some(s) => format!(" (key {})", s.key_id),
                None => " NOT CHECKED".to_string(),
            },
            bundle.manifest.bundle.volumes.len(),
            if args.offline {
                "; daemon not checked (--offline)"
            } else {
                "; the daemon has every base layer"
            }
        );
        for c in &bundle.manifest.charts {
            eprintln!("{}", chart_line(c));
        }
    }
    Ok(())
}

/// One chart of the manifest, for people.
fn chart_line(c: &partial_common::manifest::ChartEntry) -> String {
    format!(
        "{} {} {} ({}, {})",
        if c.excluded { "base chart" } else { "chart" },
        c.name,
        c.version,
        c.path,
        c.sha256
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::daemon::DaemonError;

    #[test]
    fn upload_outcome_blames_the_right_side() {
        let code = |r: Result<Vec<String>>| exit::code_of(r.unwrap_err().chain());
        let died = || Err(DaemonError::LoadFailed("connection reset".into()));
        // The daemon went away mid-upload: exit 5 with the daemon's error.
        let r = upload_outcome(Err(stopped_reading()), died());
        let msg = format!("{:#}", r.as_ref().unwrap_err());
        assert!(msg.contains("connection reset"), "{msg}");
        assert!(!msg.contains("reading the bundle"), "{msg}");
        assert_eq!(code(r), exit::DAEMON);
        assert_eq!(
            code(upload_outcome(Err(stopped_reading()), Ok(vec![]))),
            exit::DAEMON
        );
        // A hash mismatch wins over whatever the daemon said.
        let bad = io::Error::new(io::ErrorKind::InvalidData, "hash mismatch");
        assert_eq!(code(upload_outcome(Err(bad), died())), exit::VERIFY);
        // A bundle that cannot be read is not the daemon's fault.
        let gone = io::Error::new(io::ErrorKind::NotFound, "volume 2 is missing");
        let r = upload_outcome(Err(gone), died());
        assert!(format!("{:#}", r.as_ref().unwrap_err()).contains("reading the bundle"));
        assert_eq!(code(r), exit::FAILURE);
        // A clean upload: the daemon's answer decides.
        assert_eq!(code(upload_outcome(Ok(()), died())), exit::DAEMON);
        assert_eq!(upload_outcome(Ok(()), Ok(vec!["x".into()])).unwrap(), ["x"]);
    }
}
