//! Atomic output: files are written under a temporary name (`.NAME.partial-XXXXXX`) in the same
//! directory as their final path, registered for removal on interrupt, and renamed into place
//! only by `commit()` after flush and fsync. Dropped without commit, the temporary files are
//! removed; while it exists, the temporary file is locked ([`stale::hold`]), and the first file
//! created in a folder sweeps what killed runs left there ([`stale::sweep_once`]). [`AtomicOutput`]
//! adds split volumes (`OUT.001`, `OUT.002`, …) and per-part and
//! whole-stream hashing on top of [`AtomicFile`].

use super::cleanup;
use super::hashing::{FileDigests, Hashers};
use super::naming::part_path;
use super::stale;
use super::OutputError;
use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const BUFFER: usize = 1 << 20;

/// One file written under a temporary name and renamed to its final path on [`commit`].
///
/// [`commit`]: AtomicFile::commit
pub struct AtomicFile {
    /// `None` once synced (data on disk, handle closed).
    file: Option<BufWriter<File>>,
    temp: PathBuf,
    final_path: PathBuf,
    guard: Option<cleanup::Guard>,
    /// The lock that marks the temporary file as a live writer's (see [`stale`]).
    lock: Option<File>,
    /// Renamed into place: nothing to remove on drop.
    persisted: bool,
}

impl AtomicFile {
    /// Creates `.NAME.partial-XXXXXX` next to `final_path` (mode 0666 less the umask).
    pub fn create(final_path: impl AsRef<Path>) -> Result<Self, OutputError> {
        let final_path = final_path.as_ref().to_path_buf();
        let name = final_path
            .file_name()
            .ok_or_else(|| OutputError::NoFileName {
                path: final_path.clone(),
            })?
            .to_string_lossy()
            .into_owned();
        let dir = match final_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let create_err = |source: io::Error| {
            if super::is_disk_full(&source) {
                OutputError::DiskFull {
                    path: final_path.clone(),
                    source,
                }
            } else {
                OutputError::Create {
                    path: final_path.clone(),
                    source,
                }
            }
        };
        stale::sweep_once(&dir);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .rand_bytes(6)
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(&dir)
            .map_err(create_err)?;
        let (file, temp) = tmp.keep().map_err(|e| create_err(e.error))?;
        let lock = stale::hold(&file);
        let guard = cleanup::register(&temp);
        Ok(AtomicFile {
            file: Some(BufWriter::with_capacity(BUFFER, file)),
            temp,
            final_path,
            guard: Some(guard),
            lock,
            persisted: false,
        })
    }

    /// The path the file gets on commit.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// The temporary path written now.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes and fsyncs the data and closes the handle; the file keeps its temporary name.
    fn sync(&mut self) -> Result<(), OutputError> {
        if let Some(w) = self.file.take() {
            let file = w
                .into_inner()
                .map_err(|e| OutputError::write(&self.final_path, e.into_error()))?;
            file.sync_all()
                .map_err(|e| OutputError::write(&self.final_path, e))?;
        }
        Ok(())
    }

    /// Renames a synced file into place.
    fn persist(&mut self) -> Result<(), OutputError> {
        std::fs::rename(&self.temp, &self.final_path).map_err(|source| OutputError::Rename {
            from: self.temp.clone(),
            to: self.final_path.clone(),
            source,
        })?;
        self.persisted = true;
        self.guard = None;
        self.lock = None;
        Ok(())
    }

    /// Flushes, fsyncs, renames to the final path (replacing any file there) and fsyncs the
    /// directory. Returns the final path.
    pub fn commit(mut self) -> Result<PathBuf, OutputError> {
        self.sync()?;
        self.persist()?;
        sync_dir(&self.final_path);
        Ok(self.final_path.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f
                .write(buf)
                .map_err(|e| OutputError::write(&self.final_path, e).into_io()),
            None => Err(io::Error::other(format!(
                "{} is already closed",
                self.final_path.display()
            ))),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f
                .flush()
                .map_err(|e| OutputError::write(&self.final_path, e).into_io()),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.persisted {
            // Discard buffered bytes rather than flushing them into a file about to go.
            if let Some(w) = self.file.take() {
                drop(w.into_parts());
            }
            let _ = std::fs::remove_file(&self.temp);
        }
        // `guard` drops after the removal and unregisters the path.
    }
}

/// Best-effort fsync of the directory holding `path`, so that the rename is durable.
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = OpenOptions::new().read(true).open(dir) {
        let _ = d.sync_all();
    }
}

/// What [`AtomicOutput::commit`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOutput {
    /// Each file written, in order, with its own digests: `OUT` alone, or `OUT.001`, `OUT.002`, …
    pub parts: Vec<(PathBuf, FileDigests)>,
    /// The digests of the whole stream (all parts concatenated).
    pub whole: FileDigests,
}

/// The bundle output: one file `OUT`, or with `split = Some(n)` volumes `OUT.001`, `OUT.002`, …
/// of at most `n` bytes each. Every part is hashed on its own and the whole stream too. All
/// files keep temporary names until [`commit`]; dropped without commit, all are removed.
///
/// [`commit`]: AtomicOutput::commit
pub struct AtomicOutput {
    base: PathBuf,
    split: Option<u64>,
    current: AtomicFile,
    /// Hashes of the current part; unused (the whole stream's serve) when not split.
    part: Hashers,
    done: Vec<(AtomicFile, FileDigests)>,
    whole: Hashers,
}

impl AtomicOutput {
    /// Starts writing `path` (or its first volume `path.001` when `split` is given). A split
    /// size of 0 is refused.
    pub fn create(path: impl AsRef<Path>, split: Option<u64>) -> Result<Self, OutputError> {
        let base = path.as_ref().to_path_buf();
        if split == Some(0) {
            return Err(OutputError::ZeroSplit { path: base });
        }
        let first = match split {
            None => base.clone(),
            Some(_) => part_path(&base, 1),
        };
        Ok(AtomicOutput {
            current: AtomicFile::create(first)?,
            part: Hashers::new(),
            base,
            split,
            done: Vec::new(),
            whole: Hashers::new(),
        })
    }

    /// The path given to [`AtomicOutput::create`].
    pub fn path(&self) -> &Path {
        &self.base
    }

    /// Bytes written so far over all parts.
    pub fn bytes_written(&self) -> u64 {
        self.whole.size()
    }

    /// The number of parts started so far.
    pub fn parts_started(&self) -> usize {
        self.done.len() + 1
    }

    fn next_part(&mut self) -> Result<(), OutputError> {
        let n = self.done.len() + 2;
        let next = AtomicFile::create(part_path(&self.base, n))?;
        let mut file = std::mem::replace(&mut self.current, next);
        let digests = std::mem::take(&mut self.part).finish();
        file.sync()?;
        self.done.push((file, digests));
        Ok(())
    }

    /// Flushes and fsyncs every part and computes the digests, keeping the temporary names, so
    /// the caller can write (and sign) a manifest before anything appears under a final name.
    pub fn finish(self) -> Result<FinishedOutput, OutputError> {
        let AtomicOutput {
            base,
            split,
            current,
            part,
            mut done,
            whole,
        } = self;
        let whole = whole.finish();
        let last = match split {
            Some(_) => part.finish(),
            None => whole.clone(),
        };
        done.push((current, last));
        for (file, _) in done.iter_mut() {
            file.sync()?;
        }
        Ok(FinishedOutput {
            base,
            split,
            done,
            whole,
        })
    }

    /// [`finish`](AtomicOutput::finish), then [`FinishedOutput::commit`].
    pub fn commit(self) -> Result<CommittedOutput, OutputError> {
        self.finish()?.commit()
    }
}

/// A bundle output that is complete and on disk under temporary names; dropped without
/// [`commit`](FinishedOutput::commit), its files are removed.
pub struct FinishedOutput {
    base: PathBuf,
    split: Option<u64>,
    done: Vec<(AtomicFile, FileDigests)>,
    whole: FileDigests,
}

impl FinishedOutput {
    /// The final path and digests of each part, in order.
    pub fn parts(&self) -> Vec<(PathBuf, FileDigests)> {
        self.done
            .iter()
            .map(|(f, d)| (f.final_path().to_path_buf(), d.clone()))
            .collect()
    }

    /// The digests of the whole stream.
    pub fn whole(&self) -> &FileDigests {
        &self.whole
    }

    /// Renames every part to its final name, removes stale volumes of an earlier, longer run
    /// (`OUT.NNN` following the last part written), and returns the digests.
    pub fn commit(self) -> Result<CommittedOutput, OutputError> {
        let FinishedOutput {
            base,
            split,
            mut done,
            whole,
        } = self;
        let mut parts = Vec::with_capacity(done.len());
        for (file, digests) in done.iter_mut() {
            file.persist()?;
            parts.push((file.final_path().to_path_buf(), digests.clone()));
        }
        if split.is_some() {
            let mut k = parts.len() + 1;
            loop {
                let stale = part_path(&base, k);
                if std::fs::remove_file(&stale).is_err() {
                    break;
                }
                k += 1;
            }
        }
        sync_dir(&base);
        Ok(CommittedOutput { parts, whole })
    }
}

impl Write for AtomicOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let take = match self.split {
            None => buf.len(),
            Some(limit) => {
                if self.part.size() >= limit {
                    self.next_part().map_err(OutputError::into_io)?;
                }
                let room = limit - self.part.size();
                buf.len().min(usize::try_from(room).unwrap_or(usize::MAX))
            }
        };
        let n = self.current.write(&buf[..take])?;
        self.whole.update(&buf[..n]);
        if self.split.is_some() {
            self.part.update(&buf[..n]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.current.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{volume_paths, MultiFileReader};
    use std::io::Read;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
    }

    #[test]
    fn atomic_file_commit_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bundle.tar.gz");
        let mut f = AtomicFile::create(&out).unwrap();
        let temp = f.temp_path().to_path_buf();
        assert!(temp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".bundle.tar.gz.partial-"));
        assert_eq!(temp.parent(), out.parent());
        assert!(cleanup::registered().contains(&temp));
        f.write_all(b"hello").unwrap();
        assert!(!out.exists());
        assert_eq!(f.commit().unwrap(), out);
        assert_eq!(std::fs::read(&out).unwrap(), b"hello");
        assert!(!cleanup::registered().contains(&temp));
        assert_eq!(entries(dir.path()), vec!["bundle.tar.gz"]);

        let out2 = dir.path().join("other");
        let mut f = AtomicFile::create(&out2).unwrap();
        let temp = f.temp_path().to_path_buf();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert!(!cleanup::registered().contains(&temp));
        assert_eq!(entries(dir.path()), vec!["bundle.tar.gz"]);
    }

    /// Sets the modification time of `p` an hour back (a leftover of a run long gone).
    fn age(p: &Path) {
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let f = File::options().read(true).open(p).unwrap();
        f.set_modified(old).unwrap();
    }

    #[test]
    fn a_killed_runs_temporary_files_are_swept_by_the_next_writer_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Left by a SIGKILLed run: a bundle part and a rehydrate spool folder.
        let stale = dir.path().join(".b.tar.partial-AbC123");
        std::fs::write(&stale, b"half").unwrap();
        age(&stale);
        let spool = dir.path().join(".partial-load-spool-x1Y2z3");
        std::fs::create_dir(&spool).unwrap();
        std::fs::write(spool.join("part-1"), b"layer").unwrap();
        age(&spool);
        // Another run writing now, for an hour already (its file is old, but it is alive).
        let mut live = AtomicFile::create(dir.path().join("other.tar")).unwrap();
        live.write_all(b"alive").unwrap();
        live.flush().unwrap();
        let live_temp = live.temp_path().to_path_buf();
        age(&live_temp);
        // Fresh (the moment between creating a file and locking it), or not named by the tool.
        let fresh = dir.path().join(".c.tar.partial-Zz9Zz9");
        std::fs::write(&fresh, b"new").unwrap();
        let others = [
            ".b.tar.partial-",
            ".b.tar.partial-toolong1",
            "b.tar.partial-AbC123",
        ];
        for o in others {
            std::fs::write(dir.path().join(o), b"x").unwrap();
            age(&dir.path().join(o));
        }
        std::os::unix::fs::symlink("/nonexistent", dir.path().join(".l.partial-AbC123")).unwrap();

        crate::output::stale::forget_swept();
        let next = AtomicFile::create(dir.path().join("b.tar")).unwrap();
        assert!(!stale.exists(), "the stale file is still there");
        assert!(!spool.exists(), "the stale spool folder is still there");
        assert!(live_temp.exists() && fresh.exists());
        for o in others {
            assert!(dir.path().join(o).exists(), "{o}");
        }
        assert!(dir
            .path()
            .join(".l.partial-AbC123")
            .symlink_metadata()
            .is_ok());
        assert_eq!(live.commit().unwrap(), dir.path().join("other.tar"));
        drop(next);
    }

    #[test]
    fn unsplit_output_commit_and_drop() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar");
        let payload = data(3 << 20);
        let mut o = AtomicOutput::create(&out, None).unwrap();
        o.write_all(&payload).unwrap();
        assert_eq!(entries(dir.path()).len(), 1);
        assert!(!out.exists());
        let c = o.commit().unwrap();
        assert_eq!(c.parts.len(), 1);
        assert_eq!(c.parts[0].0, out);
        assert_eq!(c.parts[0].1, FileDigests::of_bytes(&payload));
        assert_eq!(c.whole, FileDigests::of_bytes(&payload));
        assert_eq!(entries(dir.path()), vec!["b.tar"]);

        let mut o = AtomicOutput::create(dir.path().join("c.tar"), Some(1000)).unwrap();
        o.write_all(&payload[..5000]).unwrap();
        drop(o);
        assert_eq!(entries(dir.path()), vec!["b.tar"]);
    }

    #[test]
    fn split_output_parts_hashes_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.tar.zst");
        let payload = data(10_000);
        let mut o = AtomicOutput::create(&out, Some(3000)).unwrap();
        for piece in payload.chunks(1234) {
            o.write_all(piece).unwrap();
        }
        assert_eq!(o.parts_started(), 4);
        // Nothing visible under a final name before commit.
        assert!(entries(dir.path()).iter().all(|e| e.contains(".partial-")));
        let c = o.commit().unwrap();
        let names: Vec<String> = c
            .parts
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "b.tar.zst.001",
                "b.tar.zst.002",
                "b.tar.zst.003",
                "b.tar.zst.004"
            ]
        );
        let sizes: Vec<u64> = c.parts.iter().map(|(_, d)| d.size).collect();
        assert_eq!(sizes, [3000, 3000, 3000, 1000]);
        for (i, (p, d)) in c.parts.iter().enumerate() {
            let expect = &payload[i * 3000..((i + 1) * 3000).min(payload.len())];
            assert_eq!(std::fs::read(p).unwrap(), expect);
            assert_eq!(*d, FileDigests::of_bytes(expect));
        }
        assert_eq!(c.whole, FileDigests::of_bytes(&payload));
        assert_eq!(entries(dir.path()), names);

        // Read back as one stream, from the first volume or from the base name.
        for start in [c.parts[0].0.clone(), out.clone()] {
            let paths = volume_paths(&start).unwrap();
            assert_eq!(paths.len(), 4);
            let mut r = MultiFileReader::open(paths).unwrap();
            assert_eq!(r.total_len(), 10_000);
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert!(back == payload);
        }

        // A shorter run over the same name removes the stale later volumes.
        let mut o = AtomicOutput::create(&out, Some(3000)).unwrap();
        o.write_all(&payload[..3000]).unwrap(); // exactly one full part
        let c2 = o.commit().unwrap();
        assert_eq!(c2.parts.len(), 1);
        assert_eq!(entries(dir.path()), ["b.tar.zst.001"]);
        assert_eq!(volume_paths(&out).unwrap().len(), 1);
    }

    #[test]
    fn empty_split_output_has_one_empty_part() {
        let dir = tempfile::tempdir().unwrap();
        let c = AtomicOutput::create(dir.path().join("e"), Some(10))
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(c.parts.len(), 1);
        assert_eq!(c.parts[0].1.size, 0);
        assert!(AtomicOutput::create(dir.path().join("z"), Some(0)).is_err());
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("missing-dir").join("b.tar");
        let msg = AtomicOutput::create(&out, None).err().unwrap().to_string();
        assert!(msg.contains("b.tar"), "{msg}");
        assert!(msg.contains("missing-dir"), "{msg}");
    }

    #[test]
    fn full_disk_is_reported_as_such() {
        // /dev/full answers every write with ENOSPC.
        let Ok(f) = OpenOptions::new().write(true).open("/dev/full") else {
            partial_core::testutil::gate::skip_or_fail(
                "PARTIAL_REQUIRE_TOOLS",
                "/dev/full is not available",
            );
            return;
        };
        let path = PathBuf::from("/tmp/x/bundle.tar.gz");
        let mut w = AtomicFile {
            file: Some(BufWriter::with_capacity(16, f)),
            temp: PathBuf::from("/dev/null/never-removed"),
            final_path: path,
            guard: None,
            lock: None,
            persisted: false,
        };
        let err = w.write_all(&[0u8; 1024]).unwrap_err();
        assert_eq!(err.kind(), io::Error::from_raw_os_error(28).kind());
        let msg = err.to_string();
        assert!(msg.contains("disk full"), "{msg}");
        assert!(msg.contains("/tmp/x/bundle.tar.gz"), "{msg}");
        let e = OutputError::write(Path::new("a"), io::Error::from_raw_os_error(28));
        assert!(matches!(e, OutputError::DiskFull { .. }));
    }

    /// The exporter's pipeline end to end: compress into split volumes, commit, find the volumes,
    /// read them back as one stream, hash it and decompress it.
    #[test]
    fn compressed_split_pipeline_round_trip() {
        use crate::output::HashingReader;
        use partial_model::codec::{compress, decompress, Compression};
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bundle.tar.gz");
        let mut x = 0x2545f4914f6cdd1du64;
        let payload: Vec<u8> = (0..3_000_000u32)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 58) as u8 // 6 random bits per byte: compressible, not trivially
            })
            .collect();
        for c in Compression::ALL {
            let o = AtomicOutput::create(&out, Some(256 * 1024)).unwrap();
            let mut enc = compress(o, c, Some(1)).unwrap();
            enc.write_all(&payload).unwrap();
            let committed = enc.finish().unwrap().commit().unwrap();
            assert!(committed.parts.len() > 1, "{c}: expected several volumes");
            let mut r = HashingReader::new(MultiFileReader::open_volumes(&out).unwrap());
            let mut back = Vec::new();
            let mut sink = Vec::new();
            r.read_to_end(&mut sink).unwrap();
            let (_, digests) = r.finish();
            assert_eq!(digests, committed.whole, "{c}");
            decompress(std::io::Cursor::new(sink))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == payload, "{c}: round trip differs");
        }
    }
}
