//! Measures the layer delta engine: index, encode and decode throughput, delta size and peak
//! memory, on two layer tars (`delta_bench OLD.tar NEW.tar`) or, without arguments, on a
//! generated 167 MB application tree rebuilt with one file changed.
//!
//! `nice -n 10 cargo run --release -p partial-common --example delta_bench`

use partial_common::delta;
use partial_delta_encode::{ChunkIndex, EncodeOptions, Encoded, Sketch};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir()?;
    let (old, new) = match args.as_slice() {
        [old, new] => (PathBuf::from(old), PathBuf::from(new)),
        [] => generate(dir.path(), 167_000_000)?,
        _ => return Err("usage: delta_bench [OLD.tar NEW.tar]".into()),
    };
    let old_size = std::fs::metadata(&old)?.len();
    let new_size = std::fs::metadata(&new)?.len();
    println!("reference {old_size} bytes, new layer {new_size} bytes");

    let t = Instant::now();
    let index = ChunkIndex::build(BufReader::new(File::open(&old)?))?;
    report(
        "index",
        old_size,
        t,
        format!(
            "{} chunks, ~{} KiB of index",
            index.chunk_count(),
            index.heap_bytes() >> 10
        ),
    );

    let t = Instant::now();
    let sketch = Sketch::of_layer(BufReader::new(File::open(&new)?))?;
    let estimate = index.estimate(&sketch).unwrap_or(0.0);
    report(
        "sketch",
        new_size,
        t,
        format!("estimated shared: {:.1}%", estimate * 100.0),
    );

    let delta_path = dir.path().join("layer.delta");
    let t = Instant::now();
    let mut out = BufWriter::new(File::create(&delta_path)?);
    let encoded = partial_delta_encode::encode(
        &index,
        &mut BufReader::new(File::open(&old)?),
        BufReader::new(File::open(&new)?),
        &mut out,
        &EncodeOptions::default(),
    )?;
    out.flush()?;
    report("encode", new_size, t, encoded_text(&encoded));
    let Encoded::Delta(summary) = encoded else {
        return Ok(());
    };

    let t = Instant::now();
    let rebuilt = delta::decode(
        BufReader::new(File::open(&delta_path)?),
        &mut File::open(&old)?,
        index.diff_id(),
        io::sink(),
        Some(&summary.target_diff_id),
    )?;
    report(
        "decode",
        rebuilt.size,
        t,
        format!("rebuilt {}", rebuilt.diff_id),
    );
    println!("peak RSS {} MiB", peak_rss_kib() >> 10);
    Ok(())
}

/// What the encoder made: delta size and encoding, bytes copied from the reference and literal.
fn encoded_text(encoded: &Encoded) -> String {
    let s = encoded.summary();
    format!(
        "{} delta {} bytes ({}; chunks {}, patch {}), copied {} / literal {} bytes",
        if matches!(encoded, Encoded::Delta(_)) {
            ""
        } else {
            "NO GAIN,"
        },
        s.delta_size,
        s.encoding.as_str(),
        s.chunks_size,
        s.patch_size
            .map_or("not tried".to_string(), |p| p.to_string()),
        s.copied_bytes,
        s.literal_bytes
    )
}

fn report(what: &str, bytes: u64, since: Instant, detail: String) {
    let secs = since.elapsed().as_secs_f64();
    println!(
        "{what:7} {secs:7.3} s {:8.1} MB/s  {detail}",
        bytes as f64 / 1e6 / secs
    );
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes `old.tar` (a generated tree of about `size` bytes, half binary, half text) and
/// `new.tar` (the same tree with 3000 bytes of one file changed).
fn generate(dir: &Path, size: u64) -> io::Result<(PathBuf, PathBuf)> {
    let paths = (dir.join("old.tar"), dir.join("new.tar"));
    for (path, changed) in [(&paths.0, false), (&paths.1, true)] {
        let mut tar = tar::Builder::new(BufWriter::new(File::create(path)?));
        let mut total = 0u64;
        let mut i = 0u64;
        while total < size {
            let len =
                1024 + (Rng(i * 31 + 7).next() % (64 << 10)) as usize * (1 + i as usize % 16) / 4;
            let mut content = file_content(i, len);
            if changed && i == 500 {
                let n = len.min(3000);
                content[..n].fill(b'#');
            }
            let mut header = tar::Header::new_gnu();
            header.set_size(len as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            header.set_cksum();
            tar.append_data(
                &mut header,
                format!("app/dir{}/file{i}", i % 13),
                &content[..],
            )?;
            total += len as u64;
            i += 1;
        }
        tar.into_inner()?.flush()?;
    }
    Ok(paths)
}

fn file_content(i: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(i + 1);
    let mut out = Vec::with_capacity(len + 8);
    if i & 1 == 0 {
        while out.len() < len {
            out.extend_from_slice(&rng.next().to_le_bytes());
        }
    } else {
        const WORDS: [&[u8]; 8] = [
            b"layer ", b"image ", b"fn ", b"let ", b"\n", b"{ ", b"} ", b"0x1f ",
        ];
        while out.len() < len {
            out.extend_from_slice(WORDS[(rng.next() % 8) as usize]);
        }
    }
    out.truncate(len);
    out
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
