use super::*;
use crate::blob::{
    list_all, BlobFault, BlobOp, BlobResult, CreateOutcome, ListPage, MultipartUpload, SimBlobStore,
};
use crate::checkpoint::remote::gc::tests::{encoded, key_of};
use crate::checkpoint::remote::gc::{plan_gc, GcInput, ListedRecord};
use crate::checkpoint::remote::layout::{folder, parse_numbered, COMMITS, FLOORS, PARTS};
use crate::checkpoint::remote::record::{decode, encode_claim};
use bytes::Bytes;
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const GRACE: Duration = Duration::from_secs(60);

/// A location in `store`: floor marker 1, a claim in slot 1, full
/// checkpoints 1..=5 in slots 2..=6 with their parts, a stray part and an
/// abandoned upload, all an hour old.
fn location(store: &SimBlobStore) {
    store.create_if_absent(&floor_key(1), Bytes::new()).unwrap();
    let claim = encode_claim(1, "host:1", 7).unwrap();
    store.put(&commit_key(1), claim.into()).unwrap();
    for id in 1..=5 {
        let slot = id + 1;
        store
            .put(&commit_key(slot), encoded(slot, id, None, id * 10).into())
            .unwrap();
        let part = vec![0u8; 10 + id as usize];
        store.put(&key_of(slot, id), part.into()).unwrap();
    }
    store.put(&key_of(50, 50), vec![1u8; 7].into()).unwrap();
    drop(store.put_multipart(&key_of(60, 60)).unwrap());
    store.advance_clock(Duration::from_secs(3600));
}

/// What a collection lists: (records, floor markers, parts).
fn listing(store: &dyn BlobStore) -> (Vec<ListedRecord>, Vec<u64>, Vec<BlobMeta>) {
    let records = list_all(store, Some(&folder(COMMITS)))
        .unwrap()
        .into_iter()
        .map(|m| {
            let slot = parse_numbered(COMMITS, &m.key).unwrap();
            let bytes = store.get(&m.key).unwrap();
            ListedRecord {
                slot,
                record: decode(slot, &bytes).ok(),
            }
        })
        .collect();
    let markers = list_all(store, Some(&folder(FLOORS)))
        .unwrap()
        .iter()
        .filter_map(|m| parse_numbered(FLOORS, &m.key))
        .collect();
    let parts = list_all(store, Some(&folder(PARTS))).unwrap();
    (records, markers, parts)
}

/// Plans a collection of `store` keeping 2, as of `now`.
fn planned(store: &dyn BlobStore, now: SystemTime) -> (GcPlan, Vec<BlobMeta>) {
    let (records, markers, parts) = listing(store);
    let plan = plan_gc(&GcInput {
        records: &records,
        floor_markers: &markers,
        parts: &parts,
        now,
        grace: GRACE,
        max_retained: 2,
    });
    (plan, parts)
}

fn keys(store: &dyn BlobStore) -> Vec<String> {
    list_all(store, None)
        .unwrap()
        .into_iter()
        .map(|m| m.key.to_string())
        .collect()
}

#[test]
fn a_collection_raises_the_floor_then_deletes_what_the_plan_says() {
    let store = SimBlobStore::new(1);
    location(&store);
    let (plan, parts) = planned(&store, store.now());
    assert_eq!(plan.new_floor, Some(5));
    let report = execute(&store, &plan, &parts);
    assert_eq!(
        report,
        GcReport {
            floor: Some(5),
            retained: vec![4, 5],
            wal_needed_from: Some(40),
            records_deleted: 4,
            parts_deleted: 4,
            bytes_freed: 11 + 12 + 13 + 7,
            floor_markers_deleted: 1,
            uploads_aborted: 1,
            failures: 0,
        }
    );
    let mut expected = vec![
        commit_key(5).to_string(),
        commit_key(6).to_string(),
        floor_key(5).to_string(),
        key_of(5, 4).to_string(),
        key_of(6, 5).to_string(),
    ];
    expected.sort();
    assert_eq!(keys(&store), expected);
    assert!(store.pending_uploads().is_empty());
    // A second collection finds nothing more to do.
    let (plan, parts) = planned(&store, store.now());
    let again = execute(&store, &plan, &parts);
    assert_eq!(again.floor, Some(5));
    assert_eq!(again.records_deleted + again.parts_deleted, 0);
}

#[test]
fn nothing_is_deleted_when_the_floor_cannot_be_raised() {
    for fault in [BlobFault::Transient, BlobFault::Indeterminate] {
        let store = SimBlobStore::new(2);
        location(&store);
        let before = keys(&store);
        let (plan, parts) = planned(&store, store.now());
        store.fail_nth(BlobOp::Create, 1, fault); // 0 was the old marker
        let report = execute(&store, &plan, &parts);
        assert_eq!(report.failures, 1, "{fault:?}");
        assert_eq!(report.floor, Some(1), "the floor stays where it was");
        assert_eq!(
            report.records_deleted + report.parts_deleted + report.floor_markers_deleted,
            0
        );
        assert_eq!(report.uploads_aborted, 0);
        let after: Vec<String> = keys(&store)
            .into_iter()
            .filter(|k| k != floor_key(5).as_str()) // an indeterminate create may land
            .collect();
        assert_eq!(after, before, "{fault:?}: nothing deleted");
        assert_eq!(store.pending_uploads().len(), 1);
    }
}

#[test]
fn an_existing_floor_marker_is_no_failure() {
    let store = SimBlobStore::new(3);
    location(&store);
    let (plan, parts) = planned(&store, store.now());
    assert_eq!(
        store.create_if_absent(&floor_key(5), Bytes::new()).unwrap(),
        CreateOutcome::Created
    );
    let report = execute(&store, &plan, &parts);
    assert_eq!((report.floor, report.failures), (Some(5), 0));
    assert_eq!(report.records_deleted, 4);
}

#[test]
fn a_failed_delete_is_counted_and_the_rest_go_on() {
    let store = SimBlobStore::new(4);
    location(&store);
    let (plan, parts) = planned(&store, store.now());
    store.fail_nth(BlobOp::Delete, 1, BlobFault::Transient); // record 2
    store.fail_nth(BlobOp::Delete, 5, BlobFault::Throttled); // part of checkpoint 2
    store.fail_nth(BlobOp::Abort, 0, BlobFault::Transient);
    let report = execute(&store, &plan, &parts);
    assert_eq!(report.failures, 3);
    assert_eq!(report.records_deleted, 3);
    assert_eq!(report.parts_deleted, 3);
    assert_eq!(report.bytes_freed, 11 + 13 + 7);
    assert_eq!(report.floor_markers_deleted, 1);
    assert_eq!(report.uploads_aborted, 0);
    assert!(store.head(&commit_key(2)).is_ok(), "the failed one stays");
    assert!(store.head(&key_of(3, 2)).is_ok());
    assert!(store.head(&commit_key(3)).unwrap_err().is_not_found());
    // The next collection finishes the job.
    let (plan, parts) = planned(&store, store.now());
    let next = execute(&store, &plan, &parts);
    assert_eq!(
        (next.records_deleted, next.parts_deleted, next.failures),
        (1, 1, 0)
    );
    assert_eq!(next.uploads_aborted, 1);
}

/// A store that writes down every mutation it is asked for, in order.
#[derive(Debug)]
struct Recording {
    inner: SimBlobStore,
    calls: Mutex<Vec<String>>,
}

impl Recording {
    fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl BlobStore for Recording {
    fn create_if_absent(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<CreateOutcome> {
        self.note(format!("create {key}"));
        self.inner.create_if_absent(key, bytes)
    }
    fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        self.note(format!("put {key}"));
        self.inner.put(key, bytes)
    }
    fn put_multipart(&self, key: &BlobKey) -> BlobResult<Box<dyn MultipartUpload>> {
        self.note(format!("multipart {key}"));
        self.inner.put_multipart(key)
    }
    fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        self.inner.get(key)
    }
    fn get_range(&self, key: &BlobKey, range: Range<u64>) -> BlobResult<Bytes> {
        self.inner.get_range(key, range)
    }
    fn head(&self, key: &BlobKey) -> BlobResult<BlobMeta> {
        self.inner.head(key)
    }
    fn list(
        &self,
        prefix: Option<&BlobKey>,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<ListPage> {
        self.inner.list(prefix, after, limit)
    }
    fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        self.note(format!("delete {key}"));
        self.inner.delete(key)
    }
    fn abort_abandoned_uploads(&self, older_than: SystemTime) -> BlobResult<u64> {
        self.note("abort uploads".into());
        self.inner.abort_abandoned_uploads(older_than)
    }
}

#[test]
fn the_floor_comes_first_then_records_parts_markers_and_uploads() {
    let sim = SimBlobStore::new(5);
    location(&sim);
    let store = Recording {
        inner: sim.clone(),
        calls: Mutex::new(Vec::new()),
    };
    let (plan, parts) = planned(&store, sim.now());
    execute(&store, &plan, &parts);
    let calls = store.calls.into_inner().unwrap();
    let mut expected = vec![format!("create {}", floor_key(5))];
    expected.extend((1..=4).map(|s| format!("delete {}", commit_key(s))));
    let mut doomed = [key_of(2, 1), key_of(3, 2), key_of(4, 3), key_of(50, 50)];
    doomed.sort();
    expected.extend(doomed.iter().map(|k| format!("delete {k}")));
    expected.push(format!("delete {}", floor_key(1)));
    expected.push("abort uploads".into());
    assert_eq!(calls, expected);
}

#[test]
fn the_counts_reach_the_metrics() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let store = SimBlobStore::new(6);
    location(&store);
    let (plan, parts) = planned(&store, store.now());
    store.fail_nth(BlobOp::Delete, 0, BlobFault::Transient);
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        execute(&store, &plan, &parts);
    });
    let mut seen: Vec<(String, Vec<String>, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key().clone();
            let labels = key.labels().map(|l| format!("{}={}", l.key(), l.value()));
            let n = match value {
                DebugValue::Counter(n) => n,
                other => panic!("not a counter: {other:?}"),
            };
            (key.name().to_string(), labels.collect(), n)
        })
        .collect();
    seen.sort();
    let deleted = |kind: &str, n: u64| {
        (
            crate::metrics::REMOTE_GC_DELETED.to_string(),
            vec![format!("kind={kind}")],
            n,
        )
    };
    let mut expected = vec![
        (
            crate::metrics::REMOTE_GC_BYTES_FREED.to_string(),
            vec![],
            11 + 12 + 13 + 7,
        ),
        (crate::metrics::REMOTE_GC_FAILURES.to_string(), vec![], 1),
        deleted("floor_marker", 1),
        deleted("part", 4),
        deleted("record", 3),
        deleted("upload", 1),
    ];
    expected.sort();
    assert_eq!(seen, expected);
}
