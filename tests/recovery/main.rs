//! Recovery: checkpoint and log together, edge cases, the log below a
//! checkpoint, its release under crashes, and property tests. One test binary
//! (`cargo test --test recovery`).

#[path = "../common/mod.rs"]
mod common;

mod recovery_basic;
mod recovery_edge_cases;
mod recovery_mapped_restore;
mod recovery_properties;
mod recovery_release_crashes;
mod recovery_seed_cases;
