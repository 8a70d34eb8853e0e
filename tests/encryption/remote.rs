//! Sealed checkpoints in a remote location: uploaded sealed (nothing in the
//! clear in any object), restored into a fresh cache with the key, refused
//! with a typed error without it; a remote view refuses sealed parts.

use super::support::{files_containing, keys, state};
use highwater::checkpoint::{RemoteStateView, RemoteViewConfig};
use highwater::{
    CheckpointConfig, CheckpointRequest, Error, IncrementalCheckpointManager, PartInput,
    RemoteConfig,
};
use std::path::Path;

fn manager(
    cache: &Path,
    bucket: &Path,
    keys: Option<&std::sync::Arc<dyn highwater::crypto::KeyProvider>>,
) -> highwater::Result<IncrementalCheckpointManager> {
    let remote = RemoteConfig::open(bucket.to_str().unwrap())?;
    let mut config = CheckpointConfig::new(cache).with_remote(remote);
    if let Some(k) = keys {
        config = config.with_encryption(k.clone());
    }
    IncrementalCheckpointManager::new(config)
}

#[test]
fn sealed_checkpoints_travel_sealed_and_restore_only_with_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let k = keys(4);
    let s = state(5000, "remote");
    let id = {
        let m = manager(&tmp.path().join("a"), &bucket, Some(&k)).unwrap();
        m.create_checkpoint(CheckpointRequest::new(0).with_part("ops", PartInput::Snapshot(&s)))
            .unwrap()
            .id
    };
    assert!(files_containing(&bucket, b"secret-key").is_empty());
    assert!(files_containing(&bucket, b"plaintext").is_empty());

    // A fresh cache, restored from the location with the key.
    let m = manager(&tmp.path().join("b"), &bucket, Some(&k)).unwrap();
    assert_eq!(m.remote_restore().unwrap().restored, Some(id));
    assert_eq!(m.load_snapshot(id, "ops").unwrap(), s);
    drop(m);

    // Without the key: refused, not taken for damage.
    let err = manager(&tmp.path().join("c"), &bucket, None)
        .and_then(|m| m.load_snapshot(id, "ops"))
        .unwrap_err();
    assert!(err.is_key_problem(), "{err:?}");

    // A remote view reads plaintext parts only: a clear refusal.
    let remote = RemoteConfig::open(bucket.to_str().unwrap()).unwrap();
    let err = RemoteStateView::open(
        RemoteViewConfig::new(remote, tmp.path().join("view")).with_part("ops"),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidArgument(_)) && err.to_string().contains("sealed"),
        "{err:?}"
    );
}

/// A cache that holds a sealed checkpoint, reopened without its key or with
/// another key under its id: a key problem, never "the cached copy is
/// damaged" (which would delete it and download it again, or fall back to
/// an older checkpoint).
#[test]
fn a_cached_sealed_checkpoint_opened_without_its_key_is_kept_and_not_fallen_back_past() {
    let tmp = tempfile::tempdir().unwrap();
    let bucket = tmp.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let cache = tmp.path().join("a");
    let k = keys(4);
    let (older, newest) = {
        let m = manager(&cache, &bucket, Some(&k)).unwrap();
        let mut ids = Vec::new();
        for tag in ["one", "two"] {
            let s = state(500, tag);
            ids.push(
                m.create_checkpoint(
                    CheckpointRequest::new(0).with_part("ops", PartInput::Snapshot(&s)),
                )
                .unwrap()
                .id,
            );
        }
        (ids[0], ids[1])
    };
    let listing = |dir: &Path| super::support::files(dir);
    let before = listing(&cache);
    for provider in [None, Some(keys(4))] {
        let result = manager(&cache, &bucket, provider.as_ref()).and_then(|m| {
            if let Some(r) = m.remote_restore() {
                assert_ne!(r.restored, Some(older), "fell back past a key problem");
            }
            m.load_snapshot(newest, "ops").map(|_| ())
        });
        let err = result.unwrap_err();
        assert!(err.is_key_problem(), "{err:?}");
        assert_eq!(listing(&cache), before, "the cache changed");
    }
    let m = manager(&cache, &bucket, Some(&k)).unwrap();
    assert_eq!(m.load_snapshot(newest, "ops").unwrap(), state(500, "two"));
}
