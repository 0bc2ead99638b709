//! `partial-load`: verifies partial-save bundles (signature, manifest, hashes, base layers) and
//! loads them into the air-gapped daemon or pushes them into its registry; writes the inventory
//! of either; rebuilds complete archives.
//!
//! The whole tool is this library; `src/main.rs` only calls [`main`]. That way `cargo xtask`
//! renders the man pages and completions from the same command line ([`cli`]), and the
//! end-to-end tests link the same code into their own copy of the binary (Cargo hands an
//! integration test only its own package's binaries: see tests/src/bins.rs).

mod approval;
mod approve;
mod audit;
mod base;
mod bundle;
mod bundle_reader;
pub mod cli;
mod confirm;
mod connect;
mod containerd;
mod daemon_dest;
mod errors;
mod image_keys;
mod inventory;
mod layer_files;
mod load;
mod push;
mod rebuild;
mod registry_connect;
mod registry_images;
mod rehydrate;
mod report;
mod state;
mod upload;

use clap::Parser;
use partial_common::exit;
use std::process::ExitCode;

/// Runs `partial-load` with the process's arguments.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Err(e) = partial_common::output::cleanup::install_handler() {
        eprintln!("warning: cannot install the Ctrl-C handler: {e}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("partial-load: error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some((path, name)) = cli.command.audit_log() {
        if let Err(e) = audit::open(path, name) {
            return ExitCode::from(exit::report("partial-load", e.chain()));
        }
    }
    let result = rt.block_on(async move {
        match cli.command {
            cli::Command::Load(a) => match a.containerd.socket.is_some() {
                true => {
                    let t = a.containerd.clone();
                    containerd::load::run_load(a, &t).await
                }
                false => load::run_load(a).await,
            },
            cli::Command::Verify(a) => match a.containerd.socket.is_some() {
                true => {
                    let t = a.containerd.clone();
                    containerd::load::run_verify(a, &t).await
                }
                false => load::run_verify(a).await,
            },
            cli::Command::Inventory(a) => inventory::run(a).await,
            cli::Command::Rehydrate(a) => match a.containerd.socket.is_some() {
                true => {
                    let t = a.containerd.clone();
                    containerd::rehydrate::run(a, &t).await
                }
                false => rehydrate::run(a).await,
            },
            cli::Command::Push(a) => push::run(a).await,
            cli::Command::Approve(a) => approve::run(a).await,
            cli::Command::Report(a) => report::run(a).await,
            cli::Command::Audit(cli::AuditCommand::Verify { file }) => {
                let n = audit::verify(&file)?;
                eprintln!("{}: {n} line(s), the hash chain is intact", file.display());
                Ok(())
            }
        }
    });
    let (code, error) = match &result {
        Ok(()) => (0, None),
        Err(e) => (
            exit::report("partial-load", e.chain()),
            Some(format!("{e:#}")),
        ),
    };
    if let Err(e) = audit::finish(code, error) {
        let c = exit::report("partial-load", e.chain());
        return ExitCode::from(if code == 0 { c } else { code });
    }
    ExitCode::from(code)
}
