//! Garbage collection under crashes: a writer that collects after every
//! commit (grace 0, one checkpoint retained) crashes at every blob
//! operation; a new writer then restores exactly the last acknowledged
//! checkpoint (or the one whose commit was cut short), whole, and never
//! anything a collection removed from under it.

use highwater::blob::{BlobFault, BlobStore, SimBlobStore};
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RemoteConfig,
    StateSnapshot,
};
use std::sync::Arc;
use std::time::Duration;

const ROUNDS: u64 = 4;

fn config(store: Arc<dyn BlobStore>, dir: &std::path::Path) -> CheckpointConfig {
    CheckpointConfig::new(dir).with_max_retained(1).with_remote(
        RemoteConfig::new(store)
            .with_gc_grace(Duration::ZERO)
            .with_gc_interval(Duration::ZERO),
    )
}

fn state(round: u64) -> StateSnapshot {
    StateSnapshot::new(
        (0..20)
            .map(|i| {
                (
                    format!("k{i}").into_bytes(),
                    format!("r{round}-{i}").into_bytes(),
                )
            })
            .collect(),
    )
}

/// Runs the rounds until one fails; returns the last acknowledged round and
/// the round in doubt (its commit failed).
fn workload(sim: &SimBlobStore, dir: &std::path::Path) -> (Option<u64>, Option<u64>) {
    let Ok(m) = IncrementalCheckpointManager::new(config(Arc::new(sim.clone()), dir)) else {
        return (None, None);
    };
    let mut acked = None;
    for round in 1..=ROUNDS {
        sim.advance_clock(Duration::from_secs(1));
        let snapshot = state(round);
        let request =
            CheckpointRequest::new(round * 10).with_part("state", PartInput::Snapshot(&snapshot));
        match m.create_checkpoint(request) {
            Ok(_) => acked = Some(round),
            Err(_) => return (acked, Some(round)),
        }
    }
    (acked, None)
}

#[test]
fn a_crash_at_every_operation_of_a_collecting_writer_keeps_the_last_acknowledged() {
    let clean = SimBlobStore::new(0);
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        workload(&clean, &dir.path().join("a")),
        (Some(ROUNDS), None)
    );
    let ops = clean.ops();
    let mut deleted_something = false;
    for k in 0..ops {
        for seed in 0..2 {
            let sim = SimBlobStore::new(seed);
            sim.fail_at(k, BlobFault::Crash);
            let dir = tempfile::tempdir().unwrap();
            let (acked, doubt) = workload(&sim, &dir.path().join("a"));
            let ctx = format!("crash at op {k}, seed {seed}: acked {acked:?}, doubt {doubt:?}");
            let after = sim.reboot();
            let m = IncrementalCheckpointManager::new(config(
                Arc::new(after.clone()),
                &dir.path().join("b"),
            ))
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let restored = m.remote_restore().unwrap().restored;
            let latest = m.find_latest_checkpoint().unwrap();
            assert_eq!(latest.as_ref().map(|c| c.id), restored, "{ctx}");
            let round = latest.map(|c| c.wal_position / 10);
            assert!(
                round == acked || (round.is_some() && round == doubt),
                "{ctx}: restored round {round:?}"
            );
            if let (Some(round), Some(id)) = (round, restored) {
                let snapshot = m.load_snapshot(id, "state").unwrap();
                assert_eq!(snapshot, state(round), "{ctx}");
            }
            deleted_something |= highwater::blob::list_all(&after, None)
                .unwrap()
                .iter()
                .filter(|o| o.key.as_str().starts_with("parts/"))
                .count()
                < ROUNDS as usize;
        }
    }
    assert!(deleted_something, "the collections removed old parts");
}
