//! A minimal streaming tar reader and writer.
//!
//! The reader yields each entry's header (GNU long-name/long-link and PAX extension headers
//! applied); its data is then read through [`TarReader::data`]. Unlike the `tar` crate's reader it insists on a proper end:
//! an archive that stops without the end-of-archive zero blocks is truncated, and anything but zeros
//! after them (the daemon appends an error JSON when an export fails midway) is an error.

use super::ArchiveError;
use std::io::{self, Read, Write};
use tar::EntryType;

pub(crate) const BLOCK: usize = 512;

/// The biggest extension header (long name, PAX record set) accepted.
const MAX_EXTENSION: u64 = 1 << 20;

/// The header part of one entry.
#[derive(Clone, Debug)]
pub struct EntryHead {
    /// The entry's full name (long names and PAX `path` applied).
    pub name: String,
    /// The link target of a symlink or hard link.
    pub link_name: Option<String>,
    pub kind: EntryType,
    /// Size of the entry's data.
    pub size: u64,
    /// Every header block of the entry as read, extension headers first, the main header last,
    /// so an entry can be passed through byte for byte (`partial-load rehydrate` does).
    pub raw: Vec<u8>,
}

impl EntryHead {
    pub fn is_symlink(&self) -> bool {
        self.kind == EntryType::Symlink
    }
    pub fn is_file(&self) -> bool {
        matches!(self.kind, EntryType::Regular | EntryType::Continuous)
    }
}

/// What the extension headers before an entry say about it.
#[derive(Default)]
struct Extensions {
    /// Some extension header was read (so an entry must follow).
    seen: bool,
    name: Option<String>,
    link: Option<String>,
    size: Option<u64>,
    /// The header blocks read so far, extension data included.
    raw: Vec<u8>,
}

/// Whether the first bytes of an entry (or of what follows an archive) look like a JSON object.
pub(crate) fn looks_like_json(prefix: &[u8]) -> bool {
    prefix
        .iter()
        .find(|b| !b" \t\r\n".contains(b))
        .map(|b| *b == b'{')
        .unwrap_or(false)
}

/// Reads a tar stream entry by entry.
pub struct TarReader<R> {
    inner: R,
    pos: u64,
    /// Data bytes of the current entry not yet read.
    remaining: u64,
    /// Padding after the current entry's data.
    padding: u64,
    last_entry: String,
    done: bool,
}

fn checksum_ok(block: &[u8]) -> bool {
    let stored = tar::Header::from_byte_slice(block).cksum();
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    matches!(stored, Ok(s) if s == sum)
}

fn padding_of(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// A printable excerpt of bytes found where a header was expected (often the daemon's error JSON).
fn snippet(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| *c != '\0')
        .take(300)
        .collect();
    text.trim().to_string()
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            pos: 0,
            remaining: 0,
            padding: 0,
            last_entry: String::new(),
            done: false,
        }
    }

    /// Bytes consumed from the underlying stream.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn after(&self) -> String {
        if self.last_entry.is_empty() {
            "the start of the archive".to_string()
        } else {
            format!("entry {}", self.last_entry)
        }
    }

    /// Reads until `buf` is full or the stream ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, ArchiveError> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ArchiveError::Read {
                        after: self.after(),
                        source: e,
                    })
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    fn skip(&mut self, mut n: u64, what: &str) -> Result<(), ArchiveError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let want = n.min(buf.len() as u64) as usize;
            let got = self.fill(&mut buf[..want])?;
            if got == 0 {
                return Err(ArchiveError::Truncated(format!(
                    "the archive ends inside {what}"
                )));
            }
            n -= got as u64;
        }
        Ok(())
    }

    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<usize, ArchiveError> {
        self.fill(block)
    }

    /// Reads extension data (long name, PAX records) into memory.
    fn read_ext(&mut self, size: u64, raw: &mut Vec<u8>) -> Result<Vec<u8>, ArchiveError> {
        if size > MAX_EXTENSION {
            return Err(ArchiveError::BadTar(format!(
                "extension header of {size} bytes after {}",
                self.after()
            )));
        }
        let total = size + padding_of(size);
        let mut data = vec![0u8; total as usize];
        if self.fill(&mut data)? != data.len() {
            return Err(ArchiveError::Truncated(format!(
                "the archive ends inside an extension header after {}",
                self.after()
            )));
        }
        raw.extend_from_slice(&data);
        data.truncate(size as usize);
        Ok(data)
    }

    /// Checks what follows the first end-of-archive zero block.
    fn check_end(&mut self) -> Result<(), ArchiveError> {
        let mut buf = [0u8; 8192];
        loop {
            let n = self.fill(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            if let Some(i) = buf[..n].iter().position(|b| *b != 0) {
                let mut rest = buf[i..n].to_vec();
                let mut more = [0u8; 1024];
                let k = self.fill(&mut more)?;
                rest.extend_from_slice(&more[..k]);
                return Err(ArchiveError::TrailingData {
                    after: self.after(),
                    text: snippet(&rest),
                });
            }
        }
    }

    /// Skips whatever is left of the current entry and reads the next header; `None` at the proper end.
    pub fn next_entry(&mut self) -> Result<Option<EntryHead>, ArchiveError> {
        if self.done {
            return Ok(None);
        }
        // Saturating: a hostile size field (base-256, or PAX `size`) can be u64::MAX.
        let left = self.remaining.saturating_add(self.padding);
        if left > 0 {
            let what = format!("entry {}", self.last_entry);
            self.skip(left, &what)?;
            self.remaining = 0;
            self.padding = 0;
        }
        let mut ext = Extensions::default();
        loop {
            let Some(block) = self.header_block(ext.seen)? else {
                return Ok(None);
            };
            ext.raw.extend_from_slice(&block);
            let header = tar::Header::from_byte_slice(&block);
            let size = header.entry_size().map_err(|e| {
                ArchiveError::BadTar(format!("bad size field after {}: {e}", self.after()))
            })?;
            let kind = header.entry_type();
            if !self.read_extension(kind, size, &mut ext)? {
                return Ok(Some(self.entry_head(header, kind, size, ext)));
            }
        }
    }

    /// Reads the next header block; `None` at the end-of-archive marker (checked to be the
    /// proper end). `after_ext`: an extension header came before, so an entry must follow.
    fn header_block(&mut self, after_ext: bool) -> Result<Option<[u8; BLOCK]>, ArchiveError> {
        let mut block = [0u8; BLOCK];
        let start = self.pos;
        let n = self.read_block(&mut block)?;
        if n == 0 && !after_ext {
            return Err(ArchiveError::Truncated(format!(
                "the archive stops after {} without the end-of-archive marker",
                self.after()
            )));
        }
        if n < BLOCK {
            return Err(self.short_block(&block[..n], after_ext));
        }
        if block.iter().all(|b| *b == 0) {
            if after_ext {
                return Err(ArchiveError::BadTar(format!(
                    "extension header without entry after {}",
                    self.after()
                )));
            }
            self.done = true;
            self.check_end()?;
            return Ok(None);
        }
        if !checksum_ok(&block) {
            let mut rest = block.to_vec();
            let mut more = [0u8; 1024];
            let k = self.fill(&mut more)?;
            rest.extend_from_slice(&more[..k]);
            return Err(ArchiveError::BadHeader {
                after: self.after(),
                offset: start,
                text: snippet(&rest),
            });
        }
        Ok(Some(block))
    }

    /// The error for a stream that stops inside a header block: the daemon's error JSON, a cut
    /// inside the end-of-archive marker, or a cut inside a header.
    fn short_block(&mut self, got: &[u8], after_ext: bool) -> ArchiveError {
        if got.iter().all(|b| *b == 0) && !after_ext {
            return ArchiveError::Truncated(format!(
                "the archive stops inside the end-of-archive marker after {}",
                self.after()
            ));
        }
        let mut rest = got.to_vec();
        if looks_like_json(&rest) {
            let mut more = [0u8; 1024];
            let k = match self.fill(&mut more) {
                Ok(k) => k,
                Err(e) => return e,
            };
            rest.extend_from_slice(&more[..k]);
            return ArchiveError::TrailingData {
                after: self.after(),
                text: snippet(&rest),
            };
        }
        ArchiveError::Truncated(format!(
            "the archive stops inside a header after {}",
            self.after()
        ))
    }

    /// Reads the data of an extension header (GNU long name or link, PAX records) into `ext`;
    /// `false` when `kind` is an entry of its own.
    fn read_extension(
        &mut self,
        kind: EntryType,
        size: u64,
        ext: &mut Extensions,
    ) -> Result<bool, ArchiveError> {
        match kind {
            EntryType::GNULongName => ext.name = Some(cstr(&self.read_ext(size, &mut ext.raw)?)),
            EntryType::GNULongLink => ext.link = Some(cstr(&self.read_ext(size, &mut ext.raw)?)),
            EntryType::XHeader => {
                for (k, v) in pax_records(&self.read_ext(size, &mut ext.raw)?) {
                    match k.as_str() {
                        "path" => ext.name = Some(v),
                        "linkpath" => ext.link = Some(v),
                        "size" => ext.size = v.parse().ok(),
                        _ => {}
                    }
                }
            }
            EntryType::XGlobalHeader => {
                // Applies to later entries; nothing docker writes needs it.
                self.read_ext(size, &mut ext.raw)?;
                return Ok(true);
            }
            _ => return Ok(false),
        }
        ext.seen = true;
        Ok(true)
    }

    /// The entry of a main header, with its extensions applied; its data is next.
    fn entry_head(
        &mut self,
        header: &tar::Header,
        kind: EntryType,
        size: u64,
        ext: Extensions,
    ) -> EntryHead {
        let name = ext.name.unwrap_or_else(|| cstr(&header.path_bytes()));
        let link_name = match kind {
            EntryType::Symlink | EntryType::Link => Some(ext.link.unwrap_or_else(|| {
                header
                    .link_name_bytes()
                    .map(|b| cstr(&b))
                    .unwrap_or_default()
            })),
            _ => None,
        };
        let size = match kind {
            EntryType::Symlink | EntryType::Link | EntryType::Directory => 0,
            _ => ext.size.unwrap_or(size),
        };
        self.remaining = size;
        self.padding = padding_of(size);
        self.last_entry = name.clone();
        EntryHead {
            name,
            link_name,
            kind,
            size,
            raw: ext.raw,
        }
    }

    /// A reader over the current entry's data; a stream that ends early is an error naming the entry.
    pub fn data(&mut self) -> EntryData<'_, R> {
        EntryData { r: self }
    }

    /// Reads the current entry's whole data into memory (for small metadata entries only).
    pub fn read_all(&mut self, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        if self.remaining > limit {
            return Err(ArchiveError::TooLarge {
                entry: self.last_entry.clone(),
                size: self.remaining,
            });
        }
        // Grown as data arrives: a header claiming `limit` bytes over a truncated stream must not
        // cost `limit` bytes of memory up front.
        let mut out = Vec::with_capacity(self.remaining.min(64 << 10) as usize);
        self.data()
            .read_to_end(&mut out)
            .map_err(|e| self.map_data_err(e))?;
        Ok(out)
    }

    /// Turns an error from [`EntryData`] into an archive error naming the entry.
    pub fn map_data_err(&self, e: io::Error) -> ArchiveError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            ArchiveError::Truncated(format!("the archive ends inside entry {}", self.last_entry))
        } else {
            ArchiveError::Read {
                after: format!("entry {} (inside it)", self.last_entry),
                source: e,
            }
        }
    }

    /// Data bytes of the current entry not read yet.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

/// See [`TarReader::data`].
pub struct EntryData<'a, R> {
    r: &'a mut TarReader<R>,
}

impl<R: Read> Read for EntryData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.r.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.r.remaining.min(usize::MAX as u64) as usize);
        let n = loop {
            match self.r.inner.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive ends inside an entry",
            ));
        }
        self.r.pos += n as u64;
        self.r.remaining -= n as u64;
        Ok(n)
    }
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Parses PAX records `"<len> <key>=<value>\n"`.
fn pax_records(data: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|b| *b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|b| *b == b'=') {
            out.push((
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
            ));
        }
        rest = &rest[len..];
    }
    out
}

/// The header blocks of a regular file (a GNU long-name header first when the name is long);
/// `template` keeps another header's fields but type, size and name. For writers that stream
/// the data themselves (the data, then padding to 512 bytes, then two zero blocks at the end).
pub fn file_header(name: &str, size: u64, template: Option<&[u8]>) -> Vec<u8> {
    let mut header = match template {
        Some(t) => tar::Header::from_byte_slice(t).clone(),
        None => {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_uid(0);
            h.set_gid(0);
            h
        }
    };
    header.set_entry_type(EntryType::Regular);
    header.set_size(size);
    let mut raw = Vec::new();
    if name.len() > 100 {
        // GNU long name, as `tar` and Go's reader understand it.
        let mut ext = tar::Header::new_gnu();
        ext.set_entry_type(EntryType::GNULongName);
        let n = name.len() as u64 + 1;
        ext.set_size(n);
        ext.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
        ext.set_cksum();
        raw.extend_from_slice(ext.as_bytes());
        let mut bytes = name.as_bytes().to_vec();
        bytes.push(0);
        bytes.resize(bytes.len() + padding_of(n) as usize, 0);
        raw.extend_from_slice(&bytes);
    }
    let field = &mut header.as_old_mut().name;
    field.fill(0);
    let n = name.len().min(100);
    field[..n].copy_from_slice(&name.as_bytes()[..n]);
    if let Some(ustar) = header.as_ustar_mut() {
        ustar.prefix.fill(0);
    }
    header.set_cksum();
    raw.extend_from_slice(header.as_bytes());
    raw
}

/// Writes a tar stream; counts bytes.
pub struct TarWriter<W> {
    inner: W,
    count: u64,
}

fn werr(e: io::Error) -> ArchiveError {
    ArchiveError::Write(e)
}

impl<W: Write> TarWriter<W> {
    pub fn new(inner: W) -> Self {
        TarWriter { inner, count: 0 }
    }

    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.inner.write_all(bytes).map_err(werr)?;
        self.count += bytes.len() as u64;
        Ok(())
    }

    /// Writes the padding after `size` bytes of entry data.
    pub fn pad(&mut self, size: u64) -> Result<(), ArchiveError> {
        let zeros = [0u8; BLOCK];
        self.write_raw(&zeros[..padding_of(size) as usize])
    }

    /// Writes a whole entry whose data is in memory: the header blocks as read, the data, padding.
    pub fn write_entry(&mut self, raw_header: &[u8], data: &[u8]) -> Result<(), ArchiveError> {
        self.write_raw(raw_header)?;
        self.write_raw(data)?;
        self.pad(data.len() as u64)
    }

    /// Writes a regular file `name` with `data`, taking mode, owner and mtime from `template` (a
    /// main header block) when given.
    pub fn write_new_file(
        &mut self,
        name: &str,
        data: &[u8],
        template: Option<&[u8]>,
    ) -> Result<(), ArchiveError> {
        let raw = file_header(name, data.len() as u64, template);
        self.write_entry(&raw, data)
    }

    /// Writes a directory entry `name` (ending in `/`).
    pub fn write_dir(&mut self, name: &str) -> Result<(), ArchiveError> {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(EntryType::Directory);
        h.set_size(0);
        h.set_path(name)
            .map_err(|e| ArchiveError::BadTar(format!("{name}: {e}")))?;
        h.set_cksum();
        self.write_raw(h.as_bytes())
    }

    /// Writes the header of a regular file `name` of `size` bytes, whose data the caller then
    /// writes (exactly `size` bytes) followed by [`TarWriter::pad`].
    pub fn begin_file(&mut self, name: &str, size: u64) -> Result<(), ArchiveError> {
        let raw = file_header(name, size, None);
        self.write_raw(&raw)
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub fn finish(mut self) -> Result<(W, u64), ArchiveError> {
        self.write_raw(&[0u8; BLOCK * 2])?;
        self.inner.flush().map_err(werr)?;
        Ok((self.inner, self.count))
    }
}

impl<W: Write> Write for TarWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(names: &[&str]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for n in names {
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            b.append_data(&mut h, n, &b"abc"[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn reads_and_writes_long_names() {
        let long = format!("{}/file", "d".repeat(150));
        let data = sample(&["a", &long]);
        let mut r = TarReader::new(&data[..]);
        let mut w = TarWriter::new(Vec::new());
        let mut names = Vec::new();
        while let Some(h) = r.next_entry().unwrap() {
            names.push(h.name.clone());
            let body = r.read_all(10).unwrap();
            w.write_new_file(&h.name, &body, None).unwrap();
        }
        assert_eq!(names, vec!["a".to_string(), long.clone()]);
        let (out, _) = w.finish().unwrap();
        let mut a = tar::Archive::new(&out[..]);
        let got: Vec<String> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(got, vec!["a".to_string(), long]);
    }

    #[test]
    fn detects_truncation_and_trailing_garbage() {
        let data = sample(&["a", "b"]);
        // Cut before the end marker.
        let cut = &data[..2048];
        let mut r = TarReader::new(cut);
        r.next_entry().unwrap();
        r.next_entry().unwrap();
        assert!(matches!(r.next_entry(), Err(ArchiveError::Truncated(_))));
        // Cut inside data.
        let cut = &data[..600];
        let mut r = TarReader::new(cut);
        r.next_entry().unwrap();
        assert!(matches!(r.next_entry(), Err(ArchiveError::Truncated(_))));
        // Error JSON after the entries.
        let mut bad = data[..2048].to_vec();
        bad.extend_from_slice(br#"{"errorDetail":{"message":"boom"},"error":"boom"}"#);
        let mut r = TarReader::new(&bad[..]);
        r.next_entry().unwrap();
        r.next_entry().unwrap();
        let e = r.next_entry().unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
        assert!(e.to_string().contains("entry b"), "{e}");
    }

    #[test]
    fn read_errors_name_the_entry() {
        struct Failing(Vec<u8>, usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.1 >= self.0.len() {
                    return Err(io::Error::other("connection reset"));
                }
                let n = buf.len().min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let data = sample(&["first", "second"]);
        let mut r = TarReader::new(Failing(data[..1024 + 513].to_vec(), 0));
        r.next_entry().unwrap();
        r.next_entry().unwrap();
        let e = r.read_all(100).unwrap_err().to_string();
        assert!(
            e.contains("second") && e.contains("connection reset"),
            "{e}"
        );
    }

    /// A tar stream with one PAX-extended regular file `x` whose records are `records`.
    fn pax_entry(records: &str, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut x = tar::Header::new_ustar();
        x.set_entry_type(EntryType::XHeader);
        x.set_path("PaxHeaders/x").unwrap();
        x.set_size(records.len() as u64);
        x.set_cksum();
        out.extend_from_slice(x.as_bytes());
        let mut r = records.as_bytes().to_vec();
        r.resize(r.len() + padding_of(r.len() as u64) as usize, 0);
        out.extend(r);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_path("x").unwrap();
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        let mut d = data.to_vec();
        d.resize(d.len() + padding_of(d.len() as u64) as usize, 0);
        out.extend(d);
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn huge_entry_size_is_an_error_not_an_overflow() {
        // A size of u64::MAX (PAX `size`, or a base-256 size field) overflowed
        // `remaining + padding` when skipping the entry.
        let data = pax_entry("29 size=18446744073709551615\n", b"");
        let mut r = TarReader::new(&data[..]);
        let h = r.next_entry().unwrap().unwrap();
        assert_eq!(h.size, u64::MAX);
        assert!(matches!(r.next_entry(), Err(ArchiveError::Truncated(_))));
        let mut h = tar::Header::new_gnu();
        h.set_path("y").unwrap();
        h.set_size(0);
        h.as_gnu_mut().unwrap().size = [0xff; 12]; // base-256: all ones
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend_from_slice(&[0u8; 1024]);
        let mut r = TarReader::new(&data[..]);
        if let Ok(Some(_)) = r.next_entry() {
            assert!(r.next_entry().is_err());
        }
    }

    #[test]
    fn new_file_with_long_name_is_readable() {
        let long = "x".repeat(120);
        let mut w = TarWriter::new(Vec::new());
        w.write_new_file(&long, b"hello", None).unwrap();
        let (out, n) = w.finish().unwrap();
        assert_eq!(n as usize, out.len());
        let mut r = TarReader::new(&out[..]);
        let h = r.next_entry().unwrap().unwrap();
        assert_eq!(h.name, long);
        assert_eq!(r.read_all(100).unwrap(), b"hello");
        assert!(r.next_entry().unwrap().is_none());
    }
}
