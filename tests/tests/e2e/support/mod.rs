//! Helpers shared by the end-to-end modules that are specific to this test binary (the rigs,
//! fixtures and command runners shared with other targets live in the `partial_tests` library).

pub mod schema;
