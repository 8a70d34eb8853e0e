//! A cluster job in a real S3 bucket: moto's server, started by `.ci/run`
//! (docs/OBJECT_STORAGE.md, "Running the tests against moto"). Three workers
//! commit two epochs through the store transport, then the job rescales to
//! two workers, which restore exactly the expected state.
//!
//! Gated like `tests/blob/moto.rs`: without `AWS_ENDPOINT` the test fails
//! when `CI=true` (an S3 test must never pass silently in CI) and otherwise
//! prints `SKIPPED:` with the way to start the server, and returns.

use super::support::Job;
use highwater::blob::{BlobStore, ObjectStoreBlobStore, ObjectStoreOptions};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const HOW: &str = "the S3 tests need moto's server and its environment: \
python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]==5.2.5' && \
(target/moto-venv/bin/moto_server -H 127.0.0.1 -p 5123 &) && \
AWS_ENDPOINT=http://127.0.0.1:5123 AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=test \
AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 cargo test --test cluster --features object-store moto \
(or run .ci/run, which does all of this)";

/// The endpoint, or `None` (after saying so) when the test cannot run here.
fn endpoint() -> Option<String> {
    match std::env::var("AWS_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but AWS_ENDPOINT is not set: {HOW}")
        }
        _ => {
            eprintln!("SKIPPED: {HOW}");
            None
        }
    }
}

/// Creates a fresh bucket on the server (moto takes an unsigned request)
/// and returns its name.
fn fresh_bucket(endpoint: &str, tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!("highwater-{tag}-{}-{nanos}", std::process::id());
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host)
        .unwrap_or_else(|e| panic!("cannot reach the S3 server at {endpoint}: {e}; {HOW}"));
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "create bucket {bucket}: {answer}"
    );
    bucket
}

#[test]
fn moto_cluster_job_commits_and_rescales() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    let bucket = fresh_bucket(&endpoint, "cluster");
    let url = format!("s3://{bucket}/highwater-cluster");
    let store: Arc<dyn BlobStore> =
        Arc::new(ObjectStoreBlobStore::from_url(&url, ObjectStoreOptions::default()).unwrap());
    let mut job = Job::new(store, 128, 21);
    job.transport = true;
    let mut run = job.start(3);
    job.epoch(&mut run);
    let second = job.epoch(&mut run);
    assert!(second.iter().all(|r| r.chain.len() == 2));
    // `start` asserts that each of the two workers restores exactly the
    // expected state of its groups, and every partition's position.
    let mut run = job.start(2);
    assert_eq!(run.coordinator.plan().base_epoch, 2);
    let after = job.epoch(&mut run);
    assert!(after.iter().all(|r| r.chain.len() == 1));
    let _ = job.start(1);
}
