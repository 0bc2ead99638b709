//! Pass 1 over the bundle: its images (the engine's [`scan`](partial_common::archive::scan)) and
//! the names of the entries it carries, from one read of the verified stream. The engine's strict
//! tar reader walks the entries while a tee feeds the same bytes to the scanner on another
//! thread, through a pipe (`partial_common::pipe`); the reader goes on to the very end, so every volume's hashes are checked.

use crate::errors::{bad_bundle, verify_failed};
use anyhow::{anyhow, Result};
use partial_common::archive::entries::{clean_name, TarReader};
use partial_common::archive::{self, ArchiveIndex};
use partial_common::pipe::{self, PipeWriter};
use std::collections::BTreeSet;
use std::io::{self, Read, Write};

/// The bundle's images and the (cleaned) names of all its entries. `label` names the bundle in
/// errors.
pub fn read_bundle(
    stream: Box<dyn Read + Send>,
    label: &str,
) -> Result<(ArchiveIndex, BTreeSet<String>)> {
    let (w, r) = pipe::pair();
    let scanner = std::thread::spawn(move || archive::scan(r));
    let mut tee = CopyToScanner {
        inner: stream,
        scanner: Some(w),
    };
    let names = entry_names(&mut tee, label);
    // The scanner sees a clean end only once every entry was read; else an error.
    if let (Ok(_), Some(w)) = (&names, tee.scanner.take()) {
        let _ = w.finish(); // a scanner that stopped early reports its own error
    }
    drop(tee);
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

/// Passes reads through and writes a copy of every byte into the scanner's pipe.
struct CopyToScanner {
    inner: Box<dyn Read + Send>,
    /// `None` once the scanner stopped reading (early, at an error it reports itself).
    scanner: Option<PipeWriter>,
}

impl Read for CopyToScanner {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(w) = self.scanner.as_mut() {
            if w.write_all(&buf[..n]).is_err() {
                self.scanner = None;
            }
        }
        Ok(n)
    }
}
