//! The base check: every chain the bundle expects at the destination must exist on this daemon
//! (chains computed from all local images). Missing ones are listed with the image they came from
//! and what to do about it (and, for the reference of a delta layer, which layer needs it).
//! Where a command needs the base layers themselves (rehydrate, delta references), the daemon's
//! export of the fewest images holding them ([`export_holding`]).

use anyhow::Result;
use partial_common::channel_reader::ChannelReader;
use partial_common::daemon::{Daemon, ImageMeta};
use partial_common::exit::{self, Coded};
use partial_common::manifest::{BundleManifest, RequiredBase};
use partial_common::Digest;
use std::collections::{BTreeMap, BTreeSet};

/// The required base chains the daemon lacks.
pub fn missing<'a>(manifest: &'a BundleManifest, local: &[ImageMeta]) -> Vec<&'a RequiredBase> {
    let have: BTreeSet<_> = local.iter().flat_map(|i| i.chain_ids.iter()).collect();
    manifest
        .required_base
        .iter()
        .filter(|r| !have.contains(&r.chain_id))
        .collect()
}

/// Reference chain → a layer rebuilt from it (a delta layer), for messages.
fn delta_targets(manifest: &BundleManifest) -> BTreeMap<&Digest, &Digest> {
    manifest
        .images
        .iter()
        .flat_map(|i| &i.layers)
        .filter_map(|l| {
            l.delta
                .as_ref()
                .map(|d| (&d.reference_chain_id, &l.diff_id))
        })
        .collect()
}

/// Checks the daemon; on missing layers, an error with exit code 4 listing each one.
pub async fn check(daemon: &Daemon, manifest: &BundleManifest) -> Result<Vec<ImageMeta>> {
    let local = daemon
        .all_images()
        .await
        .map_err(|e| anyhow::Error::new(Coded::new(exit::DAEMON, e)))?;
    refuse_missing(
        manifest,
        &local,
        &format!("the daemon at {}", daemon.host),
        "this daemon",
        "partial-load inventory -o have.json",
    )?;
    Ok(local)
}

/// The base check against the images `local` of a destination (`place`, for the message: "the
/// daemon at …"; `this`: "this daemon"; `inventory`: the command that takes its inventory): an
/// error with exit code 4 listing each missing chain.
pub fn refuse_missing(
    manifest: &BundleManifest,
    local: &[ImageMeta],
    place: &str,
    this: &str,
    inventory: &str,
) -> Result<()> {
    let missing = missing(manifest, local);
    if missing.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} base layer(s) the bundle needs are not on {place}:\n",
        missing.len(),
    );
    let deltas = delta_targets(manifest);
    for r in &missing {
        msg.push_str(&format!(
            "  chain {} (layer {}) from {}{}\n",
            r.chain_id,
            r.diff_id,
            r.origin,
            match deltas.get(&r.chain_id) {
                Some(target) => format!(", the reference of delta layer {target}"),
                None => String::new(),
            }
        ));
    }
    let uniq: BTreeSet<&str> = missing.iter().map(|r| r.origin.image()).collect();
    msg.push_str(&format!(
        "load {} on {this} first (or export again against an inventory of {this}: \
         `{inventory}`, then `partial-save --have have.json`)",
        uniq.into_iter().collect::<Vec<_>>().join(", ")
    ));
    Err(anyhow::Error::new(Coded::new(exit::BASE_MISSING, msg)))
}

/// Local images that together hold every chain of `chains` (one per chain, reusing choices, the
/// one with the fewest layers above the chain: less to export). Their IDs, for `daemon.export`.
pub fn images_holding<'a>(
    chains: impl IntoIterator<Item = &'a Digest>,
    local: &[ImageMeta],
) -> Result<Vec<String>> {
    let mut chosen: Vec<&ImageMeta> = Vec::new();
    for chain in chains {
        if chosen.iter().any(|i| i.chain_ids.contains(chain)) {
            continue;
        }
        let best = local
            .iter()
            .filter(|i| i.chain_ids.contains(chain))
            .min_by_key(|i| i.chain_ids.len())
            .ok_or_else(|| {
                anyhow::Error::new(Coded::new(
                    exit::BASE_MISSING,
                    format!("no local image holds chain {chain}"),
                ))
            })?;
        chosen.push(best);
    }
    Ok(chosen.iter().map(|i| i.id.to_string()).collect())
}

/// The daemon's export (streamed on its own task) of the fewest local images that hold
/// `chains`, with the IDs of the images exported; exit 4 when no image holds one of them.
pub fn export_holding<'a>(
    daemon: &Daemon,
    chains: impl IntoIterator<Item = &'a Digest>,
    local: &[ImageMeta],
) -> Result<(Vec<String>, ChannelReader)> {
    let names = images_holding(chains, local)?;
    let reader = ChannelReader::spawn(daemon.export(&names), partial_common::daemon::EXPORT_IDLE);
    Ok((names, reader))
}

/// A store of base layers other than the Docker daemon: a containerd namespace's images
/// (`--containerd`, `containerd::export::Bases`). A trait, so that this module, which the
/// containerd client uses, does not name it back.
pub trait LayerStore: Sync {
    /// The layers of `chains` as a tar stream (each checked by its reader), with the IDs of the
    /// images they were found in; exit 4 when the store holds no layer of one of them.
    fn export_chains(
        &self,
        chains: Vec<&Digest>,
    ) -> Result<(Vec<String>, Box<dyn std::io::Read + Send>)>;
}

/// Where the base layers a bundle left out (or its delta references) are read from.
#[derive(Clone, Copy)]
pub enum BaseSource<'a> {
    /// The Docker daemon's export of the images holding them.
    Daemon(&'a Daemon),
    /// Another store's blobs: a containerd namespace's images (`--containerd`).
    Store(&'a dyn LayerStore),
}

impl BaseSource<'_> {
    /// A tar stream holding the layers of `chains` (each checked by its reader), with the IDs of
    /// the images read; exit 4 when no local image holds one of them.
    pub fn export<'a>(
        &self,
        chains: impl IntoIterator<Item = &'a Digest>,
        local: &[ImageMeta],
    ) -> Result<(Vec<String>, Box<dyn std::io::Read + Send>)> {
        match self {
            BaseSource::Daemon(daemon) => {
                let (names, reader) = export_holding(daemon, chains, local)?;
                Ok((names, Box::new(reader)))
            }
            BaseSource::Store(store) => store.export_chains(chains.into_iter().collect()),
        }
    }
}
