//! A word-count operator that is killed with SIGKILL mid-stream and recovers with
//! exactly-once results, using the write-ahead log directly.
//!
//! The parent process starts a child that consumes a numbered source, keeps word
//! counts, and logs each batch as one transaction (Puts of the changed counts, then
//! a Commit carrying the source offset), durably. The parent kills the child at an
//! arbitrary moment, then `RecoveryManager` repairs the log's torn tail, streams
//! the committed changes into the counts, cuts the uncommitted tail and returns the
//! committed source offset; the operator resumes there, and the final counts are
//! checked against a run that never crashed.
//!
//! Run: `cargo run --example wal_crash_recovery`

use highwater::recovery::SinkError;
use highwater::{
    RecoveredState, RecoveryConfig, RecoveryManager, ReplaySink, SyncPolicy, WalEntry, WalOptions,
    WriteAheadLog,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const EVENTS: u64 = 200_000;
const BATCH: u64 = 50;
const WORDS: [&str; 7] = ["apple", "kiwi", "plum", "fig", "lime", "pear", "date"];
const SOURCE: &str = "numbers-0";

type Counts = BTreeMap<String, u64>;

/// The source: event `i` is a word.
fn event(i: u64) -> &'static str {
    WORDS[((i * 2_654_435_761) % 7) as usize]
}

/// Rebuilds the counts from what `RecoveryManager` hands over: committed changes
/// only, in log order.
#[derive(Default)]
struct CountsSink(Counts);

impl ReplaySink for CountsSink {
    fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), SinkError> {
        let word = String::from_utf8(key.to_vec())?;
        let count = u64::from_le_bytes(value.ok_or("counts are never deleted")?.try_into()?);
        self.0.insert(word, count);
        Ok(())
    }
}

/// Recovers (repairing the torn tail and cutting the uncommitted tail); returns
/// the counts, the source offset to resume from, and the recovery report.
fn recover(dir: &Path) -> highwater::Result<(Counts, u64, RecoveredState)> {
    let config = RecoveryConfig::new(dir.join("checkpoints"), dir.join("wal"));
    let mut sink = CountsSink::default();
    let recovered = RecoveryManager::new(config).recover_into(&mut sink)?;
    let resume_at = recovered.source_offsets.get(SOURCE).copied().unwrap_or(0);
    Ok((sink.0, resume_at, recovered))
}

/// Processes the source from `from` to the end, one durable transaction per batch.
/// Prints each acknowledged offset when `report` is set.
fn run(wal: &WriteAheadLog, counts: &mut Counts, from: u64, report: bool) -> highwater::Result<()> {
    let mut offset = from;
    while offset < EVENTS {
        let end = (offset + BATCH).min(EVENTS);
        let mut changed = BTreeMap::new();
        for i in offset..end {
            let c = counts.entry(event(i).to_string()).or_insert(0);
            *c += 1;
            changed.insert(event(i), *c);
        }
        let mut txn: Vec<WalEntry> = changed
            .iter()
            .map(|(w, c)| WalEntry::Put {
                key: w.as_bytes().to_vec(),
                value: c.to_le_bytes().to_vec(),
            })
            .collect();
        txn.push(WalEntry::Commit {
            offsets: HashMap::from([(SOURCE.to_string(), end)]),
            watermark: Some(end as i64),
        });
        wal.append_batch(&txn)?; // returns once durable (SyncPolicy::EveryWrite)
        if report {
            println!("{end}");
        }
        offset = end;
    }
    Ok(())
}

fn open(dir: &Path) -> highwater::Result<WriteAheadLog> {
    WriteAheadLog::open(
        dir.join("wal"),
        WalOptions::default().with_sync_policy(SyncPolicy::EveryWrite),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--child" {
        // The operator process: recover, then process until killed.
        let (mut counts, from, _) = recover(Path::new(&args[2]))?;
        let wal = open(Path::new(&args[2]))?;
        run(&wal, &mut counts, from, true)?;
        return Ok(());
    }

    let dir = tempfile::tempdir()?;
    let mut child = Command::new(&args[0])
        .args(["--child", &dir.path().display().to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    // Kill the operator after an arbitrary number of acknowledged transactions.
    let kill_after = 200
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .subsec_nanos() as usize
            % 2000;
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut acked: Vec<u64> = Vec::new();
    for line in lines.by_ref() {
        acked.push(line?.trim().parse()?);
        if acked.len() == kill_after {
            child.kill()?; // SIGKILL: no destructors, no final sync
            break;
        }
    }
    // Acknowledgements already in the pipe when the kill landed.
    for line in lines {
        acked.push(line?.trim().parse()?);
    }
    child.wait()?;
    let last_acked = acked.last().copied().unwrap_or(0);
    println!(
        "operator killed after {} acknowledged transactions (source offset {last_acked})",
        acked.len()
    );

    let (mut counts, resume_at, recovered) = recover(dir.path())?;
    let report = &recovered.report;
    if let Some(repair) = &report.wal_repair {
        println!(
            "repaired a torn tail: cut {} bytes at position {} ({})",
            repair.bytes_cut, repair.position, repair.reason
        );
    }
    println!(
        "recovered {} transactions at source offset {resume_at}; {} uncommitted entries dropped and cut",
        report.committed_transactions, report.uncommitted_entries
    );
    let wal = open(dir.path())?;
    assert!(resume_at >= last_acked, "an acknowledged commit was lost");
    run(&wal, &mut counts, resume_at, false)?;

    let mut expected = Counts::new();
    for i in 0..EVENTS {
        *expected.entry(event(i).to_string()).or_insert(0) += 1;
    }
    println!("final counts: {counts:?}");
    assert_eq!(
        counts, expected,
        "results differ from a run without a crash"
    );
    println!("exactly-once: the recovered run matches a run without a crash ({EVENTS} events)");
    Ok(())
}
