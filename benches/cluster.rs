//! One checkpoint across many workers (issue 23), on a `LocalBlobStore` in
//! a scratch directory on the target's file system (real files, not tmpfs):
//! 400 k keys of 16 bytes with 100-byte values over 128 key groups,
//! committed as one worker's full part.
//!
//! Criterion group `cluster`:
//! - `restore_all`: a new run of 1 worker (`Coordinator::start`, then
//!   `ClusterWorker::join`): every group's state, read through the group
//!   index with exact ranged reads.
//! - `restore_quarter`: a new run of 4 workers, worker 1 joining: a rescale
//!   restore of a quarter of the groups from the same part. The ratio to
//!   `restore_all` is what a range restore saves.
//!
//! After the group, `main` prints a SUMMARY (medians of 5 passes in this
//! same run): a worker's full checkpoint (its first after `join`) against a
//! delta of 1% of the keys changed (its next), upload to the store included:
//! the cost of a delta is proportional to the change. `-- --test` runs
//! everything once on 20 k keys.

mod common;

use common::{bench_dir, key, median, ms, value};
use criterion::Criterion;
use highwater::blob::{BlobStore, LocalBlobStore};
use highwater::cluster::{ClusterWorker, Coordinator, CoordinatorConfig, WorkerConfig};
use highwater::SourcePositions;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const KEYS: usize = 400_000;
const KEYS_TEST: usize = 20_000;

/// A store holding one committed epoch of `n` keys (one worker), and the
/// scratch directory it lives in.
fn committed(n: usize) -> (tempfile::TempDir, Arc<dyn BlobStore>) {
    let dir = bench_dir();
    let store: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(dir.path()).unwrap());
    let mut c = Coordinator::start(CoordinatorConfig::new(store.clone(), 1)).unwrap();
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    for i in 0..n {
        r.state.put(key(i), value(i, 0));
    }
    let mut sources = SourcePositions::new();
    sources.set_offset("input-0", n as u64).unwrap();
    let report = w.checkpoint(1, &mut r.state, &sources, vec![]).unwrap();
    c.commit(1, vec![report]).unwrap();
    c.sinks_committed(1).unwrap();
    (dir, store)
}

/// Worker `index` of a new run of `workers` joins: the restore.
fn join(store: &Arc<dyn BlobStore>, workers: u32, index: u32) -> usize {
    let c = Coordinator::start(CoordinatorConfig::new(store.clone(), workers)).unwrap();
    let (_, r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), index)).unwrap();
    r.state.len()
}

fn restores(c: &mut Criterion, store: &Arc<dyn BlobStore>) {
    let mut g = c.benchmark_group("cluster");
    g.sample_size(10);
    g.bench_function("restore_all", |b| b.iter(|| black_box(join(store, 1, 0))));
    g.bench_function("restore_quarter", |b| {
        b.iter(|| black_box(join(store, 4, 1)))
    });
    g.finish();
}

/// A full checkpoint (the first after `join`) and a delta of 1% of the keys
/// (the next), timed.
fn full_then_delta(
    store: &Arc<dyn BlobStore>,
    n: usize,
    round: usize,
) -> (std::time::Duration, std::time::Duration) {
    let mut c = Coordinator::start(CoordinatorConfig::new(store.clone(), 1)).unwrap();
    let base = c.next_epoch() - 1;
    c.sinks_committed(base).unwrap();
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    let mut sources = r.source_positions(|_| true);
    let t = Instant::now();
    let full = w
        .checkpoint(base + 1, &mut r.state, &sources, vec![])
        .unwrap();
    let full_time = t.elapsed();
    c.commit(base + 1, vec![full]).unwrap();
    c.sinks_committed(base + 1).unwrap();
    for j in 0..n / 100 {
        let i = j * 100 + round % 100;
        r.state.put(key(i), value(i, round + 1));
    }
    sources.set_offset("input-0", (n + round) as u64).unwrap();
    let t = Instant::now();
    let delta = w
        .checkpoint(base + 2, &mut r.state, &sources, vec![])
        .unwrap();
    let delta_time = t.elapsed();
    assert_eq!(delta.chain.len(), 2, "the second checkpoint is a delta");
    c.commit(base + 2, vec![delta]).unwrap();
    (full_time, delta_time)
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let n = if test_mode { KEYS_TEST } else { KEYS };
    let (_dir, store) = committed(n);
    let mut c = Criterion::default().configure_from_args();
    restores(&mut c, &store);
    c.final_summary();

    let passes = if test_mode { 1 } else { 5 };
    let (mut fulls, mut deltas) = (Vec::new(), Vec::new());
    for round in 0..passes {
        let (f, d) = full_then_delta(&store, n, round);
        fulls.push(f);
        deltas.push(d);
    }
    let (f, d) = (median(fulls), median(deltas));
    println!(
        "SUMMARY cluster checkpoint of {n} keys: full {:.1} ms, delta of 1% {:.1} ms ({:.3}x the full)",
        ms(f),
        ms(d),
        d.as_secs_f64() / f.as_secs_f64()
    );
}
