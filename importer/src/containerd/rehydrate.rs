//! `partial-load rehydrate --containerd`: the complete `docker save` archive from the bundle plus
//! the base layers a containerd namespace holds, read from its content store by their blob
//! digests ([`super::export`]) and decompressed where the bundle names the layer by diffID. The
//! rest is the Docker path's rehydrate (`crate::rehydrate::build`).

use super::export::Bases;
use super::{connect, containerd_err};
use crate::base::BaseSource;
use crate::bundle;
use crate::cli::{ContainerdArgs, RehydrateArgs};
use crate::confirm::Written;
use crate::rehydrate::build;
use anyhow::{bail, Result};
use partial_common::platform_view::DaemonView;
use partial_common::progress;

pub async fn run(args: RehydrateArgs, target: &ContainerdArgs) -> Result<()> {
    let bundle = bundle::open(&args.bundle)?;
    if args.output.exists() && !args.force {
        bail!(
            "{} already exists (use --force to overwrite)",
            args.output.display()
        );
    }
    let client = connect(target).await?;
    let held = super::load::check_base(&client, &bundle.manifest).await?;
    let refs = super::load::references(&client, &bundle.manifest, &held).await?;
    let local: Vec<_> = held.iter().map(|h| h.meta.clone()).collect();
    let bases = Bases { client, held };
    let bar = progress::bytes("rehydrating", Some(2 * bundle.manifest.bundle.size));
    build(
        BaseSource::Store(&bases),
        &bundle,
        &local,
        refs,
        &args.output,
        &bar,
        (&Written::default(), DaemonView::default()),
    )
    .await
    .map_err(|e| match e.downcast_ref::<super::grpc::CallError>() {
        Some(_) => containerd_err(format!("{e:#}")),
        None => e,
    })?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {}: a complete archive of {} image(s) that loads into a daemon without the base",
        args.output.display(),
        bundle.manifest.images.len()
    );
    Ok(())
}
