//! The key-group hash is part of the on-disk format forever: it is pinned by
//! committed fixtures (`fixtures/key_groups.txt`, generated once from the
//! implementation by the ignored `write_key_group_fixtures`), and the
//! formula printed in docs/DISTRIBUTED.md and docs/FORMAT.md §7 is
//! *executed* from the docs' text and compared with both, so neither the
//! code nor the docs can drift.

use super::support::splitmix;
use highwater::cluster::{key_group, KeyGroups, DEFAULT_KEY_GROUPS, MAX_KEY_GROUPS};
use std::path::PathBuf;

/// The group counts every fixture key is hashed with.
const COUNTS: [u32; 7] = [1, 2, 3, 7, 128, 1000, 32768];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_path() -> PathBuf {
    root().join("tests/cluster/fixtures/key_groups.txt")
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    if text == "-" {
        return Vec::new();
    }
    assert!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The keys the fixtures pin.
fn fixture_keys() -> Vec<Vec<u8>> {
    let mut keys = vec![Vec::new()];
    for b in [
        0x00, 0x01, 0x20, b'0', b'a', b'z', 0x7f, 0x80, 0xc0, 0xfe, 0xff,
    ] {
        keys.push(vec![b]);
    }
    for s in [
        "ab",
        "ba",
        "key",
        "user-42",
        "word-0",
        "word-1",
        "hello world",
        "Ünïcödé",
        "日本語のキー",
    ] {
        keys.push(s.as_bytes().to_vec());
    }
    // Not UTF-8: a bad continuation, lone continuations, an encoded
    // surrogate, an over-long form, 0xff runs, NULs.
    keys.push(vec![0xc3, 0x28]);
    keys.push(vec![0xa0, 0xa1]);
    keys.push(vec![0xed, 0xa0, 0x80]);
    keys.push(vec![0xf8, 0x88, 0x80, 0x80, 0x80]);
    keys.push(vec![0xff; 8]);
    keys.push(vec![0x00; 8]);
    keys.push(vec![0x00, 0xff, 0x00, 0xff]);
    // Long keys.
    for len in [64u64, 255, 256, 1000, 2048] {
        keys.push((0..len).map(|i| (i * 31 + 7) as u8).collect());
    }
    // Pseudo-random keys of 2 to 40 bytes.
    for i in 0..16u64 {
        let len = 2 + splitmix(i) % 39;
        keys.push((0..len).map(|j| splitmix(i << 16 | j) as u8).collect());
    }
    keys
}

/// Writes the fixtures from the current implementation. Run once, when
/// the hash was introduced; never again (the hash must not change):
/// `cargo test --test cluster write_key_group_fixtures -- --ignored`.
#[test]
#[ignore = "generates the committed fixtures; the hash must never change"]
fn write_key_group_fixtures() {
    let mut out = String::from(
        "# highwater key-group fixtures: `key_hex count group` per line; `-` is the empty key.\n\
         # Generated once from highwater::cluster::key_group; the hash is part of the on-disk\n\
         # format forever (docs/DISTRIBUTED.md, \"Key groups\"). Never regenerate.\n",
    );
    for key in fixture_keys() {
        for count in COUNTS {
            out.push_str(&format!(
                "{} {count} {}\n",
                hex(&key),
                key_group(&key, count)
            ));
        }
    }
    std::fs::create_dir_all(fixture_path().parent().unwrap()).unwrap();
    std::fs::write(fixture_path(), out).unwrap();
}

/// The fixtures: (key, count, group).
fn fixtures() -> Vec<(Vec<u8>, u32, u32)> {
    let text = std::fs::read_to_string(fixture_path()).expect("the committed fixtures");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "fixture line {l:?}");
            (unhex(f[0]), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn key_groups_match_the_committed_fixtures() {
    let cases = fixtures();
    // The file is what it claims to be (not truncated, not thinned out).
    assert!(cases.len() >= 300, "{} fixture cases", cases.len());
    for count in COUNTS {
        assert!(
            cases.iter().any(|c| c.1 == count),
            "no case of {count} groups"
        );
    }
    assert!(cases.iter().any(|c| c.0.is_empty()), "the empty key");
    assert!(cases.iter().filter(|c| c.0.len() == 1).count() >= 5 * COUNTS.len());
    assert!(cases.iter().any(|c| c.0.len() >= 1000), "a long key");
    assert!(cases.iter().any(|c| std::str::from_utf8(&c.0).is_err()));
    let mut spread = std::collections::BTreeSet::new();
    for (key, count, group) in &cases {
        assert!(group < count);
        assert_eq!(
            key_group(key, *count),
            *group,
            "key {} among {count} groups",
            hex(key)
        );
        assert_eq!(KeyGroups::new(*count).unwrap().of(key), *group);
        if *count == 32768 {
            spread.insert(*group);
        }
    }
    // The 49 distinct keys land in (almost) distinct groups of 32768: a
    // degenerate hash would not.
    assert!(spread.len() >= 45, "{} distinct groups", spread.len());
}

/// One step of the hash's finaliser as the docs print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    XorShift(u32),
    Multiply(u64),
}

/// The hash as a doc prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DocHash {
    offset: u64,
    prime: u64,
    steps: Vec<Step>,
    /// `group = ((h >> top) * G) >> down`.
    top: u32,
    down: u32,
}

fn hex_after(text: &str, marker: &str) -> u64 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not in {text}"));
    let rest = text[at + marker.len()..].trim_start();
    let digits = rest.strip_prefix("0x").expect("a hex constant");
    let end = digits
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(digits.len());
    u64::from_str_radix(&digits[..end], 16).unwrap()
}

fn number_after(text: &str, marker: &str) -> u32 {
    let rest = &text[text.find(marker).unwrap_or_else(|| panic!("{marker:?}")) + marker.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().unwrap()
}

/// The code block of `doc` that holds `marker`.
fn block_with(doc: &str, marker: &str) -> String {
    let text = std::fs::read_to_string(root().join(doc)).unwrap();
    let mut blocks = text.split("```").skip(1).step_by(2);
    blocks
        .find(|b| b.contains(marker))
        .unwrap_or_else(|| panic!("no code block of {doc} holds {marker:?}"))
        .to_string()
}

/// Reads the finaliser steps in the order the block prints them.
fn steps(block: &str) -> Vec<Step> {
    let mut found = Vec::new();
    for (at, _) in block.match_indices("h ^= h >> ") {
        found.push((at, Step::XorShift(number_after(&block[at..], "h ^= h >> "))));
    }
    for (at, _) in block.match_indices("h *= ") {
        found.push((at, Step::Multiply(hex_after(&block[at..], "h *= "))));
    }
    found.sort_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, s)| s).collect()
}

fn group_line(block: &str) -> (u32, u32) {
    let line = block
        .lines()
        .find(|l| l.trim_start().starts_with("group = ((h >> "))
        .expect("the group line");
    let top = number_after(line, "((h >> ");
    assert!(line.contains(") * G) >> "), "{line}");
    (top, number_after(line, ") * G) >> "))
}

/// docs/DISTRIBUTED.md, "Key groups".
fn distributed_md() -> DocHash {
    let block = block_with("docs/DISTRIBUTED.md", "FNV-1a-64(key)");
    let (top, down) = group_line(&block);
    DocHash {
        offset: hex_after(&block, "offset basis"),
        prime: hex_after(&block, "prime"),
        steps: steps(&block),
        top,
        down,
    }
}

/// docs/FORMAT.md §7, "Key groups and stored keys".
fn format_md() -> DocHash {
    let block = block_with("docs/FORMAT.md", "for b in key:");
    let (top, down) = group_line(&block);
    DocHash {
        offset: hex_after(&block, "h = "),
        prime: hex_after(&block, "(h XOR b) * "),
        steps: steps(&block),
        top,
        down,
    }
}

impl DocHash {
    fn group(&self, key: &[u8], count: u32) -> u32 {
        let mut h = self.offset;
        for &b in key {
            h = (h ^ u64::from(b)).wrapping_mul(self.prime);
        }
        for step in &self.steps {
            match *step {
                Step::XorShift(n) => h ^= h >> n,
                Step::Multiply(m) => h = h.wrapping_mul(m),
            }
        }
        (((h >> self.top) * u64::from(count)) >> self.down) as u32
    }
}

#[test]
fn the_documented_formula_is_the_implementation() {
    let doc = distributed_md();
    assert_eq!(
        doc,
        format_md(),
        "DISTRIBUTED.md and FORMAT.md print the same hash"
    );
    assert_eq!(doc.steps.len(), 5, "{:?}", doc.steps);
    for (key, count, group) in fixtures() {
        assert_eq!(
            doc.group(&key, count),
            group,
            "key {} of {count}",
            hex(&key)
        );
    }
    for i in 0..20_000u64 {
        let len = splitmix(i) % 24;
        let key: Vec<u8> = (0..len).map(|j| splitmix(i * 131 + j) as u8).collect();
        let count = 1 + (splitmix(!i) % u64::from(MAX_KEY_GROUPS)) as u32;
        for g in [count, DEFAULT_KEY_GROUPS] {
            assert_eq!(doc.group(&key, g), key_group(&key, g), "key {}", hex(&key));
        }
    }
}

#[test]
fn worker_ranges_are_the_documented_split() {
    // docs: worker i of n owns [i*G/n, (i+1)*G/n).
    for count in [1, 2, 3, 7, 128, 1000, 32768] {
        let groups = KeyGroups::new(count).unwrap();
        for n in (1..=6).filter(|&n| n <= count) {
            for i in 0..n {
                let r = groups.range_of(i, n).unwrap();
                let at = |i: u32| (u64::from(i) * u64::from(count) / u64::from(n)) as u32;
                assert_eq!((r.start, r.end), (at(i), at(i + 1)));
            }
        }
    }
}
