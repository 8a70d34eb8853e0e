//! Runs the pipeline's job in child processes and kills them with SIGKILL at
//! random points until one finishes; shared by the example's `main` and
//! tests/process_kill/exactly_once_pipeline.rs.
//!
//! The child reports every event as one line on stdout (flushed at once, as it
//! may die at any moment): `recovered <checkpoint|-> <epoch> <micros>`,
//! with a remote location then `remote <generation> <restored|-> <cache hits>
//! <downloaded> <removed> <rejected> <bytes downloaded> <requests>` (the id
//! lists comma-separated, `-` when empty), `read <epoch> <records>`,
//! `checkpoint <id> <epoch> <Full|Delta>`, `failed <epoch> <error>`.
#![allow(dead_code)]

use super::pipeline::{self, Event, Job, Paths};
use highwater::storage::default_storage;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The child: runs the job at `paths`, reporting each event on stdout.
///
/// # Errors
/// The job's error.
pub fn child(paths: &Paths, job: &Job) -> highwater::Result<()> {
    let mut out = std::io::stdout().lock();
    pipeline::run(default_storage(), paths, job, &mut |event| {
        let line = match event {
            Event::Recovered {
                checkpoint,
                epoch,
                elapsed,
                remote,
            } => {
                let mut line = format!(
                    "recovered {} {epoch} {}",
                    checkpoint.map_or("-".to_string(), |c| c.to_string()),
                    elapsed.as_micros()
                );
                if let Some(r) = remote {
                    line.push_str(&format!(
                        "\nremote {} {} {} {} {} {} {} {}",
                        r.generation,
                        r.restored.map_or("-".to_string(), |c| c.to_string()),
                        ids(&r.cache_hits),
                        ids(&r.downloaded),
                        ids(&r.removed),
                        r.rejected.len(),
                        r.bytes_downloaded,
                        r.requests
                    ));
                }
                line
            }
            Event::Read { epoch, records } => format!("read {epoch} {records}"),
            Event::Checkpoint {
                id, epoch, kind, ..
            } => {
                format!("checkpoint {id} {epoch} {kind:?}")
            }
            Event::CheckpointFailed { epoch, error } => format!("failed {epoch} {error}"),
        };
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    })
}

/// `1,2,3`, or `-` for none.
fn ids(ids: &[u64]) -> String {
    if ids.is_empty() {
        return "-".to_string();
    }
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    ids.join(",")
}

fn parse_ids(field: Option<&&str>) -> Vec<u64> {
    field
        .filter(|f| **f != "-")
        .map(|f| f.split(',').filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default()
}

/// What a child found when it opened the remote location (its `remote` line).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RemoteRecovery {
    /// The writer generation it claimed.
    pub generation: u64,
    /// The committed checkpoint it restored.
    pub restored: Option<u64>,
    /// Checkpoints whose local copy (the cache) was used as it was.
    pub cache_hits: Vec<u64>,
    /// Checkpoints downloaded into the cache.
    pub downloaded: Vec<u64>,
    /// Local checkpoints removed (never committed, or not the committed bytes).
    pub removed: Vec<u64>,
    /// Committed checkpoints newer than `restored` that could not be restored.
    pub rejected: u64,
    /// Bytes downloaded, and the requests it took.
    pub bytes_downloaded: u64,
    pub requests: u64,
}

/// What one child reported, or all of them together.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub records_read: u64,
    pub full: u64,
    pub delta: u64,
    pub failed: u64,
    /// (restored checkpoint, its epoch, microseconds) per recovery.
    pub recoveries: Vec<(Option<u64>, u64, u64)>,
    /// What each recovery found at the remote location, when there is one.
    pub remote: Vec<RemoteRecovery>,
    pub last_epoch: u64,
}

impl Totals {
    fn take(&mut self, line: &str) {
        let fields: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        match fields[0] {
            "recovered" => self
                .recoveries
                .push((num(1), num(2).unwrap_or(0), num(3).unwrap_or(0))),
            "remote" => self.remote.push(RemoteRecovery {
                generation: num(1).unwrap_or(0),
                restored: num(2),
                cache_hits: parse_ids(fields.get(3)),
                downloaded: parse_ids(fields.get(4)),
                removed: parse_ids(fields.get(5)),
                rejected: num(6).unwrap_or(0),
                bytes_downloaded: num(7).unwrap_or(0),
                requests: num(8).unwrap_or(0),
            }),
            "read" => self.records_read += num(2).unwrap_or(0),
            "checkpoint" => {
                self.last_epoch = num(2).unwrap_or(0);
                if fields.get(3) == Some(&"Full") {
                    self.full += 1;
                } else {
                    self.delta += 1;
                }
            }
            "failed" => self.failed += 1,
            _ => {}
        }
    }

    fn add(&mut self, run: &Totals) {
        self.records_read += run.records_read;
        self.full += run.full;
        self.delta += run.delta;
        self.failed += run.failed;
        self.recoveries.extend_from_slice(&run.recoveries);
        self.remote.extend_from_slice(&run.remote);
        if run.full + run.delta > 0 {
            self.last_epoch = run.last_epoch;
        }
    }
}

/// How one child ended.
#[derive(Debug, Clone)]
pub struct Run {
    pub number: usize,
    pub report: Totals,
    pub killed: bool,
    pub elapsed: Duration,
}

/// Starts children (`command()` must run [`child`]) until one finishes,
/// killing the first `crashes` of them with SIGKILL after a random number of
/// their checkpoints plus a random delay, so that each kill lands anywhere in
/// an epoch, on a fast disk or a slow one. `on_run` sees each child's end.
///
/// # Errors
/// A child that fails on its own (not killed), or cannot be started.
pub fn supervise(
    command: &dyn Fn() -> Command,
    crashes: usize,
    seed: u64,
    on_run: &mut dyn FnMut(&Run),
) -> Result<(Totals, usize), String> {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut totals = Totals::default();
    let mut killed_count = 0;
    for number in 1.. {
        let kill_plan = (killed_count < crashes)
            .then(|| (2 + next() % 12, Duration::from_micros(next() % 6_000)));
        let started = Instant::now();
        let mut child = command()
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the child: {e}"))?;
        let stdout = child.stdout.take().ok_or("no child stdout")?;
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut report = Totals::default();
        let mut kill_at: Option<Instant> = None;
        let mut killed = false;
        loop {
            match rx.recv_timeout(Duration::from_micros(200)) {
                Ok(line) => report.take(&line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some((checkpoints, delay)) = kill_plan {
                if kill_at.is_none() && report.full + report.delta >= checkpoints {
                    kill_at = Some(Instant::now() + delay);
                }
                if !killed && kill_at.is_some_and(|t| Instant::now() >= t) {
                    let _ = child.kill(); // SIGKILL on Unix
                    killed = true;
                }
            }
        }
        let _ = reader.join();
        let status = child.wait().map_err(|e| e.to_string())?;
        let died_of_kill = killed && status.signal() == Some(9);
        if !status.success() && !died_of_kill {
            return Err(format!(
                "run {number}: the child failed on its own ({status})"
            ));
        }
        killed_count += usize::from(died_of_kill);
        let run = Run {
            number,
            report,
            killed: died_of_kill,
            elapsed: started.elapsed(),
        };
        on_run(&run);
        totals.add(&run.report);
        if status.success() {
            break;
        }
    }
    Ok((totals, killed_count))
}
