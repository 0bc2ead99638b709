//! The base check against a registry: every layer position a bundle image does not carry must
//! be a chain some image of the registry has, and the blob descriptor at that position of that
//! image's manifest is what the pushed manifest references. Images are looked for in
//! `--base-repo` repositories, else the repositories the bundle's images go to and those named
//! by the `required_base` origins, else (when chains are still missing) the whole catalog.

use super::target::{repository_path, target_of};
use crate::base::{self, Place};
use crate::registry_images::{self, RegistryImage};
use anyhow::Result;
use partial_common::manifest::BundleManifest;
use partial_common::registry::{Descriptor, Destination, Registry};
use partial_common::Digest;
use std::collections::{BTreeSet, HashMap};

/// Where a chain was found: the repository holding it and the layer blob at its position.
#[derive(Debug, Clone)]
pub struct BaseLayer {
    pub repository: String,
    pub descriptor: Descriptor,
}

/// The chains found in the registry.
#[derive(Debug, Default)]
pub struct BaseIndex {
    pub chains: HashMap<Digest, BaseLayer>,
}

impl BaseIndex {
    fn add(&mut self, image: &RegistryImage) {
        for (chain, desc) in image.chain_ids.iter().zip(&image.manifest.layers) {
            self.chains
                .entry(chain.clone())
                .or_insert_with(|| BaseLayer {
                    repository: image.repository.clone(),
                    descriptor: desc.clone(),
                });
        }
    }
}

/// Every chain a bundle image needs and does not carry.
fn needed(manifest: &BundleManifest) -> BTreeSet<&Digest> {
    manifest
        .images
        .iter()
        .flat_map(|i| i.layers.iter().filter(|l| !l.carried).map(|l| &l.chain_id))
        .collect()
}

/// The repositories to look in first when no `--base-repo` is given: those the bundle's `tags`
/// go to, then those of the base images it was made against (`origins`), with and without the
/// destination's prefix.
fn default_repos<'a>(
    tags: impl Iterator<Item = &'a str>,
    origins: impl Iterator<Item = &'a str>,
    dest: &Destination,
) -> Vec<String> {
    let mut repos = Vec::new();
    for t in tags {
        if let Ok(t) = target_of(dest, t) {
            repos.push(t.repository);
        }
    }
    for o in origins {
        if let Some((path, _)) = repository_path(o) {
            repos.push(dest.repository_for(&path));
            repos.push(path);
        }
    }
    let mut seen = BTreeSet::new();
    repos.retain(|r| seen.insert(r.clone()));
    repos
}

/// Looks in `repos` until every needed chain is found.
async fn search(
    registry: &Registry,
    repos: &[String],
    needed: &BTreeSet<&Digest>,
    index: &mut BaseIndex,
) -> Result<()> {
    for repo in repos {
        if needed.iter().all(|c| index.chains.contains_key(*c)) {
            break;
        }
        for image in registry_images::images_of(registry, repo).await? {
            index.add(&image);
        }
    }
    Ok(())
}

/// Finds every needed chain in the registry; a missing one is exit 4 naming the base image.
pub async fn check(
    registry: &Registry,
    manifest: &BundleManifest,
    dest: &Destination,
    base_repos: &[String],
) -> Result<BaseIndex> {
    let needed = needed(manifest);
    let mut index = BaseIndex::default();
    if needed.is_empty() {
        return Ok(index);
    }
    if base_repos.is_empty() {
        let tags = manifest.images.iter().flat_map(|i| i.tags.iter());
        let origins = manifest.required_base.iter().map(|r| r.origin.image());
        let repos = default_repos(tags.map(String::as_str), origins, dest);
        search(registry, &repos, &needed, &mut index).await?;
        if needed.iter().any(|c| !index.chains.contains_key(*c)) {
            if let Some(all) = registry_images::catalog(registry).await? {
                search(registry, &all, &needed, &mut index).await?;
            }
        }
    } else {
        search(registry, base_repos, &needed, &mut index).await?;
    }
    let missing: Vec<&Digest> = needed
        .into_iter()
        .filter(|c| !index.chains.contains_key(*c))
        .collect();
    if missing.is_empty() {
        return Ok(index);
    }
    Err(missing_error(registry, manifest, &missing))
}

/// The base check's error: the chains `missing` are in no image of the registry.
fn missing_error(
    registry: &Registry,
    manifest: &BundleManifest,
    missing: &[&Digest],
) -> anyhow::Error {
    let name = registry.name();
    let place = Place {
        name: format!("the registry {name} (in no image of it)"),
        put: "push",
        onto: format!("to {name}"),
        otherwise: format!(
            "name its repository with --base-repo, or export again against \
             `partial-load inventory --registry {name}`"
        ),
    };
    base::missing_error(manifest, missing, &place)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_looked_for_where_the_images_go_and_where_their_bases_are() {
        let dest = Destination::parse("127.0.0.1:5000/mirror").unwrap();
        let repos = default_repos(
            ["app:2", "app:latest", "team/svc:1"].into_iter(),
            ["app:1", "base:1"].into_iter(),
            &dest,
        );
        assert_eq!(
            repos,
            [
                "mirror/app",
                "mirror/team/svc",
                "app",
                "mirror/base",
                "base"
            ]
        );
    }
}
