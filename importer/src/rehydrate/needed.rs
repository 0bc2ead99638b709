//! Which layer entries a bundle lacks, and what content may fill each.
//!
//! Decided per entry from the engine's entry roles, not from the bundle's recorded layout, so
//! every bundle shape is handled alike: a legacy `<v1id>/layer.tar` and a Docker ≥ 25 blob named
//! by its diffID hold the uncompressed layer; a blob named by another digest is a compressed
//! layer (gzip or zstd, as the source archive stored it), which the daemon's own compressed blob
//! of that digest fills exactly, or else the uncompressed layer (see [`Wanted::fill`]).

use partial_common::archive::entries::{role_of, EntryRole};
use partial_common::archive::ArchiveIndex;
use partial_common::manifest::RequiredBase;
use partial_common::Digest;
use std::collections::{BTreeMap, BTreeSet};

/// What one missing layer entry must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The digest the entry is named by, when it is a `blobs/sha256/<hex>` blob.
    pub blob: Option<Digest>,
    /// The layer's diffID (sha256 of the uncompressed tar).
    pub diff_id: Digest,
}

/// Missing entry name → what it must hold.
pub type Needed = BTreeMap<String, Wanted>;

impl Wanted {
    /// The spooled content to write for this entry, out of the digests `found`: the blob itself
    /// when the daemon had those very bytes, else the uncompressed layer. `docker load` reads a
    /// layer through `manifest.json`, sniffs its compression and checks it against the diffID,
    /// so the uncompressed layer loads under a compressed blob's name too (the OCI descriptors
    /// then no longer match that blob; only the containerd store checks those, and it exports
    /// its own compressed blobs, found by digest).
    pub fn fill<'a>(&'a self, found: &BTreeSet<Digest>) -> Option<&'a Digest> {
        self.blob
            .as_ref()
            .filter(|b| found.contains(*b))
            .or(Some(&self.diff_id).filter(|d| found.contains(*d)))
    }

    /// The digests of content that can fill the entry.
    pub fn keys(&self) -> impl Iterator<Item = &Digest> {
        self.blob.iter().chain(std::iter::once(&self.diff_id))
    }
}

/// The layer entries of `index` that are not among the bundle's entries `present`.
pub fn missing_entries(index: &ArchiveIndex, present: &BTreeSet<String>) -> Needed {
    let mut out = Needed::new();
    for img in &index.images {
        for (entry, diff_id) in img.layer_entries.iter().zip(&img.source.diff_ids) {
            if present.contains(entry) || out.contains_key(entry) {
                continue;
            }
            let blob = match role_of(entry) {
                EntryRole::Blob(d) if d != *diff_id => Some(d),
                _ => None,
            };
            out.insert(
                entry.clone(),
                Wanted {
                    blob,
                    diff_id: diff_id.clone(),
                },
            );
        }
    }
    out
}

/// The entries the rebuilt stream adds for the layers of `deltas` (not to be taken from the
/// daemon: they are rebuilt from their deltas).
pub fn rebuilt_entries(deltas: &[crate::rebuild::DeltaLayer]) -> impl Iterator<Item = String> + '_ {
    deltas
        .iter()
        .map(|d| format!("blobs/sha256/{}", d.target.hex()))
}

/// The first entry of `needed` whose layer is no base layer of `required`: no daemon export can
/// fill it, as the destination is not meant to hold it (the bundle lacks a layer it should
/// carry).
pub fn first_not_required<'a>(
    needed: &'a Needed,
    required: &[RequiredBase],
) -> Option<(&'a String, &'a Wanted)> {
    needed
        .iter()
        .find(|(_, w)| !required.iter().any(|r| r.diff_id == w.diff_id))
}

/// Whether every entry of `needed` can be filled from `found`; else the first that cannot.
pub fn first_unfilled<'a>(
    needed: &'a Needed,
    found: &BTreeSet<Digest>,
) -> Option<(&'a String, &'a Wanted)> {
    needed.iter().find(|(_, w)| w.fill(found).is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::archive::{IndexedImage, SourceImage};
    use partial_common::plan::Layout;

    fn d(c: char) -> Digest {
        Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn roles_decide_what_fills_an_entry() {
        let v1 = "1".repeat(64);
        let index = ArchiveIndex {
            layout: Layout::Oci,
            images: vec![IndexedImage {
                source: SourceImage {
                    id: d('f'),
                    tags: vec![],
                    diff_ids: vec![d('a'), d('b'), d('c'), d('e')],
                },
                layer_entries: vec![
                    format!("{v1}/layer.tar"),
                    format!("blobs/sha256/{}", "b".repeat(64)),
                    format!("blobs/sha256/{}", "9".repeat(64)),
                    format!("blobs/sha256/{}", "e".repeat(64)),
                ],
                config_entry: String::new(),
                manifest_digest: None,
                index_digests: vec![],
                source_manifest: None,
                ref_names: vec![],
                other_platform: false,
            }],
            entries: Default::default(),
            links: Default::default(),
            configs: Default::default(),
            indexes: Vec::new(),
        };
        let present = BTreeSet::from([format!("blobs/sha256/{}", "e".repeat(64))]);
        let needed = missing_entries(&index, &present);
        assert_eq!(needed.len(), 3);
        let legacy = &needed[&format!("{v1}/layer.tar")];
        assert_eq!(legacy.blob, None);
        assert_eq!(legacy.diff_id, d('a'));
        // A blob named by its diffID is the uncompressed layer.
        assert_eq!(
            needed[&format!("blobs/sha256/{}", "b".repeat(64))].blob,
            None
        );
        // A blob named otherwise is compressed: its own bytes, or the uncompressed layer.
        let compressed = &needed[&format!("blobs/sha256/{}", "9".repeat(64))];
        assert_eq!(compressed.blob, Some(d('9')));
        assert_eq!(compressed.fill(&BTreeSet::from([d('c')])), Some(&d('c')));
        assert_eq!(
            compressed.fill(&BTreeSet::from([d('c'), d('9')])),
            Some(&d('9'))
        );
        assert_eq!(compressed.fill(&BTreeSet::new()), None);
        let found = BTreeSet::from([d('a'), d('b')]);
        let (entry, _) = first_unfilled(&needed, &found).unwrap();
        assert!(entry.contains(&"9".repeat(64)));
    }

    #[test]
    fn an_entry_that_is_no_required_base_layer_is_found() {
        let base = RequiredBase {
            chain_id: d('c'),
            diff_id: d('a'),
            origin: partial_common::have::Origin::Image {
                name: "base:1".into(),
                image_id: d('f'),
            },
        };
        let wanted = |c| Wanted {
            blob: None,
            diff_id: d(c),
        };
        let mut needed = Needed::new();
        needed.insert("x/layer.tar".into(), wanted('a'));
        assert_eq!(
            first_not_required(&needed, std::slice::from_ref(&base)),
            None
        );
        needed.insert("y/layer.tar".into(), wanted('b'));
        let (entry, w) = first_not_required(&needed, std::slice::from_ref(&base)).unwrap();
        assert_eq!((entry.as_str(), &w.diff_id), ("y/layer.tar", &d('b')));
        assert!(first_not_required(&needed, &[]).is_some());
    }
}
