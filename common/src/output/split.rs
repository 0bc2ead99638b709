//! Split volumes: naming (`OUT.001`, `OUT.002`, …), size parsing for `--split`, finding the
//! volumes of a bundle ([`volume_paths`]) and reading them back as one stream
//! ([`MultiFileReader`]).

use super::OutputError;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The path of volume `n` (1-based) of `base`: `base.001`, `base.002`, … (three digits at least).
pub fn part_path(base: &Path, n: usize) -> PathBuf {
    let mut s = base.as_os_str().to_os_string();
    s.push(format!(".{n:03}"));
    PathBuf::from(s)
}

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

/// The volumes of a bundle, in order.
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
                let mut s = base.clone().into_os_string();
                s.push(format!(".{n:0width$}"));
                let p = PathBuf::from(s);
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
    fn part_names() {
        assert_eq!(
            part_path(Path::new("/a/b.tar.gz"), 1),
            PathBuf::from("/a/b.tar.gz.001")
        );
        assert_eq!(part_path(Path::new("b"), 1000), PathBuf::from("b.1000"));
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
