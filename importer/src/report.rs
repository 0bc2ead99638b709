//! `partial-load report`: what a reviewer needs to sign off a transfer, as one self-contained
//! HTML page (`-o FILE.html`) and/or JSON (`--json`). The bundle is opened as `verify` opens it
//! (signature, approvals) and read through the same checked stream, so a report is only written
//! for a bundle that matches its signed manifest. Base images come from the daemon when one is
//! reachable; otherwise the report says what it cannot compare. The report itself (model,
//! layer walks, rendering) is the `partial-report` crate, shared with `partial-save --report`.

use crate::base::BaseSource;
use crate::bundle::{self, Bundle};
use crate::bundle_reader::{self, Layers};
use crate::cli::ReportArgs;
use crate::connect::connect;
use crate::containerd;
use crate::errors::{usage, verify_failed};
use crate::rebuild;
use anyhow::{Context, Result};
use partial_common::daemon::{Daemon, ImageMeta};
use partial_common::output::AtomicFile;
use partial_common::progress;
use partial_common::Digest;
use partial_report::bases::{self, BaseStore};
use partial_report::layers::PathSet;
use partial_report::model::{ApprovalInfo, BundleInfo};
use partial_report::{build, html, scan};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

pub async fn run(args: ReportArgs) -> Result<()> {
    if let Some(out) = &args.output {
        if out.exists() && !args.force {
            return Err(usage(format!(
                "{} exists (--force overwrites it)",
                out.display()
            )));
        }
    }
    let bundle = bundle::open(&args.bundle)?;
    let reached = reach(&args).await;
    let store = reached.as_ref().map(Reached::store).map_err(String::clone);
    let bases = bases::gather(store, &bundle.manifest).await;
    let (layers, rebuilt) = layer_form(reached.as_ref().ok(), &bundle).await;
    let walk = build::walk_plan(&bundle.manifest, &bases, rebuilt);
    let (bundle, scan) = scan_bundle(bundle, layers, walk).await?;
    let tool = format!("partial-load {}", crate::cli::VERSION);
    let info = bundle_info(&bundle);
    let report = build::report(&bundle.manifest, info, tool, (&bases, &scan, rebuilt));
    if let Some(out) = &args.output {
        write_atomic(out, html::render(&report).as_bytes())?;
        eprintln!("wrote the report {}", out.display());
    }
    if args.bundle.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.output.is_none() {
        io::stdout()
            .write_all(html::render(&report).as_bytes())
            .context("writing the report to stdout")?;
    }
    Ok(())
}

/// Delta layers rebuilt from the base store's reference layers when it has them (then their
/// files are walked too); as carried otherwise.
async fn layer_form(reached: Option<&Reached>, bundle: &Bundle) -> (Layers, bool) {
    let Ok(deltas) = rebuild::delta_layers(&bundle.manifest) else {
        return (Layers::AsCarried, false);
    };
    let Some(r) = reached else {
        return (Layers::AsCarried, false);
    };
    if deltas.is_empty() {
        return (Layers::AsCarried, false);
    }
    let (source, local) = r.base_source();
    match rebuild::spool(source, &bundle.manifest, local).await {
        Ok(refs) => (Layers::Rebuilt(deltas, refs), true),
        Err(e) => {
            eprintln!("note: delta layers are not shown: {e:#}");
            (Layers::AsCarried, false)
        }
    }
}

/// Reads the bundle through its checked stream, walking the carried layers.
async fn scan_bundle(
    bundle: Bundle,
    layers: Layers,
    walk: BTreeMap<Digest, Option<Arc<PathSet>>>,
) -> Result<(Bundle, scan::BundleScan)> {
    let bar = progress::bytes("reading", Some(bundle.manifest.bundle.size));
    let b2 = bar.clone();
    let result = tokio::task::spawn_blocking(move || {
        let configs: BTreeSet<Digest> = bundle
            .manifest
            .images
            .iter()
            .map(|i| i.id.clone())
            .collect();
        let r = bundle_reader::checked_stream(&bundle, b2, layers)?;
        let s = scan::scan_bundle(r, &configs, &walk).map_err(|e| match e.is_invalid_data() {
            true => verify_failed(e.to_string()),
            false => anyhow::Error::new(e),
        })?;
        Ok::<_, anyhow::Error>((bundle, s))
    })
    .await
    .context("the report thread failed")?;
    bar.finish_and_clear();
    result
}

/// Writes `bytes` to `path` through a temporary file beside it: nothing half-written is left.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    f.commit()?;
    Ok(())
}

/// Where the base images were found: a Docker daemon, or a containerd namespace.
enum Reached {
    Daemon(Daemon, Vec<ImageMeta>),
    Containerd(containerd::export::Bases, Vec<ImageMeta>),
}

impl Reached {
    fn store(&self) -> (&dyn BaseStore, &[ImageMeta]) {
        match self {
            Reached::Daemon(d, local) => (d, local),
            Reached::Containerd(b, local) => (b, local),
        }
    }

    /// The same, as the source of the reference layers of deltas.
    fn base_source(&self) -> (BaseSource<'_>, &[ImageMeta]) {
        match self {
            Reached::Daemon(d, local) => (BaseSource::Daemon(d), local),
            Reached::Containerd(b, local) => (BaseSource::Store(b), local),
        }
    }
}

/// The base store (`--containerd`, else the daemon) and its images, or why not.
async fn reach(args: &ReportArgs) -> std::result::Result<Reached, String> {
    if args.offline {
        return Err("no daemon asked: --offline".to_string());
    }
    if args.containerd.socket.is_some() {
        let b = containerd::bases(&args.containerd)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let local = b.held.iter().map(|h| h.meta.clone()).collect();
        return Ok(Reached::Containerd(b, local));
    }
    let daemon = connect(&args.daemon).await.map_err(|e| format!("{e:#}"))?;
    let local = daemon.all_images().await.map_err(|e| e.to_string())?;
    Ok(Reached::Daemon(daemon, local))
}

/// The bundle as the signed manifest describes it, with the signature and the approvals that
/// were checked when it was opened.
fn bundle_info(b: &Bundle) -> BundleInfo {
    let mut info = build::bundle_info(
        &b.manifest,
        b.name(),
        b.manifest_path.display().to_string(),
        b.manifest_sha256.to_string(),
    );
    let verified: BTreeMap<&str, &str> = b
        .approvals
        .iter()
        .map(|a| (a.file.as_str(), a.key_id.as_str()))
        .collect();
    info.approvals = crate::approval::approval_files(&b.manifest_path)
        .unwrap_or_default()
        .into_iter()
        .map(|f| {
            let file = f.display().to_string();
            let key = verified.get(file.as_str()).map(|k| k.to_string());
            ApprovalInfo {
                verified: key.is_some(),
                key_id: key,
                file,
            }
        })
        .collect();
    info.signed_by = b.signature.as_ref().map(|s| s.key_id.clone());
    info.trusted_comment = b.signature.as_ref().map(|s| s.trusted_comment.clone());
    info
}
