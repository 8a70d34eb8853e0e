//! Arrow part benchmarks: checkpoint and restore of 1 GB of record batches,
//! each against a baseline measured in the same run.
//!
//! Two states of about 1 GB each, in batches of 64 Ki rows:
//! - `fixed`: a window buffer of fixed-width columns (`ts` timestamp, `key`
//!   Int64, `value` Float64 with nulls, `count` Int32);
//! - `strings`: the same with a `user` Utf8 column (about 14 bytes a row),
//!   whose offsets and UTF-8 Arrow validates on every read.
//!
//! Measured (criterion groups, and a SUMMARY of ratios from separate timed
//! passes, median of 3, in this same run):
//! - `write`: `create_checkpoint` with the batches as one Arrow part (encode,
//!   write, CRC32C, fsync, metadata, atomic rename, directory fsyncs), into a
//!   fresh directory each time. Baseline `plain_write_fsync`: `write_all` of the
//!   same number of bytes into a new file + `fsync`. Target: checkpoint
//!   throughput >= 0.7x of the baseline.
//! - `restore`: `open_arrow_part_verified` (map + decode every batch in place) with
//!   `ArrowVerification::Checksums` (the default: CRC32C of every byte first)
//!   and `ArrowVerification::Structure`. Baseline `copying_ipc_read`: Arrow's
//!   `FileReader` over a `BufReader<File>` reading every batch of the same
//!   file into memory. Target: restore <= 10% of the baseline. Both read a
//!   file in the page cache (written just before).
//!
//! `-- --test` runs everything once on 16 MB states.

mod common;

use arrow::array::TimestampMillisecondArray;
use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::ipc::reader::FileReader;
use arrow::record_batch::RecordBatch;
use common::{bench_dir, median, ms};
use criterion::Criterion;
use highwater::{
    ArrowBatches, ArrowVerification, CheckpointConfig, CheckpointRequest,
    IncrementalCheckpointManager, PartInput,
};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS_PER_BATCH: usize = 64 * 1024;
const TARGET_BYTES: usize = 1 << 30;
const TEST_BYTES: usize = 16 << 20;
const PART: &str = "window";

/// One state: its batches and their in-memory size.
struct State {
    name: &'static str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

fn fixed_schema(with_user: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("key", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("count", DataType::Int32, false),
    ];
    if with_user {
        fields.push(Field::new("user", DataType::Utf8, false));
    }
    Arc::new(Schema::new(fields))
}

fn make_batch(schema: &SchemaRef, start: i64, with_user: bool) -> RecordBatch {
    let r = start..start + ROWS_PER_BATCH as i64;
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from_iter_values(r.clone())),
        Arc::new(Int64Array::from_iter_values(
            r.clone().map(|i| i.wrapping_mul(0x9e37_79b9)),
        )),
        Arc::new(Float64Array::from_iter(
            r.clone().map(|i| (i % 10 != 0).then_some(i as f64 * 0.5)),
        )),
        Arc::new(Int32Array::from_iter_values(
            r.clone().map(|i| (i % 1000) as i32),
        )),
    ];
    if with_user {
        columns.push(Arc::new(StringArray::from_iter_values(
            r.map(|i| format!("user-{:09}", i % 1_000_000_000)),
        )));
    }
    RecordBatch::try_new(schema.clone(), columns).expect("valid batch")
}

fn state(name: &'static str, with_user: bool, bytes: usize) -> State {
    let schema = fixed_schema(with_user);
    let mut batches = Vec::new();
    let mut total = 0;
    let mut start = 0;
    while total < bytes {
        let b = make_batch(&schema, start, with_user);
        total += b.get_array_memory_size();
        start += ROWS_PER_BATCH as i64;
        batches.push(b);
    }
    State {
        name,
        schema,
        batches,
    }
}

fn manager(dir: &Path) -> IncrementalCheckpointManager {
    IncrementalCheckpointManager::new(CheckpointConfig::new(dir)).expect("manager")
}

/// One checkpoint of `s` into a fresh directory: (time, part file, its size).
fn checkpoint(s: &State) -> (Duration, tempfile::TempDir, u64) {
    let dir = bench_dir();
    let m = manager(dir.path());
    let t = Instant::now();
    let meta = m
        .create_checkpoint(CheckpointRequest::new(0).with_part(
            PART,
            PartInput::Arrow(ArrowBatches::new(&s.schema, &s.batches)),
        ))
        .expect("checkpoint");
    let elapsed = t.elapsed();
    (elapsed, dir, meta.part(PART).expect("part").size)
}

/// Writes `len` bytes into a new file and fsyncs it.
fn plain_write_fsync(len: u64) -> Duration {
    let dir = bench_dir();
    let chunk = vec![0x5au8; 1 << 20];
    let t = Instant::now();
    let mut f = File::create(dir.path().join("plain")).expect("create");
    let mut left = len as usize;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).expect("write");
        left -= n;
    }
    f.sync_all().expect("fsync");
    t.elapsed()
}

/// A checkpoint to restore from, and its part file.
struct Restorable {
    _dir: tempfile::TempDir,
    manager: IncrementalCheckpointManager,
    id: u64,
    file: PathBuf,
    size: u64,
}

fn restorable(s: &State) -> Restorable {
    let dir = bench_dir();
    let manager = manager(dir.path());
    let meta = manager
        .create_checkpoint(CheckpointRequest::new(0).with_part(
            PART,
            PartInput::Arrow(ArrowBatches::new(&s.schema, &s.batches)),
        ))
        .expect("checkpoint");
    let part = meta.part(PART).expect("part");
    Restorable {
        file: meta.checkpoint_path(dir.path()).join(&part.file),
        size: part.size,
        id: meta.id,
        manager,
        _dir: dir,
    }
}

/// Restores the part; returns the time and the rows seen.
fn restore(r: &Restorable, verification: ArrowVerification) -> (Duration, u64) {
    let t = Instant::now();
    let part = r
        .manager
        .store()
        .open_arrow_part_verified(r.id, PART, verification)
        .expect("restore");
    let elapsed = t.elapsed();
    (elapsed, black_box(part.num_rows()))
}

/// Arrow's copying reader over the same file.
fn copying_ipc_read(path: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let reader =
        FileReader::try_new(BufReader::new(File::open(path).expect("open")), None).expect("reader");
    let batches: Vec<RecordBatch> = reader.map(|b| b.expect("batch")).collect();
    let elapsed = t.elapsed();
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    drop(black_box(batches));
    (elapsed, rows)
}

fn criterion_groups(c: &mut Criterion, states: &[State]) {
    for s in states {
        let mut g = c.benchmark_group(format!("arrow_write_{}", s.name));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(20));
        let size = checkpoint(s).2;
        g.bench_function("checkpoint", |b| {
            b.iter_custom(|n| (0..n).map(|_| checkpoint(s).0).sum())
        });
        g.bench_function("plain_write_fsync", |b| {
            b.iter_custom(|n| (0..n).map(|_| plain_write_fsync(size)).sum())
        });
        g.finish();

        let r = restorable(s);
        let mut g = c.benchmark_group(format!("arrow_restore_{}", s.name));
        g.sample_size(10);
        g.bench_function("restore_checksums", |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| restore(&r, ArrowVerification::Checksums).0)
                    .sum()
            })
        });
        g.bench_function("restore_structure", |b| {
            b.iter_custom(|n| {
                (0..n)
                    .map(|_| restore(&r, ArrowVerification::Structure).0)
                    .sum()
            })
        });
        g.bench_function("copying_ipc_read", |b| {
            b.iter_custom(|n| (0..n).map(|_| copying_ipc_read(&r.file).0).sum())
        });
        g.finish();
    }
}

fn summary(states: &[State], runs: usize) {
    println!(
        "==================== SUMMARY (separate timed passes, this run, median of {runs}) ===================="
    );
    for s in states {
        let r = restorable(s);
        let rows: u64 = s.batches.iter().map(|b| b.num_rows() as u64).sum();
        let mb = r.size as f64 / 1e6;
        println!(
            "[{}] {} batches, {rows} rows, part file {mb:.1} MB",
            s.name,
            s.batches.len()
        );
        let write = median((0..runs).map(|_| checkpoint(s).0).collect());
        let plain = median((0..runs).map(|_| plain_write_fsync(r.size)).collect());
        println!(
            "  write:   checkpoint {:8.1} ms {:6.0} MB/s | plain write+fsync {:8.1} ms {:6.0} MB/s | ratio {:.2}x of plain (target >= 0.7)",
            ms(write),
            mb / write.as_secs_f64(),
            ms(plain),
            mb / plain.as_secs_f64(),
            plain.as_secs_f64() / write.as_secs_f64()
        );
        let copy = median(
            (0..runs)
                .map(|_| {
                    let (d, n) = copying_ipc_read(&r.file);
                    assert_eq!(n, rows);
                    d
                })
                .collect(),
        );
        for (label, v) in [
            ("checksums", ArrowVerification::Checksums),
            ("structure", ArrowVerification::Structure),
        ] {
            let d = median(
                (0..runs)
                    .map(|_| {
                        let (d, n) = restore(&r, v);
                        assert_eq!(n, rows);
                        d
                    })
                    .collect(),
            );
            println!(
                "  restore ({label}): {:8.2} ms | copying IPC read {:8.1} ms | {:.1}% of it (target <= 10%)",
                ms(d),
                ms(copy),
                100.0 * d.as_secs_f64() / copy.as_secs_f64()
            );
        }
    }
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let bytes = if test_mode { TEST_BYTES } else { TARGET_BYTES };
    let states = [state("fixed", false, bytes), state("strings", true, bytes)];
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c, &states);
    c.final_summary();
    summary(&states, if test_mode { 1 } else { 3 });
}
