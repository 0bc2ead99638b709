//! Walking one layer's tar, streamed entry by entry (never held whole): what it does to the
//! destination's file system (files added, changed, removed), which files it gives a risky mode
//! (setuid, setgid, world-writable) or makes newly executable, and the package databases it
//! writes or removes. Lists are capped so a layer of 200k files keeps the report usable; counts
//! are always complete.

use crate::packages::{self, Manager, Packages};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{self, Read};

/// Entries listed per layer; the rest are counted (`more`).
pub const MAX_LISTED: usize = 5000;
/// Files listed per risky-mode list.
pub const MAX_FLAGGED: usize = 1000;
/// The largest files listed per layer.
pub const LARGEST: usize = 20;

/// What an entry does to the path it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The base (the layers left out) lacks the path.
    Added,
    /// The base has the path; this layer replaces it.
    Changed,
    /// Added or changed: the lower layers could not be read.
    Written,
    /// A whiteout: the path (or, for an opaque folder, its contents) is removed.
    Removed,
}

/// One listed entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FileInfo {
    pub path: String,
    pub change: Change,
    /// `file`, `dir`, `symlink`, `hardlink` or `other`.
    pub kind: &'static str,
    pub size: u64,
    /// The permission bits, octal (`4755`).
    pub mode: String,
}

/// A capped list with the count of what did not fit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Capped {
    pub items: Vec<FileInfo>,
    pub more: u64,
}

impl Capped {
    fn push(&mut self, f: &FileInfo, cap: usize) {
        if self.items.len() < cap {
            self.items.push(f.clone());
        } else {
            self.more += 1;
        }
    }

    pub fn total(&self) -> u64 {
        self.items.len() as u64 + self.more
    }
}

/// What a carried layer changes on the destination.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LayerFiles {
    pub entries: u64,
    /// Bytes of the regular files it writes.
    pub bytes: u64,
    pub added: u64,
    pub changed: u64,
    pub written: u64,
    pub removed: u64,
    /// The largest files, largest first.
    pub largest: Vec<FileInfo>,
    /// Every entry, in layer order, up to [`MAX_LISTED`].
    pub files: Capped,
    pub setuid: Capped,
    pub setgid: Capped,
    /// World-writable files and folders (symlinks, whose mode means nothing, left out).
    pub world_writable: Capped,
    /// Executable files that no lower layer has (or, `written`, that may be new).
    pub new_executables: Capped,
}

/// A package database as a layer leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbState {
    Present(Packages),
    Removed,
}

/// All a walk finds in one layer.
#[derive(Debug, Default)]
pub struct LayerScan {
    pub files: LayerFiles,
    pub dbs: BTreeMap<Manager, DbState>,
    /// Hashes of the paths the layer writes and removes (for the lower-layer set of the layers
    /// above, see [`PathSet`]).
    pub written_paths: Vec<u64>,
    pub removed_paths: Vec<u64>,
}

/// The paths of the lower layers, as 64-bit hashes (8 bytes a path, whatever its length).
#[derive(Debug, Default)]
pub struct PathSet(HashSet<u64>);

impl PathSet {
    /// Applies a layer walked above the ones so far.
    pub fn apply(&mut self, scan: &LayerScan) {
        for h in &scan.removed_paths {
            self.0.remove(h);
        }
        self.0.extend(scan.written_paths.iter().copied());
    }

    pub fn contains(&self, path: &str) -> bool {
        self.0.contains(&path_hash(path))
    }
}

/// A fixed hash of a path (std's SipHash with zero keys: the same in every run).
pub fn path_hash(path: &str) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// A layer entry name as a path without `./`, leading or trailing `/`.
pub fn clean(name: &str) -> String {
    let n = name.trim_start_matches("./").trim_start_matches('/');
    n.trim_end_matches('/').to_string()
}

/// Whether `name` is a whiteout; the path it removes (`dir/` plus `*` for an opaque folder).
fn whiteout(path: &str) -> Option<String> {
    let (dir, base) = match path.rsplit_once('/') {
        Some((d, b)) => (format!("{d}/"), b),
        None => (String::new(), path),
    };
    if base == ".wh..wh..opq" {
        return Some(format!("{dir}*"));
    }
    base.strip_prefix(".wh.").map(|b| format!("{dir}{b}"))
}

/// Walks the uncompressed layer tar `r`; `lower` is the path set of the layers below, when they
/// could be read (else entries are `written`).
pub fn walk(r: impl Read, lower: Option<&PathSet>) -> io::Result<LayerScan> {
    let mut scan = LayerScan::default();
    let mut largest: BinaryHeap<Reverse<(u64, FileInfo)>> = BinaryHeap::new();
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        if path.is_empty() {
            continue;
        }
        let h = entry.header();
        let mode = h.mode().unwrap_or(0) & 0o7777;
        let size = h.entry_size().unwrap_or(0);
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            _ => "other",
        };
        let info = record(&mut scan, lower, path, kind, size, mode);
        if info.kind == "file" {
            largest.push(Reverse((info.size, info.clone())));
            if largest.len() > LARGEST {
                largest.pop();
            }
            read_db(&mut scan, &info.path, &mut entry)?;
        }
    }
    let mut top: Vec<(u64, FileInfo)> = largest.into_iter().map(|Reverse(x)| x).collect();
    top.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.path.cmp(&b.1.path)));
    scan.files.largest = top.into_iter().map(|(_, f)| f).collect();
    Ok(scan)
}

/// Counts and lists one entry; returns what was recorded.
fn record(
    scan: &mut LayerScan,
    lower: Option<&PathSet>,
    path: String,
    kind: &'static str,
    size: u64,
    mode: u32,
) -> FileInfo {
    let f = &mut scan.files;
    f.entries += 1;
    let removed = whiteout(&path);
    let change = match (&removed, lower) {
        (Some(_), _) => Change::Removed,
        (None, Some(l)) if l.contains(&path) => Change::Changed,
        (None, Some(_)) => Change::Added,
        (None, None) => Change::Written,
    };
    let info = FileInfo {
        path: removed.unwrap_or(path),
        change,
        kind,
        size: if kind == "file" { size } else { 0 },
        mode: format!("{mode:o}"),
    };
    match change {
        Change::Added => f.added += 1,
        Change::Changed => f.changed += 1,
        Change::Written => f.written += 1,
        Change::Removed => f.removed += 1,
    }
    if change == Change::Removed {
        note_removed_db(&mut scan.dbs, &info.path);
        scan.removed_paths.push(path_hash(&info.path));
        f.files.push(&info, MAX_LISTED);
        return info;
    }
    scan.written_paths.push(path_hash(&info.path));
    f.bytes += info.size;
    f.files.push(&info, MAX_LISTED);
    flag(f, &info, mode);
    info
}

/// Puts an entry on the risky-mode lists it belongs to.
fn flag(f: &mut LayerFiles, info: &FileInfo, mode: u32) {
    let special = matches!(info.kind, "file" | "dir" | "other");
    if special && mode & 0o4000 != 0 {
        f.setuid.push(info, MAX_FLAGGED);
    }
    if special && mode & 0o2000 != 0 {
        f.setgid.push(info, MAX_FLAGGED);
    }
    if special && mode & 0o002 != 0 {
        f.world_writable.push(info, MAX_FLAGGED);
    }
    if info.kind == "file" && mode & 0o111 != 0 && info.change != Change::Changed {
        f.new_executables.push(info, MAX_FLAGGED);
    }
}

/// A package database entry: read (capped) and parsed; its whiteout recorded as a removal.
fn read_db(scan: &mut LayerScan, path: &str, r: &mut impl Read) -> io::Result<()> {
    let Some(m) = Manager::of_path(path) else {
        return Ok(());
    };
    let mut bytes = Vec::new();
    r.take(packages::MAX_DB + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > packages::MAX_DB {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path} is larger than {} MiB", packages::MAX_DB >> 20),
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    scan.dbs.insert(m, DbState::Present(m.parse(&text)));
    Ok(())
}

/// Marks the package databases a whiteout of `removed` takes away (the file itself, or an opaque
/// folder above it), unless the layer writes one (a database written wins).
fn note_removed_db(dbs: &mut BTreeMap<Manager, DbState>, removed: &str) {
    for (m, db) in [
        (Manager::Dpkg, packages::DPKG_STATUS),
        (Manager::Apk, packages::APK_INSTALLED),
    ] {
        let hit = match removed.strip_suffix('*') {
            Some(dir) => db.starts_with(dir),
            None => removed == db,
        };
        if hit {
            dbs.entry(m).or_insert(DbState::Removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer tar of (path, type, mode, content).
    fn layer(entries: &[(&str, tar::EntryType, u32, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, mode, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_size(data.len() as u64);
            if *kind == tar::EntryType::Symlink {
                h.set_link_name("target").unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    use tar::EntryType::{Directory as D, Regular as F, Symlink as L};

    #[test]
    fn entries_are_classified_against_the_lower_layers() {
        let base = layer(&[
            ("etc/", D, 0o755, b""),
            ("etc/passwd", F, 0o644, b"root"),
            ("bin/old", F, 0o755, b"x"),
        ]);
        let mut lower = PathSet::default();
        lower.apply(&walk(&base[..], None).unwrap());
        let top = layer(&[
            ("./etc/passwd", F, 0o644, b"root\nme"),
            ("usr/bin/su", F, 0o4755, b"suid"),
            ("usr/bin/wall", F, 0o2755, b"sgid"),
            ("tmp/", D, 0o1777, b""),
            ("bin/.wh.old", F, 0o644, b""),
            ("var/cache/.wh..wh..opq", F, 0o644, b""),
            ("link", L, 0o777, b""),
            ("big", F, 0o644, &[0u8; 4096]),
        ]);
        let s = walk(&top[..], Some(&lower)).unwrap();
        let f = &s.files;
        assert_eq!(f.entries, 8);
        assert_eq!((f.added, f.changed, f.removed, f.written), (5, 1, 2, 0));
        let paths = |c: &Capped| c.items.iter().map(|i| i.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&f.setuid), ["usr/bin/su"]);
        assert_eq!(paths(&f.setgid), ["usr/bin/wall"]);
        assert_eq!(paths(&f.world_writable), ["tmp"]);
        assert_eq!(paths(&f.new_executables), ["usr/bin/su", "usr/bin/wall"]);
        assert_eq!(f.largest[0].path, "big");
        assert_eq!(f.largest[0].size, 4096);
        let removed: Vec<_> = f
            .files
            .items
            .iter()
            .filter(|i| i.change == Change::Removed)
            .map(|i| i.path.as_str())
            .collect();
        assert_eq!(removed, ["bin/old", "var/cache/*"]);
        assert_eq!(f.setuid.items[0].mode, "4755");
        // Without the lower layers, nothing is called added or changed.
        let s = walk(&top[..], None).unwrap();
        assert_eq!((s.files.added, s.files.changed, s.files.written), (0, 0, 6));
    }

    #[test]
    fn lists_are_capped_and_counts_complete() {
        let names: Vec<String> = (0..MAX_LISTED + 7).map(|i| format!("f{i}")).collect();
        let entries: Vec<_> = names
            .iter()
            .map(|n| (n.as_str(), F, 0o644, &b"1"[..]))
            .collect();
        let s = walk(&layer(&entries)[..], None).unwrap();
        assert_eq!(s.files.files.items.len(), MAX_LISTED);
        assert_eq!(s.files.files.more, 7);
        assert_eq!(s.files.entries, (MAX_LISTED + 7) as u64);
        assert_eq!(s.files.largest.len(), LARGEST);
    }

    #[test]
    fn package_databases_are_read_and_their_removal_noted() {
        let status = b"Package: bash\nStatus: install ok installed\nVersion: 5.2\n";
        let s = walk(
            &layer(&[("var/lib/dpkg/status", F, 0o644, status)])[..],
            None,
        )
        .unwrap();
        match &s.dbs[&Manager::Dpkg] {
            DbState::Present(p) => assert_eq!(p["bash"], "5.2"),
            other => panic!("{other:?}"),
        }
        let s = walk(&layer(&[("lib/apk/.wh..wh..opq", F, 0o644, b"")])[..], None).unwrap();
        assert_eq!(s.dbs.get(&Manager::Apk), Some(&DbState::Removed));
        assert_eq!(s.dbs.get(&Manager::Dpkg), None);
    }
}
