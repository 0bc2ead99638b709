//! Split volumes: size parsing for `--split` and reading the volumes back as one stream
//! ([`MultiFileReader`]). Their names (`OUT.001`, …) are [`naming`](super::naming)'s.

use super::naming::volume_paths;
use super::OutputError;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Parses a size such as `4G`, `700M`, `512K`, `1.5G` or `1024` (bytes).
///
/// Units are binary and case-insensitive: `K` = 1024, `M` = 1024², `G` = 1024³, `T` = 1024⁴;
/// the forms `KB`/`KiB`, `MB`/`MiB`, … and a trailing `B` mean the same (so `1GB` is 1024³
/// bytes too). A fraction is allowed and the result is rounded down to whole bytes.
pub fn parse_size(s: &str) -> Result<u64, OutputError> {
    let bad = |reason: &'static str| OutputError::BadSize {
        input: s.to_string(),
        reason,
    };
    let t = s.trim();
    let split_at = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split_at);
    if num.is_empty() {
        return Err(bad("no number"));
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(bad("unknown unit (use K, M, G or T)")),
    };
    let mult: u64 = 1 << shift;
    if num.contains('.') {
        let (int, frac) = num.split_once('.').ok_or_else(|| bad("not a number"))?;
        if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
            return Err(bad("not a number"));
        }
        let whole: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad("number too large"))?
        };
        let whole = whole.checked_mul(mult).ok_or_else(|| bad("too large"))?;
        // The fraction: digits / 10^len, times mult, exactly in u128 and rounded down.
        let frac = &frac[..frac.len().min(30)];
        let digits: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad("not a number"))?
        };
        let scale = 10u128.pow(frac.len() as u32);
        let part = u64::try_from(digits * mult as u128 / scale).map_err(|_| bad("too large"))?;
        whole.checked_add(part).ok_or_else(|| bad("too large"))
    } else {
        let n: u64 = num.parse().map_err(|_| bad("number too large"))?;
        n.checked_mul(mult).ok_or_else(|| bad("too large"))
    }
}

/// Reads several files in order as one stream (the volumes of a split bundle).
pub struct MultiFileReader {
    paths: Vec<PathBuf>,
    /// Index of the file being read (== paths.len() at the end).
    index: usize,
    current: Option<File>,
    total: u64,
}

impl MultiFileReader {
    /// Checks that every file exists and prepares to read them in order.
    pub fn open(paths: Vec<PathBuf>) -> Result<Self, OutputError> {
        let mut total = 0u64;
        for p in &paths {
            let meta = std::fs::metadata(p).map_err(|source| OutputError::Open {
                path: p.clone(),
                source,
            })?;
            total += meta.len();
        }
        Ok(MultiFileReader {
            paths,
            index: 0,
            current: None,
            total,
        })
    }

    /// [`volume_paths`] then [`MultiFileReader::open`].
    pub fn open_volumes(first: &Path) -> Result<Self, OutputError> {
        Self::open(volume_paths(first)?)
    }

    /// The files, in reading order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The file being read now (None before the first read and at the end).
    pub fn current_path(&self) -> Option<&Path> {
        self.current
            .as_ref()
            .and_then(|_| self.paths.get(self.index))
            .map(PathBuf::as_path)
    }

    /// The summed size of the files when opened.
    pub fn total_len(&self) -> u64 {
        self.total
    }
}

impl Read for MultiFileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let Some(path) = self.paths.get(self.index) else {
                return Ok(0);
            };
            if self.current.is_none() {
                let f = File::open(path).map_err(|source| {
                    OutputError::Open {
                        path: path.clone(),
                        source,
                    }
                    .into_io()
                })?;
                self.current = Some(f);
            }
            let Some(f) = self.current.as_mut() else {
                continue;
            };
            let n = f.read(buf).map_err(|source| {
                OutputError::Read {
                    path: path.clone(),
                    source,
                }
                .into_io()
            })?;
            if n > 0 {
                return Ok(n);
            }
            self.current = None;
            self.index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("512K").unwrap(), 512 * 1024);
        assert_eq!(parse_size("700M").unwrap(), 700 << 20);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("4g").unwrap(), 4 << 30);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4GB").unwrap(), 4 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size(" 2T ").unwrap(), 2 << 40);
        assert_eq!(parse_size("0.5K").unwrap(), 512);
        assert_eq!(parse_size(".5K").unwrap(), 512);
        assert_eq!(parse_size("1.0001K").unwrap(), 1024); // rounded down
        assert_eq!(parse_size("10B").unwrap(), 10);
        for bad in [
            "",
            "G",
            "4X",
            "1.2.3G",
            "-1G",
            ".",
            "99999999999999999999",
            "20000000T",
        ] {
            let e = parse_size(bad);
            assert!(e.is_err(), "{bad:?} parsed as {e:?}");
        }
        let msg = parse_size("4X").unwrap_err().to_string();
        assert!(msg.contains("\"4X\""), "{msg}");
    }

    #[test]
    fn reads_volumes_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for n in ["v.001", "v.002", "v.003"] {
            std::fs::write(d.join(n), n).unwrap();
        }
        let expect = vec![d.join("v.001"), d.join("v.002"), d.join("v.003")];
        assert_eq!(
            MultiFileReader::open_volumes(&d.join("v.001"))
                .unwrap()
                .paths(),
            &expect[..]
        );
        let mut r = MultiFileReader::open(expect).unwrap();
        assert_eq!(r.total_len(), 15);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "v.001v.002v.003");
        assert!(MultiFileReader::open(vec![d.join("v.004")]).is_err());
    }

    #[test]
    fn reader_of_no_files_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = dir.path().join("empty");
        std::fs::write(&e, b"").unwrap();
        let f = dir.path().join("full");
        std::fs::write(&f, b"xyz").unwrap();
        let mut r = MultiFileReader::open(vec![e.clone(), f, e]).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"xyz");
        let mut r = MultiFileReader::open(Vec::new()).unwrap();
        assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
    }
}
