//! The RocksDB peer: the state in a RocksDB instance (default options but no
//! compression, the write-ahead log off for the operator's puts as Flink
//! configures it), an
//! incremental round = puts + flush + checkpoint (hard links to the SST files).

use rocksdb::checkpoint::Checkpoint;
use rocksdb::{DBCompressionType, Options, WriteBatch, WriteOptions, DB};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A RocksDB instance holding the state, with its checkpoints beside it.
pub struct Rocks {
    pub db: DB,
    pub dir: PathBuf,
    pub round: usize,
}

fn no_wal() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.disable_wal(true);
    w
}

impl Rocks {
    /// Loads `pairs` into a new instance under `dir`, flushes, compacts (so
    /// the base is settled), and takes a base checkpoint `cp-0`.
    pub fn new(dir: &Path, pairs: &[(Vec<u8>, Vec<u8>)]) -> Self {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        // highwater's state files are not compressed; with RocksDB's default
        // (Snappy) the workload's values (a repeating alphabet) shrink ~7x
        // and the bytes figure would compare different data.
        opts.set_compression_type(DBCompressionType::None);
        let db = DB::open(&opts, dir.join("db")).expect("rocksdb open");
        for chunk in pairs.chunks(10_000) {
            let mut b = WriteBatch::default();
            for (k, v) in chunk {
                b.put(k, v);
            }
            db.write_opt(b, &no_wal()).expect("write");
        }
        db.flush().expect("flush");
        db.compact_range(None::<&[u8]>, None::<&[u8]>);
        Checkpoint::new(&db)
            .expect("checkpoint")
            .create_checkpoint(dir.join("cp-0"))
            .expect("base checkpoint");
        let r = Rocks {
            db,
            dir: dir.to_path_buf(),
            round: 0,
        };
        r.settle();
        r
    }

    /// The base checkpoint's directory.
    pub fn base_checkpoint(&self) -> PathBuf {
        self.dir.join("cp-0")
    }

    /// One round: `changes` put (one call each, no WAL), flush, checkpoint
    /// into a new directory. Returns (puts, flush, checkpoint) times.
    pub fn round(&mut self, changes: &[(Vec<u8>, Vec<u8>)]) -> (Duration, Duration, Duration) {
        self.round += 1;
        let cp = self.dir.join(format!("cp-{}", self.round));
        let w = no_wal();
        let t0 = Instant::now();
        for (k, v) in changes {
            self.db.put_opt(k, v, &w).expect("put");
        }
        let t1 = Instant::now();
        self.db.flush().expect("flush");
        let t2 = Instant::now();
        Checkpoint::new(&self.db)
            .expect("checkpoint")
            .create_checkpoint(&cp)
            .expect("create_checkpoint");
        let t3 = Instant::now();
        (t1 - t0, t2 - t1, t3 - t2)
    }

    /// Files per level and compaction totals (`rocksdb.levelstats`).
    pub fn level_stats(&self) -> String {
        self.db
            .property_value("rocksdb.levelstats")
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Waits until no compaction is pending or running.
    pub fn settle(&self) {
        loop {
            let pending = self
                .db
                .property_int_value("rocksdb.compaction-pending")
                .ok()
                .flatten()
                .unwrap_or(0);
            let running = self
                .db
                .property_int_value("rocksdb.num-running-compactions")
                .ok()
                .flatten()
                .unwrap_or(0);
            let flushes = self
                .db
                .property_int_value("rocksdb.num-running-flushes")
                .ok()
                .flatten()
                .unwrap_or(0);
            if pending == 0 && running == 0 && flushes == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// RocksDB open of a checkpoint directory + one `get` (read-only open, so
/// the checkpoint is not changed).
pub fn open_get(cp: &Path, probe: &[u8]) -> Duration {
    let opts = Options::default();
    let start = Instant::now();
    let db = DB::open_for_read_only(&opts, cp, false).expect("rocksdb open");
    black_box(db.get(probe).expect("get").map(|v| v.len()));
    let t = start.elapsed();
    drop(db);
    t
}
