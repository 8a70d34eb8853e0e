use super::*;
use crate::cluster::record::{GlobalCheckpoint, RunPlan};
use crate::cluster::report::{PartKind, PartRef, WorkerReport};
use std::time::UNIX_EPOCH;

fn part(key: &str, epoch: u64) -> PartRef {
    PartRef {
        key: key.into(),
        size: 10,
        crc32c: 0,
        kind: PartKind::Full,
        epoch,
        puts: vec![0, 0],
        deletes: vec![0, 0],
    }
}

fn epoch_record(slot: u64, generation: u64, epoch: u64, keys: &[&str]) -> (u64, ClusterRecord) {
    let report = WorkerReport {
        generation,
        epoch,
        worker: 0,
        workers: 1,
        key_groups: crate::cluster::KeyGroupRange::new(0, 1),
        chain: keys.iter().map(|k| part(k, epoch)).collect(),
        positions: Default::default(),
        sinks: vec![],
    };
    (
        slot,
        ClusterRecord::Epoch(Box::new(GlobalCheckpoint {
            slot,
            generation,
            epoch,
            key_groups: 1,
            reports: vec![report],
        })),
    )
}

fn claim(slot: u64) -> (u64, ClusterRecord) {
    (
        slot,
        ClusterRecord::Claim {
            generation: slot,
            coordinator: "x".into(),
            plan: RunPlan {
                workers: 1,
                key_groups: 1,
                base_slot: None,
                base_epoch: 0,
            },
        },
    )
}

fn obj(key: &str, age_s: u64) -> BlobMeta {
    BlobMeta {
        key: BlobKey::new(key).unwrap(),
        size: 10,
        last_modified: Some(UNIX_EPOCH + Duration::from_secs(1000 - age_s)),
        etag: None,
    }
}

fn p(g: u64, e: u64, n: &str) -> String {
    format!("parts/{g:020}/{e:020}/{n}")
}

fn r(g: u64, e: u64) -> String {
    format!("reports/{g:020}/{e:020}/00000")
}

fn input<'a>(
    records: &'a [(u64, ClusterRecord)],
    objects: &'a [BlobMeta],
    generation: u64,
    committed: u64,
) -> Input<'a> {
    Input {
        records,
        floor: 0,
        objects,
        generation,
        committed_epoch: committed,
        now: UNIX_EPOCH + Duration::from_secs(1000),
        grace: Duration::from_secs(60),
        retained: 1,
    }
}

#[test]
fn keeps_the_newest_epochs_parts_and_in_flight_uploads() {
    // Run 1 committed epochs 1, 2 (slots 2, 3); run 4 committed epoch 3 (slot 5).
    let records = vec![
        claim(1),
        epoch_record(2, 1, 1, &[&p(1, 1, "a")]),
        epoch_record(3, 1, 2, &[&p(1, 2, "b")]),
        claim(4),
        epoch_record(5, 4, 3, &[&p(4, 3, "c")]),
    ];
    let objects = vec![
        obj(&p(1, 1, "a"), 100),
        obj(&p(1, 2, "b"), 100),
        obj(&p(4, 3, "c"), 100),
        obj(&p(4, 4, "in-flight"), 100),
        obj(&p(7, 1, "newer-run"), 100),
        obj(&p(1, 3, "young-dead"), 10),
        obj(&r(1, 2), 100),
        obj(&r(4, 3), 100),
        obj(&r(4, 4), 100),
    ];
    let plan = plan(&input(&records, &objects, 4, 3));
    assert_eq!(
        plan.new_floor,
        Some(5),
        "run 4 committed: its workers joined"
    );
    assert_eq!(plan.records, [1, 2, 3, 4]);
    assert_eq!(plan.epochs, [3]);
    let deleted: Vec<&str> = plan.objects.iter().map(|k| k.as_str()).collect();
    assert_eq!(deleted, [p(1, 1, "a"), p(1, 2, "b"), r(1, 2), r(4, 3)]);
}

#[test]
fn retains_more_epochs_when_asked_and_nothing_without_an_epoch() {
    let records = vec![
        claim(1),
        epoch_record(2, 1, 1, &[&p(1, 1, "a")]),
        epoch_record(3, 1, 2, &[&p(1, 2, "b")]),
    ];
    let objects = vec![obj(&p(1, 1, "a"), 100), obj(&p(1, 2, "b"), 100)];
    let mut i = input(&records, &objects, 1, 2);
    i.retained = 2;
    let plan = plan(&i);
    assert_eq!(plan.new_floor, Some(2), "the oldest kept record");
    assert_eq!(
        plan.records,
        [1],
        "run 1 committed: its claim is no longer read"
    );
    assert!(plan.objects.is_empty());
    let only_claims = vec![claim(1)];
    assert_eq!(
        super::plan(&input(&only_claims, &objects, 1, 0)),
        Plan::default()
    );
}

#[test]
fn every_live_record_keeps_its_parts() {
    // Run 1 restored nothing and committed epochs 1, 2, 3 (slots 2, 3, 4).
    let records = vec![
        claim(1),
        epoch_record(2, 1, 1, &[&p(1, 1, "a")]),
        epoch_record(3, 1, 2, &[&p(1, 2, "b")]),
        epoch_record(4, 1, 3, &[&p(1, 3, "c")]),
    ];
    let objects = vec![
        obj(&p(1, 1, "a"), 100),
        obj(&p(1, 2, "b"), 100),
        obj(&p(1, 3, "c"), 100),
    ];
    let plan = plan(&input(&records, &objects, 1, 3));
    let floor = plan.new_floor.unwrap_or(0);
    for (slot, r) in &records {
        if let (true, ClusterRecord::Epoch(e)) = (*slot >= floor && !plan.records.contains(slot), r)
        {
            for key in e.part_keys() {
                assert!(
                    !plan.objects.iter().any(|k| k.as_str() == key),
                    "the live record in slot {slot} (floor {floor}) names {key}, which is deleted"
                );
            }
        }
    }
}

#[test]
fn a_joining_runs_claim_and_base_stay_above_the_floor() {
    // Run 1 committed epochs 1, 2 (slots 2, 3); run 4 claimed with base
    // slot 3 and has committed nothing: its workers may still be joining.
    let mut records = vec![
        claim(1),
        epoch_record(2, 1, 1, &[&p(1, 1, "a")]),
        epoch_record(3, 1, 2, &[&p(1, 2, "b")]),
        claim(4),
    ];
    if let (_, ClusterRecord::Claim { plan, .. }) = &mut records[3] {
        plan.base_slot = Some(3);
        plan.base_epoch = 2;
    }
    let objects = vec![obj(&p(1, 1, "a"), 100), obj(&p(1, 2, "b"), 100)];
    // Whoever collects (run 4, or run 1 as a zombie), the base survives.
    for (generation, committed) in [(4, 2), (1, 2)] {
        let plan = plan(&input(&records, &objects, generation, committed));
        assert_eq!(plan.new_floor, Some(3), "run {generation}");
        assert_eq!(plan.records, [1, 2]);
        let deleted: Vec<&str> = plan.objects.iter().map(|k| k.as_str()).collect();
        assert_eq!(deleted, [p(1, 1, "a")]);
    }
    // Without the clamp the floor would pass the joining run's base when
    // the base is not among the kept records (it always is: it is the
    // newest epoch record), so check the claim bound too: with the base
    // below the kept records' lowest, the floor stops at the base.
    if let (_, ClusterRecord::Claim { plan, .. }) = &mut records[3] {
        plan.base_slot = Some(2);
        plan.base_epoch = 1;
    }
    assert_eq!(plan(&input(&records, &objects, 4, 1)).new_floor, Some(2));
}
