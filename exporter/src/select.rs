//! Working out what to export and what the destination already has: from a live daemon
//! (`-i`/`-e` inspected there, never pulled) or from archive files (offline mode), plus inventory
//! files (`--have`) and base archives (`--exclude-archive`).

use anyhow::{bail, Context, Result};
use partial_common::archive::{self, ArchiveIndex, SourceImage};
use partial_common::daemon::Daemon;
use partial_common::have::{HaveSet, Origin};
use partial_common::inventory::Inventory;
use std::path::{Path, PathBuf};

/// Normalises an image reference the way Docker names tags: `app` → `app:latest`,
/// `docker.io/library/app:1` → `app:1`. Returns `None` for IDs and digest references, which
/// name no tag.
pub fn tag_of(reference: &str) -> Option<String> {
    if reference.contains('@') || reference.starts_with("sha256:") {
        return None;
    }
    if reference.len() >= 12 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut r = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference)
        .to_string();
    let last = r.rsplit('/').next().unwrap_or(&r);
    if !last.contains(':') {
        r.push_str(":latest");
    }
    Some(r)
}

/// The images to export, inspected on the daemon. Several names for one image become one image
/// with all the requested tags.
pub async fn live_sources(daemon: &Daemon, names: &[String]) -> Result<Vec<SourceImage>> {
    let mut out: Vec<SourceImage> = Vec::new();
    for name in names {
        let meta = daemon.require(name).await?;
        let tag = tag_of(name).filter(|t| meta.tags.contains(t));
        match out.iter_mut().find(|s| s.id == meta.id) {
            Some(s) => {
                if let Some(t) = tag {
                    if !s.tags.contains(&t) {
                        s.tags.push(t);
                    }
                }
            }
            None => out.push(SourceImage {
                id: meta.id,
                tags: tag.into_iter().collect(),
                diff_ids: meta.diff_ids,
            }),
        }
    }
    Ok(out)
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
        let bytes = std::fs::read(f).with_context(|| format!("reading inventory {label}"))?;
        let inv = Inventory::parse(&bytes, &label)?;
        inv.add_to(have, &label);
    }
    Ok(())
}

/// Opens an archive file as a plain tar stream, undoing gzip or zstd.
pub fn open_archive(path: &Path) -> Result<Box<dyn std::io::Read + Send>> {
    let f =
        std::fs::File::open(path).with_context(|| format!("opening archive {}", path.display()))?;
    let r = partial_common::codec::decompress(std::io::BufReader::with_capacity(1 << 20, f))
        .with_context(|| format!("reading archive {}", path.display()))?;
    Ok(r)
}

/// Reads the metadata of an archive file.
pub fn scan_file(path: &Path) -> Result<ArchiveIndex> {
    let r = open_archive(path)?;
    archive::scan(r).with_context(|| format!("archive {}", path.display()))
}

/// An archive given with `--from-archive`, scanned.
pub struct InputArchive {
    pub path: PathBuf,
    pub index: ArchiveIndex,
}

/// Offline mode: the images to export from the input archives, and the `-e` / `--exclude-archive`
/// images added to `have`.
pub fn offline_selection(
    inputs: &[InputArchive],
    images: &[String],
    excludes: &[String],
    exclude_archives: &[PathBuf],
    have: &mut HaveSet,
) -> Result<Vec<SourceImage>> {
    let find = |reference: &str| -> Option<(&InputArchive, &archive::IndexedImage)> {
        inputs
            .iter()
            .find_map(|a| a.index.find(reference).map(|img| (a, img)))
    };
    let mut excluded_ids = Vec::new();
    for name in excludes {
        let Some((a, img)) = find(name) else {
            bail!(
                "-e {name}: no such image in the archives given with --from-archive ({})",
                list_paths(inputs)
            );
        };
        let _ = a;
        excluded_ids.push(img.source.id.clone());
        have.add_image(
            &img.source.diff_ids,
            &Origin::Image {
                name: name.clone(),
                image_id: img.source.id.clone(),
            },
        );
    }
    for path in exclude_archives {
        let index = scan_file(path)?;
        let label = path.display().to_string();
        for img in &index.images {
            let name = img
                .source
                .tags
                .first()
                .cloned()
                .unwrap_or_else(|| img.source.id.to_string());
            have.add_image(
                &img.source.diff_ids,
                &Origin::Archive {
                    file: label.clone(),
                    image: name,
                    image_id: img.source.id.clone(),
                },
            );
        }
    }
    let mut out: Vec<SourceImage> = Vec::new();
    if images.is_empty() {
        for a in inputs {
            for img in &a.index.images {
                if !excluded_ids.contains(&img.source.id)
                    && !out.iter().any(|s| s.id == img.source.id)
                {
                    out.push(img.source.clone());
                }
            }
        }
        if out.is_empty() {
            bail!(
                "nothing to export: every image in {} is excluded",
                list_paths(inputs)
            );
        }
    } else {
        for name in images {
            let Some((_, img)) = find(name) else {
                bail!(
                    "-i {name}: no such image in the archives given with --from-archive ({})",
                    list_paths(inputs)
                );
            };
            let tag = tag_of(name).filter(|t| img.source.tags.contains(t));
            match out.iter_mut().find(|s| s.id == img.source.id) {
                Some(s) => {
                    if let Some(t) = tag {
                        if !s.tags.contains(&t) {
                            s.tags.push(t);
                        }
                    }
                }
                None => {
                    let mut s = img.source.clone();
                    // Keep only the requested tag when one was named; all tags for an ID.
                    if let Some(t) = tag {
                        s.tags = vec![t];
                    }
                    out.push(s);
                }
            }
        }
    }
    Ok(out)
}

fn list_paths(inputs: &[InputArchive]) -> String {
    inputs
        .iter()
        .map(|a| a.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::tag_of;

    #[test]
    fn tags_are_normalised_like_docker() {
        assert_eq!(tag_of("app").as_deref(), Some("app:latest"));
        assert_eq!(tag_of("app:2").as_deref(), Some("app:2"));
        assert_eq!(tag_of("docker.io/library/app:2").as_deref(), Some("app:2"));
        assert_eq!(
            tag_of("registry:5000/team/app").as_deref(),
            Some("registry:5000/team/app:latest")
        );
        assert_eq!(tag_of("sha256:abcdef"), None);
        assert_eq!(tag_of("0123456789abcdef"), None);
        assert_eq!(tag_of("app@sha256:00"), None);
    }
}
