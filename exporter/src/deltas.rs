//! `--delta` in the exporter: which images may serve as delta references (the `-e` images, from
//! the daemon, the inputs or a registry, `--exclude-archive` images, and source-daemon images of the exported repositories that hold
//! chains an inventory or ledger names), opened as sources, and the engine hook built from them
//! (`partial_delta_encode::coder`).

use crate::cli::SaveArgs;
use crate::select;
use anyhow::{Context, Result};
use partial_common::daemon::Daemon;
use partial_common::have::HaveSet;
use partial_common::image::Image;
use partial_common::progress;
use partial_common::reference::ImageRef;
use partial_common::source::{ArchiveSource, Source};
use partial_common::Digest;
use partial_delta_encode::coder::{index_references, DeltaCoder};
use std::collections::BTreeSet;

/// The reference images, and the sources holding them besides the export's own.
pub struct ReferenceImages {
    pub sources: Vec<Box<dyn Source>>,
    pub images: Vec<Image>,
}

impl ReferenceImages {
    /// Adds every image of `src` (e.g. the `-e docker://…` images' registry source).
    pub fn add(&mut self, src: Box<dyn Source>) {
        self.images.extend(src.images().iter().cloned());
        self.sources.push(src);
    }
}

/// Offline (and for `--exclude-archive` in every mode): the `-e` images among the inputs
/// (`excluded`, by ID, held by `inputs`) and every image of the base archives. `None` without
/// `--delta`.
pub fn offline(
    args: &SaveArgs,
    inputs: &[Box<dyn Source>],
    excluded: &[Digest],
) -> Result<Option<ReferenceImages>> {
    if !args.delta {
        return Ok(None);
    }
    let mut images: Vec<Image> = Vec::new();
    for src in inputs {
        for img in src.images() {
            if excluded.contains(&img.id) && !images.iter().any(|i| i.id == img.id) {
                images.push(img.clone());
            }
        }
    }
    let mut sources: Vec<Box<dyn Source>> = Vec::new();
    for path in &args.exclude_archive {
        let src = ArchiveSource::open(path, None)
            .with_context(|| format!("--exclude-archive {}", path.display()))
            .map_err(crate::bad_input)?;
        images.extend(src.images().iter().cloned());
        sources.push(Box::new(src) as Box<dyn Source>);
    }
    Ok(Some(ReferenceImages { sources, images }))
}

/// With a daemon: the `-e` images, the daemon's images of the exported repositories that hold
/// a chain the destination has (an inventory's or ledger's), and the base archives.
pub async fn live(
    args: &SaveArgs,
    daemon: &Daemon,
    wanted: &[Image],
    excludes: &[String],
    have: &HaveSet,
) -> Result<ReferenceImages> {
    let mut refs = offline(args, &[], &[])?.unwrap_or(ReferenceImages {
        sources: Vec::new(),
        images: Vec::new(),
    });
    // Chains already readable (base archives) or useless as references (the exported images'
    // own base).
    let mut covered: BTreeSet<Digest> = wanted
        .iter()
        .chain(refs.images.iter())
        .flat_map(|w| w.layers.iter().map(|l| l.chain_id.clone()))
        .collect();
    if !excludes.is_empty() {
        let src = select::open_daemon(daemon.clone(), excludes, args.idle_timeout).await?;
        for img in src.images() {
            covered.extend(img.layers.iter().map(|l| l.chain_id.clone()));
        }
        refs.add(Box::new(src));
    }
    let holders = same_repository_holders(daemon, wanted, &covered, have).await?;
    if !holders.is_empty() {
        let src = select::open_daemon(daemon.clone(), &holders, args.idle_timeout).await?;
        refs.add(Box::new(src));
    }
    Ok(refs)
}

/// IDs of the daemon's images tagged in a repository of `wanted` that hold chains `have` names
/// and no image read so far holds (`covered`: the exported images' own chains and the `-e`
/// images'), chosen one by one, the most such chains first, until none adds any: each is one
/// more `docker save` to read.
async fn same_repository_holders(
    daemon: &Daemon,
    wanted: &[Image],
    covered: &BTreeSet<Digest>,
    have: &HaveSet,
) -> Result<Vec<String>> {
    let repo = |t: &str| ImageRef::parse(t).ok().map(|r| (r.registry, r.repository));
    let repos: BTreeSet<_> = wanted
        .iter()
        .flat_map(|w| w.tags.iter().filter_map(|t| repo(t)))
        .collect();
    let all = daemon.all_images().await.map_err(crate::daemon_failure)?;
    let mut candidates: Vec<_> = all
        .into_iter()
        .filter(|m| {
            m.tags
                .iter()
                .any(|t| repo(t).is_some_and(|r| repos.contains(&r)))
        })
        .collect();
    let mut covered = covered.clone();
    let mut chosen = Vec::new();
    loop {
        let adds = |m: &partial_common::daemon::ImageMeta| {
            m.chain_ids
                .iter()
                .filter(|c| have.contains(c) && !covered.contains(*c))
                .count()
        };
        let Some(best) = (0..candidates.len())
            .filter(|i| adds(&candidates[*i]) > 0)
            .max_by_key(|i| adds(&candidates[*i]))
        else {
            return Ok(chosen);
        };
        let m = candidates.swap_remove(best);
        covered.extend(m.chain_ids.iter().cloned());
        chosen.push(m.id.to_string());
    }
}

/// The hook, with the reference layers indexed (streamed from `refs`' sources, or the export's
/// own `inputs`). When `refs`' own sources hold every reference image (a live export: the `-e`
/// images' own `docker save`, base archives, a registry), they are indexed on another thread
/// while the export streams, and the first carried layer waits for them; else first, here.
pub fn coder(
    refs: ReferenceImages,
    inputs: &[Box<dyn Source>],
    wanted: &[Image],
    have: &HaveSet,
    live: bool,
) -> Result<DeltaCoder> {
    let own = refs
        .images
        .iter()
        .all(|i| refs.sources.iter().any(|s| s.holds(i)));
    if own && live {
        let (tx, rx) = std::sync::mpsc::channel();
        let (have, exported) = (have.clone(), wanted.to_vec());
        tokio::runtime::Handle::current().spawn_blocking(move || {
            let sources: Vec<&dyn Source> = refs.sources.iter().map(|s| s.as_ref()).collect();
            let indexed = index_references(&sources, &refs.images, &have, &exported);
            if indexed.as_ref().is_ok_and(|r| r.is_empty()) {
                warn_no_references();
            }
            // The receiver is gone only when the export ended first: nothing to tell.
            let _ = tx.send(indexed);
        });
        return Ok(DeltaCoder::pending(rx, wanted));
    }
    let bar = progress::transfer(None, "indexing delta references");
    let sources: Vec<&dyn Source> = refs
        .sources
        .iter()
        .chain(inputs.iter())
        .map(|s| s.as_ref())
        .collect();
    let indexed = index_references(&sources, &refs.images, have, wanted).map_err(|e| {
        let e = anyhow::Error::new(e).context("reading the delta reference layers");
        if live {
            crate::maybe_daemon_failure(e)
        } else {
            crate::bad_input(e)
        }
    });
    bar.finish_and_clear();
    let indexed = indexed?;
    if indexed.is_empty() {
        warn_no_references();
    }
    Ok(DeltaCoder::new(indexed, wanted))
}

fn warn_no_references() {
    eprintln!(
        "warning: --delta: no layer the destination holds can be read here (name the \
         destination's images with -e, or give --exclude-archive); every layer travels whole"
    );
}
