//! Archives of one image set as every writer users meet writes them, for the end-to-end tests of
//! `--from-archive`/`--exclude-archive` and `--from-oci`/`--exclude-oci`:
//! - the real tools: [`skopeo_copy`] from the source daemon (`docker-archive:`, `oci-archive:`,
//!   `oci:DIR`), [`umoci_layout`] (an OCI layout as umoci writes it, bare tag ref names);
//! - [`legacy_to_crane_tarball`]: what `crane pull --format tarball` writes (go-containerregistry
//!   `pkg/v1/tarball`), as no Debian package ships crane: the config as `sha256:<hex>`, layers
//!   gzip-compressed as `<hex of the compressed blob>.tar.gz`, each blob once, `manifest.json`
//!   last;
//! - [`add_platform_variant`]: turns one tagged image of an OCI layout into a multi-platform
//!   index (nested under `index.json`), with a second, hand-made variant for another platform;
//! - [`oci_config_digest`]: the image ID an OCI layout (directory or `oci-archive`) gives a ref.

use crate::daemon::{run_checked, Daemon};
use crate::fixtures::sha256_digest;
use crate::layout::{gzip, read_tar, resolve};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

/// `skopeo copy docker-daemon:IMAGE DEST` reading from `daemon` (e.g. DEST =
/// `docker-archive:/x/new.tar:app:2`, `oci-archive:/x/new.oar:app:2`, `oci:/x/dir:app:2`).
pub fn skopeo_copy(daemon: &Daemon, image: &str, dest: &str) -> Result<()> {
    skopeo_copy_with(daemon, image, dest, &[])
}

/// [`skopeo_copy`] with more `skopeo copy` options (e.g. `--dest-compress-format zstd`,
/// `--dest-oci-accept-uncompressed-layers`).
pub fn skopeo_copy_with(daemon: &Daemon, image: &str, dest: &str, options: &[&str]) -> Result<()> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["--insecure-policy", "copy", "--quiet"])
        .args(options)
        .arg("--src-daemon-host")
        .arg(format!("unix://{}", daemon.socket().display()))
        .arg(format!("docker-daemon:{image}"))
        .arg(dest);
    run_checked(&format!("skopeo copy {image} {dest}"), &mut cmd).map(|_| ())
}

fn umoci(args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("umoci");
    cmd.args(args);
    run_checked(&format!("umoci {}", args.join(" ")), &mut cmd).map(|_| ())
}

/// Writes an OCI layout `dir` with umoci itself: for each `(image in the legacy save, umoci tag)`,
/// `umoci new` and one `umoci raw add-layer` per layer tar of that image (umoci gzips each layer
/// and writes its own config), so the layout, its configs and its bare tag ref names are umoci's.
pub fn umoci_layout(legacy: &Path, dir: &Path, images: &[(&str, &str)]) -> Result<()> {
    let entries = read_tar(legacy)?;
    let manifest: Vec<Value> = serde_json::from_slice(resolve(&entries, "manifest.json")?)
        .context("parsing manifest.json of the save")?;
    let d = dir.to_string_lossy().into_owned();
    umoci(&["init", "--layout", &d])?;
    let scratch = tempfile::tempdir()?;
    for (image, tag) in images {
        let m = manifest
            .iter()
            .find(|m| {
                m["RepoTags"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t.as_str() == Some(image)))
            })
            .with_context(|| format!("{image} is not in {}", legacy.display()))?;
        let target = format!("{d}:{tag}");
        umoci(&["new", "--image", &target])?;
        for (i, l) in m["Layers"]
            .as_array()
            .context("manifest entry without Layers")?
            .iter()
            .enumerate()
        {
            let path = scratch.path().join(format!("{tag}-{i}.tar"));
            fs::write(&path, resolve(&entries, l.as_str().context("layer path")?)?)?;
            umoci(&[
                "raw",
                "add-layer",
                "--image",
                &target,
                &path.to_string_lossy(),
            ])?;
        }
    }
    Ok(())
}

/// Writes `out` as `crane pull --format tarball` would from the images of a legacy `docker save`
/// (see the module docs; go-containerregistry `pkg/v1/tarball/write.go`). Layers are compressed
/// with gzip here, so their names are not diffIDs. Returns the image IDs (configs unchanged).
pub fn legacy_to_crane_tarball(legacy: &Path, out: &Path) -> Result<Vec<String>> {
    let entries = read_tar(legacy)?;
    let manifest: Vec<Value> = serde_json::from_slice(resolve(&entries, "manifest.json")?)
        .context("parsing manifest.json of the save")?;
    let mut b = tar::Builder::new(
        fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    let mut seen = BTreeSet::new();
    let mut descriptors = Vec::new();
    let mut ids = Vec::new();
    for m in &manifest {
        let config = resolve(&entries, m["Config"].as_str().context("Config")?)?;
        let id = sha256_digest(config);
        crane_entry(&mut b, &id, config)?;
        let mut layers = Vec::new();
        for l in m["Layers"].as_array().context("Layers")? {
            let gz = gzip(resolve(&entries, l.as_str().context("layer path")?)?);
            let name = format!("{}.tar.gz", &sha256_digest(&gz)[7..]);
            if seen.insert(name.clone()) {
                crane_entry(&mut b, &name, &gz)?;
            }
            layers.push(name);
        }
        descriptors.push(json!({"Config": id, "RepoTags": m["RepoTags"], "Layers": layers}));
        ids.push(id);
    }
    crane_entry(&mut b, "manifest.json", &serde_json::to_vec(&descriptors)?)?;
    b.into_inner()?.sync_all()?;
    Ok(ids)
}

/// One entry as go-containerregistry writes it: a regular file, mode 0644, no owner, mtime 0.
fn crane_entry(b: &mut tar::Builder<fs::File>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, name, data)?;
    Ok(())
}

/// Where an OCI layout's blobs are read from.
enum Blobs<'a> {
    Dir(&'a Path),
    Archive(std::collections::BTreeMap<String, partial_common::testutil::archive::Kind>),
}

impl Blobs<'_> {
    fn get(&self, name: &str) -> Result<Vec<u8>> {
        match self {
            Blobs::Dir(d) => fs::read(d.join(name)).with_context(|| format!("reading {name}")),
            Blobs::Archive(e) => Ok(resolve(e, name)?.to_vec()),
        }
    }

    fn blob(&self, digest: &str) -> Result<Vec<u8>> {
        let hex = digest
            .strip_prefix("sha256:")
            .context("digest without sha256:")?;
        self.get(&format!("blobs/sha256/{hex}"))
    }
}

/// The config digest (image ID) of the image tagged `ref_name` in an OCI layout: a directory or an
/// `oci-archive` file. Follows nested indexes, taking their first manifest.
pub fn oci_config_digest(layout: &Path, ref_name: &str) -> Result<String> {
    Ok(oci_image(layout, ref_name)?.0)
}

/// The config digest and the diffIDs of the image tagged `ref_name` in an OCI layout (as
/// [`oci_config_digest`]).
pub fn oci_image(layout: &Path, ref_name: &str) -> Result<(String, Vec<String>)> {
    let blobs = if layout.is_dir() {
        Blobs::Dir(layout)
    } else {
        Blobs::Archive(read_tar(layout)?)
    };
    let index: Value = serde_json::from_slice(&blobs.get("index.json")?)?;
    let desc = index["manifests"]
        .as_array()
        .context("index.json without manifests")?
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == ref_name)
        .with_context(|| format!("no ref {ref_name} in {}", layout.display()))?;
    let mut digest = desc["digest"].as_str().context("digest")?.to_string();
    for _ in 0..8 {
        let v: Value = serde_json::from_slice(&blobs.blob(&digest)?)?;
        if let Some(c) = v["config"]["digest"].as_str() {
            let config: Value = serde_json::from_slice(&blobs.blob(c)?)?;
            let diffs = config["rootfs"]["diff_ids"]
                .as_array()
                .context("config without rootfs.diff_ids")?
                .iter()
                .filter_map(|d| d.as_str().map(String::from))
                .collect();
            return Ok((c.to_string(), diffs));
        }
        digest = v["manifests"][0]["digest"]
            .as_str()
            .context("neither a manifest nor an index")?
            .to_string();
    }
    bail!("indexes nested too deep in {}", layout.display())
}

/// The other platform's variant made by [`add_platform_variant`].
#[derive(Clone, Debug)]
pub struct Variant {
    /// Config digest (image ID) of the variant.
    pub id: String,
    /// Its diffIDs: the original image's plus one extra layer.
    pub diff_ids: Vec<String>,
    /// Config digest of the original image (the machine's platform).
    pub original_id: String,
}

/// Turns the image tagged `ref_name` in the OCI layout `dir` into a multi-platform image: a new
/// image index blob listing the original manifest (platform `linux/amd64`) and a variant for
/// `linux/<arch>` (the original's config with that architecture and one more layer,
/// `extra_layer`, gzip-compressed); `index.json` then names that index (nested) under `ref_name`.
pub fn add_platform_variant(
    dir: &Path,
    ref_name: &str,
    arch: &str,
    extra_layer: &[u8],
) -> Result<Variant> {
    let blobs = Blobs::Dir(dir);
    let index_path = dir.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path)?)?;
    let entries = index["manifests"]
        .as_array_mut()
        .context("index.json without manifests")?;
    let at = entries
        .iter()
        .position(|m| m["annotations"]["org.opencontainers.image.ref.name"] == ref_name)
        .with_context(|| format!("no ref {ref_name} in {}", dir.display()))?;
    let original = entries[at].clone();
    let man_bytes = blobs.blob(original["digest"].as_str().context("digest")?)?;
    let mut manifest: Value = serde_json::from_slice(&man_bytes)?;
    let original_id = manifest["config"]["digest"]
        .as_str()
        .context("manifest without config")?
        .to_string();
    let mut config: Value = serde_json::from_slice(&blobs.blob(&original_id)?)?;
    let extra_diff = sha256_digest(extra_layer);
    let gz = gzip(extra_layer);
    let write_blob = |data: &[u8]| -> Result<(String, usize)> {
        let d = sha256_digest(data);
        fs::write(dir.join("blobs/sha256").join(&d[7..]), data)?;
        Ok((d, data.len()))
    };
    let (gz_digest, gz_size) = write_blob(&gz)?;
    config["architecture"] = json!(arch);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .context("config without rootfs.diff_ids")?
        .push(json!(extra_diff));
    if let Some(h) = config["history"].as_array_mut() {
        h.push(json!({"created": "2020-01-01T00:00:00Z", "created_by": "platform variant layer"}));
    }
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(String::from))
        .collect();
    let (cfg_digest, cfg_size) = write_blob(&serde_json::to_vec(&config)?)?;
    manifest["config"]["digest"] = json!(cfg_digest);
    manifest["config"]["size"] = json!(cfg_size);
    manifest["layers"]
        .as_array_mut()
        .context("manifest without layers")?
        .push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "digest": gz_digest, "size": gz_size}),
        );
    let (var_digest, var_size) = write_blob(&serde_json::to_vec(&manifest)?)?;
    let platform_index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": original["digest"], "size": original["size"],
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": var_digest, "size": var_size,
             "platform": {"architecture": arch, "os": "linux"}},
        ],
    });
    let (idx_digest, idx_size) = write_blob(&serde_json::to_vec(&platform_index)?)?;
    entries[at] = json!({
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": idx_digest, "size": idx_size,
        "annotations": {"org.opencontainers.image.ref.name": ref_name},
    });
    fs::write(&index_path, serde_json::to_vec(&index)?)?;
    Ok(Variant {
        id: cfg_digest,
        diff_ids,
        original_id,
    })
}

/// The image ID skopeo picks for `arch` from the OCI layout `dir` under `ref_name` (it copies the
/// image into a `docker-archive`, which keeps the config bytes): a check, by a real tool, that a
/// layout made by [`add_platform_variant`] is a valid multi-platform index.
pub fn skopeo_pick_platform(dir: &Path, ref_name: &str, arch: &str) -> Result<String> {
    let scratch = tempfile::tempdir()?;
    let out = scratch.path().join("picked.tar");
    let mut cmd = Command::new("skopeo");
    cmd.args([
        "--insecure-policy",
        "--override-os",
        "linux",
        "--override-arch",
        arch,
    ])
    .args(["copy", "--quiet"])
    .arg(format!("oci:{}:{ref_name}", dir.display()))
    .arg(format!("docker-archive:{}", out.display()));
    run_checked(&format!("skopeo copy --override-arch {arch}"), &mut cmd)?;
    let entries = read_tar(&out)?;
    let manifest: Vec<Value> = serde_json::from_slice(resolve(&entries, "manifest.json")?)?;
    let config = manifest
        .first()
        .and_then(|m| m["Config"].as_str())
        .context("no Config in skopeo's manifest.json")?;
    Ok(sha256_digest(resolve(&entries, config)?))
}
