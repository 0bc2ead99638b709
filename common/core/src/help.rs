//! The tables behind the closing part of `--help` (clap's `after_help`) and the EXIT STATUS and
//! ENVIRONMENT sections of the man pages (`cargo xtask man`): the environment variables a tool
//! reads ([`EnvVar`], one table per tool, in its `cli` module) and its exit statuses
//! ([`crate::exit::Status`]). Both outputs are rendered from the same tables so that they cannot
//! drift apart.

use crate::exit::Status;

/// An environment variable a tool reads, and what it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvVar {
    pub name: &'static str,
    /// What it changes, and the default when unset.
    pub meaning: &'static str,
}

/// The width `--help` wraps the tables at (their lines are indented by [`INDENT`]).
const WIDTH: usize = 100;
const INDENT: usize = 2;

/// `after_help` of a tool: the examples (kept as written), then "Exit status:" and
/// "Environment:", one entry a line, longer meanings wrapped under their start.
pub fn after_help(examples: &str, statuses: &[Status], env: &[EnvVar]) -> String {
    let mut out = String::new();
    out.push_str("Examples:\n");
    for line in examples.lines() {
        out.push_str(&" ".repeat(INDENT));
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("\nExit status:\n");
    let entries: Vec<(String, String)> = statuses
        .iter()
        .map(|s| (s.code.to_string(), status_text(s)))
        .collect();
    table(&mut out, &entries);
    out.push_str("\nEnvironment:\n");
    let entries: Vec<(String, String)> = env
        .iter()
        .map(|v| (v.name.to_string(), v.meaning.to_string()))
        .collect();
    table(&mut out, &entries);
    // clap prints a line break of its own after the text
    out.truncate(out.trim_end().len());
    out
}

/// "name: meaning", or the name alone when it says it all.
pub fn status_text(s: &Status) -> String {
    if s.meaning.is_empty() {
        s.name.to_string()
    } else {
        format!("{}: {}", s.name, s.meaning)
    }
}

/// Appends `key  text` lines, the texts aligned after the longest key and wrapped at [`WIDTH`].
fn table(out: &mut String, entries: &[(String, String)]) {
    let key_width = entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let hang = INDENT + key_width + 2;
    for (key, text) in entries {
        let mut line = format!("{:INDENT$}{key:key_width$}  ", "");
        let mut empty = true;
        for word in text.split_whitespace() {
            if !empty && line.len() + 1 + word.len() > WIDTH {
                out.push_str(line.trim_end());
                out.push('\n');
                line = " ".repeat(hang);
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::LOAD_STATUSES;

    const ENV: &[EnvVar] = &[
        EnvVar {
            name: "DOCKER_HOST",
            meaning: "the daemon",
        },
        EnvVar {
            name: "TMPDIR",
            meaning: "where temporary files go; a long meaning that has to be wrapped because \
                      it does not fit on one line of a hundred columns together with its name",
        },
    ];

    #[test]
    fn renders_every_code_and_variable_aligned_and_wrapped() {
        let text = after_help("tool -x\ntool -y", LOAD_STATUSES, ENV);
        assert!(text.starts_with("Examples:\n  tool -x\n  tool -y\n\nExit status:\n"));
        for s in LOAD_STATUSES {
            let line = format!("\n  {:<3}  {}", s.code, s.name);
            assert!(text.contains(&line), "no line {line:?} in\n{text}");
        }
        assert!(text.contains("\n  DOCKER_HOST  the daemon\n"));
        assert!(text.contains("\n  TMPDIR       where temporary files go;"));
        for line in text.lines() {
            assert!(line.len() <= WIDTH, "too long: {line:?}");
        }
        // the wrapped rest of TMPDIR's meaning hangs under its start
        let rest = text
            .lines()
            .skip_while(|l| !l.starts_with("  TMPDIR"))
            .nth(1)
            .unwrap_or_default();
        assert!(rest.starts_with(&" ".repeat(15)) && !rest[15..].starts_with(' '));
        assert!(!text.ends_with('\n'));
    }
}
