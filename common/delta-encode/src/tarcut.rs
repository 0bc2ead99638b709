//! Tar-aware chunking: content-defined chunks that never straddle the start or end of a large
//! file's content in a layer tar.
//!
//! Why: plain content-defined chunking over a tar cuts chunks that span a file's 512-byte header
//! and the start of its content. When a file is renamed or moved, its header changes, so the
//! chunks at both ends of every file differ and travel as literals: a tree of 256 KiB files
//! renamed as a whole shared only about half its chunks. Cutting at the start and at the end of
//! every file's content of at least [`SEPARATE_CONTENT`] bytes (the headers and small files
//! between them are chunked as before) makes that content chunk the same wherever the file sits.
//!
//! The stream is only read, never trusted: each 512-byte header is checked (its checksum) before
//! it is followed; anything that is not a well-formed tar header (the end of the archive, a
//! stream that is not a tar) turns the rest of the stream into one plain segment. Encoder, index
//! and sketch use the same chunker, so both sides cut alike; the delta format does not change.

use fastcdc::v2020::{ChunkData, StreamCDC};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

/// Content of at least this many bytes is chunked on its own (the average chunk: smaller files
/// stay grouped, so the index does not grow with the number of files).
pub(crate) const SEPARATE_CONTENT: u64 = crate::chunk_sizes::AVG_CHUNK as u64;

/// Largest PAX extended header read for a `size` record.
const MAX_PAX: u64 = 64 << 10;

const BLOCK: u64 = 512;

/// The stream split into segments at the cut points found so far (shared between the chunker of
/// the current segment and the iterator that starts the next one).
struct Segments<R> {
    inner: R,
    pos: u64,
    /// Where the next header starts; `None` once the rest is read plainly.
    next_header: Option<u64>,
    /// Cut points ahead (ascending): a read never crosses one; at one, the segment ends.
    cuts: VecDeque<u64>,
    /// The header block being delivered, and how much of it was.
    header: Vec<u8>,
    header_out: usize,
    /// Content of a PAX extended header being collected (for the next entry's `size`).
    pax: Option<(u64, Vec<u8>)>,
    /// The next entry's size from a PAX `size` record.
    pax_size: Option<u64>,
    eof: bool,
}

impl<R: Read> Segments<R> {
    fn new(inner: R) -> Self {
        Segments {
            inner,
            pos: 0,
            next_header: Some(0),
            cuts: VecDeque::new(),
            header: Vec::new(),
            header_out: 0,
            pax: None,
            pax_size: None,
            eof: false,
        }
    }

    /// At a cut point: the current segment has ended.
    fn at_cut(&self) -> bool {
        self.cuts.front() == Some(&self.pos)
    }

    /// Starts the next segment (after the chunker of the current one saw its end).
    fn next_segment(&mut self) {
        while self.cuts.front().is_some_and(|c| *c <= self.pos) {
            self.cuts.pop_front();
        }
    }

    /// Reads the 512-byte block at the current position (which is `next_header`) and decides
    /// what follows: the next header's position and the cuts around a large content.
    fn read_header(&mut self) -> io::Result<()> {
        let mut block = vec![0u8; BLOCK as usize];
        let mut got = 0;
        while got < block.len() {
            match self.inner.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        block.truncate(got);
        self.header = block;
        self.header_out = 0;
        let start = self.pos;
        let parsed = (got == BLOCK as usize)
            .then(|| parse_header(&self.header))
            .flatten();
        let Some((kind, size)) = parsed else {
            self.next_header = None; // the end of the archive, or not a tar: read plainly
            return Ok(());
        };
        let size = match kind {
            b'x' | b'g' | b'L' | b'K' => size,
            _ => self.pax_size.take().unwrap_or(size),
        };
        let content = start + BLOCK;
        self.next_header = content.checked_add(size.div_ceil(BLOCK) * BLOCK);
        if kind == b'x' && size <= MAX_PAX {
            self.pax = Some((content + size, Vec::with_capacity(size as usize)));
        }
        if size >= SEPARATE_CONTENT && !matches!(kind, b'x' | b'g' | b'L' | b'K') {
            self.cuts.push_back(content);
            if let Some(end) = content.checked_add(size) {
                self.cuts.push_back(end);
            }
        }
        Ok(())
    }

    /// Keeps the bytes of a PAX extended header; at its end, its `size` record if any.
    fn collect_pax(&mut self, bytes: &[u8]) {
        let Some((end, data)) = self.pax.as_mut() else {
            return;
        };
        data.extend_from_slice(bytes);
        if self.pos >= *end {
            self.pax_size = pax_size(data);
            self.pax = None;
        }
    }
}

impl<R: Read> Read for Segments<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at_cut() || buf.is_empty() {
            return Ok(0);
        }
        if self.header_out < self.header.len() {
            let n = (self.header.len() - self.header_out).min(buf.len());
            buf[..n].copy_from_slice(&self.header[self.header_out..self.header_out + n]);
            self.header_out += n;
            self.pos += n as u64;
            return Ok(n);
        }
        if self.next_header == Some(self.pos) && !self.eof {
            self.read_header()?;
            if self.header.is_empty() {
                self.eof = true;
                return Ok(0);
            }
            return self.read(buf);
        }
        let mut limit = buf.len() as u64;
        for bound in [self.next_header, self.cuts.front().copied()]
            .into_iter()
            .flatten()
        {
            limit = limit.min(bound.saturating_sub(self.pos));
        }
        let n = self.inner.read(&mut buf[..limit as usize])?;
        if n == 0 {
            self.eof = true;
        }
        self.pos += n as u64;
        if self.pax.is_some() {
            let bytes = buf[..n].to_vec();
            self.collect_pax(&bytes);
        }
        Ok(n)
    }
}

/// A checked tar header: its type flag and size field; `None` when the block is not one.
fn parse_header(h: &[u8]) -> Option<(u8, u64)> {
    let stored = octal(&h[148..156])?;
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(*b)
            }
        })
        .sum();
    if sum != stored {
        return None;
    }
    let size = if h[124] & 0x80 != 0 {
        // base-256 (GNU): the remaining bytes, big-endian
        h[125..136].iter().try_fold(0u64, |acc, b| {
            acc.checked_mul(256).map(|a| a + u64::from(*b))
        })?
    } else {
        octal(&h[124..136])?
    };
    Some((h[156], size))
}

/// An octal number field (NUL or space padded).
fn octal(field: &[u8]) -> Option<u64> {
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != 0 && *b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    s.iter().try_fold(0u64, |acc, b| match b {
        b'0'..=b'7' => acc.checked_mul(8).map(|a| a + u64::from(b - b'0')),
        _ => None,
    })
}

/// The `size` record of a PAX extended header (`LEN size=N\n`).
fn pax_size(data: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(data).ok()?;
    text.lines()
        .filter_map(|rec| rec.split_once(' ').map(|(_, kv)| kv))
        .find_map(|kv| kv.strip_prefix("size="))
        .and_then(|v| v.parse().ok())
}

/// A `Read` over the shared segments, for the chunker of one segment.
struct Handle<R>(Rc<RefCell<Segments<R>>>);

impl<R: Read> Read for Handle<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

/// The chunks of a stream, segment by segment, with offsets from the start of the stream.
pub(crate) struct TarChunks<R: Read> {
    segments: Rc<RefCell<Segments<R>>>,
    current: Option<(u64, StreamCDC<Handle<R>>)>,
    done: bool,
    sizes: (usize, usize, usize),
}

impl<R: Read> TarChunks<R> {
    pub(crate) fn new(inner: R, min: usize, avg: usize, max: usize) -> Self {
        TarChunks {
            segments: Rc::new(RefCell::new(Segments::new(inner))),
            current: None,
            done: false,
            sizes: (min, avg, max),
        }
    }
}

impl<R: Read> Iterator for TarChunks<R> {
    type Item = io::Result<ChunkData>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.current.is_none() {
                let start = self.segments.borrow().pos;
                let (min, avg, max) = self.sizes;
                let cdc = StreamCDC::new(Handle(Rc::clone(&self.segments)), min, avg, max);
                self.current = Some((start, cdc));
            }
            let (start, cdc) = self.current.as_mut()?;
            match cdc.next() {
                Some(Ok(mut c)) => {
                    c.offset += *start;
                    return Some(Ok(c));
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(io::Error::from(e)));
                }
                None => {
                    self.current = None;
                    let mut s = self.segments.borrow_mut();
                    if s.eof && !s.at_cut() {
                        self.done = true;
                        return None;
                    }
                    s.next_segment();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{pseudo_random, tar_of};

    fn cut(data: &[u8]) -> Vec<(u64, usize)> {
        TarChunks::new(data, 16 << 10, 64 << 10, 256 << 10)
            .map(|c| c.map(|c| (c.offset, c.length)).unwrap())
            .collect()
    }

    #[test]
    fn chunks_cover_the_stream_in_order() {
        for data in [
            tar_of(&[
                ("a".into(), pseudo_random(1, 300_000)),
                ("b".into(), vec![7; 10]),
            ]),
            pseudo_random(3, 1_000_000), // not a tar: read plainly
            Vec::new(),
        ] {
            let mut at = 0;
            for (off, len) in cut(&data) {
                assert_eq!(off, at);
                assert!(len > 0);
                at += len as u64;
            }
            assert_eq!(at, data.len() as u64);
        }
    }

    #[test]
    fn a_large_file_content_is_cut_on_its_own() {
        let big = pseudo_random(5, 300_000);
        let data = tar_of(&[
            ("small".into(), vec![1; 100]),
            ("dir/big".into(), big.clone()),
        ]);
        let start = data.windows(64).position(|w| w == &big[..64]).unwrap() as u64;
        let cuts: Vec<u64> = cut(&data).iter().map(|c| c.0).collect();
        assert!(cuts.contains(&start), "a cut at the content's start");
        assert!(cuts.contains(&(start + big.len() as u64)), "and at its end");
    }

    #[test]
    fn renamed_files_give_the_same_content_chunks() {
        let files: Vec<(String, Vec<u8>)> = (0..8)
            .map(|i| (format!("app/f{i}"), pseudo_random(10 + i, 256 << 10)))
            .collect();
        let moved: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, d)| (format!("srv/renamed-{}", &p[4..]), d.clone()))
            .collect();
        let hashes = |data: &[u8]| -> std::collections::HashSet<[u8; 32]> {
            TarChunks::new(data, 16 << 10, 64 << 10, 256 << 10)
                .map(|c| *blake3::hash(&c.unwrap().data).as_bytes())
                .collect()
        };
        let (a, b) = (tar_of(&files), tar_of(&moved));
        let (ha, hb) = (hashes(&a), hashes(&b));
        let shared: usize = TarChunks::new(&b[..], 16 << 10, 64 << 10, 256 << 10)
            .map(|c| c.unwrap())
            .filter(|c| ha.contains(blake3::hash(&c.data).as_bytes()))
            .map(|c| c.length)
            .sum();
        assert!(
            shared as f64 > 0.97 * b.len() as f64,
            "{shared} of {}",
            b.len()
        );
        assert!(!hb.is_empty());
    }

    #[test]
    fn headers_are_checked_and_sizes_read() {
        let data = tar_of(&[("x".into(), vec![0; 70_000])]);
        assert_eq!(parse_header(&data[..512]), Some((data[156], 70_000)));
        let mut bad = data[..512].to_vec();
        bad[0] ^= 1;
        assert_eq!(parse_header(&bad), None);
        assert_eq!(parse_header(&[0u8; 512]), None);
        // A size over 8 GiB in GNU base-256, as Docker writes it.
        let mut big = data[..512].to_vec();
        big[124..136].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0]);
        big[148..156].copy_from_slice(b"        ");
        let sum: u32 = big.iter().map(|b| u32::from(*b)).sum();
        big[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(parse_header(&big), Some((data[156], 2 << 32)));
        assert_eq!(pax_size(b"20 size=9000000000\n"), Some(9_000_000_000));
        assert_eq!(octal(b"0000644\0"), Some(0o644));
        assert_eq!(octal(b"12x"), None);
    }
}
