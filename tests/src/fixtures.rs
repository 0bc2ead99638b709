//! Test images: deterministic root-filesystem tars, `docker import`, `FROM`+`COPY` builds with the
//! legacy builder (no `RUN`, no registry), `docker save`/`docker load`, and `docker image inspect`.
//!
//! All content is a pure function of a seed, so two runs build byte-identical layer tars (and so the
//! same diffIDs); image IDs still differ per build because configs carry a creation time.

use crate::daemon::{run_checked, Daemon};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Fixed mtime of every fixture file (2020-01-01T00:00:00Z).
pub const FIXED_MTIME: u64 = 1_577_836_800;

/// What file content looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Pseudo-random bytes: do not compress.
    Random,
    /// Repetitive text: compresses very well.
    Compressible,
}

/// A small deterministic PRNG (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x005E_ED0F_7E57_u64)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// `size` bytes of content, a pure function of `(seed, size, kind)`.
pub fn content(seed: u64, size: usize, kind: Content) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    match kind {
        Content::Random => {
            let mut v = vec![0u8; size];
            rng.fill(&mut v);
            v
        }
        Content::Compressible => {
            let mut v = Vec::with_capacity(size + 64);
            let mut line = 0u64;
            while v.len() < size {
                let word = ["alpha", "bravo", "charlie", "delta"][(rng.next_u64() % 4) as usize];
                v.extend_from_slice(
                    format!("{seed:08x} line {line:06} {word} lorem ipsum\n").as_bytes(),
                );
                line += 1;
            }
            v.truncate(size);
            v
        }
    }
}

/// Builds a deterministic tar (fixed mtime, uid/gid 0, sorted as added) in memory.
pub struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        TarBuilder::new()
    }
}

impl TarBuilder {
    pub fn new() -> TarBuilder {
        TarBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(FIXED_MTIME);
        h.set_size(size);
        h
    }

    /// A directory entry (`path` without trailing slash).
    pub fn dir(mut self, path: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.b
            .append_data(
                &mut h,
                format!("{}/", path.trim_end_matches('/')),
                std::io::empty(),
            )
            .expect("tar dir");
        self
    }

    /// A regular file with the given bytes (mode 0644).
    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_mode(path, data, 0o644)
    }

    /// A regular file with the given bytes and mode (`0o4755`: setuid).
    pub fn file_mode(mut self, path: &str, data: &[u8], mode: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.b.append_data(&mut h, path, data).expect("tar file");
        self
    }

    /// A symlink `path -> target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.b
            .append_link(&mut h, path, target)
            .expect("tar symlink");
        self
    }

    /// The finished tar bytes.
    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("tar finish")
    }
}

/// A root-filesystem tar: `etc/`, `etc/fixture-seed` and `data/f000…` with one file per entry of
/// `sizes`, content from `(seed, index)`.
pub fn rootfs_tar(seed: u64, sizes: &[usize], kind: Content) -> Vec<u8> {
    let mut t = TarBuilder::new()
        .dir("etc")
        .file("etc/fixture-seed", format!("{seed}\n").as_bytes())
        .dir("data");
    for (i, &size) in sizes.iter().enumerate() {
        let data = content(seed.wrapping_mul(1000).wrapping_add(i as u64), size, kind);
        t = t.file(&format!("data/f{i:03}"), &data);
    }
    t.finish()
}

/// Files for one `COPY` layer: `(path inside the image, bytes)`.
pub type LayerFiles = Vec<(String, Vec<u8>)>;

/// `count` files of `size` bytes under `dir/` for a `COPY` layer, content from `seed`.
pub fn layer_files(seed: u64, dir: &str, count: usize, size: usize, kind: Content) -> LayerFiles {
    (0..count)
        .map(|i| {
            (
                format!("{}/file{i:03}", dir.trim_matches('/')),
                content(seed.wrapping_mul(7919).wrapping_add(i as u64), size, kind),
            )
        })
        .collect()
}

/// sha256 of `data` as `sha256:<hex>`.
pub fn sha256_digest(data: &[u8]) -> String {
    partial_common::Digest::of_bytes(data).to_string()
}

impl Daemon {
    /// `docker import` of a tar (file) as `tag`; returns the image ID.
    pub fn import_tar_file(&self, tar: &Path, tag: &str) -> Result<String> {
        self.docker(&["import", &tar.to_string_lossy(), tag])?;
        self.image_id(tag)
    }

    /// `docker import` of tar bytes as `tag`; returns the image ID.
    pub fn import_tar(&self, tar: &[u8], tag: &str) -> Result<String> {
        let p = self.scratch_path("import.tar");
        fs::write(&p, tar)?;
        let id = self.import_tar_file(&p, tag);
        let _ = fs::remove_file(&p);
        id
    }

    /// Imports a [`rootfs_tar`] as `tag`; returns the image ID.
    pub fn import_rootfs(
        &self,
        tag: &str,
        seed: u64,
        sizes: &[usize],
        kind: Content,
    ) -> Result<String> {
        self.import_tar(&rootfs_tar(seed, sizes, kind), tag)
    }

    /// `FROM from` plus one `COPY` layer per entry of `layers` (legacy builder, no `RUN`); returns
    /// the image ID. Files get a fixed mtime so the layer tars are reproducible.
    pub fn build(&self, tag: &str, from: &str, layers: &[LayerFiles]) -> Result<String> {
        let mut dockerfile = format!("FROM {from}\n");
        let mut files = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            dockerfile.push_str(&format!("COPY l{i}/ /\n"));
            for (path, data) in layer {
                files.push((
                    format!("l{i}/{}", path.trim_start_matches('/')),
                    data.clone(),
                ));
            }
        }
        self.build_dockerfile(tag, &dockerfile, &files)
    }

    /// Builds `dockerfile` with a context of `files` (`(path in context, bytes)`) with
    /// `DOCKER_BUILDKIT=0`; returns the image ID of `tag`.
    pub fn build_dockerfile(
        &self,
        tag: &str,
        dockerfile: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<String> {
        let ctx = self.scratch_path("build-context");
        fs::create_dir_all(&ctx)?;
        fs::write(ctx.join("Dockerfile"), dockerfile)?;
        let mtime = UNIX_EPOCH + Duration::from_secs(FIXED_MTIME);
        for (path, data) in files {
            let p = ctx.join(path);
            fs::create_dir_all(p.parent().unwrap())?;
            fs::write(&p, data)?;
            fs::File::options()
                .write(true)
                .open(&p)?
                .set_modified(mtime)?;
        }
        // Directories last, after their files were written.
        set_dir_mtimes(&ctx, mtime)?;
        let mut cmd = self.docker_cmd();
        cmd.env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", tag])
            .arg(&ctx);
        run_checked(&format!("docker build -t {tag}"), &mut cmd)?;
        let _ = fs::remove_dir_all(&ctx);
        self.image_id(tag)
    }

    /// `docker save` of `images` into a new file in the scratch folder; returns its path.
    pub fn save(&self, images: &[&str]) -> Result<PathBuf> {
        let out = self.scratch_path("save.tar");
        self.save_to(images, &out)?;
        Ok(out)
    }

    /// `docker save -o out images…`.
    pub fn save_to(&self, images: &[&str], out: &Path) -> Result<()> {
        let o = out.to_string_lossy();
        let mut args = vec!["save", "-o", &o];
        args.extend_from_slice(images);
        self.docker(&args).map(|_| ())
    }

    /// `docker load -i path`; returns the CLI's output (`Loaded image: …` lines).
    pub fn load(&self, path: &Path) -> Result<String> {
        self.docker(&["load", "-i", &path.to_string_lossy()])
    }

    /// The image ID (`sha256:…`) of `name`.
    pub fn image_id(&self, name: &str) -> Result<String> {
        let id = self.docker(&["image", "inspect", "--format", "{{.Id}}", name])?;
        let id = id.trim().to_string();
        if !id.starts_with("sha256:") {
            bail!("unexpected image ID for {name}: {id:?}");
        }
        Ok(id)
    }

    /// True when the daemon has an image by that name or ID.
    pub fn has_image(&self, name: &str) -> bool {
        self.docker_cmd()
            .args(["image", "inspect", "--format", "{{.Id}}", name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// The image's diffIDs (`RootFS.Layers`), bottom first.
    pub fn diff_ids(&self, name: &str) -> Result<Vec<String>> {
        let out = self.docker(&[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}}",
            name,
        ])?;
        let v: Vec<String> = serde_json::from_str(out.trim())
            .with_context(|| format!("parsing RootFS.Layers of {name}: {out}"))?;
        Ok(v)
    }

    /// Every image ID the daemon holds (`docker image ls -aq --no-trunc`), sorted, deduplicated.
    pub fn image_ids(&self) -> Result<Vec<String>> {
        let out = self.docker(&["image", "ls", "-aq", "--no-trunc"])?;
        let mut v: Vec<String> = out
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// `docker rmi` of `name` (tags or IDs).
    pub fn remove_image(&self, name: &str) -> Result<()> {
        self.docker(&["rmi", "-f", name]).map(|_| ())
    }
}

fn set_dir_mtimes(dir: &Path, mtime: std::time::SystemTime) -> Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            set_dir_mtimes(&e.path(), mtime)?;
        }
    }
    // Best effort: a folder's mtime is not part of what COPY writes for its files.
    let _ = fs::File::open(dir)?.set_modified(mtime);
    Ok(())
}
