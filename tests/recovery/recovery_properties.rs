//! Properties of recovery over random logs: one replay equals a model of commit
//! semantics; bounded replay in pieces equals one replay; streaming with a tiny
//! buffer equals collection; without transactions every change is returned.

use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, RecoveredState, RecoveryConfig,
    RecoveryManager, ReplaySink, StateSnapshot, SyncPolicy, TransactionMode, WalEntry, WalOptions,
    WriteAheadLog,
};
use proptest::prelude::*;
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8),
    Commit(u8, Option<i64>),
    Marker,
    /// A checkpoint of the committed state, taken right after the last Commit
    /// (ignored when it would not be at a commit boundary).
    Checkpoint,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..12).prop_map(Op::Delete),
        3 => (0u8..3, proptest::option::of(0i64..1000)).prop_map(|(s, w)| Op::Commit(s, w)),
        1 => Just(Op::Marker),
        1 => Just(Op::Checkpoint),
    ]
}

type Change = (Vec<u8>, Option<Vec<u8>>);

/// What recovery must return, computed without highwater.
#[derive(Debug, Default)]
struct Model {
    changes: Vec<Change>,
    offsets: HashMap<String, u64>,
    watermark: Option<i64>,
    uncommitted: u64,
    all_changes: Vec<Change>,
}

struct Log {
    _tmp: tempfile::TempDir,
    ckpt: std::path::PathBuf,
    wal: std::path::PathBuf,
}

/// Writes `ops` to a fresh log (and checkpoints), returning the model of what
/// recovery must return.
fn write(ops: &[Op]) -> (Log, Model) {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log {
        ckpt: tmp.path().join("ckpt"),
        wal: tmp.path().join("wal"),
        _tmp: tmp,
    };
    let wal = WriteAheadLog::open(
        &log.wal,
        WalOptions::new()
            .with_sync_policy(SyncPolicy::Manual)
            .with_segment_size(4096),
    )
    .unwrap();
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&log.ckpt)).unwrap();
    let mut model = Model::default();
    let mut pending: Vec<Change> = Vec::new();
    let mut pending_entries = 0u64;
    let mut state: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = Default::default();
    for op in ops {
        let entry = match op {
            Op::Put(k, v) => {
                let c = (vec![b'k', *k], Some(vec![*v; 3]));
                pending.push(c.clone());
                model.all_changes.push(c);
                WalEntry::Put {
                    key: vec![b'k', *k],
                    value: vec![*v; 3],
                }
            }
            Op::Delete(k) => {
                pending.push((vec![b'k', *k], None));
                model.all_changes.push((vec![b'k', *k], None));
                WalEntry::Delete {
                    key: vec![b'k', *k],
                }
            }
            Op::Commit(s, w) => {
                let offset = wal.position();
                for (k, v) in pending.drain(..) {
                    match &v {
                        Some(v) => state.insert(k.clone(), v.clone()),
                        None => state.remove(&k),
                    };
                    model.changes.push((k, v));
                }
                pending_entries = 0;
                model.offsets.insert(format!("s{s}"), offset);
                // A watermark only grows: recovery keeps the maximum.
                if w.is_some() && *w > model.watermark {
                    model.watermark = *w;
                }
                WalEntry::Commit {
                    offsets: HashMap::from([(format!("s{s}"), offset)]),
                    watermark: *w,
                }
            }
            Op::Marker => WalEntry::Checkpoint { id: 1 },
            Op::Checkpoint => {
                if pending_entries == 0 {
                    wal.sync().unwrap();
                    let snap = StateSnapshot::new(state.clone().into_iter().collect());
                    manager
                        .create_checkpoint_with_state(
                            wal.position(),
                            model.offsets.clone(),
                            model.watermark,
                            &snap.to_bytes().unwrap(),
                        )
                        .unwrap();
                    // Recovery returns the changes after the newest checkpoint.
                    model.changes.clear();
                }
                continue;
            }
        };
        if matches!(op, Op::Put(..) | Op::Delete(_))
            || (pending_entries > 0 && matches!(op, Op::Marker))
        {
            pending_entries += 1;
        }
        wal.append(&entry).unwrap();
    }
    model.uncommitted = pending_entries;
    wal.close().unwrap();
    (log, model)
}

fn config(log: &Log) -> RecoveryConfig {
    RecoveryConfig::new(&log.ckpt, &log.wal)
        .with_collect_state_changes(true)
        .with_repair_wal(false)
}

/// Bounded replay with limit `n`, resumed until nothing remains.
fn in_pieces(log: &Log, n: u64) -> (Vec<Change>, RecoveredState, u32) {
    let manager = RecoveryManager::new(config(log).with_max_wal_entries(n));
    let mut piece = manager.recover().unwrap();
    let mut changes = piece.state_changes.clone();
    let mut calls = 1;
    while piece.has_more {
        let next = manager.resume(&piece).unwrap();
        changes.extend(next.state_changes.iter().cloned());
        piece = next;
        calls += 1;
        assert!(calls < 10_000, "no progress");
    }
    (changes, piece, calls)
}

#[derive(Default)]
struct Streamed(Vec<Change>);

impl ReplaySink for Streamed {
    fn apply(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), highwater::recovery::SinkError> {
        self.0.push((key.to_vec(), value.map(<[u8]>::to_vec)));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn recovery_matches_the_model_and_pieces_match_one_replay(
        ops in proptest::collection::vec(op(), 0..120),
        n in 1u64..10,
    ) {
        let (log, model) = write(&ops);
        let whole = RecoveryManager::new(config(&log)).recover().unwrap();
        prop_assert_eq!(&whole.state_changes, &model.changes);
        prop_assert_eq!(&whole.source_offsets, &model.offsets);
        prop_assert_eq!(whole.watermark, model.watermark);
        prop_assert_eq!(whole.report.uncommitted_entries, model.uncommitted);
        prop_assert!(!whole.has_more);

        let (changes, last, _) = in_pieces(&log, n);
        prop_assert_eq!(&changes, &whole.state_changes);
        prop_assert_eq!(&last.source_offsets, &whole.source_offsets);
        prop_assert_eq!(last.watermark, whole.watermark);
        prop_assert_eq!(last.wal_position, whole.wal_position);
        prop_assert_eq!(last.checkpoint_id, whole.checkpoint_id);

        let mut sink = Streamed::default();
        let streamed = RecoveryManager::new(config(&log).with_transaction_buffer_bytes(8))
            .recover_into(&mut sink)
            .unwrap();
        prop_assert_eq!(&sink.0, &whole.state_changes);
        prop_assert_eq!(&streamed.source_offsets, &whole.source_offsets);

        // Repair on: same result, and the uncommitted tail is gone afterwards.
        let repaired = RecoveryManager::new(config(&log).with_repair_wal(true)).recover().unwrap();
        prop_assert_eq!(&repaired.state_changes, &whole.state_changes);
        prop_assert_eq!(repaired.report.uncommitted_entries, model.uncommitted);
        let again = RecoveryManager::new(config(&log)).recover().unwrap();
        prop_assert_eq!(again.report.uncommitted_entries, 0);
        prop_assert_eq!(&again.state_changes, &whole.state_changes);
    }

    #[test]
    fn without_transactions_every_change_is_returned(
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let ops: Vec<Op> = ops.into_iter().filter(|o| !matches!(o, Op::Checkpoint)).collect();
        let (log, model) = write(&ops);
        let r = RecoveryManager::new(
            config(&log).with_transaction_mode(TransactionMode::NoTransactions),
        )
        .recover()
        .unwrap();
        prop_assert_eq!(&r.state_changes, &model.all_changes);
        prop_assert_eq!(r.report.uncommitted_entries, 0);
    }
}
