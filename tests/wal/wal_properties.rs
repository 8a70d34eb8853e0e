//! Property tests: random logs, random tail damage. The reader returns exactly a
//! prefix of what was written, the damage is classified as a torn tail, and after a
//! repair the log accepts appends and reads back prefix + new entries.

use crate::common;

use common::*;
use highwater::{SyncPolicy, WalEntry, WalOptions, WalReadResult, WalReader, WriteAheadLog};
use proptest::prelude::*;
use std::collections::HashMap;

fn entry() -> impl Strategy<Value = WalEntry> {
    prop_oneof![
        (
            proptest::collection::vec(any::<u8>(), 0..24),
            proptest::collection::vec(any::<u8>(), 0..300)
        )
            .prop_map(|(key, value)| WalEntry::Put { key, value }),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(|key| WalEntry::Delete { key }),
        (any::<u64>(), proptest::option::of(any::<i64>())).prop_map(|(o, watermark)| {
            WalEntry::Commit {
                offsets: HashMap::from([("s".to_string(), o)]),
                watermark,
            }
        }),
        any::<u64>().prop_map(|id| WalEntry::Checkpoint { id }),
    ]
}

#[derive(Debug, Clone)]
enum TailDamage {
    /// Cut the newest segment to `len * fraction` of its bytes past the header.
    Truncate(f64),
    /// Append garbage bytes.
    Garbage(Vec<u8>),
    /// Append zeros.
    Zeros(usize),
    /// Overwrite the last `n` bytes with garbage.
    Scribble(usize, u8),
}

fn damage() -> impl Strategy<Value = TailDamage> {
    prop_oneof![
        (0.0f64..1.0).prop_map(TailDamage::Truncate),
        proptest::collection::vec(any::<u8>(), 1..200).prop_map(TailDamage::Garbage),
        (1usize..5000).prop_map(TailDamage::Zeros),
        (1usize..64, 1u8..=255).prop_map(|(n, b)| TailDamage::Scribble(n, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn tail_damage_yields_a_prefix_and_repairs(
        entries in proptest::collection::vec(entry(), 1..120),
        segment_size in 4096u64..16384,
        damage in damage(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions::default().with_sync_policy(SyncPolicy::Manual).with_segment_size(segment_size);
        {
            let wal = WriteAheadLog::open(dir.path(), options.clone()).unwrap();
            for e in &entries {
                wal.append(e).unwrap();
            }
            wal.close().unwrap();
        }
        let seg = segments(dir.path()).pop().unwrap();
        let len = file_len(&seg);
        match &damage {
            TailDamage::Truncate(f) => {
                let cut = 40 + ((len - 40) as f64 * f) as u64;
                set_file_len(&seg, cut);
            }
            TailDamage::Garbage(g) => patch(&seg, len, g),
            TailDamage::Zeros(n) => patch(&seg, len, &vec![0; *n]),
            TailDamage::Scribble(n, b) => {
                let n = (*n as u64).min(len - 40);
                patch(&seg, len - n, &vec![*b; n as usize]);
            }
        }

        let (read, end) = read_all(&mut WalReader::open(dir.path(), 0).unwrap());
        prop_assert!(read.len() <= entries.len());
        prop_assert_eq!(&read[..], &entries[..read.len()]);
        prop_assert!(matches!(end, WalReadResult::Eof | WalReadResult::TornWrite { .. }), "{:?}", end);
        if matches!(damage, TailDamage::Zeros(_) | TailDamage::Garbage(_)) {
            prop_assert_eq!(read.len(), entries.len(), "appended bytes must not hide written records");
        }

        let wal = WriteAheadLog::open(dir.path(), options).unwrap();
        let report = wal.repair().unwrap();
        prop_assert_eq!(report.cut_anything(), matches!(end, WalReadResult::TornWrite { .. }));
        let extra = WalEntry::Put { key: b"after".to_vec(), value: b"repair".to_vec() };
        wal.append(&extra).unwrap();
        let (again, end) = read_all(&mut wal.read_from(0).unwrap());
        prop_assert_eq!(end, WalReadResult::Eof);
        prop_assert_eq!(again.len(), read.len() + 1);
        prop_assert_eq!(&again[..read.len()], &read[..]);
        prop_assert_eq!(again.last(), Some(&extra));
    }

    #[test]
    fn any_single_flipped_byte_is_detected_or_harmless(
        entries in proptest::collection::vec(entry(), 2..40),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = manual(dir.path());
            for e in &entries {
                wal.append(e).unwrap();
            }
            wal.close().unwrap();
        }
        let seg = segments(dir.path()).pop().unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        std::fs::write(&seg, &bytes).unwrap();
        match WalReader::open(dir.path(), 0) {
            Ok(mut r) => {
                let (read, end) = read_all(&mut r);
                // Never a wrong entry: what is returned is a prefix of what was written.
                prop_assert_eq!(&read[..], &entries[..read.len()]);
                if read.len() < entries.len() {
                    prop_assert!(!matches!(end, WalReadResult::Eof), "silently lost entries: {:?}", end);
                }
            }
            Err(e) => prop_assert!(e.is_corruption() || matches!(e, highwater::Error::UnsupportedVersion { .. }), "{}", e),
        }
    }
}
