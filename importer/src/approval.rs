//! Two-person approval: a reviewer, other than whoever built the bundle, signs the bundle
//! manifest's exact bytes with a key of their own (`partial-load approve`), and the far side
//! requires such approvals before anything is loaded or pushed (`--approver KEY.pub`, repeatable;
//! `--approvals N`, default 1 when an approver is named).
//!
//! An approval is a plain minisign signature, `MANIFEST.approval.<KEYID>.minisig` beside the
//! manifest, so the stock `minisign -Vm MANIFEST -x APPROVAL -p reviewer.pub` checks it too. Its
//! trusted comment names the manifest's sha256 and the reviewer's key ID; both are signed, and
//! the signature covers the manifest (which fixes every file's hash), so an approval copied next
//! to another bundle does not verify. The key that signed the build never counts as an approver.

use crate::errors::verify_failed;
use anyhow::{bail, Context, Result};
use partial_common::limits;
use partial_common::sign::{self, PublicKey};
use partial_common::text::escape;
use partial_common::Digest;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The approval file of reviewer key `key_id` for the manifest at `manifest`.
pub fn approval_path(manifest: &Path, key_id: &str) -> PathBuf {
    let mut s = manifest.as_os_str().to_owned();
    s.push(format!(".approval.{key_id}.minisig"));
    PathBuf::from(s)
}

/// The trusted comment of an approval: what it approves and who approves it, then the
/// reviewer's free comment.
pub fn trusted_comment(manifest_sha256: &Digest, key_id: &str, comment: Option<&str>) -> String {
    let mut t = format!(
        "partial-load approval manifest_sha256={} key={key_id}",
        manifest_sha256.hex()
    );
    if let Some(c) = comment {
        // One line: minisign's trusted comment ends at the line's end.
        let one_line: String = c
            .chars()
            .map(|ch| if ch.is_control() { ' ' } else { ch })
            .collect();
        t.push_str(" comment=");
        t.push_str(&one_line);
    }
    t
}

/// One valid approval found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Approval {
    pub key_id: String,
    pub file: String,
}

/// The approvals the command line requires: the trusted reviewer keys and how many must approve.
pub struct Required {
    pub keys: Vec<PublicKey>,
    pub count: usize,
}

impl Required {
    /// From `--approver` files and `--approvals N`; a usage error when N cannot be met.
    pub fn from_args(approvers: &[PathBuf], count: Option<usize>) -> Result<Self> {
        let mut keys = Vec::new();
        for p in approvers {
            keys.push(
                sign::load_public_key(p)
                    .map_err(|e| verify_failed(format!("approver key {}: {e}", p.display())))?,
            );
        }
        let count = count.unwrap_or(usize::from(!keys.is_empty()));
        let distinct: BTreeSet<&str> = keys.iter().map(|k| k.key_id()).collect();
        if count > distinct.len() {
            return Err(crate::errors::usage(format!(
                "--approvals {count} needs at least {count} distinct --approver keys, {} given",
                distinct.len()
            )));
        }
        Ok(Required { keys, count })
    }
}

/// What an approval is checked against: the manifest (where it lies, its exact bytes and their
/// sha256) and the key that signed the build, which may not approve.
pub struct Subject<'a> {
    pub manifest_path: &'a Path,
    pub bytes: &'a [u8],
    pub manifest_sha256: &'a Digest,
    pub builder: Option<&'a str>,
}

/// Checks that the manifest of `subject` has the approvals `req` asks for; returns the valid
/// ones. Exit 3 naming who approved and who did not, and why files were not counted.
pub fn check(subject: &Subject, req: &Required) -> Result<Vec<Approval>> {
    if req.count == 0 {
        return Ok(Vec::new());
    }
    let mut valid: Vec<Approval> = Vec::new();
    let mut rejected = Vec::new();
    for file in approval_files(subject.manifest_path)? {
        let (bytes, sha) = (subject.bytes, subject.manifest_sha256);
        match check_one(&file, bytes, sha, &req.keys, subject.builder) {
            Ok(key_id) if !valid.iter().any(|a| a.key_id == key_id) => valid.push(Approval {
                key_id,
                file: file.display().to_string(),
            }),
            Ok(_) => {}
            Err(why) => rejected.push(format!("{}: {why}", file.display())),
        }
    }
    if valid.len() >= req.count {
        return Ok(valid);
    }
    Err(verify_failed(refusal(req, &valid, &rejected)))
}

fn refusal(req: &Required, valid: &[Approval], rejected: &[String]) -> String {
    let approved: Vec<&str> = valid.iter().map(|a| a.key_id.as_str()).collect();
    let missing: BTreeSet<&str> = req
        .keys
        .iter()
        .map(|k| k.key_id())
        .filter(|k| !approved.contains(k))
        .collect();
    let mut msg = format!(
        "{} approval(s) required, {} valid: approved by [{}]; not approved by [{}]",
        req.count,
        valid.len(),
        approved.join(", "),
        missing.into_iter().collect::<Vec<_>>().join(", ")
    );
    for r in rejected {
        msg.push_str("\n  not counted: ");
        msg.push_str(&escape(r));
    }
    msg
}

/// The approval files beside the manifest, sorted.
pub fn approval_files(manifest: &Path) -> Result<Vec<PathBuf>> {
    let dir = match manifest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(
        "{}.approval.",
        manifest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {} for approvals", dir.display()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".minisig") {
            out.push(dir.join(name));
        }
    }
    out.sort();
    Ok(out)
}

/// One approval file: a valid signature of `bytes` by one of `keys`, its trusted comment naming
/// this manifest and that key, and not by the build key. The reviewer's key ID, or why not.
fn check_one(
    file: &Path,
    bytes: &[u8],
    manifest_sha256: &Digest,
    keys: &[PublicKey],
    builder: Option<&str>,
) -> std::result::Result<String, String> {
    let text =
        limits::read_capped_text(file, limits::SIGNATURE, "approval").map_err(|e| e.to_string())?;
    let v = sign::verify(bytes, &text, keys).map_err(|e| e.to_string())?;
    let expected = trusted_comment(manifest_sha256, &v.key_id, None);
    let rest = v.trusted_comment.strip_prefix(&expected);
    if !rest.is_some_and(|r| r.is_empty() || r.starts_with(" comment=")) {
        return Err(format!(
            "its trusted comment {:?} does not approve this manifest with key {}",
            v.trusted_comment, v.key_id
        ));
    }
    if builder == Some(v.key_id.as_str()) {
        return Err(format!(
            "key {} signed the bundle itself; the builder cannot approve their own bundle",
            v.key_id
        ));
    }
    Ok(v.key_id)
}

/// Refuses approving bundle `name` with the key that signed the build (`builder`).
pub fn refuse_self_approval(name: &str, builder: Option<&str>, reviewer: &str) -> Result<()> {
    if builder == Some(reviewer) {
        bail!(
            "key {reviewer} signed {name} itself: an approval must come from another person's key"
        );
    }
    Ok(())
}
