//! The write-ahead log: appends, reads, sync policies, rotation, damage and
//! repair, the committed format fixtures, failed fsyncs under thread
//! interleavings, property tests, and sealed segments (with the `encryption`
//! feature). One test binary (`cargo test --test wal`).

#[path = "../common/mod.rs"]
mod common;

mod wal_basic;
mod wal_damage;
mod wal_durability;
mod wal_encryption;
mod wal_format_fixtures;
mod wal_fsync_interleavings;
mod wal_preallocation;
mod wal_properties;
mod wal_sealed_fixture;
