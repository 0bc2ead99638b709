//! One input, entry by entry: metadata is collected, legacy folders are identified from their
//! `json`, each layer file is written (checked), skipped, or spooled when its role is not known.

use super::unpack::{self, Unpacker};
use super::verify::Verifier;
use super::{Engine, Input, Spooled};
use crate::archive::entry_stream::EntryStream;
use crate::archive::legacy_id::V1Json;
use crate::archive::metadata::{Collected, MAX_JSON};
use crate::archive::names::{clean_name, named_digest, resolve_link, role_of, EntryRole};
use crate::archive::tarstream::{EntryHead, TarReader};
use crate::archive::{ArchiveError, ArchiveIndex};
use crate::codec::{self, Compression};
use crate::digest::Digest;
use crate::image::{layer_media_type, Blob};
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};

/// Reads the current entry's next bytes, up to `n`.
fn read_prefix<E: EntryStream>(r: &mut E, n: usize) -> Result<Vec<u8>, ArchiveError> {
    let want = (r.remaining() as usize).min(n);
    let mut buf = vec![0u8; want];
    let read = r.data().read_exact(&mut buf);
    read.map_err(|e| r.map_data_err(e))?;
    Ok(buf)
}

fn looks_like_json(prefix: &[u8]) -> bool {
    prefix
        .iter()
        .find(|b| !b" \t\r\n".contains(b))
        .is_some_and(|b| *b == b'{')
}

/// What is known about a layer file when it arrives.
struct Known {
    diff: Digest,
    /// The stored digest, when the name or an index says it.
    blob: Option<Digest>,
}

impl<W: Write> Engine<W> {
    /// Streams one input (a plain tar). `index`: the [`scan`](crate::archive::scan) of this same
    /// input when the caller has it (archive files); `None` for a one-pass daemon stream.
    pub fn add_input<R: Read>(
        &mut self,
        input: R,
        label: &str,
        index: Option<ArchiveIndex>,
    ) -> Result<(), ArchiveError> {
        self.add_entries(&mut TarReader::new(input), label, index)
    }

    /// Streams one input handed over file by file (a layout source's metadata and blobs; see
    /// [`BlobFiles`](crate::archive::blob_files::BlobFiles)), as [`Engine::add_input`] a tar.
    pub fn add_files(
        &mut self,
        files: &mut dyn Iterator<Item = crate::archive::blob_files::BlobFile>,
        label: &str,
        index: Option<ArchiveIndex>,
    ) -> Result<(), ArchiveError> {
        self.add_entries(
            &mut crate::archive::blob_files::BlobFiles::new(files),
            label,
            index,
        )
    }

    fn add_entries<E: EntryStream>(
        &mut self,
        r: &mut E,
        label: &str,
        index: Option<ArchiveIndex>,
    ) -> Result<(), ArchiveError> {
        let base = self.input_bytes;
        let mut inp = Input {
            label: label.to_string(),
            collected: Collected {
                label: label.to_string(),
                platform: self.platform.clone(),
                ..Default::default()
            },
            links: HashMap::new(),
            index,
        };
        let entry_diff = inp.index.as_ref().map(entry_diffs).unwrap_or_default();
        self.folder_chain.push(HashMap::new());
        let res = self.stream(r, &mut inp, &entry_diff, base);
        self.input_bytes = base + r.position();
        self.report_read(self.input_bytes);
        res?;
        let c = &inp.collected;
        if c.manifest.is_none() && c.index.is_none() {
            return Err(ArchiveError::MissingManifest(label.to_string()));
        }
        self.inputs.push(inp);
        Ok(())
    }

    fn stream<E: EntryStream>(
        &mut self,
        r: &mut E,
        inp: &mut Input,
        entry_diff: &HashMap<String, (Digest, Option<Digest>)>,
        base: u64,
    ) -> Result<(), ArchiveError> {
        let input_no = self.inputs.len();
        while let Some(head) = r.next_entry()? {
            self.report_read(base + r.position());
            let name = clean_name(&head.name)?;
            if head.is_symlink() {
                if let Some(t) = &head.link_name {
                    inp.links.insert(name.clone(), resolve_link(&name, t)?);
                }
                continue;
            }
            if !head.is_file() {
                continue;
            }
            match role_of(&name) {
                EntryRole::Manifest
                | EntryRole::Repositories
                | EntryRole::Index
                | EntryRole::OciLayout
                | EntryRole::LegacyConfig(_) => {
                    let data = r.read_all(MAX_JSON)?;
                    inp.collected.add(&name, data)?;
                }
                EntryRole::FolderJson(folder) => {
                    let data = r.read_all(MAX_JSON)?;
                    let id =
                        V1Json::parse(&data).and_then(|v| v.identify(&folder, &self.candidates));
                    self.folder_chain[input_no].entry(folder).or_insert(id);
                }
                EntryRole::FolderOther(_) => {}
                role => {
                    let known = match entry_diff.get(&name) {
                        Some((d, b)) => Some(Known {
                            diff: d.clone(),
                            blob: b.clone(),
                        }),
                        None => self.known_by_name(input_no, &name, &role),
                    };
                    match known {
                        Some(k) => self.layer(r, &name, &head, k, base)?,
                        None => self.unknown(r, inp, input_no, name, &head, base)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// What an entry's name says about it: a legacy folder identified from its `json`, or a
    /// blob named by a digest some wanted layer has.
    fn known_by_name(&self, input: usize, name: &str, role: &EntryRole) -> Option<Known> {
        if let EntryRole::FolderLayer(folder) = role {
            let chain = self.folder_chain[input].get(folder)?.as_ref()?;
            return Some(Known {
                diff: self.chain_diff.get(chain)?.clone(),
                blob: None,
            });
        }
        let d = named_digest(name)?;
        if let Some(diff) = self.blob_diff.get(&d) {
            return Some(Known {
                diff: diff.clone(),
                blob: Some(d),
            });
        }
        None
    }

    /// An entry that is neither metadata nor a known layer: a JSON blob (config, OCI manifest) is
    /// collected; with an index, anything else belongs to no wanted image and is skipped; in a
    /// one-pass stream it is spooled until the metadata says what it is.
    fn unknown<E: EntryStream>(
        &mut self,
        r: &mut E,
        inp: &mut Input,
        input_no: usize,
        name: String,
        head: &EntryHead,
        base: u64,
    ) -> Result<(), ArchiveError> {
        let prefix = read_prefix(r, 64)?;
        if head.size <= MAX_JSON && looks_like_json(&prefix) {
            let mut data = prefix;
            data.extend(r.read_all(MAX_JSON)?);
            if let EntryRole::Blob(d) = role_of(&name) {
                self.learn_manifest(&d, &data);
            }
            return inp.collected.add(&name, data);
        }
        if inp.index.is_some() {
            return self.drain(r, base);
        }
        self.spool(r, input_no, name, head, &prefix, base)
    }

    /// Learns blob → diffID from an OCI manifest read while streaming (containerd layout).
    fn learn_manifest(&mut self, digest: &Digest, bytes: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        let digest_of = |x: &Value| {
            x.get("digest")
                .and_then(Value::as_str)
                .and_then(|s| Digest::parse(s).ok())
        };
        let Some(cfg) = v.get("config").and_then(digest_of) else {
            return;
        };
        let Some(layers) = v.get("layers").and_then(Value::as_array) else {
            return;
        };
        // The containerd store names an image by its manifest (or index) digest.
        let Some(img) = self
            .wanted
            .iter()
            .find(|i| i.is_named_by(&cfg) || i.is_named_by(digest))
        else {
            return;
        };
        if layers.len() != img.layers.len() {
            return; // inconsistent; finish reports it from the config
        }
        let pairs: Vec<(Digest, Digest)> = layers
            .iter()
            .zip(&img.layers)
            .filter_map(|(l, w)| digest_of(l).map(|b| (b, w.diff_id.clone())))
            .collect();
        self.blob_diff.extend(pairs);
    }

    /// A layer file whose diffID is known: written (once, checked) when needed, else skipped.
    fn layer<E: EntryStream>(
        &mut self,
        r: &mut E,
        name: &str,
        head: &EntryHead,
        k: Known,
        base: u64,
    ) -> Result<(), ArchiveError> {
        let needed = self.diff_needed(&k.diff);
        if !needed || self.written.contains_key(&k.diff) {
            let prefix = read_prefix(r, 4)?;
            let c = codec::detect(&prefix);
            if !self.seen.contains_key(&k.diff) {
                let blob = match (c, &k.blob) {
                    (Compression::None, _) => Some(Blob::uncompressed(&k.diff, Some(head.size))),
                    (_, Some(b)) => Some(stored(b, c, head.size)),
                    _ => None,
                };
                if let Some(b) = blob {
                    self.seen.insert(k.diff.clone(), b);
                }
                if !needed {
                    self.report_layer(name, head.size, false);
                }
            }
            return self.drain(r, base);
        }
        let prefix = read_prefix(r, 4)?;
        let c = codec::detect(&prefix);
        let digest = match (c, k.blob) {
            (Compression::None, _) => k.diff.clone(),
            (_, Some(b)) => b,
            // A compressed file whose digest nothing names: hash it first.
            (_, None) => {
                let input = self.inputs.len();
                return self.spool(r, input, name.to_string(), head, &prefix, base);
            }
        };
        self.report_layer(name, head.size, true);
        if self.hook.is_some() || unpack::unpacked(c) {
            return self.layer_unpacked(r, name, c, &prefix, &digest, k.diff, base);
        }
        // Without the diffID check, only the stored bytes are hashed (see `set_diff_check`).
        let hashed = if self.diff_check {
            c
        } else {
            Compression::None
        };
        let mut v = Verifier::new(hashed).map_err(ArchiveError::Io)?;
        let start = base + r.position();
        let mut data = std::io::Cursor::new(prefix).chain(r.data());
        let mut since = 0u64;
        let observer = self.observer.as_deref();
        let mut done = 0u64;
        let res = self
            .out
            .write_layer_blob((&digest, c), head.size, &mut data, |chunk| {
                v.update(chunk);
                done += chunk.len() as u64;
                since += chunk.len() as u64;
                if since >= 8 << 20 {
                    since = 0;
                    if let Some(o) = observer {
                        o.bytes_read(start + done);
                    }
                }
            });
        drop(data);
        res.map_err(|e| match e {
            ArchiveError::Io(io) => r.map_data_err(io),
            e => e,
        })?;
        match v.finish() {
            got if self.diff_check => check(name, &digest, &k.diff, got)?,
            got => check_digest(name, &digest, got.blob)?,
        }
        let blob = stored(&digest, c, head.size);
        self.seen.insert(k.diff.clone(), blob.clone());
        self.written.insert(k.diff, blob);
        Ok(())
    }

    /// A carried layer that is written decompressed ([`unpack`](super::unpack)): decompressed
    /// to a temporary file, checked, then written as the uncompressed tar named by its diffID
    /// (or replaced by the hook's delta).
    #[allow(clippy::too_many_arguments)]
    fn layer_unpacked<E: EntryStream>(
        &mut self,
        r: &mut E,
        name: &str,
        c: Compression,
        prefix: &[u8],
        digest: &Digest,
        diff: Digest,
        base: u64,
    ) -> Result<(), ArchiveError> {
        let mut u = Unpacker::of(c)?;
        u.update(prefix)?;
        self.copy_entry(r, base, |chunk| u.update(chunk))?;
        let done = u.finish()?;
        check(name, digest, &diff, done.got)?;
        self.write_unpacked(diff, done.file, done.size)
    }

    /// Reads past the current entry's data, reporting progress.
    fn drain<E: EntryStream>(&self, r: &mut E, base: u64) -> Result<(), ArchiveError> {
        self.copy_entry(r, base, |_| Ok(()))
    }

    /// Hands the rest of the current entry's data to `each`, chunk by chunk, reporting progress.
    fn copy_entry<E: EntryStream>(
        &self,
        r: &mut E,
        base: u64,
        mut each: impl FnMut(&[u8]) -> Result<(), ArchiveError>,
    ) -> Result<(), ArchiveError> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut since = 0u64;
        loop {
            let read = r.data().read(&mut buf);
            let n = read.map_err(|e| r.map_data_err(e))?;
            if n == 0 {
                return Ok(());
            }
            each(&buf[..n])?;
            since += n as u64;
            if since >= 8 << 20 {
                since = 0;
                self.report_read(base + r.position());
            }
        }
    }

    /// Spools the current entry to a temporary file, hashing it (and its content, when
    /// compressed) on the way; a blob written decompressed when carried
    /// ([`unpack`](super::unpack)) is spooled decompressed.
    fn spool<E: EntryStream>(
        &mut self,
        r: &mut E,
        input: usize,
        name: String,
        head: &EntryHead,
        prefix: &[u8],
        base: u64,
    ) -> Result<(), ArchiveError> {
        // A one-pass stream names layers by what the metadata at its end will say; memory must
        // stay bounded, so they wait on disk.
        let compression = codec::detect(prefix);
        let (file, unpacked, done) = if unpack::unpacked(compression) {
            let mut u = Unpacker::new()?;
            u.update(prefix)?;
            self.copy_entry(r, base, |chunk| u.update(chunk))?;
            let done = u.finish()?;
            (done.file, Some(done.size), done.got)
        } else {
            let mut v = Verifier::new(compression).map_err(ArchiveError::Spool)?;
            let mut file = tempfile::tempfile().map_err(ArchiveError::Spool)?;
            v.update(prefix);
            file.write_all(prefix).map_err(ArchiveError::Spool)?;
            self.copy_entry(r, base, |chunk| {
                v.update(chunk);
                file.write_all(chunk).map_err(ArchiveError::Spool)
            })?;
            file.seek(SeekFrom::Start(0)).map_err(ArchiveError::Spool)?;
            (file, None, v.finish())
        };
        self.spooled.push(Spooled {
            input,
            name,
            file,
            size: head.size,
            unpacked,
            compression,
            blob: done.blob,
            diff: done.diff,
        });
        Ok(())
    }
}

/// The blob as stored.
pub(super) fn stored(digest: &Digest, c: Compression, size: u64) -> Blob {
    Blob {
        digest: digest.clone(),
        media_type: layer_media_type(c).to_string(),
        size: Some(size),
        compression: c,
    }
}

/// A written blob must have the digest it was named by and hold the diffID it stands for.
pub(super) fn check(
    entry: &str,
    digest: &Digest,
    diff: &Digest,
    got: super::verify::Verified,
) -> Result<(), ArchiveError> {
    check_digest(entry, digest, got.blob)?;
    match got.diff {
        Ok(d) if d == *diff => Ok(()),
        Ok(d) => Err(ArchiveError::DigestMismatch {
            entry: format!("{entry} (uncompressed)"),
            expected: diff.clone(),
            actual: d,
        }),
        Err(e) => Err(ArchiveError::BadMetadata {
            entry: entry.to_string(),
            message: format!("the layer does not decompress: {e}"),
        }),
    }
}

/// A written blob must have the digest it was named by.
fn check_digest(entry: &str, digest: &Digest, got: Digest) -> Result<(), ArchiveError> {
    if got != *digest {
        return Err(ArchiveError::DigestMismatch {
            entry: entry.to_string(),
            expected: digest.clone(),
            actual: got,
        });
    }
    Ok(())
}

/// Entry (resolved through symlinks) → (diffID, stored digest when compressed) for every layer
/// position of an index.
fn entry_diffs(ix: &ArchiveIndex) -> HashMap<String, (Digest, Option<Digest>)> {
    let mut out = HashMap::new();
    for img in &ix.images {
        for (e, d) in img.layer_entries.iter().zip(&img.source.diff_ids) {
            let blob = ix.blob_of(e, d);
            let named = (blob.compression != Compression::None).then_some(blob.digest);
            out.insert(ix.resolve(e).to_string(), (d.clone(), named));
        }
    }
    out
}
