//! Opening, repairing and reading a log whose only segment holds arbitrary
//! bytes (in the crash simulator's in-memory storage): never a panic, and a
//! reader never returns an entry past what repair kept.
#![no_main]

use highwater::storage::{CrashSimStorage, OpenMode, Storage};
use highwater::inspect::segment_file_name;
use highwater::{WalOptions, WalReadResult, WalReader, WriteAheadLog};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let sim = CrashSimStorage::new();
    let dir = Path::new("/wal");
    sim.create_dir_all(dir).unwrap();
    let file = sim
        .open_file(&dir.join(segment_file_name(0)), OpenMode::CreateNew)
        .unwrap();
    file.write_all_at(data, 0).unwrap();
    let storage: Arc<dyn Storage> = Arc::new(sim);

    // Reading without opening the log for writing never modifies anything.
    if let Ok(mut reader) = WalReader::open_with(storage.clone(), dir, 0, 1 << 20) {
        for _ in 0..100_000 {
            match reader.read_next() {
                Ok(WalReadResult::Entry(_)) => {}
                _ => break,
            }
        }
    }
    assert_eq!(
        storage.file_size(&dir.join(segment_file_name(0))).unwrap(),
        data.len() as u64
    );

    let options = WalOptions::default()
        .with_max_record_size(1 << 20)
        .with_storage(storage.clone());
    let Ok(wal) = WriteAheadLog::open(dir, options) else {
        return;
    };
    if wal.repair().is_err() {
        return;
    }
    let end = wal.position();
    let mut reader = wal.read_from(wal.first_position()).unwrap();
    let mut entries = 0u64;
    loop {
        match reader.read_next().unwrap() {
            WalReadResult::Entry(_) => {
                entries += 1;
                assert!(reader.position() <= end, "an entry past the repaired end");
            }
            WalReadResult::Eof => break,
            other => panic!("a repaired log still reads {other:?}"),
        }
    }
    let _ = entries;
});
