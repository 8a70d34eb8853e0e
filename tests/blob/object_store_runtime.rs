//! The `object_store` backend's own runtime: its synchronous calls work from
//! inside a tokio runtime of the caller's (both flavours), its requests are
//! signed and carry a Content-Type (seen by a capturing server on
//! 127.0.0.1), and what a server answers is typed: throttling retried and
//! counted, or `Throttled` past the retries; a create answered 500 is
//! indeterminate, one never sent is transient.

use highwater::blob::{
    BlobError, BlobKey, BlobOp, BlobStore, BlobWriter, CreateOutcome, ObjectStoreBlobStore,
    ObjectStoreOptions, MIN_PART_BYTES,
};
use std::io::{Read, Write};

fn every_call(store: &ObjectStoreBlobStore) {
    let key = BlobKey::new("inside/runtime").unwrap();
    assert_eq!(
        store.create_if_absent(&key, "a".into()).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create_if_absent(&key, "b".into()).unwrap(),
        CreateOutcome::AlreadyExists
    );
    store.put(&key, "abc".into()).unwrap();
    assert_eq!(&store.get_range(&key, 1..3).unwrap()[..], b"bc");
    assert_eq!(store.head(&key).unwrap().size, 3);
    assert_eq!(store.list(None, None, 10).unwrap().objects.len(), 1);
    let mut w = BlobWriter::new(store, BlobKey::new("inside/big").unwrap(), MIN_PART_BYTES);
    w.write_all(&vec![7u8; MIN_PART_BYTES + 10]).unwrap();
    w.finish().unwrap();
    store.delete(&key).unwrap();
}

#[test]
fn calls_work_inside_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ObjectStoreBlobStore::in_memory().unwrap();
        every_call(&store);
        drop(store); // dropping the store inside a runtime must not panic either
    });
}

#[test]
fn calls_work_inside_a_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ObjectStoreBlobStore::in_memory().unwrap();
        every_call(&store);
    });
}

#[tokio::test]
async fn calls_work_inside_tokio_test() {
    let store = ObjectStoreBlobStore::in_memory().unwrap();
    every_call(&store);
}

/// Accepts one connection on 127.0.0.1, returns its request head, answers
/// 200 with an ETag.
fn capture_one() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).unwrap();
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        text
    });
    (endpoint, server)
}

#[test]
fn a_create_is_signed_conditional_and_typed() {
    let (endpoint, server) = capture_one();
    let options = ObjectStoreOptions::default()
        .with_config("aws_endpoint", endpoint)
        .with_config("aws_allow_http", "true")
        .with_config("aws_access_key_id", "test")
        .with_config("aws_secret_access_key", "test")
        .with_config("aws_region", "us-east-1")
        .with_max_retries(0);
    let store = ObjectStoreBlobStore::from_url("s3://bucket/jobs/one", options).unwrap();
    let key = BlobKey::new("commits/7").unwrap();
    assert_eq!(
        store.create_if_absent(&key, "record".into()).unwrap(),
        CreateOutcome::Created
    );
    let request = server.join().unwrap();
    assert!(
        request.starts_with("put /bucket/jobs/one/commits/7 "),
        "{request}"
    );
    assert!(
        request.contains("authorization: aws4-hmac-sha256 credential=test/"),
        "signed: {request}"
    );
    assert!(
        request.contains("if-none-match: *"),
        "conditional: {request}"
    );
    assert!(
        request.contains("content-type: application/octet-stream"),
        "typed: {request}"
    );
}

/// The process's metrics, seen through a debugging recorder installed once
/// for this test binary (the backend records on its own runtime's threads,
/// so a thread-local recorder would not see it).
fn global_metrics() -> &'static metrics_util::debugging::Snapshotter {
    static SNAPSHOTTER: std::sync::OnceLock<metrics_util::debugging::Snapshotter> =
        std::sync::OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other recorder in this binary");
        snapshotter
    })
}

/// The counter `name` with label `operation` = `op` in `snapshot`.
fn counter(snapshot: &[(String, String, u64)], name: &str, op: &str) -> u64 {
    snapshot
        .iter()
        .filter(|(n, o, _)| n == name && o == op)
        .map(|(.., c)| c)
        .sum()
}

/// Every counter recorded since the last snapshot (a snapshot drains the
/// debugging recorder's counters), as (name, operation label, value).
fn snapshot(snapshotter: &metrics_util::debugging::Snapshotter) -> Vec<(String, String, u64)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let op = key
                .key()
                .labels()
                .find(|l| l.key() == "operation")?
                .value()
                .to_string();
            match value {
                metrics_util::debugging::DebugValue::Counter(c) => {
                    Some((key.key().name().to_string(), op, c))
                }
                _ => None,
            }
        })
        .collect()
}

/// Answers `answers.len()` connections on 127.0.0.1, one response each.
fn answer_in_turn(answers: Vec<&'static str>) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        for answer in answers {
            let (mut conn, _) = listener.accept().unwrap();
            conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).to_lowercase();
            let length: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            conn.read_exact(&mut body).unwrap();
            conn.write_all(answer.as_bytes()).unwrap();
        }
    });
    (endpoint, server)
}

fn s3_at(endpoint: String, retries: usize) -> ObjectStoreBlobStore {
    let options = ObjectStoreOptions::default()
        .with_config("aws_endpoint", endpoint)
        .with_config("aws_allow_http", "true")
        .with_config("aws_access_key_id", "test")
        .with_config("aws_secret_access_key", "test")
        .with_config("aws_region", "us-east-1")
        .with_max_retries(retries);
    ObjectStoreBlobStore::from_url("s3://bucket/jobs/one", options).unwrap()
}

const SLOW_DOWN: &str = "HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const CREATED: &str =
    "HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BOOM: &str =
    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

#[test]
fn a_throttled_request_is_retried_and_counted() {
    let metrics = global_metrics();
    let (endpoint, server) = answer_in_turn(vec![SLOW_DOWN, CREATED]);
    let store = s3_at(endpoint, 3);
    store
        .put(&BlobKey::new("parts/p").unwrap(), "bytes".into())
        .unwrap();
    server.join().unwrap();
    // Other tests of this binary may add to the counters meanwhile, never
    // take from them: at least this test's throttle and its two requests.
    let seen = snapshot(metrics);
    let throttled = counter(&seen, highwater::metrics::BLOB_THROTTLED, "put");
    assert!(
        throttled >= 1,
        "the throttled response is counted: {seen:?}"
    );
    let requests = counter(&seen, highwater::metrics::BLOB_REQUESTS, "put");
    assert!(requests >= 2, "both requests are counted: {seen:?}");
}

#[test]
fn throttling_past_the_retries_is_typed_throttled() {
    let (endpoint, server) = answer_in_turn(vec![SLOW_DOWN, SLOW_DOWN]);
    let store = s3_at(endpoint, 1);
    let err = store
        .put(&BlobKey::new("parts/q").unwrap(), "bytes".into())
        .unwrap_err();
    server.join().unwrap();
    assert!(
        matches!(
            err,
            BlobError::Throttled {
                operation: BlobOp::Put,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.key(), "parts/q");
}

#[test]
fn a_create_answered_500_is_indeterminate() {
    let (endpoint, server) = answer_in_turn(vec![BOOM]);
    let store = s3_at(endpoint, 0);
    let err = store
        .create_if_absent(&BlobKey::new("commits/9").unwrap(), "r".into())
        .unwrap_err();
    server.join().unwrap();
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
}

#[test]
fn a_create_to_a_closed_port_is_transient_not_indeterminate() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    drop(listener); // nothing listens there now: the request is never sent
    let store = s3_at(endpoint, 0);
    let err = store
        .create_if_absent(&BlobKey::new("commits/9").unwrap(), "r".into())
        .unwrap_err();
    assert!(
        matches!(
            err,
            BlobError::Transient {
                operation: BlobOp::Create,
                ..
            }
        ),
        "{err:?}"
    );
}
