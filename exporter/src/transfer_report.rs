//! `partial-save --report FILE`: the reviewer's transfer report of the bundle just written, made
//! where the bundle is made so that it can be read before anything crosses. It is the same report
//! as `partial-load report` (the `partial-report` crate): the bundle's files are read back from
//! disk (what will travel, not what was meant to), and each image's base is looked up on the
//! daemon the images were exported from, which holds the `-e` images.

use crate::cli::SaveArgs;
use anyhow::{Context, Result};
use partial_common::daemon::{self, Daemon, ImageMeta};
use partial_common::manifest::{BundleManifest, Provenance};
use partial_common::output::{AtomicFile, MultiFileReader};
use partial_common::sign::{self, SecretKey};
use partial_common::Digest;
use partial_report::bases::{self, BaseStore};
use partial_report::model::Report;
use partial_report::{build, html, scan};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bundle as written: its volumes in order and its manifest file.
pub struct Written<'a> {
    pub manifest: &'a BundleManifest,
    pub volumes: Vec<PathBuf>,
    pub manifest_path: PathBuf,
    pub signed_by: Option<&'a SecretKey>,
}

/// Makes the report of `w` and writes it to `out`: JSON when its name ends in `.json`, else
/// the HTML page.
pub async fn write(args: &SaveArgs, w: Written<'_>, out: &Path) -> Result<()> {
    let m = w.manifest;
    let reached = reach(args, m).await;
    let store = reached
        .as_ref()
        .map(|(d, local)| (d as &dyn BaseStore, local.as_slice()))
        .map_err(String::clone);
    let bases = bases::gather(store, m).await;
    let walk = build::walk_plan(m, &bases, false);
    let configs: BTreeSet<Digest> = m.images.iter().map(|i| i.id.clone()).collect();
    let volumes = w.volumes.clone();
    let scan = tokio::task::spawn_blocking(move || {
        let r = MultiFileReader::open(volumes)?;
        let plain = scan::decompressed(r).context("reading the bundle back")?;
        scan::scan_bundle(plain, &configs, &walk).context("reading the bundle back")
    })
    .await
    .context("the report thread failed")??;
    let tool = crate::tool_info::tool().to_string();
    let report = build::report(m, info(&w)?, tool, (&bases, &scan, false));
    write_file(out, &report)
}

/// The daemon the images came from and its images, or why the bases cannot be compared.
async fn reach(
    args: &SaveArgs,
    m: &BundleManifest,
) -> std::result::Result<(Daemon, Vec<ImageMeta>), String> {
    match &m.source {
        Provenance::Daemon { .. } | Provenance::DaemonAndRegistry { .. } => {}
        _ => {
            return Err(
                "the images were not read from a daemon: the report compares against a Docker \
                 daemon holding the base images (partial-load report -H on either side)"
                    .to_string(),
            )
        }
    }
    let d = daemon::connect(args.host.as_deref(), Duration::from_secs(args.timeout))
        .await
        .map_err(|e| e.to_string())?;
    let local = d.all_images().await.map_err(|e| e.to_string())?;
    Ok((d, local))
}

/// The bundle as its manifest describes it, with the key that signed it.
fn info(w: &Written<'_>) -> Result<partial_report::model::BundleInfo> {
    let bytes = std::fs::read(&w.manifest_path)
        .with_context(|| format!("reading {}", w.manifest_path.display()))?;
    let sha = Digest::of_bytes(&bytes);
    let name = w
        .volumes
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut info = build::bundle_info(
        w.manifest,
        name,
        w.manifest_path.display().to_string(),
        sha.to_string(),
    );
    if let Some(sk) = w.signed_by {
        let public = sign::public_key_text(sk).context("the signing key's public key")?;
        info.signed_by = Some(sign::parse_public_key(&public)?.key_id().to_string());
        info.trusted_comment = Some(w.manifest.trusted_comment());
    }
    Ok(info)
}

/// Writes the report whole or not at all.
fn write_file(out: &Path, report: &Report) -> Result<()> {
    let bytes = match out.extension().and_then(|e| e.to_str()) {
        Some("json") => serde_json::to_vec_pretty(report)?,
        _ => html::render(report).into_bytes(),
    };
    let mut f = AtomicFile::create(out)?;
    f.write_all(&bytes)
        .with_context(|| format!("writing {}", out.display()))?;
    f.commit()?;
    Ok(())
}
