//! What can go wrong while reading layers for a report: the stream itself, or a base export that
//! lacks a layer it should hold.

use partial_common::Digest;
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the daemon's export of {image} did not contain layer {layer}")]
    MissingLayer { image: Digest, layer: Digest },
    #[error("the base reading thread failed: {0}")]
    Thread(String),
    #[error(transparent)]
    Archive(#[from] partial_common::archive::ArchiveError),
}

impl ReportError {
    /// An I/O error while reading `what`.
    pub fn read(what: impl Into<String>) -> impl FnOnce(io::Error) -> ReportError {
        let what = what.into();
        move |source| ReportError::Read { what, source }
    }

    /// Whether the bytes read were bad (as opposed to the medium failing).
    pub fn is_invalid_data(&self) -> bool {
        match self {
            ReportError::Read { source, .. } => source.kind() == io::ErrorKind::InvalidData,
            ReportError::Archive(_) => true,
            _ => false,
        }
    }
}
