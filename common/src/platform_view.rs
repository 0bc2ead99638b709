//! What a daemon loads of a multi-platform bundle. A daemon runs one platform, and one tag names
//! one image there: of each index the bundle carries ([`crate::source_index`]) the image for
//! the daemon's `os`/`architecture` is loaded, tagged with the index's tags, and the images of
//! the other platforms are left out of the load (their blobs pass, no image is made of them),
//! each named in [`DaemonView::notes`]. Bundles without indexes load as they are.

use crate::archive::ArchiveError;
use crate::destination::ImageDestination;
use crate::digest::Digest;
use crate::manifest::BundleManifest;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// The images a daemon loads: those left out, the tags added.
#[derive(Clone, Debug, Default)]
pub struct DaemonView {
    /// Image IDs not loaded (other platforms' images of an index).
    pub leave_out: BTreeSet<Digest>,
    /// Image ID → the index tags it takes.
    pub tags: BTreeMap<Digest, Vec<String>>,
    /// What was left out or found missing, for people.
    pub notes: Vec<String>,
}

impl DaemonView {
    /// The view of `m` for a daemon of `os`/`architecture`; see the module documentation.
    /// `architecture` may be given as Docker's `/info` says it (`x86_64`, `aarch64`).
    pub fn for_platform(m: &BundleManifest, os: &str, architecture: &str) -> Self {
        let architecture = oci_architecture(architecture);
        let mut v = DaemonView::default();
        for index in &m.indexes {
            let mine = index.for_platform(os, architecture);
            if mine.is_none() {
                v.notes.push(format!(
                    "the index {} ({}) has no image for the daemon's platform {os}/{architecture}: \
                     none of its images is loaded",
                    index.digest,
                    index.tags.join(", ")
                ));
            }
            for entry in &index.manifests {
                let Some(img) = m
                    .images
                    .iter()
                    .find(|i| i.source_manifest.as_ref().map(|s| &s.digest) == Some(&entry.digest))
                else {
                    continue;
                };
                if mine == Some(entry) {
                    let tags = v.tags.entry(img.id.clone()).or_default();
                    tags.extend(index.tags.iter().cloned());
                } else if img.tags.is_empty() {
                    v.leave_out.insert(img.id.clone());
                    v.notes.push(format!(
                        "the {} image {} of the index {} is left out of the load: the daemon \
                         runs {os}/{architecture}",
                        entry.platform, img.id, index.digest
                    ));
                }
            }
        }
        v
    }

    /// `images` as the daemon gets them: without those left out, with the index tags added.
    pub fn apply<I: Viewable>(&self, images: &[I]) -> Vec<I> {
        images
            .iter()
            .filter(|i| !self.leave_out.contains(i.id()))
            .map(|i| {
                let mut i = i.clone();
                for t in self.tags.get(i.id()).into_iter().flatten() {
                    i.add_tag(t);
                }
                i
            })
            .collect()
    }
}

/// The OCI name of a machine architecture as `uname` or Docker's `/info` say it.
pub fn oci_architecture(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "armv7l" | "armv6l" | "armhf" => "arm",
        "i386" | "i686" => "386",
        other => other,
    }
}

/// An image the view applies to: the model's and the signed manifest's.
pub trait Viewable: Clone {
    fn id(&self) -> &Digest;
    fn add_tag(&mut self, tag: &str);
}

impl Viewable for crate::image::Image {
    fn id(&self) -> &Digest {
        &self.id
    }
    fn add_tag(&mut self, tag: &str) {
        crate::image::Image::add_tag(self, tag)
    }
}

impl Viewable for crate::manifest::Image {
    fn id(&self) -> &Digest {
        &self.id
    }
    fn add_tag(&mut self, tag: &str) {
        if !self.tags.iter().any(|t| t == tag) {
            self.tags.push(tag.to_string());
        }
    }
}

/// A destination that commits the images of a [`DaemonView`] only.
pub struct Viewed<D> {
    pub inner: D,
    pub view: DaemonView,
}

impl<D: ImageDestination> ImageDestination for Viewed<D> {
    type Committed = D::Committed;

    fn put_config(&mut self, id: &Digest, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.inner.put_config(id, bytes)
    }

    fn put_blob(&mut self, d: &Digest, size: u64, data: &mut dyn Read) -> Result<(), ArchiveError> {
        self.inner.put_blob(d, size, data)
    }

    fn commit(self, images: &[crate::image::Image]) -> Result<Self::Committed, ArchiveError> {
        self.inner.commit(&self.view.apply(images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::SourceManifest;
    use crate::source_index::{IndexedManifest, SourceIndex};

    #[test]
    fn the_daemons_platform_is_tagged_and_the_others_left_out() {
        let mut m = partial_bundle::testutil::sample_manifest();
        let mut arm = m.images[0].clone();
        arm.id = Digest::of_bytes(b"arm config");
        m.images.push(arm);
        let mut listed = Vec::new();
        for (img, p) in m.images.iter_mut().zip(["linux/amd64", "linux/arm64"]) {
            img.tags.clear();
            let s = SourceManifest::new("x", p.as_bytes()).unwrap();
            listed.push(IndexedManifest {
                digest: s.digest.clone(),
                platform: p.into(),
            });
            img.source_manifest = Some(s);
        }
        m.indexes.push(SourceIndex {
            media_type: "x".into(),
            digest: Digest::of_bytes(b"index"),
            text: String::new(),
            repository: "r/app".into(),
            tags: vec!["r/app:1".into()],
            manifests: listed,
            extra: Vec::new(),
            attached: Vec::new(),
            remade_from: None,
        });
        let v = DaemonView::for_platform(&m, "linux", "x86_64");
        let loaded = v.apply(&m.images);
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].id, m.images[0].id);
        assert_eq!(loaded[0].tags, ["r/app:1"]);
        assert!(v.notes[0].contains("linux/arm64"), "{:?}", v.notes);
        let none = DaemonView::for_platform(&m, "linux", "s390x");
        assert_eq!(none.apply(&m.images).len(), 0);
        assert!(none.notes[0].contains("no image for"), "{:?}", none.notes);
    }
}
