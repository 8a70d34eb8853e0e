//! The `exactly_once_pipeline` example's job (shared source file) with its
//! checkpoints published to a remote location (a local blob store): a restart
//! on a machine with an empty cache restores from the location and the output
//! stays exactly once; a run fenced by a newer writer stops at once.

#[path = "../../examples/exactly_once_pipeline/pipeline.rs"]
mod pipeline;

use highwater::storage::default_storage;
use highwater::{CheckpointConfig, Error, FileSink, IncrementalCheckpointManager, RemoteConfig};
use pipeline::{Event, Job, Paths};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

const JOB: Job = Job {
    partitions: 3,
    records: 64,
    batch: 4,
    ms_per_record: 100,
};

/// The job's output in `job/output`, its checkpoint cache in `job/<machine>`,
/// its checkpoints published to `bucket`.
fn paths(root: &Path, machine: &str) -> Paths {
    let mut paths = Paths::under(&root.join("job")).with_remote(
        root.join("bucket")
            .to_str()
            .expect("a UTF-8 temporary path"),
    );
    paths.checkpoints = root.join("job").join(machine);
    paths
}

fn output(root: &Path) -> Vec<u8> {
    FileSink::open(root.join("job").join("output"), pipeline::SINK)
        .unwrap()
        .read_committed()
        .unwrap()
}

#[test]
fn a_restart_with_an_empty_cache_restores_from_the_remote_location() {
    let root = tempfile::tempdir().unwrap();
    // Machine a stops (a panic unwinds out of the job) after epoch 3's
    // checkpoint is committed and its output published.
    let mut first = Vec::new();
    let stopped = catch_unwind(AssertUnwindSafe(|| {
        pipeline::run(
            default_storage(),
            &paths(root.path(), "a"),
            &JOB,
            &mut |e| {
                if let Event::Checkpoint { id, epoch: 3, .. } = e {
                    first.push(id);
                    panic!("machine a stops after epoch 3");
                }
                if let Event::Recovered { remote, .. } = e {
                    let remote = remote.expect("a remote restore report");
                    assert_eq!(remote.restored, None, "nothing committed yet");
                }
            },
        )
    }));
    assert!(stopped.is_err(), "machine a stopped mid-job");
    let committed = first[0];

    // Machine b has its own, empty, cache and the same sink directory.
    let mut recovered = None;
    pipeline::run(
        default_storage(),
        &paths(root.path(), "b"),
        &JOB,
        &mut |e| {
            if let Event::Recovered {
                checkpoint,
                epoch,
                remote,
                ..
            } = e
            {
                recovered = Some((checkpoint, epoch, remote));
            }
        },
    )
    .unwrap();
    let (checkpoint, epoch, remote) = recovered.expect("a Recovered event");
    let remote = remote.expect("a remote restore report");
    assert_eq!(checkpoint, Some(committed));
    assert_eq!(epoch, 3);
    assert_eq!(remote.restored, Some(committed));
    assert!(remote.generation > 0);
    assert!(
        remote.cache_hits.is_empty(),
        "the cache was empty: {remote:?}"
    );
    assert!(
        remote.downloaded.contains(&committed) && remote.bytes_downloaded > 0,
        "the restored checkpoint came from the location: {remote:?}"
    );
    pipeline::verify(&JOB, &output(root.path())).expect("exactly once");
}

#[test]
fn a_fenced_run_stops_at_its_next_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let location = paths(root.path(), "a").remote.unwrap();
    let mut successor = None;
    let mut after_fencing = Vec::new();
    let result = pipeline::run(
        default_storage(),
        &paths(root.path(), "a"),
        &JOB,
        &mut |e| {
            if successor.is_some() {
                after_fencing.push(e);
            } else if let Event::Checkpoint { epoch: 1, .. } = e {
                // A newer writer opens the location: it claims the next
                // generation, and this run's next commit finds its slot taken.
                let config = CheckpointConfig::new(root.path().join("job").join("b"))
                    .with_remote(RemoteConfig::open(&location).unwrap());
                successor = Some(IncrementalCheckpointManager::new(config).unwrap());
            }
        },
    );
    match result {
        Err(Error::Fenced { .. }) => {}
        other => panic!("expected Fenced, got {other:?}"),
    }
    // Epoch 2 was read; its checkpoint was fenced and the run returned at
    // once: no failed checkpoint carried on, no further epoch read.
    assert!(
        matches!(after_fencing.as_slice(), [Event::Read { epoch: 2, .. }]),
        "events after the successor opened: {after_fencing:?}"
    );
    // Nothing after epoch 1 was published.
    let published = FileSink::open(root.path().join("job").join("output"), pipeline::SINK)
        .unwrap()
        .committed_epochs()
        .unwrap();
    assert!(
        published.iter().all(|e| *e <= 1),
        "published epochs {published:?}"
    );
}
