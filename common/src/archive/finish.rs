//! [`Filter::finish`]: the decisions that need the whole archive. Once every input has been read,
//! the images of `manifest.json` / `index.json` are matched with the sources; held-back metadata,
//! symlinks and spooled blobs are kept or dropped; nothing needed may be missing and no kept symlink
//! may dangle; the merged `manifest.json`, `repositories` and `index.json` are written; the plan is
//! built.

use super::filter::{Filter, Held};
use super::legacy_id::V1Json;
use super::metadata::{rewrite_index, rewrite_manifest, rewrite_repositories};
use super::names::{folder_of_layer, role_of, EntryRole};
use super::{ArchiveError, IndexedImage};
use crate::digest::{chain_ids, Digest};
use crate::plan::{Decision, Layout, Plan, PlannedImage, PlannedLayer};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Write};

/// What the selected and the other images use, by entry.
#[derive(Default)]
struct Usage {
    /// Layer entry → chain IDs of exported positions using it.
    entry_chains: HashMap<String, BTreeSet<Digest>>,
    /// Layer entry → its diffID, for every image.
    entry_diff: HashMap<String, Digest>,
    /// Layer entries of any image.
    all_layers: HashSet<String>,
    sel_folders: HashSet<String>,
    all_folders: HashSet<String>,
    sel_configs: BTreeSet<String>,
    all_configs: HashSet<String>,
    /// Config, manifest and index blobs of the selected images.
    sel_json: BTreeSet<Digest>,
    all_json: HashSet<Digest>,
    sel_tags: BTreeSet<String>,
    /// Chain IDs of the selected images, and of all images.
    sel_chains: HashSet<Digest>,
    all_chains: Vec<Digest>,
}

fn image_name(img: &IndexedImage) -> String {
    img.source
        .tags
        .first()
        .cloned()
        .unwrap_or_else(|| img.source.id.to_string())
}

impl<W: Write> Filter<W> {
    /// Writes held-back metadata and the tar trailer; returns the plan and the writer.
    pub fn finish(mut self) -> Result<(Plan, W), ArchiveError> {
        // The images of all inputs, merged by ID.
        let mut images: Vec<IndexedImage> = Vec::new();
        for c in &self.inputs {
            for img in c.images()? {
                match images.iter_mut().find(|i| i.source.id == img.source.id) {
                    Some(prev) => {
                        for t in img.source.tags {
                            if !prev.source.tags.contains(&t) {
                                prev.source.tags.push(t);
                            }
                        }
                    }
                    None => images.push(img),
                }
            }
        }
        let layout = self.layout.unwrap_or(Layout::Legacy);

        // Match every source with an archive image.
        let mut selected: Vec<usize> = Vec::new();
        for s in &self.sources {
            let hit = images.iter().position(|i| {
                i.source.id == s.id
                    || i.manifest_digest.as_ref() == Some(&s.id)
                    || i.index_digests.contains(&s.id)
            });
            let Some(k) = hit else {
                let name = s.tags.first().cloned().unwrap_or_else(|| s.id.to_string());
                return Err(ArchiveError::ImageNotFound(name));
            };
            if images[k].source.diff_ids != s.diff_ids {
                let fmt = |v: &[Digest]| {
                    v.iter()
                        .map(|d| d.short().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                return Err(ArchiveError::ImageMismatch {
                    image: image_name(&images[k]),
                    expected: fmt(&s.diff_ids),
                    found: fmt(&images[k].source.diff_ids),
                });
            }
            selected.push(k);
        }

        let usage = self.usage(&images, &selected);
        self.check_identification(&images, &selected)?;

        // Spooled blobs (containerd layout, no index): their role is known now.
        let spooled = std::mem::take(&mut self.spooled);
        for mut sp in spooled {
            let keep = match usage.entry_diff.get(&sp.name) {
                Some(diff) => self.diff_needed(diff),
                None => true, // not a layer of any image: kept as it is
            };
            if usage.all_layers.contains(&sp.name) {
                self.report_layer(&sp.name, sp.size, keep);
            }
            if !keep {
                self.dropped.insert(sp.name);
                continue;
            }
            if let EntryRole::Blob(d) = role_of(&sp.name) {
                if d != sp.digest {
                    return Err(ArchiveError::DigestMismatch {
                        entry: sp.name,
                        expected: d,
                        actual: sp.digest,
                    });
                }
            }
            self.out.write_raw(&sp.raw)?;
            let n = io::copy(&mut sp.file, &mut self.out).map_err(ArchiveError::Write)?;
            if n != sp.size {
                return Err(ArchiveError::Truncated(format!(
                    "spooled copy of {} is {n} bytes, expected {}",
                    sp.name, sp.size
                )));
            }
            self.out.pad(sp.size)?;
            self.written.insert(sp.name, Some(sp.digest));
        }

        // Held entries: symlinks first decide on their own chain, the rest on what uses them.
        let held = std::mem::take(&mut self.held);
        let mut templates: HashMap<String, Vec<u8>> = HashMap::new();
        let mut decided: Vec<(Held, bool)> = Vec::new();
        for h in held {
            if let Some(meta) = h.name.strip_prefix("\0meta:") {
                let main = h.raw[h.raw.len() - super::tarstream::BLOCK..].to_vec();
                templates.insert(meta.to_string(), main);
                continue;
            }
            if self.written.contains_key(&h.name) {
                continue;
            }
            let keep = self.keep_held(&h, &usage);
            decided.push((h, keep));
        }
        // A kept link may point at another link (inputs saved in different orders): keep the
        // whole chain of links.
        let index: HashMap<String, usize> = decided
            .iter()
            .enumerate()
            .map(|(i, (h, _))| (h.name.clone(), i))
            .collect();
        loop {
            let mut changed = false;
            for i in 0..decided.len() {
                if !decided[i].1 {
                    continue;
                }
                let Some(t) = decided[i].0.link.clone() else {
                    continue;
                };
                if let Some(&j) = index.get(&t) {
                    if !decided[j].1 && decided[j].0.link.is_some() {
                        decided[j].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let mut links_kept: Vec<(String, String)> = Vec::new();
        let mut later: Vec<Held> = Vec::new();
        for (h, keep) in decided {
            if keep {
                if let Some(t) = &h.link {
                    if usage.all_layers.contains(&h.name) {
                        links_kept.push((h.name.clone(), t.clone()));
                    }
                }
                later.push(h);
            } else if usage.all_layers.contains(&h.name) {
                self.dropped.insert(h.name.clone());
            }
        }
        for h in later {
            self.out.write_entry(&h.raw, &h.data)?;
            let digest = if usage.all_layers.contains(&h.name) && h.link.is_none() {
                Some(Digest::of_bytes(&h.data))
            } else {
                None
            };
            if h.link.is_none() {
                self.sizes
                    .entry(h.name.clone())
                    .or_insert(h.data.len() as u64);
            }
            self.written.insert(h.name, digest);
        }
        for (entry, target) in &links_kept {
            if !self.written.contains_key(target) {
                return Err(ArchiveError::DanglingLink {
                    entry: entry.clone(),
                    target: target.clone(),
                });
            }
        }

        let plan_images = self.check_and_plan(&images, &selected, layout)?;

        // Merged metadata.
        let mut manifest_items: Vec<Value> = Vec::new();
        let mut any_manifest = false;
        let mut repos = serde_json::Map::new();
        let mut any_repos = false;
        let mut index_descs: Vec<Value> = Vec::new();
        let mut index_base: Option<Value> = None;
        let mut oci_layout: Option<Vec<u8>> = None;
        for c in &self.inputs {
            if let Some(items) = &c.manifest {
                any_manifest = true;
                manifest_items.extend(items.iter().cloned());
            }
            if let Some(r) = &c.repositories {
                any_repos = true;
                rewrite_repositories(r, &usage.sel_tags, &mut repos);
            }
            if let Some(ix) = &c.index {
                let mut keep = usage.sel_json.clone();
                // Descriptors are kept by the digest they name.
                keep.extend(
                    selected
                        .iter()
                        .filter_map(|k| images[*k].manifest_digest.clone()),
                );
                rewrite_index(ix, &keep, &mut index_descs);
                if index_base.is_none() {
                    index_base = Some(ix.clone());
                }
            }
            if oci_layout.is_none() {
                oci_layout.clone_from(&c.oci_layout);
            }
        }
        if let Some(bytes) = &oci_layout {
            self.out.write_new_file(
                "oci-layout",
                bytes,
                templates.get("oci-layout").map(|v| &v[..]),
            )?;
        }
        if let Some(mut ix) = index_base {
            if let Some(obj) = ix.as_object_mut() {
                obj.insert("manifests".into(), Value::Array(index_descs));
            }
            let bytes = serde_json::to_vec(&ix).map_err(|e| ArchiveError::Write(e.into()))?;
            self.out.write_new_file(
                "index.json",
                &bytes,
                templates.get("index.json").map(|v| &v[..]),
            )?;
        }
        if any_manifest {
            let items = rewrite_manifest(&manifest_items, &usage.sel_configs);
            let bytes = serde_json::to_vec(&items).map_err(|e| ArchiveError::Write(e.into()))?;
            self.out.write_new_file(
                "manifest.json",
                &bytes,
                templates.get("manifest.json").map(|v| &v[..]),
            )?;
        }
        if any_repos {
            let bytes = serde_json::to_vec(&Value::Object(repos))
                .map_err(|e| ArchiveError::Write(e.into()))?;
            self.out.write_new_file(
                "repositories",
                &bytes,
                templates.get("repositories").map(|v| &v[..]),
            )?;
        }

        // Totals over distinct layer blobs of the exported images.
        let mut blobs: BTreeSet<String> = BTreeSet::new();
        for k in &selected {
            for e in &images[*k].layer_entries {
                blobs.insert(self.links.get(e).cloned().unwrap_or_else(|| e.clone()));
            }
        }
        let (mut bc, mut by, mut lc, mut ly) = (0, 0, 0, 0);
        for b in &blobs {
            let size = self.sizes.get(b).copied().unwrap_or(0);
            if self.written.contains_key(b) {
                bc += 1;
                by += size;
            } else {
                lc += 1;
                ly += size;
            }
        }
        let Filter {
            out,
            input_bytes,
            warnings,
            ..
        } = self;
        let (w, output_tar_bytes) = out.finish()?;
        let plan = Plan {
            layout,
            images: plan_images,
            blobs_carried: bc,
            bytes_carried: by,
            blobs_left_out: lc,
            bytes_left_out: ly,
            input_bytes,
            output_tar_bytes,
            warnings,
        };
        Ok((plan, w))
    }

    fn usage(&self, images: &[IndexedImage], selected: &[usize]) -> Usage {
        let mut u = Usage::default();
        for (k, img) in images.iter().enumerate() {
            let sel_src = selected.iter().position(|s| *s == k);
            for (pos, e) in img.layer_entries.iter().enumerate() {
                u.all_layers.insert(e.clone());
                if let Some(d) = img.source.diff_ids.get(pos) {
                    u.entry_diff.insert(e.clone(), d.clone());
                }
                if let Some(f) = folder_of_layer(e) {
                    u.all_folders.insert(f.clone());
                    if sel_src.is_some() {
                        u.sel_folders.insert(f);
                    }
                }
                if let Some(si) = sel_src {
                    if let Some(c) = self.chains[si].get(pos) {
                        u.entry_chains
                            .entry(e.clone())
                            .or_default()
                            .insert(c.clone());
                    }
                }
            }
            for c in chain_ids(&img.source.diff_ids) {
                if sel_src.is_some() {
                    u.sel_chains.insert(c.clone());
                }
                if !u.all_chains.contains(&c) {
                    u.all_chains.push(c);
                }
            }
            u.all_configs.insert(img.config_entry.clone());
            let mut json: Vec<Digest> = Vec::new();
            if let EntryRole::Blob(d) = role_of(&img.config_entry) {
                json.push(d);
            }
            json.extend(img.manifest_digest.iter().cloned());
            json.extend(img.index_digests.iter().cloned());
            u.all_json.extend(json.iter().cloned());
            if sel_src.is_some() {
                u.sel_configs.insert(img.config_entry.clone());
                u.sel_json.extend(json);
                for t in &img.source.tags {
                    if let Some(f) = super::metadata::familiar(t) {
                        u.sel_tags.insert(f);
                    }
                }
            }
        }
        // Several sources may share one image (e.g. two tags): all selected.
        for (si, k) in selected.iter().enumerate() {
            for t in &self.sources[si].tags {
                if images[*k].source.tags.contains(t) {
                    if let Some(f) = super::metadata::familiar(t) {
                        u.sel_tags.insert(f);
                    }
                }
            }
        }
        u
    }

    fn keep_held(&self, h: &Held, u: &Usage) -> bool {
        if let Some(target) = &h.link {
            if u.all_layers.contains(&h.name) {
                // A layer symlink: kept iff its own chain is carried.
                return match u.entry_chains.get(&h.name) {
                    Some(chains) => chains.iter().any(|c| self.carried(c)),
                    None => false,
                };
            }
            return self.written.contains_key(target) || !u.all_layers.contains(target);
        }
        if let Some(diff) = u.entry_diff.get(&h.name) {
            return self.diff_needed(diff);
        }
        match role_of(&h.name) {
            EntryRole::LegacyConfig(_) => {
                u.sel_configs.contains(&h.name) || !u.all_configs.contains(&h.name)
            }
            EntryRole::FolderDir(f) | EntryRole::FolderJson(f) | EntryRole::FolderOther(f) => {
                u.sel_folders.contains(&f)
                    || !u.all_folders.contains(&f)
                    || self.written.contains_key(&format!("{f}/layer.tar"))
            }
            EntryRole::Blob(d) => {
                if u.sel_configs.contains(&h.name) || u.sel_json.contains(&d) {
                    true
                } else if u.all_configs.contains(&h.name) || u.all_json.contains(&d) {
                    false
                } else {
                    // Docker >= 25 keeps each layer's legacy v1 json as a blob: it belongs to
                    // the images whose chain its `id` encodes.
                    let chain = V1Json::id_of(&h.data).and_then(|id| {
                        V1Json::parse(&h.data).and_then(|v| v.identify(&id, &u.all_chains))
                    });
                    chain.map(|c| u.sel_chains.contains(&c)).unwrap_or(true)
                }
            }
            _ => true,
        }
    }

    /// Legacy folders identified from their `json` must agree with `manifest.json`.
    fn check_identification(
        &self,
        images: &[IndexedImage],
        selected: &[usize],
    ) -> Result<(), ArchiveError> {
        for (si, k) in selected.iter().enumerate() {
            for (pos, e) in images[*k].layer_entries.iter().enumerate() {
                let Some(f) = folder_of_layer(e) else {
                    continue;
                };
                if let Some(Some(c)) = self.folder_chain.get(&f) {
                    let want = &self.chains[si][pos];
                    // A folder holds one chain; a different chain here means a wrong match.
                    if c != want {
                        return Err(ArchiveError::Identification {
                            folder: f,
                            message: format!(
                                "its json matched chain {c}, but manifest.json puts it at position {pos} of image {} (chain {want})",
                                image_name(&images[*k])
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks that everything carried is present and verified; builds the plan's images.
    fn check_and_plan(
        &mut self,
        images: &[IndexedImage],
        selected: &[usize],
        layout: Layout,
    ) -> Result<Vec<PlannedImage>, ArchiveError> {
        let mut out = Vec::new();
        let mut warned: HashSet<String> = HashSet::new();
        for (si, k) in selected.iter().enumerate() {
            let img = &images[*k];
            let src = &self.sources[si];
            let mut layers = Vec::new();
            for (pos, entry) in img.layer_entries.iter().enumerate() {
                let chain = self.chains[si][pos].clone();
                let diff = src.diff_ids[pos].clone();
                let real = self
                    .links
                    .get(entry)
                    .cloned()
                    .unwrap_or_else(|| entry.clone());
                let carried = self.carried(&chain);
                if carried
                    && !(self.written.contains_key(entry) && self.written.contains_key(&real))
                {
                    return Err(ArchiveError::MissingLayer {
                        image: image_name(img),
                        position: pos,
                        entry: entry.clone(),
                    });
                }
                // Layers kept without knowing their diffID (unidentified legacy folders, held
                // small blobs) are checked now.
                if layout != Layout::Containerd {
                    if let Some(Some(got)) = self.written.get(&real) {
                        if *got != diff {
                            return Err(ArchiveError::DigestMismatch {
                                entry: real.clone(),
                                expected: diff,
                                actual: got.clone(),
                            });
                        }
                    }
                }
                let forced = !carried && self.unidentified_kept.contains(&real);
                if forced && warned.insert(real.clone()) {
                    self.warnings.push(format!(
                        "layer {real} of image {} (chain {chain}) was carried although the destination has it: its folder could not be identified from its json (unknown daemon scheme)",
                        image_name(img)
                    ));
                }
                let decision = match self.have.get(&chain) {
                    Some(h) if !forced => Decision::AtDestination {
                        origin: h.origin.clone(),
                    },
                    _ => Decision::Carried,
                };
                let seen = self.sizes.contains_key(entry)
                    || self.links.contains_key(entry)
                    || self.written.contains_key(entry)
                    || self.dropped.contains(entry);
                layers.push(PlannedLayer {
                    position: pos,
                    diff_id: diff,
                    chain_id: chain,
                    size: self.sizes.get(&real).copied(),
                    entry: if seen { Some(entry.clone()) } else { None },
                    decision,
                });
            }
            out.push(PlannedImage {
                id: src.id.clone(),
                tags: if src.tags.is_empty() {
                    img.source.tags.clone()
                } else {
                    src.tags.clone()
                },
                layers,
            });
        }
        Ok(out)
    }
}
