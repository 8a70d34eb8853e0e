use super::*;
use crate::blob::{BlobFault, BlobKey, BlobOp, SimBlobStore};

#[test]
fn claims_take_consecutive_slots_and_commits_collide_with_them() {
    let sim = SimBlobStore::new(1);
    let first = claim(&sim).unwrap();
    assert_eq!(
        first,
        Claimed {
            generation: 1,
            floor: 0
        }
    );
    let second = claim(&sim).unwrap();
    assert_eq!(second.generation, 2);
    // The first writer's next slot (2) is the second's claim: fenced.
    let bytes = Bytes::from_static(b"not even a record");
    match commit(&sim, 2, 1, &bytes) {
        Err(Error::Fenced {
            slot: 2,
            generation: 1,
            winner_generation: Some(2),
            ..
        }) => {}
        other => panic!("expected Fenced, got {other:?}"),
    }
}

#[test]
fn an_indeterminate_create_that_happened_is_ours() {
    for seed in 0..16 {
        let sim = SimBlobStore::new(seed);
        sim.fail_nth(BlobOp::Create, 0, BlobFault::Indeterminate);
        let bytes = Bytes::from_static(b"record");
        assert_eq!(
            create_slot(&sim, 7, &bytes).unwrap(),
            SlotOutcome::Ours,
            "seed {seed}"
        );
        assert_eq!(sim.get(&commit_key(7)).unwrap(), bytes);
    }
}

#[test]
fn already_exists_with_our_bytes_is_ours_and_with_others_is_taken() {
    let sim = SimBlobStore::new(1);
    let ours = Bytes::from_static(b"ours");
    sim.create_if_absent(&commit_key(3), ours.clone()).unwrap();
    assert_eq!(create_slot(&sim, 3, &ours).unwrap(), SlotOutcome::Ours);
    assert_eq!(
        create_slot(&sim, 3, &Bytes::from_static(b"theirs")).unwrap(),
        SlotOutcome::Taken(ours)
    );
}

#[test]
fn transient_answers_are_retried() {
    let sim = SimBlobStore::new(1);
    sim.fail_nth(BlobOp::Create, 0, BlobFault::Transient);
    sim.fail_nth(BlobOp::Create, 1, BlobFault::Throttled);
    assert_eq!(claim(&sim).unwrap().generation, 1);
}

#[test]
fn a_commit_below_the_floor_is_fenced_even_when_its_create_succeeded() {
    let sim = SimBlobStore::new(1);
    sim.create_if_absent(&floor_key(10), Bytes::new()).unwrap();
    match commit(&sim, 4, 1, &Bytes::from_static(b"late")) {
        Err(Error::Fenced {
            slot: 4, reason, ..
        }) => assert!(reason.contains("floor"), "{reason}"),
        other => panic!("expected Fenced, got {other:?}"),
    }
}

#[test]
fn a_claim_starts_at_the_floor_and_after_every_record() {
    let sim = SimBlobStore::new(1);
    sim.create_if_absent(&floor_key(5), Bytes::new()).unwrap();
    assert_eq!(
        claim(&sim).unwrap(),
        Claimed {
            generation: 5,
            floor: 5
        }
    );
    sim.put(&BlobKey::new("commits/not-a-slot").unwrap(), Bytes::new())
        .unwrap();
    assert_eq!(claim(&sim).unwrap().generation, 6);
}
