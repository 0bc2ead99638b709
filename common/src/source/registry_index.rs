//! A registry reference that names an index (or Docker manifest list): which of its entries
//! travel. By default every platform image, each an image of the bundle, with the index byte
//! for byte (its other entries, build attestations, carried inside the signed manifest). With
//! `--platform` narrowing the selection the index cannot travel as it is: with one platform
//! left it is not carried (that image takes the tag), with several it is re-made, and either way
//! the run says so; a digest-pinned index is refused then unless `--allow-new-digest`.

use super::registry::{fetch_attached, fetch_one, Selection};
use crate::digest::Digest;
use crate::image::Attached;
use crate::registry::manifest::{is_image_manifest, ImageIndex, Platform};
use crate::registry::{Descriptor, IndexNarrowed, RawManifest, Reference, Registry, RegistryError};
use crate::source_index::{remake, IndexedManifest, SourceIndex};

/// An index entry's split: platform images chosen, platform images left out, other entries.
#[derive(Debug, Default)]
pub(super) struct Split<'a> {
    pub chosen: Vec<&'a Descriptor>,
    pub unwanted: Vec<&'a Descriptor>,
    pub others: Vec<&'a Descriptor>,
}

/// The platform of an entry that is a runnable image (not `unknown/unknown`).
fn platform_of(d: &Descriptor) -> Option<&Platform> {
    d.platform
        .as_ref()
        .filter(|p| is_image_manifest(&d.media_type) && p.os != "unknown")
}

/// Splits `index` for `wanted` (empty: every platform).
pub(super) fn split<'a>(index: &'a ImageIndex, wanted: &[Platform]) -> Split<'a> {
    let mut s = Split::default();
    for d in &index.manifests {
        match platform_of(d) {
            Some(p) if wanted.is_empty() || wanted.iter().any(|w| p.satisfies(w)) => {
                s.chosen.push(d)
            }
            Some(_) => s.unwanted.push(d),
            None => s.others.push(d),
        }
    }
    s
}

/// What travels of an index a reference named.
pub(super) struct Chosen {
    /// The platform image manifests to read, each with its platform.
    pub images: Vec<(Digest, String)>,
    /// The index to record; `None` when it does not travel (one platform left).
    pub index: Option<SourceIndex>,
    /// The chosen images take the reference's tag (the index does not travel).
    pub tagged: bool,
}

/// `os/arch[/variant]` of an entry.
pub(super) fn name(d: &Descriptor) -> String {
    d.platform
        .as_ref()
        .map_or_else(|| d.digest.to_string(), Platform::to_string)
}

/// The entries of `s` that are no platform image: with `all` (no `--platform`) carried inside
/// the signed manifest when they can be (build attestations), else left out. Returns those
/// carried and the names of every entry left out (the unwanted platforms too).
async fn others(
    reg: &Registry,
    r: &Reference,
    s: &Split<'_>,
    all: bool,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Attached>, Vec<String>), RegistryError> {
    let mut extra: Vec<Attached> = Vec::new();
    let mut left_out: Vec<String> = s.unwanted.iter().map(|d| name(d)).collect();
    for d in &s.others {
        let got = if all {
            fetch_one(reg, &r.repository, d.digest.as_str(), warnings).await?
        } else {
            None
        };
        match got {
            Some(a) => extra.push(a),
            None => left_out.push(d.digest.to_string()),
        }
    }
    Ok((extra, left_out))
}

/// Decides what of `index` (read as `first` for reference `r`) travels; see the module
/// documentation. Says in `warnings` what is left out.
pub(super) async fn choose(
    reg: &Registry,
    r: &Reference,
    first: &RawManifest,
    index: &ImageIndex,
    sel: &Selection,
    warnings: &mut Vec<String>,
) -> Result<Chosen, RegistryError> {
    let wanted: Vec<Platform> = sel
        .platforms
        .iter()
        .filter_map(|p| Platform::parse(&p.to_string()))
        .collect();
    let s = split(index, &wanted);
    let whole = format!("{}/{}:{}", r.registry, r.repository, r.target());
    if s.chosen.is_empty() {
        return Err(RegistryError::NoPlatform {
            registry: reg.name().to_string(),
            reference: format!("{}:{}", r.repository, r.target()),
            platform: wanted
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            available: index.platforms().join(", "),
        });
    }
    let (extra, left_out) = others(reg, r, &s, wanted.is_empty(), warnings).await?;
    let images: Vec<(Digest, String)> = s
        .chosen
        .iter()
        .map(|d| (d.digest.clone(), name(d)))
        .collect();
    let chosen_names: Vec<&str> = images.iter().map(|(_, p)| p.as_str()).collect();
    if !left_out.is_empty() && r.digest.is_some() && !sel.allow_new_digest {
        return Err(IndexNarrowed {
            reference: whole,
            digest: first.digest.to_string(),
            wanted: chosen_names.join(", "),
            left_out: left_out.join(", "),
        }
        .into());
    }
    let manifests = images
        .iter()
        .map(|(digest, platform)| IndexedManifest {
            digest: digest.clone(),
            platform: platform.clone(),
        })
        .collect();
    let mut recorded = SourceIndex {
        media_type: first.media_type.clone(),
        digest: first.digest.clone(),
        text: String::from_utf8_lossy(&first.bytes).into_owned(),
        repository: format!("{}/{}", r.registry, r.repository),
        tags: r.familiar().into_iter().collect(),
        manifests,
        extra,
        attached: Vec::new(),
        remade_from: None,
    };
    if left_out.is_empty() {
        if sel.attached {
            let repo = &r.repository;
            recorded.attached = fetch_attached(reg, repo, &first.digest, warnings).await?;
        }
        return Ok(Chosen {
            images,
            index: Some(recorded),
            tagged: false,
        });
    }
    narrow(&whole, &first.digest, recorded, images, &left_out, warnings).map_err(|reason| {
        RegistryError::Protocol {
            registry: reg.name().to_string(),
            what: format!("index {whole}"),
            reason,
        }
    })
}

/// The index `recorded` (of digest `source`, named `whole`) narrowed to `images`: not carried
/// when one is left, else re-made with their entries; says so in `warnings`. Shared with OCI
/// layouts (`super::layout_index`); `Err` when the index text cannot be re-made.
pub(super) fn narrow(
    whole: &str,
    source: &Digest,
    mut recorded: SourceIndex,
    images: Vec<(Digest, String)>,
    left_out: &[String],
    warnings: &mut Vec<String>,
) -> Result<Chosen, String> {
    let chosen_names: Vec<&str> = images.iter().map(|(_, p)| p.as_str()).collect();
    if images.len() == 1 {
        warnings.push(format!(
            "the index {} ({whole}) is not carried: --platform keeps only {} (left out: {}); \
             its tag will name that platform's image, and the index digest will not exist at \
             the destination",
            source,
            chosen_names.join(", "),
            left_out.join(", ")
        ));
        return Ok(Chosen {
            images,
            index: None,
            tagged: true,
        });
    }
    let keep: Vec<Digest> = images.iter().map(|(d, _)| d.clone()).collect();
    let text = remake(&recorded.text, &keep)?;
    recorded.remade_from = Some(source.clone());
    recorded.digest = Digest::of_bytes(&text);
    recorded.text = String::from_utf8_lossy(&text).into_owned();
    recorded.extra.clear();
    warnings.push(format!(
        "the index {} ({whole}) is re-made with {} only (left out: {}): its digest changes to {}",
        source,
        chosen_names.join(", "),
        left_out.join(", "),
        recorded.digest
    ));
    Ok(Chosen {
        images,
        index: Some(recorded),
        tagged: false,
    })
}
