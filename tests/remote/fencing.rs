//! One writer at a time: a new manager claims a generation, and the old
//! one's next commit is refused with `Fenced`, publishing nothing.

use crate::support::{full, snapshot, Site};
use highwater::Error;

#[test]
fn a_zombie_writer_is_fenced_by_a_new_one() {
    let site = Site::local();
    let zombie = site.manager("a");
    let committed = full(&zombie, 10, &snapshot(10, "z1")).unwrap();

    let successor = site.manager("b");
    assert_eq!(
        successor.remote_restore().unwrap().restored,
        Some(committed.id)
    );
    match full(&zombie, 20, &snapshot(10, "z2")) {
        Err(Error::Fenced {
            generation,
            winner_generation,
            ..
        }) => {
            assert_eq!(
                winner_generation,
                Some(successor.remote_restore().unwrap().generation)
            );
            assert!(generation < successor.remote_restore().unwrap().generation);
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
    // Refused for good.
    assert!(matches!(
        full(&zombie, 30, &snapshot(10, "z3")),
        Err(Error::Fenced { .. })
    ));
    // The successor goes on, and a third machine restores its checkpoint,
    // never the zombie's.
    let next = full(&successor, 40, &snapshot(10, "s1")).unwrap();
    drop(successor);
    let third = site.manager("c");
    assert_eq!(third.remote_restore().unwrap().restored, Some(next.id));
    assert_eq!(
        third
            .load_snapshot(next.id, "state")
            .unwrap()
            .get(b"k00001"),
        Some(&b"s1-1"[..])
    );
}
