//! Every runbook of docs/OPERATIONS.md, run step by step against a job in the
//! state the section describes. Each test names its section.

use assert_cmd::Command;
use highwater::{
    CheckpointConfig, CheckpointRequest, FileSink, IncrementalCheckpointManager, RecoveryConfig,
    RecoveryManager, SinkCoordinator, SyncPolicy, WalEntry, WalOptions, WriteAheadLog,
};
use std::path::{Path, PathBuf};

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../examples/cli_demo/job.rs"]
#[allow(dead_code)]
mod job;

/// Runs the tool; stdout + stderr and the exit code.
fn highwater(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (String, i32) {
    let out = Command::cargo_bin("highwater")
        .unwrap()
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (text, out.status.code().expect("exited"))
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn first_segment(wal: &Path) -> PathBuf {
    common::segments(wal).remove(0)
}

/// The job's next start: recovery as a job runs it (repairing).
fn start(ckpt: &Path, wal: &Path) -> highwater::Result<highwater::RecoveredState> {
    RecoveryManager::new(RecoveryConfig::new(ckpt, wal)).recover()
}

#[test]
fn runbook_damage_below_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = job::write_demo_job(tmp.path()).unwrap();
    // The first record (position 0) lies below both checkpoints.
    flip_byte(
        &first_segment(&demo.wal),
        highwater::inspect::SEGMENT_HEADER_LEN + 20,
    );
    let (out, code) = highwater(&[&"verify", &demo.ckpt, &"--wal", &demo.wal]);
    assert_eq!(code, 1, "damage is found: {out}");
    assert!(out.contains("recovers checkpoint 2"), "{out}");
    let (out, code) = highwater(&[&"recover", &demo.ckpt, &demo.wal, &"--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("released damage"), "{out}");
    // Do: nothing by hand; the next start releases and recovers.
    let recovered = start(&demo.ckpt, &demo.wal).unwrap();
    assert_eq!(recovered.checkpoint_id, Some(2));
    let (out, code) = highwater(&[&"verify", &demo.ckpt, &"--wal", &demo.wal]);
    assert_eq!(code, 0, "{out}");
    // The released log opens for every tool too.
    let (out, code) = highwater(&[&"wal", &"repair", &demo.wal]);
    assert_eq!(code, 0, "{out}");
    let (out, code) = highwater(&[&"wal", &"dump", &demo.wal]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn runbook_damage_after_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = job::write_demo_job(tmp.path()).unwrap();
    // A record after the delta checkpoint's position, followed by valid ones.
    let segment = first_segment(&demo.wal);
    let at = highwater::inspect::SEGMENT_HEADER_LEN + demo.delta_position + 20;
    flip_byte(&segment, at);
    assert!(
        start(&demo.ckpt, &demo.wal).is_err(),
        "the default mode refuses"
    );
    let (out, code) = highwater(&[&"recover", &demo.ckpt, &demo.wal, &"--dry-run"]);
    assert_eq!(code, 1, "{out}");
    // 1. Look at what is there.
    let from = demo.delta_position.to_string();
    let (out, code) = highwater(&[&"wal", &"dump", &demo.wal, &"--from", &from]);
    assert_eq!(code, 1, "the dump stops at the damage: {out}");
    // 2. Cut at the damage, dry run first.
    let repair = |dry: bool| {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"wal",
            &"repair",
            &demo.wal,
            &"--mode",
            &"point-in-time",
            &"--checkpoints",
            &demo.ckpt,
        ];
        if dry {
            args.push(&"--dry-run");
        }
        highwater(&args)
    };
    let before = std::fs::read(&segment).unwrap();
    let (out, code) = repair(true);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        before,
        "a dry run changes nothing"
    );
    let (out, code) = repair(false);
    assert_eq!(code, 0, "{out}");
    // 3. Start the job.
    let recovered = start(&demo.ckpt, &demo.wal).unwrap();
    assert_eq!(recovered.checkpoint_id, Some(2));
    assert_eq!(recovered.wal_position, demo.delta_position);
}

#[test]
fn runbook_a_log_shorter_than_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (tmp.path().join("checkpoints"), tmp.path().join("wal"));
    let wal = WriteAheadLog::open(
        &wal_dir,
        WalOptions::default().with_sync_policy(SyncPolicy::Manual),
    )
    .unwrap();
    wal.append(&WalEntry::Commit {
        offsets: Default::default(),
        watermark: None,
    })
    .unwrap();
    wal.sync().unwrap();
    let synced = wal.position();
    for _ in 0..3 {
        wal.append(&WalEntry::Commit {
            offsets: Default::default(),
            watermark: None,
        })
        .unwrap();
    }
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    // Checkpointed at the log's position without giving it the log: the
    // unsynced commits are then lost (the file is cut back to what was synced).
    let position = wal.position();
    manager
        .create_checkpoint(CheckpointRequest::new(position))
        .unwrap();
    drop((manager, wal));
    let segment = first_segment(&wal_dir);
    let keep = highwater::inspect::SEGMENT_HEADER_LEN + synced;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(keep)
        .unwrap();

    let (out, code) = highwater(&[&"verify", &ckpt, &"--wal", &wal_dir]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("below the checkpoint's position"), "{out}");
    // A job that asked for the log to be there stops instead...
    let strict = RecoveryConfig::new(&ckpt, &wal_dir).with_require_wal(true);
    assert!(matches!(
        RecoveryManager::new(strict).recover(),
        Err(highwater::Error::WalBehindCheckpoint { .. })
    ));
    // ...and starts once without it.
    let recovered = start(&ckpt, &wal_dir).unwrap();
    assert_eq!(recovered.wal_position, position);
    let wal = WriteAheadLog::open(&wal_dir, WalOptions::default()).unwrap();
    assert_eq!(
        wal.position(),
        position,
        "the log continues at the checkpoint"
    );
}

#[test]
fn runbook_a_checkpoint_that_does_not_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = job::write_demo_job(tmp.path()).unwrap();
    let part = std::fs::read_dir(demo.ckpt.join("checkpoint-00000000000000000002"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "hwstate"))
        .unwrap();
    let len = std::fs::metadata(&part).unwrap().len();
    flip_byte(&part, len - 3);
    let (out, _) = highwater(&[&"checkpoints", &"ls", &demo.ckpt]);
    assert!(out.contains("DAMAGED"), "{out}");
    // 1. Does the job still recover?
    let (out, code) = highwater(&[&"verify", &demo.ckpt, &"--wal", &demo.wal]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("recovers checkpoint 1"), "{out}");
    // 2. Remove the damaged checkpoint, dry run first.
    let (out, code) = highwater(&[&"checkpoints", &"delete", &demo.ckpt, &"2", &"--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("would delete checkpoint 2") && out.contains("checkpoint 1"),
        "{out}"
    );
    assert!(part.exists());
    // Refused for the parent of a kept delta.
    let (out, code) = highwater(&[&"checkpoints", &"delete", &demo.ckpt, &"1", &"--dry-run"]);
    assert_ne!(code, 0, "{out}");
    let (out, code) = highwater(&[&"checkpoints", &"delete", &demo.ckpt, &"2"]);
    assert_eq!(code, 0, "{out}");
    let (out, code) = highwater(&[&"verify", &demo.ckpt, &"--wal", &demo.wal]);
    assert_eq!(code, 0, "{out}");
}

/// A job with a file sink that published epochs 1 and 2, each closed by a
/// checkpoint.
fn sink_job(root: &Path) -> (PathBuf, PathBuf) {
    let (ckpt, out) = (root.join("checkpoints"), root.join("output"));
    let mut sink = FileSink::open(&out, "out").unwrap();
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let mut coordinator = SinkCoordinator::recover(manager, &mut [&mut sink]).unwrap();
    for line in ["one\n", "two\n"] {
        sink.write(line.as_bytes()).unwrap();
        coordinator
            .checkpoint(CheckpointRequest::new(0), &mut [&mut sink])
            .unwrap();
    }
    (ckpt, out)
}

fn recover_sink(ckpt: &Path, out: &Path) -> highwater::Result<()> {
    let mut sink = FileSink::open(out, "out")?;
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(ckpt))?;
    SinkCoordinator::recover(manager, &mut [&mut sink]).map(|_| ())
}

#[test]
fn runbook_a_sink_ahead_of_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, out) = sink_job(tmp.path());
    let wal = tmp.path().join("wal");
    WriteAheadLog::new(&wal, std::time::Duration::ZERO).unwrap();
    // The checkpoint that covered epoch 2 is lost.
    std::fs::remove_dir_all(ckpt.join("checkpoint-00000000000000000002")).unwrap();
    assert!(matches!(
        recover_sink(&ckpt, &out),
        Err(highwater::Error::Sink { .. })
    ));
    let (text, code) = highwater(&[&"recover", &ckpt, &wal, &"--dry-run", &"--sink", &out]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("SinkAheadOfCheckpoint"), "{text}");
    // 1. See what is published.
    let (text, code) = highwater(&[&"sink", &"ls", &out]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("2 published"), "{text}");
    // 2. Move the later epoch's output aside; the sources produce it again.
    let later = out.join(highwater::sink::committed_file_name(2));
    std::fs::rename(&later, tmp.path().join("epoch-2.kept")).unwrap();
    let (text, code) = highwater(&[&"recover", &ckpt, &wal, &"--dry-run", &"--sink", &out]);
    assert_eq!(code, 0, "{text}");
    recover_sink(&ckpt, &out).unwrap();
}

#[test]
fn runbook_staged_output_nobody_owns() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, out) = sink_job(tmp.path());
    let wal = tmp.path().join("wal");
    WriteAheadLog::new(&wal, std::time::Duration::ZERO).unwrap();
    // A restore from backup put back epoch 1's staged file.
    let staged = out.join(".epoch-00000000000000000001.staged");
    std::fs::write(&staged, b"one\n").unwrap();
    assert!(recover_sink(&ckpt, &out).is_err());
    // 1. See it.
    let (text, code) = highwater(&[&"sink", &"ls", &out]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("1 staged"), "{text}");
    let (text, code) = highwater(&[&"recover", &ckpt, &wal, &"--dry-run", &"--sink", &out]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("SinkTransactionInvalid"), "{text}");
    // 2. Move it aside for inspection; the job starts.
    std::fs::rename(&staged, tmp.path().join("epoch-1.staged.kept")).unwrap();
    let (text, code) = highwater(&[&"recover", &ckpt, &wal, &"--dry-run", &"--sink", &out]);
    assert_eq!(code, 0, "{text}");
    recover_sink(&ckpt, &out).unwrap();
}
