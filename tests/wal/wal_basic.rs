//! Appending, reading, positions, rotation, segment dropping, reopening, the lock.

use crate::common;

use common::*;
use highwater::{wal_size, Error, SyncPolicy, WalEntry, WalOptions, WalReadResult, WriteAheadLog};
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn append_and_read_back_every_entry_kind() {
    let dir = tempfile::tempdir().unwrap();
    let wal = WriteAheadLog::new(dir.path(), Duration::from_millis(5)).unwrap();
    assert_eq!(wal.position(), 0);
    let entries = vec![
        put("a", "1"),
        WalEntry::Delete { key: b"b".to_vec() },
        WalEntry::Commit {
            offsets: HashMap::from([("p0".into(), 3), ("p1".into(), 9)]),
            watermark: None,
        },
        WalEntry::Checkpoint { id: 7 },
        WalEntry::Put {
            key: vec![],
            value: vec![0; 5000],
        },
    ];
    let mut positions = Vec::new();
    for e in &entries {
        positions.push(wal.append(e).unwrap());
    }
    assert_eq!(positions[0], 0);
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    wal.sync().unwrap();
    assert_eq!(wal.durable_position(), wal.position());

    let mut r = wal.read_from(0).unwrap();
    let (read, end) = read_all(&mut r);
    assert_eq!(read, entries);
    assert_eq!(end, WalReadResult::Eof);
    assert_eq!(r.position(), wal.position());
    // Fused: Eof again.
    assert_eq!(r.read_next().unwrap(), WalReadResult::Eof);

    // Reading from any entry's position yields the suffix.
    for (i, &p) in positions.iter().enumerate() {
        let (suffix, _) = read_all(&mut wal.read_from(p).unwrap());
        assert_eq!(suffix, entries[i..].to_vec());
    }
    // From the end: nothing.
    let (none, end) = read_all(&mut wal.read_from(wal.position()).unwrap());
    assert!(none.is_empty());
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn positions_must_be_record_boundaries_inside_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let wal = manual(dir.path());
    let second = {
        wal.append(&put("a", "1")).unwrap();
        wal.append(&put("b", "2")).unwrap()
    };
    match wal.read_from(second - 8) {
        Err(Error::NotARecordBoundary {
            position,
            before,
            after,
            ..
        }) => {
            assert_eq!(position, second - 8);
            assert_eq!(before, 0);
            assert_eq!(after, Some(second));
        }
        other => panic!("expected NotARecordBoundary, got {other:?}"),
    }
    let end = wal.position();
    assert!(matches!(
        wal.read_from(end + 8),
        Err(Error::PositionBeyondEnd { end: e, .. }) if e == end
    ));
}

#[test]
fn reopen_continues_at_the_same_position() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let wal = manual(dir.path());
        write_pairs(&wal, 10)
    };
    let wal = manual(dir.path());
    let end = wal.position();
    assert!(end > 0);
    wal.append(&put("after", "reopen")).unwrap();
    let (all, _) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(all.len(), first.len() + 1);
    assert_eq!(&all[..first.len()], &first[..]);
    assert!(
        wal.repair().unwrap().segment.is_none(),
        "clean log needs no repair"
    );
}

#[test]
fn second_writer_gets_a_lock_error() {
    let dir = tempfile::tempdir().unwrap();
    let wal = manual(dir.path());
    match WriteAheadLog::open(dir.path(), WalOptions::default()) {
        Err(e @ Error::Locked { .. }) => assert!(e.to_string().contains("LOCK"), "{e}"),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(wal);
    // Released on drop.
    manual(dir.path());
}

#[test]
fn rotation_and_dropping_segments_keep_positions() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions::default()
        .with_sync_policy(SyncPolicy::Manual)
        .with_segment_size(4096);
    let wal = WriteAheadLog::open(dir.path(), options.clone()).unwrap();
    let mut positions = Vec::new();
    let mut entries = Vec::new();
    for i in 0..200u64 {
        let e = put(&format!("k{i:03}"), &"x".repeat(50));
        positions.push(wal.append(&e).unwrap());
        entries.push(e);
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 3, "expected rotation, got {segs:?}");
    assert!(wal.stats().segments_created >= segs.len() as u64);
    // Every segment is named by the position of its first record.
    for s in &segs {
        let name: u64 = s.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert!(positions.contains(&name), "{name} is not a record position");
        assert!(file_len(s) <= 4096 + 200, "segment {s:?} too large");
    }
    let (read, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(read, entries);
    assert_eq!(end, WalReadResult::Eof);

    // Drop everything below entry 120: segments entirely below it go.
    let cut = positions[120];
    let size_before = wal_size(dir.path()).unwrap();
    let removed = wal.drop_segments_before(cut).unwrap();
    assert!(removed > 0);
    assert!(wal_size(dir.path()).unwrap() < size_before);
    assert!(wal.first_position() <= cut);
    assert_eq!(segments(dir.path()).len(), segs.len() - removed);
    // Positions are unchanged: reading from positions[120] gives entries 120..
    let (suffix, _) = read_all(&mut wal.read_from(cut).unwrap());
    assert_eq!(suffix, entries[120..].to_vec());
    // Below the first segment: a clear error.
    assert!(matches!(
        wal.read_from(0),
        Err(Error::PositionNotCovered { first_available, .. }) if first_available == wal.first_position()
    ));
    // Dropping everything keeps the active segment.
    wal.drop_segments_before(u64::MAX).unwrap();
    assert_eq!(segments(dir.path()).len(), 1);
    drop(wal);

    // Reopen: positions continue, old positions still resolve.
    let wal = WriteAheadLog::open(dir.path(), options).unwrap();
    let p = wal.append(&put("new", "entry")).unwrap();
    assert!(p > *positions.last().unwrap());
    let first = wal.first_position();
    let (tail, _) = read_all(&mut wal.read_from(first).unwrap());
    assert_eq!(tail.last(), Some(&put("new", "entry")));
}

#[test]
fn records_above_the_maximum_size_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = WriteAheadLog::open(
        dir.path(),
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_max_record_size(1024),
    )
    .unwrap();
    let big = WalEntry::Put {
        key: b"k".to_vec(),
        value: vec![1; 2000],
    };
    assert!(matches!(
        wal.append(&big),
        Err(Error::RecordTooLarge { max: 1024, .. })
    ));
    // Not poisoned: the log still works.
    wal.append(&put("k", "v")).unwrap();
    // A reader with a smaller limit than the writer's reports the record as corrupted.
    let wal2dir = tempfile::tempdir().unwrap();
    let w = manual(wal2dir.path());
    w.append(&big).unwrap();
    w.sync().unwrap();
    let mut r = highwater::WalReader::open_with(
        highwater::storage::default_storage(),
        wal2dir.path(),
        0,
        1024,
    )
    .unwrap();
    assert!(matches!(
        r.read_next().unwrap(),
        WalReadResult::Corrupted { position: 0, .. }
    ));
}

#[test]
fn wal_size_is_zero_for_a_missing_log() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(wal_size(dir.path().join("nope")).unwrap(), 0);
    let wal = manual(dir.path());
    wal.append(&put("a", "b")).unwrap();
    wal.sync().unwrap();
    assert_eq!(
        wal_size(dir.path()).unwrap(),
        40 + wal.position(),
        "one segment header plus the records"
    );
}

#[test]
fn standalone_reader_on_missing_or_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = highwater::WalReader::open(dir.path().join("missing"), 0).unwrap();
    assert_eq!(r.read_next().unwrap(), WalReadResult::Eof);
    assert!(matches!(
        highwater::WalReader::open(dir.path().join("missing"), 16),
        Err(Error::PositionBeyondEnd { end: 0, .. })
    ));
}

#[test]
fn interval_policy_makes_data_durable_without_further_appends() {
    let dir = tempfile::tempdir().unwrap();
    let wal = WriteAheadLog::new(dir.path(), Duration::from_millis(20)).unwrap();
    wal.append(&put("a", "1")).unwrap();
    let end = wal.position();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.durable_position() < end {
        assert!(
            std::time::Instant::now() < deadline,
            "background flusher never synced"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(wal.stats().syncs >= 1);
}

#[test]
fn truncate_from_cuts_across_segments_durably_and_positions_continue() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions::new()
        .with_sync_policy(SyncPolicy::Manual)
        .with_segment_size(4096);
    let wal = WriteAheadLog::open(dir.path(), opts.clone()).unwrap();
    let mut positions = Vec::new();
    for i in 0..600 {
        positions.push(wal.append(&put(&format!("k{i}"), "some value")).unwrap());
    }
    wal.sync().unwrap();
    let before = segments(dir.path()).len();
    assert!(before > 3, "the test needs several segments, got {before}");

    // Not a record boundary, beyond the end: typed errors, nothing changes.
    let end = wal.position();
    assert!(matches!(
        wal.cut_from(positions[50] + 8),
        Err(Error::NotARecordBoundary { .. })
    ));
    assert!(matches!(
        wal.cut_from(end + 8),
        Err(Error::PositionBeyondEnd { .. })
    ));
    assert_eq!(wal.position(), end);
    assert_eq!(wal.cut_from(end).unwrap(), 0);

    let cut = wal.cut_from(positions[50]).unwrap();
    assert!(cut > 0);
    assert_eq!(wal.position(), positions[50]);
    assert_eq!(wal.durable_position(), positions[50]);
    assert!(segments(dir.path()).len() < before);
    // The next record takes the cut position; reading shows no trace of the cut.
    assert_eq!(wal.append(&put("after", "cut")).unwrap(), positions[50]);
    wal.close().unwrap();

    let wal = WriteAheadLog::open(dir.path(), opts).unwrap();
    assert_eq!(wal.pending_repair(), None);
    let (read, tail) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(tail, WalReadResult::Eof);
    assert_eq!(read.len(), 51);
    assert_eq!(read[49], put("k49", "some value"));
    assert_eq!(read[50], put("after", "cut"));
}
