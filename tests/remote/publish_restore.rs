//! A checkpoint published to a remote location comes back on another
//! machine (download) and on the same one (cache hit); uncommitted local
//! directories never come back; damage falls back to an older checkpoint.

use crate::support::{cached_ids, full, snapshot, Site};
use highwater::inspect::{read_commit_sequence, SlotRecord};
use highwater::{RemoteConfig, StateDelta};

#[test]
fn a_checkpoint_comes_back_on_another_machine() {
    let site = Site::local();
    let a = site.manager("a");
    let state = snapshot(500, "v1");
    let first = full(&a, 10, &state).unwrap();
    let delta = StateDelta::from_changes(vec![(b"k00001".to_vec(), Some(b"changed".to_vec()))]);
    let second = a
        .create_checkpoint(
            highwater::CheckpointRequest::new(20)
                .with_offsets(std::collections::HashMap::from([("src".to_string(), 20)]))
                .with_part("state", highwater::PartInput::Delta(&delta)),
        )
        .unwrap();
    assert_eq!(second.parent_id, Some(first.id));
    drop(a);

    let b = site.manager("b");
    let restore = b.remote_restore().unwrap().clone();
    assert_eq!(restore.restored, Some(second.id));
    // From the base up.
    assert_eq!(restore.downloaded, vec![first.id, second.id]);
    assert!(restore.cache_hits.is_empty());
    let latest = b.find_latest_checkpoint().unwrap().unwrap();
    assert_eq!(latest.id, second.id);
    assert_eq!(latest.source_offsets["src"], 20);
    let restored = b.load_snapshot(second.id, "state").unwrap();
    assert_eq!(restored.get(b"k00001"), Some(&b"changed"[..]));
    assert_eq!(restored.get(b"k00002"), Some(&b"v1-2"[..]));
    assert_eq!(restored.len(), 500);
}

#[test]
fn the_same_machine_uses_its_cache() {
    let site = Site::local();
    let a = site.manager("a");
    let c = full(&a, 10, &snapshot(100, "x")).unwrap();
    drop(a);
    let again = site.manager("a");
    let restore = again.remote_restore().unwrap();
    assert_eq!(restore.restored, Some(c.id));
    assert_eq!(restore.cache_hits, vec![c.id]);
    assert!(restore.downloaded.is_empty());
    assert_eq!(restore.bytes_downloaded, 0);
}

#[test]
fn a_damaged_cached_copy_is_downloaded_again() {
    let site = Site::local();
    let a = site.manager("a");
    let c = full(&a, 10, &snapshot(100, "x")).unwrap();
    drop(a);
    let file = site
        .cache("a")
        .join(highwater::inspect::checkpoint_dir_name(c.id))
        .join(&c.parts[0].file);
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let again = site.manager("a");
    let restore = again.remote_restore().unwrap();
    assert_eq!(restore.downloaded, vec![c.id]);
    assert_eq!(
        again.load_snapshot(c.id, "state").unwrap().get(b"k00003"),
        Some(&b"x-3"[..])
    );
}

#[test]
fn a_local_checkpoint_without_a_record_is_removed_from_the_cache() {
    let site = Site::local();
    let a = site.manager("a");
    let c = full(&a, 10, &snapshot(10, "x")).unwrap();
    drop(a);
    // The same directory written by a manager without the remote: a
    // checkpoint published locally whose commit never happened.
    let local_only = highwater::IncrementalCheckpointManager::new(
        highwater::CheckpointConfig::new(site.cache("a")),
    )
    .unwrap();
    local_only.restored_from(Some(c.id));
    let orphan = full(&local_only, 20, &snapshot(10, "y")).unwrap();
    drop(local_only);
    assert_eq!(cached_ids(&site.cache("a")), vec![c.id, orphan.id]);

    let again = site.manager("a");
    let restore = again.remote_restore().unwrap();
    assert_eq!(restore.removed, vec![orphan.id]);
    assert_eq!(restore.restored, Some(c.id));
    assert_eq!(cached_ids(&site.cache("a")), vec![c.id]);
    // The next checkpoint builds on the committed one (the orphan's id may
    // be used again: nothing ever committed it).
    let next = full(&again, 30, &snapshot(10, "z")).unwrap();
    assert!(next.id > c.id);
    drop(again);
    let other = site.manager("b");
    assert_eq!(other.remote_restore().unwrap().restored, Some(next.id));
    assert_eq!(
        other
            .load_snapshot(next.id, "state")
            .unwrap()
            .get(b"k00001"),
        Some(&b"z-1"[..])
    );
}

#[test]
fn a_damaged_part_object_falls_back_to_the_previous_checkpoint() {
    let site = Site::local();
    let a = site.manager("a");
    let old = full(&a, 10, &snapshot(50, "old")).unwrap();
    let new = full(&a, 20, &snapshot(50, "new")).unwrap();
    drop(a);
    let seq = read_commit_sequence(&RemoteConfig::new(site.store.clone())).unwrap();
    let newest = seq
        .commits
        .iter()
        .rev()
        .find_map(|c| match &c.record {
            Ok(SlotRecord::Checkpoint(c)) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(newest.metadata.id, new.id);
    let key = &newest.files[0].1;
    let mut bytes = site.store.get(key).unwrap().to_vec();
    bytes[100] ^= 1;
    site.store.put(key, bytes.into()).unwrap();

    let b = site.manager("b");
    let restore = b.remote_restore().unwrap();
    assert_eq!(restore.restored, Some(old.id));
    assert_eq!(restore.rejected.len(), 1);
    assert_eq!(restore.rejected[0].id, new.id);
    assert!(
        matches!(
            *restore.rejected[0].error,
            highwater::Error::CheckpointFileMismatch { .. }
        ),
        "{:?}",
        restore.rejected[0].error
    );
    assert_eq!(b.find_latest_checkpoint().unwrap().unwrap().id, old.id);
}

#[test]
fn a_directory_of_local_checkpoints_is_not_turned_into_a_cache() {
    let site = Site::local();
    let local = highwater::IncrementalCheckpointManager::new(highwater::CheckpointConfig::new(
        site.cache("a"),
    ))
    .unwrap();
    let c = full(&local, 10, &snapshot(10, "x")).unwrap();
    drop(local);
    match highwater::IncrementalCheckpointManager::new(site.config("a")) {
        Err(highwater::Error::InvalidConfig {
            setting: "remote",
            reason,
        }) => {
            assert!(reason.contains("without a remote location"), "{reason}")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    // Nothing was removed, and no generation was claimed.
    assert_eq!(cached_ids(&site.cache("a")), vec![c.id]);
    assert!(read_commit_sequence(&RemoteConfig::new(site.store.clone()))
        .unwrap()
        .commits
        .is_empty());
}
