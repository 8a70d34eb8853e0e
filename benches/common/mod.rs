//! Helpers shared by the benchmarks.
#![allow(dead_code)]

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

/// The median of `v`.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
