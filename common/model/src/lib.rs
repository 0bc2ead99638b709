//! The image model every source, destination and file of the pair speaks: an image is its ID,
//! its config bytes, its tags and its ordered layers, each with diffID, chain ID and the blob as
//! stored (`image`); what a destination holds, by chain (`have`); what a copy decided per layer
//! (`plan`); and the compressions blobs and bundles come in (`codec`). Its own crate so that
//! the bundle's files and the copy engine build on one model without depending on each other.

pub mod codec;
pub mod have;
pub mod image;
pub mod plan;
