//! Keyed operator state: full snapshots, deltas, and a zero-copy view of either
//! read in place from a file.
//!
//! - [`StateSnapshot`]: a full state, unique keys in bytewise order.
//! - [`StateDelta`]: keys put and deleted since a parent state.
//! - [`StateFileView`]: a snapshot or delta file opened through a memory map,
//!   answering look-ups and iteration without deserialising.
//! - [`TrackedState`]: a map that records which keys changed since the last
//!   checkpoint, so an operator gets its delta for free; [`FrozenChanges`] are
//!   those changes frozen for a checkpoint written on another thread.
//!
//! All three persistent forms share one file format (`docs/FORMAT.md` §2): a
//! checksummed header, an rkyv archive of sorted key and value columns, and a CRC32C
//! per 64 KiB block. Invariants kept by every reader here:
//! - no archived byte is interpreted (not even by bytecheck) before the CRCs of the
//!   blocks holding it matched;
//! - a damaged or truncated file yields a typed error naming the file and the
//!   offset, never a panic and never an allocation sized by an unverified length.

mod archive_writer;
mod codec;
pub(crate) mod column_map;
pub(crate) mod columns;
mod crc_shift;
mod delta;
mod file_writer;
pub(crate) mod format;
mod shared;
mod snapshot;
mod snapshot_repr;
mod tracked;
mod view;
mod view_bytes;

pub use codec::StateBytes;
pub use delta::StateDelta;
pub use format::StateKind;
pub use snapshot::{SnapshotIter, StateSnapshot};
pub use tracked::{FreezeId, FrozenChanges, TrackedState};
pub use view::{Lookup, StateFileView, ViewIter};

pub(crate) use codec::{
    decode_blob, encoded_file_crc, expect_kind, header_summary, layout_crc, memory_path,
    verify as verify_state_file, NamedKind,
};
pub(crate) use file_writer::{write_blob, write_columns, Written};
pub(crate) use format::is_state_file;
