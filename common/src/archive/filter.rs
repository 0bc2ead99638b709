//! [`Filter`]: the streaming engine. It reads one or more archives entry by entry and writes a
//! filtered archive: layer blobs whose every chain position is at the destination are left out,
//! everything else needed by the selected images is copied header and all. Layer data is never held
//! in memory: it is copied (and hashed) straight to the output, skipped, or — only for containerd
//! blobs whose role is unknown when they arrive — spooled to a temporary file. Small metadata is held
//! back and decided at [`Filter::finish`] (see `finish.rs`), once `manifest.json` has been read.

use super::legacy_id::V1Json;
use super::metadata::{Collected, MAX_JSON};
use super::names::{clean_name, resolve_link, role_of, EntryRole};
use super::scan::{looks_like_json, read_prefix, PEEK};
use super::tarstream::{EntryHead, TarReader, TarWriter};
use super::{ArchiveError, ArchiveIndex, SourceImage};
use crate::digest::{chain_ids, Digest};
use crate::have::HaveSet;
use crate::plan::Layout;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

/// Progress callbacks of a [`Filter`].
pub trait FilterObserver: Send {
    /// Total bytes of input read so far (over all inputs).
    fn bytes_read(&self, _total: u64) {}
    /// A layer blob was decided: `kept` if written to the output.
    fn layer(&self, _entry: &str, _size: u64, _kept: bool) {}
}

/// A small entry held back until `finish`.
pub(super) struct Held {
    pub name: String,
    pub raw: Vec<u8>,
    pub data: Vec<u8>,
    /// The resolved target of a symlink.
    pub link: Option<String>,
}

/// A blob of unknown role spooled to disk until the manifests say what it is.
pub(super) struct Spooled {
    pub name: String,
    pub raw: Vec<u8>,
    pub file: File,
    pub digest: Digest,
    pub size: u64,
}

/// The streaming filter; see the module documentation.
pub struct Filter<W: Write> {
    pub(super) out: TarWriter<W>,
    pub(super) sources: Vec<SourceImage>,
    pub(super) have: HaveSet,
    pub(super) observer: Option<Box<dyn FilterObserver>>,
    /// Chain IDs of each source, bottom first.
    pub(super) chains: Vec<Vec<Digest>>,
    pub(super) chain_diff: HashMap<Digest, Digest>,
    /// diffID → whether some source position using it is carried.
    pub(super) diff_needed: HashMap<Digest, bool>,
    /// Distinct chain IDs of all sources (candidates for legacy folder identification).
    pub(super) candidates: Vec<Digest>,
    pub(super) inputs: Vec<Collected>,
    pub(super) layout: Option<Layout>,
    pub(super) held: Vec<Held>,
    pub(super) held_names: HashSet<String>,
    pub(super) spooled: Vec<Spooled>,
    /// Every entry written, with the sha256 of its data for layer entries.
    pub(super) written: HashMap<String, Option<Digest>>,
    /// Size of every layer-like entry seen (written, dropped or spooled).
    pub(super) sizes: HashMap<String, u64>,
    pub(super) dropped: HashSet<String>,
    /// Legacy layer files kept only because their folder could not be identified.
    pub(super) unidentified_kept: HashSet<String>,
    /// Symlink entry → resolved target, for every symlink seen.
    pub(super) links: HashMap<String, String>,
    /// Legacy folder → its chain ID, from an index or from its `json`; `None` = not identified.
    pub(super) folder_chain: HashMap<String, Option<Digest>>,
    /// Legacy folder → diffID for folders of images that are not exported (from an index).
    pub(super) folder_diff_other: HashMap<String, Digest>,
    /// Layer blob → the diffID it holds (from indexes, or OCI manifests read so far). A blob is
    /// kept when its diffID is needed by some carried position: with several inputs, a blob seen
    /// in the first may be needed by an image of a later one, and the diffIDs of all sources are
    /// known from the start. (A containerd blob is thus also kept when the same diffID is needed
    /// through another compressed blob — safe, and rare.)
    pub(super) blob_diff: HashMap<Digest, Digest>,
    pub(super) input_bytes: u64,
    pub(super) warnings: Vec<String>,
}

/// What to do with a layer blob as it streams by.
enum LayerAction {
    /// Copy it; check its sha256 against the digest when given.
    Keep(Option<Digest>),
    Drop,
}

impl<W: Write> Filter<W> {
    /// `sources`: the images to export (only these go into the output); `have`: chains the
    /// destination holds.
    pub fn new(out: W, sources: Vec<SourceImage>, have: HaveSet) -> Self {
        let chains: Vec<Vec<Digest>> = sources.iter().map(|s| chain_ids(&s.diff_ids)).collect();
        let mut chain_diff = HashMap::new();
        let mut diff_needed: HashMap<Digest, bool> = HashMap::new();
        let mut candidates = Vec::new();
        for (s, cs) in sources.iter().zip(&chains) {
            for (d, c) in s.diff_ids.iter().zip(cs) {
                if chain_diff.insert(c.clone(), d.clone()).is_none() {
                    candidates.push(c.clone());
                }
                let carried = !have.contains(c);
                let e = diff_needed.entry(d.clone()).or_insert(false);
                *e |= carried;
            }
        }
        Filter {
            out: TarWriter::new(out),
            sources,
            have,
            observer: None,
            chains,
            chain_diff,
            diff_needed,
            candidates,
            inputs: Vec::new(),
            layout: None,
            held: Vec::new(),
            held_names: HashSet::new(),
            spooled: Vec::new(),
            written: HashMap::new(),
            sizes: HashMap::new(),
            dropped: HashSet::new(),
            unidentified_kept: HashSet::new(),
            links: HashMap::new(),
            folder_chain: HashMap::new(),
            folder_diff_other: HashMap::new(),
            blob_diff: HashMap::new(),
            input_bytes: 0,
            warnings: Vec::new(),
        }
    }

    /// Sets the progress observer.
    pub fn set_observer(&mut self, obs: Box<dyn FilterObserver>) {
        self.observer = Some(obs);
    }

    /// Whether the destination lacks `chain`.
    pub(super) fn carried(&self, chain: &Digest) -> bool {
        !self.have.contains(chain)
    }

    /// The source index whose image is `img` (by config digest, or manifest/index digest).
    pub(super) fn source_of(&self, ids: &[&Digest]) -> Option<usize> {
        self.sources.iter().position(|s| ids.contains(&&s.id))
    }

    /// Learns what an index says about the entries of this input.
    fn learn_index(&mut self, index: &ArchiveIndex) {
        for img in &index.images {
            let mut ids = vec![&img.source.id];
            ids.extend(img.manifest_digest.iter());
            ids.extend(img.index_digests.iter());
            let src = self.source_of(&ids);
            for (pos, entry) in img.layer_entries.iter().enumerate() {
                let chain = src.and_then(|s| self.chains[s].get(pos).cloned());
                match (role_of(entry), chain) {
                    (EntryRole::FolderLayer(f), Some(c)) => {
                        self.folder_chain.insert(f, Some(c));
                    }
                    (EntryRole::FolderLayer(f), None) => {
                        if let Some(d) = img.source.diff_ids.get(pos) {
                            self.folder_diff_other.insert(f, d.clone());
                        }
                    }
                    (EntryRole::Blob(b), _) => {
                        if let Some(d) = img.source.diff_ids.get(pos) {
                            self.blob_diff.insert(b, d.clone());
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Learns blob roles from an OCI manifest read while streaming (containerd layout).
    fn learn_manifest(&mut self, digest: &Digest, bytes: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        let Some(cfg) = v
            .get("config")
            .and_then(|c| c.get("digest"))
            .and_then(Value::as_str)
            .and_then(|s| Digest::parse(s).ok())
        else {
            return;
        };
        let Some(layers) = v.get("layers").and_then(Value::as_array) else {
            return;
        };
        let Some(src) = self.source_of(&[&cfg, digest]) else {
            return;
        };
        let diffs = &self.sources[src].diff_ids;
        if layers.len() != diffs.len() {
            return; // inconsistent; finish reports it from the config
        }
        for (l, d) in layers.iter().zip(diffs) {
            if let Some(b) = l
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|s| Digest::parse(s).ok())
            {
                self.blob_diff.insert(b, d.clone());
            }
        }
    }

    fn report_read(&self, total: u64) {
        if let Some(o) = &self.observer {
            o.bytes_read(total);
        }
    }

    pub(super) fn report_layer(&self, entry: &str, size: u64, kept: bool) {
        if let Some(o) = &self.observer {
            o.layer(entry, size, kept);
        }
    }

    fn hold(&mut self, name: String, head: &EntryHead, data: Vec<u8>, link: Option<String>) {
        if self.held_names.insert(name.clone()) {
            self.held.push(Held {
                name,
                raw: head.raw.clone(),
                data,
                link,
            });
        }
    }

    /// Copies the current entry to the output, hashing its data; `prefix` was already read.
    fn copy<R: Read>(
        &mut self,
        r: &mut TarReader<R>,
        head: &EntryHead,
        prefix: &[u8],
        base: u64,
    ) -> Result<Digest, ArchiveError> {
        self.out.write_raw(&head.raw)?;
        let mut h = Sha256::new();
        h.update(prefix);
        self.out.write_raw(prefix)?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut since = 0u64;
        loop {
            let n = r.data().read(&mut buf).map_err(|e| r.map_data_err(e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            self.out.write_raw(&buf[..n])?;
            since += n as u64;
            if since >= 8 << 20 {
                since = 0;
                self.report_read(base + r.position());
            }
        }
        self.out.pad(head.size)?;
        Ok(Digest::from_sha256(h.finalize().into()))
    }

    /// Reads past the current entry's data, reporting progress.
    fn drain<R: Read>(&self, r: &mut TarReader<R>, base: u64) -> Result<(), ArchiveError> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut since = 0u64;
        loop {
            let n = r.data().read(&mut buf).map_err(|e| r.map_data_err(e))?;
            if n == 0 {
                return Ok(());
            }
            since += n as u64;
            if since >= 8 << 20 {
                since = 0;
                self.report_read(base + r.position());
            }
        }
    }

    /// Spools the current entry to a temporary file, hashing it.
    fn spool<R: Read>(
        &mut self,
        r: &mut TarReader<R>,
        name: String,
        head: &EntryHead,
        prefix: &[u8],
    ) -> Result<(), ArchiveError> {
        // The containerd layout names compressed layers by their own digest, and the manifest that
        // says which image position a blob is may come later in name order; until then we cannot
        // tell whether the destination has it, and memory must stay bounded: so it goes to disk.
        let mut file = tempfile::tempfile().map_err(ArchiveError::Spool)?;
        let mut h = Sha256::new();
        h.update(prefix);
        file.write_all(prefix).map_err(ArchiveError::Spool)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.data().read(&mut buf).map_err(|e| r.map_data_err(e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            file.write_all(&buf[..n]).map_err(ArchiveError::Spool)?;
        }
        file.seek(SeekFrom::Start(0)).map_err(ArchiveError::Spool)?;
        self.spooled.push(Spooled {
            name,
            raw: head.raw.clone(),
            file,
            digest: Digest::from_sha256(h.finalize().into()),
            size: head.size,
        });
        Ok(())
    }

    /// Writes or skips a layer blob according to `action`.
    fn do_layer<R: Read>(
        &mut self,
        r: &mut TarReader<R>,
        name: &str,
        head: &EntryHead,
        prefix: &[u8],
        action: LayerAction,
        base: u64,
    ) -> Result<(), ArchiveError> {
        self.sizes.insert(name.to_string(), head.size);
        match action {
            LayerAction::Keep(expected) => {
                self.report_layer(name, head.size, true);
                let got = self.copy(r, head, prefix, base)?;
                if let Some(e) = expected {
                    if e != got {
                        return Err(ArchiveError::DigestMismatch {
                            entry: name.to_string(),
                            expected: e,
                            actual: got,
                        });
                    }
                }
                self.written.insert(name.to_string(), Some(got));
            }
            LayerAction::Drop => {
                self.report_layer(name, head.size, false);
                self.dropped.insert(name.to_string());
                self.drain(r, base)?;
            }
        }
        Ok(())
    }

    /// The action for a legacy `<folder>/layer.tar` real file.
    fn legacy_action(&mut self, folder: &str, name: &str) -> LayerAction {
        let diff = match self.folder_chain.get(folder) {
            Some(Some(c)) => self.chain_diff.get(c).cloned(),
            _ => self.folder_diff_other.get(folder).cloned(),
        };
        match diff {
            Some(d) => {
                if self.diff_needed.get(&d).copied().unwrap_or(false) {
                    LayerAction::Keep(Some(d))
                } else {
                    LayerAction::Drop
                }
            }
            None => {
                // Unknown folder (unknown daemon scheme, or a stray folder): keeping is safe.
                self.unidentified_kept.insert(name.to_string());
                LayerAction::Keep(None)
            }
        }
    }

    /// Whether some carried source position uses `diff`.
    pub(super) fn diff_needed(&self, diff: &Digest) -> bool {
        self.diff_needed.get(diff).copied().unwrap_or(false)
    }

    /// The action for a layer blob of known role, `None` when its role is not known yet.
    fn blob_action(&self, d: &Digest) -> Option<LayerAction> {
        // A blob an index or manifest maps to a diffID, or an uncompressed layer named by one.
        let diff = self
            .blob_diff
            .get(d)
            .or_else(|| self.diff_needed.get_key_value(d).map(|(k, _)| k))?;
        Some(if self.diff_needed(diff) {
            LayerAction::Keep(Some(d.clone()))
        } else {
            LayerAction::Drop
        })
    }

    /// Streams one archive (plain tar). `index`: the [`scan`](super::scan) of this same archive when
    /// the caller has it (archive files); `None` for a live daemon stream.
    pub fn add_input<R: Read>(
        &mut self,
        input: R,
        label: &str,
        index: Option<&ArchiveIndex>,
    ) -> Result<(), ArchiveError> {
        if let Some(ix) = index {
            self.learn_index(ix);
        }
        let base = self.input_bytes;
        let mut c = Collected {
            label: label.to_string(),
            ..Default::default()
        };
        let mut r = TarReader::new(input);
        let res = self.stream(&mut r, &mut c, index.is_some(), base);
        self.input_bytes = base + r.position();
        self.report_read(self.input_bytes);
        res?;
        // This input's layout, and the errors that need its whole metadata.
        if c.manifest.is_none() && c.index.is_none() {
            return Err(ArchiveError::MissingManifest(label.to_string()));
        }
        let images = c.images()?;
        let layout = c.layout(&images);
        if c.manifest.is_none() && layout != Layout::Containerd {
            return Err(ArchiveError::MissingManifest(label.to_string()));
        }
        match self.layout {
            // An archive without images says nothing about the layout.
            _ if images.is_empty() => {}
            Some(l) if l != layout => {
                return Err(ArchiveError::LayoutMismatch {
                    label: label.to_string(),
                    expected: l,
                    found: layout,
                })
            }
            _ => self.layout = Some(layout),
        }
        self.inputs.push(c);
        Ok(())
    }

    fn stream<R: Read>(
        &mut self,
        r: &mut TarReader<R>,
        c: &mut Collected,
        indexed: bool,
        base: u64,
    ) -> Result<(), ArchiveError> {
        while let Some(head) = r.next_entry()? {
            self.report_read(base + r.position());
            let name = clean_name(&head.name)?;
            let role = role_of(&name);
            if name.starts_with("blobs/") {
                c.saw_blobs = true;
            }
            let link = match &head.link_name {
                Some(t) if head.is_symlink() => Some(resolve_link(&name, t)?),
                Some(t) => Some(clean_name(t)?),
                None => None,
            };
            let seen = self.written.contains_key(&name)
                || self.dropped.contains(&name)
                || self.held_names.contains(&name)
                || self.spooled.iter().any(|s| s.name == name);
            if let (Some(t), false) = (&link, seen) {
                // The first input to bring a name decides what it is.
                self.links.insert(name.clone(), t.clone());
            }
            match role {
                EntryRole::Manifest
                | EntryRole::Repositories
                | EntryRole::Index
                | EntryRole::OciLayout
                    if head.is_file() =>
                {
                    // Rewritten and merged at finish; the header is kept as a template.
                    let data = r.read_all(MAX_JSON)?;
                    c.add(&name, data)?;
                    let key = format!("\0meta:{name}");
                    if !self.held_names.contains(&key) {
                        self.hold(key, &head, Vec::new(), None);
                    }
                }
                EntryRole::LegacyConfig(_) if head.is_file() => {
                    let data = r.read_all(MAX_JSON)?;
                    c.add(&name, data.clone())?;
                    self.hold(name, &head, data, None);
                }
                EntryRole::FolderJson(folder) if head.is_file() => {
                    c.saw_folders = true;
                    let data = r.read_all(MAX_JSON)?;
                    if !self.folder_chain.contains_key(&folder) {
                        let id = V1Json::parse(&data)
                            .and_then(|v| v.identify(&folder, &self.candidates));
                        self.folder_chain.insert(folder.clone(), id);
                    }
                    self.hold(name, &head, data, None);
                }
                EntryRole::FolderLayer(folder) if head.is_file() => {
                    c.saw_folders = true;
                    if seen {
                        continue;
                    }
                    let action = self.legacy_action(&folder, &name);
                    self.do_layer(r, &name, &head, &[], action, base)?;
                }
                EntryRole::Blob(d) if head.is_file() => {
                    if seen {
                        // Already taken from an earlier input; its metadata still describes
                        // this input's images.
                        if let Some(h) = self.held.iter().find(|h| h.name == name) {
                            c.json.insert(name, h.data.clone());
                        }
                        continue;
                    }
                    if let Some(action) = self.blob_action(&d) {
                        self.do_layer(r, &name, &head, &[], action, base)?;
                        continue;
                    }
                    let prefix = read_prefix(r, PEEK)?;
                    if head.size <= MAX_JSON && looks_like_json(&prefix) {
                        let mut data = prefix;
                        data.extend(r.read_all(MAX_JSON)?);
                        self.learn_manifest(&d, &data);
                        c.add(&name, data.clone())?;
                        self.hold(name, &head, data, None);
                    } else if indexed {
                        // Not referenced by any image of the index: keep it as it is.
                        let got = self.copy(r, &head, &prefix, base)?;
                        if got != d {
                            return Err(ArchiveError::DigestMismatch {
                                entry: name,
                                expected: d,
                                actual: got,
                            });
                        }
                        self.written.insert(name, Some(got));
                    } else {
                        self.sizes.insert(name.clone(), head.size);
                        self.spool(r, name, &head, &prefix)?;
                    }
                }
                _ => {
                    if matches!(
                        role,
                        EntryRole::FolderDir(_)
                            | EntryRole::FolderOther(_)
                            | EntryRole::FolderLayer(_)
                    ) {
                        c.saw_folders = true;
                    }
                    if seen {
                        continue;
                    }
                    if head.size <= MAX_JSON {
                        let data = r.read_all(MAX_JSON)?;
                        self.hold(name, &head, data, link);
                    } else {
                        // A big entry no layout explains: pass it through.
                        let got = self.copy(r, &head, &[], base)?;
                        self.written.insert(name, Some(got));
                    }
                }
            }
        }
        Ok(())
    }
}
