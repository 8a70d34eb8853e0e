//! Exactly-once output: the sink coordinator, the file sink's two-phase commit
//! under crashes and faults, and per-partition source positions. One test
//! binary (`cargo test --test sink`).

#[path = "../common/mod.rs"]
mod common;

mod async_checkpoint;
#[cfg(feature = "encryption")]
mod sealed_pipeline;
mod sink_coordinator;
mod sink_crash_protocol;
mod source_positions;
