//! Checkpoints in object storage (docs/OBJECT_STORAGE.md): the local
//! checkpoint directory is the staging area and the cache; a blob store
//! holds every checkpoint's part files under unique keys and one **commit
//! record** per slot of a commit sequence, created with a conditional
//! create. The create is the publish.
//!
//! Invariants:
//! - A checkpoint is committed exactly when a checkpoint record for it exists
//!   in a slot at or above the floor. Nothing else (uploaded parts, a local
//!   directory) makes it visible to a restore.
//! - One record per slot (the conditional create). A writer that finds its
//!   slot taken reads the winner: equal bytes are its own earlier create;
//!   anything else fences it ([`Error::Fenced`](crate::Error::Fenced)) and
//!   it stops for good.
//! - A writer claims a generation (a claim record in the next free slot)
//!   before it restores, and writes its checkpoints into the slots after its
//!   claim, one after another. An older writer's next slot is at most the
//!   claim's, so its next commit collides.
//! - A slot below the floor is dead: a record created there (by a zombie
//!   after garbage collection freed it) is never restored, and its writer
//!   is fenced when it checks the floor after its create.
//! - A restore uses only committed checkpoints: local directories the
//!   sequence does not commit (a publish that crashed before its record) are
//!   removed from the cache, and a local copy is used only when its metadata
//!   is the record's and its files match the record's sizes and CRC32Cs.
//!
//! Decisions (which slot, whose record, what to collect) are pure functions
//! over what was listed and read; I/O stays in `sequence`, `transfer`,
//! `cache` and `gc`.

pub(crate) mod cache;
mod config;
pub(crate) mod gc;
mod gc_hook;
pub(crate) mod gc_run;
mod inspect;
pub(crate) mod layout;
mod progress;
pub(crate) mod record;
mod report;
pub(crate) mod retry;
pub(crate) mod sequence;
pub(crate) mod transfer;
pub(crate) mod view;
pub(crate) mod writer;

pub use config::{
    RemoteConfig, DEFAULT_CONCURRENCY, DEFAULT_GC_GRACE, DEFAULT_GC_INTERVAL, DEFAULT_PART_BYTES,
};
pub use gc_run::GcReport;
pub use inspect::{mirror_committed, read_commit_sequence, CommitSequence, ListedCommit};
pub use progress::{ProgressCounts, TransferProgress};
pub use record::{
    CommitRecord, CommittedCheckpoint, RecordBody, RemoteFile, SlotRecord, MAX_RECORD_LEN,
};
pub use report::RemoteRestore;
pub use view::{
    RemoteIter, RemoteLayerReport, RemoteStateView, RemoteViewConfig, RemoteViewReport,
    DEFAULT_VIEW_CACHE_BYTES,
};
