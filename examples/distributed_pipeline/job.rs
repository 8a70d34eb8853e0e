//! The job: per-window word counts over a partitioned, deterministic input.
//!
//! - **Input.** `PARTITIONS` partitions (one per key group, like a Kafka
//!   topic keyed by word): partition `p` holds only words `w` with
//!   `key_group(w, 128) == p`, `RECORDS` records each. Record `i` of
//!   partition `p` is a word and an event time `i * MS_PER_RECORD` plus up
//!   to `JITTER_MS` of disorder, both drawn from a hash of (seed, p, i): the
//!   same seed is the same input, in every process.
//! - **Barriers.** Barrier `e` sits after record `e * BARRIER` of every
//!   partition: epoch `e` reads records `(e-1)*BARRIER .. e*BARRIER`.
//! - **State.** One key per word (so its key group is the word's, and the
//!   worker reading the word's partition owns it); the value holds the
//!   word's count per open tumbling window (`WINDOW_MS`). The window is the
//!   key's namespace, as in Flink's keyed window state: a (window, word) key
//!   would hash to another group than the word's partition.
//! - **Emission.** A partition's watermark is its largest event time minus
//!   `LATENESS_MS` (more than the jitter: no record is ever late); a worker
//!   emits a window once the minimum watermark over its partitions passes
//!   the window's end, and everything at the end of the input.

use highwater::cluster::{key_group, DEFAULT_KEY_GROUPS};
use highwater::{SourcePositions, TrackedState};
use std::collections::BTreeMap;

/// Key groups of the job, and input partitions (one per group).
pub const PARTITIONS: u32 = DEFAULT_KEY_GROUPS;
/// Records per partition.
pub const RECORDS: u64 = 1_200;
/// Records per partition between two barriers.
pub const BARRIER: u64 = 40;
/// Epochs of the whole job (the last one reaches the end of the input).
pub const EPOCHS: u64 = RECORDS / BARRIER;
/// How long a source takes to deliver one barrier's records (its event
/// time is `BARRIER * MS_PER_RECORD`: the input replays 20 times faster
/// than it happened). Without it the whole job takes milliseconds.
pub const EPOCH_DELIVERY: std::time::Duration = std::time::Duration::from_millis(20);
/// Event time between consecutive records of a partition.
pub const MS_PER_RECORD: i64 = 10;
/// Width of a tumbling window, in event-time milliseconds (one barrier of
/// event time: about every epoch closes a window of every partition).
pub const WINDOW_MS: i64 = 400;
/// How far a record can be out of order within its partition.
pub const JITTER_MS: i64 = 150;
/// How far a partition's watermark trails its largest event time.
pub const LATENESS_MS: i64 = 200;
/// Distinct words per partition.
const WORDS_PER_PARTITION: usize = 3;

/// The name of partition `p`.
pub fn partition_name(p: u32) -> String {
    format!("words-{p:03}")
}

/// The partition a name names, if it is one of the job's.
pub fn partition_of(name: &str) -> Option<u32> {
    name.strip_prefix("words-")?
        .parse()
        .ok()
        .filter(|p| *p < PARTITIONS)
}

/// Each partition's words: `word-<n>` for the smallest `n`s whose key group
/// is the partition.
pub fn vocabulary() -> Vec<Vec<String>> {
    let mut words = vec![Vec::new(); PARTITIONS as usize];
    let mut missing = PARTITIONS as usize;
    for n in 0u64.. {
        let word = format!("word-{n}");
        let bucket = &mut words[key_group(word.as_bytes(), PARTITIONS) as usize];
        if bucket.len() < WORDS_PER_PARTITION {
            bucket.push(word);
            if bucket.len() == WORDS_PER_PARTITION {
                missing -= 1;
                if missing == 0 {
                    break;
                }
            }
        }
    }
    words
}

/// SplitMix64 of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Record `offset` of partition `p`: its word and its event time.
pub fn record(words: &[Vec<String>], seed: u64, p: u32, offset: u64) -> (&str, i64) {
    let h = mix(mix(seed ^ u64::from(p)) ^ offset);
    let bucket = &words[p as usize];
    let word = &bucket[(h % bucket.len() as u64) as usize];
    let jitter = ((h >> 32) % JITTER_MS as u64) as i64;
    (word, offset as i64 * MS_PER_RECORD + jitter)
}

/// The start of the window holding event time `t`.
fn window_of(t: i64) -> i64 {
    t - t.rem_euclid(WINDOW_MS)
}

/// A word's open windows: (window start, count), by start.
fn decode(value: &[u8]) -> Vec<(i64, u64)> {
    value
        .chunks_exact(16)
        .map(|c| {
            let start = i64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
            let n = u64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
            (start, n)
        })
        .collect()
}

fn encode(windows: &[(i64, u64)]) -> Vec<u8> {
    windows
        .iter()
        .flat_map(|(s, n)| s.to_le_bytes().into_iter().chain(n.to_le_bytes()))
        .collect()
}

/// Reads epoch `epoch`'s records of partition `p` into `state` and moves the
/// partition's offset and watermark; returns how many it read.
pub fn read_epoch(
    words: &[Vec<String>],
    seed: u64,
    p: u32,
    epoch: u64,
    state: &mut TrackedState,
    sources: &mut SourcePositions,
) -> highwater::Result<u64> {
    let name = partition_name(p);
    let from = sources.offset(&name).unwrap_or(0);
    let to = (epoch * BARRIER).min(RECORDS);
    for offset in from..to {
        let (word, t) = record(words, seed, p, offset);
        let mut windows = state.get(word.as_bytes()).map(decode).unwrap_or_default();
        let start = window_of(t);
        match windows.binary_search_by_key(&start, |w| w.0) {
            Ok(i) => windows[i].1 += 1,
            Err(i) => windows.insert(i, (start, 1)),
        }
        state.put(word.as_bytes().to_vec(), encode(&windows));
        sources.advance_watermark(name.clone(), t - LATENESS_MS);
    }
    sources.set_offset(name, to)?;
    Ok(to.saturating_sub(from))
}

/// Removes every window ending at or before `watermark` from `state` and
/// returns its lines (`<window start> <word> <count>`), by window and word.
pub fn emit_closed(state: &mut TrackedState, watermark: i64) -> Vec<u8> {
    let mut lines = BTreeMap::new();
    let mut changes = Vec::new();
    for (key, value) in state.iter() {
        let windows = decode(value);
        let (closed, open): (Vec<_>, Vec<_>) = windows
            .into_iter()
            .partition(|(s, _)| s.saturating_add(WINDOW_MS) <= watermark);
        if closed.is_empty() {
            continue;
        }
        let word = String::from_utf8_lossy(key).into_owned();
        for (start, n) in closed {
            lines.insert((start, word.clone()), n);
        }
        changes.push((key.to_vec(), (!open.is_empty()).then(|| encode(&open))));
    }
    for (key, value) in changes {
        state.apply_change(key, value);
    }
    let mut out = Vec::new();
    for ((start, word), n) in lines {
        out.extend_from_slice(format!("{start} {word} {n}\n").as_bytes());
    }
    out
}

/// The counts per (window start, word), computed directly from the input:
/// no workers, checkpoints or crashes.
pub fn expected_counts(seed: u64) -> BTreeMap<(i64, String), u64> {
    let words = vocabulary();
    let mut counts = BTreeMap::new();
    for p in 0..PARTITIONS {
        for offset in 0..RECORDS {
            let (word, t) = record(&words, seed, p, offset);
            *counts.entry((window_of(t), word.to_string())).or_insert(0) += 1;
        }
    }
    counts
}

/// Checks published output (every object's lines) against
/// [`expected_counts`]: each (window, word) exactly once, with its count.
pub fn verify(seed: u64, objects: &[(String, Vec<u8>)]) -> Result<(), String> {
    let mut seen: BTreeMap<(i64, String), (u64, &str)> = BTreeMap::new();
    for (key, bytes) in objects {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("{key}: not UTF-8: {e}"))?;
        for line in text.lines() {
            let mut fields = line.split(' ');
            let parsed = (|| {
                let start: i64 = fields.next()?.parse().ok()?;
                let word = fields.next()?.to_string();
                let n: u64 = fields.next()?.parse().ok()?;
                fields.next().is_none().then_some((start, word, n))
            })();
            let (start, word, n) = parsed.ok_or_else(|| format!("{key}: malformed {line:?}"))?;
            if let Some((_, first)) = seen.insert((start, word.clone()), (n, key)) {
                return Err(format!(
                    "window {start} word {word} published twice (in {first} and {key})"
                ));
            }
        }
    }
    let expected = expected_counts(seed);
    for ((start, word), n) in &expected {
        match seen.get(&(*start, word.clone())) {
            None => return Err(format!("window {start} word {word} missing (lost output)")),
            Some((got, key)) if got != n => {
                return Err(format!(
                    "window {start} word {word}: count {got} in {key}, expected {n}"
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(((start, word), (_, key))) = seen.iter().find(|(k, _)| !expected.contains_key(*k)) {
        return Err(format!(
            "window {start} word {word} (in {key}) was never in the input"
        ));
    }
    Ok(())
}
