//! `partial-save`: saves Docker images without the layers the destination already holds, as a
//! compressed, docker-loadable bundle plus a signed manifest.
//!
//! The whole tool is this library; `src/main.rs` only calls [`main`]. That way `cargo xtask`
//! renders the man pages and completions from the same command line ([`cli`]), and the
//! end-to-end tests link the same code into their own copy of the binary (Cargo hands an
//! integration test only its own package's binaries: see tests/src/bins.rs).

pub mod cli;

mod charts;
mod deltas;
mod keep_digests;
mod keygen;
mod layout_indexes;
mod ledger_cmd;
mod report;
mod run;
mod select;
mod tool_info;
mod transfer_report;

use clap::Parser;
use partial_common::exit::{self, Coded};
use std::process::ExitCode;

/// Marks an error as a daemon failure (exit code 5).
pub fn daemon_failure(e: partial_common::daemon::DaemonError) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::DAEMON, e))
}

/// Marks an error as a daemon failure when a daemon error is in its chain, except a missing
/// image, which is the user's input. A daemon error or a stall of the export stream that reached
/// the archive reader as an `io::Error` counts too (the daemon died or hung mid-export).
pub fn maybe_daemon_failure(e: anyhow::Error) -> anyhow::Error {
    use partial_common::channel_reader::Stalled;
    use partial_common::daemon::DaemonError;
    let is_daemon_error = |c: &(dyn std::error::Error + 'static)| {
        matches!(
            c.downcast_ref::<DaemonError>(),
            Some(d) if !matches!(d, DaemonError::NoSuchImage(_))
        ) || c.is::<Stalled>()
    };
    let is_daemon = e.chain().any(|c| {
        is_daemon_error(c)
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| is_daemon_error(inner))
    });
    if is_daemon {
        anyhow::Error::new(Coded::new(exit::DAEMON, e))
    } else {
        e
    }
}

/// A registry error with the exit code it maps to (5 unreachable/refused, 3 bad data, 1 missing).
pub fn registry_failure(e: partial_common::registry::RegistryError) -> anyhow::Error {
    let code = e.exit_code();
    anyhow::Error::new(Coded::new(code, e))
}

/// Gives an error the exit code of a registry error in its chain (also one that reached the
/// archive reader inside an `io::Error`, from a blob stream); others are returned unchanged.
pub fn maybe_registry_failure(e: anyhow::Error) -> anyhow::Error {
    use partial_common::registry::RegistryError;
    let code = e.chain().find_map(|c| {
        c.downcast_ref::<RegistryError>()
            .or_else(|| {
                c.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<RegistryError>())
            })
            .map(RegistryError::exit_code)
    });
    match code {
        Some(code) => anyhow::Error::new(Coded::new(code, e)),
        None => e,
    }
}

/// Marks an error as a usage error (exit code 2): a flag or argument the user must change.
pub fn usage(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::USAGE, e))
}

/// Marks an error as bad input (exit code 3): an archive or file that does not verify.
pub fn bad_input(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::VERIFY, e))
}

/// Runs `partial-save` with the process's arguments.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = partial_common::output::cleanup::install_handler() {
        eprintln!("warning: cannot install the Ctrl-C handler: {e}");
    }
    let result = match &cli.command {
        Some(cli::Command::Keygen(args)) => keygen::run(args),
        Some(cli::Command::Ledger(cmd)) => ledger_cmd::run(cmd),
        Some(cli::Command::Images(args)) => charts::run_images(args),
        None => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run::run(cli.save))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(exit::report("partial-save", e.chain())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::daemon::DaemonError;

    fn code(e: anyhow::Error) -> u8 {
        exit::code_of(e.chain())
    }

    #[test]
    fn daemon_errors_inside_io_errors_are_daemon_failures() {
        let died = std::io::Error::other(DaemonError::LoadFailed("connection reset".into()));
        let e = anyhow::Error::new(died).context("export of x:1");
        assert_eq!(code(maybe_daemon_failure(e)), exit::DAEMON);

        let stalled = std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            partial_common::channel_reader::Stalled { secs: 3 },
        );
        let e = anyhow::Error::new(stalled).context("export of x:1");
        assert_eq!(code(maybe_daemon_failure(e)), exit::DAEMON);

        // A full disk or a missing image is not the daemon's fault.
        let full = std::io::Error::from_raw_os_error(28);
        assert_eq!(
            code(maybe_daemon_failure(anyhow::Error::new(full))),
            exit::FAILURE
        );
        let missing = anyhow::Error::new(DaemonError::NoSuchImage("x:1".into()));
        assert_eq!(code(maybe_daemon_failure(missing)), exit::FAILURE);
    }
}
