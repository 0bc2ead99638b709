//! Build script of `partial-load`: sets `PARTIAL_GIT_COMMIT` (the git commit of the build, ", dirty"
//! when tracked files differ from it, or "unknown" outside a git checkout) for `--version`.
//! The logic is shared with the other tool: build/git_version.rs.

include!("../build/git_version.rs");

fn main() {
    emit_git_commit();
}
