//! Damage to real files: a WAL and a checkpoint directory written by the library
//! through the real file system, then truncated at every byte offset of the last
//! records and bit-flipped across every file. Recovery must return a committed
//! prefix (tail damage) or a typed corruption error (anything else): never a
//! panic, never state that differs from the model, and never fewer commits
//! than the log holds intact because of damage it could detect.

use crate::common;

use common::read_tree;
use common::sampling::{Rng, Settings};
use common::workload::{run, Layout, Model, Plan};
use highwater::inspect::SEGMENT_HEADER_LEN;
use highwater::storage::FsStorage;
use highwater::{Error, RecoveryManager, WalEntry, WalReadResult, WalReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const COMMITS: u64 = 30;
const SAMPLED_CUTS: usize = 200;
const SAMPLED_FLIPS: usize = 600;

/// Puts `root` back exactly as `files` recorded it.
fn restore(root: &Path, files: &[(PathBuf, Vec<u8>)]) {
    std::fs::remove_dir_all(root).unwrap();
    for (path, bytes) in files {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A typed error that names what is damaged: corruption, a version field
/// that no longer reads as ours, or a checkpoint chain whose every fallback is
/// damaged while the log before it is gone.
fn is_typed_corruption(e: &Error) -> bool {
    e.is_corruption()
        || matches!(
            e,
            Error::UnsupportedVersion { .. } | Error::CheckpointNotCovered { .. }
        )
}

struct Job {
    _dir: tempfile::TempDir,
    root: PathBuf,
    layout: Layout,
    model: Model,
    pristine: Vec<(PathBuf, Vec<u8>)>,
}

fn job() -> Job {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("job");
    let layout = Layout::new(Arc::new(FsStorage), &root);
    let model = Model::new(6, COMMITS);
    let progress = run(
        &layout,
        &Plan::default(),
        model.workload(),
        0,
        COMMITS,
        Default::default(),
        |_| {},
    );
    assert!(progress.error.is_none(), "{:?}", progress.error);
    let pristine = read_tree(&root);
    Job {
        _dir: dir,
        root,
        layout,
        model,
        pristine,
    }
}

impl Job {
    /// Recovers after `damage`, then restores the pristine files. Returns the
    /// commit recovered (whose state, offsets and watermark must be the
    /// model's: anything else panics, naming `what` was damaged), or the error,
    /// which must be typed corruption.
    fn recover_after(&self, what: &str, damage: impl FnOnce()) -> Result<u64, Error> {
        damage();
        let outcome = RecoveryManager::new(self.layout.recovery()).recover();
        restore(&self.root, &self.pristine);
        match outcome {
            Ok(recovered) => Ok(self
                .model
                .check(&recovered, 0, COMMITS)
                .unwrap_or_else(|e| panic!("{what}: wrong data: {e}"))),
            Err(e) if is_typed_corruption(&e) => Err(e),
            Err(e) => panic!("{what}: an untyped error: {e:?}"),
        }
    }

    /// The end position of every Commit in the log, with its commit number.
    fn commit_ends(&self, first_position: u64) -> Vec<(u64, u64)> {
        let mut reader = WalReader::open(self.root.join("wal"), first_position).unwrap();
        let mut ends = Vec::new();
        while let WalReadResult::Entry(entry) = reader.read_next().unwrap() {
            if let WalEntry::Commit { offsets, .. } = entry {
                ends.push((reader.position(), offsets["p0"]));
            }
        }
        ends
    }

    fn files(&self, under: &str) -> Vec<(PathBuf, Vec<u8>)> {
        self.pristine
            .iter()
            .filter(|(p, _)| p.strip_prefix(&self.root).unwrap().starts_with(under))
            .cloned()
            .collect()
    }
}

#[test]
fn truncating_the_newest_segment_anywhere_recovers_a_committed_prefix() {
    let settings = Settings::from_env();
    let job = job();
    let segments: Vec<_> = job
        .files("wal")
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    let (newest, bytes) = segments.last().unwrap();
    let newest_checkpoint = RecoveryManager::new(job.layout.recovery())
        .recover()
        .unwrap()
        .checkpoint
        .expect("the workload checkpoints");
    let segment_start = segment_position(newest);
    let first_position = segment_position(&segments[0].0);
    let commit_ends = job.commit_ends(first_position);
    let mut rng = Rng(settings.seed);
    let cuts = settings.choose(bytes.len() as u64, SAMPLED_CUTS, &mut rng);
    let mut below = 0;
    for &cut in &cuts {
        let what = format!("cut at {cut} of {}", newest.display());
        let outcome = job.recover_after(&what, || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(newest)
                .unwrap()
                .set_len(cut)
                .unwrap()
        });
        // Positions do not count the segment header.
        let end = segment_start + cut.saturating_sub(SEGMENT_HEADER_LEN);
        // Every commit whose record the cut left whole, and no other.
        let intact = commit_ends
            .iter()
            .filter(|(at, _)| *at <= end)
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(0);
        match outcome {
            // A cut below the newest checkpoint's position loses only what
            // that checkpoint holds: it is recovered alone (docs/RECOVERY.md,
            // "The log below a checkpoint").
            Ok(k) if end < newest_checkpoint.wal_position => {
                below += 1;
                assert_eq!(
                    k,
                    newest_checkpoint.source_offsets["p0"],
                    "{what}\n{}",
                    settings.rerun_hint()
                )
            }
            Ok(k) => assert_eq!(k, intact, "{what}\n{}", settings.rerun_hint()),
            Err(e) => panic!("{what}: {e}\n{}", settings.rerun_hint()),
        }
    }
    println!(
        "{} truncations of the newest segment: every intact commit recovered ({below} cuts below the newest checkpoint recovered it alone): all passed",
        cuts.len()
    );
}

/// Whether a damaged file has an intact fallback: any file of a checkpoint
/// other than the first (the base of the only delta chain the job keeps).
fn has_fallback(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.contains("/checkpoints/checkpoint-") && !text.contains("checkpoint-00000000000000000001/")
}

/// A segment's start position, which is its file name.
fn segment_position(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

#[test]
fn bit_flips_anywhere_give_every_commit_or_a_typed_error() {
    let settings = Settings::from_env();
    let job = job();
    let mut rng = Rng(settings.seed ^ 0xf11b);
    let total: u64 = job.pristine.iter().map(|(_, b)| b.len() as u64).sum();
    let flips = settings.choose(total, SAMPLED_FLIPS, &mut rng);
    let (mut full, mut typed) = (0, 0);
    for &flip in &flips {
        // Map the flat offset to a file and an offset in it.
        let mut at = flip;
        let (path, bytes) = job
            .pristine
            .iter()
            .find(|(_, b)| {
                if at < b.len() as u64 {
                    true
                } else {
                    at -= b.len() as u64;
                    false
                }
            })
            .unwrap();
        let bit = 1u8 << rng.below(8);
        let mut damaged = bytes.clone();
        damaged[at as usize] ^= bit;
        let what = format!("bit {bit:#04x} flipped at {} offset {at}", path.display());
        let outcome = job.recover_after(&what, || std::fs::write(path, &damaged).unwrap());
        match outcome {
            // Damage the library can detect never costs an intact commit: an
            // older checkpoint or the log stands in for what was damaged.
            Ok(k) => {
                assert_eq!(
                    k,
                    COMMITS,
                    "bit {bit:#04x} flipped at {} offset {at}: recovered only commit {k}\n{}",
                    path.display(),
                    settings.rerun_hint()
                );
                full += 1;
            }
            // Every checkpoint but the chain's base has a fallback (the one
            // below it, whose log is kept), so damage there must not fail.
            Err(e) if !has_fallback(path) => {
                if std::env::var("HIGHWATER_DAMAGE_VERBOSE").is_ok() {
                    println!("{what}: {e}");
                }
                typed += 1
            }
            Err(e) => panic!(
                "{what}: {e}, though an older checkpoint and its log are intact\n{}",
                settings.rerun_hint()
            ),
        }
    }
    println!(
        "{} bit flips over {} files ({total} bytes): {full} recovered every commit, {typed} typed errors",
        flips.len(),
        job.pristine.len()
    );
}

/// Found by the bit-flip test: retention kept the full checkpoint a delta chain
/// starts from but dropped the log it needs, so damage to the middle of the
/// chain left no checkpoint to fall back to.
#[test]
fn a_damaged_delta_falls_back_to_the_chain_base_with_its_log() {
    let job = job();
    let first_delta = job
        .files("checkpoints")
        .into_iter()
        .find(|(p, _)| {
            p.to_string_lossy()
                .contains("checkpoint-00000000000000000002/part-")
        })
        .expect("checkpoint 2 is a delta on checkpoint 1");
    let (path, mut bytes) = first_delta;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let recovered = RecoveryManager::new(job.layout.recovery())
        .recover()
        .expect("checkpoint 1 and the log after it recover everything");
    assert_eq!(recovered.checkpoint_id, Some(1));
    assert_eq!(
        job.model.check(&recovered, COMMITS, COMMITS).unwrap(),
        COMMITS
    );
    assert_eq!(
        recovered.report.rejected_checkpoints.len(),
        2,
        "3 builds on 2"
    );
}
