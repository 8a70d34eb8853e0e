//! The simulator's faults: crashes at every operation, lost answers,
//! transient failures, abandoned uploads; deterministic from the seed.

use highwater::blob::{
    BlobError, BlobFault, BlobKey, BlobOp, BlobStore, CreateOutcome, SimBlobStore,
};

fn k(name: &str) -> BlobKey {
    BlobKey::new(name).unwrap()
}

/// Whether an indeterminate create of `commits/1` took effect, for `seed`.
fn indeterminate_create_happened(seed: u64) -> bool {
    let store = SimBlobStore::new(seed);
    store.fail_nth(BlobOp::Create, 0, BlobFault::Indeterminate);
    let err = store
        .create_if_absent(&k("commits/1"), "mine".into())
        .unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Indeterminate {
                operation: BlobOp::Create,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_indeterminate() && err.is_retryable());
    assert_eq!(err.key(), "commits/1", "the error names the key");
    // Resolved the only way a caller can: read the key and compare.
    match store.get(&k("commits/1")) {
        Ok(bytes) => {
            assert_eq!(
                &bytes[..],
                b"mine",
                "an indeterminate create writes whole bytes"
            );
            let again = store
                .create_if_absent(&k("commits/1"), "mine".into())
                .unwrap();
            assert_eq!(again, CreateOutcome::AlreadyExists);
            true
        }
        Err(e) => {
            assert!(e.is_not_found(), "{e:?}");
            false
        }
    }
}

#[test]
fn an_indeterminate_create_may_or_may_not_happen_and_the_seed_decides() {
    let outcomes: Vec<bool> = (0..32).map(indeterminate_create_happened).collect();
    assert!(
        outcomes.contains(&true),
        "some seeds apply the create: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&false),
        "some seeds drop it: {outcomes:?}"
    );
    let again: Vec<bool> = (0..32).map(indeterminate_create_happened).collect();
    assert_eq!(outcomes, again, "the same seed gives the same outcome");
}

type State = Option<Vec<u8>>;

/// What the workload knows: the acknowledged state of each key, and the
/// operation in flight (its key and the state it would leave).
#[derive(Default)]
struct Log {
    acked: Vec<(BlobKey, State)>,
    in_flight: Option<(BlobKey, State)>,
}

impl Log {
    fn start(&mut self, key: &BlobKey, state: State) {
        self.in_flight = Some((key.clone(), state));
    }
    fn ack(&mut self) {
        let done = self.in_flight.take().expect("an operation in flight");
        self.acked.push(done);
    }
    fn last_acked(&self, key: &BlobKey) -> State {
        self.acked
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, s)| s.clone())
    }
}

/// A small workload: puts, a multipart upload, a create, a delete, a list.
fn workload(store: &SimBlobStore, log: &mut Log) -> Result<(), BlobError> {
    for i in 0..3 {
        let key = k(&format!("parts/p-{i}"));
        log.start(&key, Some(format!("part {i}").into_bytes()));
        store.put(&key, format!("part {i}").into())?;
        log.ack();
    }
    let big = k("parts/big");
    let mut upload = store.put_multipart(&big)?;
    upload.put_part(vec![1u8; 10].into())?;
    upload.put_part(vec![2u8; 10].into())?;
    log.start(&big, Some([vec![1u8; 10], vec![2u8; 10]].concat()));
    upload.complete()?;
    log.ack();
    log.start(&k("commits/1"), Some(b"record 1".to_vec()));
    assert_eq!(
        store.create_if_absent(&k("commits/1"), "record 1".into())?,
        CreateOutcome::Created
    );
    log.ack();
    log.start(&k("parts/p-0"), None);
    store.delete(&k("parts/p-0"))?;
    log.ack();
    let listed = store.list(Some(&k("parts")), None, 10)?;
    assert_eq!(listed.objects.len(), 3);
    Ok(())
}

#[test]
fn a_crash_at_every_operation_keeps_what_was_acknowledged() {
    let total = {
        let store = SimBlobStore::new(0);
        workload(&store, &mut Log::default()).unwrap();
        store.ops()
    };
    assert!(total >= 10, "the workload has {total} operations");
    let keys: Vec<BlobKey> = [
        "parts/p-0",
        "parts/p-1",
        "parts/p-2",
        "parts/big",
        "commits/1",
    ]
    .into_iter()
    .map(k)
    .collect();
    let mut in_flight_applied = [0usize; 2];
    for seed in 0..8 {
        for crash_at in 0..total {
            let store = SimBlobStore::new(seed);
            store.fail_at(crash_at, BlobFault::Crash);
            let mut log = Log::default();
            let err = workload(&store, &mut log).expect_err("the crash strikes");
            assert!(matches!(err, BlobError::Crashed { .. }), "{err:?}");
            assert!(store.crashed());
            assert!(
                matches!(store.get(&k("parts/p-1")), Err(BlobError::Crashed { .. })),
                "a crashed client answers nothing"
            );
            let after = store.reboot();
            for key in &keys {
                let now = after.get(key).ok().map(|b| b.to_vec());
                let acked = log.last_acked(key);
                match &log.in_flight {
                    Some((k, would)) if k == key => {
                        assert!(
                            now == acked || now == *would,
                            "{key} after a crash at {crash_at}: {now:?} is neither before nor after"
                        );
                        in_flight_applied[usize::from(now == *would && now != acked)] += 1;
                    }
                    _ => assert_eq!(
                        now, acked,
                        "{key}: acknowledged state after a crash at {crash_at}"
                    ),
                }
            }
            assert!(!after.crashed(), "the rebooted client works");
        }
    }
    assert!(
        in_flight_applied[0] > 0 && in_flight_applied[1] > 0,
        "crashed mutations were both applied and dropped: {in_flight_applied:?}"
    );
}

#[test]
fn transient_and_throttled_failures_have_no_effect() {
    for fault in [BlobFault::Transient, BlobFault::Throttled] {
        let store = SimBlobStore::new(5);
        store.fail_nth(BlobOp::Create, 0, fault);
        let err = store.create_if_absent(&k("c"), "x".into()).unwrap_err();
        assert!(err.is_retryable() && !err.is_indeterminate(), "{err:?}");
        assert!(
            store.head(&k("c")).unwrap_err().is_not_found(),
            "{fault:?} did nothing"
        );
        assert_eq!(
            store.create_if_absent(&k("c"), "x".into()).unwrap(),
            CreateOutcome::Created
        );
    }
}

#[test]
fn an_abandoned_upload_stays_pending_and_invisible() {
    let store = SimBlobStore::new(9);
    let mut upload = store.put_multipart(&k("big")).unwrap();
    upload.put_part(vec![0u8; 100].into()).unwrap();
    drop(upload);
    assert_eq!(store.pending_uploads(), vec![k("big")]);
    assert!(store.head(&k("big")).unwrap_err().is_not_found());
    let upload = store.put_multipart(&k("other")).unwrap();
    upload.abort().unwrap();
    assert_eq!(
        store.pending_uploads(),
        vec![k("big")],
        "an aborted upload is gone"
    );
}

#[test]
fn abandoned_uploads_older_than_the_cutoff_are_aborted_by_the_sim_clock() {
    use std::time::Duration;
    let store = SimBlobStore::new(11);
    let start = store.now();
    let old = store.put_multipart(&k("old")).unwrap();
    drop(old);
    store.advance_clock(Duration::from_secs(60));
    assert_eq!(store.now(), start + Duration::from_secs(60));
    let mut young = store.put_multipart(&k("young")).unwrap();
    // Nothing started before `start`; only "old" started before start + 30 s.
    assert_eq!(store.abort_abandoned_uploads(start).unwrap(), 0);
    assert_eq!(
        store
            .abort_abandoned_uploads(start + Duration::from_secs(30))
            .unwrap(),
        1
    );
    assert_eq!(store.pending_uploads(), vec![k("young")]);
    young.put_part(vec![1u8; 3].into()).unwrap();
    young.complete().unwrap();
    assert_eq!(&store.get(&k("young")).unwrap()[..], &[1, 1, 1]);
    // A fault on the collection is one operation like any other.
    let _abandoned = store.put_multipart(&k("late")).unwrap();
    // (The third abort-kind operation of this client: two collections ran.)
    store.fail_nth(BlobOp::Abort, 2, BlobFault::Transient);
    let later = store.now() + Duration::from_secs(1);
    assert!(store.abort_abandoned_uploads(later).is_err());
    assert_eq!(store.pending_uploads(), vec![k("late")]);
    assert_eq!(store.abort_abandoned_uploads(later).unwrap(), 1);
    assert!(store.pending_uploads().is_empty());
}

#[test]
fn reads_lose_no_answer_they_only_fail() {
    let store = SimBlobStore::new(3);
    store.put(&k("x"), "v".into()).unwrap();
    store.fail_nth(BlobOp::Get, 0, BlobFault::Indeterminate);
    let err = store.get(&k("x")).unwrap_err();
    assert!(matches!(err, BlobError::Transient { .. }), "{err:?}");
    assert_eq!(&store.get(&k("x")).unwrap()[..], b"v");
}
