//! Entries over 8 GiB through the tar engine, without an 8 GiB file: their size no longer fits
//! the 11 octal digits of a header, so Docker (Go's archive/tar) writes it as a PAX `size` record
//! (and GNU tar as base-256). The data is a generated run of zeros, checked as it streams.

use super::tarstream::{TarReader, TarWriter, BLOCK};
use std::io::{self, Read, Write};
use tar::EntryType;

/// 8 GiB + 1000 bytes: beyond the octal field (max 8 GiB − 1), not a multiple of the block.
const HUGE: u64 = (8 << 30) + 1000;

fn pad(n: u64) -> usize {
    ((BLOCK as u64 - n % BLOCK as u64) % BLOCK as u64) as usize
}

/// The main header of a regular file `name` of `size` bytes in the given format.
fn header(name: &str, size: u64, base256: bool) -> tar::Header {
    let mut h = if base256 {
        tar::Header::new_gnu()
    } else {
        tar::Header::new_ustar()
    };
    h.set_path(name).unwrap();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    if base256 {
        // The tar crate writes sizes beyond the octal range as GNU base-256.
        h.set_size(size);
    } else {
        // What Go's archive/tar does: the octal field zero, the size in the PAX record.
        h.set_size(0);
    }
    h.set_cksum();
    h
}

/// A PAX extended header carrying `size`.
fn pax_size(size: u64) -> Vec<u8> {
    let body = format!("size={size}\n");
    // "<len> <body>", where len counts itself too.
    let mut len = body.len() + 2;
    while format!("{len} {body}").len() != len {
        len += 1;
    }
    let record = format!("{len} {body}");
    let mut x = tar::Header::new_ustar();
    x.set_path("PaxHeaders.0/layer.tar").unwrap();
    x.set_entry_type(EntryType::XHeader);
    x.set_size(record.len() as u64);
    x.set_cksum();
    let mut out = x.as_bytes().to_vec();
    out.extend_from_slice(record.as_bytes());
    out.resize(out.len() + pad(record.len() as u64), 0);
    out
}

/// The bytes around the zero run of [`stream`]: the headers of `huge/layer.tar` (PAX or
/// base-256 size), and after its data the padding, `small` with "abc" and the end marker.
fn parts(base256: bool) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::new();
    if !base256 {
        head.extend(pax_size(HUGE));
    }
    head.extend_from_slice(header("huge/layer.tar", HUGE, base256).as_bytes());
    let mut tail = vec![0u8; pad(HUGE)];
    let mut small = tar::Header::new_ustar();
    small.set_path("small").unwrap();
    small.set_size(3);
    small.set_mode(0o644);
    small.set_cksum();
    tail.extend_from_slice(small.as_bytes());
    tail.extend_from_slice(b"abc");
    tail.resize(tail.len() + pad(3) + 2 * BLOCK, 0);
    (head, tail)
}

/// A stream of `huge/layer.tar`, `HUGE` zero bytes, then `small`: generated as it is read.
fn stream(base256: bool) -> impl Read {
    let (head, tail) = parts(base256);
    io::Cursor::new(head)
        .chain(io::repeat(0).take(HUGE))
        .chain(io::Cursor::new(tail))
}

/// A sink that keeps the bytes outside the zero run `[skip_from, skip_from + skip_len)` and
/// checks that the run is zeros, so 8 GiB pass through without being stored.
struct Shape {
    kept: Vec<u8>,
    pos: u64,
    skip_from: u64,
    skip_len: u64,
    nonzero_in_run: bool,
}

impl Write for Shape {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        static ZEROS: [u8; 8192] = [0; 8192];
        let (start, end) = (self.pos, self.pos + buf.len() as u64);
        let (rs, re) = (self.skip_from, self.skip_from + self.skip_len);
        let at = |p: u64| (p.clamp(start, end) - start) as usize;
        self.kept.extend_from_slice(&buf[..at(rs)]);
        let run = &buf[at(rs)..at(re)];
        self.nonzero_in_run |= run.chunks(ZEROS.len()).any(|c| c != &ZEROS[..c.len()]);
        self.kept.extend_from_slice(&buf[at(re)..]);
        self.pos = end;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pass_through(base256: bool) {
    let mut r = TarReader::new(stream(base256));
    let head_len = if base256 { BLOCK } else { 3 * BLOCK } as u64;
    let mut w = TarWriter::new(Shape {
        kept: Vec::new(),
        pos: 0,
        skip_from: head_len,
        skip_len: HUGE,
        nonzero_in_run: false,
    });
    let h = r.next_entry().unwrap().unwrap();
    assert_eq!(h.name, "huge/layer.tar");
    assert_eq!(h.size, HUGE, "size read from the {} header", kind(base256));
    assert_eq!(h.raw.len() as u64, head_len, "every header block kept");
    w.write_raw(&h.raw).unwrap();
    let copied = io::copy(&mut r.data(), &mut w).unwrap();
    assert_eq!(copied, HUGE);
    w.pad(HUGE).unwrap();
    let s = r.next_entry().unwrap().unwrap();
    assert_eq!((s.name.as_str(), s.size), ("small", 3));
    let body = r.read_all(10).unwrap();
    w.write_entry(&s.raw, &body).unwrap();
    assert!(r.next_entry().unwrap().is_none(), "proper end after 8 GiB");
    let (shape, count) = w.finish().unwrap();
    assert!(!shape.nonzero_in_run);
    assert_eq!(count, shape.pos);

    // What was written is the input, byte for byte: everything but the zero run compared.
    let (head, tail) = parts(base256);
    let input = [head, tail].concat();
    assert!(
        shape.kept == input,
        "{} stream not passed through",
        kind(base256)
    );
    assert_eq!(count, input.len() as u64 + HUGE);

    // An independent reader (the tar crate) agrees on the size in what was written.
    let mut headers = io::Cursor::new(shape.kept[..head_len as usize].to_vec())
        .chain(io::repeat(0).take(HUGE))
        .chain(io::Cursor::new(shape.kept[head_len as usize..].to_vec()));
    let mut a = tar::Archive::new(&mut headers);
    let sizes: Vec<(String, u64)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.size())
        })
        .collect();
    assert_eq!(
        sizes,
        vec![
            ("huge/layer.tar".to_string(), HUGE),
            ("small".to_string(), 3)
        ]
    );
}

fn kind(base256: bool) -> &'static str {
    if base256 {
        "base-256"
    } else {
        "PAX"
    }
}

#[test]
fn entry_over_8_gib_with_pax_size_passes_through() {
    pass_through(false);
}

#[test]
fn entry_over_8_gib_with_base256_size_passes_through() {
    pass_through(true);
}

#[test]
fn the_sizes_really_are_beyond_the_octal_field() {
    // 11 octal digits hold at most 8 GiB - 1: the tests above are about something real.
    const { assert!(HUGE > 0o77777777777) };
    let h = header("x", HUGE, true);
    assert_eq!(h.as_bytes()[124] & 0x80, 0x80, "base-256 marker bit");
    assert_eq!(header("x", HUGE, false).size().unwrap(), 0);
}
