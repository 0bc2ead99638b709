//! `partial-load inventory`: what this daemon holds, as the JSON that `partial-save --have`
//! reads (schema in `partial_common::inventory`).

use crate::cli::InventoryArgs;
use crate::connect::connect;
use anyhow::{Context, Result};
use partial_common::exit::{self, Coded};
use partial_common::inventory::Inventory;
use partial_common::manifest::ToolInfo;
use std::io::Write;

pub async fn run(args: InventoryArgs) -> Result<()> {
    let daemon = connect(&args.daemon).await?;
    let dmn = |e| anyhow::Error::new(Coded::new(exit::DAEMON, e));
    let info = daemon.info().await.map_err(dmn)?;
    let images = daemon.all_images().await.map_err(dmn)?;
    let inv = Inventory::new(
        ToolInfo {
            name: "partial-load".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        daemon.host.clone(),
        info,
        images,
    );
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
                daemon.host
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
