//! `docker save` archive layouts for tests: a writer of hand-made legacy archives (the library's
//! `testutil` builder; for cases a build cannot make, e.g. one diffID at two chain positions), a
//! rewriter from the legacy (Docker ≤ 24) layout into the Docker ≥ 25 one and into the containerd
//! image store's one ([`legacy_to_containerd_layout`], compressed layer blobs; no daemon here uses
//! that store).
//!
//! The ≥ 25 layout written by [`legacy_to_oci_layout`]: `blobs/sha256/<hex>` for layers (named by
//! diffID, each once, so symlinked duplicates become one blob), configs (named by image ID), the
//! legacy per-layer `json` files and one OCI manifest per image; then `index.json`,
//! `manifest.json` (its `Config`/`Layers` point into `blobs/sha256/…`), `oci-layout` and
//! `repositories`, in that order, as Docker 25 writes them.

use crate::fixtures::sha256_digest;
use anyhow::{bail, Context, Result};
use partial_common::digest::{self, Digest};
use partial_common::testutil::archive::{self as testutil, End, Kind, NameStyle, TEntry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

/// One image for [`write_legacy_archive`].
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    /// `RepoTags`, e.g. `["app:1"]` (may be empty).
    pub tags: Vec<String>,
    /// Uncompressed layer tars, bottom first (the same bytes twice give the same diffID).
    pub layers: Vec<Vec<u8>>,
    /// Extra `config` fields (e.g. `{"Env": [...]}`), to make configs differ.
    pub config: Option<Value>,
}

/// The config JSON bytes of an image with these diffIDs (compact, fixed `created`).
pub fn image_config(diff_ids: &[String], extra: Option<&Value>) -> Vec<u8> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let history: Vec<Value> = (0..diff_ids.len())
        .map(|i| json!({"created": "2020-01-01T00:00:00Z", "created_by": format!("fixture layer {i}")}))
        .collect();
    let cfg = json!({
        "architecture": arch,
        "config": extra.cloned().unwrap_or_else(|| json!({})),
        "created": "2020-01-01T00:00:00Z",
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    serde_json::to_vec(&cfg).expect("config json")
}

/// Chain IDs of a diffID list (`sha256:…` strings), by the library's own
/// [`partial_common::digest::chain_ids`].
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let diffs: Vec<Digest> = diff_ids
        .iter()
        .map(|d| Digest::parse(d).unwrap_or_else(|e| panic!("diffID {d:?}: {e}")))
        .collect();
    digest::chain_ids(&diffs)
        .into_iter()
        .map(String::from)
        .collect()
}

/// The entries of an archive being written, in order; written with the library's test tar writer.
#[derive(Default)]
struct Entries(Vec<TEntry>);

impl Entries {
    fn file(&mut self, path: &str, data: &[u8]) {
        self.0.push(TEntry::file(path, data.to_vec()));
    }

    fn dir(&mut self, path: &str) {
        self.0.push(TEntry {
            name: format!("{}/", path.trim_end_matches('/')),
            kind: Kind::Dir,
            style: NameStyle::Plain,
        });
    }

    fn write(self, out: &Path) -> Result<()> {
        fs::write(out, testutil::write_tar(&self.0, End::Proper))
            .with_context(|| format!("writing {}", out.display()))
    }
}

/// Writes a legacy-layout `docker save` archive of `images` to `out`, as a ≤ 24 daemon would, with
/// the library's builder ([`testutil::legacy`]): one folder per chain named by the real v1id
/// recipe (a UTC daemon's), a diffID already written elsewhere saved as a symlink to it, entries in
/// name order, `manifest.json` and `repositories` last. Returns the image IDs.
pub fn write_legacy_archive(images: &[ImageSpec], out: &Path) -> Result<Vec<String>> {
    let images: Vec<testutil::TestImage> = images
        .iter()
        .map(|img| {
            let layers: Vec<testutil::Layer> = img
                .layers
                .iter()
                .map(|l| testutil::Layer {
                    data: l.clone(),
                    diff: Digest::of_bytes(l),
                })
                .collect();
            let diffs: Vec<String> = layers.iter().map(|l| l.diff.to_string()).collect();
            let config = image_config(&diffs, img.config.as_ref());
            testutil::TestImage {
                tags: img.tags.clone(),
                id: Digest::of_bytes(&config),
                layers,
                config,
            }
        })
        .collect();
    let refs: Vec<&testutil::TestImage> = images.iter().collect();
    let archive = testutil::legacy(&refs, "1970-01-01T00:00:00Z").tar();
    fs::write(out, archive).with_context(|| format!("writing {}", out.display()))?;
    Ok(images.iter().map(|i| i.id.to_string()).collect())
}

/// Every entry of a tar file (plain, gzip or zstd), read with the library's test reader.
pub fn read_tar(path: &Path) -> Result<BTreeMap<String, Kind>> {
    let mut data = Vec::new();
    partial_common::codec::decompress(
        fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    )?
    .read_to_end(&mut data)
    .with_context(|| format!("reading {}", path.display()))?;
    Ok(testutil::read_tar(&data))
}

/// The bytes of entry `name`, following symlinks (relative to the entry's folder; a target that is
/// itself an archive path is also accepted).
pub fn resolve<'a>(entries: &'a BTreeMap<String, Kind>, name: &str) -> Result<&'a [u8]> {
    let mut cur = name.to_string();
    for _ in 0..16 {
        match entries.get(&cur) {
            Some(Kind::File(d)) => return Ok(d),
            Some(Kind::Symlink(t)) => {
                let base = Path::new(&cur).parent().unwrap_or(Path::new(""));
                let mut parts: Vec<String> = base
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                for c in t.split('/') {
                    match c {
                        "" | "." => {}
                        ".." => {
                            parts.pop();
                        }
                        c => parts.push(c.to_string()),
                    }
                }
                cur = if t.starts_with("../")
                    || t.starts_with("./")
                    || !entries.contains_key(t.as_str())
                {
                    parts.join("/")
                } else {
                    t.clone()
                };
            }
            Some(Kind::Dir) => bail!("{cur} is a folder"),
            None => bail!("{name}: {cur} is not in the archive"),
        }
    }
    bail!("{name}: too many links")
}

/// Docker's reference normalisation for `io.containerd.image.name` (`app:1` →
/// `docker.io/library/app:1`).
pub fn normalize_ref(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or("");
    if !tag.contains('/') {
        format!("docker.io/library/{tag}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        tag.to_string()
    } else {
        format!("docker.io/{tag}")
    }
}

/// Rewrites a legacy (Docker ≤ 24) `docker save` archive into the Docker ≥ 25 layout (see the
/// module docs). Returns the image IDs in `manifest.json` order.
pub fn legacy_to_oci_layout(legacy: &Path, out: &Path) -> Result<Vec<String>> {
    rewrite_legacy(legacy, out, false)
}

/// Rewrites a legacy archive into what a daemon on the **containerd image store** saves: an OCI
/// layout whose layer blobs are gzip-compressed (so their names are *not* diffIDs;
/// `application/vnd.oci.image.layer.v1.tar+gzip`), manifests, configs and layers mixed in name order
/// under `blobs/sha256/`, then `index.json`, `manifest.json` (its `Layers` name the compressed
/// blobs), `oci-layout`, and no `repositories`. Compression is deterministic (gzip header mtime 0).
/// Returns the image IDs.
pub fn legacy_to_containerd_layout(legacy: &Path, out: &Path) -> Result<Vec<String>> {
    rewrite_legacy(legacy, out, true)
}

/// Deterministic gzip of `data` (fast level, no name, mtime 0).
pub use partial_common::testutil::archive::gzip;

fn rewrite_legacy(legacy: &Path, out: &Path, containerd: bool) -> Result<Vec<String>> {
    let entries = read_tar(legacy)?;
    let manifest: Vec<Value> = match entries.get("manifest.json") {
        Some(Kind::File(d)) => serde_json::from_slice(d).context("parsing manifest.json")?,
        _ => bail!(
            "{} has no manifest.json: not a docker save archive",
            legacy.display()
        ),
    };
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut new_manifest = Vec::new();
    let mut index = Vec::new();
    let mut ids = Vec::new();
    for m in &manifest {
        let cfg_name = m["Config"]
            .as_str()
            .context("manifest entry without Config")?;
        let cfg = resolve(&entries, cfg_name)?.to_vec();
        let cfg_digest = sha256_digest(&cfg);
        let (layer_paths, layer_descs) = rewrite_layers(&entries, m, containerd, &mut blobs)?;
        let oci_manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg.len()},
            "layers": layer_descs,
        }))?;
        let man_digest = sha256_digest(&oci_manifest);
        let tags: Vec<String> = m["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        index.extend(index_descriptors(&tags, &oci_manifest, &man_digest));
        blobs.insert(man_digest[7..].to_string(), oci_manifest);
        blobs.insert(cfg_digest[7..].to_string(), cfg);
        new_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", &cfg_digest[7..]),
            "RepoTags": m["RepoTags"],
            "Layers": layer_paths,
        }));
        ids.push(cfg_digest);
    }
    let mut b = Entries::default();
    b.dir("blobs");
    b.dir("blobs/sha256");
    for (hex, data) in &blobs {
        b.file(&format!("blobs/sha256/{hex}"), data);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": index,
    });
    b.file("index.json", &serde_json::to_vec(&index)?);
    b.file("manifest.json", &serde_json::to_vec(&new_manifest)?);
    b.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    if let (false, Some(Kind::File(r))) = (containerd, entries.get("repositories")) {
        b.file("repositories", r);
    }
    b.write(out)?;
    Ok(ids)
}

/// The layers of manifest entry `m` as blobs (gzipped for the containerd store, with each
/// folder's legacy json otherwise) added to `blobs`: their paths and OCI descriptors.
fn rewrite_layers(
    entries: &BTreeMap<String, Kind>,
    m: &Value,
    containerd: bool,
    blobs: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(Vec<String>, Vec<Value>)> {
    let mut layer_paths = Vec::new();
    let mut layer_descs = Vec::new();
    for l in m["Layers"]
        .as_array()
        .context("manifest entry without Layers")?
    {
        let lname = l.as_str().context("layer path is not a string")?;
        let data = resolve(entries, lname)?;
        let (blob, media) = if containerd {
            (gzip(data), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (data.to_vec(), "application/vnd.oci.image.layer.v1.tar")
        };
        let d = sha256_digest(&blob);
        layer_descs.push(json!({"mediaType": media, "digest": d, "size": blob.len()}));
        layer_paths.push(format!("blobs/sha256/{}", &d[7..]));
        blobs.entry(d[7..].to_string()).or_insert(blob);
        // The folder's legacy json, as a blob of its own (Docker 25 keeps it too).
        if let (false, Some(folder)) = (containerd, lname.strip_suffix("/layer.tar")) {
            if let Some(Kind::File(j)) = entries.get(&format!("{folder}/json")) {
                blobs
                    .entry(sha256_digest(j)[7..].to_string())
                    .or_insert_with(|| j.clone());
            }
        }
    }
    Ok((layer_paths, layer_descs))
}

/// `index.json`'s descriptors of one OCI manifest: one per tag (with containerd's and OCI's
/// name annotations), or one without annotations when untagged.
fn index_descriptors(tags: &[String], oci_manifest: &[u8], man_digest: &str) -> Vec<Value> {
    let mut index = Vec::new();
    let desc = |annotations: Option<Value>| {
        let mut d = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": man_digest, "size": oci_manifest.len(),
        });
        if let Some(a) = annotations {
            d["annotations"] = a;
        }
        d
    };
    if tags.is_empty() {
        index.push(desc(None));
    }
    for t in tags {
        let short = t.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
        index.push(desc(Some(json!({
            "io.containerd.image.name": normalize_ref(t),
            "org.opencontainers.image.ref.name": short,
        }))));
    }
    index
}

/// The entry names of a tar (plain, gzip or zstd), in archive order (symlinks shown as
/// `name -> target`).
pub fn tar_listing(path: &Path) -> Result<Vec<String>> {
    let mut a = tar::Archive::new(partial_common::codec::decompress(fs::File::open(path)?)?);
    let mut v = Vec::new();
    for e in a.entries()? {
        let e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        match e.link_name()? {
            Some(t) => v.push(format!("{name} -> {}", t.to_string_lossy())),
            None => v.push(name),
        }
    }
    Ok(v)
}
