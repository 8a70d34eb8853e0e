//! Sealed Arrow parts: full and appended parts round-trip, opened into
//! memory, with nothing in the clear; a missing key is a typed error.
#![cfg(feature = "arrow")]

use super::support::{files_containing, keys};
use arrow::array::{ArrayRef, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use highwater::{
    ArrowBatches, CheckpointConfig, CheckpointRequest, CheckpointStore, Error,
    IncrementalCheckpointManager, PartInput,
};
use std::sync::Arc;

fn rows(from: u64, n: u64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let ids: ArrayRef = Arc::new(UInt64Array::from_iter_values(from..from + n));
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (from..from + n).map(|i| format!("secret-arrow-row-{i}")),
    ));
    RecordBatch::try_new(schema, vec![ids, names]).unwrap()
}

#[test]
fn sealed_arrow_parts_round_trip_and_hide_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(2);
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path()).with_encryption(k.clone()),
    )
    .unwrap();
    let base = vec![rows(0, 30_000)];
    let schema = base[0].schema();
    let full = m
        .create_checkpoint(
            CheckpointRequest::new(0)
                .with_part("w", PartInput::Arrow(ArrowBatches::new(&schema, &base))),
        )
        .unwrap();
    let appended = vec![rows(30_000, 10)];
    let delta = m
        .create_checkpoint(CheckpointRequest::new(0).with_parent(full.id).with_part(
            "w",
            PartInput::ArrowDelta(ArrowBatches::new(&schema, &appended)),
        ))
        .unwrap();
    assert!(delta.part("w").unwrap().sealed.is_some());
    let part = m.open_arrow_part(delta.id, "w").unwrap();
    assert_eq!(part.num_rows(), 30_010);
    let all: Vec<RecordBatch> = part.batches().to_vec();
    assert_eq!(all, [base, appended].concat());
    m.store().verify_checkpoint(delta.id).unwrap();
    assert!(files_containing(dir.path(), b"secret-arrow-row").is_empty());

    let err = CheckpointStore::new(dir.path())
        .open_arrow_part(delta.id, "w")
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyUnavailable { key_id: 2, .. }),
        "{err:?}"
    );
}
