//! The export itself: gather what to save and what the destination has, stream the archive
//! (from the daemon, or from archive files) through the filter, compress, write the bundle
//! atomically (optionally in volumes), then write and sign the manifest.

use crate::cli::SaveArgs;
use crate::report;
use crate::select::{self, InputArchive};
use anyhow::{bail, Context, Result};
use partial_common::archive::{Filter, FilterObserver, SourceImage};
use partial_common::codec::{self, Compression};
use partial_common::daemon::{self, Daemon};
use partial_common::have::HaveSet;
use partial_common::manifest::{self, BundleManifest, FileEntry, Source, ToolInfo};
use partial_common::output;
use partial_common::plan::Plan;
use partial_common::progress;
use partial_common::stream::ChannelReader;
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where the images come from.
enum Input {
    Live { daemon: Daemon, names: Vec<String> },
    Files(Vec<InputArchive>),
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

impl FilterObserver for Observer {
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
struct Counting<W> {
    inner: W,
    written: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub fn tool() -> ToolInfo {
    ToolInfo {
        name: "partial-save".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

pub async fn run(args: SaveArgs) -> Result<()> {
    let compression: Compression = args.compression.parse().map_err(|_| {
        anyhow::anyhow!(
            "--compression {:?}: use gzip, zstd or none",
            args.compression
        )
    })?;
    let split = match &args.split {
        Some(s) => Some(output::parse_size(s).with_context(|| format!("--split {s:?}"))?),
        None => None,
    };
    if split == Some(0) {
        bail!("--split must be larger than 0");
    }
    if args.from_archive.is_empty() && args.images.is_empty() {
        bail!("nothing to save: name images with -i (or give --from-archive)");
    }
    if !args.from_archive.is_empty() && args.host.is_some() {
        bail!("-H/--host and --from-archive exclude each other (offline mode needs no daemon)");
    }
    if !args.exclude_archive.is_empty() && args.from_archive.is_empty() {
        bail!("--exclude-archive needs --from-archive (use -e or --have with a live daemon)");
    }
    let manifest_path = sidecar(&args.output, ".manifest.json");
    let sig_path = sidecar(&args.output, ".manifest.json.minisig");
    if !args.dry_run && !args.force {
        for p in [&args.output, &manifest_path, &sig_path] {
            if p.exists() {
                bail!("{} already exists (use --force to overwrite)", p.display());
            }
        }
        if split.is_some() {
            let first = output::part_path(&args.output, 1);
            if first.exists() {
                bail!(
                    "{} already exists (use --force to overwrite)",
                    first.display()
                );
            }
        }
    }
    // Open the signing key before the export, so a wrong password fails now, not in an hour.
    let secret_key = match &args.sign_key {
        Some(path) => Some(
            crate::keygen::open_secret_key(path)
                .with_context(|| format!("--sign-key {}", path.display()))?,
        ),
        None => None,
    };

    let mut have = HaveSet::new();
    select::add_inventories(&args.have, &mut have)?;

    let (input, sources, source_desc) = if args.from_archive.is_empty() {
        let daemon = daemon::connect(args.host.as_deref(), Duration::from_secs(args.timeout))
            .await
            .map_err(crate::daemon_failure)?;
        let info = daemon.info().await.map_err(crate::daemon_failure)?;
        let sources = select::live_sources(&daemon, &args.images)
            .await
            .map_err(crate::maybe_daemon_failure)?;
        select::live_excludes(&daemon, &args.exclude, &mut have)
            .await
            .map_err(crate::maybe_daemon_failure)?;
        let desc = Source::Daemon {
            host: daemon.host.clone(),
            daemon: info,
        };
        (
            Input::Live {
                daemon,
                names: args.images.clone(),
            },
            sources,
            desc,
        )
    } else {
        let mut inputs = Vec::new();
        for path in &args.from_archive {
            let index = select::scan_file(path).map_err(crate::bad_input)?;
            inputs.push(InputArchive {
                path: path.clone(),
                index,
            });
        }
        let sources = select::offline_selection(
            &inputs,
            &args.images,
            &args.exclude,
            &args.exclude_archive,
            &mut have,
        )?;
        let desc = Source::Archives {
            files: args
                .from_archive
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        };
        (Input::Files(inputs), sources, desc)
    };

    if args.dry_run {
        let written = Arc::new(AtomicU64::new(0));
        let (plan, _) = filter(
            input,
            sources,
            have,
            std::io::sink(),
            args.idle_timeout,
            written,
        )
        .await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{}", report::plan_text(&plan));
        }
        return Ok(());
    }

    let sink = output::AtomicOutput::create(&args.output, split)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let written = Arc::new(AtomicU64::new(0));
    let sink = Counting {
        inner: sink,
        written: Arc::clone(&written),
    };
    let encoder = codec::compress(sink, compression, args.level)
        .with_context(|| format!("starting {compression} compression"))?;
    let (plan, encoder) = filter(input, sources, have, encoder, args.idle_timeout, written).await?;
    let sink = encoder
        .finish()
        .with_context(|| format!("writing {}", args.output.display()))?
        .inner;
    let written = sink
        .finish()
        .with_context(|| format!("writing {}", args.output.display()))?;
    let whole = written.whole().clone();

    let bundle_name = file_name(&args.output)?;
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
        name: bundle_name,
        compression: compression.to_string(),
        layout: plan.layout,
        size: whole.size,
        sha256: whole.sha256.clone(),
        blake3: whole.blake3.clone(),
        tar_size: plan.output_tar_bytes,
        volumes,
    };
    let m = BundleManifest::new(tool(), source_desc, bundle, &plan);
    let bytes = m.to_bytes();
    let mut mfile = output::AtomicFile::create(&manifest_path)
        .with_context(|| format!("creating {}", manifest_path.display()))?;
    mfile
        .write_all(&bytes)
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    let mut sfile = None;
    if let Some(sk) = &secret_key {
        let sig = partial_common::sign::sign_bytes(sk, &bytes, &m.trusted_comment())
            .context("signing the manifest")?;
        let mut f = output::AtomicFile::create(&sig_path)
            .with_context(|| format!("creating {}", sig_path.display()))?;
        f.write_all(sig.as_bytes())
            .with_context(|| format!("writing {}", sig_path.display()))?;
        sfile = Some(f);
    }
    // Everything is written and flushed under temporary names; now give them their names, the
    // bundle first and the signature last, so a signature never vouches for a missing file.
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
    if args.json {
        let out = serde_json::json!({ "manifest": m, "files": files });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        eprint!("{}", report::summary_text(&plan, m.bundle.size, &files));
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

/// Streams the input through the filter into `out` on a blocking thread.
async fn filter<W: Write + Send + 'static>(
    input: Input,
    sources: Vec<SourceImage>,
    have: HaveSet,
    out: W,
    idle_timeout: u64,
    written: Arc<AtomicU64>,
) -> Result<(Plan, W)> {
    let total = match &input {
        Input::Live { daemon, names } => daemon.export_size(names).await,
        Input::Files(inputs) => plain_size(inputs),
    };
    let bar = progress::transfer(total, "exporting");
    let observer = Observer::new(bar.clone(), written);
    let result = match input {
        Input::Live { daemon, names } => {
            bar.wait("the daemon is preparing the export");
            let stream = daemon.export(&names);
            let reader = ChannelReader::spawn(stream, Duration::from_secs(idle_timeout));
            let label = format!("export of {} from {}", names.join(", "), daemon.host);
            tokio::task::spawn_blocking(move || -> Result<(Plan, W)> {
                let mut f = Filter::new(out, sources, have);
                f.set_observer(Box::new(observer));
                f.add_input(reader, &label, None)
                    .with_context(|| label.clone())?;
                f.finish().with_context(|| label.clone())
            })
            .await
            .context("the filter thread failed")?
            // The daemon dying or hanging mid-export is a daemon failure (exit 5).
            .map_err(crate::maybe_daemon_failure)
        }
        Input::Files(inputs) => tokio::task::spawn_blocking(move || -> Result<(Plan, W)> {
            let mut f = Filter::new(out, sources, have);
            f.set_observer(Box::new(observer));
            for a in &inputs {
                let label = a.path.display().to_string();
                let r = select::open_archive(&a.path)?;
                f.add_input(r, &label, Some(&a.index))
                    .with_context(|| format!("archive {label}"))
                    .map_err(crate::bad_input)?;
            }
            Ok(f.finish()?)
        })
        .await
        .context("the filter thread failed")?,
    };
    bar.finish_and_clear();
    result
}

/// The bytes the filter will read from `inputs` when they are all uncompressed tar files (their
/// sizes), for the progress bar; `None` when one is compressed (its tar size is unknown).
fn plain_size(inputs: &[InputArchive]) -> Option<u64> {
    let mut total = 0;
    for a in inputs {
        let mut f = std::fs::File::open(&a.path).ok()?;
        let (c, _) = codec::sniff(&mut f).ok()?;
        if c != Compression::None {
            return None;
        }
        total += f.metadata().ok()?.len();
    }
    Some(total)
}

/// `OUT` + suffix, e.g. `app.tgz.manifest.json`.
pub fn sidecar(out: &Path, suffix: &str) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn file_name(p: &Path) -> Result<String> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no usable file name", p.display()))
}
