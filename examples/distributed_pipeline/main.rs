//! The distributed job: a window word count run by one coordinator process
//! and `--workers N` worker processes that checkpoint to one blob store
//! (docs/DISTRIBUTED.md), broken on purpose, that still publishes every
//! window's count exactly once.
//!
//! The parent is a supervisor (supervisor.rs). It runs the job as a series
//! of runs: each starts a coordinator (this binary, `coordinator`), which
//! claims a new generation and prints it, then the run's workers (`worker
//! --generation G --index I`). The job is 128 input partitions, one per key
//! group, each holding only the words of its group (job.rs); worker `i`
//! reads the partitions of the key groups it owns, so its input and its
//! state move together when the worker count changes. Workers checkpoint at
//! fixed barriers (`ClusterWorker::checkpoint`) and send their reports
//! through the store (`StoreTransport`); the coordinator commits each epoch
//! and only then publishes its output (sink.rs). The supervisor SIGKILLs
//! workers and coordinators, freezes one coordinator with SIGSTOP until a
//! newer run has committed and then lets it go on (its commit must be
//! refused with `Fenced`), and rescales 4 -> 3 -> 5 workers. At the end it
//! compares the published output with counts computed directly from the
//! input and prints `exactly-once: verified` only if they are equal (the
//! exit code is non-zero otherwise).
//!
//! Run: `cargo run --release --example distributed_pipeline`. Options
//! (after `--`; `--help` lists them): `--workers N` (default 4: the plan
//! runs N, N-1 and N+1 workers), `--seed S` (the input and the kill points;
//! default: from the clock, printed), `--store URL` (default: a fresh
//! directory under a temporary directory; `s3://bucket/prefix`, `gs://…`,
//! `az://…` need `--features object-store`, credentials and the endpoint
//! from the environment: docs/OBJECT_STORAGE.md). The job runs under a
//! fresh prefix `URL/run-<unix seconds>-<pid>`, so runs against one bucket
//! never see each other.

mod coordinator;
mod job;
mod pace;
mod procs;
mod sink;
mod supervisor;
mod worker;

use highwater::blob::{open_blob_store, BlobStore};
use std::io::Write;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

/// The exit code of a process that was fenced (a newer run took over).
pub const FENCED_EXIT: u8 = 3;

const USAGE: &str = "usage: distributed_pipeline [--workers N] [--seed S] [--store URL]

  --workers N  workers of the first runs (default 4); the plan rescales to
               N-1, then N+1 (2 <= N <= 127)
  --seed S     the input and the kill points (default: from the clock)
  --store URL  the job's blob store: s3://bucket/prefix, gs://..., az://...,
               file:///path or a plain path (default: a directory under a
               temporary directory, removed at the end). The job runs under
               URL/run-<unix seconds>-<pid>. Cloud URLs need
               `--features object-store`; credentials and endpoint come
               from the AWS_*, GOOGLE_*, AZURE_* variables.
  --help       this text

The processes it starts: `distributed_pipeline coordinator --store URL
--workers N [--stall-after K]` and `distributed_pipeline worker --store URL
--generation G --index I --seed S`.";

/// Why a coordinator or worker process stops early.
pub enum Stop {
    /// A newer run took over: stop, publish nothing, exit [`FENCED_EXIT`].
    Fenced(String),
    /// Anything else.
    Failed(String),
}

impl From<highwater::Error> for Stop {
    fn from(e: highwater::Error) -> Self {
        match e {
            highwater::Error::Fenced { .. } => Stop::Fenced(e.to_string()),
            e => Stop::Failed(e.to_string()),
        }
    }
}

impl From<String> for Stop {
    fn from(e: String) -> Self {
        Stop::Failed(e)
    }
}

/// Prints one line for the supervisor, at once: the process may be killed
/// at any moment.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The command line, of any of the three processes.
#[derive(Debug, Default)]
struct Options {
    role: Option<String>,
    store: Option<String>,
    workers: Option<u32>,
    seed: Option<u64>,
    generation: Option<u64>,
    index: Option<u32>,
    stall_after: Option<u64>,
    help: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut args = args.iter().peekable();
    if let Some(role) = args.next_if(|a| matches!(a.as_str(), "coordinator" | "worker")) {
        o.role = Some(role.clone());
    }
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        fn num<T: std::str::FromStr>(arg: &str, v: String) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{arg}: {v:?} is not a number"))
        }
        match arg.as_str() {
            "--store" => o.store = Some(value()?),
            "--workers" => o.workers = Some(num(arg, value()?)?),
            "--seed" => o.seed = Some(num(arg, value()?)?),
            "--generation" => o.generation = Some(num(arg, value()?)?),
            "--index" => o.index = Some(num(arg, value()?)?),
            "--stall-after" => o.stall_after = Some(num(arg, value()?)?),
            "--help" | "-h" => o.help = true,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn open(location: &str) -> Result<Arc<dyn BlobStore>, String> {
    open_blob_store(location).map_err(|e| format!("--store {location}: {e}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = match options(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if o.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let child = |need: &[(&str, bool)]| -> Result<Arc<dyn BlobStore>, String> {
        if let Some((name, _)) = need.iter().find(|(_, given)| !given) {
            return Err(format!("{name} is required\n{USAGE}"));
        }
        open(o.store.as_deref().unwrap_or_default())
    };
    let result = match o.role.as_deref() {
        Some("coordinator") => child(&[
            ("--store", o.store.is_some()),
            ("--workers", o.workers.is_some()),
        ])
        .map(|store| coordinator::run(store, o.workers.unwrap_or(0), o.stall_after)),
        Some(_) => child(&[
            ("--store", o.store.is_some()),
            ("--generation", o.generation.is_some()),
            ("--index", o.index.is_some()),
            ("--seed", o.seed.is_some()),
        ])
        .map(|store| {
            worker::run(
                store,
                o.generation.unwrap_or(0),
                o.index.unwrap_or(0),
                o.seed.unwrap_or(0),
            )
        }),
        None => parent(&o).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

/// A fresh, empty location for this run under `url`.
fn fresh_location(url: &str) -> Result<String, String> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let location = format!(
        "{}/run-{secs}-{}",
        url.trim_end_matches('/'),
        std::process::id()
    );
    let page = open(&location)?
        .list(None, None, 1)
        .map_err(|e| format!("--store {location}: {e}"))?;
    if !page.objects.is_empty() {
        return Err(format!("--store {location} is not empty"));
    }
    Ok(location)
}

fn parent(o: &Options) -> Result<(), String> {
    let workers = o.workers.unwrap_or(4);
    if !(2..job::PARTITIONS).contains(&workers) {
        return Err(format!(
            "--workers {workers}: 2 to {} (the plan runs N-1 and N+1)",
            job::PARTITIONS - 1
        ));
    }
    let seed = o.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let temp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let base = match &o.store {
        Some(url) => url.clone(),
        None => temp.path().join("store").display().to_string(),
    };
    let location = fresh_location(&base)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    println!(
        "highwater distributed pipeline: window word counts over {} partitions x {} records \
         ({} key groups), a barrier every {} records per partition ({} epochs)",
        job::PARTITIONS,
        job::RECORDS,
        job::PARTITIONS,
        job::BARRIER,
        job::EPOCHS
    );
    println!("store {location} (seed {seed})");
    let started = Instant::now();
    let command = |args: &[String]| {
        let mut c = Command::new(&exe);
        c.args(args);
        c
    };
    let launch = supervisor::Launcher {
        command: &command,
        store: location.clone(),
        seed,
    };
    let summary = supervisor::supervise(&launch, workers, &mut supervisor::Rng::new(seed))?;

    let store = open(&location)?;
    let output = sink::read_output(store.as_ref())?;
    let bytes: usize = output.iter().map(|(_, b)| b.len()).sum();
    let rescales: Vec<String> = summary
        .rescales
        .iter()
        .map(|(a, b)| format!("{a} -> {b}"))
        .collect();
    println!();
    println!(
        "runs:               {} ({} SIGKILLs, 1 SIGSTOP)",
        summary.runs, summary.kills
    );
    println!("rescales:           {}", rescales.join(", "));
    println!(
        "refused commit:     {}",
        summary.refused.as_deref().unwrap_or("none")
    );
    println!(
        "superseded workers: {} stopped themselves (fenced)",
        summary.zombies_fenced
    );
    println!(
        "output:             {bytes} bytes in {} published objects",
        output.len()
    );
    println!(
        "elapsed:            {:.1} s",
        started.elapsed().as_secs_f64()
    );
    job::verify(seed, &output).map_err(|e| format!("exactly-once check FAILED: {e}"))?;
    if summary.refused.is_none() {
        return Err("exactly-once check FAILED: no frozen coordinator was refused".into());
    }
    println!("exactly-once: verified");
    Ok(())
}
