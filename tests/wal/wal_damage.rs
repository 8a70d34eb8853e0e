//! Damaged logs: every read result, torn tails, repair, reopen-and-append, bad
//! input (huge length fields, garbage headers, zero tails, wrong versions), and the
//! three recovery modes.

use crate::common;

use common::*;
use highwater::{
    Error, SyncPolicy, WalEntry, WalOptions, WalReadResult, WalReader, WalRecoveryMode,
    WriteAheadLog,
};
use std::path::Path;

/// A log of `n` Put+Commit pairs, closed cleanly; returns the entries and the
/// position of every entry.
fn log_with(dir: &Path, n: u64, segment_size: u64) -> (Vec<WalEntry>, Vec<u64>) {
    let wal = WriteAheadLog::open(
        dir,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_segment_size(segment_size),
    )
    .unwrap();
    let mut entries = Vec::new();
    let mut positions = Vec::new();
    for i in 0..n {
        for e in [
            put(&format!("key-{i:04}"), &format!("value-{i}")),
            commit(i),
        ] {
            positions.push(wal.append(&e).unwrap());
            entries.push(e);
        }
    }
    wal.close().unwrap();
    (entries, positions)
}

/// As [`log_with`], then as if the process had crashed right after its last
/// fsync: without the sync marker a clean close appends.
fn crashed_log_with(dir: &Path, n: u64) -> (Vec<WalEntry>, Vec<u64>) {
    let r = log_with(dir, n, 1 << 20);
    strip_close_marker(dir);
    r
}

fn open_mode(dir: &Path, mode: WalRecoveryMode) -> highwater::Result<WriteAheadLog> {
    WriteAheadLog::open(
        dir,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_recovery_mode(mode),
    )
}

fn newest(dir: &Path) -> std::path::PathBuf {
    segments(dir).pop().unwrap()
}

/// File offset of the record at `position` in a single-segment log.
fn offset_of(position: u64) -> u64 {
    40 + position
}

#[test]
fn truncated_last_record_is_a_torn_write_and_repair_cuts_it() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, positions) = crashed_log_with(dir.path(), 5);
    let seg = newest(dir.path());
    let last = *positions.last().unwrap();
    let full = file_len(&seg);
    // Truncate at every byte inside the last record: always a torn write at `last`.
    for cut in offset_of(last) + 1..full {
        set_file_len(&seg, cut);
        let mut r = WalReader::open(dir.path(), 0).unwrap();
        let (read, end) = read_all(&mut r);
        assert_eq!(read, entries[..entries.len() - 1].to_vec(), "cut at {cut}");
        match &end {
            WalReadResult::TornWrite { position, reason } => {
                assert_eq!(*position, last);
                assert!(reason.contains(&seg.display().to_string()), "{reason}");
            }
            other => panic!("cut at {cut}: expected TornWrite, got {other:?}"),
        }
        assert!(r.stopped_at_torn_tail());
        assert_eq!(r.position(), last);
        // Fused.
        assert_eq!(r.read_next().unwrap(), end);
    }
    // Cutting exactly at a record boundary is a clean end.
    set_file_len(&seg, offset_of(last));
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert_eq!(read.len(), entries.len() - 1);
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn repair_reports_the_cut_and_appends_continue_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, positions) = crashed_log_with(dir.path(), 5);
    let seg = newest(dir.path());
    let last = *positions.last().unwrap();
    let full = file_len(&seg);
    set_file_len(&seg, full - 3);

    let wal = open_mode(dir.path(), WalRecoveryMode::TolerateTornTail).unwrap();
    assert_eq!(wal.position(), last, "the log ends before the torn record");
    assert!(wal.pending_repair().is_some());
    let report = wal.repair().unwrap();
    assert_eq!(report.segment.as_deref(), Some(seg.as_path()));
    assert_eq!(report.offset, offset_of(last));
    assert_eq!(report.position, last);
    assert_eq!(report.bytes_cut, full - 3 - offset_of(last));
    assert!(report.torn_tail);
    assert_eq!(file_len(&seg), offset_of(last), "truncated on disk");
    // A second repair finds nothing.
    assert!(!wal.repair().unwrap().cut_anything());

    let p = wal.append(&put("after", "repair")).unwrap();
    assert_eq!(p, last);
    wal.sync().unwrap();
    let (read, end) = read_all(&mut wal.read_from(0).unwrap());
    let mut expected = entries[..entries.len() - 1].to_vec();
    expected.push(put("after", "repair"));
    assert_eq!(read, expected);
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn append_after_reopen_never_lands_behind_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = log_with(dir.path(), 3, 1 << 20);
    let seg = newest(dir.path());
    // Garbage after the last record: a crash while writing.
    let len = file_len(&seg);
    patch(&seg, len, &[0xAB; 37]);
    {
        let wal = open_mode(dir.path(), WalRecoveryMode::TolerateTornTail).unwrap();
        wal.append(&put("x", "y")).unwrap(); // repairs first, no explicit repair()
        wal.sync().unwrap();
    }
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    let mut expected = entries.clone();
    expected.push(put("x", "y"));
    assert_eq!(read, expected);
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn zero_filled_tail_is_a_clean_end() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = log_with(dir.path(), 3, 1 << 20);
    let seg = newest(dir.path());
    let len = file_len(&seg);
    patch(&seg, len, &vec![0u8; 8192]);
    for mode in [
        WalRecoveryMode::TolerateTornTail,
        WalRecoveryMode::AbsoluteConsistency,
        WalRecoveryMode::PointInTime,
    ] {
        let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
        assert_eq!(read, entries);
        assert_eq!(end, WalReadResult::Eof);
        let wal = open_mode(dir.path(), mode).unwrap();
        assert!(wal.pending_repair().is_none(), "{mode:?}");
    }
    let wal = open_mode(dir.path(), WalRecoveryMode::TolerateTornTail).unwrap();
    wal.append(&put("z", "z")).unwrap();
    wal.sync().unwrap();
    let (read, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(read.len(), entries.len() + 1);
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn damage_followed_by_valid_records_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, positions) = log_with(dir.path(), 5, 1 << 20);
    let seg = newest(dir.path());
    // Flip a payload byte of entry 4 (a Put); entries 5.. are intact.
    let victim = positions[4];
    patch(&seg, offset_of(victim) + 16 + 2, &[0xFF]);
    let mut r = WalReader::open(dir.path(), 0).unwrap();
    let (read, end) = read_all(&mut r);
    assert_eq!(read, entries[..4].to_vec());
    match end {
        WalReadResult::ChecksumMismatch {
            position,
            segment,
            offset,
            expected,
            actual,
        } => {
            assert_eq!(position, victim);
            assert_eq!(segment, seg);
            assert_eq!(offset, offset_of(victim));
            assert_ne!(expected, actual);
        }
        other => panic!("expected ChecksumMismatch, got {other:?}"),
    }
    assert!(!r.stopped_at_torn_tail());
    let err = r.damage_error().unwrap();
    assert!(err.is_corruption());

    // Default and absolute modes refuse to open; nothing is cut.
    let before = file_len(&seg);
    for mode in [
        WalRecoveryMode::TolerateTornTail,
        WalRecoveryMode::AbsoluteConsistency,
    ] {
        match open_mode(dir.path(), mode) {
            Err(Error::WalChecksumMismatch {
                path,
                offset,
                position,
                ..
            }) => {
                assert_eq!(path, seg);
                assert_eq!(offset, offset_of(victim));
                assert_eq!(position, victim);
            }
            other => panic!("{mode:?}: expected a checksum error, got {other:?}"),
        }
        assert_eq!(file_len(&seg), before);
    }
    // Point in time keeps the prefix before the damage.
    let wal = open_mode(dir.path(), WalRecoveryMode::PointInTime).unwrap();
    let report = wal.repair().unwrap();
    assert!(!report.torn_tail);
    assert_eq!(report.position, victim);
    let (read, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(read, entries[..4].to_vec());
    assert_eq!(end, WalReadResult::Eof);
}

#[test]
fn damage_in_an_older_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = log_with(dir.path(), 200, 4096);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    // Damage the last record of the first segment: in the newest segment this would
    // look torn; in an older one it is corruption.
    let first_len = file_len(&segs[0]);
    patch(&segs[0], first_len - 4, &[0x55, 0x55, 0x55, 0x55]);
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert!(read.len() < entries.len());
    assert_eq!(read, entries[..read.len()].to_vec());
    assert!(
        matches!(end, WalReadResult::ChecksumMismatch { ref segment, .. } if *segment == segs[0]),
        "{end:?}"
    );

    // PointInTime cuts there and removes every later segment.
    let wal = open_mode(dir.path(), WalRecoveryMode::PointInTime).unwrap();
    let report = wal.repair().unwrap();
    assert_eq!(report.segments_removed.len(), segs.len() - 1);
    assert_eq!(segments(dir.path()), vec![segs[0].clone()]);
    let (after, end) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(after, read);
    assert_eq!(end, WalReadResult::Eof);
    wal.append(&put("after", "pit")).unwrap();
}

#[test]
fn a_missing_middle_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 200, 4096);
    let segs = segments(dir.path());
    std::fs::remove_file(&segs[1]).unwrap();
    let (_, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    match end {
        WalReadResult::Corrupted { reason, .. } => {
            assert!(reason.contains("next segment"), "{reason}");
            assert!(reason.contains(&segs[0].display().to_string()), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }
}

#[test]
fn a_4_gib_length_field_never_allocates_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, positions) = log_with(dir.path(), 4, 1 << 20);
    let seg = newest(dir.path());
    // In the middle: the header checksum fails, valid records follow: corruption.
    patch(&seg, offset_of(positions[2]), &u32::MAX.to_le_bytes());
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert_eq!(read, entries[..2].to_vec());
    assert!(
        matches!(end, WalReadResult::ChecksumMismatch { position, .. } if position == positions[2])
    );
    // On the last record: a torn tail.
    let dir2 = tempfile::tempdir().unwrap();
    let (entries2, positions2) = crashed_log_with(dir2.path(), 4);
    let seg2 = newest(dir2.path());
    patch(
        &seg2,
        offset_of(*positions2.last().unwrap()),
        &u32::MAX.to_le_bytes(),
    );
    let (read, end) = read_all(&mut WalReader::open(dir2.path(), 0).unwrap());
    assert_eq!(read, entries2[..entries2.len() - 1].to_vec());
    assert!(matches!(end, WalReadResult::TornWrite { .. }), "{end:?}");
}

#[test]
fn garbage_segment_header_is_reported_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 3, 1 << 20);
    let seg = newest(dir.path());
    patch(&seg, 0, b"this is not a header at all!");
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert!(read.is_empty());
    assert!(
        matches!(end, WalReadResult::Corrupted { position: 0, ref reason } if reason.contains(&seg.display().to_string())),
        "{end:?}"
    );
    match open_mode(dir.path(), WalRecoveryMode::TolerateTornTail) {
        Err(Error::WalCorrupted {
            path, offset: 0, ..
        }) => assert_eq!(path, seg),
        other => panic!("expected WalCorrupted, got {other:?}"),
    }
}

#[test]
fn a_segment_of_another_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 3, 1 << 20);
    let seg = newest(dir.path());
    // Version 3 with a valid header checksum: a newer writer's file (2 is
    // a sealed segment, FORMAT.md §1).
    let mut header = std::fs::read(&seg).unwrap()[..40].to_vec();
    header[8..12].copy_from_slice(&3u32.to_le_bytes());
    let crc = crc32c::crc32c(&header[..36]);
    header[36..40].copy_from_slice(&crc.to_le_bytes());
    patch(&seg, 0, &header);
    let before = std::fs::read(&seg).unwrap();
    match open_mode(dir.path(), WalRecoveryMode::PointInTime) {
        Err(Error::UnsupportedVersion {
            path,
            found: 3,
            supported: 2,
        }) => assert_eq!(path, seg),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert!(matches!(
        WalReader::open(dir.path(), 0),
        Err(Error::UnsupportedVersion { found: 3, .. })
    ));
    assert_eq!(std::fs::read(&seg).unwrap(), before, "never touched");
}

#[test]
fn torn_segment_creation_is_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = log_with(dir.path(), 3, 1 << 20);
    let wal = manual(dir.path());
    let end = wal.position();
    drop(wal);
    // A crash right after creating the next segment: a few bytes of its header.
    let next = dir.path().join(highwater::inspect::segment_file_name(end));
    std::fs::write(&next, b"HWWAL").unwrap();
    let (read, last) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert_eq!(read, entries);
    assert!(
        matches!(last, WalReadResult::TornWrite { position, .. } if position == end),
        "{last:?}"
    );
    assert!(open_mode(dir.path(), WalRecoveryMode::AbsoluteConsistency).is_err());
    let wal = open_mode(dir.path(), WalRecoveryMode::TolerateTornTail).unwrap();
    let report = wal.repair().unwrap();
    assert_eq!(report.offset, 0);
    assert_eq!(report.segment.as_deref(), Some(next.as_path()));
    wal.append(&put("new", "segment")).unwrap();
    wal.sync().unwrap();
    let (read, last) = read_all(&mut wal.read_from(0).unwrap());
    assert_eq!(read.len(), entries.len() + 1);
    assert_eq!(last, WalReadResult::Eof);
}

#[test]
fn absolute_consistency_refuses_a_torn_tail_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    crashed_log_with(dir.path(), 3);
    let seg = newest(dir.path());
    let len = file_len(&seg);
    set_file_len(&seg, len - 1);
    match open_mode(dir.path(), WalRecoveryMode::AbsoluteConsistency) {
        Err(Error::WalCorrupted { path, reason, .. }) => {
            assert_eq!(path, seg);
            assert!(reason.contains("torn"), "{reason}");
        }
        other => panic!("expected WalCorrupted, got {other:?}"),
    }
    assert_eq!(file_len(&seg), len - 1);
}

#[test]
fn records_copied_from_another_segment_do_not_validate() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = log_with(dir.path(), 200, 4096);
    let segs = segments(dir.path());
    let newest = segs.last().unwrap();
    // Stale bytes: the first segment's records appended to the newest segment.
    let old = std::fs::read(&segs[0]).unwrap();
    let len = file_len(newest);
    patch(newest, len, &old[40..1000]);
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert_eq!(read, entries);
    assert!(matches!(end, WalReadResult::TornWrite { .. }), "{end:?}");
}

/// Damage inside the last unsynced batch, with later records of the same batch
/// intact (a crash may persist a batch's pages in any order), is a torn tail;
/// damage to a record that a later record's sync distance shows was durable is
/// corruption.
#[test]
fn only_records_written_after_a_sync_prove_corruption() {
    for sync_each in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let wal = manual(dir.path());
        let a = wal.append(&put("a", "1")).unwrap();
        wal.sync().unwrap();
        let b = wal.append(&put("b", "2")).unwrap();
        if sync_each {
            wal.sync().unwrap();
        }
        wal.append(&put("c", "3")).unwrap();
        if sync_each {
            wal.sync().unwrap();
        }
        wal.append(&put("d", "4")).unwrap();
        wal.close().unwrap();
        strip_close_marker(dir.path());
        let seg = newest(dir.path());
        // Lose record b's payload (as if its page never reached the disk).
        patch(&seg, offset_of(b) + 16, &[0; 8]);
        let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
        assert_eq!(read, vec![put("a", "1")]);
        assert!(a < b);
        if sync_each {
            assert!(
                matches!(end, WalReadResult::ChecksumMismatch { position, .. } if position == b),
                "{end:?}"
            );
            assert!(open_mode(dir.path(), WalRecoveryMode::TolerateTornTail).is_err());
        } else {
            assert!(
                matches!(end, WalReadResult::TornWrite { position, .. } if position == b),
                "{end:?}"
            );
            let wal = open_mode(dir.path(), WalRecoveryMode::TolerateTornTail).unwrap();
            let report = wal.repair().unwrap();
            assert!(report.torn_tail);
            assert_eq!(report.position, b);
        }
    }
}

/// A clean close leaves a sync marker vouching for every record: damage to the
/// last entry is then corruption, not a torn tail.
#[test]
fn a_clean_close_makes_tail_damage_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, positions) = log_with(dir.path(), 3, 1 << 20);
    let seg = newest(dir.path());
    let last = *positions.last().unwrap();
    patch(&seg, offset_of(last) + 16 + 1, &[0xEE]);
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert_eq!(read, entries[..entries.len() - 1].to_vec());
    assert!(
        matches!(end, WalReadResult::ChecksumMismatch { position, .. } if position == last),
        "{end:?}"
    );
}

#[test]
fn reopening_without_appends_adds_no_second_marker() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, _) = log_with(dir.path(), 3, 1 << 20);
    let seg = newest(dir.path());
    let len = file_len(&seg);
    for _ in 0..3 {
        manual(dir.path()).close().unwrap();
    }
    assert_eq!(file_len(&seg), len);
    let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
    assert_eq!(read, entries, "markers are never returned as entries");
    assert_eq!(end, WalReadResult::Eof);
}
