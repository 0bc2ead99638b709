//! Progress display on stderr with indicatif. Bars draw only when stderr is a terminal (indicatif
//! hides them otherwise), so scripts and CI logs stay clean; results go to stdout separately.
//!
//! A transfer whose size is known beforehand (an export: the source's layer sizes; a load: the
//! bundle's size) is a bar with percentage, rate and time left, so a long run can be planned
//! by; one whose size is unknown is a spinner with bytes and rate. [`Transfer::wait`] shows a
//! plain spinner while nothing moves yet (the daemon staging an export) and gives way to the bar
//! at the first byte. The styles live here so that every command looks the same.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// True when stderr is a terminal, i.e. when progress is worth drawing.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal()
}

fn target() -> ProgressDrawTarget {
    if enabled() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A bar: label, bar, percentage, bytes of total, rate, time left, then the message.
const BAR: &str =
    "{prefix:.bold} [{bar:28.cyan/blue}] {percent:>3}% {binary_bytes}/{binary_total_bytes} \
                   {binary_bytes_per_sec} · {eta} left {wide_msg}";
/// Bytes without a total: label, bytes, rate, elapsed, then the message.
const COUNTER: &str =
    "{spinner} {prefix:.bold} {binary_bytes} ({binary_bytes_per_sec}) {elapsed} {wide_msg}";
/// Nothing moves yet: label, what we wait for, elapsed.
const WAITING: &str = "{spinner} {prefix:.bold} ({elapsed}) {wide_msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Bytes moving from one place to another: a bar when the total is known, a spinner with bytes
/// and rate when not. Cheap to clone (every clone drives the same line).
#[derive(Clone)]
pub struct Transfer {
    bar: ProgressBar,
    /// The expected total, 0 when unknown; grows when the transfer outruns it.
    total: Arc<AtomicU64>,
    waiting: Arc<AtomicBool>,
}

/// A [`Transfer`] of `total` bytes (`None`: unknown) labelled `label`, e.g. `exporting`.
pub fn transfer(total: Option<u64>, label: &str) -> Transfer {
    let bar = ProgressBar::with_draw_target(total, target());
    bar.set_style(style(if total.is_some() { BAR } else { COUNTER }));
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    Transfer {
        bar,
        total: Arc::new(AtomicU64::new(total.unwrap_or(0))),
        waiting: Arc::new(AtomicBool::new(false)),
    }
}

impl Transfer {
    /// Shows a spinner saying what is awaited (`what`) until the first byte moves.
    pub fn wait(&self, what: &str) {
        self.waiting.store(true, Ordering::Relaxed);
        self.bar.set_style(style(WAITING));
        self.bar.set_message(what.to_string());
    }

    /// The bytes moved so far.
    pub fn set_position(&self, pos: u64) {
        self.started(pos);
        self.bar.set_position(pos);
    }

    /// `n` more bytes moved.
    pub fn inc(&self, n: u64) {
        self.started(self.bar.position() + n);
        self.bar.inc(n);
    }

    /// The text after the figures (or, while waiting, what is awaited).
    pub fn set_message(&self, msg: impl Into<String>) {
        if !self.waiting.load(Ordering::Relaxed) {
            self.bar.set_message(msg.into());
        }
    }

    /// The label in front.
    pub fn set_label(&self, label: &str) {
        self.bar.set_prefix(label.to_string());
    }

    /// Removes the line.
    pub fn finish_and_clear(&self) {
        self.bar.finish_and_clear();
    }

    /// The indicatif bar, for whatever this type does not offer.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }

    /// Leaves the waiting spinner at the first byte, and keeps the total ahead of the position
    /// (an estimate may fall short: then the bar stays full until the end instead of lying).
    fn started(&self, pos: u64) {
        let total = self.total.load(Ordering::Relaxed);
        if pos > 0 && self.waiting.swap(false, Ordering::Relaxed) {
            self.bar.set_message(String::new());
            self.bar
                .set_style(style(if total > 0 { BAR } else { COUNTER }));
            self.bar.reset_eta();
            self.bar.reset_elapsed();
        }
        if total > 0 && pos > total {
            self.total.store(pos, Ordering::Relaxed);
            self.bar.set_length(pos);
        }
    }
}

/// A byte counter with a known total (a bar) or an unknown one (a spinner with bytes and rate),
/// labelled `label`; the plain indicatif bar of a [`transfer`].
pub fn bytes(label: &str, total: Option<u64>) -> ProgressBar {
    transfer(total, label).bar
}

/// A spinner for waits of unknown length.
pub fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    pb.set_style(style("{spinner} {msg} {elapsed}"));
    pb.set_message(message.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// Human-readable byte count (binary units).
pub fn human_bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(1024), "1.00 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.00 MiB");
    }

    #[test]
    fn templates_parse() {
        for t in [BAR, COUNTER, WAITING] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn waiting_gives_way_at_the_first_byte() {
        let t = transfer(Some(1000), "exporting");
        t.wait("the daemon is preparing the export");
        t.set_message("ignored while waiting");
        assert_eq!(t.bar().message(), "the daemon is preparing the export");
        t.set_position(10);
        assert!(!t.waiting.load(Ordering::Relaxed));
        t.set_message("carried 1 layer");
        assert_eq!(t.bar().message(), "carried 1 layer");
        assert_eq!(t.bar().length(), Some(1000));
    }

    #[test]
    fn a_short_estimate_grows_with_the_transfer() {
        let t = transfer(Some(100), "loading");
        t.inc(60);
        t.inc(60);
        assert_eq!(t.bar().position(), 120);
        assert_eq!(t.bar().length(), Some(120));
        let unknown = transfer(None, "rehydrating");
        unknown.set_position(5000);
        assert_eq!(unknown.bar().length(), None);
    }
}
