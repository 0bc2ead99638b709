//! What the destination already holds: a set of chain IDs, each with the place we learnt it from
//! (an `-e` image, an inventory file, a base archive, a send ledger), so that every left-out layer
//! can be explained.

use partial_core::digest::{chain_ids, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where the knowledge that the destination holds a chain came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// An image named with `-e` (on the source daemon or inside `--from-archive` inputs).
    Image { name: String, image_id: Digest },
    /// An image listed in an inventory file written by `partial-load inventory`.
    Inventory {
        file: String,
        image: String,
        image_id: Digest,
    },
    /// An image inside an archive given with `--exclude-archive`.
    Archive {
        file: String,
        image: String,
        image_id: Digest,
    },
    /// An image that bundle number `bundle` of the send ledger `file` (`--ledger`) delivered.
    Ledger {
        file: String,
        bundle: u64,
        image: String,
        image_id: Digest,
    },
}

impl Origin {
    /// The image name (tag or ID) a person should look for on the destination.
    pub fn image(&self) -> &str {
        match self {
            Origin::Image { name, .. } => name,
            Origin::Inventory { image, .. }
            | Origin::Archive { image, .. }
            | Origin::Ledger { image, .. } => image,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Image { name, .. } => write!(f, "image {name} (-e)"),
            Origin::Inventory { file, image, .. } => write!(f, "image {image} in inventory {file}"),
            Origin::Archive { file, image, .. } => {
                write!(f, "image {image} in base archive {file}")
            }
            Origin::Ledger {
                file,
                bundle,
                image,
                ..
            } => write!(f, "image {image} sent in bundle {bundle} of ledger {file}"),
        }
    }
}

/// One chain the destination holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HaveEntry {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub origin: Origin,
    /// The blob the destination stores the layer as, when it said (a registry's inventory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Digest>,
}

/// The chains the destination holds, keyed by chain ID. The first origin recorded for a chain wins.
#[derive(Clone, Debug, Default)]
pub struct HaveSet {
    map: BTreeMap<Digest, HaveEntry>,
}

impl HaveSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records every chain of an image whose layers (diffIDs, bottom first) are `diff_ids`.
    pub fn add_image(&mut self, diff_ids: &[Digest], origin: &Origin) {
        self.add_image_blobs(diff_ids, &[], origin);
    }

    /// [`add_image`](Self::add_image), with the blob the destination stores each layer as
    /// (`blobs` parallel to `diff_ids`; ignored unless as many).
    pub fn add_image_blobs(&mut self, diff_ids: &[Digest], blobs: &[Digest], origin: &Origin) {
        let blobs = (blobs.len() == diff_ids.len()).then_some(blobs);
        for (i, (chain, diff)) in chain_ids(diff_ids).into_iter().zip(diff_ids).enumerate() {
            let blob = blobs.map(|b| b[i].clone());
            let entry = self.map.entry(chain.clone()).or_insert_with(|| HaveEntry {
                chain_id: chain,
                diff_id: diff.clone(),
                origin: origin.clone(),
                blob: None,
            });
            if entry.blob.is_none() {
                entry.blob = blob;
            }
        }
    }

    /// Forgets a chain: the layer is carried after all.
    pub fn remove(&mut self, chain_id: &Digest) {
        self.map.remove(chain_id);
    }

    pub fn contains(&self, chain_id: &Digest) -> bool {
        self.map.contains_key(chain_id)
    }

    pub fn get(&self, chain_id: &Digest) -> Option<&HaveEntry> {
        self.map.get(chain_id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &HaveEntry> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_every_chain_and_keeps_first_origin() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let o1 = Origin::Image {
            name: "base:1".into(),
            image_id: Digest::of_bytes(b"cfg1"),
        };
        let o2 = Origin::Image {
            name: "base:2".into(),
            image_id: Digest::of_bytes(b"cfg2"),
        };
        let mut h = HaveSet::new();
        h.add_image(&[a.clone(), b.clone()], &o1);
        h.add_image(std::slice::from_ref(&a), &o2);
        assert_eq!(h.len(), 2);
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(h.get(&chains[0]).unwrap().origin, o1);
        assert_eq!(h.get(&chains[1]).unwrap().diff_id, b);
        // b alone at the bottom is another chain, which the destination lacks.
        assert!(!h.contains(&b));
    }
}
