//! Test helpers (feature `testutil`, and this crate's own tests): sample bundle manifests for
//! the tests of the files that record one and of what reads them.

use crate::manifest::{Bundle, BundleManifest, FileEntry, Provenance, ToolInfo};
use partial_core::digest::chain_ids;
use partial_core::Digest;
use partial_model::have::Origin;
use partial_model::plan::{Decision, Layout, Plan, PlannedImage, PlannedLayer};

/// A bundle of one image (two layers at the destination, one carried), from archives.
pub fn sample_manifest() -> BundleManifest {
    let d: Vec<Digest> = (0..3u8).map(|i| Digest::of_bytes(&[i])).collect();
    let c = chain_ids(&d);
    let origin = Origin::Image {
        name: "base:1".into(),
        image_id: Digest::of_bytes(b"base"),
    };
    let layers = (0..3)
        .map(|i| PlannedLayer {
            position: i,
            diff_id: d[i].clone(),
            chain_id: c[i].clone(),
            size: Some(100 * i as u64),
            entry: Some(format!("blobs/sha256/{}", d[i].hex())),
            blob: None,
            delta: None,
            decision: if i < 2 {
                Decision::AtDestination {
                    origin: origin.clone(),
                }
            } else {
                Decision::Carried
            },
        })
        .collect();
    let plan = Plan {
        layout: Layout::Oci,
        images: vec![PlannedImage {
            id: Digest::of_bytes(b"cfg"),
            tags: vec!["app:2".into()],
            layers,
            source_manifest: None,
            attached: Vec::new(),
        }],
        blobs_carried: 1,
        bytes_carried: 200,
        blobs_left_out: 2,
        bytes_left_out: 100,
        input_bytes: 4096,
        output_tar_bytes: 2048,
        warnings: vec![],
    };
    let file = FileEntry {
        name: "app.tgz".into(),
        size: 10,
        sha256: Digest::of_bytes(b"x"),
        blake3: "00".repeat(32),
    };
    let bundle = Bundle {
        name: "app.tgz".into(),
        compression: partial_model::codec::Compression::Gzip,
        layout: Layout::Oci,
        size: 10,
        sha256: file.sha256.clone(),
        blake3: file.blake3.clone(),
        tar_size: 2048,
        volumes: vec![file],
    };
    BundleManifest::new(
        ToolInfo {
            name: "partial-save".into(),
            version: "0.1.0".into(),
        },
        Provenance::Archives {
            files: vec!["full.tar".into()],
        },
        bundle,
        &plan,
    )
}

/// A bundle manifest of no image and no index, read from its JSON as a bundle would give it:
/// for tests that add the images they need.
pub fn empty_manifest() -> BundleManifest {
    let json = serde_json::json!({
        "schema": "partial-save/bundle-manifest", "version": 1,
        "created": "2026-12-03T00:00:00Z",
        "tool": {"name": "partial-save", "version": "0"},
        "source": {"kind": "registry", "references": []},
        "bundle": {"name": "b", "compression": "none", "layout": "oci", "size": 0,
                   "sha256": format!("sha256:{}", "0".repeat(64)), "blake3": "0",
                   "tar_size": 0, "volumes": []},
        "images": [], "required_base": [],
        "totals": {"layers_carried": 0, "layers_left_out": 0, "bytes_carried": 0,
                   "bytes_left_out": 0, "full_save_bytes": 0},
        "warnings": []
    });
    serde_json::from_value(json).expect("the empty manifest's JSON is a bundle manifest")
}
