//! Issue 21, part 0: Docker 26 (Debian trixie's, from `PARTIAL_DOCKER26_DIR`) as a source and a
//! destination, with the classic store and with the containerd image store, next to the
//! system's Docker 20.10. Each case runs the same round trip on its own pair of private daemons
//! (`partial_tests::docker26::require_pair`): the standard scene on the source, `base:1` given
//! to the destination by a plain save and load; `partial-save -e base:1` of `app:2` loads (exit
//! 0) with the source's config digest and name; the destination's inventory feeds the next
//! export (`--have`), whose bundle leaves the base out and loads; with its images removed the
//! destination lacks the base: exit 4 naming it. Two more cases on the containerd store at both
//! ends: a destination whose base came uncompressed through Docker 20.10 (its blobs are not the
//! source's), and a `--delta` bundle rebuilt from the destination's own reference image; and an
//! untagged image (exported by ID from 20.10) into the containerd store.
//!
//! Identity is compared by config digest (`docker save`'s `manifest.json` `Config`), which the
//! containerd store does not show as the image ID (that is its manifest digest).

use partial_tests::bundle_check::check_bundle;
use partial_tests::cli::{keygen, load, save, Export, Run};
use partial_tests::docker26::{config_digest, require_pair, saved_layers, Engine};
use partial_tests::scenario::{build_standard, give_airgap};
use partial_tests::{layer_files, Content, Daemon, DaemonPair};
use std::path::Path;

/// `partial-load CMD BUNDLE --key dir/team.pub -H airgap --state dir/state.json EXTRA…`.
fn pl(cmd: &str, bundle: &Path, dir: &Path, airgap: &Daemon, extra: &[&str]) -> Run {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut args = vec![
        cmd.to_string(),
        s(bundle),
        "--key".into(),
        s(&dir.join("team.pub")),
        "-H".into(),
        airgap.host(),
        "--state".into(),
        s(&dir.join("state.json")),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    load(&args)
}

/// The loaded image `name` on `airgap` has config digest `want`, and `name` is one of its tags.
#[track_caller]
fn assert_arrived(airgap: &Daemon, name: &str, want: &str) {
    assert_eq!(
        config_digest(airgap, name).expect("config digest on the destination"),
        want,
        "{name} on {}",
        airgap.label()
    );
    let tags = airgap
        .docker(&["image", "inspect", "--format", "{{json .RepoTags}}", name])
        .unwrap();
    assert!(tags.contains(&format!("\"{name}\"")), "{name}: {tags}");
}

/// `partial-load inventory -H airgap -o dir/have.json` (which must describe the `airgap`
/// engine), then `partial-save --have` of `image`: the bundle leaves the base out and loads.
fn inventory_round_trip(pair: &DaemonPair, airgap: Engine, dir: &Path, image: &str, want: &str) {
    let inv = dir.join("have.json");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    load(&["inventory", "-H", &pair.airgap.host(), "-o", &s(&inv)]).ok();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&inv).unwrap()).unwrap();
    assert_eq!(v["schema"], "partial-load/inventory", "{v}");
    let daemon = &v["daemon"];
    let version = daemon["version"].as_str().unwrap_or_default();
    assert_eq!(
        version.starts_with("26."),
        airgap != Engine::System,
        "{}: {daemon}",
        airgap.name()
    );
    assert_eq!(
        daemon["containerd_store"],
        airgap == Engine::Docker26Containerd,
        "{}: {daemon}",
        airgap.name()
    );
    let out = dir.join("have.tgz");
    let r = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        image,
        "--have",
        &s(&inv),
        "-o",
        &s(&out),
        "--sign-key",
        &s(&dir.join("team.key")),
        "--json",
    ])
    .ok();
    let res: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        res["manifest"]["required_base"][0]["origin"]["kind"], "inventory",
        "{res}"
    );
    let facts = check_bundle(&out).unwrap();
    assert!(
        !facts.images[0].left_out_chains().is_empty(),
        "the inventory's layers are left out"
    );
    pl("load", &out, dir, &pair.airgap, &[]).ok();
    assert_arrived(&pair.airgap, image, want);
}

/// The round trip of the module doc on a `source` → `airgap` pair.
fn round_trip(source: Engine, airgap: Engine) {
    let Some(pair) = require_pair(source, airgap) else {
        return;
    };
    let t0 = std::time::Instant::now();
    build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let app2 = config_digest(&pair.source, "app:2").unwrap();
    let app1 = config_digest(&pair.source, "app:1").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");

    let bundle = Export::new(pair.source.host(), d, "app.tgz").bundle();
    let facts = check_bundle(&bundle).unwrap();
    assert_eq!(
        facts.images[0].id, app2,
        "the bundle names the config digest"
    );
    pl("load", &bundle, d, &pair.airgap, &[]).ok();
    assert_arrived(&pair.airgap, "app:2", &app2);

    inventory_round_trip(&pair, airgap, d, "app:1", &app1);

    // Without its images the destination lacks the base: exit 4, nothing loaded.
    for name in ["app:1", "app:2", "base:1"] {
        pair.airgap.remove_image(name).unwrap();
    }
    let r = pl("load", &bundle, d, &pair.airgap, &[]).expect_code(4);
    assert!(r.stderr.contains("base:1"), "{}", r.stderr);
    assert!(!pair.airgap.has_image("app:2"));
    eprintln!(
        "docker26: {} -> {}: round trip in {:.1} s",
        source.name(),
        airgap.name(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn containerd_store_to_containerd_store() {
    round_trip(Engine::Docker26Containerd, Engine::Docker26Containerd);
}

#[test]
fn classic_store_to_classic_store() {
    round_trip(Engine::Docker26, Engine::Docker26);
}

#[test]
fn docker20_to_containerd_store() {
    round_trip(Engine::System, Engine::Docker26Containerd);
}

#[test]
fn containerd_store_to_docker20() {
    round_trip(Engine::Docker26Containerd, Engine::System);
}

/// The containerd store on both sides, the destination's base having come another way: through
/// Docker 20.10's `docker save`, whose layers are uncompressed, where the source keeps them
/// gzip-compressed. The bundle names the source's compressed blobs; the load still arrives.
#[test]
fn containerd_store_base_with_other_blobs() {
    let Some(pair) = require_pair(Engine::Docker26Containerd, Engine::Docker26Containerd) else {
        return;
    };
    let Some(relay) = partial_tests::require_daemon(Engine::System.options("relay").unwrap())
    else {
        return;
    };
    build_standard(&pair);
    let tar = pair.source.save(&["base:1"]).unwrap();
    relay.load(&tar).unwrap();
    let tar = relay.save(&["base:1"]).unwrap();
    pair.airgap.load(&tar).unwrap();
    let uncompressed: Vec<String> = (pair.airgap.diff_ids("base:1").unwrap().iter())
        .map(|d| format!("blobs/sha256/{}", d.trim_start_matches("sha256:")))
        .collect();
    assert_eq!(saved_layers(&pair.airgap, "base:1").unwrap(), uncompressed);
    assert_ne!(saved_layers(&pair.source, "base:1").unwrap(), uncompressed);
    let app2 = config_digest(&pair.source, "app:2").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let bundle = Export::new(pair.source.host(), d, "app.tgz").bundle();
    pl("load", &bundle, d, &pair.airgap, &[]).ok();
    assert_arrived(&pair.airgap, "app:2", &app2);
}

/// A delta bundle on the containerd store at both ends: app:2 is app:1's layer with one file
/// changed, exported `--delta` against app:1, which the destination holds; the load rebuilds
/// the layer from the destination's own app:1 and the image arrives with the source's config.
#[test]
fn containerd_store_delta_bundle_loads() {
    let Some(pair) = require_pair(Engine::Docker26Containerd, Engine::Docker26Containerd) else {
        return;
    };
    let s = &pair.source;
    s.import_rootfs("base:1", 1, &[4096], Content::Compressible)
        .unwrap();
    let tree = layer_files(5, "app", 32, 64 << 10, Content::Random);
    s.build("app:1", "base:1", std::slice::from_ref(&tree))
        .unwrap();
    let mut changed = tree.clone();
    changed[7].1 = b"one small file changed in the rebuild\n".to_vec();
    s.build("app:2", "base:1", &[changed]).unwrap();
    give_airgap(&pair, &["app:1"]);
    let app2 = config_digest(s, "app:2").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let run = Export::new(s.host(), d, "delta.tgz")
        .base(&["-e", "app:1"])
        .args(&["--delta", "--json"])
        .run()
        .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let layers = v["manifest"]["images"][0]["layers"].as_array().unwrap();
    assert_eq!(
        layers.iter().filter(|l| l.get("delta").is_some()).count(),
        1,
        "{v}"
    );
    pl("load", &d.join("delta.tgz"), d, &pair.airgap, &[]).ok();
    assert_arrived(&pair.airgap, "app:2", &app2);
}

/// An image without a name (exported by its ID from Docker 20.10) loads into the containerd
/// store, which then knows it only by the manifest written for it: the load confirms it by that.
#[test]
fn an_untagged_image_loads_into_the_containerd_store() {
    let Some(pair) = require_pair(Engine::System, Engine::Docker26Containerd) else {
        return;
    };
    let scene = build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let before = pair.airgap.image_ids().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let bundle = Export::new(pair.source.host(), d, "id.tgz")
        .images(&[&scene.app2])
        .bundle();
    assert!(check_bundle(&bundle).unwrap().images[0].tags.is_empty());
    pl("load", &bundle, d, &pair.airgap, &[]).ok();
    let new: Vec<String> = (pair.airgap.image_ids().unwrap().into_iter())
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(new.len(), 1, "one new image: {new:?}");
    assert_ne!(
        new[0], scene.app2,
        "the containerd store's ID is not the config digest"
    );
    assert_eq!(config_digest(&pair.airgap, &new[0]).unwrap(), scene.app2);
}
