//! Columnar operator state: Arrow record batches inside checkpoints, restored
//! zero-copy from memory maps, and Arrow exports of key/value state and WAL
//! ranges for inspection with Arrow tools.
//!
//! - [`ArrowBatches`]: a schema and record batches given to a checkpoint as
//!   [`PartInput::Arrow`](crate::PartInput::Arrow) (the whole part) or
//!   [`PartInput::ArrowDelta`](crate::PartInput::ArrowDelta) (batches appended
//!   since the parent checkpoint).
//! - [`ArrowPart`]: a part restored by
//!   [`CheckpointStore::open_arrow_part`](crate::CheckpointStore::open_arrow_part),
//!   its delta chain resolved, its arrays pointing into the mapped files.
//! - [`KvBatchBuilder`] and [`WalBatchBuilder`]: key/value state and log
//!   entries as record batches; [`IpcFileExport`] writes batches to an Arrow IPC
//!   file atomically.
//!
//! File layout and reading rules: `docs/FORMAT.md` §5. Invariants:
//! - an Arrow part file is a plain Arrow IPC file (every Arrow tool opens it)
//!   whose footer names it as a highwater part of a given layer (full or delta);
//! - every block and every buffer of a file highwater writes is 64-byte
//!   aligned, and a reader refuses a buffer that is not aligned for its type
//!   instead of copying it: a restored array never silently stops pointing
//!   into the mapping;
//! - a file holds one dictionary per dictionary-encoded column (batches'
//!   dictionaries are merged when written), so dictionary values are mapped,
//!   not rebuilt;
//! - with [`ArrowVerification::Checksums`] no byte of a file is interpreted
//!   before the whole file's CRC32C matched its metadata; in every mode, block
//!   and buffer bounds are checked before Arrow slices anything and every array
//!   passes Arrow's full validation, so a damaged file gives
//!   [`Error::ArrowCorrupted`](crate::Error::ArrowCorrupted); a panic of
//!   Arrow's decoder on damage that passes these checks is caught and reported
//!   the same way (it cannot be under `panic = "abort"`: checksums first there);
//! - a chain's files all carry the same schema; a delta never rewrites the
//!   files it builds on.

mod batches;
mod kv_export;
mod part;
mod read;
mod wal_export;
mod write;

pub use batches::ArrowBatches;
pub use kv_export::{kv_schema, KvBatchBuilder};
pub use part::{ArrowPart, ArrowPartFile, ArrowVerification};
pub use wal_export::{wal_schema, WalBatchBuilder};
pub use write::{ExportSummary, IpcFileExport};

pub(crate) use read::read_schema;
pub(crate) use read::{decode_part_file, DecodedFile};
pub(crate) use write::{check_schema, write_part_file, Layer};
