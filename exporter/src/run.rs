//! The export itself: open the source (the daemon, or archive files and OCI layouts) and gather
//! what the destination has, stream the source through the engine, compress, write the bundle
//! atomically (optionally in volumes), then write and sign the manifest.

use crate::cli::SaveArgs;
use crate::ledger_cmd::ExportLedger;
use crate::report;
use crate::select;
use anyhow::{bail, Context, Result};
use partial_common::archive::ArchiveError;
use partial_common::codec::{self, Compression};
use partial_common::daemon;
use partial_common::engine::{Engine, EngineObserver};
use partial_common::have::HaveSet;
use partial_common::image::{Image, Platform};
use partial_common::manifest::{self, BundleManifest, FileEntry};
use partial_common::output::{self, naming};
use partial_common::plan::Plan;
use partial_common::progress;
use partial_common::source::{Blame, RegistrySource, Selection, Source};
use partial_delta_encode::coder::DeltaNote;
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What one export works on: the sources, the images wanted from them, what the destination
/// holds, and how the manifest describes the source.
struct Gathered {
    sources: Vec<Box<dyn Source>>,
    wanted: Vec<Image>,
    have: HaveSet,
    desc: manifest::Provenance,
    /// The bytes the sources will stream, when known in advance (for the progress bar).
    total: Option<u64>,
    /// The platform followed in the streams' multi-platform indexes (offline inputs: the one
    /// the sources were opened with, so the engine reads the same image they resolved).
    platform: Option<Platform>,
    /// With `--delta`: the images whose layers may serve as delta references, and the sources
    /// holding them besides `sources` (see `crate::deltas`).
    references: Option<crate::deltas::ReferenceImages>,
    /// The multi-platform indexes that travel (registry references or layout entries naming one).
    indexes: Vec<partial_common::source_index::SourceIndex>,
    /// What the registry source left out or re-made (indexes, attached manifests), for the
    /// manifest's warnings.
    notes: Vec<String>,
    /// `--check-diff-ids`: decompress every carried compressed blob to check its diffID here
    /// too (partial-load always does).
    check_diff_ids: bool,
}

/// Progress callbacks of the filter, shown on one line: bytes read, layers carried and left
/// out, bytes written.
struct Observer {
    bar: progress::Transfer,
    written: Arc<AtomicU64>,
    carried: Cell<(u64, u64)>,
    left_out: Cell<(u64, u64)>,
    last_mib: Cell<u64>,
}

impl Observer {
    fn new(bar: progress::Transfer, written: Arc<AtomicU64>) -> Self {
        Observer {
            bar,
            written,
            carried: Cell::new((0, 0)),
            left_out: Cell::new((0, 0)),
            last_mib: Cell::new(u64::MAX),
        }
    }

    fn refresh(&self) {
        let (cn, cb) = self.carried.get();
        let (ln, lb) = self.left_out.get();
        self.bar.set_message(format!(
            "· carried {cn} layer(s) ({}), left out {ln} ({}) · wrote {}",
            progress::human_bytes(cb),
            progress::human_bytes(lb),
            progress::human_bytes(self.written.load(Ordering::Relaxed))
        ));
    }
}

impl EngineObserver for Observer {
    fn bytes_read(&self, total: u64) {
        self.bar.set_position(total);
        // Refresh the text once per MiB, not on every read.
        if total >> 20 != self.last_mib.get() {
            self.last_mib.set(total >> 20);
            self.refresh();
        }
    }
    fn layer(&self, _entry: &str, size: u64, kept: bool) {
        let cell = if kept { &self.carried } else { &self.left_out };
        let (n, b) = cell.get();
        cell.set((n + 1, b + size));
        self.refresh();
    }
}

/// Counts the bytes written to the bundle, for the progress line.
struct CountWritten<W> {
    inner: W,
    written: Arc<AtomicU64>,
}

impl<W: Write> Write for CountWritten<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub async fn run(mut args: SaveArgs) -> Result<()> {
    // Usage errors (exit 2) before any daemon, registry, chart or file is touched.
    let (compression, split) = check_flags(&args).map_err(crate::usage)?;
    let charts = crate::charts::expand(&mut args).await?; // --chart, --images-from
    check_selection(&args).map_err(crate::usage)?;
    // Open the signing key before the export, so a wrong password fails now, not in an hour.
    let secret_key = match &args.sign_key {
        Some(path) => Some(
            crate::keygen::open_secret_key(path)
                .with_context(|| format!("--sign-key {}", path.display()))?,
        ),
        None => None,
    };
    let (g, ledger) = gather(&args).await?;

    if args.dry_run {
        return dry_run(g, args.json).await;
    }

    let sink = output::AtomicOutput::create(&args.output, split)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let written = Arc::new(AtomicU64::new(0));
    let sink = CountWritten {
        inner: sink,
        written: Arc::clone(&written),
    };
    let encoder = codec::compress(sink, compression, args.level)
        .with_context(|| format!("starting {compression} compression"))?;
    let desc = g.desc.clone();
    let indexes = g.indexes.clone();
    let source_notes = g.notes.clone();
    let hint = encoder.store_hint();
    let (plan, encoder, notes) = export(g, (encoder, hint), written).await?;
    let sink = encoder
        .finish()
        .with_context(|| format!("writing {}", args.output.display()))?
        .inner;
    let written = sink
        .finish()
        .with_context(|| format!("writing {}", args.output.display()))?;
    let mut m = manifest_of(&args, compression, &written, desc, &plan)?;
    m.indexes = indexes;
    m.warnings.extend(source_notes);
    if let Some(l) = &ledger {
        l.stamp(&mut m)?; // --ledger: site, sequence, previous
    }
    m.charts = charts;
    let (files, volumes) = write_and_commit(&args, &m, written, secret_key.as_ref())?;
    if let Some(l) = ledger {
        // --ledger: recorded only now that the bundle has its name.
        l.record(&m, &m.to_bytes())?;
    }
    if let Some(out) = &args.report {
        let w = crate::transfer_report::Written {
            manifest: &m,
            volumes,
            manifest_path: naming::manifest_path(&args.output),
            signed_by: secret_key.as_ref(),
        };
        write_report(&args, w, out).await?;
    }
    if args.json {
        let out = serde_json::json!({ "manifest": m, "files": files });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        eprint!("{}", report::summary_text(&plan, m.bundle.size, &files));
        eprint!("{}", report::delta_notes(&notes));
    }
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if secret_key.is_none() {
        eprintln!(
            "warning: the manifest is not signed (no --sign-key); partial-load refuses it unless \
             told --allow-unsigned"
        );
    }
    Ok(())
}

/// Checks the flags that depend on each other and the outputs; returns the split size.
/// The flags that need nothing but themselves: compression and its level, `--split`, the
/// output not to be overwritten without `--force`, `-H` against offline inputs.
fn check_flags(args: &SaveArgs) -> Result<(Compression, Option<u64>)> {
    let compression: Compression = args.compression.parse().map_err(|_| {
        anyhow::anyhow!(
            "--compression {:?}: use gzip, zstd or none",
            args.compression
        )
    })?;
    compression
        .check_level(args.level)
        .with_context(|| format!("--level for --compression {compression}"))?;
    let split = match &args.split {
        Some(s) => Some(output::parse_size(s).with_context(|| format!("--split {s:?}"))?),
        None => None,
    };
    if split == Some(0) {
        bail!("--split must be larger than 0");
    }
    if select::offline(args) && args.host.is_some() {
        bail!("-H/--host and --from-archive/--from-oci exclude each other (offline mode needs no daemon)");
    }
    check_output_free(args, split)?;
    Ok((compression, split))
}

/// Something to save, once charts and image lists have added theirs.
fn check_selection(args: &SaveArgs) -> Result<()> {
    if !select::offline(args) && args.images.is_empty() {
        bail!("nothing to save: name images with -i (or give --from-archive or --from-oci)");
    }
    Ok(())
}

/// The bundle's files do not exist yet, unless `--force` (or `--dry-run`, which writes none).
fn check_output_free(args: &SaveArgs, split: Option<u64>) -> Result<()> {
    if args.dry_run && args.report.is_some() {
        bail!("--report describes the bundle written: --dry-run writes none (drop one of them)");
    }
    if !args.dry_run && !args.force {
        let mut paths = vec![
            args.output.clone(),
            naming::manifest_path(&args.output),
            naming::signature_path(&naming::manifest_path(&args.output)),
        ];
        if split.is_some() {
            paths.push(output::part_path(&args.output, 1));
        }
        paths.extend(args.report.clone());
        for p in &paths {
            if p.exists() {
                bail!("{} already exists (use --force to overwrite)", p.display());
            }
        }
    }
    Ok(())
}

/// `--dry-run`: the plan (JSON with `--json`) on stdout, nothing written.
async fn dry_run(g: Gathered, json: bool) -> Result<()> {
    let written = Arc::new(AtomicU64::new(0));
    let sink = (std::io::sink(), codec::StoreHint::default());
    let (plan, _, notes) = export(g, sink, written).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", report::plan_text(&plan));
        print!("{}", report::delta_notes(&notes));
    }
    Ok(())
}

/// `--report FILE`, once the bundle is written: a report that cannot be made says the bundle is
/// there all the same.
async fn write_report(
    args: &SaveArgs,
    w: crate::transfer_report::Written<'_>,
    out: &std::path::Path,
) -> Result<()> {
    crate::transfer_report::write(args, w, out)
        .await
        .with_context(|| {
            format!(
                "the bundle {} is written, but not its report {}",
                args.output.display(),
                out.display()
            )
        })
}

/// Opens the source(s), resolves the images to export and fills the have-set (and opens the
/// send ledger, which feeds it and is held, locked, until the bundle is recorded). `docker://`
/// references are read from their registries; the daemon is connected to only when some `-i`
/// or `-e` image is not one.
async fn gather(args: &SaveArgs) -> Result<(Gathered, Option<ExportLedger>)> {
    let platforms = select::platforms(args).map_err(crate::usage)?;
    let mut have = HaveSet::new();
    select::add_inventories(&args.have, &mut have)?;
    let ledger = ExportLedger::open(args, &mut have)?; // --ledger
    select::add_bases(&args.exclude_archive, &args.exclude_oci, &mut have)?;
    let (reg_images, images) = select::split_registry(&args.images);
    let (reg_excludes, excludes) = select::split_registry(&args.exclude);
    let (registry, reg_refs) =
        open_registries(args, &platforms, &reg_images, &reg_excludes, &mut have).await?;
    let names = Names { images, excludes };
    let g = if select::offline(args) {
        if registry.is_some() {
            bail!(
                "-i docker://… cannot be combined with --from-archive/--from-oci (use -e docker://… \
                 to leave out a registry image's layers)"
            );
        }
        let platform = select::platform(args).map_err(crate::usage)?;
        gather_offline(args, platform, have, &names)?
    } else {
        gather_live(args, have, &names, registry, reg_refs).await?
    };
    Ok((g, ledger))
}

/// The `-i` and `-e` names that are not `docker://` references.
struct Names {
    images: Vec<String>,
    excludes: Vec<String>,
}

/// The offline export: archive files and OCI layouts, their bases resolved in them.
fn gather_offline(
    args: &SaveArgs,
    platform: Platform,
    mut have: HaveSet,
    names: &Names,
) -> Result<Gathered> {
    let sources = select::open_files(args, &platform)?;
    let excluded = select::offline_excludes(&sources, &names.excludes, &mut have)?;
    // Multi-platform indexes of layouts travel whole, as registry ones (`--platform` narrows).
    let sel = Selection {
        platforms: select::platforms(args).map_err(crate::usage)?,
        allow_new_digest: args.allow_new_digest,
        attached: false,
    };
    let picked = crate::layout_indexes::pick(&sources, &names.images, &excluded, &sel)?;
    let wanted = select::offline_wanted(&sources, &names.images, &excluded, &platform, &picked)?;
    // Images of OCI layouts keep their manifests, as registry images do.
    crate::keep_digests::apply(&wanted, &mut have, args.allow_new_digest);
    let alone: Vec<Image> = wanted
        .iter()
        .filter(|i| !picked.images.iter().any(|p| p.id == i.id))
        .cloned()
        .collect();
    let mut notes = picked.notes.clone();
    notes.extend(
        crate::layout_indexes::check(&alone, &names.images, &platform, args.allow_new_digest)
            .map_err(crate::usage)?,
    );
    for n in &notes {
        eprintln!("warning: {n}");
    }
    let mut files: Vec<String> = args
        .from_archive
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    files.extend(args.from_oci.iter().map(|p| p.display().to_string()));
    let references = crate::deltas::offline(args, &sources, &excluded)?;
    Ok(Gathered {
        sources,
        wanted,
        have,
        desc: manifest::Provenance::Archives { files },
        total: plain_size(&args.from_archive, &args.from_oci),
        platform: Some(platform),
        indexes: picked.indexes,
        notes,
        references,
        check_diff_ids: args.check_diff_ids,
    })
}

/// The live export: a daemon (connected to only when some `-i` or `-e` name is not a
/// `docker://` reference) and the registry images, if any.
async fn gather_live(
    args: &SaveArgs,
    mut have: HaveSet,
    names: &Names,
    registry: Option<RegistrySource>,
    reg_refs: Option<RegistrySource>,
) -> Result<Gathered> {
    let pinned = registry.as_ref().map(|r| r.pinned()).unwrap_or_default();
    let mut live = if names.images.is_empty() && names.excludes.is_empty() {
        LiveDaemon::none(pinned)
    } else {
        live_daemon(args, names, &mut have, registry.is_some(), pinned).await?
    };
    let (indexes, notes) = registry
        .as_ref()
        .map(|r| (r.indexes.clone(), r.warnings.clone()))
        .unwrap_or_default();
    if let Some(r) = registry {
        r.images()
            .iter()
            .for_each(|img| select::merge(&mut live.wanted, img.clone()));
        live.sources.push(Box::new(r));
    }
    let mut references = match live.delta_refs {
        Some(r) => Some(r),
        None => crate::deltas::offline(args, &[], &[])?,
    };
    if let (Some(r), Some(src)) = (references.as_mut(), reg_refs) {
        r.add(Box::new(src));
    }
    Ok(Gathered {
        sources: live.sources,
        wanted: live.wanted,
        have,
        desc: live.desc,
        total: live.total,
        platform: None,
        references,
        indexes,
        notes,
        check_diff_ids: args.check_diff_ids,
    })
}

/// What the daemon side of a live export gives.
struct LiveDaemon {
    sources: Vec<Box<dyn Source>>,
    wanted: Vec<Image>,
    desc: manifest::Provenance,
    /// The daemon's estimate of its export, for the progress bar (unknown with registry images).
    total: Option<u64>,
    delta_refs: Option<crate::deltas::ReferenceImages>,
}

impl LiveDaemon {
    /// Registry images only: no daemon at all.
    fn none(references: Vec<String>) -> LiveDaemon {
        LiveDaemon {
            sources: Vec::new(),
            wanted: Vec::new(),
            desc: manifest::Provenance::Registry { references },
            total: None,
            delta_refs: None,
        }
    }
}

/// Connects to the daemon, resolves the `-e` names into `have` and opens the `-i` ones.
async fn live_daemon(
    args: &SaveArgs,
    names: &Names,
    have: &mut HaveSet,
    with_registry: bool,
    references: Vec<String>,
) -> Result<LiveDaemon> {
    let daemon = daemon::connect(args.host.as_deref(), Duration::from_secs(args.timeout))
        .await
        .map_err(crate::daemon_failure)?;
    let info = daemon.info().await.map_err(crate::daemon_failure)?;
    select::live_excludes(&daemon, &names.excludes, have)
        .await
        .map_err(crate::maybe_daemon_failure)?;
    let host = daemon.host.clone();
    let mut live = LiveDaemon::none(Vec::new());
    if !names.images.is_empty() {
        if !with_registry {
            live.total = daemon.export_size(&names.images).await;
        }
        let source = select::open_daemon(daemon.clone(), &names.images, args.idle_timeout).await?;
        live.wanted.extend(source.images().iter().cloned());
        live.sources.push(Box::new(source));
        if args.delta {
            let r = crate::deltas::live(args, &daemon, &live.wanted, &names.excludes, have).await?;
            live.delta_refs = Some(r);
        }
    }
    live.desc = if references.is_empty() {
        manifest::Provenance::Daemon { host, daemon: info }
    } else {
        manifest::Provenance::DaemonAndRegistry {
            host,
            daemon: info,
            references,
        }
    };
    Ok(live)
}

/// Resolves the `-e docker://…` images into `have` and opens the `-i docker://…` ones (if any);
/// with `--delta`, also returns the `-e` registry source (its layers may serve as references).
async fn open_registries(
    args: &SaveArgs,
    platforms: &[Platform],
    images: &[String],
    excludes: &[String],
    have: &mut HaveSet,
) -> Result<(Option<RegistrySource>, Option<RegistrySource>)> {
    if images.is_empty() && excludes.is_empty() {
        return Ok((None, None));
    }
    let opts = select::registry_options(&args.registry, args.idle_timeout)?;
    let mut refs = None;
    if !excludes.is_empty() {
        let sel = Selection::default(); // every platform of an index is the destination's
        let src = select::open_registry(excludes, &opts, &sel, args.idle_timeout, "-e").await?;
        select::registry_excludes(&src, excludes, have)?;
        refs = args.delta.then_some(src);
    }
    if images.is_empty() {
        return Ok((None, refs));
    }
    let sel = Selection {
        platforms: platforms.to_vec(),
        allow_new_digest: args.allow_new_digest,
        attached: !args.no_attached,
    };
    let src = select::open_registry(images, &opts, &sel, args.idle_timeout, "-i").await?;
    crate::keep_digests::apply(src.images(), have, args.allow_new_digest);
    Ok((Some(src), refs))
}

/// An engine error as the binary reports it: a write error is ours (exit 1), the daemon's
/// stream failing is the daemon's (exit 5), a registry that fails or stalls mid-blob is the
/// registry's (exit 5), anything else in an input file or a registry's blobs is bad input (3).
pub(crate) fn classify(e: ArchiveError, label: &str, blame: Blame) -> anyhow::Error {
    let write = matches!(e, ArchiveError::Write(_) | ArchiveError::Spool(_));
    let e = crate::maybe_registry_failure(anyhow::Error::new(e).context(label.to_string()));
    let e = match blame {
        Blame::Daemon => return crate::maybe_daemon_failure(e),
        // A registry blob stream that stalled is a `Stalled` error, as a daemon's.
        Blame::Registry => crate::maybe_daemon_failure(e),
        Blame::Input => e,
    };
    let coded = e.chain().any(|c| c.is::<partial_common::exit::Coded>());
    if write || coded {
        e
    } else {
        crate::bad_input(e)
    }
}

/// Streams every source holding a wanted image through the engine into `out`, on a blocking
/// thread.
async fn export<W: Write + Send + 'static>(
    g: Gathered,
    (out, hint): (W, codec::StoreHint),
    written: Arc<AtomicU64>,
) -> Result<(Plan, W, Vec<DeltaNote>)> {
    let bar = progress::transfer(g.total, "exporting");
    let observer = Observer::new(bar.clone(), written);
    if matches!(
        g.desc,
        manifest::Provenance::Daemon { .. } | manifest::Provenance::DaemonAndRegistry { .. }
    ) {
        bar.wait("the daemon is preparing the export");
    }
    let result = tokio::task::spawn_blocking(move || -> Result<(Plan, W, Vec<DeltaNote>)> {
        let Gathered {
            sources,
            wanted,
            have,
            platform,
            references,
            check_diff_ids,
            ..
        } = g;
        // Whose fault a failure is that no one source explains (the engine's end).
        let blame = sources.iter().map(|s| s.blame()).max();
        let blame = blame.unwrap_or(Blame::Input);
        let live = blame != Blame::Input;
        let coder = match references {
            Some(r) => Some(crate::deltas::coder(r, &sources, &wanted, &have, live)?),
            None => None,
        };
        let mut engine = Engine::new(out, wanted.clone(), have);
        engine.set_observer(Box::new(observer));
        engine.set_store_hint(hint);
        engine.set_diff_check(check_diff_ids);
        engine.set_platform(platform);
        let notes = coder.as_ref().map(|c| c.notes());
        if let Some(c) = coder {
            engine.set_hook(Box::new(c));
        }
        let mut labels = Vec::new();
        let mut streamed = std::collections::HashSet::new();
        for src in &sources {
            // An image two sources hold (a daemon and a registry) is read from the first.
            let mine: Vec<Image> = wanted
                .iter()
                .filter(|w| src.holds(w) && !streamed.contains(&w.id))
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            streamed.extend(mine.iter().map(|w| w.id.clone()));
            let label = src.label();
            src.stream(&mine, &mut engine)
                .map_err(|e| classify(e, &label, src.blame()))?;
            labels.push(label);
        }
        let (plan, w) = engine
            .finish()
            .map_err(|e| classify(e, &labels.join(", "), blame))?;
        let notes = notes
            .map(|n| std::mem::take(&mut *n.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default();
        Ok((plan, w, notes))
    })
    .await
    .context("the export thread failed")?;
    bar.finish_and_clear();
    result
}

/// The manifest of a written bundle.
fn manifest_of(
    args: &SaveArgs,
    compression: Compression,
    written: &output::FinishedOutput,
    desc: manifest::Provenance,
    plan: &Plan,
) -> Result<BundleManifest> {
    let whole = written.whole().clone();
    let volumes: Vec<FileEntry> = written
        .parts()
        .iter()
        .map(|(path, d)| {
            Ok(FileEntry {
                name: file_name(path)?,
                size: d.size,
                sha256: d.sha256.clone(),
                blake3: d.blake3.clone(),
            })
        })
        .collect::<Result<_>>()?;
    let bundle = manifest::Bundle {
        name: file_name(&args.output)?,
        compression,
        layout: plan.layout,
        size: whole.size,
        sha256: whole.sha256.clone(),
        blake3: whole.blake3.clone(),
        tar_size: plan.output_tar_bytes,
        volumes,
    };
    Ok(BundleManifest::new(
        crate::tool_info::tool(),
        desc,
        bundle,
        plan,
    ))
}

/// Writes the manifest and its signature under temporary names, then gives every file its name:
/// the bundle first and the signature last, so a signature never vouches for a missing file.
/// Returns the files written, and the bundle's volumes among them.
fn write_and_commit(
    args: &SaveArgs,
    m: &BundleManifest,
    written: output::FinishedOutput,
    secret_key: Option<&partial_common::sign::SecretKey>,
) -> Result<(Vec<String>, Vec<PathBuf>)> {
    let manifest_path = naming::manifest_path(&args.output);
    let sig_path = naming::signature_path(&manifest_path);
    let bytes = m.to_bytes();
    let mut mfile = output::AtomicFile::create(&manifest_path)
        .with_context(|| format!("creating {}", manifest_path.display()))?;
    mfile
        .write_all(&bytes)
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    let mut sfile = None;
    if let Some(sk) = secret_key {
        let sig = partial_common::sign::sign_bytes(sk, &bytes, &m.trusted_comment())
            .context("signing the manifest")?;
        let mut f = output::AtomicFile::create(&sig_path)
            .with_context(|| format!("creating {}", sig_path.display()))?;
        f.write_all(sig.as_bytes())
            .with_context(|| format!("writing {}", sig_path.display()))?;
        sfile = Some(f);
    }
    let part_names: Vec<PathBuf> = written
        .commit()
        .with_context(|| format!("renaming {}", args.output.display()))?
        .parts
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    mfile
        .commit()
        .with_context(|| format!("renaming {}", manifest_path.display()))?;
    if let Some(f) = sfile {
        f.commit()
            .with_context(|| format!("renaming {}", sig_path.display()))?;
    } else if sig_path.exists() && args.force {
        // An old signature beside a new manifest would be a lie.
        std::fs::remove_file(&sig_path)
            .with_context(|| format!("removing stale {}", sig_path.display()))?;
    }
    let mut files: Vec<String> = part_names.iter().map(|p| p.display().to_string()).collect();
    files.push(manifest_path.display().to_string());
    if secret_key.is_some() {
        files.push(sig_path.display().to_string());
    }
    Ok((files, part_names))
}

/// The bytes an offline export reads: the sum of the archive files' sizes when every input is an
/// uncompressed archive file; unknown otherwise (compressed files, OCI layout directories).
fn plain_size(archives: &[PathBuf], oci_dirs: &[PathBuf]) -> Option<u64> {
    if !oci_dirs.is_empty() {
        return None;
    }
    let mut total = 0;
    for path in archives {
        let mut f = std::fs::File::open(path).ok()?;
        let (c, _) = codec::sniff(&mut f).ok()?;
        if c != Compression::None {
            return None;
        }
        total += f.metadata().ok()?.len();
    }
    Some(total)
}

fn file_name(p: &Path) -> Result<String> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no usable file name", p.display()))
}
