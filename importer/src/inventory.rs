//! `partial-load inventory`: what this daemon (or, with `--registry`, that registry) holds, as
//! the JSON that `partial-save --have` reads (schema in `partial_common::inventory`).

use crate::cli::InventoryArgs;
use crate::connect::connect;
use crate::registry_images;
use anyhow::{bail, Context, Result};
use partial_common::daemon::DaemonInfo;
use partial_common::exit::{self, Coded};
use partial_common::inventory::Inventory;
use partial_common::manifest::ToolInfo;
use partial_common::registry::Platform;
use std::io::Write;

pub async fn run(args: InventoryArgs) -> Result<()> {
    refuse_existing(&args)?; // before the daemon or registry is asked anything
    let inv = match (&args.registry, &args.containerd.socket) {
        (Some(name), _) => of_registry(name, &args).await?,
        (None, Some(_)) => {
            let (host, info, images) = crate::containerd::inventory(&args.containerd).await?;
            Inventory::new(tool(), host, info, images)
        }
        (None, None) => of_daemon(&args).await?,
    };
    write(&args, &inv)
}

async fn of_daemon(args: &InventoryArgs) -> Result<Inventory> {
    let daemon = connect(&args.daemon).await?;
    let dmn = |e| anyhow::Error::new(Coded::new(exit::DAEMON, e));
    let info = daemon.info().await.map_err(dmn)?;
    let images = daemon.all_images().await.map_err(dmn)?;
    Ok(Inventory::new(tool(), daemon.host.clone(), info, images))
}

fn tool() -> ToolInfo {
    ToolInfo {
        name: "partial-load".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// Every image tagged in the repositories given (else the catalog's), for this machine's
/// platform. The inventory's `daemon` record describes the registry (`storage_driver`
/// "registry").
async fn of_registry(name: &str, args: &InventoryArgs) -> Result<Inventory> {
    let registry = crate::registry_connect::connect(name, &args.connection).await?;
    let repos = if args.repos.is_empty() {
        registry_images::catalog(&registry).await?.ok_or_else(|| {
            anyhow::Error::new(Coded::new(
                exit::DAEMON,
                format!(
                    "the registry {name} does not allow listing its repositories: name them \
                     with --repo"
                ),
            ))
        })?
    } else {
        args.repos.clone()
    };
    let mut images = Vec::new();
    for repo in &repos {
        for image in registry_images::images_of(&registry, repo).await? {
            images.push(image.meta(registry.name()));
        }
    }
    let platform = Platform::host();
    let info = DaemonInfo {
        version: "registry".into(),
        api_version: "v2".into(),
        os: platform.os,
        arch: platform.architecture,
        storage_driver: "registry".into(),
        containerd_store: false,
        podman: false,
    };
    Ok(Inventory::new(
        tool(),
        registry.name().to_string(),
        info,
        images,
    ))
}

/// Refuses an existing `-o` file (a link too, even a dangling one) unless `--force`, as the
/// other commands that write files do.
fn refuse_existing(args: &InventoryArgs) -> Result<()> {
    match &args.output {
        Some(path) if !args.force && path.symlink_metadata().is_ok() => bail!(
            "{} already exists (use --force to overwrite)",
            path.display()
        ),
        _ => Ok(()),
    }
}

fn write(args: &InventoryArgs, inv: &Inventory) -> Result<()> {
    refuse_existing(args)?;
    let bytes = inv.to_bytes();
    match &args.output {
        Some(path) => {
            let mut f = partial_common::output::AtomicFile::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            f.commit()
                .with_context(|| format!("renaming {}", path.display()))?;
            let layers: usize = inv.images.iter().map(|i| i.chain_ids.len()).sum();
            eprintln!(
                "wrote {}: {} image(s), {} layer chain(s) on {}",
                path.display(),
                inv.images.len(),
                layers,
                inv.host
            );
        }
        None => {
            std::io::stdout()
                .write_all(&bytes)
                .context("writing the inventory to stdout")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&std::ffi::OsStr]) -> InventoryArgs {
        let mut argv: Vec<&std::ffi::OsStr> = vec!["partial-load".as_ref(), "inventory".as_ref()];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Inventory(a) => a,
            _ => unreachable!("parsed as inventory"),
        }
    }

    fn sample() -> Inventory {
        let info = partial_common::daemon::testutil::sample_info();
        Inventory::new(tool(), "unix:///run/docker.sock".into(), info, vec![])
    }

    #[test]
    fn an_existing_output_is_kept_unless_force() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("have.json");
        std::fs::write(&out, b"keep").unwrap();
        let a = args(&["-o".as_ref(), out.as_os_str()]);
        let e = write(&a, &sample()).unwrap_err();
        assert!(
            format!("{e:#}").contains("have.json already exists (use --force to overwrite)"),
            "{e:#}"
        );
        assert_eq!(std::fs::read(&out).unwrap(), b"keep");
        // A dangling link in its place counts as existing too.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        assert!(write(&args(&["-o".as_ref(), link.as_os_str()]), &sample()).is_err());
        // With --force it is replaced.
        let a = args(&["-o".as_ref(), out.as_os_str(), "--force".as_ref()]);
        write(&a, &sample()).unwrap();
        let back = Inventory::parse(&std::fs::read(&out).unwrap(), "have.json").unwrap();
        assert_eq!(back.host, "unix:///run/docker.sock");
        // --force alone (stdout) is a usage error.
        assert!(crate::cli::Cli::try_parse_from(["partial-load", "inventory", "--force"]).is_err());
    }
}
