//! Sealed checkpoints: round trips, key errors, tampering, fallback.

use super::support::{files_containing, forge_part_crc, keys, part_files, state};
use highwater::crypto::KeyProvider;
use highwater::{
    CheckpointConfig, CheckpointRequest, CheckpointStore, Error, IncrementalCheckpointManager,
    PartInput, StateSnapshot,
};
use std::path::Path;
use std::sync::Arc;

fn manager(dir: &Path, keys: &Arc<dyn KeyProvider>) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir)
            .with_max_retained(100)
            .with_encryption(keys.clone()),
    )
    .unwrap()
}

fn full(m: &IncrementalCheckpointManager, s: &StateSnapshot) -> u64 {
    m.create_checkpoint(CheckpointRequest::new(0).with_part("ops", PartInput::Snapshot(s)))
        .unwrap()
        .id
}

fn store(dir: &Path, keys: &Arc<dyn KeyProvider>) -> CheckpointStore {
    CheckpointStore::new(dir).with_encryption(keys.clone())
}

#[test]
fn full_and_delta_round_trip_sealed_with_nothing_in_the_clear() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(7);
    let m = manager(dir.path(), &k);
    // Large enough for many 64 KiB blocks.
    let base = state(20_000, "base");
    let id = full(&m, &base);
    let delta = highwater::StateDelta::from_changes([
        (
            b"secret-key-000001".to_vec(),
            Some(b"changed-value-plaintext".to_vec()),
        ),
        (b"secret-key-000002".to_vec(), None),
    ]);
    let d = m
        .create_checkpoint(
            CheckpointRequest::new(0)
                .with_parent(id)
                .with_part("ops", PartInput::Delta(&delta)),
        )
        .unwrap();
    assert!(d.is_delta());
    let meta = m.store().read_metadata(d.id).unwrap();
    let seal = meta.parts[0].sealed.expect("a sealed part");
    assert_eq!(seal.key_id, 7);

    let loaded = m.load_snapshot(d.id, "ops").unwrap();
    assert_eq!(loaded.len(), 19_999);
    assert_eq!(
        loaded.get(b"secret-key-000001"),
        Some(&b"changed-value-plaintext"[..])
    );
    assert_eq!(loaded.get(b"secret-key-000002"), None);
    assert_eq!(
        loaded.get(b"secret-key-019999"),
        Some(&b"base-value-019999-plaintext"[..])
    );

    let view = m.open_state_view(d.id, "ops").unwrap();
    assert_eq!(
        view.get(b"secret-key-000001").unwrap(),
        Some(&b"changed-value-plaintext"[..])
    );
    assert_eq!(view.get(b"secret-key-000002").unwrap(), None);
    assert_eq!(
        view.get(b"secret-key-010000").unwrap(),
        Some(&b"base-value-010000-plaintext"[..])
    );
    assert_eq!(view.len().unwrap(), 19_999);
    view.verify_all().unwrap();

    m.store().verify_checkpoint(id).unwrap();
    m.store().verify_checkpoint(d.id).unwrap();
    for needle in [&b"secret-key"[..], b"plaintext", b"changed-value"] {
        assert_eq!(
            files_containing(dir.path(), needle),
            Vec::<std::path::PathBuf>::new()
        );
    }
}

#[test]
fn a_view_opens_only_the_blocks_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(1);
    let m = manager(dir.path(), &k);
    let id = full(&m, &state(50_000, "v"));
    // Damage a block in the middle of the file (recomputing nothing): a view
    // that reads one key elsewhere never touches it, a full pass does.
    let part = &part_files(dir.path())[0];
    let mut bytes = std::fs::read(part).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(part, &bytes).unwrap();
    let view = m.open_state_view(id, "ops").unwrap();
    assert_eq!(
        view.get(b"secret-key-000000").unwrap(),
        Some(&b"v-value-000000-plaintext"[..])
    );
    let err = view.verify_all().unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationFailed { key_id: 1, .. }),
        "{err:?}"
    );
    assert!(err.is_corruption());
    assert_eq!(err.path(), Some(part.as_path()));
    // Whole loads open every block.
    let err = m.load_snapshot(id, "ops").unwrap_err();
    assert!(
        matches!(&err, Error::AuthenticationFailed { path, .. } if path == part),
        "{err:?}"
    );
}

#[test]
fn a_missing_or_wrong_key_is_a_typed_error_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(3);
    let id = full(&manager(dir.path(), &k), &state(100, "x"));
    let part = part_files(dir.path()).remove(0);

    let err = CheckpointStore::new(dir.path())
        .load_snapshot(id, "ops")
        .unwrap_err();
    assert!(
        matches!(&err, Error::KeyUnavailable { path, key_id: 3 } if *path == part),
        "{err:?}"
    );
    let err = store(dir.path(), &keys(3))
        .load_snapshot(id, "ops")
        .unwrap_err();
    assert!(
        matches!(&err, Error::KeyMismatch { path, key_id: 3 } if *path == part),
        "{err:?}"
    );
    assert!(!err.is_corruption());
    let err = store(dir.path(), &keys(3))
        .open_state_view(id, "ops")
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyMismatch { key_id: 3, .. }),
        "{err:?}"
    );
    let err = store(dir.path(), &keys(4))
        .load_snapshot(id, "ops")
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyUnavailable { key_id: 3, .. }),
        "{err:?}"
    );
    // A manager without the key refuses to continue the chain rather than
    // treating the checkpoint as damaged.
    let err = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()))
        .and_then(|m| m.load_snapshot(id, "ops"))
        .unwrap_err();
    assert!(matches!(err, Error::KeyUnavailable { .. }), "{err:?}");
}

#[test]
fn rotation_seals_new_files_with_the_new_key_and_reads_old_ones() {
    use highwater::crypto::{DataKey, KeyId, StaticKeys};
    let dir = tempfile::tempdir().unwrap();
    let old = DataKey::generate().unwrap();
    let old_hex = old.to_hex();
    let first: Arc<dyn KeyProvider> = Arc::new(StaticKeys::new(KeyId::new(1).unwrap(), old));
    let a = full(&manager(dir.path(), &first), &state(10, "a"));
    let rotated: Arc<dyn KeyProvider> = Arc::new(
        StaticKeys::new(KeyId::new(2).unwrap(), DataKey::generate().unwrap())
            .with_retired(
                KeyId::new(1).unwrap(),
                DataKey::parse(old_hex.as_bytes()).unwrap(),
            )
            .unwrap(),
    );
    let m = manager(dir.path(), &rotated);
    let b = full(&m, &state(10, "b"));
    let key_of = |id| {
        m.store().read_metadata(id).unwrap().parts[0]
            .sealed
            .unwrap()
            .key_id
    };
    assert_eq!((key_of(a), key_of(b)), (1, 2));
    assert_eq!(m.load_snapshot(a, "ops").unwrap(), state(10, "a"));
    assert_eq!(m.load_snapshot(b, "ops").unwrap(), state(10, "b"));
    // With the old key dropped, only the new checkpoint reads.
    let only_new = store(dir.path(), &keys(2));
    let err = only_new.load_snapshot(a, "ops").unwrap_err();
    assert!(
        matches!(err, Error::KeyUnavailable { key_id: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn plaintext_checkpoints_stay_readable_after_encryption_is_turned_on() {
    let dir = tempfile::tempdir().unwrap();
    let plain = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
    let a = full(&plain, &state(10, "a"));
    drop(plain);
    let m = manager(dir.path(), &keys(1));
    let b = full(&m, &state(10, "b"));
    assert!(m.store().read_metadata(a).unwrap().parts[0]
        .sealed
        .is_none());
    assert!(m.store().read_metadata(b).unwrap().parts[0]
        .sealed
        .is_some());
    assert_eq!(m.load_snapshot(a, "ops").unwrap(), state(10, "a"));
    assert_eq!(m.load_snapshot(b, "ops").unwrap(), state(10, "b"));
}

#[test]
fn an_older_sealed_file_put_back_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(1);
    let m = manager(dir.path(), &k);
    // Same keys, values of the same length: the files have the same size.
    let a = full(&m, &state(1000, "a"));
    let b = full(&m, &state(1000, "b"));
    let path = |id| {
        let meta = m.store().read_metadata(id).unwrap();
        m.store().checkpoint_path(id).join(&meta.parts[0].file)
    };
    assert_eq!(
        std::fs::metadata(path(a)).unwrap().len(),
        std::fs::metadata(path(b)).unwrap().len()
    );
    std::fs::copy(path(a), path(b)).unwrap();
    let err = m.open_state_view(b, "ops").unwrap_err();
    assert!(
        matches!(&err, Error::StateCorrupted { offset: 16, .. }),
        "{err:?}"
    );
    let err = m.load_snapshot(b, "ops").unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
}

#[test]
fn a_cut_or_extended_sealed_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(1);
    let m = manager(dir.path(), &k);
    let id = full(&m, &state(20_000, "v"));
    let part = part_files(dir.path()).remove(0);
    let original = std::fs::read(&part).unwrap();
    // Cut at the boundary of the last block, and extended by one block.
    // (The sealed length is also authenticated: crypto's unit tests cut
    // files whose recorded size says the same.)
    let step = highwater::crypto::SEALED_BLOCK + highwater::crypto::TAG_LEN;
    let body = original.len() - highwater::crypto::SEAL_HEADER_LEN;
    let cut = highwater::crypto::SEAL_HEADER_LEN + (body - 1) / step * step;
    for bytes in [
        original[..cut].to_vec(),
        [&original[..], &original[cut..]].concat(),
    ] {
        std::fs::write(&part, &bytes).unwrap();
        // A part whose size differs from its metadata's makes the
        // checkpoint unrestorable, as for a plaintext part.
        for err in [
            m.load_snapshot(id, "ops").unwrap_err(),
            m.open_state_view(id, "ops").unwrap_err(),
        ] {
            assert!(
                err.is_corruption() || matches!(err, Error::CheckpointNotFound { .. }),
                "{err:?}"
            );
        }
    }
}

#[test]
fn find_latest_falls_back_past_a_forged_block_but_never_past_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(1);
    let m = manager(dir.path(), &k);
    let a = full(&m, &state(3000, "a"));
    let b = full(&m, &state(3000, "b"));
    let meta = m.store().read_metadata(b).unwrap();
    let part = m.store().checkpoint_path(b).join(&meta.parts[0].file);
    let mut bytes = std::fs::read(&part).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x10;
    std::fs::write(&part, &bytes).unwrap();
    forge_part_crc(&m.store().checkpoint_path(b), crc32c::crc32c(&bytes));
    drop(m);

    // A fresh reader (a manager caches the metadata it wrote).
    let s = store(dir.path(), &k);
    let err = s.load_snapshot(b, "ops").unwrap_err();
    assert!(matches!(err, Error::AuthenticationFailed { .. }), "{err:?}");
    let latest = s.find_latest().unwrap();
    assert_eq!(latest.metadata.as_ref().map(|c| c.id), Some(a));
    assert_eq!(latest.rejected.len(), 1);
    assert!(
        matches!(&*latest.rejected[0].error, Error::AuthenticationFailed { offset, key_id: 1, .. } if *offset > 0),
        "{:?}",
        latest.rejected[0].error
    );

    // Without the key, or with another one, nothing is skipped: the error.
    let err = CheckpointStore::new(dir.path()).find_latest().unwrap_err();
    assert!(
        err.is_key_problem() && matches!(err, Error::KeyUnavailable { .. }),
        "{err:?}"
    );
    let err = store(dir.path(), &keys(1)).find_latest().unwrap_err();
    assert!(
        matches!(err, Error::KeyMismatch { key_id: 1, .. }),
        "{err:?}"
    );
}

#[test]
fn a_given_state_file_is_verified_then_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), &keys(1));
    let s = state(2000, "given");
    let bytes = s.to_bytes().unwrap();
    let id = m
        .create_checkpoint(CheckpointRequest::new(0).with_part("ops", PartInput::StateFile(&bytes)))
        .unwrap()
        .id;
    let meta = m.store().read_metadata(id).unwrap();
    assert!(meta.parts[0].sealed.is_some());
    assert_eq!(meta.parts[0].entries, 2000);
    assert_eq!(m.load_snapshot(id, "ops").unwrap(), s);
    assert!(files_containing(dir.path(), b"secret-key").is_empty());
    // A damaged given file is still refused for its damage.
    let mut bad = bytes.to_vec();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    let err = m
        .create_checkpoint(CheckpointRequest::new(0).with_part("ops", PartInput::StateFile(&bad)))
        .unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
}
