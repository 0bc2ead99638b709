//! containerd as a destination and a base (`--containerd SOCKET --namespace NS`): its gRPC API
//! spoken directly ([`grpc`], messages in [`proto`]), no `ctr` run. [`images`] reads what a
//! namespace holds (base check, inventory), [`content`] writes and reads blobs under a lease,
//! [`dest`] is the checked copy's destination, [`kept`] keeps a source manifest byte for byte,
//! [`unpack`] fills the snapshotter, [`load`] puts it together; [`export`] and [`rehydrate`] read base layers back for `rehydrate`.

mod content;
mod dest;
pub mod export;
mod grpc;
mod images;
mod kept;
pub mod load;
mod proto;
pub mod rehydrate;
mod unpack;

use crate::cli::ContainerdArgs;
use crate::errors::daemon_err;
use anyhow::Result;
use grpc::Client;
use partial_common::daemon::{DaemonInfo, ImageMeta};
use partial_common::registry::Platform;

/// Any failure of containerd or its socket: exit 5.
fn containerd_err(
    e: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
) -> anyhow::Error {
    daemon_err(e)
}

/// How a namespace of a containerd is named in messages.
fn place(c: &Client) -> String {
    format!(
        "containerd {} (namespace {})",
        c.socket.display(),
        c.namespace
    )
}

async fn connect(args: &ContainerdArgs) -> Result<Client> {
    let socket = args
        .socket
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no --containerd socket"))?;
    Client::connect(socket, &args.namespace)
        .await
        .map_err(containerd_err)
}

/// The namespace's images as a source of base layers and whole base images (`report`).
pub async fn bases(args: &ContainerdArgs) -> Result<export::Bases> {
    let client = connect(args).await?;
    let held = images::list(&client).await.map_err(containerd_err)?;
    Ok(export::Bases { client, held })
}

/// What the namespace holds, for `inventory`: the containerd's version, its images.
pub async fn inventory(args: &ContainerdArgs) -> Result<(String, DaemonInfo, Vec<ImageMeta>)> {
    let c = connect(args).await?;
    let version: proto::VersionResponse = c
        .unary(
            "/containerd.services.version.v1.Version/Version",
            &proto::Empty {},
        )
        .await
        .map_err(containerd_err)?;
    let held = images::list(&c).await.map_err(containerd_err)?;
    let platform = Platform::host();
    let info = DaemonInfo {
        version: format!("containerd {}", version.version),
        api_version: "containerd.services.*.v1".into(),
        os: platform.os,
        arch: platform.architecture,
        storage_driver: "containerd".into(),
        containerd_store: true,
        podman: false,
    };
    Ok((place(&c), info, held.into_iter().map(|h| h.meta).collect()))
}
