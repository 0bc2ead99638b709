//! Flags that no other end-to-end test walks, each against real daemons: `--level` (both ends of
//! the range, and out of it), `--force` (refusing, then replacing an existing bundle), a
//! password-protected signing key (`PARTIAL_SAVE_KEY_PASSWORD`, right and wrong), and
//! `partial-load load --manifest` naming a manifest kept apart from the bundle.

use partial_tests::cli::{files_in, keygen, load, run_cmd, Export, Run};
use partial_tests::scenario::{build_standard, give_airgap};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `partial-save -H host -i app:2 -e base:1 -o OUT --sign-key KEY EXTRA…`.
fn export(host: &str, out: &Path, key: &Path, extra: &[&str]) -> Run {
    let (dir, name) = (out.parent().unwrap(), out.file_name().unwrap());
    Export::new(host, dir, &name.to_string_lossy())
        .key(key)
        .args(extra)
        .run()
}

#[test]
fn level_force_password_and_manifest_flags() {
    let Some(pair) = partial_tests::require_daemons() else {
        return;
    };
    let scene = build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let key = d.join("team.key");
    let host = pair.source.host();

    // --level: both ends of gzip's range give valid bundles, the higher one no bigger.
    let fast = d.join("fast.tgz");
    let best = d.join("best.tgz");
    export(&host, &fast, &key, &["--level", "1"]).ok();
    export(&host, &best, &key, &["--level", "9"]).ok();
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    assert!(
        size(&best) <= size(&fast),
        "{} > {}",
        size(&best),
        size(&fast)
    );
    for b in [&fast, &best] {
        load(&[
            "verify",
            &s(b),
            "--key",
            &s(&d.join("team.pub")),
            "--offline",
        ])
        .ok();
    }
    // Out of range: a usage error that leaves nothing behind.
    let before = files_in(d);
    export(&host, &d.join("bad.tgz"), &key, &["--level", "99"])
        .expect_code(2)
        .stderr_has("level");
    assert_eq!(files_in(d), before);

    // --force: an existing bundle is kept without it, replaced with it.
    let old = std::fs::read(&fast).unwrap();
    export(&host, &fast, &key, &["--level", "9"]).expect_code(2);
    assert_eq!(std::fs::read(&fast).unwrap(), old, "refused, yet replaced");
    export(&host, &fast, &key, &["--level", "9", "--force"]).ok();
    assert_ne!(std::fs::read(&fast).unwrap(), old);

    let cx = Flags {
        pair: &pair,
        scene: &scene,
        d,
        host: &host,
    };
    a_password_protected_key(&cx);
    the_manifest_kept_apart(&cx);
}

/// What the parts of `level_force_password_and_manifest_flags` share: the daemon pair with the
/// standard scene (base:1 on the air-gapped side) and a folder with the team key.
struct Flags<'a> {
    pair: &'a partial_tests::DaemonPair,
    scene: &'a partial_tests::scenario::Scene,
    d: &'a Path,
    host: &'a str,
}

/// A password-protected key: the right password signs, a wrong one fails naming the key.
fn a_password_protected_key(cx: &Flags) {
    let Flags { d, host, .. } = *cx;
    // A password-protected key: the right password signs, a wrong one fails naming the key.
    let mut cmd = Command::new(partial_tests::bin("partial-save"));
    cmd.args(["keygen", "-o", &s(&d.join("locked"))])
        .env("PARTIAL_SAVE_KEY_PASSWORD", "s3cret");
    let r = run_cmd(cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let locked = d.join("locked.key");
    let with_password = |pw: &str, out: &Path| {
        let mut cmd = Command::new(partial_tests::bin("partial-save"));
        cmd.args(["-H", host, "-i", "app:2", "-e", "base:1", "-o", &s(out)])
            .args(["--sign-key", &s(&locked)])
            .env("PARTIAL_SAVE_KEY_PASSWORD", pw)
            .env_remove("DOCKER_HOST");
        run_cmd(cmd)
    };
    let signed = d.join("locked.tgz");
    let r = with_password("s3cret", &signed);
    assert_eq!(r.code, 0, "{}", r.stderr);
    load(&[
        "verify",
        &s(&signed),
        "--key",
        &s(&d.join("locked.pub")),
        "--offline",
    ])
    .ok();
    let before = files_in(d);
    let r = with_password("wrong", &d.join("wrong.tgz"));
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("locked.key"), "{}", r.stderr);
    assert_eq!(files_in(d), before, "a failed signing left files");
}

/// `load --manifest`: the manifest and its signature kept in another folder.
fn the_manifest_kept_apart(cx: &Flags) {
    let Flags { pair, scene, d, .. } = *cx;
    // load --manifest: the manifest and its signature kept in another folder.
    let signed = d.join("locked.tgz");
    let apart = d.join("apart");
    std::fs::create_dir(&apart).unwrap();
    for f in [
        "locked.tgz.manifest.json",
        "locked.tgz.manifest.json.minisig",
    ] {
        std::fs::rename(d.join(f), apart.join(f)).unwrap();
    }
    let manifest = apart.join("locked.tgz.manifest.json");
    load(&[
        "verify",
        &s(&signed),
        "--key",
        &s(&d.join("locked.pub")),
        "--offline",
    ])
    .expect_code(3);
    load(&[
        "load",
        &s(&signed),
        "--manifest",
        &s(&manifest),
        "--key",
        &s(&d.join("locked.pub")),
        "-H",
        &pair.airgap.host(),
        "--state",
        &s(&d.join("state.json")),
    ])
    .ok();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}
