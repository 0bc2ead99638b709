//! The one skip gate of the test suite: a test that cannot get what it needs (a daemon, a tool,
//! a device) either says so loudly and skips, or, when the environment variable that makes it
//! mandatory is `1` (`PARTIAL_REQUIRE_DAEMON`, `PARTIAL_REQUIRE_TOOLS`; `.ci/run` sets both),
//! fails. Every skip goes through here, so none can hide under a mandatory run.

/// Whether `var` is set to `1` (or `true`, `yes`).
pub fn required(var: &str) -> bool {
    matches!(std::env::var(var).as_deref(), Ok("1" | "true" | "yes"))
}

/// Skips loudly (returns `false`), or panics when `var` is `1`. `what`: what is missing, for
/// the message; the calling thread's name names the test.
#[track_caller]
pub fn skip_or_fail(var: &str, what: &str) -> bool {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("a test");
    if required(var) {
        panic!("{name}: {what}, and {var}=1 makes this test mandatory");
    }
    // Written to the stderr handle directly, not with eprintln!: libtest captures the macros'
    // output of passing tests, and a skip must be seen.
    let msg = format!(
        "\n=== SKIPPED: {name}: {what} ===\n\
         === (run as root with the test packages installed; {var}=1 turns this skip into a failure) ===\n\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), msg.as_bytes());
    false
}

/// True when `tool` answers `tool ARG`; otherwise [`skip_or_fail`] under `PARTIAL_REQUIRE_TOOLS`.
#[track_caller]
pub fn have_tool(tool: &str, arg: &str) -> bool {
    if std::process::Command::new(tool).arg(arg).output().is_ok() {
        return true;
    }
    skip_or_fail(
        "PARTIAL_REQUIRE_TOOLS",
        &format!("`{tool}` is not installed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_is_a_failure_only_when_required() {
        // A variable nobody sets: the skip returns false.
        assert!(!skip_or_fail("PARTIAL_GATE_TEST_UNSET", "nothing"));
        let r = std::panic::catch_unwind(|| {
            // PATH is always set, never to "1": use a variable set for this test alone.
            std::env::set_var("PARTIAL_GATE_TEST_SET", "1");
            skip_or_fail("PARTIAL_GATE_TEST_SET", "something")
        });
        std::env::remove_var("PARTIAL_GATE_TEST_SET");
        assert!(r.is_err(), "a required skip must fail");
        assert!(have_tool("sh", "-c") || !required("PARTIAL_REQUIRE_TOOLS"));
    }
}
