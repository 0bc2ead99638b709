//! Seed inputs of the cargo-fuzz targets (see `fuzz/` and CONTRIBUTING.md, "Fuzzing"): small
//! archives of all three layouts (also broken ones), a real bundle manifest and inventory. Not a
//! test: run it by hand to (re)write the seeds into `$FUZZ_SEEDS_DIR` (default `fuzz/corpus`):
//! `cargo test -p partial-common --lib write_fuzz_seeds -- --ignored`.

use super::archive::{self as testutil, End, NameStyle, TEntry};
use crate::daemon::testutil::sample_info;
use crate::daemon::ImageMeta;
use crate::digest::Digest;
use crate::have::Origin;
use crate::inventory::Inventory;
use crate::manifest::{BundleManifest, FileEntry, Provenance, ToolInfo};
use std::path::{Path, PathBuf};

fn write(dir: &Path, target: &str, name: &str, data: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), data).unwrap();
}

/// Named archives: every layout, shared and repeated layers, long/PAX names, broken ends.
fn archives() -> Vec<(String, Vec<u8>)> {
    let base = testutil::layer("etc/os-release", b"ID=debian\n");
    let runtime = testutil::layer("usr/bin/rt", b"runtime v1");
    let app1 = testutil::layer("app/bin", b"app 1");
    let app2 = testutil::layer("app/bin", b"app 2");
    let i1 = testutil::image(&["app:1"], &[&base, &runtime, &app1]);
    let i2 = testutil::image(&["app:2", "reg:5000/me/app:2"], &[&base, &runtime, &app2]);
    // The same layer twice in one image (a symlink in the legacy layout).
    let rep = testutil::image(&["rep:1"], &[&base, &app1, &base]);
    let one = testutil::image(&["one:1"], &[&base]);
    let mut out = Vec::new();
    let created = "1970-01-01T08:00:00+08:00";
    out.push((
        "legacy".into(),
        testutil::legacy(&[&i1, &i2], created).tar(),
    ));
    out.push((
        "legacy-repeat".into(),
        testutil::legacy(&[&rep], created).tar(),
    ));
    out.push(("oci".into(), testutil::oci(&[&i1, &i2], false, true).tar()));
    out.push(("oci-one".into(), testutil::oci(&[&one], false, true).tar()));
    out.push((
        "containerd".into(),
        testutil::oci(&[&i1, &i2], true, true).tar(),
    ));
    out.push((
        "containerd-index-only".into(),
        testutil::oci(&[&i1, &rep], true, false).tar(),
    ));
    // PAX names and an unknown entry.
    let mut b = testutil::oci(&[&one], false, true);
    for e in &mut b.entries {
        if e.name.starts_with("blobs/sha256/") && matches!(e.kind, testutil::Kind::File(_)) {
            e.style = NameStyle::Pax;
        }
    }
    b.entries.push(TEntry::file(
        &format!("{}/notes.txt", "d".repeat(120)),
        b"x".to_vec(),
    ));
    out.push(("oci-pax-longname".into(), b.tar()));
    // Broken ends: truncated, daemon error JSON appended.
    let b = testutil::legacy(&[&one], created);
    out.push((
        "legacy-no-end".into(),
        testutil::write_tar(&b.entries, End::Missing),
    ));
    out.push((
        "legacy-error-json".into(),
        testutil::write_tar(&b.entries, End::ErrorJson),
    ));
    // A manifest.json naming a missing layer.
    let mut b = testutil::oci(&[&i1], false, true);
    let gone = b.layer_entries[0][2].clone();
    b.remove(&gone);
    out.push(("oci-missing-layer".into(), b.tar()));
    // Hostile: an entry claiming u64::MAX bytes (PAX `size`), fixed in tarstream.rs.
    let mut v = testutil::write_tar(&[TEntry::file("x", Vec::new())], End::Missing);
    let rec = "29 size=18446744073709551615\n";
    let mut x = tar::Header::new_ustar();
    x.set_entry_type(tar::EntryType::XHeader);
    x.set_path("PaxHeaders/x").unwrap();
    x.set_size(rec.len() as u64);
    x.set_cksum();
    let mut pax = x.as_bytes().to_vec();
    pax.extend_from_slice(rec.as_bytes());
    pax.resize(1024, 0);
    v.splice(0..0, pax);
    v.extend_from_slice(&[0u8; 1024]);
    out.push(("pax-huge-size".into(), v));
    // Hostile: an index blob listing itself many times, fixed in metadata.rs (walk budget).
    let loop_d = Digest::of_bytes(b"loop");
    let desc = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
                                  "digest": loop_d.to_string(), "size": 1});
    let blob = serde_json::json!({"schemaVersion": 2, "manifests": vec![desc; 16]});
    let blob = serde_json::to_vec(&blob).unwrap();
    let entries = vec![
        TEntry::file(&format!("blobs/sha256/{}", loop_d.hex()), blob.clone()),
        TEntry::file("index.json", blob),
        TEntry::file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
    ];
    out.push((
        "index-loop".into(),
        testutil::write_tar(&entries, End::Proper),
    ));
    out
}

/// The manifest tests' sample, varied to reach more of the parser: a daemon source, zstd, two
/// volumes, inventory origins and a warning.
fn manifest() -> BundleManifest {
    let mut m = partial_bundle::testutil::sample_manifest();
    m.source = Provenance::Daemon {
        host: "unix:///run/docker.sock".into(),
        daemon: sample_info(),
    };
    let vol = |n: u32, size: u64| FileEntry {
        name: format!("app.tgz.{n:03}"),
        size,
        sha256: Digest::of_bytes(&n.to_le_bytes()),
        blake3: "ab".repeat(32),
    };
    m.bundle.compression = crate::codec::Compression::Zstd;
    m.bundle.volumes = vec![vol(1, 20), vol(2, 10)];
    m.bundle.size = 30;
    for r in &mut m.required_base {
        r.origin = Origin::Inventory {
            file: "have.json".into(),
            image: "base:1".into(),
            image_id: Digest::of_bytes(b"base"),
        };
    }
    m.warnings = vec!["a warning".into()];
    m
}

fn inventory() -> Inventory {
    let d = |s: &[u8]| Digest::of_bytes(s);
    Inventory::new(
        ToolInfo {
            name: "partial-load".into(),
            version: "0.1.0".into(),
        },
        "unix:///run/docker.sock".into(),
        sample_info(),
        vec![
            ImageMeta::new(d(b"cfg1"), vec!["base:1".into()], vec![d(b"a"), d(b"b")]),
            ImageMeta::new(d(b"cfg2"), vec![], vec![d(b"a"), d(b"b"), d(b"c")]),
        ],
    )
}

#[test]
#[ignore = "writes the fuzz seeds; run by hand"]
fn write_fuzz_seeds() {
    let dir = std::env::var_os("FUZZ_SEEDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"));
    for (name, tar) in archives() {
        write(&dir, "archive_scan", &format!("{name}.tar"), &tar);
        // archive_filter: a control byte, then the tar (see fuzz/src/lib.rs).
        for ctrl in [0x00u8, 0x80, 0x11, 0xd2] {
            let mut v = vec![ctrl];
            v.extend_from_slice(&tar);
            write(
                &dir,
                "archive_filter",
                &format!("{name}-{ctrl:02x}.bin"),
                &v,
            );
        }
    }
    let m = manifest();
    write(&dir, "manifest_parse", "manifest.json", &m.to_bytes());
    write(
        &dir,
        "manifest_parse",
        "manifest-compact.json",
        &serde_json::to_vec(&m).unwrap(),
    );
    let inv = inventory();
    write(&dir, "inventory_parse", "inventory.json", &inv.to_bytes());
    write(
        &dir,
        "inventory_parse",
        "inventory-compact.json",
        &serde_json::to_vec(&inv).unwrap(),
    );
    eprintln!("seeds written under {}", dir.display());
}
