//! `partial-load approve`: the second person's sign-off. The bundle is opened as every command
//! opens it (the build signature checked against `--key`) and its content read through the
//! checked reader offline, as `verify --offline` does, so nothing that would not load gets
//! approved; then the manifest's exact bytes are signed with the reviewer's key into
//! `MANIFEST.approval.<KEYID>.minisig` (see [`crate::approval`]). The build key cannot approve.

use crate::approval;
use crate::bundle;
use crate::bundle_reader::{self, Layers};
use crate::cli::ApproveArgs;
use crate::errors::verify_failed;
use anyhow::{bail, Context, Result};
use partial_common::output::AtomicFile;
use partial_common::sign::{self, SecretKey};
use partial_common::text::escape;
use std::io::Write;
use std::path::Path;

/// The reviewer key's password, when it has one.
pub const PASSWORD_ENV: &str = "PARTIAL_LOAD_KEY_PASSWORD";

pub async fn run(args: ApproveArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    if bundle.signature.is_none() {
        bail!(
            "{} is not signed (or no --key was given): approve only a bundle whose build \
             signature you checked",
            bundle.name()
        );
    }
    let sk = open_secret_key(&args.sign_key)?;
    let reviewer = sign::parse_public_key(&sign::public_key_text(&sk)?)?;
    approval::refuse_self_approval(&bundle.name(), bundle.signer(), reviewer.key_id())
        .map_err(|e| verify_failed(e.to_string()))?;
    let out = approval::approval_path(&bundle.manifest_path, reviewer.key_id());
    if out.exists() && !args.force {
        return Err(crate::errors::usage(format!(
            "{} already exists (use --force to overwrite)",
            out.display()
        )));
    }
    let bar = partial_common::progress::bytes("checking", Some(bundle.manifest.bundle.size));
    let b = tokio::task::spawn_blocking(move || {
        bundle_reader::verify_content(&bundle, Layers::AsCarried, bar).map(|_| bundle)
    })
    .await
    .context("the checking thread failed")??;
    let comment = approval::trusted_comment(
        &b.manifest_sha256,
        reviewer.key_id(),
        args.comment.as_deref(),
    );
    let sig = sign::sign_bytes(&sk, &b.manifest_bytes, &comment)?;
    write_atomic(&out, sig.as_bytes())?;
    eprintln!(
        "approved {} ({} image(s), built by key {}) with key {}: {}",
        escape(&b.name()),
        b.manifest.images.len(),
        b.signature.as_ref().map_or("?", |s| s.key_id.as_str()),
        reviewer.key_id(),
        out.display()
    );
    Ok(())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    f.commit()?;
    Ok(())
}

/// The reviewer's secret key, its password from [`PASSWORD_ENV`] or asked on the terminal.
fn open_secret_key(key: &Path) -> Result<SecretKey> {
    let password = std::env::var(PASSWORD_ENV).ok();
    sign::open_secret_key(key, password.as_deref(), PASSWORD_ENV)
        .with_context(|| format!("--sign-key {}", key.display()))
}
