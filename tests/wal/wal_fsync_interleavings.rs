//! The log under failed fsyncs, with threads interleaved on purpose.
//!
//! Linux reports a write-back error to one fsync only and drops the failed
//! pages, so a second fsync of the same file that runs meanwhile succeeds over
//! lost data. These tests hold simulated fsyncs at `SimGate`s to force the
//! interleavings a reviewer found, then take a power-loss image and check that
//! every append that was acknowledged is in it, and that `durable_position()`
//! never vouched for what is not.

use crate::common;

use common::*;
use highwater::storage::{CrashImage, CrashSimStorage, SimFault, SimGate, SimOp, Storage};
use highwater::{SyncPolicy, WalEntry, WalOptions, WalReadResult, WriteAheadLog};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const WAL: &str = "/job/wal";
/// Long enough for a thread that is not blocked to reach a gate or finish.
const SETTLE: Duration = Duration::from_millis(400);

fn big(key: &str) -> WalEntry {
    WalEntry::Put {
        key: key.as_bytes().to_vec(),
        value: vec![7; 1000],
    }
}

fn open(sim: &CrashSimStorage) -> WriteAheadLog {
    WriteAheadLog::open(
        WAL,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::EveryWrite)
            .with_segment_size(4096)
            .with_storage(Arc::new(sim.clone())),
    )
    .unwrap()
}

/// The entries a power loss leaves, read by a fresh process in the default
/// recovery mode; panics if that process cannot open the log.
fn after_power_loss(sim: &CrashSimStorage) -> Vec<WalEntry> {
    sim.crash();
    let image = sim.image(CrashImage::LoseUnsynced);
    let wal = WriteAheadLog::open(
        WAL,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(Arc::new(image)),
    )
    .expect("the log of a power loss opens in the default mode");
    wal.repair().unwrap(); // a torn tail is normal after a power loss
    let (entries, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(end, WalReadResult::Eof);
    entries
}

fn spawn_append(wal: &Arc<WriteAheadLog>, entry: WalEntry) -> JoinHandle<highwater::Result<u64>> {
    let wal = wal.clone();
    std::thread::spawn(move || wal.append(&entry))
}

/// Fills segment 0 so that one more big record fits and the one after rotates.
fn log_with_room_for_one(sim: &CrashSimStorage) -> Arc<WriteAheadLog> {
    let wal = Arc::new(open(sim));
    wal.append(&big("base-1")).unwrap();
    wal.append(&big("base-2")).unwrap();
    assert_eq!(wal.stats().segments_created, 1);
    wal
}

#[test]
fn a_rotation_whose_fsync_fails_never_lets_a_waiting_commit_be_acknowledged() {
    let sim = CrashSimStorage::new();
    let wal = log_with_room_for_one(&sim);

    // W writes its record and is about to fsync it.
    let w_gate = SimGate::new();
    sim.inject(SimFault::pause(SimOp::SyncFile, &w_gate).on_path("wal"));
    let w = spawn_append(&wal, big("waiting"));
    assert!(w_gate.wait_arrivals(1, Duration::from_secs(10)));

    // R's append rotates; its fsync of the same segment fails (dropping W's
    // pages), and its error comes back late.
    let r_gate = SimGate::new();
    sim.inject(
        SimFault::new(SimOp::SyncFile)
            .on_path("wal")
            .paused(&r_gate),
    );
    let r = spawn_append(&wal, big("rotating"));
    r_gate.wait_arrivals(1, SETTLE);

    // W's fsync now runs.
    w_gate.open();
    std::thread::sleep(SETTLE);
    r_gate.open();
    let w = w.join().unwrap();
    let r = r.join().unwrap();
    assert!(r.is_err(), "the rotation's fsync failed: {r:?}");

    let kept = after_power_loss(&sim);
    if w.is_ok() {
        assert!(
            kept.contains(&big("waiting")),
            "an acknowledged commit was lost after a power loss"
        );
    }
}

#[test]
fn a_late_fsync_error_never_lets_a_rotation_vouch_for_lost_records() {
    let sim = CrashSimStorage::new();
    let wal = log_with_room_for_one(&sim);
    let before = wal.position();

    // W's fsync fails (its pages are dropped); the error comes back late.
    let w_gate = SimGate::new();
    sim.inject(
        SimFault::new(SimOp::SyncFile)
            .on_path("wal")
            .paused(&w_gate),
    );
    let w = spawn_append(&wal, big("failed"));
    assert!(w_gate.wait_arrivals(1, Duration::from_secs(10)));

    // Meanwhile R's append rotates the segment.
    let r = spawn_append(&wal, big("rotating"));
    std::thread::sleep(SETTLE);
    let vouched = wal.durable_position();
    w_gate.open();
    let w = w.join().unwrap();
    let r = r.join().unwrap();
    assert!(w.is_err(), "W's fsync failed: {w:?}");
    assert!(
        vouched <= before,
        "durable_position() {vouched} vouched for records after {before} that a failed fsync dropped"
    );
    assert!(wal.durable_position() <= before);

    // Commits acknowledged before the failure survive, and the log opens.
    let kept = after_power_loss(&sim);
    assert_eq!(&kept[..2], &[big("base-1"), big("base-2")]);
    if r.is_ok() {
        assert!(kept.contains(&big("rotating")), "R was acknowledged");
    }
}

#[test]
fn opening_a_log_with_a_torn_tail_makes_its_records_durable_before_vouching_for_them() {
    // A process wrote three records and was killed: the first is synced, the
    // other two are only in the page cache, and a fourth is half written.
    let source = CrashSimStorage::new();
    let wal = WriteAheadLog::open(
        WAL,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(Arc::new(source.clone())),
    )
    .unwrap();
    wal.append(&put("a", "1")).unwrap();
    wal.sync().unwrap();
    let synced_end = wal.position();
    wal.append(&put("b", "2")).unwrap();
    wal.append(&commit(2)).unwrap();
    wal.close().unwrap();
    let segment = segment_path(&source);
    let bytes = read_file(&source, &segment);

    let sim = CrashSimStorage::new();
    sim.create_dir_all(Path::new(WAL)).unwrap();
    let file = sim
        .open_file(&segment, highwater::storage::OpenMode::CreateNew)
        .unwrap();
    let split = (40 + synced_end) as usize; // segment header + synced records
    file.write_all_at(&bytes[..split], 0).unwrap();
    file.sync_data().unwrap();
    sim.sync_dir(Path::new(WAL)).unwrap();
    sim.sync_dir(Path::new("/job")).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    file.write_all_at(&bytes[split..], split as u64).unwrap();
    let torn = bytes.len() as u64;
    file.write_all_at(&[0x5a; 24], torn).unwrap(); // a half-written record

    let wal = WriteAheadLog::open(
        WAL,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(Arc::new(sim.clone())),
    )
    .unwrap();
    wal.sync().unwrap();
    let vouched = wal.durable_position();
    assert!(
        vouched > synced_end,
        "the log ends after the unsynced records"
    );
    drop(wal);

    let kept = after_power_loss(&sim);
    assert!(
        kept.len() >= 3,
        "durable_position() {vouched} vouched for records a power loss dropped: kept {kept:?}"
    );
}

fn segment_path(sim: &CrashSimStorage) -> std::path::PathBuf {
    let entries = sim.list_dir(Path::new(WAL)).unwrap();
    let name = entries
        .iter()
        .map(|e| e.name.clone())
        .find(|n| n.ends_with(".wal"))
        .unwrap_or_else(|| panic!("no segment in {entries:?}"));
    Path::new(WAL).join(name)
}

fn read_file(sim: &CrashSimStorage, path: &Path) -> Vec<u8> {
    let file = sim
        .open_file(path, highwater::storage::OpenMode::Read)
        .unwrap();
    let mut bytes = vec![0; file.len().unwrap() as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    bytes
}

#[test]
fn a_write_back_error_reported_to_any_fsync_poisons_the_log_and_is_never_retried() {
    let sim = CrashSimStorage::new();
    let wal = Arc::new(open(&sim));
    wal.append(&big("synced")).unwrap();
    wal.set_sync_on_write(false);
    wal.append(&big("buffered")).unwrap();
    let durable = wal.durable_position();
    let _ = wal.read_from(0).unwrap(); // written to the file, not synced
    sim.fail_writeback(&segment_path(&sim)).unwrap();

    // Another thread's sync is the one the error is reported to.
    let other = wal.clone();
    let synced = std::thread::spawn(move || other.sync()).join().unwrap();
    assert!(synced.is_err(), "the write-back error reached this fsync");
    assert_eq!(wal.durable_position(), durable);
    for result in [wal.sync(), wal.append(&big("later")).map(|_| ())] {
        assert!(
            matches!(&result, Err(e @ highwater::Error::Poisoned { .. }) if !e.is_retryable()),
            "{result:?}: poisoned, and a retry cannot fix it (reopen)"
        );
    }
    // Another writer of the same directory is refused, and that one may retry.
    let second = WriteAheadLog::open(
        WAL,
        WalOptions::default().with_storage(Arc::new(sim.clone())),
    );
    assert!(
        matches!(&second, Err(e @ highwater::Error::Locked { .. }) if e.is_retryable()),
        "{second:?}"
    );
    drop(wal);
    assert_eq!(after_power_loss(&sim), vec![big("synced")]);
}

#[test]
fn a_log_reopened_after_a_failed_fsync_never_vouches_for_the_lost_records() {
    // Process 1's fsync fails: its records are read back from the page cache
    // but will never reach the device. It exits; process 2 opens the log on
    // the same machine (no reboot), as "reopen after poisoning" tells it to.
    let sim = CrashSimStorage::new();
    let wal = Arc::new(open(&sim));
    wal.append(&big("synced")).unwrap();
    wal.set_sync_on_write(false);
    wal.append(&big("lost")).unwrap();
    let _ = wal.read_from(0).unwrap(); // written to the file, not synced
    sim.fail_writeback(&segment_path(&sim)).unwrap();
    assert!(wal.sync().is_err(), "the write-back error is reported");
    drop(wal);

    let wal = WriteAheadLog::open(
        WAL,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(Arc::new(sim.clone())),
    )
    .unwrap();
    let vouched = wal.durable_position();
    let (seen, _) = read_all(&mut wal.read_from(0).unwrap());
    // Everything it vouches for and builds on must survive a power loss.
    wal.append(&commit(1)).unwrap();
    wal.sync().unwrap();
    let acknowledged = wal.durable_position();
    drop(wal);
    let kept = after_power_loss(&sim);
    assert!(
        kept.len() > seen.len(),
        "the reopened log vouched for {vouched} (then {acknowledged}) bytes holding {} entries, \
         but a power loss kept only {kept:?}",
        seen.len() + 1
    );
}

#[test]
fn an_open_whose_fsync_failed_is_not_retryable_into_vouching_for_lost_records() {
    // A killed process left two records in the page cache only. The next
    // open's fsync of them fails; the error says it may be retried.
    let source = CrashSimStorage::new();
    let wal = WriteAheadLog::open(
        WAL,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(Arc::new(source.clone())),
    )
    .unwrap();
    wal.append(&put("a", "1")).unwrap();
    wal.append(&commit(1)).unwrap();
    wal.close().unwrap();
    let segment = segment_path(&source);
    let bytes = read_file(&source, &segment);

    let sim = CrashSimStorage::new();
    sim.create_dir_all(Path::new(WAL)).unwrap();
    let file = sim
        .open_file(&segment, highwater::storage::OpenMode::CreateNew)
        .unwrap();
    file.write_all_at(&bytes[..40], 0).unwrap(); // the segment header
    file.sync_data().unwrap();
    for dir in [WAL, "/job", "/"] {
        sim.sync_dir(Path::new(dir)).unwrap();
    }
    file.write_all_at(&bytes[40..], 40).unwrap(); // unsynced records
    drop(file);

    let options = || {
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_storage(Arc::new(sim.clone()))
    };
    sim.inject(SimFault::new(SimOp::SyncFile).on_path(".wal"));
    let first = WriteAheadLog::open(WAL, options());
    let Err(error) = first else {
        panic!("the open's fsync failed, the open must fail")
    };
    if !error.is_retryable() {
        return; // the caller is told not to retry: sound
    }
    // The caller retries, as told.
    let wal = WriteAheadLog::open(WAL, options()).unwrap();
    let vouched = wal.durable_position();
    let (seen, _) = read_all(&mut wal.read_from(0).unwrap());
    drop(wal);
    let kept = after_power_loss(&sim);
    assert_eq!(
        kept, seen,
        "{error} was retryable; the retried open vouched for {vouched} bytes ({seen:?}), a power loss kept {kept:?}"
    );
}

#[test]
fn acknowledged_appends_survive_a_write_back_error_at_any_moment_of_group_commit() {
    for round in 0..40u64 {
        let sim = CrashSimStorage::new();
        let wal = Arc::new(open(&sim));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..30 {
                        let e = big(&format!("t{t}-{i}"));
                        match wal.append(&e) {
                            Ok(_) => acked.push(e),
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_micros(200 * (round % 10)));
        let _ = sim.fail_writeback(&{
            let entries = sim.list_dir(Path::new(WAL)).unwrap();
            let name = entries
                .iter()
                .map(|e| e.name.clone())
                .filter(|n| n.ends_with(".wal"))
                .max()
                .unwrap();
            Path::new(WAL).join(name)
        });
        let acked: Vec<WalEntry> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let durable = wal.durable_position();
        drop(wal);
        let kept = after_power_loss(&sim);
        for e in &acked {
            assert!(
                kept.contains(e),
                "round {round}: acknowledged {e:?} lost (durable {durable})"
            );
        }
    }
}

#[test]
fn a_poison_mark_is_consumed_once_and_never_cuts_later_commits() {
    let sim = CrashSimStorage::new();
    let wal = Arc::new(open(&sim));
    wal.append(&big("synced")).unwrap();
    wal.set_sync_on_write(false);
    wal.append(&big("lost")).unwrap();
    let _ = wal.read_from(0).unwrap();
    sim.fail_writeback(&segment_path(&sim)).unwrap();
    assert!(wal.sync().is_err());
    drop(wal);
    let mark = Path::new(WAL).join(highwater::inspect::POISON_MARK_FILE_NAME);
    assert!(
        sim.exists(&mark).unwrap(),
        "the poisoned writer left its mark"
    );

    // The next open consumes it; commits after that survive later opens.
    let wal = open(&sim);
    assert!(
        !sim.exists(&mark).unwrap(),
        "the mark is gone once acted on"
    );
    wal.append(&big("after")).unwrap();
    drop(wal);
    let wal = open(&sim);
    let (entries, _) = read_all(&mut wal.read_from(0).unwrap());
    drop(wal);
    assert_eq!(entries.first(), Some(&big("synced")));
    assert!(entries.contains(&big("after")), "{entries:?}");
    assert!(!entries.contains(&big("lost")), "{entries:?}");
    assert_eq!(&after_power_loss(&sim)[..2], &[big("synced"), big("after")]);
}
