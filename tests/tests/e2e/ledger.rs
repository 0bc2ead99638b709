//! One-way networks end to end. A series of bundles written against a send ledger
//! (`partial-save --ledger`) carries only what the ledger had not sent and loads in order;
//! `partial-load` refuses a rollback (exit 3, nothing loaded), names a missing bundle of the
//! series whose layers a bundle needs (exit 4), reports a gap it does not need; a forgotten
//! bundle's layers are sent again; an inventory overrides a wrong ledger; two exports at once on
//! one ledger both get recorded, one after the other.

use partial_tests::cli::{keygen, load, save, Export, Run};
use partial_tests::scenario::build_standard;
use partial_tests::{layer_files, require_daemons, sha256_digest, Content, DaemonPair};
use serde_json::Value;
use std::path::Path;

use crate::support::schema;

/// Runs a signed `partial-save -H source -i IMAGE… --ledger dir/LEDGER -o dir/NAME --json`.
fn export_run(
    pair: &DaemonPair,
    dir: &Path,
    ledger: &str,
    name: &str,
    images: &[&str],
    extra: &[&str],
) -> Run {
    Export::new(pair.source.host(), dir, name)
        .images(images)
        .base(&["--ledger", &path_str(&dir.join(ledger))])
        .args(&["--json"])
        .args(extra)
        .run()
}

/// [`export_run`] that must succeed; returns the bundle's manifest.
fn export(pair: &DaemonPair, dir: &Path, ledger: &str, name: &str, images: &[&str]) -> Value {
    let r = export_run(pair, dir, ledger, name, images, &[]).ok();
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["manifest"].clone()
}

/// `partial-load CMD dir/NAME --key dir/team.pub -H airgap --state dir/state.json EXTRA…`.
fn pl(pair: &DaemonPair, dir: &Path, cmd: &str, name: &str, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        cmd.into(),
        path_str(&dir.join(name)),
        "--key".into(),
        path_str(&dir.join("team.pub")),
        "-H".into(),
        pair.airgap.host(),
        "--state".into(),
        path_str(&dir.join("state.json")),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    load(&args)
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The sha256 of a bundle's manifest file, as the next bundle names it in `previous`.
fn manifest_hash(dir: &Path, name: &str) -> String {
    sha256_digest(&std::fs::read(dir.join(format!("{name}.manifest.json"))).unwrap())
}

/// Per layer of the first image: `None` when carried, else the origin of the left-out chain.
fn layer_origins(m: &Value) -> Vec<Option<Value>> {
    let required: Vec<&Value> = m["required_base"].as_array().unwrap().iter().collect();
    m["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            if l["carried"] == true {
                None
            } else {
                let r = required
                    .iter()
                    .find(|r| r["chain_id"] == l["chain_id"])
                    .expect("a left-out layer is a required base");
                Some(r["origin"].clone())
            }
        })
        .collect()
}

/// The ledger bundle number each layer of the first image was left out for (`None`: carried).
fn ledger_bundles(m: &Value) -> Vec<Option<u64>> {
    layer_origins(m)
        .into_iter()
        .map(|o| {
            o.map(|o| {
                assert_eq!(o["kind"], "ledger", "{o}");
                o["bundle"].as_u64().unwrap()
            })
        })
        .collect()
}

fn state_sequence(dir: &Path) -> u64 {
    let v: Value = serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
    assert_eq!(v["schema"], "partial-load/state");
    schema::assert_valid("state", "the load state", &v);
    let series = v["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{v}");
    series[0]["sequence"].as_u64().unwrap()
}

/// `ledger show --json` lists bundles 1 to 3 of site-a; the ledger file and the manifests, as
/// written in `d`, match their JSON Schemas.
fn check_ledger_file(d: &Path) {
    let shown = save(&[
        "ledger",
        "show",
        &path_str(&d.join("site-a.json")),
        "--json",
    ])
    .ok();
    let ledger: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(ledger["schema"], "partial-save/ledger");
    // The ledger file and the manifests, as written, match their JSON Schemas.
    schema::assert_file_valid("ledger", &d.join("site-a.json"));
    for b in ["b1", "b2", "b3"] {
        schema::assert_file_valid("bundle-manifest", &d.join(format!("{b}.tgz.manifest.json")));
    }
    let seqs: Vec<u64> = ledger["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
}

#[test]
fn a_series_loads_in_order_and_refuses_rollbacks_and_missing_bundles() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    let app3 = pair
        .source
        .build(
            "app:3",
            "app:1",
            &[layer_files(24, "extra", 2, 20_000, Content::Random)],
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");

    // Three bundles, each carrying only what the ledger had not sent.
    let m1 = export(&pair, d, "site-a.json", "b1.tgz", &["base:1"]);
    assert_eq!(m1["sequence"], 1);
    assert_eq!(m1["site"]["name"], "site-a");
    assert!(m1.get("previous").is_none(), "{m1}");
    assert_eq!(ledger_bundles(&m1), [None]);
    let m2 = export(&pair, d, "site-a.json", "b2.tgz", &["app:1"]);
    assert_eq!(m2["sequence"], 2);
    assert_eq!(m2["previous"], manifest_hash(d, "b1.tgz").as_str());
    assert_eq!(m2["site"], m1["site"]);
    assert_eq!(ledger_bundles(&m2), [Some(1), None]);
    let m3 = export(&pair, d, "site-a.json", "b3.tgz", &["app:3"]);
    assert_eq!(m3["sequence"], 3);
    assert_eq!(m3["previous"], manifest_hash(d, "b2.tgz").as_str());
    assert_eq!(ledger_bundles(&m3), [Some(1), Some(2), None]);
    assert_eq!(m3["totals"]["layers_carried"], 1);

    check_ledger_file(d);

    // Bundle 1 loads into an empty daemon; bundle 3 without bundle 2 names bundle 2 (exit 4)
    // and loads nothing, and the state stays at bundle 1.
    pl(&pair, d, "load", "b1.tgz", &[]).ok();
    assert_eq!(state_sequence(d), 1);
    let r = pl(&pair, d, "load", "b3.tgz", &[])
        .expect_code(4)
        .stderr_has("came in bundle 2, which never arrived")
        .stderr_has("load bundle 2 first");
    assert!(r.stderr.contains("never arrived"), "{}", r.stderr);
    assert!(!pair.airgap.has_image("app:3"));
    assert_eq!(state_sequence(d), 1);
    // `verify` says the same.
    pl(&pair, d, "verify", "b3.tgz", &[])
        .expect_code(4)
        .stderr_has("load bundle 2 first");

    // In order, the series loads.
    pl(&pair, d, "load", "b2.tgz", &[]).ok();
    pl(&pair, d, "load", "b3.tgz", &[]).ok();
    assert_eq!(state_sequence(d), 3);
    assert_eq!(pair.airgap.image_id("app:1").unwrap(), scene.app1);
    assert_eq!(pair.airgap.image_id("app:3").unwrap(), app3);

    // Bundle 1 again is a rollback: refused, nothing loaded (its tag stays gone), state as it was.
    pair.airgap.docker(&["rmi", "base:1"]).unwrap();
    let state_before = std::fs::read(d.join("state.json")).unwrap();
    let r = pl(&pair, d, "load", "b1.tgz", &[])
        .expect_code(3)
        .stderr_has("bundle 1 of site-a is older than bundle 3, loaded on");
    assert!(r.stderr.contains("--allow-rollback"), "{}", r.stderr);
    assert!(
        !pair.airgap.has_image("base:1"),
        "a refused bundle loads nothing"
    );
    pl(&pair, d, "verify", "b1.tgz", &["--offline"])
        .expect_code(3)
        .stderr_has("older than bundle 3");
    pl(&pair, d, "load", "b3.tgz", &[])
        .expect_code(3)
        .stderr_has("bundle 3 of site-a was already loaded on");
    assert_eq!(std::fs::read(d.join("state.json")).unwrap(), state_before);

    // Told so, it loads, and the state keeps the newest bundle.
    pl(&pair, d, "load", "b1.tgz", &["--allow-rollback"]).ok();
    assert_eq!(pair.airgap.image_id("base:1").unwrap(), scene.base);
    assert_eq!(state_sequence(d), 3);
}

#[test]
fn forgotten_bundles_are_sent_again_and_an_inventory_overrides_the_ledger() {
    let pair = require_daemons!();
    let scene = build_standard(&pair);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let ledger = path_str(&d.join("site-b.json"));

    export(&pair, d, "site-b.json", "b1.tgz", &["base:1"]);
    let m2 = export(&pair, d, "site-b.json", "b2.tgz", &["app:1"]);
    assert_eq!(ledger_bundles(&m2), [Some(1), None]);
    // Bundle 2 is lost in transit: forget it, and app:1's layer is carried again.
    save(&["ledger", "forget", &ledger, "--bundle", "2"])
        .ok()
        .stderr_has("bundle 2 of site-b forgotten");
    save(&["ledger", "forget", &ledger, "--bundle", "9"])
        .expect_code(1)
        .stderr_has("has no bundle 9 (bundles 1–2)");
    let shown = save(&["ledger", "show", &ledger]).ok();
    let line2 = shown
        .stdout
        .lines()
        .find(|l| l.contains("b2.tgz"))
        .unwrap_or_default();
    assert!(line2.contains("FORGOTTEN"), "{}", shown.stdout);
    let m3 = export(&pair, d, "site-b.json", "b3.tgz", &["app:1"]);
    assert_eq!(m3["sequence"], 3);
    assert_eq!(m3["previous"], manifest_hash(d, "b2.tgz").as_str());
    assert_eq!(ledger_bundles(&m3), [Some(1), None]);

    // The destination gets 1 and 3: the gap is reported, but bundle 3 needs nothing of 2.
    pl(&pair, d, "load", "b1.tgz", &[]).ok();
    pl(&pair, d, "load", "b3.tgz", &[])
        .ok()
        .stderr_has("bundle 2 of site-b never arrived");
    assert_eq!(pair.airgap.image_id("app:1").unwrap(), scene.app1);

    // The ledger now wrongly believes app:2 was delivered (bundle 4 never is).
    export(&pair, d, "site-b.json", "b4.tgz", &["app:2"]);
    let dry = export_run(
        &pair,
        d,
        "site-b.json",
        "dry.tgz",
        &["app:2"],
        &["--dry-run"],
    )
    .ok();
    let plan: Value = serde_json::from_str(&dry.stdout).unwrap();
    let decisions: Vec<(&str, &str, u64)> = plan["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["decision"].as_str().unwrap(),
                l["origin"]["kind"].as_str().unwrap_or("-"),
                l["origin"]["bundle"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            ("at_destination", "ledger", 1),
            ("at_destination", "ledger", 4),
            ("at_destination", "ledger", 4)
        ]
    );

    let cx = SiteB {
        pair: &pair,
        scene: &scene,
        d,
    };
    an_inventory_overrides_the_ledger(&cx);
    two_exports_at_once(&cx);
}

/// What the parts of `forgotten_bundles_are_sent_again_and_an_inventory_overrides_the_ledger` share:
/// the daemon pair with the standard scene, and the folder of the team key and the ledgers.
struct SiteB<'a> {
    pair: &'a partial_tests::DaemonPair,
    scene: &'a partial_tests::scenario::Scene,
    d: &'a Path,
}

/// An inventory of the destination wins over the ledger: app:2's own layers are carried.
fn an_inventory_overrides_the_ledger(cx: &SiteB) {
    let SiteB { pair, scene, d, .. } = *cx;
    // An inventory of the destination wins: app:2's own layers are carried, with a warning.
    let inv = path_str(&d.join("have.json"));
    load(&["inventory", "-o", &inv, "-H", &pair.airgap.host()]).ok();
    let r = export_run(
        pair,
        d,
        "site-b.json",
        "b5.tgz",
        &["app:2"],
        &["--have", &inv],
    )
    .ok()
    .stderr_has("bundle 4 sent image app:2");
    let m5 = serde_json::from_str::<Value>(&r.stdout).unwrap()["manifest"].clone();
    assert_eq!(m5["sequence"], 5);
    let origins = layer_origins(&m5);
    assert_eq!(origins.len(), 3);
    assert_eq!(origins[0].as_ref().unwrap()["kind"], "inventory");
    assert!(origins[1].is_none() && origins[2].is_none(), "{origins:?}");
    let warnings = m5["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("bundle 4 sent image app:2")),
        "{warnings:?}"
    );
    pl(pair, d, "load", "b5.tgz", &[])
        .ok()
        .stderr_has("bundle 4 of site-b never arrived");
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
}

/// Two exports at once on one new ledger: both recorded, one after the other.
fn two_exports_at_once(cx: &SiteB) {
    let SiteB { pair, d, .. } = *cx;
    // Two exports at once on one new ledger: both recorded, one after the other.
    let both: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = ["c1.tgz", "c2.tgz"]
            .into_iter()
            .map(|name| {
                let pair = &pair;
                s.spawn(move || export_run(pair, d, "par.json", name, &["app:2"], &[]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let manifests: Vec<Value> = both
        .into_iter()
        .map(|r| serde_json::from_str::<Value>(&r.ok().stdout).unwrap()["manifest"].clone())
        .collect();
    let (first, second): (Vec<&Value>, Vec<&Value>) =
        manifests.iter().partition(|m| m["sequence"] == 1);
    assert_eq!((first.len(), second.len()), (1, 1), "{manifests:?}");
    let (first, second) = (first[0], second[0]);
    assert_eq!(second["sequence"], 2);
    let first_name = first["bundle"]["name"].as_str().unwrap();
    assert_eq!(second["previous"], manifest_hash(d, first_name).as_str());
    assert_eq!(first["totals"]["layers_left_out"], 0);
    assert_eq!(second["totals"]["layers_carried"], 0, "{second}");
    let par: Value = serde_json::from_slice(&std::fs::read(d.join("par.json")).unwrap()).unwrap();
    assert_eq!(par["bundles"].as_array().unwrap().len(), 2);
}
