//! The end-to-end tests, one test binary with a module per area (one link instead of one per
//! file: on two cores each binary linked separately cost minutes). Each module starts its own
//! private daemons, registries and runtimes through the `partial_tests` rigs; the binaries under
//! test are `partial-save` and `partial-load` of the same profile (`partial_tests::bin`).
//!
//! Run one area with a filter: `cargo test -p partial-tests --test e2e -- load::`.
//! No test changes this process's environment (it would race the other tests' child processes):
//! one that needs its own `PATH` or `DOCKER_CONFIG` runs a test of this binary in a child process
//! with them set (`registry_client::credentials_come_from_docker_config_and_credential_helpers`).

mod support;

mod approval;
mod charts;
mod cli_paths;
mod containerd;
mod delta;
mod delta_load;
mod docker26;
mod engine;
mod export;
mod fault;
mod fuzz_regressions;
mod identity;
mod layout_identity;
mod ledger;
mod load;
mod names;
mod platforms;
mod podman;
mod push;
mod push_tls;
mod registry_client;
mod regsource;
mod rehydrate;
mod rehydrate_lacking;
mod report;
mod rig_self;
mod rig_smoke;
mod signed_governs;
mod state;
mod writers;
