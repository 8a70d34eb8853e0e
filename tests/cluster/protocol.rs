//! The protocol's edge cases (docs/DISTRIBUTED.md, "What each failure
//! does"): zombie and concurrent coordinators, missing reports, workers of
//! an old run, the store transport's one report per worker slot, keys
//! outside a worker's groups, and a key-group count that cannot change.

use super::support::sim;
use highwater::blob::{list_all, BlobKey, BlobStore};
use highwater::cluster::{
    ClusterWorker, Coordinator, CoordinatorConfig, SinkHandle, SourcePosition, StoreTransport,
    WorkerConfig, WorkerReport, MAX_KEY_GROUPS,
};
use highwater::{Error, SourcePositions};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Every worker of `coordinator`'s run joins and checkpoints `epoch` with
/// one key of its own and its partition `p<i>`.
fn reports(
    store: &Arc<dyn BlobStore>,
    c: &Coordinator,
    epoch: u64,
) -> Result<Vec<WorkerReport>, Error> {
    (0..c.plan().workers)
        .map(|i| {
            let config = WorkerConfig::new(store.clone(), c.generation(), i);
            let (mut w, mut r) = ClusterWorker::join(config)?;
            let key = (0u32..)
                .map(|n| format!("w{i}-{n}").into_bytes())
                .find(|k| w.owns(k))
                .unwrap();
            r.state.put(key, format!("epoch {epoch}").into_bytes());
            let mut sources = SourcePositions::new();
            sources.set_offset(format!("p{i}"), epoch * 10)?;
            let sinks = vec![SinkHandle {
                sink: "out".into(),
                handle: format!("{}-{epoch}-{i}", c.generation()).into_bytes(),
            }];
            w.checkpoint(epoch, &mut r.state, &sources, sinks)
        })
        .collect()
}

fn parts_of(store: &dyn BlobStore, generation: u64) -> usize {
    let prefix = BlobKey::new(format!("parts/{generation:020}")).unwrap();
    list_all(store, Some(&prefix)).unwrap().len()
}

#[test]
fn a_zombie_coordinator_is_fenced_and_the_new_one_commits() {
    let store = sim(1);
    let mut a = Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
    // A's workers report epoch 1; then A pauses and B claims.
    let from_a = reports(&store, &a, 1).unwrap();
    let mut b = Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
    assert!(b.generation() > a.generation());
    let err = a.commit(1, from_a.clone()).unwrap_err();
    match &err {
        Error::Fenced {
            generation,
            winner_generation,
            ..
        } => {
            assert_eq!(*generation, a.generation());
            assert_eq!(*winner_generation, Some(b.generation()));
        }
        other => panic!("{other:?}"),
    }
    assert!(a.stopped().is_some());
    // Fenced for good: even a valid-looking call is refused.
    assert!(matches!(
        a.commit(1, from_a.clone()),
        Err(Error::InvalidArgument { .. })
    ));
    // B restores nothing (A never committed) and commits epoch 1.
    assert!(b.restored().is_none());
    let committed = b.commit(1, reports(&store, &b, 1).unwrap()).unwrap();
    assert_eq!(committed.generation, b.generation());
    // The next run restores B's epoch 1, and its handles only.
    let c = Coordinator::start(CoordinatorConfig::new(store.clone(), 3)).unwrap();
    let base = c.restored().unwrap();
    assert_eq!((base.epoch, base.generation), (1, b.generation()));
    let handles: Vec<String> = base
        .sink_handles()
        .iter()
        .map(|h| String::from_utf8(h.handle.clone()).unwrap())
        .collect();
    let b_gen = b.generation();
    assert_eq!(handles, [format!("{b_gen}-1-0"), format!("{b_gen}-1-1")]);
}

#[test]
fn a_coordinators_reports_do_not_commit_another_run() {
    let store = sim(2);
    let a = Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
    let from_a = reports(&store, &a, 1).unwrap();
    let mut b = Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
    match b.commit(1, from_a) {
        Err(Error::EpochAborted { epoch, missing, .. }) => {
            assert_eq!(epoch, 1);
            assert_eq!(missing, [0, 1]);
        }
        other => panic!("{other:?}"),
    }
}

/// Two coordinators start at the same moment and each runs its epoch: the
/// newer claim always commits; the older one is fenced, unless it
/// committed before the newer one claimed (then the newer restores it).
#[test]
fn of_two_coordinators_started_at_once_the_newer_commits() {
    let mut fenced = 0;
    for seed in 0..32 {
        let store = sim(100 + seed);
        let gate = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (store, gate) = (store.clone(), gate.clone());
                std::thread::spawn(move || {
                    gate.wait();
                    let mut c =
                        Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
                    let base = c.restored().cloned();
                    if let Some(b) = &base {
                        c.sinks_committed(b.epoch).unwrap();
                    }
                    let epoch = c.next_epoch();
                    let result = reports(&store, &c, epoch).and_then(|r| c.commit(epoch, r));
                    (c.generation(), base, result)
                })
            })
            .collect();
        let mut outcomes: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        outcomes.sort_by_key(|(g, _, _)| *g);
        let (low, high) = (&outcomes[0], &outcomes[1]);
        assert_ne!(low.0, high.0, "two claims of one generation");
        let committed = high.2.as_ref().expect("the newer run commits");
        match &low.2 {
            Err(Error::Fenced { .. }) => {
                fenced += 1;
                assert!(high.1.is_none());
                assert_eq!(committed.epoch, 1);
            }
            Ok(first) => {
                assert_eq!(
                    high.1.as_ref(),
                    Some(first),
                    "the newer run restores the older's epoch"
                );
                assert_eq!(committed.epoch, 2);
            }
            Err(other) => panic!("the older run: {other:?}"),
        }
        let next = Coordinator::start(CoordinatorConfig::new(store.clone(), 1)).unwrap();
        assert_eq!(next.restored(), Some(committed));
    }
    eprintln!("the older of two coordinators was fenced in {fenced} of 32 races");
}

#[test]
fn a_missing_report_aborts_the_epoch_and_stops_the_coordinator() {
    let store = sim(3);
    let mut c = Coordinator::start(CoordinatorConfig::new(store.clone(), 3)).unwrap();
    let all = reports(&store, &c, 1).unwrap();
    let mut partial = all.clone();
    partial.remove(1);
    match c.commit(1, partial) {
        Err(Error::EpochAborted {
            epoch,
            generation,
            missing,
            ..
        }) => {
            assert_eq!((epoch, generation), (1, c.generation()));
            assert_eq!(missing, [1]);
        }
        other => panic!("{other:?}"),
    }
    assert!(c.stopped().is_some());
    // Later commits are refused, even with every report.
    assert!(matches!(
        c.commit(1, all),
        Err(Error::InvalidArgument { .. })
    ));
    // Nothing was committed.
    let next = Coordinator::start(CoordinatorConfig::new(store.clone(), 3)).unwrap();
    assert!(next.restored().is_none());
}

#[test]
fn the_transport_aborts_at_the_deadline_naming_the_missing_worker() {
    let store = sim(4);
    let c = Coordinator::start(CoordinatorConfig::new(store.clone(), 3)).unwrap();
    let all = reports(&store, &c, 1).unwrap();
    let transport = StoreTransport::new(store.clone()).with_poll_interval(Duration::from_millis(5));
    transport.send(&all[0]).unwrap();
    transport.send(&all[2]).unwrap();
    match transport.wait(c.generation(), 1, 3, Duration::from_millis(50)) {
        Err(Error::EpochAborted { missing, .. }) => assert_eq!(missing, [1]),
        other => panic!("{other:?}"),
    }
    transport.send(&all[1]).unwrap();
    let got = transport
        .wait(c.generation(), 1, 3, Duration::from_millis(50))
        .unwrap();
    assert_eq!(got, all);
}

#[test]
fn a_worker_of_an_old_run_is_fenced_and_uploads_nothing() {
    let store = sim(5);
    let a = Coordinator::start(CoordinatorConfig::new(store.clone(), 1)).unwrap();
    let (mut old, mut restored) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), a.generation(), 0)).unwrap();
    old.check_generation().unwrap();
    let b = Coordinator::start(CoordinatorConfig::new(store.clone(), 1)).unwrap();
    restored.state.put(b"k".to_vec(), b"v".to_vec());
    let err = old
        .checkpoint(1, &mut restored.state, &SourcePositions::new(), vec![])
        .unwrap_err();
    match &err {
        Error::Fenced {
            generation,
            winner_generation,
            ..
        } => {
            assert_eq!(*generation, a.generation());
            assert_eq!(*winner_generation, Some(b.generation()));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(old.check_generation(), Err(Error::Fenced { .. })));
    assert_eq!(parts_of(store.as_ref(), a.generation()), 0);
    // A late joiner of the old run is refused at join.
    let late = ClusterWorker::join(WorkerConfig::new(store.clone(), a.generation(), 0));
    assert!(matches!(late, Err(Error::Fenced { .. })), "{late:?}");
}

#[test]
fn a_worker_slot_takes_one_report() {
    let store = sim(6);
    let c = Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
    let all = reports(&store, &c, 1).unwrap();
    let transport = StoreTransport::new(store.clone());
    transport.send(&all[0]).unwrap();
    // The same bytes again (a retry after a lost answer): accepted.
    transport.send(&all[0]).unwrap();
    // Another report for the same worker of the same run and epoch.
    let mut other = all[0].clone();
    other.positions.insert(
        "p0".into(),
        SourcePosition {
            offset: Some(999),
            watermark: None,
        },
    );
    match transport.send(&other) {
        Err(Error::Fenced {
            key, generation, ..
        }) => {
            assert_eq!(
                key,
                format!("reports/{:020}/{:020}/{:05}", c.generation(), 1, 0)
            );
            assert_eq!(generation, c.generation());
        }
        other => panic!("{other:?}"),
    }
    // The first report stands.
    let got = transport.received(c.generation(), 1).unwrap();
    assert_eq!(got.get(&0), Some(&all[0]));
    assert_eq!(got.len(), 1);
}

#[test]
fn a_key_outside_the_workers_groups_is_refused_before_any_upload() {
    let store = sim(7);
    let c = Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
    let (mut w, mut r) =
        ClusterWorker::join(WorkerConfig::new(store.clone(), c.generation(), 0)).unwrap();
    let foreign = (0u32..)
        .map(|n| format!("k{n}").into_bytes())
        .find(|k| !w.owns(k))
        .unwrap();
    r.state.put(foreign.clone(), b"v".to_vec());
    let err = w
        .checkpoint(1, &mut r.state, &SourcePositions::new(), vec![])
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert_eq!(parts_of(store.as_ref(), c.generation()), 0);
    // Without it the worker checkpoints epoch 1 (the refusal changed nothing).
    r.state.delete(&foreign);
    let report = w
        .checkpoint(1, &mut r.state, &SourcePositions::new(), vec![])
        .unwrap();
    assert_eq!(report.chain.len(), 1);
}

#[test]
fn the_key_group_count_never_changes() {
    let store = sim(8);
    let mut c =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 2).with_key_groups(64)).unwrap();
    c.commit(1, reports(&store, &c, 1).unwrap()).unwrap();
    for other in [128, 63, 65, 1] {
        let config = CoordinatorConfig::new(store.clone(), 1).with_key_groups(other);
        match Coordinator::start(config) {
            Err(Error::InvalidConfig { setting, .. }) => assert_eq!(setting, "key_groups"),
            other => panic!("{other:?}"),
        }
    }
    // The refused starts claimed nothing: the job's count still works.
    let next =
        Coordinator::start(CoordinatorConfig::new(store.clone(), 3).with_key_groups(64)).unwrap();
    assert_eq!(next.restored().map(|b| b.key_groups), Some(64));
    assert_eq!(next.generation(), c.generation() + 2);
}

#[test]
fn counts_out_of_bounds_are_refused() {
    let store = sim(9);
    for (workers, groups) in [
        (1, 0),
        (1, MAX_KEY_GROUPS + 1),
        (0, 128),
        (129, 128),
        (3, 2),
    ] {
        let config = CoordinatorConfig::new(store.clone(), workers).with_key_groups(groups);
        let got = Coordinator::start(config);
        assert!(
            matches!(got, Err(Error::InvalidConfig { .. })),
            "{workers} of {groups}: {got:?}"
        );
    }
    let c = Coordinator::start(CoordinatorConfig::new(store.clone(), 2)).unwrap();
    for chain in [0, 65] {
        let config = WorkerConfig::new(store.clone(), c.generation(), 0).with_max_chain(chain);
        assert!(matches!(
            ClusterWorker::join(config),
            Err(Error::InvalidConfig { .. })
        ));
    }
    let config = WorkerConfig::new(store.clone(), c.generation(), 2);
    assert!(matches!(
        ClusterWorker::join(config),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn epochs_out_of_order_are_refused_without_stopping() {
    let store = sim(10);
    let mut c = Coordinator::start(CoordinatorConfig::new(store.clone(), 1)).unwrap();
    let r = reports(&store, &c, 2).unwrap();
    assert!(matches!(c.commit(2, r), Err(Error::InvalidArgument { .. })));
    assert!(c.stopped().is_none());
    c.commit(1, reports(&store, &c, 1).unwrap()).unwrap();
}
