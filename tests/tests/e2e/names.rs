//! Bundle names end to end: `partial-load` reads a bundle by the name it is given. A bundle
//! whose three files were renamed together (also a split bundle) verifies and loads, with a note
//! naming the recorded name; a corrupted copy beside an intact bundle with the recorded name
//! exits 3 and leaves the daemon as it was: the named file is what is checked.

use partial_tests::scenario::{export_app as export, on_airgap as pl, standard_pair as setup};
use std::path::Path;

/// `dir/from<suffix>` → `dir/to<suffix>` for each suffix.
fn rename_all(dir: &Path, from: &str, to: &str, suffixes: &[&str]) {
    for s in suffixes {
        std::fs::rename(dir.join(format!("{from}{s}")), dir.join(format!("{to}{s}")))
            .unwrap_or_else(|e| panic!("renaming {from}{s}: {e}"));
    }
}

const SIDECARS: [&str; 2] = [".manifest.json", ".manifest.json.minisig"];

#[test]
fn renamed_bundles_verify_and_load() {
    let Some((pair, scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();

    // One file: app.tgz and its sidecars become carried.tgz*.
    export(&pair, d, "app.tgz", &[]);
    rename_all(d, "app.tgz", "carried.tgz", &["", SIDECARS[0], SIDECARS[1]]);
    let renamed = d.join("carried.tgz");
    pl(&pair, "verify", &renamed, d, &["--offline"])
        .ok()
        .stderr_has("recorded the bundle as app.tgz")
        .stderr_has("carried.tgz: signature");
    pl(&pair, "load", &renamed, d, &[])
        .ok()
        .stderr_has("verified ")
        .stderr_has("carried.tgz and loaded 1 image(s)");
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    pair.airgap.remove_image("app:2").unwrap();

    // A split bundle: s.tgz.001… become moved.tgz.001…, found by the first volume's name.
    export(&pair, d, "s.tgz", &["--split", "64K"]);
    let mut parts: Vec<String> = (1..)
        .map(|n| format!(".{n:03}"))
        .take_while(|s| d.join(format!("s.tgz{s}")).exists())
        .collect();
    assert!(parts.len() >= 2, "the split bundle has {parts:?}");
    parts.extend(SIDECARS.iter().map(|s| s.to_string()));
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    rename_all(d, "s.tgz", "moved.tgz", &parts);
    let r = pl(&pair, "load", &d.join("moved.tgz.001"), d, &["--json"])
        .ok()
        .stderr_has("recorded the bundle as s.tgz");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);
    pair.airgap.remove_image("app:2").unwrap();
    // Named by its base name, the split bundle loads too.
    pl(&pair, "load", &d.join("moved.tgz"), d, &[]).ok();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);

    // Naming a later volume is refused with the name to give instead.
    pl(&pair, "verify", &d.join("moved.tgz.002"), d, &["--offline"])
        .expect_code(3)
        .stderr_has("name its first volume")
        .stderr_has("moved.tgz.001");

    // A missing later volume is named, with its new name.
    std::fs::remove_file(d.join("moved.tgz.002")).unwrap();
    pl(&pair, "verify", &d.join("moved.tgz.001"), d, &["--offline"])
        .expect_code(3)
        .stderr_has("moved.tgz.002");
}

#[test]
fn corrupted_named_bundle_beside_an_intact_one_exits_3_and_loads_nothing() {
    let Some((pair, _scene, dir)) = setup() else {
        return;
    };
    let d = dir.path();
    let a = export(&pair, d, "a.tgz", &[]);
    // b.tgz: a copy of a.tgz with one flipped byte (same size), sidecars copied along.
    let mut bytes = std::fs::read(&a).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    let b = d.join("b.tgz");
    std::fs::write(&b, &bytes).unwrap();
    for s in SIDECARS {
        std::fs::copy(d.join(format!("a.tgz{s}")), d.join(format!("b.tgz{s}"))).unwrap();
    }
    let before = pair.airgap.image_ids().unwrap();

    let r = pl(&pair, "load", &b, d, &[]).expect_code(3);
    assert!(r.stderr.contains("b.tgz"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("and loaded"),
        "nothing may be loaded: {}",
        r.stderr
    );
    assert!(!pair.airgap.has_image("app:2"));
    assert_eq!(
        pair.airgap.image_ids().unwrap(),
        before,
        "the daemon changed"
    );
    pl(&pair, "verify", &b, d, &["--offline"])
        .expect_code(3)
        .stderr_has("b.tgz");

    // A split copy with one corrupted volume, beside the intact split bundle.
    export(&pair, d, "s.tgz", &["--split", "64K"]);
    for s in [".001", ".002", SIDECARS[0], SIDECARS[1]] {
        std::fs::copy(d.join(format!("s.tgz{s}")), d.join(format!("c.tgz{s}"))).unwrap();
    }
    let mut k = 3;
    while d.join(format!("s.tgz.{k:03}")).exists() {
        std::fs::copy(
            d.join(format!("s.tgz.{k:03}")),
            d.join(format!("c.tgz.{k:03}")),
        )
        .unwrap();
        k += 1;
    }
    let second = d.join("c.tgz.002");
    let mut bytes = std::fs::read(&second).unwrap();
    bytes[10] ^= 0x80;
    std::fs::write(&second, &bytes).unwrap();
    pl(&pair, "load", &d.join("c.tgz.001"), d, &[])
        .expect_code(3)
        .stderr_has("c.tgz.002");
    assert_eq!(
        pair.airgap.image_ids().unwrap(),
        before,
        "the daemon changed"
    );

    // The intact bundles still load.
    pl(&pair, "load", &a, d, &[]).ok();
    assert!(pair.airgap.has_image("app:2"));
}
