//! Key/value state as Arrow record batches: a `key` and a `value` column, both
//! `LargeBinary`, so state can be queried with Arrow tools.
//!
//! Invariant: a batch never fails or panics for lack of offset space (64-bit
//! offsets), and rows keep the order they were appended in.

use crate::error::{Error, Result};
use crate::state::{StateDelta, StateSnapshot};
use arrow::array::{ArrayRef, LargeBinaryBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use std::sync::Arc;

/// The schema of exported key/value state: `key: LargeBinary` (not null) and
/// `value: LargeBinary` (null for a key a delta deletes).
pub fn kv_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::LargeBinary, false),
        Field::new("value", DataType::LargeBinary, true),
    ]))
}

/// Builds record batches of [`kv_schema`] row by row.
///
/// ```
/// use highwater::arrow::KvBatchBuilder;
/// use highwater::StateSnapshot;
/// # fn main() -> highwater::Result<()> {
/// let state = StateSnapshot::new(vec![(b"a".to_vec(), b"1".to_vec())]);
/// let batch = KvBatchBuilder::from_snapshot(&state)?;
/// assert_eq!(batch.num_rows(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct KvBatchBuilder {
    keys: LargeBinaryBuilder,
    values: LargeBinaryBuilder,
    rows: usize,
    bytes: usize,
}

impl KvBatchBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a row: `value` is `None` for a deleted key.
    pub fn append(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.keys.append_value(key);
        self.values.append_option(value);
        self.rows += 1;
        self.bytes += key.len() + value.map_or(0, <[u8]>::len);
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row was appended since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Key and value bytes appended since the last `finish` (to cut batches at
    /// a size).
    pub fn data_bytes(&self) -> usize {
        self.bytes
    }

    /// The rows appended so far as a batch; the builder starts empty again.
    ///
    /// # Errors
    /// `InvalidArgument` if Arrow refuses the columns (it does not for rows
    /// appended here).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> =
            vec![Arc::new(self.keys.finish()), Arc::new(self.values.finish())];
        self.rows = 0;
        self.bytes = 0;
        RecordBatch::try_new(kv_schema(), columns).map_err(|e| {
            Error::invalid_argument("export key/value state", format!("key/value batch: {e}"))
        })
    }

    /// A full state as one batch, in key order.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn from_snapshot(state: &StateSnapshot) -> Result<RecordBatch> {
        let mut b = Self::new();
        for (key, value) in state.iter() {
            b.append(key, Some(value));
        }
        b.finish()
    }

    /// A delta as one batch: its puts with their values in key order, then
    /// its deletes with null values in key order.
    ///
    /// # Errors
    /// As [`finish`](Self::finish).
    pub fn from_delta(delta: &StateDelta) -> Result<RecordBatch> {
        let mut b = Self::new();
        for (key, value) in delta.puts() {
            b.append(key, Some(value));
        }
        for key in delta.deletes() {
            b.append(key, None);
        }
        b.finish()
    }
}
