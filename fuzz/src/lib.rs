//! The fuzz harness: one function per cargo-fuzz target (`fuzz_targets/<name>.rs` calls
//! `partial_fuzz::<name>`). Each takes arbitrary bytes and must return, whatever they are; a panic
//! (or, under libFuzzer, an out-of-memory or a timeout) is a bug.
//!
//! The same file is compiled into `tests/tests/e2e/fuzz_regressions.rs`, which replays every file of
//! `fuzz/regressions/<target>/` in plain `cargo test`: so it may use only the workspace's library
//! crates (`partial_common`, `partial_chart`) and `std`.

use partial_common::archive::scan;
use partial_common::engine::Engine;
use partial_common::have::{HaveSet, Origin};
use partial_common::image::Image;
use partial_common::inventory::Inventory;
use partial_common::manifest::BundleManifest;
use partial_common::sign::{verify, PublicKey};
use partial_common::Digest;
use std::io;

/// The target names, as `fuzz/fuzz_targets/<name>.rs` and `fuzz/regressions/<name>/`.
pub const TARGETS: &[&str] = &[
    "archive_scan",
    "archive_filter",
    "manifest_parse",
    "inventory_parse",
    "signature_verify",
    "public_key_parse",
    "chart_discover",
    "bundle_source",
    "registry_response",
];

/// Runs the harness function of `target` on `data`; `false` for an unknown target name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "archive_scan" => archive_scan(data),
        "archive_filter" => archive_filter(data),
        "manifest_parse" => manifest_parse(data),
        "inventory_parse" => inventory_parse(data),
        "signature_verify" => signature_verify(data),
        "public_key_parse" => public_key_parse(data),
        "chart_discover" => chart_discover(data),
        "bundle_source" => bundle_source(data),
        "registry_response" => registry_response(data),
        _ => return false,
    }
    true
}

/// The public key `signature_verify` checks against (a throwaway key made for fuzzing; its secret
/// half is not kept: the seeds in `fuzz/regressions/signature_verify/` were signed with it).
pub const FUZZ_PUBLIC_KEY: &str = "untrusted comment: minisign public key BD093224FAB9080C
RWQMCLn6JDIJvcf5q4NN4GdTXT3DyAe6f6UoVzjI2vvj7Y+8VHaTa9K+
";

/// A plain tar stream (any layout, or garbage) → `archive::scan`, and the images in the model.
pub fn archive_scan(data: &[u8]) {
    if let Ok(index) = scan(data) {
        let _ = index.models();
        // Lookups on what was found must not panic either.
        for img in &index.images {
            let _ = index.find(img.source.id.as_str());
            let _ = index.find(&img.source.id.hex()[..12]);
            for t in &img.source.tags {
                let _ = index.find(t);
            }
        }
    }
}

/// `[control byte] + tar stream` → `Engine` into a sink, then `finish`.
///
/// The control byte picks, among the images `scan` finds in the stream: bits 0–3 which of the
/// first four are exported (none set: all of them); bits 4–5 which of the first two the
/// destination holds (all layers but the top one; a one-layer image entirely); bit 6 streams the
/// archive twice (two inputs); bit 7 passes the scan index to `add_input` (archive-file mode)
/// rather than `None` (live-daemon mode, images known by their diffIDs only). When `scan` fails,
/// one fixed image is exported.
pub fn archive_filter(data: &[u8]) {
    let Some((&ctrl, tar)) = data.split_first() else {
        return;
    };
    let index = scan(tar).ok();
    let indexed = ctrl & 0x80 != 0;
    let mut have = HaveSet::new();
    let wanted: Vec<Image> = match &index {
        Some(ix) => {
            let all: Vec<Image> = ix
                .models()
                .into_iter()
                .map(|m| {
                    if indexed {
                        m
                    } else {
                        Image::from_diff_ids(m.id.clone(), m.tags.clone(), &m.diff_ids())
                    }
                })
                .collect();
            for (i, s) in all.iter().enumerate().take(2) {
                if ctrl & (0x10 << i) != 0 {
                    let d = s.diff_ids();
                    let n = d.len().saturating_sub(1).max(1).min(d.len());
                    have.add_image(
                        &d[..n],
                        &Origin::Image {
                            name: format!("have{i}"),
                            image_id: s.id.clone(),
                        },
                    );
                }
            }
            let picked: Vec<Image> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 4 && ctrl & (1 << i) != 0)
                .map(|(_, s)| s.clone())
                .collect();
            if picked.is_empty() {
                all
            } else {
                picked
            }
        }
        None => vec![Image::from_diff_ids(
            Digest::of_bytes(b"{}"),
            vec!["fuzz:1".into()],
            &[Digest::of_bytes(b"layer")],
        )],
    };
    let ix = if indexed { index } else { None };
    let mut e = Engine::new(io::sink(), wanted, have);
    if e.add_input(tar, "input 1", ix.clone()).is_err() {
        return;
    }
    if ctrl & 0x40 != 0 && e.add_input(tar, "input 2", ix).is_err() {
        return;
    }
    let _ = e.finish();
}

/// Bytes → `BundleManifest::parse`; what parses must survive a round trip.
pub fn manifest_parse(data: &[u8]) {
    if let Ok(m) = BundleManifest::parse(data, "fuzz.manifest.json") {
        let _ = m.trusted_comment();
        let again = BundleManifest::parse(&m.to_bytes(), "round trip")
            .expect("a parsed manifest serialises to a valid one");
        assert_eq!(again, m, "manifest round trip");
    }
}

/// Bytes → `Inventory::parse`; what parses must survive a round trip and fill a have-set.
pub fn inventory_parse(data: &[u8]) {
    if let Ok(inv) = Inventory::parse(data, "fuzz.inventory.json") {
        let mut have = HaveSet::new();
        inv.add_to(&mut have, "fuzz.inventory.json");
        let again = Inventory::parse(&inv.to_bytes(), "round trip")
            .expect("a parsed inventory serialises to a valid one");
        assert_eq!(again, inv, "inventory round trip");
    }
}

/// `signature text + NUL + signed data` → `sign::verify` against [`FUZZ_PUBLIC_KEY`] (the key also
/// listed twice, and next to an unrelated key, to reach the several-keys paths). Input without a
/// NUL is all signature, with empty data.
pub fn signature_verify(data: &[u8]) {
    let (sig, signed) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let sig = String::from_utf8_lossy(sig);
    let key = PublicKey::parse(FUZZ_PUBLIC_KEY, "fuzz key").expect("the fuzz key parses");
    let _ = verify(signed, &sig, std::slice::from_ref(&key));
    let _ = verify(signed, &sig, &[]);
    let _ = verify(signed, &sig, &[key.clone(), key]);
}

/// Bytes (lossy UTF-8) → `PublicKey::parse`; a parsed key re-parses from its base64 to itself.
pub fn public_key_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(k) = PublicKey::parse(&text, "fuzz") {
        let again = PublicKey::parse(k.to_base64(), "round trip").expect("base64 re-parses");
        assert_eq!(again, k);
        assert_eq!(again.key_id(), k.key_id());
    }
}

/// Bytes → chart discovery: as text, an image list or Kubernetes YAML (`Discovery::add_list`:
/// YAML documents, pod specs, reference normalisation); as a chart `.tgz` (`load::parse_archive`:
/// tar, Chart.yaml, values, subcharts), then its declared images and values guesses.
pub fn chart_discover(data: &[u8]) {
    use partial_chart::{declared, guess, load, reference, Discovery};
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Discovery::default().add_list(text, "fuzz");
    }
    if let Ok(chart) = load::parse_archive(data, "fuzz") {
        if let Ok(found) = declared::declared(&chart, "fuzz") {
            for d in found {
                let _ = reference::normalise(&d.image);
            }
        }
        for g in guess::guesses(&chart, &chart.values) {
            let _ = reference::normalise(&g.image);
        }
    }
}

/// A bundle tar checked against a manifest (`bundle_source::copy_checked`): the input is a
/// control byte (bit 0: delta layers rebuilt), a 2-byte little-endian length `n`, `n` bytes of
/// manifest JSON (which must parse, as every manifest a command reads has), then the tar.
/// Whatever passes must be a tar the same check accepts again, unchanged.
pub fn bundle_source(data: &[u8]) {
    use partial_common::bundle_source::{copy_checked, DeltaForm};
    let [control, lo, hi, rest @ ..] = data else {
        return;
    };
    let n = u16::from_le_bytes([*lo, *hi]) as usize;
    if rest.len() < n {
        return;
    }
    let (manifest, tar) = rest.split_at(n);
    let Ok(m) = BundleManifest::parse(manifest, "fuzz.manifest.json") else {
        return;
    };
    let form = match control & 1 {
        0 => DeltaForm::Encoded,
        _ => DeltaForm::Rebuilt,
    };
    if let Ok(out) = copy_checked(tar, &m, form, Vec::new()) {
        let again = copy_checked(&out.out[..], &m, form, Vec::new())
            .expect("what the check wrote passes it again");
        assert_eq!(again.out, out.out, "the checked bundle is a fixed point");
    }
}

/// What a registry answers, the parts read before anything is trusted: a manifest or index body
/// (its media type from the control byte, or embedded) parsed and asked for a platform, and a
/// `WWW-Authenticate` challenge. The control byte picks which.
pub fn registry_response(data: &[u8]) {
    use partial_common::registry::auth::Challenge;
    use partial_common::registry::manifest::{
        embedded_media_type, Manifest, Platform, RawManifest,
    };
    let [control, body @ ..] = data else {
        return;
    };
    const TYPES: [&str; 4] = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ];
    match control % 3 {
        0 | 1 => {
            let media = match control % 3 {
                0 => TYPES[(*control as usize / 3) % TYPES.len()].to_string(),
                _ => embedded_media_type(body).unwrap_or_default(),
            };
            let raw = RawManifest::new(&media, body.to_vec().into());
            if let Ok(Manifest::Index(i)) = raw.parse() {
                let _ = i.platforms();
                for p in ["linux/amd64", "linux/arm64/v8", "windows/amd64"] {
                    if let Some(p) = Platform::parse(p) {
                        let _ = i.select(&p);
                    }
                }
            }
        }
        _ => {
            let _ = Challenge::parse(&String::from_utf8_lossy(body));
        }
    }
}
