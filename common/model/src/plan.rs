//! The plan: per image and layer, whether the bundle carries it or the destination is expected to
//! have it, why, and how big it is. The exporter prints it (`--dry-run`), signs it into the bundle
//! manifest, and sums it up.

use crate::have::Origin;
use crate::image::Blob;
use partial_core::digest::Digest;
use serde::{Deserialize, Serialize};

/// Which `docker save` layout an archive has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// Docker ≤ 24 on a graphdriver store: `<v1id>/layer.tar` folders, `manifest.json`, `repositories`.
    Legacy,
    /// Docker ≥ 25 on a graphdriver store: OCI layout with uncompressed layers named by diffID, plus
    /// `manifest.json`.
    Oci,
    /// The containerd image store: OCI layout with compressed layer blobs.
    Containerd,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Legacy => "legacy (Docker <= 24)",
            Layout::Oci => "OCI (Docker >= 25)",
            Layout::Containerd => "containerd image store",
        })
    }
}

/// What happens to one layer position of one image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// The destination lacks this chain: the bundle carries the layer.
    Carried,
    /// The destination has this chain (from `origin`); the layer is left out unless another
    /// position that is carried shares the same blob.
    AtDestination { origin: Origin },
}

impl Decision {
    pub fn is_carried(&self) -> bool {
        matches!(self, Decision::Carried)
    }
}

/// One layer position of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedLayer {
    /// 0 = bottom layer.
    pub position: usize,
    pub diff_id: Digest,
    pub chain_id: Digest,
    /// Size in bytes of the layer blob as it stands in the source archive (uncompressed tar in the
    /// legacy and OCI layouts, compressed blob in the containerd layout); `None` when the archive
    /// entry was never seen (for example a layer the daemon left out).
    pub size: Option<u64>,
    /// The archive entry holding the layer, e.g. `<v1id>/layer.tar` or `blobs/sha256/<hex>`.
    pub entry: Option<String>,
    /// The layer blob as the source stores it (and, when carried, as the bundle holds it under
    /// `blobs/sha256/<digest>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Blob>,
    /// With `--delta`: the carried layer travels as a delta against a layer the destination
    /// holds (then `blob` is the layer as rebuilt: the uncompressed tar named by its diffID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<LayerDelta>,
    #[serde(flatten)]
    pub decision: Decision,
}

/// A carried layer shipped as a delta (see `partial_delta`): the bundle holds the delta at
/// `blobs/sha256/<digest hex>`, which rebuilds, with the reference layer the destination holds,
/// the uncompressed layer that `manifest.json` names `blobs/sha256/<diffID hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDelta {
    /// How the delta's body rebuilds the layer: `chunks` or `zstd-patch`.
    pub encoding: String,
    /// The delta blob in the bundle.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The layer it was made against: its diffID and a chain the destination holds it under.
    pub reference_diff_id: Digest,
    pub reference_chain_id: Digest,
    /// Which `-e` image, inventory or base archive said the destination holds that chain.
    pub reference_origin: Origin,
    /// Size of the rebuilt layer (the uncompressed tar).
    pub target_size: u64,
}

/// One image of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedImage {
    /// The image ID (sha256 of the config JSON).
    pub id: Digest,
    pub tags: Vec<String>,
    pub layers: Vec<PlannedLayer>,
    /// The image manifest as its registry served it (registry sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_manifest: Option<crate::image::SourceManifest>,
    /// Signatures, attestations and SBOMs attached to it in its registry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<crate::image::Attached>,
}

/// The whole plan of one export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub layout: Layout,
    pub images: Vec<PlannedImage>,
    /// Layer blobs written to the bundle (each blob counted once).
    pub blobs_carried: u64,
    /// Bytes of layer blobs written (each blob counted once; a delta layer counts its delta).
    pub bytes_carried: u64,
    /// Layer blobs left out (each blob counted once).
    pub blobs_left_out: u64,
    /// Bytes of layer blobs left out (each blob counted once).
    pub bytes_left_out: u64,
    /// Bytes of the whole input archive(s) as read (uncompressed tar stream).
    pub input_bytes: u64,
    /// Bytes of the filtered tar stream written (before compression).
    pub output_tar_bytes: u64,
    /// Things a person should know (e.g. a layer carried although the destination has it, because
    /// its legacy folder could not be identified).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Plan {
    /// The carried layers that travel as deltas, once per delta blob.
    pub fn deltas(&self) -> Vec<&LayerDelta> {
        let mut out: Vec<&LayerDelta> = Vec::new();
        for l in self.images.iter().flat_map(|i| &i.layers) {
            if let Some(d) = &l.delta {
                if !out.iter().any(|o| o.digest == d.digest) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// Every chain the destination must already hold, once each, with the origin that said so:
    /// the positions left out, and the references of delta layers.
    pub fn required_base(&self) -> Vec<(Digest, Digest, Origin)> {
        let mut seen = std::collections::BTreeMap::new();
        for img in &self.images {
            for l in &img.layers {
                if let Decision::AtDestination { origin } = &l.decision {
                    seen.entry(l.chain_id.clone())
                        .or_insert_with(|| (l.diff_id.clone(), origin.clone()));
                }
                if let Some(d) = &l.delta {
                    seen.entry(d.reference_chain_id.clone()).or_insert_with(|| {
                        (d.reference_diff_id.clone(), d.reference_origin.clone())
                    });
                }
            }
        }
        seen.into_iter().map(|(c, (d, o))| (c, d, o)).collect()
    }
}
