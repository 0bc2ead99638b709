//! The send ledger (`partial-save --ledger SITE.json`): for a destination that can never send an
//! inventory back (a data diode, an import-only policy), the bundles sent to it so far, each with
//! its sequence number, hashes and images (diffIDs and chain IDs). The next export leaves out what
//! the ledger says was sent, numbers its bundle and chains it to the previous one by the hash of
//! that bundle's manifest. Written atomically (temporary file, rename), under an exclusive lock on
//! `SITE.json.lock` that an export holds from reading the ledger to recording its bundle, so two
//! exports for one site never interleave.
//!
//! Schema `partial-save/ledger`, version 1.

use crate::manifest::{BundleManifest, Site, ToolInfo};
use crate::output::{AtomicFile, OutputError};
use partial_core::digest::{chain_ids, Digest};
use partial_daemon::ImageMeta;
use partial_model::have::{HaveSet, Origin};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const SCHEMA: &str = "partial-save/ledger";
pub const VERSION: u32 = 1;

/// Errors reading, locking or writing a ledger. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error("cannot read ledger {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    TooLarge(partial_core::limits::CappedError),
    #[error("cannot lock ledger {} (through {}.lock): {source}", path.display(), path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "refusing lock file {}: it is a symbolic link (a lock file is only ever a plain file; \
         remove the link)",
        path.display()
    )]
    LockIsLink { path: PathBuf },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{file}: inconsistent ledger: {what}")]
    Inconsistent { file: String, what: String },
    #[error(
        "site {site}: bundle {last} has the last possible sequence number, so no bundle can \
         follow it; start a new ledger for the site"
    )]
    Exhausted { site: String, last: u64 },
    #[error("{file} has no bundle {bundle} ({have})")]
    NoSuchBundle {
        file: String,
        bundle: u64,
        have: String,
    },
}

/// One bundle sent to the site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentBundle {
    pub sequence: u64,
    /// When the bundle was written (RFC 3339, UTC).
    pub created: String,
    /// The bundle's file name.
    pub name: String,
    /// The sha256 of the whole bundle stream.
    pub sha256: Digest,
    /// The sha256 of the bundle's manifest bytes (the next bundle's `previous`).
    pub manifest_sha256: Digest,
    /// Every image of the bundle with all its layers: after the load, the site holds them all.
    pub images: Vec<ImageMeta>,
    /// When `ledger forget` marked the bundle as lost in transit: its chains are no longer
    /// assumed present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forgotten: Option<String>,
}

impl SentBundle {
    /// The name a person knows an image by: its first tag, else its ID.
    fn image_name(img: &ImageMeta) -> String {
        img.tags
            .first()
            .cloned()
            .unwrap_or_else(|| img.id.to_string())
    }
}

/// The whole ledger of one site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub schema: String,
    pub version: u32,
    /// The tool that last wrote the file.
    pub tool: ToolInfo,
    pub site: Site,
    /// When the ledger was started (RFC 3339, UTC).
    pub created: String,
    /// Every bundle sent, in sequence order.
    pub bundles: Vec<SentBundle>,
}

impl Ledger {
    /// A new, empty ledger for the site named after `path`'s stem, with a fresh random ID.
    pub fn new(path: &Path, tool: ToolInfo) -> Self {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "site".to_string());
        Ledger {
            schema: SCHEMA.to_string(),
            version: VERSION,
            tool,
            site: Site {
                name,
                id: fresh_id(path),
            },
            created: crate::manifest::now_rfc3339(),
            bundles: Vec::new(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses and checks a ledger; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Self, LedgerError> {
        let l: Ledger = crate::schema::parse(bytes, file, SCHEMA, VERSION)?;
        let bad = |what: String| LedgerError::Inconsistent {
            file: file.to_string(),
            what,
        };
        if l.site.name.is_empty() || l.site.id.is_empty() {
            return Err(bad("the site has an empty name or ID".into()));
        }
        let mut last = 0;
        for b in &l.bundles {
            if b.sequence <= last {
                return Err(bad(format!(
                    "bundle {} follows bundle {last}: sequence numbers must increase",
                    b.sequence
                )));
            }
            last = b.sequence;
            for img in &b.images {
                if chain_ids(&img.diff_ids) != img.chain_ids {
                    return Err(bad(format!(
                        "bundle {}: image {}: chain IDs do not follow from its diffIDs",
                        b.sequence, img.id
                    )));
                }
            }
        }
        Ok(l)
    }

    /// Reads the ledger at `path` (at most [`partial_core::limits::LEDGER`] bytes); `None` when there
    /// is no such file yet.
    pub fn read(path: &Path) -> Result<Option<Self>, LedgerError> {
        use partial_core::limits::{read_capped, CappedError, LEDGER};
        match read_capped(path, LEDGER, "ledger") {
            Ok(bytes) => Ok(Some(Self::parse(&bytes, &path.display().to_string())?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(CappedError::Read { source, .. }) => Err(LedgerError::Read {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) => Err(LedgerError::TooLarge(e)),
        }
    }

    /// Reads the ledger at `path`, or starts a new one when there is none.
    pub fn read_or_new(path: &Path, tool: ToolInfo) -> Result<Self, LedgerError> {
        Ok(Self::read(path)?.unwrap_or_else(|| Self::new(path, tool)))
    }

    /// Writes the ledger to `path` atomically (a temporary file renamed over the old one).
    pub fn write(&self, path: &Path) -> Result<(), LedgerError> {
        let mut f = AtomicFile::create(path)?;
        f.write_all(&self.to_bytes())
            .map_err(|e| OutputError::write(path, e))?;
        f.commit()?;
        Ok(())
    }

    /// The bundles still assumed delivered (not forgotten), in sequence order.
    pub fn delivered(&self) -> impl Iterator<Item = &SentBundle> {
        self.bundles.iter().filter(|b| b.forgotten.is_none())
    }

    /// The number the next bundle gets: one more than the last, forgotten or not. A ledger whose
    /// last bundle has number 2^64-1 can take no more (never wraps to 0).
    pub fn next_sequence(&self) -> Result<u64, LedgerError> {
        match self.bundles.last() {
            None => Ok(1),
            Some(b) => b
                .sequence
                .checked_add(1)
                .ok_or_else(|| LedgerError::Exhausted {
                    site: self.site.name.clone(),
                    last: b.sequence,
                }),
        }
    }

    /// Adds every chain of every delivered bundle's images to `have`; a chain is attributed to the
    /// first bundle that delivered it.
    pub fn add_to(&self, have: &mut HaveSet, file: &str) {
        for b in self.delivered() {
            for img in &b.images {
                have.add_image(
                    &img.diff_ids,
                    &Origin::Ledger {
                        file: file.to_string(),
                        bundle: b.sequence,
                        image: SentBundle::image_name(img),
                        image_id: img.id.clone(),
                    },
                );
            }
        }
    }

    /// What the ledger believes delivered but `have` (an inventory of the site) lacks, one line
    /// per image, for the warnings.
    pub fn unconfirmed(&self, have: &HaveSet, file: &str) -> Vec<String> {
        let mut out = Vec::new();
        for b in self.delivered() {
            for img in &b.images {
                let missing = img.chain_ids.iter().filter(|c| !have.contains(c)).count();
                if missing > 0 {
                    out.push(format!(
                        "ledger {file}: bundle {} sent image {} ({}), but the inventory lacks \
                         {missing} of its {} layer(s); they are not assumed present",
                        b.sequence,
                        SentBundle::image_name(img),
                        img.id,
                        img.chain_ids.len()
                    ));
                }
            }
        }
        out
    }

    /// Gives `m` this site, the next sequence number and the previous bundle's manifest hash.
    pub fn stamp(&self, m: &mut BundleManifest) -> Result<(), LedgerError> {
        m.sequence = Some(self.next_sequence()?);
        m.site = Some(self.site.clone());
        m.previous = self.bundles.last().map(|b| b.manifest_sha256.clone());
        Ok(())
    }

    /// Records a bundle written with a manifest stamped by [`Ledger::stamp`]; `manifest_bytes` are
    /// the manifest's exact bytes. Returns its sequence number.
    pub fn record(
        &mut self,
        m: &BundleManifest,
        manifest_bytes: &[u8],
        tool: ToolInfo,
    ) -> Result<u64, LedgerError> {
        let sequence = match m.sequence {
            Some(n) => n,
            None => self.next_sequence()?,
        };
        self.tool = tool;
        self.bundles.push(SentBundle {
            sequence,
            created: m.created.clone(),
            name: m.bundle.name.clone(),
            sha256: m.bundle.sha256.clone(),
            manifest_sha256: Digest::of_bytes(manifest_bytes),
            images: m
                .images
                .iter()
                .map(|i| {
                    ImageMeta::new(
                        i.id.clone(),
                        i.tags.clone(),
                        i.layers.iter().map(|l| l.diff_id.clone()).collect(),
                    )
                })
                .collect(),
            forgotten: None,
        });
        Ok(sequence)
    }

    /// Marks bundle `n` as lost in transit. Returns false when it already was.
    pub fn forget(&mut self, n: u64, file: &str) -> Result<bool, LedgerError> {
        let have = self.sequence_range();
        let Some(b) = self.bundles.iter_mut().find(|b| b.sequence == n) else {
            return Err(LedgerError::NoSuchBundle {
                file: file.to_string(),
                bundle: n,
                have,
            });
        };
        if b.forgotten.is_some() {
            return Ok(false);
        }
        b.forgotten = Some(crate::manifest::now_rfc3339());
        Ok(true)
    }

    /// "bundles 1–3", "no bundles yet": for messages.
    fn sequence_range(&self) -> String {
        match (self.bundles.first(), self.bundles.last()) {
            (Some(f), Some(l)) if f.sequence == l.sequence => format!("only bundle {}", f.sequence),
            (Some(f), Some(l)) => format!("bundles {}–{}", f.sequence, l.sequence),
            _ => "no bundles yet".to_string(),
        }
    }
}

/// A random-enough site ID: 16 hex digits hashed from the time, the process and the path. It
/// tells sites apart; it is no secret.
fn fresh_id(path: &Path) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!(
        "{nanos} {} {:?} {}",
        std::process::id(),
        std::thread::current().id(),
        path.display()
    );
    Digest::of_bytes(seed.as_bytes()).hex()[..16].to_string()
}

/// An exclusive lock on a ledger, held until dropped: an advisory `flock` on `SITE.json.lock`
/// beside it. (Not on the ledger itself: the ledger is replaced by a rename, and a lock on the
/// replaced file would not exclude a process that opens the new one.) `partial-load` guards its
/// state file, replaced the same way, with it too. The lock file is opened with `O_NOFOLLOW`: a
/// symbolic link in its place is refused, never followed to create or open a file elsewhere.
#[derive(Debug)]
pub struct LedgerLock {
    _file: File,
}

impl LedgerLock {
    /// Locks the ledger at `path`. When another process holds the lock, calls `on_wait` once and
    /// waits for it.
    pub fn acquire(path: &Path, on_wait: impl FnOnce()) -> Result<Self, LedgerError> {
        use rustix::fs::{flock, FlockOperation};
        let lock_path = lock_path(path);
        let lock_err = |source: io::Error| LedgerError::Lock {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&lock_path)
            .map_err(|e| {
                // ELOOP: the last component is a symbolic link (O_NOFOLLOW).
                if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                    LedgerError::LockIsLink {
                        path: lock_path.clone(),
                    }
                } else {
                    lock_err(e)
                }
            })?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                on_wait();
                flock(&file, FlockOperation::LockExclusive).map_err(|e| lock_err(e.into()))?;
            }
            Err(e) => return Err(lock_err(e.into())),
        }
        Ok(LedgerLock { _file: file })
    }
}

/// `SITE.json` → `SITE.json.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::SchemaError;

    fn tool() -> ToolInfo {
        ToolInfo {
            name: "partial-save".into(),
            version: "0.1.0".into(),
        }
    }

    /// A manifest of one image with `layers` (bottom first), as a bundle of the series.
    fn bundle_of(ledger: &Ledger, tag: &str, layers: &[&[u8]]) -> (BundleManifest, Vec<u8>) {
        let mut m = crate::manifest::tests::sample();
        let diffs: Vec<Digest> = layers.iter().map(|l| Digest::of_bytes(l)).collect();
        let chains = chain_ids(&diffs);
        m.images[0].tags = vec![tag.to_string()];
        m.images[0].id = Digest::of_bytes(tag.as_bytes());
        m.images[0].layers = diffs
            .iter()
            .zip(&chains)
            .map(|(d, c)| crate::manifest::Layer {
                diff_id: d.clone(),
                chain_id: c.clone(),
                size: Some(1),
                carried: true,
                blob: None,
                delta: None,
            })
            .collect();
        m.required_base.clear();
        ledger.stamp(&mut m).unwrap();
        let bytes = m.to_bytes();
        (m, bytes)
    }

    #[test]
    fn series_numbers_chains_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site-a.json");
        assert_eq!(Ledger::read(&path).unwrap(), None);
        let mut l = Ledger::read_or_new(&path, tool()).unwrap();
        assert_eq!(l.site.name, "site-a");
        assert_eq!(l.site.id.len(), 16);

        let (m1, b1) = bundle_of(&l, "base:1", &[b"a"]);
        assert_eq!((m1.sequence, m1.previous.as_ref()), (Some(1), None));
        assert_eq!(l.record(&m1, &b1, tool()).unwrap(), 1);
        let (m2, b2) = bundle_of(&l, "app:1", &[b"a", b"b"]);
        assert_eq!(m2.sequence, Some(2));
        assert_eq!(m2.previous, Some(Digest::of_bytes(&b1)));
        assert_eq!(m2.site.as_ref(), Some(&l.site));
        // The stamped manifest still parses: the series fields are consistent.
        BundleManifest::parse(&b2, "m2.json").unwrap();
        l.record(&m2, &b2, tool()).unwrap();

        l.write(&path).unwrap();
        let back = Ledger::read(&path).unwrap().unwrap();
        assert_eq!(back, l);
        assert!(!lock_path(&path).exists(), "writing alone takes no lock");

        let mut have = HaveSet::new();
        back.add_to(&mut have, "site-a.json");
        assert_eq!(have.len(), 2);
        let chains = chain_ids(&[Digest::of_bytes(b"a"), Digest::of_bytes(b"b")]);
        let first = &have.get(&chains[0]).unwrap().origin;
        assert!(
            matches!(first, Origin::Ledger { bundle: 1, image, .. } if image == "base:1"),
            "{first:?}"
        );
        assert!(matches!(
            have.get(&chains[1]).unwrap().origin,
            Origin::Ledger { bundle: 2, .. }
        ));
        assert_eq!(
            have.get(&chains[1]).unwrap().origin.to_string(),
            "image app:1 sent in bundle 2 of ledger site-a.json"
        );
    }

    #[test]
    fn forgotten_bundles_are_not_assumed_but_keep_their_number() {
        let mut l = Ledger::new(Path::new("s.json"), tool());
        for (tag, layers) in [("x:1", vec![&b"a"[..]]), ("y:1", vec![&b"b"[..]])] {
            let (m, b) = bundle_of(&l, tag, &layers);
            l.record(&m, &b, tool()).unwrap();
        }
        assert!(l.forget(2, "s.json").unwrap());
        assert!(!l.forget(2, "s.json").unwrap(), "already forgotten");
        let e = l.forget(7, "s.json").unwrap_err();
        assert_eq!(e.to_string(), "s.json has no bundle 7 (bundles 1–2)");
        let mut have = HaveSet::new();
        l.add_to(&mut have, "s.json");
        assert!(have.contains(&Digest::of_bytes(b"a")));
        assert!(
            !have.contains(&Digest::of_bytes(b"b")),
            "bundle 2 is forgotten"
        );
        assert_eq!(l.next_sequence().unwrap(), 3, "numbers are never reused");
        let (m3, _) = bundle_of(&l, "z:1", &[b"c"]);
        assert_eq!(m3.previous, Some(l.bundles[1].manifest_sha256.clone()));
    }

    #[test]
    fn the_last_sequence_number_is_never_followed_by_zero() {
        let mut l = Ledger::new(Path::new("s.json"), tool());
        let (mut m, b) = bundle_of(&l, "x:1", &[b"a"]);
        m.sequence = Some(u64::MAX - 1);
        l.record(&m, &b, tool()).unwrap();
        assert_eq!(l.next_sequence().unwrap(), u64::MAX);
        let (m, b) = bundle_of(&l, "y:1", &[b"b"]);
        assert_eq!(m.sequence, Some(u64::MAX));
        l.record(&m, &b, tool()).unwrap();
        let e = l.next_sequence().unwrap_err();
        assert!(
            matches!(e, LedgerError::Exhausted { last: u64::MAX, .. }),
            "{e}"
        );
        let mut m = crate::manifest::tests::sample();
        assert!(l.stamp(&mut m).is_err());
        assert_eq!(
            (m.sequence, m.site.as_ref()),
            (None, None),
            "nothing stamped"
        );
        assert!(l.record(&m, b"{}", tool()).is_err());
        assert_eq!(l.bundles.len(), 2);
    }

    #[test]
    fn an_inventory_reveals_what_the_ledger_wrongly_believes() {
        let mut l = Ledger::new(Path::new("s.json"), tool());
        let (m, b) = bundle_of(&l, "app:1", &[b"a", b"b"]);
        l.record(&m, &b, tool()).unwrap();
        let mut inv = HaveSet::new();
        let origin = Origin::Image {
            name: "base:1".into(),
            image_id: Digest::of_bytes(b"base"),
        };
        inv.add_image(&[Digest::of_bytes(b"a")], &origin);
        let w = l.unconfirmed(&inv, "s.json");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("bundle 1 sent image app:1"), "{}", w[0]);
        assert!(w[0].contains("lacks 1 of its 2 layer(s)"), "{}", w[0]);
        inv.add_image(&[Digest::of_bytes(b"a"), Digest::of_bytes(b"b")], &origin);
        assert!(l.unconfirmed(&inv, "s.json").is_empty());
    }

    #[test]
    fn refuses_other_schemas_disorder_and_bad_chains() {
        let mut l = Ledger::new(Path::new("s.json"), tool());
        let (m, b) = bundle_of(&l, "app:1", &[b"a", b"b"]);
        l.record(&m, &b, tool()).unwrap();
        let (m, b) = bundle_of(&l, "app:2", &[b"a", b"c"]);
        l.record(&m, &b, tool()).unwrap();

        let mut v: serde_json::Value = serde_json::from_slice(&l.to_bytes()).unwrap();
        v["schema"] = serde_json::json!("partial-load/inventory");
        let e = Ledger::parse(v.to_string().as_bytes(), "s.json").unwrap_err();
        assert!(
            matches!(e, LedgerError::Schema(SchemaError::Schema { .. })),
            "{e}"
        );
        let mut v: serde_json::Value = serde_json::from_slice(&l.to_bytes()).unwrap();
        v["version"] = serde_json::json!(VERSION + 1);
        assert!(Ledger::parse(v.to_string().as_bytes(), "s.json").is_err());

        let mut bad = l.clone();
        bad.bundles.swap(0, 1);
        let e = Ledger::parse(&bad.to_bytes(), "s.json").unwrap_err();
        assert!(e.to_string().contains("must increase"), "{e}");

        let mut bad = l.clone();
        bad.bundles[1].images[0].chain_ids.swap(0, 1);
        let e = Ledger::parse(&bad.to_bytes(), "s.json").unwrap_err();
        assert!(e.to_string().contains("do not follow"), "{e}");
    }

    #[test]
    fn an_oversized_ledger_is_refused_by_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.json");
        std::fs::File::create(&path)
            .unwrap()
            .set_len(partial_core::limits::LEDGER + 1)
            .unwrap();
        let e = Ledger::read(&path).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("site.json") && msg.contains("limit of 256 MiB"),
            "{msg}"
        );
    }

    #[test]
    fn the_lock_file_is_never_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.json");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, lock_path(&path)).unwrap();
        // A dangling link: following it would create the target.
        let e = LedgerLock::acquire(&path, || {}).unwrap_err();
        assert!(!target.exists(), "a file was created at the link's target");
        let msg = e.to_string();
        assert!(
            msg.contains("site.json.lock") && msg.contains("symbolic link"),
            "{msg}"
        );
        // A link to an existing file: refused too, the file untouched.
        std::fs::write(&target, b"keep").unwrap();
        assert!(LedgerLock::acquire(&path, || {}).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        // A plain lock file is fine.
        std::fs::remove_file(lock_path(&path)).unwrap();
        drop(LedgerLock::acquire(&path, || {}).unwrap());
    }

    #[test]
    fn concurrent_updates_under_the_lock_never_lose_a_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.json");
        let waited = std::sync::atomic::AtomicUsize::new(0);
        let threads = 6;
        std::thread::scope(|s| {
            for t in 0..threads {
                let path = &path;
                let waited = &waited;
                s.spawn(move || {
                    let _lock = LedgerLock::acquire(path, || {
                        waited.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    })
                    .unwrap();
                    let mut l = Ledger::read_or_new(path, tool()).unwrap();
                    let tag = format!("img:{t}");
                    let (m, b) = bundle_of(&l, &tag, &[tag.as_bytes()]);
                    // Widen the window between read and write: without the lock, another
                    // thread would read the same state here and one bundle would be lost.
                    std::thread::sleep(std::time::Duration::from_millis(30));
                    l.record(&m, &b, tool()).unwrap();
                    l.write(path).unwrap();
                });
            }
        });
        let l = Ledger::read(&path).unwrap().unwrap();
        let seqs: Vec<u64> = l.bundles.iter().map(|b| b.sequence).collect();
        assert_eq!(seqs, (1..=threads as u64).collect::<Vec<_>>());
        let mut tags: Vec<&str> = l
            .bundles
            .iter()
            .map(|b| b.images[0].tags[0].as_str())
            .collect();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), threads, "every thread's bundle is there once");
        assert!(
            waited.load(std::sync::atomic::Ordering::SeqCst) > 0,
            "some thread must have found the lock taken"
        );
    }
}
