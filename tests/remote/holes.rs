//! Protocol holes found by reading, each shown by a test (and fixed).

use crate::support::{full, snapshot, Site};
use highwater::RecoveryManager;

/// `RecoveryManager` reads the checkpoint directory only: with a remote
/// location the directory is a cache, and recovering from it without the
/// manager that brought it up to date would restore what that machine last
/// saw, not the last acknowledged checkpoint. Recovery refuses a cache that
/// no manager holds; with the manager open it recovers the acknowledged
/// checkpoint.
#[test]
fn recovery_from_a_cache_needs_its_manager_open() {
    let site = Site::local();
    let a = site.manager("a");
    full(&a, 10, &snapshot(10, "old")).unwrap();
    drop(a);
    // Another machine takes over and commits a newer checkpoint.
    let b = site.manager("b");
    let new = full(&b, 20, &snapshot(10, "new")).unwrap();
    drop(b);
    // Machine "a" restarts and recovers before opening its manager: refused.
    let wal = site.root.path().join("wal");
    match RecoveryManager::recover_simple(site.cache("a"), &wal) {
        Err(highwater::Error::InvalidArgument(e)) => {
            assert!(e.to_string().contains("remote checkpoint location"), "{e}")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // Opened first, the cache holds the acknowledged checkpoint.
    let a = site.manager("a");
    let recovered = RecoveryManager::recover_simple(site.cache("a"), &wal).unwrap();
    assert_eq!(recovered.checkpoint_id, Some(new.id));
    a.restored_from(recovered.checkpoint_id);
}

/// Regression: a commit record of a newer format version (written by a
/// newer highwater, then the job rolled back to this one) was taken for
/// damage: the restore fell back to an older checkpoint and the job went
/// on from there, silently dropping acknowledged checkpoints. The open
/// must fail instead, naming the record ("upgrade to read it").
#[test]
fn a_record_of_a_newer_version_fails_the_open_instead_of_falling_back() {
    use highwater::blob::BlobKey;
    let site = Site::local();
    let a = site.manager("a");
    full(&a, 10, &snapshot(10, "old")).unwrap();
    full(&a, 20, &snapshot(10, "new")).unwrap();
    drop(a);
    // Slots: 1 the claim, 2 and 3 the checkpoints.
    let key = BlobKey::new("commits/00000000000000000003").unwrap();
    let text = String::from_utf8(site.store.get(&key).unwrap().to_vec()).unwrap();
    let bumped = text.replacen("\"version\": 1", "\"version\": 2", 1);
    assert_ne!(
        bumped, text,
        "the envelope's version is where it is expected"
    );
    site.store.delete(&key).unwrap();
    site.store.put(&key, bumped.into_bytes().into()).unwrap();

    match highwater::IncrementalCheckpointManager::new(site.config("b")) {
        Err(highwater::Error::UnsupportedVersion { .. }) => {}
        Err(e) => panic!("expected UnsupportedVersion, got {e:?}"),
        Ok(m) => panic!(
            "opened and restored {:?} past a record it cannot read (rejected: {:?})",
            m.remote_restore().unwrap().restored,
            m.remote_restore().unwrap().rejected
        ),
    }
}
