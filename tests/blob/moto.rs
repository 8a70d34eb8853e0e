//! The blob-store contract against a real S3 server: moto's, started by
//! `.ci/run` (docs/OBJECT_STORAGE.md, "Running the tests against moto").
//!
//! Without `AWS_ENDPOINT` these tests fail when `CI=true` (an S3 test must
//! never pass silently in CI) and otherwise print `SKIPPED:` with the way to
//! start the server, and return.

use highwater::blob::{
    conformance, BlobError, BlobKey, BlobStore, CreateOutcome, ObjectStoreBlobStore,
    ObjectStoreOptions,
};

#[path = "../common/moto_server.rs"]
mod moto_server;

use moto_server::fresh_bucket;

/// The endpoint, or `None` (after saying so) when the tests cannot run here.
fn endpoint() -> Option<String> {
    moto_server::endpoint("blob")
}

/// A fresh location's URL (`None`: the tests cannot run here).
fn location(tag: &str) -> Option<String> {
    let endpoint = endpoint()?;
    let bucket = fresh_bucket(&endpoint, tag);
    Some(format!("s3://{bucket}/highwater-tests"))
}

fn store(tag: &str) -> Option<ObjectStoreBlobStore> {
    let endpoint = endpoint()?;
    let bucket = fresh_bucket(&endpoint, tag);
    let url = format!("s3://{bucket}/highwater-tests");
    Some(ObjectStoreBlobStore::from_url(&url, ObjectStoreOptions::default()).unwrap())
}

#[test]
fn moto_keeps_the_contract() {
    let Some(store) = store("contract") else {
        return;
    };
    conformance::run_all(&store, &BlobKey::new("conformance").unwrap());
}

#[test]
fn moto_conditional_create_against_a_real_server() {
    let Some(store) = store("create") else { return };
    let key = BlobKey::new("commits/00000000000000000001").unwrap();
    assert_eq!(
        store.create_if_absent(&key, "mine".into()).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create_if_absent(&key, "a zombie's".into()).unwrap(),
        CreateOutcome::AlreadyExists,
        "If-None-Match: * refuses the second create"
    );
    assert_eq!(&store.get(&key).unwrap()[..], b"mine");
}

#[test]
fn moto_names_the_key_of_a_missing_object() {
    let Some(store) = store("missing") else {
        return;
    };
    let key = BlobKey::new("nothing/here").unwrap();
    let err = store.get(&key).unwrap_err();
    assert!(matches!(err, BlobError::NotFound { .. }), "{err:?}");
    assert_eq!(err.key(), "nothing/here");
}

#[test]
fn moto_a_missing_bucket_is_a_typed_error() {
    let Some(endpoint) = endpoint() else { return };
    let _ = endpoint;
    let store = ObjectStoreBlobStore::from_url(
        "s3://highwater-no-such-bucket/x",
        ObjectStoreOptions::default().with_max_retries(0),
    )
    .unwrap();
    let err = store
        .put(&BlobKey::new("k").unwrap(), "v".into())
        .unwrap_err();
    assert_eq!(err.key(), "k", "{err}");
    assert!(!err.is_indeterminate(), "a 404 answer is definite: {err:?}");
}

/// Checkpoints in a moto bucket: a multipart part file published, restored
/// byte for byte on another machine (ranged GETs), the old writer fenced.
#[test]
fn moto_checkpoints_publish_restore_and_fence() {
    use highwater::{
        CheckpointConfig, CheckpointRequest, Error, IncrementalCheckpointManager, PartInput,
        RemoteConfig,
    };
    let Some(url) = location("checkpoints") else {
        return;
    };
    let remote = || {
        RemoteConfig::open(&url)
            .unwrap()
            .with_part_bytes(5 << 20)
            .with_concurrency(4)
    };
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        IncrementalCheckpointManager::new(
            CheckpointConfig::new(dir.path().join(name)).with_remote(remote()),
        )
        .unwrap()
    };
    // 12 MiB and a bit: three parts of a multipart upload, three ranges.
    let bytes: Vec<u8> = (0..(12 << 20) + 12345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let zombie = open("a");
    let committed = zombie
        .create_checkpoint(CheckpointRequest::new(7).with_part("blob", PartInput::Blob(&bytes)))
        .unwrap();

    let successor = open("b");
    let restore = successor.remote_restore().unwrap().clone();
    assert_eq!(restore.restored, Some(committed.id));
    assert_eq!(restore.downloaded, vec![committed.id]);
    assert!(restore.bytes_downloaded >= bytes.len() as u64);
    let file = highwater::inspect::checkpoint_dir_name(committed.id);
    let restored = std::fs::read(
        dir.path()
            .join("b")
            .join(file)
            .join(&committed.parts[0].file),
    )
    .unwrap();
    let original = std::fs::read(
        committed
            .checkpoint_path(dir.path().join("a"))
            .join(&committed.parts[0].file),
    )
    .unwrap();
    assert_eq!(restored, original);

    match zombie
        .create_checkpoint(CheckpointRequest::new(8).with_part("blob", PartInput::Blob(b"late")))
    {
        Err(Error::Fenced {
            winner_generation, ..
        }) => {
            assert_eq!(winner_generation, Some(restore.generation))
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    let next = successor
        .create_checkpoint(CheckpointRequest::new(9).with_part("blob", PartInput::Blob(b"next")))
        .unwrap();
    drop(successor);
    let third = open("c");
    assert_eq!(third.remote_restore().unwrap().restored, Some(next.id));
}

/// The remote view against a real S3 server: a snapshot of 20 000 keys
/// (several hundred KiB over many blocks) served by ranged GETs before the
/// download, equal after the switch to the local copy, and a manager on the
/// same directory afterwards finds the checkpoint cached.
#[test]
fn moto_remote_view_serves_before_and_after_the_download() {
    use highwater::checkpoint::{RemoteStateView, RemoteViewConfig};
    use highwater::{
        CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RemoteConfig,
        StateSnapshot,
    };
    let Some(url) = location("view") else {
        return;
    };
    let remote = || RemoteConfig::open(&url).unwrap().with_concurrency(4);
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..20_000u32)
        .map(|i| {
            (
                format!("key-{i:06}").into_bytes(),
                format!("value-{i}-{}", "x".repeat((i % 50) as usize)).into_bytes(),
            )
        })
        .collect();
    let snapshot = StateSnapshot::new(pairs.clone());
    {
        let writer = IncrementalCheckpointManager::new(
            CheckpointConfig::new(dir.path().join("writer")).with_remote(remote()),
        )
        .unwrap();
        writer
            .create_checkpoint(
                CheckpointRequest::new(5).with_part("state", PartInput::Snapshot(&snapshot)),
            )
            .unwrap();
    }
    let cache = dir.path().join("reader");
    let view = RemoteStateView::open(
        RemoteViewConfig::new(remote(), &cache).with_background_download(false),
    )
    .unwrap()
    .unwrap();
    for (k, v) in pairs.iter().step_by(1999) {
        assert_eq!(view.get(k).unwrap().as_ref(), Some(v));
    }
    assert_eq!(view.get(b"key-99999999").unwrap(), None);
    let scanned: Vec<_> = view
        .prefix(b"key-0123")
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k.starts_with(b"key-0123"))
        .cloned()
        .collect();
    assert_eq!(scanned, expected);
    assert!(!view.is_local() && view.report().requests > 0);
    drop(view);
    let view = RemoteStateView::open(RemoteViewConfig::new(remote(), &cache))
        .unwrap()
        .unwrap();
    view.wait().unwrap();
    assert!(view.is_local());
    let all: Vec<_> = view.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, pairs);
    drop(view);
    let manager =
        IncrementalCheckpointManager::new(CheckpointConfig::new(&cache).with_remote(remote()))
            .unwrap();
    assert!(manager.remote_restore().unwrap().downloaded.is_empty());
}
