//! Bundle file names, in one place for both binaries: the sidecars (`OUT.manifest.json`,
//! `OUT.manifest.json.minisig`), the split volumes (`OUT.001`, `OUT.002`, …), and resolving the
//! path a user names on the command line to the bundle's files.
//!
//! A bundle is read by the name it is given, not by the names its manifest recorded: people
//! rename the three files together when they carry them, and a copy beside the original must
//! never be confused with it. The recorded names are only informative (see [`BundleFiles`]).

use super::OutputError;
use std::path::{Path, PathBuf};

/// Suffix of the manifest beside a bundle: `OUT` → `OUT.manifest.json`.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Suffix of a manifest's signature: `M` → `M.minisig`.
pub const SIGNATURE_SUFFIX: &str = ".minisig";
/// Digits of a volume number as written (`OUT.001`); more when there are more than 999 volumes.
const VOLUME_DIGITS: usize = 3;

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The manifest of bundle `out`: `out.manifest.json`.
pub fn manifest_path(out: &Path) -> PathBuf {
    with_suffix(out, MANIFEST_SUFFIX)
}

/// The signature of `manifest`: `manifest.minisig` (so `OUT.manifest.json.minisig`).
pub fn signature_path(manifest: &Path) -> PathBuf {
    with_suffix(manifest, SIGNATURE_SUFFIX)
}

/// The path of volume `n` (1-based) of `base`: `base.001`, `base.002`, … (three digits at least).
pub fn part_path(base: &Path, n: usize) -> PathBuf {
    part_path_width(base, n, VOLUME_DIGITS)
}

fn part_path_width(base: &Path, n: usize, width: usize) -> PathBuf {
    with_suffix(base, &format!(".{n:0width$}"))
}

/// For `X.001` (digits with value 1), `X` and the digit count.
fn first_volume(p: &Path) -> Option<(PathBuf, usize)> {
    let name = p.file_name()?.to_str()?;
    let (stem, digits) = name.rsplit_once('.')?;
    if stem.is_empty()
        || digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.parse::<u64>().ok()? != 1
    {
        return None;
    }
    Some((p.with_file_name(stem), digits.len()))
}

/// The volumes of a bundle that exist on disk, in order, without a manifest to say how many.
///
/// Given `X.001` (any number of digits, value 1), returns `X.001`, `X.002`, … up to the first
/// missing number. Given any other existing file, returns just it. Given a path that does not
/// exist but whose `.001` volume does, returns the volumes of that.
pub fn volume_paths(first: &Path) -> Result<Vec<PathBuf>, OutputError> {
    if let Some((base, width)) = first_volume(first) {
        if first.is_file() {
            let mut out = Vec::new();
            let mut n = 1usize;
            loop {
                let p = part_path_width(&base, n, width);
                if !p.is_file() {
                    break;
                }
                out.push(p);
                n += 1;
            }
            return Ok(out);
        }
    }
    match std::fs::metadata(first) {
        Ok(_) => Ok(vec![first.to_path_buf()]),
        Err(source) => {
            let p1 = part_path(first, 1);
            if p1.is_file() {
                volume_paths(&p1)
            } else {
                Err(OutputError::Open {
                    path: first.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// The files of a bundle as the user named it: `OUT` (or `OUT.001`, its first volume).
///
/// The manifest is `OUT.manifest.json` and its signature `OUT.manifest.json.minisig`; a split
/// bundle's volumes are `OUT.001`, `OUT.002`, … beside the named file (as many as the manifest
/// lists, numbered with as many digits as the named `.001` has); an unsplit bundle is the named
/// file itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleFiles {
    /// The path as given.
    pub given: PathBuf,
    /// `OUT`: the given path, or the given `OUT.001` without its volume number.
    pub base: PathBuf,
    /// Digits of the volume numbers.
    width: usize,
}

impl BundleFiles {
    /// Resolves a path named on the command line. `X.001` names the first volume of `X` unless
    /// `X.001` has a manifest of its own (a bundle that is simply called `X.001`).
    pub fn resolve(given: &Path) -> Self {
        match first_volume(given) {
            Some((base, width))
                if !manifest_path(given).exists() || manifest_path(&base).exists() =>
            {
                BundleFiles {
                    given: given.to_path_buf(),
                    base,
                    width,
                }
            }
            _ => BundleFiles {
                given: given.to_path_buf(),
                base: given.to_path_buf(),
                width: VOLUME_DIGITS,
            },
        }
    }

    /// `OUT.manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        manifest_path(&self.base)
    }

    /// `OUT.manifest.json.minisig`.
    pub fn signature(&self) -> PathBuf {
        signature_path(&self.manifest())
    }

    /// The files to read, in order: `count` volumes `OUT.001`… when `split`, else the named file.
    pub fn volumes(&self, split: bool, count: usize) -> Vec<PathBuf> {
        if split {
            (1..=count)
                .map(|n| part_path_width(&self.base, n, self.width))
                .collect()
        } else {
            vec![self.given.clone()]
        }
    }

    /// The folder holding the files (empty for the current one).
    pub fn dir(&self) -> &Path {
        self.given.parent().unwrap_or(Path::new(""))
    }
}

/// Whether a bundle whose manifest records the name `name` and the volume file names `volumes`
/// was written split (`name.001`, … even for a single volume).
pub fn is_split(name: &str, volumes: &[&str]) -> bool {
    volumes.len() > 1 || volumes.first().is_some_and(|v| *v != name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_and_part_names() {
        let m = manifest_path(Path::new("/x/app.tgz"));
        assert_eq!(m, PathBuf::from("/x/app.tgz.manifest.json"));
        assert_eq!(
            signature_path(&m),
            PathBuf::from("/x/app.tgz.manifest.json.minisig")
        );
        assert_eq!(
            part_path(Path::new("/a/b.tar.gz"), 1),
            PathBuf::from("/a/b.tar.gz.001")
        );
        assert_eq!(part_path(Path::new("b"), 1000), PathBuf::from("b.1000"));
    }

    #[test]
    fn resolves_the_given_name_not_a_recorded_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A plain bundle under any name: its sidecars follow the given name.
        let f = BundleFiles::resolve(&d.join("renamed.tgz"));
        assert_eq!(f.manifest(), d.join("renamed.tgz.manifest.json"));
        assert_eq!(f.signature(), d.join("renamed.tgz.manifest.json.minisig"));
        assert_eq!(f.volumes(false, 1), vec![d.join("renamed.tgz")]);
        assert_eq!(f.dir(), d);
        // The first volume named: the base drops `.001`; volumes follow with its digit count.
        let f = BundleFiles::resolve(&d.join("s.tgz.001"));
        assert_eq!(f.base, d.join("s.tgz"));
        assert_eq!(f.manifest(), d.join("s.tgz.manifest.json"));
        assert_eq!(
            f.volumes(true, 3),
            vec![
                d.join("s.tgz.001"),
                d.join("s.tgz.002"),
                d.join("s.tgz.003")
            ]
        );
        let f = BundleFiles::resolve(&d.join("s.tgz.0001"));
        assert_eq!(f.volumes(true, 2)[1], d.join("s.tgz.0002"));
        // The base named for a split bundle.
        let f = BundleFiles::resolve(&d.join("s.tgz"));
        assert_eq!(f.volumes(true, 2)[1], d.join("s.tgz.002"));
        // `.002` is not a first volume: it is a bundle name of its own.
        let f = BundleFiles::resolve(&d.join("s.tgz.002"));
        assert_eq!(f.manifest(), d.join("s.tgz.002.manifest.json"));
        // A bundle simply called `x.001`, with its own manifest.
        std::fs::write(d.join("x.001.manifest.json"), b"{}").unwrap();
        let f = BundleFiles::resolve(&d.join("x.001"));
        assert_eq!(f.manifest(), d.join("x.001.manifest.json"));
        assert_eq!(f.volumes(false, 1), vec![d.join("x.001")]);
        // Relative names stay relative.
        let f = BundleFiles::resolve(Path::new("app.tgz"));
        assert_eq!(f.dir(), Path::new(""));
        assert_eq!(f.manifest(), PathBuf::from("app.tgz.manifest.json"));
    }

    #[test]
    fn split_is_told_by_the_recorded_names() {
        assert!(!is_split("a.tgz", &["a.tgz"]));
        assert!(is_split("a.tgz", &["a.tgz.001"]));
        assert!(is_split("a.tgz", &["a.tgz.001", "a.tgz.002"]));
        assert!(!is_split("a.tgz", &[]));
    }

    #[test]
    fn volume_discovery() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("plain.tar"), b"p").unwrap();
        assert_eq!(
            volume_paths(&d.join("plain.tar")).unwrap(),
            vec![d.join("plain.tar")]
        );
        for n in ["v.001", "v.002", "v.003", "v.005"] {
            std::fs::write(d.join(n), n).unwrap();
        }
        let expect = vec![d.join("v.001"), d.join("v.002"), d.join("v.003")];
        assert_eq!(volume_paths(&d.join("v.001")).unwrap(), expect);
        assert_eq!(volume_paths(&d.join("v")).unwrap(), expect);
        // Another volume given: just it.
        assert_eq!(
            volume_paths(&d.join("v.002")).unwrap(),
            vec![d.join("v.002")]
        );
        let msg = volume_paths(&d.join("nothing")).unwrap_err().to_string();
        assert!(msg.contains("nothing"), "{msg}");
    }
}
