// The git commit a build comes from, for `--version`: included (`include!`) by the build scripts
// of partial-save and partial-load (exporter/build.rs, importer/build.rs) and by the tests of
// `cargo xtask`. Not a module of any crate, so no `//!` doc: build scripts include it as items.
//
// `describe(workspace, sources)` is `COMMIT` (`git rev-parse --short=12 HEAD`), `COMMIT, dirty`
// when tracked files under `sources` (what the binary is built from) differ from that commit, or
// `unknown` outside a git checkout of this workspace (a source tarball, no git, a checkout git
// refuses to read): a tree unpacked inside some other repository must not report that
// repository's commit. The build script re-runs when HEAD moves or a source changes, not when
// only git's index does (a `git status` would otherwise rebuild the tool).

/// Runs git in `dir` and returns its trimmed standard output, or `None` when git is missing or
/// fails.
fn git_output(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        // never take git's lock on the index: a build must not race the user's git commands
        .arg("--no-optional-locks")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// Whether `workspace` is the top level of a git work tree (not a folder inside another one).
fn is_checkout_top(workspace: &std::path::Path) -> bool {
    let Some(top) = git_output(workspace, &["rev-parse", "--show-toplevel"]) else {
        return false;
    };
    match (std::fs::canonicalize(top), std::fs::canonicalize(workspace)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `COMMIT`, `COMMIT, dirty` or `unknown` for the workspace at `workspace`, dirty meaning a
/// change to a tracked file under one of `sources` (paths relative to `workspace`).
pub fn describe(workspace: &std::path::Path, sources: &[&str]) -> String {
    if !is_checkout_top(workspace) {
        return "unknown".to_string();
    }
    let Some(commit) = git_output(workspace, &["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_string();
    };
    if commit.len() != 12 || !commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return "unknown".to_string();
    }
    let mut args = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    args.extend_from_slice(sources);
    match git_output(workspace, &args) {
        Some(changes) if changes.is_empty() => commit,
        Some(_) => format!("{commit}, dirty"),
        // cannot tell: rather not claim a clean tree
        None => format!("{commit}, dirty"),
    }
}

/// The git files whose change means another commit: HEAD, its log (written on every commit,
/// checkout and reset), the branch's ref and packed-refs. Only those that exist (cargo re-runs a
/// build script every time for a missing one).
pub fn watched_git_files(workspace: &std::path::Path) -> Vec<std::path::PathBuf> {
    if !is_checkout_top(workspace) {
        return Vec::new();
    }
    let mut names = vec![
        "HEAD".to_string(),
        "logs/HEAD".to_string(),
        "packed-refs".to_string(),
    ];
    if let Some(branch) = git_output(workspace, &["symbolic-ref", "-q", "HEAD"]) {
        names.push(branch);
    }
    let mut files = Vec::new();
    for name in names {
        if let Some(path) = git_output(workspace, &["rev-parse", "--git-path", &name]) {
            let path = workspace.join(path);
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files
}

/// What a tool's build script does: sets `PARTIAL_GIT_COMMIT` for `env!` and tells cargo when to
/// run again (the git files above, and the sources the tool is built from: the shared library,
/// the tool's package, this folder, the workspace manifest and lock file).
#[allow(dead_code)] // not called by the tests that include this file
pub fn emit_git_commit() {
    let manifest_dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()),
    );
    let workspace = manifest_dir
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.clone());
    let package = manifest_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(".")
        .to_string();
    let sources = [
        "common",
        package.as_str(),
        "build",
        "Cargo.toml",
        "Cargo.lock",
    ];
    println!(
        "cargo:rustc-env=PARTIAL_GIT_COMMIT={}",
        describe(&workspace, &sources)
    );
    for file in watched_git_files(&workspace) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    for source in sources {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(source).display()
        );
    }
}
