//! The command line of `partial-save` as a library: the binary (`src/main.rs`) parses it, and
//! `cargo xtask` renders the man pages and shell completions from the same definitions.

pub mod cli;
