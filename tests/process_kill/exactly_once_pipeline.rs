//! The `exactly_once_pipeline` example's scenario as a test: the same job and
//! supervisor (shared source files), on the real file system, its child process
//! killed with SIGKILL at random points; the published output must hold every
//! window's count exactly once.
//!
//! `HIGHWATER_CRASH_EXHAUSTIVE=1` kills 40 children instead of 8;
//! `HIGHWATER_CRASH_SEED=n` changes the kill points. (No test harness: the
//! binary is its own child.)

use crate::common;
#[path = "../../examples/exactly_once_pipeline/pipeline.rs"]
mod pipeline;
#[path = "../../examples/exactly_once_pipeline/supervisor.rs"]
mod supervisor;

use common::sampling::Settings;
use highwater::FileSink;
use pipeline::{Job, Paths};
use std::path::Path;
use std::process::Command;

pub(crate) const CHILD_ENV: &str = "HIGHWATER_PIPELINE_CHILD_DIR";

/// Enough epochs that every kill lands before the end: a child is killed
/// after at most 13 checkpoints and a few milliseconds.
fn job(crashes: usize) -> Job {
    Job {
        partitions: 3,
        records: crashes as u64 * 25 * 200,
        batch: 200,
        ms_per_record: 10,
    }
}

pub(crate) fn main() {
    let settings = Settings::from_env();
    let crashes = if settings.exhaustive { 40 } else { 8 };
    let job = job(crashes);
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        if let Err(e) = supervisor::child(&Paths::under(Path::new(&dir)), &job) {
            eprintln!("child: {e}");
            std::process::exit(1);
        }
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let exe = std::env::current_exe().expect("the test binary");
    let command = || {
        let mut c = Command::new(&exe);
        c.env(CHILD_ENV, dir.path());
        c
    };
    let mut restored = Vec::new();
    let (totals, killed) = supervisor::supervise(&command, crashes, settings.seed, &mut |run| {
        restored.extend(run.report.recoveries.iter().map(|r| r.1));
    })
    .unwrap_or_else(|e| panic!("{e}; {}", settings.rerun_hint()));

    let sink =
        FileSink::open(Paths::under(dir.path()).output, pipeline::SINK).expect("open the sink");
    let output = sink.read_committed().expect("read the output");
    let result = pipeline::verify(&job, &output);
    println!(
        "exactly_once_pipeline: {killed} SIGKILLs, {} records read, {} checkpoints, restored epochs {restored:?}",
        totals.records_read,
        totals.full + totals.delta
    );
    if let Err(e) = result {
        panic!("exactly-once violated: {e}; {}", settings.rerun_hint());
    }
    assert_eq!(
        killed, crashes,
        "every planned kill must land before the job ends"
    );
    assert!(
        restored.windows(2).all(|w| w[0] <= w[1]),
        "a restart never restores an older epoch than the one before: {restored:?}"
    );
    assert!(
        totals.records_read >= u64::from(job.partitions) * job.records,
        "every record was read at least once"
    );
    println!("exactly_once_pipeline: ok");
}
