//! A reference to a multi-platform index of an OCI layout or oci-archive (its `index.json` entry
//! is an image index, as `skopeo copy --all … oci:DIR:TAG` writes): which of its entries travel,
//! by the rules and with the messages of a registry index (`super::registry_index`). By default
//! every platform image, each an untagged image of the bundle, with the index byte for byte (its
//! attestation entries carried inside the signed manifest when the layout holds them whole);
//! `--platform` narrows the selection and the index is then dropped (one platform left, which
//! takes the tag) or re-made, said so; a digest-pinned index is refused then unless
//! `--allow-new-digest`. A chosen platform whose image the layout does not hold is an error
//! naming it (a registry that lacks a listed manifest fails the same way).

use super::registry::Selection;
use super::registry_index::{name, narrow, split};
use crate::archive::layout_index::LayoutIndex;
use crate::archive::ArchiveIndex;
use crate::digest::Digest;
use crate::exit;
use crate::image::Image;
use crate::reference::{familiar, tag_of_bare_name};
use crate::registry::manifest::{ImageIndex, Platform};
use crate::registry::IndexNarrowed;
use crate::source_index::{IndexedManifest, SourceIndex};

/// What travels of a layout's index: its platform images and the index (`None`: not carried,
/// the one image left takes the tag), with what the run must say.
#[derive(Debug)]
pub struct IndexChoice {
    /// The layout's index digest (whether or not the index travels).
    pub source: Digest,
    pub images: Vec<Image>,
    pub index: Option<SourceIndex>,
    pub warnings: Vec<String>,
}

/// Why a layout's index cannot travel as asked; each names the index and the input.
#[derive(Debug, thiserror::Error)]
pub enum LayoutIndexError {
    #[error(
        "no manifest for platform {platform} in the index {digest} ({reference}) \
         (it has: {available})\n  hint: choose one with --platform"
    )]
    NoPlatform {
        reference: String,
        digest: Digest,
        platform: String,
        available: String,
    },
    #[error(
        "the index {digest} ({reference}) lists the {platform} image {manifest}, which the \
         layout does not hold\n  hint: choose the platforms it holds with --platform ({held})"
    )]
    Missing {
        reference: String,
        digest: Digest,
        platform: String,
        manifest: Digest,
        held: String,
    },
    #[error(transparent)]
    Narrowed(#[from] IndexNarrowed),
    #[error("the index {digest} ({reference}): {reason}")]
    Bad {
        reference: String,
        digest: Digest,
        reason: String,
    },
}

impl LayoutIndexError {
    /// The exit code: 2 for what the operator asked (a pinned index narrowed), 3 for a
    /// layout that does not hold what its index lists, 1 for a platform it does not list.
    pub fn exit_code(&self) -> u8 {
        match self {
            LayoutIndexError::Narrowed(_) => exit::USAGE,
            LayoutIndexError::Missing { .. } | LayoutIndexError::Bad { .. } => exit::VERIFY,
            LayoutIndexError::NoPlatform { .. } => exit::FAILURE,
        }
    }
}

/// An index a reference names: the tags it gets, and whether the reference pins its digest.
struct Named<'a> {
    index: &'a LayoutIndex,
    /// How messages name it (`LABEL:REFERENCE`).
    whole: String,
    tags: Vec<String>,
    pinned: bool,
}

/// The index of `ix` that `reference` names: by digest (`sha256:…`, `…@sha256:…`: pinned, its
/// ref name's tag kept), by tag, or by bare ref name (`1.0`, `NAME:1.0`), tagged as
/// `super::find_in_index` tags an image.
fn named<'a>(ix: &'a ArchiveIndex, label: &str, reference: &str) -> Option<Named<'a>> {
    let r = reference.trim();
    let whole = format!("{label}:{r}");
    let tail = r.rsplit('@').next().unwrap_or_default();
    if let Ok(d) = Digest::parse(tail) {
        let index = ix.indexes.iter().find(|i| i.digest == d)?;
        let tags = index.tag.iter().cloned().collect();
        return Some(Named {
            index,
            whole,
            tags,
            pinned: true,
        });
    }
    let want = familiar(r);
    let by_tag = ix.indexes.iter().find(|i| {
        want.is_some() && i.tag.as_deref().and_then(familiar).as_deref() == want.as_deref()
    });
    if let Some(index) = by_tag {
        let tags = want.into_iter().collect();
        return Some(Named {
            index,
            whole,
            tags,
            pinned: false,
        });
    }
    let last = r.rsplit('/').next().unwrap_or(r);
    let bare_tail = last.rsplit_once(':').map(|(_, t)| t);
    let index = ix.indexes.iter().find(|i| {
        i.bare
            .as_deref()
            .is_some_and(|b| b == r || bare_tail == Some(b))
    })?;
    let tags = if index.bare.as_deref() == Some(r) {
        tag_of_bare_name(r).into_iter().collect()
    } else {
        want.into_iter().collect()
    };
    Some(Named {
        index,
        whole,
        tags,
        pinned: false,
    })
}

/// What of the index `reference` names in `ix` (the input `label`) travels; `Ok(None)` when it
/// names no index that travels whole (an image, or a nested index).
pub fn choose(
    ix: &ArchiveIndex,
    label: &str,
    reference: &str,
    sel: &Selection,
) -> Result<Option<IndexChoice>, LayoutIndexError> {
    match named(ix, label, reference) {
        Some(n) => decide(ix, n, sel).map(Some),
        None => Ok(None),
    }
}

/// What travels of every index of `ix` that travels whole (an export of all its images), each
/// tagged by its own ref name.
pub fn every(
    ix: &ArchiveIndex,
    label: &str,
    sel: &Selection,
) -> Result<Vec<IndexChoice>, LayoutIndexError> {
    ix.indexes
        .iter()
        .map(|index| {
            let n = Named {
                index,
                whole: format!(
                    "{label}:{}",
                    index.tag.as_deref().unwrap_or(index.digest.as_str())
                ),
                tags: index.tag.iter().cloned().collect(),
                pinned: false,
            };
            decide(ix, n, sel)
        })
        .collect()
}

/// The repository of a familiar tag (`reg:5000/app:2` → `reg:5000/app`).
fn repository_of(tag: &str) -> &str {
    match tag.rsplit_once(':') {
        Some((repo, t)) if !t.contains('/') => repo,
        _ => tag,
    }
}

/// The index entries of `n` that travel, as a registry index's; see the module documentation.
fn decide(ix: &ArchiveIndex, n: Named, sel: &Selection) -> Result<IndexChoice, LayoutIndexError> {
    let digest = n.index.digest.clone();
    let bad = |reason: String| LayoutIndexError::Bad {
        reference: n.whole.clone(),
        digest: digest.clone(),
        reason,
    };
    let parsed: ImageIndex =
        serde_json::from_str(&n.index.text).map_err(|e| bad(format!("not an image index: {e}")))?;
    let wanted: Vec<Platform> = sel
        .platforms
        .iter()
        .filter_map(|p| Platform::parse(&p.to_string()))
        .collect();
    let s = split(&parsed, &wanted);
    if s.chosen.is_empty() {
        return Err(LayoutIndexError::NoPlatform {
            reference: n.whole.clone(),
            digest,
            platform: join(wanted.iter().map(Platform::to_string)),
            available: parsed.platforms().join(", "),
        });
    }
    let mut left_out: Vec<String> = s.unwanted.iter().map(|d| name(d)).collect();
    let mut extra = Vec::new();
    for d in &s.others {
        match n
            .index
            .others
            .iter()
            .find(|a| a.manifest.digest == d.digest)
        {
            Some(a) if wanted.is_empty() => extra.push(a.clone()),
            _ => left_out.push(d.digest.to_string()),
        }
    }
    let pairs: Vec<(Digest, String)> = s
        .chosen
        .iter()
        .map(|d| (d.digest.clone(), name(d)))
        .collect();
    let mut images = held_images(ix, &n, &pairs)?;
    if n.pinned && !left_out.is_empty() && !sel.allow_new_digest {
        return Err(IndexNarrowed {
            reference: n.whole.clone(),
            digest: digest.to_string(),
            wanted: join(pairs.iter().map(|(_, p)| p.clone())),
            left_out: left_out.join(", "),
        }
        .into());
    }
    let recorded = record(&n, pairs.as_slice(), extra);
    let mut warnings = Vec::new();
    if recorded.tags.is_empty() {
        warnings.push(format!(
            "the index {digest} ({}) has no tag (its ref name is no image name): a daemon load \
             gives its image untagged, and `push` cannot write it (name it -i NAME:REF)",
            n.whole
        ));
    }
    if left_out.is_empty() {
        return Ok(IndexChoice {
            source: digest,
            images,
            index: Some(recorded),
            warnings,
        });
    }
    let chosen =
        narrow(&n.whole, &digest, recorded, pairs, &left_out, &mut warnings).map_err(bad)?;
    if chosen.tagged {
        images.iter_mut().for_each(|i| i.tags = n.tags.clone());
    }
    Ok(IndexChoice {
        source: digest,
        images,
        index: chosen.index,
        warnings,
    })
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// The model images (untagged) of the chosen `pairs` (manifest digest, platform); `Err` naming
/// the first the layout does not hold.
fn held_images(
    ix: &ArchiveIndex,
    n: &Named,
    pairs: &[(Digest, String)],
) -> Result<Vec<Image>, LayoutIndexError> {
    let find = |d: &Digest| {
        ix.images
            .iter()
            .find(|i| i.manifest_digest.as_ref() == Some(d) && i.source_manifest.is_some())
    };
    let mut images = Vec::new();
    for (d, platform) in pairs {
        let Some(hit) = find(d) else {
            let held = pairs.iter().filter(|(d, _)| find(d).is_some());
            return Err(LayoutIndexError::Missing {
                reference: n.whole.clone(),
                digest: n.index.digest.clone(),
                platform: platform.clone(),
                manifest: d.clone(),
                held: match join(held.map(|(_, p)| p.clone())) {
                    h if h.is_empty() => "none".to_string(),
                    h => format!("held: {h}"),
                },
            });
        };
        let mut img = ix.model(hit);
        img.tags.clear();
        images.push(img);
    }
    Ok(images)
}

/// The index `n` as the signed manifest records it, listing `pairs` and carrying `extra`; its
/// repository is its first tag's (none without a tag).
fn record(
    n: &Named,
    pairs: &[(Digest, String)],
    extra: Vec<crate::image::Attached>,
) -> SourceIndex {
    SourceIndex {
        media_type: n.index.media_type.clone(),
        digest: n.index.digest.clone(),
        text: n.index.text.clone(),
        repository: n.tags.first().map_or("", |t| repository_of(t)).to_string(),
        tags: n.tags.clone(),
        manifests: pairs
            .iter()
            .map(|(digest, platform)| IndexedManifest {
                digest: digest.clone(),
                platform: platform.clone(),
            })
            .collect(),
        extra,
        attached: Vec::new(),
        remade_from: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::scan_with;
    use crate::exit;
    use crate::image::Platform as ImagePlatform;
    use crate::testutil::archive::{image, layer, multi_platform, oci, TEntry, TestImage};
    use serde_json::{json, Value};

    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    fn blob(d: &Digest) -> String {
        format!("blobs/sha256/{}", d.hex())
    }

    /// An in-toto attestation manifest (platform `unknown/unknown`) and its two JSON blobs.
    fn attestation(of: &Digest) -> (Value, Vec<(Digest, Vec<u8>)>) {
        let config = b"{}".to_vec();
        let statement = serde_json::to_vec(&json!({"_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {"sha256": of.hex()}}]}))
        .unwrap();
        let (cd, sd) = (Digest::of_bytes(&config), Digest::of_bytes(&statement));
        let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cd,
                       "size": config.len()},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sd,
                        "size": statement.len()}]}))
        .unwrap();
        let md = Digest::of_bytes(&m);
        let desc = json!({"mediaType": MANIFEST, "digest": md, "size": m.len(),
            "platform": {"os": "unknown", "architecture": "unknown"}});
        (desc, vec![(md, m), (cd, config), (sd, statement)])
    }

    /// What a test layout holds: the index digest and the amd64 and arm64 images.
    struct Multi {
        index: Digest,
        amd: TestImage,
        arm: TestImage,
    }

    /// An oci-archive whose `index.json` names, as `app:1`, an index of a linux/amd64 and a
    /// linux/arm64 image (with an attestation entry when `attest`; the arm64 config left out
    /// when `drop_arm`), scanned for `platform`.
    fn layout(attest: bool, drop_arm: bool, platform: Option<&str>) -> (ArchiveIndex, Multi) {
        let amd = image(&["amd:1"], &[&layer("a.txt", b"amd")]);
        let arm = image(&["arm:1"], &[&layer("b.txt", b"arm")]);
        let mut built = oci(&[&amd, &arm], true, false);
        let mut extra = Vec::new();
        if attest {
            let (desc, blobs) = attestation(&amd.id);
            extra.push(desc);
            for (d, bytes) in blobs {
                built.entries.push(TEntry::file(&blob(&d), bytes));
            }
        }
        let platforms = [(&amd, "amd64"), (&arm, "arm64")];
        let index = multi_platform(&mut built, &platforms, &extra, "app:1");
        if drop_arm {
            built.remove(&blob(&arm.id));
        }
        let p = platform.map(|p| ImagePlatform::parse(p).unwrap());
        let ix = scan_with(&built.tar()[..], p.as_ref()).unwrap();
        (ix, Multi { index, amd, arm })
    }

    fn sel(platforms: &[&str], allow_new_digest: bool) -> Selection {
        Selection {
            platforms: platforms
                .iter()
                .map(|p| ImagePlatform::parse(p).unwrap())
                .collect(),
            allow_new_digest,
            attached: false,
        }
    }

    fn sources(images: &[Image]) -> Vec<&Digest> {
        images
            .iter()
            .filter_map(|i| i.source_manifest.as_ref().map(|s| &s.digest))
            .collect()
    }

    #[test]
    fn every_platform_travels_untagged_with_the_index_byte_for_byte() {
        let (ix, m) = layout(true, false, Some("linux/arm64"));
        let c = choose(&ix, "L", "app:1", &sel(&[], false))
            .unwrap()
            .unwrap();
        let ids: Vec<&Digest> = c.images.iter().map(|i| &i.id).collect();
        assert_eq!(ids.len(), 2);
        assert!(
            ids.contains(&&m.amd.id) && ids.contains(&&m.arm.id),
            "{ids:?}"
        );
        assert!(c.images.iter().all(|i| i.tags.is_empty()));
        let index = c.index.expect("the index travels");
        assert_eq!(index.digest, m.index);
        assert_eq!(Digest::of_bytes(index.text.as_bytes()), m.index);
        assert_eq!(
            (index.tags.clone(), index.repository.as_str()),
            (vec!["app:1".to_string()], "app")
        );
        assert_eq!(
            index.extra.len(),
            1,
            "the attestation travels inside the manifest"
        );
        index.check(&sources(&c.images)).unwrap();
        assert!(c.warnings.is_empty() && index.remade_from.is_none());
        // Every index of the layout, as an export without -i gives it; references still find
        // the platform the archive was read for.
        assert_eq!(
            every(&ix, "L", &sel(&[], false)).unwrap()[0].index,
            Some(index)
        );
        assert_eq!(ix.find("app:1").unwrap().source.id, m.arm.id);
        assert_eq!(ix.images.len(), 2);
        assert!(choose(&ix, "L", "amd:1", &sel(&[], false))
            .unwrap()
            .is_none());
    }

    #[test]
    fn platform_drops_or_remakes_the_index_said_so() {
        let (ix, m) = layout(true, false, None);
        let one = choose(&ix, "L", "app:1", &sel(&["linux/arm64"], false))
            .unwrap()
            .unwrap();
        assert!(one.index.is_none());
        assert_eq!(one.images.len(), 1);
        assert_eq!(
            (&one.images[0].id, &one.images[0].tags),
            (&m.arm.id, &vec!["app:1".to_string()])
        );
        assert!(
            one.warnings[0].contains("not carried") && one.warnings[0].contains(m.index.as_str()),
            "{:?}",
            one.warnings
        );
        // Both platforms, without the attestation: re-made, its digest changes.
        let two = sel(&["linux/arm64", "linux/amd64"], false);
        let both = choose(&ix, "L", "app:1", &two).unwrap().unwrap();
        let index = both.index.expect("re-made");
        assert_eq!(index.remade_from.as_ref(), Some(&m.index));
        assert_ne!(index.digest, m.index);
        assert!(index.extra.is_empty());
        index.check(&sources(&both.images)).unwrap();
        assert!(
            both.warnings[0].contains(&format!("digest changes to {}", index.digest)),
            "{:?}",
            both.warnings
        );
        let e = choose(&ix, "L", "app:1", &sel(&["linux/s390x"], false)).unwrap_err();
        assert!(
            e.to_string().contains("linux/s390x") && e.to_string().contains("linux/amd64"),
            "{e}"
        );
    }

    #[test]
    fn a_pinned_index_is_not_narrowed_unless_allowed() {
        let (ix, m) = layout(false, false, None);
        let pinned = m.index.to_string();
        let whole = choose(&ix, "L", &pinned, &sel(&[], false))
            .unwrap()
            .unwrap();
        assert_eq!(whole.index.unwrap().tags, vec!["app:1".to_string()]);
        let e = choose(
            &ix,
            "L",
            &format!("app@{pinned}"),
            &sel(&["linux/amd64"], false),
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), exit::USAGE);
        assert!(e.to_string().contains("--allow-new-digest"), "{e}");
        let allowed = choose(&ix, "L", &pinned, &sel(&["linux/amd64"], true))
            .unwrap()
            .unwrap();
        assert_eq!(allowed.images[0].id, m.amd.id);
    }

    #[test]
    fn a_platform_the_layout_lacks_is_named() {
        let (ix, m) = layout(false, true, None);
        let e = choose(&ix, "L", "app:1", &sel(&[], false)).unwrap_err();
        assert_eq!(e.exit_code(), exit::VERIFY);
        let text = e.to_string();
        assert!(
            text.contains("linux/arm64") && text.contains("held: linux/amd64"),
            "{text}"
        );
        let amd = choose(&ix, "L", "app:1", &sel(&["linux/amd64"], false))
            .unwrap()
            .unwrap();
        assert_eq!(amd.images[0].id, m.amd.id);
        assert!(amd.index.is_none());
    }

    #[test]
    fn a_bare_ref_name_tags_the_index_as_it_would_an_image() {
        let amd = image(&["amd:1"], &[&layer("a.txt", b"amd")]);
        let arm = image(&["arm:1"], &[&layer("b.txt", b"arm")]);
        let mut built = oci(&[&amd, &arm], true, false);
        let platforms = [(&amd, "amd64"), (&arm, "arm64")];
        let index = multi_platform(&mut built, &platforms, &[], "V1");
        let ix = scan_with(&built.tar()[..], None).unwrap();
        let bare = choose(&ix, "L", "V1", &sel(&[], false)).unwrap().unwrap();
        let recorded = bare.index.unwrap();
        assert_eq!(recorded.digest, index);
        assert!(recorded.tags.is_empty() && recorded.repository.is_empty());
        assert!(bare.warnings[0].contains("no tag"), "{:?}", bare.warnings);
        let named = choose(&ix, "L", "reg:5000/mine:V1", &sel(&[], false))
            .unwrap()
            .unwrap();
        let recorded = named.index.unwrap();
        assert_eq!(recorded.tags, vec!["reg:5000/mine:V1".to_string()]);
        assert_eq!(recorded.repository, "reg:5000/mine");
        assert!(named.warnings.is_empty());
    }
}
