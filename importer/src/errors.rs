//! The two error kinds every command reports with their own exit code: a bundle that does not
//! check out (3) and a daemon that fails or cannot be reached (5).

use partial_common::exit::{self, Coded};

/// A verification failure: exit code 3.
pub fn verify_failed(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::VERIFY, msg.into()))
}

/// A daemon failure: exit code 5.
pub fn daemon_err(
    e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> anyhow::Error {
    anyhow::Error::new(Coded::new(exit::DAEMON, e))
}
