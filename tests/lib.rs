//! End-to-end tests across crates. The test binaries (`e2e`, `storm`, `faults`, `bad_input`,
//! `secrets`, `remote`) live in their own folders; this library holds what they share.

pub mod harness;
