//! The main job: a keyed aggregation with an exactly-once file sink, killed
//! with SIGKILL several times, that still publishes every result exactly once.
//!
//! The parent process runs the job (per-window word counts over a 4-partition
//! source; see pipeline.rs) in a child process and kills it at random points
//! (supervisor.rs). Each new child recovers: the `SinkCoordinator` commits what
//! the newest restorable checkpoint owes and aborts what later epochs staged,
//! and the job resumes from that checkpoint's state, offsets and watermarks.
//! The last child runs to the end; the parent then checks the published output
//! against counts computed directly from the source and prints "exactly-once:
//! verified" only if they match (the exit code is non-zero otherwise).
//!
//! Run: `cargo run --release --example exactly_once_pipeline`
//! (`HIGHWATER_EXAMPLE_SEED=n` repeats a run's kill points). With
//! `-- --dir DIR` the job runs in `DIR` (which must be empty or absent) and
//! the directory is kept, to inspect with the `highwater` tool.

mod pipeline;
mod supervisor;

use highwater::FileSink;
use pipeline::{Job, Paths};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

const JOB: Job = Job {
    partitions: 4,
    records: 100_000,
    batch: 1_000,
    ms_per_record: 10,
};
const CRASHES: usize = 6;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.as_slice() {
        [_, flag, dir] if flag == "--child" => {
            supervisor::child(Path::new(dir), &JOB).map_err(|e| e.to_string())
        }
        [_, flag, dir] if flag == "--dir" => kept_dir(Path::new(dir)).and_then(|d| parent(&d)),
        [_] => tempfile::tempdir()
            .map_err(|e| e.to_string())
            .and_then(|d| parent(d.path())),
        _ => Err("usage: exactly_once_pipeline [--dir DIR]".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `dir`, created if absent; refused unless empty (a job must start fresh).
fn kept_dir(dir: &Path) -> Result<std::path::PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if entries.next().is_some() {
        return Err(format!(
            "{} is not empty: give an empty or new directory",
            dir.display()
        ));
    }
    Ok(dir.to_path_buf())
}

fn parent(dir: &Path) -> Result<(), String> {
    let seed = std::env::var("HIGHWATER_EXAMPLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "highwater exactly-once pipeline: window word counts over {} partitions x {} records, \
         a checkpoint every {} records per partition, {CRASHES} SIGKILLs",
        JOB.partitions, JOB.records, JOB.batch
    );
    println!("job directory {} (seed {seed})", dir.display());
    let started = Instant::now();
    let command = || {
        let mut c = Command::new(&exe);
        c.arg("--child").arg(dir);
        c
    };
    let (totals, crashes) = supervisor::supervise(&command, CRASHES, seed, &mut |run| {
        let (checkpoint, epoch, micros) =
            run.report.recoveries.first().copied().unwrap_or_default();
        println!(
            "run {}: recovered {} in {:.1} ms; read {} records; {} checkpoints, up to epoch {}; {}",
            run.number,
            checkpoint.map_or("from scratch".to_string(), |c| format!(
                "checkpoint {c} (epoch {epoch})"
            )),
            micros as f64 / 1000.0,
            run.report.records_read,
            run.report.full + run.report.delta,
            run.report.last_epoch,
            if run.killed {
                format!("killed by SIGKILL after {} ms", run.elapsed.as_millis())
            } else {
                "finished".to_string()
            }
        );
    })?;

    let sink =
        FileSink::open(Paths::under(dir).output, pipeline::SINK).map_err(|e| e.to_string())?;
    let output = sink.read_committed().map_err(|e| e.to_string())?;
    let files = sink.committed_epochs().map_err(|e| e.to_string())?.len();
    let unique = u64::from(JOB.partitions) * JOB.records;
    let recoveries: Vec<String> = totals
        .recoveries
        .iter()
        .map(|(_, _, us)| format!("{:.1} ms", *us as f64 / 1000.0))
        .collect();
    println!();
    println!(
        "records processed:  {} ({unique} in the input, {} read again after crashes)",
        totals.records_read,
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
    println!(
        "elapsed:            {:.1} s",
        started.elapsed().as_secs_f64()
    );
    pipeline::verify(&JOB, &output).map_err(|e| format!("exactly-once check FAILED: {e}"))?;
    println!("exactly-once: verified");
    if std::env::args().any(|a| a == "--dir") {
        println!(
            "job directory kept: inspect it with `highwater checkpoints ls {}`",
            Paths::under(dir).checkpoints.display()
        );
    }
    Ok(())
}
