//! Putting the report together from the signed manifest, what the bundle's stream showed
//! (`scan::BundleScan`) and the bases read from the daemon (`bases`).

use crate::bases::{self, Base, Bases};
use crate::config_diff;
use crate::layers::{DbState, PathSet};
use crate::model::*;
use crate::packages::{self, Manager};
use crate::scan::BundleScan;
use partial_common::manifest::{BundleManifest, Image, Layer, Provenance};
use partial_common::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The digest under which a carried layer streams past: its blob's (a delta rebuilt: its
/// diffID; a delta not rebuilt is not walked).
pub fn stream_digest(l: &Layer, rebuilt: bool) -> Option<Digest> {
    match (&l.delta, &l.blob) {
        (Some(_), _) if rebuilt => Some(l.diff_id.clone()),
        (Some(_), _) => None,
        (None, Some(b)) => Some(b.digest.clone()),
        (None, None) => Some(l.diff_id.clone()),
    }
}

/// The blobs to walk, each with the path set of its image's base (the first image carrying it).
pub fn walk_plan(
    manifest: &BundleManifest,
    bases: &Bases,
    rebuilt: bool,
) -> BTreeMap<Digest, Option<Arc<PathSet>>> {
    let mut walk = BTreeMap::new();
    for (img, base) in manifest.images.iter().zip(&bases.per_image) {
        let lower = match base {
            Base::Found(d) => Some(d.paths.clone()),
            Base::None => Some(Arc::new(PathSet::default())),
            Base::Unavailable(_) => None,
        };
        for l in img.layers.iter().filter(|l| l.carried) {
            if let Some(d) = stream_digest(l, rebuilt) {
                walk.entry(d).or_insert_with(|| lower.clone());
            }
        }
    }
    walk
}

/// The whole report of the bundle whose signed manifest is `manifest`, described by `bundle`
/// (who signed and approved it is the caller's to say), made by `tool`.
pub fn report(
    manifest: &BundleManifest,
    bundle: BundleInfo,
    tool: String,
    (bases, scan, rebuilt): (&Bases, &BundleScan, bool),
) -> Report {
    let images = manifest
        .images
        .iter()
        .zip(&bases.per_image)
        .map(|(img, base)| image(manifest, img, base, scan, rebuilt))
        .collect();
    Report {
        schema: SCHEMA.to_string(),
        version: VERSION,
        tool,
        created: partial_common::manifest::now_rfc3339(),
        bundle,
        base_source: bases.source.clone(),
        images,
    }
}

/// What the signed manifest says of the whole bundle `name` (its manifest file at
/// `manifest_path`, hashing to `manifest_sha256`); signature and approvals left for the caller.
pub fn bundle_info(
    m: &BundleManifest,
    name: String,
    manifest_path: String,
    manifest_sha256: String,
) -> BundleInfo {
    BundleInfo {
        name,
        manifest: manifest_path,
        manifest_sha256,
        created: m.created.clone(),
        made_by: format!("{} {}", m.tool.name, m.tool.version),
        site: m.site.as_ref().map(|s| format!("{} ({})", s.name, s.id)),
        sequence: m.sequence,
        previous: m.previous.as_ref().map(|d| d.to_string()),
        signed_by: None,
        trusted_comment: None,
        approvals: Vec::new(),
        compression: m.bundle.compression.as_str().to_string(),
        size: m.bundle.size,
        volumes: m.bundle.volumes.len(),
        docker_loadable: m.docker_loadable,
        warnings: m.warnings.clone(),
    }
}

/// The registry digest a `docker://` source pinned for one of `tags`.
fn registry_digest(source: &Provenance, tags: &[String]) -> Option<String> {
    let refs = match source {
        Provenance::Registry { references } | Provenance::DaemonAndRegistry { references, .. } => {
            references
        }
        _ => return None,
    };
    refs.iter().find_map(|r| {
        let (name, digest) = r.rsplit_once('@')?;
        let fam = partial_common::reference::familiar(name)?;
        tags.iter()
            .any(|t| partial_common::reference::familiar(t).as_deref() == Some(fam.as_str()))
            .then(|| digest.to_string())
    })
}

fn image(
    manifest: &BundleManifest,
    img: &Image,
    base: &Base,
    scan: &BundleScan,
    rebuilt: bool,
) -> ImageReport {
    let from_registry = img
        .source_manifest
        .as_ref()
        .map(|m| m.digest.to_string())
        .or_else(|| registry_digest(&manifest.source, &img.tags));
    let origin = match manifest.source {
        Provenance::Archives { .. } => "source layout",
        _ => "registry",
    };
    let (manifest_digest, from) = match from_registry {
        Some(d) => (Some(d), Some(origin.to_string())),
        None => match scan.manifests.get(&img.id) {
            Some(d) => (Some(d.to_string()), Some("bundle index.json".to_string())),
            None => (None, None),
        },
    };
    let size = |l: &Layer| l.size.or(l.blob.as_ref().and_then(|b| b.size)).unwrap_or(0);
    let carried: Vec<&Layer> = img.layers.iter().filter(|l| l.carried).collect();
    let new_config = scan.configs.get(&img.id);
    ImageReport {
        id: img.id.to_string(),
        tags: img.tags.clone(),
        manifest_digest,
        manifest_digest_from: from,
        platform: new_config.and_then(|c| c.platform.clone()),
        base: base_info(manifest, img, base),
        layers_total: img.layers.len(),
        layers_carried: carried.len(),
        bytes_carried: carried.iter().map(|l| size(l)).sum(),
        bytes_full: img.layers.iter().map(size).sum(),
        deltas: img
            .layers
            .iter()
            .filter_map(|l| {
                l.delta.as_ref().map(|d| DeltaInfo {
                    diff_id: l.diff_id.to_string(),
                    reference_diff_id: d.reference_diff_id.to_string(),
                    size: d.size,
                })
            })
            .collect(),
        layers: layer_reports(img, scan, rebuilt),
        packages: package_report(img, base, scan, rebuilt),
        config: config_report(base, new_config),
        attached: img.attached.iter().map(attached_info).collect(),
    }
}

fn attached_info(a: &partial_common::image::Attached) -> AttachedInfo {
    let kind = match a.tag.rsplit_once('.').map(|(_, k)| k) {
        Some("sig") => "signature",
        Some("att") => "attestation",
        Some("sbom") => "sbom",
        _ => "other",
    };
    AttachedInfo {
        kind: kind.to_string(),
        tag: a.tag.clone(),
        media_type: a.manifest.media_type.clone(),
        digest: a.manifest.digest.to_string(),
        blobs: a.blobs.len(),
    }
}

fn base_info(manifest: &BundleManifest, img: &Image, base: &Base) -> BaseInfo {
    let k = bases::left_out(img);
    let chain = (k > 0).then(|| img.layers[k - 1].chain_id.clone());
    let origin = chain.as_ref().and_then(|c| {
        manifest
            .required_base
            .iter()
            .find(|r| &r.chain_id == c)
            .map(|r| r.origin.to_string())
    });
    let (found, note) = match base {
        Base::None => (None, None),
        Base::Found(d) => (Some(d.name.clone()), d.note.clone()),
        Base::Unavailable(why) => (None, Some(why.clone())),
    };
    BaseInfo {
        chain_id: chain.map(|c| c.to_string()),
        layers: k,
        origin,
        found,
        note,
    }
}

fn layer_reports(img: &Image, scan: &BundleScan, rebuilt: bool) -> Vec<LayerReport> {
    img.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let files = l
                .carried
                .then(|| stream_digest(l, rebuilt))
                .flatten()
                .and_then(|d| scan.layers.get(&d))
                .map(|s| s.files.clone());
            let note = (l.carried && files.is_none()).then(|| {
                "a delta layer: its files are not shown without the daemon's reference layer"
                    .to_string()
            });
            LayerReport {
                position: i + 1,
                diff_id: l.diff_id.to_string(),
                carried: l.carried,
                size: l.size,
                delta: l.delta.is_some(),
                files,
                note,
            }
        })
        .collect()
}

/// The package database the carried layers leave (the topmost one writing or removing it).
fn carried_db<'a>(
    img: &Image,
    scan: &'a BundleScan,
    rebuilt: bool,
) -> Option<(Manager, &'a DbState)> {
    for l in img.layers.iter().rev().filter(|l| l.carried) {
        let Some(s) = stream_digest(l, rebuilt).and_then(|d| scan.layers.get(&d)) else {
            continue;
        };
        if let Some((m, st)) = s.dbs.iter().next() {
            return Some((*m, st));
        }
    }
    None
}

fn package_report(img: &Image, base: &Base, scan: &BundleScan, rebuilt: bool) -> PackageReport {
    let mut r = PackageReport {
        status: "none".to_string(),
        manager: None,
        note: None,
        changes: Vec::new(),
        installed: 0,
    };
    let Some((m, state)) = carried_db(img, scan, rebuilt) else {
        r.note = Some(match base {
            Base::Found(d) if !d.dbs.is_empty() => {
                r.status = "unchanged".to_string();
                "the package database is unchanged: no carried layer writes it".to_string()
            }
            _ => "no carried layer writes a dpkg or apk package database".to_string(),
        });
        return r;
    };
    let empty = packages::Packages::new();
    let new = match state {
        DbState::Present(p) => p,
        DbState::Removed => &empty,
    };
    r.manager = Some(m.as_str().to_string());
    r.installed = new.len();
    match base {
        Base::Unavailable(why) => {
            r.status = "base_not_available".to_string();
            r.note = Some(format!(
                "{why}; the new image has {} {} package(s)",
                new.len(),
                m.as_str()
            ));
        }
        Base::None => {
            r.status = "compared".to_string();
            r.changes = packages::diff(&empty, new);
        }
        Base::Found(d) => {
            r.status = "compared".to_string();
            r.changes = packages::diff(d.dbs.get(&m).unwrap_or(&empty), new);
        }
    }
    r
}

fn config_report(base: &Base, new: Option<&config_diff::ImageConfig>) -> ConfigReport {
    let (status, old) = match base {
        Base::None => ("compared", None),
        Base::Found(d) if d.config.is_some() => ("compared", d.config.as_ref()),
        _ => ("base_not_available", None),
    };
    let changes = match new {
        Some(n) => config_diff::diff(old, n),
        None => Vec::new(),
    };
    ConfigReport {
        status: status.to_string(),
        changes,
    }
}
