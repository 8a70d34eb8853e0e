//! Hostile review of encryption at rest: downgrades and swaps, concurrent
//! views over sealed files, mixed plaintext/sealed logs.

use super::common::put;
use super::support::{keys, state};
use highwater::crypto::KeyProvider;
use highwater::{
    CheckpointConfig, CheckpointRequest, CheckpointStore, Error, IncrementalCheckpointManager,
    PartInput, StateDelta, StateSnapshot, WalEntry, WalOptions, WalReadResult, WalReader,
    WriteAheadLog,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn manager(dir: &Path, keys: Option<&Arc<dyn KeyProvider>>) -> IncrementalCheckpointManager {
    let mut c = CheckpointConfig::new(dir).with_max_retained(100);
    if let Some(k) = keys {
        c = c.with_encryption(k.clone());
    }
    IncrementalCheckpointManager::new(c).unwrap()
}

fn full(m: &IncrementalCheckpointManager, s: &StateSnapshot) -> u64 {
    m.create_checkpoint(CheckpointRequest::new(0).with_part("ops", PartInput::Snapshot(s)))
        .unwrap()
        .id
}

fn part_path(store: &CheckpointStore, id: u64) -> PathBuf {
    let meta = store.read_metadata(id).unwrap();
    store.checkpoint_path(id).join(&meta.parts[0].file)
}

/// A sealed file put where the metadata records a plaintext one (the
/// keys given): FORMAT.md §8 says it is never accepted, and it is damage of
/// that checkpoint, not a missing key. A key problem here would stop
/// recovery (find_latest) although the key is there and an older
/// checkpoint is intact.
#[test]
fn a_sealed_file_in_a_plaintext_slot_is_damage_not_a_key_problem() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let k = keys(5);
    let m = manager(dir.path(), None);
    let older = full(&m, &state(200, "p"));
    let newest = full(&m, &state(200, "q"));
    let sealed = manager(other.path(), Some(&k));
    let sealed_id = full(&sealed, &state(200, "s"));
    let store = CheckpointStore::new(dir.path()).with_encryption(k.clone());
    assert!(store.read_metadata(newest).unwrap().parts[0]
        .sealed
        .is_none());
    std::fs::copy(
        part_path(sealed.store(), sealed_id),
        part_path(&store, newest),
    )
    .unwrap();

    let err = store.load_snapshot(newest, "ops").unwrap_err();
    assert!(
        (err.is_corruption() || matches!(err, Error::CheckpointNotFound { .. }))
            && !err.is_key_problem(),
        "load: {err:?}"
    );
    let err = store.open_state_view(newest, "ops").unwrap_err();
    assert!(
        (err.is_corruption() || matches!(err, Error::CheckpointNotFound { .. }))
            && !err.is_key_problem(),
        "view: {err:?}"
    );
    let latest = store.find_latest().unwrap();
    assert_eq!(latest.metadata.unwrap().id, older);
}

/// As above, with the sizes equal (the plaintext checkpoint's part is
/// exactly as long as the sealed file put in its place), so the size check
/// passes and the file's bytes decide.
#[test]
fn a_sealed_file_of_the_recorded_size_in_a_plaintext_slot_is_damage() {
    let other = tempfile::tempdir().unwrap();
    let k = keys(5);
    let sealed = manager(other.path(), Some(&k));
    let sealed_id = full(&sealed, &state(200, "s"));
    let sealed_part = part_path(sealed.store(), sealed_id);
    let target = std::fs::metadata(&sealed_part).unwrap().len();
    let pairs = |extra: usize| {
        let mut s = state(200, "s")
            .iter()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect::<Vec<_>>();
        s.push((b"zzz".to_vec(), vec![b'x'; extra]));
        StateSnapshot::new(s)
    };
    let dir = tempfile::tempdir().unwrap();
    let m = manager(dir.path(), None);
    let older = full(&m, &state(10, "p"));
    let mut newest = None;
    for extra in 0..256 {
        let id = full(&m, &pairs(extra));
        if std::fs::metadata(part_path(m.store(), id)).unwrap().len() == target {
            newest = Some(id);
            break;
        }
        m.delete_checkpoint(id).unwrap();
    }
    let newest = newest.expect("a plaintext part of the sealed size");
    let store = CheckpointStore::new(dir.path()).with_encryption(k.clone());
    std::fs::copy(&sealed_part, part_path(&store, newest)).unwrap();
    for err in [
        store.load_snapshot(newest, "ops").unwrap_err(),
        store.open_state_view(newest, "ops").unwrap_err(),
    ] {
        assert!(
            (err.is_corruption() || matches!(err, Error::CheckpointNotFound { .. }))
                && !err.is_key_problem(),
            "{err:?}"
        );
    }
    assert_eq!(store.find_latest().unwrap().metadata.unwrap().id, older);
}

/// A plaintext file put where the metadata records a sealed one.
#[test]
fn a_plaintext_file_in_a_sealed_slot_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(5);
    let plain_id = full(&manager(dir.path(), None), &state(200, "p"));
    let sealed_id = full(&manager(dir.path(), Some(&k)), &state(200, "s"));
    let store = CheckpointStore::new(dir.path()).with_encryption(k.clone());
    std::fs::copy(part_path(&store, plain_id), part_path(&store, sealed_id)).unwrap();
    for err in [
        store.load_snapshot(sealed_id, "ops").unwrap_err(),
        store.open_state_view(sealed_id, "ops").unwrap_err(),
    ] {
        assert!(
            (err.is_corruption() || matches!(err, Error::CheckpointNotFound { .. }))
                && !err.is_key_problem(),
            "{err:?}"
        );
    }
    assert_eq!(store.find_latest().unwrap().metadata.unwrap().id, plain_id);
}

/// A sealed delta of the same chain and size put in place of another.
#[test]
fn a_sealed_delta_swapped_for_another_of_its_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(2);
    let m = manager(dir.path(), Some(&k));
    let base = full(&m, &state(1000, "b"));
    let delta = |parent, v: &str| {
        let d = StateDelta::from_changes([(
            b"secret-key-000001".to_vec(),
            Some(v.as_bytes().to_vec()),
        )]);
        m.create_checkpoint(
            CheckpointRequest::new(0)
                .with_parent(parent)
                .with_part("ops", PartInput::Delta(&d)),
        )
        .unwrap()
        .id
    };
    let d1 = delta(base, "first-value");
    let d2 = delta(d1, "secnd-value");
    let store = m.store();
    let (p1, p2) = (part_path(store, d1), part_path(store, d2));
    assert_eq!(
        std::fs::metadata(&p1).unwrap().len(),
        std::fs::metadata(&p2).unwrap().len()
    );
    std::fs::copy(&p1, &p2).unwrap();
    for err in [
        store.load_snapshot(d2, "ops").unwrap_err(),
        store.open_state_view(d2, "ops").unwrap_err(),
    ] {
        assert!(err.is_corruption() && !err.is_key_problem(), "{err:?}");
    }
    assert_eq!(store.find_latest().unwrap().metadata.unwrap().id, d1);
}

/// Many threads reading overlapping keys of views over a sealed chain
/// (a large base, a delta): every value is the one written.
#[test]
fn concurrent_lookups_in_a_sealed_view_see_the_written_state() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(3);
    let m = manager(dir.path(), Some(&k));
    let n = 30_000;
    let base = full(&m, &state(n, "base"));
    let d = StateDelta::from_changes((0..n).step_by(7).map(|i| {
        (
            format!("secret-key-{i:06}").into_bytes(),
            Some(format!("delta-{i}").into_bytes()),
        )
    }));
    let id = m
        .create_checkpoint(
            CheckpointRequest::new(0)
                .with_parent(base)
                .with_part("ops", PartInput::Delta(&d)),
        )
        .unwrap()
        .id;
    let view = m.open_state_view(id, "ops").unwrap();
    std::thread::scope(|s| {
        for t in 0..8usize {
            let view = &view;
            s.spawn(move || {
                let mut x = t as u64 * 7919 + 1;
                for _ in 0..3000 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let i = ((x >> 20) % n as u64) as usize;
                    let want = if i.is_multiple_of(7) {
                        format!("delta-{i}")
                    } else {
                        format!("base-value-{i:06}-plaintext")
                    };
                    let got = view
                        .get(format!("secret-key-{i:06}").as_bytes())
                        .unwrap()
                        .map(|v| v.to_vec());
                    assert_eq!(got.as_deref(), Some(want.as_bytes()), "key {i}");
                }
            });
        }
    });
    view.verify_all().unwrap();
}

fn read_all(reader: &mut WalReader) -> Result<Vec<WalEntry>, Error> {
    let mut out = Vec::new();
    loop {
        match reader.read_next()? {
            WalReadResult::Entry(entry) => out.push(entry),
            _ => return Ok(out),
        }
    }
}

/// A log written plaintext, then sealed, then plaintext again: reopened
/// with the key, every entry reads in order; without it, the plaintext
/// prefix reads and the sealed segment is KeyUnavailable (never skipped,
/// never a torn tail).
#[test]
fn a_log_of_plaintext_and_sealed_segments_reads_with_and_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    let k = keys(4);
    let write = |opts: WalOptions, v: &str| {
        let log = WriteAheadLog::open(&wal, opts).unwrap();
        log.append(&put("k", v)).unwrap();
        log.sync().unwrap();
    };
    write(WalOptions::new(), "plain-1");
    write(WalOptions::new().with_encryption(k.clone()), "sealed-2");
    write(WalOptions::new(), "plain-3");
    write(WalOptions::new().with_encryption(k.clone()), "sealed-4");
    let mut r = WalReader::open(&wal, 0).unwrap().with_encryption(k.clone());
    let got = read_all(&mut r).unwrap();
    assert_eq!(
        got,
        vec![
            put("k", "plain-1"),
            put("k", "sealed-2"),
            put("k", "plain-3"),
            put("k", "sealed-4")
        ]
    );
    let mut r = WalReader::open(&wal, 0).unwrap();
    assert_eq!(
        r.read_next().unwrap(),
        WalReadResult::Entry(put("k", "plain-1"))
    );
    let err = r.read_next().unwrap_err();
    assert!(
        matches!(err, Error::KeyUnavailable { key_id: 4, .. }),
        "{err:?}"
    );
    // Reading again fails the same way (the reader stays at the record).
    let err = r.read_next().unwrap_err();
    assert!(matches!(err, Error::KeyUnavailable { .. }), "{err:?}");
}
