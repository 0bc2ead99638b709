//! `partial-load rehydrate`: a complete `docker save` archive from the bundle plus the base
//! layers this daemon already holds (also how `load` feeds a daemon on the containerd image
//! store, which cannot take a partial archive). One copy with two sources: the bundle, read
//! once as its signed manifest governs it (`bundle_reader::checked_stream_for`, so nothing the
//! manifest does not list reaches the archive), and the daemon's export of the images holding
//! the base chains. Which layer entries the checked archive lacks is known from the signed
//! manifest alone (`bundle_source::left_out_layers`, [`needed`]) before anything is read; the
//! daemon's export is read first, spooling only the layers that fill them, each checked against
//! its diffID ([`spool`]); then the checked bundle stream is copied entry by entry and the
//! missing layers are added under the names its `manifest.json` gives them ([`write`]). The
//! layers of a delta bundle are rebuilt on the way (`crate::rebuild`). The spool folder
//! (`.partial-load-spool-XXXXXX` beside the output) is removed on Ctrl-C like the output's
//! temporary file, and one left by a killed run is swept by the next (`output::stale`).

mod needed;
mod spool;
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
use crate::rebuild::{self, References};
use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use needed::Needed;
use partial_common::bundle_source::{left_out_layers, DeltaForm};
use partial_common::daemon::ImageMeta;
use partial_common::output::{cleanup, stale};
use partial_common::platform_view::DaemonView;
use partial_common::progress;
use partial_common::Digest;
use std::collections::BTreeSet;
use std::path::Path;

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
    let left_out = left_out_layers(&bundle.manifest, DeltaForm::Rebuilt, &view.leave_out)
        .map_err(|e| verify_failed(format!("bundle {}: {e}", bundle.name())))?;
    let needed = needed::from_left_out(left_out);
    let out_dir = out_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // What a killed run left here goes first; this run's spool is removed on Ctrl-C, and held
    // (locked) so that no other run sweeps it while it lives.
    stale::sweep_once(out_dir);
    let spool = tempfile::Builder::new()
        .prefix(stale::SPOOL_PREFIX)
        .tempdir_in(out_dir)
        .context("creating a spool folder")?;
    let _interrupt = cleanup::register_dir(spool.path());
    let _held = stale::hold_dir(spool.path());
    let found = spool_base_layers(bases, bundle, local, &needed, spool.path()).await?;
    let layers = Layers::Rebuilt(deltas, refs);
    let stream = checked_stream_for(bundle, bar.clone(), layers, written.clone(), view)?;
    let (label, out_path) = (bundle.name(), out_path.to_path_buf());
    tokio::task::spawn_blocking(move || {
        write::write_complete(stream, &label, &out_path, spool.path(), &needed, &found)
    })
    .await
    .context("the writer thread failed")?
}

/// Reads the daemon's own export of images holding the required chains into `dir`, keeping
/// what fills the `needed` entries; every entry must be filled.
async fn spool_base_layers(
    bases: BaseSource<'_>,
    bundle: &Bundle,
    local: &[ImageMeta],
    needed: &Needed,
    dir: &Path,
) -> Result<BTreeSet<Digest>> {
    if needed.is_empty() {
        return Ok(BTreeSet::new());
    }
    // Only the chains of the missing layers (a delta's reference chain alone is not needed here).
    let chains = bundle
        .manifest
        .required_base
        .iter()
        .filter(|r| needed.values().any(|w| w.diff_id == r.diff_id))
        .map(|r| &r.chain_id);
    let (names, reader) = bases.export(chains, local)?;
    let (dir2, needed2) = (dir.to_path_buf(), needed.clone());
    let found = tokio::task::spawn_blocking(move || spool::spool_layers(reader, &dir2, &needed2))
        .await
        .context("the spool thread failed")??;
    if let Some((entry, w)) = needed::first_unfilled(needed, &found) {
        bail!(
            "the daemon's export of {} did not contain layer {} (bundle entry {entry})",
            described(&names, local),
            w.diff_id
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
