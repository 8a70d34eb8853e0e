//! The state file loaders: arbitrary bytes give a snapshot, a delta or a typed
//! error, never a panic or an allocation beyond the input; whatever loads
//! round-trips through `to_bytes`, and the zero-copy view agrees with the
//! loaded snapshot.
#![no_main]

use highwater::storage::{CrashSimStorage, OpenMode, Storage};
use highwater::{StateDelta, StateFileView, StateSnapshot};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(snapshot) = StateSnapshot::from_bytes(data) {
        let bytes = snapshot.to_bytes().unwrap();
        let again = StateSnapshot::from_bytes(&bytes).unwrap();
        assert_eq!(again.len(), snapshot.len());
        assert!(again.iter().eq(snapshot.iter()));

        let sim = CrashSimStorage::new();
        let path = Path::new("/state");
        let file = sim.open_file(path, OpenMode::CreateNew).unwrap();
        file.write_all_at(data, 0).unwrap();
        let view = StateFileView::open_with(&sim, path).unwrap();
        assert_eq!(view.len(), snapshot.len());
        for (key, value) in snapshot.iter() {
            assert_eq!(view.get(key).unwrap(), Some(value));
        }
    }
    if let Ok(delta) = StateDelta::from_bytes(data) {
        let bytes = delta.to_bytes().unwrap();
        let again = StateDelta::from_bytes(&bytes).unwrap();
        assert!(again.puts().eq(delta.puts()));
        assert!(again.deletes().eq(delta.deletes()));
    }
    // The view checks lazily; verifying everything must not panic either.
    let sim = CrashSimStorage::new();
    let path = Path::new("/any");
    let file = sim.open_file(path, OpenMode::CreateNew).unwrap();
    file.write_all_at(data, 0).unwrap();
    if let Ok(view) = StateFileView::open_with(&sim, path) {
        let _ = view.verify_all();
        for item in view.iter().take(10_000) {
            if item.is_err() {
                break;
            }
        }
    }
});
