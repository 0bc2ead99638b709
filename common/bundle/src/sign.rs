//! Minisign signatures of the bundle manifest: key generation and storage, signing with the
//! `minisign` crate, and verification with `minisign-verify`. Keys and signatures are in the
//! stock `minisign` tool's formats, so either side can use the stock tool instead.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use minisign::SecretKey;

/// The untrusted comment of our signatures.
const UNTRUSTED_SIG_COMMENT: &str = "signature from partial-save secret key";

/// Errors of key handling, signing and verification.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} already exists; refusing to overwrite it (use --force to replace the key pair)", path.display())]
    Exists { path: PathBuf },
    #[error("cannot generate a key pair: {0}")]
    Generate(String),
    #[error("{} is not a minisign secret key: {reason}", path.display())]
    BadSecretKey { path: PathBuf, reason: String },
    #[error("secret key {} is encrypted: a password is needed", path.display())]
    PasswordNeeded { path: PathBuf },
    #[error("wrong password for secret key {}", path.display())]
    WrongPassword { path: PathBuf },
    #[error("secret key {} is password-protected: set {env} (no terminal to ask)", path.display())]
    NoTerminal { path: PathBuf, env: &'static str },
    #[error("asking for the password of secret key {}: {source}", path.display())]
    Prompt {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Capped(#[from] partial_core::limits::CappedError),
    #[error("{source_name} is not a minisign public key: {reason}")]
    BadPublicKey { source_name: String, reason: String },
    #[error("cannot sign {}: {reason}", path.display())]
    Sign { path: PathBuf, reason: String },
    #[error("the trusted comment must be a single line")]
    MultilineComment,
    #[error("malformed minisign signature: {0}")]
    BadSignature(String),
    #[error("no public key given to verify the signature with")]
    NoKeys,
    #[error(
        "no key matches this signature's key id ({signature_key_id}); trusted key ids: {trusted}"
    )]
    NoMatchingKey {
        signature_key_id: String,
        trusted: String,
    },
    #[error("signature invalid: the signed data or the signature was altered (key id {key_id})")]
    Invalid { key_id: String },
    #[error("signature uses minisign's legacy (non-prehashed) format, which is not accepted (key id {key_id})")]
    Legacy { key_id: String },
}

type Result<T, E = SignError> = std::result::Result<T, E>;

/// Generates a key pair and returns `(secret key file text, public key file text)` in minisign's
/// formats. With a password the secret key is encrypted with scrypt (minisign's default
/// parameters, about 1 GiB of memory); with `None` it is stored unencrypted (as `minisign -W`).
pub fn generate_keypair(password: Option<&str>) -> Result<(String, String)> {
    let kp = match password {
        None => minisign::KeyPair::generate_unencrypted_keypair(),
        Some(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p.to_string())),
    }
    .map_err(|e| SignError::Generate(e.to_string()))?;
    let sk_comment = if password.is_some() {
        "partial-save encrypted secret key"
    } else {
        "partial-save secret key"
    };
    let sk = kp
        .sk
        .to_box(Some(sk_comment))
        .map_err(|e| SignError::Generate(e.to_string()))?
        .into_string();
    let pk = kp
        .pk
        .to_box()
        .map_err(|e| SignError::Generate(e.to_string()))?
        .into_string();
    Ok((sk, pk))
}

/// The key files for a name prefix: `NAME.key` and `NAME.pub`.
pub fn keypair_paths(name_prefix: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut s = name_prefix.as_os_str().to_os_string();
        s.push(ext);
        PathBuf::from(s)
    };
    (with(".key"), with(".pub"))
}

/// Generates a key pair and writes `NAME.key` (mode 0600) and `NAME.pub`. Refuses to replace
/// either file unless `force`. Returns `(secret key path, public key path)`.
pub fn write_keypair(
    name_prefix: &Path,
    password: Option<&str>,
    force: bool,
) -> Result<(PathBuf, PathBuf)> {
    let (key_path, pub_path) = keypair_paths(name_prefix);
    if !force {
        for p in [&key_path, &pub_path] {
            if p.symlink_metadata().is_ok() {
                return Err(SignError::Exists { path: p.clone() });
            }
        }
    }
    let (sk, pk) = generate_keypair(password)?;
    write_new(&key_path, sk.as_bytes(), 0o600, force)?;
    write_new(&pub_path, pk.as_bytes(), 0o644, force)?;
    Ok((key_path, pub_path))
}

/// Writes a new file with `mode` (less the umask); with `replace`, an existing file is removed
/// first so that the new one gets `mode`.
fn write_new(path: &Path, data: &[u8], mode: u32, replace: bool) -> Result<()> {
    let werr = |source| SignError::Write {
        path: path.to_path_buf(),
        source,
    };
    if replace {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(werr(e)),
        }
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                SignError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                werr(e)
            }
        })?;
    f.write_all(data).map_err(werr)?;
    f.sync_all().map_err(werr)
}

/// Minimal standard base64 decoder (with or without padding), enough for minisign's lines.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim().trim_end_matches('=').as_bytes();
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// minisign's key id display: the 8 key-number bytes as a little-endian u64 in upper-case hex,
/// without zero padding (as in the stock tool's `.pub` comment line).
fn key_id_of(keynum: &[u8]) -> String {
    let mut b = [0u8; 8];
    b.copy_from_slice(&keynum[..8]);
    format!("{:X}", u64::from_le_bytes(b))
}

/// Loads a minisign secret key file. An encrypted key needs `password`; an unencrypted one
/// (`minisign -W`, or ours generated without password) ignores it.
pub fn load_secret_key(path: &Path, password: Option<&str>) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path).map_err(|source| SignError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: &str| SignError::BadSecretKey {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    let comment = lines.next().unwrap_or_default();
    if !comment.starts_with("untrusted comment:") {
        return Err(bad("missing the \"untrusted comment:\" line"));
    }
    let encoded = lines.next().ok_or_else(|| bad("missing the key line"))?;
    let bytes = base64_decode(encoded).ok_or_else(|| bad("the key line is not base64"))?;
    if bytes.len() != 158 || &bytes[0..2] != b"Ed" {
        return Err(bad("unexpected key length or algorithm"));
    }
    let sk_box = minisign::SecretKeyBox::from_string(&text).map_err(|e| bad(&e.to_string()))?;
    match &bytes[2..4] {
        [0, 0] => match minisign::SecretKey::from_unencrypted_box(sk_box) {
            Ok(sk) => Ok(sk),
            // The stock tool stores unencrypted keys (-W) with a zero checksum.
            Err(_) if bytes[126..].iter().all(|&b| b == 0) => {
                minisign::SecretKey::from_bytes(&bytes).map_err(|e| bad(&e.to_string()))
            }
            Err(e) => Err(bad(&e.to_string())),
        },
        b"Sc" => {
            let password = password.ok_or_else(|| SignError::PasswordNeeded {
                path: path.to_path_buf(),
            })?;
            minisign::SecretKey::from_box(sk_box, Some(password.to_string())).map_err(|e| {
                let msg = e.to_string();
                if msg.contains("Wrong password") {
                    SignError::WrongPassword {
                        path: path.to_path_buf(),
                    }
                } else {
                    bad(&msg)
                }
            })
        }
        _ => Err(bad("unsupported key derivation algorithm")),
    }
}

/// Signs the file `data_path` (prehashed, like `minisign -S`) and returns the `.minisig` text.
/// Opens the secret key at `key` as both tools do: with `password` (the tool reads it from its
/// environment variable `password_env`) when given, unprotected when the key is, else after
/// asking on the terminal (and refusing, naming `password_env`, when there is none).
pub fn open_secret_key(
    key: &Path,
    password: Option<&str>,
    password_env: &'static str,
) -> Result<SecretKey> {
    match load_secret_key(key, password) {
        Err(SignError::PasswordNeeded { .. }) => {
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(SignError::NoTerminal {
                    path: key.to_path_buf(),
                    env: password_env,
                });
            }
            let p = rpassword::prompt_password(format!("Password for {}: ", key.display()))
                .map_err(|source| SignError::Prompt {
                    path: key.to_path_buf(),
                    source,
                })?;
            load_secret_key(key, Some(&p))
        }
        other => other,
    }
}

/// `trusted_comment` is signed too and must be a single line.
pub fn sign_file(sk: &SecretKey, data_path: &Path, trusted_comment: &str) -> Result<String> {
    let file = std::fs::File::open(data_path).map_err(|source| SignError::Read {
        path: data_path.to_path_buf(),
        source,
    })?;
    sign_reader(sk, io::BufReader::new(file), trusted_comment).map_err(|e| match e {
        SignError::Sign { reason, .. } => SignError::Sign {
            path: data_path.to_path_buf(),
            reason,
        },
        other => other,
    })
}

/// Signs the bytes of `data` and returns the `.minisig` text.
pub fn sign_bytes(sk: &SecretKey, data: &[u8], trusted_comment: &str) -> Result<String> {
    sign_reader(sk, data, trusted_comment)
}

fn sign_reader<R: io::Read>(sk: &SecretKey, data: R, trusted_comment: &str) -> Result<String> {
    if trusted_comment.contains(['\n', '\r']) {
        return Err(SignError::MultilineComment);
    }
    let sign_err = |e: minisign::PError| SignError::Sign {
        path: PathBuf::from("<data>"),
        reason: e.to_string(),
    };
    let pk = minisign::PublicKey::from_secret_key(sk).map_err(sign_err)?;
    let sig = minisign::sign(
        Some(&pk),
        sk,
        data,
        Some(trusted_comment),
        Some(UNTRUSTED_SIG_COMMENT),
    )
    .map_err(sign_err)?;
    Ok(sig.into_string())
}

/// The public key text (`NAME.pub` file contents) matching a secret key.
pub fn public_key_text(sk: &SecretKey) -> Result<String> {
    let gen = |e: minisign::PError| SignError::Generate(e.to_string());
    Ok(minisign::PublicKey::from_secret_key(sk)
        .map_err(gen)?
        .to_box()
        .map_err(gen)?
        .into_string())
}

/// A public key to verify with, and its key id.
#[derive(Clone)]
pub struct PublicKey {
    key: minisign_verify::PublicKey,
    key_id: String,
    base64: String,
}

impl PublicKey {
    /// Parses a `.pub` file's text (`untrusted comment:` line then the key) or a bare base64 key
    /// (as given to `minisign -P`). `source_name` names it in errors. Text holding more than one
    /// key is refused: which of them would be trusted must never be a guess.
    pub fn parse(text: &str, source_name: &str) -> Result<Self> {
        let bad = |reason: &str| SignError::BadPublicKey {
            source_name: source_name.to_string(),
            reason: reason.to_string(),
        };
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("untrusted comment:"));
        let line = lines.next().ok_or_else(|| bad("no key found"))?;
        let more = lines.count();
        if more > 0 {
            return Err(bad(&format!(
                "it holds {} keys, one is expected (give each key its own file, with one --key \
                 each)",
                more + 1
            )));
        }
        let bytes = base64_decode(line).ok_or_else(|| bad("not base64"))?;
        if bytes.len() != 42 {
            return Err(bad("wrong length for an Ed25519 minisign key"));
        }
        let key = minisign_verify::PublicKey::from_base64(line).map_err(|e| bad(&e.to_string()))?;
        Ok(PublicKey {
            key,
            key_id: key_id_of(&bytes[2..10]),
            base64: line.to_string(),
        })
    }

    /// The key id, as minisign prints it (upper-case hex, unpadded, as minisign prints it).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The bare base64 key (what `minisign -P` takes).
    pub fn to_base64(&self) -> &str {
        &self.base64
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.key_id, self.base64)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.base64 == other.base64
    }
}
impl Eq for PublicKey {}

/// Loads a public key file: a minisign `.pub` file or a file holding just the base64 key (at
/// most [`partial_core::limits::PUBLIC_KEY`] bytes).
pub fn load_public_key(path: &Path) -> Result<PublicKey> {
    let text = partial_core::limits::read_capped_text(
        path,
        partial_core::limits::PUBLIC_KEY,
        "public key",
    )?;
    PublicKey::parse(&text, &path.display().to_string())
}

/// Parses a bare base64 public key string or a `.pub` file's text.
pub fn parse_public_key(text: &str) -> Result<PublicKey> {
    PublicKey::parse(text, "the public key string")
}

/// A successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The id of the key that verified the signature (upper-case hex, unpadded, as minisign prints it).
    pub key_id: String,
    /// The signed trusted comment.
    pub trusted_comment: String,
}

/// Verifies the minisign signature `sig_text` of `data` against the trusted `keys`; succeeds if
/// any key verifies it. Legacy (non-prehashed) signatures are refused.
pub fn verify(data: &[u8], sig_text: &str, keys: &[PublicKey]) -> Result<Verified> {
    if keys.is_empty() {
        return Err(SignError::NoKeys);
    }
    let sig = minisign_verify::Signature::decode(sig_text)
        .map_err(|e| SignError::BadSignature(e.to_string()))?;
    let sig_line = sig_text
        .lines()
        .nth(1)
        .ok_or_else(|| SignError::BadSignature("missing signature line".into()))?;
    let sig_bytes = base64_decode(sig_line)
        .filter(|b| b.len() == 74)
        .ok_or_else(|| SignError::BadSignature("signature line is not valid".into()))?;
    let sig_key_id = key_id_of(&sig_bytes[2..10]);
    let mut matching = keys.iter().filter(|k| k.key_id == sig_key_id).peekable();
    if matching.peek().is_none() {
        return Err(SignError::NoMatchingKey {
            signature_key_id: sig_key_id,
            trusted: keys
                .iter()
                .map(|k| k.key_id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut last = SignError::Invalid {
        key_id: sig_key_id.clone(),
    };
    for k in matching {
        match k.key.verify(data, &sig, false) {
            Ok(()) => {
                return Ok(Verified {
                    key_id: k.key_id.clone(),
                    trusted_comment: sig.trusted_comment().to_string(),
                })
            }
            Err(minisign_verify::Error::UnexpectedAlgorithm) => {
                last = SignError::Legacy {
                    key_id: sig_key_id.clone(),
                }
            }
            Err(_) => {}
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    fn keypair(password: Option<&str>) -> (SecretKey, PublicKey) {
        let dir = tempfile::tempdir().unwrap();
        let (k, p) = write_keypair(&dir.path().join("t"), password, false).unwrap();
        (
            load_secret_key(&k, password).unwrap(),
            load_public_key(&p).unwrap(),
        )
    }

    #[test]
    fn round_trip_tamper_and_wrong_key() {
        let (sk, pk) = keypair(None);
        let dir = tempfile::tempdir().unwrap();
        let data_path = dir.path().join("manifest.json");
        std::fs::write(&data_path, b"{\"hello\":1}").unwrap();
        let sig = sign_file(&sk, &data_path, "partial-save manifest v1").unwrap();
        let v = verify(b"{\"hello\":1}", &sig, std::slice::from_ref(&pk)).unwrap();
        assert_eq!(v.trusted_comment, "partial-save manifest v1");
        assert_eq!(v.key_id, pk.key_id());
        assert!(sig.contains("trusted comment: partial-save manifest v1"));

        // Tampered data.
        let e = verify(b"{\"hello\":2}", &sig, std::slice::from_ref(&pk)).unwrap_err();
        assert!(matches!(e, SignError::Invalid { .. }), "{e}");
        assert!(e.to_string().starts_with("signature invalid"));
        // Tampered trusted comment.
        let forged = sig.replace("manifest v1", "manifest v2");
        let e = verify(b"{\"hello\":1}", &forged, std::slice::from_ref(&pk)).unwrap_err();
        assert!(matches!(e, SignError::Invalid { .. }), "{e}");

        // Wrong key: another key id.
        let (_, other) = keypair(None);
        let e = verify(b"{\"hello\":1}", &sig, std::slice::from_ref(&other)).unwrap_err();
        assert!(matches!(e, SignError::NoMatchingKey { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("no key matches this signature's key id"),
            "{msg}"
        );
        assert!(
            msg.contains(pk.key_id()) && msg.contains(other.key_id()),
            "{msg}"
        );

        // Same key id, other key material: invalid, not "no key".
        let mut raw = base64_decode(other.to_base64()).unwrap();
        raw[2..10].copy_from_slice(&base64_decode(pk.to_base64()).unwrap()[2..10]);
        let impostor = parse_public_key(&base64_encode(&raw)).unwrap();
        assert_eq!(impostor.key_id(), pk.key_id());
        let e = verify(b"{\"hello\":1}", &sig, std::slice::from_ref(&impostor)).unwrap_err();
        assert!(matches!(e, SignError::Invalid { .. }), "{e}");

        // Any of several keys.
        let v = verify(b"{\"hello\":1}", &sig, &[other, impostor, pk.clone()]).unwrap();
        assert_eq!(v.key_id, pk.key_id());
        assert!(matches!(verify(b"", &sig, &[]), Err(SignError::NoKeys)));
        assert!(matches!(
            verify(b"", "garbage", std::slice::from_ref(&pk)),
            Err(SignError::BadSignature(_))
        ));
        assert!(matches!(
            sign_bytes(&sk, b"x", "two\nlines"),
            Err(SignError::MultilineComment)
        ));
        assert!(verify(b"x", &sign_bytes(&sk, b"x", "c").unwrap(), &[pk]).is_ok());
    }

    fn base64_encode(b: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = c.len();
            let v = (c[0] as u32) << 16
                | (*c.get(1).unwrap_or(&0) as u32) << 8
                | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= n {
                    s.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }

    #[test]
    fn base64_matches_reference() {
        for (plain, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64_decode(enc).unwrap(), plain);
            assert_eq!(base64_encode(plain), enc);
        }
        assert!(base64_decode("a").is_none());
        assert!(base64_decode("a$==").is_none());
    }

    #[test]
    fn public_key_forms() {
        let (_, pk_text) = generate_keypair(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("k.pub");
        std::fs::write(&full, &pk_text).unwrap();
        let a = load_public_key(&full).unwrap();
        let bare = dir.path().join("bare");
        std::fs::write(&bare, format!("{}\n", a.to_base64())).unwrap();
        assert_eq!(load_public_key(&bare).unwrap(), a);
        assert_eq!(parse_public_key(a.to_base64()).unwrap(), a);
        assert!((1..=16).contains(&a.key_id().len()));
        let e = load_public_key(&dir.path().join("nope.pub")).unwrap_err();
        assert!(e.to_string().contains("nope.pub"), "{e}");
        std::fs::write(dir.path().join("junk.pub"), "hello\n").unwrap();
        let e = load_public_key(&dir.path().join("junk.pub")).unwrap_err();
        assert!(e.to_string().contains("junk.pub"), "{e}");
    }

    #[test]
    fn an_oversized_public_key_file_is_refused_by_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.pub");
        let (_, pk_text) = generate_keypair(None).unwrap();
        // A valid key followed by padding up to one byte over the limit.
        let mut text = pk_text.into_bytes();
        text.resize(partial_core::limits::PUBLIC_KEY as usize + 1, b'\n');
        std::fs::write(&p, &text).unwrap();
        let e = load_public_key(&p).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("big.pub") && msg.contains("limit of 4 KiB"),
            "{msg}"
        );
    }

    #[test]
    fn a_public_key_file_with_two_keys_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a) = generate_keypair(None).unwrap();
        let (_, b) = generate_keypair(None).unwrap();
        let two = dir.path().join("two.pub");
        std::fs::write(&two, format!("{a}{b}")).unwrap();
        let e = load_public_key(&two).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("two.pub") && msg.contains("2 keys"), "{msg}");
        // Bare keys, one a line, too.
        let ka = parse_public_key(&a).unwrap();
        let kb = parse_public_key(&b).unwrap();
        let both = format!("{}\n{}\n", ka.to_base64(), kb.to_base64());
        assert!(parse_public_key(&both).is_err());
        // One key with blank lines around it is one key.
        assert_eq!(parse_public_key(&format!("\n{a}\n\n")).unwrap(), ka);
    }

    #[test]
    fn keypair_files_modes_and_force() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("site");
        let (k, p) = write_keypair(&prefix, None, false).unwrap();
        assert_eq!(k, dir.path().join("site.key"));
        assert_eq!(p, dir.path().join("site.pub"));
        let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let before = std::fs::read_to_string(&k).unwrap();
        let e = write_keypair(&prefix, None, false).unwrap_err();
        assert!(matches!(e, SignError::Exists { .. }), "{e}");
        assert!(e.to_string().contains("site.key"), "{e}");
        assert_eq!(std::fs::read_to_string(&k).unwrap(), before);
        write_keypair(&prefix, None, true).unwrap();
        assert_ne!(std::fs::read_to_string(&k).unwrap(), before);
        let mode = std::fs::metadata(&k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The public key file matches the secret key.
        let sk = load_secret_key(&k, None).unwrap();
        assert_eq!(
            public_key_text(&sk).unwrap(),
            std::fs::read_to_string(&p).unwrap()
        );
        let e = load_secret_key(&p, None).unwrap_err();
        assert!(matches!(e, SignError::BadSecretKey { .. }), "{e}");
    }

    #[test]
    fn encrypted_key_needs_the_right_password() {
        let dir = tempfile::tempdir().unwrap();
        let (k, p) = write_keypair(&dir.path().join("enc"), Some("s3cret"), false).unwrap();
        let e = load_secret_key(&k, None).unwrap_err();
        assert!(matches!(e, SignError::PasswordNeeded { .. }), "{e}");
        assert!(e.to_string().contains("enc.key"), "{e}");
        let e = load_secret_key(&k, Some("wrong")).unwrap_err();
        assert!(matches!(e, SignError::WrongPassword { .. }), "{e}");
        assert!(e.to_string().contains("enc.key"), "{e}");
        let sk = load_secret_key(&k, Some("s3cret")).unwrap();
        let sig = sign_bytes(&sk, b"data", "c").unwrap();
        verify(b"data", &sig, &[load_public_key(&p).unwrap()]).unwrap();
    }

    /// Interoperability with the stock `minisign` tool, both ways: a folder with a small
    /// `manifest.json` to sign, or `None` (the test skips) without the tool.
    fn minisign_fixture() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
        if !partial_core::testutil::gate::have_tool("minisign", "-v") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("manifest.json");
        std::fs::write(&data, b"{\"layers\":[]}\n").unwrap();
        Some((dir, data))
    }

    /// The stock tool run with `input` on its stdin (where it reads passwords).
    fn minisign_with_stdin(args: &[&std::ffi::OsStr], input: &str) -> std::process::Output {
        let mut child = Command::new("minisign")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn stock_minisign_verifies_ours_and_rejects_tampered_data() {
        let Some((dir, data)) = minisign_fixture() else {
            return;
        };
        let d = dir.path();

        // Ours, verified by minisign.
        let (k, p) = write_keypair(&d.join("ours"), None, false).unwrap();
        let sk = load_secret_key(&k, None).unwrap();
        let sig = sign_file(&sk, &data, "bundle 42 from partial-save").unwrap();
        std::fs::write(d.join("manifest.json.minisig"), &sig).unwrap();
        let out = Command::new("minisign")
            .arg("-Vm")
            .arg(&data)
            .arg("-p")
            .arg(&p)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "minisign -V failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("Trusted comment: bundle 42 from partial-save"),
            "{stdout}"
        );
        // And minisign rejects tampered data.
        std::fs::write(&data, b"{\"layers\":[1]}\n").unwrap();
        let st = Command::new("minisign")
            .arg("-Vm")
            .arg(&data)
            .arg("-p")
            .arg(&p)
            .arg("-x")
            .arg(d.join("manifest.json.minisig"))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!st.status.success());
    }

    #[test]
    fn stock_minisign_keys_and_signatures_work_with_ours() {
        let Some((dir, data)) = minisign_fixture() else {
            return;
        };
        let d = dir.path();

        // minisign's, verified by us.
        let (sk_path, pk_path) = (d.join("stock.key"), d.join("stock.pub"));
        let st = Command::new("minisign")
            .args(["-G", "-W", "-p"])
            .arg(&pk_path)
            .arg("-s")
            .arg(&sk_path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(st.status.success(), "minisign -G: {st:?}");
        let st = Command::new("minisign")
            .args(["-S", "-s"])
            .arg(&sk_path)
            .arg("-m")
            .arg(&data)
            .args(["-t", "signed by stock minisign"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(st.status.success(), "minisign -S: {st:?}");
        let stock_sig = std::fs::read_to_string(d.join("manifest.json.minisig")).unwrap();
        let stock_pk = load_public_key(&pk_path).unwrap();
        let bytes = std::fs::read(&data).unwrap();
        let v = verify(&bytes, &stock_sig, std::slice::from_ref(&stock_pk)).unwrap();
        assert_eq!(v.trusted_comment, "signed by stock minisign");
        // The key id we report is the one minisign prints in the .pub comment.
        let pub_text = std::fs::read_to_string(&pk_path).unwrap();
        let first_line = pub_text.lines().next().unwrap();
        assert!(
            first_line.ends_with(&format!(" {}", stock_pk.key_id())),
            "{pub_text}"
        );
        assert!(verify(b"other", &stock_sig, std::slice::from_ref(&stock_pk)).is_err());

        // minisign's unencrypted secret key works with our signer too.
        let stock_sk = load_secret_key(&sk_path, None).unwrap();
        let sig = sign_file(&stock_sk, &data, "ours with stock key").unwrap();
        verify(&bytes, &sig, &[stock_pk]).unwrap();
    }

    /// Encrypted keys both ways (the stock tool reads the password from stdin).
    #[test]
    fn stock_minisign_encrypted_keys_both_ways() {
        let Some((dir, data)) = minisign_fixture() else {
            return;
        };
        let d = dir.path();
        let bytes = std::fs::read(&data).unwrap();
        let (ek, ep) = (d.join("stock-enc.key"), d.join("stock-enc.pub"));
        let out = minisign_with_stdin(
            &[
                "-G".as_ref(),
                "-p".as_ref(),
                ep.as_os_str(),
                "-s".as_ref(),
                ek.as_os_str(),
            ],
            "pw1\npw1\n",
        );
        assert!(out.status.success(), "minisign -G (encrypted): {out:?}");
        let e = load_secret_key(&ek, Some("nope")).unwrap_err();
        assert!(matches!(e, SignError::WrongPassword { .. }), "{e}");
        let sk = load_secret_key(&ek, Some("pw1")).unwrap();
        let sig = sign_bytes(&sk, &bytes, "ours with stock encrypted key").unwrap();
        verify(&bytes, &sig, &[load_public_key(&ep).unwrap()]).unwrap();

        let (ok, op) = write_keypair(&d.join("ours-enc"), Some("pw2"), false).unwrap();
        let sig_path = d.join("by-stock-with-our-key.minisig");
        let out = minisign_with_stdin(
            &[
                "-S".as_ref(),
                "-s".as_ref(),
                ok.as_os_str(),
                "-m".as_ref(),
                data.as_os_str(),
                "-x".as_ref(),
                sig_path.as_os_str(),
                "-t".as_ref(),
                "stock with our encrypted key".as_ref(),
            ],
            "pw2\n",
        );
        assert!(
            out.status.success(),
            "minisign -S with our encrypted key: {out:?}"
        );
        let sig = std::fs::read_to_string(&sig_path).unwrap();
        let v = verify(&bytes, &sig, &[load_public_key(&op).unwrap()]).unwrap();
        assert_eq!(v.trusted_comment, "stock with our encrypted key");
    }
}
