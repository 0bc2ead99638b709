//! Which layer entries the complete archive must add, and what content fills each: the
//! positions the bundle leaves out, named in the checked archive's `manifest.json` by their
//! diffID (`bundle_source::left_out_layers`), each filled by the uncompressed layer of that
//! diffID (a daemon's own layer, or a compressed blob of its store decompressed, see
//! [`super::spool`]). `docker load` reads a layer through `manifest.json`, sniffs its
//! compression and checks it against the diffID.

use partial_common::Digest;
use std::collections::{BTreeMap, BTreeSet};

/// What one missing layer entry must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The layer's diffID (sha256 of the uncompressed tar).
    pub diff_id: Digest,
}

/// Missing entry name → what it must hold.
pub type Needed = BTreeMap<String, Wanted>;

impl Wanted {
    /// The spooled content to write for this entry, out of the digests `found`: the
    /// uncompressed layer, when it was found.
    pub fn fill<'a>(&'a self, found: &BTreeSet<Digest>) -> Option<&'a Digest> {
        Some(&self.diff_id).filter(|d| found.contains(*d))
    }

    /// The digests of content that can fill the entry.
    pub fn keys(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(&self.diff_id)
    }
}

/// The entries to add, from the checked archive's left-out layers (entry → diffID).
pub fn from_left_out(left_out: BTreeMap<String, Digest>) -> Needed {
    left_out
        .into_iter()
        .map(|(entry, diff_id)| (entry, Wanted { diff_id }))
        .collect()
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

    fn d(c: char) -> Digest {
        Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn an_entry_is_filled_by_its_uncompressed_layer_only() {
        let needed = from_left_out(BTreeMap::from([
            (format!("blobs/sha256/{}", "a".repeat(64)), d('a')),
            (format!("blobs/sha256/{}", "b".repeat(64)), d('b')),
        ]));
        let found = BTreeSet::from([d('a'), d('9')]);
        assert_eq!(needed.values().next().unwrap().fill(&found), Some(&d('a')));
        let (entry, w) = first_unfilled(&needed, &found).unwrap();
        assert_eq!(
            (entry.as_str(), &w.diff_id),
            (&*format!("blobs/sha256/{}", "b".repeat(64)), &d('b'))
        );
        assert!(first_unfilled(&needed, &BTreeSet::from([d('a'), d('b')])).is_none());
    }
}
