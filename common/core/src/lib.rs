//! The vocabulary every crate of the pair shares, and nothing that reads or writes an image:
//! digests and chain IDs (`digest`), image references (`reference`), the exit codes and the
//! tables behind `--help` and the man pages (`exit`, `help`), the size caps of small input files
//! (`limits`), untrusted text made safe to print (`text`), a blocking reader over an async byte
//! stream (`stream`) and the progress bars (`progress`). Its own crate so that the crates along
//! the seams (`partial-daemon`, `partial-registry`, `partial-delta`, `partial-common`) build on
//! one definition of each without depending on each other.

pub mod channel_reader;
pub mod digest;
pub mod exit;
pub mod help;
pub mod limits;
pub mod pipe;
pub mod progress;
pub mod reference;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod text;

pub use digest::Digest;
