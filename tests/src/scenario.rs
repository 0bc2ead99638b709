//! The standard scene of the end-to-end tests: on the source daemon a base image, `app:1` and
//! `app:2` built on it (app:2 = base + a new app layer + a hotfix); the air-gapped daemon holds
//! whatever the test gives it.

use crate::{layer_files, Content, Daemon, DaemonPair};

/// Image IDs of the standard scene.
pub struct Scene {
    pub base: String,
    pub app1: String,
    pub app2: String,
}

/// Builds `base:1`, `app:1` and `app:2` on the source daemon.
pub fn build_standard(pair: &DaemonPair) -> Scene {
    build_standard_on(&pair.source)
}

/// Builds `base:1`, `app:1` and `app:2` on `s` (a test that needs one daemon only).
pub fn build_standard_on(s: &Daemon) -> Scene {
    let base = s
        .import_rootfs("base:1", 11, &[300_000, 50_000, 4096], Content::Random)
        .expect("import base:1");
    let app1 = s
        .build(
            "app:1",
            "base:1",
            &[layer_files(21, "app", 4, 60_000, Content::Random)],
        )
        .expect("build app:1");
    let app2 = s
        .build(
            "app:2",
            "base:1",
            &[
                layer_files(22, "app", 4, 60_000, Content::Random),
                layer_files(23, "hotfix", 1, 2_000, Content::Compressible),
            ],
        )
        .expect("build app:2");
    Scene { base, app1, app2 }
}

/// Gives the air-gapped daemon `images` from the source daemon by a plain save and load.
pub fn give_airgap(pair: &DaemonPair, images: &[&str]) {
    let tar = pair.source.save(images).expect("docker save");
    pair.airgap.load(&tar).expect("docker load");
    let _ = std::fs::remove_file(tar);
}

/// The standard scene on a fresh daemon pair, the air-gapped side holding `base:1`, and a
/// temporary folder; `None` when no daemons can be started (the gate has said so).
pub fn standard_pair() -> Option<(DaemonPair, Scene, tempfile::TempDir)> {
    let pair = crate::require_daemons()?;
    let scene = build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().expect("a temporary folder");
    Some((pair, scene, dir))
}

/// `app:2` against `base:1` to `dir/name` with `extra` flags, signed with `dir/team.key`;
/// returns the bundle.
pub fn export_app(
    pair: &DaemonPair,
    dir: &std::path::Path,
    name: &str,
    extra: &[&str],
) -> std::path::PathBuf {
    crate::cli::Export::new(pair.source.host(), dir, name)
        .args(extra)
        .bundle()
}

/// `partial-load CMD BUNDLE --key dir/team.pub -H <air-gapped daemon> EXTRA…`.
pub fn on_airgap(
    pair: &DaemonPair,
    cmd: &str,
    bundle: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
) -> crate::cli::Run {
    let mut args: Vec<String> = vec![
        cmd.into(),
        bundle.to_string_lossy().into_owned(),
        "--key".into(),
        dir.join("team.pub").to_string_lossy().into_owned(),
        "-H".into(),
        pair.airgap.host(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    crate::cli::load(&args)
}
