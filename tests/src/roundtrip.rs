//! The scene and the round trip of the writer tests (`tests/tests/e2e/writers.rs`): a base image
//! and a new image on top of it on the source daemon, the base on the air-gapped daemon; then for
//! one writer's archives, `partial-save` excluding the base, [`check_bundle`], the size, and
//! `partial-load load` on the air-gapped daemon.
//!
//! Several writers run against one daemon pair (the machine has 2 cores); [`all_passed`] reports
//! every writer's outcome before failing, so one broken writer does not hide the others.

use crate::bundle_check::{check_bundle, BundleFacts};
use crate::cli::{keygen, load, save};
use crate::layout::{read_tar, resolve};
use crate::{layer_files, Content, DaemonPair};
use anyhow::{ensure, Context, Result};
use partial_common::digest::{chain_ids, Digest};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the source daemon holds, and what the writers' archives are made from.
pub struct WriterScene {
    pub dir: tempfile::TempDir,
    /// `docker save base:1` and `docker save app:2` (legacy layout).
    pub base_save: PathBuf,
    pub app_save: PathBuf,
    pub base_diffs: Vec<String>,
    pub base_chains: BTreeSet<String>,
    pub app2_id: String,
    pub app2_diffs: Vec<String>,
    /// Set when the scene was built with `app:1` too.
    pub app1_diffs: Option<Vec<String>>,
    /// app:2's layers that base:1 lacks, each compressed with `gzip -6`, summed.
    pub new_gz: u64,
    /// All of app:2's layers compressed with `gzip -6`, summed.
    pub full_gz: u64,
    /// Unprotected signing key and its public key.
    pub key: PathBuf,
    pub public_key: PathBuf,
}

fn strings(d: Vec<Digest>) -> Vec<String> {
    d.into_iter().map(String::from).collect()
}

fn chains_of(diffs: &[String]) -> Result<Vec<String>> {
    let d = diffs
        .iter()
        .map(|s| Digest::parse(s).map_err(|e| anyhow::anyhow!("{s}: {e}")))
        .collect::<Result<Vec<_>>>()?;
    Ok(strings(chain_ids(&d)))
}

fn gzip6_size(data: &[u8]) -> Result<u64> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data)?;
    Ok(e.finish()?.len() as u64)
}

/// Builds on the source daemon `base:1` (an imported 4 MiB random layer plus a 512 KiB `COPY`
/// layer) and `app:2` on it (1.5 MiB random plus a small compressible hotfix), with `app:1` too
/// (1 MiB random on base:1) when `with_app1`; saves base:1 and app:2; loads base:1 on the
/// air-gapped daemon; writes a key pair.
pub fn build_writer_scene(pair: &DaemonPair, with_app1: bool) -> Result<WriterScene> {
    let s = &pair.source;
    s.import_rootfs("base0:1", 41, &[4 << 20], Content::Random)?;
    s.build(
        "base:1",
        "base0:1",
        &[layer_files(42, "base", 1, 512 << 10, Content::Random)],
    )?;
    let app2_id = s.build(
        "app:2",
        "base:1",
        &[
            layer_files(43, "app", 2, 768 << 10, Content::Random),
            layer_files(44, "hotfix", 1, 64 << 10, Content::Compressible),
        ],
    )?;
    let app1_diffs = if with_app1 {
        s.build(
            "app:1",
            "base:1",
            &[layer_files(45, "app", 1, 1 << 20, Content::Random)],
        )?;
        Some(s.diff_ids("app:1")?)
    } else {
        None
    };
    let dir = tempfile::tempdir()?;
    let base_save = dir.path().join("base.docker.tar");
    let app_save = dir.path().join("app.docker.tar");
    s.save_to(&["base:1"], &base_save)?;
    s.save_to(&["app:2"], &app_save)?;
    pair.airgap.load(&base_save)?;
    let base_diffs = s.diff_ids("base:1")?;
    let app2_diffs = s.diff_ids("app:2")?;
    ensure!(
        app2_diffs.starts_with(&base_diffs),
        "app:2 is not on base:1"
    );
    let entries = read_tar(&app_save)?;
    let manifest: Vec<Value> = serde_json::from_slice(resolve(&entries, "manifest.json")?)?;
    let mut new_gz = 0;
    let mut full_gz = 0;
    for (i, l) in manifest[0]["Layers"]
        .as_array()
        .context("Layers")?
        .iter()
        .enumerate()
    {
        let n = gzip6_size(resolve(&entries, l.as_str().context("layer")?)?)?;
        full_gz += n;
        if i >= base_diffs.len() {
            new_gz += n;
        }
    }
    keygen(dir.path(), "team");
    Ok(WriterScene {
        base_chains: chains_of(&base_diffs)?.into_iter().collect(),
        key: dir.path().join("team.key"),
        public_key: dir.path().join("team.pub"),
        dir,
        base_save,
        app_save,
        base_diffs,
        app2_id,
        app2_diffs,
        app1_diffs,
        new_gz,
        full_gz,
    })
}

/// What one writer's round trip must give.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The image ID (when the writer kept the daemon's config; a converted config has another).
    pub id: Option<String>,
    /// The image's diffIDs, bottom first.
    pub diff_ids: Vec<String>,
    /// A tag the loaded image must have (e.g. `app:2`).
    pub tag: Option<String>,
    /// A text one of the loaded image's tags must contain (for bare OCI ref names).
    pub tag_containing: Option<String>,
}

/// One writer's round trip: `partial-save ARGS -o OUT --sign-key KEY`, then
///  1. the manifest leaves out exactly base:1's chains (and lists them in `required_base`), and
///     carries every other layer;
///  2. [`check_bundle`]: the bundle never contradicts the manifest;
///  3. the bundle is about the size of the new layers compressed (at most 1.15 × their
///     `gzip -6` size + 64 KiB) and less than half the whole image compressed;
///  4. `partial-load load OUT --key PUB` on the air-gapped daemon (holding base:1) gives the image
///     with the expected ID, diffIDs and tags; the image is then removed again, so that the next
///     writer's load really loads.
///
/// Returns a one-line summary.
pub fn round_trip(
    pair: &DaemonPair,
    scene: &WriterScene,
    label: &str,
    args: &[String],
    expect: &Expect,
) -> Result<String> {
    let out_dir = scene.dir.path().join(label);
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join("out.tgz");
    let mut full: Vec<String> = args.to_vec();
    full.extend([
        "-o".into(),
        out.to_string_lossy().into_owned(),
        "--sign-key".into(),
        scene.key.to_string_lossy().into_owned(),
    ]);
    let r = save(&full);
    ensure!(
        r.code == 0,
        "partial-save {} exited {}: {}",
        full.join(" "),
        r.code,
        r.stderr.trim()
    );
    let facts = check_bundle(&out).context("the bundle contradicts its manifest")?;
    let img = check_manifest(scene, &facts, expect)?;
    check_size(scene, &facts)?;
    let r = load(&[
        "load".as_ref(),
        out.as_os_str(),
        "--key".as_ref(),
        scene.public_key.as_os_str(),
        "-H".as_ref(),
        pair.airgap.host().as_ref(),
    ]);
    ensure!(
        r.code == 0,
        "partial-load load exited {}: {}",
        r.code,
        r.stderr.trim()
    );
    let tags = check_loaded(pair, &img.id, expect);
    // Removed whatever the checks found, so that the next writer's load really loads.
    let _ = pair.airgap.remove_image(&img.id);
    let tags = tags?;
    Ok(format!(
        "image {} ({} tags {tags}): {} layer(s) carried, {} left out; bundle {} B, new layers gzip {} B, whole image gzip {} B",
        &img.id[..19],
        img.tags.join(","),
        img.carried.iter().filter(|c| **c).count(),
        img.carried.iter().filter(|c| !**c).count(),
        facts.size,
        scene.new_gz,
        scene.full_gz
    ))
}

fn check_manifest<'a>(
    scene: &WriterScene,
    facts: &'a BundleFacts,
    expect: &Expect,
) -> Result<&'a crate::bundle_check::BundleImage> {
    ensure!(
        facts.images.len() == 1,
        "expected one image in the bundle, the manifest lists {}",
        facts.images.len()
    );
    let img = &facts.images[0];
    if let Some(id) = &expect.id {
        ensure!(
            &img.id == id,
            "image ID {} in the manifest, expected {id}",
            img.id
        );
    }
    ensure!(
        img.diff_ids == expect.diff_ids,
        "diffIDs {:?} in the manifest, expected {:?}",
        img.diff_ids,
        expect.diff_ids
    );
    ensure!(
        img.left_out_chains() == scene.base_chains,
        "the manifest leaves out chains {:?}, expected exactly base:1's {:?}",
        img.left_out_chains(),
        scene.base_chains
    );
    ensure!(
        facts.required_base == scene.base_chains,
        "required_base lists {:?}, expected base:1's chains {:?}",
        facts.required_base,
        scene.base_chains
    );
    let want_carried = &expect.diff_ids[scene.base_diffs.len()..];
    ensure!(
        img.carried_diff_ids() == want_carried,
        "carried {:?}, expected {want_carried:?}",
        img.carried_diff_ids()
    );
    Ok(img)
}

fn check_size(scene: &WriterScene, facts: &BundleFacts) -> Result<()> {
    let limit = scene.new_gz + scene.new_gz * 15 / 100 + (64 << 10);
    ensure!(
        facts.size <= limit,
        "bundle is {} B, more than 1.15 × the new layers compressed ({} B) + 64 KiB",
        facts.size,
        scene.new_gz
    );
    ensure!(
        facts.size < scene.full_gz / 2,
        "bundle is {} B, not far below the whole image compressed ({} B)",
        facts.size,
        scene.full_gz
    );
    Ok(())
}

/// Checks the loaded image on the air-gapped daemon; returns its tags as the daemon shows them.
fn check_loaded(pair: &DaemonPair, id: &str, expect: &Expect) -> Result<String> {
    let a = &pair.airgap;
    ensure!(
        a.has_image(id),
        "image {id} is not on the air-gapped daemon after the load"
    );
    let diffs = a.diff_ids(id)?;
    ensure!(
        diffs == expect.diff_ids,
        "the loaded image has diffIDs {diffs:?}, expected {:?}",
        expect.diff_ids
    );
    if let Some(tag) = &expect.tag {
        let got = a
            .image_id(tag)
            .with_context(|| format!("tag {tag} after the load"))?;
        ensure!(got == id, "tag {tag} names {got}, not the loaded {id}");
    }
    let tags = a.docker(&["image", "inspect", "--format", "{{json .RepoTags}}", id])?;
    if let Some(part) = &expect.tag_containing {
        ensure!(
            tags.contains(part.as_str()),
            "the loaded image's tags {} contain no {part:?}",
            tags.trim()
        );
    }
    Ok(tags.trim().to_string())
}

/// Prints every writer's outcome, then panics naming the failed ones, if any.
#[track_caller]
pub fn all_passed(results: Vec<(&str, Result<String>)>) {
    let mut failed = Vec::new();
    let mut text = String::new();
    for (label, r) in &results {
        match r {
            Ok(s) => text.push_str(&format!("  ok    {label}: {s}\n")),
            Err(e) => {
                text.push_str(&format!("  FAIL  {label}: {e:#}\n"));
                failed.push(*label);
            }
        }
    }
    let _ = std::io::stderr().write_all(format!("writer outcomes:\n{text}").as_bytes());
    assert!(
        failed.is_empty(),
        "{} of {} writer(s) failed: {}\n{text}",
        failed.len(),
        results.len(),
        failed.join(", ")
    );
}

/// `args` as owned strings (paths lossily).
pub fn args<S: AsRef<std::ffi::OsStr>>(a: &[S]) -> Vec<String> {
    a.iter()
        .map(|s| Path::new(s.as_ref()).to_string_lossy().into_owned())
        .collect()
}
