//! Showing untrusted text on a terminal: image names, tags, chart and bundle names come from a
//! manifest or a state file that another party wrote, and a control character in them (ESC
//! starting a terminal escape sequence, a carriage return overwriting the line) must reach the
//! terminal as visible text, never as a command. [`escape`] writes C0 and C1 controls, DEL and
//! the Unicode bidirectional overrides as Rust escapes (`\u{1b}`, `\r`, `\u{202e}`); all other
//! characters, backslashes included, pass unchanged.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal raw.
fn is_unsafe(c: char) -> bool {
    // `is_control` covers C0 (U+0000–U+001F), DEL and C1 (U+0080–U+009F).
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every control character (and bidirectional override) escaped; borrowed when there is
/// none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`] for a text of several lines: each line escaped, the line breaks kept.
pub fn escape_lines(s: &str) -> String {
    s.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_escaped_and_the_rest_unchanged() {
        assert!(matches!(
            escape("app:1 café ü"),
            Cow::Borrowed("app:1 café ü")
        ));
        assert_eq!(escape("evil\u{1b}[2J:1"), "evil\\u{1b}[2J:1");
        assert_eq!(escape("a\rb\nc\td\0"), "a\\rb\\nc\\td\\0");
        assert_eq!(escape("x\u{7f}\u{9b}31m"), "x\\u{7f}\\u{9b}31m");
        assert_eq!(escape("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(escape(r"back\slash"), r"back\slash");
        assert_eq!(
            escape_lines("line 1\u{1b}]0;title\u{7}\n  line 2"),
            "line 1\\u{1b}]0;title\\u{7}\n  line 2"
        );
    }
}
