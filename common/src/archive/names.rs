//! Entry names: refusing names that escape the archive, and sorting entries into the roles the
//! three `docker save` layouts give them (layer folders, configs, blobs, top-level metadata).

use super::ArchiveError;
use crate::digest::{is_sha256_hex, Digest};

/// Where an entry sits in a `docker save` archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryRole {
    /// `manifest.json`
    Manifest,
    /// `repositories`
    Repositories,
    /// `index.json`
    Index,
    /// `oci-layout`
    OciLayout,
    /// `<hex>.json` at the top: a legacy image config.
    LegacyConfig(Digest),
    /// `<v1id>/` itself.
    FolderDir(String),
    /// `<v1id>/layer.tar`.
    FolderLayer(String),
    /// `<v1id>/json`.
    FolderJson(String),
    /// Any other file in `<v1id>/` (`VERSION`).
    FolderOther(String),
    /// `blobs/sha256/<hex>`.
    Blob(Digest),
    /// `blobs/`, `blobs/sha256/` and anything else.
    Other,
}

/// Strips a leading `./`; refuses absolute names and names with `..` components.
pub fn clean_name(name: &str) -> Result<String, ArchiveError> {
    let n = name.strip_prefix("./").unwrap_or(name);
    if n.starts_with('/') || n.split('/').any(|c| c == "..") {
        return Err(ArchiveError::UnsafeName(name.to_string()));
    }
    Ok(n.to_string())
}

/// Checks that a symlink target stays inside the archive when resolved from `entry`'s folder.
pub(crate) fn resolve_link(entry: &str, target: &str) -> Result<String, ArchiveError> {
    if target.starts_with('/') {
        return Err(ArchiveError::UnsafeName(format!("{entry} -> {target}")));
    }
    let mut parts: Vec<&str> = entry.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ArchiveError::UnsafeName(format!("{entry} -> {target}")));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// The role of a (cleaned) entry name.
pub fn role_of(name: &str) -> EntryRole {
    let trimmed = name.trim_end_matches('/');
    match trimmed {
        "manifest.json" => return EntryRole::Manifest,
        "repositories" => return EntryRole::Repositories,
        "index.json" => return EntryRole::Index,
        "oci-layout" => return EntryRole::OciLayout,
        _ => {}
    }
    if let Some(hex) = trimmed.strip_prefix("blobs/sha256/") {
        if let Ok(d) = Digest::from_hex(hex) {
            return EntryRole::Blob(d);
        }
        return EntryRole::Other;
    }
    if let Some(hex) = trimmed.strip_suffix(".json") {
        if let Ok(d) = Digest::from_hex(hex) {
            return EntryRole::LegacyConfig(d);
        }
    }
    // go-containerregistry tarballs name the config `sha256:<hex>`.
    if let Some(hex) = trimmed.strip_prefix("sha256:") {
        if let Ok(d) = Digest::from_hex(hex) {
            return EntryRole::LegacyConfig(d);
        }
    }
    let mut it = trimmed.splitn(2, '/');
    let first = it.next().unwrap_or_default();
    if is_sha256_hex(first) {
        let folder = first.to_string();
        return match it.next() {
            None => EntryRole::FolderDir(folder),
            Some("layer.tar") => EntryRole::FolderLayer(folder),
            Some("json") => EntryRole::FolderJson(folder),
            Some(_) => EntryRole::FolderOther(folder),
        };
    }
    EntryRole::Other
}

/// The digest a top-level layer file name claims: `<hex>.tar`, `<hex>.tar.gz`, `<hex>.tar.zst`
/// (containers/image and go-containerregistry archives) or `blobs/sha256/<hex>`.
pub fn named_digest(name: &str) -> Option<Digest> {
    if let EntryRole::Blob(d) = role_of(name) {
        return Some(d);
    }
    if name.contains('/') {
        return None;
    }
    let stem = name
        .strip_suffix(".tar")
        .or_else(|| name.strip_suffix(".tar.gz"))
        .or_else(|| name.strip_suffix(".tar.zst"))
        .or_else(|| name.strip_suffix(".tgz"))?;
    Digest::from_hex(stem.strip_prefix("sha256:").unwrap_or(stem)).ok()
}

/// The folder of a `<v1id>/layer.tar` manifest entry, if it is one.
pub(crate) fn folder_of_layer(entry: &str) -> Option<String> {
    match role_of(entry) {
        EntryRole::FolderLayer(f) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_safety() {
        let h = "a".repeat(64);
        assert_eq!(role_of("manifest.json"), EntryRole::Manifest);
        assert_eq!(
            role_of(&format!("{h}/layer.tar")),
            EntryRole::FolderLayer(h.clone())
        );
        assert_eq!(role_of(&format!("{h}/")), EntryRole::FolderDir(h.clone()));
        assert!(matches!(
            role_of(&format!("blobs/sha256/{h}")),
            EntryRole::Blob(_)
        ));
        assert!(matches!(
            role_of(&format!("{h}.json")),
            EntryRole::LegacyConfig(_)
        ));
        assert_eq!(role_of("blobs/sha256/"), EntryRole::Other);
        assert!(matches!(
            role_of(&format!("sha256:{h}")),
            EntryRole::LegacyConfig(_)
        ));
        assert!(named_digest(&format!("{h}.tar.gz")).is_some());
        assert!(named_digest(&format!("{h}.tar")).is_some());
        assert!(named_digest(&format!("{h}/layer.tar")).is_none());
        assert!(named_digest("x.tar").is_none());
        assert!(clean_name("../etc/passwd").is_err());
        assert!(clean_name("/etc/passwd").is_err());
        assert!(clean_name("a/../../b").is_err());
        assert_eq!(clean_name("./manifest.json").unwrap(), "manifest.json");
        assert_eq!(
            resolve_link(&format!("{h}/layer.tar"), "../b/layer.tar").unwrap(),
            "b/layer.tar"
        );
        assert!(resolve_link("a/layer.tar", "../../x").is_err());
        assert!(resolve_link("a/layer.tar", "/x").is_err());
    }
}
