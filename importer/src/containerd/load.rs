//! `partial-load load --containerd` and `verify --containerd`: the checked load into a containerd
//! namespace. In order: signature and volumes, the rollback check, the base check against the
//! namespace's images (exit 4), then under one lease: the bundle read through the checked source
//! into the content store ([`super::dest`]), and only once all of it checked out, per image an
//! OCI manifest (base layers named by the blobs the namespace holds them as), the unpack into
//! the snapshotter, and last the image records. A failure before the records leaves no record
//! pointing anywhere; the lease is deleted either way, leaving what nothing refers to to
//! containerd's garbage collector.

use super::dest::{ContainerdDest, Written};
use super::export::Bases;
use super::grpc::{CallError, Client};
use super::images::{self, Held};
use super::kept::{self, NotKept};
use super::proto::Descriptor;
use super::unpack::{self, Step};
use super::{connect, containerd_err, place};
use crate::base::BaseSource;
use crate::bundle::{self, Bundle};
use crate::bundle_reader;
use crate::cli::{ContainerdArgs, LoadArgs, VerifyArgs};
use crate::errors::verify_failed;
use crate::load::{report_load, report_verify, verify_content, Deltas};
use crate::rebuild::{self, References};
use anyhow::{anyhow, Context, Result};
use partial_common::bundle_source::{self, DeltaForm};
use partial_common::exit::{self, Coded};
use partial_common::image::{MEDIA_CONFIG, MEDIA_LAYER, MEDIA_MANIFEST};
use partial_common::manifest::{BundleManifest, Image};
use partial_common::platform_view::DaemonView;
use partial_common::progress;
use partial_common::reference::{qualified, ImageRef};
use partial_common::text::escape;
use partial_common::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The image phase's view of one image: its manifest, written, and the names it gets.
struct Made {
    names: Vec<String>,
    target: Descriptor,
}

/// The reference layers of the bundle's deltas, read from the namespace's content store (none
/// for a bundle without deltas).
pub(super) async fn references(
    c: &Client,
    manifest: &BundleManifest,
    held: &[Held],
) -> Result<References> {
    let metas: Vec<_> = held.iter().map(|h| h.meta.clone()).collect();
    let bases = Bases {
        client: c.clone(),
        held: held.to_vec(),
    };
    rebuild::spool(BaseSource::Store(&bases), manifest, &metas).await
}

/// The namespace's images, and the base check against them.
pub(super) async fn check_base(c: &Client, manifest: &BundleManifest) -> Result<Vec<Held>> {
    let held = images::list(c).await.map_err(containerd_err)?;
    let metas: Vec<_> = held.iter().map(|h| h.meta.clone()).collect();
    let inventory = format!(
        "partial-load inventory --containerd {} --namespace {} -o have.json",
        c.socket.display(),
        c.namespace
    );
    let at = crate::base::Place::store(place(c), "this containerd namespace", &inventory);
    crate::base::refuse_missing(manifest, &metas, &at)?;
    Ok(held)
}

pub async fn run_load(args: LoadArgs, target: &ContainerdArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    let series = crate::state::check_for_update(&args.sequence, &bundle)?;
    let c = connect(target).await?;
    let held = check_base(&c, &bundle.manifest)
        .await
        .map_err(|e| series.explain(e))?;
    let refs = references(&c, &bundle.manifest, &held).await?;
    let lease = super::content::create_lease(&c)
        .await
        .map_err(containerd_err)?;
    let leased = c.leased(&lease);
    // Of a multi-platform bundle, this host's platform image, tagged as its index (as Docker).
    let view = DaemonView::for_platform(
        &bundle.manifest,
        std::env::consts::OS,
        std::env::consts::ARCH,
    );
    for n in &view.notes {
        eprintln!("note: {}", escape(n));
    }
    let images = view.apply(&bundle.manifest.images);
    let result = load_leased(
        &leased,
        &lease,
        &bundle,
        (&images, &held),
        refs,
        &args.snapshotter,
    )
    .await;
    if let Err(e) = super::content::delete_lease(&c, &lease).await {
        eprintln!("warning: the lease {lease} was not deleted (it expires in a day): {e}");
    }
    let loaded = result?;
    confirm(&c, &images, &loaded).await?;
    series.record()?;
    let names = loaded.iter().flat_map(|m| m.names.clone()).collect();
    report_load(&args, &bundle, &place(&c), names, (&images, &view.notes))
}

/// The copy into the content store, then the images: manifests, unpack, records.
async fn load_leased(
    c: &Client,
    lease: &str,
    bundle: &Bundle,
    (images, held): (&[Image], &[Held]),
    refs: References,
    snapshotter: &str,
) -> Result<Vec<Made>> {
    let written = copy(c, lease, bundle, refs, snapshotter).await?;
    let mut made = Vec::new();
    for image in images {
        let (target, steps) = manifest_of(c, lease, image, &written, held).await?;
        let n = unpack::unpack(c, snapshotter, &steps)
            .await
            .map_err(containerd_err)
            .with_context(|| format!("unpacking image {} into {snapshotter}", image.id))?;
        eprintln!(
            "unpacked {} ({n} of {} layer(s) applied into {snapshotter})",
            image.id,
            steps.len()
        );
        made.push(Made {
            names: names(image, &target.digest),
            target,
        });
    }
    for m in &made {
        for name in &m.names {
            images::put(c, name, m.target.clone())
                .await
                .map_err(containerd_err)?;
        }
    }
    Ok(made)
}

/// The bundle read through the checked source into the content store, on a blocking thread;
/// its delta layers rebuilt from `refs` on the way.
async fn copy(
    c: &Client,
    lease: &str,
    bundle: &Bundle,
    refs: References,
    snapshotter: &str,
) -> Result<Written> {
    let bar = progress::bytes("loading", Some(bundle.manifest.bundle.size));
    let raw = bundle_reader::tar_stream(bundle, bar.clone())?;
    let deltas = rebuild::delta_layers(&bundle.manifest)?;
    let (reader, form) = match deltas.is_empty() {
        true => (raw, DeltaForm::Encoded),
        false => (
            rebuild::rebuilt_stream(raw, bundle.name(), deltas, refs)?,
            DeltaForm::Rebuilt,
        ),
    };
    let failure = Arc::new(Mutex::new(None::<CallError>));
    let d = ContainerdDest {
        client: c.clone(),
        lease: lease.to_string(),
        handle: tokio::runtime::Handle::current(),
        snapshotter: snapshotter.to_string(),
        top_chain: bundle
            .manifest
            .images
            .iter()
            .filter_map(|i| Some((i.id.clone(), i.layers.last()?.chain_id.clone())))
            .collect(),
        failure: failure.clone(),
        written: Written::default(),
    };
    let manifest = bundle.manifest.clone();
    let copied =
        tokio::task::spawn_blocking(move || bundle_source::copy_into(reader, &manifest, form, d))
            .await
            .context("the bundle reading thread failed")?;
    bar.finish_and_clear();
    match copied {
        Ok(c) => Ok(c.committed),
        Err(e) if e.is_bundles_fault() => Err(verify_failed(format!(
            "bundle {}: {e}; no image was loaded",
            bundle.name()
        ))),
        Err(e) => match failure.lock().ok().and_then(|mut s| s.take()) {
            Some(f) => Err(containerd_err(format!("{f}; no image was loaded"))),
            None => Err(anyhow!(e).context(format!("reading the bundle {}", bundle.name()))),
        },
    }
}

/// The manifest of `image` written to the content store, and the layers it names: its source
/// manifest byte for byte where [`kept`] can keep it, else one made here (with a warning when a
/// source digest is lost).
async fn manifest_of(
    c: &Client,
    lease: &str,
    image: &Image,
    written: &Written,
    held: &[Held],
) -> Result<(Descriptor, Vec<Step>)> {
    let kept = kept::kept(c, lease, image, written)
        .await
        .map_err(containerd_err)?;
    let (media_type, bytes, steps) = match kept {
        Ok(k) => (k.media_type, k.bytes, k.steps),
        Err(why) => {
            if let (NotKept::Lost(why), Some(s)) = (why, &image.source_manifest) {
                eprintln!(
                    "warning: image {} gets a manifest of its own here, not its source's {}: {}",
                    image.id,
                    s.digest,
                    escape(&why)
                );
            }
            let steps = steps(image, written, held)?;
            let config_size = *written
                .sizes
                .get(&image.id)
                .ok_or_else(|| anyhow!("the config of image {} was not written", image.id))?;
            let bytes = manifest_bytes(&image.id, config_size, &steps)?;
            (MEDIA_MANIFEST.to_string(), bytes, steps)
        }
    };
    let target = write_manifest(c, lease, image, (&media_type, &bytes), &steps).await?;
    Ok((target, steps))
}

/// The layers of `image` with the blob each is unpacked from: a carried layer's from this load,
/// a left-out one's as the namespace holds it (exit 4 when it holds no blob for that chain).
fn steps(image: &Image, written: &Written, held: &[Held]) -> Result<Vec<Step>> {
    image
        .layers
        .iter()
        .map(|l| {
            let blob = if l.carried {
                let (digest, media) = match &l.blob {
                    Some(b) => (b.digest.clone(), b.media_type.clone()),
                    None => (l.diff_id.clone(), MEDIA_LAYER.to_string()),
                };
                let size = *written.sizes.get(&digest).ok_or_else(|| {
                    anyhow!(
                        "carried layer {digest} of image {} was not written",
                        image.id
                    )
                })?;
                desc(&media, &digest, size)
            } else {
                let d = images::layer_for_chain(held, &l.chain_id).ok_or_else(|| {
                    anyhow::Error::new(Coded::new(
                        exit::BASE_MISSING,
                        format!(
                            "no image of the namespace holds a blob for chain {} (layer {})",
                            l.chain_id, l.diff_id
                        ),
                    ))
                })?;
                desc(&d.media_type, &d.digest, d.size)
            };
            Ok(Step {
                blob,
                diff_id: l.diff_id.clone(),
                chain_id: l.chain_id.clone(),
            })
        })
        .collect()
}

fn desc(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size: size as i64,
    }
}

/// The manifest `bytes` of `image`, written with the labels that keep its config and layers.
async fn write_manifest(
    c: &Client,
    lease: &str,
    image: &Image,
    (media_type, bytes): (&str, &[u8]),
    steps: &[Step],
) -> Result<Descriptor> {
    let digest = Digest::of_bytes(bytes);
    let mut labels = HashMap::from([(
        "containerd.io/gc.ref.content.config".to_string(),
        image.id.to_string(),
    )]);
    for (i, s) in steps.iter().enumerate() {
        labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            s.blob.digest.clone(),
        );
    }
    let size = bytes.len() as u64;
    super::content::write(c, lease, &digest, size, labels, &mut &bytes[..])
        .await
        .map_err(|e| match e {
            super::content::WriteError::Containerd(e) => containerd_err(e),
            super::content::WriteError::Read(e) => anyhow!(e),
        })
        .with_context(|| format!("writing the manifest of image {}", image.id))?;
    Ok(desc(media_type, &digest, size))
}

/// An OCI image manifest naming the config and the layer blobs.
fn manifest_bytes(config: &Digest, config_size: u64, steps: &[Step]) -> Result<Vec<u8>> {
    let layers: Vec<_> = steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "mediaType": s.blob.media_type,
                "digest": s.blob.digest,
                "size": s.blob.size,
            })
        })
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config, "size": config_size},
        "layers": layers,
    });
    Ok(serde_json::to_vec(&m)?)
}

/// The image record names of `image`, as the kubelet's CRI looks them up: its tags, fully
/// qualified (`app:1` → `docker.io/library/app:1`, as `ctr` and the kubelet name them), then
/// each of their repositories by the manifest's digest (`docker.io/library/app@sha256:…`, what a
/// pod pinned by digest asks for; CRI's own pull makes the same pair). An untagged image is
/// named by its manifest digest alone.
fn names(image: &Image, manifest: &str) -> Vec<String> {
    if image.tags.is_empty() {
        return vec![format!("partial-load-untagged@{manifest}")];
    }
    let tags: Vec<String> = image.tags.iter().map(|t| qualified(t)).collect();
    let mut by_digest: Vec<String> = tags
        .iter()
        .filter_map(|t| ImageRef::parse(t).ok())
        .map(|r| format!("{}/{}@{manifest}", r.registry, r.repository))
        .collect();
    by_digest.sort();
    by_digest.dedup();
    tags.into_iter().chain(by_digest).collect()
}

/// Every name now points at the manifest written, whose config is the image ID.
async fn confirm(c: &Client, images: &[Image], made: &[Made]) -> Result<()> {
    for (image, m) in images.iter().zip(made) {
        for name in &m.names {
            let got = images::get(c, name).await.map_err(containerd_err)?;
            let target = got.and_then(|i| i.target).map(|t| t.digest);
            if target.as_deref() != Some(m.target.digest.as_str()) {
                return Err(containerd_err(format!(
                    "after the load, {name} in {} names {}, not the manifest {} of image {}",
                    place(c),
                    target.unwrap_or_else(|| "nothing".into()),
                    m.target.digest,
                    image.id
                )));
            }
        }
    }
    Ok(())
}

pub async fn run_verify(args: VerifyArgs, target: &ContainerdArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    let series = crate::state::check(&args.sequence, &bundle)?; // read-only
    let deltas = rebuild::delta_layers(&bundle.manifest)?;
    let n = deltas.len();
    let (layers, counts) = if args.offline {
        let counts = Deltas {
            rebuilt: 0,
            not_rebuilt: n,
        };
        (bundle_reader::Layers::AsCarried, counts)
    } else {
        let c = connect(target).await?;
        let held = check_base(&c, &bundle.manifest)
            .await
            .map_err(|e| series.explain(e))?;
        let refs = references(&c, &bundle.manifest, &held).await?;
        let counts = Deltas {
            rebuilt: n,
            not_rebuilt: 0,
        };
        (bundle_reader::Layers::Rebuilt(deltas, refs), counts)
    };
    let bundle = verify_content(bundle, layers).await?;
    report_verify(&args, &bundle, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_config_and_layers_in_order() {
        let cfg = Digest::of_bytes(b"config");
        let steps = vec![Step {
            blob: desc(MEDIA_LAYER, &Digest::of_bytes(b"l1"), 10),
            diff_id: Digest::of_bytes(b"l1"),
            chain_id: Digest::of_bytes(b"l1"),
        }];
        let bytes = manifest_bytes(&cfg, 6, &steps).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["config"]["digest"], cfg.to_string());
        assert_eq!(v["config"]["size"], 6);
        assert_eq!(
            v["layers"][0]["digest"],
            Digest::of_bytes(b"l1").to_string()
        );
        assert_eq!(v["layers"][0]["size"], 10);
        assert_eq!(v["mediaType"], MEDIA_MANIFEST);
    }

    #[test]
    fn records_name_each_tag_and_each_repository_by_digest() {
        let m = "sha256:".to_string() + &"a".repeat(64);
        let mut image = Image {
            id: Digest::of_bytes(b"config"),
            tags: vec![
                "app:1".into(),
                "app:2".into(),
                "reg.example:5000/x/app:1".into(),
            ],
            layers: vec![],
            source_manifest: None,
            attached: vec![],
        };
        assert_eq!(
            names(&image, &m),
            vec![
                "docker.io/library/app:1".to_string(),
                "docker.io/library/app:2".into(),
                "reg.example:5000/x/app:1".into(),
                format!("docker.io/library/app@{m}"),
                format!("reg.example:5000/x/app@{m}"),
            ]
        );
        image.tags.clear();
        assert_eq!(
            names(&image, &m),
            vec![format!("partial-load-untagged@{m}")]
        );
    }
}
