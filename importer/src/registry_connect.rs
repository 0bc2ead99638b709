//! Connecting to a registry from the `--insecure`, `--ca-file`, `--username`,
//! `--password-stdin` and `--allow-realm` flags (else Docker's `config.json`); registry errors become anyhow errors
//! carrying the exit code the registry client assigns them (5 unreachable or refusing, 3 bad
//! data, 2 bad reference).

use crate::cli::RegistryArgs;
use anyhow::Result;
use partial_common::exit::{self, Coded};
use partial_common::registry::{Credentials, Registry, RegistryError, RegistryOptions};

/// A registry error with its own exit code.
pub fn registry_err(e: RegistryError) -> anyhow::Error {
    anyhow::Error::new(Coded::new(e.exit_code(), e))
}

/// Connects to `registry` (`HOST[:PORT]`) as the flags say.
pub async fn connect(registry: &str, args: &RegistryArgs) -> Result<Registry> {
    let mut opts = RegistryOptions::default();
    opts.transport.insecure = args.insecure;
    opts.transport.ca_files = args.ca_files.clone();
    opts.allow_realms = args.allow_realms.clone();
    if let Some(user) = &args.username {
        let credentials = Credentials::from_password_input(user, std::io::stdin())
            .map_err(|e| anyhow::Error::new(Coded::new(exit::USAGE, e)))?;
        opts.credentials = Some(credentials);
    }
    Registry::connect(registry, &opts)
        .await
        .map_err(registry_err)
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn push_takes_allow_realm_repeatable_and_checked() {
        let parse = |extra: &[&str]| {
            Cli::try_parse_from(
                ["partial-load", "push", "b.tgz", "--to", "reg.local:5000"]
                    .iter()
                    .chain(extra),
            )
        };
        let Command::Push(p) = parse(&["--allow-realm", "auth.local:5001", "--allow-realm", "sso"])
            .unwrap()
            .command
        else {
            panic!("not push");
        };
        assert_eq!(p.connection.allow_realms, ["auth.local:5001", "sso"]);
        let e = parse(&["--allow-realm", "http://auth.local"]).unwrap_err();
        assert!(e.to_string().contains("HOST:PORT"), "{e}");
    }
}
