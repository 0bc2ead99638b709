//! Tests of the rig itself: fixtures are deterministic, the daemon lifecycle (kill, restart, time
//! zone), hand-written archives, the legacy → Docker ≥ 25 rewrite, and the binary locator.

use partial_tests::daemon::DaemonOptions;
use partial_tests::layout::{chain_ids, tar_listing};
use partial_tests::{
    content, legacy_to_oci_layout, require_daemon, require_daemons, rootfs_tar, sha256_digest,
    write_legacy_archive, Content, ImageSpec, TarBuilder,
};
use std::io::Read;

#[test]
fn fixtures_are_deterministic() {
    assert_eq!(
        content(7, 1000, Content::Random),
        content(7, 1000, Content::Random)
    );
    assert_ne!(
        content(7, 1000, Content::Random),
        content(8, 1000, Content::Random)
    );
    assert_eq!(content(7, 1000, Content::Compressible).len(), 1000);
    let a = rootfs_tar(3, &[10, 5000], Content::Random);
    assert_eq!(a, rootfs_tar(3, &[10, 5000], Content::Random));
    assert_ne!(
        sha256_digest(&a),
        sha256_digest(&rootfs_tar(4, &[10, 5000], Content::Random))
    );
    // Compressible content compresses.
    let c = content(1, 100_000, Content::Compressible);
    let mut gz = flate2::read::GzEncoder::new(&c[..], flate2::Compression::fast());
    let mut out = Vec::new();
    gz.read_to_end(&mut out).unwrap();
    assert!(out.len() < c.len() / 5, "{} of {}", out.len(), c.len());
}

#[test]
fn chain_ids_follow_the_docs_formula() {
    let d = vec![sha256_digest(b"a"), sha256_digest(b"b")];
    let c = chain_ids(&d);
    assert_eq!(c[0], d[0]);
    assert_eq!(c[1], sha256_digest(format!("{} {}", d[0], d[1]).as_bytes()));
}

#[test]
fn binary_locator_finds_the_tools_cargo_built_for_the_tests() {
    for name in ["partial-save", "partial-load"] {
        let p = partial_tests::bin(name);
        assert!(p.is_file(), "{}", p.display());
        assert_eq!(
            p.parent().unwrap(),
            partial_tests::bins::profile_dir().unwrap()
        );
    }
    // tool_cmd aims a binary at a daemon through DOCKER_HOST.
    if let Some(d) = require_daemon(DaemonOptions::labelled("toolcmd")) {
        let c = d.tool_cmd("partial-save");
        let host = c
            .get_envs()
            .find(|(k, _)| *k == "DOCKER_HOST")
            .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()));
        assert_eq!(host, Some(d.host()));
        let out = d.tool_cmd("partial-save").arg("--help").output().unwrap();
        eprintln!("partial-save --help exited with {}", out.status);
    }
}

/// A hand-written legacy archive with one diffID at two chain positions and shared layers between
/// two images loads, and the daemon reports the IDs and diffIDs we computed.
#[test]
fn hand_written_legacy_archive_loads() {
    let Some(d) = require_daemon(DaemonOptions::labelled("handmade")) else {
        return;
    };
    let base = rootfs_tar(10, &[3000], Content::Random);
    let extra = TarBuilder::new().dir("x").file("x/y", b"hello").finish();
    let images = [
        ImageSpec {
            tags: vec!["hand:1".into()],
            layers: vec![base.clone(), extra.clone()],
            config: None,
        },
        ImageSpec {
            // `extra` twice: the second is a symlink in the archive.
            tags: vec!["hand:2".into()],
            layers: vec![
                base.clone(),
                extra.clone(),
                rootfs_tar(11, &[100], Content::Random),
                extra.clone(),
            ],
            config: Some(serde_json::json!({"Env": ["V=2"]})),
        },
    ];
    let path = d.scratch_path("hand.tar");
    let ids = write_legacy_archive(&images, &path).unwrap();
    let listing = tar_listing(&path).unwrap();
    assert!(
        listing.iter().any(|l| l.contains("layer.tar -> ../")),
        "{listing:#?}"
    );
    assert_eq!(listing.last().unwrap(), "repositories");
    d.load(&path).unwrap();
    assert_eq!(d.image_id("hand:1").unwrap(), ids[0]);
    assert_eq!(d.image_id("hand:2").unwrap(), ids[1]);
    let diffs = d.diff_ids("hand:2").unwrap();
    assert_eq!(diffs.len(), 4);
    assert_eq!(diffs[1], diffs[3]);
    assert_eq!(diffs[1], sha256_digest(&extra));
}

/// A real legacy `docker save` of two images sharing layers, rewritten into the Docker ≥ 25 layout,
/// loads into the other (20.10) daemon with the same image IDs; a hand-written archive with a
/// symlinked duplicate becomes one blob.
#[test]
fn rewritten_oci_layout_loads_with_the_same_image_ids() {
    let pair = require_daemons!();
    let s = &pair.source;
    s.import_rootfs("lay-base:1", 20, &[5000, 7000], Content::Random)
        .unwrap();
    let files = partial_tests::layer_files(21, "opt", 2, 3000, Content::Compressible);
    let app1 = s.build("lay-app:1", "lay-base:1", &[files]).unwrap();
    let app2 = s
        .build(
            "lay-app:2",
            "lay-app:1",
            &[partial_tests::layer_files(
                22,
                "srv",
                1,
                100,
                Content::Random,
            )],
        )
        .unwrap();
    let legacy = s.save(&["lay-app:1", "lay-app:2"]).unwrap();
    let oci = s.scratch_path("oci.tar");
    let mut ids = legacy_to_oci_layout(&legacy, &oci).unwrap();
    // The daemon writes manifest.json in Go map order: compare without order.
    ids.sort();
    let mut want = vec![app1.clone(), app2.clone()];
    want.sort();
    assert_eq!(ids, want);

    let listing = tar_listing(&oci).unwrap();
    let n = listing.len();
    assert_eq!(
        &listing[n - 4..],
        ["index.json", "manifest.json", "oci-layout", "repositories"]
    );
    assert!(
        listing[..n - 4].iter().all(|l| l.starts_with("blobs/")),
        "{listing:#?}"
    );
    for d in s.diff_ids("lay-app:2").unwrap() {
        let blob = format!("blobs/sha256/{}", &d[7..]);
        assert_eq!(listing.iter().filter(|l| **l == blob).count(), 1, "{blob}");
    }
    assert!(listing.contains(&format!("blobs/sha256/{}", &app2[7..])));

    let out = pair.airgap.load(&oci).unwrap();
    assert!(out.contains("lay-app:2"), "{out}");
    assert_eq!(pair.airgap.image_id("lay-app:1").unwrap(), app1);
    assert_eq!(pair.airgap.image_id("lay-app:2").unwrap(), app2);
    assert_eq!(
        pair.airgap.diff_ids("lay-app:2").unwrap(),
        s.diff_ids("lay-app:2").unwrap()
    );

    // Symlinked duplicate in a legacy archive -> one blob, and it still loads.
    let dup = TarBuilder::new().file("d", b"dup").finish();
    let spec = ImageSpec {
        tags: vec!["lay-dup:1".into()],
        layers: vec![
            rootfs_tar(23, &[10], Content::Random),
            dup.clone(),
            dup.clone(),
        ],
        config: None,
    };
    let hand = s.scratch_path("dup.tar");
    let hand_ids = write_legacy_archive(&[spec], &hand).unwrap();
    let hand_oci = s.scratch_path("dup-oci.tar");
    assert_eq!(legacy_to_oci_layout(&hand, &hand_oci).unwrap(), hand_ids);
    let dup_blob = format!("blobs/sha256/{}", &sha256_digest(&dup)[7..]);
    let listing = tar_listing(&hand_oci).unwrap();
    assert_eq!(listing.iter().filter(|l| **l == dup_blob).count(), 1);
    pair.airgap.load(&hand_oci).unwrap();
    assert_eq!(pair.airgap.image_id("lay-dup:1").unwrap(), hand_ids[0]);
}

/// kill() leaves no dockerd or containerd behind; restart() comes back on the same folders with the
/// images still there; TZ reaches the daemon.
#[test]
fn daemon_kill_and_restart_keep_the_data() {
    let Some(mut d) = require_daemon(DaemonOptions::labelled("restart").env("TZ", "Asia/Shanghai"))
    else {
        return;
    };
    let id = d
        .import_rootfs("keep:1", 30, &[100], Content::Random)
        .unwrap();
    let dpid = d.pid().unwrap() as i32;
    let cpid = d.containerd_pid().expect("containerd pid");
    let environ = std::fs::read(format!("/proc/{dpid}/environ")).unwrap();
    assert!(String::from_utf8_lossy(&environ).contains("TZ=Asia/Shanghai"));

    d.kill().unwrap();
    assert!(!partial_tests::daemon::is_alive(dpid));
    assert!(!partial_tests::daemon::is_alive(cpid));
    assert!(!d.ping());

    d.restart().unwrap();
    assert_eq!(d.image_id("keep:1").unwrap(), id);
    let cpid2 = d.containerd_pid().unwrap();
    assert_ne!(cpid2, cpid);

    d.restart().unwrap(); // orderly stop + start
    assert!(d.has_image(&id));
    let dir = d.dir().to_path_buf();
    let (dpid, cpid) = (d.pid().unwrap() as i32, d.containerd_pid().unwrap());
    drop(d);
    assert!(!dir.exists(), "Drop removes the folder");
    assert!(!partial_tests::daemon::is_alive(dpid));
    assert!(!partial_tests::daemon::is_alive(cpid));
}

/// Helper for the watchdog test: run only in a child process (ignored otherwise).
#[test]
#[ignore = "helper: run by watchdog_cleans_up_after_a_killed_test_process"]
fn helper_start_daemon_and_hang() {
    if std::env::var_os("PARTIAL_WATCHDOG_HELPER").is_none() {
        return;
    }
    let d = partial_tests::Daemon::start("orphan").unwrap();
    println!("DIR {}", d.dir().display());
    println!("PIDS {} {}", d.pid().unwrap(), d.containerd_pid().unwrap());
    std::thread::sleep(std::time::Duration::from_secs(120));
}

/// SIGKILL a test process that holds a daemon: the watchdog stops dockerd and containerd and
/// removes the folder.
#[test]
fn watchdog_cleans_up_after_a_killed_test_process() {
    use std::io::BufRead;
    if let Err(e) = partial_tests::daemon::preflight() {
        let _ = require_daemon(DaemonOptions::labelled("watchdog-probe"));
        eprintln!("(watchdog test: {e})");
        return;
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rig_self::helper_start_daemon_and_hang",
            "--ignored",
            "--nocapture",
        ])
        .env("PARTIAL_WATCHDOG_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut dir = None;
    let mut pids = None;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("DIR ") {
            dir = Some(std::path::PathBuf::from(d));
        }
        if let Some(p) = line.strip_prefix("PIDS ") {
            let v: Vec<i32> = p.split(' ').map(|x| x.parse().unwrap()).collect();
            pids = Some((v[0], v[1]));
            break;
        }
    }
    let (dir, (dpid, cpid)) = (
        dir.expect("helper printed its dir"),
        pids.expect("helper printed pids"),
    );
    assert!(partial_tests::daemon::is_alive(dpid));
    child.kill().unwrap();
    child.wait().unwrap();
    let t0 = std::time::Instant::now();
    while (dir.exists()
        || partial_tests::daemon::is_alive(dpid)
        || partial_tests::daemon::is_alive(cpid))
        && t0.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    eprintln!("watchdog cleaned up in {:?}", t0.elapsed());
    assert!(
        !partial_tests::daemon::is_alive(dpid),
        "dockerd {dpid} survived"
    );
    assert!(
        !partial_tests::daemon::is_alive(cpid),
        "containerd {cpid} survived"
    );
    assert!(!dir.exists(), "{} survived", dir.display());
}

/// A test that panics while holding a daemon still stops it and removes its folder.
#[test]
fn a_panicking_test_cleans_up_its_daemon() {
    let Some(d) = require_daemon(DaemonOptions::labelled("panic")) else {
        return;
    };
    let dir = d.dir().to_path_buf();
    let (dpid, cpid) = (d.pid().unwrap() as i32, d.containerd_pid().unwrap());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _d = d;
        panic!("deliberate");
    }));
    assert!(r.is_err());
    assert!(!dir.exists());
    assert!(!partial_tests::daemon::is_alive(dpid));
    assert!(!partial_tests::daemon::is_alive(cpid));
}

/// Start-time measurement (run by hand: `cargo test -p partial-tests --test e2e --
/// rig_self::measure_daemon_start --ignored --nocapture`).
#[test]
#[ignore = "measurement, run by hand"]
fn measure_daemon_start() {
    let mut times = Vec::new();
    for _ in 0..5 {
        let t0 = std::time::Instant::now();
        let d = partial_tests::Daemon::start("measure").unwrap();
        let ready = t0.elapsed();
        drop(d);
        times.push((ready, t0.elapsed() - ready));
    }
    for (ready, stop) in &times {
        eprintln!("start until /_ping: {ready:?}, stop + cleanup: {stop:?}");
    }
    let t0 = std::time::Instant::now();
    let pair = partial_tests::DaemonPair::start().unwrap();
    eprintln!(
        "pair: {:?} (source {:?}, airgap {:?})",
        t0.elapsed(),
        pair.source.start_time(),
        pair.airgap.start_time()
    );
}

/// The containerd-store rewrite: compressed layer blobs (not named by diffID), no `repositories`;
/// the 20.10 daemon still loads it (it decompresses layer files) with the same image ID.
#[test]
fn containerd_layout_rewrite_has_compressed_blobs_and_loads() {
    let Some(d) = require_daemon(DaemonOptions::labelled("ctrd")) else {
        return;
    };
    let layers = vec![
        rootfs_tar(40, &[20_000], Content::Compressible),
        TarBuilder::new().file("z", b"zz").finish(),
    ];
    let spec = ImageSpec {
        tags: vec!["ctrd:1".into()],
        layers: layers.clone(),
        config: None,
    };
    let legacy = d.scratch_path("ctrd-legacy.tar");
    let ids = write_legacy_archive(&[spec], &legacy).unwrap();
    let out = d.scratch_path("ctrd.tar");
    assert_eq!(
        partial_tests::legacy_to_containerd_layout(&legacy, &out).unwrap(),
        ids
    );
    let listing = tar_listing(&out).unwrap();
    assert!(!listing.iter().any(|l| l == "repositories"), "{listing:#?}");
    for l in &layers {
        let diff_blob = format!("blobs/sha256/{}", &sha256_digest(l)[7..]);
        assert!(!listing.contains(&diff_blob), "layer stored uncompressed");
        let gz = partial_tests::layout::gzip(l);
        assert!(listing.contains(&format!("blobs/sha256/{}", &sha256_digest(&gz)[7..])));
    }
    d.load(&out).unwrap();
    assert_eq!(d.image_id("ctrd:1").unwrap(), ids[0]);
    let diffs: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
    assert_eq!(d.diff_ids("ctrd:1").unwrap(), diffs);
}

/// The bundle checker of the writer tests can fail: a manifest that marks a carried layer left
/// out, or a left-out layer carried, is caught. (Offline: `partial-save --from-archive` of
/// archives from the library's test builders; no daemon.)
#[test]
fn bundle_check_catches_a_manifest_that_contradicts_its_bundle() {
    use partial_common::testutil::archive as t;
    use partial_tests::bundle_check::{check_bundle, manifest_path};
    let dir = tempfile::tempdir().unwrap();
    let base = t::layer("etc/base", &content(71, 200_000, Content::Random));
    let app = t::layer("app/bin", &content(72, 100_000, Content::Random));
    let base_img = t::image(&["base:1"], &[&base]);
    let app_img = t::image(&["app:2"], &[&base, &app]);
    let (full, base_tar) = (dir.path().join("full.tar"), dir.path().join("base.tar"));
    std::fs::write(&full, t::legacy(&[&app_img], "1970-01-01T00:00:00Z").tar()).unwrap();
    std::fs::write(
        &base_tar,
        t::legacy(&[&base_img], "1970-01-01T00:00:00Z").tar(),
    )
    .unwrap();
    let out = dir.path().join("out.tgz");
    partial_tests::cli::save(&[
        "--from-archive".as_ref(),
        full.as_os_str(),
        "--exclude-archive".as_ref(),
        base_tar.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .ok();
    let facts = check_bundle(&out).unwrap();
    assert_eq!(facts.images.len(), 1);
    assert_eq!(facts.images[0].carried, vec![false, true]);
    let mpath = manifest_path(&out);
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let check_with = |m: &serde_json::Value| {
        std::fs::write(&mpath, serde_json::to_vec(m).unwrap()).unwrap();
        format!("{:#}", check_bundle(&out).unwrap_err())
    };
    // The carried layer marked left out (and its chain required): its bytes are in the bundle.
    let mut m = good.clone();
    m["images"][0]["layers"][1]["carried"] = false.into();
    let chain = m["images"][0]["layers"][1]["chain_id"].clone();
    let mut extra = m["required_base"][0].clone();
    extra["chain_id"] = chain;
    m["required_base"].as_array_mut().unwrap().push(extra);
    let e = check_with(&m);
    assert!(
        e.contains("marked left out but the bundle still has"),
        "{e}"
    );
    // The same without listing its chain in required_base.
    let mut m = good.clone();
    m["images"][0]["layers"][1]["carried"] = false.into();
    let e = check_with(&m);
    assert!(e.contains("not in required_base"), "{e}");
    // The left-out base layer marked carried: it is not in the bundle.
    let mut m = good.clone();
    m["images"][0]["layers"][0]["carried"] = true.into();
    let e = check_with(&m);
    assert!(e.contains("marked carried but is not in the bundle"), "{e}");
    // A wrong diffID.
    let mut m = good;
    m["images"][0]["layers"][1]["diff_id"] = partial_tests::sha256_digest(b"other").into();
    let e = check_with(&m);
    assert!(e.contains("differ from the manifest"), "{e}");
}

/// The go-containerregistry tarball writer keeps crane's shape: the config entry first, named
/// `sha256:<hex>`; each layer once, gzip-compressed, named `<hex of the compressed blob>.tar.gz`;
/// `manifest.json` last, naming them.
#[test]
fn crane_tarball_has_crane_s_shape() {
    let dir = tempfile::tempdir().unwrap();
    let shared = rootfs_tar(50, &[2000], Content::Random);
    let spec = ImageSpec {
        tags: vec!["crane:1".into()],
        layers: vec![
            shared.clone(),
            TarBuilder::new().file("c", b"c").finish(),
            shared,
        ],
        config: None,
    };
    let legacy = dir.path().join("legacy.tar");
    let ids = write_legacy_archive(std::slice::from_ref(&spec), &legacy).unwrap();
    let out = dir.path().join("crane.tar");
    assert_eq!(
        partial_tests::writers::legacy_to_crane_tarball(&legacy, &out).unwrap(),
        ids
    );
    let listing = tar_listing(&out).unwrap();
    assert_eq!(listing[0], ids[0], "config first, named sha256:<hex>");
    assert_eq!(listing.last().unwrap(), "manifest.json");
    assert_eq!(
        listing.len(),
        4,
        "two distinct layers, each once: {listing:#?}"
    );
    let entries = partial_tests::layout::read_tar(&out).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(partial_tests::layout::resolve(&entries, "manifest.json").unwrap())
            .unwrap();
    assert_eq!(m[0]["Config"], ids[0].as_str());
    assert_eq!(m[0]["RepoTags"][0], "crane:1");
    let layers = m[0]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0], layers[2]);
    for (l, data) in layers.iter().zip(&spec.layers) {
        let name = l.as_str().unwrap();
        let blob = partial_tests::layout::resolve(&entries, name).unwrap();
        assert_eq!(name, format!("{}.tar.gz", &sha256_digest(blob)[7..]));
        assert_eq!(
            partial_tests::bundle_check::uncompressed_digest(blob),
            sha256_digest(data)
        );
    }
}
