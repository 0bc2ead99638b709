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
