//! containerd's content store and leases, as a load uses them: a blob is written with its
//! expected digest and size (`Content.Write`, committed only when containerd's own hash of what
//! it received matches), small blobs (manifests, configs) are read whole, and everything a load
//! writes is held by one lease (as the Go client's `WithLease`), deleted at the end so that what
//! no image record came to refer to is left to containerd's garbage collector.

use super::grpc::{self, CallError, Client};
use super::proto::*;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::StreamBody;
use hyper::body::Frame;
use partial_common::Digest;
use std::collections::HashMap;
use std::io::{self, Read};
use tokio::sync::mpsc;

const CONTENT: &str = "/containerd.services.content.v1.Content";
const LEASES: &str = "/containerd.services.leases.v1.Leases";

/// The piece a blob is written in (containerd takes messages up to 16 MiB).
const PIECE: usize = 1 << 20;

/// A blob write that failed: the source being read, or containerd.
#[derive(Debug)]
pub enum WriteError {
    Read(io::Error),
    Containerd(CallError),
}

/// Whether the content store holds `d`.
pub async fn exists(c: &Client, d: &Digest) -> Result<bool, CallError> {
    let req = InfoRequest {
        digest: d.to_string(),
    };
    match c
        .unary::<_, InfoResponse>(&format!("{CONTENT}/Info"), &req)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some(grpc::NOT_FOUND) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The blob `d` whole (at most `limit` bytes), checked against its digest.
pub async fn read_small(c: &Client, d: &Digest, limit: usize) -> Result<Vec<u8>, CallError> {
    let method = format!("{CONTENT}/Read");
    let req = ReadContentRequest {
        digest: d.to_string(),
        offset: 0,
        size: 0,
    };
    let parts: Vec<ReadContentResponse> = c.collect(&method, &req, limit).await?;
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&p.data);
    }
    if Digest::of_bytes(&out) != *d {
        return Err(CallError::Transport {
            method,
            message: format!("the content store's blob {d} does not match its digest"),
        });
    }
    Ok(out)
}

/// `size` bytes of blob `d` from `offset`.
pub async fn read_range(
    c: &Client,
    d: &Digest,
    offset: u64,
    size: u64,
) -> Result<Vec<u8>, CallError> {
    let req = ReadContentRequest {
        digest: d.to_string(),
        offset: offset as i64,
        size: size as i64,
    };
    let limit = (size as usize).saturating_add(1 << 16);
    let parts: Vec<ReadContentResponse> =
        c.collect(&format!("{CONTENT}/Read"), &req, limit).await?;
    let mut out = Vec::with_capacity(size as usize);
    for p in parts {
        out.extend_from_slice(&p.data);
    }
    Ok(out)
}

/// Writes blob `d` of `size` bytes read from `data` (exactly that much), labelled `labels`;
/// containerd commits it only if its hash of the bytes is `d`. An existing blob is not written
/// again: `data` is read to its end all the same (the caller checks it) and the blob added to
/// the lease.
pub async fn write(
    c: &Client,
    lease: &str,
    d: &Digest,
    size: u64,
    labels: HashMap<String, String>,
    data: &mut dyn Read,
) -> Result<(), WriteError> {
    if held(c, lease, d).await.map_err(WriteError::Containerd)? {
        drain(data, size)?;
        return Ok(());
    }
    let reference = format!("partial-load-{}-{}", std::process::id(), d.hex());
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, io::Error>>(2);
    let mut rx = rx;
    let body = UnsyncBoxBody::new(StreamBody::new(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
    })));
    let call = {
        let c = c.clone();
        tokio::spawn(async move {
            c.call(&format!("{CONTENT}/Write"), body, grpc::MAX_ANSWER)
                .await
        })
    };
    let sent = send_pieces(&tx, &reference, d, size, labels, data).await;
    drop(tx);
    let answer = call.await.map_err(|e| {
        WriteError::Containerd(CallError::Transport {
            method: "Content.Write".into(),
            message: e.to_string(),
        })
    })?;
    match (sent, answer) {
        (Err(e), _) => {
            abort(c, &reference).await;
            Err(WriteError::Read(e))
        }
        (Ok(()), Err(e)) if e.code() == Some(grpc::ALREADY_EXISTS) => Ok(()),
        (Ok(()), Err(e)) => Err(WriteError::Containerd(e)),
        (Ok(()), Ok(answers)) => committed(d, answers).map_err(WriteError::Containerd),
    }
}

/// The last answer of a write must be the commit of `d`.
fn committed(d: &Digest, answers: Vec<Bytes>) -> Result<(), CallError> {
    let last = answers
        .last()
        .and_then(|a| <WriteContentResponse as prost::Message>::decode(a.clone()).ok());
    match last {
        Some(a) if a.action == COMMIT && a.digest == d.as_str() => Ok(()),
        other => Err(CallError::Transport {
            method: "Content.Write".into(),
            message: format!(
                "blob {d} was not committed (last answer: {})",
                other.map_or("none".to_string(), |a| format!(
                    "action {} digest {:?}",
                    a.action, a.digest
                ))
            ),
        }),
    }
}

/// The WRITE messages of the blob, then its COMMIT. A read error ends it without a commit.
async fn send_pieces(
    tx: &mpsc::Sender<Result<Frame<Bytes>, io::Error>>,
    reference: &str,
    d: &Digest,
    size: u64,
    labels: HashMap<String, String>,
    data: &mut dyn Read,
) -> io::Result<()> {
    let mut offset = 0u64;
    let mut buf = vec![0u8; PIECE];
    while offset < size {
        let want = (size - offset).min(PIECE as u64) as usize;
        let n = data.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("blob {d} ended after {offset} of {size} bytes"),
            ));
        }
        let msg = WriteContentRequest {
            action: WRITE,
            r#ref: reference.to_string(),
            total: size as i64,
            expected: d.to_string(),
            offset: offset as i64,
            data: buf[..n].to_vec(),
            labels: HashMap::new(),
        };
        offset += n as u64;
        if tx.send(Ok(grpc::data_frame(&msg))).await.is_err() {
            // containerd ended the call: its answer says why. Read on, so that the caller's
            // check of the bytes still runs to the end.
            return drain(data, size - offset).map_err(|e| match e {
                WriteError::Read(e) => e,
                WriteError::Containerd(e) => io::Error::other(e.to_string()),
            });
        }
    }
    let commit = WriteContentRequest {
        action: COMMIT,
        r#ref: reference.to_string(),
        total: size as i64,
        expected: d.to_string(),
        offset: offset as i64,
        data: Vec::new(),
        labels,
    };
    let _ = tx.send(Ok(grpc::data_frame(&commit))).await;
    Ok(())
}

/// Reads `size` bytes of `data` to nowhere.
fn drain(data: &mut dyn Read, size: u64) -> Result<(), WriteError> {
    let n = io::copy(&mut data.take(size), &mut io::sink()).map_err(WriteError::Read)?;
    if n != size {
        return Err(WriteError::Read(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("a blob ended after {n} of {size} bytes"),
        )));
    }
    Ok(())
}

/// Drops an unfinished write (best effort: containerd expires it anyway).
async fn abort(c: &Client, reference: &str) {
    let req = AbortRequest {
        r#ref: reference.to_string(),
    };
    let _ = c.unary::<_, Empty>(&format!("{CONTENT}/Abort"), &req).await;
}

/// Whether the content store holds `d`, which is then held by `lease` until an image refers to
/// it. Held before the check: a blob left by an earlier, failed load is garbage, and
/// containerd's collector could take it between the check and its use.
pub async fn held(c: &Client, lease: &str, d: &Digest) -> Result<bool, CallError> {
    hold(c, lease, d).await?;
    exists(c, d).await
}

/// Adds the existing blob `d` to `lease`, so that the garbage collector keeps it until an image
/// refers to it.
async fn hold(c: &Client, lease: &str, d: &Digest) -> Result<(), CallError> {
    let req = AddResourceRequest {
        id: lease.to_string(),
        resource: Some(LeaseResource {
            id: d.to_string(),
            r#type: "content".into(),
        }),
    };
    c.unary::<_, Empty>(&format!("{LEASES}/AddResource"), &req)
        .await
        .map(|_| ())
}

/// A new lease for one load, expiring after a day should partial-load never delete it (killed).
pub async fn create_lease(c: &Client) -> Result<String, CallError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let id = format!("partial-load-{}-{nanos}", std::process::id());
    let expire = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let expire = expire
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| CallError::Transport {
            method: "Leases.Create".into(),
            message: e.to_string(),
        })?;
    let req = CreateLeaseRequest {
        id: id.clone(),
        labels: HashMap::from([("containerd.io/gc.expire".to_string(), expire)]),
    };
    c.unary::<_, Empty>(&format!("{LEASES}/Create"), &req)
        .await?;
    Ok(id)
}

/// Deletes the lease: what it held and nothing else refers to is garbage from then on.
pub async fn delete_lease(c: &Client, id: &str) -> Result<(), CallError> {
    let req = DeleteLeaseRequest {
        id: id.to_string(),
        sync: false,
    };
    c.unary::<_, Empty>(&format!("{LEASES}/Delete"), &req)
        .await
        .map(|_| ())
}
