//! The base check: every chain the bundle expects at the destination must exist on this daemon
//! (chains computed from all local images). Missing ones are listed with the image they came from
//! and what to do about it.

use anyhow::Result;
use partial_common::daemon::{Daemon, ImageMeta};
use partial_common::exit::{self, Coded};
use partial_common::manifest::{BundleManifest, RequiredBase};
use std::collections::BTreeSet;

/// The required base chains the daemon lacks.
pub fn missing<'a>(manifest: &'a BundleManifest, local: &[ImageMeta]) -> Vec<&'a RequiredBase> {
    let have: BTreeSet<_> = local.iter().flat_map(|i| i.chain_ids.iter()).collect();
    manifest
        .required_base
        .iter()
        .filter(|r| !have.contains(&r.chain_id))
        .collect()
}

/// Checks the daemon; on missing layers, an error with exit code 4 listing each one.
pub async fn check(daemon: &Daemon, manifest: &BundleManifest) -> Result<Vec<ImageMeta>> {
    let local = daemon
        .all_images()
        .await
        .map_err(|e| anyhow::Error::new(Coded::new(exit::DAEMON, e)))?;
    let missing = missing(manifest, &local);
    if missing.is_empty() {
        return Ok(local);
    }
    let mut images: Vec<String> = missing
        .iter()
        .map(|r| r.origin.image().to_string())
        .collect();
    images.dedup();
    let mut msg = format!(
        "{} base layer(s) the bundle needs are not on the daemon at {}:\n",
        missing.len(),
        daemon.host
    );
    for r in &missing {
        msg.push_str(&format!(
            "  chain {} (layer {}) from {}\n",
            r.chain_id, r.diff_id, r.origin
        ));
    }
    let uniq: BTreeSet<&str> = missing.iter().map(|r| r.origin.image()).collect();
    msg.push_str(&format!(
        "load {} on this daemon first (or export again against an inventory of this daemon: \
         `partial-load inventory -o have.json`, then `partial-save --have have.json`)",
        uniq.into_iter().collect::<Vec<_>>().join(", ")
    ));
    Err(anyhow::Error::new(Coded::new(exit::BASE_MISSING, msg)))
}
