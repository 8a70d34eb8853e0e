//! Durability: poisoning after failed writes and fsyncs (injected through the
//! crash simulator), group commit from many threads.

use crate::common;

use common::*;
use highwater::storage::{CrashSimStorage, SimFault, SimOp};
use highwater::{Error, SyncPolicy, WalOptions, WalReadResult, WriteAheadLog};
use std::sync::Arc;

const WAL: &str = "/wal";

/// A log at [`WAL`] on `sim`.
fn open_on(sim: &CrashSimStorage, policy: SyncPolicy) -> WriteAheadLog {
    WriteAheadLog::open(
        WAL,
        WalOptions::default()
            .with_sync_policy(policy)
            .with_storage(Arc::new(sim.clone())),
    )
    .unwrap()
}

#[test]
fn a_failed_fsync_poisons_the_log_until_reopened() {
    let sim = CrashSimStorage::new();
    let wal = open_on(&sim, SyncPolicy::EveryWrite);
    wal.append(&put("a", "1")).unwrap();
    let durable = wal.durable_position();

    fail_every_sync(&sim);
    match wal.append(&put("b", "2")) {
        Err(Error::Io { operation, .. }) => assert_eq!(operation, "sync"),
        other => panic!("expected the sync error, got {other:?}"),
    }
    // Not acknowledged, durable position unchanged.
    assert_eq!(wal.durable_position(), durable);
    // Even once the device "recovers", nothing is retried: every call fails.
    sim.clear_faults();
    let syncs_before = sim.operations_of(SimOp::SyncFile);
    for result in [
        wal.append(&put("c", "3")).map(|_| ()),
        wal.sync(),
        wal.read_from(0).map(|_| ()),
        wal.repair().map(|_| ()),
        wal.drop_segments_before(0).map(|_| ()),
    ] {
        match result {
            Err(e @ Error::Poisoned { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("poisoned") && msg.contains("sync"), "{msg}");
            }
            other => panic!("expected Poisoned, got {other:?}"),
        }
    }
    drop(wal); // must not sync a poisoned log
    assert_eq!(
        sim.operations_of(SimOp::SyncFile),
        syncs_before,
        "fsync was retried"
    );

    // Reopening recovers: the acknowledged entry is there.
    let wal = open_on(&sim, SyncPolicy::Manual);
    let (entries, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(entries.first(), Some(&put("a", "1")));
    assert_eq!(end, WalReadResult::Eof);
    wal.append(&put("d", "4")).unwrap();
    wal.sync().unwrap();
}

#[test]
fn a_failed_write_poisons_the_log() {
    let sim = CrashSimStorage::new();
    let wal = open_on(&sim, SyncPolicy::Manual);
    wal.append(&put("a", "1")).unwrap();
    wal.sync().unwrap();
    // Every write writes the first half of its sectors, then fails: the
    // device is full. (The record spans several sectors, so half of it lands.)
    sim.inject(
        SimFault::new(SimOp::Write)
            .times(u64::MAX)
            .with_kind(std::io::ErrorKind::StorageFull),
    );
    let b = put("b", &"2".repeat(4000));
    wal.append(&b).unwrap(); // buffered, not yet written
    assert!(matches!(
        wal.sync(),
        Err(Error::Io {
            operation: "write",
            ..
        })
    ));
    sim.clear_faults();
    assert!(matches!(
        wal.append(&put("c", "3")),
        Err(Error::Poisoned { .. })
    ));
    drop(wal);
    // The half-written record is a torn tail; reopening cuts it, the synced entry stays.
    let wal = open_on(&sim, SyncPolicy::Manual);
    let report = wal.repair().unwrap();
    assert!(report.torn_tail, "{report:?}");
    let (entries, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(entries, vec![put("a", "1")]);
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn a_failed_sync_wakes_every_waiting_committer_with_an_error() {
    let sim = CrashSimStorage::new();
    let wal = Arc::new(open_on(&sim, SyncPolicy::EveryWrite));
    fail_every_sync(&sim);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || wal.append(&put(&format!("t{t}"), "v")).is_err())
        })
        .collect();
    for h in handles {
        assert!(
            h.join().unwrap(),
            "a commit was acknowledged although fsync failed"
        );
    }
    assert_eq!(wal.durable_position(), 0);
}

#[test]
fn group_commit_from_many_threads_shares_fsyncs_and_loses_nothing() {
    // The real file system: group commit needs fsyncs that take time.
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(
        WriteAheadLog::open(
            dir.path(),
            WalOptions::default().with_sync_policy(SyncPolicy::EveryWrite),
        )
        .unwrap(),
    );
    const THREADS: u64 = 16;
    const PER_THREAD: u64 = 50;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let range = wal
                        .append_batch(&[put(&format!("t{t}-{i}"), "v"), commit(t * 1000 + i)])
                        .unwrap();
                    // Acknowledged means durable.
                    assert!(wal.durable_position() >= range.end);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let commits = THREADS * PER_THREAD;
    let stats = wal.stats();
    assert_eq!(stats.appends, commits * 2);
    // Group commit: far fewer fsyncs than commits (observed ~1 per 8 here).
    assert!(stats.syncs < commits / 2, "{stats:?}");
    eprintln!("{commits} commits shared {} fsyncs", stats.syncs);

    // Every transaction is there, each Put directly followed by its Commit.
    let (entries, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(end, WalReadResult::Eof);
    assert_eq!(entries.len() as u64, commits * 2);
    let mut seen = std::collections::HashSet::new();
    for pair in entries.chunks(2) {
        let highwater::WalEntry::Put { key, .. } = &pair[0] else {
            panic!("expected a Put first: {pair:?}")
        };
        assert!(matches!(pair[1], highwater::WalEntry::Commit { .. }));
        assert!(seen.insert(key.clone()));
    }
    assert_eq!(seen.len() as u64, commits);
}

#[test]
fn a_record_above_the_readers_limit_is_a_configuration_error_not_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let big = |limit: u32| {
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_max_record_size(limit)
    };
    let wal = WriteAheadLog::open(dir.path(), big(1 << 20)).unwrap();
    wal.append(&put("k", &"v".repeat(200_000))).unwrap();
    wal.append(&put("j", "w")).unwrap();
    wal.close().unwrap();
    match WriteAheadLog::open(dir.path(), big(100_000)) {
        Err(e @ Error::RecordExceedsMaxSize { max: 100_000, .. }) => {
            assert!(!e.is_corruption(), "a configuration mismatch, not damage");
            assert!(e.to_string().contains("at least"), "{e}");
            assert!(e.offset().is_some() && e.path().is_some());
        }
        other => panic!("expected RecordExceedsMaxSize, got {other:?}"),
    }
    // With the writer's limit it opens as it is.
    WriteAheadLog::open(dir.path(), big(1 << 20)).unwrap();
}
