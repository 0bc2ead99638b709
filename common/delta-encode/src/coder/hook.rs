//! The [`CarriedLayers`] hook of `--delta`: for each carried layer, sketch it, pick a reference
//! (by position, else by shared content), encode, and give the delta when it gains.

use super::references::References;
use crate as delta;
use crate::{EncodeOptions, Encoded, Sketch};
use partial_common::archive::ArchiveError;
use partial_common::digest::{Digest, Sha256Writer};
use partial_common::engine::{CarriedLayers, Replacement};
use partial_common::plan::LayerDelta;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

/// Below this estimated share of a new layer's bytes found in a reference, no delta is tried
/// (unrelated layers cost one sketching pass, not an encoding).
pub const MIN_SHARED: f64 = 0.02;

/// A delta must save at least this share of the layer's compressed size: a bundle with a delta
/// no longer loads with a plain `docker load`, which a few saved bytes do not justify.
pub const MIN_SAVING: f64 = 0.10;

/// Whether a delta saves at least [`MIN_SAVING`] of the plain layer compressed. The plain
/// layer's compressed size is estimated from the delta itself: its literals are the layer's
/// other bytes compressed, so the copied bytes would compress at about the same ratio.
fn worth_it(s: &delta::EncodeSummary) -> bool {
    let ratio = (s.delta_size as f64 / s.literal_bytes.max(1) as f64).min(1.0);
    let saved = s.copied_bytes as f64 * ratio;
    saved >= MIN_SAVING * (s.delta_size as f64 + saved)
}

/// What happened to one carried layer, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaNote {
    pub diff_id: Digest,
    pub size: u64,
    /// The delta's size when one was made (whether shipped or not).
    pub delta_size: Option<u64>,
    /// The reference tried, and its estimated share of the layer.
    pub reference: Option<(Digest, f64)>,
    /// Why the layer travels whole, when it does.
    pub whole_because: Option<String>,
}

/// The indexed references when they are made on another thread (see [`DeltaCoder::pending`]).
pub type PendingReferences = std::sync::mpsc::Receiver<Result<References, ArchiveError>>;

/// The hook; see the module documentation.
pub struct DeltaCoder {
    refs: References,
    /// References still being indexed elsewhere: awaited at the first carried layer.
    pending: Option<PendingReferences>,
    /// New layer diffID → the repositories and positions it sits at in the wanted images.
    positions: HashMap<Digest, Vec<(String, usize)>>,
    opts: EncodeOptions,
    notes: Arc<Mutex<Vec<DeltaNote>>>,
}

impl DeltaCoder {
    /// `wanted`: the images exported (for the positions of their layers).
    pub fn new(refs: References, wanted: &[partial_common::image::Image]) -> Self {
        let mut positions: HashMap<Digest, Vec<(String, usize)>> = HashMap::new();
        for img in wanted {
            for repo in super::references::repositories(img) {
                for (pos, l) in img.layers.iter().enumerate() {
                    positions
                        .entry(l.diff_id.clone())
                        .or_default()
                        .push((repo.clone(), pos));
                }
            }
        }
        DeltaCoder {
            refs,
            pending: None,
            positions,
            opts: EncodeOptions::default(),
            notes: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A coder whose references another thread is still indexing (from its own sources, while
    /// the export streams): the first carried layer waits for them.
    pub fn pending(refs: PendingReferences, wanted: &[partial_common::image::Image]) -> Self {
        let mut c = Self::new(References::default(), wanted);
        c.pending = Some(refs);
        c
    }

    /// Waits for the references when they are still being indexed.
    fn settle(&mut self) -> Result<(), ArchiveError> {
        if let Some(rx) = self.pending.take() {
            self.refs = rx.recv().map_err(|_| {
                ArchiveError::Io(io::Error::other(
                    "the indexing of the delta reference layers stopped without a result",
                ))
            })??;
        }
        Ok(())
    }

    /// The notes of every layer offered so far (shared: read them after the engine finished).
    pub fn notes(&self) -> Arc<Mutex<Vec<DeltaNote>>> {
        Arc::clone(&self.notes)
    }

    /// The reference to encode against and its estimated share, if any shares enough: the one
    /// at the same position of a reference image of the same repository, else the one sharing
    /// the most.
    fn choose(&self, diff_id: &Digest, sketch: &Sketch) -> Option<(usize, f64)> {
        let estimate = |i: usize| self.refs.layers[i].index.estimate(sketch).unwrap_or(0.0);
        let positional = self
            .positions
            .get(diff_id)
            .into_iter()
            .flatten()
            .filter_map(|k| self.refs.by_position.get(k))
            .filter_map(|d| self.refs.layers.iter().position(|r| &r.diff_id == d))
            .map(|i| (i, estimate(i)))
            .find(|(_, e)| *e >= MIN_SHARED);
        positional.or_else(|| {
            (0..self.refs.layers.len())
                .map(|i| (i, estimate(i)))
                .filter(|(_, e)| *e >= MIN_SHARED)
                .max_by(|a, b| a.1.total_cmp(&b.1))
        })
    }

    fn note(&self, n: DeltaNote) {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).push(n);
    }

    /// Encodes `layer` against reference `i` into an anonymous temporary file.
    fn encode(
        &mut self,
        i: usize,
        layer: &mut File,
    ) -> Result<(Encoded, File, Digest), partial_common::delta::DeltaError> {
        let r = &mut self.refs.layers[i];
        let mut opts = self.opts.clone();
        let mut empty = io::Cursor::new(Vec::new());
        let reference: &mut dyn ReadSeek = match r.file.as_mut() {
            Some(f) => f,
            None => {
                opts.patch_max_reference = 0;
                &mut empty
            }
        };
        let out = tempfile::tempfile().map_err(partial_common::delta::DeltaError::Spool)?;
        let mut w = Sha256Writer::new(out);
        let enc = delta::encode(&r.index, &mut Reseek(reference), &mut *layer, &mut w, &opts)?;
        let (out, digest, _) = w.finish();
        Ok((enc, out, digest))
    }
}

trait ReadSeek: io::Read + Seek {}
impl<T: io::Read + Seek> ReadSeek for T {}

/// A `&mut dyn ReadSeek` as a sized `Read + Seek`.
struct Reseek<'a>(&'a mut dyn ReadSeek);

impl io::Read for Reseek<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for Reseek<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl CarriedLayers for DeltaCoder {
    fn offer(
        &mut self,
        diff_id: &Digest,
        layer: &mut File,
        size: u64,
    ) -> Result<Option<Replacement>, ArchiveError> {
        let err = |source| ArchiveError::Delta {
            layer: diff_id.clone(),
            source,
        };
        let mut note = DeltaNote {
            diff_id: diff_id.clone(),
            size,
            delta_size: None,
            reference: None,
            whole_because: None,
        };
        self.settle()?;
        let sketch = Sketch::of_layer(&mut *layer).map_err(err)?;
        layer
            .seek(SeekFrom::Start(0))
            .map_err(ArchiveError::Spool)?;
        let Some((i, share)) = self.choose(diff_id, &sketch) else {
            note.whole_because = Some("no reference layer shares its content".into());
            self.note(note);
            return Ok(None);
        };
        note.reference = Some((self.refs.layers[i].diff_id.clone(), share));
        let (enc, file, digest) = self.encode(i, layer).map_err(err)?;
        let s = enc.summary().clone();
        note.delta_size = Some(s.delta_size);
        let Encoded::Delta(_) = enc else {
            note.whole_because = Some("the delta would not be smaller".into());
            self.note(note);
            return Ok(None);
        };
        if !worth_it(&s) {
            note.whole_because = Some(format!(
                "the delta would save less than {:.0}% of the compressed layer",
                MIN_SAVING * 100.0
            ));
            self.note(note);
            return Ok(None);
        }
        self.note(note);
        let r = &self.refs.layers[i];
        Ok(Some(Replacement {
            file,
            delta: LayerDelta {
                encoding: s.encoding.as_str().to_string(),
                digest,
                size: s.delta_size,
                reference_diff_id: r.diff_id.clone(),
                reference_chain_id: r.chain_id.clone(),
                reference_origin: r.origin.clone(),
                target_size: s.target_size,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(delta_size: u64, copied: u64, literal: u64) -> delta::EncodeSummary {
        delta::EncodeSummary {
            encoding: partial_common::delta::Encoding::Chunks,
            delta_size,
            chunks_size: delta_size,
            patch_size: None,
            target_diff_id: Digest::of_bytes(b"x"),
            target_size: copied + literal,
            copied_bytes: copied,
            literal_bytes: literal,
        }
    }

    #[test]
    fn a_delta_must_save_a_tenth_of_the_compressed_layer() {
        // One file of a 160 MiB tree changed: a few KB of literals.
        assert!(worth_it(&summary(20_000, 160 << 20, 30_000)));
        // Unrelated random content sharing only some tar headers.
        assert!(!worth_it(&summary(6_292_646, 20_000, 6_293_000)));
        // Half of a compressible layer shared: worth it.
        assert!(worth_it(&summary(1 << 20, 10 << 20, 4 << 20)));
        // 5 % of an incompressible layer shared: not worth it.
        assert!(!worth_it(&summary(95 << 20, 5 << 20, 95 << 20)));
    }
}
