//! A registry client (Docker Registry HTTP API v2 / OCI distribution) for pushing bundles into a
//! registry, taking inventory of one, and exporting from one without a daemon. Its own crate: it
//! knows images only as manifests and blobs, nothing of bundles or the copy engine.
//!
//! - [`reference`]: `HOST[:PORT]/REPO[:TAG|@sha256:…]` and push destinations.
//! - [`auth`]: credentials (explicit or Docker's `config.json`) and `WWW-Authenticate` challenges.
//! - [`transport`]: https with system roots and extra CAs, `insecure`, http for loopback.
//! - [`client`]: [`Registry::connect`] (ping, challenge), authorised requests, error mapping.
//! - [`manifest`]: manifest and index types, media types, platform selection; raw bytes kept.
//! - [`read`]: manifests, configs and digest-checked blob streams.
//! - [`referrers`]: the OCI 1.1 referrers API, and when to fall back to the tag scheme.
//! - [`upload`]: HEAD / mount / monolithic or streamed upload of blobs, manifests.
//! - [`listing`]: tags and catalog.
//!
//! Asynchronous (tokio, reqwest): a [`Registry`] is shared by reference between concurrent
//! operations. [`read::BlobStream`] plugs into [`partial_core::channel_reader::ChannelReader`] for synchronous
//! consumers.

pub mod auth;
pub mod client;
pub mod error;
pub mod listing;
pub mod manifest;
pub mod read;
pub mod reference;
pub mod referrers;
pub mod transport;
pub mod upload;

pub use auth::{Challenge, Credentials, PasswordError, Secret};
pub use client::{Registry, RegistryOptions};
pub use error::{IndexNarrowed, RegistryError};
pub use manifest::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform, RawManifest};
pub use read::{BlobStream, ResolvedImage};
pub use reference::{Destination, Reference};
pub use transport::TransportOptions;
pub use upload::{BlobOutcome, MountOutcome, UploadSession};
