//! The JSON Schemas of `docs/schema/` against the files this crate writes: the bundle manifest
//! (every source kind, a send-ledger series, charts, a delta layer, every origin kind), the
//! inventory and the send ledger (as written to disk, with a forgotten bundle). The load state
//! and the audit log are checked the same way in `partial-load`'s own tests.
//!
//! The two sides of an air gap may run different versions of the tools: these files are their
//! interface, so a change to one of the serialized types must come with its schema.

use crate::inventory::Inventory;
use crate::ledger::Ledger;
use crate::manifest::{tests::sample, BundleManifest, ChartEntry, Provenance, ToolInfo};
use partial_core::digest::Digest;
use partial_core::testutil::schema::validator;
use partial_daemon::{DaemonInfo, ImageMeta};
use partial_model::codec::Compression;
use partial_model::have::Origin;
use partial_model::image::Blob;
use partial_model::plan::LayerDelta;
use serde_json::Value;

/// Fails naming every violation of `bytes` (a file as written) against schema `name`.
pub(crate) fn assert_valid(name: &str, what: &str, bytes: &[u8]) {
    let doc: Value = serde_json::from_slice(bytes).unwrap();
    partial_core::testutil::schema::assert_valid(name, what, &doc);
}

fn daemon_info() -> DaemonInfo {
    partial_daemon::testutil::sample_info()
}

fn tool(name: &str) -> ToolInfo {
    ToolInfo {
        name: name.into(),
        version: "0.1.0".into(),
    }
}

/// Writes the manifest as the exporter does, checks that it parses back, then validates it.
fn check_manifest(what: &str, m: &BundleManifest) {
    let bytes = m.to_bytes();
    BundleManifest::parse(&bytes, what).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_valid("bundle-manifest", what, &bytes);
}

#[test]
fn schema_files_bundle_manifests_of_every_kind_match_their_schema() {
    let base = sample();
    check_manifest("archives source", &base);

    let mut m = base.clone();
    m.source = Provenance::Daemon {
        host: "unix:///var/run/docker.sock".into(),
        daemon: daemon_info(),
    };
    m.warnings = vec!["a warning".into()];
    check_manifest("daemon source", &m);

    let mut m = base.clone();
    m.source = Provenance::Registry {
        references: vec![format!(
            "registry.local:5000/app:2@{}",
            Digest::of_bytes(b"m")
        )],
    };
    check_manifest("registry source", &m);

    let mut m = base.clone();
    m.source = Provenance::DaemonAndRegistry {
        host: "unix:///var/run/docker.sock".into(),
        daemon: daemon_info(),
        references: vec!["registry.local:5000/app:2".into()],
    };
    m.charts = vec![
        ChartEntry {
            name: "nginx".into(),
            version: "22.1.1".into(),
            sha256: Digest::of_bytes(b"chart"),
            path: "nginx-22.1.1.tgz".into(),
            excluded: false,
        },
        ChartEntry {
            name: "nginx".into(),
            version: "21.1.19".into(),
            sha256: Digest::of_bytes(b"old chart"),
            path: "nginx-21.1.19.tgz".into(),
            excluded: true,
        },
    ];
    check_manifest("daemon and registry source, charts", &m);
}

#[test]
fn schema_files_bundle_manifests_with_every_origin_blob_and_delta_match_their_schema() {
    let base = sample();
    // Every origin kind, and a blob on every layer (a left-out one compressed, as stored).
    let mut m = base.clone();
    let image_id = Digest::of_bytes(b"base");
    m.required_base[0].origin = Origin::Inventory {
        file: "have.json".into(),
        image: "base:1".into(),
        image_id: image_id.clone(),
    };
    m.required_base[1].origin = Origin::Archive {
        file: "base.tar".into(),
        image: "base:1".into(),
        image_id: image_id.clone(),
    };
    m.images[0].layers[0].blob = Some(Blob {
        digest: Digest::of_bytes(b"gz"),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size: None,
        compression: Compression::Gzip,
    });
    let d = m.images[0].layers[2].diff_id.clone();
    m.images[0].layers[2].blob = Some(Blob::uncompressed(&d, Some(200)));
    check_manifest("inventory and archive origins, blobs", &m);

    // A delta layer against a required base (version 2, not loadable with docker load), whose
    // reference came with bundle 1 of a send ledger.
    let mut m = base.clone();
    let reference = m.images[0].layers[1].clone();
    let origin = Origin::Ledger {
        file: "site-a.json".into(),
        bundle: 1,
        image: "base:1".into(),
        image_id,
    };
    m.required_base[1].origin = origin.clone();
    let layer = &mut m.images[0].layers[2];
    layer.blob = Some(Blob::uncompressed(&layer.diff_id, Some(200)));
    layer.delta = Some(LayerDelta {
        encoding: "chunks".into(),
        digest: Digest::of_bytes(b"delta"),
        size: 12,
        reference_diff_id: reference.diff_id,
        reference_chain_id: reference.chain_id,
        reference_origin: origin,
        target_size: 200,
    });
    m.version = 2;
    m.docker_loadable = false;
    check_manifest("delta layer, ledger origin", &m);

    check_manifest("a multi-platform index", &with_index(base));
}

/// `m` with its image as the one platform image of a re-made index that also lists a build
/// attestation.
fn with_index(mut m: BundleManifest) -> BundleManifest {
    use crate::source_index::{IndexedManifest, SourceIndex};
    use partial_model::image::{Attached, AttachedBlob, SourceManifest};
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let image = SourceManifest::new(oci, br#"{"schemaVersion":2}"#).unwrap();
    let att = SourceManifest::new(oci, br#"{"schemaVersion":2,"att":1}"#).unwrap();
    m.images[0].source_manifest = Some(image.clone());
    let text = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}"}},{{"digest":"{}"}}]}}"#,
        image.digest, att.digest
    );
    m.indexes.push(SourceIndex {
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        digest: Digest::of_bytes(text.as_bytes()),
        text,
        repository: "registry.local:5000/app".into(),
        tags: vec!["registry.local:5000/app:2".into()],
        manifests: vec![IndexedManifest {
            digest: image.digest,
            platform: "linux/amd64".into(),
        }],
        extra: vec![Attached {
            tag: att.digest.to_string(),
            manifest: att,
            blobs: vec![AttachedBlob::new(b"{}")],
        }],
        attached: Vec::new(),
        remade_from: Some(Digest::of_bytes(b"source index")),
    });
    m
}

#[test]
fn schema_files_a_ledger_series_inventory_and_ledger_file_match_their_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site-a.json");
    let mut ledger = Ledger::read_or_new(&path, tool("partial-save")).unwrap();
    for n in 1..=2 {
        let mut m = sample();
        ledger.stamp(&mut m).unwrap();
        // Bundle 1 has a site and a sequence, bundle 2 also `previous`.
        check_manifest(&format!("bundle {n} of a ledger series"), &m);
        let bytes = m.to_bytes();
        ledger.record(&m, &bytes, tool("partial-save")).unwrap();
    }
    ledger.forget(1, "site-a.json").unwrap();
    ledger.write(&path).unwrap();
    let written = std::fs::read(&path).unwrap();
    Ledger::parse(&written, "site-a.json").unwrap();
    assert_valid("ledger", "a ledger of two bundles, one forgotten", &written);

    let diffs = vec![Digest::of_bytes(b"a"), Digest::of_bytes(b"b")];
    let inv = Inventory::new(
        tool("partial-load"),
        "unix:///var/run/docker.sock".into(),
        daemon_info(),
        vec![
            ImageMeta::new(
                Digest::of_bytes(b"base"),
                vec!["base:1".into()],
                diffs.clone(),
            ),
            ImageMeta::new(Digest::of_bytes(b"untagged"), vec![], diffs[..1].to_vec()),
        ],
    );
    let bytes = inv.to_bytes();
    Inventory::parse(&bytes, "have.json").unwrap();
    assert_valid("inventory", "an inventory", &bytes);
}

#[test]
fn schema_files_refuse_what_the_readers_refuse() {
    let v = validator("bundle-manifest");
    let good: Value = serde_json::from_slice(&sample().to_bytes()).unwrap();
    assert!(v.is_valid(&good));
    let mut bad = good.clone();
    bad["schema"] = "partial-load/inventory".into();
    assert!(!v.is_valid(&bad), "another schema");
    let mut bad = good.clone();
    bad["version"] = 3.into();
    assert!(!v.is_valid(&bad), "a newer version");
    let mut bad = good.clone();
    bad["images"][0]["id"] = "sha256:ABC".into();
    assert!(!v.is_valid(&bad), "a malformed digest");
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("totals");
    assert!(!v.is_valid(&bad), "a missing field");
    // Unknown fields are ignored by the readers, so the schema allows them too.
    let mut extra = good.clone();
    extra["from_a_newer_writer"] = true.into();
    assert!(v.is_valid(&extra));
}
