use super::*;
use crate::blob::SimBlobStore;
use crate::cluster::{ClusterWorker, WorkerConfig};
use crate::source::SourcePositions;

fn reports(store: &Arc<dyn BlobStore>, c: &Coordinator, epoch: u64) -> Vec<WorkerReport> {
    (0..c.plan().workers)
        .map(|i| {
            let (mut w, mut r) =
                ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), i)).unwrap();
            r.state
                .put(format!("k{i}-{epoch}").into_bytes(), b"v".to_vec());
            // Keys must be the worker's: keep only owned ones.
            let owned: Vec<Vec<u8>> = r
                .state
                .iter()
                .map(|(k, _)| k.to_vec())
                .filter(|k| !w.owns(k))
                .collect();
            for k in owned {
                r.state.delete(&k);
            }
            // The job's two partitions, spread over the run's workers.
            let mut sources = SourcePositions::new();
            for p in (0..2).filter(|p| p % c.plan().workers == i) {
                sources.set_offset(format!("p{p}"), epoch).unwrap();
            }
            // A worker that joined checkpoints after the run's base.
            let mut report = None;
            for e in w.last_epoch() + 1..=epoch {
                report = Some(w.checkpoint(e, &mut r.state, &sources, vec![]).unwrap());
            }
            report.unwrap()
        })
        .collect()
}

#[test]
fn the_next_commit_waits_for_the_previous_epochs_sinks() {
    let store: Arc<dyn BlobStore> = Arc::new(SimBlobStore::new(7));
    let mut c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 2).with_key_groups(8)).unwrap();
    assert!(
        c.sinks_committed(0).is_err(),
        "a new job has nothing to publish"
    );
    c.commit(1, reports(&store, &c, 1)).unwrap();
    let early = c.commit(2, reports(&store, &c, 2)).unwrap_err();
    assert!(matches!(early, Error::InvalidArgument { .. }), "{early:?}");
    assert!(c.stopped().is_none(), "a refused call changes nothing");
    assert!(c.sinks_committed(2).is_err());
    c.sinks_committed(1).unwrap();
    c.commit(2, reports(&store, &c, 2)).unwrap();
    c.sinks_committed(2).unwrap();
    // The old run's workers report epoch 3 before the new run claims.
    let zombie_reports = reports(&store, &c, 3);

    // A new run restores epoch 2 and must publish it again first.
    let mut next =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8)).unwrap();
    assert_eq!(next.restored().map(|b| b.epoch), Some(2));
    assert!(next.commit(3, reports(&store, &next, 3)).is_err());
    next.sinks_committed(2).unwrap();
    next.commit(3, reports(&store, &next, 3)).unwrap();
    // The old coordinator, resuming, is fenced, and stops.
    let fenced = c.commit(3, zombie_reports).unwrap_err();
    assert!(matches!(fenced, Error::Fenced { .. }), "{fenced:?}");
    assert!(c.stopped().is_some());
}

#[test]
fn a_base_at_the_last_epoch_number_is_refused_not_wrapped() {
    let store: Arc<dyn BlobStore> = Arc::new(SimBlobStore::new(9));
    let mut c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8)).unwrap();
    let mut committed = c.commit(1, reports(&store, &c, 1)).unwrap();
    // A record (checksummed, valid) of epoch u64::MAX in the next slot.
    for r in &mut committed.reports {
        r.epoch = u64::MAX;
    }
    let slot = committed.slot + 1;
    let bytes = encode_epoch(slot, c.generation(), u64::MAX, 8, &committed.reports).unwrap();
    sequence::commit(store.as_ref(), slot, c.generation(), &Bytes::from(bytes)).unwrap();
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8))
    }));
    match started {
        Ok(Err(_)) => {}
        Ok(Ok(next)) => panic!(
            "a run after epoch u64::MAX expects epoch {}",
            next.next_epoch()
        ),
        Err(_) => panic!("start panicked on an epoch number read from the store"),
    }
}
