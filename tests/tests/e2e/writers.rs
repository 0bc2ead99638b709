//! Archive writers end to end: archives from every writer users meet, made with the real tools from
//! the source daemon (the daemon's own save, the Docker ≥ 25 and containerd layouts rewritten from
//! it, skopeo `docker-archive:`, `oci-archive:` and `oci:DIR`, umoci layouts, a
//! go-containerregistry tarball); for each, excluding the base archive of the same writer leaves
//! out exactly the base chains, the bundle never contradicts its manifest, is about the size of the
//! new layers compressed, and `partial-load load` on a destination holding the base gives the
//! image.
//!
//! One daemon pair per test; each test runs several writers and reports all of their outcomes
//! (see `partial_tests::roundtrip`).

use partial_tests::layout::{legacy_to_containerd_layout, legacy_to_oci_layout};
use partial_tests::roundtrip::{
    all_passed, args, build_writer_scene, round_trip, Expect, WriterScene,
};
use partial_tests::writers::{
    add_platform_variant, legacy_to_crane_tarball, oci_config_digest, oci_image, skopeo_copy,
    skopeo_copy_with, skopeo_pick_platform, umoci_layout,
};
use partial_tests::{require_daemons, require_tool, rootfs_tar, Content, DaemonPair};
use std::path::Path;

/// One row of a writer table: what it is, the label of its files, the `partial-save` input
/// flags, and what must arrive on the destination.
struct Case {
    what: &'static str,
    label: &'static str,
    args: Vec<String>,
    expect: Expect,
}

/// Every row's round trip, named by the row.
fn outcomes(
    pair: &DaemonPair,
    scene: &WriterScene,
    cases: &[Case],
) -> Vec<(&'static str, anyhow::Result<String>)> {
    cases
        .iter()
        .map(|c| (c.what, round_trip(pair, scene, c.label, &c.args, &c.expect)))
        .collect()
}

/// Runs every row's round trip and fails naming every row that failed.
fn run_table(pair: &DaemonPair, scene: &WriterScene, cases: Vec<Case>) {
    all_passed(outcomes(pair, scene, &cases));
}

/// The image `id` with `diff_ids`, tagged `app:2` on arrival.
fn tagged(id: String, diff_ids: &[String]) -> Expect {
    Expect {
        id: Some(id),
        diff_ids: diff_ids.to_vec(),
        tag: Some("app:2".into()),
        tag_containing: None,
    }
}

/// `--from-archive NEW --exclude-archive BASE`.
fn archive_args(new: &Path, base: &Path) -> Vec<String> {
    args(&[
        "--from-archive".as_ref(),
        new.as_os_str(),
        "--exclude-archive".as_ref(),
        base.as_os_str(),
    ])
}

/// `--from-oci NEW --exclude-oci BASE EXTRA…`.
fn oci_args(new: &Path, base: &Path, extra: &[&str]) -> Vec<String> {
    let mut a = args(&[
        "--from-oci".as_ref(),
        new.as_os_str(),
        "--exclude-oci".as_ref(),
        base.as_os_str(),
    ]);
    a.extend(args(extra));
    a
}

/// `skopeo copy` of `app:2` and `base:1` from the source daemon to `TRANSPORT:d/NAME.app:app:2`
/// and `…base:base:1`; returns both paths.
fn skopeo_pair(
    pair: &DaemonPair,
    d: &Path,
    transport: &str,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let (new, base) = (
        d.join(format!("app.{name}")),
        d.join(format!("base.{name}")),
    );
    for (image, path) in [("app:2", &new), ("base:1", &base)] {
        skopeo_copy(
            &pair.source,
            image,
            &format!("{transport}:{}:{image}", path.display()),
        )
        .unwrap();
    }
    (new, base)
}

#[test]
fn docker_saves_in_the_legacy_v25_and_containerd_layouts() {
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let d = scene.dir.path();
    let (new25, base25) = (d.join("app.v25.tar"), d.join("base.v25.tar"));
    legacy_to_oci_layout(&scene.app_save, &new25).unwrap();
    legacy_to_oci_layout(&scene.base_save, &base25).unwrap();
    let (newc, basec) = (d.join("app.ctrd.tar"), d.join("base.ctrd.tar"));
    legacy_to_containerd_layout(&scene.app_save, &newc).unwrap();
    legacy_to_containerd_layout(&scene.base_save, &basec).unwrap();
    let same = tagged(scene.app2_id.clone(), &scene.app2_diffs);
    let cases = vec![
        Case {
            what: "docker save (legacy, <= 24)",
            label: "legacy",
            args: archive_args(&scene.app_save, &scene.base_save),
            expect: same.clone(),
        },
        Case {
            what: "docker save (>= 25)",
            label: "v25",
            args: archive_args(&new25, &base25),
            expect: same.clone(),
        },
        Case {
            what: "docker save (containerd store)",
            label: "containerd",
            args: archive_args(&newc, &basec),
            expect: same,
        },
    ];
    run_table(&pair, &scene, cases);
}

/// Rows: containers/image docker-archive (`<diffID>.tar` layers, `<v1id>/layer.tar` symlinks;
/// the daemon's config unchanged); oci-archive (index.json, gzip blobs, no manifest.json; the
/// config converted, so the image ID is that config's digest), also with zstd layers against
/// a gzip base (what is left out is decided by diffIDs), and against the daemon's own save of
/// the base; a go-containerregistry tarball (config `sha256:<hex>`, manifest.json last).
#[test]
fn skopeo_docker_archive_oci_archive_and_crane_tarball() {
    if !require_tool("skopeo") {
        return;
    }
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let d = scene.dir.path();
    let (dnew, dbase) = skopeo_pair(&pair, d, "docker-archive", "skopeo.tar");
    let (onew, obase) = skopeo_pair(&pair, d, "oci-archive", "oci.tar");
    let znew = d.join("app.oci-zstd.tar");
    skopeo_copy_with(
        &pair.source,
        "app:2",
        &format!("oci-archive:{}:app:2", znew.display()),
        &["--dest-compress-format", "zstd"],
    )
    .unwrap();
    let (cnew, cbase) = (d.join("app.crane.tar"), d.join("base.crane.tar"));
    legacy_to_crane_tarball(&scene.app_save, &cnew).unwrap();
    legacy_to_crane_tarball(&scene.base_save, &cbase).unwrap();
    let same = tagged(scene.app2_id.clone(), &scene.app2_diffs);
    let converted = tagged(
        oci_config_digest(&onew, "app:2").unwrap(),
        &scene.app2_diffs,
    );
    let zstd = tagged(
        oci_config_digest(&znew, "app:2").unwrap(),
        &scene.app2_diffs,
    );
    let cases = vec![
        Case {
            what: "skopeo docker-archive",
            label: "skopeo-docker",
            args: archive_args(&dnew, &dbase),
            expect: same.clone(),
        },
        Case {
            what: "skopeo oci-archive",
            label: "skopeo-oci-archive",
            args: archive_args(&onew, &obase),
            expect: converted.clone(),
        },
        Case {
            what: "skopeo oci-archive, zstd layers",
            label: "skopeo-oci-zstd",
            args: archive_args(&znew, &obase),
            expect: zstd,
        },
        Case {
            what: "skopeo oci-archive against a docker save base",
            label: "skopeo-oci-vs-docker",
            args: archive_args(&onew, &scene.base_save),
            expect: converted,
        },
        Case {
            what: "crane tarball",
            label: "crane",
            args: archive_args(&cnew, &cbase),
            expect: same,
        },
    ];
    let mut results = outcomes(&pair, &scene, &cases);
    results.push((
        "crane tarball fixture loads with docker load",
        plain_load(&pair, &cnew, &scene.app2_id),
    ));
    all_passed(results);
}

/// The fixture itself: a plain `docker load` of `archive` gives `app:2` with ID `id` (then
/// removed again).
fn plain_load(pair: &DaemonPair, archive: &Path, id: &str) -> anyhow::Result<String> {
    let loaded = pair
        .airgap
        .load(archive)
        .and_then(|_| pair.airgap.image_id("app:2"));
    let _ = pair.airgap.remove_image(id);
    let got = loaded?;
    anyhow::ensure!(got == id, "docker load gave {got}, not {id}");
    Ok(format!("docker load gave {got}"))
}

/// Rows: skopeo `oci:DIR` (ref name app:2, converted config), the same against the daemon's own
/// save of the base, with uncompressed layers (skopeo 1.9 labels them `tar+gzip` all the same),
/// and umoci layouts (umoci's own configs, bare tag ref names; the app layout holds app1 and
/// app2 and `-i` must pick one).
#[test]
fn oci_layout_directories_from_skopeo_and_umoci_and_selection_by_tag() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, true).expect("scene");
    let d = scene.dir.path();
    let (new, base) = skopeo_pair(&pair, d, "oci", "oci");
    let unew = d.join("app-oci-plain");
    skopeo_copy_with(
        &pair.source,
        "app:2",
        &format!("oci:{}:app:2", unew.display()),
        &["--dest-oci-accept-uncompressed-layers"],
    )
    .unwrap();
    let (umoci_new, umoci_base) = umoci_fixture(&pair, &scene);
    let mut mixed = args(&["--from-oci".as_ref(), new.as_os_str()]);
    mixed.extend(args(&[
        "--exclude-archive".as_ref(),
        scene.base_save.as_os_str(),
    ]));
    let converted = tagged(oci_config_digest(&new, "app:2").unwrap(), &scene.app2_diffs);
    let bare = |name: &str, diff_ids: &[String]| Expect {
        id: Some(oci_config_digest(&umoci_new, name).unwrap()),
        diff_ids: diff_ids.to_vec(),
        tag: None,
        tag_containing: Some(name.into()),
    };
    let app1_diffs = scene.app1_diffs.clone().expect("the scene has app:1");
    let cases = vec![
        Case {
            what: "skopeo oci:DIR",
            label: "skopeo-oci-dir",
            args: oci_args(&new, &base, &[]),
            expect: converted.clone(),
        },
        Case {
            what: "skopeo oci:DIR against a docker save base",
            label: "skopeo-oci-dir-vs-docker",
            args: mixed,
            expect: converted,
        },
        Case {
            what: "skopeo oci:DIR, uncompressed layers",
            label: "skopeo-oci-dir-plain",
            args: oci_args(&unew, &base, &[]),
            expect: tagged(
                oci_config_digest(&unew, "app:2").unwrap(),
                &scene.app2_diffs,
            ),
        },
        Case {
            what: "umoci layout, -i app2 of app1+app2",
            label: "umoci-app2",
            args: oci_args(&umoci_new, &umoci_base, &["-i", "app2"]),
            expect: bare("app2", &scene.app2_diffs),
        },
        Case {
            what: "umoci layout, -i app1 of app1+app2",
            label: "umoci-app1",
            args: oci_args(&umoci_new, &umoci_base, &["-i", "app1"]),
            expect: bare("app1", &app1_diffs),
        },
    ];
    run_table(&pair, &scene, cases);
}

/// umoci layouts of base:1 (`base1`) and of app:1 + app:2 (`app1`, `app2`), checked to have kept
/// every layer's diffID; returns (app layout, base layout).
fn umoci_fixture(
    pair: &DaemonPair,
    scene: &WriterScene,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let d = scene.dir.path();
    let (new, base) = (d.join("app-umoci"), d.join("base-umoci"));
    umoci_layout(&scene.base_save, &base, &[("base:1", "base1")]).unwrap();
    let all_save = d.join("apps.docker.tar");
    pair.source.save_to(&["app:1", "app:2"], &all_save).unwrap();
    umoci_layout(&all_save, &new, &[("app:1", "app1"), ("app:2", "app2")]).unwrap();
    assert_eq!(oci_image(&new, "app2").unwrap().1, scene.app2_diffs);
    assert_eq!(
        oci_image(&new, "app1").unwrap().1,
        scene.app1_diffs.clone().unwrap()
    );
    assert_eq!(oci_image(&base, "base1").unwrap().1, scene.base_diffs);
    (new, base)
}

/// Rows: an OCI layout whose index holds app:2 for amd64 and a variant for arm64 (checked with
/// skopeo first); `--platform` picks each (the index stays behind, the image takes its tag).
/// Without `--platform` the whole index travels: `layout_identity` pushes and loads that.
#[test]
fn platform_picks_one_image_of_a_multi_platform_index() {
    if !require_tool("skopeo") {
        return;
    }
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let d = scene.dir.path();
    let (new, base) = skopeo_pair(&pair, d, "oci", "multi");
    let extra = rootfs_tar(46, &[16 << 10], Content::Compressible);
    let variant = add_platform_variant(&new, "app:2", "arm64", &extra).unwrap();
    assert_eq!(
        skopeo_pick_platform(&new, "app:2", "arm64").unwrap(),
        variant.id
    );
    assert_eq!(
        skopeo_pick_platform(&new, "app:2", "amd64").unwrap(),
        variant.original_id
    );
    let cases = vec![
        Case {
            what: "--platform linux/arm64",
            label: "arm64",
            args: oci_args(&new, &base, &["--platform", "linux/arm64"]),
            expect: tagged(variant.id.clone(), &variant.diff_ids),
        },
        Case {
            what: "--platform linux/amd64",
            label: "amd64",
            args: oci_args(&new, &base, &["--platform", "linux/amd64"]),
            expect: tagged(variant.original_id.clone(), &scene.app2_diffs),
        },
    ];
    run_table(&pair, &scene, cases);
}
