//! Rollback protection for bundle series (`partial-save --ledger`): the state file remembers, per
//! signing key and site, the last bundle loaded (its sequence number, manifest hash and time).
//! A bundle that is not newer is refused (exit 3) unless `--allow-rollback`; one that does not
//! chain to the last (its `previous` is another manifest) too; a gap is reported by number, and
//! when a base layer the bundle needs was delivered by a bundle of the gap, the base check's
//! error (exit 4) names that bundle. `verify` only reads the state. `load` and `push`, before
//! they send anything, create the state's folder (mode 0700) when missing, take its lock, check
//! that the folder is writable, and hold the lock until the state is updated — atomically, after
//! a successful load and before it is reported: a run that cannot record its bundle loads
//! nothing. Bundles without a sequence are not tracked.
//!
//! State file schema `partial-load/state`, version 1.

use crate::bundle::Bundle;
use crate::cli::SequenceArgs;
use crate::errors::verify_failed;
use anyhow::{Context, Result};
use partial_common::digest::Digest;
use partial_common::have::Origin;
use partial_common::ledger::LedgerLock;
use partial_common::limits;
use partial_common::manifest::{now_rfc3339, BundleManifest, Site};
use partial_common::output::{AtomicFile, OutputError};
use partial_common::text::escape;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "partial-load/state";
pub const VERSION: u32 = 1;

/// The key ID recorded for bundles loaded with `--allow-unsigned` and no checked signature.
const UNSIGNED: &str = "unsigned";

/// The last bundle loaded from one site, signed with one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesState {
    /// The minisign key ID that signed it (`unsigned` when no signature was checked).
    pub key_id: String,
    pub site: Site,
    pub sequence: u64,
    pub manifest_sha256: Digest,
    /// The bundle's name.
    pub bundle: String,
    /// When it was loaded (RFC 3339, UTC).
    pub loaded: String,
}

/// The whole state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub schema: String,
    pub version: u32,
    pub series: Vec<SeriesState>,
}

impl Default for State {
    fn default() -> Self {
        State {
            schema: SCHEMA.to_string(),
            version: VERSION,
            series: Vec::new(),
        }
    }
}

impl State {
    pub fn parse(bytes: &[u8], file: &str) -> Result<Self> {
        Ok(partial_common::schema::parse(bytes, file, SCHEMA, VERSION)?)
    }

    /// Reads the state at `path` (at most [`limits::STATE`] bytes; a larger one is refused
    /// with exit 3); empty when there is no file yet.
    pub fn read(path: &Path) -> Result<Self> {
        match limits::read_capped(path, limits::STATE, "state file") {
            Ok(bytes) => Self::parse(&bytes, &path.display().to_string()),
            Err(e) if e.is_not_found() => Ok(State::default()),
            Err(e) => {
                let code = e.exit_code();
                Err(anyhow::Error::new(partial_common::exit::Coded::new(
                    code, e,
                )))
            }
        }
    }

    /// Writes the state to `path` atomically, creating its folder.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the folder of {}", path.display()))?;
        }
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        let mut f = AtomicFile::create(path)?;
        f.write_all(&bytes)
            .map_err(|e| OutputError::write(path, e))?;
        f.commit()?;
        Ok(())
    }

    pub fn find(&self, key_id: &str, site_id: &str) -> Option<&SeriesState> {
        self.series
            .iter()
            .find(|s| s.key_id == key_id && s.site.id == site_id)
    }

    /// Records `entry` unless the state already holds the same or a newer bundle of its series.
    /// Returns whether it did.
    pub fn advance(&mut self, entry: SeriesState) -> bool {
        match self
            .series
            .iter_mut()
            .find(|s| s.key_id == entry.key_id && s.site.id == entry.site.id)
        {
            Some(s) if s.sequence >= entry.sequence => false,
            Some(s) => {
                *s = entry;
                true
            }
            None => {
                self.series.push(entry);
                true
            }
        }
    }
}

/// The default state file: /var/lib/partial-load/state.json as root, else under
/// `$XDG_STATE_HOME` or `~/.local/state`.
pub fn default_path() -> Result<PathBuf> {
    default_path_of(
        rustix::process::geteuid().is_root(),
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
}

/// [`default_path`] for a user who is root or not, with these `XDG_STATE_HOME` and `HOME`.
fn default_path_of(
    root: bool,
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<PathBuf> {
    if root {
        return Ok(PathBuf::from("/var/lib/partial-load/state.json"));
    }
    let base = match xdg_state_home.filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = home
                .filter(|v| !v.is_empty())
                .context("neither XDG_STATE_HOME nor HOME is set: give --state FILE")?;
            PathBuf::from(home).join(".local/state")
        }
    };
    Ok(base.join("partial-load/state.json"))
}

/// Makes the state file at `path` ready for an update, before anything is loaded: creates its
/// folder (mode 0700, as any missing parent) when missing, takes its lock (waiting for another
/// `partial-load` that holds it) and checks that a file can be created in the folder. The lock
/// is held until the returned value is dropped.
fn hold(path: &Path) -> Result<LedgerLock> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| {
            format!(
                "creating the folder of state file {} (nothing was loaded)",
                path.display()
            )
        })?;
    let lock = LedgerLock::acquire(path, || {
        eprintln!(
            "waiting for state file {}: another partial-load holds its lock",
            path.display()
        )
    })
    .with_context(|| format!("locking state file {} (nothing was loaded)", path.display()))?;
    // Removed as soon as it is dropped: it only shows that the state can be written here.
    tempfile::Builder::new()
        .prefix(".partial-load-state-check-")
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "state file {} cannot be written: its folder is not writable (nothing was \
                 loaded)",
                path.display()
            )
        })?;
    Ok(lock)
}

/// Where a bundle stands in its series against the last one loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// No bundle of this site (and key) was loaded here before.
    First,
    /// The next one after the last loaded.
    Next,
    /// Bundles `from..=to` never arrived.
    Gap { from: u64, to: u64 },
    /// Not newer than the last loaded.
    Older,
    /// The next number, but its `previous` is not the last loaded manifest.
    Fork,
}

/// Judges `sequence` (with its `previous` hash) against `last`.
pub fn standing(last: Option<&SeriesState>, sequence: u64, previous: Option<&Digest>) -> Standing {
    let Some(last) = last else {
        return Standing::First;
    };
    if sequence <= last.sequence {
        return Standing::Older;
    }
    if sequence > last.sequence + 1 {
        return Standing::Gap {
            from: last.sequence + 1,
            to: sequence - 1,
        };
    }
    if previous == Some(&last.manifest_sha256) {
        Standing::Next
    } else {
        Standing::Fork
    }
}

/// "bundle 2" or "bundles 2–4".
fn bundles(from: u64, to: u64) -> String {
    if from == to {
        format!("bundle {from}")
    } else {
        format!("bundles {from}–{to}")
    }
}

/// One bundle's place in its series, from [`check`]: what to tell the base check, and what to
/// record after the load. Empty for a bundle that belongs to no series.
#[derive(Debug, Default)]
pub struct Series(Option<Tracked>);

#[derive(Debug)]
struct Tracked {
    /// The state file's lock, held from before the load until the state is updated (`load` and
    /// `push`); `None` for `verify`.
    lock: Option<LedgerLock>,
    state_path: PathBuf,
    entry: SeriesState,
    /// Missing bundles of the gap that delivered base layers this bundle needs.
    gap_needed: Vec<u64>,
    last: Option<SeriesState>,
}

/// Checks the bundle's sequence against the state file: refuses (exit 3) a bundle that is not
/// newer than the last one loaded from its site with the same key, or does not chain to it,
/// unless `--allow-rollback`; reports a gap on stderr. Reads the state only (`verify`).
pub fn check(args: &SequenceArgs, bundle: &Bundle) -> Result<Series> {
    check_series(args, bundle, false)
}

/// [`check`] for a run that records the bundle (`load`, `push`): before the check, makes the
/// state's folder, takes the state's lock and checks that the state can be written; the lock is
/// held until [`Series::record`]. Called before anything is loaded, so that a run that could not
/// record its bundle loads nothing.
pub fn check_for_update(args: &SequenceArgs, bundle: &Bundle) -> Result<Series> {
    check_series(args, bundle, true)
}

fn check_series(args: &SequenceArgs, bundle: &Bundle, update: bool) -> Result<Series> {
    let m = &bundle.manifest;
    let (Some(site), Some(sequence)) = (&m.site, m.sequence) else {
        return Ok(Series(None));
    };
    let state_path = match &args.state {
        Some(p) => p.clone(),
        None => default_path()?,
    };
    let lock = if update {
        Some(hold(&state_path)?)
    } else {
        None
    };
    let state = State::read(&state_path)?;
    let key_id = bundle
        .signature
        .as_ref()
        .map_or(UNSIGNED, |s| s.key_id.as_str());
    let last = state.find(key_id, &site.id).cloned();
    let standing = standing(last.as_ref(), sequence, m.previous.as_ref());
    let gap_needed = judge(args, bundle, &standing, last.as_ref(), &state_path)?;
    Ok(Series(Some(Tracked {
        lock,
        state_path,
        entry: SeriesState {
            key_id: key_id.to_string(),
            site: site.clone(),
            sequence,
            manifest_sha256: bundle.manifest_sha256.clone(),
            bundle: m.bundle.name.clone(),
            loaded: String::new(),
        },
        gap_needed,
        last,
    })))
}

/// Refuses (unless `--allow-rollback`) a bundle that is older than or forks from the last one
/// loaded; warns of a gap and returns what the bundles of the gap would have delivered.
fn judge(
    args: &SequenceArgs,
    bundle: &Bundle,
    standing: &Standing,
    last: Option<&SeriesState>,
    state_path: &Path,
) -> Result<Vec<u64>> {
    let m = &bundle.manifest;
    let (Some(site), Some(sequence), Some(l)) = (&m.site, m.sequence, last) else {
        return Ok(Vec::new());
    };
    // The site's name comes from the manifest, the load times from the state file: escaped.
    let name = escape(&site.name);
    match standing {
        Standing::Older => {
            let what = older_message(l, sequence, &name, &bundle.manifest_sha256);
            refuse_unless(args.allow_rollback, what, state_path)?;
        }
        Standing::Fork => {
            let what = format!(
                "bundle {sequence} of {name} does not follow bundle {}, loaded on {}: it names \
                 {} as the previous manifest, bundle {}'s was {}",
                l.sequence,
                l.loaded,
                m.previous
                    .as_ref()
                    .map_or_else(|| "none".to_string(), Digest::to_string),
                l.sequence,
                l.manifest_sha256
            );
            refuse_unless(args.allow_rollback, what, state_path)?;
        }
        Standing::Gap { from, to } => {
            eprintln!(
                "warning: {} of {name} never arrived here: this is bundle {sequence}, the last \
                 loaded is bundle {}, on {}",
                bundles(*from, *to),
                l.sequence,
                escape(&l.loaded)
            );
            return Ok(delivered_by(m, *from, *to));
        }
        Standing::First | Standing::Next => {}
    }
    Ok(Vec::new())
}

/// Why bundle `sequence` is not newer than `l`, the last loaded.
fn older_message(l: &SeriesState, sequence: u64, name: &str, manifest_sha256: &Digest) -> String {
    if l.sequence == sequence && l.manifest_sha256 == *manifest_sha256 {
        format!(
            "bundle {sequence} of {name} was already loaded on {}",
            l.loaded
        )
    } else if l.sequence == sequence {
        format!(
            "bundle {sequence} of {name} is not newer than bundle {}, loaded on {} \
             (and its manifest differs)",
            l.sequence, l.loaded
        )
    } else {
        format!(
            "bundle {sequence} of {name} is older than bundle {}, loaded on {}",
            l.sequence, l.loaded
        )
    }
}

fn refuse_unless(allowed: bool, what: String, state_path: &Path) -> Result<()> {
    if allowed {
        eprintln!(
            "warning: {}; loading it anyway (--allow-rollback)",
            escape(&what)
        );
        Ok(())
    } else {
        Err(verify_failed(format!(
            "{what}; refusing a rollback (state {}; --allow-rollback accepts it)",
            state_path.display()
        )))
    }
}

/// The bundles in `from..=to` that the manifest's required base says delivered a layer.
fn delivered_by(m: &BundleManifest, from: u64, to: u64) -> Vec<u64> {
    let set: BTreeSet<u64> = m
        .required_base
        .iter()
        .filter_map(|r| match &r.origin {
            Origin::Ledger { bundle, .. } if (from..=to).contains(bundle) => Some(*bundle),
            _ => None,
        })
        .collect();
    set.into_iter().collect()
}

impl Series {
    /// Adds to a failed base check (exit 4) which missing bundle of the gap delivered the layers
    /// it needs; other errors pass unchanged.
    pub fn explain(&self, e: anyhow::Error) -> anyhow::Error {
        let Some(t) = &self.0 else { return e };
        let needs_base =
            partial_common::exit::code_of(e.chain()) == partial_common::exit::BASE_MISSING;
        if !needs_base || t.gap_needed.is_empty() {
            return e;
        }
        let missing: Vec<String> = t.gap_needed.iter().map(u64::to_string).collect();
        let last = t.last.as_ref().map_or_else(String::new, |l| {
            format!(" (the last loaded is bundle {})", l.sequence)
        });
        let word = if missing.len() == 1 {
            "bundle"
        } else {
            "bundles"
        };
        e.context(format!(
            "bundle {} of {} needs base layers that came in {word} {}, which never arrived \
             here{last}: load {word} {} first",
            t.entry.sequence,
            t.entry.site.name,
            missing.join(", "),
            missing.join(", then ")
        ))
    }

    /// After a successful load, before it is reported: records the bundle as the last of its
    /// series (unless a newer one is recorded already), atomically, under the state file's lock
    /// (held since [`check_for_update`], else taken now), and releases the lock.
    pub fn record(self) -> Result<()> {
        let Some(t) = self.0 else { return Ok(()) };
        let path = &t.state_path;
        let _lock = match t.lock {
            Some(lock) => lock,
            None => hold(path)?,
        };
        let mut state = State::read(path)?;
        let mut entry = t.entry.clone();
        entry.loaded = now_rfc3339();
        let name = escape(&entry.site.name).into_owned();
        let n = entry.sequence;
        if state.advance(entry) {
            state.write(path).with_context(|| {
                format!(
                    "recording bundle {n} of {name} in {} (its images were loaded, but until it \
                     is recorded an older bundle of {name} is not refused)",
                    path.display()
                )
            })?;
            eprintln!("recorded bundle {n} of {name} in {}", path.display());
        } else {
            eprintln!(
                "bundle {n} of {name} is not recorded in {}: a newer bundle of {name} is",
                path.display()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, hash: &[u8]) -> SeriesState {
        SeriesState {
            key_id: "KEY".into(),
            site: Site {
                name: "site-a".into(),
                id: "0011".into(),
            },
            sequence: seq,
            manifest_sha256: Digest::of_bytes(hash),
            bundle: format!("b{seq}.tgz"),
            loaded: "2026-11-27T10:00:00Z".into(),
        }
    }

    #[test]
    fn schema_files_the_state_file_matches_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = State::default();
        s.write(&path).unwrap();
        let empty: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        partial_common::testutil::schema::assert_valid("state", "an empty state file", &empty);
        assert!(s.advance(entry(2, b"m2")));
        let mut unsigned = entry(1, b"u");
        unsigned.key_id = "unsigned".into();
        assert!(s.advance(unsigned));
        s.write(&path).unwrap();
        let written = std::fs::read(&path).unwrap();
        State::parse(&written, "state.json").unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&written).unwrap();
        partial_common::testutil::schema::assert_valid("state", "a state file of two series", &doc);
    }

    #[test]
    fn standing_in_the_series() {
        let last = entry(2, b"m2");
        let m2 = Digest::of_bytes(b"m2");
        let other = Digest::of_bytes(b"other");
        assert_eq!(standing(None, 5, None), Standing::First);
        assert_eq!(standing(Some(&last), 3, Some(&m2)), Standing::Next);
        assert_eq!(standing(Some(&last), 3, Some(&other)), Standing::Fork);
        assert_eq!(standing(Some(&last), 3, None), Standing::Fork);
        assert_eq!(
            standing(Some(&last), 5, Some(&other)),
            Standing::Gap { from: 3, to: 4 }
        );
        assert_eq!(standing(Some(&last), 2, Some(&other)), Standing::Older);
        assert_eq!(standing(Some(&last), 1, None), Standing::Older);
        assert_eq!(bundles(3, 3), "bundle 3");
        assert_eq!(bundles(3, 4), "bundles 3–4");
    }

    #[test]
    fn state_round_trips_atomically_and_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        assert_eq!(State::read(&path).unwrap(), State::default());
        let mut s = State::default();
        assert!(s.advance(entry(2, b"m2")));
        assert!(
            !s.advance(entry(1, b"m1")),
            "an older bundle never replaces"
        );
        assert!(!s.advance(entry(2, b"m2")));
        let mut other_key = entry(1, b"k");
        other_key.key_id = "OTHER".into();
        assert!(s.advance(other_key), "each key has its own series");
        assert!(s.advance(entry(3, b"m3")));
        s.write(&path).unwrap();
        let back = State::read(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.find("KEY", "0011").unwrap().sequence, 3);
        assert_eq!(back.find("OTHER", "0011").unwrap().sequence, 1);
        assert!(back.find("KEY", "9999").is_none());
        // Only the state file is left in its folder: no temporary file.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);

        let e =
            State::parse(br#"{"schema":"partial-save/ledger","version":1}"#, "s.json").unwrap_err();
        assert!(e.to_string().contains("s.json"), "{e}");
        let e = State::parse(
            br#"{"schema":"partial-load/state","version":9,"series":[]}"#,
            "s",
        )
        .unwrap_err();
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn an_oversized_state_file_is_refused_by_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(partial_common::limits::STATE + 1)
            .unwrap();
        let e = State::read(&path).unwrap_err();
        assert_eq!(
            partial_common::exit::code_of(e.chain()),
            partial_common::exit::VERIFY
        );
        let text = format!("{e:#}");
        assert!(
            text.contains("state.json") && text.contains("limit of 16 MiB"),
            "{text}"
        );
    }

    #[test]
    fn a_load_records_its_state_in_a_folder_that_does_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/sub/state.json");
        let series = Series(Some(Tracked {
            lock: None,
            state_path: path.clone(),
            entry: entry(4, b"m4"),
            gap_needed: vec![],
            last: None,
        }));
        series.record().unwrap();
        assert_eq!(
            State::read(&path)
                .unwrap()
                .find("KEY", "0011")
                .unwrap()
                .sequence,
            4
        );
    }

    #[test]
    fn the_default_state_folder_is_made_0700_and_locked_before_the_load() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let xdg = dir.path().join("xdg");
        let home = dir.path().join("home");
        assert_eq!(
            default_path_of(true, Some(xdg.clone().into()), None).unwrap(),
            Path::new("/var/lib/partial-load/state.json")
        );
        assert_eq!(
            default_path_of(false, Some("".into()), Some(home.clone().into())).unwrap(),
            home.join(".local/state/partial-load/state.json")
        );
        assert!(default_path_of(false, None, None).is_err());
        // A user's default path, none of whose folders exist yet.
        let path = default_path_of(false, Some(xdg.clone().into()), None).unwrap();
        assert_eq!(path, xdg.join("partial-load/state.json"));
        let lock = hold(&path).unwrap();
        for d in [&xdg, &xdg.join("partial-load")] {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        // Held: another run waits for it.
        let (tx, rx) = std::sync::mpsc::channel();
        let p2 = path.clone();
        let waiter = std::thread::spawn(move || {
            let _l = hold(&p2).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err());
        // Recorded under the held lock (not taken twice), then released.
        let series = Series(Some(Tracked {
            lock: Some(lock),
            state_path: path.clone(),
            entry: entry(1, b"m1"),
            gap_needed: vec![],
            last: None,
        }));
        series.record().unwrap();
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
        assert_eq!(
            State::read(&path)
                .unwrap()
                .find("KEY", "0011")
                .unwrap()
                .sequence,
            1
        );
        // Only the state and its lock are left: the writability check leaves nothing.
        let mut names: Vec<_> = std::fs::read_dir(xdg.join("partial-load"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["state.json", "state.json.lock"]);
    }

    #[test]
    fn a_state_folder_that_cannot_be_made_fails_before_the_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let e = hold(&dir.path().join("file/state.json")).unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.contains("file/state.json") && text.contains("nothing was loaded"),
            "{text}"
        );
    }

    #[test]
    fn default_path_for_root_is_under_var_lib() {
        let p = default_path().unwrap();
        if rustix::process::geteuid().is_root() {
            assert_eq!(p, Path::new("/var/lib/partial-load/state.json"));
        } else {
            assert!(p.ends_with("partial-load/state.json"), "{}", p.display());
        }
    }

    #[test]
    fn explain_names_the_missing_bundle_only_for_missing_base_layers() {
        let t = Tracked {
            lock: None,
            state_path: PathBuf::from("s.json"),
            entry: entry(3, b"m3"),
            gap_needed: vec![2],
            last: Some(entry(1, b"m1")),
        };
        let series = Series(Some(t));
        let base = anyhow::Error::new(partial_common::exit::Coded::new(
            partial_common::exit::BASE_MISSING,
            "1 base layer(s) the bundle needs are not on the daemon",
        ));
        let e = series.explain(base);
        assert_eq!(
            partial_common::exit::code_of(e.chain()),
            partial_common::exit::BASE_MISSING
        );
        let text = format!("{e:#}");
        assert!(
            text.contains("came in bundle 2, which never arrived"),
            "{text}"
        );
        assert!(text.contains("load bundle 2 first"), "{text}");
        assert!(text.contains("not on the daemon"), "{text}");
        let other = series.explain(anyhow::anyhow!("daemon gone"));
        assert_eq!(format!("{other:#}"), "daemon gone");
        assert_eq!(
            format!("{:#}", Series::default().explain(anyhow::anyhow!("x"))),
            "x"
        );
    }
}
