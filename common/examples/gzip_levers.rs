//! Measures the levers of the parallel gzip on a real file, e.g. a `docker save`:
//! zlib (flate2 with zlib-rs, what the codec used before) against libdeflate for independent
//! 1 MiB members at several levels, then the codec's own writer fed like the filter feeds it.
//!
//! ```sh
//! docker save app:2 > /tmp/app.tar
//! cargo run --release -p partial-common --example gzip_levers -- /tmp/app.tar [THREADS]
//! ```
//!
//! Prints, per engine and level, the single-thread speed (MB/s of input), the size relative to
//! the input, and the wall time of the whole file on THREADS threads (default: all cores).

use partial_common::codec::{self, Compression};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const CHUNK: usize = 1 << 20;

#[derive(Clone, Copy, Debug)]
enum Engine {
    Zlib,
    Libdeflate,
}

/// Whether a level-1 deflate of a few samples shrinks (the codec's store test).
fn compresses(e: Engine, data: &[u8]) -> bool {
    const PROBE: usize = 16 << 10;
    if data.len() < PROBE * 4 {
        return true;
    }
    let step = data.len() / 4;
    (0..4).any(|i| {
        let s = &data[i * step..i * step + PROBE];
        let n = member(e, 1, s, false).len();
        (n as f64) < s.len() as f64 * 0.97
    })
}

fn member(e: Engine, level: u32, data: &[u8], probe: bool) -> Vec<u8> {
    let level = if probe && !compresses(e, data) {
        0
    } else {
        level
    };
    match e {
        Engine::Zlib => {
            let mut enc =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            enc.write_all(data).expect("writing to a Vec");
            enc.finish().expect("finishing into a Vec")
        }
        Engine::Libdeflate => {
            let lvl = libdeflater::CompressionLvl::new(level as i32).expect("level 0..=12");
            let mut c = libdeflater::Compressor::new(lvl);
            let mut out = vec![0; c.gzip_compress_bound(data.len())];
            let n = c.gzip_compress(data, &mut out).expect("bound is enough");
            out.truncate(n);
            out
        }
    }
}

/// Compresses every chunk of `data` on `threads` threads; returns (wall s, output bytes).
fn whole(e: Engine, level: u32, data: &[u8], threads: usize) -> (f64, usize) {
    let next = AtomicUsize::new(0);
    let total = AtomicUsize::new(0);
    let chunks: Vec<&[u8]> = data.chunks(CHUNK).collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = chunks.get(i) else { break };
                total.fetch_add(member(e, level, c, true).len(), Ordering::Relaxed);
            });
        }
    });
    (t0.elapsed().as_secs_f64(), total.into_inner())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: gzip_levers FILE [THREADS]");
        std::process::exit(2);
    };
    let threads = args
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(codec::default_threads);
    let data = std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("reading {path}: {e}");
        std::process::exit(1);
    });
    let mb = data.len() as f64 / 1e6;
    // Single-thread speed on a sample of 64 chunks spread over the file.
    let stride = (data.len() / CHUNK / 64).max(1) * CHUNK;
    let sample: Vec<&[u8]> = data
        .chunks(CHUNK)
        .step_by(stride / CHUNK)
        .take(64)
        .collect();
    let sample_mb = sample.iter().map(|c| c.len()).sum::<usize>() as f64 / 1e6;
    println!(
        "{path}: {mb:.1} MB, {threads} thread(s), load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("engine      level  1-thread MB/s  size/input  wall {threads}T s  MB/s {threads}T");
    for e in [Engine::Zlib, Engine::Libdeflate] {
        for level in [1, 2, 3, 4, 6] {
            let t0 = Instant::now();
            for c in &sample {
                member(e, level, c, true);
            }
            let one = sample_mb / t0.elapsed().as_secs_f64();
            let (wall, out) = whole(e, level, &data, threads);
            println!(
                "{:<11} {level:>5}  {one:>13.1}  {:>10.3}  {wall:>9.2}  {:>8.1}",
                format!("{e:?}"),
                out as f64 / data.len() as f64,
                mb / wall
            );
        }
    }
    // The codec's writer, fed 64 KiB at a time like the filter feeds it.
    for level in [1, 6] {
        let t0 = Instant::now();
        let mut enc =
            codec::compress_with_threads(Vec::new(), Compression::Gzip, Some(level), threads)
                .expect("a valid level");
        for piece in data.chunks(64 << 10) {
            enc.write_all(piece).expect("writing to a Vec");
        }
        let out = enc.finish().expect("finishing into a Vec");
        let wall = t0.elapsed().as_secs_f64();
        println!(
            "codec writer level {level}: {wall:.2} s, {:.1} MB/s, size/input {:.3}",
            mb / wall,
            out.len() as f64 / data.len() as f64
        );
    }
}
