//! A job checkpointing asynchronously (`SinkCoordinator::begin_checkpoint`,
//! the next epoch processed while the checkpoint is written, then
//! `finish_checkpoint`), its child process killed with SIGKILL at random
//! points — nearly always with a checkpoint in flight. The published output
//! must hold every record exactly once, and the final checkpoint's state must
//! count every record once.
//!
//! `HIGHWATER_CRASH_EXHAUSTIVE=1` kills 30 children instead of 8;
//! `HIGHWATER_CRASH_SEED=n` changes the kill points.

use crate::common;
use common::sampling::{Rng, Settings};
use highwater::{
    CheckpointConfig, CheckpointRequest, Error, FileSink, IncrementalCheckpointManager, OwnedPart,
    SinkCoordinator, TrackedState,
};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const CHILD_ENV: &str = "HIGHWATER_ASYNC_KILL_CHILD_DIR";

const RECORDS: u64 = 20_000;
const BATCH: u64 = 200;
const KEYS: u64 = 2_000;
const PART: &str = "counts";
const SOURCE: &str = "numbers";

fn key(record: u64) -> Vec<u8> {
    format!("k{:05}", record % KEYS).into_bytes()
}

fn count(value: Option<&[u8]>) -> u64 {
    value.map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])))
}

fn open(dir: &Path) -> highwater::Result<(FileSink, IncrementalCheckpointManager)> {
    let sink = FileSink::open(dir.join("out"), "out")?;
    let config = CheckpointConfig::new(dir.join("ckpt"))
        .with_max_retained(3)
        .with_max_delta_chain(6);
    Ok((sink, IncrementalCheckpointManager::new(config)?))
}

/// The job: reads `BATCH` records per epoch, counts them per key, writes one
/// line per record to the sink; each epoch's checkpoint is written while the
/// next epoch is processed.
fn child(dir: &Path) -> highwater::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut say = |line: &str| {
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    let (mut sink, manager) = open(dir)?;
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink])?;
    let (mut state, mut offset) = match coordinator.restored() {
        Some(c) => (
            TrackedState::from_snapshot(&coordinator.manager().load_snapshot(c.id, PART)?),
            c.source_offsets.get(SOURCE).copied().unwrap_or(0),
        ),
        None => (TrackedState::new(), 0),
    };
    say("recovered");
    let mut need_full = false;
    while offset < RECORDS {
        let end = (offset + BATCH).min(RECORDS);
        let mut lines = String::new();
        for record in offset..end {
            let k = key(record);
            let n = count(state.get(&k)) + 1;
            state.put(k, n.to_le_bytes().to_vec());
            lines.push_str(&format!("{record}\n"));
        }
        sink.write(lines.as_bytes())?;
        offset = end;
        std::thread::sleep(Duration::from_millis(1)); // the rest of the epoch's work
        match coordinator.finish_checkpoint(&mut [&mut sink]) {
            Ok(_) | Err(Error::SinkCommitPending { .. }) => {}
            Err(e @ (Error::Sink { .. } | Error::SinkCoordinatorFailed { .. })) => return Err(e),
            // Its delta is in no checkpoint: the next one gives the whole state.
            Err(_) => need_full = true,
        }
        say("finished");
        let part = if need_full {
            OwnedPart::Snapshot(state.snapshot())
        } else {
            OwnedPart::Delta(state.delta())
        };
        let request = CheckpointRequest::new(0)
            .with_offsets(HashMap::from([(SOURCE.to_string(), offset)]))
            .with_owned_part(PART, part);
        need_full = coordinator
            .begin_checkpoint(request, &mut [&mut sink])
            .is_err();
        state.mark_checkpointed();
        say("begun");
    }
    if coordinator.finish_checkpoint(&mut [&mut sink])?.is_none() {
        say("the last checkpoint was not begun");
        std::process::exit(2);
    }
    say("done");
    Ok(())
}

/// Runs the child until it finishes, killing the first `crashes` runs at a
/// random point; returns (kills, kills that landed with a checkpoint in flight).
fn supervise(dir: &Path, crashes: usize, rng: &mut Rng) -> (usize, usize) {
    let exe = std::env::current_exe().expect("the test binary");
    let (mut killed, mut in_flight) = (0, 0);
    loop {
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the child");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let kill = killed < crashes;
        let delay = Duration::from_micros(2_000 + rng.below(60_000));
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut last = String::new();
        let mut kill_at = None;
        let mut sent_kill = false;
        loop {
            match rx.recv_timeout(Duration::from_micros(200)) {
                Ok(line) => {
                    if line == "recovered" && kill {
                        kill_at = Some(Instant::now() + delay);
                    }
                    last = line;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if !sent_kill && kill_at.is_some_and(|t| Instant::now() >= t) {
                let _ = child.kill();
                sent_kill = true;
                in_flight += usize::from(last == "begun");
            }
        }
        let _ = reader.join();
        let status = child.wait().expect("wait for the child");
        if status.success() {
            assert_eq!(last, "done");
            return (killed, in_flight);
        }
        assert!(
            sent_kill && status.signal() == Some(9),
            "the child failed on its own ({status})"
        );
        killed += 1;
    }
}

pub(crate) fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        if let Err(e) = child(Path::new(&dir)) {
            eprintln!("child: {e}");
            std::process::exit(1);
        }
        return;
    }
    let settings = Settings::from_env();
    let crashes = if settings.exhaustive { 30 } else { 8 };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut rng = Rng(settings.seed | 1);
    let (killed, in_flight) = supervise(dir.path(), crashes, &mut rng);
    assert_eq!(
        killed,
        crashes,
        "every planned kill lands before the end; {}",
        settings.rerun_hint()
    );
    assert!(
        in_flight > 0,
        "no kill landed with a checkpoint in flight; {}",
        settings.rerun_hint()
    );

    let (sink, manager) = open(dir.path()).expect("open the job");
    let output = sink.read_committed().expect("read the output");
    let records: Vec<u64> = String::from_utf8(output)
        .expect("text")
        .lines()
        .map(|l| l.parse().expect("a record number"))
        .collect();
    let expected: Vec<u64> = (0..RECORDS).collect();
    assert!(
        records == expected,
        "exactly-once violated: {} records published, first difference at {:?}; {}",
        records.len(),
        records.iter().zip(&expected).position(|(a, b)| a != b),
        settings.rerun_hint()
    );
    let latest = manager
        .find_latest_checkpoint()
        .unwrap()
        .expect("a checkpoint");
    assert_eq!(latest.source_offsets.get(SOURCE), Some(&RECORDS));
    let state = manager.load_snapshot(latest.id, PART).unwrap();
    assert_eq!(state.len() as u64, KEYS);
    for (k, v) in state.iter() {
        assert_eq!(
            count(Some(v)),
            RECORDS / KEYS,
            "key {:?}",
            String::from_utf8_lossy(k)
        );
    }
    println!(
        "async_checkpoint_kill: {killed} SIGKILLs, {in_flight} with a checkpoint in flight: ok"
    );
}
