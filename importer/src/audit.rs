//! The audit log of the air-gapped side (`--audit FILE`): one JSON line per `verify`, `load`,
//! `push`, `rehydrate` and `approve` run, refusals included, holding the time, host, tool version
//! and command, the bundle's hashes and sequence, the signer and approver key IDs, the images, the
//! result and the exit code. Each line holds `prev`, the sha256 of the line before it (of the
//! file's first line: [`GENESIS`]), so `partial-load audit verify FILE` finds the first line
//! that was altered, removed or cut.
//!
//! The file is opened before the command does anything (a log that cannot be written stops the
//! run before anything is loaded), written with `O_APPEND` under an exclusive `flock` (the last
//! line is read and the new one appended under the same lock, so concurrent runs never
//! interleave or fork the chain) and fsynced. What a command learns (the bundle it opened) is
//! noted as it goes ([`note_bundle`]), and `main` writes the line when the command ends.

use anyhow::{bail, Context, Result};
use partial_common::Digest;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// `prev` of the first line.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// The longest line read back (a line names every image of a bundle).
const MAX_LINE: u64 = 16 << 20;

/// One line of the log.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub host: String,
    pub tool: String,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<BundleFacts>,
    pub result: String,
    pub exit_code: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub prev: String,
}

/// What the log says of the bundle.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct BundleFacts {
    pub name: String,
    pub sha256: String,
    pub manifest_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    pub approvers: Vec<String>,
    pub images: Vec<ImageFacts>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImageFacts {
    pub id: String,
    pub tags: Vec<String>,
}

struct Open {
    file: File,
    path: PathBuf,
    command: String,
    bundle: Option<BundleFacts>,
}

static LOG: Mutex<Option<Open>> = Mutex::new(None);

/// Opens the log at `path` for this run of `command` (created 0600 when missing).
pub fn open(path: &Path, command: &str) -> Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .custom_flags(libc_nofollow())
        .open(path)
        .with_context(|| format!("opening the audit log {}", path.display()))?;
    let mut log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    *log = Some(Open {
        file,
        path: path.to_path_buf(),
        command: command.to_string(),
        bundle: None,
    });
    Ok(())
}

fn libc_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// Notes the bundle a command opened (its signer, approvals, images), as `bundle` describes it.
pub fn note_bundle(facts: BundleFacts) {
    let mut log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(open) = log.as_mut() {
        open.bundle = Some(facts);
    }
}

/// Writes the run's line, when a log was opened: `code` the exit code, `error` the message.
pub fn finish(code: u8, error: Option<String>) -> Result<()> {
    let mut log = LOG.lock().unwrap_or_else(|p| p.into_inner());
    let Some(open) = log.take() else {
        return Ok(());
    };
    let entry = Entry {
        time: partial_common::manifest::now_rfc3339(),
        host: hostname(),
        tool: format!("partial-load {}", env!("CARGO_PKG_VERSION")),
        command: open.command,
        bundle: open.bundle,
        result: match code {
            0 => "ok".into(),
            3 | 4 => "refused".into(),
            _ => "failed".into(),
        },
        exit_code: code,
        error,
        prev: String::new(),
    };
    append(open.file, &entry)
        .with_context(|| format!("writing the audit log {}", open.path.display()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Appends `entry` chained to the file's last line, under an exclusive lock, and fsyncs.
fn append(mut file: File, entry: &Entry) -> Result<()> {
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .context("locking the audit log")?;
    let prev = match last_line(&mut file)? {
        Some(line) => Digest::of_bytes(&line).to_string(),
        None => GENESIS.to_string(),
    };
    let mut e = entry.clone();
    e.prev = prev;
    let mut line = serde_json::to_vec(&e)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_all()?;
    Ok(())
}

/// The file's last complete line (without its newline); `None` for an empty file. A file that
/// does not end with a newline (a cut line) is refused: its chain is broken.
fn last_line(file: &mut File) -> Result<Option<Vec<u8>>> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok(None);
    }
    let start = len.saturating_sub(MAX_LINE + 1);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(len - start).read_to_end(&mut tail)?;
    if tail.last() != Some(&b'\n') {
        bail!("the audit log's last line is cut off (no newline at its end): check it with `partial-load audit verify`");
    }
    tail.pop();
    let from = tail.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if from == 0 && start > 0 {
        bail!("the audit log's last line is longer than {MAX_LINE} bytes");
    }
    Ok(Some(tail[from..].to_vec()))
}

/// Checks the chain of the log at `path`; the number of lines, or an error naming the first
/// line that does not follow from the one before it (exit 3).
pub fn verify(path: &Path) -> Result<usize> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let broken = |n: usize, why: String| {
        crate::errors::verify_failed(format!("{} line {n}: {why}", path.display()))
    };
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        n += 1;
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            return Err(broken(n, "cut off (no newline at its end)".into()));
        };
        let line = &rest[..end];
        let e: Entry = serde_json::from_slice(line)
            .map_err(|err| broken(n, format!("not an audit entry: {err}")))?;
        if e.prev != prev {
            return Err(broken(
                n,
                format!(
                    "its prev {} is not the hash of the line before it ({prev}): that line was \
                     altered or removed",
                    e.prev
                ),
            ));
        }
        prev = Digest::of_bytes(line).to_string();
        rest = &rest[end + 1..];
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cmd: &str) -> Entry {
        Entry {
            time: "t".into(),
            command: cmd.into(),
            result: "ok".into(),
            ..Entry::default()
        }
    }

    fn log_of(dir: &Path, n: usize) -> PathBuf {
        let p = dir.join("audit.jsonl");
        for i in 0..n {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&p)
                .unwrap();
            append(f, &entry(&format!("cmd{i}"))).unwrap();
        }
        p
    }

    fn code(r: Result<usize>) -> u8 {
        partial_common::exit::code_of(r.unwrap_err().chain())
    }

    #[test]
    fn schema_files_every_line_of_the_log_matches_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        // A run as main makes it: opened first, its line written when it ends (a refusal).
        open(&p, "verify").unwrap();
        finish(3, Some("signature invalid".into())).unwrap();
        // A load that named its bundle, signer and approvers.
        let full = Entry {
            time: partial_common::manifest::now_rfc3339(),
            host: "airgap-1".into(),
            tool: format!("partial-load {}", env!("CARGO_PKG_VERSION")),
            command: "load".into(),
            bundle: Some(BundleFacts {
                name: "app.tgz".into(),
                sha256: Digest::of_bytes(b"bundle").to_string(),
                manifest_sha256: Digest::of_bytes(b"manifest").to_string(),
                sequence: Some(3),
                site: Some("site-a (f1fc7e4162e1fda0)".into()),
                signer: Some("8A2B9C1D0E3F4A5B".into()),
                approvers: vec!["1F2E3D4C5B6A7988".into()],
                images: vec![ImageFacts {
                    id: Digest::of_bytes(b"cfg").to_string(),
                    tags: vec!["app:2".into()],
                }],
            }),
            result: "ok".into(),
            ..Entry::default()
        };
        let f = OpenOptions::new().append(true).read(true).open(&p).unwrap();
        append(f, &full).unwrap();
        assert_eq!(verify(&p).unwrap(), 2);
        let text = std::fs::read_to_string(&p).unwrap();
        for (i, line) in text.lines().enumerate() {
            let doc: serde_json::Value = serde_json::from_str(line).unwrap();
            partial_common::testutil::schema::assert_valid(
                "audit-line",
                &format!("audit line {}", i + 1),
                &doc,
            );
        }
    }

    #[test]
    fn a_chain_verifies_and_every_break_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = log_of(dir.path(), 4);
        assert_eq!(verify(&p).unwrap(), 4);
        let good = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = good.lines().collect();
        // A line edited.
        std::fs::write(&p, good.replacen("cmd1", "cmdX", 1)).unwrap();
        let e = verify(&p).unwrap_err();
        assert!(format!("{e:#}").contains("line 3"), "{e:#}");
        assert_eq!(code(Err(e)), partial_common::exit::VERIFY);
        // A line deleted.
        let deleted = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
        std::fs::write(&p, deleted).unwrap();
        assert!(format!("{:#}", verify(&p).unwrap_err()).contains("line 2"));
        // The last line truncated.
        std::fs::write(&p, &good[..good.len() - 5]).unwrap();
        let e = verify(&p).unwrap_err();
        assert!(format!("{e:#}").contains("line 4"), "{e:#}");
        // Appending to a cut log is refused, not chained onto garbage.
        let f = OpenOptions::new().append(true).read(true).open(&p).unwrap();
        assert!(append(f, &entry("after")).is_err());
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("audit.jsonl");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let f = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .read(true)
                            .open(&p)
                            .unwrap();
                        append(f, &entry(&format!("t{t}-{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(verify(&p).unwrap(), 160);
    }
}
