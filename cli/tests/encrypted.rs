//! The `highwater` binary against an encrypted job: with `--key-file` it
//! reads sealed checkpoints; without it, or with a wrong key, it says which
//! file needs which key (never "damage").

mod support;

use highwater::crypto::{DataKey, KeyId, StaticKeys};
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, StateSnapshot,
};
use std::path::Path;
use std::sync::Arc;
use support::run;

/// A sealed checkpoint of `user:1 = alice` in `dir`, under key id 5, whose
/// key is written (as hex) to `key_file`.
fn sealed_job(dir: &Path, key_file: &Path) {
    let key = DataKey::generate().unwrap();
    std::fs::write(key_file, key.to_hex()).unwrap();
    let keys = Arc::new(StaticKeys::new(KeyId::new(5).unwrap(), key));
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir).with_encryption(keys))
        .unwrap();
    let s = StateSnapshot::new(vec![(b"user:1".to_vec(), b"alice".to_vec())]);
    m.create_checkpoint(CheckpointRequest::new(0).with_part("state", PartInput::Snapshot(&s)))
        .unwrap();
}

#[test]
fn sealed_checkpoints_read_with_the_key_and_name_the_key_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key) = (tmp.path().join("ckpt"), tmp.path().join("job.key"));
    sealed_job(&dir, &key);

    let (out, err, code) = run(&[
        &"--key-file",
        &key,
        &"--key-id",
        &"5",
        &"state",
        &"get",
        &dir,
        &"user:1",
    ]);
    assert_eq!((out.as_str(), code), ("alice\n", 0), "{err}");
    let (out, err, code) = run(&[&"--key-file", &key, &"--key-id", &"5", &"verify", &dir]);
    assert_eq!(code, 0, "{out}{err}");

    let (_, err, code) = run(&[&"state", &"get", &dir, &"user:1"]);
    assert_ne!(code, 0);
    assert_ne!(code, 1, "a missing key is not damage: {err}");
    assert!(err.contains("key 5 is not provided"), "{err}");
    assert!(err.contains("part-state.hwstate"), "{err}");

    // Listed as needing its key, not as damaged; verify exits 4, not 1.
    let (out, _, code) = run(&[&"checkpoints", &"ls", &dir]);
    assert_eq!(code, 0);
    assert!(
        out.contains("NEEDS KEY") && !out.contains("DAMAGED"),
        "{out}"
    );
    assert!(out.contains("recovery stops at checkpoint 1"), "{out}");
    let (out, _, code) = run(&[&"verify", &dir]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("needs a key"), "{out}");

    let other = tmp.path().join("other.key");
    std::fs::write(&other, DataKey::generate().unwrap().to_hex()).unwrap();
    let (_, err, code) = run(&[
        &"--key-file",
        &other,
        &"--key-id",
        &"5",
        &"state",
        &"get",
        &dir,
        &"user:1",
    ]);
    assert!(code != 0 && code != 1, "{err}");
    assert!(err.contains("key 5"), "{err}");

    let (_, err, code) = run(&[
        &"--key-file",
        &tmp.path().join("absent"),
        &"state",
        &"get",
        &dir,
        &"user:1",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("absent"), "{err}");
}

#[test]
fn wal_dump_and_recover_read_a_sealed_log_with_the_key() {
    use highwater::{WalEntry, WalOptions, WriteAheadLog};
    let tmp = tempfile::tempdir().unwrap();
    let (dir, key, wal) = (
        tmp.path().join("ckpt"),
        tmp.path().join("job.key"),
        tmp.path().join("wal"),
    );
    sealed_job(&dir, &key);
    let k = DataKey::from_file(&key).unwrap();
    let keys = Arc::new(StaticKeys::new(KeyId::new(5).unwrap(), k));
    let log = WriteAheadLog::open(&wal, WalOptions::new().with_encryption(keys)).unwrap();
    log.append(&WalEntry::Put {
        key: b"user:2".to_vec(),
        value: b"bob-in-the-log".to_vec(),
    })
    .unwrap();
    log.sync().unwrap();
    drop(log);

    let (out, err, code) = run(&[
        &"--key-file",
        &key,
        &"--key-id",
        &"5",
        &"wal",
        &"dump",
        &wal,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("user:2"), "{out}{err}");
    // Without the key: the dump ends naming the key (not as damage).
    let (out, err, code) = run(&[&"wal", &"dump", &wal]);
    assert!(code != 0 && code != 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("key 5 is not provided"),
        "{out}{err}"
    );

    let (out, err, code) = run(&[
        &"--key-file",
        &key,
        &"--key-id",
        &"5",
        &"recover",
        &dir,
        &wal,
        &"--dry-run",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (out, err, code) = run(&[
        &"--key-file",
        &key,
        &"--key-id",
        &"5",
        &"verify",
        &dir,
        &"--wal",
        &wal,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let arrow = tmp.path().join("log.arrow");
    let (out, err, code) = run(&[
        &"--key-file",
        &key,
        &"--key-id",
        &"5",
        &"export",
        &"wal",
        &wal,
        &arrow,
    ]);
    assert_eq!(code, 0, "{out}{err}");
}
