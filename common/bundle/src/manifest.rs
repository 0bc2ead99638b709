//! The bundle manifest: the signed description of a bundle — which images it carries, every layer
//! with its diffID and chain ID, the base chains the destination must already hold (and where that
//! knowledge came from), the source, and each bundle file with its size and hashes.
//!
//! Schema `partial-save/bundle-manifest`, version 1. Readers refuse other schema names and newer
//! versions, so an old importer never half-understands a new bundle.

use partial_core::digest::Digest;
use partial_daemon::DaemonInfo;
use partial_model::have::Origin;
use partial_model::plan::{Decision, Layout, Plan};
use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "partial-save/bundle-manifest";
/// The newest version this tool reads and writes: 2 when some layer is a delta (an importer
/// that predates deltas must refuse such a bundle rather than load it half), else 1.
pub const VERSION: u32 = 2;
/// The version of manifests without delta layers.
pub const VERSION_PLAIN: u32 = 1;

/// Errors reading a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Schema(#[from] crate::schema::SchemaError),
    #[error("{file}: inconsistent manifest: {what}")]
    Inconsistent { file: String, what: String },
}

/// The tool that wrote a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl std::fmt::Display for ToolInfo {
    /// `partial-save 0.1.0`: as a report or a person names the tool.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.version)
    }
}

/// Where the images came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Provenance {
    /// A live daemon.
    Daemon { host: String, daemon: DaemonInfo },
    /// Existing `docker save` archives (offline mode).
    Archives { files: Vec<String> },
    /// Registries, no daemon (`-i docker://…`): each reference pinned to the manifest digest
    /// it resolved to (`HOST/REPO:TAG@sha256:…`).
    Registry { references: Vec<String> },
    /// A live daemon and registries in one run (daemon `-i` images mixed with `docker://` ones).
    DaemonAndRegistry {
        host: String,
        daemon: DaemonInfo,
        references: Vec<String>,
    },
}

/// One file of the bundle (the whole bundle, or one split volume).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name, relative to the manifest's folder.
    pub name: String,
    pub size: u64,
    pub sha256: Digest,
    /// BLAKE3, 64 hex digits.
    pub blake3: String,
}

/// The bundle's data: one file, or several volumes that concatenate to the compressed stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// The bundle's name (`OUT`); with split volumes the parts are `OUT.001`, `OUT.002`, …
    pub name: String,
    /// `gzip`, `zstd` or `none` on the wire.
    pub compression: partial_model::codec::Compression,
    pub layout: Layout,
    /// The whole compressed stream (all volumes concatenated).
    pub size: u64,
    pub sha256: Digest,
    pub blake3: String,
    /// Size of the tar stream inside, uncompressed.
    pub tar_size: u64,
    /// The files to read, in order (one entry when not split).
    pub volumes: Vec<FileEntry>,
}

/// One layer position of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    pub diff_id: Digest,
    pub chain_id: Digest,
    /// Size of the layer blob in the source archive, when known.
    pub size: Option<u64>,
    /// True when the bundle carries this layer; false when the destination must have its chain.
    pub carried: bool,
    /// The layer blob as the source stores it: `digest`, `media_type`, `size`, `compression`
    /// (`none`, `gzip`, `zstd`). A carried layer is the bundle's `blobs/sha256/<digest hex>`.
    /// Optional: absent in manifests of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<partial_model::image::Blob>,
    /// The layer travels as a delta against a reference layer the destination holds (`blob` is
    /// then the layer as rebuilt); absent for whole layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<partial_model::plan::LayerDelta>,
}

/// One image in the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: Digest,
    pub tags: Vec<String>,
    pub layers: Vec<Layer>,
    /// The image manifest, byte for byte, as the registry it came from served it: what
    /// `partial-load push` writes when every blob it names is at the destination as stored, so
    /// the image keeps its digest. Absent for images from daemons and archives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_manifest: Option<partial_model::image::SourceManifest>,
    /// Signatures, attestations and SBOMs attached to the image in its registry by cosign's tag
    /// scheme, each manifest with its blobs: `push` writes them next to the image when it keeps
    /// the image's digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<partial_model::image::Attached>,
}

/// A chain the destination must hold before the bundle can load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredBase {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// Which `-e` image, inventory or base archive said the destination has it.
    pub origin: Origin,
}

/// Sums for people.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub layers_carried: u64,
    pub layers_left_out: u64,
    pub bytes_carried: u64,
    pub bytes_left_out: u64,
    /// Bytes of the full (unfiltered) save the bundle was cut from.
    pub full_save_bytes: u64,
}

/// The destination a send ledger belongs to (`--ledger SITE.json`): its name (the file's stem
/// when the ledger was created) and a random ID, so the importer keeps one sequence per site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub name: String,
    pub id: String,
}

/// The whole manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub schema: String,
    pub version: u32,
    pub tool: ToolInfo,
    /// RFC 3339, UTC.
    pub created: String,
    /// With `--ledger`: the destination the bundle series goes to. Absent in older bundles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    /// With `--ledger`: this bundle's number in the site's series (1, 2, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// With `--ledger`, from bundle 2 on: the sha256 of the previous bundle's manifest bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Digest>,
    pub source: Provenance,
    pub bundle: Bundle,
    pub images: Vec<Image>,
    /// The multi-platform indexes that travel, each listing images of `images` (see
    /// [`crate::source_index`]); absent when no index was named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<crate::source_index::SourceIndex>,
    pub required_base: Vec<RequiredBase>,
    pub totals: Totals,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// False when some layer is a delta: a plain `docker load` cannot read the bundle, only
    /// `partial-load` (which rebuilds the layers from the daemon's own) or its `rehydrate`.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub docker_loadable: bool,
    /// The Helm charts the images were discovered in (`--chart`, `--exclude-chart`); absent
    /// when none were given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartEntry>,
}

/// A Helm chart the bundle's images (or, `excluded`, the destination's) were discovered in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartEntry {
    pub name: String,
    pub version: String,
    /// sha256 of the chart `.tgz`, or of a chart directory's sorted listing and contents
    /// (`chart::load::dir_digest`).
    pub sha256: Digest,
    /// The path given on the command line.
    pub path: String,
    /// Given with `--exclude-chart`: its images are what the destination already has.
    #[serde(default)]
    pub excluded: bool,
}

/// A delta layer is carried, rebuilds the uncompressed layer named by its diffID, and its
/// reference is a required base.
fn check_delta(
    img: &Image,
    i: usize,
    l: &Layer,
    d: &partial_model::plan::LayerDelta,
    required: &std::collections::BTreeSet<&Digest>,
) -> Result<(), String> {
    let at = format!("image {} layer {i}", img.id);
    if !l.carried {
        return Err(format!("{at} is a delta but not carried"));
    }
    match &l.blob {
        Some(b)
            if b.digest == l.diff_id
                && b.compression == partial_model::codec::Compression::None => {}
        _ => {
            return Err(format!(
                "{at} is a delta, but its blob is not the uncompressed layer named by its diffID"
            ))
        }
    }
    if !required.contains(&d.reference_chain_id) {
        return Err(format!(
            "{at}: the delta's reference chain {} is not a required base",
            d.reference_chain_id
        ));
    }
    Ok(())
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Now, as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl BundleManifest {
    /// Builds the manifest of a finished export.
    pub fn new(tool: ToolInfo, source: Provenance, bundle: Bundle, plan: &Plan) -> Self {
        let images = plan
            .images
            .iter()
            .map(|img| Image {
                id: img.id.clone(),
                tags: img.tags.clone(),
                layers: img
                    .layers
                    .iter()
                    .map(|l| Layer {
                        diff_id: l.diff_id.clone(),
                        chain_id: l.chain_id.clone(),
                        size: l.size,
                        carried: matches!(l.decision, Decision::Carried),
                        blob: l.blob.clone(),
                        delta: l.delta.clone(),
                    })
                    .collect(),
                source_manifest: img.source_manifest.clone(),
                attached: img.attached.clone(),
            })
            .collect();
        let required_base = plan
            .required_base()
            .into_iter()
            .map(|(chain_id, diff_id, origin)| RequiredBase {
                chain_id,
                diff_id,
                origin,
            })
            .collect();
        let deltas = !plan.deltas().is_empty();
        BundleManifest {
            schema: SCHEMA.to_string(),
            version: if deltas { VERSION } else { VERSION_PLAIN },
            tool,
            created: now_rfc3339(),
            site: None,
            sequence: None,
            previous: None,
            source,
            bundle,
            images,
            indexes: Vec::new(),
            required_base,
            totals: Totals {
                layers_carried: plan.blobs_carried,
                layers_left_out: plan.blobs_left_out,
                bytes_carried: plan.bytes_carried,
                bytes_left_out: plan.bytes_left_out,
                full_save_bytes: plan.input_bytes,
            },
            warnings: plan.warnings.clone(),
            docker_loadable: !deltas,
            charts: Vec::new(),
        }
    }

    /// Pretty JSON with a final newline: the exact bytes that get signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Parses and checks a manifest; `file` names it in errors.
    pub fn parse(bytes: &[u8], file: &str) -> Result<Self, ManifestError> {
        let m: BundleManifest = crate::schema::parse(bytes, file, SCHEMA, VERSION)?;
        m.check(file)?;
        Ok(m)
    }

    /// Internal consistency: chain IDs follow from diffIDs; every position not carried is a
    /// required base; volumes add up to the bundle size; names are plain file names.
    fn check(&self, file: &str) -> Result<(), ManifestError> {
        let bad = |what: String| ManifestError::Inconsistent {
            file: file.to_string(),
            what,
        };
        self.check_series(file)?;
        self.check_indexes(file)?;
        let required: std::collections::BTreeSet<&Digest> =
            self.required_base.iter().map(|r| &r.chain_id).collect();
        for img in &self.images {
            let diffs: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
            let chains = partial_core::digest::chain_ids(&diffs);
            for (i, (l, c)) in img.layers.iter().zip(&chains).enumerate() {
                if &l.chain_id != c {
                    return Err(bad(format!(
                        "image {} layer {i}: chain ID {} does not follow from its diffIDs",
                        img.id, l.chain_id
                    )));
                }
                if !l.carried && !required.contains(c) {
                    return Err(bad(format!(
                        "image {} layer {i} is neither carried nor a required base",
                        img.id
                    )));
                }
                if let Some(d) = &l.delta {
                    check_delta(img, i, l, d, &required).map_err(&bad)?;
                }
            }
        }
        let deltas = self
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .any(|l| l.delta.is_some());
        if deltas && (self.docker_loadable || self.version < VERSION) {
            return Err(bad(format!(
                "delta layers in a manifest of version {} that says docker_loadable: {}",
                self.version, self.docker_loadable
            )));
        }
        // Checked: hostile sizes must not overflow (nor wrap around to the bundle size).
        let sum = self
            .bundle
            .volumes
            .iter()
            .try_fold(0u64, |acc, v| acc.checked_add(v.size));
        if self.bundle.volumes.is_empty() || sum != Some(self.bundle.size) {
            let sum = sum.map_or_else(|| "more than 2^64".to_string(), |s| s.to_string());
            return Err(bad(format!(
                "volumes add up to {sum} bytes, bundle says {}",
                self.bundle.size
            )));
        }
        for v in &self.bundle.volumes {
            if v.name.is_empty()
                || v.name.contains('/')
                || v.name.contains('\\')
                || v.name == "."
                || v.name == ".."
            {
                return Err(bad(format!(
                    "volume name {:?} is not a plain file name",
                    v.name
                )));
            }
        }
        Ok(())
    }

    /// Each index hashes to its digest and lists only image manifests that travel.
    fn check_indexes(&self, file: &str) -> Result<(), ManifestError> {
        let travelling: Vec<&Digest> = self
            .images
            .iter()
            .filter_map(|i| i.source_manifest.as_ref().map(|m| &m.digest))
            .collect();
        for index in &self.indexes {
            index
                .check(&travelling)
                .map_err(|what| ManifestError::Inconsistent {
                    file: file.to_string(),
                    what: format!("index {}: {what}", index.digest),
                })?;
        }
        Ok(())
    }

    /// The carried layers that travel as deltas, once per delta blob.
    pub fn deltas(&self) -> Vec<&partial_model::plan::LayerDelta> {
        let mut out: Vec<&partial_model::plan::LayerDelta> = Vec::new();
        for d in self
            .images
            .iter()
            .flat_map(|i| &i.layers)
            .filter_map(|l| l.delta.as_ref())
        {
            if !out.iter().any(|o| o.digest == d.digest) {
                out.push(d);
            }
        }
        out
    }

    /// The series fields go together: a site and a sequence of at least 1, and a `previous` hash
    /// exactly from bundle 2 on.
    fn check_series(&self, file: &str) -> Result<(), ManifestError> {
        let bad = |what: &str| ManifestError::Inconsistent {
            file: file.to_string(),
            what: what.to_string(),
        };
        match (&self.site, self.sequence, &self.previous) {
            (None, None, None) => Ok(()),
            (Some(_), Some(0), _) => Err(bad("sequence 0: bundle numbers start at 1")),
            (Some(site), Some(_), _) if site.name.is_empty() || site.id.is_empty() => {
                Err(bad("the site has an empty name or ID"))
            }
            (Some(_), Some(1), None) => Ok(()),
            (Some(_), Some(1), Some(_)) => Err(bad("bundle 1 names a previous bundle")),
            (Some(_), Some(_), Some(_)) => Ok(()),
            (Some(_), Some(n), None) => Err(bad(&format!(
                "bundle {n} does not name its previous bundle"
            ))),
            _ => Err(bad("site, sequence and previous must be given together")),
        }
    }

    /// The trusted comment that the signature carries: it binds the bundle's name, size and hash,
    /// so `minisign -V` shows what the signature vouches for.
    pub fn trusted_comment(&self) -> String {
        format!(
            "partial-save bundle={} size={} sha256={} images={}",
            self.bundle.name,
            self.bundle.size,
            self.bundle.sha256.hex(),
            self.images.len()
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schema::SchemaError;
    pub(crate) use crate::testutil::sample_manifest as sample;

    #[test]
    fn round_trips_and_lists_required_base() {
        let m = sample();
        assert_eq!(m.required_base.len(), 2);
        assert!(m.images[0].layers[2].carried);
        let bytes = m.to_bytes();
        let back = BundleManifest::parse(&bytes, "m.json").unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn registry_sources_round_trip() {
        let mut m = sample();
        m.source = Provenance::Registry {
            references: vec!["127.0.0.1:5000/app:2@sha256:00".into()],
        };
        let bytes = m.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["source"]["kind"], "registry");
        assert_eq!(BundleManifest::parse(&bytes, "m.json").unwrap(), m);
    }

    #[test]
    fn refuses_other_schema_newer_version_and_inconsistency() {
        let m = sample();
        let mut v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        v["version"] = serde_json::json!(VERSION + 1);
        let e = BundleManifest::parse(v.to_string().as_bytes(), "m.json").unwrap_err();
        assert!(
            matches!(e, ManifestError::Schema(SchemaError::Version { .. })),
            "{e}"
        );

        let mut v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        v["schema"] = serde_json::json!("something-else");
        let e = BundleManifest::parse(v.to_string().as_bytes(), "m.json").unwrap_err();
        assert!(
            matches!(e, ManifestError::Schema(SchemaError::Schema { .. })),
            "{e}"
        );

        // A layer marked as left out without a matching required base is refused.
        let mut bad = m.clone();
        bad.required_base.pop();
        let e = BundleManifest::parse(&bad.to_bytes(), "m.json").unwrap_err();
        assert!(e.to_string().contains("neither carried"), "{e}");

        // A volume that escapes the folder is refused.
        let mut bad = m.clone();
        bad.bundle.volumes[0].name = "../etc/passwd".into();
        assert!(BundleManifest::parse(&bad.to_bytes(), "m.json").is_err());

        // Garbage names the file.
        let e = BundleManifest::parse(b"not json", "m.json").unwrap_err();
        assert!(e.to_string().starts_with("m.json"), "{e}");
    }

    #[test]
    fn series_fields_round_trip_and_must_go_together() {
        let plain = sample();
        let text = String::from_utf8(plain.to_bytes()).unwrap();
        assert!(
            !text.contains("sequence"),
            "older bundles have no series: {text}"
        );
        let mut m = sample();
        m.site = Some(Site {
            name: "site-a".into(),
            id: "0123abcd".into(),
        });
        m.sequence = Some(2);
        m.previous = Some(Digest::of_bytes(b"manifest 1"));
        let back = BundleManifest::parse(&m.to_bytes(), "m.json").unwrap();
        assert_eq!(back, m);

        let refused = |edit: &dyn Fn(&mut BundleManifest), needle: &str| {
            let mut bad = m.clone();
            edit(&mut bad);
            let e = BundleManifest::parse(&bad.to_bytes(), "m.json").unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        };
        refused(&|b| b.previous = None, "does not name its previous");
        refused(&|b| b.sequence = Some(0), "start at 1");
        refused(&|b| b.sequence = Some(1), "bundle 1 names a previous");
        refused(&|b| b.site = None, "together");
        refused(&|b| b.sequence = None, "together");
    }

    #[test]
    fn charts_are_optional_and_round_trip() {
        let m = sample();
        // Without charts the field is absent: manifests stay as they were.
        let v: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert!(v.get("charts").is_none());
        let mut with = m.clone();
        with.charts.push(ChartEntry {
            name: "nginx".into(),
            version: "22.1.1".into(),
            sha256: Digest::of_bytes(b"chart"),
            path: "nginx-22.1.1.tgz".into(),
            excluded: false,
        });
        let back = BundleManifest::parse(&with.to_bytes(), "m.json").unwrap();
        assert_eq!(back.charts, with.charts);
        assert_eq!(BundleManifest::parse(&m.to_bytes(), "m.json").unwrap(), m);
    }

    #[test]
    fn an_index_must_hash_right_and_list_only_images_that_travel() {
        use crate::source_index::{IndexedManifest, SourceIndex};
        use partial_model::image::SourceManifest;
        let mut m = sample();
        let image = SourceManifest::new("x", b"{\"schemaVersion\":2}").unwrap();
        m.images[0].source_manifest = Some(image.clone());
        let text = format!(r#"{{"manifests":[{{"digest":"{}"}}]}}"#, image.digest);
        m.indexes.push(SourceIndex {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            digest: Digest::of_bytes(text.as_bytes()),
            text,
            repository: "r/app".into(),
            tags: vec!["r/app:1".into()],
            manifests: vec![IndexedManifest {
                digest: image.digest,
                platform: "linux/amd64".into(),
            }],
            extra: Vec::new(),
            attached: Vec::new(),
            remade_from: None,
        });
        assert_eq!(BundleManifest::parse(&m.to_bytes(), "m.json").unwrap(), m);
        let mut bad = m.clone();
        bad.images[0].source_manifest = None;
        let e = BundleManifest::parse(&bad.to_bytes(), "m.json").unwrap_err();
        assert!(e.to_string().contains("no image of the bundle"), "{e}");
        let mut bad = m.clone();
        bad.indexes[0].text.push(' ');
        let e = BundleManifest::parse(&bad.to_bytes(), "m.json").unwrap_err();
        assert!(e.to_string().contains("hashes to"), "{e}");
    }

    #[test]
    fn volume_sizes_that_overflow_are_refused() {
        // Volume sizes adding up past u64::MAX overflowed the sum (a panic in debug builds; in
        // release it wrapped, and wrapped sizes could "add up" to the bundle size).
        let mut m = sample();
        let mut second = m.bundle.volumes[0].clone();
        second.name = "app.tgz.002".into();
        m.bundle.volumes[0].size = u64::MAX;
        second.size = m.bundle.size + 1;
        m.bundle.volumes.push(second);
        let e = BundleManifest::parse(&m.to_bytes(), "m.json").unwrap_err();
        assert!(matches!(e, ManifestError::Inconsistent { .. }), "{e}");
    }
}
