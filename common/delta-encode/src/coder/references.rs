//! The reference layers of `--delta`: every layer of the reference images whose chain the
//! destination holds, streamed through the engine (so every archive layout and source works)
//! into an indexing hook. Only chunk hashes stay in memory; a reference of at most
//! [`PATCH_MAX_REFERENCE`] bytes is also kept in an anonymous temporary file for the zstd patch
//! mode.

use crate::ChunkIndex;
use partial_common::archive::ArchiveError;
use partial_common::delta::PATCH_MAX_REFERENCE;
use partial_common::digest::Digest;
use partial_common::engine::{CarriedLayers, Engine, Replacement};
use partial_common::have::{HaveSet, Origin};
use partial_common::image::Image;
use partial_common::source::Source;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::sync::{Arc, Mutex};

/// One reference layer: what the destination holds it as, and its index.
pub struct Reference {
    pub diff_id: Digest,
    /// A chain the destination holds the layer under.
    pub chain_id: Digest,
    /// Who said the destination holds that chain.
    pub origin: Origin,
    pub index: ChunkIndex,
    /// The layer itself when small enough for the zstd patch mode.
    pub file: Option<File>,
}

/// The indexed references, and where each sits in the reference images.
#[derive(Default)]
pub struct References {
    pub layers: Vec<Reference>,
    /// (repository, position) → the reference layer there (its diffID).
    pub by_position: HashMap<(String, usize), Digest>,
}

impl References {
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

/// The repositories an image's tags name (`docker.io/library/app` for `app:1`).
pub fn repositories(img: &Image) -> Vec<String> {
    img.tags
        .iter()
        .filter_map(|t| partial_common::reference::ImageRef::parse(t).ok())
        .map(|r| format!("{}/{}", r.registry, r.repository))
        .collect()
}

/// The hook of the indexing pass: indexes every layer it is offered that is wanted as a
/// reference, and writes nothing instead (the engine's output is a sink).
struct Indexer {
    /// diffID → (chain, origin) the destination holds it under.
    wanted: HashMap<Digest, (Digest, Origin)>,
    out: Arc<Mutex<Vec<Reference>>>,
}

impl CarriedLayers for Indexer {
    fn offer(
        &mut self,
        diff_id: &Digest,
        layer: &mut File,
        size: u64,
    ) -> Result<Option<Replacement>, ArchiveError> {
        let Some((chain_id, origin)) = self.wanted.get(diff_id).cloned() else {
            return Ok(None);
        };
        let file = if size <= PATCH_MAX_REFERENCE {
            Some(layer.try_clone().map_err(ArchiveError::Spool)?)
        } else {
            None
        };
        let index = ChunkIndex::build(&mut *layer).map_err(|source| ArchiveError::Delta {
            layer: diff_id.clone(),
            source,
        })?;
        if index.diff_id() != diff_id {
            // The engine checked the layer; a file that changed under us is a spool failure.
            return Err(ArchiveError::DigestMismatch {
                entry: format!("reference layer {diff_id} (re-read)"),
                expected: diff_id.clone(),
                actual: index.diff_id().clone(),
            });
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.push(Reference {
            diff_id: diff_id.clone(),
            chain_id,
            origin,
            index,
            file,
        });
        Ok(None)
    }
}

/// Streams `images` (from the first of `sources` holding each; an image none holds is skipped)
/// and indexes every layer whose chain `have` holds, except the chains the `exported` images
/// use themselves: those are their unchanged base (left out, not rebuilt), and a daemon stream
/// passes them by without hashing or spooling.
pub fn index_references(
    sources: &[&dyn Source],
    images: &[Image],
    have: &HaveSet,
    exported: &[Image],
) -> Result<References, ArchiveError> {
    let mut refs = References::default();
    let mut wanted = HashMap::new();
    let mut shared = HaveSet::new();
    for img in exported {
        shared.add_image(
            &img.diff_ids(),
            &Origin::Image {
                name: img.name(),
                image_id: img.id.clone(),
            },
        );
    }
    for img in images {
        let repos = repositories(img);
        for (pos, l) in img.layers.iter().enumerate() {
            let Some(h) = have.get(&l.chain_id) else {
                continue;
            };
            if shared.contains(&l.chain_id) {
                continue;
            }
            wanted
                .entry(l.diff_id.clone())
                .or_insert_with(|| (l.chain_id.clone(), h.origin.clone()));
            for repo in &repos {
                refs.by_position
                    .entry((repo.clone(), pos))
                    .or_insert_with(|| l.diff_id.clone());
            }
        }
    }
    if wanted.is_empty() {
        return Ok(refs);
    }
    // Which source streams which images (an image two sources hold is read from the first).
    let mut plan: Vec<(&dyn Source, Vec<Image>)> = Vec::new();
    let mut taken = HashSet::new();
    for src in sources {
        let mine: Vec<Image> = images
            .iter()
            .filter(|i| src.holds(i) && taken.insert(i.id.clone()))
            .cloned()
            .collect();
        if !mine.is_empty() {
            plan.push((*src, mine));
        }
    }
    let held: Vec<Image> = plan.iter().flat_map(|(_, m)| m.iter().cloned()).collect();
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut engine = Engine::new(std::io::sink(), held, shared);
    engine.set_hook(Box::new(Indexer {
        wanted,
        out: Arc::clone(&out),
    }));
    for (src, mine) in &plan {
        src.stream(mine, &mut engine)?;
    }
    engine.finish()?;
    refs.layers = std::mem::take(&mut *out.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(refs)
}
