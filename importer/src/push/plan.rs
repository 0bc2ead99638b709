//! What the registry lacks before the bundle is read. An image whose every tag already names a
//! manifest of it (its config, as many layers) is there: nothing is pushed for it (so a rerun
//! uploads nothing and compresses nothing). For the others, each config and carried layer blob
//! pushed as stored is HEADed in every repository an image goes to (present ones are never sent
//! again; absent ones are mounted when a repository of the base images has them, e.g. from an
//! earlier push under another prefix); carried layers pushed compressed are HEADed only once
//! compressed, their digest being unknown until then; and each base layer is made present in the
//! target repository (HEAD, else a cross-repository mount from the repository whose image holds
//! it). `--jobs` requests at a time.

use super::base::BaseIndex;
use super::manifests::{carried_blob, stored_uncompressed};
use super::target::Target;
use crate::registry_connect::registry_err;
use anyhow::{anyhow, Result};
use futures_util::{StreamExt, TryStreamExt};
use partial_common::manifest::{BundleManifest, Image};
use partial_common::registry::{BlobOutcome, Manifest, MountOutcome, Registry, RegistryError};
use partial_common::Digest;
use std::collections::{BTreeSet, HashMap};

/// The blobs to read from the bundle and the ones to upload.
pub struct PushPlan {
    /// Those pushed as stored that some target repository lacks, with the repositories lacking
    /// them.
    pub missing: HashMap<Digest, Vec<String>>,
    /// Uncompressed carried layers pushed gzip-compressed, with every repository they go to.
    pub compress: HashMap<Digest, Vec<String>>,
    /// Per image: the digest of the manifest its tags already name when it is in the registry.
    pub present: Vec<Option<Digest>>,
    /// Repositories of the registry's base images (to mount compressed layers from).
    pub holders: Vec<String>,
    /// Blobs mounted into a target repository (base layers, and carried blobs found elsewhere).
    pub mounted: usize,
}

pub async fn plan(
    registry: &Registry,
    manifest: &BundleManifest,
    targets: &[Vec<Target>],
    base: &BaseIndex,
    jobs: usize,
    compress_layers: bool,
) -> Result<PushPlan> {
    let present: Vec<Option<Digest>> =
        futures_util::stream::iter(manifest.images.iter().zip(targets))
            .map(|(image, targets)| already_there(registry, image, targets))
            .buffered(jobs)
            .try_collect()
            .await?;
    let wanted = Wanted::of(manifest, targets, &present, compress_layers);
    let absent = absent_blobs(registry, wanted.own, jobs).await?;
    let holders: BTreeSet<&str> = base
        .chains
        .values()
        .map(|b| b.repository.as_str())
        .collect();
    let (mut mounted, missing) = mount_absent(registry, absent, &holders, jobs).await?;
    mounted += mount_bases(registry, base, wanted.based, jobs).await?;
    Ok(PushPlan {
        missing,
        compress: wanted
            .compress
            .into_iter()
            .map(|(d, repos)| (d, repos.into_iter().collect()))
            .collect(),
        present,
        holders: holders.into_iter().map(str::to_string).collect(),
        mounted,
    })
}

/// What the push needs in the registry, from the bundle manifest alone.
struct Wanted {
    /// (repository, blob) from the bundle, pushed as stored.
    own: BTreeSet<(String, Digest)>,
    /// (repository, chain) from the registry's base images.
    based: BTreeSet<(String, Digest)>,
    /// Uncompressed carried blobs to gzip on the way, and the repositories they go to.
    compress: HashMap<Digest, BTreeSet<String>>,
}

impl Wanted {
    /// For each image not already `present`, into each of its targets' repositories.
    fn of(
        manifest: &BundleManifest,
        targets: &[Vec<Target>],
        present: &[Option<Digest>],
        compress_layers: bool,
    ) -> Wanted {
        let mut w = Wanted {
            own: BTreeSet::new(),
            based: BTreeSet::new(),
            compress: HashMap::new(),
        };
        for ((image, targets), present) in manifest.images.iter().zip(targets).zip(present) {
            if present.is_some() {
                continue;
            }
            let repos: BTreeSet<&str> = targets.iter().map(|t| t.repository.as_str()).collect();
            for repo in repos {
                w.add(repo, image, compress_layers);
            }
        }
        w
    }

    /// An image with a source manifest (from a registry or an OCI layout) has its uncompressed
    /// layers pushed as they are: gzip would give them other digests than the manifest names.
    fn add(&mut self, repo: &str, image: &Image, compress_layers: bool) {
        let keeps_manifest = image.source_manifest.is_some();
        self.own.insert((repo.to_string(), image.id.clone()));
        for layer in &image.layers {
            if !layer.carried {
                self.based
                    .insert((repo.to_string(), layer.chain_id.clone()));
            } else if compress_layers && stored_uncompressed(layer) && !keeps_manifest {
                let repos = self.compress.entry(carried_blob(layer).0).or_default();
                repos.insert(repo.to_string());
            } else {
                self.own.insert((repo.to_string(), carried_blob(layer).0));
            }
        }
    }
}

/// The (repository, blob) pairs of `own` the registry lacks (HEAD, `jobs` at a time).
async fn absent_blobs(
    registry: &Registry,
    own: BTreeSet<(String, Digest)>,
    jobs: usize,
) -> Result<Vec<(String, Digest)>> {
    futures_util::stream::iter(own)
        .map(|(repo, digest)| async move {
            let found = registry.blob_exists(&repo, &digest).await;
            found.map(|f| f.is_none().then_some((repo, digest)))
        })
        .buffer_unordered(jobs)
        .try_filter_map(|x| async move { Ok(x) })
        .try_collect()
        .await
        .map_err(registry_err)
}

/// Mounts each absent blob from a repository holding base images where the registry has it;
/// returns how many were mounted and, for the rest, blob → the repositories that still lack it.
async fn mount_absent(
    registry: &Registry,
    absent: Vec<(String, Digest)>,
    holders: &BTreeSet<&str>,
    jobs: usize,
) -> Result<(usize, HashMap<Digest, Vec<String>>)> {
    let tried: Vec<Option<(String, Digest)>> = futures_util::stream::iter(absent)
        .map(|(repo, digest)| async move {
            let mounted = mount_from_any(registry, &repo, &digest, holders).await?;
            Ok::<_, anyhow::Error>((!mounted).then_some((repo, digest)))
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    let mut mounted = 0;
    let mut missing: HashMap<Digest, Vec<String>> = HashMap::new();
    for t in tried {
        match t {
            Some((repo, digest)) => missing.entry(digest).or_default().push(repo),
            None => mounted += 1,
        }
    }
    for repos in missing.values_mut() {
        repos.sort();
    }
    Ok((mounted, missing))
}

/// The digest of the manifest every tag of `image` names when they all name one of this image
/// (same config, as many layers); `None` when a tag is absent or names something else.
async fn already_there(
    registry: &Registry,
    image: &Image,
    targets: &[Target],
) -> Result<Option<Digest>> {
    let mut found = None;
    for t in targets {
        let raw = match registry.get_manifest(&t.repository, &t.tag).await {
            Ok(raw) => raw,
            Err(RegistryError::NoManifest { .. } | RegistryError::NoRepository { .. }) => {
                return Ok(None)
            }
            Err(e) => return Err(registry_err(e)),
        };
        match raw.parse() {
            Ok(Manifest::Image(m))
                if m.config.digest == image.id && m.layers.len() == image.layers.len() =>
            {
                found.get_or_insert(raw.digest);
            }
            _ => return Ok(None),
        }
    }
    Ok(found)
}

/// Tries to mount `digest` into `repo` from each repository of the registry's base images (a
/// carried layer or config pushed there before, e.g. under another prefix); true when one did.
async fn mount_from_any(
    registry: &Registry,
    repo: &str,
    digest: &Digest,
    holders: &BTreeSet<&str>,
) -> Result<bool> {
    for from in holders.iter().filter(|h| **h != repo) {
        match registry
            .mount_blob(repo, digest, from)
            .await
            .map_err(registry_err)?
        {
            MountOutcome::Mounted => return Ok(true),
            MountOutcome::NotMounted(session) => registry.cancel_upload(session).await,
        }
    }
    Ok(false)
}

/// Makes every base layer present in the repositories that reference it; returns how many were
/// mounted.
async fn mount_bases(
    registry: &Registry,
    base: &BaseIndex,
    based: BTreeSet<(String, Digest)>,
    jobs: usize,
) -> Result<usize> {
    let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(based)
        .map(|(repo, chain)| async move {
            let found = base
                .chains
                .get(&chain)
                .ok_or_else(|| anyhow!("chain {chain} was not found in the registry"))?;
            let d = &found.descriptor;
            let from = [found.repository.as_str()];
            registry
                .ensure_blob(&repo, &d.digest, Some(d.size), &from, || async {
                    Err::<tokio::io::Empty, _>(std::io::Error::other(format!(
                        "base layer {} is in {} but the registry would not mount it into {repo}",
                        d.digest, found.repository
                    )))
                })
                .await
                .map_err(registry_err)
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    Ok(outcomes
        .iter()
        .filter(|o| matches!(o, BlobOutcome::Mounted { .. }))
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::image::SourceManifest;
    use partial_common::manifest::Layer;

    #[test]
    fn uncompressed_layers_are_gzipped_unless_the_image_keeps_its_source_manifest() {
        let diff = Digest::of_bytes(b"layer");
        let mut image = Image {
            id: Digest::of_bytes(b"config"),
            tags: vec!["app:2".into()],
            layers: vec![Layer {
                diff_id: diff.clone(),
                chain_id: diff.clone(),
                size: None,
                carried: true,
                blob: None,
                delta: None,
            }],
            source_manifest: None,
            attached: Vec::new(),
        };
        let wanted = |image: &Image, compress_layers: bool| {
            let mut w = Wanted {
                own: BTreeSet::new(),
                based: BTreeSet::new(),
                compress: HashMap::new(),
            };
            w.add("app", image, compress_layers);
            w
        };
        let w = wanted(&image, true);
        assert!(w.compress.contains_key(&diff), "gzipped on the way");
        assert!(!w.own.contains(&("app".to_string(), diff.clone())));
        assert!(wanted(&image, false).compress.is_empty());
        image.source_manifest = SourceManifest::new("application/json", b"{}");
        let w = wanted(&image, true);
        assert!(w.compress.is_empty(), "kept as stored, so the digest holds");
        assert!(w.own.contains(&("app".to_string(), diff)));
    }
}
