//! Rebuilding the delta layers of a bundle on the destination, for `load`, `verify`
//! and `rehydrate`. A delta bundle lacks those layers: it carries, for each, a delta against a
//! reference layer this daemon holds (the reference chain is a required base, so `base::check`
//! has already failed with exit 4 when one is missing). Two steps, each its own module:
//!
//! - [`references`]: one `docker save` of local images holding the reference chains, keeping each
//!   reference layer in an anonymous temporary file, checked against its diffID
//!   (`crate::layer_files`);
//! - [`splice`]: the bundle's plain tar with every delta entry replaced by the layer it rebuilds,
//!   decoded and checked (diffID, the delta's own digest) while it streams, produced on a thread
//!   through a bounded pipe (`partial_common::pipe`) that hands the consumer an error, never a clean end, when
//!   anything fails. So an upload of it is aborted and nothing is loaded.

mod references;
mod splice;
#[cfg(test)]
pub(crate) mod tests;

use crate::errors::verify_failed;
use anyhow::Result;
use partial_common::manifest::BundleManifest;
use partial_common::plan::LayerDelta;
use partial_common::Digest;

pub use references::{spool, References};
pub use splice::rebuilt_stream;

/// A delta of the bundle and the layer it rebuilds.
#[derive(Clone, Debug)]
pub struct DeltaLayer {
    /// The diffID of the rebuilt layer.
    pub target: Digest,
    pub delta: LayerDelta,
}

/// The manifest's delta layers, once per delta blob; a delta blob claimed by two different
/// layers is an inconsistent manifest (exit 3).
pub fn delta_layers(manifest: &BundleManifest) -> Result<Vec<DeltaLayer>> {
    delta_layers_of(
        manifest
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .filter_map(|l| l.delta.as_ref().map(|d| (&l.diff_id, d))),
    )
}

/// [`delta_layers`] of (layer diffID, its delta) pairs.
fn delta_layers_of<'a>(
    pairs: impl IntoIterator<Item = (&'a Digest, &'a LayerDelta)>,
) -> Result<Vec<DeltaLayer>> {
    let mut out: Vec<DeltaLayer> = Vec::new();
    for (target, d) in pairs {
        match out.iter().find(|o| o.delta.digest == d.digest) {
            Some(o) if o.target == *target && o.delta == *d => {}
            Some(o) => {
                return Err(verify_failed(format!(
                    "the manifest gives delta {} to layers {} and {} (or with different details)",
                    d.digest, o.target, target
                )))
            }
            None => out.push(DeltaLayer {
                target: target.clone(),
                delta: d.clone(),
            }),
        }
    }
    Ok(out)
}
