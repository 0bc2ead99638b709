//! An [`ArchiveIndex`] as images of the [model](crate::image): each layer position resolved
//! through symlinks (legacy saves and containers/image archives link repeated layers) to the file
//! that holds it, with that file's stored size, compression and digest.

use super::names::named_digest;
use super::{ArchiveIndex, IndexedImage};
use crate::codec::Compression;
use crate::digest::{chain_ids, Digest};
use crate::image::{layer_media_type, Blob, Image, Layer};

/// The most symlinks followed from one entry.
const MAX_HOPS: usize = 16;

impl ArchiveIndex {
    /// The file an entry stands for, following symlinks.
    pub fn resolve<'a>(&'a self, entry: &'a str) -> &'a str {
        let mut cur = entry;
        for _ in 0..MAX_HOPS {
            match self.links.get(cur) {
                Some(t) => cur = t,
                None => break,
            }
        }
        cur
    }

    /// The blob holding `diff_id` at `entry`, as stored.
    pub fn blob_of(&self, entry: &str, diff_id: &Digest) -> Blob {
        let real = self.resolve(entry);
        let info = self.entries.get(real);
        let compression = info.map(|i| i.compression).unwrap_or(Compression::None);
        let size = info.map(|i| i.size);
        if compression == Compression::None {
            return Blob::uncompressed(diff_id, size);
        }
        let digest = named_digest(real)
            .or_else(|| info.and_then(|i| i.digest.clone()))
            .unwrap_or_else(|| diff_id.clone());
        Blob {
            digest,
            media_type: layer_media_type(compression).to_string(),
            size,
            compression,
        }
    }

    /// One image of this archive in the model.
    pub fn model(&self, img: &IndexedImage) -> Image {
        let diffs = &img.source.diff_ids;
        let layers = diffs
            .iter()
            .zip(chain_ids(diffs))
            .zip(&img.layer_entries)
            .map(|((d, c), e)| Layer {
                diff_id: d.clone(),
                chain_id: c,
                blob: self.blob_of(e, d),
            })
            .collect();
        Image {
            id: img.source.id.clone(),
            config: self.configs.get(&img.config_entry).cloned(),
            tags: img.source.tags.clone(),
            layers,
            aliases: img
                .manifest_digest
                .iter()
                .chain(&img.index_digests)
                .cloned()
                .collect(),
            source_manifest: img.source_manifest.clone(),
            attached: Vec::new(),
        }
    }

    /// Every image of this archive in the model.
    pub fn models(&self) -> Vec<Image> {
        self.images.iter().map(|i| self.model(i)).collect()
    }
}
