//! Crashes of the local disk (the cache), on `CrashSimStorage`, while the
//! bucket stays up: at every mutating disk operation of the publish and
//! restore workload, and at every one of a restore's download into the
//! cache. After each, the rebooted machine's disk is what a crash leaves
//! (unsynced changes lost, kept, or torn), and the next open must restore
//! exactly what the model allows: a commit acknowledged before the crash is
//! never lost (it is downloaded again when the cache lost it), and a torn
//! or half-written cache directory is never used.

use crate::harness::{recover_and_resume, run, Env, Model, Step, WORKLOAD};
use highwater::blob::SimBlobStore;
use highwater::storage::{CrashImage, CrashSimStorage};
use std::sync::Arc;

fn images(seed: u64) -> [CrashImage; 3] {
    [
        CrashImage::LoseUnsynced,
        CrashImage::KeepUnsynced,
        CrashImage::Torn { seed },
    ]
}

fn env(disk: &CrashSimStorage, sim: &SimBlobStore) -> Env {
    Env {
        disk: Arc::new(disk.clone()),
        store: Arc::new(sim.clone()),
    }
}

fn disk_ops(steps: &[Step]) -> u64 {
    let disk = CrashSimStorage::new();
    let mut model = Model::default();
    let out = run(&env(&disk, &SimBlobStore::new(0)), steps, &mut model);
    assert!(out.error.is_none() && out.violation.is_none());
    disk.operations()
}

#[test]
fn a_crash_of_the_local_disk_at_every_operation_of_publish_and_restore() {
    let total = disk_ops(WORKLOAD);
    assert!(total > 50, "the workload makes {total} disk operations");
    let mut crashed_after_ack = 0;
    for k in 0..total {
        let image = images(k)[(k % 3) as usize];
        let disk = CrashSimStorage::new();
        disk.crash_at(k);
        let sim = SimBlobStore::new(k);
        let mut model = Model::default();
        let out = run(&env(&disk, &sim), WORKLOAD, &mut model);
        let ctx = format!(
            "disk crash at op {k} ({:?}), image {image:?}",
            disk.crashed()
        );
        if let Some(v) = out.violation {
            panic!("{ctx}: {v}");
        }
        crashed_after_ack += model.acked.is_some() as u32;
        disk.crash();
        let rebooted = Env {
            disk: Arc::new(disk.image(image)),
            store: Arc::new(sim.reboot()),
        };
        // On the machine whose disk crashed (its cache is what the crash
        // left), or on the other one.
        let machine = if k % 2 == 0 { "a" } else { "b" };
        if let Err(v) = recover_and_resume(&rebooted, machine, &mut model) {
            panic!(
                "{ctx} (error: {:?}): {v}",
                out.error.map(|e| e.1.to_string())
            );
        }
    }
    assert!(crashed_after_ack > 0);
}

/// A restore's download into the cache, crashed at each of its disk
/// operations, then the machine reboots and opens again: the leftover is
/// removed, a torn file is caught by the verification, and the restored
/// state is the committed one.
#[test]
fn a_crash_of_the_local_disk_during_a_download_into_the_cache() {
    // A chain (full, delta, delta) committed from machine "a".
    let steps = [
        Step::Open("a"),
        Step::Full(10),
        Step::Delta(20),
        Step::Delta(30),
        Step::Close,
    ];
    let sim = SimBlobStore::new(7);
    let writer = CrashSimStorage::new();
    let mut model = Model::default();
    let out = run(&env(&writer, &sim), &steps, &mut model);
    assert!(out.error.is_none() && out.violation.is_none());

    // Count the disk operations of a restore on a fresh machine.
    let count = CrashSimStorage::new();
    let open = env(&count, &sim.reboot()).open("r").unwrap();
    assert_eq!(open.remote_restore().unwrap().downloaded.len(), 3);
    drop(open);
    let total = count.operations();
    assert!(
        total > 10,
        "a restore of three checkpoints makes {total} disk operations"
    );

    for k in 0..total {
        for image in images(k * 31 + 1) {
            let disk = CrashSimStorage::new();
            disk.crash_at(k);
            let mut m = model.clone();
            let err = env(&disk, &sim.reboot()).open("r").unwrap_err();
            let _ = err;
            disk.crash();
            let rebooted = env(&disk.image(image), &sim.reboot());
            let again = rebooted
                .open("r")
                .unwrap_or_else(|e| panic!("disk crash at op {k}, {image:?}: reopen: {e}"));
            let restore = again.remote_restore().unwrap().clone();
            m.check_restore(again)
                .unwrap_or_else(|v| panic!("disk crash at op {k}, {image:?}: {v}"));
            assert!(
                restore.rejected.is_empty(),
                "disk crash at op {k}, {image:?}: {:?}",
                restore.rejected
            );
        }
    }
}
