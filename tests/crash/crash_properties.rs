//! Property tests over random workloads, random plans (sync policy and
//! interval, checkpoint interval, retention, delta chain length, segment size)
//! and random crash points and crash images, recovered in the default mode
//! or point-in-time: recovery returns the model's
//! state at a commit no older than the last acknowledged one.

use crate::common;

use common::workload::{count_operations, run, run_new_job, Layout, Model, Plan, Resume};
use highwater::storage::{CrashImage, CrashSimStorage};
use highwater::{RecoveryManager, SyncPolicy, WalRecoveryMode};
use proptest::prelude::*;

fn plans() -> impl Strategy<Value = Plan> {
    (
        prop_oneof![Just(SyncPolicy::Manual), Just(SyncPolicy::EveryWrite)],
        1..6u64,
        2..12u64,
        prop::sample::select(vec![4096u64, 8192, 1 << 20]),
        1..4usize,
        0..4u32,
    )
        .prop_map(
            |(
                sync_policy,
                sync_every,
                checkpoint_every,
                segment_size,
                max_retained,
                max_delta_chain,
            )| Plan {
                sync_policy,
                sync_every,
                checkpoint_every,
                segment_size,
                max_retained,
                max_delta_chain,
                retry_failed_checkpoints: false,
            },
        )
}

/// 256 cases, 5000 with `HIGHWATER_CRASH_EXHAUSTIVE=1`.
fn cases() -> u32 {
    if std::env::var("HIGHWATER_CRASH_EXHAUSTIVE").is_ok_and(|v| v == "1") {
        5000
    } else {
        256
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_random_crash_of_a_random_workload_recovers_an_acknowledged_commit(
        seed in any::<u64>(),
        plan in plans(),
        commits in 4..36u64,
        crash_fraction in 0.0..1.0f64,
        image_seed in any::<u64>(),
        keep in any::<bool>(),
        point_in_time in any::<bool>(),
    ) {
        let model = Model::new(seed, commits + 1);
        let (total, _) = count_operations(&plan, model.workload(), commits);
        let point = (total as f64 * crash_fraction) as u64;

        let sim = CrashSimStorage::new();
        sim.crash_at(point);
        let progress = run_new_job(&sim, &plan, model.workload(), commits);
        sim.crash();
        let image = if keep { CrashImage::KeepUnsynced } else { CrashImage::Torn { seed: image_seed } };
        let disk = sim.image(image);
        let mode = if point_in_time { WalRecoveryMode::PointInTime } else { WalRecoveryMode::TolerateTornTail };
        let recovered = RecoveryManager::new(Layout::sim(&disk).recovery().with_wal_recovery_mode(mode)).recover();
        prop_assert!(recovered.is_ok(), "crash at {point} ({:?}), {image:?}: {:?}", sim.crashed(), recovered.err());
        let recovered = recovered.unwrap();
        let k = model.check(&recovered, progress.acked, progress.attempted);
        prop_assert!(k.is_ok(), "crash at {point} ({:?}), {image:?}: {}", sim.crashed(), k.unwrap_err());

        // One more commit after recovery survives the next crash, alone.
        let k = k.unwrap();
        let resumed = run(&Layout::sim(&disk), &plan, model.workload(), k, k + 1, Resume::from_recovered(&recovered), |_| {});
        prop_assert!(resumed.error.is_none(), "{:?}", resumed.error);
        disk.crash();
        let again = RecoveryManager::new(Layout::sim(&disk.image(CrashImage::LoseUnsynced)).recovery()).recover();
        prop_assert!(again.is_ok(), "{:?}", again.err());
        let after = model.check(&again.unwrap(), k + 1, k + 1);
        prop_assert!(after.is_ok(), "{}", after.unwrap_err());
    }
}
