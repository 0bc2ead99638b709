//! Keeping the digests of registry images: a left-out layer is referenced at the destination by
//! the blob the destination holds for it, so an image from a registry keeps its manifest digest
//! only when that blob is the one its source manifest names. A registry's inventory says which
//! blob it holds per chain (`--have` of `partial-load inventory --registry`); where it differs
//! (the base was pushed by `docker push` from a daemon, or recompressed), the layer is carried
//! after all, as the source stores it, and the run says so, unless `--allow-new-digest`, which
//! leaves it out and warns that `partial-load push` will re-make the manifest, changing the
//! image's digest. Never silently either way.

use partial_common::have::HaveSet;
use partial_common::image::Image;
use partial_common::text::escape;

/// One layer whose blob at the destination is not the source's.
struct Conflict {
    image: String,
    /// The image's manifest digest in its source.
    digest: partial_common::Digest,
    position: usize,
    chain: partial_common::Digest,
    theirs: partial_common::Digest,
    ours: partial_common::Digest,
}

/// Carries (removes from `have`) the left-out layers of `images` whose blob at the destination
/// is not the source's, or with `allow_new_digest` keeps them out; says which either way.
pub fn apply(images: &[Image], have: &mut HaveSet, allow_new_digest: bool) {
    for (name, digest) in zstd_carried(images, have) {
        eprintln!(
            "warning: {} carries zstd layers, which the bundle holds decompressed (Docker before \
             23 cannot load zstd): `partial-load push` cannot keep its manifest digest {digest} \
             and refuses it unless --allow-new-digest",
            escape(&name)
        );
    }
    let conflicts = find(images, have);
    for c in &conflicts {
        if allow_new_digest {
            eprintln!(
                "warning: {} gets a new manifest digest when pushed (--allow-new-digest): the \
                 destination holds its layer {} as blob {}, its source as {}",
                escape(&c.image),
                c.position,
                c.theirs,
                c.ours
            );
        } else {
            have.remove(&c.chain);
            eprintln!(
                "note: carrying layer {} of {} although the destination has it: it holds the \
                 layer as blob {}, and the image keeps its digest {} only with its source's blob \
                 {} (--allow-new-digest leaves it out; the push then re-makes the manifest)",
                c.position,
                escape(&c.image),
                c.theirs,
                c.digest,
                c.ours
            );
        }
    }
}

/// The images with a source manifest (name, source digest) that will carry a zstd layer (one
/// whose chain the destination lacks): the engine writes carried zstd layers decompressed, so
/// the blob the manifest names does not travel. Said at the export rather than at the push.
fn zstd_carried(images: &[Image], have: &HaveSet) -> Vec<(String, partial_common::Digest)> {
    images
        .iter()
        .filter_map(|image| {
            let source = image.source_manifest.as_ref()?;
            image
                .layers
                .iter()
                .any(|l| {
                    l.blob.compression == partial_common::codec::Compression::Zstd
                        && !have.contains(&l.chain_id)
                })
                .then(|| (image.name(), source.digest.clone()))
        })
        .collect()
}

/// The layers of registry images (those with a source manifest) that the destination holds as
/// another blob than the source's.
fn find(images: &[Image], have: &HaveSet) -> Vec<Conflict> {
    let mut out = Vec::new();
    for image in images {
        let Some(source) = &image.source_manifest else {
            continue;
        };
        for (position, layer) in image.layers.iter().enumerate() {
            let Some(theirs) = have.get(&layer.chain_id).and_then(|e| e.blob.clone()) else {
                continue;
            };
            if theirs != layer.blob.digest {
                out.push(Conflict {
                    image: image.name(),
                    digest: source.digest.clone(),
                    position,
                    chain: layer.chain_id.clone(),
                    theirs,
                    ours: layer.blob.digest.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::have::Origin;
    use partial_common::image::{Blob, SourceManifest};
    use partial_common::Digest;

    fn registry_image(blobs: &[&[u8]]) -> Image {
        let diffs: Vec<Digest> = (0..blobs.len())
            .map(|i| Digest::of_bytes(&[i as u8]))
            .collect();
        let mut img =
            Image::from_diff_ids(Digest::of_bytes(b"cfg"), vec!["r/app:2".into()], &diffs);
        for (l, b) in img.layers.iter_mut().zip(blobs) {
            l.blob = Blob {
                digest: Digest::of_bytes(b),
                media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                size: None,
                compression: partial_common::codec::Compression::Gzip,
            };
        }
        img.source_manifest = SourceManifest::new("application/json", b"{}");
        img
    }

    fn origin() -> Origin {
        Origin::Inventory {
            file: "have.json".into(),
            image: "r/app:1".into(),
            image_id: Digest::of_bytes(b"app1"),
        }
    }

    #[test]
    fn a_layer_held_as_another_blob_is_carried_unless_a_new_digest_is_allowed() {
        let img = registry_image(&[b"base.gz", b"top.gz"]);
        let diffs = img.diff_ids();
        let held = [Digest::of_bytes(b"base.other.gz")];
        let mut have = HaveSet::new();
        have.add_image_blobs(&diffs[..1], &held, &origin());
        assert_eq!(find(std::slice::from_ref(&img), &have).len(), 1);
        apply(std::slice::from_ref(&img), &mut have, true);
        assert!(have.contains(&img.layers[0].chain_id), "allowed: left out");
        apply(std::slice::from_ref(&img), &mut have, false);
        assert!(!have.contains(&img.layers[0].chain_id), "carried");
    }

    #[test]
    fn carried_zstd_layers_are_said_to_lose_the_digest() {
        let mut img = registry_image(&[b"base.zst", b"top.zst"]);
        for l in &mut img.layers {
            l.blob.compression = partial_common::codec::Compression::Zstd;
        }
        let mut have = HaveSet::new();
        let said = zstd_carried(std::slice::from_ref(&img), &have);
        assert_eq!(said.len(), 1);
        assert_eq!(said[0].0, "r/app:2");
        have.add_image(&img.diff_ids(), &origin());
        assert!(
            zstd_carried(std::slice::from_ref(&img), &have).is_empty(),
            "all left out"
        );
        assert!(zstd_carried(&[registry_image(&[b"a.gz"])], &HaveSet::new()).is_empty());
    }

    #[test]
    fn the_same_blob_an_unknown_blob_or_a_daemon_image_changes_nothing() {
        let img = registry_image(&[b"base.gz", b"top.gz"]);
        let diffs = img.diff_ids();
        let mut have = HaveSet::new();
        have.add_image_blobs(&diffs[..1], &[Digest::of_bytes(b"base.gz")], &origin());
        assert!(find(std::slice::from_ref(&img), &have).is_empty());
        let mut unknown = HaveSet::new();
        unknown.add_image(&diffs[..1], &origin());
        assert!(find(std::slice::from_ref(&img), &unknown).is_empty());
        let mut daemon_image = registry_image(&[b"base.gz", b"top.gz"]);
        daemon_image.source_manifest = None;
        let mut other = HaveSet::new();
        other.add_image_blobs(&diffs[..1], &[Digest::of_bytes(b"x")], &origin());
        assert!(find(&[daemon_image], &other).is_empty());
    }
}
