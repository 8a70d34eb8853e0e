//! `TrackedState` benchmarks on the 1% round's shape: 1 M keys of 16 bytes
//! (`key-000000000042`), values of 100 bytes, 10 k keys changed.
//!
//! Criterion group `tracked_state`:
//! - `put_10k`: 10 k `put`s overwriting existing keys on a state restored with
//!   `from_snapshot` (the pairs built outside the clock). Baseline
//!   `hashmap_insert_10k`: the same inserts into a `std::collections::HashMap`
//!   holding the same 1 M pairs (the "hash-map speed" of issue 20), and
//!   `btree_put_10k`: the design this replaced (a `BTreeMap` of the pairs plus
//!   a `BTreeSet` of changed keys), measured in the same run.
//! - `delta_10k`: `delta()` with 10 k keys changed.
//! - `snapshot`: `snapshot()` with 10 k keys changed (1 M pairs out).
//! - `from_snapshot`: `TrackedState::from_snapshot` of the 1 M-key snapshot.
//! - `freeze`: `freeze()` with 10 k keys changed (the operator's pause of an
//!   asynchronous checkpoint), and `frozen_into_delta`: the delta made from it
//!   (the background thread's share).
//!
//! After the group, `main` prints a SUMMARY (median of 5 timed passes in this
//! same run): the freeze pause against the asynchronous checkpoint it starts
//! (`into_delta` + a delta `create_checkpoint` with fsyncs). `-- --test` runs
//! everything once on 20 k keys.

mod common;

use common::{bench_dir, key, median, ms, value};
use criterion::{BatchSize, Criterion};
use highwater::checkpoint::{CheckpointRequest, PartInput};
use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateSnapshot, TrackedState};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hint::black_box;
use std::time::{Duration, Instant};

const KEYS: usize = 1_000_000;
const KEYS_TEST: usize = 20_000;

/// 1% of the keys, spread over the key space, with new values.
fn changes(n: usize, round: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n / 100)
        .map(|j| {
            let i = j * 100 + round % 100;
            (key(i), value(i, round + 1))
        })
        .collect()
}

fn changed_state(base: &TrackedState, n: usize) -> TrackedState {
    let mut state = base.clone();
    for (k, v) in changes(n, 1) {
        state.put(k, v);
    }
    state
}

fn criterion_group(c: &mut Criterion, n: usize, snap: &StateSnapshot) {
    let restored = TrackedState::from_snapshot(snap);
    let changed = changed_state(&restored, n);
    let mut g = c.benchmark_group("tracked_state");
    g.sample_size(10);
    g.bench_function("put_10k", |b| {
        b.iter_batched(
            || (restored.clone(), changes(n, 2)),
            |(mut state, changes)| {
                for (k, v) in changes {
                    black_box(state.put(k, v));
                }
                state
            },
            BatchSize::PerIteration,
        )
    });
    let mut hash: HashMap<Vec<u8>, Vec<u8>> = snap.to_pairs().into_iter().collect();
    g.bench_function("hashmap_insert_10k", |b| {
        b.iter_batched(
            || changes(n, 2),
            |changes| {
                for (k, v) in changes {
                    black_box(hash.insert(k, v));
                }
            },
            BatchSize::PerIteration,
        )
    });
    drop(hash);
    let mut tree: BTreeMap<Vec<u8>, Vec<u8>> = snap.to_pairs().into_iter().collect();
    let mut changed_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    g.bench_function("btree_put_10k", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                changed_keys.clear();
                let changes = changes(n, 2);
                let start = Instant::now();
                for (k, v) in changes {
                    changed_keys.insert(k.clone());
                    black_box(tree.insert(k, v));
                }
                total += start.elapsed();
            }
            total
        })
    });
    drop((tree, changed_keys));
    g.bench_function("delta_10k", |b| b.iter(|| changed.delta()));
    g.bench_function("snapshot", |b| b.iter(|| changed.snapshot()));
    g.bench_function("from_snapshot", |b| {
        b.iter(|| TrackedState::from_snapshot(snap))
    });
    g.bench_function("freeze", |b| {
        b.iter_batched(
            || changed.clone(),
            |mut state| {
                let frozen = state.freeze();
                (state, frozen)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("frozen_into_delta", |b| {
        b.iter_batched(
            || changed.clone().freeze(),
            |frozen| frozen.into_delta(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The freeze pause against the checkpoint it hands over: median of 5.
fn summary(n: usize, snap: &StateSnapshot) {
    let dir = bench_dir();
    let manager = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path())
            .with_max_retained(1_000)
            .with_max_delta_chain(u32::MAX)
            .with_max_delta_ratio(1e9),
    )
    .expect("manager");
    manager
        .create_checkpoint(CheckpointRequest::new(1).with_part("state", PartInput::Snapshot(snap)))
        .expect("base checkpoint");
    let mut state = TrackedState::from_snapshot(snap);
    let (mut pauses, mut checkpoints, mut puts) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..5 {
        let changes = changes(n, round + 10);
        let t0 = Instant::now();
        for (k, v) in changes {
            state.put(k, v);
        }
        let t1 = Instant::now();
        let frozen = state.freeze();
        let t2 = Instant::now();
        let id = frozen.id();
        // The background share, timed on this thread (the operator would go on).
        let delta = frozen.into_delta();
        manager
            .create_checkpoint(
                CheckpointRequest::new(round as u64 + 2)
                    .with_part("state", PartInput::Delta(&delta)),
            )
            .expect("delta checkpoint");
        let t3 = Instant::now();
        assert!(state.checkpoint_succeeded(id));
        puts.push(t1 - t0);
        pauses.push(t2 - t1);
        checkpoints.push(t3 - t2);
    }
    let (put, pause, cp) = (median(puts), median(pauses), median(checkpoints));
    println!(
        "SUMMARY tracked_state ({n} keys, 1% changed): put x{} {:.2} ms; freeze pause {:.4} ms; \
         into_delta + delta create_checkpoint {:.2} ms; pause / checkpoint {:.4} (target < 0.1)",
        n / 100,
        ms(put),
        ms(pause),
        ms(cp),
        pause.as_secs_f64() / cp.max(Duration::from_nanos(1)).as_secs_f64(),
    );
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let n = if test_mode { KEYS_TEST } else { KEYS };
    let snap = StateSnapshot::from_sorted((0..n).map(|i| (key(i), value(i, 0)))).expect("sorted");
    let mut c = Criterion::default().configure_from_args();
    criterion_group(&mut c, n, &snap);
    c.final_summary();
    summary(n, &snap);
}
