//! `partial-load rehydrate`: a complete `docker save` archive from the bundle plus the base
//! layers this daemon already holds (also how `load` feeds a daemon on the containerd image
//! store, which cannot take a partial archive). One copy with two sources: the bundle, read
//! once as its signed manifest governs it (`bundle_reader::checked_stream_for`, so nothing the
//! manifest does not list reaches the archive), and the daemon's export of the images holding
//! the base chains. Which layer entries the checked archive lacks is known from the signed
//! manifest alone (`bundle_source::left_out_layers`) before anything is read; the daemon's
//! export is read first, keeping only those layers, each checked against its diffID, in
//! anonymous files beside the output (`crate::layer_files`: nothing is left behind, however
//! the run ends); then the checked bundle stream is copied entry by entry and the missing
//! layers are added under the names its `manifest.json` gives them ([`write`]). The layers of a
//! delta bundle are rebuilt on the way (`crate::rebuild`).

#[cfg(test)]
mod tests;
mod write;

use crate::base::{self, BaseSource};
use crate::bundle::{self, Bundle};
use crate::bundle_reader::{checked_stream_for, Layers};
use crate::cli::RehydrateArgs;
use crate::confirm::Written;
use crate::connect::connect;
use crate::errors::verify_failed;
use crate::layer_files::{self, LayerFiles};
use crate::rebuild::{self, References};
use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use partial_common::bundle_source::{left_out_layers, DeltaForm};
use partial_common::daemon::ImageMeta;
use partial_common::output::stale;
use partial_common::platform_view::DaemonView;
use partial_common::progress;
use partial_common::Digest;
use std::collections::BTreeSet;
use std::path::Path;
use write::Needed;

pub async fn run(args: RehydrateArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    if args.output.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite)",
            args.output.display()
        );
    }
    let daemon = connect(&args.daemon).await?;
    let local = base::check(&daemon, &bundle.manifest).await?;
    let refs = rebuild::spool(BaseSource::Daemon(&daemon), &bundle.manifest, &local).await?;
    // The pass over the bundle moves the bar (the daemon's export before it does not).
    let bar = progress::bytes("rehydrating", Some(bundle.manifest.bundle.size));
    let written = Written::default();
    build(
        BaseSource::Daemon(&daemon),
        &bundle,
        &local,
        refs,
        &args.output,
        &bar,
        (&written, DaemonView::default()),
    )
    .await?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {}: a complete archive of {} image(s) that loads into a daemon without the base",
        args.output.display(),
        bundle.manifest.images.len()
    );
    Ok(())
}

/// Writes the complete archive to `out_path` (atomically). `local` is the daemon's images as
/// the base check (`base::check`) returned them, which must have passed; `refs` the reference
/// layers of the bundle's deltas (`rebuild::spool`), whose layers are rebuilt on the way;
/// `written` notes the OCI manifest the archive holds for each image (`crate::confirm`); `view`
/// picks the images of a multi-platform bundle a daemon loads (`partial_common::platform_view`).
pub async fn build(
    bases: BaseSource<'_>,
    bundle: &Bundle,
    local: &[ImageMeta],
    refs: References,
    out_path: &Path,
    bar: &ProgressBar,
    (written, view): (&Written, DaemonView),
) -> Result<()> {
    let deltas = rebuild::delta_layers(&bundle.manifest)?;
    let needed = left_out_layers(&bundle.manifest, DeltaForm::Rebuilt, &view.leave_out)
        .map_err(|e| verify_failed(format!("bundle {}: {e}", bundle.name())))?;
    let out_dir = out_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // What a killed run left here goes first.
    stale::sweep_once(out_dir);
    let found = base_layers(bases, bundle, local, &needed, out_dir).await?;
    let layers = Layers::Rebuilt(deltas, refs);
    let stream = checked_stream_for(bundle, bar.clone(), layers, written.clone(), view)?;
    let (label, out_path) = (bundle.name(), out_path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        write::write_complete(stream, &label, &out_path, found, &needed)
    })
    .await
    .context("the writer thread failed")?
}

/// Reads the daemon's own export of images holding the base chains of the `needed` entries,
/// keeping each of their layers in an anonymous file in `dir` (the output's folder: there is
/// room for the archive there); every entry must be found.
async fn base_layers(
    bases: BaseSource<'_>,
    bundle: &Bundle,
    local: &[ImageMeta],
    needed: &Needed,
    dir: &Path,
) -> Result<LayerFiles> {
    if needed.is_empty() {
        return Ok(LayerFiles::new());
    }
    let wanted: BTreeSet<Digest> = needed.values().cloned().collect();
    // Only the chains of the missing layers (a delta's reference chain alone is not needed here).
    let chains = bundle
        .manifest
        .required_base
        .iter()
        .filter(|r| wanted.contains(&r.diff_id))
        .map(|r| &r.chain_id);
    let (names, reader) = bases.export(chains, local)?;
    let dir2 = dir.to_path_buf();
    let found = tokio::task::spawn_blocking(move || layer_files::read(reader, &wanted, &dir2))
        .await
        .context("the layer spool thread failed")??;
    if let Some((entry, diff_id)) = needed.iter().find(|(_, d)| !found.contains_key(*d)) {
        bail!(
            "the daemon's export of {} did not contain layer {diff_id} (bundle entry {entry})",
            described(&names, local),
        );
    }
    Ok(found)
}

/// The exported images `names` (IDs), each with its first tag when it has one, for messages.
fn described(names: &[String], local: &[ImageMeta]) -> String {
    names
        .iter()
        .map(|n| {
            match local
                .iter()
                .find(|i| i.id.as_str() == n)
                .and_then(|i| i.tags.first())
            {
                Some(tag) => format!("{tag} ({n})"),
                None => n.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
