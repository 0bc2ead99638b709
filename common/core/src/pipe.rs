//! A bounded in-process pipe from a producer to a reader that carries errors: the reader gets the
//! producer's error in place of the end of the stream, and an error (never a clean end) when the
//! producer stops without saying it finished (a panic, a dropped writer). Why: `partial-load`'s
//! upload commits a load when its reader ends cleanly, so a rebuild or a copy that fails must
//! never look like a finished archive. [`spawn`] runs the producer on a thread of its own;
//! [`pair`] leaves running it to the caller (the importer's daemon destination writes into it
//! from the copy; the export's diffID check reads it on its own thread). The one pipe between
//! threads of the workspace.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes gathered before a chunk is sent.
const CHUNK: usize = 256 << 10;
/// Chunks in flight: with [`CHUNK`], at most 2 MiB between the threads.
const IN_FLIGHT: usize = 8;

enum Msg {
    Data(Vec<u8>),
    End,
    Fail(io::Error),
}

/// Runs `produce` on a new thread writing into the returned reader's pipe: `Ok` ends the stream
/// cleanly, `Err` is what the reader gets instead of the end.
pub fn spawn<F>(name: &str, produce: F) -> io::Result<PipeReader>
where
    F: FnOnce(&mut PipeWriter) -> io::Result<()> + Send + 'static,
{
    let (mut w, r) = pair();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || match produce(&mut w) {
            Ok(()) => {
                let _ = w.end();
            }
            Err(e) => w.fail(e),
        })?;
    Ok(r)
}

/// A pipe whose writer the caller keeps: the reader ends cleanly only after
/// [`PipeWriter::finish`]; a writer dropped without it ends the reader with an error.
pub fn pair() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let w = PipeWriter {
        tx: Some(tx),
        buf: Vec::with_capacity(CHUNK),
    };
    let r = PipeReader {
        rx,
        current: Vec::new(),
        pos: 0,
        state: State::Open,
    };
    (w, r)
}

/// The producer's end. Its data reaches the reader in chunks of [`CHUNK`] bytes.
pub struct PipeWriter {
    tx: Option<SyncSender<Msg>>,
    buf: Vec<u8>,
}

fn reader_gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "the reader of the stream stopped",
    )
}

impl PipeWriter {
    fn send(&mut self, msg: Msg) -> io::Result<()> {
        match &self.tx {
            Some(tx) => tx.send(msg).map_err(|_| reader_gone()),
            None => Err(reader_gone()),
        }
    }

    fn send_buf(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.send(Msg::Data(chunk))
    }

    /// Sends what is buffered, then the clean end: the reader ends cleanly once it read it all.
    /// Fails when the reader went away first.
    pub fn finish(mut self) -> io::Result<()> {
        self.end()
    }

    fn end(&mut self) -> io::Result<()> {
        let sent = self.send_buf().and_then(|()| self.send(Msg::End));
        self.tx = None;
        sent
    }

    /// Sends the error in place of the end (the buffered bytes are dropped: they no longer matter).
    fn fail(&mut self, e: io::Error) {
        let _ = self.send(Msg::Fail(e));
        self.tx = None;
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send_buf()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Chunks are sent when full; the tail goes with the end.
        Ok(())
    }
}

#[derive(PartialEq)]
enum State {
    Open,
    Ended,
    Failed,
}

/// The consumer's end: a `Read` that ends only when the producer finished.
pub struct PipeReader {
    rx: Receiver<Msg>,
    current: Vec<u8>,
    pos: usize,
    state: State,
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.current.len() {
            match self.state {
                State::Ended => return Ok(0),
                State::Failed => return Err(io::Error::other("the stream failed earlier")),
                State::Open => {}
            }
            match self.rx.recv() {
                Ok(Msg::Data(v)) => {
                    self.current = v;
                    self.pos = 0;
                }
                Ok(Msg::End) => self.state = State::Ended,
                Ok(Msg::Fail(e)) => {
                    self.state = State::Failed;
                    return Err(e);
                }
                Err(_) => {
                    self.state = State::Failed;
                    return Err(io::Error::other(
                        "the stream's writer stopped without finishing",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut r: PipeReader) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    }

    #[test]
    fn data_then_a_clean_end() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let d2 = data.clone();
        let r = spawn("t", move |w| {
            for piece in d2.chunks(77_777) {
                w.write_all(piece)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(read_all(r).unwrap(), data);
    }

    #[test]
    fn an_error_replaces_the_end_and_a_panic_is_no_end_either() {
        let r = spawn("t", |w| {
            w.write_all(&[1u8; 600_000])?;
            Err(io::Error::new(io::ErrorKind::InvalidData, "layer x: bad"))
        })
        .unwrap();
        let e = read_all(r).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("layer x: bad"), "{e}");

        let r = spawn("t", |w| {
            w.write_all(b"partial")?;
            panic!("boom");
        })
        .unwrap();
        let e = read_all(r).unwrap_err();
        assert!(e.to_string().contains("without finishing"), "{e}");
    }

    #[test]
    fn a_kept_writer_ends_the_reader_cleanly_only_when_finished() {
        let (mut w, r) = pair();
        w.write_all(b"whole").unwrap();
        w.finish().unwrap();
        assert_eq!(read_all(r).unwrap(), b"whole");

        let (mut w, r) = pair();
        w.write_all(b"half").unwrap();
        drop(w);
        let e = read_all(r).unwrap_err();
        assert!(e.to_string().contains("without finishing"), "{e}");

        let (w, r) = pair();
        drop(r);
        let e = w.finish().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn a_reader_that_goes_away_stops_the_producer() {
        let (tx, rx) = sync_channel(1);
        let r = spawn("t", move |w| {
            let res = (0..1000).try_for_each(|_| w.write_all(&[0u8; CHUNK]));
            let _ = tx.send(res.is_err());
            res
        })
        .unwrap();
        drop(r);
        assert!(rx.recv().unwrap(), "the producer must see the reader gone");
    }
}
