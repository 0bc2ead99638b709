//! Layer deltas end to end: deltas against what the destination holds, on two private
//! daemons. A layer rebuilt with one file changed (the same tree, 160 MB) travels as a delta of
//! a few KB and loads with the source's image ID; renamed and moved files still share their
//! bytes; an unrelated layer falls back to the whole layer; a tampered delta is refused (exit 3,
//! nothing loaded); a reference the destination lacks is exit 4 before anything is read; an
//! interrupted load leaves no temporary file behind; `rehydrate` writes an archive a plain
//! `docker load` accepts. References come from `-e` images, an inventory (the source daemon's
//! image of the same repository) or a base archive.

use partial_tests::cli::{files_in, keygen, load, save, Export, Run};
use partial_tests::{content, require_daemons, Content, DaemonPair, LayerFiles};
use serde_json::Value;
use std::path::Path;

/// The application tree: `n` files of `size` pseudo-random bytes under `app/`.
fn tree(seed: u64, n: usize, size: usize) -> LayerFiles {
    (0..n)
        .map(|i| {
            (
                format!("app/lib{:02}/part{i:04}.bin", i % 16),
                content(seed * 100_003 + i as u64, size, Content::Random),
            )
        })
        .collect()
}

/// base:1, app:1 (base + tree), app:2 (the same tree, one file changed), app:moved (the tree
/// with files renamed and moved to other folders), app:other (an unrelated tree).
fn scene(pair: &DaemonPair, n: usize, size: usize) {
    let s = &pair.source;
    s.import_rootfs("base:1", 1, &[4096, 20_000], Content::Compressible)
        .unwrap();
    let t = tree(5, n, size);
    s.build("app:1", "base:1", std::slice::from_ref(&t))
        .unwrap();
    let mut changed = t.clone();
    changed[n / 2].1 = b"one small file changed in the rebuild\n".to_vec();
    s.build("app:2", "base:1", &[changed]).unwrap();
    let moved: LayerFiles = t
        .iter()
        .map(|(p, d)| {
            (
                p.replace("app/lib", "srv/moved-")
                    .replace("part", "renamed-"),
                d.clone(),
            )
        })
        .collect();
    s.build("app:moved", "base:1", &[moved]).unwrap();
    s.build("app:other", "base:1", &[tree(77, n / 4, size)])
        .unwrap();
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `partial-save -H source -i IMAGE -e app:1 --delta -o dir/NAME --sign-key … --json`.
fn export(pair: &DaemonPair, dir: &Path, image: &str, name: &str, extra: &[&str]) -> Run {
    Export::new(pair.source.host(), dir, name)
        .images(&[image])
        .base(&["-e", "app:1"])
        .args(&["--delta", "--json"])
        .args(extra)
        .run()
}

fn manifest(run: &Run) -> Value {
    let v: Value = serde_json::from_str(&run.stdout).expect("--json output");
    v["manifest"].clone()
}

fn deltas(m: &Value) -> Vec<Value> {
    m["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.get("delta").cloned())
        .collect()
}

/// `partial-load CMD dir/NAME --key dir/team.pub -H airgap EXTRA…`.
fn pl(pair: &DaemonPair, dir: &Path, cmd: &str, name: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        cmd.to_string(),
        path_str(&dir.join(name)),
        "--key".into(),
        path_str(&dir.join("team.pub")),
        "-H".into(),
        pair.airgap.host(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    load(&args)
}

fn prepare(pair: &DaemonPair, dir: &Path) {
    keygen(dir, "team");
    let tar = pair.source.save(&["app:1"]).unwrap();
    pair.airgap.load(&tar).unwrap();
    let _ = std::fs::remove_file(tar);
}

/// The dry run of app:2 against app:1 shows each delta layer's size, and the savings.
fn check_dry_run_shows_delta_sizes(pair: &DaemonPair) {
    let dry = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:2",
        "-e",
        "app:1",
        "--delta",
        "--dry-run",
    ])
    .ok();
    assert!(dry.stdout.contains("delta of"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("as deltas"),
        "the savings: {}",
        dry.stdout
    );
}

#[test]
fn a_rebuilt_layer_travels_as_a_delta_and_loads_with_the_source_id() {
    let pair = require_daemons!();
    scene(&pair, 640, 256 << 10); // a 160 MiB layer
    let dir = tempfile::tempdir().unwrap();
    prepare(&pair, dir.path());

    let run = export(&pair, dir.path(), "app:2", "app2.tgz", &[]).ok();
    let m = manifest(&run);
    let d = deltas(&m);
    assert_eq!(d.len(), 1, "one delta layer: {m:#}");
    assert_eq!(m["docker_loadable"], Value::Bool(false));
    assert_eq!(m["version"], 2);
    let app1 = pair
        .source
        .docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "app:1"])
        .unwrap();
    let app1_layers: Vec<String> = serde_json::from_str(app1.trim()).unwrap();
    assert_eq!(
        d[0]["reference_diff_id"],
        app1_layers[1].as_str(),
        "by position"
    );
    assert!(
        m["required_base"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["diff_id"] == app1_layers[1].as_str()),
        "the reference chain is a required base"
    );
    let bundle = std::fs::metadata(dir.path().join("app2.tgz"))
        .unwrap()
        .len();
    assert!(
        bundle <= 1 << 20,
        "bundle of {bundle} bytes for a one-file rebuild of 160 MiB"
    );
    let carried = m["totals"]["bytes_carried"].as_u64().unwrap();
    assert!(carried < 1 << 20, "bytes carried {carried}");
    eprintln!(
        "delta of the 160 MiB rebuild: {} bytes; bundle {bundle} bytes",
        d[0]["size"]
    );

    check_dry_run_shows_delta_sizes(&pair);

    pl(&pair, dir.path(), "verify", "app2.tgz", &[]).ok();
    pl(&pair, dir.path(), "load", "app2.tgz", &[]).ok();
    assert_eq!(
        pair.airgap.image_id("app:2").unwrap(),
        pair.source.image_id("app:2").unwrap()
    );

    // rehydrate writes an archive a plain docker load accepts (into a daemon without app:1).
    let full = dir.path().join("full.tar");
    pl(
        &pair,
        dir.path(),
        "rehydrate",
        "app2.tgz",
        &["-o", &path_str(&full)],
    )
    .ok();
    pair.airgap
        .docker(&["image", "rm", "-f", "app:1", "app:2"])
        .unwrap();
    pair.airgap.load(&full).unwrap();
    assert_eq!(
        pair.airgap.image_id("app:2").unwrap(),
        pair.source.image_id("app:2").unwrap()
    );
    let leftovers: Vec<String> = files_in(dir.path())
        .into_iter()
        .filter(|f| f.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Dry runs of app:2 with `--delta` find their references through an inventory, a base
/// archive, or (offline) the `-e` image among the inputs.
fn check_references_beyond_the_daemon(pair: &DaemonPair, dir: &Path) {
    // With an inventory instead of -e: the source daemon's app:1 (same repository, holding a
    // chain the inventory names) is read as the reference.
    let have = dir.join("have.json");
    load(&[
        "inventory",
        "-H",
        &pair.airgap.host(),
        "-o",
        &path_str(&have),
    ])
    .ok();
    let dry = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:2",
        "--have",
        &path_str(&have),
        "--delta",
        "--dry-run",
    ])
    .ok();
    assert!(dry.stdout.contains("delta of"), "{}", dry.stdout);

    // With a base archive (any docker save) instead: its layers are the references.
    let base = dir.join("app1.tar");
    pair.source.save_to(&["app:1"], &base).unwrap();
    let dry = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:2",
        "--exclude-archive",
        &path_str(&base),
        "--delta",
        "--dry-run",
    ])
    .ok();
    assert!(dry.stdout.contains("delta of"), "{}", dry.stdout);
    assert!(
        dry.stdout.contains("archive"),
        "the reference's origin: {}",
        dry.stdout
    );

    // Offline: both images in one archive, the -e image among the inputs is the reference.
    let all = dir.join("all.tar");
    pair.source.save_to(&["app:1", "app:2"], &all).unwrap();
    let dry = save(&[
        "--from-archive",
        &path_str(&all),
        "-i",
        "app:2",
        "-e",
        "app:1",
        "--delta",
        "--dry-run",
    ])
    .ok();
    assert!(dry.stdout.contains("delta of"), "offline: {}", dry.stdout);
}

#[test]
fn moved_files_share_bytes_and_an_unrelated_layer_travels_whole() {
    let pair = require_daemons!();
    scene(&pair, 96, 256 << 10); // 24 MiB
    let dir = tempfile::tempdir().unwrap();
    prepare(&pair, dir.path());

    let moved = export(&pair, dir.path(), "app:moved", "moved.tgz", &[]).ok();
    let d = deltas(&manifest(&moved));
    assert_eq!(d.len(), 1, "renamed and moved files: a delta");
    assert!(d[0]["size"].as_u64().unwrap() < 2 << 20, "{:?}", d[0]);
    pl(&pair, dir.path(), "load", "moved.tgz", &[]).ok();
    assert_eq!(
        pair.airgap.image_id("app:moved").unwrap(),
        pair.source.image_id("app:moved").unwrap()
    );

    check_references_beyond_the_daemon(&pair, dir.path());

    let other = export(&pair, dir.path(), "app:other", "other.tgz", &[]).ok();
    let m = manifest(&other);
    assert!(deltas(&m).is_empty(), "unrelated: no delta: {m:#}");
    assert!(m.get("docker_loadable").is_none() && m["version"] == 1);
    let dry = save(&[
        "-H",
        &pair.source.host(),
        "-i",
        "app:other",
        "-e",
        "app:1",
        "--delta",
        "--dry-run",
    ])
    .ok();
    assert!(dry.stdout.contains("travels whole: "), "{}", dry.stdout);
    // Without a delta the bundle is a plain docker-loadable one.
    let plain = dir.path().join("other.tgz");
    pair.airgap.load(&plain).unwrap();
    assert_eq!(
        pair.airgap.image_id("app:other").unwrap(),
        pair.source.image_id("app:other").unwrap()
    );
}

/// Rewrites bundle `dir/NAME` with one byte of its delta changed, the delta's digest and the
/// bundle's hashes updated in the manifest (so only the rebuild can tell), and its signature
/// removed (loaded with `--allow-unsigned`).
fn tamper(dir: &Path, name: &str) {
    use std::io::{Read, Write};
    let path = dir.join(name);
    let mpath = dir.join(format!("{name}.manifest.json"));
    let mut m: Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    let pos = m["images"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .position(|l| l.get("delta").is_some())
        .expect("a delta layer");
    let old = m["images"][0]["layers"][pos]["delta"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let mut out = tar::Builder::new(Vec::new());
    let mut new_digest = None;
    for e in tar::Archive::new(&raw[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let mut h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == format!("blobs/sha256/{}", old.trim_start_matches("sha256:")) {
            // A byte in the middle of the body (past the 92-byte header).
            let i = 92 + (data.len() - 92) / 2;
            data[i] ^= 0x5a;
            let d = partial_tests::sha256_digest(&data);
            h.set_path(format!("blobs/sha256/{}", d.trim_start_matches("sha256:")))
                .unwrap();
            h.set_cksum();
            new_digest = Some(d);
        }
        out.append(&h, &data[..]).unwrap();
    }
    let tar = out.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let bytes = gz.finish().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let (sha, b3) = (
        partial_tests::sha256_digest(&bytes),
        blake3::hash(&bytes).to_hex().to_string(),
    );
    let d = new_digest.expect("the delta entry");
    for l in m["images"][0]["layers"].as_array_mut().unwrap() {
        if l.get("delta").is_some() {
            l["delta"]["digest"] = Value::String(d.clone());
        }
    }
    let set = |v: &mut Value| {
        v["size"] = bytes.len().into();
        v["sha256"] = Value::String(sha.clone());
        v["blake3"] = Value::String(b3.clone());
    };
    set(&mut m["bundle"]);
    set(&mut m["bundle"]["volumes"][0]);
    m["bundle"]["tar_size"] = tar.len().into();
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let _ = std::fs::remove_file(dir.join(format!("{name}.manifest.json.minisig")));
}

/// Interrupted loads of `dir`'s app2.tgz (SIGINT at several points) leave no temporary file, and
/// either nothing or the whole image.
fn check_interrupted_loads(pair: &DaemonPair, dir: &Path) {
    let tmp = tempfile::tempdir().unwrap();
    for ms in [150u64, 400, 900] {
        let mut child = std::process::Command::new(partial_tests::bin("partial-load"))
            .args(["load", &path_str(&dir.join("app2.tgz")), "--key"])
            .arg(dir.join("team.pub"))
            .args(["-H", &pair.airgap.host()])
            .env("TMPDIR", tmp.path())
            .env_remove("DOCKER_HOST")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let _ = child.wait();
        assert!(
            files_in(tmp.path()).is_empty(),
            "TMPDIR after SIGINT at {ms} ms: {:?}",
            files_in(tmp.path())
        );
        let left: Vec<String> = files_in(dir)
            .into_iter()
            .filter(|f| f.starts_with('.'))
            .collect();
        assert!(
            left.is_empty(),
            "bundle folder after SIGINT at {ms} ms: {left:?}"
        );
        if pair.airgap.has_image("app:2") {
            assert_eq!(
                pair.airgap.image_id("app:2").unwrap(),
                pair.source.image_id("app:2").unwrap()
            );
            pair.airgap.docker(&["image", "rm", "app:2"]).unwrap();
        }
    }
}

#[test]
fn a_tampered_delta_or_a_missing_reference_loads_nothing() {
    let pair = require_daemons!();
    scene(&pair, 96, 256 << 10);
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "team");
    export(&pair, dir.path(), "app:2", "app2.tgz", &[]).ok();
    for f in ["app2.tgz", "app2.tgz.manifest.json"] {
        std::fs::copy(dir.path().join(f), dir.path().join(format!("t-{f}"))).unwrap();
    }

    // The destination holds the base but not app:1, the delta's reference: exit 4, naming it,
    // before anything is read.
    let tar = pair.source.save(&["base:1"]).unwrap();
    pair.airgap.load(&tar).unwrap();
    let r = pl(&pair, dir.path(), "load", "app2.tgz", &[]).expect_code(4);
    let app1 = pair.source.image_id("app:1").unwrap();
    assert!(
        r.stderr.contains("app:1"),
        "names the reference's image: {}",
        r.stderr
    );
    assert!(!pair.airgap.has_image("app:2"));
    let _ = app1;

    // With the reference: a tampered delta is refused (exit 3) and nothing is loaded.
    let tar = pair.source.save(&["app:1"]).unwrap();
    pair.airgap.load(&tar).unwrap();
    tamper(dir.path(), "t-app2.tgz");
    let r = pl(
        &pair,
        dir.path(),
        "load",
        "t-app2.tgz",
        &["--allow-unsigned"],
    )
    .expect_code(3);
    assert!(
        !pair.airgap.has_image("app:2"),
        "nothing loaded: {}",
        r.stderr
    );
    pl(
        &pair,
        dir.path(),
        "verify",
        "t-app2.tgz",
        &["--allow-unsigned"],
    )
    .expect_code(3);

    check_interrupted_loads(&pair, dir.path());
    pl(&pair, dir.path(), "load", "app2.tgz", &[]).ok();
    assert_eq!(
        pair.airgap.image_id("app:2").unwrap(),
        pair.source.image_id("app:2").unwrap()
    );
}
