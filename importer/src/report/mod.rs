//! `partial-load report`: what a reviewer needs to sign off a transfer, as one self-contained
//! HTML page (`-o FILE.html`) and/or JSON (`--json`). The bundle is opened as `verify` opens it
//! (signature, approvals) and read through the same checked stream, so a report is only written
//! for a bundle that matches its signed manifest. Base images come from the daemon when one is
//! reachable; otherwise the report says what it cannot compare.
//!
//! Layout: `model` (the data, also the JSON), `scan` (streaming the bundle and a base's export),
//! `layers` (one layer's files), `packages` (dpkg/apk databases), `config_diff`, `bases`
//! (finding the base on the daemon), `build` (assembly), `html` (rendering).

mod bases;
mod build;
mod config_diff;
mod html;
pub mod layers;
mod model;
pub mod packages;
mod scan;

use crate::bundle::{self, Bundle};
use crate::bundle_reader::{self, Layers};
use crate::cli::ReportArgs;
use crate::errors::{usage, verify_failed};
use crate::rebuild;
use anyhow::{anyhow, Context, Result};
use partial_common::progress;
use partial_common::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

pub async fn run(args: ReportArgs) -> Result<()> {
    if let Some(out) = &args.output {
        if out.exists() && !args.force {
            return Err(usage(format!(
                "{} exists (--force overwrites it)",
                out.display()
            )));
        }
    }
    let bundle = bundle::open(&args.bundle)?;
    let bases = bases::gather(&args, &bundle.manifest).await;
    let (layers, rebuilt) = layer_form(&bases, &bundle).await;
    let walk = walk_plan(&bundle, &bases, rebuilt);
    let (bundle, scan) = scan_bundle(bundle, layers, walk).await?;
    let report = build::report(&bundle, &bases, &scan, rebuilt);
    if let Some(out) = &args.output {
        write_atomic(out, html::render(&report).as_bytes())?;
        eprintln!("wrote the report {}", out.display());
    }
    if args.bundle.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.output.is_none() {
        io::stdout()
            .write_all(html::render(&report).as_bytes())
            .context("writing the report to stdout")?;
    }
    Ok(())
}

/// Delta layers rebuilt from the daemon's reference layers when it has them (then their files
/// are walked too); as carried otherwise.
async fn layer_form(bases: &bases::Bases, bundle: &Bundle) -> (Layers, bool) {
    let Ok(deltas) = rebuild::delta_layers(&bundle.manifest) else {
        return (Layers::AsCarried, false);
    };
    let Some((daemon, local)) = &bases.daemon else {
        return (Layers::AsCarried, false);
    };
    if deltas.is_empty() {
        return (Layers::AsCarried, false);
    }
    match rebuild::spool(
        crate::base::BaseSource::Daemon(daemon),
        &bundle.manifest,
        local,
    )
    .await
    {
        Ok(refs) => (Layers::Rebuilt(deltas, refs), true),
        Err(e) => {
            eprintln!("note: delta layers are not shown: {e:#}");
            (Layers::AsCarried, false)
        }
    }
}

/// The blobs to walk, each with the path set of its image's base (the first image carrying it).
fn walk_plan(
    bundle: &Bundle,
    bases: &bases::Bases,
    rebuilt: bool,
) -> BTreeMap<Digest, Option<Arc<layers::PathSet>>> {
    let mut walk = BTreeMap::new();
    for (img, base) in bundle.manifest.images.iter().zip(&bases.per_image) {
        let lower = match base {
            bases::Base::Found(d) => Some(d.paths.clone()),
            bases::Base::None => Some(Arc::new(layers::PathSet::default())),
            bases::Base::Unavailable(_) => None,
        };
        for l in img.layers.iter().filter(|l| l.carried) {
            if let Some(d) = build::stream_digest(l, rebuilt) {
                walk.entry(d).or_insert_with(|| lower.clone());
            }
        }
    }
    walk
}

/// Reads the bundle through its checked stream, walking the carried layers.
async fn scan_bundle(
    bundle: Bundle,
    layers: Layers,
    walk: BTreeMap<Digest, Option<Arc<layers::PathSet>>>,
) -> Result<(Bundle, scan::BundleScan)> {
    let bar = progress::bytes("reading", Some(bundle.manifest.bundle.size));
    let b2 = bar.clone();
    let result = tokio::task::spawn_blocking(move || {
        let configs: BTreeSet<Digest> = bundle
            .manifest
            .images
            .iter()
            .map(|i| i.id.clone())
            .collect();
        let r = bundle_reader::checked_stream(&bundle, b2, layers)?;
        let s = scan::scan_bundle(r, &configs, &walk).map_err(|e| {
            match e.chain().find_map(|c| c.downcast_ref::<io::Error>()) {
                Some(io) if io.kind() == io::ErrorKind::InvalidData => {
                    verify_failed(format!("{e:#}"))
                }
                _ => e,
            }
        })?;
        Ok::<_, anyhow::Error>((bundle, s))
    })
    .await
    .context("the report thread failed")?;
    bar.finish_and_clear();
    result
}

/// Writes `bytes` to `path` through a temporary file beside it: nothing half-written is left.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| anyhow!(e.error))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::model::*;
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn text(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    /// A report of one image whose layer, labels and tags carry hostile text.
    fn hostile_report() -> Report {
        Report {
            schema: SCHEMA.into(),
            version: VERSION,
            tool: "partial-load test".into(),
            created: "2026-01-01T00:00:00Z".into(),
            bundle: BundleInfo {
                name: "<b>.tgz".into(),
                manifest: "<b>.tgz.manifest.json".into(),
                manifest_sha256: d('a'),
                created: "2026-01-01T00:00:00Z".into(),
                made_by: "partial-save 0".into(),
                site: None,
                sequence: Some(2),
                previous: Some(d('b')),
                signed_by: text("ABCDEF"),
                trusted_comment: text("<script>"),
                approvals: vec![],
                compression: "gzip".into(),
                size: 1,
                volumes: 1,
                docker_loadable: true,
                warnings: vec!["<i>warn</i>".into()],
            },
            base_source: BaseSource::None {
                why: "--offline".into(),
            },
            images: vec![hostile_image()],
        }
    }

    fn hostile_layer() -> LayerReport {
        let mut b = tar::Builder::new(Vec::new());
        for (path, mode) in [("srv/<script>alert(1)<b>.txt", 0o4755), ("a\"'&.sh", 0o777)] {
            let mut h = tar::Header::new_gnu();
            h.set_mode(mode);
            h.set_size(1);
            b.append_data(&mut h, path, &b"x"[..]).unwrap();
        }
        let files = layers::walk(&b.into_inner().unwrap()[..], None)
            .unwrap()
            .files;
        LayerReport {
            position: 2,
            diff_id: d('1'),
            carried: true,
            size: Some(10),
            delta: false,
            files: Some(files),
            note: None,
        }
    }

    fn hostile_image() -> ImageReport {
        ImageReport {
            id: d('c'),
            tags: vec!["<script>:1".into()],
            manifest_digest: Some(d('e')),
            manifest_digest_from: text("bundle index.json"),
            platform: text("linux/amd64"),
            base: BaseInfo {
                chain_id: Some(d('f')),
                layers: 1,
                origin: text("image <base> (-e)"),
                found: None,
                note: text("base not available: cannot compare (--offline)"),
            },
            layers_total: 2,
            layers_carried: 1,
            bytes_carried: 10,
            bytes_full: 20,
            deltas: vec![],
            layers: vec![hostile_layer()],
            packages: PackageReport {
                status: "base_not_available".into(),
                manager: text("dpkg"),
                note: text("<pkg>"),
                changes: vec![packages::PackageChange {
                    name: "<script>pkg".into(),
                    old: None,
                    new: text("1<2"),
                }],
                installed: 1,
            },
            config: ConfigReport {
                status: "base_not_available".into(),
                changes: vec![config_diff::ConfigChange {
                    field: "labels".into(),
                    key: text("<script>"),
                    old: None,
                    new: text("</td><script>alert(1)</script>"),
                }],
            },
            attached: vec![AttachedInfo {
                kind: "signature".into(),
                tag: "sha256-<script>.sig".into(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: d('9'),
                blobs: 2,
            }],
        }
    }

    #[test]
    fn the_page_shows_hostile_text_as_text_and_the_json_matches_its_schema() {
        let r = hostile_report();
        let json = serde_json::to_value(&r).unwrap();
        crate::schema_files::assert_valid("report", "a report", &json);
        let page = html::render(&r);
        // The only tags are the page's own: none from the bundle's text.
        for raw in ["<script", "<b>", "<i>", "<base>", "<pkg>", "</td><script"] {
            assert!(!page.contains(raw), "{raw} unescaped in:\n{page}");
        }
        for shown in [
            "srv/&lt;script&gt;alert(1)&lt;b&gt;.txt",
            "a&quot;&#39;&amp;.sh",
            "&lt;/td&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
            "1&lt;2",
            "sha256-&lt;script&gt;.sig",
        ] {
            assert!(page.contains(shown), "{shown} missing in:\n{page}");
        }
        // The setuid and world-writable lists are there, named.
        assert!(
            page.contains("Setuid: 1") && page.contains("World-writable: 1"),
            "{page}"
        );
    }

    /// A layer tar of `n` empty files, generated as it is read (never held whole).
    struct ManyFiles {
        n: usize,
        next: usize,
        block: Vec<u8>,
        pos: usize,
    }

    impl io::Read for ManyFiles {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.block.len() {
                self.pos = 0;
                self.block = if self.next < self.n {
                    let mut h = tar::Header::new_gnu();
                    h.set_path(format!("data/dir{}/file{}", self.next / 1000, self.next))?;
                    h.set_mode(0o644);
                    h.set_size(0);
                    h.set_cksum();
                    self.next += 1;
                    h.as_bytes().to_vec()
                } else if self.next == self.n {
                    self.next += 1;
                    vec![0; 1024]
                } else {
                    return Ok(0);
                };
            }
            let k = buf.len().min(self.block.len() - self.pos);
            buf[..k].copy_from_slice(&self.block[self.pos..self.pos + k]);
            self.pos += k;
            Ok(k)
        }
    }

    #[test]
    fn a_layer_of_200k_files_keeps_the_page_usable() {
        let n = 200_000;
        let r = ManyFiles {
            n,
            next: 0,
            block: Vec::new(),
            pos: 0,
        };
        let scan = layers::walk(r, None).unwrap();
        assert_eq!(scan.files.entries, n as u64);
        assert_eq!(scan.files.files.items.len(), layers::MAX_LISTED);
        assert_eq!(scan.files.files.more, (n - layers::MAX_LISTED) as u64);
        let mut report = hostile_report();
        report.images[0].layers[0].files = Some(scan.files);
        let page = html::render(&report);
        assert!(page.contains("195000 more entries"), "no count of the rest");
        // About 150 bytes a listed row: a page of a few MiB, whatever the layer's size.
        assert!(page.len() < 2 << 20, "{} bytes", page.len());
    }
}
