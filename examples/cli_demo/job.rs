//! The demo job behind docs/CLI.md: a write-ahead log and a checkpoint
//! directory written through the library — three committed transactions, a
//! full and a delta checkpoint, and an uncommitted tail. The CLI tests build
//! their directories with it too.

use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, StateDelta,
    StateSnapshot, SyncPolicy, WalEntry, WalOptions, WriteAheadLog,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the demo job's files are and the log positions that matter.
pub struct DemoJob {
    /// The checkpoint directory.
    pub ckpt: PathBuf,
    /// The write-ahead log directory.
    pub wal: PathBuf,
    /// Log position after the second Commit (the delta checkpoint's).
    pub delta_position: u64,
    /// Log position after the third Commit (where recovery resumes).
    pub committed_end: u64,
}

fn put(k: &[u8], v: &[u8]) -> WalEntry {
    WalEntry::Put {
        key: k.to_vec(),
        value: v.to_vec(),
    }
}

fn commit(offset: u64, watermark: i64) -> WalEntry {
    WalEntry::Commit {
        offsets: offsets(offset),
        watermark: Some(watermark),
    }
}

fn offsets(offset: u64) -> HashMap<String, u64> {
    HashMap::from([("orders-0".to_string(), offset)])
}

/// A key that is not text.
pub const BINARY_KEY: &[u8] = &[0x00, 0xff, 0x10];

/// Writes the demo job under `root` (`root/checkpoints`, `root/wal`).
///
/// # Errors
/// Any library error.
pub fn write_demo_job(root: &Path) -> highwater::Result<DemoJob> {
    let ckpt = root.join("checkpoints");
    let wal_dir = root.join("wal");
    let wal = WriteAheadLog::open(
        &wal_dir,
        WalOptions::new().with_sync_policy(SyncPolicy::Manual),
    )?;
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt))?;

    wal.append(&put(b"user:1", b"alice"))?;
    wal.append(&put(BINARY_KEY, &[1, 2, 3]))?;
    wal.append(&commit(10, 100))?;
    let full = StateSnapshot::new(vec![
        (b"user:1".to_vec(), b"alice".to_vec()),
        (BINARY_KEY.to_vec(), vec![1, 2, 3]),
    ]);
    manager.set_epoch(1);
    manager.create_checkpoint(
        CheckpointRequest::new(wal.position())
            .with_wal(&wal)
            .with_offsets(offsets(10))
            .with_watermark(Some(100))
            .with_part("state", PartInput::Snapshot(&full)),
    )?;

    wal.append(&put(b"user:2", b"bob"))?;
    wal.append(&WalEntry::Delete {
        key: b"user:1".to_vec(),
    })?;
    wal.append(&commit(20, 200))?;
    let delta = StateDelta::from_changes(vec![
        (b"user:2".to_vec(), Some(b"bob".to_vec())),
        (b"user:1".to_vec(), None),
    ]);
    let delta_position = wal.position();
    manager.set_epoch(2);
    manager.create_checkpoint(
        CheckpointRequest::new(delta_position)
            .with_wal(&wal)
            .with_offsets(offsets(20))
            .with_watermark(Some(200))
            .with_part("state", PartInput::Delta(&delta)),
    )?;

    wal.append(&put(b"user:3", b"carol"))?;
    wal.append(&commit(30, 300))?;
    let committed_end = wal.position();
    wal.append(&put(b"user:4", b"dave"))?;
    wal.sync()?;
    wal.close()?;
    Ok(DemoJob {
        ckpt,
        wal: wal_dir,
        delta_position,
        committed_end,
    })
}
