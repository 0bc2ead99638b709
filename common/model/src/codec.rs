//! Compression of the bundle stream: the [`Compression`] choice (gzip, zstd or none), a
//! compressing writer that uses every core ([`compress`]), and a decoder that sniffs the format
//! from the magic bytes ([`decompress`], [`detect`]).
//!
//! Gzip is compressed pigz-style: the input is cut into independent 1 MiB chunks, each compressed
//! into its own gzip member on a worker thread with libdeflate (whole-buffer deflate, 2-3x faster
//! than zlib at the same ratio), and the members are written in order; chunks that do not
//! compress are stored, and so are the bytes its writer says are already compressed
//! ([`StoreHint`]: a gzip or zstd layer blob gains about 1 % from a second deflate, at the
//! cost of most of an export's CPU). Every gzip reader that matters (`gzip -d`, Go's `compress/gzip` used by
//! `docker load`, flate2's `MultiGzDecoder`) reads a multi-member file as one stream. Zstd uses
//! libzstd's own worker threads.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Cursor, Read, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Errors choosing a codec or level.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("unknown compression {0:?} (expected gzip, zstd or none)")]
    UnknownCompression(String),
    #[error("compression level {level} is out of range for {codec} ({min}..={max})")]
    BadLevel {
        codec: Compression,
        level: i32,
        min: i32,
        max: i32,
    },
    #[error("cannot start the {codec} compressor: {source}")]
    Start {
        codec: Compression,
        #[source]
        source: io::Error,
    },
}

/// How the bundle stream is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (multi-member when compressed in parallel); what every `docker load` reads.
    #[default]
    Gzip,
    /// Zstandard; smaller and faster, read by `docker load` since Docker 23.
    Zstd,
    /// No compression: the tar as it is.
    None,
}

impl Compression {
    /// Every variant, for help texts.
    pub const ALL: [Compression; 3] = [Compression::Gzip, Compression::Zstd, Compression::None];

    /// The name used on the command line and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    /// The level used when none is given: gzip 4, zstd 3, none 0. Gzip is libdeflate's level
    /// 4: on application layers its output is a little smaller than zlib's (and `gzip`'s)
    /// level 6, at about twice the speed (docs/benchmarks.md, "Gzip levers").
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Gzip => 4,
            Compression::Zstd => 3,
            Compression::None => 0,
        }
    }

    /// The accepted levels: gzip 0..=9, zstd -7..=22, none 0..=0.
    pub fn level_range(self) -> (i32, i32) {
        match self {
            Compression::Gzip => (0, 9),
            Compression::Zstd => (-7, 22),
            Compression::None => (0, 0),
        }
    }

    /// A file-name extension without the dot: `gz`, `zst`, or `""` for none.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "gz",
            Compression::Zstd => "zst",
            Compression::None => "",
        }
    }

    /// `level` if given and in range, else the default level.
    pub fn check_level(self, level: Option<i32>) -> Result<i32, CodecError> {
        let level = match level {
            None => return Ok(self.default_level()),
            Some(l) => l,
        };
        let (min, max) = self.level_range();
        if self == Compression::None || (min..=max).contains(&level) {
            Ok(level)
        } else {
            Err(CodecError::BadLevel {
                codec: self,
                level,
                min,
                max,
            })
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Compression {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            "none" => Ok(Compression::None),
            _ => Err(CodecError::UnknownCompression(s.to_string())),
        }
    }
}

/// The number of threads used by default: the cores available to this process.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A compressing writer made by [`compress`]; call [`Encoder::finish`] to end the stream.
pub struct Encoder<W: Write + Send + 'static> {
    inner: Inner<W>,
}

/// Where the writer of a compressed stream says that the next bytes it writes are already
/// compressed (a gzip or zstd layer blob inside the tar): the parallel gzip encoder stores them
/// without trying, in members of their own. The other encoders ignore it (zstd notices
/// incompressible input by itself). A clone speaks to the same encoder.
#[derive(Clone, Debug, Default)]
pub struct StoreHint(Arc<AtomicU64>);

impl StoreHint {
    /// The next `n` bytes written to the encoder are already compressed.
    pub fn next_bytes_compressed(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes up to `max` of the bytes announced as compressed.
    fn take(&self, max: usize) -> usize {
        let mut left = self.0.load(Ordering::Relaxed);
        loop {
            let n = left.min(max as u64);
            match self
                .0
                .compare_exchange_weak(left, left - n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return n as usize,
                Err(now) => left = now,
            }
        }
    }
}

enum Inner<W: Write + Send + 'static> {
    GzipSingle(flate2::write::GzEncoder<W>),
    GzipParallel(ParGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

/// Wraps `w` in a compressor for `c`, using every available core (see [`compress_with_threads`]).
/// `level` defaults to [`Compression::default_level`].
pub fn compress<W: Write + Send + 'static>(
    w: W,
    c: Compression,
    level: Option<i32>,
) -> Result<Encoder<W>, CodecError> {
    compress_with_threads(w, c, level, default_threads())
}

/// Like [`compress`] with an explicit thread count. With `threads <= 1` gzip is one ordinary
/// single-member stream and zstd runs on the calling thread; with more, gzip is compressed as
/// independent members on `threads` workers and zstd uses `threads` libzstd workers.
pub fn compress_with_threads<W: Write + Send + 'static>(
    w: W,
    c: Compression,
    level: Option<i32>,
    threads: usize,
) -> Result<Encoder<W>, CodecError> {
    let level = c.check_level(level)?;
    let inner = match c {
        Compression::None => Inner::None(w),
        Compression::Gzip if threads <= 1 => Inner::GzipSingle(flate2::write::GzEncoder::new(
            w,
            flate2::Compression::new(level as u32),
        )),
        Compression::Gzip => {
            Inner::GzipParallel(ParGzEncoder::new(w, level as u32, threads, GZIP_CHUNK))
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(w, level)
                .map_err(|source| CodecError::Start { codec: c, source })?;
            if threads > 1 {
                enc.multithread(threads as u32)
                    .map_err(|source| CodecError::Start { codec: c, source })?;
                // Smaller jobs than libzstd's default (4 windows) keep memory flat: the
                // exporter's peak RSS target is 64 MiB whatever the image size.
                enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))
                    .map_err(|source| CodecError::Start { codec: c, source })?;
            }
            Inner::Zstd(enc)
        }
    };
    Ok(Encoder { inner })
}

/// A gzip writer whose output depends only on the input and `level`, never on `threads` (at
/// least one worker is used): independent gzip members of [`GZIP_CHUNK`] input bytes each, with
/// libdeflate's fixed header (no name, no time). Used where the compressed bytes name a blob (a
/// layer pushed to a registry), so that compressing the same layer again gives the same digest.
pub fn gzip_deterministic<W: Write + Send + 'static>(
    w: W,
    level: Option<i32>,
    threads: usize,
) -> Result<Encoder<W>, CodecError> {
    let level = Compression::Gzip.check_level(level)?;
    Ok(Encoder {
        inner: Inner::GzipParallel(ParGzEncoder::new(
            w,
            level as u32,
            threads.max(1),
            GZIP_CHUNK,
        )),
    })
}

impl<W: Write + Send + 'static> Encoder<W> {
    /// The hint through which this encoder's writer announces already-compressed bytes.
    pub fn store_hint(&self) -> StoreHint {
        match &self.inner {
            Inner::GzipParallel(e) => e.hint.clone(),
            _ => StoreHint::default(),
        }
    }

    /// Writes what is buffered and the stream's trailer, and returns the inner writer (not
    /// flushed beyond what the codec writes; flush or commit it yourself).
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::GzipSingle(e) => e.finish(),
            Inner::GzipParallel(e) => e.finish(),
            Inner::Zstd(e) => e.finish(),
            Inner::None(w) => Ok(w),
        }
    }
}

impl<W: Write + Send + 'static> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::GzipSingle(e) => e.write(buf),
            Inner::GzipParallel(e) => e.write(buf),
            Inner::Zstd(e) => e.write(buf),
            Inner::None(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::GzipSingle(e) => e.flush(),
            Inner::GzipParallel(e) => e.flush(),
            Inner::Zstd(e) => e.flush(),
            Inner::None(w) => w.flush(),
        }
    }
}

/// Input bytes per gzip member. Large enough that the per-member cost (a fresh 32 KiB window and
/// a 20-byte header and trailer) is negligible, small enough that the chunks in flight stay a few
/// MiB (the exporter's peak RSS target is 64 MiB).
const GZIP_CHUNK: usize = 1 << 20;

/// Bytes per libzstd worker job.
const ZSTD_JOB: u32 = 2 << 20;

/// Bytes of each of the samples of a gzip chunk tried at level 1 to tell whether the chunk
/// compresses at all.
const GZIP_PROBE: usize = 16 << 10;

/// Samples per chunk, spread evenly over it.
const GZIP_PROBES: usize = 4;

/// A chunk whose probe shrinks less than this (compressed/original) is stored, not deflated:
/// already-compressed or random data costs deflate its most time and gains nothing.
const GZIP_STORE_RATIO: f64 = 0.97;

/// A chunk to compress, a buffer for its member (both recycled), and where to send them back.
struct Job {
    data: Vec<u8>,
    member: Vec<u8>,
    /// Already compressed: store without probing.
    store: bool,
    reply: SyncSender<(Vec<u8>, Vec<u8>)>,
}

/// Pigz-style parallel gzip: chunks are compressed as independent gzip members on worker
/// threads and written in input order by the calling thread. The chunk and member buffers go
/// round (writer → worker → writer) instead of being allocated for every MiB.
struct ParGzEncoder<W: Write> {
    /// Always `Some` until `finish` takes it.
    out: Option<W>,
    buf: Vec<u8>,
    chunk: usize,
    jobs: Option<SyncSender<Job>>,
    pending: VecDeque<Receiver<(Vec<u8>, Vec<u8>)>>,
    max_pending: usize,
    workers: Vec<JoinHandle<()>>,
    members: u64,
    /// Buffers back from the workers, for the next chunks and members.
    free: Vec<(Vec<u8>, Vec<u8>)>,
    /// Announced already-compressed bytes (see [`StoreHint`]).
    hint: StoreHint,
    /// Whether `buf` holds such bytes (it never mixes them with others).
    buf_stored: bool,
}

impl<W: Write> ParGzEncoder<W> {
    fn new(out: W, level: u32, threads: usize, chunk: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(threads);
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&rx);
                std::thread::spawn(move || {
                    let mut gz = MemberCompressor::new(level);
                    loop {
                        let job = {
                            let guard = match rx.lock() {
                                Ok(g) => g,
                                Err(_) => return,
                            };
                            guard.recv()
                        };
                        let Ok(Job {
                            data,
                            mut member,
                            store,
                            reply,
                        }) = job
                        else {
                            return;
                        };
                        gz.member(&data, &mut member, store);
                        // The receiver is gone only when the encoder was dropped: nothing to do.
                        let _ = reply.send((data, member));
                    }
                })
            })
            .collect();
        ParGzEncoder {
            out: Some(out),
            buf: Vec::with_capacity(chunk),
            chunk,
            jobs: Some(tx),
            pending: VecDeque::new(),
            max_pending: threads * 4,
            workers,
            members: 0,
            free: Vec::new(),
            hint: StoreHint::default(),
            buf_stored: false,
        }
    }

    /// Hands the buffered chunk to a worker (even when empty, for the single member of an empty
    /// stream).
    fn dispatch(&mut self) -> io::Result<()> {
        let (mut next, member) = self.free.pop().unwrap_or_default();
        next.clear();
        next.reserve(self.chunk);
        let data = std::mem::replace(&mut self.buf, next);
        let (reply, reply_rx) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(worker_gone)?;
        jobs.send(Job {
            data,
            member,
            store: self.buf_stored,
            reply,
        })
        .map_err(|_| worker_gone())?;
        self.pending.push_back(reply_rx);
        self.members += 1;
        while self.pending.len() > self.max_pending {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.pending.pop_front() {
            let (data, member) = rx.recv().map_err(|_| worker_gone())?;
            self.out
                .as_mut()
                .ok_or_else(worker_gone)?
                .write_all(&member)?;
            self.free.push((data, member));
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.members == 0 {
            self.dispatch()?;
        }
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.stop_workers();
        self.out.take().ok_or_else(worker_gone)
    }

    fn stop_workers(&mut self) {
        self.jobs = None;
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<W: Write> Drop for ParGzEncoder<W> {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

impl<W: Write> ParGzEncoder<W> {
    /// Buffers `data`, all of it already compressed (`stored`) or none, dispatching each full
    /// chunk; a chunk holds one kind only, so a change of kind dispatches a partial one.
    fn buffer(&mut self, mut data: &[u8], stored: bool) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        if stored != self.buf_stored && !self.buf.is_empty() {
            self.dispatch()?;
        }
        self.buf_stored = stored;
        while !data.is_empty() {
            let room = self.chunk - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == self.chunk {
                self.dispatch()?;
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let stored = self.hint.take(data.len());
        self.buffer(&data[..stored], true)?;
        self.buffer(&data[stored..], false)?;
        Ok(data.len())
    }

    /// Writes out the members already compressed; the partial chunk stays buffered so that
    /// flushing does not cut members short.
    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

fn worker_gone() -> io::Error {
    io::Error::other("a gzip compression thread stopped unexpectedly")
}

/// Makes gzip members with libdeflate (whole-buffer deflate, 2-3x faster than zlib at the same
/// ratio; a member is a whole 1 MiB chunk, so no streaming API is needed). One per worker.
struct MemberCompressor {
    level: u32,
    deflate: libdeflater::Compressor,
    store: libdeflater::Compressor,
    probe: libdeflater::Compressor,
    scratch: Vec<u8>,
}

impl MemberCompressor {
    fn new(level: u32) -> Self {
        let lvl = |l: u32| {
            libdeflater::CompressionLvl::new(l as i32)
                .unwrap_or_else(|_| libdeflater::CompressionLvl::default())
        };
        MemberCompressor {
            level,
            deflate: libdeflater::Compressor::new(lvl(level)),
            store: libdeflater::Compressor::new(lvl(0)),
            probe: libdeflater::Compressor::new(lvl(1)),
            scratch: Vec::new(),
        }
    }

    /// Whether a level-1 deflate of any of a few samples spread over `data` shrinks it
    /// noticeably.
    fn compresses(&mut self, data: &[u8]) -> bool {
        if data.len() < GZIP_PROBE * GZIP_PROBES {
            return true;
        }
        let bound = self.probe.deflate_compress_bound(GZIP_PROBE);
        self.scratch.resize(bound, 0);
        let step = data.len() / GZIP_PROBES;
        (0..GZIP_PROBES).any(|i| {
            let sample = &data[i * step..i * step + GZIP_PROBE];
            let out = self
                .probe
                .deflate_compress(sample, &mut self.scratch)
                .unwrap_or(sample.len());
            (out as f64) < sample.len() as f64 * GZIP_STORE_RATIO
        })
    }

    /// Replaces `member` with one complete gzip member holding `data`. Chunks that do not
    /// compress (level-1 probes of a few samples barely shrink) are stored at level 0, which is
    /// many times faster and no bigger.
    /// `store`: the chunk is known to be compressed already.
    fn member(&mut self, data: &[u8], member: &mut Vec<u8>, store: bool) {
        let stored = self.level == 0 || store || !self.compresses(data);
        let c = if stored {
            &mut self.store
        } else {
            &mut self.deflate
        };
        member.resize(c.gzip_compress_bound(data.len()), 0);
        // The bound is libdeflate's guarantee, so this cannot fail; stay valid if it did.
        let n = match c.gzip_compress(data, member) {
            Ok(n) => n,
            Err(_) => {
                member.clear();
                let mut enc = flate2::write::GzEncoder::new(
                    std::mem::take(member),
                    flate2::Compression::new(self.level),
                );
                let _ = enc.write_all(data);
                *member = enc.finish().unwrap_or_default();
                member.len()
            }
        };
        member.truncate(n);
    }
}

/// The compression whose magic starts `prefix` (gzip `1f 8b`, zstd `28 b5 2f fd`); anything
/// else, including a too-short prefix, is [`Compression::None`].
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Reads the first bytes of `r`, and returns a reader of the decompressed stream: gzip (every
/// member), zstd (every frame), or the bytes unchanged when neither magic is present. The sniffed
/// bytes are not lost.
pub fn decompress<R: Read + Send + 'static>(r: R) -> io::Result<Box<dyn Read + Send>> {
    let (c, r) = sniff(r)?;
    Ok(match c {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        Compression::None => Box::new(r),
    })
}

/// A reader that replays the sniffed prefix, then the rest of the stream.
pub type Sniffed<R> = io::Chain<Cursor<Vec<u8>>, R>;

/// Reads up to 4 bytes of `r` and returns the detected compression together with a reader that
/// still yields every byte of `r`.
pub fn sniff<R: Read>(mut r: R) -> io::Result<(Compression, Sniffed<R>)> {
    let mut prefix = [0u8; 4];
    let mut n = 0;
    while n < prefix.len() {
        match r.read(&mut prefix[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let c = detect(&prefix[..n]);
    Ok((c, Cursor::new(prefix[..n].to_vec()).chain(r)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// Semi-compressible data: text-like runs mixed with pseudo-random bytes.
    fn sample(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut x: u64 = 0x9e3779b97f4a7c15;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 < 1 {
                out.extend_from_slice(&x.to_le_bytes());
            } else {
                out.extend_from_slice(b"layer.tar manifest.json repositories ");
            }
        }
        out.truncate(len);
        out
    }

    fn round_trip(c: Compression, threads: usize, data: &[u8]) -> Vec<u8> {
        let mut enc = compress_with_threads(Vec::new(), c, None, threads).unwrap();
        // Odd write sizes to cross chunk boundaries.
        for piece in data.chunks(777_777) {
            enc.write_all(piece).unwrap();
        }
        let packed = enc.finish().unwrap();
        assert_eq!(detect(&packed), c, "detect {c}");
        let mut out = Vec::new();
        decompress(Cursor::new(packed.clone()))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), data.len(), "{c} threads={threads}");
        assert!(out == data, "{c} threads={threads}: content differs");
        packed
    }

    fn gzip_member(data: &[u8], level: u32) -> Vec<u8> {
        let mut member = Vec::new();
        MemberCompressor::new(level).member(data, &mut member, false);
        member
    }

    /// Incompressible bytes.
    fn random(len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        let mut x: u64 = 0x2545f4914f6cdd1d;
        for b in out.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        out
    }

    #[test]
    fn incompressible_chunks_are_stored_and_others_deflated() {
        let random = random(GZIP_CHUNK);
        let mut gz = MemberCompressor::new(6);
        assert!(!gz.compresses(&random));
        let stored = gzip_member(&random, 6);
        // Stored blocks cost a few bytes per block plus the gzip header and trailer.
        assert!(stored.len() < random.len() + 200, "{}", stored.len());
        // Half random, half text: one compressible sample is enough to deflate the chunk.
        let mut mixed = random.clone();
        for (i, b) in mixed[GZIP_CHUNK / 2..].iter_mut().enumerate() {
            *b = b"layer text "[i % 11];
        }
        assert!(gz.compresses(&mixed));
        assert!(gzip_member(&mixed, 6).len() < GZIP_CHUNK * 6 / 10);
        for member in [stored, gzip_member(&mixed, 6)] {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(&member[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out.len(), GZIP_CHUNK);
        }
    }

    /// Text, a run announced as compressed (text too, so that only the hint can store it),
    /// and text again: the announced run is stored, in members of its own, and the rest
    /// deflated; the whole reads back as written.
    #[test]
    fn bytes_announced_compressed_are_stored_and_the_rest_deflated() {
        let text: Vec<u8> = b"layer text "
            .iter()
            .cycle()
            .take(GZIP_CHUNK * 3)
            .copied()
            .collect();
        let (head, run, tail) = (1000, GZIP_CHUNK + 4321, 5000);
        let packed = |hinted: bool| {
            let mut enc = compress_with_threads(Vec::new(), Compression::Gzip, None, 2).unwrap();
            let hint = enc.store_hint();
            enc.write_all(&text[..head]).unwrap();
            if hinted {
                hint.next_bytes_compressed(run as u64);
            }
            // Odd pieces, so that the announced run ends inside a write.
            for piece in text[head..head + run + tail].chunks(100_003) {
                enc.write_all(piece).unwrap();
            }
            enc.finish().unwrap()
        };
        let (plain, hinted) = (packed(false), packed(true));
        assert!(plain.len() < run / 50, "text deflates: {}", plain.len());
        assert!(hinted.len() > run, "the run is stored: {}", hinted.len());
        assert!(
            hinted.len() < run + head + tail,
            "the rest deflates: {}",
            hinted.len()
        );
        let mut out = Vec::new();
        decompress(Cursor::new(hinted))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == text[..head + run + tail], "content differs");
        // Zstd and a single thread take the hint and ignore it.
        let enc = compress_with_threads(Vec::new(), Compression::Zstd, None, 2).unwrap();
        enc.store_hint().next_bytes_compressed(10);
        assert!(enc.finish().unwrap().len() < 100);
    }

    #[test]
    fn every_gzip_level_round_trips_and_higher_levels_are_not_bigger() {
        let data = sample(GZIP_CHUNK * 2 + 999);
        let mut sizes = Vec::new();
        for level in 0..=9 {
            let mut enc =
                compress_with_threads(Vec::new(), Compression::Gzip, Some(level), 2).unwrap();
            enc.write_all(&data).unwrap();
            let packed = enc.finish().unwrap();
            let mut out = Vec::new();
            decompress(Cursor::new(packed.clone()))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == data, "level {level}");
            sizes.push(packed.len());
        }
        assert!(sizes[0] > data.len(), "level 0 stores");
        assert!(
            sizes[1] < data.len() * 8 / 10,
            "level 1 deflates: {sizes:?}"
        );
        assert!(sizes[6] <= sizes[1] && sizes[9] <= sizes[6], "{sizes:?}");
    }

    /// Recycled buffers must never leak bytes of an earlier, longer chunk into a later member.
    #[test]
    fn recycled_buffers_carry_nothing_over() {
        let long = sample(GZIP_CHUNK);
        let mut enc = compress_with_threads(Vec::new(), Compression::Gzip, None, 2).unwrap();
        for _ in 0..20 {
            enc.write_all(&long).unwrap();
        }
        enc.write_all(b"tail").unwrap();
        let packed = enc.finish().unwrap();
        let mut out = Vec::new();
        decompress(Cursor::new(packed))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 20 * GZIP_CHUNK + 4);
        assert!(out[..GZIP_CHUNK] == long[..] && out[19 * GZIP_CHUNK..20 * GZIP_CHUNK] == long[..]);
        assert_eq!(&out[20 * GZIP_CHUNK..], b"tail");
    }

    #[test]
    fn round_trips_every_codec() {
        let data = sample(9 << 20); // more than two gzip chunks
        for c in Compression::ALL {
            for threads in [1, 2, 3] {
                round_trip(c, threads, &data);
            }
        }
    }

    #[test]
    fn deterministic_gzip_is_the_same_whatever_the_threads() {
        let mut data = sample(GZIP_CHUNK * 3 + 12345);
        data.extend(random(GZIP_CHUNK));
        let pack = |threads| {
            let mut enc = gzip_deterministic(Vec::new(), None, threads).unwrap();
            enc.write_all(&data).unwrap();
            enc.finish().unwrap()
        };
        let one = pack(1);
        assert_eq!(one, pack(3));
        assert_eq!(one, pack(1), "the same bytes again");
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&one[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == data);
    }

    #[test]
    fn parallel_gzip_is_multi_member_and_decodes_fully() {
        let data = sample(GZIP_CHUNK * 2 + 5);
        let packed = round_trip(Compression::Gzip, 2, &data);
        // Three members: count the member headers by decoding one member at a time.
        let mut members = 0;
        let mut rest: &[u8] = &packed;
        while !rest.is_empty() {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            let mut sink = Vec::new();
            d.read_to_end(&mut sink).unwrap();
            rest = d.into_inner();
            members += 1;
        }
        assert_eq!(members, 3);
        // A single-member decoder stops after the first member: the multi-member one must not.
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(Cursor::new(&packed))
            .read_to_end(&mut first)
            .unwrap();
        assert_eq!(first.len(), GZIP_CHUNK);
    }

    #[test]
    fn empty_streams_round_trip() {
        for c in Compression::ALL {
            for threads in [1, 2] {
                let packed = round_trip(c, threads, b"");
                if c != Compression::None {
                    assert!(!packed.is_empty(), "{c} must write a header");
                }
            }
        }
    }

    #[test]
    fn passthrough_keeps_sniffed_bytes() {
        for data in [
            &b""[..],
            b"a",
            b"\x1f",
            b"abc",
            b"abcd",
            b"hello world, plain tar",
        ] {
            let mut out = Vec::new();
            decompress(Cursor::new(data.to_vec()))
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, data);
        }
    }

    /// A reader that hands out one byte per call, to check the sniffing loop.
    struct Trickle(Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn sniffing_survives_short_reads() {
        let data = sample(100_000);
        let mut enc = compress(Vec::new(), Compression::Zstd, Some(1)).unwrap();
        enc.write_all(&data).unwrap();
        let packed = enc.finish().unwrap();
        let mut out = Vec::new();
        decompress(Trickle(Cursor::new(packed)))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert!(out == data);
    }

    #[test]
    fn detect_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f]), Compression::None);
        assert_eq!(detect(b"ustar"), Compression::None);
        assert_eq!(detect(b""), Compression::None);
    }

    #[test]
    fn names_and_levels() {
        for c in Compression::ALL {
            assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{c}\""));
            assert_eq!(serde_json::from_str::<Compression>(&json).unwrap(), c);
        }
        assert!("lz4".parse::<Compression>().is_err());
        assert_eq!(Compression::Gzip.check_level(None).unwrap(), 4);
        assert_eq!(Compression::Zstd.check_level(None).unwrap(), 3);
        assert!(Compression::Gzip.check_level(Some(10)).is_err());
        assert!(Compression::Zstd.check_level(Some(23)).is_err());
        assert!(compress(Vec::new(), Compression::Gzip, Some(42)).is_err());
    }

    /// The stock tools decode what we write (skipped loudly when they are missing).
    #[test]
    fn stock_tools_decode_output() {
        // A deflated member, a stored one (random bytes), and a short deflated tail.
        let mut data = sample(GZIP_CHUNK);
        data.extend(random(GZIP_CHUNK));
        data.extend(sample(12345));
        for (c, tool) in [(Compression::Gzip, "gzip"), (Compression::Zstd, "zstd")] {
            if !partial_core::testutil::gate::have_tool(tool, "--version") {
                continue;
            }
            let mut enc = compress_with_threads(Vec::new(), c, None, 2).unwrap();
            enc.write_all(&data).unwrap();
            let packed = enc.finish().unwrap();
            let packed_copy = packed.clone();
            let mut child = Command::new(tool)
                .args(["-d", "-c"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let writer = std::thread::spawn(move || stdin.write_all(&packed).unwrap());
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap();
            assert!(out.status.success(), "{tool} -d failed");
            assert!(out.stdout == data, "{tool} -d gave other bytes");
            if c == Compression::Gzip {
                let mut t = Command::new("gzip")
                    .arg("-t")
                    .stdin(Stdio::piped())
                    .spawn()
                    .unwrap();
                t.stdin.take().unwrap().write_all(&packed_copy).unwrap();
                assert!(t.wait().unwrap().success(), "gzip -t refused the stream");
            }
        }
    }
}
