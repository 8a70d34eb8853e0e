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
//! (`HIGHWATER_EXAMPLE_SEED=n` repeats a run's kill points). Options (after
//! `--`; `--help` lists them):
//! - `--dir DIR`: the job runs in `DIR` (which must be empty or absent) and
//!   the directory is kept, to inspect with the `highwater` tool. Without it,
//!   the job runs in a temporary directory removed at the end.
//! - `--store URL`: every checkpoint is also published to the blob store at
//!   `URL` (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///path` or a
//!   plain path; `RemoteConfig::open`). The local checkpoint directory is then
//!   the staging area and the cache: each restarted child claims a new writer
//!   generation and restores the newest checkpoint committed at `URL`, and
//!   the parent prints where that state came from. Without `--dir` the
//!   checkpoints go to a fresh prefix, `URL/run-<unix seconds>-<pid>`, so
//!   that runs against one bucket never see each other's checkpoints; with
//!   `--dir` they go to `URL` itself (kept, like the directory), which must
//!   then be empty. Cloud URLs need `--features object-store` (without it,
//!   `s3://…` fails with an error naming the feature); credentials and the
//!   endpoint come from the environment (docs/OBJECT_STORAGE.md).
//! - `--encrypt`: encryption at rest (docs/FORMAT.md §8). A new key is
//!   generated (`DataKey::generate`) into `<job dir>/job.key` (64 hex
//!   digits, mode 0600) and every child seals its checkpoints
//!   (`CheckpointConfig::with_encryption`) and its output
//!   (`FileSink::with_encryption`) with it; the parent reads the published
//!   output back through it to verify. `--key-file PATH` uses the key in
//!   `PATH` instead (and implies `--encrypt`). Needs `--features
//!   encryption` (without it, `--encrypt` fails with an error naming the
//!   feature).
//! - `--check-no-plaintext`: at the end, search every byte of every file
//!   under the job directory for the input's words (at_rest.rs): with
//!   `--encrypt` any word found fails the run; without it, finding none
//!   fails it (the search would be blind).

mod at_rest;
mod pipeline;
mod supervisor;

use highwater::{FileSink, RemoteConfig};
use pipeline::{Job, Paths};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const JOB: Job = Job {
    partitions: 4,
    records: 100_000,
    batch: 1_000,
    ms_per_record: 10,
};
const CRASHES: usize = 6;
const USAGE: &str = "usage: exactly_once_pipeline [--dir DIR] [--store URL] [--encrypt]
         [--key-file PATH] [--check-no-plaintext]

  --dir DIR    run the job in DIR (empty or absent) and keep it; default: a
               temporary directory, removed at the end
  --store URL  also publish every checkpoint to the blob store at URL
               (s3://bucket/prefix, gs://..., az://..., file:///path or a
               plain path); each restart restores from there, through the
               local checkpoint directory as a cache. Without --dir the
               checkpoints go to URL/run-<unix seconds>-<pid>, a fresh prefix
               per run, so runs against one bucket never see each other's
               checkpoints; with --dir they go to URL itself, which must be
               empty. Cloud URLs need `--features object-store`; credentials
               and endpoint come from the AWS_*, GOOGLE_*, AZURE_* variables.
  --encrypt    seal the checkpoints and the output (encryption at rest) with
               a new key written to <job dir>/job.key (hex, mode 0600); the
               final check reads the output through it. Needs
               `--features encryption`
  --key-file PATH
               seal with the key in PATH (64 hex digits) instead; implies
               --encrypt
  --check-no-plaintext
               at the end, search every file under the job directory for
               the input's words: any found fails a run with --encrypt;
               none found fails a run without it
  --help       this text

HIGHWATER_EXAMPLE_SEED=n repeats a run's kill points.";

/// The command line.
#[derive(Debug, Default)]
struct Options {
    /// `--child DIR`: run the job (the parent starts these).
    child: Option<PathBuf>,
    dir: Option<PathBuf>,
    store: Option<String>,
    encrypt: bool,
    key_file: Option<PathBuf>,
    check_no_plaintext: bool,
    help: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--child" => options.child = Some(value()?.into()),
            "--dir" => options.dir = Some(value()?.into()),
            "--store" => options.store = Some(value()?),
            "--encrypt" => options.encrypt = true,
            "--key-file" => {
                options.key_file = Some(value()?.into());
                options.encrypt = true;
            }
            "--check-no-plaintext" => options.check_no_plaintext = true,
            "--help" | "-h" => options.help = true,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = options(&args).and_then(|o| {
        if o.help {
            println!("{USAGE}");
            return Ok(());
        }
        if let Some(dir) = &o.child {
            let mut paths = Paths::under(dir);
            if let Some(location) = &o.store {
                paths = paths.with_remote(location.clone());
            }
            if let Some(key_file) = &o.key_file {
                paths = paths.with_key_file(key_file);
            }
            return supervisor::child(&paths, &JOB).map_err(|e| e.to_string());
        }
        if o.encrypt && !cfg!(feature = "encryption") {
            return Err(
                "--encrypt needs highwater's encryption at rest: enable its \
                 `encryption` feature (cargo run --features encryption ...)"
                    .to_string(),
            );
        }
        match &o.dir {
            Some(dir) => kept_dir(dir).and_then(|d| parent(&d, &o, true)),
            None => tempfile::tempdir()
                .map_err(|e| e.to_string())
                .and_then(|d| parent(d.path(), &o, false)),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where this run publishes its checkpoints, given `--store url`: a fresh
/// prefix under `url`, or `url` itself when the job's directory is kept
/// (then it must be empty, as the directory must). Opened here, so that a
/// location that cannot be opened (a cloud URL without the `object-store`
/// feature) fails before any child starts.
fn remote_location(url: &str, kept: bool) -> Result<String, String> {
    let location = if kept {
        url.to_string()
    } else {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!(
            "{}/run-{secs}-{}",
            url.trim_end_matches('/'),
            std::process::id()
        )
    };
    let remote = RemoteConfig::open(&location).map_err(|e| format!("--store {url}: {e}"))?;
    let page = remote
        .store()
        .list(None, None, 1)
        .map_err(|e| format!("--store {location}: {e}"))?;
    if !page.objects.is_empty() {
        return Err(format!(
            "--store {location} is not empty: with --dir, give an empty location \
             (without --dir, each run uses a fresh prefix under it)"
        ));
    }
    Ok(location)
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

/// With `--encrypt`, the key file every child seals with: `--key-file`'s,
/// or a new key in `<dir>/job.key`.
fn key_file(dir: &Path, o: &Options) -> Result<Option<PathBuf>, String> {
    if !o.encrypt {
        return Ok(None);
    }
    if let Some(path) = &o.key_file {
        return Ok(Some(path.clone()));
    }
    let path = dir.join("job.key");
    #[cfg(feature = "encryption")]
    at_rest::write_new_key(&path)?;
    Ok(Some(path))
}

/// The sink's published output, read through the job's key when sealed.
fn published_output(dir: &Path, key_file: Option<&Path>) -> Result<(Vec<u8>, usize), String> {
    let sink =
        FileSink::open(Paths::under(dir).output, pipeline::SINK).map_err(|e| e.to_string())?;
    #[cfg(feature = "encryption")]
    let sink = match key_file {
        Some(path) => sink.with_encryption(pipeline::job_keys(path).map_err(|e| e.to_string())?),
        None => sink,
    };
    #[cfg(not(feature = "encryption"))]
    let _ = key_file;
    let output = sink.read_committed().map_err(|e| e.to_string())?;
    let files = sink.committed_epochs().map_err(|e| e.to_string())?.len();
    Ok((output, files))
}

/// `--check-no-plaintext`: no word of the input in any file under `dir`
/// when sealed; some when not (else the search is blind).
fn check_no_plaintext(dir: &Path, sealed: bool) -> Result<(), String> {
    let hits = at_rest::plaintext_hits(dir, &pipeline::WORDS)?;
    match (sealed, hits.first()) {
        (true, None) => println!("plaintext check:    no word of the input in any file"),
        (true, Some((path, word))) => {
            return Err(format!(
                "plaintext check FAILED: {word:?} in {} ({} hits)",
                path.display(),
                hits.len()
            ))
        }
        (false, Some(_)) => println!(
            "plaintext check:    {} hits of the input's words (not encrypted, as expected)",
            hits.len()
        ),
        (false, None) => {
            return Err(
                "plaintext check FAILED: no word found in an unencrypted run: \
                 the search is blind"
                    .to_string(),
            )
        }
    }
    Ok(())
}

fn parent(dir: &Path, o: &Options, kept: bool) -> Result<(), String> {
    let store = o.store.as_deref();
    let remote = store.map(|url| remote_location(url, kept)).transpose()?;
    let key_file = key_file(dir, o)?;
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
    if let Some(location) = &remote {
        println!(
            "checkpoints published to {location}; {} is their cache",
            Paths::under(dir).checkpoints.display()
        );
    }
    if let Some(path) = &key_file {
        println!(
            "encryption at rest: checkpoints and output sealed with the key in {}",
            path.display()
        );
    }
    let started = Instant::now();
    let command = || {
        let mut c = Command::new(&exe);
        c.arg("--child").arg(dir);
        if let Some(location) = &remote {
            c.arg("--store").arg(location);
        }
        if let Some(path) = &key_file {
            c.arg("--key-file").arg(path);
        }
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
        for r in &run.report.remote {
            println!("       {}", remote_line(r));
        }
    })?;

    let (output, files) = published_output(dir, key_file.as_deref())?;
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
    if let Some(location) = &remote {
        let generations: Vec<String> = totals
            .remote
            .iter()
            .map(|r| r.generation.to_string())
            .collect();
        println!(
            "remote:             {location}: generations {}; {} bytes downloaded in {} requests",
            generations.join(", "),
            totals
                .remote
                .iter()
                .map(|r| r.bytes_downloaded)
                .sum::<u64>(),
            totals.remote.iter().map(|r| r.requests).sum::<u64>()
        );
    }
    println!(
        "output:             {} bytes in {files} published epoch files",
        output.len()
    );
    println!(
        "elapsed:            {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if o.check_no_plaintext {
        check_no_plaintext(dir, key_file.is_some())?;
    }
    pipeline::verify(&JOB, &output).map_err(|e| format!("exactly-once check FAILED: {e}"))?;
    println!("exactly-once: verified");
    if kept {
        // A sealed job is read with its key (docs/CLI.md, "Encrypted jobs").
        let key = key_file
            .as_ref()
            .map(|k| format!("--key-file {} ", k.display()))
            .unwrap_or_default();
        println!(
            "job directory kept: inspect it with `highwater {key}checkpoints ls {}`",
            Paths::under(dir).checkpoints.display()
        );
        if let Some(location) = &remote {
            println!("remote checkpoints kept at {location}");
        }
    }
    Ok(())
}

/// Where a recovery's state came from: `remote: generation 3, restored
/// checkpoint 12; cache hits [10, 12], downloaded [] (0 bytes, 0 requests)`.
fn remote_line(r: &supervisor::RemoteRecovery) -> String {
    let mut line = format!(
        "remote: generation {}, {}; cache hits {:?}, downloaded {:?} ({} bytes, {} requests)",
        r.generation,
        r.restored
            .map_or("nothing committed yet".to_string(), |c| format!(
                "restored checkpoint {c}"
            )),
        r.cache_hits,
        r.downloaded,
        r.bytes_downloaded,
        r.requests
    );
    if !r.removed.is_empty() {
        line.push_str(&format!(
            "; removed uncommitted local checkpoints {:?}",
            r.removed
        ));
    }
    if r.rejected > 0 {
        line.push_str(&format!(
            "; {} newer committed checkpoints could not be restored",
            r.rejected
        ));
    }
    line
}
