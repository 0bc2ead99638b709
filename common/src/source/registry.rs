//! [`RegistrySource`]: images read from a registry by `docker://HOST[:PORT]/REPO[:TAG|@sha256:…]`
//! references, with no daemon. Opening resolves each reference (an index or manifest list picks
//! the platform), reads its manifest and config (raw bytes kept, digests checked by the client)
//! and builds the model from the config's diffIDs and the manifest's layer descriptors. To stream,
//! the wanted images are handed to the engine file by file as an OCI layout (`oci-layout`,
//! `index.json`, manifests, configs) followed by only the layer blobs the bundle needs, each
//! fetched from the registry as it is reached, compressed as stored and named by its digest; the engine checks each blob's
//! digest and diffID as it reads it, so nothing is held in memory but a few chunks.

use super::{Sink, Source};
use crate::archive::blob_files::BlobFile;
use crate::archive::ArchiveError;
use crate::channel_reader::ChannelReader;
use crate::codec::Compression;
use crate::digest::{chain_ids, Digest};
use crate::image::{
    attached_tag, layer_media_type, referrers_tag, Attached, AttachedBlob, Blob, Image, Layer,
    Platform, SourceManifest, ATTACHED_SUFFIXES, MAX_ATTACHED_BLOB, MEDIA_INDEX,
};
use crate::reference::{familiar, id_hex, qualified};
use crate::registry::manifest::Manifest;
use crate::registry::{
    Descriptor, RawManifest, Reference, Registry, RegistryError, RegistryOptions, ResolvedImage,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

/// The prefix that makes a reference a registry one: `docker://127.0.0.1:5000/app:2`.
pub const SCHEME: &str = "docker://";

/// The reference after `docker://`, when it has the prefix.
pub fn strip_scheme(reference: &str) -> Option<&str> {
    reference.trim().strip_prefix(SCHEME)
}

/// What was fetched for one image of the registry.
struct Remote {
    registry: Arc<Registry>,
    repository: String,
    /// The references (without `docker://`) that resolved to it.
    names: Vec<String>,
    /// The digest its reference resolved to: its manifest's, or the index's above it.
    pinned: Digest,
    manifest: RawManifest,
    config: Bytes,
    layers: Vec<Descriptor>,
}

/// What to take of the references: the platforms of indexes (none: every platform), whether
/// an index named by digest may be re-made or dropped, whether attached manifests travel.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub platforms: Vec<Platform>,
    pub allow_new_digest: bool,
    pub attached: bool,
}

/// Images of one or more registries; see the module documentation.
pub struct RegistrySource {
    remotes: Vec<Remote>,
    /// The indexes that travel (see [`crate::source_index`]).
    pub indexes: Vec<crate::source_index::SourceIndex>,
    /// Parallel to `remotes`.
    images: Vec<Image>,
    idle: Duration,
    /// What a person should know: attached manifests left out, and why.
    pub warnings: Vec<String>,
}

/// The compression a layer media type says (Docker and OCI names); `None`: not a layer type.
fn compression_of(media_type: &str) -> Option<Compression> {
    let mt = media_type.trim();
    if mt.ends_with("+gzip") || mt.ends_with(".tar.gzip") {
        Some(Compression::Gzip)
    } else if mt.ends_with("+zstd") || mt.ends_with(".tar.zstd") {
        Some(Compression::Zstd)
    } else if mt.ends_with(".tar") {
        Some(Compression::None)
    } else {
        None
    }
}

/// `rootfs.diff_ids` of a config.
fn diff_ids_of(config: &[u8]) -> Result<Vec<Digest>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| format!("not JSON: {e}"))?;
    let list = v
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .ok_or("no rootfs.diff_ids")?;
    list.iter()
        .map(|d| {
            d.as_str()
                .and_then(|s| Digest::parse(s).ok())
                .ok_or_else(|| format!("bad diffID {d}"))
        })
        .collect()
}

/// The model image of a resolved manifest and its config.
fn model(
    registry: &str,
    reference: &Reference,
    resolved: &ResolvedImage,
    config: &[u8],
) -> Result<Image, RegistryError> {
    let protocol = |reason: String| RegistryError::Protocol {
        registry: registry.to_string(),
        what: format!("image {reference}"),
        reason,
    };
    let diff_ids = diff_ids_of(config).map_err(|r| protocol(format!("its config: {r}")))?;
    let descs = &resolved.manifest.layers;
    if descs.len() != diff_ids.len() {
        return Err(protocol(format!(
            "its manifest lists {} layers but its config {} diffIDs",
            descs.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for ((d, chain), desc) in diff_ids.iter().zip(chain_ids(&diff_ids)).zip(descs) {
        let c = compression_of(&desc.media_type).ok_or_else(|| {
            protocol(format!(
                "layer {} has media type {:?}, not a layer this tool reads",
                desc.digest, desc.media_type
            ))
        })?;
        if c == Compression::None && desc.digest != *d {
            return Err(protocol(format!(
                "uncompressed layer {} is not its diffID {d}",
                desc.digest
            )));
        }
        layers.push(Layer {
            diff_id: d.clone(),
            chain_id: chain,
            blob: Blob {
                digest: desc.digest.clone(),
                media_type: layer_media_type(c).to_string(),
                size: Some(desc.size),
                compression: c,
            },
        });
    }
    let tags = reference
        .tag
        .as_ref()
        .and_then(|t| {
            familiar(&format!(
                "{}/{}:{t}",
                reference.registry, reference.repository
            ))
        })
        .into_iter()
        .collect();
    let mut aliases = vec![resolved.raw.digest.clone()];
    aliases.extend(resolved.index.iter().map(|i| i.digest.clone()));
    Ok(Image {
        id: Digest::of_bytes(config),
        config: Some(config.to_vec()),
        tags,
        layers,
        aliases,
        source_manifest: SourceManifest::new(&resolved.raw.media_type, &resolved.raw.bytes),
        attached: Vec::new(),
    })
}

/// The manifests attached to the image manifest `digest` in `repository` (see [`Attached`]):
/// cosign's tag scheme, then the OCI 1.1 referrers listed by the fallback index (each referrer
/// before the index); none is not an error. One that is not what it should be, or whose blobs
/// are too large to carry inside the signed manifest, is left out with a warning.
pub(super) async fn fetch_attached(
    reg: &Registry,
    repository: &str,
    digest: &Digest,
    warnings: &mut Vec<String>,
) -> Result<Vec<Attached>, RegistryError> {
    let mut out = Vec::new();
    for suffix in ATTACHED_SUFFIXES {
        let tag = attached_tag(digest, suffix);
        if let Some(a) = fetch_one(reg, repository, &tag, warnings).await? {
            out.push(a);
        }
    }
    out.extend(fetch_referrers(reg, repository, digest, warnings).await?);
    Ok(out)
}

/// The referrers of `digest` and every manifest they list, those first: the referrers API's
/// index where the registry has the API (carried as the fallback index, which `push` writes
/// under the fallback tag), else the fallback index under its tag.
async fn fetch_referrers(
    reg: &Registry,
    repository: &str,
    digest: &Digest,
    warnings: &mut Vec<String>,
) -> Result<Vec<Attached>, RegistryError> {
    let tag = referrers_tag(digest);
    let raw = match reg.get_referrers(repository, digest).await? {
        Some(listed) => listed,
        None => match reg.get_manifest(repository, &tag).await {
            Ok(raw) => raw,
            Err(RegistryError::NoManifest { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        },
    };
    let whole = format!("{}/{repository}:{tag}", reg.name());
    let (Ok(Manifest::Index(index)), Some(manifest)) = (
        raw.parse(),
        SourceManifest::new(&raw.media_type, &raw.bytes),
    ) else {
        warnings.push(format!("{whole} is not a referrers index: not carried"));
        return Ok(Vec::new());
    };
    if index.manifests.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for d in &index.manifests {
        match fetch_one(reg, repository, d.digest.as_str(), warnings).await? {
            Some(a) => out.push(a),
            None => {
                warnings.push(format!(
                    "{whole}: referrer {} not carried, nor the index",
                    d.digest
                ));
                return Ok(Vec::new());
            }
        }
    }
    out.push(Attached {
        tag,
        manifest,
        blobs: Vec::new(),
    });
    Ok(out)
}

/// The image manifest `reference` (a tag or a digest) with its blobs; `None` when there is none,
/// or (with a warning) when it cannot be carried.
pub(super) async fn fetch_one(
    reg: &Registry,
    repository: &str,
    reference: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Attached>, RegistryError> {
    let raw = match reg.get_manifest(repository, reference).await {
        Ok(raw) => raw,
        Err(RegistryError::NoManifest { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let whole = format!("{}/{repository}:{reference}", reg.name());
    let (Ok(Manifest::Image(m)), Some(manifest)) = (
        raw.parse(),
        SourceManifest::new(&raw.media_type, &raw.bytes),
    ) else {
        warnings.push(format!("{whole} is not an image manifest: not carried"));
        return Ok(None);
    };
    let named: Vec<&Descriptor> = std::iter::once(&m.config).chain(&m.layers).collect();
    if let Some(big) = named.iter().find(|d| d.size > MAX_ATTACHED_BLOB) {
        warnings.push(format!(
            "{whole}: blob {} is {} bytes, more than the {MAX_ATTACHED_BLOB} carried inside the \
             signed manifest: not carried",
            big.digest, big.size
        ));
        return Ok(None);
    }
    let mut blobs = Vec::with_capacity(named.len());
    for d in named {
        let bytes = reg.get_blob_bytes(repository, &d.digest).await?;
        blobs.push(AttachedBlob::new(&bytes));
    }
    let tag = if reference.starts_with("sha256:") {
        manifest.digest.to_string()
    } else {
        reference.to_string()
    };
    Ok(Some(Attached {
        tag,
        manifest,
        blobs,
    }))
}

impl RegistrySource {
    /// Resolves every reference (with or without `docker://`): one connection per registry, the
    /// image manifest and its config, and with `sel.attached` the signatures, attestations and
    /// SBOMs attached to it. A reference to an index gives its platform images (every one, or
    /// those of `sel.platforms`) and the index (see [`super::registry_index`]). Several
    /// references to one image make one image with all their tags. `idle` bounds silence while a
    /// blob streams.
    pub async fn open(
        references: &[String],
        opts: &RegistryOptions,
        sel: &Selection,
        idle: Duration,
    ) -> Result<Self, RegistryError> {
        let mut conns: HashMap<String, Arc<Registry>> = HashMap::new();
        let mut src = RegistrySource {
            remotes: Vec::new(),
            indexes: Vec::new(),
            images: Vec::new(),
            idle,
            warnings: Vec::new(),
        };
        for given in references {
            let text = strip_scheme(given).unwrap_or(given.trim());
            let r = Reference::parse(text)?;
            let reg = match conns.get(&r.registry) {
                Some(c) => Arc::clone(c),
                None => {
                    let c = Arc::new(Registry::connect(&r.registry, opts).await?);
                    conns.insert(r.registry.clone(), Arc::clone(&c));
                    c
                }
            };
            let first = reg.get_manifest(&r.repository, &r.target()).await?;
            match reg.parse(&first, &r.repository, &r.target())? {
                Manifest::Image(manifest) => {
                    let resolved = ResolvedImage {
                        raw: first,
                        manifest,
                        index: None,
                    };
                    src.add(&reg, &r, text, resolved, true, sel).await?;
                }
                Manifest::Index(index) => {
                    let chosen = super::registry_index::choose(
                        &reg,
                        &r,
                        &first,
                        &index,
                        sel,
                        &mut src.warnings,
                    )
                    .await?;
                    for (digest, _) in &chosen.images {
                        let raw = reg.get_manifest(&r.repository, digest.as_str()).await?;
                        let Manifest::Image(manifest) =
                            reg.parse(&raw, &r.repository, digest.as_str())?
                        else {
                            return Err(RegistryError::Protocol {
                                registry: reg.name().to_string(),
                                what: format!("manifest {}@{digest}", r.repository),
                                reason: "an index entry points at another index".into(),
                            });
                        };
                        let resolved = ResolvedImage {
                            raw,
                            manifest,
                            index: Some(first.clone()),
                        };
                        src.add(&reg, &r, text, resolved, chosen.tagged, sel)
                            .await?;
                    }
                    src.indexes.extend(chosen.index);
                }
            }
        }
        Ok(src)
    }

    /// Adds the image `resolved` (read for reference `text`, parsed as `r`), tagged with the
    /// reference's tag when `tagged`.
    async fn add(
        &mut self,
        reg: &Arc<Registry>,
        r: &Reference,
        text: &str,
        resolved: ResolvedImage,
        tagged: bool,
        sel: &Selection,
    ) -> Result<(), RegistryError> {
        let config = reg
            .get_blob_bytes(&r.repository, &resolved.manifest.config.digest)
            .await?;
        let mut img = model(reg.name(), r, &resolved, &config)?;
        if !tagged {
            img.tags.clear();
        }
        if sel.attached {
            let digest = &resolved.raw.digest;
            img.attached = fetch_attached(reg, &r.repository, digest, &mut self.warnings).await?;
        }
        if let Some(k) = self.images.iter().position(|i| i.id == img.id) {
            img.tags.iter().for_each(|t| self.images[k].add_tag(t));
            self.remotes[k].names.push(text.to_string());
            return Ok(());
        }
        self.remotes.push(Remote {
            registry: Arc::clone(reg),
            repository: r.repository.clone(),
            names: vec![text.to_string()],
            pinned: resolved
                .index
                .as_ref()
                .map_or(&resolved.raw.digest, |i| &i.digest)
                .clone(),
            manifest: resolved.raw,
            config,
            layers: resolved.manifest.layers,
        });
        self.images.push(img);
        Ok(())
    }

    /// The references each image was resolved from, pinned to its manifest digest
    /// (`HOST/REPO:TAG@sha256:…`), for the bundle manifest.
    pub fn pinned(&self) -> Vec<String> {
        self.remotes
            .iter()
            .flat_map(|r| {
                r.names.iter().map(move |n| {
                    let base = n.split('@').next().unwrap_or(n);
                    format!("{base}@{}", r.pinned)
                })
            })
            .fold(Vec::new(), |mut out, p| {
                if !out.contains(&p) {
                    out.push(p);
                }
                out
            })
    }

    /// Every image `reference` resolved to: each platform image of an index, else the one
    /// image [`Source::find`] gives.
    pub fn find_all(&self, reference: &str) -> Vec<Image> {
        let text = strip_scheme(reference).unwrap_or(reference.trim());
        let all: Vec<Image> = self
            .remotes
            .iter()
            .zip(&self.images)
            .filter(|(r, _)| r.names.iter().any(|n| n == text))
            .map(|(_, i)| i.clone())
            .collect();
        if all.is_empty() {
            self.find(reference).into_iter().collect()
        } else {
            all
        }
    }

    /// The generated tar's parts for `wanted`: metadata, then the layer blobs `sink` needs.
    fn parts(&self, wanted: &[Image], sink: &dyn Sink) -> VecDeque<Part> {
        let mut meta = VecDeque::new();
        let mut layers = VecDeque::new();
        let mut descriptors = Vec::new();
        let mut seen: HashSet<Digest> = HashSet::new();
        let mem = |seen: &mut HashSet<Digest>, parts: &mut VecDeque<Part>, d: &Digest, b: Bytes| {
            if seen.insert(d.clone()) {
                parts.push_back(Part::mem(&format!("blobs/sha256/{}", d.hex()), b));
            }
        };
        for (img, rem) in self.images.iter().zip(&self.remotes) {
            if !wanted.iter().any(|w| w.id == img.id) {
                continue;
            }
            let m = &rem.manifest;
            let desc = |tag: Option<&String>| {
                let mut d = serde_json::json!({
                    "mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len(),
                });
                if let Some(t) = tag {
                    let short = t.rsplit_once(':').map(|(_, s)| s).unwrap_or(t);
                    d["annotations"] = serde_json::json!({
                        "io.containerd.image.name": qualified(t),
                        "org.opencontainers.image.ref.name": short,
                    });
                }
                d
            };
            if img.tags.is_empty() {
                descriptors.push(desc(None));
            }
            descriptors.extend(img.tags.iter().map(|t| desc(Some(t))));
            mem(&mut seen, &mut meta, &m.digest, m.bytes.clone());
            mem(&mut seen, &mut meta, &img.id, rem.config.clone());
            for (l, d) in img.layers.iter().zip(&rem.layers) {
                if sink.needs(&l.diff_id) && seen.insert(d.digest.clone()) {
                    layers.push_back(Part {
                        name: format!("blobs/sha256/{}", d.digest.hex()),
                        size: d.size,
                        body: Body::Remote {
                            registry: Arc::clone(&rem.registry),
                            repository: rem.repository.clone(),
                            digest: d.digest.clone(),
                        },
                    });
                }
            }
        }
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": descriptors,
        });
        let mut parts = VecDeque::new();
        parts.push_back(Part::mem(
            "oci-layout",
            Bytes::from_static(br#"{"imageLayoutVersion":"1.0.0"}"#),
        ));
        parts.push_back(Part::mem("index.json", Bytes::from(index.to_string())));
        parts.extend(meta);
        parts.extend(layers);
        parts
    }
}

impl Source for RegistrySource {
    fn blame(&self) -> super::Blame {
        super::Blame::Registry
    }

    fn label(&self) -> String {
        let names: Vec<&str> = self
            .remotes
            .iter()
            .flat_map(|r| r.names.iter().map(String::as_str))
            .collect();
        format!("{SCHEME}{}", names.join(", "))
    }

    fn images(&self) -> &[Image] {
        &self.images
    }

    fn find(&self, reference: &str) -> Option<Image> {
        let text = strip_scheme(reference).unwrap_or(reference.trim());
        if let Some(k) = self
            .remotes
            .iter()
            .position(|r| r.names.iter().any(|n| n == text))
        {
            return Some(self.images[k].clone());
        }
        let d = Digest::parse(text.rsplit('@').next().unwrap_or(text)).ok();
        if let Some(img) = d.and_then(|d| self.images.iter().find(|i| i.is_named_by(&d))) {
            return Some(img.clone());
        }
        let hex = id_hex(text)?;
        self.images
            .iter()
            .find(|i| i.id.hex().starts_with(hex))
            .cloned()
    }

    /// Must run inside the tokio runtime (e.g. on a `spawn_blocking` thread): each blob is read
    /// by a task of the runtime.
    fn stream(&self, wanted: &[Image], sink: &mut dyn Sink) -> Result<(), ArchiveError> {
        let idle = self.idle;
        let parts = self.parts(wanted, sink);
        let mut files = parts.into_iter().map(move |p| p.into_file(idle));
        sink.files(&mut files, &self.label(), None)
    }
}

/// One file handed to the engine.
struct Part {
    name: String,
    size: u64,
    body: Body,
}

enum Body {
    Mem(Bytes),
    Remote {
        registry: Arc<Registry>,
        repository: String,
        digest: Digest,
    },
}

impl Part {
    fn mem(name: &str, bytes: Bytes) -> Part {
        Part {
            name: name.to_string(),
            size: bytes.len() as u64,
            body: Body::Mem(bytes),
        }
    }

    /// The file of the part; a remote blob is requested when the engine reaches it.
    fn into_file(self, idle: Duration) -> BlobFile {
        match self.body {
            Body::Mem(b) => BlobFile::bytes(&self.name, b),
            Body::Remote {
                registry,
                repository,
                digest,
            } => BlobFile {
                name: self.name,
                size: self.size,
                open: Box::new(move || {
                    let blob = futures_util::stream::once(async move {
                        registry.get_blob(&repository, &digest).await
                    })
                    .try_flatten()
                    .boxed();
                    Ok(Box::new(ChannelReader::spawn(blob, idle)) as Box<dyn Read>)
                }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        let c = |m: &str| compression_of(m);
        assert_eq!(
            c("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            c("application/vnd.oci.image.layer.v1.tar+gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            c("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            c("application/vnd.oci.image.layer.v1.tar"),
            Some(Compression::None)
        );
        assert_eq!(c("application/vnd.oci.image.config.v1+json"), None);
        assert_eq!(strip_scheme(" docker://r:5000/a:1"), Some("r:5000/a:1"));
        assert_eq!(strip_scheme("a:1"), None);
    }

    #[test]
    fn models_need_matching_layers() {
        let diff = Digest::of_bytes(b"layer");
        let config = serde_json::to_vec(&serde_json::json!({
            "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]}
        }))
        .unwrap();
        let manifest = crate::registry::ImageManifest {
            schema_version: 2,
            media_type: None,
            config: Descriptor::new("x", Digest::of_bytes(&config), config.len() as u64),
            layers: vec![Descriptor::new(
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                Digest::of_bytes(b"gz"),
                2,
            )],
            annotations: None,
        };
        let resolved = ResolvedImage {
            raw: RawManifest::new("x", Bytes::from_static(b"{}")),
            manifest: manifest.clone(),
            index: None,
        };
        let r = Reference::parse("127.0.0.1:5000/app:2").unwrap();
        let img = model("127.0.0.1:5000", &r, &resolved, &config).unwrap();
        assert_eq!(img.tags, ["127.0.0.1:5000/app:2"]);
        assert_eq!(img.id, Digest::of_bytes(&config));
        assert_eq!(img.layers[0].blob.compression, Compression::Gzip);
        assert!(img.is_named_by(&resolved.raw.digest));
        let mut two = resolved.clone();
        two.manifest.layers.push(manifest.layers[0].clone());
        let e = model("127.0.0.1:5000", &r, &two, &config).unwrap_err();
        assert!(e.to_string().contains("2 layers"), "{e}");
    }
}
