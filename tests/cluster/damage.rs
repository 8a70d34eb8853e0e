//! Damage in the store (a flipped byte of a report, an epoch record or a
//! part, a missing part) is a typed error naming the object, never a panic
//! and never a wrong restore (docs/DISTRIBUTED.md, "What each failure
//! does").

use super::support::{flip, sim, Job};
use highwater::blob::BlobKey;
use highwater::cluster::{
    ClusterWorker, Coordinator, CoordinatorConfig, StoreTransport, WorkerConfig,
};
use highwater::Error;
use std::time::Duration;

/// A job of 2 workers with 2 committed epochs (chains of a full part and a
/// delta with tombstones), reports sent through the store.
fn job(seed: u64) -> Job {
    let mut job = Job::new(sim(seed), 16, seed);
    job.keys = 60;
    job.transport = true;
    let mut run = job.start(2);
    job.epoch(&mut run);
    job.epoch(&mut run);
    job
}

fn names(err: &Error, key: &str) -> bool {
    err.to_string().contains(key)
}

#[test]
fn a_damaged_report_is_refused_naming_its_key() {
    let job = job(11);
    let store = job.store.clone();
    let generation = 1; // the first claim
    let key = format!("reports/{generation:020}/{:020}/{:05}", 2, 1);
    let original = store.get(&BlobKey::new(key.clone()).unwrap()).unwrap();
    let transport = StoreTransport::new(store.clone());
    assert_eq!(transport.received(generation, 2).unwrap().len(), 2);
    for at in 0..original.len() {
        flip(store.as_ref(), &key, at);
        let err = transport.received(generation, 2).unwrap_err();
        assert!(
            matches!(
                err,
                Error::CheckpointCorrupted { .. } | Error::UnsupportedVersion { .. }
            ),
            "byte {at}: {err:?}"
        );
        assert!(names(&err, &key), "byte {at}: {err}");
        match transport.wait(generation, 2, 2, Duration::from_millis(1)) {
            Err(Error::EpochAborted { reason, .. }) => assert!(reason.contains(&key), "{reason}"),
            other => panic!("byte {at}: {other:?}"),
        }
        store
            .put(&BlobKey::new(key.clone()).unwrap(), original.clone())
            .unwrap();
    }
    assert_eq!(transport.received(generation, 2).unwrap().len(), 2);
}

#[test]
fn a_damaged_epoch_record_stops_the_next_coordinator_naming_its_key() {
    let job = job(12);
    let store = job.store.clone();
    // Slot 1: the claim; 2 and 3: epochs 1 and 2.
    let key = format!("commits/{:020}", 3);
    let original = store.get(&BlobKey::new(key.clone()).unwrap()).unwrap();
    for at in 0..original.len() {
        flip(store.as_ref(), &key, at);
        let err = Coordinator::start(CoordinatorConfig::new(store.clone(), 2).with_key_groups(16))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::CheckpointCorrupted { .. } | Error::UnsupportedVersion { .. }
            ),
            "byte {at}: {err:?}"
        );
        assert!(names(&err, &key), "byte {at}: {err}");
        store
            .put(&BlobKey::new(key.clone()).unwrap(), original.clone())
            .unwrap();
    }
    // Refused starts claimed nothing; the undamaged record restores.
    let c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 2).with_key_groups(16)).unwrap();
    assert_eq!(c.generation(), 4);
    assert_eq!(c.restored().unwrap().epoch, 2);

    // A worker of a run whose base was damaged after the claim.
    flip(store.as_ref(), &key, original.len() / 2);
    let err = ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap_err();
    assert!(matches!(err, Error::CheckpointCorrupted { .. }), "{err:?}");
    assert!(names(&err, &key), "{err}");
}

#[test]
fn a_damaged_or_missing_part_fails_the_join_naming_it() {
    let job = job(13);
    let store = job.store.clone();
    let c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(16)).unwrap();
    let base = c.restored().unwrap().clone();
    let generation = c.generation();
    let join = || ClusterWorker::join(WorkerConfig::new(store.clone(), generation, 0));
    let (_, restored) = join().unwrap();
    assert_eq!(super::support::map_of(&restored.state), job.expected);
    // Every part of both chains (a full part and a delta each), every byte.
    let mut survived = 0;
    let mut flips = 0;
    for part in base.reports.iter().flat_map(|r| &r.chain) {
        let key = BlobKey::new(part.key.clone()).unwrap();
        let original = store.get(&key).unwrap();
        for at in 0..original.len() {
            flip(store.as_ref(), &part.key, at);
            flips += 1;
            match join() {
                Err(err) => {
                    assert!(
                        matches!(
                            err,
                            Error::StateChecksumMismatch { .. }
                                | Error::StateCorrupted { .. }
                                | Error::CheckpointFileMismatch { .. }
                                | Error::CheckpointCorrupted { .. }
                                | Error::UnsupportedVersion { .. }
                        ),
                        "{} byte {at}: {err:?}",
                        part.key
                    );
                    assert!(names(&err, &part.key), "byte {at}: {err}");
                }
                // A byte no read of the range touches (alignment padding
                // between columns): the restore is still exactly right.
                Ok((_, r)) => {
                    survived += 1;
                    assert_eq!(super::support::map_of(&r.state), job.expected, "byte {at}");
                }
            }
            store.put(&key, original.clone()).unwrap();
        }
    }
    assert!(
        survived * 20 < flips,
        "{survived} of {flips} flips went unnoticed"
    );

    // A missing part.
    let gone = &base.reports[1].chain[1].key;
    store.delete(&BlobKey::new(gone.clone()).unwrap()).unwrap();
    let err = join().unwrap_err();
    assert!(matches!(err, Error::Blob(_)), "{err:?}");
    assert!(names(&err, gone), "{err}");
}
