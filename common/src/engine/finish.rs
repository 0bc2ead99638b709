//! [`Engine::finish`]: the decisions that need every input's metadata. The wanted images are
//! matched with the images the inputs describe; legacy folder identifications are checked
//! against `manifest.json`; spooled blobs are written or dropped; every carried position must
//! have its blob in the bundle; configs and the bundle's metadata are written; the plan is built.

use super::input::{check, stored};
use super::verify::Verified;
use super::Engine;
use crate::archive::names::{folder_of_layer, named_digest};
use crate::archive::{ArchiveError, IndexedImage};
use crate::codec::Compression;
use crate::digest::Digest;
use crate::image::{Image, Layer};
use crate::plan::{Decision, Layout, Plan, PlannedImage, PlannedLayer};
use crate::reference::tag_of_bare_name;
use std::collections::{BTreeSet, HashMap};
use std::io::Write;

/// An image an input describes.
struct Found {
    input: usize,
    img: IndexedImage,
}

/// A spooled blob as the uncompressed layer: the spool itself when it is plain, else decompressed
/// into another temporary file.
fn unpack_spooled(sp: &mut super::Spooled) -> Result<(std::fs::File, u64), ArchiveError> {
    if sp.compression == Compression::None {
        let f = sp.file.try_clone().map_err(ArchiveError::Spool)?;
        return Ok((f, sp.size));
    }
    let mut u = super::unpack::Unpacker::of(sp.compression)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = std::io::Read::read(&mut sp.file, &mut buf).map_err(ArchiveError::Spool)?;
        if n == 0 {
            break;
        }
        u.update(&buf[..n])?;
    }
    let done = u.finish()?;
    if let Err(e) = done.got.diff {
        return Err(ArchiveError::BadMetadata {
            entry: sp.name.clone(),
            message: format!("the layer does not decompress: {e}"),
        });
    }
    Ok((done.file, done.size))
}

fn short_list(v: &[Digest]) -> String {
    v.iter()
        .map(|d| d.short().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl<W: Write> Engine<W> {
    /// Writes the configs and metadata and the end of the bundle; returns the plan and the writer.
    pub fn finish(mut self) -> Result<(Plan, W), ArchiveError> {
        let found = self.found_images()?;
        let matched = self.match_wanted(&found)?;
        self.warn_untagged(&found, &matched);
        self.check_identification(&found, &matched)?;
        self.decide_spooled(&found)?;
        let (plan_images, images) = self.plan_images(&found, &matched)?;
        for img in &images {
            if let Some(c) = &img.config {
                self.out.write_small_blob(c)?;
            }
        }
        let layout = if self
            .written
            .values()
            .any(|b| b.compression != Compression::None)
        {
            Layout::Containerd
        } else {
            Layout::Oci
        };
        let by = self
            .written
            .iter()
            .filter_map(|(d, b)| self.deltas.get(d).map(|x| x.size).or(b.size))
            .sum();
        let bc = self.written.len() as u64;
        let left: BTreeSet<&Digest> = self
            .wanted
            .iter()
            .flat_map(|w| w.layers.iter().map(|l| &l.diff_id))
            .filter(|d| !self.written.contains_key(*d))
            .collect();
        let ly = left
            .iter()
            .filter_map(|d| self.seen.get(*d).and_then(|b| b.size))
            .sum();
        let (w, output_tar_bytes) = self.out.finish(&images)?;
        let plan = Plan {
            layout,
            images: plan_images,
            blobs_carried: bc,
            bytes_carried: by,
            blobs_left_out: left.len() as u64,
            bytes_left_out: ly,
            input_bytes: self.input_bytes,
            output_tar_bytes,
            warnings: self.warnings,
        };
        Ok((plan, w))
    }

    /// Every image every input describes, in input order.
    fn found_images(&self) -> Result<Vec<Found>, ArchiveError> {
        let mut out = Vec::new();
        for (i, inp) in self.inputs.iter().enumerate() {
            for img in inp.collected.images()? {
                out.push(Found { input: i, img });
            }
        }
        Ok(out)
    }

    /// For each wanted image, the found image with its ID, else the first one an alias of it
    /// names (the containerd store names images by manifest or index digest), with the same
    /// diffIDs. The ID comes first: an index digest names every platform's image below it.
    fn match_wanted(&self, found: &[Found]) -> Result<Vec<usize>, ArchiveError> {
        let mut out = Vec::new();
        for w in &self.wanted {
            let hit = found
                .iter()
                .position(|f| f.img.source.id == w.id)
                .or_else(|| {
                    found.iter().position(|f| {
                        f.img.named_by(&w.id) || w.aliases.iter().any(|a| f.img.named_by(a))
                    })
                });
            let Some(k) = hit else {
                return Err(ArchiveError::ImageNotFound(w.name()));
            };
            let diffs = w.diff_ids();
            if found[k].img.source.diff_ids != diffs {
                return Err(ArchiveError::ImageMismatch {
                    image: w.name(),
                    expected: short_list(&diffs),
                    found: short_list(&found[k].img.source.diff_ids),
                });
            }
            out.push(k);
        }
        Ok(out)
    }

    /// A wanted image left untagged whose layout names it only by bare ref names that are no
    /// valid repository names (`V1`): it loads with its ID only, which the plan says.
    fn warn_untagged(&mut self, found: &[Found], matched: &[usize]) {
        for (w, k) in self.wanted.iter().zip(matched) {
            let invalid: Vec<&str> = found[*k]
                .img
                .ref_names
                .iter()
                .filter(|r| tag_of_bare_name(r).is_none())
                .map(String::as_str)
                .collect();
            if w.tags.is_empty() && !invalid.is_empty() {
                self.warnings.push(format!(
                    "image {}: its OCI ref name {} is not a valid repository name, so it is carried \
                     untagged (after the load it has only its ID; -i NAME:{} would tag it)",
                    w.name(),
                    invalid.join(", "),
                    invalid[0]
                ));
            }
        }
    }

    /// Legacy folders identified from their `json` must sit where `manifest.json` puts them.
    fn check_identification(&self, found: &[Found], matched: &[usize]) -> Result<(), ArchiveError> {
        for (w, k) in self.wanted.iter().zip(matched) {
            let f = &found[*k];
            for (pos, e) in f.img.layer_entries.iter().enumerate() {
                let Some(folder) = folder_of_layer(e) else {
                    continue;
                };
                let Some(Some(c)) = self.folder_chain[f.input].get(&folder) else {
                    continue;
                };
                let want = &w.layers[pos].chain_id;
                if c != want {
                    return Err(ArchiveError::Identification {
                        folder,
                        message: format!(
                            "its json matched chain {c}, but manifest.json puts it at position {pos} of image {} (chain {want})",
                            w.name()
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Spooled blobs: now that the metadata says which diffID each holds, the needed ones are
    /// checked and written, the others dropped.
    fn decide_spooled(&mut self, found: &[Found]) -> Result<(), ArchiveError> {
        let mut role: HashMap<(usize, String), Digest> = HashMap::new();
        for f in found {
            let links = &self.inputs[f.input].links;
            for (e, d) in f.img.layer_entries.iter().zip(&f.img.source.diff_ids) {
                let mut cur = e.as_str();
                for _ in 0..16 {
                    match links.get(cur) {
                        Some(t) => cur = t,
                        None => break,
                    }
                }
                role.insert((f.input, cur.to_string()), d.clone());
            }
        }
        for mut sp in std::mem::take(&mut self.spooled) {
            let Some(diff) = role.get(&(sp.input, sp.name.clone())).cloned() else {
                continue; // not a layer of any image
            };
            let needed = self.diff_needed(&diff);
            let blob = stored(&sp.blob, sp.compression, sp.size);
            if !needed || self.written.contains_key(&diff) {
                if !needed && !self.seen.contains_key(&diff) {
                    self.report_layer(&sp.name, sp.size, false);
                }
                self.seen.entry(diff).or_insert(blob);
                continue;
            }
            let named = named_digest(&sp.name).unwrap_or_else(|| sp.blob.clone());
            let got = Verified {
                blob: sp.blob.clone(),
                diff: sp.diff.clone(),
            };
            check(&sp.name, &named, &diff, got)?;
            self.report_layer(&sp.name, sp.size, true);
            if let Some(size) = sp.unpacked {
                self.write_unpacked(diff, sp.file, size)?;
                continue;
            }
            if self.hook.is_some() {
                // The hook sees layers uncompressed.
                let (file, size) = unpack_spooled(&mut sp)?;
                self.write_unpacked(diff, file, size)?;
                continue;
            }
            self.out
                .write_layer_blob((&sp.blob, sp.compression), sp.size, &mut sp.file, |_| {})
                .map_err(|e| match e {
                    ArchiveError::Io(io) => ArchiveError::Spool(io),
                    e => e,
                })?;
            self.seen.insert(diff.clone(), blob.clone());
            self.written.insert(diff, blob);
        }
        Ok(())
    }

    /// The plan's images and the bundle's images; fails when a carried position has no blob or
    /// a config is missing.
    fn plan_images(
        &self,
        found: &[Found],
        matched: &[usize],
    ) -> Result<(Vec<PlannedImage>, Vec<Image>), ArchiveError> {
        let mut planned = Vec::new();
        let mut images: Vec<Image> = Vec::new();
        for (w, k) in self.wanted.iter().zip(matched) {
            let f = &found[*k];
            let mut layers = Vec::new();
            let mut model = Vec::new();
            for (pos, l) in w.layers.iter().enumerate() {
                let entry = f.img.layer_entries.get(pos).cloned();
                let origin = self.have.get(&l.chain_id).map(|h| h.origin.clone());
                let blob = match (&origin, self.written.get(&l.diff_id)) {
                    (None, Some(b)) => b.clone(),
                    (None, None) => {
                        return Err(ArchiveError::MissingLayer {
                            image: w.name(),
                            position: pos,
                            entry: entry.unwrap_or_default(),
                        })
                    }
                    (Some(_), _) => self
                        .seen
                        .get(&l.diff_id)
                        .cloned()
                        .unwrap_or_else(|| l.blob.clone()),
                };
                layers.push(PlannedLayer {
                    position: pos,
                    diff_id: l.diff_id.clone(),
                    chain_id: l.chain_id.clone(),
                    size: blob.size,
                    entry,
                    blob: Some(blob.clone()),
                    delta: self.deltas.get(&l.diff_id).cloned(),
                    decision: match origin {
                        None => Decision::Carried,
                        Some(origin) => Decision::AtDestination { origin },
                    },
                });
                model.push(Layer { blob, ..l.clone() });
            }
            let config = self.config_of(w, f)?;
            let id = f.img.source.id.clone();
            let source_manifest = w.source_manifest.clone();
            planned.push(PlannedImage {
                id: id.clone(),
                tags: w.tags.clone(),
                layers,
                source_manifest: source_manifest.clone(),
                attached: w.attached.clone(),
            });
            match images.iter_mut().find(|i| i.id == id) {
                Some(prev) => w.tags.iter().for_each(|t| prev.add_tag(t)),
                None => images.push(Image {
                    id,
                    config: Some(config),
                    tags: w.tags.clone(),
                    layers: model,
                    aliases: w.aliases.clone(),
                    source_manifest,
                    attached: w.attached.clone(),
                }),
            }
        }
        Ok((planned, images))
    }

    /// The config bytes of a wanted image: from the source ahead of the stream, else from the
    /// input; they must hash to the image ID.
    fn config_of(&self, w: &Image, f: &Found) -> Result<Vec<u8>, ArchiveError> {
        let entry = &f.img.config_entry;
        let bytes = match &w.config {
            Some(c) => c.clone(),
            None => self.inputs[f.input]
                .collected
                .json
                .get(entry)
                .cloned()
                .ok_or_else(|| ArchiveError::MissingEntry {
                    entry: entry.clone(),
                    context: format!(
                        "the config of image {} in {}",
                        w.name(),
                        self.inputs[f.input].label
                    ),
                })?,
        };
        let got = Digest::of_bytes(&bytes);
        if got != f.img.source.id {
            return Err(ArchiveError::DigestMismatch {
                entry: entry.clone(),
                expected: f.img.source.id.clone(),
                actual: got,
            });
        }
        Ok(bytes)
    }
}
