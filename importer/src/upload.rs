//! Uploading an archive to `POST /images/load` so that a bad one loads nothing: the last chunk
//! is held back until the reader has ended cleanly (every hash matched), and a read error aborts
//! the request, so the daemon commits nothing. Decides which side to blame when it fails. What it
//! reads: the pipe of the daemon destination (`crate::daemon_dest`), or the complete archive a
//! rehydrating load wrote.

use crate::errors::{daemon_err, verify_failed};
use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use indicatif::ProgressBar;
use partial_common::daemon::Daemon;
use partial_common::exit::{self, Coded};
use std::io::{self, Read};
use std::time::Duration;
use tokio::sync::mpsc;

/// Chunk size of the upload; the last chunk is held back until every hash has been checked.
const CHUNK: usize = 1 << 20;

/// How an upload ended: how reading the archive went (`Ok`: it ended cleanly and all of it was
/// sent), and the daemon's answer. [`upload_outcome`] judges the two.
pub struct Uploaded {
    pub read: io::Result<()>,
    pub loaded: Result<Vec<String>, partial_common::daemon::DaemonError>,
}

impl Uploaded {
    /// Whether the archive went whole and the daemon loaded it.
    pub fn is_clean(&self) -> bool {
        self.read.is_ok() && self.loaded.is_ok()
    }
}

/// Uploads `reader` to `POST /images/load`, holding back the last chunk until `reader` has
/// ended cleanly; any read error aborts the upload so the daemon loads nothing.
pub async fn upload(
    daemon: &Daemon,
    reader: Box<dyn Read + Send>,
    status: ProgressBar,
) -> Result<Vec<String>> {
    let u = run(daemon, reader, status).await?;
    upload_outcome(u.read, u.loaded)
}

/// [`upload`], unjudged: how it ended. Fails only when the reading thread did.
pub async fn run(
    daemon: &Daemon,
    mut reader: Box<dyn Read + Send>,
    status: ProgressBar,
) -> Result<Uploaded> {
    let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let producer = tokio::task::spawn_blocking(move || forward(&mut reader, &tx));
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let loaded = daemon
        .load(body, |line| status.set_message(line.to_string()))
        .await;
    let read = if loaded.is_err() {
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
    Ok(Uploaded { read, loaded })
}

/// The reading side of an upload: `reader` in whole chunks into `tx`, the last one held back
/// until `reader` ended cleanly; a read error goes in its place (aborting the request).
fn forward(reader: &mut dyn Read, tx: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
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
}

/// How long a failed upload waits for the reading thread's own verdict.
pub const PRODUCER_GRACE: Duration = Duration::from_secs(2);

/// The reading side's error when the request dropped the body: the daemon (or the connection to it)
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
pub fn upload_outcome(
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
