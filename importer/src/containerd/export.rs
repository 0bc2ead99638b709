//! The base layers of a containerd namespace for `rehydrate --containerd` (and a whole base
//! image, config included, for `report --containerd`): the blobs holding the
//! chains a bundle left out, read from the content store in pieces (`Content.Read` with offset
//! and size: memory stays at one piece) and handed on as a tar of `blobs/sha256/<hex>` entries,
//! the shape of a Docker ≥ 25 export. The rehydrate spool reads it as it reads a daemon's
//! export: a blob is checked against its digest, a compressed one decompressed when the bundle
//! wants its diffID.

use super::content;
use super::grpc::Client;
use super::images::{layer_for_chain, Held, LayerDesc};
use anyhow::Result;
use bytes::Bytes;
use partial_common::channel_reader::ChannelReader;
use partial_common::daemon::ImageMeta;
use partial_common::exit::{self, Coded};
use partial_common::Digest;
use std::io::{self, Read};
use std::time::Duration;
use tokio::sync::mpsc;

/// The piece read per `Content.Read`.
const PIECE: u64 = 4 << 20;
/// Silence that ends the read (as the Docker export's).
const IDLE: Duration = Duration::from_secs(600);

/// A namespace's images, as a source of base layers.
pub struct Bases {
    pub client: Client,
    pub held: Vec<Held>,
}

impl crate::base::LayerStore for Bases {
    fn export_chains(&self, chains: Vec<&Digest>) -> Result<(Vec<String>, Box<dyn Read + Send>)> {
        self.export(chains)
    }
}

impl Bases {
    /// The blobs holding `chains` as a tar stream, with the IDs of the images they were found
    /// in; exit 4 when no image holds one of them.
    pub fn export<'a>(
        &self,
        chains: impl IntoIterator<Item = &'a Digest>,
    ) -> Result<(Vec<String>, Box<dyn Read + Send>)> {
        let mut blobs: Vec<LayerDesc> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for chain in chains {
            let d = layer_for_chain(&self.held, chain).ok_or_else(|| {
                anyhow::Error::new(Coded::new(
                    exit::BASE_MISSING,
                    format!("no image of the namespace holds chain {chain}"),
                ))
            })?;
            if let Some(h) = self.held.iter().find(|h| h.meta.chain_ids.contains(chain)) {
                if !names.contains(&h.meta.id.to_string()) {
                    names.push(h.meta.id.to_string());
                }
            }
            if !blobs.iter().any(|b| b.digest == d.digest) {
                blobs.push(d.clone());
            }
        }
        Ok((names, self.blob_tar(blobs)))
    }

    /// `blobs` read from the content store as a tar of `blobs/sha256/<hex>` entries, streamed.
    fn blob_tar(&self, blobs: Vec<LayerDesc>) -> Box<dyn Read + Send> {
        let (tx, mut rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(e) = send_tar(&client, &blobs, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Box::new(ChannelReader::spawn(stream, IDLE))
    }
}

/// The namespace as the report's base store: an image is its config and layer blobs.
impl partial_report::bases::BaseStore for Bases {
    fn place(&self) -> String {
        super::place(&self.client)
    }

    fn export_image(&self, meta: &ImageMeta) -> Box<dyn Read + Send> {
        let blobs = match self.held.iter().find(|h| h.meta.id == meta.id) {
            Some(h) => std::iter::once(h.config.clone())
                .chain(h.layers.iter().cloned())
                .collect(),
            None => Vec::new(),
        };
        self.blob_tar(blobs)
    }
}

/// Each blob as a tar entry, then the end of the archive.
async fn send_tar(
    c: &Client,
    blobs: &[LayerDesc],
    tx: &mpsc::Sender<io::Result<Bytes>>,
) -> io::Result<()> {
    let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "the reader stopped");
    for b in blobs {
        tx.send(Ok(header(b)?)).await.map_err(|_| gone())?;
        let mut offset = 0u64;
        while offset < b.size {
            let n = (b.size - offset).min(PIECE);
            let data = content::read_range(c, &b.digest, offset, n)
                .await
                .map_err(io::Error::other)?;
            if data.len() as u64 != n {
                return Err(io::Error::other(format!(
                    "containerd gave {} bytes of blob {} at {offset}, not {n}",
                    data.len(),
                    b.digest
                )));
            }
            offset += n;
            tx.send(Ok(Bytes::from(data))).await.map_err(|_| gone())?;
        }
        let pad = (512 - b.size % 512) % 512;
        tx.send(Ok(Bytes::from(vec![0u8; pad as usize])))
            .await
            .map_err(|_| gone())?;
    }
    tx.send(Ok(Bytes::from(vec![0u8; 1024])))
        .await
        .map_err(|_| gone())
}

/// The tar header of blob `b` (the workspace's one tar writer's).
fn header(b: &LayerDesc) -> io::Result<Bytes> {
    let name = format!("blobs/sha256/{}", b.digest.hex());
    Ok(Bytes::from(partial_common::archive::entries::file_header(
        &name, b.size, None,
    )))
}
