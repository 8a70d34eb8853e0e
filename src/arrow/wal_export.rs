//! Write-ahead log entries as Arrow record batches, one row per entry, so a
//! log range can be queried with Arrow tools.
//!
//! Invariant: every entry type maps to one row; a column the type does not
//! have is null, never a made-up value.

use crate::error::{Error, Result};
use crate::wal::WalEntryRef;
use crate::WalEntry;
use arrow::array::{
    ArrayRef, Int64Builder, LargeBinaryBuilder, MapBuilder, MapFieldNames, PrimitiveBuilder,
    StringBuilder, UInt64Builder,
};
use arrow::datatypes::ArrowPrimitiveType;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

fn map_type(value: DataType) -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("keys", DataType::Utf8, false),
            Field::new("values", value, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// The schema of exported log entries: `position: UInt64`, `type: Utf8`
/// (`put`, `delete`, `commit`, `checkpoint`, `watermarks`), `key` and `value:
/// LargeBinary`, `offsets: Map<Utf8, UInt64>` and `watermark: Int64` (commits),
/// `checkpoint_id: UInt64` (checkpoint markers), `watermarks: Map<Utf8, Int64>`
/// (per-partition watermarks). Columns an entry type does not have are null.
pub fn wal_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("position", DataType::UInt64, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("key", DataType::LargeBinary, true),
        Field::new("value", DataType::LargeBinary, true),
        Field::new("offsets", map_type(DataType::UInt64), true),
        Field::new("watermark", DataType::Int64, true),
        Field::new("checkpoint_id", DataType::UInt64, true),
        Field::new("watermarks", map_type(DataType::Int64), true),
    ]))
}

fn names() -> Option<MapFieldNames> {
    Some(MapFieldNames {
        entry: "entries".into(),
        key: "keys".into(),
        value: "values".into(),
    })
}

/// Builds record batches of [`wal_schema`] entry by entry (from
/// [`WalReader::read_next_ref`](crate::WalReader::read_next_ref), or from
/// owned entries with [`append_entry`](Self::append_entry)).
#[derive(Debug)]
pub struct WalBatchBuilder {
    position: UInt64Builder,
    kind: StringBuilder,
    key: LargeBinaryBuilder,
    value: LargeBinaryBuilder,
    offsets: MapBuilder<StringBuilder, UInt64Builder>,
    watermark: Int64Builder,
    checkpoint_id: UInt64Builder,
    watermarks: MapBuilder<StringBuilder, Int64Builder>,
    rows: usize,
    bytes: usize,
}

impl Default for WalBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl WalBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        WalBatchBuilder {
            position: UInt64Builder::new(),
            kind: StringBuilder::new(),
            key: LargeBinaryBuilder::new(),
            value: LargeBinaryBuilder::new(),
            offsets: MapBuilder::new(names(), StringBuilder::new(), UInt64Builder::new()),
            watermark: Int64Builder::new(),
            checkpoint_id: UInt64Builder::new(),
            watermarks: MapBuilder::new(names(), StringBuilder::new(), Int64Builder::new()),
            rows: 0,
            bytes: 0,
        }
    }

    /// Appends the entry at `position`, as read in place.
    pub fn append(&mut self, position: u64, entry: &WalEntryRef<'_>) {
        match entry {
            WalEntryRef::Put { key, value } => {
                self.row(position, "put", Some(key), Some(value), Row::default())
            }
            WalEntryRef::Delete { key } => {
                self.row(position, "delete", Some(key), None, Row::default())
            }
            WalEntryRef::Owned(owned) => self.append_entry(position, owned),
        }
    }

    /// Appends the owned entry at `position`.
    pub fn append_entry(&mut self, position: u64, entry: &WalEntry) {
        let none = Row::default();
        match entry {
            WalEntry::Put { key, value } => self.row(position, "put", Some(key), Some(value), none),
            WalEntry::Delete { key } => self.row(position, "delete", Some(key), None, none),
            WalEntry::Commit { offsets, watermark } => {
                let row = Row {
                    offsets: Some(offsets),
                    watermark: *watermark,
                    ..none
                };
                self.row(position, "commit", None, None, row)
            }
            WalEntry::Checkpoint { id } => {
                let row = Row {
                    checkpoint_id: Some(*id),
                    ..none
                };
                self.row(position, "checkpoint", None, None, row)
            }
            WalEntry::Watermarks { watermarks } => {
                let row = Row {
                    watermarks: Some(watermarks),
                    ..none
                };
                self.row(position, "watermarks", None, None, row)
            }
        }
    }

    /// Appends one row; every column gets a value or a null.
    fn row(
        &mut self,
        position: u64,
        kind: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        rest: Row<'_>,
    ) {
        self.position.append_value(position);
        self.kind.append_value(kind);
        self.key.append_option(key);
        self.value.append_option(value);
        append_map(&mut self.offsets, rest.offsets);
        self.watermark.append_option(rest.watermark);
        self.checkpoint_id.append_option(rest.checkpoint_id);
        append_map(&mut self.watermarks, rest.watermarks);
        self.rows += 1;
        self.bytes += key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
    }

    /// Entries appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no entry was appended since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Key and value bytes appended since the last `finish` (to cut batches at
    /// a size).
    pub fn data_bytes(&self) -> usize {
        self.bytes
    }

    /// The entries appended so far as a batch; the builder starts empty again.
    ///
    /// # Errors
    /// `InvalidArgument` if Arrow refuses the columns (it does not for entries
    /// appended here).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.position.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.offsets.finish()),
            Arc::new(self.watermark.finish()),
            Arc::new(self.checkpoint_id.finish()),
            Arc::new(self.watermarks.finish()),
        ];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(wal_schema(), columns).map_err(|e| {
            Error::invalid_argument("export log entries", format!("log entry batch: {e}"))
        })
    }
}

/// The columns only some entry types have.
#[derive(Debug, Clone, Copy, Default)]
struct Row<'a> {
    offsets: Option<&'a HashMap<String, u64>>,
    watermark: Option<i64>,
    checkpoint_id: Option<u64>,
    watermarks: Option<&'a HashMap<String, i64>>,
}

/// Appends a map row (sorted by key, for stable output) or a null.
fn append_map<T: ArrowPrimitiveType>(
    builder: &mut MapBuilder<StringBuilder, PrimitiveBuilder<T>>,
    map: Option<&HashMap<String, T::Native>>,
) {
    if let Some(map) = map {
        for (k, v) in map.iter().collect::<BTreeMap<_, _>>() {
            builder.keys().append_value(k);
            builder.values().append_value(*v);
        }
    }
    // Cannot fail: keys and values are appended in pairs above.
    let _ = builder.append(map.is_some());
}
