//! A checkpoint directory holding Arrow parts, read by builds with and
//! without the `arrow` feature (docs/FORMAT.md §5, "Builds without the
//! `arrow` feature"). The directory is a committed fixture
//! (tests/fixtures/checkpoint/arrow-v1: checkpoint 1 a full checkpoint with a
//! key/value part `state` and an Arrow part `window`, checkpoint 2 a delta of
//! both), written by a build with the feature; regenerate it with
//! `HIGHWATER_REGENERATE_FIXTURES=1 cargo test --test state arrow_feature`.
//!
//! Without the feature it must still be listed, verified, recovered and
//! retained, its Arrow parts carried over by delta checkpoints, damage to an
//! Arrow file still found, and a full checkpoint that would have to decode an
//! Arrow part refused with `Error::FeatureDisabled`.

use highwater::{CheckpointConfig, CheckpointStore, IncrementalCheckpointManager, StateSnapshot};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoint/arrow-v1")
}

/// The fixture copied into a fresh directory (tests modify it).
fn copy_fixture() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ckpt");
    copy_dir(&fixture(), &dir);
    (tmp, dir)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The key/value state of the fixture's checkpoint 2.
fn expected_state() -> StateSnapshot {
    StateSnapshot::new(vec![
        (b"a".to_vec(), b"1".to_vec()),
        (b"b".to_vec(), b"2".to_vec()),
    ])
}

#[cfg(feature = "arrow")]
mod with_arrow {
    use super::*;
    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use highwater::{ArrowBatches, CheckpointRequest, PartInput, StateDelta};
    use std::sync::Arc;

    fn rows(values: &[i64]) -> (Arc<Schema>, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let column = Arc::new(Int64Array::from(values.to_vec()));
        let batch = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
        (schema, vec![batch])
    }

    fn write_fixture(dir: &Path) {
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir)).unwrap();
        let state = StateSnapshot::new(vec![(b"a".to_vec(), b"1".to_vec())]);
        let (schema, first) = rows(&[1, 2, 3]);
        m.create_checkpoint(
            CheckpointRequest::new(10)
                .with_offsets(HashMap::from([("src".to_string(), 10)]))
                .with_part("state", PartInput::Snapshot(&state))
                .with_part(
                    "window",
                    PartInput::Arrow(ArrowBatches::new(&schema, &first)),
                ),
        )
        .unwrap();
        let delta = StateDelta::from_changes([(b"b".to_vec(), Some(b"2".to_vec()))]);
        let (_, appended) = rows(&[4, 5]);
        let second = m
            .create_checkpoint(
                CheckpointRequest::new(20)
                    .with_offsets(HashMap::from([("src".to_string(), 20)]))
                    .with_part("state", PartInput::Delta(&delta))
                    .with_part(
                        "window",
                        PartInput::ArrowDelta(ArrowBatches::new(&schema, &appended)),
                    ),
            )
            .unwrap();
        assert_eq!(second.id, 2);
        assert!(second.parent_id.is_some(), "checkpoint 2 must be a delta");
    }

    #[test]
    fn the_fixture_is_what_a_build_with_arrow_writes_and_reads() {
        if std::env::var_os("HIGHWATER_REGENERATE_FIXTURES").is_some() {
            let _ = std::fs::remove_dir_all(fixture());
            write_fixture(&fixture());
            std::fs::remove_file(fixture().join(highwater::inspect::LOCK_FILE)).unwrap();
        }
        let (_tmp, dir) = copy_fixture();
        let store = CheckpointStore::new(&dir);
        store.verify_checkpoint(1).unwrap();
        store.verify_checkpoint(2).unwrap();
        let part = store.open_arrow_part(2, "window").unwrap();
        let values: Vec<i64> = part
            .batches()
            .iter()
            .flat_map(|b| {
                let c = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                (0..c.len()).map(|i| c.value(i)).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(values, [1, 2, 3, 4, 5]);
        assert_eq!(store.load_snapshot(2, "state").unwrap(), expected_state());
    }
}

#[cfg(not(feature = "arrow"))]
mod without_arrow {
    use super::*;
    use highwater::{Error, PartKind, RecoveryManager};

    #[test]
    fn a_directory_with_arrow_parts_is_listed_verified_and_recovered() {
        let (tmp, dir) = copy_fixture();
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&dir)).unwrap();
        let ids: Vec<u64> = m.list_checkpoints().unwrap().iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 2]);
        let latest = m.find_latest_checkpoint().unwrap().unwrap();
        assert_eq!(latest.id, 2);
        let window = latest.part("window").unwrap();
        assert_eq!(window.kind, PartKind::ArrowDelta);
        let store = CheckpointStore::new(&dir);
        store.verify_checkpoint(1).unwrap();
        store.verify_checkpoint(2).unwrap();
        assert_eq!(store.load_snapshot(2, "state").unwrap(), expected_state());
        drop(m);

        let recovered = RecoveryManager::recover_simple(&dir, tmp.path().join("wal")).unwrap();
        assert_eq!(recovered.checkpoint_id, Some(2));
        assert_eq!(recovered.state_snapshot, Some(expected_state()));
        assert_eq!(
            recovered.source_offsets,
            HashMap::from([("src".into(), 20)])
        );
    }

    #[test]
    fn a_damaged_arrow_file_is_still_found() {
        let (_tmp, dir) = copy_fixture();
        let store = CheckpointStore::new(&dir);
        let meta = store.read_metadata(2).unwrap();
        let path = meta
            .checkpoint_path(&dir)
            .join(&meta.part("window").unwrap().file);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let verified = store.verify_checkpoint(2);
        assert!(
            matches!(verified, Err(Error::CheckpointFileMismatch { ref path, .. }) if path.ends_with(&meta.part("window").unwrap().file)),
            "{verified:?}"
        );
        // The latest checkpoint is then the one before it, never a half-used one.
        let latest = store.find_latest().unwrap();
        assert_eq!(latest.metadata.map(|c| c.id), Some(1));
    }

    #[test]
    fn a_delta_checkpoint_carries_the_arrow_part_over() {
        let (_tmp, dir) = copy_fixture();
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&dir)).unwrap();
        m.load_checkpoint_state(2).unwrap();
        let delta = highwater::StateDelta::from_changes([(b"c".to_vec(), Some(b"3".to_vec()))]);
        let made = m
            .create_delta_checkpoint_with_state(
                30,
                HashMap::from([("src".into(), 30)]),
                None,
                &delta.to_bytes().unwrap(),
            )
            .unwrap();
        assert_eq!(made.parent_id, Some(2));
        let store = CheckpointStore::new(&dir);
        store.verify_checkpoint(made.id).unwrap();
        // The Arrow part still resolves to its files in checkpoints 1 and 2.
        let layers = store.resolve_part(made.id, "window").unwrap();
        let kinds: Vec<PartKind> = layers.iter().map(|(_, p)| p.kind).collect();
        assert_eq!(kinds, [PartKind::ArrowDelta, PartKind::Arrow]);
        // Retention keeps what the Arrow chain needs.
        m.enforce_retention().unwrap();
        for id in [1, 2, made.id] {
            store.verify_checkpoint(id).unwrap();
        }
    }

    #[test]
    fn a_full_checkpoint_that_would_decode_an_arrow_part_is_refused() {
        let (_tmp, dir) = copy_fixture();
        let config = CheckpointConfig::new(&dir).with_max_delta_chain(0);
        let m = IncrementalCheckpointManager::new(config).unwrap();
        m.load_checkpoint_state(2).unwrap();
        let delta = highwater::StateDelta::from_changes([(b"c".to_vec(), Some(b"3".to_vec()))]);
        let made = m.create_delta_checkpoint_with_state(
            30,
            HashMap::new(),
            None,
            &delta.to_bytes().unwrap(),
        );
        assert!(
            matches!(
                made,
                Err(Error::FeatureDisabled {
                    feature: "arrow",
                    ..
                })
            ),
            "{made:?}"
        );
        // Nothing was published.
        let ids: Vec<u64> = m.list_checkpoints().unwrap().iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 2]);
    }
}
