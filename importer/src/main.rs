//! `partial-load`: verifies partial-save bundles (signature, manifest, hashes, base layers) and
//! loads them into the air-gapped daemon or pushes them into its registry; writes the inventory
//! of either; rebuilds complete archives.

mod base;
mod bundle;
mod bundle_reader;
mod connect;
mod errors;
mod inventory;
mod load;
mod pipe;
mod push;
mod rebuild;
mod registry_connect;
mod registry_images;
mod rehydrate;
mod state;
mod upload;

use clap::Parser;
use partial_common::exit;
// The command line is the library part of this package (src/lib.rs), shared with `cargo xtask`.
use partial_load::cli;
use std::process::ExitCode;

fn main() -> ExitCode {
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
    let result = rt.block_on(async move {
        match cli.command {
            cli::Command::Load(a) => load::run_load(a).await,
            cli::Command::Verify(a) => load::run_verify(a).await,
            cli::Command::Inventory(a) => inventory::run(a).await,
            cli::Command::Rehydrate(a) => rehydrate::run(a).await,
            cli::Command::Push(a) => push::run(a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(exit::report("partial-load", e.chain())),
    }
}
