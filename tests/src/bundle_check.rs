//! The one check that a bundle never contradicts its signed manifest, whatever wrote its input.
//!
//! [`check_bundle`] reads `BUNDLE.manifest.json` and the bundle itself (its volumes, gzip, zstd or
//! plain), then the bundle's own `manifest.json` (which every bundle must have: it is what
//! `docker load` reads) to map each image's layer positions to entries, and checks:
//! - each image of the signed manifest is in the bundle: a `manifest.json` entry whose config
//!   hashes to the image ID, whose `rootfs.diff_ids` are the manifest's diffIDs, and whose chain
//!   IDs follow from them;
//! - each layer marked carried is present, and its content (decompressed when compressed) hashes
//!   to its diffID;
//! - each layer marked left out has no entry in the bundle (unless a carried position shares the
//!   entry), no entry anywhere in the bundle holds its bytes (unless a carried layer has the same
//!   diffID), and its chain is listed in `required_base`.
//!
//! It returns what the bundle holds ([`BundleFacts`]) for the caller's own expectations.
//!
//! It shares no code with what it checks: the bundle is decompressed with the `flate2` and `zstd`
//! crates, hashes are the `sha2` crate's, chain IDs are computed here by their definition, and a
//! name that appears twice in the tar is an error (a map by name would hide it).

use crate::layout::resolve;
use anyhow::{bail, ensure, Context, Result};
use partial_common::testutil::archive::{read_tar, Kind};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One image of a checked bundle, as its signed manifest describes it.
#[derive(Clone, Debug)]
pub struct BundleImage {
    pub id: String,
    pub tags: Vec<String>,
    pub diff_ids: Vec<String>,
    pub chain_ids: Vec<String>,
    /// Per position: true when the bundle carries the layer.
    pub carried: Vec<bool>,
}

impl BundleImage {
    /// Chain IDs of the positions left out (the destination must hold them).
    pub fn left_out_chains(&self) -> BTreeSet<String> {
        self.chain_ids
            .iter()
            .zip(&self.carried)
            .filter(|(_, c)| !**c)
            .map(|(ch, _)| ch.clone())
            .collect()
    }

    /// DiffIDs of the positions carried.
    pub fn carried_diff_ids(&self) -> Vec<String> {
        self.diff_ids
            .iter()
            .zip(&self.carried)
            .filter(|(_, c)| **c)
            .map(|(d, _)| d.clone())
            .collect()
    }
}

/// What a bundle holds, once [`check_bundle`] found it consistent.
#[derive(Clone, Debug)]
pub struct BundleFacts {
    /// The signed manifest (`BUNDLE.manifest.json`) as JSON.
    pub manifest: Value,
    /// Bytes of the bundle on disk (all volumes).
    pub size: u64,
    pub images: Vec<BundleImage>,
    /// Chain IDs listed in `required_base`.
    pub required_base: BTreeSet<String>,
}

/// The signed manifest's path for a bundle: `BUNDLE.manifest.json`.
pub fn manifest_path(bundle: &Path) -> PathBuf {
    let mut s = bundle.as_os_str().to_owned();
    s.push(".manifest.json");
    PathBuf::from(s)
}

/// Checks that the bundle and its manifest agree (see the module docs); returns the facts.
pub fn check_bundle(bundle: &Path) -> Result<BundleFacts> {
    let mpath = manifest_path(bundle);
    let manifest: Value = serde_json::from_slice(
        &fs::read(&mpath).with_context(|| format!("reading {}", mpath.display()))?,
    )
    .with_context(|| format!("parsing {}", mpath.display()))?;
    let (size, tar) = read_volumes(bundle, &manifest)?;
    ensure_unique_names(&tar)?;
    let entries = read_tar(&tar);
    let images = manifest_images(&manifest)?;
    let required_base: BTreeSet<String> = manifest["required_base"]
        .as_array()
        .context("the manifest has no required_base list")?
        .iter()
        .filter_map(|r| r["chain_id"].as_str().map(String::from))
        .collect();
    let docker = docker_manifest(&entries)?;
    // Entries that carried positions need, and diffIDs carried.
    let mut carried_entries = BTreeSet::new();
    let mut carried_diffs = BTreeSet::new();
    let mut positions = Vec::new();
    for img in &images {
        let layers = layers_of(img, &docker, &entries)?;
        for (pos, entry) in layers.iter().enumerate() {
            if img.carried[pos] {
                carried_entries.insert(entry.clone());
                carried_diffs.insert(img.diff_ids[pos].clone());
            }
        }
        positions.push(layers);
    }
    let content_diffs = content_digests(&entries);
    for (img, layers) in images.iter().zip(&positions) {
        for (pos, entry) in layers.iter().enumerate() {
            let diff = &img.diff_ids[pos];
            let what = format!("image {} layer {pos} ({diff}, entry {entry})", img.id);
            if img.carried[pos] {
                let data = resolve(&entries, entry).with_context(|| {
                    format!("{what} is marked carried but is not in the bundle")
                })?;
                let got = uncompressed_digest(data);
                ensure!(
                    &got == diff,
                    "{what} is marked carried but its content hashes to {got}"
                );
                continue;
            }
            ensure!(
                required_base.contains(&img.chain_ids[pos]),
                "{what} is left out but its chain {} is not in required_base",
                img.chain_ids[pos]
            );
            if !carried_entries.contains(entry) {
                ensure!(
                    !entries.contains_key(entry),
                    "{what} is marked left out but the bundle still has that entry"
                );
            }
            if !carried_diffs.contains(diff) {
                if let Some(holder) = content_diffs.get(diff) {
                    bail!("{what} is marked left out but entry {holder} of the bundle holds its bytes");
                }
            }
        }
    }
    Ok(BundleFacts {
        manifest,
        size,
        images,
        required_base,
    })
}

/// The bundle's volumes, decompressed: `(bytes on disk, tar bytes)`. Found by the name given, as
/// `partial-load` finds them: one volume is the named file itself, split volumes are
/// `BUNDLE.001`, `BUNDLE.002`, … (as many as the manifest lists; their recorded names are not used).
fn read_volumes(bundle: &Path, manifest: &Value) -> Result<(u64, Vec<u8>)> {
    let count = manifest["bundle"]["volumes"]
        .as_array()
        .map_or(1, |v| v.len());
    let files: Vec<PathBuf> = if count <= 1 {
        vec![bundle.to_path_buf()]
    } else {
        (1..=count)
            .map(|i| {
                let mut s = bundle.as_os_str().to_owned();
                s.push(format!(".{i:03}"));
                PathBuf::from(s)
            })
            .collect()
    };
    let mut raw = Vec::new();
    for f in &files {
        let mut file = fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        file.read_to_end(&mut raw)
            .with_context(|| format!("reading {}", f.display()))?;
    }
    let size = raw.len() as u64;
    let mut tar = Vec::new();
    decode_any(&raw, &mut tar).with_context(|| format!("decompressing {}", bundle.display()))?;
    Ok((size, tar))
}

/// Decompresses gzip (every member) or zstd (every frame) by its magic; anything else is copied.
pub fn decode_any(raw: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    match raw.get(..4) {
        Some([0x1f, 0x8b, ..]) => flate2::read::MultiGzDecoder::new(raw)
            .read_to_end(out)
            .map(drop),
        Some([0x28, 0xb5, 0x2f, 0xfd]) => zstd::stream::copy_decode(raw, out),
        _ => {
            out.extend_from_slice(raw);
            Ok(())
        }
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Chain IDs by their definition: the first is the diffID, each next one
/// `sha256(parent + " " + diffID)`.
pub fn chain_ids_of(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => sha256(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Fails when a name appears twice among the tar's entries.
fn ensure_unique_names(tar: &[u8]) -> Result<()> {
    let mut seen = BTreeSet::new();
    let mut a = tar::Archive::new(tar);
    for e in a.entries()? {
        let name = e?.path()?.display().to_string();
        ensure!(seen.insert(name.clone()), "the bundle holds {name} twice");
    }
    Ok(())
}

fn manifest_images(manifest: &Value) -> Result<Vec<BundleImage>> {
    let mut out = Vec::new();
    for img in manifest["images"]
        .as_array()
        .context("the manifest has no images list")?
    {
        let id = img["id"].as_str().context("image without id")?.to_string();
        let tags = img["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut diff_ids = Vec::new();
        let mut chains = Vec::new();
        let mut carried = Vec::new();
        for l in img["layers"].as_array().context("image without layers")? {
            diff_ids.push(
                l["diff_id"]
                    .as_str()
                    .context("layer without diff_id")?
                    .to_string(),
            );
            chains.push(
                l["chain_id"]
                    .as_str()
                    .context("layer without chain_id")?
                    .to_string(),
            );
            carried.push(l["carried"].as_bool().context("layer without carried")?);
        }
        out.push(BundleImage {
            id,
            tags,
            diff_ids,
            chain_ids: chains,
            carried,
        });
    }
    Ok(out)
}

/// The bundle's `manifest.json`: per image, its config entry and layer entries.
fn docker_manifest(entries: &BTreeMap<String, Kind>) -> Result<Vec<(String, Vec<String>)>> {
    let data = resolve(entries, "manifest.json")
        .context("the bundle has no manifest.json (docker load needs one)")?;
    let v: Vec<Value> =
        serde_json::from_slice(data).context("parsing the bundle's manifest.json")?;
    v.iter()
        .map(|m| {
            let config = m["Config"]
                .as_str()
                .context("manifest.json entry without Config")?;
            let layers = m["Layers"]
                .as_array()
                .context("manifest.json entry without Layers")?
                .iter()
                .map(|l| {
                    l.as_str()
                        .map(String::from)
                        .context("layer path is not a string")
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((config.to_string(), layers))
        })
        .collect()
}

/// The layer entry of each position of `img`, from the `manifest.json` entry whose config hashes
/// to the image ID; checks its diffIDs and chain IDs against the signed manifest.
fn layers_of(
    img: &BundleImage,
    docker: &[(String, Vec<String>)],
    entries: &BTreeMap<String, Kind>,
) -> Result<Vec<String>> {
    let mut configs = Vec::new();
    for (config, layers) in docker {
        let data = resolve(entries, config)
            .with_context(|| format!("config {config} named by the bundle's manifest.json"))?;
        let id = sha256(data);
        if id != img.id {
            configs.push(id);
            continue;
        }
        let cfg: Value =
            serde_json::from_slice(data).with_context(|| format!("parsing {config}"))?;
        let diffs: Vec<String> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .context("config without rootfs.diff_ids")?
            .iter()
            .filter_map(|d| d.as_str().map(String::from))
            .collect();
        ensure!(
            diffs == img.diff_ids,
            "image {}: the config's diffIDs {diffs:?} differ from the manifest's {:?}",
            img.id,
            img.diff_ids
        );
        let chains = chain_ids_of(&diffs);
        ensure!(
            chains == img.chain_ids,
            "image {}: chain IDs {chains:?} do not follow from the diffIDs (manifest: {:?})",
            img.id,
            img.chain_ids
        );
        ensure!(
            layers.len() == diffs.len(),
            "image {}: manifest.json lists {} layers, the config {}",
            img.id,
            layers.len(),
            diffs.len()
        );
        return Ok(layers.clone());
    }
    bail!(
        "image {} of the signed manifest is not in the bundle's manifest.json (its configs: {configs:?})",
        img.id
    )
}

/// sha256 of the content, decompressed first when it is gzip or zstd.
pub fn uncompressed_digest(data: &[u8]) -> String {
    let mut plain = Vec::new();
    match decode_any(data, &mut plain) {
        Ok(()) => sha256(&plain),
        Err(_) => sha256(data),
    }
}

/// For every file entry of the bundle: the digest of its (decompressed) content → its name.
fn content_digests(entries: &BTreeMap<String, Kind>) -> BTreeMap<String, String> {
    entries
        .iter()
        .filter_map(|(name, k)| match k {
            Kind::File(d) => Some((uncompressed_digest(d), name.clone())),
            _ => None,
        })
        .collect()
}
