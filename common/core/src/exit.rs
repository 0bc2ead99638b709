//! Exit codes shared by both tools, and an error wrapper that carries one through `anyhow`
//! context chains: 0 success; 1 other failure; 2 usage; 3 verification failed (signature, hash,
//! size, manifest, bad input archive); 4 base layers missing on the daemon; 5 daemon unreachable
//! or daemon error; 130 interrupted. [`report`] prints an error chain on stderr, control
//! characters escaped.
//!
//! What each code means to each tool is data here ([`SAVE_STATUSES`], [`LOAD_STATUSES`]): the
//! `--help` text ([`crate::help::after_help`]) and the EXIT STATUS section of the man pages
//! (`cargo xtask man`) are both rendered from these tables, so they cannot disagree.

use std::error::Error;
use std::fmt;

pub const SUCCESS: u8 = 0;
pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const VERIFY: u8 = 3;
pub const BASE_MISSING: u8 = 4;
pub const DAEMON: u8 = 5;
/// Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells report it); see
/// `partial_common::output::cleanup`.
pub const INTERRUPTED: u8 = 130;

/// One exit status of a tool: its code, a short name, and what it means for that tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub code: u8,
    /// A word or two ("usage error"), the first thing said about the code.
    pub name: &'static str,
    /// When the tool exits with it; empty when the name says it all.
    pub meaning: &'static str,
}

/// The exit statuses of `partial-save`, in code order. It never exits with [`BASE_MISSING`].
pub const SAVE_STATUSES: &[Status] = &[
    Status {
        code: SUCCESS,
        name: "success",
        meaning: "",
    },
    Status {
        code: FAILURE,
        name: "failure",
        meaning: "any failure not listed below",
    },
    Status {
        code: USAGE,
        name: "usage error",
        meaning: "a flag, argument or flag combination to change",
    },
    Status {
        code: VERIFY,
        name: "bad input",
        meaning: "an archive, inventory or ledger does not verify; a registry blob or manifest \
                  does not match its digest; a file over its size cap",
    },
    Status {
        code: DAEMON,
        name: "daemon or registry failure",
        meaning: "the Docker daemon or registry is unreachable, failing or refusing access \
                  (also: it died or hung mid-export)",
    },
    Status {
        code: INTERRUPTED,
        name: "interrupted",
        meaning: "by SIGINT or SIGTERM; partial output files were removed",
    },
];

/// The exit statuses of `partial-load`, in code order.
pub const LOAD_STATUSES: &[Status] = &[
    Status {
        code: SUCCESS,
        name: "success",
        meaning: "",
    },
    Status {
        code: FAILURE,
        name: "failure",
        meaning: "any failure not listed below",
    },
    Status {
        code: USAGE,
        name: "usage error",
        meaning: "a flag, argument or flag combination to change",
    },
    Status {
        code: VERIFY,
        name: "verification failed",
        meaning: "signature, hash, size or manifest; a bundle older than the last one loaded \
                  from its site; a public key file holding more than one key; a file over its \
                  size cap",
    },
    Status {
        code: BASE_MISSING,
        name: "base layers missing",
        meaning: "on the daemon (or in the registry, for push)",
    },
    Status {
        code: DAEMON,
        name: "daemon or registry failure",
        meaning: "the Docker daemon or registry is unreachable or failing (also: it died or hung \
                  mid-load)",
    },
    Status {
        code: INTERRUPTED,
        name: "interrupted",
        meaning: "by SIGINT or SIGTERM; partial output files were removed",
    },
];

/// An error that decides the exit code. Displays as the error it wraps.
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    inner: Box<dyn Error + Send + Sync + 'static>,
}

impl Coded {
    pub fn new(code: u8, inner: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> Self {
        Coded {
            code,
            inner: inner.into(),
        }
    }
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl Error for Coded {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner.source()
    }
}

/// The exit code for an error chain: the outermost [`Coded`] in it, else [`FAILURE`].
pub fn code_of<'a>(chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> u8 {
    chain
        .into_iter()
        .find_map(|e| e.downcast_ref::<Coded>().map(|c| c.code))
        .unwrap_or(FAILURE)
}

/// Prints `TOOL: error: …` and each cause on stderr — skipping a cause whose text the line above
/// already shows — and returns the exit code for the chain.
pub fn report<'a>(tool: &str, chain: impl IntoIterator<Item = &'a (dyn Error + 'static)>) -> u8 {
    let chain: Vec<&(dyn Error + 'static)> = chain.into_iter().collect();
    eprint!("{}", render(tool, &chain));
    code_of(chain)
}

/// The text [`report`] prints. Messages quote names from manifests, charts and registries, so
/// control characters in them are shown escaped ([`crate::text::escape_lines`]); line breaks
/// stay.
fn render(tool: &str, chain: &[&(dyn Error + 'static)]) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for (i, e) in chain.iter().enumerate() {
        let text = e.to_string();
        if i > 0 && last.contains(&text) {
            continue;
        }
        let shown = crate::text::escape_lines(&text);
        if i == 0 {
            out.push_str(&format!("{tool}: error: {shown}\n"));
        } else {
            out.push_str(&format!("  caused by: {shown}\n"));
        }
        last = text;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Coded);

    #[test]
    fn the_status_tables_are_in_code_order_and_name_every_code_once() {
        for table in [SAVE_STATUSES, LOAD_STATUSES] {
            let codes: Vec<u8> = table.iter().map(|s| s.code).collect();
            let mut sorted = codes.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(codes, sorted, "codes out of order or repeated");
            for s in table {
                assert!(!s.name.is_empty(), "code {} has no name", s.code);
                assert!(!s.meaning.contains("  "), "code {}: double space", s.code);
            }
            for code in [SUCCESS, FAILURE, USAGE, VERIFY, DAEMON, INTERRUPTED] {
                assert!(codes.contains(&code), "code {code} missing");
            }
        }
        assert!(LOAD_STATUSES.iter().any(|s| s.code == BASE_MISSING));
        assert!(!SAVE_STATUSES.iter().any(|s| s.code == BASE_MISSING));
    }

    #[test]
    fn finds_the_code_through_a_chain() {
        let e = Outer(Coded::new(VERIFY, "hash mismatch"));
        let chain: Vec<&(dyn Error + 'static)> = {
            let mut v: Vec<&(dyn Error + 'static)> = vec![&e];
            let mut cur: Option<&(dyn Error + 'static)> = e.source();
            while let Some(c) = cur {
                v.push(c);
                cur = c.source();
            }
            v
        };
        assert_eq!(code_of(chain), VERIFY);
        assert_eq!(e.0.to_string(), "hash mismatch");
        let plain = std::io::Error::other("x");
        assert_eq!(code_of([&plain as &(dyn Error + 'static)]), FAILURE);
    }

    #[test]
    fn the_report_shows_control_characters_escaped_and_keeps_line_breaks() {
        let e = Outer(Coded::new(
            VERIFY,
            "tag evil\u{1b}]0;x\u{7}:1 is missing\n  chain sha256:1 from base\r:1",
        ));
        let chain: Vec<&(dyn Error + 'static)> = vec![&e, &e.0];
        let text = render("partial-load", &chain);
        assert_eq!(
            text,
            "partial-load: error: outer\n  caused by: tag evil\\u{1b}]0;x\\u{7}:1 is \
             missing\n  chain sha256:1 from base\\r:1\n"
        );
    }
}
