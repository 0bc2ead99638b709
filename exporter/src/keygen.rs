//! `partial-save keygen`: writes a minisign key pair (NAME.key, NAME.pub). The secret key is
//! password-protected unless `--no-password`; the password comes from PARTIAL_SAVE_KEY_PASSWORD or
//! from a prompt on the terminal.

use crate::cli::KeygenArgs;
use anyhow::{bail, Context, Result};
use partial_common::sign::{self, SecretKey};
use std::io::IsTerminal;
use std::path::Path;

/// Environment variable holding the secret key's password, for scripts.
pub const PASSWORD_ENV: &str = "PARTIAL_SAVE_KEY_PASSWORD";

pub fn run(args: &KeygenArgs) -> Result<()> {
    let password = if args.no_password {
        None
    } else {
        Some(new_password()?)
    };
    partial_common::sign::write_keypair(&args.output, password.as_deref(), args.force)
        .with_context(|| format!("writing key pair {}", args.output.display()))?;
    eprintln!(
        "wrote {0}.key (secret{1}) and {0}.pub (public: give it to the importing side)",
        args.output.display(),
        if args.no_password {
            ", NOT password-protected"
        } else {
            ", password-protected"
        }
    );
    Ok(())
}

fn new_password() -> Result<String> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        if p.is_empty() {
            bail!("{PASSWORD_ENV} is set but empty; use --no-password for an unprotected key");
        }
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for a password: set {PASSWORD_ENV}, or use --no-password");
    }
    let p1 = rpassword::prompt_password("Password for the new secret key: ")?;
    let p2 = rpassword::prompt_password("Same password again: ")?;
    if p1 != p2 {
        bail!("the passwords differ");
    }
    if p1.is_empty() {
        bail!("empty password; use --no-password for an unprotected key");
    }
    Ok(p1)
}

/// Opens the secret key at `key` (password from [`PASSWORD_ENV`], else asked on the terminal).
pub fn open_secret_key(key: &Path) -> Result<SecretKey> {
    let password = std::env::var(PASSWORD_ENV).ok();
    Ok(sign::open_secret_key(
        key,
        password.as_deref(),
        PASSWORD_ENV,
    )?)
}
