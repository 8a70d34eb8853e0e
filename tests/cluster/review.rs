//! A hostile review of the cluster protocol: each test is an attack that
//! once succeeded (docs/DISTRIBUTED.md; /work/shared/REVIEW.md).

use highwater::blob::{BlobStore, SimBlobStore};
use highwater::cluster::{
    ClusterWorker, Coordinator, CoordinatorConfig, WorkerConfig, WorkerReport,
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
