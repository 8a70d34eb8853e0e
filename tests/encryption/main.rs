//! Encryption at rest (the `encryption` feature; docs/FORMAT.md §8): sealed
//! part files round-trip, and every kind of tampering, a wrong or missing
//! key, a cut file or an older file put back is a typed error, never a
//! wrong state.
#![cfg(feature = "encryption")]

#[path = "../common/mod.rs"]
mod common;

mod arrow;
mod checkpoint;
mod recovery;
mod remote;
mod review;
mod support;
