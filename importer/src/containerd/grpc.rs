//! A small gRPC client for containerd's unix socket: HTTP/2 (hyper, already in the tree for the
//! Docker API), each message a 5-byte prefix and its protobuf bytes (prost), the status from the
//! `grpc-status` trailer. Calls carry the namespace (`containerd-namespace`) and, while a load
//! writes, its lease (`containerd-lease`), as the Go client's context does. Unary and
//! server-streaming answers are collected up to a size limit (manifests, configs); the one
//! client-streaming call (`Content.Write`) takes its request body as a stream of frames.

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A request body: one message, or the frames of a stream.
pub type Body = UnsyncBoxBody<Bytes, io::Error>;

/// gRPC status codes containerd answers with that change what partial-load does.
pub const NOT_FOUND: u32 = 5;
pub const ALREADY_EXISTS: u32 = 6;
pub const FAILED_PRECONDITION: u32 = 9;

/// The biggest answer collected (all messages of one call).
pub const MAX_ANSWER: usize = 64 << 20;

/// A failed call: containerd's status, or the connection.
#[derive(Debug)]
pub enum CallError {
    Status {
        method: String,
        code: u32,
        message: String,
    },
    Transport {
        method: String,
        message: String,
    },
}

impl CallError {
    pub fn code(&self) -> Option<u32> {
        match self {
            CallError::Status { code, .. } => Some(*code),
            CallError::Transport { .. } => None,
        }
    }

    fn transport(method: &str, message: impl fmt::Display) -> Self {
        CallError::Transport {
            method: method.to_string(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status {
                method,
                code,
                message,
            } => write!(f, "containerd {method}: {message} (gRPC status {code})"),
            CallError::Transport { method, message } => {
                write!(f, "containerd {method}: {message}")
            }
        }
    }
}

impl std::error::Error for CallError {}

/// One connection to containerd, in one namespace (cheap to clone: calls share the connection).
#[derive(Clone)]
pub struct Client {
    sender: http2::SendRequest<Body>,
    pub socket: PathBuf,
    pub namespace: String,
    lease: Option<String>,
}

impl Client {
    pub async fn connect(socket: &Path, namespace: &str) -> Result<Client, CallError> {
        let what = format!("socket {}", socket.display());
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| CallError::transport("connect", format!("{what}: {e}")))?;
        let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .map_err(|e| CallError::transport("connect", format!("{what}: {e}")))?;
        tokio::spawn(async move {
            // The connection ends when every sender is dropped, or containerd goes away (the
            // calls then fail with the reason).
            let _ = conn.await;
        });
        Ok(Client {
            sender,
            socket: socket.to_path_buf(),
            namespace: namespace.to_string(),
            lease: None,
        })
    }

    /// The same connection, with every call made under `lease`.
    pub fn leased(&self, lease: &str) -> Client {
        Client {
            lease: Some(lease.to_string()),
            ..self.clone()
        }
    }

    /// A unary call (`/containerd.services.images.v1.Images/List`, …).
    pub async fn unary<Q: prost::Message, A: prost::Message + Default>(
        &self,
        method: &str,
        req: &Q,
    ) -> Result<A, CallError> {
        let answers = self.call(method, one(req), MAX_ANSWER).await?;
        let first = answers
            .into_iter()
            .next()
            .ok_or_else(|| CallError::transport(method, "no answer"))?;
        A::decode(first).map_err(|e| CallError::transport(method, format!("bad answer: {e}")))
    }

    /// A server-streaming call, its answers collected (at most `limit` bytes in all).
    pub async fn collect<Q: prost::Message, A: prost::Message + Default>(
        &self,
        method: &str,
        req: &Q,
        limit: usize,
    ) -> Result<Vec<A>, CallError> {
        self.call(method, one(req), limit)
            .await?
            .into_iter()
            .map(|m| {
                A::decode(m).map_err(|e| CallError::transport(method, format!("bad answer: {e}")))
            })
            .collect()
    }

    /// Sends `body` (framed messages) to `method`; the messages of the answer, once its status
    /// says it succeeded.
    pub async fn call(
        &self,
        method: &str,
        body: Body,
        limit: usize,
    ) -> Result<Vec<Bytes>, CallError> {
        let mut req = hyper::Request::post(format!("http://containerd{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("containerd-namespace", &self.namespace);
        if let Some(l) = &self.lease {
            req = req.header("containerd-lease", l);
        }
        let req = req
            .body(body)
            .map_err(|e| CallError::transport(method, e))?;
        let mut sender = self.sender.clone();
        sender
            .ready()
            .await
            .map_err(|e| CallError::transport(method, e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| CallError::transport(method, e))?;
        let (parts, mut body) = resp.into_parts();
        if parts.status != hyper::StatusCode::OK {
            return Err(CallError::transport(
                method,
                format!("HTTP status {}", parts.status),
            ));
        }
        status_of(method, &parts.headers)?; // a trailers-only answer (an error)
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CallError::transport(method, e))?;
            match frame.into_data() {
                Ok(data) => {
                    total += data.len();
                    if total > limit {
                        return Err(CallError::transport(
                            method,
                            format!("the answer is larger than {limit} bytes"),
                        ));
                    }
                    buf.extend_from_slice(&data);
                    split_messages(method, &mut buf, &mut messages)?;
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return match status_of(method, &trailers)? {
                            true if buf.is_empty() => Ok(messages),
                            true => Err(CallError::transport(method, "a message was cut short")),
                            false => Err(CallError::transport(method, "no grpc-status")),
                        };
                    }
                }
            }
        }
        Err(CallError::transport(
            method,
            "the answer ended without a status (did containerd stop?)",
        ))
    }
}

/// The body of one message.
pub fn one<Q: prost::Message>(req: &Q) -> Body {
    UnsyncBoxBody::new(Full::new(frame(req)).map_err(|never| match never {}))
}

/// One message, prefixed (uncompressed) with its length.
pub fn frame<Q: prost::Message>(req: &Q) -> Bytes {
    let body = req.encode_to_vec();
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Bytes::from(out)
}

/// A data frame of a request stream.
pub fn data_frame<Q: prost::Message>(req: &Q) -> Frame<Bytes> {
    Frame::data(frame(req))
}

/// Moves every whole message at the front of `buf` to `out`.
fn split_messages(method: &str, buf: &mut BytesMut, out: &mut Vec<Bytes>) -> Result<(), CallError> {
    while buf.len() >= 5 {
        if buf[0] != 0 {
            return Err(CallError::transport(
                method,
                "a compressed message (not asked for)",
            ));
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if buf.len() < 5 + len {
            break;
        }
        buf.advance(5);
        out.push(buf.split_to(len).freeze());
    }
    Ok(())
}

/// `Ok(true)` when `headers` hold status 0, `Ok(false)` when no status, else the error.
fn status_of(method: &str, headers: &hyper::HeaderMap) -> Result<bool, CallError> {
    let Some(code) = headers.get("grpc-status") else {
        return Ok(false);
    };
    let code: u32 = code
        .to_str()
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| CallError::transport(method, "an unreadable grpc-status"))?;
    if code == 0 {
        return Ok(true);
    }
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Err(CallError::Status {
        method: method.to_string(),
        code,
        message,
    })
}

/// `grpc-message` is percent-encoded.
fn percent_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            s[i],
            s.get(i + 1).copied().and_then(hex),
            s.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_at_their_prefixes_and_wait_for_the_rest() {
        let a = frame(&crate::containerd::proto::InfoRequest {
            digest: "sha256:ab".into(),
        });
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&a);
        buf.extend_from_slice(&a[..3]);
        let mut out = Vec::new();
        split_messages("m", &mut buf, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(buf.len(), 3);
        buf.extend_from_slice(&a[3..]);
        split_messages("m", &mut buf, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(buf.is_empty());
        let mut bad = BytesMut::from(&[1u8, 0, 0, 0, 0][..]);
        assert!(split_messages("m", &mut bad, &mut out).is_err());
    }

    #[test]
    fn status_messages_are_percent_decoded() {
        assert_eq!(
            percent_decode(b"content sha256:1 not found%3A x%2"),
            "content sha256:1 not found: x%2"
        );
        let mut h = hyper::HeaderMap::new();
        h.insert("grpc-status", "5".parse().unwrap());
        h.insert("grpc-message", "image %22a%22 not found".parse().unwrap());
        let e = status_of("/x", &h).unwrap_err();
        assert_eq!(e.code(), Some(NOT_FOUND));
        assert!(e.to_string().contains("image \"a\" not found"), "{e}");
    }
}
