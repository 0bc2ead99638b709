//! Bridges the daemon's asynchronous export stream to the synchronous archive filter: a task
//! pulls chunks (with a bound on silence) into a small channel, and [`ChannelReader`] reads them
//! as `std::io::Read` on a blocking thread. The channel holds a few chunks, so memory stays flat.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io::{self, Read};
use std::time::Duration;
use tokio::sync::mpsc;

/// The error a [`ChannelReader`] returns (kind `TimedOut`) when the stream fell silent for longer
/// than its idle bound after it had started. Kept as the `io::Error`'s inner error so that callers
/// can tell a stalled source from other I/O errors (e.g. for the exit code).
#[derive(Debug, thiserror::Error)]
#[error("the daemon sent nothing for {secs} s in the middle of the export")]
pub struct Stalled {
    pub secs: u64,
}

/// Chunks buffered between the daemon's socket and the filter: enough that the daemon keeps
/// streaming while a compressor catches up, few enough (chunks are tens of KiB) to keep memory flat.
const CHUNKS_IN_FLIGHT: usize = 8;

/// A `Read` over chunks sent by an async task.
pub struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    done: bool,
}

impl ChannelReader {
    /// Spawns a task draining `stream` into the reader. Once the first chunk has arrived, a
    /// silence longer than `idle` is an error (a hung daemon must not hang the tool forever);
    /// before it, the daemon may take as long as the request timeout allows to stage the export.
    /// A stream error is returned as an `io::Error` (kind `Other`) wrapping the error itself, so
    /// callers can still find it with `get_ref()` and `downcast_ref`.
    pub fn spawn<S, E>(stream: S, idle: Duration) -> Self
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            let mut started = false;
            loop {
                let next = if started {
                    match tokio::time::timeout(idle, stream.next()).await {
                        Ok(n) => n,
                        Err(_) => {
                            let _ = tx
                                .send(Err(io::Error::new(
                                    io::ErrorKind::TimedOut,
                                    Stalled {
                                        secs: idle.as_secs(),
                                    },
                                )))
                                .await;
                            return;
                        }
                    }
                } else {
                    stream.next().await
                };
                started = true;
                match next {
                    None => return,
                    Some(Ok(b)) => {
                        if tx.send(Ok(b)).await.is_err() {
                            return; // the reader gave up
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Err(io::Error::other(e))).await;
                        return;
                    }
                }
            }
        });
        ChannelReader {
            rx,
            current: Bytes::new(),
            done: false,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                None => {
                    self.done = true;
                    return Ok(0);
                }
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `r` to its end on a blocking thread, as the filter does.
    async fn read_all(mut r: ChannelReader) -> io::Result<Vec<u8>> {
        tokio::task::spawn_blocking(move || {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_chunks_then_reports_errors_and_silence() {
        let chunks: Vec<Result<Bytes, String>> = vec![Ok(Bytes::from("ab")), Ok(Bytes::from("cd"))];
        let r = ChannelReader::spawn(futures_util::stream::iter(chunks), Duration::from_secs(5));
        assert_eq!(read_all(r).await.unwrap(), b"abcd");

        let chunks: Vec<Result<Bytes, String>> =
            vec![Ok(Bytes::from("ab")), Err("daemon went away".to_string())];
        let r = ChannelReader::spawn(futures_util::stream::iter(chunks), Duration::from_secs(5));
        let e = read_all(r).await.unwrap_err();
        assert!(e.to_string().contains("daemon went away"));

        // One chunk, then silence: the idle bound fires.
        let s = futures_util::stream::iter(vec![Ok::<_, String>(Bytes::from("x"))])
            .chain(futures_util::stream::pending());
        let r = ChannelReader::spawn(s, Duration::from_millis(100));
        let e = read_all(r).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.get_ref().is_some_and(|i| i.is::<Stalled>()), "{e:?}");
        assert!(e.to_string().contains("sent nothing for 0 s"), "{e}");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("typed source error")]
    struct Typed;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stream_errors_keep_their_type() {
        let chunks: Vec<Result<Bytes, Typed>> = vec![Ok(Bytes::from("ab")), Err(Typed)];
        let r = ChannelReader::spawn(futures_util::stream::iter(chunks), Duration::from_secs(5));
        let e = read_all(r).await.unwrap_err();
        assert!(e.get_ref().is_some_and(|i| i.is::<Typed>()), "{e:?}");
        assert_eq!(e.to_string(), "typed source error");
    }
}
