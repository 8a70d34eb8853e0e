//! The crash simulator itself: what survives a crash under each image policy.

use highwater::storage::{
    CrashImage, CrashSimStorage, OpenMode, SimFault, SimGate, SimOp, Storage,
};
use std::io;
use std::path::Path;
use std::time::Duration;

fn read(storage: &dyn Storage, path: &str) -> io::Result<Vec<u8>> {
    let file = storage.open_file(Path::new(path), OpenMode::Read)?;
    let mut buf = vec![0; file.len()? as usize];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

fn names(storage: &dyn Storage, dir: &str) -> Vec<String> {
    storage
        .list_dir(Path::new(dir))
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// /d/f holding `synced` (durable, entry synced) then `unsynced` appended.
fn file_with_tail(synced: &[u8], unsynced: &[u8]) -> CrashSimStorage {
    let sim = CrashSimStorage::new();
    sim.create_dir_all(Path::new("/d")).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::CreateNew)
        .unwrap();
    f.write_all_at(synced, 0).unwrap();
    f.sync_data().unwrap();
    sim.sync_dir(Path::new("/d")).unwrap();
    f.append(unsynced).unwrap();
    sim
}

#[test]
fn synced_bytes_survive_and_unsynced_bytes_follow_the_policy() {
    let sim = file_with_tail(b"durable", b"-volatile");
    assert_eq!(read(&sim, "/d/f").unwrap(), b"durable-volatile");
    sim.crash();
    assert_eq!(
        read(&sim.image(CrashImage::LoseUnsynced), "/d/f").unwrap(),
        b"durable"
    );
    assert_eq!(
        read(&sim.image(CrashImage::KeepUnsynced), "/d/f").unwrap(),
        b"durable-volatile"
    );
    for seed in 0..50 {
        let image = read(&sim.image(CrashImage::Torn { seed }), "/d/f").unwrap();
        assert_eq!(&image[..7], b"durable", "seed {seed}");
    }
}

#[test]
fn torn_images_tear_at_sector_granularity_and_are_reproducible() {
    let tail: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8 + 1).collect();
    let sim = file_with_tail(&[7; 512], &tail);
    let mut seen_partial = false;
    for seed in 0..200 {
        let a = read(&sim.image(CrashImage::Torn { seed }), "/d/f").unwrap();
        let b = read(&sim.image(CrashImage::Torn { seed }), "/d/f").unwrap();
        assert_eq!(a, b, "seed {seed} must give the same image");
        assert_eq!(&a[..512], &[7; 512][..]);
        assert_eq!(a.len() % 512, 0, "a tear ends at a sector boundary");
        let kept = a[512..]
            .chunks(512)
            .zip(tail.chunks(512))
            .filter(|(got, want)| got == want)
            .count();
        seen_partial |= kept > 0 && kept < 8;
    }
    assert!(
        seen_partial,
        "some image keeps only some sectors of the write"
    );
}

#[test]
fn directory_changes_need_a_directory_sync() {
    let sim = CrashSimStorage::new();
    sim.create_dir_all(Path::new("/d")).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    let f = sim
        .open_file(Path::new("/d/tmp"), OpenMode::CreateNew)
        .unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.sync_all().unwrap();
    // The data is durable, the name is not.
    assert!(names(&sim.image(CrashImage::LoseUnsynced), "/d").is_empty());
    sim.sync_dir(Path::new("/d")).unwrap();
    sim.rename(Path::new("/d/tmp"), Path::new("/d/final"))
        .unwrap();
    assert_eq!(names(&sim.image(CrashImage::LoseUnsynced), "/d"), ["tmp"]);
    assert_eq!(names(&sim.image(CrashImage::KeepUnsynced), "/d"), ["final"]);
    for seed in 0..20 {
        // A rename within one directory is atomic: exactly one of the names.
        assert_eq!(names(&sim.image(CrashImage::Torn { seed }), "/d").len(), 1);
    }
    sim.sync_dir(Path::new("/d")).unwrap();
    let image = sim.image(CrashImage::LoseUnsynced);
    assert_eq!(names(&image, "/d"), ["final"]);
    assert_eq!(read(&image, "/d/final").unwrap(), b"x");
}

#[test]
fn a_removed_file_stays_until_the_directory_is_synced() {
    let sim = file_with_tail(b"abc", b"");
    sim.remove_file(Path::new("/d/f")).unwrap();
    assert!(!sim.exists(Path::new("/d/f")).unwrap());
    let image = sim.image(CrashImage::LoseUnsynced);
    assert_eq!(read(&image, "/d/f").unwrap(), b"abc");
    sim.sync_dir(Path::new("/d")).unwrap();
    assert!(!sim
        .image(CrashImage::LoseUnsynced)
        .exists(Path::new("/d/f"))
        .unwrap());
}

#[test]
fn the_crash_point_is_in_flight_and_everything_after_fails() {
    let sim = file_with_tail(b"a", b"");
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    sim.crash_at(sim.operations());
    let err = f.write_all_at(b"b", 1).unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
    assert!(sim.crashed().unwrap().contains("Write /d/f"));
    assert!(f.sync_data().is_err());
    assert!(f.len().is_err(), "a dead process reads nothing either");
    assert!(sim.open_file(Path::new("/d/g"), OpenMode::Create).is_err());
    // The in-flight write may or may not have reached the device.
    assert_eq!(
        read(&sim.image(CrashImage::KeepUnsynced), "/d/f").unwrap(),
        b"ab"
    );
    assert_eq!(
        read(&sim.image(CrashImage::LoseUnsynced), "/d/f").unwrap(),
        b"a"
    );
    // The rebooted machine works.
    let image = sim.image(CrashImage::KeepUnsynced);
    let f = image
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    f.append(b"c").unwrap();
    assert_eq!(read(&image, "/d/f").unwrap(), b"abc");
}

#[test]
fn a_failed_sync_forgets_the_unsynced_writes_for_good() {
    let sim = file_with_tail(b"a", b"b");
    sim.inject(SimFault::new(SimOp::SyncFile).on_path("/d/f"));
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    assert!(f.sync_data().is_err());
    // Still read back, never written.
    assert_eq!(read(&sim, "/d/f").unwrap(), b"ab");
    f.append(b"c").unwrap();
    f.sync_data().unwrap();
    let image = read(&sim.image(CrashImage::KeepUnsynced), "/d/f").unwrap();
    assert_eq!(image, b"a\0c", "the forgotten byte is a hole");
}

#[test]
fn a_failed_write_leaves_half_and_reports_the_kind() {
    let sim = file_with_tail(b"", b"");
    sim.inject(
        SimFault::new(SimOp::Write)
            .after(1)
            .with_kind(io::ErrorKind::StorageFull),
    );
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    f.write_all_at(&[1; 1024], 0).unwrap();
    let err = f.write_all_at(&[2; 2048], 1024).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert_eq!(f.len().unwrap(), 2048, "half of the failed write landed");
    f.write_all_at(&[3; 10], 2048).unwrap();
}

#[test]
fn locks_are_exclusive_and_do_not_survive_a_crash() {
    let sim = CrashSimStorage::new();
    let held = sim.lock(Path::new("/LOCK")).unwrap();
    assert_eq!(
        sim.lock(Path::new("/LOCK")).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    // One file, however it is spelled (found in review).
    assert!(sim.lock(Path::new("LOCK")).is_err());
    assert!(sim.lock(Path::new("/./LOCK")).is_err());
    let image = sim.image(CrashImage::KeepUnsynced);
    assert!(image.lock(Path::new("/LOCK")).is_ok());
    drop(held);
    assert!(sim.lock(Path::new("/LOCK")).is_ok());
}

#[test]
fn paths_that_climb_are_refused() {
    let sim = CrashSimStorage::new();
    let err = sim
        .open_file(Path::new("/a/../b"), OpenMode::Create)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_recursive_removal_can_be_half_done_by_a_crash() {
    let sim = CrashSimStorage::new();
    sim.create_dir_all(Path::new("/d")).unwrap();
    for name in ["/d/a", "/d/b"] {
        sim.open_file(Path::new(name), OpenMode::CreateNew).unwrap();
    }
    sim.sync_dir(Path::new("/d")).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    sim.remove_dir_all(Path::new("/d")).unwrap();
    assert!(!sim.exists(Path::new("/d")).unwrap());
    let half_done = (0..64).any(|seed| {
        let image = sim.image(CrashImage::Torn { seed });
        image.exists(Path::new("/d")).unwrap() && names(&image, "/d").len() == 1
    });
    assert!(
        half_done,
        "some crash image keeps the directory with one file removed"
    );
}

#[test]
fn a_failed_write_back_is_reported_to_the_next_sync_only() {
    let sim = file_with_tail(b"a", b"b");
    sim.fail_writeback(Path::new("/d/f")).unwrap();
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    assert!(f.sync_data().is_err(), "the next sync reports the error");
    f.sync_data().unwrap(); // reported once: the next one succeeds...
    assert_eq!(
        read(&sim.image(CrashImage::KeepUnsynced), "/d/f").unwrap(),
        b"a",
        "...over the forgotten byte"
    );
    assert_eq!(read(&sim, "/d/f").unwrap(), b"ab", "still read back");
}

#[test]
fn a_gate_holds_an_operation_before_it_runs() {
    let sim = file_with_tail(b"a", b"b");
    let gate = SimGate::new();
    sim.inject(SimFault::pause(SimOp::SyncFile, &gate).on_path("/d/f"));
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    let syncing = std::thread::spawn(move || f.sync_data());
    assert!(gate.wait_arrivals(1, Duration::from_secs(10)));
    // Held before it ran: nothing is durable yet, and others still run.
    assert_eq!(
        read(&sim.image(CrashImage::LoseUnsynced), "/d/f").unwrap(),
        b"a"
    );
    gate.open();
    syncing.join().unwrap().unwrap();
    assert_eq!(
        read(&sim.image(CrashImage::LoseUnsynced), "/d/f").unwrap(),
        b"ab"
    );
}

#[test]
fn a_gate_holds_a_failure_after_it_took_effect() {
    let sim = file_with_tail(b"a", b"b");
    let gate = SimGate::new();
    sim.inject(SimFault::new(SimOp::SyncFile).on_path("/d/f").paused(&gate));
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    let other = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    let failing = std::thread::spawn(move || f.sync_data());
    assert!(gate.wait_arrivals(1, Duration::from_secs(10)));
    // The pages are already dropped: a second sync meanwhile succeeds over them.
    other.sync_data().unwrap();
    assert_eq!(
        read(&sim.image(CrashImage::KeepUnsynced), "/d/f").unwrap(),
        b"a"
    );
    gate.open();
    assert!(
        failing.join().unwrap().is_err(),
        "the error comes back late"
    );
}

#[test]
fn a_failed_directory_sync_forgets_its_changes_and_reports_once() {
    let sim = file_with_tail(b"a", b"");
    sim.rename(Path::new("/d/f"), Path::new("/d/g")).unwrap();
    sim.inject(SimFault::new(SimOp::SyncDir).on_path("/d"));
    assert!(sim.sync_dir(Path::new("/d")).is_err());
    sim.sync_dir(Path::new("/d")).unwrap(); // reported once
    assert_eq!(
        names(&sim, "/d"),
        ["g"],
        "the process still sees the rename"
    );
    assert_eq!(
        names(&sim.image(CrashImage::KeepUnsynced), "/d"),
        ["f"],
        "a later successful sync did not carry the forgotten rename"
    );
    // A fresh change after the failure is made durable by the next sync.
    sim.rename(Path::new("/d/g"), Path::new("/d/h")).unwrap();
    sim.sync_dir(Path::new("/d")).unwrap();
    assert_eq!(names(&sim.image(CrashImage::LoseUnsynced), "/d"), ["f"]);
}

#[test]
fn a_crash_while_a_thread_waits_at_a_gate_neither_deadlocks_nor_runs_the_operation() {
    let sim = file_with_tail(b"a", b"");
    let gate = SimGate::new();
    sim.inject(SimFault::pause(SimOp::Write, &gate).on_path("/d/f"));
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    let writing = std::thread::spawn(move || f.write_all_at(b"X", 0));
    assert!(gate.wait_arrivals(1, Duration::from_secs(10)));
    // The simulator is not locked by the waiting thread.
    assert_eq!(read(&sim, "/d/f").unwrap(), b"a");
    sim.crash();
    let disk = sim.image(CrashImage::KeepUnsynced);
    gate.open();
    let written = writing.join().unwrap();
    assert!(written.is_err(), "the process is gone: {written:?}");
    assert_eq!(read(&disk, "/d/f").unwrap(), b"a");
    assert_eq!(
        read(&sim.image(CrashImage::KeepUnsynced), "/d/f").unwrap(),
        b"a",
        "the held write never ran"
    );
}

/// /a/b/f and /a/bc/f, each holding `x`, all durable.
fn two_dirs() -> CrashSimStorage {
    let sim = CrashSimStorage::new();
    for dir in ["/a/b", "/a/bc"] {
        sim.create_dir_all(Path::new(dir)).unwrap();
        let f = sim
            .open_file(&Path::new(dir).join("f"), OpenMode::CreateNew)
            .unwrap();
        f.write_all_at(b"x", 0).unwrap();
        f.sync_data().unwrap();
    }
    sim
}

#[test]
fn a_read_fault_fails_the_reads_that_find_a_file_under_a_directory_then_passes() {
    let sim = two_dirs();
    let operations = sim.operations();
    sim.inject(SimFault::new(SimOp::Read).under("/a/b").times(2));
    // Not under /a/b (names compare whole), and not a read-only open: no match.
    assert_eq!(read(&sim, "/a/bc/f").unwrap(), b"x");
    sim.open_file(Path::new("/a/b/f"), OpenMode::ReadWrite)
        .unwrap();
    // The two reads under /a/b fail: a size, an open for reading.
    let size = sim.file_size(Path::new("/a/b/f")).unwrap_err();
    assert_eq!(size.kind(), io::ErrorKind::Other);
    assert!(sim
        .open_file(Path::new("/a/./b/f"), OpenMode::Read)
        .is_err());
    // Transient: the next read succeeds.
    assert_eq!(read(&sim, "/a/b/f").unwrap(), b"x");
    assert_eq!(sim.file_size(Path::new("/a/b/f")).unwrap(), 1);
    // Reads are not mutating operations, but they are counted by kind.
    assert_eq!(sim.operations(), operations);
    assert_eq!(sim.operations_of(SimOp::Read), 5);
}

#[test]
fn a_positional_read_fault_fails_a_read_of_an_open_file() {
    let sim = two_dirs();
    let f = sim.open_file(Path::new("/a/b/f"), OpenMode::Read).unwrap();
    sim.inject(SimFault::new(SimOp::ReadAt).on_path("/a/b/"));
    let mut buf = [0; 1];
    assert!(f.read_exact_at(&mut buf, 0).is_err());
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"x");
}

#[test]
fn reads_are_never_a_crash_point_and_never_match_an_operation_number() {
    let sim = two_dirs();
    let n = sim.operations();
    sim.inject(SimFault::at(n + 1));
    sim.crash_at(n + 2);
    assert_eq!(read(&sim, "/a/b/f").unwrap(), b"x");
    let f = sim
        .open_file(Path::new("/a/b/f"), OpenMode::ReadWrite)
        .unwrap();
    f.write_all_at(b"1", 0).unwrap(); // operation n
    assert_eq!(read(&sim, "/a/b/f").unwrap(), b"1");
    assert!(f.write_all_at(b"2", 0).is_err(), "operation n + 1 fails");
    assert_eq!(read(&sim, "/a/b/f").unwrap(), b"1");
    assert!(f.write_all_at(b"3", 0).is_err(), "operation n + 2 crashes");
    assert!(sim
        .crashed()
        .unwrap()
        .contains(&format!("operation {}", n + 2)));
}

#[test]
fn cleared_faults_stop_failing_but_what_they_did_stays_done() {
    let sim = file_with_tail(b"a", b"b");
    sim.inject(SimFault::new(SimOp::SyncFile).times(u64::MAX));
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    for _ in 0..3 {
        assert!(f.sync_data().is_err(), "every sync fails from now on");
    }
    sim.clear_faults();
    f.sync_data().unwrap();
    assert_eq!(read(&sim, "/d/f").unwrap(), b"ab");
    sim.crash();
    assert_eq!(
        read(&sim.image(CrashImage::KeepUnsynced), "/d/f").unwrap(),
        b"a",
        "the write the failed syncs forgot never becomes durable"
    );
}

#[test]
fn operations_are_counted_by_kind_failed_ones_included() {
    let sim = file_with_tail(b"a", b"b");
    let syncs = sim.operations_of(SimOp::SyncFile);
    let writes = sim.operations_of(SimOp::Write);
    assert_eq!((syncs, writes), (1, 2));
    sim.inject(SimFault::new(SimOp::SyncFile));
    let f = sim
        .open_file(Path::new("/d/f"), OpenMode::ReadWrite)
        .unwrap();
    assert!(f.sync_data().is_err());
    f.sync_data().unwrap();
    assert_eq!(sim.operations_of(SimOp::SyncFile), syncs + 2);
    assert_eq!(sim.operations_of(SimOp::Write), writes);
    assert_eq!(sim.operations_of(SimOp::Rename), 0);
}
