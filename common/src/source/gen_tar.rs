//! A tar stream generated as it is read, for sources whose blobs are not stored as one archive
//! (OCI layout directories, registries): the engine reads every source as a tar stream, so these
//! sources hand it their metadata and wanted blobs as tar entries. Each entry's reader is opened
//! only when the stream reaches it (a file, a registry download), so memory and open handles stay
//! bounded; an entry whose reader yields fewer or more bytes than announced is an error naming it.

use std::io::{self, Read};

/// One entry: its name, its size as announced (the tar header needs it first), and how to open
/// its content when the stream reaches it.
pub(crate) struct Entry {
    pub name: String,
    pub size: u64,
    pub open: Box<dyn FnOnce() -> io::Result<Box<dyn Read>>>,
}

impl Entry {
    /// An entry whose content is already in memory.
    pub fn bytes(name: &str, data: impl AsRef<[u8]> + 'static) -> Entry {
        Entry {
            name: name.to_string(),
            size: data.as_ref().len() as u64,
            open: Box::new(move || Ok(Box::new(io::Cursor::new(data)) as Box<dyn Read>)),
        }
    }
}

/// The entry being sent: its reader and bytes left.
struct Current {
    reader: Box<dyn Read>,
    left: u64,
    size: u64,
    name: String,
}

/// The tar stream of a list of entries, regular files in order, then the end-of-archive marker.
pub(crate) struct GenTar<I> {
    entries: I,
    current: Option<Current>,
    /// Header, padding or end-marker bytes waiting to be read.
    pending: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl<I: Iterator<Item = Entry>> GenTar<I> {
    pub fn new(entries: impl IntoIterator<IntoIter = I>) -> Self {
        GenTar {
            entries: entries.into_iter(),
            current: None,
            pending: Vec::new(),
            pos: 0,
            ended: false,
        }
    }

    /// Queues the next header and opens its entry (or queues the end of the archive); `false`
    /// when all is sent.
    fn next_entry(&mut self) -> io::Result<bool> {
        let Some(entry) = self.entries.next() else {
            if self.ended {
                return Ok(false);
            }
            self.ended = true;
            self.queue(vec![0u8; 1024]);
            return Ok(true);
        };
        let mut h = tar::Header::new_gnu();
        h.set_size(entry.size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_path(&entry.name)?;
        h.set_cksum();
        self.queue(h.as_bytes().to_vec());
        self.current = Some(Current {
            reader: (entry.open)()?,
            left: entry.size,
            size: entry.size,
            name: entry.name,
        });
        Ok(true)
    }

    fn queue(&mut self, bytes: Vec<u8>) {
        self.pending = bytes;
        self.pos = 0;
    }
}

impl Current {
    /// Reads the entry's data; `Ok(0)` once all of it was read and the reader is at its end
    /// (where a checked download reports a digest mismatch).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left > 0 {
            let max = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            let n = self.reader.read(&mut buf[..max])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} ended after {} of the {} bytes announced",
                        self.name,
                        self.size - self.left,
                        self.size
                    ),
                ));
            }
            self.left -= n as u64;
            return Ok(n);
        }
        let mut probe = [0u8; 1];
        if self.reader.read(&mut probe)? != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is longer than the {} bytes announced",
                    self.name, self.size
                ),
            ));
        }
        Ok(0)
    }
}

impl<I: Iterator<Item = Entry>> Read for GenTar<I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.pending.len() {
                let n = buf.len().min(self.pending.len() - self.pos);
                buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some(c) = &mut self.current {
                let n = c.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                let padding = ((512 - c.size % 512) % 512) as usize;
                self.current = None;
                self.queue(vec![0u8; padding]);
                continue;
            }
            if !self.next_entry()? {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(data: Vec<u8>) -> Vec<(String, u64)> {
        let mut a = tar::Archive::new(io::Cursor::new(data));
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.size())
            })
            .collect()
    }

    #[test]
    fn generated_tar_reads_back() {
        let mut tar = GenTar::new(vec![
            Entry::bytes("oci-layout", b"{}"),
            Entry::bytes("blobs/sha256/x", vec![7u8; 1000]),
        ]);
        let mut all = Vec::new();
        tar.read_to_end(&mut all).unwrap();
        assert_eq!(
            listing(all),
            [
                ("oci-layout".to_string(), 2),
                ("blobs/sha256/x".to_string(), 1000)
            ]
        );
    }

    #[test]
    fn short_and_long_entries_are_errors_naming_them() {
        for (announced, actual, needle) in [(10, 5, "ended after 5"), (5, 10, "longer than")] {
            let mut tar = GenTar::new(vec![Entry {
                name: "blobs/sha256/y".into(),
                size: announced,
                open: Box::new(move || {
                    Ok(Box::new(io::Cursor::new(vec![1u8; actual])) as Box<dyn Read>)
                }),
            }]);
            let e = tar.read_to_end(&mut Vec::new()).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("blobs/sha256/y") && msg.contains(needle),
                "{msg}"
            );
        }
    }
}
