//! The FastCDC chunk sizes, shared by the chunk index (`index`), the tar cutter that gives large
//! files' contents chunks of their own (`tarcut`) and the encoder's choice of when a delta is
//! worth it (`encode`): one place, so that the three cannot disagree.

/// Smallest, average and largest chunk.
pub(crate) const MIN_CHUNK: usize = 16 << 10;
pub(crate) const AVG_CHUNK: usize = 64 << 10;
pub(crate) const MAX_CHUNK: usize = 256 << 10;
