//! Two daemons per test, and the skip policy for tests that need them.
//!
//! [`DaemonPair`] is the project's picture: `source` is the connected network where `partial-save`
//! runs, `airgap` the air-gapped host where `partial-load` runs. Each test gets its own pair (starting
//! one takes well under a second here), so tests on parallel threads never share a daemon; the
//! process-wide limit in [`crate::daemon`] makes a third test wait.
//!
//! Skip policy ([`require_daemons`], [`require_daemons!`](crate::require_daemons)): when no daemon can
//! be started (no `dockerd`, not root, a start failure) the test prints a loud
//! `=== SKIPPED: <test>: … ===` line to stderr and returns early; with `PARTIAL_REQUIRE_DAEMON=1`
//! (set by `.ci/run`) it panics instead. [`require_tool`] does the same for external tools such as
//! `minisign`, mandatory under `PARTIAL_REQUIRE_TOOLS=1`.

use crate::daemon::{Daemon, DaemonOptions, Permit};
use anyhow::Result;

/// The connected side and the air-gapped side.
#[derive(Debug)]
pub struct DaemonPair {
    /// Where images are built and `partial-save` runs.
    pub source: Daemon,
    /// Where bundles are verified and loaded (`partial-load`).
    pub airgap: Daemon,
}

impl DaemonPair {
    /// Starts both daemons with default options (taking two slots of the limit at once).
    pub fn start() -> Result<DaemonPair> {
        DaemonPair::start_with(
            DaemonOptions::labelled("source"),
            DaemonOptions::labelled("airgap"),
        )
    }

    /// Starts both daemons with the given options; they start one after the other.
    pub fn start_with(source: DaemonOptions, airgap: DaemonOptions) -> Result<DaemonPair> {
        let mut permit = Permit::acquire(2);
        let one = permit.split_one();
        let source = Daemon::start_with_permit(source, Some(one))?;
        let airgap = Daemon::start_with_permit(airgap, Some(permit))?;
        Ok(DaemonPair { source, airgap })
    }

    /// The two daemons as separate values (each stops on its own `Drop`, one after the other).
    pub fn into_parts(self) -> (Daemon, Daemon) {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped nor used again, and each field is read exactly once.
        unsafe { (std::ptr::read(&me.source), std::ptr::read(&me.airgap)) }
    }
}

impl Drop for DaemonPair {
    /// Stops both daemons at once (each stop takes about a second); the fields' own `Drop` then
    /// only removes the folders.
    fn drop(&mut self) {
        let DaemonPair { source, airgap } = self;
        std::thread::scope(|s| {
            s.spawn(|| {
                if let Err(e) = source.stop() {
                    eprintln!("warning: stopping the source daemon: {e:#}");
                }
            });
            if let Err(e) = airgap.stop() {
                eprintln!("warning: stopping the airgap daemon: {e:#}");
            }
        });
    }
}

/// The current test's name (libtest names each test's thread after it).
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string()
}

/// A pair of daemons, or `None` after a loud skip message; panics under `PARTIAL_REQUIRE_DAEMON=1`.
pub fn require_daemons() -> Option<DaemonPair> {
    require_daemons_with(
        DaemonOptions::labelled("source"),
        DaemonOptions::labelled("airgap"),
    )
}

/// [`require_daemons`] with options for each side (e.g. `TZ` for the source).
pub fn require_daemons_with(source: DaemonOptions, airgap: DaemonOptions) -> Option<DaemonPair> {
    match DaemonPair::start_with(source, airgap) {
        Ok(pair) => Some(pair),
        Err(e) => skip_or_panic("PARTIAL_REQUIRE_DAEMON", "no dockerd could be started", &e),
    }
}

/// One daemon, or `None` after a loud skip message; panics under `PARTIAL_REQUIRE_DAEMON=1`.
pub fn require_daemon(opts: DaemonOptions) -> Option<Daemon> {
    match Daemon::start_with(opts) {
        Ok(d) => Some(d),
        Err(e) => skip_or_panic("PARTIAL_REQUIRE_DAEMON", "no dockerd could be started", &e),
    }
}

/// True when `tool` is on PATH; otherwise a loud skip message (and `false`), or a panic under
/// `PARTIAL_REQUIRE_TOOLS=1`.
pub fn require_tool(tool: &str) -> bool {
    if crate::bins::which(tool).is_some() {
        return true;
    }
    let e = anyhow::anyhow!("`{tool}` is not on PATH");
    skip_or_panic::<()>("PARTIAL_REQUIRE_TOOLS", "a required tool is missing", &e).is_some()
}

pub(crate) fn skip_or_panic<T>(var: &str, what: &str, e: &anyhow::Error) -> Option<T> {
    partial_common::testutil::gate::skip_or_fail(var, &format!("{what}: {e:#}"));
    None
}

/// `let pair = require_daemons!();` — a [`DaemonPair`], or returns from the test after a loud skip.
#[macro_export]
macro_rules! require_daemons {
    () => {
        match $crate::require_daemons() {
            Some(pair) => pair,
            None => return,
        }
    };
}
