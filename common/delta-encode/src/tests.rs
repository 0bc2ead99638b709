//! Round trips and failure cases of the delta engine on generated layer tars.

use crate::*;
use partial_common::delta::format::{HEADER_LEN, OP_COPY, OP_END, OP_LITERAL};
use partial_common::delta::*;
use partial_common::Digest;
use std::io::{self, Cursor, Read, Write};

/// Deterministic bytes (xorshift64*), incompressible.
pub(crate) fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text-like bytes: words drawn from a small vocabulary (compressible, like sources and configs).
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "layer", "image", "fn ", "let ", "return", "\n", "docker", "{ ", "} ", "config", "0x1f",
        "== ",
    ];
    let noise = pseudo_random(seed, len);
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(WORDS[noise[i % noise.len()] as usize % WORDS.len()].as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// A generated application tree: `(path, content)`, about `total` bytes, half binary, half text.
pub(crate) fn tree(seed: u64, total: usize) -> Vec<(String, Vec<u8>)> {
    let sizes = pseudo_random(seed ^ 0xABCD, 4096);
    let mut files = Vec::new();
    let mut size = 0;
    let mut i = 0;
    while size < total {
        // 1 KiB .. 1 MiB, mostly small.
        let s = 1024
            + (u32::from_le_bytes([sizes[i % 4096], sizes[(i + 1) % 4096], 0, 0]) as usize)
                * (1 + i % 16);
        let content = if i & 1 == 0 {
            pseudo_random(seed * 1_000_003 + i as u64, s)
        } else {
            text(seed * 1_000_003 + i as u64, s)
        };
        files.push((format!("app/dir{}/file{i}.bin", i % 7), content));
        size += s;
        i += 1;
    }
    files
}

/// The tar of a tree, with fixed metadata as a reproducible build would write.
pub(crate) fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, path, &content[..])
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// Encodes `new` against `reference`; returns the result and the delta bytes.
fn encode_with(reference: &[u8], new: &[u8], opts: &EncodeOptions) -> (Encoded, Vec<u8>) {
    let index = ChunkIndex::build(reference).unwrap();
    let mut delta = Vec::new();
    let encoded = encode(&index, &mut Cursor::new(reference), new, &mut delta, opts).unwrap();
    (encoded, delta)
}

fn decode_with(delta: &[u8], reference: &[u8]) -> Result<(DecodeSummary, Vec<u8>), DeltaError> {
    let mut out = Vec::new();
    let summary = decode(
        delta,
        &mut Cursor::new(reference),
        &Digest::of_bytes(reference),
        &mut out,
        None,
    )?;
    Ok((summary, out))
}

fn chunks_only() -> EncodeOptions {
    EncodeOptions {
        patch_max_reference: 0,
        ..EncodeOptions::default()
    }
}

/// The tar of a ~`size` tree and the same tree with one small file's content changed.
fn rebuild_pair(seed: u64, size: usize) -> (Vec<u8>, Vec<u8>) {
    let mut files = tree(seed, size);
    let old = tar_of(&files);
    let middle = files.len() / 2 + 1;
    let (_, content) = &mut files[middle];
    let len = content.len().min(3000);
    content[..len].copy_from_slice(&pseudo_random(seed + 77, len));
    (old, tar_of(&files))
}

/// Where each operation of a chunk-encoded delta starts: (tag, offset).
fn ops_of(delta: &[u8]) -> Vec<(u8, usize)> {
    let mut ops = Vec::new();
    let mut at = HEADER_LEN;
    loop {
        let tag = delta[at];
        ops.push((tag, at));
        at += match tag {
            OP_COPY => 17,
            OP_LITERAL => {
                9 + u32::from_le_bytes(delta[at + 5..at + 9].try_into().unwrap()) as usize
            }
            _ => return ops,
        };
    }
}

#[test]
fn rebuilt_layer_with_one_file_changed_is_a_tiny_delta() {
    let (old, new) = rebuild_pair(1, 20 << 20);
    assert_ne!(old, new);
    let (encoded, delta) = encode_with(&old, &new, &EncodeOptions::default());
    let Encoded::Delta(summary) = encoded else {
        panic!("no gain on a rebuild: {encoded:?}")
    };
    assert_eq!(summary.encoding, Encoding::Chunks);
    assert_eq!(summary.patch_size, None, "20 MiB is above the patch limit");
    assert_eq!(summary.delta_size, delta.len() as u64);
    assert!(delta.len() < 1 << 20, "delta is {} bytes", delta.len());
    assert!(
        delta.len() < new.len() / 50,
        "delta is {} bytes",
        delta.len()
    );
    assert!(summary.copied_bytes > new.len() as u64 * 95 / 100);
    assert_eq!(
        summary.copied_bytes + summary.literal_bytes,
        new.len() as u64
    );
    eprintln!(
        "one file changed: delta {} of {} bytes",
        delta.len(),
        new.len()
    );

    let (decoded, out) = decode_with(&delta, &old).unwrap();
    assert!(out == new, "rebuilt layer differs");
    assert_eq!(decoded.diff_id, Digest::of_bytes(&new));
    assert_eq!(decoded.size, new.len() as u64);
    assert_eq!(decoded.encoding, Encoding::Chunks);
}

#[test]
fn small_reference_uses_the_zstd_patch_when_smaller() {
    let (old, new) = rebuild_pair(2, 3 << 20);
    let (encoded, delta) = encode_with(&old, &new, &EncodeOptions::default());
    let Encoded::Delta(summary) = encoded else {
        panic!("no gain: {encoded:?}")
    };
    let patch = summary.patch_size.expect("patch tried");
    assert_eq!(summary.encoding, Encoding::Patch);
    assert!(patch < summary.chunks_size, "{summary:?}");
    assert!(
        delta.len() < 16 << 10,
        "patch delta is {} bytes",
        delta.len()
    );
    let (decoded, out) = decode_with(&delta, &old).unwrap();
    assert!(out == new);
    assert_eq!(decoded.encoding, Encoding::Patch);

    // The same pair, chunk encoding only, also rebuilds.
    let (encoded, delta) = encode_with(&old, &new, &chunks_only());
    assert!(matches!(encoded, Encoded::Delta(_)));
    assert!(decode_with(&delta, &old).unwrap().1 == new);
}

#[test]
fn renamed_and_reordered_files_still_copy_most_bytes() {
    let files = tree(3, 16 << 20);
    let old = tar_of(&files);
    let mut moved: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .enumerate()
        .map(|(i, (path, c))| {
            let path = if i % 3 == 0 {
                format!("srv/moved/{i}/{}", path.replace('/', "_"))
            } else {
                path
            };
            (path, c)
        })
        .collect();
    moved.reverse();
    moved.swap(1, 7);
    let new = tar_of(&moved);
    let (encoded, delta) = encode_with(&old, &new, &chunks_only());
    let Encoded::Delta(summary) = encoded else {
        panic!("no gain: {encoded:?}")
    };
    assert!(
        delta.len() < new.len() / 3,
        "delta {} of {} bytes",
        delta.len(),
        new.len()
    );
    assert!(summary.copied_bytes > new.len() as u64 / 2, "{summary:?}");
    eprintln!("moved files: delta {} of {} bytes", delta.len(), new.len());
    assert!(decode_with(&delta, &old).unwrap().1 == new);
}

#[test]
fn unrelated_layer_reports_no_gain_and_writes_nothing() {
    for (size, opts) in [
        (6 << 20, chunks_only()),
        (2 << 20, EncodeOptions::default()),
    ] {
        let old = tar_of(&[("a".into(), pseudo_random(10, size))]);
        let new = tar_of(&[("b".into(), pseudo_random(11, size))]);
        let (encoded, delta) = encode_with(&old, &new, &opts);
        let Encoded::NoGain(summary) = encoded else {
            panic!("gain claimed on unrelated data: {encoded:?}")
        };
        assert!(delta.is_empty());
        // At most the tar's end-of-archive blocks, which every tar shares.
        assert!(summary.copied_bytes <= 1024, "{summary:?}");
        assert_eq!(summary.target_diff_id, Digest::of_bytes(&new));

        let index = ChunkIndex::build(&old[..]).unwrap();
        let share = index.estimate(&Sketch::of_layer(&new[..]).unwrap());
        assert!(share.is_some_and(|s| s < 0.01), "{share:?}");
    }
}

#[test]
fn caller_limit_and_empty_layers_report_no_gain() {
    let (old, new) = rebuild_pair(4, 2 << 20);
    let opts = EncodeOptions {
        max_delta_size: Some(10),
        ..EncodeOptions::default()
    };
    assert!(matches!(
        encode_with(&old, &new, &opts).0,
        Encoded::NoGain(_)
    ));
    assert!(matches!(
        encode_with(&old, b"", &EncodeOptions::default()).0,
        Encoded::NoGain(_)
    ));
    assert!(matches!(
        encode_with(b"", &new, &EncodeOptions::default()).0,
        Encoded::NoGain(_)
    ));
}

#[test]
fn tampered_copy_and_literal_fail() {
    let (old, new) = rebuild_pair(5, 8 << 20);
    let (_, delta) = encode_with(&old, &new, &chunks_only());
    assert!(decode_with(&delta, &old).is_ok());
    let ops = ops_of(&delta);
    let &(_, copy) = ops.iter().find(|(t, _)| *t == OP_COPY).unwrap();
    let &(_, literal) = ops.iter().find(|(t, _)| *t == OP_LITERAL).unwrap();
    assert_eq!(ops.last().unwrap().0, OP_END);

    let flipped = |at: usize, bit: u8| {
        let mut d = delta.clone();
        d[at] ^= bit;
        decode_with(&d, &old).unwrap_err()
    };
    // COPY offset, low byte: other reference bytes, caught by the digest.
    let err = flipped(copy + 1, 0x10);
    assert!(
        matches!(
            err,
            DeltaError::DigestMismatch { .. } | DeltaError::SizeMismatch { .. }
        ),
        "{err}"
    );
    // COPY offset, high byte: outside the reference.
    let err = flipped(copy + 8, 0x01);
    assert!(matches!(err, DeltaError::CopyOutOfRange { .. }), "{err}");
    // COPY length.
    let err = flipped(copy + 9 + 3, 0x04);
    assert!(
        matches!(
            err,
            DeltaError::CopyOutOfRange { .. } | DeltaError::SizeMismatch { .. }
        ),
        "{err}"
    );
    // Inside the literal's zstd frame: its checksum or content fails.
    let err = flipped(literal + 9 + 40, 0x01);
    assert!(
        matches!(
            err,
            DeltaError::LiteralCorrupt { .. } | DeltaError::DigestMismatch { .. }
        ),
        "{err}"
    );
    // The literal's announced size.
    let err = flipped(literal + 1, 0x01);
    assert!(matches!(err, DeltaError::LiteralCorrupt { .. }), "{err}");
    // The header's target digest.
    let err = flipped(60, 0x01);
    assert!(matches!(err, DeltaError::DigestMismatch { .. }), "{err}");
    assert!(err
        .to_string()
        .contains(&Digest::of_bytes(&new).to_string()));
    // An unknown operation.
    let err = flipped(copy, 0x40);
    assert!(
        matches!(err, DeltaError::UnknownOp { tag: 0x41, .. }),
        "{err}"
    );
}

#[test]
fn tampered_patch_fails() {
    let (old, new) = rebuild_pair(6, 2 << 20);
    let (encoded, delta) = encode_with(&old, &new, &EncodeOptions::default());
    assert_eq!(encoded.summary().encoding, Encoding::Patch);
    for at in [
        HEADER_LEN + 6,
        delta.len() / 2 + HEADER_LEN / 2,
        delta.len() - 2,
    ] {
        let mut d = delta.clone();
        d[at] ^= 0x20;
        assert!(decode_with(&d, &old).is_err(), "flip at {at} passed");
    }
    let mut longer = delta.clone();
    longer.push(0);
    assert!(matches!(
        decode_with(&longer, &old).unwrap_err(),
        DeltaError::TrailingData { .. }
    ));
}

#[test]
fn truncated_delta_fails_at_every_length() {
    let (old, new) = rebuild_pair(7, 2 << 20);
    for opts in [chunks_only(), EncodeOptions::default()] {
        let (_, delta) = encode_with(&old, &new, &opts);
        let mut cuts: Vec<usize> = (0..delta.len()).step_by(delta.len() / 40 + 1).collect();
        cuts.extend([HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 1, delta.len() - 1]);
        for cut in cuts {
            let err = decode_with(&delta[..cut], &old).unwrap_err();
            assert!(
                !matches!(err, DeltaError::ReadDelta(_) | DeltaError::Zstd(_)),
                "cut at {cut}: {err}"
            );
        }
        let err = decode_with(&delta[..delta.len() - 1], &old).unwrap_err();
        assert!(matches!(err, DeltaError::Truncated { .. }), "{err}");
        let mut longer = delta.clone();
        longer.extend_from_slice(b"junk");
        assert!(decode_with(&longer, &old).is_err());
    }
}

#[test]
fn wrong_reference_or_target_fails_before_writing() {
    let (old, new) = rebuild_pair(8, 4 << 20);
    let (_, delta) = encode_with(&old, &new, &chunks_only());
    let other = tar_of(&tree(9, 4 << 20));
    let mut out = Vec::new();

    // Another layer, named by its own diffID.
    let err = decode(
        &delta[..],
        &mut Cursor::new(&other),
        &Digest::of_bytes(&other),
        &mut out,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, DeltaError::ReferenceMismatch { .. }), "{err}");
    assert!(err
        .to_string()
        .contains(&Digest::of_bytes(&old).to_string()));
    assert!(err
        .to_string()
        .contains(&Digest::of_bytes(&other).to_string()));

    // Bytes that are not the reference under the reference's diffID.
    let err = decode(
        &delta[..],
        &mut Cursor::new(&other),
        &Digest::of_bytes(&old),
        &mut out,
        None,
    )
    .unwrap_err();
    assert!(matches!(err, DeltaError::ReferenceSize { .. }), "{err}");
    let mut same_size = old.clone();
    same_size[old.len() / 3] ^= 1;
    same_size[old.len() / 2] ^= 1;
    let err = decode(
        &delta[..],
        &mut Cursor::new(&same_size),
        &Digest::of_bytes(&old),
        &mut Vec::new(),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, DeltaError::DigestMismatch { .. }), "{err}");

    // The caller expects another layer.
    let wanted = Digest::of_bytes(b"another layer");
    let err = decode(
        &delta[..],
        &mut Cursor::new(&old),
        &Digest::of_bytes(&old),
        &mut out,
        Some(&wanted),
    )
    .unwrap_err();
    assert!(matches!(err, DeltaError::TargetMismatch { .. }), "{err}");
    assert!(err.to_string().contains(wanted.as_str()));
    assert!(out.is_empty());

    let header = read_header(&delta[..]).unwrap();
    assert_eq!(header.reference_diff_id, Digest::of_bytes(&old));
    assert_eq!(header.target_diff_id, Digest::of_bytes(&new));
    let ok = decode(
        &delta[..],
        &mut Cursor::new(&old),
        &header.reference_diff_id,
        &mut out,
        Some(&header.target_diff_id),
    );
    assert!(ok.is_ok() && out == new);
}

#[test]
fn hand_made_deltas_decode_and_claims_are_bounded() {
    let reference = b"0123456789".to_vec();
    let target = b"3456ab".to_vec();
    let header = |target: &[u8], size: u64| {
        let mut d = Vec::new();
        Header {
            encoding: Encoding::Chunks,
            reference_diff_id: Digest::of_bytes(&reference),
            reference_size: reference.len() as u64,
            target_diff_id: Digest::of_bytes(target),
            target_size: size,
        }
        .write_to(&mut d)
        .unwrap();
        d
    };
    let mut d = header(&target, target.len() as u64);
    format::write_copy(&mut d, 3, 4).unwrap();
    format::write_literal(&mut d, 2, &zstd::bulk::compress(b"ab", 3).unwrap()).unwrap();
    d.push(OP_END);
    assert!(decode_with(&d, &reference).unwrap().1 == target);

    // An empty target.
    let mut empty = header(b"", 0);
    empty.push(OP_END);
    assert!(decode_with(&empty, &reference).unwrap().1.is_empty());

    // A literal claiming 4 GiB, and a compressed literal claiming 4 GiB, allocate nothing.
    let mut huge = header(&target, 6);
    huge.extend_from_slice(&[OP_LITERAL, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]);
    assert!(matches!(
        decode_with(&huge, &reference).unwrap_err(),
        DeltaError::TooLarge { .. }
    ));
    let mut huge = header(&target, 6);
    huge.extend_from_slice(&[OP_LITERAL, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        decode_with(&huge, &reference).unwrap_err(),
        DeltaError::TooLarge { .. }
    ));
    // A COPY whose end overflows u64.
    let mut wrap = header(&target, 6);
    format::write_copy(&mut wrap, u64::MAX, 2).unwrap();
    assert!(matches!(
        decode_with(&wrap, &reference).unwrap_err(),
        DeltaError::CopyOutOfRange { .. }
    ));
    // Output beyond the promised size stops at once.
    let mut long = header(&target, 3);
    format::write_copy(&mut long, 0, 10).unwrap();
    assert!(matches!(
        decode_with(&long, &reference).unwrap_err(),
        DeltaError::SizeMismatch { .. }
    ));
    // A patch against a reference above the limit is refused before reading it.
    let mut patch = header(&target, 6);
    patch[9] = 2;
    patch[44..52].copy_from_slice(&(PATCH_MAX_REFERENCE + 1).to_le_bytes());
    let big = Cursor::new(vec![0u8; PATCH_MAX_REFERENCE as usize + 1]);
    let err = decode(
        &patch[..],
        &mut big.clone(),
        &Digest::of_bytes(&reference),
        Vec::new(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, DeltaError::PatchReferenceTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn random_garbage_never_panics() {
    let reference = pseudo_random(20, 300_000);
    let ref_id = Digest::of_bytes(&reference);
    let mut valid = Vec::new();
    Header {
        encoding: Encoding::Chunks,
        reference_diff_id: ref_id.clone(),
        reference_size: reference.len() as u64,
        target_diff_id: Digest::of_bytes(b"x"),
        target_size: 1 << 40,
    }
    .write_to(&mut valid)
    .unwrap();
    let noise = pseudo_random(21, 4 << 20);
    let mut at = 0;
    for i in 0..3000usize {
        let len = (noise[i] as usize * 7 + i) % 2048;
        let body = &noise[at..at + len];
        at = (at + len + 1) % (noise.len() - 4096);
        // Raw garbage, then garbage after a valid header of each encoding, with op tags steered
        // towards the real ones so that the operation parsers see garbage too.
        let mut inputs = vec![body.to_vec()];
        for encoding in [1u8, 2] {
            let mut d = valid.clone();
            d[9] = encoding;
            d.extend_from_slice(body);
            if let Some(tag) = d.get_mut(HEADER_LEN) {
                *tag %= 3;
            }
            inputs.push(d);
        }
        for input in inputs {
            let mut out = Vec::new();
            let result = decode(
                &input[..],
                &mut Cursor::new(&reference),
                &ref_id,
                &mut out,
                None,
            );
            assert!(result.is_err(), "garbage decoded");
        }
    }
}

/// The rebuild case at full size (slow in debug: run with `--release -- --ignored`).
#[test]
#[ignore]
fn rebuild_of_a_167_mb_layer_is_under_1_mb() {
    let (old, new) = rebuild_pair(30, 167_000_000);
    let started = std::time::Instant::now();
    let (encoded, delta) = encode_with(&old, &new, &EncodeOptions::default());
    let encode_secs = started.elapsed().as_secs_f64();
    assert!(matches!(encoded, Encoded::Delta(_)), "{encoded:?}");
    assert!(delta.len() < 1 << 20, "delta is {} bytes", delta.len());
    let started = std::time::Instant::now();
    let (_, out) = decode_with(&delta, &old).unwrap();
    let decode_secs = started.elapsed().as_secs_f64();
    assert!(out == new);
    eprintln!(
        "{} MB layer: delta {} bytes; index+encode {:.0} MB/s, decode {:.0} MB/s",
        new.len() / 1_000_000,
        delta.len(),
        new.len() as f64 / 1e6 / encode_secs,
        new.len() as f64 / 1e6 / decode_secs
    );
}

#[test]
fn patch_is_given_up_past_twice_its_window() {
    let old = tar_of(&tree(40, 1 << 20));
    let mut new = old.clone();
    new.extend_from_slice(&pseudo_random(41, 9 << 20));
    let (encoded, delta) = encode_with(&old, &new, &EncodeOptions::default());
    let Encoded::Delta(summary) = encoded else {
        panic!("no gain: {encoded:?}")
    };
    assert_eq!(summary.patch_size, None, "{summary:?}");
    assert_eq!(summary.encoding, Encoding::Chunks);
    assert!(decode_with(&delta, &old).unwrap().1 == new);
}

#[test]
fn patch_asking_for_a_larger_window_is_refused() {
    let reference = text(50, 100_000);
    let target = text(51, 50_000);
    let mut delta = Vec::new();
    Header {
        encoding: Encoding::Patch,
        reference_diff_id: Digest::of_bytes(&reference),
        reference_size: reference.len() as u64,
        target_diff_id: Digest::of_bytes(&target),
        target_size: target.len() as u64,
    }
    .write_to(&mut delta)
    .unwrap();
    let mut enc = zstd::stream::write::Encoder::with_ref_prefix(&mut delta, 3, &reference).unwrap();
    enc.window_log(PATCH_WINDOW_LOG + 2).unwrap();
    enc.write_all(&target).unwrap();
    enc.finish().unwrap();
    let err = decode_with(&delta, &reference).unwrap_err();
    assert!(matches!(err, DeltaError::PatchCorrupt(_)), "{err}");
}

/// A reader or writer that fails after `left` bytes.
struct FailAfter {
    left: usize,
}

impl Read for FailAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("device gone"));
        }
        let n = buf.len().min(self.left);
        buf[..n].fill(7);
        self.left -= n;
        Ok(n)
    }
}

impl Write for FailAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn io_failures_are_named() {
    let (old, new) = rebuild_pair(60, 2 << 20);
    let index = ChunkIndex::build(&old[..]).unwrap();
    let err = encode(
        &index,
        &mut Cursor::new(&old),
        FailAfter { left: 1 << 20 },
        &mut Vec::new(),
        &EncodeOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, DeltaError::ReadLayer(_)), "{err}");
    assert!(err.to_string().contains("new layer") && err.to_string().contains("device gone"));
    assert!(matches!(
        ChunkIndex::build(FailAfter { left: 1000 }).unwrap_err(),
        DeltaError::ReadReference(_)
    ));

    let (_, delta) = encode_with(&old, &new, &chunks_only());
    let err = decode(
        &delta[..],
        &mut Cursor::new(&old),
        &Digest::of_bytes(&old),
        FailAfter { left: 1000 },
        None,
    )
    .unwrap_err();
    assert!(matches!(err, DeltaError::WriteOutput(_)), "{err}");
    let err = encode(
        &index,
        &mut Cursor::new(&old),
        &new[..],
        &mut FailAfter { left: 10 },
        &chunks_only(),
    )
    .unwrap_err();
    assert!(matches!(err, DeltaError::WriteDelta(_)), "{err}");
}
