//! A real process kill. A child process recovers the job, then commits with a
//! sync after every commit (checkpointing and dropping old segments as it goes)
//! and reports each acknowledged commit on stdout. The parent kills it with
//! SIGKILL at random moments, many times over (some kills land during the
//! child's own recovery), and after every kill recovers the job itself: every
//! acknowledged commit must survive, with exactly the model's state, offsets
//! and watermark.
//!
//! `HIGHWATER_CRASH_EXHAUSTIVE=1` runs 200 kills instead of 25
//! (`HIGHWATER_CRASH_KILLS=n`: n kills);
//! `HIGHWATER_CRASH_SEED=n` changes the kill times. (No test harness: the
//! binary is its own child.)

use crate::common;

use common::sampling::{Rng, Settings};
use common::workload::{run, Layout, Model, Plan, Resume, Workload};
use highwater::storage::FsStorage;
use highwater::RecoveryManager;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const CHILD_ENV: &str = "HIGHWATER_KILL_CHILD_DIR";
const SEED: u64 = 7;

fn plan() -> Plan {
    Plan {
        sync_every: 1,
        checkpoint_every: 16,
        ..Plan::default()
    }
}

pub(crate) fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(dir) => child(Path::new(&dir)),
        Err(_) => parent(),
    }
}

/// Recovers, then commits until killed, printing `start k` and `ack n` lines.
fn child(root: &Path) {
    let layout = Layout::new(Arc::new(FsStorage), root);
    let recovered = RecoveryManager::new(layout.recovery())
        .recover()
        .expect("the child's recovery");
    let start = recovered.source_offsets.get("p0").copied().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    writeln!(out, "start {start}").unwrap();
    out.flush().unwrap();
    let progress = run(
        &layout,
        &plan(),
        &Workload { seed: SEED },
        start,
        start + 1_000_000,
        Resume::from_recovered(&recovered),
        |n| {
            writeln!(out, "ack {n}").unwrap();
            out.flush().unwrap();
        },
    );
    eprintln!("the child stopped on its own: {:?}", progress.error);
    std::process::exit(1);
}

/// One child's life: spawn, kill at a random moment, collect what it reported.
struct Life {
    started_at: Option<u64>,
    last_ack: Option<u64>,
}

fn live_and_die(root: &Path, rng: &mut Rng) -> Life {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    if rng.below(4) == 0 {
        // Kill during the child's start-up and recovery.
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
    } else {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the child starts within a minute");
        seen.push(line);
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().unwrap();
    // Killed by us, not stopped by a panic or an error of its own.
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL: {status:?}"
    );
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    let number = |prefix: &str| {
        seen.iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|n| n.parse::<u64>().unwrap())
            .max()
    };
    Life {
        started_at: number("start "),
        last_ack: number("ack "),
    }
}

fn parent() {
    let settings = Settings::from_env();
    let kills = std::env::var("HIGHWATER_CRASH_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if settings.exhaustive { 200 } else { 25 });
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("job");
    let layout = Layout::new(Arc::new(FsStorage), &root);
    let mut model = Model::new(SEED, 0);
    let mut rng = Rng(settings.seed ^ 0x4b11);
    let mut acked = 0;
    let mut during_recovery = 0;
    for kill in 0..kills {
        let life = live_and_die(&root, &mut rng);
        if let Some(start) = life.started_at {
            assert!(
                start >= acked,
                "kill {kill}: the child recovered commit {start}, but {acked} were acknowledged\n{}",
                settings.rerun_hint()
            );
        } else {
            during_recovery += 1;
        }
        acked = acked.max(life.last_ack.unwrap_or(0));
        // A commit can be on disk without its ack having been printed; the
        // next one is never started before the ack.
        model.extend_to(acked + 1);
        let recovered = RecoveryManager::new(layout.recovery())
            .recover()
            .unwrap_or_else(|e| {
                panic!(
                    "kill {kill}: recovery failed: {e}\n{}",
                    settings.rerun_hint()
                )
            });
        let k = model
            .check(&recovered, acked, acked + 1)
            .unwrap_or_else(|e| panic!("kill {kill}: {e}\n{}", settings.rerun_hint()));
        acked = k;
    }
    println!(
        "{kills} SIGKILLs ({during_recovery} during start-up or recovery), {acked} commits acknowledged: every one survived"
    );
    assert!(acked > 0, "the children committed something");
}
