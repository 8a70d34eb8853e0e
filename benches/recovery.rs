//! Recovery benchmarks, each against a baseline measured in the same run.
//!
//! Entries: Puts of a 16-byte key and a 100-byte value, committed in
//! transactions of 99 Puts + 1 Commit (so "1 M committed Puts" is 1 010 101
//! entries).
//!
//! Criterion groups:
//! - `wal_only`: recovery of 1 M committed Puts with no checkpoint, streaming
//!   into a sink that counts (`recover_into`), and collecting every change
//!   (`recover_with_changes`). Baseline `plain_read`: reading the same segment
//!   files sequentially with `std::fs::File::read` into a 1 MiB buffer.
//! - `checkpoint_plus_wal`: a 1 M-key checkpoint plus 100 k log entries after it,
//!   recovered with the changes collected (checkpoint verified + loaded, then
//!   replayed).
//!
//! After the groups, `main` prints a SUMMARY of ratios from separate timed passes
//! (median of 5), then measures the peak resident memory of a streaming replay
//! of a 1 GB log in a child process (`HIGHWATER_RSS_CHILD`), reading `VmHWM` from
//! /proc/self/status. `-- --test` runs everything once on small inputs.

mod common;

use common::fixtures::{file_len, manual, segments};
use common::{bench_dir, median, ms};
use criterion::Criterion;
use highwater::recovery::{SinkError, TransactionMode};
use highwater::{
    CheckpointConfig, IncrementalCheckpointManager, RecoveredState, RecoveryConfig,
    RecoveryManager, ReplaySink, StateSnapshot, WalEntry, WriteAheadLog,
};
use std::collections::HashMap;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PUTS: u64 = 1_000_000;
const PUTS_TEST: u64 = 20_000;
const CHECKPOINT_KEYS: usize = 1_000_000;
const CHECKPOINT_KEYS_TEST: usize = 20_000;
const TAIL_ENTRIES: u64 = 100_000;
const TAIL_ENTRIES_TEST: u64 = 2_000;
const PER_TRANSACTION: u64 = 99;
const VALUE_LEN: usize = 100;
const RSS_LOG_BYTES: u64 = 1 << 30;
const RSS_LOG_BYTES_TEST: u64 = 32 << 20;
const RSS_LIMIT_MB: f64 = 64.0;

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:012}").into_bytes()
}

fn put(i: u64) -> WalEntry {
    let mut value = vec![0u8; VALUE_LEN];
    for (j, b) in value.iter_mut().enumerate() {
        *b = b'a' + ((i as usize + j) % 26) as u8;
    }
    WalEntry::Put { key: key(i), value }
}

fn commit(i: u64) -> WalEntry {
    WalEntry::Commit {
        offsets: HashMap::from([("topic-0".to_string(), i)]),
        watermark: Some(i as i64),
    }
}

/// Appends `puts` Puts (keys `first..`) in transactions of `PER_TRANSACTION`.
fn write_log(wal: &WriteAheadLog, first: u64, puts: u64) {
    let mut batch = Vec::with_capacity(PER_TRANSACTION as usize + 1);
    let mut i = first;
    while i < first + puts {
        batch.clear();
        let end = (i + PER_TRANSACTION).min(first + puts);
        batch.extend((i..end).map(put));
        batch.push(commit(end));
        wal.append_batch(&batch).unwrap();
        i = end;
    }
}

fn log_bytes(dir: &Path) -> u64 {
    segments(dir).iter().map(|p| file_len(p)).sum()
}

/// A sink that only counts what it receives (the library's own cost).
#[derive(Default)]
struct Counting {
    changes: u64,
    bytes: u64,
}

impl ReplaySink for Counting {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), SinkError> {
        self.changes += 1;
        self.bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        Ok(())
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    /// Log only: `puts` committed Puts, no checkpoint.
    wal_only: PathBuf,
    empty_ckpt: PathBuf,
    /// A checkpoint of `keys` keys plus `tail` entries after it.
    ckpt: PathBuf,
    ckpt_wal: PathBuf,
    puts: u64,
}

impl Fixture {
    fn new(puts: u64, keys: usize, tail: u64) -> Self {
        let tmp = bench_dir();
        let wal_only = tmp.path().join("wal-only");
        let wal = manual(&wal_only);
        write_log(&wal, 0, puts);
        wal.close().unwrap();

        let ckpt = tmp.path().join("ckpt");
        let ckpt_wal = tmp.path().join("ckpt-wal");
        let wal = manual(&ckpt_wal);
        let state = StateSnapshot::from_sorted((0..keys as u64).map(|i| match put(i) {
            WalEntry::Put { key, value } => (key, value),
            _ => unreachable!(),
        }))
        .unwrap();
        let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
        m.create_checkpoint_with_state(
            wal.position(),
            HashMap::from([("topic-0".to_string(), 0)]),
            None,
            &state.to_bytes().unwrap(),
        )
        .unwrap();
        // 100 k entries: transactions of 99 Puts + 1 Commit.
        write_log(&wal, 0, tail / (PER_TRANSACTION + 1) * PER_TRANSACTION);
        wal.close().unwrap();
        Fixture {
            empty_ckpt: tmp.path().join("no-checkpoints"),
            _tmp: tmp,
            wal_only,
            ckpt,
            ckpt_wal,
            puts,
        }
    }

    fn config(&self) -> RecoveryConfig {
        // Repair off: recovery is read-only and every pass sees the same log.
        RecoveryConfig::new(&self.empty_ckpt, &self.wal_only).with_repair_wal(false)
    }
}

fn stream_wal_only(f: &Fixture) -> (Duration, RecoveredState) {
    let mut sink = Counting::default();
    let start = Instant::now();
    let r = RecoveryManager::new(f.config())
        .recover_into(&mut sink)
        .unwrap();
    let t = start.elapsed();
    assert_eq!(sink.changes, f.puts);
    (t, r)
}

fn collect_wal_only(f: &Fixture) -> Duration {
    let start = Instant::now();
    let r = RecoveryManager::new(f.config().with_collect_state_changes(true))
        .recover()
        .unwrap();
    let t = start.elapsed();
    assert_eq!(r.state_changes.len() as u64, f.puts);
    drop(black_box(r));
    t
}

fn checkpoint_plus_wal(f: &Fixture) -> (Duration, RecoveredState) {
    let start = Instant::now();
    let r = RecoveryManager::new(
        RecoveryConfig::new(&f.ckpt, &f.ckpt_wal)
            .with_repair_wal(false)
            .with_collect_state_changes(true),
    )
    .recover()
    .unwrap();
    let t = start.elapsed();
    assert!(r.checkpoint_id.is_some());
    (t, r)
}

/// The baseline: read every segment file sequentially into a 1 MiB buffer.
fn plain_read(dir: &Path) -> Duration {
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut total = 0u64;
    for path in segments(dir) {
        let mut file = File::open(path).unwrap();
        loop {
            let n = file.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += black_box(&buf[..n]).len() as u64;
        }
    }
    black_box(total);
    start.elapsed()
}

fn criterion_groups(c: &mut Criterion, f: &Fixture) {
    let mut g = c.benchmark_group("wal_only");
    g.sample_size(10);
    g.bench_function("recover_into_counting_sink", |b| {
        b.iter(|| stream_wal_only(f).0)
    });
    g.bench_function("recover_with_changes", |b| b.iter(|| collect_wal_only(f)));
    g.bench_function("plain_read", |b| b.iter(|| plain_read(&f.wal_only)));
    g.finish();
    let mut g = c.benchmark_group("checkpoint_plus_wal");
    g.sample_size(10);
    g.bench_function("recover_with_changes", |b| {
        b.iter(|| checkpoint_plus_wal(f).0)
    });
    g.finish();
}

fn summary(f: &Fixture, runs: usize) {
    let bytes = log_bytes(&f.wal_only) as f64;
    println!(
        "==================== SUMMARY (separate timed passes, this run, median of {runs}) ===================="
    );
    println!(
        "log: {} committed Puts (16 B key, {VALUE_LEN} B value, {PER_TRANSACTION} per Commit), {:.1} MB in segments",
        f.puts,
        bytes / 1e6
    );
    let stream: Vec<(Duration, RecoveredState)> = (0..runs).map(|_| stream_wal_only(f)).collect();
    let replayed = stream[0].1.wal_entries_replayed;
    let stream = median(stream.into_iter().map(|x| x.0).collect());
    let collect = median((0..runs).map(|_| collect_wal_only(f)).collect());
    let read = median((0..runs).map(|_| plain_read(&f.wal_only)).collect());
    println!(
        "WAL only, streaming:  {:8.1} ms {:7.0} MB/s ({:.2} M entries/s) | plain sequential read {:8.1} ms {:7.0} MB/s | ratio {:.2}x of read (target >= 0.5)",
        ms(stream),
        bytes / stream.as_secs_f64() / 1e6,
        replayed as f64 / stream.as_secs_f64() / 1e6,
        ms(read),
        bytes / read.as_secs_f64() / 1e6,
        read.as_secs_f64() / stream.as_secs_f64()
    );
    println!(
        "WAL only, collecting: {:8.1} ms {:7.0} MB/s | ratio {:.2}x of read",
        ms(collect),
        bytes / collect.as_secs_f64() / 1e6,
        read.as_secs_f64() / collect.as_secs_f64()
    );
    let cw: Vec<(Duration, RecoveredState)> = (0..runs).map(|_| checkpoint_plus_wal(f)).collect();
    let report = cw[0].1.report.clone();
    let keys = cw[0].1.state_snapshot.as_ref().map_or(0, |s| s.len());
    let entries = cw[0].1.wal_entries_replayed;
    let total = median(cw.into_iter().map(|x| x.0).collect());
    println!(
        "checkpoint ({keys} keys) + {entries} entries: {:8.1} ms (first pass: checkpoint verify+load {:.1} ms, replay {:.1} ms)",
        ms(total),
        ms(report.timings.checkpoint),
        ms(report.timings.replay),
    );
}

/// Peak resident memory of this process (`VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// In the child: streaming replay of the log in `dir`; prints the peak RSS
/// before and after.
fn rss_child(dir: &Path) {
    let before = peak_rss_mb();
    let mut sink = Counting::default();
    let start = Instant::now();
    let r = RecoveryManager::new(
        RecoveryConfig::new(dir.join("no-checkpoints"), dir.join("wal"))
            .with_repair_wal(false)
            .with_transaction_mode(TransactionMode::Commits),
    )
    .recover_into(&mut sink)
    .unwrap();
    let t = start.elapsed();
    println!(
        "RSS {before:.1} {:.1} {} {} {:.3}",
        peak_rss_mb(),
        sink.changes,
        r.wal_entries_replayed,
        t.as_secs_f64()
    );
}

fn rss_measurement(log_target: u64) {
    let tmp = bench_dir();
    let wal = manual(&tmp.path().join("wal"));
    let per_put = 160; // bytes per Put record, roughly
    write_log(&wal, 0, log_target / per_put);
    wal.close().unwrap();
    let bytes = log_bytes(&tmp.path().join("wal"));
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env("HIGHWATER_RSS_CHILD", tmp.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("RSS ")).unwrap_or("");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(
        out.status.success() && fields.len() == 6,
        "child failed: {text}"
    );
    let (before, after): (f64, f64) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let secs: f64 = fields[5].parse().unwrap();
    println!(
        "streaming replay of a {:.0} MB log ({} changes) in a fresh process: peak RSS {:.1} MB (process before replay {:.1} MB), {:.0} MB/s | limit {RSS_LIMIT_MB} MB: {}",
        bytes as f64 / 1e6,
        fields[3],
        after,
        before,
        bytes as f64 / secs / 1e6,
        if after < RSS_LIMIT_MB { "held" } else { "EXCEEDED" }
    );
}

fn main() {
    if let Some(dir) = std::env::var_os("HIGHWATER_RSS_CHILD") {
        rss_child(Path::new(&dir));
        return;
    }
    let test_mode = std::env::args().any(|a| a == "--test");
    let fixture = if test_mode {
        Fixture::new(PUTS_TEST, CHECKPOINT_KEYS_TEST, TAIL_ENTRIES_TEST)
    } else {
        Fixture::new(PUTS, CHECKPOINT_KEYS, TAIL_ENTRIES)
    };
    let mut c = Criterion::default().configure_from_args();
    criterion_groups(&mut c, &fixture);
    c.final_summary();
    summary(&fixture, if test_mode { 1 } else { 5 });
    drop(fixture);
    rss_measurement(if test_mode {
        RSS_LOG_BYTES_TEST
    } else {
        RSS_LOG_BYTES
    });
}
