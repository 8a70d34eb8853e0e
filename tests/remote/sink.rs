//! `SinkCoordinator` over a remote location: a sink commits only after the
//! checkpoint's record exists; output of a checkpoint whose commit failed is
//! never published, and is published once when its record turns out to
//! exist.

use crate::support::Site;
use highwater::blob::{BlobFault, BlobOp};
use highwater::{CheckpointRequest, FileSink, IncrementalCheckpointManager, SinkCoordinator};

fn run_epoch(
    coordinator: &mut SinkCoordinator,
    sink: &mut FileSink,
    word: &str,
) -> highwater::Result<highwater::IncrementalCheckpointMetadata> {
    sink.write(word.as_bytes())?;
    coordinator.checkpoint(CheckpointRequest::new(0), &mut [sink])
}

#[test]
fn output_is_published_only_with_a_committed_record() {
    let mut outcomes = std::collections::BTreeSet::new();
    for seed in 0..12 {
        outcomes.insert(crash_in_the_second_commit(seed));
    }
    // The crashed create took effect for some seeds and not for others.
    assert_eq!(outcomes, std::collections::BTreeSet::from([1, 2]));
}

/// The epoch restored after a crash in the create of the second record.
fn crash_in_the_second_commit(seed: u64) -> u64 {
    let (site, sim) = Site::sim(seed);
    let out = site.root.path().join("out");
    {
        let mut sink = FileSink::open(&out, "out").unwrap();
        let manager = site.manager("a");
        let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
        run_epoch(&mut coordinator, &mut sink, "one ").unwrap();
        // The process crashes in the next record's create: the checkpoint
        // is not acknowledged, and its output not published.
        // (The first commit's garbage collection created the floor: the
        // next create is the second record's.)
        sim.fail_nth(BlobOp::Create, sim.ops_of(BlobOp::Create), BlobFault::Crash);
        assert!(run_epoch(&mut coordinator, &mut sink, "two ").is_err());
        assert_eq!(sink.read_committed().unwrap(), b"one ");
    }
    // A restart (the simulator's client crashed: a new one) recovers: the
    // output of the uncommitted epoch is aborted, or published once if the
    // crashed create happened after all.
    let site = crate::support::Site {
        root: site.root,
        store: std::sync::Arc::new(sim.reboot()),
    };
    let mut sink = FileSink::open(&out, "out").unwrap();
    let manager: IncrementalCheckpointManager = site.manager("a");
    let restored = manager.remote_restore().unwrap().restored;
    let coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    let committed = sink.read_committed().unwrap();
    let epoch = coordinator.restored().map(|c| c.epoch);
    match epoch {
        Some(1) => assert_eq!(committed, b"one "),
        Some(2) => assert_eq!(committed, b"one two "),
        other => panic!("restored {other:?} ({restored:?})"),
    }
    epoch.unwrap()
}
