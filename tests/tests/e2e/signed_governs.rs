//! The signed manifest governs every command: bundles signed with the right key whose tar says
//! more than, or other than, the manifest (what a holder of the key could sign, or a broken
//! exporter write), and corrupt bundles. Each case is a row: how the bundle is made from a real
//! `partial-save` bundle (`partial_tests::tamper`, decoders independent of the code under test),
//! and each command run on it with the exit code it must give. After every row the air-gapped
//! daemon holds exactly what it held before (nothing loaded, no tag moved), `rehydrate` has
//! written nothing, and no temporary file is left beside the bundle.

use partial_tests::cli::{export_signed, files_in, keygen, load, Run};
use partial_tests::scenario::{build_standard, give_airgap};
use partial_tests::tamper::{self, Parts};
use partial_tests::Daemon;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Tags and IDs of a daemon's images.
fn images_of(daemon: &Daemon) -> BTreeMap<String, String> {
    daemon
        .docker(&[
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.ID}}",
        ])
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn blob(d: &str) -> String {
    format!("blobs/sha256/{}", d.trim_start_matches("sha256:"))
}

/// What the rows need to know of the real bundle.
struct Ctx {
    parts: Parts,
    app_id: String,
    /// diffIDs of app:2's layers, bottom first; the first `base` are left out.
    diffs: Vec<String>,
    base: usize,
}

impl Ctx {
    fn carried(&self) -> &str {
        &self.diffs[self.base]
    }
}

/// A row: the bundle `make` writes, and the commands with the exit code each must give.
struct Row {
    name: &'static str,
    make: fn(&Ctx, &Path, &Path),
    expect: &'static [(&'static str, i32)],
}

/// Writes `parts` as the bundle `out`, gzip, signed with `key`.
fn signed(parts: &Parts, key: &Path, out: &Path) {
    tamper::write_parts(parts, "gzip", key, out);
}

/// The app's config with `diff_ids` and a label, and its ID.
fn config_with(ctx: &Ctx, diff_ids: &[String], label: &str) -> (Vec<u8>, String) {
    let mut c: Value =
        serde_json::from_slice(tamper::data(&ctx.parts, &blob(&ctx.app_id))).unwrap();
    c["rootfs"]["diff_ids"] = json!(diff_ids);
    c["config"]["Labels"] = json!({ "tampered": label });
    let bytes = serde_json::to_vec(&c).unwrap();
    let id = partial_common::Digest::of_bytes(&bytes).to_string();
    (bytes, id)
}

fn edit_manifest_json(parts: &mut Parts, edit: impl FnOnce(&mut Vec<Value>)) {
    let mut m: Vec<Value> = serde_json::from_slice(tamper::data(parts, "manifest.json")).unwrap();
    edit(&mut m);
    tamper::set_data(parts, "manifest.json", serde_json::to_vec(&m).unwrap());
}

fn hidden_base_image(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    let (config, id) = config_with(ctx, &ctx.diffs[..ctx.base], "hidden");
    p.entries.insert(0, tamper::file(&blob(&id), config));
    let layers: Vec<String> = ctx.diffs[..ctx.base].iter().map(|d| blob(d)).collect();
    edit_manifest_json(&mut p, |m| {
        m.push(json!({"Config": blob(&id), "RepoTags": ["base:1"], "Layers": layers}))
    });
    signed(&p, key, out);
}

fn unlisted_image(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    p.manifest["images"] = json!([]);
    p.manifest["required_base"] = json!([]);
    signed(&p, key, out);
}

fn unsigned_tag(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    edit_manifest_json(&mut p, |m| {
        m[0]["RepoTags"]
            .as_array_mut()
            .unwrap()
            .push(json!("base:1"))
    });
    signed(&p, key, out);
}

fn second_manifest_json(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    let m = tamper::data(&p, "manifest.json").to_vec();
    p.entries.push(tamper::file("manifest.json", m));
    signed(&p, key, out);
}

/// A zstd bundle whose tar is followed by 512 MiB of zeros (valid after a tar's end), while the
/// signed `tar_size` is the tar's own.
fn decompression_bomb(ctx: &Ctx, key: &Path, out: &Path) {
    let tar = tamper::tar_of(&ctx.parts.entries);
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    z.write_all(&tar).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        z.write_all(&zeros).unwrap();
    }
    let bytes = z.finish().unwrap();
    assert!(bytes.len() < 1 << 20, "{}", bytes.len());
    tamper::write_signed(
        &bytes,
        "zstd",
        tar.len() as u64,
        &ctx.parts.manifest,
        key,
        out,
    );
}

/// A valid bundle with one byte flipped afterwards (not signed again).
fn flipped(ctx: &Ctx, key: &Path, out: &Path, compression: &str) {
    tamper::write_parts(&ctx.parts, compression, key, out);
    let mut bytes = std::fs::read(out).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(out, bytes).unwrap();
}

fn flipped_gzip(ctx: &Ctx, key: &Path, out: &Path) {
    flipped(ctx, key, out, "gzip")
}

fn flipped_zstd(ctx: &Ctx, key: &Path, out: &Path) {
    flipped(ctx, key, out, "zstd")
}

fn missing_layer(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    let name = blob(ctx.carried());
    p.entries.retain(|(_, n, _)| *n != name);
    signed(&p, key, out);
}

fn duplicate_layer(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    let name = blob(ctx.carried());
    let e = p
        .entries
        .iter()
        .find(|(_, n, _)| *n == name)
        .unwrap()
        .clone();
    p.entries.insert(0, e);
    signed(&p, key, out);
}

/// The signed image's config lists one more layer than the signed manifest.
fn config_contradicts_layers(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    let mut diffs = ctx.diffs.clone();
    diffs.push(ctx.carried().to_string());
    let (config, id) = config_with(ctx, &diffs, "extra layer");
    for e in &mut p.entries {
        if e.1 == blob(&ctx.app_id) {
            *e = tamper::file(&blob(&id), config.clone());
        }
    }
    edit_manifest_json(&mut p, |m| m[0]["Config"] = json!(blob(&id)));
    p.manifest["images"][0]["id"] = json!(id);
    signed(&p, key, out);
}

fn hardlink_to_passwd(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.set_link_name("/etc/passwd").unwrap();
    p.entries.insert(0, (h, blob(&"a".repeat(64)), Vec::new()));
    signed(&p, key, out);
}

fn invalid_signed_tag(ctx: &Ctx, key: &Path, out: &Path) {
    let mut p = ctx.parts.clone();
    p.manifest["images"][0]["tags"] = json!(["app:2", "Not A Tag!"]);
    signed(&p, key, out);
}

/// Writes `tar` as a zstd bundle signed with the real bundle's manifest.
fn signed_zstd(ctx: &Ctx, tar: &[u8], key: &Path, out: &Path) {
    let bytes = tamper::compress(tar, "zstd");
    tamper::write_signed(
        &bytes,
        "zstd",
        tar.len() as u64,
        &ctx.parts.manifest,
        key,
        out,
    );
}

/// A zstd bundle whose tar has an entry named `../escape`.
fn escaping_name(ctx: &Ctx, key: &Path, out: &Path) {
    let mut tar = Vec::new();
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.extend_from_slice(&[b'x'; 512]);
    tar.extend_from_slice(&tamper::tar_of(&ctx.parts.entries));
    signed_zstd(ctx, &tar, key, out);
}

/// A zstd bundle with a header claiming a 1 TiB entry after the tar's end marker.
fn garbage_after_end(ctx: &Ctx, key: &Path, out: &Path) {
    let mut tar = tamper::tar_of(&ctx.parts.entries);
    let mut h = tar::Header::new_gnu();
    h.set_path("garbage").unwrap();
    h.set_size(1 << 40);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    signed_zstd(ctx, &tar, key, out);
}

const ALL: &[(&str, i32)] = &[
    ("verify-offline", 3),
    ("verify", 3),
    ("load", 3),
    ("rehydrate", 3),
];

const ROWS: &[Row] = &[
    Row {
        name: "an extra image tagged base:1",
        make: hidden_base_image,
        expect: ALL,
    },
    Row {
        name: "an image the signed manifest does not list",
        make: unlisted_image,
        expect: ALL,
    },
    Row {
        name: "a tag the signed manifest does not give",
        make: unsigned_tag,
        expect: ALL,
    },
    Row {
        name: "a second manifest.json",
        make: second_manifest_json,
        expect: ALL,
    },
    Row {
        name: "a zstd bomb beyond tar_size",
        make: decompression_bomb,
        expect: ALL,
    },
    Row {
        name: "a flipped byte in a gzip bundle",
        make: flipped_gzip,
        expect: ALL,
    },
    Row {
        name: "a flipped byte in a zstd bundle",
        make: flipped_zstd,
        expect: ALL,
    },
    Row {
        name: "a missing layer",
        make: missing_layer,
        expect: ALL,
    },
    Row {
        name: "a duplicate layer entry",
        make: duplicate_layer,
        expect: ALL,
    },
    Row {
        name: "a config contradicting its layers",
        make: config_contradicts_layers,
        expect: ALL,
    },
    Row {
        name: "a hard link to /etc/passwd",
        make: hardlink_to_passwd,
        expect: ALL,
    },
    Row {
        name: "an invalid tag in the signed manifest",
        make: invalid_signed_tag,
        expect: ALL,
    },
    Row {
        name: "a ../ entry in a zstd bundle",
        make: escaping_name,
        expect: ALL,
    },
    Row {
        name: "a 1 TiB header after the tar's end",
        make: garbage_after_end,
        expect: ALL,
    },
];

/// Runs `command` (`verify-offline`, `verify`, `load`, `rehydrate`) on `bundle`.
fn run(command: &str, bundle: &Path, d: &Path, host: &str) -> Run {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut args = vec![
        command.trim_end_matches("-offline").to_string(),
        s(bundle),
        "--key".into(),
        s(&d.join("team.pub")),
    ];
    match command {
        "verify-offline" => args.push("--offline".into()),
        _ => args.extend(["-H".to_string(), host.to_string()]),
    }
    match command {
        "rehydrate" => args.extend(["-o".into(), s(&d.join("full.tar"))]),
        _ => args.extend(["--state".into(), s(&d.join("state.json"))]),
    }
    load(&args)
}

fn context(pair: &partial_tests::DaemonPair, d: &Path) -> Ctx {
    let plain = export_signed(
        &pair.source.host(),
        d,
        "plain.tar",
        "app:2",
        &["-e", "base:1", "--compression", "none"],
    );
    let parts = tamper::open(&plain);
    let img = &parts.manifest["images"][0];
    let layers = img["layers"].as_array().unwrap();
    Ctx {
        app_id: img["id"].as_str().unwrap().to_string(),
        diffs: layers
            .iter()
            .map(|l| l["diff_id"].as_str().unwrap().to_string())
            .collect(),
        base: layers
            .iter()
            .filter(|l| l["carried"] == json!(false))
            .count(),
        parts,
    }
}

#[test]
fn hostile_bundles_signed_with_the_right_key_load_nothing() {
    let Some(pair) = partial_tests::require_daemons() else {
        return;
    };
    build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keygen(d, "team");
    let ctx = context(&pair, d);
    assert!(ctx.base > 0 && ctx.base < ctx.diffs.len());
    let host = pair.airgap.host();
    // The unedited bundle, written back by the same helper, verifies: the rows fail for their edit.
    let good = d.join("good.tgz");
    signed(&ctx.parts, &d.join("team.key"), &good);
    run("verify-offline", &good, d, &host).ok();
    let mut before = images_of(&pair.airgap);
    let mut failures = Vec::new();
    for row in ROWS {
        let bundle: PathBuf = d.join("hostile.tgz");
        (row.make)(&ctx, &d.join("team.key"), &bundle);
        let files = files_in(d);
        for (command, code) in row.expect {
            let r = run(command, &bundle, d, &host);
            if r.code != *code {
                failures.push(format!(
                    "{}: {command} exited {} (expected {code}):\n{}",
                    row.name, r.code, r.stderr
                ));
            }
            if images_of(&pair.airgap) != before {
                failures.push(format!(
                    "{}: {command} changed the daemon's images",
                    row.name
                ));
                give_airgap(&pair, &["base:1"]);
                before = images_of(&pair.airgap);
            }
            let now = files_in(d);
            if now != files {
                failures.push(format!("{}: {command} left files: {now:?}", row.name));
                for f in now.iter().filter(|f| !files.contains(f)) {
                    let _ = std::fs::remove_file(d.join(f));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
