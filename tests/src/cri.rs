//! The kubelet's view of a containerd: CRI's image service (`runtime.v1.ImageService`), asked
//! over containerd's own socket as the kubelet asks it, to prove that what `partial-load`
//! loads is an image a pod can start from without a pull, by tag and by digest. A minimal gRPC
//! unary call over HTTP/2 (`h2`), with the few CRI messages it needs declared here (field
//! numbers from cri-api's `pkg/apis/runtime/v1/api.proto`); no crictl is packaged in Debian.

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BytesMut};
use prost::Message;
use std::path::Path;

/// `ImageSpec`: an image reference (tag, digest or ID).
#[derive(Clone, PartialEq, Message)]
pub struct ImageSpec {
    #[prost(string, tag = "1")]
    pub image: String,
}

#[derive(Clone, PartialEq, Message)]
struct ImageStatusRequest {
    #[prost(message, optional, tag = "1")]
    image: Option<ImageSpec>,
    #[prost(bool, tag = "2")]
    verbose: bool,
}

/// What CRI says of one image.
#[derive(Clone, PartialEq, Message)]
pub struct Image {
    /// The image ID: the config digest.
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, repeated, tag = "2")]
    pub repo_tags: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    pub repo_digests: Vec<String>,
    #[prost(uint64, tag = "4")]
    pub size: u64,
}

#[derive(Clone, PartialEq, Message)]
struct ImageStatusResponse {
    #[prost(message, optional, tag = "1")]
    image: Option<Image>,
}

/// CRI's `ImageStatus` of `reference` on the containerd at `socket`: `None` when CRI knows no
/// such image (the kubelet would pull it).
pub fn image_status(socket: &Path, reference: &str) -> Result<Option<Image>> {
    let req = ImageStatusRequest {
        image: Some(ImageSpec {
            image: reference.to_string(),
        }),
        verbose: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer: ImageStatusResponse =
        rt.block_on(unary(socket, "/runtime.v1.ImageService/ImageStatus", &req))?;
    Ok(answer.image)
}

/// One unary gRPC call: the request framed (a zero byte, its length, the message), the answer's
/// one message decoded, a non-zero `grpc-status` an error with its message.
async fn unary<Q: Message, A: Message + Default>(
    socket: &Path,
    method: &str,
    req: &Q,
) -> Result<A> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))?;
    let (client, conn) = h2::client::handshake(stream).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await?;
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())?;
    let (answer, mut send) = client.send_request(request, false)?;
    let msg = req.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + msg.len());
    frame.push(0);
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    send.send_data(frame.into(), true)?;
    let (head, mut body) = answer.await?.into_parts();
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await?.unwrap_or_default();
    let status = |name: &str| {
        trailers
            .get(name)
            .or_else(|| head.headers.get(name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    match status("grpc-status").as_deref() {
        Some("0") => {}
        code => bail!(
            "{method}: gRPC status {code:?}: {}",
            status("grpc-message").unwrap_or_default()
        ),
    }
    if data.len() < 5 {
        return Err(anyhow!("{method}: no answer"));
    }
    data.advance(5);
    Ok(A::decode(data.freeze())?)
}
