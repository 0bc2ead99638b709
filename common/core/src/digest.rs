//! Content digests (`sha256:<hex>`), hashing helpers and chain IDs.
//!
//! A diffID names one uncompressed layer tar; a chain ID names a layer together with everything below
//! it: `chain[0] = diff[0]`, `chain[n] = sha256(chain[n-1] + " " + diff[n])`. Only the chain ID says
//! whether a destination can reuse a layer.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// A `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

/// A string that is not a `sha256:<64 hex>` digest.
#[derive(Debug, thiserror::Error)]
#[error("not a sha256 digest: {0:?}")]
pub struct DigestError(pub String);

impl Digest {
    /// Parses `sha256:<64 hex>`; upper-case hex is refused, as Docker never writes it.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| DigestError(s.to_string()))?;
        if is_sha256_hex(hex) {
            Ok(Digest(s.to_string()))
        } else {
            Err(DigestError(s.to_string()))
        }
    }

    /// Builds a digest from a bare 64-hex string (as in blob file names).
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        if is_sha256_hex(hex) {
            Ok(Digest(format!("sha256:{hex}")))
        } else {
            Err(DigestError(hex.to_string()))
        }
    }

    /// The digest of a finished SHA-256 hash.
    pub fn from_sha256(hash: [u8; 32]) -> Self {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The digest of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self::from_sha256(Sha256::digest(data).into())
    }

    /// The 64 hex digits without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// A short form for messages: the first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True when `s` is exactly 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// The chain ID of the layer `diff` on top of the chain `parent`.
pub fn chain_id(parent: Option<&Digest>, diff: &Digest) -> Digest {
    match parent {
        None => diff.clone(),
        Some(p) => Digest::of_bytes(format!("{p} {diff}").as_bytes()),
    }
}

/// Chain IDs for every position of a layer stack, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_id(out.last(), d);
        out.push(next);
    }
    out
}

/// A writer that hashes everything written through it with SHA-256 and counts the bytes.
pub struct Sha256Writer<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Sha256Writer<W> {
    pub fn new(inner: W) -> Self {
        Sha256Writer {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Bytes written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest::from_sha256(self.hasher.finalize().into()),
            self.count,
        )
    }
}

impl<W: Write> Write for Sha256Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = Digest::of_bytes(b"");
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&d.as_str().to_uppercase()).is_err());
        assert!(Digest::parse(d.hex()).is_err());
        assert_eq!(Digest::from_hex(d.hex()).unwrap(), d);
    }

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of_bytes(b"a");
        let b = Digest::of_bytes(b"b");
        let chains = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chains[0], a);
        let expected = Digest::of_bytes(format!("{} {}", a, b).as_bytes());
        assert_eq!(chains[1], expected);
        // The same diffID at another position gives another chain.
        let chains2 = chain_ids(&[b.clone(), a.clone()]);
        assert_ne!(chains2[1], chains[1]);
        assert_ne!(chains2[0], chains[0]);
    }

    #[test]
    fn writer_hashes_what_passes() {
        let mut w = Sha256Writer::new(Vec::new());
        w.write_all(b"hello").unwrap();
        let (inner, d, n) = w.finish();
        assert_eq!(inner, b"hello");
        assert_eq!(n, 5);
        assert_eq!(d, Digest::of_bytes(b"hello"));
    }
}
