//! The engine: streams the archives of a source (a `docker save` stream, archive files of every
//! writer, OCI layouts made into a stream) and writes a bundle of the wanted images with only
//! the layer blobs the destination lacks. It knows nothing of its callers: it gets the wanted
//! [images](crate::image::Image), the [have-set](crate::have::HaveSet) and a writer, reports
//! progress to an [`EngineObserver`], and returns the [`Plan`](crate::plan::Plan).
//!
//! A layer blob is written when some wanted position using its diffID is a chain the destination
//! lacks, and then only once; it is checked while it streams (its digest, and its diffID, on the
//! side for compressed blobs). Layer data is never held in memory: it is copied, skipped, or,
//! when its role is not known yet (a one-pass daemon stream whose `manifest.json` comes last),
//! spooled to a temporary file and decided in [`Engine::finish`] (`finish.rs`).
//!
//! A carried zstd layer is written decompressed (`docker load` before Docker 23 cannot read zstd
//! layers): see `unpack`. A [`CarriedLayers`] hook (`--delta`) sees every carried layer
//! uncompressed, in a file, and may give a replacement (a delta) to write instead.
//!
//! Modules: `stream` (one input, entry by entry), `finish` (matching, checks, the plan, the
//! bundle's metadata), `verify` (hashing on the side), `unpack` (zstd layers written as
//! uncompressed tars), `tests`, `writers_tests`, `real_daemon_tests` (ignored checks against real `docker save`
//! output).

mod finish;
mod input;
#[cfg(test)]
mod real_daemon_tests;
#[cfg(test)]
mod tests;
mod unpack;
mod verify;
#[cfg(test)]
mod writers_tests;

use crate::archive::metadata::Collected;
use crate::archive::{ArchiveError, ArchiveIndex};
use crate::bundle_writer::BundleWriter;
use crate::codec::Compression;
use crate::digest::Digest;
use crate::have::HaveSet;
use crate::image::{Blob, Image, Platform};
use crate::plan::LayerDelta;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;

/// Progress callbacks of an [`Engine`].
pub trait EngineObserver: Send {
    /// Total bytes of input read so far (over all inputs).
    fn bytes_read(&self, _total: u64) {}
    /// A layer blob was decided: `kept` if written to the bundle.
    fn layer(&self, _entry: &str, _size: u64, _kept: bool) {}
}

/// Offered every carried layer before it is written: uncompressed, checked against its diffID,
/// in a temporary file at its start. `partial-save --delta` answers with a delta against a layer
/// the destination holds; the engine knows nothing of how it is made.
pub trait CarriedLayers: Send {
    /// A replacement to write instead of the layer `diff_id` (of `size` bytes), or `None` to
    /// write the layer itself. `layer` may be read to its end.
    fn offer(
        &mut self,
        diff_id: &Digest,
        layer: &mut File,
        size: u64,
    ) -> Result<Option<Replacement>, ArchiveError>;
}

/// What a [`CarriedLayers`] hook gives instead of a layer: the delta blob (a temporary file) and
/// its description, which the plan records.
pub struct Replacement {
    pub file: File,
    pub delta: LayerDelta,
}

/// A blob whose role was unknown when it streamed by, kept in a temporary file.
struct Spooled {
    input: usize,
    name: String,
    file: File,
    /// The stored size.
    size: u64,
    /// The size of the file when it holds the blob decompressed ([`unpack`]).
    unpacked: Option<u64>,
    compression: Compression,
    blob: Digest,
    /// Its decompressed sha256, or why it does not decompress.
    diff: Result<Digest, String>,
}

/// The metadata of one input, kept until `finish`.
struct Input {
    label: String,
    collected: Collected,
    /// Symlink entry → resolved target.
    links: HashMap<String, String>,
    /// The scan of this input, when the caller had one (archive files).
    index: Option<ArchiveIndex>,
}

/// The engine; see the module documentation.
pub struct Engine<W: Write> {
    out: BundleWriter<W>,
    wanted: Vec<Image>,
    have: HaveSet,
    platform: Option<Platform>,
    observer: Option<Box<dyn EngineObserver>>,
    hook: Option<Box<dyn CarriedLayers>>,
    /// Carried layers the hook replaced, by diffID.
    deltas: HashMap<Digest, LayerDelta>,
    /// Chain ID → diffID of every wanted position.
    chain_diff: HashMap<Digest, Digest>,
    /// Distinct chain IDs of the wanted images (candidates for legacy folder identification).
    candidates: Vec<Digest>,
    /// diffID → whether some wanted position using it is carried.
    diff_needed: HashMap<Digest, bool>,
    /// Blob digest → diffID, from the wanted images and OCI manifests read so far.
    blob_diff: HashMap<Digest, Digest>,
    /// Carried layers written, by diffID, as stored.
    written: HashMap<Digest, Blob>,
    /// Layers seen (written or not), by diffID, as stored.
    seen: HashMap<Digest, Blob>,
    /// Legacy folder → its chain ID from its `json` (`None`: not identified), per input.
    folder_chain: Vec<HashMap<String, Option<Digest>>>,
    spooled: Vec<Spooled>,
    inputs: Vec<Input>,
    input_bytes: u64,
    warnings: Vec<String>,
    /// See [`Engine::set_diff_check`].
    diff_check: bool,
}

impl<W: Write> Engine<W> {
    /// `wanted`: the images to write (each once); `have`: the chains the destination holds.
    pub fn new(out: W, wanted: Vec<Image>, have: HaveSet) -> Self {
        let mut chain_diff = HashMap::new();
        let mut candidates = Vec::new();
        let mut diff_needed: HashMap<Digest, bool> = HashMap::new();
        let mut blob_diff = HashMap::new();
        for img in &wanted {
            for l in &img.layers {
                if chain_diff
                    .insert(l.chain_id.clone(), l.diff_id.clone())
                    .is_none()
                {
                    candidates.push(l.chain_id.clone());
                }
                *diff_needed.entry(l.diff_id.clone()).or_insert(false) |=
                    !have.contains(&l.chain_id);
                blob_diff.insert(l.blob.digest.clone(), l.diff_id.clone());
            }
        }
        Engine {
            out: BundleWriter::new(out),
            wanted,
            have,
            platform: None,
            observer: None,
            hook: None,
            deltas: HashMap::new(),
            chain_diff,
            candidates,
            diff_needed,
            blob_diff,
            written: HashMap::new(),
            seen: HashMap::new(),
            folder_chain: Vec::new(),
            spooled: Vec::new(),
            inputs: Vec::new(),
            input_bytes: 0,
            warnings: Vec::new(),
            diff_check: true,
        }
    }

    /// Sets the progress observer.
    pub fn set_observer(&mut self, obs: Box<dyn EngineObserver>) {
        self.observer = Some(obs);
    }

    /// Sets the hook offered every carried layer (see [`CarriedLayers`]).
    pub fn set_hook(&mut self, hook: Box<dyn CarriedLayers>) {
        self.hook = Some(hook);
    }

    /// Whether a carried layer blob stored compressed is decompressed to check its diffID
    /// (default: yes). Its digest is checked either way; a layer the engine decompresses
    /// anyway (unpacked, offered to the hook, spooled to be identified) is always checked.
    pub fn set_diff_check(&mut self, on: bool) {
        self.diff_check = on;
    }

    /// Announces the compressed layer blobs it writes to the output's compressor (see
    /// [`StoreHint`](crate::codec::StoreHint)).
    pub fn set_store_hint(&mut self, hint: crate::codec::StoreHint) {
        self.out.set_store_hint(hint);
    }

    /// In multi-platform indexes of the streams, follow only `platform`'s images.
    pub fn set_platform(&mut self, platform: Option<Platform>) {
        self.platform = platform;
    }

    /// Whether some carried wanted position uses `diff`.
    pub(crate) fn diff_needed(&self, diff: &Digest) -> bool {
        self.diff_needed.get(diff).copied().unwrap_or(false)
    }

    fn report_read(&self, total: u64) {
        if let Some(o) = &self.observer {
            o.bytes_read(total);
        }
    }

    fn report_layer(&self, entry: &str, size: u64, kept: bool) {
        if let Some(o) = &self.observer {
            o.layer(entry, size, kept);
        }
    }
}
