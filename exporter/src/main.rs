//! `partial-save`: saves Docker images without the layers the destination already holds, as a
//! compressed, docker-loadable bundle plus a signed manifest.

mod cli;
mod keygen;
mod report;
mod run;
mod select;

use clap::Parser;
use partial_common::exit::{self, Coded};
use std::process::ExitCode;

/// Marks an error as a daemon failure (exit code 5).
pub fn daemon_failure(e: partial_common::daemon::DaemonError) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::DAEMON, e))
}

/// Marks an error as a daemon failure when a daemon error is in its chain, except a missing
/// image, which is the user's input.
pub fn maybe_daemon_failure(e: anyhow::Error) -> anyhow::Error {
    use partial_common::daemon::DaemonError;
    let is_daemon = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<DaemonError>(),
            Some(d) if !matches!(d, DaemonError::NoSuchImage(_))
        )
    });
    if is_daemon {
        anyhow::Error::new(Coded::new(exit::DAEMON, e))
    } else {
        e
    }
}

/// Marks an error as bad input (exit code 3): an archive or file that does not verify.
pub fn bad_input(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::VERIFY, e))
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = partial_common::output::cleanup::install_handler() {
        eprintln!("warning: cannot install the Ctrl-C handler: {e}");
    }
    let result = match &cli.command {
        Some(cli::Command::Keygen(args)) => keygen::run(args),
        None => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run::run(cli.save))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("partial-save: error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(exit::code_of(e.chain()))
        }
    }
}
