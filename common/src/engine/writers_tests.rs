//! Archives of other writers, built in the test the way those tools lay them out, through the
//! [sources](crate::source) and the engine: containers/image `docker-archive` (skopeo, podman:
//! top-level `<diffID>.tar` layers, `<v1id>/layer.tar` symlinks to them, manifest.json last),
//! go-containerregistry tarballs (crane: config named `sha256:<hex>`, gzip `<digest>.tar.gz`
//! layers, manifest.json last), `oci-archive` files (index.json + blobs, gzip and zstd layers, no
//! manifest.json, full and bare `org.opencontainers.image.ref.name`) and OCI layout
//! directories. For each: the base's chains are left out, the bundle agrees with the plan.

use super::tests::{check_bundle, decisions, layer_blobs, world, World};
use super::Engine;
use crate::digest::Digest;
use crate::have::HaveSet;
use crate::image::{Image, Platform};
use crate::plan::Plan;
use crate::source::{ArchiveSource, OciDirSource, Source};
use crate::testutil::archive::*;
use serde_json::json;
use std::io::Write;
use std::path::Path;

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zst(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn symlink(name: &str, target: &str) -> TEntry {
    TEntry {
        name: name.into(),
        kind: Kind::Symlink(target.into()),
        style: NameStyle::Plain,
    }
}

/// containers/image `docker-archive`: layers first, each diffID once as `<hex>.tar`, then the
/// legacy folders with `layer.tar` symlinks, the config, `manifest.json` and `repositories`.
fn containers_image(images: &[&TestImage]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut manifest = Vec::new();
    for img in images {
        let mut paths = Vec::new();
        for (l, chain) in img.layers.iter().zip(img.chains()) {
            let name = format!("{}.tar", l.diff.hex());
            if seen.insert(name.clone()) {
                entries.push(TEntry::file(&name, l.data.clone()));
            }
            let folder = Digest::of_bytes(format!("{}{}", img.id, chain).as_bytes());
            entries.push(TEntry::file(
                &format!("{}/VERSION", folder.hex()),
                b"1.0".to_vec(),
            ));
            entries.push(TEntry::file(
                &format!("{}/json", folder.hex()),
                b"{}".to_vec(),
            ));
            entries.push(symlink(
                &format!("{}/layer.tar", folder.hex()),
                &format!("../{name}"),
            ));
            paths.push(name);
        }
        entries.push(TEntry::file(
            &format!("{}.json", img.id.hex()),
            img.config.clone(),
        ));
        let tags: Vec<String> = img
            .tags
            .iter()
            .map(|t| format!("docker.io/library/{t}"))
            .collect();
        manifest.push(
            json!({"Config": format!("{}.json", img.id.hex()), "RepoTags": tags, "Layers": paths}),
        );
    }
    entries.push(TEntry::file(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    write_tar(&entries, End::Proper)
}

/// A go-containerregistry tarball: config `sha256:<hex>`, gzip layers `<digest>.tar.gz`,
/// `manifest.json` last.
fn crane(images: &[&TestImage]) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut manifest = Vec::new();
    for img in images {
        entries.push(TEntry::file(
            &format!("sha256:{}", img.id.hex()),
            img.config.clone(),
        ));
        let mut paths = Vec::new();
        for l in &img.layers {
            let data = gz(&l.data);
            let name = format!("{}.tar.gz", Digest::of_bytes(&data).hex());
            if !entries.iter().any(|e| e.name == name) {
                entries.push(TEntry::file(&name, data));
            }
            paths.push(name);
        }
        manifest.push(json!({"Config": format!("sha256:{}", img.id.hex()), "RepoTags": img.tags, "Layers": paths}));
    }
    entries.push(TEntry::file(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    write_tar(&entries, End::Proper)
}

/// An OCI image layout's files (`oci-archive` or directory): one manifest per image, layers
/// compressed by `compress` (per position), each image named by `ref_name(tag)`.
fn oci_layout(
    images: &[&TestImage],
    compress: &dyn Fn(usize) -> Option<bool>,
    ref_name: &dyn Fn(&str) -> String,
) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let add = |files: &mut Vec<(String, Vec<u8>)>, data: Vec<u8>| {
        let d = Digest::of_bytes(&data);
        let name = format!("blobs/sha256/{}", d.hex());
        if !files.iter().any(|(n, _)| *n == name) {
            files.push((name, data.clone()));
        }
        (d, data.len())
    };
    let mut index = Vec::new();
    for img in images {
        let mut descs = Vec::new();
        for (pos, l) in img.layers.iter().enumerate() {
            let (data, mt) = match compress(pos) {
                Some(true) => (gz(&l.data), "application/vnd.oci.image.layer.v1.tar+gzip"),
                Some(false) => (zst(&l.data), "application/vnd.oci.image.layer.v1.tar+zstd"),
                None => (l.data.clone(), "application/vnd.oci.image.layer.v1.tar"),
            };
            let (d, n) = add(&mut files, data);
            descs.push(json!({"mediaType": mt, "digest": d.to_string(), "size": n}));
        }
        let (cd, cn) = add(&mut files, img.config.clone());
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": cn},
            "layers": descs});
        let (md, mn) = add(&mut files, serde_json::to_vec(&m).unwrap());
        for t in &img.tags {
            index.push(
                json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": md.to_string(), "size": mn,
                "annotations": {"org.opencontainers.image.ref.name": ref_name(t)}}),
            );
        }
    }
    files.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    files.push((
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": index})).unwrap(),
    ));
    files
}

fn as_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<TEntry> = files
        .iter()
        .map(|(n, d)| TEntry::file(n, d.clone()))
        .collect();
    write_tar(&entries, End::Proper)
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (n, d) in files {
        let p = dir.join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, d).unwrap();
    }
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// Exports `app:1` from `src` into a bundle, the destination holding `have`; checks the bundle.
fn export(src: &dyn Source, reference: &str, have: HaveSet) -> (Plan, Vec<u8>) {
    let img = src
        .find(reference)
        .unwrap_or_else(|| panic!("{reference} in {}", src.label()));
    let mut e = Engine::new(Vec::new(), vec![img.clone()], have);
    src.stream(&[img], &mut e).unwrap();
    let (plan, out) = e.finish().unwrap();
    check_bundle(&out, &plan);
    (plan, out)
}

/// The have-set of every image of `src` (as `--exclude-archive` gives it).
fn base_of(src: &dyn Source) -> HaveSet {
    let mut h = HaveSet::new();
    for img in src.images() {
        h.add_image(
            &img.diff_ids(),
            &crate::have::Origin::Archive {
                file: src.label(),
                image: img.name(),
                image_id: img.id.clone(),
            },
        );
    }
    h
}

fn app_layers(w: &World) -> [Digest; 2] {
    [w.app.layers[1].diff.clone(), w.app.layers[2].diff.clone()]
}

#[test]
fn containers_image_docker_archive() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let full = write_file(dir.path(), "full.tar", &containers_image(&[&w.app]));
    let base = write_file(dir.path(), "base.tar", &containers_image(&[&w.base]));
    let src = ArchiveSource::open(&full, None).unwrap();
    assert_eq!(
        src.images()[0].tags,
        vec!["app:1".to_string()],
        "tags normalised"
    );
    let have = base_of(&ArchiveSource::open(&base, None).unwrap());
    let (plan, out) = export(&src, "docker.io/library/app:1", have);
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    let blobs = layer_blobs(&read_tar(&out));
    assert_eq!(blobs.len(), 2, "{blobs:?}");
    for d in app_layers(&w) {
        assert!(blobs.contains(&format!("blobs/sha256/{}", d.hex())));
    }
    assert_eq!((plan.blobs_carried, plan.blobs_left_out), (2, 1));
}

#[test]
fn crane_tarball_with_gzip_layers() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let full = write_file(dir.path(), "full.tar", &crane(&[&w.base, &w.app]));
    let src = ArchiveSource::open(&full, None).unwrap();
    assert_eq!(src.images().len(), 2);
    let base = src.find("base:1").unwrap();
    let mut have = HaveSet::new();
    have.add_image(
        &base.diff_ids(),
        &crate::have::Origin::Image {
            name: "base:1".into(),
            image_id: base.id.clone(),
        },
    );
    let (plan, out) = export(&src, "app:1", have);
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    let blob = plan.images[0].layers[1].blob.clone().unwrap();
    assert_eq!(blob.compression, crate::codec::Compression::Gzip);
    assert_eq!(layer_blobs(&read_tar(&out)).len(), 2);
    // A corrupted compressed layer is refused, naming it.
    let mut bytes = crane(&[&w.base, &w.app]);
    let needle = gz(&w.app.layers[1].data);
    let at = bytes
        .windows(needle.len())
        .position(|x| x == needle)
        .unwrap();
    bytes[at + needle.len() - 9] ^= 0xff;
    let bad = write_file(dir.path(), "bad.tar", &bytes);
    let src = ArchiveSource::open(&bad, None).unwrap();
    let img = src.find("app:1").unwrap();
    let mut e = Engine::new(Vec::new(), vec![img.clone()], HaveSet::new());
    let err = src
        .stream(&[img], &mut e)
        .err()
        .or_else(|| e.finish().err())
        .expect("corruption found");
    assert!(err.to_string().contains(".tar.gz"), "{err}");
}

#[test]
fn oci_archive_and_directory_with_gzip_and_zstd_layers() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    // Layer 1 is zstd, the others gzip; the base (a) is uncompressed in the base layout.
    let files = oci_layout(&[&w.app], &|pos| Some(pos != 1), &|t| {
        format!("docker.io/library/{t}")
    });
    let base_files = oci_layout(&[&w.base], &|_| None, &|t| {
        t.rsplit_once(':').unwrap().1.to_string()
    });
    let archive = write_file(dir.path(), "app.oci.tar", &as_tar(&files));
    let layout = dir.path().join("layout");
    write_dir(&layout, &files);
    let base_dir = dir.path().join("base");
    write_dir(&base_dir, &base_files);
    let base = OciDirSource::open(&base_dir, None).unwrap();
    // A bare ref name is a tag of the layout: found as `1`, or as `NAME:1`. `1` is a valid
    // repository name on its own, so it tags the image `1:latest`, as Docker names it.
    assert_eq!(base.find("1").unwrap().tags, vec!["1:latest".to_string()]);
    assert_eq!(
        base.find("mybase:1").unwrap().tags,
        vec!["mybase:1".to_string()]
    );
    let sources: Vec<Box<dyn Source>> = vec![
        Box::new(ArchiveSource::open(&archive, Some(&Platform::host())).unwrap()),
        Box::new(OciDirSource::open(&layout, None).unwrap()),
    ];
    for src in &sources {
        let (plan, out) = export(src.as_ref(), "app:1", base_of(&base));
        assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
        let out = read_tar(&out);
        assert_eq!(layer_blobs(&out).len(), 2);
        assert!(
            out.contains_key("manifest.json"),
            "inputs without one get one"
        );
        // The zstd layer is written decompressed (Docker < 23 cannot load zstd), gzip as is.
        let kinds: Vec<_> = plan.images[0].layers[1..3]
            .iter()
            .map(|l| l.blob.as_ref().unwrap().compression)
            .collect();
        assert_eq!(
            kinds,
            vec![
                crate::codec::Compression::None,
                crate::codec::Compression::Gzip
            ]
        );
        let b = w.app.layers[1].diff.clone();
        assert!(layer_blobs(&out).contains(&format!("blobs/sha256/{}", b.hex())));
        assert_eq!(plan.layout, crate::plan::Layout::Containerd, "gzip kept");
    }
}

/// All of `app`'s layers zstd, as an `oci-archive` tar (blobs first, `index.json` last).
fn zstd_archive(w: &World) -> Vec<u8> {
    as_tar(&oci_layout(&[&w.app], &|_| Some(false), &|t| t.to_string()))
}

#[test]
fn zstd_layers_are_written_decompressed_named_by_diff_id() {
    let w = world();
    let tar = zstd_archive(&w);
    let ix = crate::archive::scan(&tar[..]).unwrap();
    // Scanned (an archive file: layers known when they arrive) and one pass without an index
    // (a daemon stream: the layers arrive before the manifest that names them, so are spooled).
    for indexed in [true, false] {
        let img = match indexed {
            true => ix.model(&ix.images[0]),
            false => Image::from_diff_ids(w.app.id.clone(), w.app.tags.clone(), &w.app.diffs()),
        };
        let mut e = Engine::new(Vec::new(), vec![img], have(&[&w.base]));
        e.add_input(&tar[..], "zstd", indexed.then(|| ix.clone()))
            .unwrap();
        let (plan, out) = e.finish().unwrap();
        check_bundle(&out, &plan);
        assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
        let want: std::collections::BTreeSet<String> = app_layers(&w)
            .iter()
            .map(|d| format!("blobs/sha256/{}", d.hex()))
            .collect();
        assert_eq!(layer_blobs(&read_tar(&out)), want, "indexed={indexed}");
        for l in &plan.images[0].layers[1..] {
            let b = l.blob.as_ref().unwrap();
            assert_eq!(b.compression, crate::codec::Compression::None);
            assert_eq!(b.digest, l.diff_id);
            assert_eq!(b.media_type, crate::image::layer_media_type(b.compression));
        }
        assert_eq!(
            plan.layout,
            crate::plan::Layout::Oci,
            "nothing compressed written"
        );
        // What was carried: the uncompressed tars' sizes.
        let sizes: u64 = w.app.layers[1..3].iter().map(|l| l.data.len() as u64).sum();
        assert_eq!(plan.bytes_carried, sizes);
    }
}

#[test]
fn a_corrupt_zstd_layer_is_refused_naming_it() {
    let w = world();
    let mut tar = zstd_archive(&w);
    let needle = zst(&w.app.layers[1].data);
    let at = tar.windows(needle.len()).position(|x| x == needle).unwrap();
    tar[at + needle.len() / 2] ^= 0x55;
    let ix = crate::archive::scan(&tar[..]).unwrap();
    for indexed in [true, false] {
        let img = Image::from_diff_ids(w.app.id.clone(), w.app.tags.clone(), &w.app.diffs());
        let img = match indexed {
            true => ix.model(&ix.images[0]),
            false => img,
        };
        let mut e = Engine::new(Vec::new(), vec![img], HaveSet::new());
        let err = e
            .add_input(&tar[..], "zstd", indexed.then(|| ix.clone()))
            .err()
            .or_else(|| e.finish().err())
            .expect("corruption found");
        let blob = Digest::of_bytes(&needle);
        assert!(
            err.to_string().contains(blob.hex()),
            "indexed={indexed}: {err}"
        );
    }
}

#[test]
fn oci_directory_streams_only_the_wanted_layers() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let files = oci_layout(&[&w.base, &w.app, &w.other], &|_| Some(true), &|t| {
        t.to_string()
    });
    write_dir(dir.path(), &files);
    let src = OciDirSource::open(dir.path(), None).unwrap();
    assert_eq!(src.images().len(), 3);
    let mut have = HaveSet::new();
    have.add_image(
        &w.base.diffs(),
        &crate::have::Origin::Image {
            name: "base:1".into(),
            image_id: w.base.id.clone(),
        },
    );
    // Only other's layers are read: app's own layer c may even be damaged.
    let c = gz(&w.app.layers[2].data);
    std::fs::write(
        dir.path()
            .join(format!("blobs/sha256/{}", Digest::of_bytes(&c).hex())),
        b"damaged",
    )
    .unwrap();
    let (plan, _) = export(&src, "other:1", have);
    assert_eq!(decisions(&plan, 0), vec![true, true]);
    // Missing layout files are named.
    let empty = tempfile::tempdir().unwrap();
    let e = OciDirSource::open(empty.path(), None).err().unwrap();
    assert!(e.to_string().contains("oci-layout"), "{e}");
}

#[test]
fn image_model_of_every_writer_agrees() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let writers: Vec<(&str, Vec<u8>)> = vec![
        ("legacy", legacy(&[&w.app], "1970-01-01T00:00:00Z").tar()),
        ("oci", oci(&[&w.app], false, true).tar()),
        ("containerd", oci(&[&w.app], true, false).tar()),
        ("containers-image", containers_image(&[&w.app])),
        ("crane", crane(&[&w.app])),
        (
            "oci-archive",
            as_tar(&oci_layout(&[&w.app], &|_| Some(true), &|t| t.to_string())),
        ),
    ];
    for (name, bytes) in writers {
        let p = write_file(dir.path(), name, &bytes);
        let src = ArchiveSource::open(&p, None).unwrap();
        let img: Image = src.find("app:1").unwrap_or_else(|| panic!("{name}"));
        assert_eq!(img.id, w.app.id, "{name}");
        assert_eq!(img.diff_ids(), w.app.diffs(), "{name}");
        assert_eq!(img.config.as_deref(), Some(&w.app.config[..]), "{name}");
        let (plan, _) = export(&src, "app:1", HaveSet::new());
        assert_eq!(plan.blobs_carried, 3, "{name}");
    }
}

#[test]
fn compressed_layers_named_by_no_digest_are_hashed_by_the_scan() {
    // A docker-archive whose gzip layers have arbitrary names: the scan hashes them, so the
    // bundle can name each blob by its digest before it streams.
    let w = world();
    let mut entries = vec![TEntry::file(
        &format!("{}.json", w.app.id.hex()),
        w.app.config.clone(),
    )];
    let mut paths = Vec::new();
    for (i, l) in w.app.layers.iter().enumerate() {
        let name = format!("layer{i}.tar.gz");
        entries.push(TEntry::file(&name, gz(&l.data)));
        paths.push(name);
    }
    let manifest = json!([{"Config": format!("{}.json", w.app.id.hex()), "RepoTags": ["app:1"], "Layers": paths}]);
    entries.push(TEntry::file(
        "manifest.json",
        serde_json::to_vec(&manifest).unwrap(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(dir.path(), "odd.tar", &write_tar(&entries, End::Proper));
    let src = ArchiveSource::open(&p, None).unwrap();
    let img = src.find("app:1").unwrap();
    assert_eq!(
        img.layers[1].blob.digest,
        Digest::of_bytes(&gz(&w.app.layers[1].data))
    );
    let (plan, out) = export(&src, "app:1", crate::testutil::archive::have(&[&w.base]));
    assert_eq!(decisions(&plan, 0), vec![false, true, true, true]);
    assert_eq!(layer_blobs(&read_tar(&out)).len(), 2);
}

/// `app:1` as one tag of a multi-platform index (nested in `index.json`): `app` for linux/amd64,
/// `other` (other layers, another config) for linux/arm64.
fn multi_platform_layout(w: &World) -> Vec<(String, Vec<u8>)> {
    let mut files = oci_layout(&[&w.app, &w.other], &|_| Some(true), &|t| t.to_string());
    let at = files.iter().position(|(n, _)| n == "index.json").unwrap();
    let ix: serde_json::Value = serde_json::from_slice(&files[at].1).unwrap();
    let mut descs = ix["manifests"].as_array().unwrap().clone();
    for (d, arch) in descs.iter_mut().zip(["amd64", "arm64"]) {
        d.as_object_mut().unwrap().remove("annotations");
        d["platform"] = json!({"os": "linux", "architecture": arch});
    }
    let media = "application/vnd.oci.image.index.v1+json";
    let list =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": media, "manifests": descs}))
            .unwrap();
    let ld = Digest::of_bytes(&list);
    files.push((format!("blobs/sha256/{}", ld.hex()), list.clone()));
    files[at].1 = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
        {"mediaType": media, "digest": ld.to_string(), "size": list.len(),
         "annotations": {"org.opencontainers.image.ref.name": "app:1"}}]}))
    .unwrap();
    files
}

#[test]
fn the_platform_holds_wherever_a_tag_is_resolved() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    let files = multi_platform_layout(&w);
    let archive = write_file(dir.path(), "multi.oci.tar", &as_tar(&files));
    let layout = dir.path().join("multi");
    write_dir(&layout, &files);
    for (arch, want) in [("amd64", &w.app), ("arm64", &w.other)] {
        let p = Platform::parse(&format!("linux/{arch}")).unwrap();
        let sources: Vec<Box<dyn Source>> = vec![
            Box::new(ArchiveSource::open(&archive, Some(&p)).unwrap()),
            Box::new(OciDirSource::open(&layout, Some(&p)).unwrap()),
        ];
        for src in &sources {
            let img = src.find("app:1").unwrap();
            assert_eq!(img.id, want.id, "{arch}");
            // The index digest names both platforms' images: the engine must still take the
            // wanted one, following the platform or not.
            for followed in [Some(p.clone()), None] {
                let mut e = Engine::new(Vec::new(), vec![img.clone()], HaveSet::new());
                e.set_platform(followed.clone());
                src.stream(std::slice::from_ref(&img), &mut e).unwrap();
                let (plan, out) = e.finish().unwrap_or_else(|err| {
                    panic!("{arch} {} following {followed:?}: {err}", src.label())
                });
                check_bundle(&out, &plan);
                assert_eq!(plan.images[0].id, want.id, "{arch}");
                assert_eq!(plan.images[0].tags, vec!["app:1".to_string()]);
                assert_eq!(plan.images[0].layers.len(), want.layers.len());
            }
        }
    }
}

#[test]
fn bare_ref_names_tag_images_as_docker_would() {
    let w = world();
    let dir = tempfile::tempdir().unwrap();
    // umoci-style bare ref names: `app1` is a valid repository name, `Other1` is not.
    let files = oci_layout(&[&w.app, &w.other], &|_| Some(true), &|t| match t {
        "app:1" => "app1".to_string(),
        _ => "Other1".to_string(),
    });
    let archive = write_file(dir.path(), "bare.oci.tar", &as_tar(&files));
    let layout = dir.path().join("bare");
    write_dir(&layout, &files);
    let sources: Vec<Box<dyn Source>> = vec![
        Box::new(ArchiveSource::open(&archive, None).unwrap()),
        Box::new(OciDirSource::open(&layout, None).unwrap()),
    ];
    let tags = |img: Option<Image>| img.expect("found").tags;
    for src in &sources {
        assert_eq!(tags(src.find("app1")), vec!["app1:latest".to_string()]);
        assert_eq!(
            tags(src.find("app1:latest")),
            vec!["app1:latest".to_string()]
        );
        assert_eq!(tags(src.find("mine:app1")), vec!["mine:app1".to_string()]);
        assert!(tags(src.find("Other1")).is_empty());
        assert_eq!(tags(src.find("x/y:Other1")), vec!["x/y:Other1".to_string()]);
        // Everything, without -i: the valid name tags its image, the other stays untagged and
        // the plan says so.
        let all = src.images().to_vec();
        let by_id = |id: &Digest| all.iter().find(|i| i.id == *id).unwrap().tags.clone();
        assert_eq!(by_id(&w.app.id), vec!["app1:latest".to_string()]);
        assert!(by_id(&w.other.id).is_empty());
        let mut e = Engine::new(Vec::new(), all.clone(), HaveSet::new());
        src.stream(&all, &mut e).unwrap();
        let (plan, out) = e.finish().unwrap();
        check_bundle(&out, &plan);
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        assert!(plan.warnings[0].contains("Other1"), "{:?}", plan.warnings);
        assert!(
            plan.warnings[0].contains(w.other.id.as_str()),
            "{:?}",
            plan.warnings
        );
        // Selected by its bare name: tagged, no warning.
        let (plan, _) = export(src.as_ref(), "app1", HaveSet::new());
        assert_eq!(plan.images[0].tags, vec!["app1:latest".to_string()]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }
}
