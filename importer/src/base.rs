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

/// A destination's base check, for its message: where the base layers were looked for and
/// how to put them there.
pub struct Place {
    /// Where: "the daemon at unix:///…", "the registry 127.0.0.1:5000".
    pub name: String,
    /// How the base images get there, before their names: "load", "push".
    pub put: &'static str,
    /// Where they go, after their names: "on this daemon", "to 127.0.0.1:5000".
    pub onto: String,
    /// The other ways out: "export again against an inventory of this daemon: `…`".
    pub otherwise: String,
}

impl Place {
    /// A store whose inventory `inventory` takes (`this`: "this daemon").
    pub fn store(name: String, this: &str, inventory: &str) -> Place {
        Place {
            name,
            put: "load",
            onto: format!("on {this}"),
            otherwise: format!(
                "export again against an inventory of {this}: `{inventory}`, then \
                 `partial-save --have have.json`"
            ),
        }
    }
}

/// Checks the daemon; on missing layers, an error with exit code 4 listing each one.
pub async fn check(daemon: &Daemon, manifest: &BundleManifest) -> Result<Vec<ImageMeta>> {
    let local = daemon
        .all_images()
        .await
        .map_err(|e| anyhow::Error::new(Coded::new(exit::DAEMON, e)))?;
    let place = Place::store(
        format!("the daemon at {}", daemon.host),
        "this daemon",
        "partial-load inventory -o have.json",
    );
    refuse_missing(manifest, &local, &place)?;
    Ok(local)
}

/// The base check against the images `local` of a destination: an error with exit code 4
/// listing each missing chain.
pub fn refuse_missing(manifest: &BundleManifest, local: &[ImageMeta], place: &Place) -> Result<()> {
    let missing: Vec<&Digest> = missing(manifest, local)
        .iter()
        .map(|r| &r.chain_id)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(missing_error(manifest, &missing, place))
}

/// The error (exit code 4) of a base check that found the chains `missing` lacking at `place`:
/// each with its layer, the image it came from (and, for the reference of a delta layer, the
/// layer rebuilt from it), then how to put them there.
pub fn missing_error(
    manifest: &BundleManifest,
    missing: &[&Digest],
    place: &Place,
) -> anyhow::Error {
    let mut msg = format!(
        "{} base layer(s) the bundle needs are not on {}:\n",
        missing.len(),
        place.name
    );
    let deltas = delta_targets(manifest);
    let mut images = BTreeSet::new();
    for chain in missing {
        let required = manifest
            .required_base
            .iter()
            .find(|r| &&r.chain_id == chain);
        let origin = match required {
            Some(r) => r.origin.image().to_string(),
            None => "an image the bundle was made against".to_string(),
        };
        msg.push_str(&format!(
            "  chain {chain}{} from {origin}{}\n",
            match required {
                Some(r) => format!(" (layer {})", r.diff_id),
                None => String::new(),
            },
            match deltas.get(chain) {
                Some(target) => format!(", the reference of delta layer {target}"),
                None => String::new(),
            }
        ));
        images.insert(origin);
    }
    msg.push_str(&format!(
        "{} {} {} first (or {})",
        place.put,
        images.into_iter().collect::<Vec<_>>().join(", "),
        place.onto,
        place.otherwise
    ));
    anyhow::Error::new(Coded::new(exit::BASE_MISSING, msg))
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

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::testutil::sample_manifest;

    fn place() -> Place {
        Place::store("the daemon at unix:///d.sock".into(), "this daemon", "inv")
    }

    #[test]
    fn a_daemon_holding_the_base_passes_and_one_lacking_it_is_told_what_to_load() {
        let m = sample_manifest();
        let chains: Vec<Digest> = m.images[0]
            .layers
            .iter()
            .map(|l| l.chain_id.clone())
            .collect();
        let diffs: Vec<Digest> = m.images[0]
            .layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect();
        let holder = |n: usize| {
            ImageMeta::new(
                Digest::of_bytes(b"base"),
                vec!["base:1".into()],
                diffs[..n].to_vec(),
            )
        };
        refuse_missing(&m, &[holder(2)], &place()).unwrap();

        let e = refuse_missing(&m, &[holder(1)], &place()).unwrap_err();
        assert_eq!(
            e.downcast_ref::<Coded>().map(|c| c.code),
            Some(exit::BASE_MISSING)
        );
        let msg = e.to_string();
        let layer = &m.images[0].layers[1];
        assert!(
            msg.starts_with("1 base layer(s) the bundle needs are not on the daemon at"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "chain {} (layer {}) from base:1",
                layer.chain_id, layer.diff_id
            )),
            "{msg}"
        );
        assert!(!msg.contains(&chains[0].to_string()), "{msg}");
        assert!(msg.contains("load base:1 on this daemon first (or export again against an inventory of this daemon: `inv`"), "{msg}");
    }
}
