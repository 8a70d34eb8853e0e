//! The typed values errors and reports carry: each is the one the message
//! was made from, and the variants callers branch on are the ones returned.

use super::Error;
use crate::checkpoint::ChainProblem;
use crate::inspect::parse_segment_name;
use crate::wal::{DamageClass, Problem, WalEntry, WalReadResult};
use crate::{
    CheckpointConfig, IncrementalCheckpointManager, StateSnapshot, WalOptions, WalRecoveryMode,
    WriteAheadLog,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn put(k: &str) -> WalEntry {
    WalEntry::Put {
        key: k.as_bytes().to_vec(),
        value: b"value".to_vec(),
    }
}

/// A log of three records whose newest segment lost its last byte.
fn torn_log(dir: &Path) -> PathBuf {
    let wal = WriteAheadLog::open(dir, WalOptions::new()).unwrap();
    for k in ["a", "b", "c"] {
        wal.append(&put(k)).unwrap();
    }
    wal.sync().unwrap();
    wal.close().unwrap();
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| parse_segment_name(p.file_name().unwrap().to_str().unwrap()).is_some())
        .collect();
    segments.sort();
    let newest = segments.pop().unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    newest
}

fn mode(m: WalRecoveryMode) -> WalOptions {
    WalOptions::new().with_recovery_mode(m)
}

#[test]
fn a_refused_torn_tail_carries_its_class_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let segment = torn_log(dir.path());
    match WriteAheadLog::open(dir.path(), mode(WalRecoveryMode::AbsoluteConsistency)) {
        Err(Error::WalCorrupted {
            path,
            class,
            problem,
            reason,
            ..
        }) => {
            assert_eq!(path, segment);
            assert_eq!(class, DamageClass::Torn);
            assert!(matches!(problem, Problem::Incomplete { .. }), "{problem:?}");
            assert_eq!(reason, format!("torn tail: {problem}"));
        }
        other => panic!("expected WalCorrupted, got {other:?}"),
    }
}

#[test]
fn a_reader_names_the_damage_behind_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let segment = torn_log(dir.path());
    let mut reader = crate::WalReader::open(dir.path(), 0).unwrap();
    let end = loop {
        match reader.read_next().unwrap() {
            WalReadResult::Entry(_) => {}
            other => break other,
        }
    };
    let WalReadResult::TornWrite { position, reason } = end else {
        panic!("expected a torn write, got {end:?}");
    };
    let damage = reader.damage().expect("the reader stopped at damage");
    assert_eq!(damage.class, DamageClass::Torn);
    assert_eq!(damage.path, segment);
    assert_eq!(damage.position, position);
    assert!(matches!(damage.problem, Problem::Incomplete { .. }));
    assert_eq!(reason, damage.to_string());
}

#[test]
fn a_repair_report_carries_the_problem_it_cut() {
    let dir = tempfile::tempdir().unwrap();
    torn_log(dir.path());
    let wal = WriteAheadLog::open(dir.path(), mode(WalRecoveryMode::TolerateTornTail)).unwrap();
    let report = wal.repair().unwrap();
    let problem = report.problem.clone().expect("something was cut");
    assert!(matches!(problem, Problem::Incomplete { .. }), "{problem:?}");
    assert_eq!(report.reason, problem.to_string());
    assert!(wal.repair().unwrap().problem.is_none());
}

#[test]
fn recovery_reports_a_torn_tail_it_leaves_typed() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal) = (dir.path().join("ckpt"), dir.path().join("wal"));
    std::fs::create_dir_all(&wal).unwrap();
    torn_log(&wal);
    let cfg = crate::RecoveryConfig::new(&ckpt, &wal).with_repair_wal(false);
    let r = crate::RecoveryManager::new(cfg).recover().unwrap();
    let torn = r.report.torn_tail.expect("a torn tail");
    assert_eq!(torn.damage.class, DamageClass::Torn);
    assert_eq!(torn.position, torn.damage.position);
    assert_eq!(torn.reason, torn.damage.to_string());
}

#[test]
fn a_floor_file_of_the_wrong_length_names_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(crate::inspect::FLOOR_FILE_NAME), [0u8; 5]).unwrap();
    match crate::inspect::read_floor(crate::storage::default_storage().as_ref(), dir.path()) {
        Err(e @ Error::WalCorrupted { .. }) => {
            assert!(e.is_corruption());
            let Error::WalCorrupted { problem, .. } = e else {
                unreachable!()
            };
            assert_eq!(
                problem,
                Problem::FileLength {
                    file: "floor file",
                    len: 5,
                    expected: crate::inspect::FLOOR_LEN as u64
                }
            );
        }
        other => panic!("expected WalCorrupted, got {other:?}"),
    }
}

#[test]
fn an_unusable_setting_is_invalid_config_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions::new().with_segment_size(100);
    match WriteAheadLog::open(dir.path(), options) {
        Err(Error::InvalidConfig { setting, reason }) => {
            assert_eq!(setting, "segment_size");
            assert!(reason.contains("4096"), "{reason}");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

fn state(pairs: &[(&str, &str)]) -> Vec<u8> {
    let pairs = pairs
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    StateSnapshot::new(pairs).to_bytes().unwrap().to_vec()
}

#[test]
fn a_missing_part_is_part_not_found_not_an_argument_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
    let meta = m
        .create_checkpoint_with_state(0, HashMap::new(), None, &state(&[("a", "1")]))
        .unwrap();
    let e = m.store().resolve_part(meta.id, "nope").unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(!e.is_retryable() && !e.is_corruption());
    match e {
        Error::PartNotFound {
            checkpoint_id,
            part,
            ..
        } => assert_eq!((checkpoint_id, part.as_str()), (meta.id, "nope")),
        other => panic!("expected PartNotFound, got {other:?}"),
    }
    assert!(matches!(
        m.store().load_snapshot(meta.id, "nope"),
        Err(Error::PartNotFound { .. })
    ));
}

#[test]
fn a_delta_over_a_damaged_parent_is_rejected_naming_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(dir.path())).unwrap();
    m.create_checkpoint_with_state(0, HashMap::new(), None, &state(&[("a", "1")]))
        .unwrap();
    let parent = m
        .create_checkpoint_with_state(0, HashMap::new(), None, &state(&[("a", "2")]))
        .unwrap();
    let delta = crate::StateDelta::from_changes(vec![(b"x".to_vec(), Some(b"y".to_vec()))]);
    let child = m
        .create_delta_checkpoint_with_state(0, HashMap::new(), None, &delta.to_bytes().unwrap())
        .unwrap();
    assert_eq!(child.parent_id, Some(parent.id));
    let parent_dir = m.store().checkpoint_path(parent.id);
    std::fs::remove_file(parent_dir.join(&parent.parts[0].file)).unwrap();
    let latest = m.store().find_latest().unwrap();
    let rejected = &latest.rejected[0];
    assert_eq!(rejected.id, child.id);
    assert_eq!(rejected.reason, rejected.error.to_string());
    match rejected.error.as_ref() {
        Error::CheckpointParentUnrestorable {
            id,
            parent: p,
            source,
            ..
        } => {
            assert_eq!((*id, *p), (child.id, parent.id));
            assert!(source.is_not_found(), "{source:?}");
        }
        other => panic!("expected CheckpointParentUnrestorable, got {other:?}"),
    }
    assert!(rejected.error.is_corruption());
    // A missing file is the ancestor's damage, not a transient failure.
    assert!(!rejected.error.is_retryable());
}

#[test]
fn a_chain_problem_names_its_checkpoint() {
    let p = ChainProblem::LinkMismatch {
        id: 7,
        base_id: 1,
        chain_length: 3,
        parent: 6,
        parent_base_id: 1,
        parent_chain_length: 1,
    };
    assert_eq!(p.checkpoint_id(), 7);
    let e = Error::CheckpointChainBroken {
        path: PathBuf::from("ckpt/checkpoint-7"),
        problem: p.clone(),
    };
    assert!(e.is_corruption() && !e.is_retryable());
    assert_eq!(e.to_string(), p.to_string());
    assert!(e.to_string().contains("claims base 1 and chain length 3"));
}

#[test]
fn a_refused_call_names_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let (ckpt, wal) = (dir.path().join("ckpt"), dir.path().join("wal"));
    let log = WriteAheadLog::open(&wal, WalOptions::new()).unwrap();
    log.append(&put("a")).unwrap();
    log.append(&WalEntry::Commit {
        offsets: HashMap::new(),
        watermark: None,
    })
    .unwrap();
    log.close().unwrap();
    // Changes counted, not collected (asked for explicitly).
    let r = crate::RecoveryManager::new(crate::RecoveryConfig::new(&ckpt, &wal))
        .recover()
        .unwrap();
    match r.current_state() {
        Err(Error::InvalidArgument(a)) => {
            assert_eq!(a.operation, "RecoveredState::current_state");
            assert!(a.reason.contains("collect_state_changes"), "{a}");
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}
