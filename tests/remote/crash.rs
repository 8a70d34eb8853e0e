//! Faults at every blob operation of a workload of publishes and restores
//! (opens on the same machine, on another, writes of full and delta
//! checkpoints), on the simulator: a crash of the client (the mutation
//! takes effect or not by the seeded coin), a lost answer, a transient
//! error, throttling. After each, a rebooted process opens on the same
//! cache, on the other machine's, or on a fresh one, and must restore
//! exactly what the model allows (`harness` module docs), then go on.

use crate::harness::linked;
use crate::harness::{
    check_sequence, count_ops, is_blob, recover_and_resume, run, Env, Hooked, Model, When, WORKLOAD,
};
use highwater::blob::{BlobFault, BlobOp, SimBlobStore};
use highwater::storage::{CrashImage, CrashSimStorage};
use std::sync::Arc;

/// Where the rebooted process opens after a fault at operation `k`.
fn machine(k: u64) -> &'static str {
    ["a", "b", "fresh"][(k % 3) as usize]
}

/// Runs the workload with `fault` planned at operation `k` of a bucket seeded
/// by `seed`, then recovers; returns whether the checkpoint in doubt (if
/// any) came back.
fn fault_at(k: u64, seed: u64, fault: BlobFault) -> Option<bool> {
    let sim = SimBlobStore::new(seed);
    sim.fail_at(k, fault);
    // A crash of the client is a crash of the process: its disk crashes
    // with it (nothing after the crash, a withdrawal say, reaches it).
    let disk = CrashSimStorage::new();
    let env = Env {
        disk: Arc::new(disk.clone()),
        store: linked(&sim, &disk),
    };
    let mut model = Model::default();
    let out = run(&env, WORKLOAD, &mut model);
    let ctx = format!("fault {fault:?} at op {k}, seed {seed}");
    if let Some(v) = out.violation {
        panic!("{ctx}: {v}");
    }
    if let Some((step, e)) = &out.error {
        assert!(
            is_blob(e) || crate::harness::is_fenced(e),
            "{ctx}: step {step} failed with an unexpected error: {e:?}"
        );
    }
    // Where the workload stopped: a fault at a part's upload leaves nothing
    // in doubt (no record was created), and a fault that changed nothing
    // is retried everywhere (the transfers retry too).
    let failed_key = match &out.error {
        Some((_, highwater::Error::Blob(b))) => Some(b.key().to_string()),
        _ => None,
    };
    let at_a_part = failed_key
        .as_deref()
        .is_some_and(|k| k.starts_with("parts/"));
    if at_a_part {
        model.maybe = None;
    }
    if matches!(fault, BlobFault::Transient | BlobFault::Throttled) {
        assert!(
            out.error.is_none(),
            "{ctx}: a fault that changed nothing was not retried: {:?}",
            out.error.as_ref().map(|e| e.1.to_string())
        );
    }
    match fault {
        BlobFault::Crash => {
            assert!(sim.crashed(), "{ctx}: op {k} was reached");
            assert!(disk.crashed().is_some(), "{ctx}: the disk crashed with it");
        }
        // A fault that changed nothing leaves nothing in doubt.
        BlobFault::Transient | BlobFault::Throttled => model.maybe = None,
        _ => {}
    }
    let doubt = model.maybe;
    let image = [
        CrashImage::KeepUnsynced,
        CrashImage::Torn { seed },
        CrashImage::LoseUnsynced,
    ][(seed % 3) as usize];
    let env = Env {
        disk: Arc::new(disk.image(image)),
        store: Arc::new(sim.reboot()),
    };
    let restored = recover_and_resume(&env, machine(k), &mut model).unwrap_or_else(|v| {
        panic!(
            "{ctx} (error: {:?}): {v}",
            out.error.map(|e| e.1.to_string())
        )
    });
    doubt.map(|d| restored == Some(d))
}

#[test]
fn a_crash_at_every_blob_operation_of_publish_and_restore() {
    let total = count_ops(WORKLOAD);
    assert!(total > 40, "the workload makes {total} blob operations");
    let (mut doubts, mut came_back) = (0, 0);
    for k in 0..total {
        for seed in [k * 2 + 1, k * 7 + 0xc0ffee] {
            if let Some(back) = fault_at(k, seed, BlobFault::Crash) {
                doubts += 1;
                came_back += back as u32;
            }
        }
    }
    // Both sides of the coin were seen at a commit in doubt.
    assert!(
        came_back > 0 && came_back < doubts,
        "{came_back} of {doubts} checkpoints in doubt came back"
    );
}

#[test]
fn a_lost_answer_at_every_blob_operation() {
    let total = count_ops(WORKLOAD);
    for k in 0..total {
        for seed in [k * 3 + 5, k * 11 + 0xbeef] {
            fault_at(k, seed, BlobFault::Indeterminate);
        }
    }
}

#[test]
fn a_transient_or_throttled_answer_at_every_blob_operation() {
    let total = count_ops(WORKLOAD);
    for k in 0..total {
        let fault = if k % 2 == 0 {
            BlobFault::Transient
        } else {
            BlobFault::Throttled
        };
        fault_at(k, k + 17, fault);
    }
}

/// The creates (claims and checkpoint records) of the workload.
fn creates() -> u64 {
    let hooked = Hooked::new(Arc::new(SimBlobStore::new(0)));
    let env = Env::new(hooked.clone());
    let mut model = Model::default();
    assert!(run(&env, WORKLOAD, &mut model).error.is_none());
    hooked.calls(BlobOp::Create)
}

/// A lost answer at the create of every record (claims and checkpoint
/// records), with the coin both ways: the writer reads the slot back, finds
/// its own bytes (or nothing, and creates again) and goes on; the workload
/// never fails. With `read_back_fails`, the read-back fails too (five
/// transient answers in a row, the most a call is retried): the create is
/// tried again and finds its own record, or creates it.
fn indeterminate_creates(read_back_fails: bool) {
    let creates = creates();
    assert_eq!(creates, 8, "3 claims and 5 checkpoint records");
    let mut took_effect = 0;
    // A failed read-back costs the retries' backoff (about a second).
    let seeds = if read_back_fails { 3 } else { 6 };
    for n in 0..creates {
        for seed in 0..seeds {
            let sim = SimBlobStore::new(seed * 7919 + n);
            sim.fail_nth(BlobOp::Create, n, BlobFault::Indeterminate);
            let hooked = Hooked::new(Arc::new(sim.clone()));
            if read_back_fails {
                let s = sim.clone();
                hooked.at(BlobOp::Create, n, When::After, move || {
                    let next = s.ops();
                    for i in 0..5 {
                        s.fail_at(next + i, BlobFault::Transient);
                    }
                });
            }
            let probe = sim.clone();
            let slots_before = Arc::new(std::sync::Mutex::new(0usize));
            let sb = slots_before.clone();
            hooked.at(BlobOp::Create, n, When::Before, move || {
                *sb.lock().unwrap() = count_objects(&probe);
            });
            let after = Arc::new(std::sync::Mutex::new(0usize));
            let (a2, probe) = (after.clone(), sim.clone());
            hooked.at(BlobOp::Create, n, When::After, move || {
                *a2.lock().unwrap() = count_objects(&probe);
            });
            let env = Env::new(hooked.clone());
            let mut model = Model::default();
            let out = run(&env, WORKLOAD, &mut model);
            let ctx = format!("create {n}, seed {seed}, read-back fails: {read_back_fails}");
            assert!(out.violation.is_none(), "{ctx}: {:?}", out.violation);
            if let Some((step, e)) = out.error {
                panic!("{ctx}: step {step} failed: {e}");
            }
            assert_eq!(hooked.pending(), 0, "{ctx}: every hook ran");
            took_effect += (*after.lock().unwrap() > *slots_before.lock().unwrap()) as u32;
            check_sequence(env.store.clone()).unwrap();
            recover_and_resume(&env, "fresh", &mut model).unwrap_or_else(|v| panic!("{ctx}: {v}"));
        }
    }
    let trials = creates as u32 * seeds as u32;
    assert!(
        took_effect > 0 && took_effect < trials,
        "the lost create took effect in {took_effect} of {trials} trials"
    );
}

/// Objects in the bucket (a fresh client: no faults, no op counted on
/// the workload's).
fn count_objects(sim: &SimBlobStore) -> usize {
    let c = sim.reboot();
    highwater::blob::list_all(&c, None).unwrap().len()
}

#[test]
fn an_indeterminate_create_of_every_record_is_resolved() {
    indeterminate_creates(false);
}

#[test]
fn an_indeterminate_create_whose_read_back_fails_is_resolved() {
    indeterminate_creates(true);
}

/// A committed chain on machine "a" (offsets 10, 20), and the next client.
fn committed_chain(seed: u64) -> (Env, SimBlobStore, Model) {
    let sim = SimBlobStore::new(seed);
    let env = Env::new(Arc::new(sim.clone()));
    let mut model = Model::default();
    let steps = [
        crate::harness::Step::Open("a"),
        crate::harness::Step::Full(10),
        crate::harness::Step::Delta(20),
        crate::harness::Step::Close,
    ];
    let out = run(&env, &steps, &mut model);
    assert!(out.error.is_none() && out.violation.is_none());
    let next = sim.reboot();
    (env.with_store(Arc::new(next.clone())), next, model)
}

/// Regression: a failed read of a commit record during a restore (here the
/// client crashes at its first `head`) was taken for damage: every record
/// was skipped, the cache emptied, and the manager opened with nothing
/// restored although two checkpoints were acknowledged.
#[test]
fn a_record_that_cannot_be_read_now_fails_the_open_and_keeps_the_cache() {
    let (env, sim, _model) = committed_chain(3);
    sim.fail_nth(BlobOp::Head, 0, BlobFault::Crash);
    let e = match env.open("a") {
        Ok(m) => panic!(
            "opened without reading the records; restored {:?}",
            m.remote_restore().map(|r| r.restored)
        ),
        Err(e) => e,
    };
    assert!(is_blob(&e), "{e:?}");
    let cached = crate::support::cached_ids_in(env.disk.as_ref(), &Env::dir("a"));
    assert_eq!(cached, vec![1, 2], "the cache is kept");
}

/// Regression: a part object that cannot be read now (throttled on every
/// try) was taken for damage and the restore fell back past the newest
/// acknowledged checkpoint.
#[test]
fn a_part_that_cannot_be_read_now_never_falls_back_to_an_older_checkpoint() {
    let (env, sim, mut model) = committed_chain(4);
    // The records' reads (a get for each of slots 1 to 3) go through;
    // every part download is throttled.
    for n in 3..40 {
        sim.fail_nth(BlobOp::Get, n, BlobFault::Throttled);
    }
    match env.open("b") {
        Err(e) => assert!(is_blob(&e), "{e:?}"),
        Ok(m) => {
            model.check_restore(m).unwrap();
        }
    }
}

/// Regression: a record create whose answer was lost, whose read-back
/// failed, and whose next attempt failed with a transient error was
/// reported as that transient error ("nothing was created, retry"),
/// although the first attempt may have created the record. The error must
/// say the outcome is unknown, and a restore decides it.
#[test]
fn a_commit_whose_outcome_stays_unknown_is_reported_indeterminate() {
    let mut outcomes = [0; 2];
    // Each trial waits out two rounds of retries (about 1.5 s).
    for seed in 0..4 {
        let sim = SimBlobStore::new(seed);
        // Create 0 is the claim, create 1 offset 10's record.
        sim.fail_nth(BlobOp::Create, 1, BlobFault::Indeterminate);
        let hooked = Hooked::new(Arc::new(sim.clone()));
        let s = sim.clone();
        hooked.at(BlobOp::Create, 1, When::After, move || {
            // The read-back (a head, tried five times), then the next
            // create (tried five times): all transient.
            let next = s.ops();
            for i in 0..10 {
                s.fail_at(next + i, BlobFault::Transient);
            }
        });
        let env = Env::new(hooked.clone());
        let mut model = Model::default();
        let mut a = model.check_restore(env.open("a").unwrap()).unwrap();
        let e = model
            .write(&mut a, crate::harness::Step::Full(10))
            .unwrap_err();
        assert!(
            matches!(e, highwater::Error::Blob(ref b) if b.is_indeterminate()),
            "seed {seed}: the outcome is unknown, not {e:?}"
        );
        // The writer stops: nothing more goes into or after that slot.
        let again = model
            .write(&mut a, crate::harness::Step::Full(20))
            .unwrap_err();
        assert!(matches!(again, highwater::Error::Blob(ref b) if b.is_indeterminate()));
        model.maybe = Some(10);
        drop(a);
        let env = env.with_store(Arc::new(sim.reboot()));
        let restored = recover_and_resume(&env, "b", &mut model).unwrap();
        outcomes[(restored == Some(10)) as usize] += 1;
    }
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

/// A commit that fails before its record (a part's upload, transient)
/// withdraws the local copy and leaves the manager on its base: the next
/// delta builds on the last committed checkpoint, and is what restores.
#[test]
fn a_failed_upload_leaves_the_manager_on_its_base() {
    use crate::harness::Step;
    let sim = SimBlobStore::new(9);
    // Put 0 is offset 10's part; puts 1 to 5 are offset 20's and its
    // retries: all transient, so the upload gives up.
    for n in 1..=5 {
        sim.fail_nth(BlobOp::Put, n, BlobFault::Transient);
    }
    let env = Env::new(Arc::new(sim.clone()));
    let mut model = Model::default();
    let mut a = model.check_restore(env.open("a").unwrap()).unwrap();
    model.write(&mut a, Step::Full(10)).unwrap();
    let e = model.write(&mut a, Step::Delta(20)).unwrap_err();
    assert!(is_blob(&e), "{e:?}");
    model.maybe = None;
    let ids = crate::support::cached_ids_in(env.disk.as_ref(), &Env::dir("a"));
    assert_eq!(
        ids,
        vec![1],
        "the failed checkpoint's local copy is withdrawn"
    );
    model.write(&mut a, Step::Delta(30)).unwrap();
    let latest = a.manager.find_latest_checkpoint().unwrap().unwrap();
    assert_eq!(latest.parent_id, Some(1));
    assert!(latest.id > 2, "the withdrawn id is not used again");
    drop(a);
    model.check_restore(env.open("b").unwrap()).unwrap();
    check_sequence(env.store.clone()).unwrap();
}

/// Regression: a record created in its slot, whose floor check then failed
/// (the listing throttled on every try), was reported as the throttling
/// ("nothing changed, retry") although the record is in: the error must
/// say the outcome is unknown, and the next open restores the checkpoint.
#[test]
fn a_commit_whose_floor_check_fails_is_reported_indeterminate() {
    use crate::harness::Step;
    let sim = SimBlobStore::new(11);
    let hooked = Hooked::new(Arc::new(sim.clone()));
    let s = sim.clone();
    // Create 0 is the claim, create 1 offset 10's record; then the floor
    // check lists floor/ (tried five times).
    hooked.at(BlobOp::Create, 1, When::After, move || {
        let next = s.ops();
        for i in 0..5 {
            s.fail_at(next + i, BlobFault::Throttled);
        }
    });
    let env = Env::new(hooked);
    let mut model = Model::default();
    let mut a = model.check_restore(env.open("a").unwrap()).unwrap();
    let e = model.write(&mut a, Step::Full(10)).unwrap_err();
    assert!(
        matches!(e, highwater::Error::Blob(ref b) if b.is_indeterminate()),
        "the record is in its slot; not {e:?}"
    );
    drop(a);
    let env = env.with_store(Arc::new(sim.reboot()));
    assert_eq!(
        recover_and_resume(&env, "a", &mut model).unwrap(),
        Some(10),
        "the record was in: the checkpoint is committed"
    );
}
