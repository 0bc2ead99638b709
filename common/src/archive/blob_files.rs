//! The files a layout source hands the engine one by one (an OCI layout directory's metadata
//! and blobs, a registry's manifests, configs and downloads), read as an
//! [`EntryStream`]: no tar is generated for the engine to take apart again. Each file's
//! reader is opened only when the engine reaches it (a file, a registry download), so memory
//! and open handles stay bounded; a file that yields fewer or more bytes than announced is an
//! error naming it (the check that a short read fails the copy).

use super::entry_stream::EntryStream;
use super::tarstream::EntryHead;
use super::ArchiveError;
use std::io::{self, Read};

/// One file: its name in the layout (`index.json`, `blobs/sha256/<hex>`), its size as
/// announced, and how to open its content when the engine reaches it.
pub struct BlobFile {
    pub name: String,
    pub size: u64,
    pub open: Box<dyn FnOnce() -> io::Result<Box<dyn Read>>>,
}

impl BlobFile {
    /// A file whose content is already in memory.
    pub fn bytes(name: &str, data: impl AsRef<[u8]> + 'static) -> BlobFile {
        BlobFile {
            name: name.to_string(),
            size: data.as_ref().len() as u64,
            open: Box::new(move || Ok(Box::new(io::Cursor::new(data)) as Box<dyn Read>)),
        }
    }
}

/// The file being read: its reader and bytes left.
struct Current {
    reader: Box<dyn Read>,
    name: String,
    size: u64,
    left: u64,
}

/// A list of [`BlobFile`]s as an [`EntryStream`].
pub struct BlobFiles<'i> {
    files: &'i mut dyn Iterator<Item = BlobFile>,
    current: Option<Current>,
    /// Data bytes handed over so far.
    position: u64,
}

impl<'i> BlobFiles<'i> {
    pub fn new(files: &'i mut dyn Iterator<Item = BlobFile>) -> Self {
        BlobFiles {
            files,
            current: None,
            position: 0,
        }
    }

    /// Ends the current file: one read all the way must be at its reader's end (where a checked
    /// download reports a digest mismatch); one left unread is dropped.
    fn finish_current(&mut self) -> Result<(), ArchiveError> {
        let Some(mut c) = self.current.take() else {
            return Ok(());
        };
        if c.left > 0 {
            return Ok(());
        }
        let mut probe = [0u8; 1];
        match c.reader.read(&mut probe) {
            Ok(0) => Ok(()),
            Ok(_) => Err(ArchiveError::BadMetadata {
                entry: c.name.clone(),
                message: format!("longer than the {} bytes announced", c.size),
            }),
            Err(e) => Err(read_error(&c.name, e)),
        }
    }
}

fn read_error(name: &str, source: io::Error) -> ArchiveError {
    ArchiveError::Read {
        after: format!("{name} (inside it)"),
        source,
    }
}

impl EntryStream for BlobFiles<'_> {
    type Data<'a>
        = BlobData<'a>
    where
        Self: 'a;

    fn next_entry(&mut self) -> Result<Option<EntryHead>, ArchiveError> {
        self.finish_current()?;
        let Some(file) = self.files.next() else {
            return Ok(None);
        };
        let reader = (file.open)().map_err(|e| ArchiveError::Read {
            after: format!("opening {}", file.name),
            source: e,
        })?;
        let head = EntryHead {
            name: file.name.clone(),
            link_name: None,
            kind: tar::EntryType::Regular,
            size: file.size,
            raw: Vec::new(),
        };
        self.current = Some(Current {
            reader,
            name: file.name,
            size: file.size,
            left: file.size,
        });
        Ok(Some(head))
    }

    fn data(&mut self) -> BlobData<'_> {
        BlobData {
            current: self.current.as_mut(),
            position: &mut self.position,
        }
    }

    fn read_all(&mut self, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        let Some(c) = &self.current else {
            return Ok(Vec::new());
        };
        if c.left > limit {
            return Err(ArchiveError::TooLarge {
                entry: c.name.clone(),
                size: c.left,
            });
        }
        let mut out = Vec::with_capacity(c.left.min(64 << 10) as usize);
        self.data()
            .read_to_end(&mut out)
            .map_err(|e| self.map_data_err(e))?;
        Ok(out)
    }

    fn map_data_err(&self, e: io::Error) -> ArchiveError {
        let name = self
            .current
            .as_ref()
            .map_or("(no file)", |c| c.name.as_str());
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ArchiveError::Truncated(format!("{name}: {e}"))
        } else {
            read_error(name, e)
        }
    }

    fn remaining(&self) -> u64 {
        self.current.as_ref().map_or(0, |c| c.left)
    }

    fn position(&self) -> u64 {
        self.position
    }
}

/// See [`BlobFiles`]: the current file's data, no more than announced; fewer is an error.
pub struct BlobData<'a> {
    current: Option<&'a mut Current>,
    position: &'a mut u64,
}

impl Read for BlobData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(c) = self.current.as_deref_mut() else {
            return Ok(0);
        };
        if c.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(c.left).unwrap_or(usize::MAX));
        let n = c.reader.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "ended after {} of the {} bytes announced",
                    c.size - c.left,
                    c.size
                ),
            ));
        }
        c.left -= n as u64;
        *self.position += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: Vec<BlobFile>) -> Vec<(String, Result<Vec<u8>, String>)> {
        let mut it = list.into_iter();
        let mut s = BlobFiles::new(&mut it);
        let mut out = Vec::new();
        loop {
            let head = match s.next_entry() {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    out.push(("(next)".to_string(), Err(e.to_string())));
                    break;
                }
            };
            let data = s.read_all(1 << 20).map_err(|e| e.to_string());
            out.push((head.name, data));
        }
        out
    }

    #[test]
    fn files_read_back_in_order_with_their_data() {
        let got = files(vec![
            BlobFile::bytes("oci-layout", b"{}"),
            BlobFile::bytes("blobs/sha256/x", vec![7u8; 1000]),
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], ("oci-layout".to_string(), Ok(b"{}".to_vec())));
        assert_eq!(got[1].0, "blobs/sha256/x");
        assert_eq!(got[1].1.as_ref().map(Vec::len), Ok(1000));
    }

    #[test]
    fn short_and_long_files_are_errors_naming_them() {
        for (announced, actual, needle) in [(10, 5, "ended after 5"), (5, 10, "longer than")] {
            let got = files(vec![BlobFile {
                name: "blobs/sha256/y".into(),
                size: announced,
                open: Box::new(move || {
                    Ok(Box::new(io::Cursor::new(vec![1u8; actual])) as Box<dyn Read>)
                }),
            }]);
            let msg = got
                .iter()
                .find_map(|(_, r)| r.as_ref().err())
                .unwrap_or_else(|| panic!("no error for {announced}/{actual}: {got:?}"));
            assert!(
                msg.contains("blobs/sha256/y") && msg.contains(needle),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_an_error_naming_it() {
        let got = files(vec![BlobFile {
            name: "blobs/sha256/z".into(),
            size: 3,
            open: Box::new(|| Err(io::Error::other("gone"))),
        }]);
        let msg = got[0].1.as_ref().unwrap_err();
        assert!(
            msg.contains("blobs/sha256/z") && msg.contains("gone"),
            "{msg}"
        );
    }
}
