//! The reference layers of a bundle's deltas, read from this daemon: one `docker save` of local
//! images holding every reference chain, each wanted layer kept by diffID in an anonymous
//! temporary file in TMPDIR, checked against it (`crate::layer_files`). The export is dropped as
//! soon as every reference is found.

use crate::layer_files::{self, LayerFiles};
use anyhow::{Context, Result};
use partial_common::daemon::ImageMeta;
use partial_common::exit::{self, Coded};
use partial_common::manifest::BundleManifest;
use partial_common::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;

/// The reference layers, by diffID, each in an anonymous temporary file.
#[derive(Debug, Default)]
pub struct References {
    files: LayerFiles,
}

impl References {
    /// The reference layer `diff_id`, when it was read.
    pub fn get_mut(&mut self, diff_id: &Digest) -> Option<&mut File> {
        self.files.get_mut(diff_id)
    }

    #[cfg(test)]
    pub fn from_files(files: LayerFiles) -> Self {
        References { files }
    }
}

/// Reads, from `daemon`, every reference layer of the deltas of `manifest`; `local` is the
/// daemon's images as `base::check` returned them (which must have passed). Nothing is read when
/// the bundle has no deltas.
pub async fn spool(
    bases: crate::base::BaseSource<'_>,
    manifest: &BundleManifest,
    local: &[ImageMeta],
) -> Result<References> {
    // Reference diffID → its chain.
    let wanted: BTreeMap<Digest, Digest> = manifest
        .deltas()
        .into_iter()
        .map(|d| (d.reference_diff_id.clone(), d.reference_chain_id.clone()))
        .collect();
    if wanted.is_empty() {
        return Ok(References::default());
    }
    let (names, reader) = bases.export(wanted.values(), local)?;
    let keys: BTreeSet<Digest> = wanted.keys().cloned().collect();
    let dir = std::env::temp_dir();
    let files = tokio::task::spawn_blocking(move || layer_files::read(reader, &keys, &dir))
        .await
        .context("the reference spool thread failed")??;
    if let Some((diff_id, chain)) = wanted.iter().find(|(d, _)| !files.contains_key(*d)) {
        let image = local
            .iter()
            .find(|i| names.contains(&i.id.to_string()) && i.chain_ids.contains(chain))
            .map(|i| match i.tags.first() {
                Some(t) => format!("{t} ({})", i.id),
                None => i.id.to_string(),
            })
            .unwrap_or_else(|| names.join(", "));
        return Err(anyhow::Error::new(Coded::new(
            exit::BASE_MISSING,
            format!(
                "the daemon's export of {image}, which holds chain {chain}, did not contain \
                 layer {diff_id}, the reference of a delta layer"
            ),
        )));
    }
    Ok(References { files })
}
