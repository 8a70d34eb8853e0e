//! Crash at every storage operation of a workload that appends, commits, rotates
//! segments, checkpoints (full and delta), enforces retention and drops old
//! segments; for each crash point and each crash image, recovery must return
//! exactly the model's state at a commit no older than the last acknowledged
//! one. Recovery itself is crashed and rerun, and the recovered log must take
//! new commits without reviving anything it cut.
//!
//! CI runs a seeded sample of crash points; `HIGHWATER_CRASH_EXHAUSTIVE=1` runs
//! all of them (and every crash point of each recovery), and
//! `HIGHWATER_CRASH_SEED=n` picks another sample.

use crate::common;

use common::sampling::{Rng, Settings};
use common::workload::{count_operations, run, run_new_job, Layout, Model, Plan, Resume};
use highwater::storage::{CrashImage, CrashSimStorage};
use highwater::{RecoveredState, RecoveryManager};

const COMMITS: u64 = 40;
/// Crash points sampled per workload in the default (CI) mode.
const SAMPLED_POINTS: usize = 120;

fn recover(storage: &CrashSimStorage) -> highwater::Result<RecoveredState> {
    RecoveryManager::new(Layout::sim(storage).recovery()).recover()
}

fn images(seed: u64) -> [CrashImage; 4] {
    [
        CrashImage::LoseUnsynced,
        CrashImage::KeepUnsynced,
        CrashImage::Torn { seed },
        CrashImage::Torn {
            seed: seed.rotate_left(17) ^ 0xabcdef,
        },
    ]
}

/// Everything checked for one crash image of the workload; returns the crash
/// points of recovery it tried.
fn check_image(
    model: &Model,
    plan: &Plan,
    crashed: &CrashSimStorage,
    image: CrashImage,
    (acked, attempted): (u64, u64),
    settings: &Settings,
    rng: &mut Rng,
) -> Result<u64, String> {
    // 1. Recovery returns a committed state no older than the last ack.
    let disk = crashed.image(image);
    let recovered = recover(&disk).map_err(|e| format!("recovery failed: {e}"))?;
    let k = model.check(&recovered, acked, attempted)?;
    let recovery_ops = disk.operations();

    // 2. A crash at any point of recovery, then recovery again.
    let points = settings.choose(recovery_ops, 4, rng);
    for &j in &points {
        let disk = crashed.image(image);
        disk.crash_at(j);
        let _ = recover(&disk);
        disk.crash();
        let again = disk.image(CrashImage::Torn {
            seed: rng.below(u64::MAX),
        });
        let recovered = recover(&again)
            .map_err(|e| format!("recovery after a crash in recovery at op {j} failed: {e}"))?;
        model
            .check(&recovered, acked, attempted)
            .map_err(|e| format!("after a crash in recovery at op {j}: {e}"))?;
    }

    // 3. The recovered log takes new commits; what recovery cut stays cut.
    let resumed = run(
        &Layout::sim(&disk),
        plan,
        model.workload(),
        k,
        k + 2,
        Resume::from_recovered(&recovered),
        |_| {},
    );
    if let Some(e) = resumed.error {
        return Err(format!("resuming after recovery at commit {k} failed: {e}"));
    }
    disk.crash();
    let after = recover(&disk.image(CrashImage::LoseUnsynced))
        .map_err(|e| format!("recovery after resuming failed: {e}"))?;
    model
        .check(&after, k + 2, k + 2)
        .map_err(|e| format!("after resuming at commit {k}: {e}"))?;
    Ok(points.len() as u64)
}

fn crash_every_operation(plan: Plan, workload_seed: u64) {
    let settings = Settings::from_env();
    let model = Model::new(workload_seed, COMMITS + 2);
    let (total, checkpoints) = count_operations(&plan, model.workload(), COMMITS);
    assert!(checkpoints >= 4, "the workload checkpoints, full and delta");

    let mut rng = Rng(settings.seed ^ workload_seed);
    let points = settings.choose(total, SAMPLED_POINTS, &mut rng);
    let (mut images_checked, mut recovery_crashes) = (0, 0);
    for &point in &points {
        let sim = CrashSimStorage::new();
        sim.crash_at(point);
        let progress = run_new_job(&sim, &plan, model.workload(), COMMITS);
        sim.crash();
        for image in images(rng.below(u64::MAX)) {
            let outcome = check_image(
                &model,
                &plan,
                &sim,
                image,
                (progress.acked, progress.attempted),
                &settings,
                &mut rng,
            );
            match outcome {
                Ok(n) => recovery_crashes += n,
                Err(e) => panic!(
                    "crash point {point} ({}), image {image:?}, acked {} attempted {}: {e}\n{}",
                    sim.crashed().unwrap_or_default(),
                    progress.acked,
                    progress.attempted,
                    settings.rerun_hint()
                ),
            }
            images_checked += 1;
        }
    }
    println!(
        "seed {:#x}: {} of {total} crash points, {images_checked} crash images, {recovery_crashes} crashes during recovery: all passed",
        settings.seed,
        points.len()
    );
}

#[test]
fn crash_at_every_operation_of_a_checkpointing_workload() {
    crash_every_operation(Plan::default(), 1);
}

#[test]
fn crash_at_every_operation_with_frequent_full_checkpoints() {
    crash_every_operation(
        Plan {
            sync_every: 1,
            checkpoint_every: 5,
            max_retained: 1,
            max_delta_chain: 1,
            ..Plan::default()
        },
        2,
    );
}

/// Every append durable when it returns: the writer preallocates zeros ahead
/// of its records (cut when a segment is sealed), so crashes land in a
/// segment whose file is longer than its records, and in writes into zeros.
#[test]
fn crash_at_every_operation_of_a_durable_writer_that_preallocates() {
    crash_every_operation(
        Plan {
            sync_policy: highwater::SyncPolicy::EveryWrite,
            segment_size: 8192,
            ..Plan::default()
        },
        3,
    );
}
