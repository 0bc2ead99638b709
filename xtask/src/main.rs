//! `cargo xtask`: the project's task runner (the alias is in .cargo/config.toml). It renders the
//! man pages and shell completions of `partial-save` and `partial-load` from their clap
//! definitions (the `cli` modules of exporter/ and importer/):
//!
//! ```text
//! cargo xtask man [--out DIR]          DIR/TOOL/man/*.1: TOOL(1) and one page per subcommand
//! cargo xtask completions [--out DIR]  DIR/TOOL/completions/{bash/TOOL,zsh/_TOOL,fish/TOOL.fish}
//! cargo xtask assets [--out DIR]       both, and DIR/copyright (Debian's machine-readable
//!                                      format, with LICENSE-MIT and LICENSE-APACHE in full);
//!                                      scripts/package.sh runs this before cargo-deb
//! cargo xtask cycles                   import cycles between the top-level modules of each
//!                                      crate (product code; `cycles.rs`): exit 1 on one
//! ```
//!
//! DIR defaults to `target/assets` of the workspace, where the `[package.metadata.deb]` assets of
//! exporter/Cargo.toml and importer/Cargo.toml look for them.
//!
//! Every page has EXIT STATUS and ENVIRONMENT sections rendered from the same tables as the
//! `--help` text: `partial_common::exit::{SAVE,LOAD}_STATUSES` and each tool's
//! `cli::ENVIRONMENT`, through `partial_common::help::status_text` for both.
//!
//! The generated files are not committed; they are generated at packaging time. Why: the
//! clap definitions stay the only source, so there is nothing to regenerate by hand, no
//! generated diff in reviews and no conflicts between branches that touch the command line; and
//! the pages name the exact build (`--version` with its git commit), which a committed file
//! could never do. The tests below check what is generated instead (every page, its sections,
//! the shared tables, the completions), and scripts/package.sh renders the packaged pages with
//! `man` and fails on a warning.

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use partial_common::exit::Status;
use partial_common::help::{status_text, EnvVar};
use std::path::{Path, PathBuf};

/// The project's tasks.
#[derive(Parser, Debug)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Man pages: TOOL(1) and one page per subcommand, into DIR/TOOL/man/.
    Man(OutArgs),
    /// Shell completions for bash, zsh and fish, into DIR/TOOL/completions/.
    Completions(OutArgs),
    /// Man pages, completions and the Debian copyright file (what the .deb packages install).
    Assets(OutArgs),
    /// Import cycles between the top-level modules of each crate (product code): none, or exit 1.
    Cycles,
}

#[derive(clap::Args, Debug)]
struct OutArgs {
    /// Output folder (default: target/assets of the workspace).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// What the generated files of one tool are made from.
struct Tool {
    name: &'static str,
    command: fn() -> clap::Command,
    version: &'static str,
    examples: &'static str,
    statuses: &'static [Status],
    environment: &'static [EnvVar],
}

fn tools() -> [Tool; 2] {
    [
        Tool {
            name: "partial-save",
            command: partial_save::cli::Cli::command,
            version: partial_save::cli::VERSION,
            examples: partial_save::cli::EXAMPLES,
            statuses: partial_common::exit::SAVE_STATUSES,
            environment: partial_save::cli::ENVIRONMENT,
        },
        Tool {
            name: "partial-load",
            command: partial_load::cli::Cli::command,
            version: partial_load::cli::VERSION,
            examples: partial_load::cli::EXAMPLES,
            statuses: partial_common::exit::LOAD_STATUSES,
            environment: partial_load::cli::ENVIRONMENT,
        },
    ]
}

/// `cargo xtask cycles`: each crate's module cycles, an error when there is one.
fn check_cycles() -> Result<()> {
    let found = cycles::workspace_cycles(workspace())?;
    for (dir, groups) in &found {
        for g in groups {
            eprintln!(
                "{}: modules {} import each other",
                dir.display(),
                g.join(", ")
            );
        }
    }
    if !found.is_empty() {
        bail!("import cycles in {} crate(s)", found.len());
    }
    eprintln!("cargo xtask: no import cycle between the modules of any crate");
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli.task) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cargo xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> Result<()> {
    let (args, man, completions) = match task {
        Task::Cycles => return check_cycles(),
        Task::Man(a) => (a, true, false),
        Task::Completions(a) => (a, false, true),
        Task::Assets(a) => (a, true, true),
    };
    let out = args.out.unwrap_or_else(default_out);
    if man && completions {
        let path = out.join("copyright");
        std::fs::create_dir_all(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        write_file(&path, copyright(workspace())?.as_bytes())?;
    }
    for tool in tools() {
        if man {
            let written = write_man_pages(&tool, &out.join(tool.name).join("man"))?;
            eprintln!("cargo xtask: {} man pages of {}", written.len(), tool.name);
        }
        if completions {
            let dir = out.join(tool.name).join("completions");
            write_completions(&tool, &dir)?;
            eprintln!(
                "cargo xtask: bash, zsh and fish completions of {}",
                tool.name
            );
        }
    }
    eprintln!("cargo xtask: written under {}", out.display());
    Ok(())
}

/// The workspace this crate is part of.
fn workspace() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// `target/assets` of the workspace.
fn default_out() -> PathBuf {
    workspace().join("target/assets")
}

/// The copyright holders, as in LICENSE-MIT.
const COPYRIGHT: &str = "2026 The partial-save authors";

/// /usr/share/doc/PACKAGE/copyright of both packages, in Debian's machine-readable format
/// (copyright-format 1.0), with the full texts of LICENSE-MIT and LICENSE-APACHE of `workspace`.
fn copyright(workspace: &Path) -> Result<String> {
    let mut out = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: partial-save\n\
         Comment: partial-save and partial-load also hold Rust libraries linked in statically,\n \
         each under its own licence (`cargo tree -e normal -f '{{p}} {{l}}'` lists them).\n\
         \n\
         Files: *\n\
         Copyright: {COPYRIGHT}\n\
         License: MIT or Apache-2.0\n"
    );
    for (name, file) in [("MIT", "LICENSE-MIT"), ("Apache-2.0", "LICENSE-APACHE")] {
        let path = workspace.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the licence {}", path.display()))?;
        out.push_str(&format!("\nLicense: {name}\n"));
        // a paragraph's continuation lines start with a space; an empty one is " ."
        let lines: Vec<&str> = text.trim_matches('\n').lines().collect();
        for line in lines {
            if line.trim().is_empty() {
                out.push_str(" .\n");
            } else {
                out.push(' ');
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Empties `dir` (it holds only generated files: a page of a renamed subcommand must not stay)
/// and creates it.
fn fresh_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot empty {}", dir.display())),
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the man pages of `tool` into `dir` (emptied first); returns their paths.
fn write_man_pages(tool: &Tool, dir: &Path) -> Result<Vec<PathBuf>> {
    fresh_dir(dir)?;
    let mut written = Vec::new();
    for (file_name, text) in man_pages(tool)? {
        let path = dir.join(file_name);
        write_file(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

/// The man pages of `tool` as (file name, roff text): the tool's page, then one per subcommand
/// (nested ones too: `partial-save-ledger-show.1`), each with EXAMPLES (those of its command),
/// EXIT STATUS, ENVIRONMENT, SEE ALSO and VERSION.
fn man_pages(tool: &Tool) -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = (tool.command)().disable_help_subcommand(true);
    // sets the subcommands' display names (partial-save-keygen) and bin names
    cmd.build();
    let mut pages = Vec::new();
    add_pages(tool, &cmd, None, &mut pages)?;
    Ok(pages)
}

fn add_pages(
    tool: &Tool,
    cmd: &clap::Command,
    parent: Option<&str>,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    let page_name = page_name(cmd);
    pages.push((format!("{page_name}.1"), man_page(tool, cmd, parent)?));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        add_pages(tool, sub, Some(&page_name), pages)?;
    }
    Ok(())
}

/// `partial-save` for the tool, `partial-save-ledger-show` for a subcommand.
fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// One page: clap_mangen's title, NAME, SYNOPSIS, DESCRIPTION, OPTIONS and SUBCOMMANDS, then the
/// sections made from the tool's tables. `after_help` is left out: its parts are sections here.
fn man_page(tool: &Tool, cmd: &clap::Command, parent: Option<&str>) -> Result<Vec<u8>> {
    let man = Man::new(cmd.clone())
        .date(page_date())
        .source(format!("{} {}", tool.name, tool.version))
        .manual("User Commands");
    let mut out = Vec::new();
    let context = || format!("rendering the man page of {}", page_name(cmd));
    man.render_title(&mut out).with_context(context)?;
    man.render_name_section(&mut out).with_context(context)?;
    man.render_synopsis_section(&mut out)
        .with_context(context)?;
    man.render_description_section(&mut out)
        .with_context(context)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out).with_context(context)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut out)
            .with_context(context)?;
    }
    let mut roff = Roff::new();
    let bin_name = cmd.get_bin_name().unwrap_or(tool.name);
    let examples = examples_of(tool.examples, bin_name, parent.is_none());
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for example in examples {
            roff.control("PP", []).control("nf", []);
            roff.text([roman(example)]);
            roff.control("fi", []);
        }
    }
    roff.control("SH", ["EXIT STATUS"]);
    for status in tool.statuses {
        roff.control("TP", []);
        roff.text([bold(status.code.to_string())]);
        roff.text([roman(status_text(status))]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    for var in tool.environment {
        roff.control("TP", []);
        roff.text([bold(var.name)]);
        roff.text([roman(var.meaning)]);
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also: Vec<String> = Vec::new();
    see_also.extend(parent.map(str::to_string));
    see_also.extend(
        cmd.get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(page_name),
    );
    if parent.is_none() {
        let other = if tool.name == "partial-save" {
            "partial-load"
        } else {
            "partial-save"
        };
        see_also.push(other.to_string());
    }
    see_also.push("docker".to_string());
    let mut refs = Vec::new();
    for (i, name) in see_also.iter().enumerate() {
        refs.push(bold(name.as_str()));
        refs.push(roman(if i + 1 < see_also.len() {
            "(1), "
        } else {
            "(1)"
        }));
    }
    roff.text(refs);
    roff.control("SH", ["VERSION"]);
    roff.text([roman(format!("{} {}", tool.name, tool.version))]);
    roff.to_writer(&mut out).with_context(context)?;
    Ok(once_preamble(out))
}

/// Keeps the first of the apostrophe preambles that roff writes before each part rendered
/// separately (clap_mangen renders section by section): the same two lines, over and over.
fn once_preamble(page: Vec<u8>) -> Vec<u8> {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let Ok(text) = String::from_utf8(page.clone()) else {
        return page;
    };
    match text.split_once(PREAMBLE) {
        Some((head, rest)) => {
            format!("{head}{PREAMBLE}{}", rest.replace(PREAMBLE, "")).into_bytes()
        }
        None => page,
    }
}

/// The date of the pages: that of the commit they are built from (the same date for the same
/// commit), else "unknown date" (roff drops an empty argument, which shifts the others).
fn page_date() -> String {
    git_version::head_date(workspace()).unwrap_or_else(|| "unknown date".to_string())
}

/// build/git_version.rs, as the build scripts include it (the tests use all of it), and the
/// commit and date of HEAD for the pages.
mod git_version {
    #![allow(dead_code)]
    include!("../../build/git_version.rs");

    /// HEAD's 12-hex commit when `workspace` is a checkout (what a build there shows).
    pub fn head(workspace: &std::path::Path) -> Option<String> {
        if !is_checkout_top(workspace) {
            return None;
        }
        git_output(workspace, &["rev-parse", "--short=12", "HEAD"])
    }

    /// The date of HEAD's commit (YYYY-MM-DD) when `workspace` is a checkout.
    pub fn head_date(workspace: &std::path::Path) -> Option<String> {
        if !is_checkout_top(workspace) {
            return None;
        }
        git_output(workspace, &["log", "-1", "--format=%cs", "HEAD"]).filter(|d| !d.is_empty())
    }
}

/// The example lines of the command `bin_name` (`partial-save ledger`): all of them on the
/// tool's page, else those that run that subcommand.
fn examples_of<'a>(examples: &'a str, bin_name: &str, top: bool) -> Vec<&'a str> {
    examples
        .lines()
        .filter(|l| top || l.starts_with(&format!("{bin_name} ")))
        .collect()
}

/// The completion files of `tool`, as (path under the completions folder, text): each named
/// as the shell looks it up.
fn completions(tool: &Tool) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for (shell, path) in [
        (Shell::Bash, format!("bash/{}", tool.name)),
        (Shell::Zsh, format!("zsh/_{}", tool.name)),
        (Shell::Fish, format!("fish/{}.fish", tool.name)),
    ] {
        let mut cmd = (tool.command)();
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, tool.name, &mut text);
        if text.is_empty() {
            bail!("clap_complete wrote nothing for {shell} ({})", tool.name);
        }
        files.push((path, text));
    }
    Ok(files)
}

/// Writes the completions of `tool` into `dir` (emptied first).
fn write_completions(tool: &Tool, dir: &Path) -> Result<()> {
    fresh_dir(dir)?;
    for (rel, text) in completions(tool)? {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        write_file(&path, &text)?;
    }
    Ok(())
}

mod cycles;
#[cfg(test)]
mod tests;
