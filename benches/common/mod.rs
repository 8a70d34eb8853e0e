//! Helpers shared by the benchmarks: the bench-only ones here, and the test
//! suite's fixtures (`tests/common`) as [`fixtures`], so that a bench and a
//! test build their logs and directories with the same code.
#![allow(dead_code)]

/// The integration tests' shared fixtures (tests/common).
#[path = "../../tests/common/mod.rs"]
pub mod fixtures;
pub mod slow_sync;

use std::fs;
use std::path::Path;
use std::time::Duration;

/// A scratch directory on the same file system as the target directory (not a
/// tmpfs), so fsyncs reach a device.
pub fn bench_dir() -> tempfile::TempDir {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scratch");
    fs::create_dir_all(&base).expect("scratch dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// The value length of the state benches' workload (the seed's: 16-byte
/// keys, 100-byte values).
pub const VALUE_LEN: usize = 100;

/// Key `i` of the state benches' workload: 16 bytes, in key order.
pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i:012}").into_bytes()
}

/// The value of key `i` in `round` (a repeating alphabet, shifted per round).
pub fn value(i: usize, round: usize) -> Vec<u8> {
    (0..VALUE_LEN)
        .map(|j| b'a' + ((i + j + round) % 26) as u8)
        .collect()
}

/// The median of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
