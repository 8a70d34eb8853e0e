//! Crash consistency on the crash simulator and real files: the simulator
//! itself, the storage conformance suite against every storage, a crash at
//! every operation, every operation failing, damaged files and random
//! workloads. One test binary (`cargo test --test crash`).

#[path = "../common/mod.rs"]
mod common;

mod crash_consistency;
mod crash_damage;
mod crash_io_failures;
mod crash_properties;
mod crash_sim_storage;
mod crash_write_behind;
mod storage_conformance;
