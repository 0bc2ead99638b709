//! Rendering through `helm template` when helm is there (`--helm BIN`, else `helm` on PATH): the
//! only way to see exactly what a chart deploys with the given values. Nothing here needs a
//! cluster or network: `helm template` renders offline.

use super::ChartError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The release name charts are rendered under (some templates need one).
pub const RELEASE: &str = "partial-save";

/// `helm` on PATH, if any.
pub fn helm_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("helm"))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `helm template RELEASE CHART -f V… --set S…`: the rendered manifests.
pub fn template(
    helm: &Path,
    chart: &Path,
    values: &[PathBuf],
    set: &[String],
) -> Result<String, ChartError> {
    let mut cmd = Command::new(helm);
    cmd.arg("template").arg(RELEASE).arg(chart);
    for v in values {
        cmd.arg("-f").arg(v);
    }
    for s in set {
        cmd.arg("--set").arg(s);
    }
    let out = cmd.output().map_err(|source| ChartError::HelmStart {
        helm: helm.display().to_string(),
        source,
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        // Helm's last words say what went wrong; keep the message readable.
        let start = stderr.char_indices().rev().nth(2000).map_or(0, |(i, _)| i);
        let tail = &stderr[start..];
        return Err(ChartError::Render {
            chart: chart.display().to_string(),
            helm: helm.display().to_string(),
            message: format!("{} ({})", tail, out.status),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| ChartError::Render {
        chart: chart.display().to_string(),
        helm: helm.display().to_string(),
        message: "the output is not UTF-8".into(),
    })
}
