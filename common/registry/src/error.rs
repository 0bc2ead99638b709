//! The registry client's errors. Every message names the registry, and where one is concerned the
//! repository and the blob or manifest, plus a hint when the fix is on the user's side; the
//! binaries map them to exit codes with [`RegistryError::exit_code`].

use partial_core::digest::Digest;
use partial_core::exit;

/// An error talking to a registry (or preparing to).
/// A reference pins an index by its digest and `--platform` leaves some of its platforms out:
/// the index cannot travel as it is (a usage error, exit 2). One message for every source of
/// indexes (registries, OCI layouts and oci-archives).
#[derive(Debug, thiserror::Error)]
#[error(
    "{reference} names the index {digest} by its digest, and --platform {wanted} leaves out \
     {left_out}: the index would not travel as it is, and that digest would not resolve at the \
     destination\n  hint: drop --platform to carry every platform with the index, or allow a \
     re-made index with --allow-new-digest"
)]
pub struct IndexNarrowed {
    pub reference: String,
    pub digest: String,
    pub wanted: String,
    pub left_out: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {input:?}: {reason}")]
    BadReference { input: String, reason: String },

    #[error("registry {registry} is unreachable ({context}): {source}")]
    Unreachable {
        registry: String,
        context: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("registry {registry} stalled: nothing moved for {secs} s ({context})")]
    Stalled {
        registry: String,
        context: String,
        secs: u64,
    },

    #[error(
        "TLS connection to registry {registry} failed: {source}\n  \
         hint: give its CA with --ca-file or put it in {certs_dir}/ca.crt; \
         --insecure accepts an unverified certificate or plain http"
    )]
    Tls {
        registry: String,
        certs_dir: String,
        #[source]
        source: reqwest::Error,
    },

    #[error(
        "registry {registry} refused access to {context} (HTTP 401{detail}); credentials tried: {tried}\n  \
         hint: `docker login {registry}`, or --username with --password-stdin"
    )]
    Unauthorized {
        registry: String,
        context: String,
        tried: String,
        detail: String,
    },

    #[error("{source}\n  credentials ({origin}) were withheld from the token realm: {why}")]
    CredentialsWithheld {
        registry: String,
        origin: String,
        why: String,
        source: Box<RegistryError>,
    },

    #[error("registry {registry} denied {context} (HTTP 403{detail}); credentials used: {tried}")]
    Denied {
        registry: String,
        context: String,
        tried: String,
        detail: String,
    },

    #[error(
        "repository {repository} does not exist on registry {registry}{detail}\n  \
         hint: check the name (and on Harbor/Nexus that its project exists)"
    )]
    NoRepository {
        registry: String,
        repository: String,
        detail: String,
    },

    #[error("manifest {reference} not found in repository {repository} on registry {registry}")]
    NoManifest {
        registry: String,
        repository: String,
        reference: String,
    },

    #[error("blob {digest} not found in repository {repository} on registry {registry}")]
    NoBlob {
        registry: String,
        repository: String,
        digest: Digest,
    },

    #[error(
        "blob {digest} from repository {repository} on registry {registry} does not match its \
         digest: got {actual} ({size} bytes)"
    )]
    BlobDigestMismatch {
        registry: String,
        repository: String,
        digest: Digest,
        actual: Digest,
        size: u64,
    },

    #[error(
        "manifest {reference} of repository {repository} on registry {registry} does not match \
         its digest: expected {expected}, got {actual}"
    )]
    ManifestDigestMismatch {
        registry: String,
        repository: String,
        reference: String,
        expected: String,
        actual: Digest,
    },

    #[error("{what} from repository {repository} on registry {registry} exceeds {limit} bytes")]
    TooLarge {
        registry: String,
        repository: String,
        what: String,
        limit: u64,
    },

    #[error("registry {registry} rejected {context} (HTTP {status}): {detail}")]
    Rejected {
        registry: String,
        context: String,
        status: u16,
        detail: String,
    },

    #[error("registry {registry} failed {context} (HTTP {status}): {detail}")]
    ServerError {
        registry: String,
        context: String,
        status: u16,
        detail: String,
    },

    #[error("registry {registry} sent an invalid {what}: {reason}")]
    Protocol {
        registry: String,
        what: String,
        reason: String,
    },

    #[error("registry {registry} does not allow listing its catalog (HTTP {status})")]
    CatalogNotAllowed { registry: String, status: u16 },

    #[error(
        "no manifest for platform {platform} in {reference} on registry {registry} \
         (it has: {available})\n  hint: choose one with --platform"
    )]
    NoPlatform {
        registry: String,
        reference: String,
        platform: String,
        available: String,
    },

    #[error(transparent)]
    IndexNarrowed(#[from] IndexNarrowed),

    #[error(
        "unsupported manifest media type {media_type:?} for {reference} on registry {registry}"
    )]
    UnsupportedManifest {
        registry: String,
        reference: String,
        media_type: String,
    },

    #[error("credentials for registry {registry} from {origin}: {reason}")]
    Credentials {
        registry: String,
        origin: String,
        reason: String,
    },

    #[error("cannot use CA certificate file {path} for registry {registry}: {reason}")]
    CaFile {
        registry: String,
        path: String,
        reason: String,
    },

    #[error("cannot set up an HTTP client for registry {registry}: {source}")]
    Client {
        registry: String,
        #[source]
        source: reqwest::Error,
    },

    #[error("reading the data of blob {blob} to upload to {repository} on registry {registry}: {source}")]
    Source {
        registry: String,
        repository: String,
        blob: String,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// The exit code the binaries use for this error: 5 when the registry is unreachable, fails or
    /// refuses us, 3 when what it sent does not check out, 2 for a bad reference, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            RegistryError::BadReference { .. } | RegistryError::IndexNarrowed(_) => exit::USAGE,
            RegistryError::Unreachable { .. }
            | RegistryError::Stalled { .. }
            | RegistryError::Tls { .. }
            | RegistryError::Unauthorized { .. }
            | RegistryError::CredentialsWithheld { .. }
            | RegistryError::Denied { .. }
            | RegistryError::ServerError { .. }
            | RegistryError::Rejected { .. }
            | RegistryError::CatalogNotAllowed { .. } => exit::DAEMON,
            RegistryError::BlobDigestMismatch { .. }
            | RegistryError::ManifestDigestMismatch { .. }
            | RegistryError::TooLarge { .. }
            | RegistryError::Protocol { .. } => exit::VERIFY,
            _ => exit::FAILURE,
        }
    }

    /// True when the registry could not be reached, the connection broke or it stalled.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            RegistryError::Unreachable { .. } | RegistryError::Stalled { .. }
        )
    }
}
