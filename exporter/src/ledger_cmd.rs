//! The send ledger on the exporter's side: `partial-save ledger show|forget`, and an export's hold
//! on `--ledger SITE.json` — opened under its lock for the whole export, fed into the have-set
//! (unless an inventory says better), stamped into the manifest, and updated only once the bundle
//! has its final name.

use crate::cli::{ForgetArgs, LedgerCommand, SaveArgs, ShowArgs};
use anyhow::{Context, Result};
use partial_common::have::HaveSet;
use partial_common::ledger::{Ledger, LedgerError, LedgerLock};
use partial_common::manifest::BundleManifest;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub fn run(cmd: &LedgerCommand) -> Result<()> {
    match cmd {
        LedgerCommand::Show(a) => show(a),
        LedgerCommand::Forget(a) => forget(a),
    }
}

/// A ledger that does not parse or is over its size cap is bad input (exit 3); one that cannot be
/// read or written is not.
fn ledger_err(e: LedgerError) -> anyhow::Error {
    match e {
        LedgerError::Schema(_)
        | LedgerError::Inconsistent { .. }
        | LedgerError::TooLarge(_)
        | LedgerError::Exhausted { .. } => crate::bad_input(anyhow::Error::new(e)),
        other => anyhow::Error::new(other),
    }
}

fn read_existing(path: &Path) -> Result<Ledger> {
    Ledger::read(path)
        .map_err(ledger_err)?
        .with_context(|| format!("ledger {} does not exist", path.display()))
}

fn show(args: &ShowArgs) -> Result<()> {
    let ledger = read_existing(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&ledger)?);
    } else {
        print!("{}", show_text(&ledger, &args.file.display().to_string()));
    }
    Ok(())
}

/// The ledger for people: the site, then one line per bundle.
fn show_text(l: &Ledger, file: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "ledger {file}: site {} (ID {}), started {}, {} bundle(s), {}",
        l.site.name,
        l.site.id,
        l.created,
        l.bundles.len(),
        match l.next_sequence() {
            Ok(n) => format!("next is bundle {n}"),
            Err(_) => "no bundle can follow (the last sequence number is used)".to_string(),
        }
    );
    for b in &l.bundles {
        let images: Vec<String> = b
            .images
            .iter()
            .map(|i| {
                if i.tags.is_empty() {
                    i.id.short().to_string()
                } else {
                    i.tags.join(", ")
                }
            })
            .collect();
        let _ = write!(
            s,
            "  bundle {:>3}  {}  {}  {}  {}",
            b.sequence,
            b.created,
            b.name,
            b.sha256.short(),
            images.join("; ")
        );
        match &b.forgotten {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "  FORGOTTEN {t} (lost in transit; not assumed at the site)"
                );
            }
            None => s.push('\n'),
        }
    }
    s
}

fn forget(args: &ForgetArgs) -> Result<()> {
    let label = args.file.display().to_string();
    let _lock = LedgerLock::acquire(&args.file, || waiting(&args.file)).map_err(ledger_err)?;
    let mut ledger = read_existing(&args.file)?;
    if ledger.forget(args.bundle, &label).map_err(ledger_err)? {
        ledger.write(&args.file).map_err(ledger_err)?;
        eprintln!(
            "bundle {} of {} forgotten: its layers are no longer assumed at the site; the next \
             export carries them again",
            args.bundle, ledger.site.name
        );
    } else {
        eprintln!(
            "bundle {} of {} was already forgotten",
            args.bundle, ledger.site.name
        );
    }
    Ok(())
}

fn waiting(path: &Path) {
    eprintln!(
        "waiting for ledger {}: another partial-save holds its lock ({})",
        path.display(),
        partial_common::ledger::lock_path(path).display()
    );
}

/// An export's hold on its ledger, from before the export (lock, have-set) to after it (record).
pub struct ExportLedger {
    path: PathBuf,
    ledger: Ledger,
    warnings: Vec<String>,
    /// Held for the whole export; `None` for a dry run, which records nothing.
    _lock: Option<LedgerLock>,
}

impl ExportLedger {
    /// Opens `--ledger` when given: locks it (waiting for another export that holds it), reads it
    /// (a new ledger when the file is missing) and adds what it records as delivered to `have` —
    /// unless inventories (`--have`) were given: they win, and what the ledger believes sent but
    /// they lack is reported on stderr (and later in the manifest), not relied on.
    pub fn open(args: &SaveArgs, have: &mut HaveSet) -> Result<Option<Self>> {
        let Some(path) = &args.ledger else {
            return Ok(None);
        };
        let lock = if args.dry_run {
            None
        } else {
            Some(LedgerLock::acquire(path, || waiting(path)).map_err(ledger_err)?)
        };
        let ledger = Ledger::read_or_new(path, crate::tool_info::tool())
            .map_err(ledger_err)
            .with_context(|| format!("--ledger {}", path.display()))?;
        // Refused before the export, not after: the bundle could never be numbered.
        ledger
            .next_sequence()
            .map_err(ledger_err)
            .with_context(|| format!("--ledger {}", path.display()))?;
        let label = path.display().to_string();
        let warnings = if args.have.is_empty() {
            ledger.add_to(have, &label);
            Vec::new()
        } else {
            ledger.unconfirmed(have, &label)
        };
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        Ok(Some(ExportLedger {
            path: path.clone(),
            ledger,
            warnings,
            _lock: lock,
        }))
    }

    /// Gives the manifest the site, its sequence number and the previous manifest's hash, and the
    /// ledger's warnings.
    pub fn stamp(&self, m: &mut BundleManifest) -> Result<()> {
        self.ledger
            .stamp(m)
            .map_err(ledger_err)
            .with_context(|| format!("--ledger {}", self.path.display()))?;
        m.warnings.extend(self.warnings.iter().cloned());
        Ok(())
    }

    /// Records the bundle (whose manifest's exact bytes are `manifest_bytes`) once it has its
    /// final name, and releases the lock.
    pub fn record(mut self, m: &BundleManifest, manifest_bytes: &[u8]) -> Result<()> {
        let n = self
            .ledger
            .record(m, manifest_bytes, crate::tool_info::tool())
            .map_err(ledger_err)
            .with_context(|| format!("--ledger {}", self.path.display()))?;
        self.ledger
            .write(&self.path)
            .map_err(ledger_err)
            .with_context(|| {
                format!(
                    "bundle {} ({}) was written, but ledger {} could not be updated: do not \
                     send this bundle (the next one would get the same number); fix the ledger's \
                     folder and export again",
                    n,
                    m.bundle.name,
                    self.path.display()
                )
            })?;
        eprintln!(
            "recorded bundle {n} of site {} in {}",
            self.ledger.site.name,
            self.path.display()
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::manifest::ToolInfo;

    #[test]
    fn an_oversized_ledger_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.json");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(partial_common::limits::LEDGER + 1)
            .unwrap();
        let e = read_existing(&path).unwrap_err();
        assert_eq!(
            partial_common::exit::code_of(e.chain()),
            partial_common::exit::VERIFY,
            "{e:#}"
        );
        let text = format!("{e:#}");
        assert!(text.contains("limit of 256 MiB"), "{text}");
    }

    /// A ledger of site `s` whose last bundle has sequence number `last`.
    fn ledger_at(path: &Path, last: u64) {
        let mut l = Ledger::new(path, crate::tool_info::tool());
        l.bundles.push(partial_common::ledger::SentBundle {
            sequence: last,
            created: "2026-11-27T10:00:00Z".into(),
            name: "b.tgz".into(),
            sha256: partial_common::Digest::of_bytes(b"b"),
            manifest_sha256: partial_common::Digest::of_bytes(b"m"),
            images: vec![],
            forgotten: None,
        });
        l.write(path).unwrap();
    }

    #[test]
    fn an_export_on_a_ledger_at_the_last_sequence_number_is_refused() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.json");
        ledger_at(&path, u64::MAX);
        let cli = crate::cli::Cli::try_parse_from([
            "partial-save".as_ref(),
            "-i".as_ref(),
            "x:1".as_ref(),
            "-o".as_ref(),
            dir.path().join("o.tgz").as_os_str(),
            "--ledger".as_ref(),
            path.as_os_str(),
        ])
        .unwrap();
        let e = ExportLedger::open(&cli.save, &mut HaveSet::new())
            .err()
            .expect("a ledger at sequence 2^64-1 must be refused");
        assert_eq!(
            partial_common::exit::code_of(e.chain()),
            partial_common::exit::VERIFY,
            "{e:#}"
        );
        let text = format!("{e:#}");
        assert!(
            text.contains("site.json") && text.contains(&u64::MAX.to_string()),
            "{text}"
        );
        let shown = show_text(&read_existing(&path).unwrap(), "site.json");
        assert!(shown.contains("no bundle can follow"), "{shown}");
        // One below the last number still exports, as bundle 2^64-1.
        ledger_at(&path, u64::MAX - 1);
        let l = ExportLedger::open(&cli.save, &mut HaveSet::new()).unwrap();
        assert!(l.is_some());
    }

    #[test]
    fn show_lists_each_bundle_and_marks_forgotten_ones() {
        let mut l = Ledger::new(
            Path::new("site-a.json"),
            ToolInfo {
                name: "partial-save".into(),
                version: "0".into(),
            },
        );
        let img = partial_common::daemon::ImageMeta::new(
            partial_common::Digest::of_bytes(b"cfg"),
            vec!["app:1".into()],
            vec![partial_common::Digest::of_bytes(b"a")],
        );
        for n in 1..=2 {
            l.bundles.push(partial_common::ledger::SentBundle {
                sequence: n,
                created: "2026-11-27T10:00:00Z".into(),
                name: format!("b{n}.tgz"),
                sha256: partial_common::Digest::of_bytes(&[n as u8]),
                manifest_sha256: partial_common::Digest::of_bytes(b"m"),
                images: vec![img.clone()],
                forgotten: None,
            });
        }
        l.forget(2, "site-a.json").unwrap();
        let text = show_text(&l, "site-a.json");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("site site-a"), "{text}");
        assert!(lines[0].contains("next is bundle 3"), "{text}");
        assert!(
            lines[1].contains("b1.tgz") && lines[1].contains("app:1"),
            "{text}"
        );
        assert!(!lines[1].contains("FORGOTTEN"), "{text}");
        assert!(lines[2].contains("FORGOTTEN"), "{text}");
    }
}
