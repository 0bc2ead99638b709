//! OS package databases: Debian's dpkg status (`var/lib/dpkg/status`) and Alpine's apk database
//! (`lib/apk/db/installed`), parsed into name → version, and the difference between a base's and
//! a new image's, so a reviewer sees which packages an update brings (name, old, new version).

use serde::Serialize;
use std::collections::BTreeMap;

/// The package database paths, inside a layer (no leading `/`).
pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
pub const APK_INSTALLED: &str = "lib/apk/db/installed";
/// The biggest package database read (a full Debian desktop's status is about 3 MiB).
pub const MAX_DB: u64 = 64 << 20;

/// Which package manager a database belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Manager {
    Dpkg,
    Apk,
}

impl Manager {
    pub fn as_str(self) -> &'static str {
        match self {
            Manager::Dpkg => "dpkg",
            Manager::Apk => "apk",
        }
    }

    /// The manager whose database is at `path` (a layer entry name, `./` stripped).
    pub fn of_path(path: &str) -> Option<Self> {
        match path {
            DPKG_STATUS => Some(Manager::Dpkg),
            APK_INSTALLED => Some(Manager::Apk),
            _ => None,
        }
    }

    /// Parses a database of this manager.
    pub fn parse(self, text: &str) -> Packages {
        match self {
            Manager::Dpkg => parse_dpkg(text),
            Manager::Apk => parse_apk(text),
        }
    }
}

/// Installed packages: name → version.
pub type Packages = BTreeMap<String, String>;

/// One package whose version differs; `old` is `None` for a new package, `new` for a removed one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// dpkg's status file: stanzas separated by blank lines; only packages whose `Status` ends in
/// `installed` count (not `config-files` or `half-installed`). Continuation lines are skipped.
pub fn parse_dpkg(text: &str) -> Packages {
    let mut out = Packages::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut installed) = (None, None, false);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.split_whitespace().last() == Some("installed");
            }
        }
        if let (Some(n), Some(v), true) = (name, version, installed) {
            if !n.is_empty() {
                out.insert(n.to_string(), v.to_string());
            }
        }
    }
    out
}

/// apk's installed database: stanzas separated by blank lines, `P:` the name, `V:` the version.
pub fn parse_apk(text: &str) -> Packages {
    let mut out = Packages::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version) = (None, None);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("P:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("V:") {
                version = Some(v.trim());
            }
        }
        if let (Some(n), Some(v)) = (name, version) {
            if !n.is_empty() {
                out.insert(n.to_string(), v.to_string());
            }
        }
    }
    out
}

/// The packages added, removed or of another version in `new` than in `old`, by name.
pub fn diff(old: &Packages, new: &Packages) -> Vec<PackageChange> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| {
            let (o, v) = (old.get(n), new.get(n));
            (o != v).then(|| PackageChange {
                name: n.clone(),
                old: o.cloned(),
                new: v.cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DPKG: &str = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\
Description: GNU C Library\n multi-line description\n Version: 9.9 (not a field)\n\n\
Package: old-conf\nStatus: deinstall ok config-files\nVersion: 1.0\n\n\
Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\n";

    #[test]
    fn dpkg_status_lists_installed_packages_only() {
        let p = parse_dpkg(DPKG);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p["libc6"], "2.36-9");
        assert_eq!(p["zlib1g"], "1:1.2.13");
        assert!(!p.contains_key("old-conf"));
    }

    #[test]
    fn apk_database_lists_name_and_version() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nC:Q1def=\nP:busybox\nV:1.36.1-r5\n";
        let p = parse_apk(text);
        assert_eq!(p["musl"], "1.2.4-r2");
        assert_eq!(p["busybox"], "1.36.1-r5");
        assert_eq!(p.len(), 2);
        assert_eq!(Manager::of_path(APK_INSTALLED), Some(Manager::Apk));
        assert_eq!(Manager::of_path("etc/passwd"), None);
    }

    #[test]
    fn the_diff_names_upgrades_additions_and_removals() {
        let old = parse_dpkg(DPKG);
        let new = parse_dpkg(
            "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n\n\
             Package: curl\nStatus: install ok installed\nVersion: 7.88.1\n",
        );
        let d = diff(&old, &new);
        assert_eq!(
            d,
            vec![
                PackageChange {
                    name: "curl".into(),
                    old: None,
                    new: Some("7.88.1".into())
                },
                PackageChange {
                    name: "libc6".into(),
                    old: Some("2.36-9".into()),
                    new: Some("2.36-9+deb12u4".into())
                },
                PackageChange {
                    name: "zlib1g".into(),
                    old: Some("1:1.2.13".into()),
                    new: None
                },
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }
}
