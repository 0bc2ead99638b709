//! Indexes of OCI layouts and oci-archives. A multi-platform index travels whole, as a
//! registry's does ([`pick`]: every platform image, untagged, and the index byte for byte;
//! `--platform` narrows it, re-made or dropped, said so; see
//! `partial_common::source::layout_index`). A nested index (an index listing another) does not:
//! one platform of it is exported (see `select::platform`), so the indexes above a wanted image
//! stay behind while that image's manifest travels byte for byte ([`check`]): the run says so,
//! naming the index; an index named by its digest (`-i sha256:…`) is refused (exit 2) unless
//! `--allow-new-digest`, as a registry index narrowed by `--platform` is: a digest reference is
//! never dropped silently.

use anyhow::{bail, Result};
use partial_common::exit::Coded;
use partial_common::image::{Image, Platform};
use partial_common::source::{IndexChoice, Selection, Source};
use partial_common::source_index::SourceIndex;
use partial_common::text::escape;
use partial_common::Digest;

/// The multi-platform indexes of the offline inputs that travel, and their platform images.
#[derive(Debug, Default)]
pub struct Picked {
    pub images: Vec<Image>,
    pub indexes: Vec<SourceIndex>,
    /// What the run must say (indexes re-made or dropped by `--platform`).
    pub notes: Vec<String>,
    /// The `-i` names that named an index (the others name images).
    pub names: Vec<String>,
    /// The digests of the layouts' indexes picked (travelling or not): with no `-i`, their
    /// images are not exported again one by one.
    pub covered: Vec<Digest>,
}

impl Picked {
    fn add(&mut self, c: IndexChoice) {
        for img in c.images {
            match self.images.iter_mut().find(|o| o.id == img.id) {
                Some(o) => img.tags.iter().for_each(|t| o.add_tag(t)),
                None => self.images.push(img),
            }
        }
        self.indexes
            .extend(c.index.filter(|i| !self.indexes.contains(i)));
        self.notes.extend(c.warnings);
        self.covered.push(c.source);
    }

    /// Whether `img` is an image of a picked index (its platform image, picked or left out).
    pub fn covers(&self, img: &Image) -> bool {
        img.aliases.iter().any(|a| self.covered.contains(a))
    }
}

/// The indexes `names` (the `-i` references; none: every index of `sources` but those whose
/// images are all `excluded`, the `-e` ones) name in the offline `sources` and what of each
/// travels by `sel`. `Err` carries the exit code.
pub fn pick(
    sources: &[Box<dyn Source>],
    names: &[String],
    excluded: &[Digest],
    sel: &Selection,
) -> Result<Picked> {
    let coded = |label: String, e: partial_common::source::LayoutIndexError| {
        let code = e.exit_code();
        anyhow::Error::new(Coded::new(code, anyhow::Error::new(e).context(label)))
    };
    let mut out = Picked::default();
    if names.is_empty() {
        for s in sources {
            for c in s.every_index(sel).map_err(|e| coded(s.label(), e))? {
                if c.images.iter().all(|i| excluded.contains(&i.id)) {
                    out.covered.push(c.source); // -e named it
                } else {
                    out.add(c);
                }
            }
        }
        return Ok(out);
    }
    for name in names {
        for s in sources {
            let label = format!("-i {} in {}", escape(name), s.label());
            if let Some(c) = s.find_index(name, sel).map_err(|e| coded(label, e))? {
                out.add(c);
                out.names.push(name.clone());
                break;
            }
        }
    }
    Ok(out)
}

/// The (nested) indexes above `wanted` images that do not travel, as warnings; `Err` (a usage error)
/// when one of `names` (the `-i` references) pins such an index by digest and not
/// `allow_new_digest`.
pub fn check(
    wanted: &[Image],
    names: &[String],
    platform: &Platform,
    allow_new_digest: bool,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for img in wanted {
        let Some(source) = &img.source_manifest else {
            continue;
        };
        for index in img.aliases.iter().filter(|a| **a != source.digest) {
            let pinned = names.iter().find(|n| names_digest(n, index));
            if let (Some(name), false) = (pinned, allow_new_digest) {
                bail!(
                    "-i {} names the nested index {index} by its digest, but of nested indexes \
                     archives and OCI layouts export one platform ({platform}): the index would \
                     not travel, and that digest would not resolve at the destination\n  hint: name the platform \
                     image's manifest digest {}, or allow it with --allow-new-digest",
                    escape(name),
                    source.digest
                );
            }
            notes.push(format!(
                "the index {index} above {} is not carried: only its {platform} image travels \
                 (of nested indexes, archives and OCI layouts export one platform), with its \
                 manifest digest {}; the index digest will not exist at the destination",
                escape(&img.name()),
                source.digest
            ));
        }
    }
    Ok(notes)
}

/// Whether the reference `name` is `digest` (`sha256:…`, or `…@sha256:…`).
fn names_digest(name: &str, digest: &Digest) -> bool {
    let tail = name.trim().rsplit('@').next().unwrap_or_default();
    Digest::parse(tail).is_ok_and(|d| d == *digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::image::SourceManifest;

    fn image_under_index() -> (Image, Digest) {
        let mut img = Image::from_diff_ids(Digest::of_bytes(b"config"), vec!["app:2".into()], &[]);
        let source = SourceManifest::new("application/json", b"{}").unwrap();
        let index = Digest::of_bytes(b"index");
        img.aliases = vec![source.digest.clone(), index.clone()];
        img.source_manifest = Some(source);
        (img, index)
    }

    /// An oci-archive holding `app:1`, an index of a linux/amd64 and a linux/arm64 image, and
    /// `solo:1`, a plain image; opened for linux/amd64.
    fn archive(dir: &std::path::Path) -> (Vec<Box<dyn Source>>, Digest, Vec<Digest>) {
        use partial_common::source::ArchiveSource;
        use partial_common::testutil::archive::{image, layer, multi_platform, oci};
        let amd = image(&["amd:1"], &[&layer("a.txt", b"amd")]);
        let arm = image(&["arm:1"], &[&layer("b.txt", b"arm")]);
        let solo = image(&["solo:1"], &[&layer("c.txt", b"solo")]);
        let mut built = oci(&[&amd, &arm, &solo], true, false);
        let platforms = [(&amd, "amd64"), (&arm, "arm64")];
        let index = multi_platform(&mut built, &platforms, &[], "app:1");
        let path = dir.join("multi.oci.tar");
        std::fs::write(&path, built.tar()).unwrap();
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let src = ArchiveSource::open(&path, Some(&amd64)).unwrap();
        (vec![Box::new(src)], index, vec![amd.id, arm.id, solo.id])
    }

    #[test]
    fn a_layouts_index_travels_whole_and_its_images_only_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let (sources, index, ids) = archive(dir.path());
        let amd64 = Platform::parse("linux/amd64").unwrap();
        // No -i: the index with both platforms (untagged), and the plain image on its own.
        let every = Selection::default();
        let picked = pick(&sources, &[], &[], &every).unwrap();
        assert_eq!(picked.indexes.len(), 1);
        assert_eq!(picked.indexes[0].digest, index);
        let wanted = crate::select::offline_wanted(&sources, &[], &[], &amd64, &picked).unwrap();
        let got: Vec<(&Digest, &[String])> =
            wanted.iter().map(|i| (&i.id, i.tags.as_slice())).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.contains(&(&ids[0], &[][..])) && got.contains(&(&ids[1], &[][..])));
        assert!(
            got.contains(&(&ids[2], &["solo:1".to_string()][..])),
            "{got:?}"
        );
        // -e app:1 (both its images) and no -i: only the plain image.
        let excluded = &ids[..2];
        let picked = pick(&sources, &[], excluded, &every).unwrap();
        assert!(picked.indexes.is_empty() && picked.images.is_empty());
        let wanted =
            crate::select::offline_wanted(&sources, &[], excluded, &amd64, &picked).unwrap();
        assert_eq!(wanted.len(), 1);
        assert_eq!(wanted[0].id, ids[2]);
        // -i app:1 --platform linux/arm64: that image alone, tagged; the index stays behind.
        let names = vec!["app:1".to_string()];
        let arm = Selection {
            platforms: vec![Platform::parse("linux/arm64").unwrap()],
            ..Selection::default()
        };
        let picked = pick(&sources, &names, &[], &arm).unwrap();
        assert!(picked.indexes.is_empty());
        assert!(
            picked.notes[0].contains("not carried"),
            "{:?}",
            picked.notes
        );
        let wanted = crate::select::offline_wanted(&sources, &names, &[], &amd64, &picked).unwrap();
        assert_eq!(wanted.len(), 1);
        assert_eq!((&wanted[0].id, &wanted[0].tags[..]), (&ids[1], &names[..]));
        // Pinned by digest and narrowed: a usage error.
        let pinned = vec![index.to_string()];
        let e = pick(&sources, &pinned, &[], &arm).unwrap_err();
        assert_eq!(
            partial_common::exit::code_of(e.chain()),
            partial_common::exit::USAGE,
            "{e:#}"
        );
    }

    #[test]
    fn an_index_left_behind_is_said_and_a_pinned_one_refused_unless_allowed() {
        let (img, index) = image_under_index();
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let notes = check(std::slice::from_ref(&img), &["app:2".into()], &amd64, false).unwrap();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains(index.as_str()) && notes[0].contains("app:2"));
        let pinned = vec![format!("app@{index}")];
        let e = check(std::slice::from_ref(&img), &pinned, &amd64, false).unwrap_err();
        assert!(format!("{e}").contains("--allow-new-digest"), "{e}");
        assert_eq!(
            check(std::slice::from_ref(&img), &pinned, &amd64, true)
                .unwrap()
                .len(),
            1
        );
        let mut plain = img;
        plain.source_manifest = None;
        assert!(check(&[plain], &pinned, &amd64, false).unwrap().is_empty());
    }
}
