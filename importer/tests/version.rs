//! `partial-load --version` names the build: the version and, built in a git checkout, the
//! 12-hex commit of HEAD (with ", dirty" when tracked files differ); "unknown" elsewhere.

use std::path::Path;
use std::process::Command;

/// `git rev-parse --short=12 HEAD` of the workspace, when it is a checkout git can read.
fn head_commit(workspace: &Path) -> Option<String> {
    let top = Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let top = String::from_utf8(top.stdout).ok()?;
    if std::fs::canonicalize(top.trim()).ok()? != std::fs::canonicalize(workspace).ok()? {
        return None;
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = Command::new(env!("CARGO_BIN_EXE_partial-load"))
        .arg("--version")
        .output()
        .expect("run partial-load --version");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8 version");
    let line = text.trim_end();
    let prefix = concat!("partial-load ", env!("CARGO_PKG_VERSION"), " (commit ");
    let commit = line
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {line:?}"));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    match head_commit(workspace) {
        Some(head) => {
            let hash = commit.strip_suffix(", dirty").unwrap_or(commit);
            assert_eq!(hash.len(), 12, "not a 12-hex commit: {line:?}");
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{line:?}");
            assert_eq!(hash, head, "built from another commit than HEAD: {line:?}");
        }
        None => assert_eq!(commit, "unknown", "{line:?}"),
    }
}
