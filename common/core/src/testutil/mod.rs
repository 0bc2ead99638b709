//! Test helpers every crate's tests use (feature `testutil`; never enabled by the binaries):
//! the one skip gate ([`gate`]) and the check of a written file against its JSON Schema in
//! `docs/schema/` ([`schema`]).

pub mod gate;
pub mod schema;
