//! Tests of `cargo xtask`: what the man pages and completions hold, that `--help` and the man
//! pages show the same tables, that the environment tables name every variable the code reads,
//! and the git description behind `--version` (build/git_version.rs).

use super::*;
use std::collections::BTreeSet;
use std::process::Command;

fn tool(name: &str) -> Tool {
    tools()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

fn pages(name: &str) -> Vec<(String, String)> {
    man_pages(&tool(name))
        .expect("render the man pages")
        .into_iter()
        .map(|(f, t)| (f, String::from_utf8(t).expect("utf-8 page")))
        .collect()
}

#[test]
fn a_page_for_each_tool_and_each_subcommand() {
    let names = |tool: &str| -> BTreeSet<String> { pages(tool).into_iter().map(|p| p.0).collect() };
    let expected = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
    assert_eq!(
        names("partial-save"),
        expected(&[
            "partial-save.1",
            "partial-save-keygen.1",
            "partial-save-ledger.1",
            "partial-save-ledger-show.1",
            "partial-save-ledger-forget.1",
            "partial-save-images.1",
        ])
    );
    assert_eq!(
        names("partial-load"),
        expected(&[
            "partial-load.1",
            "partial-load-load.1",
            "partial-load-verify.1",
            "partial-load-inventory.1",
            "partial-load-rehydrate.1",
            "partial-load-push.1",
            "partial-load-approve.1",
            "partial-load-report.1",
            "partial-load-audit.1",
            "partial-load-audit-verify.1",
        ])
    );
}

#[test]
fn every_page_has_exit_status_and_environment_from_the_tables() {
    for name in ["partial-save", "partial-load"] {
        let tool = tool(name);
        for (file, text) in pages(name) {
            let page = file.trim_end_matches(".1");
            assert!(text.contains(&format!(".TH {page} 1 ")), "{file}: title");
            for section in [
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "\"EXIT STATUS\"",
                "ENVIRONMENT",
                "\"SEE ALSO\"",
                "VERSION",
            ] {
                assert!(
                    text.contains(&format!("\n.SH {section}\n")),
                    "{file}: no {section} section"
                );
            }
            // the sections come in this order
            let at = |s: &str| text.find(s).unwrap_or(usize::MAX);
            assert!(at(".SH \"EXIT STATUS\"") < at(".SH ENVIRONMENT"), "{file}");
            for status in tool.statuses {
                let entry = format!(".TP\n\\fB{}\\fR\n", status.code);
                assert!(
                    text.contains(&entry),
                    "{file}: no exit status {}",
                    status.code
                );
            }
            for var in tool.environment {
                let entry = format!(".TP\n\\fB{}\\fR\n", var.name);
                assert!(text.contains(&entry), "{file}: no {}", var.name);
            }
            assert!(text.contains(tool.version), "{file}: no version");
            // title, section, date, source, manual: none empty (roff would drop it)
            let date = page_date();
            let date = if date.contains(' ') {
                format!("\"{date}\"")
            } else {
                date
            };
            let title = format!(
                ".TH {page} 1 {date} \"{name} {}\" \"User Commands\"\n",
                tool.version
            );
            assert!(text.contains(&title), "{file}: title line is not {title:?}");
            assert_eq!(text.matches(".ds Aq").count(), 2, "{file}: one preamble");
            // after_help is made into sections, not copied in as EXTRA
            assert!(!text.contains(".SH EXTRA"), "{file}");
        }
    }
}

/// Roff text as it reads: the escapes clap_mangen/roff put in undone, lines joined.
fn plain(roff: &str) -> String {
    roff.lines()
        .filter(|l| !l.starts_with('.'))
        .collect::<Vec<_>>()
        .join(" ")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\-", "-")
        .replace("\\*(Aq", "'")
        .replace("\\(aq", "'")
        .replace("\\\\", "\\")
}

#[test]
fn help_and_man_pages_say_the_same_of_each_code_and_variable() {
    let helps = [
        ("partial-save", partial_save::cli::after_help()),
        ("partial-load", partial_load::cli::after_help()),
    ];
    for (name, help) in helps {
        let tool = tool(name);
        let help_words = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let (_, page) = pages(name)
            .into_iter()
            .find(|(f, _)| f == &format!("{name}.1"))
            .expect("the tool's page");
        let page = plain(&page);
        for status in tool.statuses {
            let text = status_text(status);
            assert!(help_words.contains(&text), "{name} --help lacks {text:?}");
            assert!(page.contains(&text), "{name}(1) lacks {text:?}");
        }
        for var in tool.environment {
            let meaning = var.meaning.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                help_words.contains(&format!("{} {meaning}", var.name)),
                "{name} --help lacks {}",
                var.name
            );
            assert!(page.contains(&meaning), "{name}(1) lacks {meaning:?}");
        }
        for example in tool.examples.lines() {
            assert!(help.contains(example), "{name} --help lacks {example:?}");
            assert!(page.contains(example), "{name}(1) lacks {example:?}");
        }
    }
}

#[test]
fn subcommand_pages_show_their_own_examples_and_point_to_the_tool() {
    let (_, show) = pages("partial-save")
        .into_iter()
        .find(|(f, _)| f == "partial-save-ledger-show.1")
        .expect("ledger show page");
    let show = plain(&show);
    assert!(show.contains("partial-save ledger show site-a.json"));
    assert!(!show.contains("partial-save keygen -o team"));
    assert!(show.contains("partial-save-ledger(1)"));
    let (_, push) = pages("partial-load")
        .into_iter()
        .find(|(f, _)| f == "partial-load-push.1")
        .expect("push page");
    let push = plain(&push);
    assert!(push.contains("--layer-compression"), "options are rendered");
    assert!(push.contains("partial-load-push"), "NAME names the page");
}

#[test]
fn completions_for_bash_zsh_and_fish_know_every_subcommand() {
    for (name, subcommands) in [
        ("partial-save", &["keygen", "ledger", "images"][..]),
        (
            "partial-load",
            &["load", "verify", "inventory", "rehydrate", "push"][..],
        ),
    ] {
        let files = completions(&tool(name)).expect("completions");
        let paths: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                format!("bash/{name}"),
                format!("zsh/_{name}"),
                format!("fish/{name}.fish")
            ]
        );
        for (path, text) in &files {
            let text = String::from_utf8_lossy(text);
            for sub in subcommands {
                assert!(text.contains(sub), "{path} lacks {sub}");
            }
            assert!(text.contains("help"), "{path}: no --help");
        }
    }
}

#[test]
fn assets_are_written_where_the_packages_take_them_and_stale_pages_go() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stale = dir.path().join("partial-load/man/partial-load-gone.1");
    std::fs::create_dir_all(stale.parent().expect("parent")).expect("mkdir");
    std::fs::write(&stale, "old").expect("write");
    run(Task::Assets(OutArgs {
        out: Some(dir.path().to_path_buf()),
    }))
    .expect("cargo xtask assets");
    assert!(!stale.exists(), "a stale page stays");
    let copyright = std::fs::read_to_string(dir.path().join("copyright")).expect("copyright");
    assert!(copyright.starts_with("Format: https://www.debian.org/"));
    assert!(copyright.contains("\nLicense: MIT or Apache-2.0\n"));
    assert!(copyright.contains("\nLicense: MIT\n MIT License\n .\n Copyright (c) 2026"));
    assert!(copyright.contains("\n Permission is hereby granted"));
    assert!(copyright.contains("\nLicense: Apache-2.0\n"));
    assert!(copyright.contains(" TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION\n"));
    // no empty line inside a paragraph; every continuation line starts with a space
    for paragraph in copyright.split("\n\n") {
        for line in paragraph.lines().skip(1) {
            assert!(
                line.starts_with(' ') || line.contains(": "),
                "not a field or continuation: {line:?}"
            );
        }
    }
    for file in [
        "partial-load/man/partial-load.1",
        "partial-load/man/partial-load-push.1",
        "partial-load/completions/bash/partial-load",
        "partial-load/completions/zsh/_partial-load",
        "partial-load/completions/fish/partial-load.fish",
        "partial-save/man/partial-save-ledger-forget.1",
        "partial-save/completions/zsh/_partial-save",
    ] {
        let meta = std::fs::metadata(dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file} not written: {e}"));
        assert!(meta.len() > 100, "{file} is nearly empty");
    }
    // what exporter/Cargo.toml and importer/Cargo.toml package
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    for (manifest, tool) in [
        ("exporter/Cargo.toml", "partial-save"),
        ("importer/Cargo.toml", "partial-load"),
    ] {
        let text = std::fs::read_to_string(workspace.join(manifest)).expect("manifest");
        for source in [
            format!("../target/assets/{tool}/man/*.1"),
            format!("../target/assets/{tool}/completions/bash/{tool}"),
            format!("../target/assets/{tool}/completions/zsh/_{tool}"),
            format!("../target/assets/{tool}/completions/fish/{tool}.fish"),
        ] {
            assert!(
                text.contains(&source),
                "{manifest} does not package {source}"
            );
        }
    }
    assert_eq!(default_out(), workspace.join("target/assets"));
    for manifest in ["exporter/Cargo.toml", "importer/Cargo.toml"] {
        let text = std::fs::read_to_string(workspace.join(manifest)).expect("manifest");
        assert!(text.contains(r#"license-file = ["../target/assets/copyright", "0"]"#));
    }
}

/// Names of the environment variables read in the Rust files under `dir`, tests and test
/// helpers left out (`testutil/`, files named `*tests*`, modules declared under `#[cfg(test)]`,
/// unit tests at the end of a file): `env::var("X")`, `env::var_os("X")`, and `env::var(NAME)`
/// through a `const NAME: &str = "X"` of the same files.
fn variables_read(dir: &Path, found: &mut BTreeSet<String>) {
    let mut sources = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if name != "testutil" && name != "examples" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") && !name.contains("tests") {
                let text = std::fs::read_to_string(&path).expect("read source");
                sources.push((path, text));
            }
        }
    }
    // `#[cfg(test)]` then `mod NAME;`: NAME.rs (or NAME/) holds tests only
    let mut test_modules = BTreeSet::new();
    for (_, text) in &sources {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for pair in lines.windows(2) {
            if pair[0] == "#[cfg(test)]" {
                if let Some(name) = pair[1]
                    .strip_prefix("mod ")
                    .and_then(|m| m.strip_suffix(';'))
                {
                    test_modules.insert(name.to_string());
                }
            }
        }
    }
    let is_test_module = |path: &Path| {
        path.strip_prefix(dir).is_ok_and(|rel| {
            rel.iter().any(|part| {
                let part = part.to_string_lossy();
                test_modules.contains(part.trim_end_matches(".rs"))
            })
        })
    };
    let mut consts = std::collections::BTreeMap::new();
    let mut uses = Vec::new();
    for (path, text) in &sources {
        if is_test_module(path) {
            continue;
        }
        // the code before its unit tests
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line
                .strip_prefix("pub const ")
                .or(line.strip_prefix("const "))
            {
                if let Some((name, value)) = rest.split_once(": &str = \"") {
                    if let Some(value) = value.strip_suffix("\";") {
                        consts.insert(name.to_string(), value.to_string());
                    }
                }
            }
            for call in ["env::var(", "env::var_os("] {
                let mut rest = line;
                while let Some(at) = rest.find(call) {
                    rest = &rest[at + call.len()..];
                    let arg: String = rest.chars().take_while(|c| *c != ')').collect();
                    uses.push((path.clone(), arg));
                }
            }
        }
    }
    for (path, arg) in uses {
        let arg = arg.trim();
        if let Some(lit) = arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')) {
            found.insert(lit.to_string());
        } else if let Some(value) = consts.get(arg.rsplit("::").next().unwrap_or(arg)) {
            found.insert(value.clone());
        } else {
            panic!(
                "env::var({arg}) in {}: cannot tell the name",
                path.display()
            );
        }
    }
}

#[test]
fn the_environment_tables_name_every_variable_the_tools_read() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    // covered by the entries of DOCKER_CONFIG and XDG_STATE_HOME
    let implied = ["HOME"];
    let names =
        |env: &[EnvVar]| -> BTreeSet<String> { env.iter().map(|v| v.name.to_string()).collect() };
    let save = names(partial_save::cli::ENVIRONMENT);
    let load = names(partial_load::cli::ENVIRONMENT);
    for (dir, table) in [("exporter/src", &save), ("importer/src", &load)] {
        let mut read = BTreeSet::new();
        variables_read(&workspace.join(dir), &mut read);
        for var in read.iter().filter(|v| !implied.contains(&v.as_str())) {
            assert!(
                table.contains(var),
                "{dir} reads {var}: add it to cli::ENVIRONMENT"
            );
        }
    }
    // clap arguments read from the environment (`#[arg(env = "…")]`)
    fn clap_env(cmd: &clap::Command, found: &mut BTreeSet<String>) {
        for arg in cmd.get_arguments() {
            if let Some(var) = arg.get_env() {
                found.insert(var.to_string_lossy().into_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            clap_env(sub, found);
        }
    }
    for (name, cmd, table) in [
        ("partial-save", partial_save::cli::Cli::command(), &save),
        ("partial-load", partial_load::cli::Cli::command(), &load),
    ] {
        let mut read = BTreeSet::new();
        clap_env(&cmd, &mut read);
        for var in &read {
            assert!(
                table.contains(var),
                "{name} has an argument from {var}: add it to cli::ENVIRONMENT"
            );
        }
    }
    let mut common = BTreeSet::new();
    variables_read(&workspace.join("common"), &mut common); // every library crate
    assert!(
        common.contains("DOCKER_HOST"),
        "the scan finds nothing: {common:?}"
    );
    for var in common.iter().filter(|v| !implied.contains(&v.as_str())) {
        assert!(
            save.contains(var) || load.contains(var),
            "common/ reads {var}: add it to the cli::ENVIRONMENT of the tools it affects"
        );
    }
}

#[test]
fn version_shows_the_commit_of_a_checkout() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace");
    for (name, cmd) in [
        ("partial-save", partial_save::cli::Cli::command()),
        ("partial-load", partial_load::cli::Cli::command()),
    ] {
        let shown = cmd.render_version();
        let commit = shown
            .trim_end()
            .strip_prefix(&format!("{name} {} (commit ", env!("CARGO_PKG_VERSION")))
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected --version {shown:?}"));
        match git_version::head(workspace) {
            Some(head) => assert_eq!(
                commit.strip_suffix(", dirty").unwrap_or(commit),
                head,
                "{name}"
            ),
            None => assert_eq!(commit, "unknown", "{name}"),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> bool {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_git_description_is_the_commit_dirty_or_unknown() {
    let dir = tempfile::tempdir().expect("temp dir");
    // no checkout: unknown, and nothing to watch
    assert_eq!(git_version::describe(dir.path(), &["a"]), "unknown");
    assert!(git_version::watched_git_files(dir.path()).is_empty());
    if !git(dir.path(), &["init", "-q"]) {
        eprintln!("=== SKIPPED: no git to make a test repository ===");
        return;
    }
    std::fs::write(dir.path().join("a"), "1").expect("write");
    std::fs::write(dir.path().join("readme"), "1").expect("write");
    assert!(git(dir.path(), &["add", "a", "readme"]));
    assert!(git(dir.path(), &["commit", "-q", "-m", "one"]));
    let head = git_version::head(dir.path()).expect("head of the test repository");
    assert_eq!(head.len(), 12);
    assert!(head.bytes().all(|b| b.is_ascii_hexdigit()), "{head}");
    assert_eq!(git_version::describe(dir.path(), &["a"]), head);
    // an untracked file is no change, nor an edit outside the sources; an edit of a source is
    std::fs::write(dir.path().join("b"), "new").expect("write");
    std::fs::write(dir.path().join("readme"), "2").expect("write");
    assert_eq!(git_version::describe(dir.path(), &["a"]), head);
    std::fs::write(dir.path().join("a"), "2").expect("write");
    assert_eq!(
        git_version::describe(dir.path(), &["a"]),
        format!("{head}, dirty")
    );
    // staged is still a difference from the commit
    assert!(git(dir.path(), &["add", "a"]));
    assert_eq!(
        git_version::describe(dir.path(), &["a"]),
        format!("{head}, dirty")
    );
    let watched = git_version::watched_git_files(dir.path());
    assert!(watched.iter().any(|p| p.ends_with("HEAD")), "{watched:?}");
    assert!(!watched.iter().any(|p| p.ends_with("index")), "{watched:?}");
    // a folder inside a repository is not its checkout: another project unpacked there must
    // not show this repository's commit
    let inner = dir.path().join("unpacked");
    std::fs::create_dir(&inner).expect("mkdir");
    assert_eq!(git_version::describe(&inner, &["."]), "unknown");
}
