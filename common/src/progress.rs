//! Progress display on stderr with indicatif. Bars draw only when stderr is a terminal (indicatif
//! hides them otherwise), so scripts and CI logs stay clean; results go to stdout separately.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
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

/// A byte counter with a known total (a bar) or an unknown one (a spinner with bytes and rate).
pub fn bytes(message: &str, total: Option<u64>) -> ProgressBar {
    let pb = match total {
        Some(t) => {
            let pb = ProgressBar::with_draw_target(Some(t), target());
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg:<12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            pb
        }
        None => {
            let pb = ProgressBar::with_draw_target(None, target());
            pb.set_style(
                ProgressStyle::with_template(
                    "{spinner} {bytes} read ({bytes_per_sec}) {msg} [{elapsed}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb
        }
    };
    pb.set_message(message.to_string());
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A spinner for waits of unknown length (e.g. the daemon staging an export).
pub fn spinner(message: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
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
    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(super::human_bytes(1024), "1.00 KiB");
        assert_eq!(super::human_bytes(3 * 1024 * 1024), "3.00 MiB");
    }
}
