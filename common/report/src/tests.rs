//! The page against hostile text and huge layers, and the JSON against its schema.

use crate::model::*;
use crate::{config_diff, html, layers, packages};
use std::io;

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
    partial_common::testutil::schema::assert_valid("report", "a report", &json);
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
