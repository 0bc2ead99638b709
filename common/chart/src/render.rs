//! Rendering through `helm template` when helm is there (`--helm BIN`, else `helm` on PATH): the
//! only way to see exactly what a chart deploys with the given values. Nothing here needs a
//! cluster or network: `helm template` renders offline. Its output is read up to
//! [`MAX_OUTPUT_BYTES`]; past that, helm is stopped and the chart refused.

use super::ChartError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| ChartError::HelmStart {
        helm: helm.display().to_string(),
        source,
    })?;
    let render_err = |message: String| ChartError::Render {
        chart: chart.display().to_string(),
        helm: helm.display().to_string(),
        message,
    };
    // Helm's last words say what went wrong: the tail of stderr, read on the side.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut tail = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = e.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            tail
        })
    });
    let mut out = Vec::new();
    let read = match child.stdout.take() {
        Some(o) => o
            .take(MAX_OUTPUT_BYTES + 1)
            .read_to_end(&mut out)
            .map(|_| ()),
        None => Ok(()),
    };
    let over = out.len() as u64 > MAX_OUTPUT_BYTES;
    if over {
        // Stop a template that renders without end; its exit status no longer matters.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| render_err(format!("waiting for helm: {e}")))?;
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    if over {
        return Err(ChartError::RenderTooLarge {
            chart: chart.display().to_string(),
        });
    }
    read.map_err(|e| render_err(format!("reading its output: {e}")))?;
    if !status.success() {
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr = stderr.trim();
        // Keep the message readable.
        let start = stderr.char_indices().rev().nth(2000).map_or(0, |(i, _)| i);
        let tail = &stderr[start..];
        return Err(render_err(format!("{tail} ({status})")));
    }
    String::from_utf8(out).map_err(|_| render_err("the output is not UTF-8".into()))
}

/// Most bytes of `helm template` output read, as of a chart (a template can render without end).
pub const MAX_OUTPUT_BYTES: u64 = super::load::MAX_CHART_BYTES;

/// Bytes of helm's stderr kept for the error message.
const STDERR_TAIL: usize = 16 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A `helm` stand-in running the shell `script`.
    fn fake_helm(dir: &Path, script: &str) -> PathBuf {
        let p = dir.join("helm");
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn output_over_the_limit_is_refused_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("c.tgz");
        let helm = fake_helm(dir.path(), "echo 'kind: Pod'; echo warn >&2");
        assert_eq!(template(&helm, &chart, &[], &[]).unwrap(), "kind: Pod\n");
        let helm = fake_helm(dir.path(), "echo nope >&2; exit 4");
        let e = template(&helm, &chart, &[], &[]).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("c.tgz"), "{e}");
        // A template can render without end: the output is bounded, helm is stopped.
        let helm = fake_helm(dir.path(), "yes 'image: x'");
        let started = std::time::Instant::now();
        let e = match template(&helm, &chart, &[], &[]) {
            Ok(out) => panic!("{} bytes accepted", out.len()),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("c.tgz") && e.contains("64 MiB"), "{e}");
        assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
    }
}
