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
use partial_tests::roundtrip::{all_passed, args, build_writer_scene, round_trip, Expect};
use partial_tests::writers::{
    add_platform_variant, legacy_to_crane_tarball, oci_config_digest, oci_image, skopeo_copy,
    skopeo_copy_with, skopeo_pick_platform, umoci_layout,
};
use partial_tests::{require_daemons, require_tool, rootfs_tar, Content};

/// `--from-archive NEW --exclude-archive BASE`.
fn archive_args(new: &std::path::Path, base: &std::path::Path) -> Vec<String> {
    args(&[
        "--from-archive".as_ref(),
        new.as_os_str(),
        "--exclude-archive".as_ref(),
        base.as_os_str(),
    ])
}

#[test]
fn docker_saves_in_the_legacy_v25_and_containerd_layouts() {
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let d = scene.dir.path();
    let same = Expect {
        id: Some(scene.app2_id.clone()),
        diff_ids: scene.app2_diffs.clone(),
        tag: Some("app:2".into()),
        tag_containing: None,
    };
    let mut results = Vec::new();
    results.push((
        "docker save (legacy, <= 24)",
        round_trip(
            &pair,
            &scene,
            "legacy",
            &archive_args(&scene.app_save, &scene.base_save),
            &same,
        ),
    ));
    let (new25, base25) = (d.join("app.v25.tar"), d.join("base.v25.tar"));
    legacy_to_oci_layout(&scene.app_save, &new25).unwrap();
    legacy_to_oci_layout(&scene.base_save, &base25).unwrap();
    results.push((
        "docker save (>= 25)",
        round_trip(&pair, &scene, "v25", &archive_args(&new25, &base25), &same),
    ));
    let (newc, basec) = (d.join("app.ctrd.tar"), d.join("base.ctrd.tar"));
    legacy_to_containerd_layout(&scene.app_save, &newc).unwrap();
    legacy_to_containerd_layout(&scene.base_save, &basec).unwrap();
    results.push((
        "docker save (containerd store)",
        round_trip(
            &pair,
            &scene,
            "containerd",
            &archive_args(&newc, &basec),
            &same,
        ),
    ));
    all_passed(results);
}

#[test]
fn skopeo_docker_archive_oci_archive_and_crane_tarball() {
    if !require_tool("skopeo") {
        return;
    }
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let d = scene.dir.path();
    let mut results = Vec::new();

    // containers/image docker-archive: `<diffID>.tar` layers, `<v1id>/layer.tar` symlinks to them;
    // the config is the daemon's, unchanged.
    let (new, base) = (d.join("app.skopeo.tar"), d.join("base.skopeo.tar"));
    skopeo_copy(
        &pair.source,
        "app:2",
        &format!("docker-archive:{}:app:2", new.display()),
    )
    .unwrap();
    skopeo_copy(
        &pair.source,
        "base:1",
        &format!("docker-archive:{}:base:1", base.display()),
    )
    .unwrap();
    let same = Expect {
        id: Some(scene.app2_id.clone()),
        diff_ids: scene.app2_diffs.clone(),
        tag: Some("app:2".into()),
        tag_containing: None,
    };
    results.push((
        "skopeo docker-archive",
        round_trip(
            &pair,
            &scene,
            "skopeo-docker",
            &archive_args(&new, &base),
            &same,
        ),
    ));

    // containers/image oci-archive: index.json + gzip blobs, no manifest.json; skopeo converts the
    // config to an OCI config, so the image ID is that config's digest.
    let (new, base) = (d.join("app.oci.tar"), d.join("base.oci.tar"));
    skopeo_copy(
        &pair.source,
        "app:2",
        &format!("oci-archive:{}:app:2", new.display()),
    )
    .unwrap();
    skopeo_copy(
        &pair.source,
        "base:1",
        &format!("oci-archive:{}:base:1", base.display()),
    )
    .unwrap();
    let converted = Expect {
        id: Some(oci_config_digest(&new, "app:2").unwrap()),
        ..same.clone()
    };
    results.push((
        "skopeo oci-archive",
        round_trip(
            &pair,
            &scene,
            "skopeo-oci-archive",
            &archive_args(&new, &base),
            &converted,
        ),
    ));

    // The same with zstd layers (skopeo --dest-compress-format zstd), the base archive's layers
    // gzip: what is left out is decided by diffIDs, not by compressed digests.
    let znew = d.join("app.oci-zstd.tar");
    skopeo_copy_with(
        &pair.source,
        "app:2",
        &format!("oci-archive:{}:app:2", znew.display()),
        &["--dest-compress-format", "zstd"],
    )
    .unwrap();
    let zstd = Expect {
        id: Some(oci_config_digest(&znew, "app:2").unwrap()),
        ..same.clone()
    };
    results.push((
        "skopeo oci-archive, zstd layers",
        round_trip(
            &pair,
            &scene,
            "skopeo-oci-zstd",
            &archive_args(&znew, &base),
            &zstd,
        ),
    ));

    // Writers mixed: the oci-archive against the daemon's own save of the base.
    results.push((
        "skopeo oci-archive against a docker save base",
        round_trip(
            &pair,
            &scene,
            "skopeo-oci-vs-docker",
            &archive_args(&new, &scene.base_save),
            &converted,
        ),
    ));

    // go-containerregistry tarball: config `sha256:<hex>`, gzip layers, manifest.json last.
    let (new, base) = (d.join("app.crane.tar"), d.join("base.crane.tar"));
    legacy_to_crane_tarball(&scene.app_save, &new).unwrap();
    legacy_to_crane_tarball(&scene.base_save, &base).unwrap();
    results.push((
        "crane tarball",
        round_trip(&pair, &scene, "crane", &archive_args(&new, &base), &same),
    ));
    // The fixture itself: a plain `docker load` takes the crane tarball, as it takes crane's.
    results.push(("crane tarball fixture loads with docker load", {
        let loaded = pair
            .airgap
            .load(&new)
            .and_then(|_| pair.airgap.image_id("app:2"));
        let _ = pair.airgap.remove_image(&scene.app2_id);
        loaded.and_then(|id| {
            anyhow::ensure!(
                id == scene.app2_id,
                "docker load gave {id}, not {}",
                scene.app2_id
            );
            Ok(format!("docker load gave {id}"))
        })
    }));
    all_passed(results);
}

#[test]
fn oci_layout_directories_from_skopeo_and_umoci_and_selection_by_tag() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, true).expect("scene");
    let d = scene.dir.path();
    let mut results = Vec::new();

    // skopeo `oci:DIR:app:2` (ref name app:2, converted OCI config).
    let (new, base) = (d.join("app-oci"), d.join("base-oci"));
    skopeo_copy(
        &pair.source,
        "app:2",
        &format!("oci:{}:app:2", new.display()),
    )
    .unwrap();
    skopeo_copy(
        &pair.source,
        "base:1",
        &format!("oci:{}:base:1", base.display()),
    )
    .unwrap();
    let dir_args = |new: &std::path::Path, base: &std::path::Path| {
        args(&[
            "--from-oci".as_ref(),
            new.as_os_str(),
            "--exclude-oci".as_ref(),
            base.as_os_str(),
        ])
    };
    results.push((
        "skopeo oci:DIR",
        round_trip(
            &pair,
            &scene,
            "skopeo-oci-dir",
            &dir_args(&new, &base),
            &Expect {
                id: Some(oci_config_digest(&new, "app:2").unwrap()),
                diff_ids: scene.app2_diffs.clone(),
                tag: Some("app:2".into()),
                tag_containing: None,
            },
        ),
    ));

    // An OCI directory against the daemon's own save of the base (--exclude-archive).
    let mut mixed = args(&["--from-oci".as_ref(), new.as_os_str()]);
    mixed.extend(args(&[
        "--exclude-archive".as_ref(),
        scene.base_save.as_os_str(),
    ]));
    results.push((
        "skopeo oci:DIR against a docker save base",
        round_trip(
            &pair,
            &scene,
            "skopeo-oci-dir-vs-docker",
            &mixed,
            &Expect {
                id: Some(oci_config_digest(&new, "app:2").unwrap()),
                diff_ids: scene.app2_diffs.clone(),
                tag: Some("app:2".into()),
                tag_containing: None,
            },
        ),
    ));

    // Uncompressed layers (skopeo 1.9 labels them `tar+gzip` all the same), the base's gzip.
    let unew = d.join("app-oci-plain");
    skopeo_copy_with(
        &pair.source,
        "app:2",
        &format!("oci:{}:app:2", unew.display()),
        &["--dest-oci-accept-uncompressed-layers"],
    )
    .unwrap();
    results.push((
        "skopeo oci:DIR, uncompressed layers",
        round_trip(
            &pair,
            &scene,
            "skopeo-oci-dir-plain",
            &dir_args(&unew, &base),
            &Expect {
                id: Some(oci_config_digest(&unew, "app:2").unwrap()),
                diff_ids: scene.app2_diffs.clone(),
                tag: Some("app:2".into()),
                tag_containing: None,
            },
        ),
    ));

    // umoci layouts: umoci's own configs and gzip layers, bare tag ref names. The app layout
    // holds app1 and app2: `-i app2` must pick app2 only.
    let (new, base) = (d.join("app-umoci"), d.join("base-umoci"));
    umoci_layout(&scene.base_save, &base, &[("base:1", "base1")]).unwrap();
    let all_save = d.join("apps.docker.tar");
    pair.source.save_to(&["app:1", "app:2"], &all_save).unwrap();
    umoci_layout(&all_save, &new, &[("app:1", "app1"), ("app:2", "app2")]).unwrap();
    // The fixture itself: umoci kept every layer's diffID.
    assert_eq!(oci_image(&new, "app2").unwrap().1, scene.app2_diffs);
    assert_eq!(
        oci_image(&new, "app1").unwrap().1,
        scene.app1_diffs.clone().unwrap()
    );
    assert_eq!(oci_image(&base, "base1").unwrap().1, scene.base_diffs);
    let mut a = dir_args(&new, &base);
    a.extend(args(&["-i", "app2"]));
    results.push((
        "umoci layout, -i app2 of app1+app2",
        round_trip(
            &pair,
            &scene,
            "umoci-app2",
            &a,
            &Expect {
                id: Some(oci_config_digest(&new, "app2").unwrap()),
                diff_ids: scene.app2_diffs.clone(),
                tag: None,
                tag_containing: Some("app2".into()),
            },
        ),
    ));
    let mut a = dir_args(&new, &base);
    a.extend(args(&["-i", "app1"]));
    results.push((
        "umoci layout, -i app1 of app1+app2",
        round_trip(
            &pair,
            &scene,
            "umoci-app1",
            &a,
            &Expect {
                id: Some(oci_config_digest(&new, "app1").unwrap()),
                diff_ids: scene.app1_diffs.clone().unwrap(),
                tag: None,
                tag_containing: Some("app1".into()),
            },
        ),
    ));
    all_passed(results);
}

#[test]
fn platform_picks_one_image_of_a_multi_platform_index() {
    if !require_tool("skopeo") {
        return;
    }
    let pair = require_daemons!();
    let scene = build_writer_scene(&pair, false).expect("scene");
    let d = scene.dir.path();
    let (new, base) = (d.join("app-multi"), d.join("base-oci"));
    skopeo_copy(
        &pair.source,
        "app:2",
        &format!("oci:{}:app:2", new.display()),
    )
    .unwrap();
    skopeo_copy(
        &pair.source,
        "base:1",
        &format!("oci:{}:base:1", base.display()),
    )
    .unwrap();
    let extra = rootfs_tar(46, &[16 << 10], Content::Compressible);
    let variant = add_platform_variant(&new, "app:2", "arm64", &extra).unwrap();
    // The fixture itself: skopeo picks each platform's image from the index.
    assert_eq!(
        skopeo_pick_platform(&new, "app:2", "arm64").unwrap(),
        variant.id
    );
    assert_eq!(
        skopeo_pick_platform(&new, "app:2", "amd64").unwrap(),
        variant.original_id
    );
    let dir_args = |platform: Option<&str>| {
        let mut a = args(&[
            "--from-oci".as_ref(),
            new.as_os_str(),
            "--exclude-oci".as_ref(),
            base.as_os_str(),
        ]);
        if let Some(p) = platform {
            a.extend(args(&["--platform", p]));
        }
        a
    };
    let amd64 = Expect {
        id: Some(variant.original_id.clone()),
        diff_ids: scene.app2_diffs.clone(),
        tag: Some("app:2".into()),
        tag_containing: None,
    };
    let arm64 = Expect {
        id: Some(variant.id.clone()),
        diff_ids: variant.diff_ids.clone(),
        tag: Some("app:2".into()),
        tag_containing: None,
    };
    let machine_is_amd64 = std::env::consts::ARCH == "x86_64";
    let mut results = vec![
        (
            "--platform linux/arm64",
            round_trip(
                &pair,
                &scene,
                "arm64",
                &dir_args(Some("linux/arm64")),
                &arm64,
            ),
        ),
        (
            "--platform linux/amd64",
            round_trip(
                &pair,
                &scene,
                "amd64",
                &dir_args(Some("linux/amd64")),
                &amd64,
            ),
        ),
    ];
    if machine_is_amd64 {
        results.push((
            "no --platform: the machine's (linux/amd64)",
            round_trip(&pair, &scene, "default", &dir_args(None), &amd64),
        ));
    }
    all_passed(results);
}
