//! The storage conformance suite (`highwater::storage::conformance`) against
//! every storage of the crate: the real file system, the crash simulator, and
//! the simulator after a crash under each image policy (what was synced must
//! survive each).

use highwater::storage::{
    conformance, CrashImage, CrashSimStorage, DirEntry, FsStorage, OpenMode, Storage, StorageFile,
    StorageLock,
};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A simulator with a durable `/conformance` directory.
fn sim() -> (CrashSimStorage, &'static Path) {
    let sim = CrashSimStorage::new();
    let dir = Path::new("/conformance");
    sim.create_dir_all(dir).unwrap();
    sim.sync_dir(Path::new("/")).unwrap();
    (sim, dir)
}

#[test]
fn fs_storage_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&FsStorage, dir.path());
}

#[test]
fn crash_sim_storage_keeps_the_contract() {
    let (sim, dir) = sim();
    conformance::run_all(&sim, dir);
}

#[test]
fn an_image_of_the_simulator_keeps_the_contract() {
    let (sim, dir) = sim();
    conformance::run_all(&sim, dir);
    sim.crash();
    let image = sim.image(CrashImage::Torn { seed: 3 });
    conformance::run_all(&image, dir);
}

#[test]
fn fs_storage_keeps_what_was_synced_across_a_process_restart() {
    let dir = tempfile::tempdir().unwrap();
    conformance::synced_changes_survive_a_reboot(&FsStorage, dir.path(), &mut || {
        Arc::new(FsStorage)
    });
}

#[test]
fn crash_sim_storage_keeps_what_was_synced_in_every_crash_image() {
    let mut images = vec![CrashImage::LoseUnsynced, CrashImage::KeepUnsynced];
    images.extend((0..16).map(|seed| CrashImage::Torn { seed }));
    for image in images {
        let (sim, dir) = sim();
        conformance::synced_changes_survive_a_reboot(&sim, dir, &mut || {
            sim.crash();
            Arc::new(sim.image(image)) as Arc<dyn Storage>
        });
    }
}

#[test]
fn write_behind_hints_keep_the_contract_on_every_storage() {
    let dir = tempfile::tempdir().unwrap();
    conformance::write_behind_hints(&FsStorage, dir.path(), &mut || Arc::new(FsStorage));
    let mut images = vec![CrashImage::LoseUnsynced, CrashImage::KeepUnsynced];
    images.extend((0..4).map(|seed| CrashImage::Torn { seed }));
    for image in images {
        let (sim, dir) = sim();
        conformance::write_behind_hints(&sim, dir, &mut || {
            sim.crash();
            Arc::new(sim.image(image)) as Arc<dyn Storage>
        });
        assert_eq!(
            sim.operations_of(highwater::storage::SimOp::WriteBack),
            4,
            "every hint is counted"
        );
    }
}

/// The hint check can fail: a storage whose hint fails is caught.
#[test]
#[should_panic(expected = "CrashSimStorage: start_writeback over what was written failed")]
fn a_failing_write_behind_hint_fails_the_suite() {
    let (sim, dir) = sim();
    sim.inject(highwater::storage::SimFault::new(
        highwater::storage::SimOp::WriteBack,
    ));
    conformance::write_behind_hints(&sim, dir, &mut || {
        sim.crash();
        Arc::new(sim.image(CrashImage::LoseUnsynced)) as Arc<dyn Storage>
    });
}

/// The suite can fail: a storage whose reboot loses synced data is caught.
#[test]
#[should_panic(
    expected = "CrashSimStorage: read /conformance/synced_changes_survive_a_reboot/data failed"
)]
fn a_reboot_that_loses_synced_data_fails_the_suite() {
    let (sim, dir) = sim();
    conformance::synced_changes_survive_a_reboot(&sim, dir, &mut || {
        Arc::new(CrashSimStorage::new())
    });
}

/// A storage that lists directories in reverse order, to show the suite
/// catches a broken rule of the live contract.
#[derive(Debug)]
struct ReversedListing(CrashSimStorage);

impl Storage for ReversedListing {
    fn open_file(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn StorageFile>> {
        self.0.open_file(path, mode)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = self.0.list_dir(path)?;
        entries.reverse();
        Ok(entries)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir_all(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.0.exists(path)
    }
    fn file_size(&self, path: &Path) -> io::Result<u64> {
        self.0.file_size(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn StorageLock>> {
        self.0.lock(path)
    }
}

#[test]
#[should_panic(expected = "ReversedListing: list_dir lists the direct children, sorted by name")]
fn a_listing_out_of_order_fails_the_suite() {
    let (sim, dir) = sim();
    conformance::directories_and_listing(&ReversedListing(sim), dir);
}
