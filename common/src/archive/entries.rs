//! The engine's entry-level reading and writing, for code outside the engine that walks an
//! archive itself (`partial-load rehydrate` completes a bundle with the daemon's base layers).
//!
//! * [`TarReader`]: the strict streaming tar reader (an archive that stops early, or carries
//!   anything but zeros after its end, is an error naming the entry); [`EntryHead`] keeps each
//!   entry's header blocks as read, so an entry can be passed through byte for byte with
//!   [`TarWriter`].
//! * [`clean_name`] (refuses names escaping the archive) and [`role_of`], which sorts a name into
//!   the [`EntryRole`] the `docker save` layouts give it: legacy layer folders, configs,
//!   `blobs/sha256/<hex>`, top-level metadata.
//!
//! These are the engine's own types, re-exported unchanged.

pub use super::names::{clean_name, named_digest, role_of, EntryRole};
pub use super::tarstream::{file_header, EntryData, EntryHead, TarReader, TarWriter};
