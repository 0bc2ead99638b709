//! Opening a bundle by the name the user gave: finding its manifest and signature beside it
//! (`OUT.manifest.json`, `OUT.manifest.json.minisig`; names in `partial_common::output::naming`),
//! checking the signature against the trusted keys, parsing the manifest, and locating the
//! volumes (`OUT` itself, or `OUT.001`, `OUT.002`, … when split) with the sizes the manifest
//! states. The names the manifest recorded are informative only: renamed files are read under
//! their new names, and a file is never looked up under its recorded name. Content hashes are
//! checked while reading (see `bundle_reader`). The manifest and the signature are read with the
//! size caps of `partial_common::limits`, before anything in them is trusted. Approvals
//! (`--approver`) and image signatures (`--image-key`) are required here too, so no command
//! reads a bundle that lacks them.

use crate::approval;
use crate::audit;
use crate::cli::BundleArgs;
use crate::errors::verify_failed;
use crate::image_keys;
use anyhow::Result;
use partial_common::limits;
use partial_common::manifest::{BundleManifest, FileEntry};
use partial_common::output::naming::{self, BundleFiles};
use std::path::{Path, PathBuf};

/// A bundle whose manifest has been read and (unless allowed otherwise) signature-checked.
pub struct Bundle {
    pub manifest: BundleManifest,
    pub manifest_path: PathBuf,
    /// The sha256 of the manifest's exact bytes (what the next bundle of a series names as
    /// `previous`).
    pub manifest_sha256: partial_common::Digest,
    /// The bundle's files as named on the command line.
    pub files: BundleFiles,
    /// The files to read, in order, each with what the manifest says of it.
    pub volumes: Vec<Volume>,
    /// Who signed it, when signed.
    pub signature: Option<Signed>,
    /// The manifest's exact bytes (what signatures and approvals cover).
    pub manifest_bytes: Vec<u8>,
    /// The valid approvals found, when `--approver` asked for some.
    pub approvals: Vec<crate::approval::Approval>,
}

/// One file of the bundle: where it is and the size and hashes it must have.
#[derive(Clone, Debug)]
pub struct Volume {
    pub path: PathBuf,
    pub expected: FileEntry,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Signed {
    pub key_id: String,
    pub trusted_comment: String,
}

impl Bundle {
    /// The bundle as the user named it, for messages.
    pub fn name(&self) -> String {
        self.files.given.display().to_string()
    }

    /// The folder holding the bundle's files (empty for the current one).
    pub fn dir(&self) -> &Path {
        self.files.dir()
    }

    /// The key ID that signed the build, when signed.
    pub fn signer(&self) -> Option<&str> {
        self.signature.as_ref().map(|s| s.key_id.as_str())
    }

    /// What approvals of this bundle are checked against.
    fn approval_subject(&self) -> approval::Subject<'_> {
        approval::Subject {
            manifest_path: &self.manifest_path,
            bytes: &self.manifest_bytes,
            manifest_sha256: &self.manifest_sha256,
            builder: self.signer(),
        }
    }

    /// What the audit log records of this bundle.
    fn audit_facts(&self) -> audit::BundleFacts {
        let m = &self.manifest;
        audit::BundleFacts {
            name: self.name(),
            sha256: m.bundle.sha256.to_string(),
            manifest_sha256: self.manifest_sha256.to_string(),
            sequence: m.sequence,
            site: m.site.as_ref().map(|s| format!("{} ({})", s.name, s.id)),
            signer: self.signer().map(str::to_string),
            approvers: self.approvals.iter().map(|a| a.key_id.clone()).collect(),
            images: m
                .images
                .iter()
                .map(|i| audit::ImageFacts {
                    id: i.id.to_string(),
                    tags: i.tags.clone(),
                })
                .collect(),
        }
    }
}

/// Opens the bundle: reads the manifest, checks the signature, checks the volumes exist with
/// the stated sizes.
pub fn open(args: &BundleArgs) -> Result<Bundle> {
    let files = BundleFiles::resolve(&args.bundle);
    let manifest_path = args.manifest.clone().unwrap_or_else(|| files.manifest());
    let required = approval::Required::from_args(&args.approvers, args.approvals)?;
    let image_keys = image_keys::load(&args.image_keys)?;
    let (manifest, manifest_bytes, signature) =
        read_manifest(args, &manifest_path).map_err(|e| match later_volume_hint(&files.given) {
            Some(hint) if args.manifest.is_none() => e.context(hint),
            _ => e,
        })?;
    let manifest_sha256 = partial_common::Digest::of_bytes(&manifest_bytes);
    let recorded = &manifest.bundle;
    let volumes = locate_volumes(&files, &recorded.name, &recorded.volumes, &manifest_path)?;
    if let Some(note) = renamed_note(&recorded.name, &volumes, &manifest_path) {
        // Not an error: the contents are checked against the manifest all the same.
        eprintln!("note: {note}");
    }
    let mut bundle = Bundle {
        manifest,
        manifest_path,
        manifest_sha256,
        files,
        volumes,
        signature,
        manifest_bytes,
        approvals: Vec::new(),
    };
    audit::note_bundle(bundle.audit_facts());
    bundle.approvals = approval::check(&bundle.approval_subject(), &required)?;
    audit::note_bundle(bundle.audit_facts());
    image_keys::check(&bundle.manifest, &image_keys)?;
    Ok(bundle)
}

/// When the given name looks like a later volume (`X.002`), the name to give instead.
fn later_volume_hint(given: &Path) -> Option<String> {
    let name = given.file_name()?.to_str()?;
    let (stem, digits) = name.rsplit_once('.')?;
    let n: u64 = digits.parse().ok()?;
    if stem.is_empty() || n < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let first = format!("{stem}.{:0width$}", 1, width = digits.len());
    Some(format!(
        "{} looks like volume {n} of a split bundle: name its first volume, {}",
        given.display(),
        given.with_file_name(first).display()
    ))
}

/// Reads the manifest and checks its signature (`MANIFEST.minisig`) and trusted comment.
fn read_manifest(
    args: &BundleArgs,
    manifest_path: &Path,
) -> Result<(BundleManifest, Vec<u8>, Option<Signed>)> {
    let mlabel = manifest_path.display().to_string();
    let bytes = limits::read_capped(manifest_path, limits::MANIFEST, "manifest")
        .map_err(|e| verify_failed(e.to_string()))?;
    let sig_path = naming::signature_path(manifest_path);
    let signature = check_signature(args, &bytes, &sig_path)?;
    let manifest =
        BundleManifest::parse(&bytes, &mlabel).map_err(|e| verify_failed(e.to_string()))?;
    if let Some(s) = &signature {
        let expected = manifest.trusted_comment();
        if s.trusted_comment != expected {
            return Err(verify_failed(format!(
                "{}: the signature's trusted comment ({:?}) does not match the manifest ({expected:?})",
                sig_path.display(),
                s.trusted_comment
            )));
        }
    }
    Ok((manifest, bytes, signature))
}

/// The files to read, found by the given name, each of the size the manifest states for the
/// volume it `recorded` (under the bundle name `name`) at that position.
fn locate_volumes(
    files: &BundleFiles,
    name: &str,
    recorded: &[FileEntry],
    manifest_path: &Path,
) -> Result<Vec<Volume>> {
    let names: Vec<&str> = recorded.iter().map(|v| v.name.as_str()).collect();
    let split = naming::is_split(name, &names);
    let paths = files.volumes(split, recorded.len());
    let mut out = Vec::with_capacity(recorded.len());
    for (path, expected) in paths.into_iter().zip(recorded) {
        let meta = std::fs::metadata(&path).map_err(|e| {
            verify_failed(format!(
                "bundle file {} (volume {} of {} in {}) cannot be read: {e}",
                path.display(),
                out.len() + 1,
                recorded.len(),
                manifest_path.display()
            ))
        })?;
        if meta.len() != expected.size {
            return Err(verify_failed(format!(
                "bundle file {} is {} bytes, the manifest says {}{}",
                path.display(),
                meta.len(),
                expected.size,
                if meta.len() < expected.size {
                    " (truncated)"
                } else {
                    ""
                }
            )));
        }
        out.push(Volume {
            path,
            expected: expected.clone(),
        });
    }
    Ok(out)
}

/// A note for stderr when the files carry other names than the manifest recorded.
fn renamed_note(recorded_name: &str, volumes: &[Volume], manifest_path: &Path) -> Option<String> {
    let differs = volumes.iter().any(|v| {
        v.path.file_name().map(|n| n.to_string_lossy()).as_deref() != Some(v.expected.name.as_str())
    });
    if !differs {
        return None;
    }
    let given: Vec<String> = volumes
        .iter()
        .map(|v| v.path.display().to_string())
        .collect();
    let note = format!(
        "{} recorded the bundle as {recorded_name}; reading {} (its sizes and hashes are checked \
         all the same)",
        manifest_path.display(),
        given.join(", ")
    );
    // The recorded name comes from the manifest: shown escaped.
    Some(partial_common::text::escape(&note).into_owned())
}

fn check_signature(args: &BundleArgs, manifest: &[u8], sig_path: &Path) -> Result<Option<Signed>> {
    let sig_text = match limits::read_capped_text(sig_path, limits::SIGNATURE, "signature") {
        Ok(t) => Some(t),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(verify_failed(e.to_string())),
    };
    let mut keys = Vec::new();
    for k in &args.keys {
        keys.push(
            partial_common::sign::load_public_key(k)
                .map_err(|e| verify_failed(format!("public key {}: {e}", k.display())))?,
        );
    }
    match (sig_text, keys.is_empty()) {
        (None, _) if args.allow_unsigned => {
            eprintln!(
                "warning: {} is missing; loading an UNSIGNED bundle (--allow-unsigned), hashes \
                 are still checked",
                sig_path.display()
            );
            Ok(None)
        }
        (None, _) => Err(verify_failed(format!(
            "the manifest is not signed: {} is missing (refusing; --allow-unsigned accepts \
             unsigned bundles)",
            sig_path.display()
        ))),
        (Some(_), true) if args.allow_unsigned => {
            eprintln!(
                "warning: no --key given; the signature {} is NOT checked (--allow-unsigned)",
                sig_path.display()
            );
            Ok(None)
        }
        (Some(_), true) => Err(verify_failed(
            "no --key given: name the public key(s) the manifest must be signed with".to_string(),
        )),
        (Some(text), false) => {
            let v = partial_common::sign::verify(manifest, &text, &keys).map_err(|e| {
                verify_failed(format!(
                    "signature {} does not verify with {}: {e}",
                    sig_path.display(),
                    args.keys
                        .iter()
                        .map(|k| k.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            Ok(Some(Signed {
                key_id: v.key_id,
                trusted_comment: v.trusted_comment,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::{exit, Digest};

    fn entry(name: &str, size: u64) -> FileEntry {
        FileEntry {
            name: name.into(),
            size,
            sha256: Digest::of_bytes(name.as_bytes()),
            blake3: "0".repeat(64),
        }
    }

    #[test]
    fn volumes_are_found_by_the_given_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let m = d.join("m.json");
        // Renamed: read under the new name, with a note naming the recorded one.
        std::fs::write(d.join("carried.tgz"), b"12345").unwrap();
        // The recorded name exists too, with other content: it must not be read.
        std::fs::write(d.join("app.tgz"), b"1234567").unwrap();
        let files = BundleFiles::resolve(&d.join("carried.tgz"));
        let v = locate_volumes(&files, "app.tgz", &[entry("app.tgz", 5)], &m).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].path, d.join("carried.tgz"));
        let note = renamed_note("app.tgz", &v, &m).unwrap();
        assert!(
            note.contains("app.tgz") && note.contains("carried.tgz"),
            "{note}"
        );
        // Under its recorded name: no note.
        std::fs::write(d.join("app.tgz"), b"12345").unwrap();
        let files = BundleFiles::resolve(&d.join("app.tgz"));
        let v = locate_volumes(&files, "app.tgz", &[entry("app.tgz", 5)], &m).unwrap();
        assert_eq!(renamed_note("app.tgz", &v, &m), None);

        // Split and renamed, named by the first volume or by the base name.
        std::fs::write(d.join("moved.tgz.001"), b"aaa").unwrap();
        std::fs::write(d.join("moved.tgz.002"), b"bb").unwrap();
        let recorded = [entry("s.tgz.001", 3), entry("s.tgz.002", 2)];
        for given in ["moved.tgz.001", "moved.tgz"] {
            let files = BundleFiles::resolve(&d.join(given));
            let v = locate_volumes(&files, "s.tgz", &recorded, &m).unwrap();
            let paths: Vec<_> = v.iter().map(|v| v.path.clone()).collect();
            assert_eq!(paths, [d.join("moved.tgz.001"), d.join("moved.tgz.002")]);
            assert!(renamed_note("s.tgz", &v, &m).is_some());
        }
    }

    fn args_for(bundle: &Path) -> BundleArgs {
        BundleArgs {
            bundle: bundle.to_path_buf(),
            keys: vec![],
            manifest: None,
            allow_unsigned: true,
            json: false,
            approvers: vec![],
            approvals: None,
            audit: None,
            image_keys: vec![],
        }
    }

    /// A file of `len` bytes (sparse: nothing is written).
    fn sized(path: &Path, len: u64) {
        std::fs::File::create(path).unwrap().set_len(len).unwrap();
    }

    #[test]
    fn an_oversized_manifest_or_signature_is_refused_naming_file_and_limit() {
        use partial_common::limits;
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("b.tgz.manifest.json");
        let args = args_for(&dir.path().join("b.tgz"));
        sized(&m, limits::MANIFEST + 1);
        let e = read_manifest(&args, &m).err().unwrap();
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY);
        let text = format!("{e:#}");
        assert!(
            text.contains("b.tgz.manifest.json") && text.contains("limit of 64 MiB"),
            "{text}"
        );

        std::fs::write(&m, b"{}").unwrap();
        sized(&naming::signature_path(&m), limits::SIGNATURE + 1);
        let e = read_manifest(&args, &m).err().unwrap();
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY);
        let text = format!("{e:#}");
        assert!(
            text.contains("b.tgz.manifest.json.minisig") && text.contains("limit of 4 KiB"),
            "{text}"
        );
    }

    #[test]
    fn a_key_file_holding_two_keys_is_a_verification_failure_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a) = partial_common::sign::generate_keypair(None).unwrap();
        let (_, b) = partial_common::sign::generate_keypair(None).unwrap();
        let two = dir.path().join("two.pub");
        std::fs::write(&two, format!("{a}{b}")).unwrap();
        let m = dir.path().join("b.tgz.manifest.json");
        std::fs::write(&m, b"{}").unwrap();
        std::fs::write(naming::signature_path(&m), b"sig").unwrap();
        let mut args = args_for(&dir.path().join("b.tgz"));
        args.keys = vec![two];
        args.allow_unsigned = false;
        let e = read_manifest(&args, &m).err().unwrap();
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY);
        let text = format!("{e:#}");
        assert!(
            text.contains("two.pub") && text.contains("2 keys"),
            "{text}"
        );
    }

    #[test]
    fn the_renamed_note_shows_the_recorded_name_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("carried.tgz"), b"12345").unwrap();
        let files = BundleFiles::resolve(&d.join("carried.tgz"));
        let recorded = "app\u{1b}[2K\r.tgz";
        let v = locate_volumes(&files, recorded, &[entry(recorded, 5)], &d.join("m")).unwrap();
        let note = renamed_note(recorded, &v, &d.join("m")).unwrap();
        assert!(!note.chars().any(char::is_control), "{note:?}");
        assert!(note.contains("app\\u{1b}[2K\\r.tgz"), "{note}");
    }

    #[test]
    fn naming_a_later_volume_gets_a_hint() {
        let h = later_volume_hint(Path::new("d/s.tgz.002")).unwrap();
        assert!(h.contains("d/s.tgz.001"), "{h}");
        assert_eq!(later_volume_hint(Path::new("s.tgz.001")), None);
        assert_eq!(later_volume_hint(Path::new("s.tgz")), None);
        assert_eq!(later_volume_hint(Path::new(".002")), None);
    }

    #[test]
    fn a_missing_or_resized_volume_is_a_verification_failure_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let m = d.join("m.json");
        std::fs::write(d.join("x.001"), b"aaa").unwrap();
        let recorded = [entry("s.001", 3), entry("s.002", 2)];
        let files = BundleFiles::resolve(&d.join("x.001"));
        let e = locate_volumes(&files, "s", &recorded, &m).unwrap_err();
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY);
        assert!(format!("{e:#}").contains("x.002"), "{e:#}");
        std::fs::write(d.join("x.002"), b"b").unwrap();
        let e = locate_volumes(&files, "s", &recorded, &m).unwrap_err();
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY);
        assert!(format!("{e:#}").contains("truncated"), "{e:#}");
    }
}
