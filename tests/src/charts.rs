//! Helm chart tests' needs: the real public charts in `tests/fixtures/charts/` (Apache-2.0, kept
//! in the repository with their licence), and the test-only `helm` wrapper `tests/helm/helm` over
//! PyPI's helm-python-sdk, installed with `python3 -m pip install helm-python-sdk==0.2.2` when
//! missing.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The folder of the fixture charts, `tests/fixtures/charts` in this repository.
pub fn chart_fixtures() -> PathBuf {
    let dir = crate::workspace_root().join("tests/fixtures/charts");
    assert!(
        dir.is_dir(),
        "the fixture charts are missing: {}",
        dir.display()
    );
    dir
}

/// One fixture chart by folder name, e.g. `nginx-22.1.1`.
pub fn chart(name: &str) -> PathBuf {
    chart_fixtures().join(name)
}

fn sdk_importable() -> bool {
    Command::new("python3")
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The command that installs the wrapper's SDK (also what `.ci/run` should run).
pub const INSTALL: [&str; 5] = ["python3", "-m", "pip", "install", "helm-python-sdk==0.2.2"];

/// The `helm` wrapper, its SDK installed (once per process) when missing; `None` after a loud
/// skip when it cannot be (a failure under `PARTIAL_REQUIRE_TOOLS=1`).
pub fn helm_wrapper() -> Option<PathBuf> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        if sdk_importable() {
            return Ok(());
        }
        let o = Command::new(INSTALL[0])
            .args(&INSTALL[1..])
            .arg("--quiet")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", INSTALL.join(" ")))?;
        if o.status.success() && sdk_importable() {
            Ok(())
        } else {
            Err(format!(
                "{} failed: {}",
                INSTALL.join(" "),
                String::from_utf8_lossy(&o.stderr)
            ))
        }
    });
    match ready {
        Ok(()) => Some(crate::workspace_root().join("tests/helm/helm")),
        Err(e) => crate::pair::skip_or_panic(
            "PARTIAL_REQUIRE_TOOLS",
            "the helm wrapper's SDK (helm-python-sdk) is missing",
            &anyhow::anyhow!("{e}"),
        ),
    }
}
