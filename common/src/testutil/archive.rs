//! Test-archive builders for the three `docker save` layouts, shaped like the daemon's output:
//! legacy folders named by the real v1id recipe (so identification without an index is really
//! exercised) with repeated diffIDs saved as `layer.tar` symlinks; Docker ≥ 25 OCI layouts with
//! uncompressed blobs named by diffID; containerd layouts with gzip blobs. The entry list can be
//! altered before it is written, to build broken archives.

use crate::archive::SourceImage;
use crate::digest::{chain_ids, Digest};
use crate::have::{HaveSet, Origin};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

/// One layer: an uncompressed tar and its diffID.
#[derive(Clone, Debug)]
pub struct Layer {
    pub data: Vec<u8>,
    pub diff: Digest,
}

/// Deterministic incompressible bytes (xorshift), `len` of them from `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A layer holding one file `name` with `content`.
pub fn layer(name: &str, content: &[u8]) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    b.append_data(&mut h, name, content).unwrap();
    let data = b.into_inner().unwrap();
    let diff = Digest::of_bytes(&data);
    Layer { data, diff }
}

/// An image: tags, layers (bottom first), config.
#[derive(Clone, Debug)]
pub struct TestImage {
    pub tags: Vec<String>,
    pub layers: Vec<Layer>,
    pub config: Vec<u8>,
    pub id: Digest,
}

pub fn image(tags: &[&str], layers: &[&Layer]) -> TestImage {
    let diffs: Vec<String> = layers.iter().map(|l| l.diff.to_string()).collect();
    let config = json!({
        "architecture": "amd64",
        "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"], "Labels": {"t": tags.join(",")}},
        "container_config": {"Cmd": null},
        "created": "2024-01-02T03:04:05.123456789Z",
        "docker_version": "20.10.24",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diffs},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let id = Digest::of_bytes(&config);
    TestImage {
        tags: tags.iter().map(|s| s.to_string()).collect(),
        layers: layers.iter().map(|l| (*l).clone()).collect(),
        config,
        id,
    }
}

impl TestImage {
    pub fn source(&self) -> SourceImage {
        SourceImage {
            id: self.id.clone(),
            tags: self.tags.clone(),
            diff_ids: self.diffs(),
        }
    }
    pub fn diffs(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff.clone()).collect()
    }
    pub fn chains(&self) -> Vec<Digest> {
        chain_ids(&self.diffs())
    }
}

/// A destination holding `images`.
pub fn have(images: &[&TestImage]) -> HaveSet {
    let mut h = HaveSet::new();
    for i in images {
        h.add_image(
            &i.diffs(),
            &Origin::Image {
                name: i.tags.first().cloned().unwrap_or_default(),
                image_id: i.id.clone(),
            },
        );
    }
    h
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
}

/// How an entry's name is written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NameStyle {
    /// ustar, GNU long name when longer than 100 bytes (what the `tar` crate does).
    Plain,
    /// A PAX extended header carries the name.
    Pax,
}

#[derive(Clone, Debug)]
pub struct TEntry {
    pub name: String,
    pub kind: Kind,
    pub style: NameStyle,
}

impl TEntry {
    pub fn file(name: &str, data: Vec<u8>) -> Self {
        TEntry {
            name: name.into(),
            kind: Kind::File(data),
            style: NameStyle::Plain,
        }
    }
}

/// How the archive ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum End {
    Proper,
    /// No end-of-archive blocks.
    Missing,
    /// An error JSON after the last entry, as the daemon writes when an export fails.
    ErrorJson,
}

fn pax_header(name: &str) -> Vec<u8> {
    let rec_body = format!("path={name}\n");
    let mut len = rec_body.len() + 3;
    loop {
        let l = format!("{len} {rec_body}").len();
        if l == len {
            break;
        }
        len = l;
    }
    let rec = format!("{len} {rec_body}");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeaders/x").unwrap();
    h.set_size(rec.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    let mut data = rec.into_bytes();
    let pad = (512 - data.len() % 512) % 512;
    data.resize(data.len() + pad, 0);
    out.extend(data);
    out
}

/// Writes entries as a tar stream.
pub fn write_tar(entries: &[TEntry], end: End) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        if e.name.contains("..") || e.name.starts_with('/') {
            // The tar crate refuses such names; write the header by hand.
            let Kind::File(d) = &e.kind else {
                panic!("only files")
            };
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(d.len() as u64);
            h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            h.set_cksum();
            b.get_mut().extend(h.as_bytes());
            let mut d = d.clone();
            d.resize(d.len() + (512 - d.len() % 512) % 512, 0);
            b.get_mut().extend(d);
            continue;
        }
        if e.style == NameStyle::Pax {
            b.get_mut().extend(pax_header(&e.name));
            // The ustar name field holds a truncated placeholder.
            let short: String = e.name.chars().take(90).collect();
            match &e.kind {
                Kind::File(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_path(&short).unwrap();
                    h.set_cksum();
                    b.get_mut().extend(h.as_bytes());
                    let mut d = d.clone();
                    d.resize(d.len() + (512 - d.len() % 512) % 512, 0);
                    b.get_mut().extend(d);
                }
                _ => panic!("PAX style only for files"),
            }
            continue;
        }
        match &e.kind {
            Kind::File(d) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(d.len() as u64);
                b.append_data(&mut h, &e.name, &d[..]).unwrap();
            }
            Kind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, &e.name, &[][..]).unwrap();
            }
            Kind::Symlink(t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, &e.name, t).unwrap();
            }
        }
    }
    match end {
        End::Proper => b.into_inner().unwrap(),
        End::Missing | End::ErrorJson => {
            let mut v = b.get_ref().clone();
            std::mem::forget(b);
            if end == End::ErrorJson {
                v.extend_from_slice(
                    br#"{"errorDetail":{"message":"open /var/lib/docker/overlay2/x/diff: no such file"},"error":"open /var/lib/docker/overlay2/x/diff: no such file"}"#,
                );
            }
            v
        }
    }
}

/// A built archive: its entries and, per image, the entry of each layer position.
#[derive(Clone, Debug)]
pub struct Built {
    pub entries: Vec<TEntry>,
    /// Per image (in build order): layer entry per position.
    pub layer_entries: Vec<Vec<String>>,
    /// Per image: config entry.
    pub config_entries: Vec<String>,
}

impl Built {
    pub fn tar(&self) -> Vec<u8> {
        write_tar(&self.entries, End::Proper)
    }
    pub fn remove(&mut self, name: &str) {
        let before = self.entries.len();
        self.entries.retain(|e| e.name != name);
        assert!(self.entries.len() < before, "no entry {name}");
    }
    pub fn set_data(&mut self, name: &str, data: Vec<u8>) {
        let e = self.entries.iter_mut().find(|e| e.name == name).unwrap();
        e.kind = Kind::File(data);
    }
    /// The folder (`<v1id>`) of a legacy layer entry.
    pub fn folder(&self, img: usize, pos: usize) -> String {
        self.layer_entries[img][pos]
            .trim_end_matches("/layer.tar")
            .to_string()
    }
    pub fn is_symlink(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.name == name && matches!(e.kind, Kind::Symlink(_)))
    }
}

fn sorted(mut entries: Vec<TEntry>) -> Vec<TEntry> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The blank `container_config` the daemon writes in non-top folders.
fn blank_container_config() -> Value {
    json!({"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,
           "AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,
           "Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,
           "OnBuild":null,"Labels":null})
}

/// Each layer's v1id and `json` file as the daemon writes them (see the legacy layout notes).
pub fn v1_folders(img: &TestImage, created: &str) -> Vec<(String, Vec<u8>)> {
    let chains = img.chains();
    let cfg: Value = serde_json::from_slice(&img.config).unwrap();
    let mut parent: Option<String> = None;
    let mut out = Vec::new();
    for (pos, chain) in chains.iter().enumerate() {
        let top = pos + 1 == chains.len();
        // Fields as the daemon writes them (without id), in its order.
        let mut fields: Vec<(String, Value)> = Vec::new();
        if let Some(p) = &parent {
            fields.push(("parent".into(), json!(p)));
        }
        if top {
            for k in [
                "created",
                "container_config",
                "docker_version",
                "config",
                "architecture",
                "os",
            ] {
                if let Some(v) = cfg.get(k) {
                    fields.push((k.into(), v.clone()));
                }
            }
        } else {
            fields.push(("created".into(), json!(created)));
            fields.push(("container_config".into(), blank_container_config()));
            fields.push(("os".into(), json!("linux")));
        }
        // The v1id: sorted keys (serde_json's Value map is sorted), `os` only for the top layer,
        // `parent` with its prefix, plus `layer_id`.
        let mut hashed = serde_json::Map::new();
        for (k, v) in &fields {
            if k == "os" && !top {
                continue;
            }
            if k == "parent" {
                hashed.insert(k.clone(), json!(format!("sha256:{}", v.as_str().unwrap())));
            } else {
                hashed.insert(k.clone(), v.clone());
            }
        }
        hashed.insert("layer_id".into(), json!(chain.to_string()));
        let v1id = Digest::of_bytes(&serde_json::to_vec(&Value::Object(hashed)).unwrap())
            .hex()
            .to_string();
        let mut file = format!("{{\"id\":{}", json!(v1id));
        for (k, v) in &fields {
            file.push_str(&format!(
                ",{}:{}",
                json!(k),
                serde_json::to_string(v).unwrap()
            ));
        }
        file.push('}');
        out.push((v1id.clone(), file.into_bytes()));
        parent = Some(v1id);
    }
    out
}

/// The v1 `json` files of an image's layers.
pub fn v1_jsons(img: &TestImage, created: &str) -> Vec<Vec<u8>> {
    v1_folders(img, created).into_iter().map(|f| f.1).collect()
}

/// Legacy (Docker ≤ 24) layout, images saved in the given order. `created` is the daemon's blank
/// epoch (e.g. `1970-01-01T08:00:00+08:00` for a daemon on Shanghai time).
pub fn legacy(images: &[&TestImage], created: &str) -> Built {
    let mut entries = Vec::new();
    let mut folders: BTreeSet<String> = BTreeSet::new();
    let mut real_of_diff: BTreeMap<Digest, String> = BTreeMap::new();
    let mut layer_entries = Vec::new();
    let mut config_entries = Vec::new();
    let mut manifest = Vec::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for img in images {
        let mut parent: Option<String> = None;
        let mut les = Vec::new();
        for ((v1id, file), l) in v1_folders(img, created).into_iter().zip(&img.layers) {
            let entry = format!("{v1id}/layer.tar");
            if folders.insert(v1id.clone()) {
                entries.push(TEntry {
                    name: format!("{v1id}/"),
                    kind: Kind::Dir,
                    style: NameStyle::Plain,
                });
                entries.push(TEntry::file(&format!("{v1id}/VERSION"), b"1.0".to_vec()));
                entries.push(TEntry::file(&format!("{v1id}/json"), file));
                match real_of_diff.get(&l.diff) {
                    Some(other) => entries.push(TEntry {
                        name: entry.clone(),
                        kind: Kind::Symlink(format!("../{other}")),
                        style: NameStyle::Plain,
                    }),
                    None => {
                        real_of_diff.insert(l.diff.clone(), entry.clone());
                        entries.push(TEntry::file(&entry, l.data.clone()));
                    }
                }
            }
            les.push(entry);
            parent = Some(v1id);
        }
        let cfg_entry = format!("{}.json", img.id.hex());
        if !entries.iter().any(|e| e.name == cfg_entry) {
            entries.push(TEntry::file(&cfg_entry, img.config.clone()));
        }
        manifest.push(json!({"Config": cfg_entry, "RepoTags": img.tags, "Layers": les}));
        for t in &img.tags {
            let (n, tag) = t.rsplit_once(':').unwrap();
            repos
                .entry(n.to_string())
                .or_default()
                .insert(tag.to_string(), parent.clone().unwrap_or_default());
        }
        layer_entries.push(les);
        config_entries.push(cfg_entry);
    }
    entries.push(TEntry::file(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    entries.push(TEntry::file(
        "repositories",
        serde_json::to_vec(&repos).unwrap(),
    ));
    Built {
        entries: sorted(entries),
        layer_entries,
        config_entries,
    }
}

/// Gzip-compresses a blob (fast level, header mtime 0: deterministic).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Decompresses a gzip blob.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// OCI layouts: Docker ≥ 25 (`compressed == false`: layers named by diffID, with `manifest.json`
/// and `repositories`) or the containerd store (`compressed == true`: gzip layers;
/// `manifest.json` only when `with_manifest_json`).
pub fn oci(images: &[&TestImage], compressed: bool, with_manifest_json: bool) -> Built {
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut layer_entries = Vec::new();
    let mut config_entries = Vec::new();
    let mut manifest = Vec::new();
    let mut index = Vec::new();
    let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let blob = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    for img in images {
        let mut les = Vec::new();
        let mut descs = Vec::new();
        for l in &img.layers {
            let (data, mt) = if compressed {
                (gzip(&l.data), "application/vnd.oci.image.layer.v1.tar+gzip")
            } else {
                (l.data.clone(), "application/vnd.oci.image.layer.v1.tar")
            };
            let d = Digest::of_bytes(&data);
            descs.push(json!({"mediaType": mt, "digest": d.to_string(), "size": data.len()}));
            les.push(blob(&d));
            blobs.insert(blob(&d), data);
        }
        if !compressed {
            // Docker >= 25 also stores each layer's legacy v1 json as a blob.
            for j in v1_jsons(img, "1970-01-01T00:00:00Z") {
                blobs.insert(blob(&Digest::of_bytes(&j)), j);
            }
        }
        blobs.insert(blob(&img.id), img.config.clone());
        let m = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": img.id.to_string(), "size": img.config.len()},
            "layers": descs,
        });
        let mb = serde_json::to_vec(&m).unwrap();
        let md = Digest::of_bytes(&mb);
        blobs.insert(blob(&md), mb.clone());
        for t in &img.tags {
            let (_, tag) = t.rsplit_once(':').unwrap();
            index.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md.to_string(), "size": mb.len(),
                "annotations": {"io.containerd.image.name": format!("docker.io/library/{t}"),
                                "org.opencontainers.image.ref.name": tag}}));
            let (n, tag) = t.rsplit_once(':').unwrap();
            repos
                .entry(n.to_string())
                .or_default()
                .insert(tag.to_string(), img.id.hex().to_string());
        }
        manifest.push(json!({"Config": blob(&img.id), "RepoTags": img.tags, "Layers": les, "LayerSources": {}}));
        layer_entries.push(les);
        config_entries.push(blob(&img.id));
    }
    let entries = oci_entries(
        blobs,
        &index,
        with_manifest_json.then_some(&manifest),
        (!compressed).then_some(&repos),
    );
    Built {
        entries: sorted(entries),
        layer_entries,
        config_entries,
    }
}

/// Moves the `index.json` entries of the images of `platforms` (each with its architecture, OS
/// `linux`) in a layout `built` by [`oci`] (no `manifest.json`) into a multi-platform index blob,
/// named `ref_name` in `index.json` (extra entries, such as attestations, appended to it);
/// returns the index digest.
pub fn multi_platform(
    built: &mut Built,
    platforms: &[(&TestImage, &str)],
    extra: &[Value],
    ref_name: &str,
) -> Digest {
    let Some(Kind::File(top)) = built
        .entries
        .iter()
        .find(|e| e.name == "index.json")
        .map(|e| e.kind.clone())
    else {
        panic!("no index.json")
    };
    let top: Value = serde_json::from_slice(&top).unwrap();
    let mut kept = Vec::new();
    let mut listed = Vec::new();
    for d in top["manifests"].as_array().unwrap() {
        let name = d["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap_or_default();
        let arch = platforms.iter().find_map(|(img, arch)| {
            img.tags
                .iter()
                .any(|t| name == format!("docker.io/library/{t}"))
                .then_some(*arch)
        });
        match arch {
            Some(arch) => {
                let mut d = d.clone();
                d.as_object_mut().unwrap().remove("annotations");
                d["platform"] = json!({"os": "linux", "architecture": arch});
                listed.push(d);
            }
            None => kept.push(d.clone()),
        }
    }
    listed.extend(extra.iter().cloned());
    let media = "application/vnd.oci.image.index.v1+json";
    let list =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": media, "manifests": listed}))
            .unwrap();
    let digest = Digest::of_bytes(&list);
    built.entries.push(TEntry::file(
        &format!("blobs/sha256/{}", digest.hex()),
        list.clone(),
    ));
    kept.push(
        json!({"mediaType": media, "digest": digest, "size": list.len(),
                     "annotations": {"org.opencontainers.image.ref.name": ref_name}}),
    );
    let top = json!({"schemaVersion": 2, "mediaType": media, "manifests": kept});
    built.set_data("index.json", serde_json::to_vec(&top).unwrap());
    built.entries.sort_by(|a, b| a.name.cmp(&b.name));
    digest
}

/// The entries of an OCI layout: `blobs/`, `index.json` listing `index`, `manifest.json` and
/// `repositories` when given, `oci-layout`.
fn oci_entries(
    blobs: BTreeMap<String, Vec<u8>>,
    index: &[Value],
    manifest: Option<&Vec<Value>>,
    repos: Option<&BTreeMap<String, BTreeMap<String, String>>>,
) -> Vec<TEntry> {
    let mut entries = vec![
        TEntry {
            name: "blobs/".into(),
            kind: Kind::Dir,
            style: NameStyle::Plain,
        },
        TEntry {
            name: "blobs/sha256/".into(),
            kind: Kind::Dir,
            style: NameStyle::Plain,
        },
    ];
    for (n, d) in blobs {
        entries.push(TEntry::file(&n, d));
    }
    entries.push(TEntry::file(
        "index.json",
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})).unwrap(),
    ));
    if let Some(manifest) = manifest {
        entries.push(TEntry::file(
            "manifest.json",
            serde_json::to_vec(manifest).unwrap(),
        ));
    }
    entries.push(TEntry::file(
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    if let Some(repos) = repos {
        entries.push(TEntry::file(
            "repositories",
            serde_json::to_vec(repos).unwrap(),
        ));
    }
    entries
}

/// An output archive read back: name → entry.
pub fn read_tar(data: &[u8]) -> BTreeMap<String, Kind> {
    let mut a = tar::Archive::new(data);
    let mut out = BTreeMap::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let name = if e.header().entry_type() == tar::EntryType::Directory && !name.ends_with('/') {
            format!("{name}/")
        } else {
            name
        };
        let kind = match e.header().entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => {
                Kind::Symlink(e.link_name().unwrap().unwrap().display().to_string())
            }
            _ => {
                let mut d = Vec::new();
                e.read_to_end(&mut d).unwrap();
                Kind::File(d)
            }
        };
        out.insert(name, kind);
    }
    out
}
