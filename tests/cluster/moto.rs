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
use std::sync::Arc;

#[path = "../common/moto_server.rs"]
mod moto_server;

use moto_server::fresh_bucket;

/// The endpoint, or `None` (after saying so) when the tests cannot run here.
fn endpoint() -> Option<String> {
    moto_server::endpoint("cluster")
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
