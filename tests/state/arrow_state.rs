//! Arrow parts in checkpoints: round trips of many schemas, zero-copy restore,
//! delta chains, and damage detection (docs/FORMAT.md §5).
#![cfg(feature = "arrow")]

use arrow::array::{
    Array, ArrayData, ArrayRef, BinaryArray, BooleanArray, DictionaryArray, Float64Array,
    Int32Array, Int64Array, LargeStringArray, ListArray, StringArray, StructArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use highwater::{
    ArrowBatches, ArrowVerification, CheckpointConfig, CheckpointRequest, CheckpointStore, Error,
    IncrementalCheckpointManager, PartInput, PartKind, StateSnapshot,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

/// Window-buffer rows: timestamps, keys, values with nulls.
fn primitive(start: i64, rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("key", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("late", DataType::Boolean, true),
        Field::new("n", DataType::Int32, true),
    ]));
    let r = start..start + rows as i64;
    batch(
        &schema,
        vec![
            Arc::new(TimestampMillisecondArray::from_iter_values(r.clone())),
            Arc::new(Int64Array::from_iter_values(r.clone().map(|i| i * 7))),
            Arc::new(Float64Array::from_iter(
                r.clone().map(|i| (i % 3 != 0).then_some(i as f64 / 2.0)),
            )),
            Arc::new(BooleanArray::from_iter(
                r.clone().map(|i| (i % 5 != 0).then_some(i % 2 == 0)),
            )),
            Arc::new(Int32Array::from_iter(
                r.map(|i| (i % 4 != 1).then_some(i as i32)),
            )),
        ],
    )
}

fn strings(start: i64, rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("ls", DataType::LargeUtf8, false),
        Field::new("b", DataType::Binary, true),
    ]));
    let r = start..start + rows as i64;
    batch(
        &schema,
        vec![
            Arc::new(StringArray::from_iter(
                r.clone()
                    .map(|i| (i % 3 != 0).then(|| format!("user-{i}-ü"))),
            )),
            Arc::new(LargeStringArray::from_iter_values(
                r.clone().map(|i| "x".repeat(i as usize % 17)),
            )),
            Arc::new(BinaryArray::from_iter(r.map(|i| {
                (i % 4 != 0).then(|| vec![i as u8, 0, 255, (i >> 8) as u8])
            }))),
        ],
    )
}

fn nested(start: i64, rows: usize) -> RecordBatch {
    let item = Arc::new(Field::new("item", DataType::Int32, true));
    let struct_fields = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("list", DataType::List(item.clone()), true),
        Field::new("pair", DataType::Struct(struct_fields.clone()), true),
    ]));
    let r: Vec<i64> = (start..start + rows as i64).collect();
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>(r.iter().map(|&i| {
        (i % 6 != 0).then(|| {
            (0..i % 5)
                .map(|j| (j != 2).then_some((i + j) as i32))
                .collect::<Vec<_>>()
        })
    }));
    let a = Int32Array::from_iter(r.iter().map(|&i| (i % 2 == 0).then_some(i as i32)));
    let b = StringArray::from_iter(r.iter().map(|&i| (i % 3 == 0).then(|| format!("b{i}"))));
    let validity = arrow::buffer::NullBuffer::from_iter(r.iter().map(|&i| i % 7 != 0));
    let pair = StructArray::new(
        struct_fields,
        vec![Arc::new(a) as ArrayRef, Arc::new(b)],
        Some(validity),
    );
    batch(&schema, vec![Arc::new(lists), Arc::new(pair)])
}

fn dictionary(start: i64, rows: usize) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "city",
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        true,
    )]));
    // Each batch builds its own dictionary (as independent builders do): the
    // part must still hold one per file.
    let cities = ["Lyon", "Oslo", "Quito", "Pune", "Accra"];
    let values = StringArray::from_iter_values((0..4).map(|j| cities[(start as usize + j) % 5]));
    let keys = Int32Array::from_iter(
        (start..start + rows as i64).map(|i| (i % 5 != 0).then_some((i % 4) as i32)),
    );
    let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values)).unwrap();
    batch(&schema, vec![Arc::new(dict)])
}

fn manager(dir: &Path) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(CheckpointConfig::new(dir)).unwrap()
}

fn arrow_checkpoint(
    m: &IncrementalCheckpointManager,
    position: u64,
    name: &str,
    input: PartInput<'_>,
) -> highwater::Result<highwater::IncrementalCheckpointMetadata> {
    m.create_checkpoint(
        CheckpointRequest::new(position)
            .with_offsets(HashMap::from([("src".to_string(), position)]))
            .with_part(name, input),
    )
}

fn part_path(dir: &Path, id: u64, name: &str) -> PathBuf {
    let meta = CheckpointStore::new(dir).read_metadata(id).unwrap();
    meta.checkpoint_path(dir)
        .join(&meta.part(name).unwrap().file)
}

type Maker = fn(i64, usize) -> RecordBatch;

#[test]
fn every_schema_round_trips_in_both_verification_modes() {
    let makers: [(&str, Maker); 4] = [
        ("primitive", primitive),
        ("strings", strings),
        ("nested", nested),
        ("dictionary", dictionary),
    ];
    for (name, make) in makers {
        let dir = tempfile::tempdir().unwrap();
        let m = manager(dir.path());
        let batches = vec![make(0, 1000), make(1000, 1), make(1001, 0), make(1001, 333)];
        let schema = batches[0].schema();
        let meta = arrow_checkpoint(
            &m,
            10,
            name,
            PartInput::Arrow(ArrowBatches::new(&schema, &batches)),
        )
        .unwrap();
        let part = meta.part(name).unwrap();
        assert_eq!(part.kind, PartKind::Arrow, "{name}");
        assert_eq!(part.entries, 1334, "{name}");
        assert_eq!(part.file, format!("part-{name}.arrow"));
        for verification in [ArrowVerification::Checksums, ArrowVerification::Structure] {
            let restored = m
                .store()
                .open_arrow_part_verified(meta.id, name, verification)
                .unwrap();
            assert_eq!(restored.schema(), &schema, "{name}");
            assert_eq!(restored.batches(), &batches[..], "{name} {verification:?}");
            assert_eq!(restored.num_rows(), 1334);
        }
        // The file is a plain Arrow IPC file: Arrow's own reader opens it.
        let file = std::fs::File::open(part_path(dir.path(), meta.id, name)).unwrap();
        let reader = arrow::ipc::reader::FileReader::try_new(file, None).unwrap();
        assert_eq!(
            reader
                .custom_metadata()
                .get("highwater.layer")
                .map(String::as_str),
            Some("full")
        );
        let read: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(read, batches, "{name}");
    }
}

#[test]
fn an_empty_part_keeps_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let schema = primitive(0, 1).schema();
    let meta = arrow_checkpoint(
        &m,
        1,
        "empty",
        PartInput::Arrow(ArrowBatches::new(&schema, &[])),
    )
    .unwrap();
    let restored = m.open_arrow_part(meta.id, "empty").unwrap();
    assert_eq!(restored.schema(), &schema);
    assert!(restored.batches().is_empty());
}

/// Every buffer of `data` (nulls, children and dictionary values included).
fn buffers(data: &ArrayData, out: &mut Vec<(usize, usize)>) {
    for b in data.buffers() {
        out.push((b.as_ptr() as usize, b.len()));
    }
    if let Some(nulls) = data.nulls() {
        let b = nulls.buffer();
        out.push((b.as_ptr() as usize, b.len()));
    }
    for child in data.child_data() {
        buffers(child, out);
    }
}

#[test]
fn restored_buffers_point_into_the_mapped_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    // Three schemas, three parts; then a delta of the first.
    let p = primitive(0, 1).schema();
    let base = [primitive(0, 5000), primitive(5000, 100)];
    let nest = [nested(0, 700), nested(700, 300)];
    let dict = [dictionary(0, 900)];
    let meta = m
        .create_checkpoint(
            CheckpointRequest::new(1)
                .with_part("p", PartInput::Arrow(ArrowBatches::new(&p, &base)))
                .with_part(
                    "n",
                    PartInput::Arrow(ArrowBatches::new(&nest[0].schema(), &nest)),
                )
                .with_part(
                    "d",
                    PartInput::Arrow(ArrowBatches::new(&dict[0].schema(), &dict)),
                ),
        )
        .unwrap();
    let appended = [primitive(5100, 77)];
    let delta = arrow_checkpoint(
        &m,
        2,
        "p",
        PartInput::ArrowDelta(ArrowBatches::new(&p, &appended)),
    )
    .unwrap();
    assert_eq!(delta.parent_id, Some(meta.id));
    let mut checked = 0;
    for (id, name) in [
        (delta.id, "p"),
        (delta.id, "n"),
        (delta.id, "d"),
        (meta.id, "p"),
    ] {
        let part = m.open_arrow_part(id, name).unwrap();
        let files = part.files();
        let mut next_file = 0;
        let mut left_in_file = files[0].batches();
        for batch in part.batches() {
            while left_in_file == 0 {
                next_file += 1;
                left_in_file = files[next_file].batches();
            }
            left_in_file -= 1;
            let map = files[next_file].mapped_bytes();
            let range = map.as_ptr() as usize..map.as_ptr() as usize + map.len();
            for column in batch.columns() {
                let mut all = Vec::new();
                buffers(&column.to_data(), &mut all);
                if let Some(d) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
                    buffers(&d.values().to_data(), &mut all);
                }
                for (ptr, len) in all {
                    if len == 0 {
                        continue;
                    }
                    assert!(
                        range.contains(&ptr) && ptr + len <= range.end,
                        "{name}: a buffer of {len} bytes at {ptr:#x} is outside the mapping {range:x?}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} buffers checked");
    // And the mapping outlives the part: arrays alone keep it alive.
    let batches = m.open_arrow_part(delta.id, "p").unwrap().into_batches();
    drop(m);
    assert_eq!(batches[2], appended[0]);
}

fn file_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        out.push((entry.clone(), std::fs::read(&entry).unwrap()));
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn deltas_append_batches_without_rewriting_and_loading_resolves_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let m =
        IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path()).with_max_retained(10))
            .unwrap();
    let schema = primitive(0, 1).schema();
    let mut expected: Vec<RecordBatch> = vec![primitive(0, 20_000), primitive(20_000, 20_000)];
    let full = arrow_checkpoint(
        &m,
        1,
        "window",
        PartInput::Arrow(ArrowBatches::new(&schema, &expected)),
    )
    .unwrap();
    let full_size = full.part("window").unwrap().size;
    let mut ids = vec![full.id];
    let mut next = 40_000;
    for round in 0..3 {
        let before = file_bytes(dir.path());
        let appended = vec![primitive(next, 100 + round), primitive(next + 500, 3)];
        next += 1000;
        let meta = arrow_checkpoint(
            &m,
            2 + round as u64,
            "window",
            PartInput::ArrowDelta(ArrowBatches::new(&schema, &appended)),
        )
        .unwrap();
        assert!(meta.is_delta());
        let part = meta.part("window").unwrap();
        assert_eq!(part.kind, PartKind::ArrowDelta);
        assert_eq!(part.entries, 103 + round as u64);
        assert!(
            part.size * 20 < full_size,
            "a delta of {} bytes is not proportional to its rows",
            part.size
        );
        // Nothing written before changed.
        for (path, bytes) in before {
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bytes,
                "{} was rewritten",
                path.display()
            );
        }
        expected.extend(appended);
        ids.push(meta.id);
        let restored = m.open_arrow_part(meta.id, "window").unwrap();
        assert_eq!(restored.batches(), &expected[..]);
        assert_eq!(restored.files().len(), round + 2);
    }
    // Every checkpoint of the chain still restores its own prefix.
    let store = CheckpointStore::new(dir.path());
    let mut rows = 40_000u64;
    for (at, id) in ids.iter().enumerate() {
        if at > 0 {
            rows += 103 + at as u64 - 1;
        }
        assert_eq!(
            store.open_arrow_part(*id, "window").unwrap().num_rows(),
            rows
        );
    }
    assert_eq!(
        store.find_latest().unwrap().metadata.unwrap().id,
        *ids.last().unwrap()
    );
}

#[test]
fn a_full_checkpoint_at_the_chain_limit_holds_the_whole_part() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path()).with_max_delta_chain(1),
    )
    .unwrap();
    let schema = primitive(0, 1).schema();
    let kv = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
    let base = [primitive(0, 10)];
    m.create_checkpoint(
        CheckpointRequest::new(1)
            .with_part(
                "window",
                PartInput::Arrow(ArrowBatches::new(&schema, &base)),
            )
            .with_part("counts", PartInput::Snapshot(&kv)),
    )
    .unwrap();
    let one = [primitive(10, 5)];
    let d1 = arrow_checkpoint(
        &m,
        2,
        "window",
        PartInput::ArrowDelta(ArrowBatches::new(&schema, &one)),
    )
    .unwrap();
    assert!(d1.is_delta());
    // The chain is full: this one is written whole, the KV part carried over.
    let two = [primitive(15, 7)];
    let f2 = arrow_checkpoint(
        &m,
        3,
        "window",
        PartInput::ArrowDelta(ArrowBatches::new(&schema, &two)),
    )
    .unwrap();
    assert!(!f2.is_delta());
    let part = f2.part("window").unwrap();
    assert_eq!((part.kind, part.entries), (PartKind::Arrow, 22));
    let restored = m.open_arrow_part(f2.id, "window").unwrap();
    assert_eq!(restored.files().len(), 1);
    assert_eq!(
        restored.batches(),
        &[base[0].clone(), one[0].clone(), two[0].clone()]
    );
    assert_eq!(m.load_snapshot(f2.id, "counts").unwrap(), kv);
    // A KV delta over it carries the Arrow part over unchanged.
    let kv_delta = highwater::StateDelta::from_changes(vec![(b"k".to_vec(), None)]);
    let d3 = m
        .create_checkpoint(
            CheckpointRequest::new(4).with_part("counts", PartInput::Delta(&kv_delta)),
        )
        .unwrap();
    assert!(d3.is_delta() && d3.part("window").is_none());
    assert_eq!(
        m.open_arrow_part(d3.id, "window").unwrap().batches(),
        restored.batches()
    );
}

#[test]
fn an_arrow_delta_for_a_new_part_is_written_whole_and_a_schema_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let p = primitive(0, 1).schema();
    let base = [primitive(0, 10)];
    arrow_checkpoint(&m, 1, "a", PartInput::Arrow(ArrowBatches::new(&p, &base))).unwrap();
    let s = strings(0, 1).schema();
    let other = [strings(0, 4)];
    let meta = arrow_checkpoint(
        &m,
        2,
        "b",
        PartInput::ArrowDelta(ArrowBatches::new(&s, &other)),
    )
    .unwrap();
    assert!(meta.is_delta());
    assert_eq!(meta.part("b").unwrap().kind, PartKind::Arrow);
    assert_eq!(m.open_arrow_part(meta.id, "b").unwrap().batches(), &other);
    assert_eq!(m.open_arrow_part(meta.id, "a").unwrap().batches(), &base);

    // Batches of another schema cannot be appended to "a".
    let err = arrow_checkpoint(
        &m,
        3,
        "a",
        PartInput::ArrowDelta(ArrowBatches::new(&s, &other)),
    )
    .unwrap_err();
    assert!(matches!(err, Error::ArrowSchemaMismatch { .. }), "{err}");
    // Nor can a batch disagree with the schema it is given with.
    let err =
        arrow_checkpoint(&m, 3, "c", PartInput::Arrow(ArrowBatches::new(&p, &other))).unwrap_err();
    assert!(matches!(err, Error::ArrowSchemaMismatch { .. }), "{err}");
    assert_eq!(
        CheckpointStore::new(dir.path())
            .checkpoint_ids()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn arrow_parts_are_never_read_as_key_value_state() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let p = primitive(0, 1).schema();
    let base = [primitive(0, 10)];
    let kv = StateSnapshot::new(vec![(b"k".to_vec(), b"v".to_vec())]);
    let meta = m
        .create_checkpoint(
            CheckpointRequest::new(0)
                .with_part("window", PartInput::Arrow(ArrowBatches::new(&p, &base)))
                .with_part("counts", PartInput::Snapshot(&kv)),
        )
        .unwrap();
    let store = m.store();
    // The key/value part is the default one, whatever the Arrow parts.
    assert_eq!(
        store.default_part(meta.id).unwrap().as_deref(),
        Some("counts")
    );
    assert!(matches!(
        store.load_snapshot(meta.id, "window"),
        Err(Error::WrongStateKind { .. })
    ));
    assert!(matches!(
        store.open_state_view(meta.id, "window"),
        Err(Error::WrongStateKind { .. })
    ));
    assert!(matches!(
        store.load_blob(meta.id, "window"),
        Err(Error::WrongStateKind { .. })
    ));
    assert!(matches!(
        store.open_arrow_part(meta.id, "counts"),
        Err(Error::WrongStateKind { .. })
    ));
    let recovered =
        highwater::RecoveryManager::recover_simple(dir.path(), dir.path().join("wal")).unwrap();
    assert_eq!(recovered.state_snapshot.unwrap(), kv);
}

/// Replaces part `name` of checkpoint `id` with `bytes` and reseals
/// `metadata.json` (size, CRC32C and, if given, rows) so that only the
/// structure checks stand between the damage and the caller.
fn reseal(dir: &Path, id: u64, name: &str, bytes: &[u8], rows: Option<u64>) {
    let meta_path = CheckpointStore::new(dir)
        .checkpoint_path(id)
        .join("metadata.json");
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let mut body = envelope["body"].clone();
    let parts = body["parts"].as_array_mut().unwrap();
    let part = parts.iter_mut().find(|p| p["name"] == name).unwrap();
    std::fs::write(
        dir.join(format!("checkpoint-{id:020}"))
            .join(part["file"].as_str().unwrap()),
        bytes,
    )
    .unwrap();
    part["size"] = (bytes.len() as u64).into();
    part["crc32c"] = crc32c::crc32c(bytes).into();
    if let Some(rows) = rows {
        part["entries"] = rows.into();
    }
    let body = serde_json::to_string_pretty(&body).unwrap();
    let text = format!(
        "{{\"format\":\"highwater-checkpoint\",\"version\":1,\"body_crc32c\":{},\"body\":{body}}}",
        crc32c::crc32c(body.as_bytes())
    );
    std::fs::write(meta_path, text).unwrap();
}

/// A checkpoint with one small Arrow part of several kinds of columns: a list,
/// a struct with nulls and a dictionary.
fn small_part(dir: &Path) -> (u64, Vec<u8>, RecordBatch) {
    let m = manager(dir);
    let (n, d) = (nested(0, 9), dictionary(0, 9));
    let fields: Vec<_> = n
        .schema()
        .fields()
        .iter()
        .chain(d.schema().fields())
        .cloned()
        .collect();
    let columns = n.columns().iter().chain(d.columns()).cloned().collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let meta = arrow_checkpoint(
        &m,
        0,
        "w",
        PartInput::Arrow(ArrowBatches::new(
            &batch.schema(),
            std::slice::from_ref(&batch),
        )),
    )
    .unwrap();
    let bytes = std::fs::read(part_path(dir, meta.id, "w")).unwrap();
    (meta.id, bytes, batch)
}

#[test]
fn any_flipped_byte_is_caught_by_the_checksum_and_a_damaged_checkpoint_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path());
    let schema = primitive(0, 1).schema();
    let good = [primitive(0, 300)];
    let older = arrow_checkpoint(
        &m,
        0,
        "w",
        PartInput::Arrow(ArrowBatches::new(&schema, &good)),
    )
    .unwrap();
    let newer = arrow_checkpoint(
        &m,
        0,
        "w",
        PartInput::Arrow(ArrowBatches::new(&schema, &good)),
    )
    .unwrap();
    let path = part_path(dir.path(), newer.id, "w");
    let original = std::fs::read(&path).unwrap();
    let store = CheckpointStore::new(dir.path());
    for offset in (0..original.len()).step_by(7).chain([original.len() - 1]) {
        let mut bytes = original.clone();
        bytes[offset] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let err = store
            .open_arrow_part_verified(newer.id, "w", ArrowVerification::Checksums)
            .unwrap_err();
        match &err {
            Error::CheckpointFileMismatch {
                path: p,
                expected_crc,
                actual_crc,
                ..
            } => {
                assert_eq!(p, &path);
                assert_ne!(expected_crc, actual_crc);
            }
            other => panic!("offset {offset}: {other}"),
        }
        assert!(store.verify_checkpoint(newer.id).is_err());
        let latest = store.find_latest().unwrap();
        assert_eq!(latest.metadata.unwrap().id, older.id, "offset {offset}");
        assert_eq!(latest.rejected[0].id, newer.id);
    }
    // Truncated or extended: the size says so before anything is read (the
    // chain check refuses the checkpoint; verification names the file).
    for len in [
        0,
        8,
        original.len() / 2,
        original.len() - 1,
        original.len() + 64,
    ] {
        let mut bytes = original.clone();
        bytes.resize(len, 0);
        std::fs::write(&path, &bytes).unwrap();
        for verification in [ArrowVerification::Checksums, ArrowVerification::Structure] {
            let err = store
                .open_arrow_part_verified(newer.id, "w", verification)
                .unwrap_err();
            assert!(
                matches!(err, Error::CheckpointNotFound { id, .. } if id == newer.id),
                "{len}: {err}"
            );
        }
        let err = store.verify_checkpoint(newer.id).unwrap_err();
        assert!(
            matches!(&err, Error::CheckpointFileMismatch { actual_size, path: p, .. } if *actual_size == len as u64 && p == &path),
            "{len}: {err}"
        );
    }
}

#[test]
fn structure_checks_name_file_and_offset_and_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (id, original, batch) = small_part(dir.path());
    let path = part_path(dir.path(), id, "w");
    let rows = batch.num_rows() as u64;
    // A new store each time: a store trusts metadata it has read once.
    let open = |verification| {
        CheckpointStore::new(dir.path()).open_arrow_part_verified(id, "w", verification)
    };

    // Truncated files whose metadata agrees: the magic or footer is missing.
    for len in [
        0,
        7,
        9,
        20,
        original.len() / 2,
        original.len() - 11,
        original.len() - 1,
    ] {
        reseal(dir.path(), id, "w", &original[..len], None);
        let err = open(ArrowVerification::Checksums).unwrap_err();
        assert!(
            matches!(&err, Error::ArrowCorrupted { path: p, .. } if p == &path),
            "{len}: {err}"
        );
    }
    // A footer length pointing outside the file.
    let mut bytes = original.clone();
    let at = bytes.len() - 10;
    bytes[at..at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    reseal(dir.path(), id, "w", &bytes, None);
    let err = open(ArrowVerification::Checksums).unwrap_err();
    assert_eq!(err.offset(), Some(at as u64), "{err}");
    assert!(err.to_string().contains("footer length"), "{err}");

    // A delta file listed as a full part: the footer's layer says otherwise.
    let layer_at = original
        .windows(4)
        .rposition(|w| w == b"full")
        .expect("layer value in the footer");
    let mut bytes = original.clone();
    bytes[layer_at..layer_at + 4].copy_from_slice(b"dlta");
    reseal(dir.path(), id, "w", &bytes, None);
    let err = open(ArrowVerification::Checksums).unwrap_err();
    assert!(err.to_string().contains("highwater.layer"), "{err}");
    assert!(err.is_corruption());

    // Rows that disagree with the metadata.
    reseal(dir.path(), id, "w", &original, Some(rows + 1));
    let err = open(ArrowVerification::Structure).unwrap_err();
    assert!(err.to_string().contains("rows"), "{err}");
    reseal(dir.path(), id, "w", &original, Some(rows));
    assert_eq!(
        open(ArrowVerification::Checksums).unwrap().batches(),
        std::slice::from_ref(&batch)
    );

    // Every single flipped byte, resealed so the checksum passes: a typed
    // error naming the file, or arrays that passed Arrow's validation; never
    // a panic reaching the caller. (Arrow's decoder asserts on a few damaged
    // buffer lengths; the guard turns those into `ArrowCorrupted` and they
    // are counted apart: docs/FORMAT.md §5.)
    let (mut ok, mut caught, mut arrow_panics) = (0, 0, 0);
    for offset in 0..original.len() {
        for flip in [0x01u8, 0x80] {
            let mut bytes = original.clone();
            bytes[offset] ^= flip;
            reseal(dir.path(), id, "w", &bytes, None);
            match open(ArrowVerification::Structure) {
                Ok(part) => {
                    for b in part.batches() {
                        for c in b.columns() {
                            c.to_data().validate_full().unwrap();
                        }
                    }
                    ok += 1;
                }
                Err(Error::ArrowCorrupted {
                    path: p, reason, ..
                }) => {
                    assert_eq!(p, path);
                    if reason.contains("Arrow panicked") {
                        arrow_panics += 1;
                    }
                    caught += 1;
                }
                Err(other) => panic!("offset {offset}: unexpected {other}"),
            }
        }
    }
    assert!(caught > original.len() / 4, "{caught} caught, {ok} decoded");
    // Our own checks, not the guard, must catch nearly everything.
    assert!(
        arrow_panics * 100 < caught,
        "{arrow_panics} of {caught} caught only as Arrow panics"
    );
}

#[test]
fn verification_of_the_directory_reports_damaged_arrow_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (id, original, _) = small_part(dir.path());
    let store = CheckpointStore::new(dir.path());
    assert!(store.verify_checkpoint(id).is_ok());
    let mut bytes = original.clone();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    reseal(dir.path(), id, "w", &bytes, None);
    let report = store.verify_all(&mut |_| {}).unwrap();
    assert_eq!(report.len(), 1);
    assert!(!report[0].is_restorable());
    assert!(
        matches!(report[0].problems[0], Error::ArrowCorrupted { .. }),
        "{}",
        report[0].problems[0]
    );
    assert!(store.find_latest().unwrap().metadata.is_none());
}

/// A manager over `/ckpt` of a simulated machine.
fn sim_manager(
    sim: &highwater::storage::CrashSimStorage,
) -> highwater::Result<IncrementalCheckpointManager> {
    IncrementalCheckpointManager::new(
        CheckpointConfig::new("/ckpt").with_storage(Arc::new(sim.clone())),
    )
}

#[test]
fn a_crash_at_any_operation_of_an_arrow_delta_leaves_the_old_part_or_the_new_one() {
    use highwater::storage::{CrashImage, CrashSimStorage};
    let schema = primitive(0, 1).schema();
    let base = [primitive(0, 200), primitive(200, 50)];
    let appended = [primitive(250, 30)];
    let setup = |sim: &CrashSimStorage| {
        let m = sim_manager(sim).unwrap();
        arrow_checkpoint(
            &m,
            0,
            "w",
            PartInput::Arrow(ArrowBatches::new(&schema, &base)),
        )
        .unwrap();
        m
    };
    let delta = |m: &IncrementalCheckpointManager| {
        arrow_checkpoint(
            m,
            0,
            "w",
            PartInput::ArrowDelta(ArrowBatches::new(&schema, &appended)),
        )
    };
    // The operations of a clean delta checkpoint.
    let clean = CrashSimStorage::new();
    let m = setup(&clean);
    let first = clean.operations();
    delta(&m).unwrap();
    let last = clean.operations();
    assert!(last > first + 4, "{first}..{last}");
    let with_delta: Vec<RecordBatch> = base.iter().chain(&appended).cloned().collect();
    let mut outcomes = [0usize; 2];
    for n in first..=last {
        for image in [
            CrashImage::LoseUnsynced,
            CrashImage::KeepUnsynced,
            CrashImage::Torn { seed: n },
        ] {
            let sim = CrashSimStorage::new();
            let m = setup(&sim);
            sim.crash_at(n);
            let acknowledged = delta(&m).is_ok();
            drop(m);
            let after = sim.image(image);
            let m = sim_manager(&after).unwrap();
            let latest = m
                .find_latest_checkpoint()
                .unwrap()
                .expect("a checkpoint survives");
            let restored = m.open_arrow_part(latest.id, "w").unwrap();
            if restored.batches() == &with_delta[..] {
                outcomes[1] += 1;
            } else {
                assert!(
                    !acknowledged,
                    "crash at {n} ({image:?}) lost an acknowledged delta"
                );
                assert_eq!(restored.batches(), &base[..], "crash at {n} ({image:?})");
                outcomes[0] += 1;
            }
            // The job goes on: a new delta lands on whatever survived.
            let more = [primitive(900, 3)];
            let next = arrow_checkpoint(
                &m,
                0,
                "w",
                PartInput::ArrowDelta(ArrowBatches::new(&schema, &more)),
            )
            .unwrap();
            let expected: Vec<RecordBatch> =
                restored.batches().iter().chain(&more).cloned().collect();
            assert_eq!(
                m.open_arrow_part(next.id, "w").unwrap().batches(),
                &expected[..]
            );
        }
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn dictionaries_that_differ_between_batches_and_files_round_trip_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(
        CheckpointConfig::new(dir.path()).with_max_delta_chain(1),
    )
    .unwrap();
    let schema = dictionary(0, 1).schema();
    let base = [dictionary(0, 10), dictionary(1, 7), dictionary(3, 5)];
    let one = [dictionary(2, 4)];
    let two = [dictionary(4, 6), dictionary(0, 2)];
    let mut expected: Vec<RecordBatch> = base.to_vec();
    arrow_checkpoint(
        &m,
        0,
        "d",
        PartInput::Arrow(ArrowBatches::new(&schema, &base)),
    )
    .unwrap();
    let d1 = arrow_checkpoint(
        &m,
        0,
        "d",
        PartInput::ArrowDelta(ArrowBatches::new(&schema, &one)),
    )
    .unwrap();
    assert!(d1.is_delta());
    expected.extend(one.iter().cloned());
    assert_eq!(
        m.open_arrow_part(d1.id, "d").unwrap().batches(),
        &expected[..]
    );
    // The chain limit merges three files with different dictionaries into one.
    let f2 = arrow_checkpoint(
        &m,
        0,
        "d",
        PartInput::ArrowDelta(ArrowBatches::new(&schema, &two)),
    )
    .unwrap();
    assert!(!f2.is_delta());
    expected.extend(two.iter().cloned());
    let restored = m.open_arrow_part(f2.id, "d").unwrap();
    assert_eq!(restored.batches(), &expected[..]);
    // One dictionary in the file, shared by every batch, pointing into the map.
    let map = restored.files()[0].mapped_bytes();
    let range = map.as_ptr() as usize..map.as_ptr() as usize + map.len();
    let values: Vec<usize> = restored
        .batches()
        .iter()
        .map(|b| {
            let d = b
                .column(0)
                .as_any()
                .downcast_ref::<DictionaryArray<Int32Type>>()
                .unwrap();
            let v = d.values().to_data();
            v.buffers()[1].as_ptr() as usize
        })
        .collect();
    assert!(values.iter().all(|v| *v == values[0] && range.contains(v)));
    // Arrow's own reader opens the merged file.
    let file = std::fs::File::open(part_path(dir.path(), f2.id, "d")).unwrap();
    let read: Vec<RecordBatch> = arrow::ipc::reader::FileReader::try_new(file, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(read, expected);
}
