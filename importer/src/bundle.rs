//! Opening a bundle by the name the user gave: finding its manifest and signature beside it
//! (`OUT.manifest.json`, `OUT.manifest.json.minisig`; names in `partial_common::output::naming`),
//! checking the signature against the trusted keys, parsing the manifest, and locating the
//! volumes (`OUT` itself, or `OUT.001`, `OUT.002`, … when split) with the sizes the manifest
//! states. The names the manifest recorded are informative only: renamed files are read under
//! their new names, and a file is never looked up under its recorded name. Content hashes are
//! checked while reading (see `bundle_reader`).

use crate::cli::BundleArgs;
use crate::errors::verify_failed;
use anyhow::Result;
use partial_common::manifest::{BundleManifest, FileEntry};
use partial_common::output::naming::{self, BundleFiles};
use std::io;
use std::path::{Path, PathBuf};

/// A bundle whose manifest has been read and (unless allowed otherwise) signature-checked.
pub struct Bundle {
    pub manifest: BundleManifest,
    pub manifest_path: PathBuf,
    /// The bundle's files as named on the command line.
    pub files: BundleFiles,
    /// The files to read, in order, each with what the manifest says of it.
    pub volumes: Vec<Volume>,
    /// Who signed it, when signed.
    pub signature: Option<Signed>,
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
}

/// Opens the bundle: reads the manifest, checks the signature, checks the volumes exist with
/// the stated sizes.
pub fn open(args: &BundleArgs) -> Result<Bundle> {
    let files = BundleFiles::resolve(&args.bundle);
    let manifest_path = args.manifest.clone().unwrap_or_else(|| files.manifest());
    let (manifest, signature) = read_manifest(args, &manifest_path)?;
    let volumes = locate_volumes(&files, &manifest, &manifest_path)?;
    note_renamed(&manifest, &volumes, &manifest_path);
    Ok(Bundle {
        manifest,
        manifest_path,
        files,
        volumes,
        signature,
    })
}

/// Reads the manifest and checks its signature (`MANIFEST.minisig`) and trusted comment.
fn read_manifest(
    args: &BundleArgs,
    manifest_path: &Path,
) -> Result<(BundleManifest, Option<Signed>)> {
    let mlabel = manifest_path.display().to_string();
    let bytes = std::fs::read(manifest_path)
        .map_err(|e| verify_failed(format!("cannot read manifest {mlabel}: {e}")))?;
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
    Ok((manifest, signature))
}

/// The files to read, found by the given name, each of the size the manifest states.
fn locate_volumes(
    files: &BundleFiles,
    manifest: &BundleManifest,
    manifest_path: &Path,
) -> Result<Vec<Volume>> {
    let recorded = &manifest.bundle.volumes;
    let names: Vec<&str> = recorded.iter().map(|v| v.name.as_str()).collect();
    let split = naming::is_split(&manifest.bundle.name, &names);
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

/// Says on stderr when the files carry other names than the manifest recorded (not an error:
/// the contents are checked against the manifest all the same).
fn note_renamed(manifest: &BundleManifest, volumes: &[Volume], manifest_path: &Path) {
    if let Some(msg) = renamed_note(manifest, volumes, manifest_path) {
        eprintln!("note: {msg}");
    }
}

fn renamed_note(
    manifest: &BundleManifest,
    volumes: &[Volume],
    manifest_path: &Path,
) -> Option<String> {
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
    Some(format!(
        "{} recorded the bundle as {}; reading {} (its sizes and hashes are checked all the same)",
        manifest_path.display(),
        manifest.bundle.name,
        given.join(", ")
    ))
}

fn check_signature(args: &BundleArgs, manifest: &[u8], sig_path: &Path) -> Result<Option<Signed>> {
    let sig_text = match std::fs::read_to_string(sig_path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(verify_failed(format!(
                "cannot read signature {}: {e}",
                sig_path.display()
            )))
        }
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
