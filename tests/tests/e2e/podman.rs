//! Issue 21, part 2: podman (its Docker-compatible API, `podman system service`) as a
//! destination and a source, mirroring the Docker load tests (`load`, `rehydrate`).
//! Bundles are exported by `partial-save` from a private `dockerd`; podman is a private service
//! per test (`partial_tests::podman`) given the base with `podman load` of a plain `docker save`
//! archive. Cases: the load gives the source's image ID and tags (one name: loaded partial; several
//! names: loaded complete), `verify` passes; a missing base is exit 4 naming it; a tampered bundle
//! is exit 3 with nothing loaded; `inventory -H podman` feeds `partial-save --have`; `rehydrate
//! -H podman` writes an archive that loads into an empty `dockerd`; `partial-save -H podman` as
//! the source of a bundle that loads into `dockerd`; a delta bundle rebuilt against the
//! reference layer podman holds.

use partial_common::reference::familiar;
use partial_tests::cli::{keygen, load, save, Export, Run};
use partial_tests::scenario::{build_standard, build_standard_on, Scene};
use partial_tests::{require_daemon, require_podman, Content, Daemon, DaemonOptions, Podman};
use std::path::{Path, PathBuf};

/// `partial-save -H source -i IMAGES… -e base:1 -o dir/name EXTRA…`, signed with dir/team.key
/// (made on first use); returns the bundle.
fn export(source: &Daemon, dir: &Path, name: &str, images: &[&str], extra: &[&str]) -> PathBuf {
    Export::new(source.host(), dir, name)
        .images(images)
        .args(extra)
        .bundle()
}

/// `partial-load CMD BUNDLE --key dir/team.pub -H host --state dir/state.json EXTRA…`.
fn pl(cmd: &str, bundle: &Path, dir: &Path, host: &str, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        cmd.into(),
        bundle.to_string_lossy().into_owned(),
        "--key".into(),
        dir.join("team.pub").to_string_lossy().into_owned(),
        "-H".into(),
        host.into(),
    ];
    if cmd == "load" || cmd == "verify" {
        args.extend([
            "--state".into(),
            dir.join("state.json").to_string_lossy().into_owned(),
        ]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    load(&args)
}

/// Gives podman `images` of `source` with `podman load` of a plain `docker save` archive.
fn give_podman(source: &Daemon, podman: &Podman, images: &[&str]) {
    let tar = source.save(images).expect("docker save");
    podman.load(&tar).expect("podman load");
    let _ = std::fs::remove_file(tar);
}

/// A source daemon with the standard scene and a podman service holding base:1.
fn setup() -> Option<(Daemon, Podman, Scene, tempfile::TempDir)> {
    let source = require_daemon(DaemonOptions::labelled("source"))?;
    let podman = require_podman()?;
    let scene = build_standard_on(&source);
    give_podman(&source, &podman, &["base:1"]);
    Some((source, podman, scene, tempfile::tempdir().unwrap()))
}

/// Whether podman's names for `image` include one that means `tag` (podman names `app:2`
/// `docker.io/library/app:2` or `localhost/app:2`).
fn podman_names(podman: &Podman, image: &str, tag: &str) -> bool {
    let tags = podman.tags(image).unwrap();
    tags.iter()
        .any(|t| familiar(t).as_deref() == Some(tag) || *t == format!("localhost/{tag}"))
}

#[test]
fn a_docker_bundle_loads_into_podman_with_the_source_id_and_tags() {
    let Some((source, podman, scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    let host = podman.host();
    for (name, extra) in [("a.tgz", vec![]), ("a.tzst", vec!["--compression", "zstd"])] {
        let bundle = export(&source, d, name, &["app:2"], &extra);
        let b = &bundle;
        let r = pl("verify", b, d, &host, &[]).ok();
        assert!(
            r.stderr.contains("the daemon has every base layer"),
            "{}",
            r.stderr
        );
        let r = pl("load", b, d, &host, &["--json"]).ok();
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["images"][0]["id"], scene.app2, "{name}: {v}");
        assert_eq!(v["images"][0]["tags"][0], "app:2", "{name}: {v}");
        assert_eq!(podman.image_id("app:2").unwrap(), scene.app2, "{name}");
        assert!(podman_names(&podman, &scene.app2, "app:2"), "{name}");
        podman.remove_image(&scene.app2).unwrap();
    }

    // Several names in one bundle: podman 4.3 cannot take that partial archive, so it goes
    // complete (rehydrated from podman's own base), every name arriving.
    let bundle = export(&source, d, "two.tgz", &["app:2", "app:1"], &[]);
    let r = pl("load", &bundle, d, &host, &["--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let loaded = v["loaded"].as_array().unwrap();
    assert_eq!(loaded.len(), 2, "one name per image: {v}");
    assert_eq!(podman.image_id("app:2").unwrap(), scene.app2);
    assert_eq!(podman.image_id("app:1").unwrap(), scene.app1);
    assert!(podman_names(&podman, &scene.app1, "app:1"));
    let ids = podman.image_ids().unwrap();
    let mut want = vec![scene.base.clone(), scene.app1.clone(), scene.app2.clone()];
    want.sort();
    assert_eq!(ids, want, "exactly the base and the two images");
}

#[test]
fn a_missing_base_exits_4_naming_it() {
    let Some(source) = require_daemon(DaemonOptions::labelled("source")) else {
        return;
    };
    let Some(podman) = require_podman() else {
        return;
    };
    build_standard_on(&source);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = export(&source, d, "app.tgz", &["app:2"], &[]);
    let r = pl("load", &bundle, d, &podman.host(), &[]).expect_code(4);
    assert!(r.stderr.contains("base:1"), "{}", r.stderr);
    assert!(r.stderr.contains(&podman.host()), "{}", r.stderr);
    assert!(!podman.has_image("app:2"));
    assert!(podman.image_ids().unwrap().is_empty());
    pl("verify", &bundle, d, &podman.host(), &[]).expect_code(4);
}

#[test]
fn a_tampered_bundle_exits_3_and_loads_nothing() {
    let Some((source, podman, scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    let bundle = export(&source, d, "app.tgz", &["app:2"], &[]);
    let original = std::fs::read(&bundle).unwrap();
    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    std::fs::write(&bundle, &flipped).unwrap();
    let r = pl("load", &bundle, d, &podman.host(), &[]).expect_code(3);
    assert!(r.stderr.contains("app.tgz"), "{}", r.stderr);
    assert!(!podman.has_image("app:2"));
    assert_eq!(podman.image_ids().unwrap(), vec![scene.base.clone()]);
    // A manifest edited after signing.
    std::fs::write(&bundle, &original).unwrap();
    let manifest = d.join("app.tgz.manifest.json");
    let m = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, m.replace("\"app:2\"", "\"app:3\"")).unwrap();
    pl("load", &bundle, d, &podman.host(), &[])
        .expect_code(3)
        .stderr_has("signature");
    assert_eq!(podman.image_ids().unwrap(), vec![scene.base.clone()]);
    // Untouched, it loads.
    std::fs::write(&manifest, &m).unwrap();
    pl("load", &bundle, d, &podman.host(), &[]).ok();
    assert_eq!(podman.image_id("app:2").unwrap(), scene.app2);
}

#[test]
fn inventory_of_podman_feeds_the_next_export() {
    let Some((source, podman, scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    give_podman(&source, &podman, &["app:1"]);
    let inv = d.join("have.json");
    load(&[
        "inventory".to_string(),
        "-H".into(),
        podman.host(),
        "-o".into(),
        inv.to_string_lossy().into_owned(),
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    assert_eq!(v["schema"], "partial-load/inventory");
    let mut ids: Vec<String> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want = vec![scene.base.clone(), scene.app1.clone()];
    want.sort();
    assert_eq!(ids, want, "{v}");
    keygen(d, "team");
    let out = d.join("app.tgz");
    let r = save(&[
        "-H".to_string(),
        source.host(),
        "-i".into(),
        "app:2".into(),
        "--have".into(),
        inv.to_string_lossy().into_owned(),
        "-o".into(),
        out.to_string_lossy().into_owned(),
        "--sign-key".into(),
        d.join("team.key").to_string_lossy().into_owned(),
        "--json".into(),
    ])
    .ok();
    let res: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        res["manifest"]["required_base"][0]["origin"]["kind"],
        "inventory"
    );
    pl("load", &out, d, &podman.host(), &[]).ok();
    assert_eq!(podman.image_id("app:2").unwrap(), scene.app2);
}

#[test]
fn rehydrate_from_podman_loads_into_an_empty_dockerd() {
    let Some(pair) = partial_tests::require_daemons() else {
        return;
    };
    let Some(podman) = require_podman() else {
        return;
    };
    let scene = build_standard(&pair);
    give_podman(&pair.source, &podman, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bundle = export(&pair.source, d, "app.tgz", &["app:2"], &[]);
    let full = d.join("full.tar");
    pl(
        "rehydrate",
        &bundle,
        d,
        &podman.host(),
        &["-o", &full.to_string_lossy()],
    )
    .ok();
    assert!(pair.airgap.image_ids().unwrap().is_empty());
    pair.airgap.load(&full).unwrap();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}

#[test]
fn podman_as_a_source_exports_a_bundle_that_loads_into_dockerd() {
    let Some(pair) = partial_tests::require_daemons() else {
        return;
    };
    let Some(podman) = require_podman() else {
        return;
    };
    let scene = build_standard(&pair);
    // podman holds base:1 and app:2 (as localhost/base:1, localhost/app:2); dockerd base:1.
    give_podman(&pair.source, &podman, &["base:1", "app:2"]);
    partial_tests::scenario::give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let out = d.join("fromp.tgz");
    let r = save(&[
        "-H".to_string(),
        podman.host(),
        "-i".into(),
        "app:2".into(),
        "-e".into(),
        "base:1".into(),
        "-o".into(),
        out.to_string_lossy().into_owned(),
        "--sign-key".into(),
        d.join("team.key").to_string_lossy().into_owned(),
        "--json".into(),
    ])
    .ok();
    let res: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let img = &res["manifest"]["images"][0];
    assert_eq!(img["id"], scene.app2, "{res}");
    // The bundle names the image as podman does: a short name is podman's localhost/ one.
    assert_eq!(img["tags"], serde_json::json!(["localhost/app:2"]), "{res}");
    let carried = img["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["carried"] == true)
        .count();
    assert_eq!(carried, 2, "the app and hotfix layers only: {res}");
    pl("load", &out, d, &pair.airgap.host(), &[]).ok();
    assert_eq!(pair.airgap.image_id("localhost/app:2").unwrap(), scene.app2);
}

#[test]
fn a_delta_bundle_rebuilds_against_podman_held_references() {
    let Some(source) = require_daemon(DaemonOptions::labelled("source")) else {
        return;
    };
    let Some(podman) = require_podman() else {
        return;
    };
    // app:1 and app:2: the same app layer but for one small file.
    let app = |version: u8| {
        let mut files = partial_tests::layer_files(31, "app", 4, 200_000, Content::Random);
        files.push(("app/VERSION".into(), vec![b'0' + version; 64]));
        files
    };
    source
        .import_rootfs("base:1", 11, &[100_000], Content::Random)
        .unwrap();
    source.build("app:1", "base:1", &[app(1)]).unwrap();
    let app2 = source.build("app:2", "base:1", &[app(2)]).unwrap();
    give_podman(&source, &podman, &["app:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let out = d.join("delta.tgz");
    let r = save(&[
        "-H".to_string(),
        source.host(),
        "-i".into(),
        "app:2".into(),
        "-e".into(),
        "app:1".into(),
        "--delta".into(),
        "-o".into(),
        out.to_string_lossy().into_owned(),
        "--sign-key".into(),
        d.join("team.key").to_string_lossy().into_owned(),
        "--json".into(),
    ])
    .ok();
    let res: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let deltas = res["manifest"]["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l.get("delta").is_some())
        .count();
    assert_eq!(deltas, 1, "the app layer travels as a delta: {res}");
    // The reference layer is read from podman's own export.
    let r = pl("verify", &out, d, &podman.host(), &[]).ok();
    assert!(r.stderr.contains("rebuilt"), "{}", r.stderr);
    pl("load", &out, d, &podman.host(), &[]).ok();
    assert_eq!(podman.image_id("app:2").unwrap(), app2);
}
