//! A hostile review of the cluster protocol: each test is an attack that
//! once succeeded (docs/DISTRIBUTED.md; /work/shared/REVIEW.md).

use highwater::blob::{BlobStore, SimBlobStore};
use highwater::cluster::{
    ClusterWorker, Coordinator, CoordinatorConfig, WorkerConfig, WorkerReport, MAX_REPORT_LEN,
};
use highwater::{Error, SourcePositions};
use std::sync::Arc;

fn store() -> Arc<dyn BlobStore> {
    Arc::new(SimBlobStore::new(11))
}

/// One worker's report of epoch 1 whose only partition has a name of
/// `name_len` bytes.
fn report_with_partition_name(
    store: &Arc<dyn BlobStore>,
    c: &Coordinator,
    name_len: usize,
) -> (
    ClusterWorker,
    highwater::cluster::RestoredWorker,
    Result<WorkerReport, Error>,
) {
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    let mut sources = SourcePositions::new();
    sources.set_offset("p".repeat(name_len), 7).unwrap();
    let report = w.checkpoint(1, &mut r.state, &sources, vec![]);
    (w, r, report)
}

/// A record the coordinator creates must be one a reader accepts: an
/// epoch record over the reader's bound would make every later
/// `Coordinator::start` fail, and the job could never restart.
#[test]
fn an_epoch_record_too_large_to_read_is_never_created() {
    let store = store();
    let mut c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8)).unwrap();
    let (_w, _r, report) = report_with_partition_name(&store, &c, 1);
    let mut report = report.unwrap();
    // 49 MiB of partition name: over the 48 MiB a reader reads (an engine
    // carrying reports in memory, or many workers' reports under their
    // bound each, get there too).
    report
        .positions
        .insert("q".repeat(49 << 20), Default::default());
    let outcome = c.commit(1, vec![report]);
    assert!(
        matches!(outcome, Err(Error::EpochAborted { .. })),
        "a record no reader accepts was committed: {:?}",
        outcome.map(|g| g.epoch)
    );
    // Whatever was refused, the job still starts.
    let next = Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8))
        .expect("the job restarts");
    assert!(next.restored().is_none());
}

/// A report the worker makes must be one `from_bytes` (and the store
/// transport) accepts; otherwise its epoch aborts at the coordinator, every
/// time.
#[test]
fn a_report_too_large_to_read_is_refused_by_the_worker() {
    let store = store();
    let c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8)).unwrap();
    let (_w, _r, report) = report_with_partition_name(&store, &c, MAX_REPORT_LEN as usize);
    match report {
        Err(Error::InvalidArgument { .. }) => {}
        Err(e) => panic!("{e:?}"),
        Ok(report) => {
            let bytes = report.to_bytes();
            let back = bytes.as_ref().map(|b| WorkerReport::from_bytes(b));
            assert!(
                bytes.is_err(),
                "to_bytes made {} bytes that from_bytes refuses: {:?}",
                bytes.as_ref().map_or(0, Vec::len),
                back.map(|r| r.map(|_| ()))
            );
        }
    }
}

/// With the most key groups a job may have and one worker, every report of
/// the default chain must stay sendable: a delta's group index is as long
/// as a full part's, and the chain repeats it.
#[test]
fn every_report_of_a_long_chain_over_many_groups_is_sendable() {
    let store = store();
    let groups = highwater::cluster::MAX_KEY_GROUPS;
    let mut c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(groups))
            .unwrap();
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    let mut sources = SourcePositions::new();
    for e in 1..=12u64 {
        r.state.put(format!("k{e}").into_bytes(), b"v".to_vec());
        sources.set_offset("p", e).unwrap();
        let report = w.checkpoint(e, &mut r.state, &sources, vec![]).unwrap();
        let bytes = report.to_bytes().unwrap();
        WorkerReport::from_bytes(&bytes).unwrap_or_else(|err| {
            panic!(
                "epoch {e}: a chain of {} parts makes a report of {} bytes: {err}",
                report.chain.len(),
                bytes.len()
            )
        });
        c.commit(e, vec![report]).unwrap();
        c.sinks_committed(e).unwrap();
    }
}

/// A group index whose first entry is not 0 (non-decreasing, its last entry
/// the file's count) made a restore skip the first keys of the range,
/// silently: the state no longer matched the offsets it resumed from.
#[test]
fn a_group_index_that_does_not_start_at_zero_is_refused() {
    let store = store();
    let mut c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8)).unwrap();
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    for k in ["a", "b", "c", "d"] {
        r.state.put(k.as_bytes().to_vec(), b"v".to_vec());
    }
    let mut sources = SourcePositions::new();
    sources.set_offset("p", 4).unwrap();
    let mut report = w.checkpoint(1, &mut r.state, &sources, vec![]).unwrap();
    let puts = &mut report.chain[0].puts;
    let first = puts.iter().position(|&n| n > 0).unwrap();
    for n in &mut puts[..first] {
        *n = 1;
    }
    match c.commit(1, vec![report]) {
        Err(Error::EpochAborted { .. }) => {}
        Err(e) => panic!("{e:?}"),
        Ok(_) => {
            c.sinks_committed(1).unwrap();
            let next =
                Coordinator::start(CoordinatorConfig::new(store.clone(), 1).with_key_groups(8))
                    .unwrap();
            let restored =
                ClusterWorker::join(WorkerConfig::new(store.clone(), next.generation(), 0));
            if let Ok((_, restored)) = restored {
                assert_eq!(
                    restored.state.len(),
                    4,
                    "a restore at offset 4 lost keys and said nothing"
                );
            }
        }
    }
}

/// A partition of the last committed epoch that no report of the next one
/// names loses its position: the next restore has none for it, and the
/// source reads it again from its start (output published twice). An
/// engine that forgets to assign a partition after a rescale must be
/// refused at once.
#[test]
fn an_epoch_that_drops_a_partition_is_aborted() {
    let store = store();
    let cfg = |n| CoordinatorConfig::new(store.clone(), n).with_key_groups(8);
    let mut c = Coordinator::start(cfg(2)).unwrap();
    let mut reports = Vec::new();
    for i in 0..2 {
        let (mut w, mut r) =
            ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), i)).unwrap();
        let mut sources = SourcePositions::new();
        sources.set_offset(format!("input-{i}"), 100).unwrap();
        reports.push(w.checkpoint(1, &mut r.state, &sources, vec![]).unwrap());
    }
    c.commit(1, reports).unwrap();
    c.sinks_committed(1).unwrap();

    // Rescale to one worker that keeps only "input-0".
    let mut next = Coordinator::start(cfg(1)).unwrap();
    next.sinks_committed(1).unwrap();
    let (mut w, r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), next.generation(), 0)).unwrap();
    assert_eq!(r.positions.len(), 2);
    let sources = r.source_positions(|p| p == "input-0");
    let mut state = r.state;
    let report = w.checkpoint(2, &mut state, &sources, vec![]).unwrap();
    let outcome = next.commit(2, vec![report]);
    assert!(
        matches!(outcome, Err(Error::EpochAborted { .. })),
        "input-1's position was dropped: {:?}",
        outcome.map(|g| g.positions().into_keys().collect::<Vec<_>>())
    );
}

/// One epoch of a one-worker run: join, checkpoint, commit, publish.
fn one_epoch(store: &Arc<dyn BlobStore>, c: &mut Coordinator) {
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    let epoch = c.next_epoch();
    let mut sources = SourcePositions::new();
    sources.set_offset("input", epoch * 10).unwrap();
    r.state.put(format!("k{epoch}").into_bytes(), b"v".to_vec());
    let report = w.checkpoint(epoch, &mut r.state, &sources, vec![]).unwrap();
    c.commit(epoch, vec![report]).unwrap();
    c.sinks_committed(epoch).unwrap();
}

/// A worker started for a run that a newer one has replaced and collected
/// (its claim and base deleted below the floor) must hear `Fenced` (stop),
/// not that the store is damaged (call an operator).
#[test]
fn a_worker_of_a_collected_run_is_fenced_not_told_of_damage() {
    let store = store();
    let cfg = || CoordinatorConfig::new(store.clone(), 1).with_key_groups(8);
    let mut first = Coordinator::start(cfg()).unwrap();
    one_epoch(&store, &mut first);
    // Run `old` claims; before its worker joins, a newer run takes over,
    // commits and collects everything below its own claim.
    let old = Coordinator::start(cfg()).unwrap();
    let mut new = Coordinator::start(cfg()).unwrap();
    new.sinks_committed(1).unwrap();
    one_epoch(&store, &mut new);
    one_epoch(&store, &mut new);
    let gc = new.collect_garbage(1, std::time::Duration::ZERO).unwrap();
    assert!(gc.floor > old.generation(), "{gc:?}");
    match ClusterWorker::join(WorkerConfig::new(store.clone(), old.generation(), 0)) {
        Err(Error::Fenced { .. }) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn an_epoch_whose_offset_goes_back_is_aborted() {
    let store = store();
    let cfg = |n| CoordinatorConfig::new(store.clone(), n).with_key_groups(8);
    let mut c = Coordinator::start(cfg(1)).unwrap();
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    let mut sources = SourcePositions::new();
    sources.set_offset("input-0", 100).unwrap();
    let report = w.checkpoint(1, &mut r.state, &sources, vec![]).unwrap();
    c.commit(1, vec![report]).unwrap();
    c.sinks_committed(1).unwrap();
    // A replay moved the partition back without restoring the state.
    sources.seek_offset("input-0", 40);
    let report = w.checkpoint(2, &mut r.state, &sources, vec![]).unwrap();
    let outcome = c.commit(2, vec![report]);
    assert!(
        matches!(&outcome, Err(Error::EpochAborted { reason, .. }) if reason.contains("went back")),
        "{outcome:?}"
    );
}
