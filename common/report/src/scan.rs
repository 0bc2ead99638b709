//! Reading layer data for the report: the bundle's checked stream (configs, OCI manifests and
//! carried layers, each layer walked as it streams past) and a daemon's export of a base image
//! (its config, package databases and path set). Each layer is decompressed as its bytes say
//! (`codec::sniff`) and walked once; nothing is held but the walk's capped results.

use crate::config_diff::ImageConfig;
use crate::layers::{self, LayerScan, PathSet};
use crate::ReportError;
use partial_common::archive::entries::{clean_name, named_digest, role_of, EntryRole, TarReader};
use partial_common::codec::{self, Compression};
use partial_common::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::Arc;

/// The biggest config or OCI manifest read.
const MAX_JSON: u64 = 16 << 20;

/// What the bundle's stream holds for the report.
#[derive(Default)]
pub struct BundleScan {
    pub configs: BTreeMap<Digest, ImageConfig>,
    /// Image ID → the digest of the OCI manifest the bundle holds for it.
    pub manifests: BTreeMap<Digest, Digest>,
    /// Blob digest (as it streams) → what the layer does.
    pub layers: BTreeMap<Digest, LayerScan>,
}

/// The uncompressed form of `r`, by its first bytes.
pub fn decompressed<'a>(r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let (c, data) = codec::sniff(r)?;
    Ok(match c {
        Compression::None => Box::new(data),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(data)?),
    })
}

/// Walks the checked bundle tar `r`: `configs` are the image IDs, `walk` the blobs to walk with
/// the lower-layer path set of each, when known.
pub fn scan_bundle(
    r: impl Read,
    configs: &BTreeSet<Digest>,
    walk: &BTreeMap<Digest, Option<Arc<PathSet>>>,
) -> Result<BundleScan, ReportError> {
    let mut out = BundleScan::default();
    let mut t = TarReader::new(r);
    while let Some(head) = t.next_entry()? {
        if !head.is_file() {
            continue;
        }
        let EntryRole::Blob(d) = role_of(&clean_name(&head.name)?) else {
            continue;
        };
        if configs.contains(&d) {
            let bytes = t.read_all(MAX_JSON)?;
            if let Some(c) = ImageConfig::parse(&bytes) {
                out.configs.insert(d, c);
            }
        } else if let Some(lower) = walk.get(&d) {
            let what = || format!("reading layer {d} of the bundle");
            let scan = decompressed(t.data())
                .and_then(|r| layers::walk(r, lower.as_deref()))
                .map_err(ReportError::read(what()))?;
            io::copy(&mut t.data(), &mut io::sink()).map_err(ReportError::read(what()))?;
            out.layers.insert(d, without_paths(scan));
        } else if head.size <= MAX_JSON {
            let bytes = t.read_all(MAX_JSON)?;
            if let Some(id) = manifest_config(&bytes) {
                out.manifests.insert(id, d);
            }
        }
    }
    Ok(out)
}

/// The config digest an OCI image manifest names.
fn manifest_config(bytes: &[u8]) -> Option<Digest> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    Digest::parse(v.get("config")?.get("digest")?.as_str()?).ok()
}

/// A base image as its export shows it: its config, and the layers wanted (by diffID) walked.
#[derive(Default)]
pub struct BaseScan {
    pub config: Option<ImageConfig>,
    pub layers: BTreeMap<Digest, LayerScan>,
}

/// Hashes what passes through.
struct Hashing<R> {
    inner: R,
    sha: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads a daemon's export of image `id` (a plain tar), walking the layers of `wanted` (diffIDs;
/// a layer's content is hashed as it is walked and kept only under the diffID it hashes to).
pub fn scan_export(
    r: impl Read,
    id: &Digest,
    wanted: &BTreeSet<Digest>,
) -> Result<BaseScan, ReportError> {
    let mut out = BaseScan::default();
    let mut t = TarReader::new(r);
    while let Some(head) = t.next_entry()? {
        if !head.is_file() {
            continue;
        }
        let name = clean_name(&head.name)?;
        let named = match role_of(&name) {
            EntryRole::Blob(d) | EntryRole::LegacyConfig(d) if d == *id => {
                out.config = ImageConfig::parse(&t.read_all(MAX_JSON)?);
                continue;
            }
            EntryRole::FolderLayer(_) => None,
            EntryRole::Blob(d) => Some(d),
            _ => match named_digest(&name) {
                Some(d) => Some(d),
                None => continue,
            },
        };
        if named.as_ref().is_some_and(|d| out.layers.contains_key(d)) {
            continue;
        }
        let what = || format!("reading the daemon's export of {id}");
        let (c, data) = codec::sniff(t.data()).map_err(ReportError::read(what()))?;
        if c == Compression::None && named.as_ref().is_some_and(|d| !wanted.contains(d)) {
            continue;
        }
        let mut h = Hashing {
            inner: decompressed(data).map_err(ReportError::read(what()))?,
            sha: Sha256::new(),
        };
        let Ok(scan) = layers::walk(&mut h, None) else {
            continue; // not a layer (an OCI manifest, a config of another image)
        };
        io::copy(&mut h, &mut io::sink()).map_err(ReportError::read(what()))?;
        let diff_id = Digest::from_sha256(h.sha.finalize().into());
        if wanted.contains(&diff_id) {
            out.layers.insert(diff_id, slim(scan));
        }
    }
    if let Some(d) = wanted.iter().find(|d| !out.layers.contains_key(*d)) {
        return Err(ReportError::MissingLayer {
            image: id.clone(),
            layer: d.clone(),
        });
    }
    Ok(out)
}

/// What a carried layer is kept for: its lists and package databases, not its path hashes.
fn without_paths(mut scan: LayerScan) -> LayerScan {
    scan.written_paths = Vec::new();
    scan.removed_paths = Vec::new();
    scan
}

/// What a base layer is kept for: its path hashes and package databases, not its lists.
fn slim(mut scan: LayerScan) -> LayerScan {
    scan.files = Default::default();
    scan
}
