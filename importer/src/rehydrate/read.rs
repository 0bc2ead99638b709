//! Pass 1 over the bundle: its images (the engine's [`scan`](partial_common::archive::scan)) and
//! the names of the entries it carries, from one read of the verified stream. The engine's strict
//! tar reader walks the entries while a tee feeds the same bytes to the scanner on another
//! thread; the reader goes on to the very end, so every volume's hashes are checked.

use crate::errors::{bad_bundle, verify_failed};
use anyhow::{anyhow, Result};
use partial_common::archive::entries::{clean_name, TarReader};
use partial_common::archive::{self, ArchiveIndex};
use std::collections::BTreeSet;
use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// The bundle's images and the (cleaned) names of all its entries. `label` names the bundle in
/// errors.
pub fn read_bundle(
    stream: Box<dyn Read + Send>,
    label: &str,
) -> Result<(ArchiveIndex, BTreeSet<String>)> {
    let (tx, rx) = sync_channel::<Vec<u8>>(4);
    let scanner = std::thread::spawn(move || {
        archive::scan(ChanRead {
            rx,
            cur: Vec::new(),
            pos: 0,
        })
    });
    let names = entry_names(Tee { inner: stream, tx }, label);
    // The scanner sees the end of its input once the tee (moved into the reader) is dropped.
    let scanned = scanner
        .join()
        .map_err(|_| anyhow!("the bundle scanner thread panicked"))?;
    // A read error (a hash mismatch) explains a failed scan better than the scan's own error.
    let names = names?;
    let index = scanned.map_err(|e| verify_failed(format!("bundle {label}: {e}")))?;
    Ok((index, names))
}

fn entry_names(stream: impl Read, label: &str) -> Result<BTreeSet<String>> {
    let mut r = TarReader::new(stream);
    let mut names = BTreeSet::new();
    while let Some(head) = r.next_entry().map_err(|e| bad_bundle(label, e))? {
        names.insert(clean_name(&head.name).map_err(|e| bad_bundle(label, e))?);
    }
    Ok(names)
}

/// Passes reads through and sends a copy of every byte to the scanner.
struct Tee {
    inner: Box<dyn Read + Send>,
    tx: SyncSender<Vec<u8>>,
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

/// The scanner's input: the chunks the tee sent, ending when the tee is dropped.
struct ChanRead {
    rx: Receiver<Vec<u8>>,
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
