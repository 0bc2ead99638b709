//! The report's data: what a reviewer signs off, for the whole bundle and per image. One model,
//! rendered two ways (`--json` as is, the HTML page by `html`), so both always say the same.
//! Schema `partial-load/report`, version 1 (docs/formats.md, docs/schema/report.schema.json).

use serde::Serialize;

pub const SCHEMA: &str = "partial-load/report";
pub const VERSION: u32 = 1;

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: String,
    pub version: u32,
    /// The tool that wrote the report (`partial-load` and its version).
    pub tool: String,
    /// When the report was made (RFC 3339, UTC).
    pub created: String,
    pub bundle: BundleInfo,
    /// Where the base images were looked up, or why they were not.
    pub base_source: BaseSource,
    pub images: Vec<ImageReport>,
}

/// The whole bundle: where it comes from and who signed and approved it.
#[derive(Clone, Debug, Serialize)]
pub struct BundleInfo {
    pub name: String,
    pub manifest: String,
    pub manifest_sha256: String,
    pub created: String,
    /// The tool that made the bundle.
    pub made_by: String,
    pub site: Option<String>,
    pub sequence: Option<u64>,
    pub previous: Option<String>,
    /// The key the manifest's signature was checked with; `None` when unsigned or not checked.
    pub signed_by: Option<String>,
    pub trusted_comment: Option<String>,
    pub approvals: Vec<ApprovalInfo>,
    pub compression: String,
    pub size: u64,
    pub volumes: usize,
    pub docker_loadable: bool,
    pub warnings: Vec<String>,
}

/// An approval file beside the manifest.
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalInfo {
    pub file: String,
    /// The reviewer's key ID, when the approval was checked with `--approver`.
    pub key_id: Option<String>,
    /// Checked valid against an `--approver` key; false means present but not checked.
    pub verified: bool,
}

/// Where the base images (the layers left out) were read from.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BaseSource {
    Daemon {
        host: String,
    },
    /// No daemon was asked (`--offline`) or it could not be reached.
    None {
        why: String,
    },
}

/// One image of the bundle.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    pub id: String,
    pub tags: Vec<String>,
    /// The OCI manifest digest: the registry's when the image came from one, else the one the
    /// bundle's `index.json` gives it.
    pub manifest_digest: Option<String>,
    pub manifest_digest_from: Option<String>,
    /// `os/architecture[/variant]` from the config.
    pub platform: Option<String>,
    pub base: BaseInfo,
    pub layers_total: usize,
    pub layers_carried: usize,
    pub bytes_carried: u64,
    /// The size of every layer blob of the image (what a full save would carry).
    pub bytes_full: u64,
    pub deltas: Vec<DeltaInfo>,
    pub layers: Vec<LayerReport>,
    pub packages: PackageReport,
    pub config: ConfigReport,
    /// Signatures, attestations and SBOMs attached to the image in its source registry
    /// (cosign's tag scheme), carried with it.
    pub attached: Vec<AttachedInfo>,
}

/// One artefact attached to an image.
#[derive(Clone, Debug, Serialize)]
pub struct AttachedInfo {
    /// `signature` (`.sig`), `attestation` (`.att`), `sbom` (`.sbom`) or `other`.
    pub kind: String,
    pub tag: String,
    pub media_type: String,
    pub digest: String,
    /// The blobs its manifest names (config and layers).
    pub blobs: usize,
}

/// The part of an image left out: the destination holds it.
#[derive(Clone, Debug, Serialize)]
pub struct BaseInfo {
    /// The chain ID of the top layer left out; `None` when every layer is carried.
    pub chain_id: Option<String>,
    pub layers: usize,
    /// Which image the exporter said the destination has (from the manifest).
    pub origin: Option<String>,
    /// The image found holding exactly these layers on the daemon, when one was asked.
    pub found: Option<String>,
    /// Why the base could not be compared against, when it could not.
    pub note: Option<String>,
}

/// A layer carried as a delta against a layer the destination holds.
#[derive(Clone, Debug, Serialize)]
pub struct DeltaInfo {
    pub diff_id: String,
    pub reference_diff_id: String,
    pub size: u64,
}

/// One layer position of an image.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    pub position: usize,
    pub diff_id: String,
    pub carried: bool,
    pub size: Option<u64>,
    pub delta: bool,
    /// What the layer changes on the destination; carried layers only, and `None` when its
    /// content could not be read (a delta without its reference).
    pub files: Option<crate::layers::LayerFiles>,
    pub note: Option<String>,
}

/// OS packages changed between the base and the new image.
#[derive(Clone, Debug, Serialize)]
pub struct PackageReport {
    /// `compared`, `unchanged` (the package database is in the base only),
    /// `base_not_available` (it changed, but the base's could not be read), or `none`.
    pub status: String,
    /// `dpkg` or `apk`.
    pub manager: Option<String>,
    pub note: Option<String>,
    pub changes: Vec<crate::packages::PackageChange>,
    /// Packages in the new image (with `base_not_available`, so the reviewer sees the set).
    pub installed: usize,
}

/// Config changes between the base image and the new one.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigReport {
    /// `compared`, or `base_not_available` (every set value is listed as new).
    pub status: String,
    pub changes: Vec<crate::config_diff::ConfigChange>,
}
