//! Working out what to export and what the destination already has. The images come from one
//! kind of [`Source`]: the live daemon (`-i` inspected there, never pulled), or archive files
//! (`--from-archive`, every writer auto-detected) and OCI layout directories (`--from-oci`).
//! What the destination holds is one have-set fed by `-e` images (on the daemon or inside the
//! inputs), inventories (`--have`) and base archives or layouts (`--exclude-archive`,
//! `--exclude-oci`).

use crate::cli::{RegistryArgs, SaveArgs};
use anyhow::{bail, Context, Result};
use partial_common::daemon::Daemon;
use partial_common::exit::{self, Coded};
use partial_common::have::{HaveSet, Origin};
use partial_common::image::{Image, Platform};
use partial_common::inventory::Inventory;
use partial_common::registry::{Credentials, RegistryOptions, TransportOptions};
use partial_common::source::{
    strip_scheme, ArchiveSource, DaemonSource, OciDirSource, RegistrySource, Selection, Source,
};
use partial_common::Digest;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The platforms given with `--platform` (none: every platform of a registry index).
pub fn platforms(args: &SaveArgs) -> Result<Vec<Platform>> {
    args.platform
        .iter()
        .map(|p| {
            Platform::parse(p)
                .with_context(|| format!("--platform {p:?}: use OS/ARCH or OS/ARCH/VARIANT"))
        })
        .collect()
}

/// The platform followed in the nested indexes of archives and layouts, which export one
/// platform of them (a multi-platform index travels whole, see `crate::layout_indexes`):
/// the first `--platform`, else this machine's.
pub fn platform(args: &SaveArgs) -> Result<Platform> {
    Ok(platforms(args)?
        .into_iter()
        .next()
        .unwrap_or_else(Platform::host))
}

/// Whether the images come from files (archives or layouts) rather than a daemon.
pub fn offline(args: &SaveArgs) -> bool {
    !args.from_archive.is_empty() || !args.from_oci.is_empty()
}

/// Opens the offline inputs: archive files, then OCI layout directories.
pub fn open_files(args: &SaveArgs, platform: &Platform) -> Result<Vec<Box<dyn Source>>> {
    let mut out: Vec<Box<dyn Source>> = Vec::new();
    for path in &args.from_archive {
        let s = ArchiveSource::open(path, Some(platform))
            .with_context(|| format!("archive {}", path.display()))
            .map_err(crate::bad_input)?;
        out.push(Box::new(s));
    }
    for dir in &args.from_oci {
        let s = OciDirSource::open(dir, Some(platform))
            .with_context(|| format!("OCI layout {}", dir.display()))
            .map_err(crate::bad_input)?;
        out.push(Box::new(s));
    }
    Ok(out)
}

/// Opens the daemon source with the `-i` images inspected.
pub async fn open_daemon(daemon: Daemon, images: &[String], idle: u64) -> Result<DaemonSource> {
    DaemonSource::open(daemon, images, Duration::from_secs(idle))
        .await
        .map_err(|e| crate::maybe_daemon_failure(e.into()))
}

/// The first image `reference` names in `sources`.
fn find(sources: &[Box<dyn Source>], reference: &str) -> Option<Image> {
    sources.iter().find_map(|s| s.find(reference))
}

fn list_labels(sources: &[Box<dyn Source>]) -> String {
    sources
        .iter()
        .map(|s| s.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The images `name` names in offline `sources`: every platform image of a multi-platform
/// index, else the one image.
fn find_all(sources: &[Box<dyn Source>], name: &str) -> Vec<Image> {
    let every = Selection::default();
    let index = sources
        .iter()
        .find_map(|s| s.find_index(name, &every).ok().flatten());
    match index {
        Some(c) => c.images,
        None => find(sources, name).into_iter().collect(),
    }
}

/// Adds the `-e` images found in offline `sources` to `have` (every platform of an index);
/// returns their IDs.
pub fn offline_excludes(
    sources: &[Box<dyn Source>],
    excludes: &[String],
    have: &mut HaveSet,
) -> Result<Vec<Digest>> {
    let mut ids = Vec::new();
    for name in excludes {
        let found = find_all(sources, name);
        if found.is_empty() {
            bail!(
                "-e {name}: no such image in the inputs given with --from-archive/--from-oci ({})",
                list_labels(sources)
            );
        }
        for img in found {
            have.add_image(
                &img.diff_ids(),
                &Origin::Image {
                    name: name.clone(),
                    image_id: img.id.clone(),
                },
            );
            ids.push(img.id);
        }
    }
    Ok(ids)
}

/// The images to export from offline `sources`: the `-i` ones, or all but `excluded`, with
/// those of the `picked` indexes (which are not exported again one by one).
pub fn offline_wanted(
    sources: &[Box<dyn Source>],
    images: &[String],
    excluded: &[Digest],
    platform: &Platform,
    picked: &crate::layout_indexes::Picked,
) -> Result<Vec<Image>> {
    let mut out: Vec<Image> = picked.images.clone();
    let images: Vec<&String> = images
        .iter()
        .filter(|n| !picked.names.contains(n))
        .collect();
    if picked.names.is_empty() && images.is_empty() {
        for img in sources.iter().flat_map(|s| s.images()) {
            let skip = excluded.contains(&img.id) || picked.covers(img);
            if !skip && !out.iter().any(|o| o.id == img.id) {
                out.push(img.clone());
            }
        }
        if out.is_empty() {
            bail!(
                "nothing to export: every image in {} is excluded",
                list_labels(sources)
            );
        }
        return Ok(out);
    }
    for name in images {
        let Some(img) = find(sources, name) else {
            bail!(
                "-i {name}: no such image in the inputs given with --from-archive/--from-oci ({}; \
                 platform {platform} in multi-platform indexes)",
                list_labels(sources)
            );
        };
        merge(&mut out, img);
    }
    Ok(out)
}

/// Adds `img` to `out`, or its tags to the same image already there.
pub fn merge(out: &mut Vec<Image>, img: Image) {
    match out.iter_mut().find(|o| o.id == img.id) {
        Some(o) => img.tags.iter().for_each(|t| o.add_tag(t)),
        None => out.push(img),
    }
}

/// Adds the `-e` images, inspected on the daemon, to `have`.
pub async fn live_excludes(daemon: &Daemon, names: &[String], have: &mut HaveSet) -> Result<()> {
    for name in names {
        let meta = daemon
            .require(name)
            .await
            .with_context(|| format!("-e {name}"))?;
        have.add_image(
            &meta.diff_ids,
            &Origin::Image {
                name: name.clone(),
                image_id: meta.id,
            },
        );
    }
    Ok(())
}

/// Adds every `--have` inventory to `have`.
pub fn add_inventories(files: &[PathBuf], have: &mut HaveSet) -> Result<()> {
    for f in files {
        let label = f.display().to_string();
        let inv = Inventory::read(f).map_err(|e| {
            let code = Inventory::exit_code(&e);
            anyhow::Error::new(Coded::new(code, e))
        })?;
        inv.add_to(have, &label);
    }
    Ok(())
}

/// Adds every image of the base archives (`--exclude-archive`) and base layouts
/// (`--exclude-oci`) to `have`: every platform of multi-platform ones.
pub fn add_bases(archives: &[PathBuf], layouts: &[PathBuf], have: &mut HaveSet) -> Result<()> {
    let add = |label: &Path, src: &dyn Source, have: &mut HaveSet| {
        for img in src.images() {
            have.add_image(
                &img.diff_ids(),
                &Origin::Archive {
                    file: label.display().to_string(),
                    image: img.name(),
                    image_id: img.id.clone(),
                },
            );
        }
    };
    for path in archives {
        let src = ArchiveSource::open(path, None)
            .with_context(|| format!("--exclude-archive {}", path.display()))
            .map_err(crate::bad_input)?;
        add(path, &src, have);
    }
    for dir in layouts {
        let src = OciDirSource::open(dir, None)
            .with_context(|| format!("--exclude-oci {}", dir.display()))
            .map_err(crate::bad_input)?;
        add(dir, &src, have);
    }
    Ok(())
}

/// Splits references into registry ones (`docker://…`) and the others, keeping their order.
pub fn split_registry(refs: &[String]) -> (Vec<String>, Vec<String>) {
    refs.iter()
        .cloned()
        .partition(|r| strip_scheme(r).is_some())
}

/// The registry client options of the flags: `--username` with the password read from standard
/// input, else Docker's `config.json` (read by the client).
pub fn registry_options(args: &RegistryArgs, idle: u64) -> Result<RegistryOptions> {
    let credentials = match &args.username {
        Some(user) => Some(
            Credentials::from_password_input(user, std::io::stdin())
                .map_err(|e| anyhow::Error::new(Coded::new(exit::USAGE, e)))?,
        ),
        None => None,
    };
    Ok(RegistryOptions {
        transport: TransportOptions {
            insecure: args.insecure,
            ca_files: args.ca_files.clone(),
            idle_timeout: Duration::from_secs(idle),
            ..TransportOptions::default()
        },
        credentials,
        allow_realms: args.allow_realms.clone(),
    })
}

/// Resolves `docker://` references in their registries (`what`, e.g. `-i`, names the flag in
/// messages), with the manifests attached to them when `attached`; says what was left out.
pub async fn open_registry(
    refs: &[String],
    opts: &RegistryOptions,
    sel: &Selection,
    idle: u64,
    what: &str,
) -> Result<RegistrySource> {
    let src = RegistrySource::open(refs, opts, sel, Duration::from_secs(idle))
        .await
        .map_err(|e| {
            crate::registry_failure(e).context(format!("resolving {what} {}", refs.join(" ")))
        })?;
    for w in &src.warnings {
        eprintln!("warning: {}", partial_common::text::escape(w));
    }
    Ok(src)
}

/// Adds the `-e docker://…` images, resolved in `src`, to `have`.
pub fn registry_excludes(src: &RegistrySource, names: &[String], have: &mut HaveSet) -> Result<()> {
    for name in names {
        let images = src.find_all(name); // every platform of an index
        if images.is_empty() {
            bail!("-e {name}: not resolved in its registry");
        }
        for img in images {
            have.add_image(
                &img.diff_ids(),
                &Origin::Image {
                    name: strip_scheme(name).unwrap_or(name).to_string(),
                    image_id: img.id.clone(),
                },
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_inventory_is_bad_input_naming_file_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("have.json");
        std::fs::File::create(&p)
            .unwrap()
            .set_len(partial_common::limits::INVENTORY + 1)
            .unwrap();
        let e = add_inventories(&[p], &mut HaveSet::new()).unwrap_err();
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY);
        let text = format!("{e:#}");
        assert!(
            text.contains("have.json") && text.contains("limit of 64 MiB"),
            "{text}"
        );
    }

    use clap::Parser;

    #[test]
    fn allow_realm_reaches_the_registry_options() {
        let cli = crate::cli::Cli::try_parse_from([
            "partial-save",
            "-i",
            "docker://reg.local:5000/app:1",
            "--allow-realm",
            "auth.local:5001",
            "--allow-realm",
            "[::1]",
        ])
        .unwrap();
        let opts = registry_options(&cli.save.registry, 60).unwrap();
        assert_eq!(opts.allow_realms, ["auth.local:5001", "[::1]"]);
        let bad = ["partial-save", "--allow-realm", "auth.local:x"];
        assert!(crate::cli::Cli::try_parse_from(bad).is_err());
    }
}
