//! Indexes of OCI layouts and oci-archives: archives and layouts export one platform (see
//! `select::platform`), so an image index above a wanted image does not travel, while that
//! image's manifest does, byte for byte. The run says so, naming the index; an index named by
//! its digest (`-i sha256:…`) is refused (exit 2) unless `--allow-new-digest`, as a registry
//! index narrowed by `--platform` is: a digest reference is never dropped silently.

use anyhow::{bail, Result};
use partial_common::image::{Image, Platform};
use partial_common::text::escape;
use partial_common::Digest;

/// The indexes above `wanted` images that do not travel, as warnings; `Err` (a usage error)
/// when one of `names` (the `-i` references) pins such an index by digest and not
/// `allow_new_digest`.
pub fn check(
    wanted: &[Image],
    names: &[String],
    platform: &Platform,
    allow_new_digest: bool,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for img in wanted {
        let Some(source) = &img.source_manifest else {
            continue;
        };
        for index in img.aliases.iter().filter(|a| **a != source.digest) {
            let pinned = names.iter().find(|n| names_digest(n, index));
            if let (Some(name), false) = (pinned, allow_new_digest) {
                bail!(
                    "-i {} names the index {index} by its digest, but archives and OCI layouts \
                     export one platform ({platform}): the index would not travel, and that \
                     digest would not resolve at the destination\n  hint: name the platform \
                     image's manifest digest {}, or allow it with --allow-new-digest",
                    escape(name),
                    source.digest
                );
            }
            notes.push(format!(
                "the index {index} above {} is not carried: only its {platform} image travels \
                 (archives and OCI layouts export one platform), with its manifest digest {}; \
                 the index digest will not exist at the destination",
                escape(&img.name()),
                source.digest
            ));
        }
    }
    Ok(notes)
}

/// Whether the reference `name` is `digest` (`sha256:…`, or `…@sha256:…`).
fn names_digest(name: &str, digest: &Digest) -> bool {
    let tail = name.trim().rsplit('@').next().unwrap_or_default();
    Digest::parse(tail).is_ok_and(|d| d == *digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::image::SourceManifest;

    fn image_under_index() -> (Image, Digest) {
        let mut img = Image::from_diff_ids(Digest::of_bytes(b"config"), vec!["app:2".into()], &[]);
        let source = SourceManifest::new("application/json", b"{}").unwrap();
        let index = Digest::of_bytes(b"index");
        img.aliases = vec![source.digest.clone(), index.clone()];
        img.source_manifest = Some(source);
        (img, index)
    }

    #[test]
    fn an_index_left_behind_is_said_and_a_pinned_one_refused_unless_allowed() {
        let (img, index) = image_under_index();
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let notes = check(std::slice::from_ref(&img), &["app:2".into()], &amd64, false).unwrap();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains(index.as_str()) && notes[0].contains("app:2"));
        let pinned = vec![format!("app@{index}")];
        let e = check(std::slice::from_ref(&img), &pinned, &amd64, false).unwrap_err();
        assert!(format!("{e}").contains("--allow-new-digest"), "{e}");
        assert_eq!(
            check(std::slice::from_ref(&img), &pinned, &amd64, true)
                .unwrap()
                .len(),
            1
        );
        let mut plain = img;
        plain.source_manifest = None;
        assert!(check(&[plain], &pinned, &amd64, false).unwrap().is_empty());
    }
}
