//! The main job: a keyed aggregation with an exactly-once file sink, killed
//! with SIGKILL several times, that still publishes every result exactly once.
//!
//! The parent process runs the job (per-window word counts over a 4-partition
//! source; see pipeline.rs) in a child process and kills it at random moments.
//! Each new child recovers: the `SinkCoordinator` commits what the newest
//! restorable checkpoint owes and aborts what later epochs staged, and the job
//! resumes from that checkpoint's state, offsets and watermarks. The last child
//! runs to the end; the parent then checks the published output against counts
//! computed directly from the source and prints "exactly-once: verified" only if
//! they match (the exit code is non-zero otherwise).
//!
//! Run: `cargo run --release --example exactly_once_pipeline`
//! (`HIGHWATER_EXAMPLE_SEED=n` repeats a run's kill times.)

mod pipeline;

use highwater::storage::default_storage;
use highwater::FileSink;
use pipeline::{Event, Job, Paths};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const JOB: Job = Job {
    partitions: 4,
    records: 100_000,
    batch: 1_000,
    ms_per_record: 10,
};
const CRASHES: usize = 6;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, dir] = args.as_slice() {
        if flag == "--child" {
            return child(Path::new(dir));
        }
    }
    match parent() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the job, reporting every event on stdout, one line each.
fn child(dir: &Path) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let result = pipeline::run(default_storage(), &Paths::under(dir), &JOB, &mut |event| {
        let line = match event {
            Event::Recovered {
                checkpoint,
                epoch,
                elapsed,
            } => format!(
                "recovered {} {epoch} {}",
                checkpoint.map_or("-".to_string(), |c| c.to_string()),
                elapsed.as_micros()
            ),
            Event::Read { epoch, records } => format!("read {epoch} {records}"),
            Event::Checkpoint { id, epoch, kind, .. } => {
                format!("checkpoint {id} {epoch} {kind:?}")
            }
            Event::CheckpointFailed { epoch, error } => format!("failed {epoch} {error}"),
        };
        // Unbuffered lines: the parent may kill us at any moment.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What the parent learned from the children.
#[derive(Default)]
struct Totals {
    records_read: u64,
    full: u64,
    delta: u64,
    failed: u64,
    recovery_micros: Vec<u64>,
    last_epoch: u64,
}

impl Totals {
    fn take(&mut self, line: &str) {
        let fields: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        match fields[0] {
            "recovered" => self.recovery_micros.push(num(3)),
            "read" => self.records_read += num(2),
            "checkpoint" => {
                self.last_epoch = num(2);
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
}

fn parent() -> Result<(), String> {
    let seed = std::env::var("HIGHWATER_EXAMPLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "highwater exactly-once pipeline: window word counts over {} partitions x {} records, an epoch every {} records per partition",
        JOB.partitions, JOB.records, JOB.batch
    );
    println!("state, checkpoints and output in {} (seed {seed})", dir.path().display());
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut crashes = 0;
    for run in 1.. {
        // Kill after a random number of this run's checkpoints plus a random
        // delay, so the kill lands anywhere in an epoch on a fast or slow disk.
        let kill_after = (crashes < CRASHES).then(|| (2 + next() % 12, Duration::from_micros(next() % 6_000)));
        let mut child = Command::new(&exe)
            .arg("--child")
            .arg(dir.path())
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
        let run_start = Instant::now();
        let mut before = Totals {
            last_epoch: totals.last_epoch,
            ..Totals::default()
        };
        let mut killed = false;
        let mut recovered = String::new();
        let mut kill_at: Option<Instant> = None;
        loop {
            match rx.recv_timeout(Duration::from_micros(200)) {
                Ok(line) => {
                    if line.starts_with("recovered") {
                        let f: Vec<&str> = line.split(' ').collect();
                        recovered = format!(
                            "recovered checkpoint {} (epoch {}) in {:.1} ms",
                            f[1],
                            f[2],
                            f[3].parse::<f64>().unwrap_or(0.0) / 1000.0
                        );
                    }
                    before.take(&line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if let Some((checkpoints, delay)) = kill_after {
                if kill_at.is_none() && before.full + before.delta >= checkpoints {
                    kill_at = Some(Instant::now() + delay);
                }
                if !killed && kill_at.is_some_and(|t| Instant::now() >= t) {
                    let _ = child.kill(); // SIGKILL
                    killed = true;
                }
            }
        }
        let _ = reader.join();
        let status = child.wait().map_err(|e| e.to_string())?;
        let outcome = if killed && !status.success() {
            crashes += 1;
            format!("killed (SIGKILL) after {} ms", run_start.elapsed().as_millis())
        } else if status.success() {
            "finished".to_string()
        } else {
            return Err(format!("run {run}: the child failed on its own ({status})"));
        };
        println!(
            "run {run}: {recovered}; read {} records, {} checkpoints, now at epoch {}; {outcome}",
            before.records_read,
            before.full + before.delta,
            before.last_epoch
        );
        totals.records_read += before.records_read;
        totals.full += before.full;
        totals.delta += before.delta;
        totals.failed += before.failed;
        totals.last_epoch = before.last_epoch;
        totals.recovery_micros.extend(before.recovery_micros);
        if status.success() {
            break;
        }
    }

    let sink = FileSink::open(Paths::under(dir.path()).output, pipeline::SINK)
        .map_err(|e| e.to_string())?;
    let output = sink.read_committed().map_err(|e| e.to_string())?;
    let files = sink.committed_epochs().map_err(|e| e.to_string())?.len();
    let unique = u64::from(JOB.partitions) * JOB.records;
    let recoveries: Vec<String> = totals
        .recovery_micros
        .iter()
        .map(|us| format!("{:.1} ms", *us as f64 / 1000.0))
        .collect();
    println!();
    println!(
        "records processed:  {} ({} in the input; {} read again after crashes)",
        totals.records_read,
        unique,
        totals.records_read.saturating_sub(unique)
    );
    println!("crashes survived:   {crashes} (SIGKILL)");
    println!(
        "checkpoints taken:  {} ({} full, {} delta{})",
        totals.full + totals.delta,
        totals.full,
        totals.delta,
        if totals.failed > 0 {
            format!(", {} failed and carried over", totals.failed)
        } else {
            String::new()
        }
    );
    println!("recovery times:     {}", recoveries.join(", "));
    println!(
        "output:             {} bytes in {files} published epoch files",
        output.len()
    );
    println!("elapsed:            {:.1} s", started.elapsed().as_secs_f64());
    pipeline::verify(&JOB, &output).map_err(|e| format!("exactly-once check FAILED: {e}"))?;
    println!("exactly-once: verified");
    Ok(())
}
