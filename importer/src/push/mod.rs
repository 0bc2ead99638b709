//! `partial-load push`: the checked load, into a registry. In order: signature and volumes
//! (`bundle::open`), the rollback check (`state::check_for_update`, whose lock on the state file
//! is held from then until the state is written), the base check against the registry
//! ([`base`]), the blobs the registry lacks ([`plan`]: images already there left alone, HEAD in
//! each target repository; base layers mounted from the repository holding them), one pass over
//! the bundle uploading what is missing (uncompressed layers gzip-compressed on the way,
//! `--jobs` uploads at a time) while every hash is checked ([`stream`]), then one manifest per
//! image under every tag, each read back ([`manifests`]): an image from a registry keeps its
//! source manifest, and so its digest, or (decided before anything is uploaded) is refused
//! unless `--allow-new-digest`; the state file is written only after all of it. A bundle with delta layers is refused up front (its layers are rebuilt from a
//! daemon's, not a registry's).

mod attached;
mod base;
mod feed;
mod indexes;
mod manifests;
mod plan;
mod target;

use crate::bundle::{self, Bundle};
use crate::cli::{LayerCompression, PushArgs};
use crate::registry_connect::{connect, registry_err};
use anyhow::Result;
use partial_common::exit::{self, Coded};
use partial_common::progress;
use partial_common::registry::{Destination, RawManifest, Registry};
use partial_common::text::escape;
use target::{target_of, Target};

#[derive(serde::Serialize)]
struct Outcome {
    manifest: String,
    registry: String,
    images: Vec<PushedImage>,
    uploaded_blobs: usize,
    uploaded_bytes: u64,
    mounted_blobs: usize,
    /// The multi-platform indexes pushed, each with its digest (the source's unless re-made).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    indexes: Vec<indexes::PushedIndex>,
}

#[derive(serde::Serialize)]
struct PushedImage {
    id: String,
    manifest_digest: String,
    /// Every tag named a manifest of this image already: nothing was pushed for it.
    already_there: bool,
    /// The manifest pushed is the one its source registry served, byte for byte (same digest).
    digest_as_source: bool,
    /// The tags of the signatures, attestations and SBOMs pushed with it.
    attached: Vec<String>,
    references: Vec<String>,
}

/// A delta bundle cannot be pushed: its layers are rebuilt from reference layers a daemon holds,
/// and a registry gives no such layers here. Refused before anything is contacted or uploaded.
fn refuse_deltas(bundle: &Bundle) -> Result<()> {
    let n = bundle.manifest.deltas().len();
    if n == 0 {
        return Ok(());
    }
    Err(anyhow::Error::new(Coded::new(
        exit::USAGE,
        format!(
            "{} carries {n} delta layer(s); push needs every layer whole, and rebuilding a delta \
             needs its reference layer from a daemon: load it into a daemon (`partial-load load`), \
             or rehydrate it there (`partial-load rehydrate`) and push the images from that daemon, \
             or export again without --delta",
            bundle.name()
        ),
    )))
}

pub async fn run(args: PushArgs) -> Result<()> {
    let dest = Destination::parse(&args.to).map_err(registry_err)?;
    let bundle = bundle::open(&args.bundle)?;
    refuse_deltas(&bundle)?;
    attached::check(&bundle.manifest)?;
    let series = crate::state::check_for_update(&args.sequence, &bundle)?;
    let registry = connect(&dest.registry, &args.connection).await?;
    let targets = targets(&bundle, &dest)?;
    let index = base::check(&registry, &bundle.manifest, &dest, &args.base_repos)
        .await
        .map_err(|e| series.explain(e))?;
    let jobs = usize::from(args.jobs);
    let gzip = args.layer_compression == LayerCompression::Gzip;
    let planned = plan::plan(&registry, &bundle.manifest, &targets, &index, jobs, gzip).await?;
    let kept = keep_digests(&bundle, &index, &planned, args.allow_new_digest)?;
    let bar = progress::bytes("pushing", Some(bundle.manifest.bundle.size));
    let pass = feed::pass(&registry, &bundle, &planned, jobs, bar.clone()).await;
    bar.finish_and_clear();
    let pass = pass?;
    let mut images = Vec::new();
    let all = bundle
        .manifest
        .images
        .iter()
        .zip(&targets)
        .zip(&planned.present)
        .zip(kept);
    for (((image, targets), present), kept) in all {
        // Already there by its source digest (a platform image pushed before) counts as kept,
        // so its index is still pushed.
        let source = image.source_manifest.as_ref().map(|m| &m.digest);
        let as_source = kept.is_some() || (present.is_some() && present.as_ref() == source);
        let digest = match present {
            Some(digest) => digest.clone(),
            None => {
                let manifest = match kept {
                    Some(m) => m,
                    None => manifests::build(image, &pass.sizes, &pass.gzipped, &index)?,
                };
                for t in targets {
                    manifests::put_and_confirm(&registry, t, &manifest).await?;
                }
                manifest.digest
            }
        };
        let attached = push_attached(&registry, image, targets, as_source).await?;
        images.push(PushedImage {
            id: image.id.to_string(),
            manifest_digest: digest.to_string(),
            already_there: present.is_some(),
            digest_as_source: as_source,
            attached,
            references: targets
                .iter()
                .map(|t| t.reference(registry.name()))
                .collect(),
        });
    }
    let kept: Vec<bool> = images.iter().map(|i| i.digest_as_source).collect();
    let indexes = indexes::push(&registry, &bundle.manifest, &dest, &kept).await?;
    series.record()?; // only after a successful push
    let out = Outcome {
        indexes,
        manifest: bundle.manifest_path.display().to_string(),
        registry: registry.name().to_string(),
        images,
        uploaded_blobs: pass.uploaded_blobs,
        uploaded_bytes: pass.uploaded_bytes,
        mounted_blobs: planned.mounted + pass.mounted_blobs,
    };
    report(&args, &bundle, &registry, &out)
}

/// For each image, its source manifest to push byte for byte (see
/// [`manifests::source_manifest`]), decided before anything is uploaded. An image that came from
/// a registry whose manifest cannot be kept would change its digest: refused (exit 4, naming the
/// images and why), unless `--allow-new-digest`, which pushes a re-made manifest and says so.
fn keep_digests(
    bundle: &Bundle,
    index: &base::BaseIndex,
    planned: &plan::PushPlan,
    allow_new_digest: bool,
) -> Result<Vec<Option<RawManifest>>> {
    let mut kept = Vec::new();
    let mut changing = Vec::new();
    for (image, present) in bundle.manifest.images.iter().zip(&planned.present) {
        if present.is_some() {
            kept.push(None);
            continue;
        }
        match manifests::source_manifest(image, index, &planned.compress) {
            Ok(m) => kept.push(m),
            Err(why) => {
                let name = image
                    .tags
                    .first()
                    .map_or(image.id.to_string(), |t| escape(t).into_owned());
                let was = image.source_manifest.as_ref().map(|m| m.digest.to_string());
                changing.push(format!(
                    "{name} (source digest {}): {}",
                    was.unwrap_or_default(),
                    escape(&why)
                ));
                kept.push(None);
            }
        }
    }
    if changing.is_empty() {
        return Ok(kept);
    }
    let list = changing.join("\n  ");
    if allow_new_digest {
        eprintln!(
            "warning: {} image(s) get a new manifest digest (--allow-new-digest): digest \
             references to them will not resolve in the destination:\n  {list}",
            changing.len()
        );
        return Ok(kept);
    }
    Err(anyhow::Error::new(Coded::new(
        exit::BASE_MISSING,
        format!(
            "the push would change the manifest digest of {} image(s), as the registry does not \
             hold every blob their source manifest names:\n  {list}\nCopy the base images from \
             the source registry with their digests (skopeo copy --preserve-digests), or push \
             with --allow-new-digest to re-make the manifests (their digests change)",
            changing.len()
        ),
    )))
}

/// Pushes the manifests attached to `image` (signatures, attestations, SBOMs) into its target
/// repositories when its manifest kept its source digest (`as_source`); otherwise they would
/// name a digest the registry does not have, and the run says they were left out.
async fn push_attached(
    registry: &Registry,
    image: &partial_common::manifest::Image,
    targets: &[Target],
    as_source: bool,
) -> Result<Vec<String>> {
    if image.attached.is_empty() {
        return Ok(Vec::new());
    }
    if !as_source {
        eprintln!(
            "warning: {} signature(s), attestation(s) or SBOM(s) of {} not pushed: they name \
             its source digest, which its manifest did not keep",
            image.attached.len(),
            escape(&image.tags.join(", "))
        );
        return Ok(Vec::new());
    }
    let mut repos: Vec<&str> = targets.iter().map(|t| t.repository.as_str()).collect();
    repos.sort_unstable();
    repos.dedup();
    attached::push(registry, image, &repos).await
}

/// Where each image goes (one entry per tag; a platform image of an index by its digest into
/// the index's repository); an untagged image of no index cannot be pushed.
fn targets(bundle: &Bundle, dest: &Destination) -> Result<Vec<Vec<Target>>> {
    bundle
        .manifest
        .images
        .iter()
        .map(|img| {
            let mut by_digest = indexes::platform_targets(&bundle.manifest, img, dest)?;
            if img.tags.is_empty() && !by_digest.is_empty() {
                return Ok(by_digest);
            }
            if img.tags.is_empty() {
                return Err(anyhow::anyhow!(
                    "image {} of the bundle has no tag: a registry keeps images by repository and \
                     tag",
                    img.id
                ));
            }
            let mut out: Vec<Target> = img
                .tags
                .iter()
                .map(|t| target_of(dest, t))
                .collect::<Result<_>>()?;
            out.append(&mut by_digest);
            Ok(out)
        })
        .collect()
}

fn report(args: &PushArgs, bundle: &Bundle, registry: &Registry, out: &Outcome) -> Result<()> {
    if args.bundle.json {
        println!("{}", serde_json::to_string_pretty(out)?);
        return Ok(());
    }
    for img in &out.images {
        eprintln!(
            "{} {} ({}, manifest {})",
            if img.already_there {
                "already there:"
            } else {
                "pushed"
            },
            escape(&img.references.join(", ")),
            img.id,
            img.manifest_digest
        );
    }
    eprintln!(
        "verified {} and pushed {} image(s) to {}: {} blob(s) uploaded ({}), {} mounted",
        escape(&bundle.name()),
        out.images.len(),
        registry.name(),
        out.uploaded_blobs,
        progress::human_bytes(out.uploaded_bytes),
        out.mounted_blobs
    );
    Ok(())
}
