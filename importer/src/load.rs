//! The checked load, in order: signature and volumes (`bundle::open`), base layers on the daemon
//! (`base::check`), the checked copy into the daemon (`daemon_dest`: content hashes checked on the
//! way, the end of the upload held back until they all matched, so a bad bundle is aborted before
//! the daemon can commit anything), the daemon's load response, and a final confirmation that
//! every image exists with the expected identity and tags (`confirm`: what each store calls an
//! image). `verify` runs every check but the upload.

use crate::base;
use crate::bundle::{self, Bundle};
use crate::bundle_reader;
use crate::cli::{LoadArgs, VerifyArgs};
use crate::confirm::{self, Written};
use crate::connect::connect;
use crate::daemon_dest;
use crate::errors::daemon_err;
use crate::rebuild::{self, References};
use crate::upload::upload;
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use partial_common::daemon::{Daemon, ImageMeta};
use partial_common::platform_view::DaemonView;
use partial_common::progress;
use partial_common::text::escape;
use std::io;

#[derive(serde::Serialize)]
pub(crate) struct Outcome<'a> {
    manifest: String,
    signed_by: Option<&'a bundle::Signed>,
    images: Vec<ImageOut>,
    /// Images of a multi-platform bundle not loaded: other platforms than the daemon's
    /// (`partial_common::platform_view`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    left_out: &'a [String],
    loaded: Vec<String>,
    verified: bool,
    /// The Helm charts the images were discovered in (manifest `charts`), when any.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    charts: &'a [partial_common::manifest::ChartEntry],
    /// Delta layers rebuilt from this daemon's reference layers and checked (delta bundles).
    #[serde(skip_serializing_if = "Option::is_none")]
    deltas_rebuilt: Option<usize>,
    /// Delta layers not rebuilt (`verify --offline`: no daemon to read the references from).
    #[serde(skip_serializing_if = "Option::is_none")]
    deltas_not_rebuilt: Option<usize>,
}

#[derive(serde::Serialize)]
struct ImageOut {
    id: String,
    tags: Vec<String>,
}

fn images_of(b: &Bundle) -> Vec<ImageOut> {
    images_out(&b.manifest.images)
}

fn images_out(images: &[partial_common::manifest::Image]) -> Vec<ImageOut> {
    images
        .iter()
        .map(|i| ImageOut {
            id: i.id.to_string(),
            tags: i.tags.clone(),
        })
        .collect()
}

pub async fn run_load(args: LoadArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    // Rollback check (the load state); the state's lock is held, and its folder known writable,
    // before anything is sent.
    let series = crate::state::check_for_update(&args.sequence, &bundle)?;
    let daemon = connect(&args.daemon).await?;
    let local = base::check(&daemon, &bundle.manifest)
        .await
        .map_err(|e| series.explain(e))?; // names a missing bundle of the series
    let refs = rebuild::spool(base::BaseSource::Daemon(&daemon), &bundle.manifest, &local).await?;
    let written = Written::default();
    let info = daemon.info().await.map_err(daemon_err)?;
    let view = DaemonView::for_platform(&bundle.manifest, &info.os, &info.arch);
    for n in &view.notes {
        eprintln!("note: {}", escape(n));
    }
    let loaded = send(&daemon, &bundle, &local, refs, (&written, &view)).await?;
    let images = view.apply(&bundle.manifest.images);
    confirm::confirm(&daemon, &images, &written).await?;
    series.record()?; // only after a successful load, before it is reported
    report_load(&args, &bundle, &daemon.host, loaded, (&images, &view.notes))
}

/// Uploads the verified bundle; on a daemon that cannot take it as a partial archive (the
/// containerd image store; podman with more than one image name in the bundle: see
/// `DaemonInfo::loads_partial` and the docs), the bundle rehydrated with this daemon's own base
/// layers.
/// A delta bundle is uploaded as its rebuilt stream (uncompressed), the delta layers rebuilt from
/// `refs` and checked on the way: a mismatch aborts the upload. `written` notes the OCI
/// manifests the upload held (what the containerd image store names the images by).
async fn send(
    daemon: &Daemon,
    bundle: &Bundle,
    local: &[ImageMeta],
    refs: References,
    (written, view): (&Written, &DaemonView),
) -> Result<Vec<String>> {
    let info = daemon.info().await.map_err(daemon_err)?;
    let bar = progress::bytes("uploading", Some(bundle.manifest.bundle.size));
    let deltas = rebuild::delta_layers(&bundle.manifest)?;
    let loaded = if !info.loads_partial(index_names(&view.apply(&bundle.manifest.images))) {
        let out = (written, view.clone());
        send_rehydrated(daemon, bundle, local, refs, &bar, out).await?
    } else {
        // What the daemon gets is written from the signed manifest, never the tar's own
        // metadata (see `daemon_dest`).
        let layers = bundle_reader::Layers::Rebuilt(deltas, refs);
        let loaded = daemon_dest::load(daemon, bundle, layers, view.clone(), bar.clone()).await?;
        written.record(loaded.manifests);
        loaded.names
    };
    bar.finish_and_clear();
    Ok(loaded)
}

/// How many entries the loaded `index.json` lists: one per tag, one per untagged image.
fn index_names(images: &[partial_common::manifest::Image]) -> usize {
    images.iter().map(|i| i.tags.len().max(1)).sum()
}

async fn send_rehydrated(
    daemon: &Daemon,
    bundle: &Bundle,
    local: &[ImageMeta],
    refs: References,
    bar: &ProgressBar,
    out: (&Written, DaemonView),
) -> Result<Vec<String>> {
    bar.set_message("rehydrating");
    let dir = if bundle.dir().as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        bundle.dir()
    };
    let tmp = tempfile::Builder::new()
        .prefix(".partial-load-full-")
        .suffix(".tar")
        .tempfile_in(dir)
        .context("creating a temporary file for the complete archive")?;
    crate::rehydrate::build(
        base::BaseSource::Daemon(daemon),
        bundle,
        local,
        refs,
        tmp.path(),
        bar,
        out,
    )
    .await?;
    let f = std::fs::File::open(tmp.path()).context("reopening the complete archive")?;
    upload(daemon, Box::new(io::BufReader::new(f)), bar.clone()).await
}

/// The result of a load, as JSON (`--json`) or for people; `host`: where the images went.
pub(crate) fn report_load(
    args: &LoadArgs,
    bundle: &Bundle,
    host: &str,
    loaded: Vec<String>,
    (images, notes): (&[partial_common::manifest::Image], &[String]),
) -> Result<()> {
    if args.bundle.json {
        let out = Outcome {
            manifest: bundle.manifest_path.display().to_string(),
            signed_by: bundle.signature.as_ref(),
            images: images_out(images),
            left_out: notes,
            loaded,
            verified: true,
            charts: &bundle.manifest.charts,
            deltas_rebuilt: Some(bundle.manifest.deltas().len()).filter(|n| *n > 0),
            deltas_not_rebuilt: None,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for img in images {
        eprintln!("{}", loaded_line(&img.tags, &img.id));
    }
    eprintln!(
        "verified {} and loaded {} image(s) into {}",
        escape(&bundle.name()),
        images.len(),
        host
    );
    Ok(())
}

pub async fn run_verify(args: VerifyArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    let series = crate::state::check(&args.sequence, &bundle)?; // read-only
    let deltas = rebuild::delta_layers(&bundle.manifest)?;
    let n = deltas.len();
    let layers = if args.offline {
        bundle_reader::Layers::AsCarried
    } else {
        let daemon = connect(&args.daemon).await?;
        let local = base::check(&daemon, &bundle.manifest)
            .await
            .map_err(|e| series.explain(e))?; // names a missing bundle of the series
        let refs =
            rebuild::spool(base::BaseSource::Daemon(&daemon), &bundle.manifest, &local).await?;
        bundle_reader::Layers::Rebuilt(deltas, refs)
    };
    let bundle = verify_content(bundle, layers).await?;
    if args.offline && n > 0 {
        eprintln!(
            "{n} delta layer(s) were not rebuilt (no daemon: --offline); only the hashes of \
             their deltas were checked"
        );
    }
    let deltas = match args.offline {
        true => Deltas {
            rebuilt: 0,
            not_rebuilt: n,
        },
        false => Deltas {
            rebuilt: n,
            not_rebuilt: 0,
        },
    };
    report_verify(&args, &bundle, deltas)
}

/// How many delta layers `verify` rebuilt, and left alone.
pub(crate) struct Deltas {
    pub rebuilt: usize,
    pub not_rebuilt: usize,
}

/// Reads the whole bundle as `load` would (on a blocking thread), discarding it.
pub(crate) async fn verify_content(
    bundle: Bundle,
    layers: bundle_reader::Layers,
) -> Result<Bundle> {
    let bar = progress::bytes("verifying", Some(bundle.manifest.bundle.size));
    let b2 = bar.clone();
    let result = tokio::task::spawn_blocking(move || {
        bundle_reader::verify_content(&bundle, layers, b2).map(|_| bundle)
    })
    .await
    .context("the verify thread failed")?;
    bar.finish_and_clear();
    result
}

pub(crate) fn report_verify(args: &VerifyArgs, bundle: &Bundle, deltas: Deltas) -> Result<()> {
    if args.bundle.json {
        let out = Outcome {
            manifest: bundle.manifest_path.display().to_string(),
            signed_by: bundle.signature.as_ref(),
            images: images_of(bundle),
            left_out: &[],
            loaded: vec![],
            verified: true,
            charts: &bundle.manifest.charts,
            deltas_rebuilt: Some(deltas.rebuilt).filter(|n| *n > 0),
            deltas_not_rebuilt: Some(deltas.not_rebuilt).filter(|n| *n > 0),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    eprintln!(
        "{}: signature{}, manifest and {} file(s) verified{}",
        escape(&bundle.name()),
        match &bundle.signature {
            Some(s) => format!(" (key {})", s.key_id),
            None => " NOT CHECKED".to_string(),
        },
        bundle.volumes.len(),
        if args.offline {
            "; daemon not checked (--offline)"
        } else {
            "; the daemon has every base layer"
        }
    );
    if deltas.rebuilt > 0 {
        eprintln!(
            "{} delta layer(s) rebuilt from this daemon's reference layers and checked against \
             their diffIDs",
            deltas.rebuilt
        );
    }
    for c in &bundle.manifest.charts {
        eprintln!("{}", chart_line(c));
    }
    Ok(())
}

/// One loaded image, for people (its tags come from the manifest: escaped).
fn loaded_line(tags: &[String], id: &partial_common::Digest) -> String {
    format!(
        "loaded {} ({id})",
        if tags.is_empty() {
            "<untagged>".to_string()
        } else {
            escape(&tags.join(", ")).into_owned()
        }
    )
}

/// One chart of the manifest, for people (its names escaped).
fn chart_line(c: &partial_common::manifest::ChartEntry) -> String {
    format!(
        "{} {} {} ({}, {})",
        if c.excluded { "base chart" } else { "chart" },
        escape(&c.name),
        escape(&c.version),
        escape(&c.path),
        c.sha256
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_manifest_reach_the_terminal_escaped() {
        let c = partial_common::manifest::ChartEntry {
            name: "web\u{1b}]0;owned\u{7}".into(),
            version: "1.0\r".into(),
            sha256: partial_common::Digest::of_bytes(b"c"),
            path: "charts/web\u{1b}[2J.tgz".into(),
            excluded: false,
        };
        let line = chart_line(&c);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("web\\u{1b}]0;owned\\u{7}"), "{line}");
        let id = partial_common::Digest::of_bytes(b"cfg");
        let line = loaded_line(&["app:1".into(), "evil\u{1b}[31m:2".into()], &id);
        assert!(!line.chars().any(char::is_control), "{line:?}");
        assert!(line.contains("evil\\u{1b}[31m:2"), "{line}");
        assert_eq!(loaded_line(&[], &id), format!("loaded <untagged> ({id})"));
    }
}
