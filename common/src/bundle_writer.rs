//! The bundle writer: a docker-loadable archive in the Docker ≥ 25 shape, written from the
//! [image model](crate::image) only. `blobs/sha256/<hex>` holds each config and each carried
//! layer blob once (layers as the engine hands them over: uncompressed tars named by diffID, or
//! gzip blobs named by their digest, which every `docker load` decompresses itself; the engine
//! decompresses zstd layers first, which Docker < 23 cannot read); then one OCI
//! manifest per image, `index.json`, `manifest.json` (`Config`, `RepoTags`, `Layers` for every
//! position, carried or not: `docker load` never opens the file of a chain it already has; a
//! left-out position names `blobs/sha256/<diffID>`, so tools that complete the bundle from a
//! daemon's uncompressed layers know the file name), `oci-layout` and `repositories`.

use crate::archive::tarstream::TarWriter;
use crate::archive::ArchiveError;
use crate::codec::{Compression, StoreHint};
use crate::destination::ImageDestination;
use crate::digest::Digest;
use crate::image::{Image, MEDIA_CONFIG, MEDIA_INDEX, MEDIA_MANIFEST};
use crate::reference::qualified;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};

/// The entry name of a blob.
pub fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The digest naming layer `l`'s entry in `manifest.json`, given which blobs were written
/// (`written`): its blob when that was written, else its diffID (a left-out position, named as a
/// daemon's uncompressed layer would be).
pub fn layer_entry(l: &crate::image::Layer, written: impl Fn(&Digest) -> bool) -> &Digest {
    if written(&l.blob.digest) {
        &l.blob.digest
    } else {
        &l.diff_id
    }
}

/// Writes a bundle; see the module documentation.
pub struct BundleWriter<W: Write> {
    out: TarWriter<W>,
    blobs: HashSet<Digest>,
    started: bool,
    /// Where already-compressed blobs are announced to the output's compressor.
    hint: Option<StoreHint>,
}

impl<W: Write> BundleWriter<W> {
    pub fn new(out: W) -> Self {
        BundleWriter {
            out: TarWriter::new(out),
            blobs: HashSet::new(),
            started: false,
            hint: None,
        }
    }

    /// Announces the data of every compressed blob written from now on to `hint` (the
    /// output's compressor then stores it rather than deflate it again).
    pub fn set_store_hint(&mut self, hint: StoreHint) {
        self.hint = Some(hint);
    }

    /// The `blobs/` and `blobs/sha256/` folders, before the first blob (as Docker writes them).
    fn start(&mut self) -> Result<(), ArchiveError> {
        if !self.started {
            self.started = true;
            self.out.write_dir("blobs/")?;
            self.out.write_dir("blobs/sha256/")?;
        }
        Ok(())
    }

    /// Whether the blob `d` was written.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blobs.contains(d)
    }

    /// Writes blob `d` of `size` bytes from `data`, calling `each` on every chunk (the caller
    /// hashes and reports progress there). Fails when `data` ends early.
    pub fn write_blob<R: Read>(
        &mut self,
        d: &Digest,
        size: u64,
        data: &mut R,
        each: impl FnMut(&[u8]),
    ) -> Result<(), ArchiveError> {
        self.write_blob_entry(d, size, data, each, false)
    }

    /// [`BundleWriter::write_blob`] for a layer blob stored in compression `c`: the data of a
    /// compressed one (gzip, zstd) is announced to the store hint, when one is set.
    pub fn write_layer_blob<R: Read>(
        &mut self,
        (d, c): (&Digest, Compression),
        size: u64,
        data: &mut R,
        each: impl FnMut(&[u8]),
    ) -> Result<(), ArchiveError> {
        self.write_blob_entry(d, size, data, each, c != Compression::None)
    }

    fn write_blob_entry<R: Read>(
        &mut self,
        d: &Digest,
        size: u64,
        data: &mut R,
        mut each: impl FnMut(&[u8]),
        compressed: bool,
    ) -> Result<(), ArchiveError> {
        self.start()?;
        let name = blob_path(d);
        self.out.begin_file(&name, size)?;
        if let Some(h) = self.hint.as_ref().filter(|_| compressed) {
            h.next_bytes_compressed(size);
        }
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = size;
        while left > 0 {
            let want = buf.len().min(left.min(usize::MAX as u64) as usize);
            let n = data.read(&mut buf[..want])?;
            if n == 0 {
                return Err(ArchiveError::Truncated(format!(
                    "{name}: {left} of {size} bytes missing"
                )));
            }
            each(&buf[..n]);
            self.out.write_raw(&buf[..n])?;
            left -= n as u64;
        }
        self.out.pad(size)?;
        self.blobs.insert(d.clone());
        Ok(())
    }

    /// Writes a small blob (a config, a manifest) unless already written.
    pub fn write_small_blob(&mut self, bytes: &[u8]) -> Result<Digest, ArchiveError> {
        let d = Digest::of_bytes(bytes);
        self.start()?;
        if self.blobs.insert(d.clone()) {
            self.out.write_new_file(&blob_path(&d), bytes, None)?;
        }
        Ok(d)
    }

    /// Writes the metadata of `images` (whose configs and carried blobs were written) and the
    /// end of the archive; returns the writer and the tar's size.
    pub fn finish(mut self, images: &[Image]) -> Result<(W, u64), ArchiveError> {
        let mut index = Vec::new();
        let mut manifest = Vec::new();
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for img in images {
            let bytes = oci_manifest(img)?;
            let md = self.write_small_blob(&bytes)?;
            let desc = |ann: Option<Value>| {
                let mut d = json!({ "mediaType": MEDIA_MANIFEST, "digest": md.as_str(), "size": bytes.len() });
                if let Some(a) = ann {
                    d["annotations"] = a;
                }
                d
            };
            if img.tags.is_empty() {
                index.push(desc(None));
            }
            for t in &img.tags {
                let (repo, tag) = split_tag(t);
                index.push(desc(Some(json!({
                    "io.containerd.image.name": qualified(t),
                    "org.opencontainers.image.ref.name": tag,
                }))));
                repos
                    .entry(repo.to_string())
                    .or_default()
                    .insert(tag.to_string(), img.id.hex().to_string());
            }
            let layer_paths: Vec<String> = img
                .layers
                .iter()
                .map(|l| blob_path(layer_entry(l, |d| self.has_blob(d))))
                .collect();
            manifest.push(json!({
                "Config": blob_path(&img.id),
                "RepoTags": img.tags,
                "Layers": layer_paths,
            }));
        }
        let to_vec = |v: &Value| serde_json::to_vec(v).map_err(|e| ArchiveError::Write(e.into()));
        let ix = json!({ "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": index });
        self.out.write_new_file("index.json", &to_vec(&ix)?, None)?;
        self.out
            .write_new_file("manifest.json", &to_vec(&Value::from(manifest))?, None)?;
        self.out
            .write_new_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, None)?;
        if !repos.is_empty() {
            let r = serde_json::to_value(&repos).map_err(|e| ArchiveError::Write(e.into()))?;
            self.out
                .write_new_file("repositories", &to_vec(&r)?, None)?;
        }
        self.out.finish()
    }
}

/// The OCI manifest [`BundleWriter::finish`] writes for `img` (its config and every layer
/// position as the model states its blob). Its digest is what the containerd image store calls
/// the image after loading the archive (see the importer's confirmation).
pub fn oci_manifest(img: &Image) -> Result<Vec<u8>, ArchiveError> {
    let config_size = img.config.as_ref().map_or(0, |c| c.len());
    let layers: Vec<Value> = img
        .layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": l.blob.media_type,
                "digest": l.blob.digest.as_str(),
                "size": l.blob.size.unwrap_or(0),
            })
        })
        .collect();
    let m = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": img.id.as_str(), "size": config_size },
        "layers": layers,
    });
    serde_json::to_vec(&m).map_err(|e| ArchiveError::Write(e.into()))
}

/// `app:1` → (`app`, `1`); `reg:5000/app:1` → (`reg:5000/app`, `1`).
fn split_tag(t: &str) -> (&str, &str) {
    let slash = t.rfind('/').map_or(0, |i| i + 1);
    match t[slash..].rfind(':') {
        Some(i) => (&t[..slash + i], &t[slash + i + 1..]),
        None => (t, "latest"),
    }
}

/// The checked archive as a destination: configs and blobs written as they come, the metadata
/// at the commit; the writer's output and the archive's size are what a commit gives back.
/// What a [`BundleWriter`] committed as an [`ImageDestination`].
#[derive(Debug)]
pub struct Finished<W> {
    pub out: W,
    /// The size of the archive written.
    pub tar_size: u64,
    /// The OCI manifest written for each image: image ID (config digest) → manifest digest
    /// (what the containerd image store names the image by once it loaded the archive).
    pub manifests: BTreeMap<Digest, Digest>,
}

impl<W: Write> ImageDestination for BundleWriter<W> {
    type Committed = Finished<W>;

    fn put_config(&mut self, _id: &Digest, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.write_small_blob(bytes).map(|_| ())
    }

    fn put_blob(
        &mut self,
        d: &Digest,
        size: u64,
        mut data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        self.write_blob(d, size, &mut data, |_| {})
    }

    fn commit(self, images: &[Image]) -> Result<Finished<W>, ArchiveError> {
        let mut manifests = BTreeMap::new();
        for img in images {
            manifests.insert(img.id.clone(), Digest::of_bytes(&oci_manifest(img)?));
        }
        let (out, tar_size) = self.finish(images)?;
        Ok(Finished {
            out,
            tar_size,
            manifests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names() {
        assert_eq!(split_tag("app:1"), ("app", "1"));
        assert_eq!(split_tag("reg:5000/app:1"), ("reg:5000/app", "1"));
        assert_eq!(split_tag("reg:5000/app"), ("reg:5000/app", "latest"));
    }
}
