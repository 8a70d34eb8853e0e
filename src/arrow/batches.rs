//! [`ArrowBatches`]: the schema and record batches of one Arrow part, as given
//! to a checkpoint.

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;

/// A schema and the record batches of one Arrow part (or of one Arrow delta),
/// borrowed for the duration of a checkpoint.
///
/// Every batch must have exactly `schema` (fields, types, nullability and
/// metadata); the checkpoint refuses others with
/// [`Error::ArrowSchemaMismatch`](crate::Error::ArrowSchemaMismatch). No batch
/// at all is a valid (empty) part.
#[derive(Debug, Clone, Copy)]
pub struct ArrowBatches<'a> {
    schema: &'a Schema,
    batches: &'a [RecordBatch],
}

impl<'a> ArrowBatches<'a> {
    /// `batches`, each of schema `schema`.
    pub fn new(schema: &'a Schema, batches: &'a [RecordBatch]) -> Self {
        ArrowBatches { schema, batches }
    }

    /// The part's schema.
    pub fn schema(&self) -> &'a Schema {
        self.schema
    }

    /// The batches, in order.
    pub fn batches(&self) -> &'a [RecordBatch] {
        self.batches
    }

    /// Rows in all batches.
    pub fn num_rows(&self) -> u64 {
        self.batches
            .iter()
            .fold(0u64, |sum, b| sum.saturating_add(b.num_rows() as u64))
    }

    /// About how many bytes the part's file will take: the bytes of the
    /// batches' rows (only the sliced ranges, not whole shared buffers), plus
    /// metadata.
    pub fn estimated_size(&self) -> u64 {
        let data = self
            .batches
            .iter()
            .flat_map(|b| b.columns())
            .map(|c| {
                let data = c.to_data();
                data.get_slice_memory_size()
                    .unwrap_or_else(|_| c.get_array_memory_size()) as u64
            })
            .fold(0u64, u64::saturating_add);
        // Schema, footer and per-batch metadata.
        data.saturating_add(4096 + 512 * self.batches.len() as u64)
    }
}
