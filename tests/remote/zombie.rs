//! A zombie writer racing a new one, interleaved in one thread by a
//! [`Hooked`] store: the new manager opens (claims) at a chosen call of the
//! zombie's commit, or the zombie commits at a chosen call of the new one's
//! claim. Whatever the order and whichever way a lost answer went, a
//! checkpoint is acknowledged exactly when restores return it, the zombie
//! gets `Fenced` once the claim is in, and nothing it commits after the
//! claim is ever restored.

use crate::harness::{check_sequence, is_fenced, Env, Hooked, Model, Running, Step, When};
use highwater::blob::{BlobFault, BlobOp, SimBlobStore};
use highwater::IncrementalCheckpointManager;
use std::sync::{Arc, Mutex};

type Slot = Arc<Mutex<Option<IncrementalCheckpointManager>>>;

/// A zombie on machine "a" (through a hooked client of a fresh bucket)
/// that has committed offset 10, and the environment of a second process.
fn zombie(sim: &SimBlobStore) -> (Arc<Hooked>, Env, Running, Model) {
    let hooked = Hooked::new(Arc::new(sim.clone()));
    let env = Env::new(hooked.clone());
    let mut model = Model::default();
    let mut a = model.check_restore(env.open("a").unwrap()).unwrap();
    model.write(&mut a, Step::Full(10)).unwrap();
    let successor = env.with_store(Arc::new(sim.reboot()));
    (hooked, successor, a, model)
}

/// Opens machine "b" in `env` into `slot` when the hook runs.
fn open_b(env: &Env, slot: &Slot) -> impl FnOnce() + Send + 'static {
    let (env, slot) = (env.clone(), slot.clone());
    move || *slot.lock().unwrap() = Some(env.open("b").expect("the successor opens"))
}

/// The zombie is refused from now on, and the successor's checkpoints are
/// what a third machine restores.
fn finish(env: &Env, mut a: Running, b: IncrementalCheckpointManager, mut model: Model) {
    let mut b = model.check_restore(b).unwrap();
    let e = model.write(&mut a, Step::Full(30)).unwrap_err();
    assert!(is_fenced(&e), "the zombie is fenced for good: {e:?}");
    model.maybe = None;
    model.write(&mut b, Step::Delta(40)).unwrap();
    let e = model.write(&mut a, Step::Delta(50)).unwrap_err();
    assert!(is_fenced(&e), "{e:?}");
    model.maybe = None;
    drop(b);
    model.check_restore(env.open("c").unwrap()).unwrap();
    check_sequence(env.store.clone()).unwrap();
}

#[test]
fn the_new_writer_claims_before_the_zombies_record() {
    let sim = SimBlobStore::new(1);
    let (hooked, env, mut a, mut model) = zombie(&sim);
    let b: Slot = Default::default();
    hooked.at(BlobOp::Create, 0, When::Before, open_b(&env, &b));
    let e = model.write(&mut a, Step::Delta(20)).unwrap_err();
    assert!(is_fenced(&e), "{e:?}");
    model.maybe = None; // fenced: its record is not in the slot
    let b = b.lock().unwrap().take().unwrap();
    finish(&env, a, b, model);
}

#[test]
fn the_new_writer_claims_between_the_zombies_record_and_its_floor_check() {
    let sim = SimBlobStore::new(2);
    let (hooked, env, mut a, mut model) = zombie(&sim);
    let b: Slot = Default::default();
    hooked.at(BlobOp::Create, 0, When::After, open_b(&env, &b));
    // The record was in before the claim: acknowledged, and restored.
    model.write(&mut a, Step::Delta(20)).unwrap();
    let b = b.lock().unwrap().take().unwrap();
    assert_eq!(
        b.find_latest_checkpoint().unwrap().unwrap().wal_position,
        20
    );
    finish(&env, a, b, model);
}

/// The zombie's record create loses its answer (the coin both ways) and
/// the new writer claims before the zombie reads its slot back.
#[test]
fn the_new_writer_claims_while_the_zombies_record_is_in_doubt() {
    let mut outcomes = [0; 2];
    for seed in 0..16 {
        let sim = SimBlobStore::new(seed);
        // Creates of the zombie: its claim, offset 10's record, then 20's.
        sim.fail_nth(BlobOp::Create, 2, BlobFault::Indeterminate);
        let (hooked, env, mut a, mut model) = zombie(&sim);
        let b: Slot = Default::default();
        hooked.at(BlobOp::Create, 0, When::After, open_b(&env, &b));
        match model.write(&mut a, Step::Delta(20)) {
            Ok(()) => outcomes[0] += 1,
            Err(e) => {
                assert!(is_fenced(&e), "seed {seed}: {e:?}");
                model.maybe = None;
                outcomes[1] += 1;
            }
        }
        let b = b.lock().unwrap().take().unwrap();
        finish(&env, a, b, model);
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "acknowledged / fenced: {outcomes:?}"
    );
}

/// The new writer's claim loses its answer, and the zombie commits before
/// the claim is read back: either the claim is in (the zombie is fenced and
/// the new writer restores offset 10), or the zombie's record took the slot
/// (acknowledged; the new writer claims the next slot and restores it).
#[test]
fn the_zombie_commits_while_the_new_claim_is_in_doubt() {
    let mut outcomes = [0; 2];
    for seed in 0..16 {
        let sim = SimBlobStore::new(seed);
        let hooked = Hooked::new(Arc::new(sim.clone()));
        let env_a = Env::new(hooked);
        let mut model = Model::default();
        let mut a = model.check_restore(env_a.open("a").unwrap()).unwrap();
        model.write(&mut a, Step::Full(10)).unwrap();

        let sim_b = sim.reboot();
        sim_b.fail_nth(BlobOp::Create, 0, BlobFault::Indeterminate);
        let hooked_b = Hooked::new(Arc::new(sim_b));
        let env_b = env_a.with_store(hooked_b.clone());
        let shared = Arc::new(Mutex::new((a, model)));
        let fenced = Arc::new(Mutex::new(None));
        let (s, f) = (shared.clone(), fenced.clone());
        hooked_b.at(BlobOp::Create, 0, When::After, move || {
            let mut guard = s.lock().unwrap();
            let (a, model) = &mut *guard;
            let r = model.write(a, Step::Delta(20));
            if let Err(e) = &r {
                assert!(is_fenced(e), "seed {seed}: {e:?}");
                model.maybe = None;
            }
            *f.lock().unwrap() = Some(r.is_err());
        });
        let b = env_b.open("b").unwrap();
        assert_eq!(hooked_b.pending(), 0);
        let fenced = fenced.lock().unwrap().unwrap();
        outcomes[fenced as usize] += 1;
        let (a, model) = Arc::try_unwrap(shared).unwrap().into_inner().unwrap();
        finish(&env_b, a, b, model);
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "zombie acknowledged / fenced: {outcomes:?}"
    );
}

/// Both keep committing after the claim: every one of the zombie's commits
/// is fenced (its lost answers included: the read-back finds the other
/// writer's record, never its own), every one of the new writer's is
/// acknowledged and restored.
#[test]
fn both_writers_keep_committing() {
    for seed in 0..4 {
        let sim = SimBlobStore::new(seed);
        let (_hooked, env, mut a, mut model) = zombie(&sim);
        let mut b = model.check_restore(env.open("b").unwrap()).unwrap();
        // The zombie's next creates lose their answers.
        for n in 2..6 {
            sim.fail_nth(BlobOp::Create, n, BlobFault::Indeterminate);
        }
        for (i, offset) in [20, 30, 40].into_iter().enumerate() {
            let e = model.write(&mut a, Step::Delta(offset)).unwrap_err();
            assert!(is_fenced(&e), "seed {seed}: {e:?}");
            model.maybe = None;
            model
                .write(&mut b, Step::Delta(offset + 5 + i as u64))
                .unwrap();
        }
        drop(b);
        model.check_restore(env.open("c").unwrap()).unwrap();
        check_sequence(env.store.clone()).unwrap();
    }
}

/// The zombie commits after the new writer listed the sequence and before
/// its claim's create: the claim collides with the zombie's record, moves
/// to the next slot, and the new writer restores the zombie's checkpoint
/// (acknowledged before the claim).
#[test]
fn the_zombie_commits_between_the_new_writers_listing_and_its_claim() {
    let sim = SimBlobStore::new(5);
    let hooked = Hooked::new(Arc::new(sim.clone()));
    let env_a = Env::new(hooked);
    let mut model = Model::default();
    let mut a = model.check_restore(env_a.open("a").unwrap()).unwrap();
    model.write(&mut a, Step::Full(10)).unwrap();

    let hooked_b = Hooked::new(Arc::new(sim.reboot()));
    let env_b = env_a.with_store(hooked_b.clone());
    let shared = Arc::new(Mutex::new((a, model)));
    let s = shared.clone();
    hooked_b.at(BlobOp::Create, 0, When::Before, move || {
        let mut guard = s.lock().unwrap();
        let (a, model) = &mut *guard;
        model.write(a, Step::Delta(20)).expect("no claim is in yet");
    });
    let b = env_b.open("b").unwrap();
    assert_eq!(hooked_b.pending(), 0);
    assert_eq!(
        hooked_b.calls(BlobOp::Create),
        2,
        "the claim lost its first slot to the zombie's record"
    );
    let (a, model) = Arc::try_unwrap(shared).unwrap().into_inner().unwrap();
    finish(&env_b, a, b, model);
}
