//! The segments a sealed log writes: a new one after a reopen or a cut (no
//! offset sealed twice), a crash mid-write, a torn seal header.

use super::*;

#[test]
fn a_reopened_sealed_log_starts_a_new_segment_and_a_cut_one_too() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    // An empty log: its first segment holds no record, so it is rewritten.
    drop(open(&wal_dir, &k));
    let wal = open(&wal_dir, &k);
    wal.append(&put("a", "1")).unwrap();
    let end = wal.position();
    // One segment, in the writer's view too: nothing below it to drop.
    assert_eq!(wal.drop_segments_before(end).unwrap(), 0);
    wal.close().unwrap();
    let segs = segments(&wal_dir);
    assert_eq!(segs.len(), 1);
    let first = std::fs::read(&segs[0]).unwrap();

    let wal = open(&wal_dir, &k);
    let pos = wal.append(&put("b", "2")).unwrap();
    let segs = segments(&wal_dir);
    assert_eq!(segs.len(), 2, "the reopened log appends to a new segment");
    assert_eq!(pos, end + 16 + 16, "after the close marker");
    assert_eq!(
        std::fs::read(&segs[0]).unwrap(),
        first,
        "the old segment is untouched"
    );

    // A cut in this process: the next record does not reuse the cut offset.
    let p3 = wal.append(&put("c", "3")).unwrap();
    wal.append(&put("d", "4")).unwrap();
    wal.cut_from(p3).unwrap();
    let again = wal.append(&put("e", "5")).unwrap();
    assert_eq!(again, p3, "positions continue at the cut");
    wal.close().unwrap();
    let segs = segments(&wal_dir);
    assert_eq!(segs.len(), 3, "the cut segment is not appended to");
    assert_eq!(file_len(&segs[1]), FIRST as u64 + (p3 - pos));
    let (entries, end) = read_until_error(&mut reader(&wal_dir, Some(&k)));
    assert_eq!(entries, [put("a", "1"), put("b", "2"), put("e", "5")]);
    assert_eq!(end.unwrap(), WalReadResult::Eof);
}

#[test]
fn a_crash_mid_write_leaves_a_torn_tail_that_repair_cuts_and_the_log_continues_in_a_new_segment() {
    const WAL: &str = "/wal";
    let k = keys(1, 7);
    let mut torn = 0;
    for seed in 0..16 {
        let sim = CrashSimStorage::new();
        let opts = |sim: &CrashSimStorage| {
            options(&k)
                .with_sync_policy(SyncPolicy::EveryWrite)
                .with_recovery_mode(WalRecoveryMode::TolerateTornTail)
                .with_storage(Arc::new(sim.clone()))
        };
        let wal = WriteAheadLog::open(WAL, opts(&sim)).unwrap();
        let acked = write_pairs(&wal, 10);
        let end = wal.position();
        sim.crash_at(sim.operations());
        let unacked = put(&"k".repeat(900), &"v".repeat(1500));
        assert!(wal.append(&unacked).is_err());
        sim.crash();
        drop(wal);
        let disk = sim.image(CrashImage::Torn { seed });
        let wal = WriteAheadLog::open(WAL, opts(&disk)).unwrap();
        let report = wal.repair().unwrap();
        torn += usize::from(report.torn_tail);
        let survivors = if wal.position() > end {
            [acked, vec![unacked]].concat()
        } else {
            assert_eq!(wal.position(), end, "seed {seed}: {report:?}");
            acked
        };
        let resumed = wal.position();
        let more = write_pairs(&wal, 2);
        wal.close().unwrap();
        let storage: Arc<dyn highwater::storage::Storage> = Arc::new(disk.clone());
        let names: Vec<String> = storage
            .list_dir(Path::new(WAL))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .filter(|n| n.ends_with(".wal"))
            .collect();
        assert!(
            names.contains(&highwater::inspect::segment_file_name(resumed)),
            "seed {seed}: the log continues in a new segment at {resumed}: {names:?}"
        );
        let mut r = WalReader::open_with(storage, Path::new(WAL), 0, 16 << 20)
            .unwrap()
            .with_encryption(k.clone());
        let (entries, end) = read_until_error(&mut r);
        assert_eq!(end.unwrap(), WalReadResult::Eof, "seed {seed}");
        assert_eq!(entries, [survivors, more].concat(), "seed {seed}");
    }
    assert!(torn > 0, "no seed tore the write");
}

#[test]
fn a_sealed_segment_torn_in_its_seal_header_is_rewritten_by_repair() {
    let root = tempfile::tempdir().unwrap();
    let wal_dir = root.path().join("wal");
    let k = keys(1, 7);
    let seg = sealed_log(&wal_dir, &k);
    let written = read_until_error(&mut reader(&wal_dir, Some(&k))).0;
    let wal = open(&wal_dir, &k);
    let start = wal.position();
    wal.append(&put("lost", "in the crash")).unwrap();
    drop(wal);
    // What a crash while creating the segment leaves: the segment header
    // and part of the seal header.
    let newest = segments(&wal_dir).pop().unwrap();
    assert_ne!(newest, seg);
    set_file_len(&newest, 60);
    let wal = open(&wal_dir, &k);
    let report = wal.repair().unwrap();
    assert!(report.torn_tail, "{report:?}");
    assert_eq!(wal.position(), start);
    wal.append(&put("after", "repair")).unwrap();
    wal.close().unwrap();
    let (entries, end) = read_until_error(&mut reader(&wal_dir, Some(&k)));
    assert_eq!(entries, [written, vec![put("after", "repair")]].concat());
    assert_eq!(end.unwrap(), WalReadResult::Eof);
}
