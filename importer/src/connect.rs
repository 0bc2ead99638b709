//! Connecting to the daemon named by `-H`/`DOCKER_HOST`, with the request timeout of `--timeout`;
//! any failure is a daemon failure (exit 5).

use crate::cli::DaemonArgs;
use crate::errors::daemon_err;
use anyhow::Result;
use partial_common::daemon::{self, Daemon};
use std::time::Duration;

pub async fn connect(args: &DaemonArgs) -> Result<Daemon> {
    daemon::connect(args.host.as_deref(), Duration::from_secs(args.timeout))
        .await
        .map_err(daemon_err)
}
