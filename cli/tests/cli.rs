//! The `highwater` binary run against directories the library wrote, intact
//! and damaged: output (human and JSON) and exit codes.

use serde_json::Value;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../examples/cli_demo/job.rs"]
mod job;
mod support;

use common::segments;
use support::{highwater, run};

/// Where the first record of a segment starts.
const HEADER: u64 = highwater::inspect::SEGMENT_HEADER_LEN;

/// The demo job in a fresh temporary directory.
struct Fixture {
    _tmp: tempfile::TempDir,
    ckpt: PathBuf,
    wal: PathBuf,
    delta_position: u64,
    committed_end: u64,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let job = job::write_demo_job(tmp.path()).unwrap();
    Fixture {
        _tmp: tmp,
        ckpt: job.ckpt,
        wal: job.wal,
        delta_position: job.delta_position,
        committed_end: job.committed_end,
    }
}

/// Runs with `--json`; the parsed document and the exit code.
fn run_json(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (Value, i32) {
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"--json"];
    all.extend_from_slice(args);
    let (stdout, stderr, code) = run(&all);
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}, stderr {stderr:?}"));
    (doc, code)
}

fn part_file(ckpt: &Path, id: u64) -> PathBuf {
    let dir = ckpt.join(format!("checkpoint-{id:020}"));
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "hwstate"))
        .unwrap()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn append_garbage(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn checkpoints_ls_lists_both_and_marks_the_one_recovery_uses() {
    let f = fixture();
    let (out, _, code) = run(&[&"checkpoints", &"ls", &f.ckpt]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("ID"), "{out}");
    assert!(
        lines[1].starts_with("1 ") && lines[1].contains("full"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("2 ") && lines[2].contains("delta"),
        "{out}"
    );
    assert!(
        lines[2].contains("<- recovery") && !lines[1].contains("<- recovery"),
        "{out}"
    );
    assert!(out.contains("recovery would use checkpoint 2"), "{out}");

    let (doc, code) = run_json(&[&"checkpoints", &"ls", &f.ckpt]);
    assert_eq!(code, 0);
    assert_eq!(doc["recovery_checkpoint"], 2);
    let c = &doc["checkpoints"];
    assert_eq!(c[0]["kind"], "full");
    assert_eq!(c[1]["kind"], "delta");
    assert_eq!(c[1]["parent_id"], 1);
    assert_eq!(c[1]["epoch"], 2);
    assert_eq!(c[1]["wal_position"], f.delta_position);
    assert_eq!(c[1]["watermark"], 200);
    assert_eq!(c[1]["verifies"], true);
    assert!(c[0]["bytes"].as_u64().unwrap() > 0);
}

#[test]
fn checkpoints_show_prints_metadata_offsets_and_parts() {
    let f = fixture();
    let (out, _, code) = run(&[&"checkpoints", &"show", &f.ckpt, &"2"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("delta (parent 1, base 1, chain length 1)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("wal position  {}", f.delta_position)),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().eq(["orders-0", "20", "-"])),
        "{out}"
    );
    let part = out
        .lines()
        .find(|l| l.trim_start().starts_with("state "))
        .unwrap();
    assert!(
        part.contains("delta") && part.contains("part-state.hwstate"),
        "{part}"
    );

    let (doc, code) = run_json(&[&"checkpoints", &"show", &f.ckpt, &"2"]);
    assert_eq!(code, 0);
    assert_eq!(doc["metadata"]["source_offsets"]["orders-0"], 20);
    assert_eq!(doc["metadata"]["parts"][0]["entries"], 1);
    assert_eq!(doc["metadata"]["parts"][0]["deleted"], 1);
    assert_eq!(doc["verifies"], true);

    let (doc, code) = run_json(&[&"checkpoints", &"show", &f.ckpt, &"9"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["kind"], "not_found");
}

#[test]
fn verify_passes_an_intact_job_and_fails_each_kind_of_damage() {
    let f = fixture();
    let (out, _, code) = run(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: everything verifies"), "{out}");

    // A flipped byte in the full checkpoint's part: it and the delta on top
    // fail; the problem names the file and the offset.
    let part = part_file(&f.ckpt, 1);
    let len = std::fs::metadata(&part).unwrap().len();
    flip_byte(&part, len - 3);
    let (doc, code) = run_json(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["ok"], false);
    let c = &doc["checkpoints"]["checkpoints"];
    assert_eq!(c[0]["verifies"], false);
    let problem = &c[0]["problems"][0];
    assert_eq!(problem["file"], part.display().to_string());
    assert!(problem["offset"].is_u64(), "{problem}");
    assert_eq!(c[1]["verifies"], true);
    assert_eq!(c[1]["restorable"], false);
    assert!(doc["checkpoints"]["recovery_checkpoint"].is_null());
    let (out, _, code) = run(&[&"verify", &f.ckpt]);
    assert_eq!(code, 1);
    assert!(
        out.contains("CHAIN BROKEN") && out.contains("DAMAGED"),
        "{out}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("checkpoint 1:"))
        .unwrap();
    assert!(
        line.contains(&part.display().to_string()) && line.contains("at offset"),
        "{line}"
    );
}

#[test]
fn verify_reports_a_torn_tail_and_corruption_in_the_log_with_file_and_offset() {
    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    let end = std::fs::metadata(&segment).unwrap().len();
    append_garbage(&segment, &[0xAB; 7]);
    let (doc, code) = run_json(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    assert_eq!(code, 1, "{doc}");
    let s = &doc["wal"]["segments"][0];
    assert_eq!(s["status"], "torn tail");
    assert_eq!(s["problem"]["file"], segment.display().to_string());
    assert_eq!(s["problem"]["offset"], end);
    assert_eq!(doc["wal"]["only_torn_tail"], true);
    let (out, _, _) = run(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    assert!(out.contains("torn tail"), "{out}");

    // A flipped byte inside the first record, with valid records after it.
    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    flip_byte(&segment, HEADER + 30);
    let (doc, code) = run_json(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    assert_eq!(code, 1);
    let s = &doc["wal"]["segments"][0];
    assert_eq!(s["status"], "corrupt", "{s}");
    assert_eq!(s["problem"]["offset"], HEADER);
    assert_eq!(s["records"], 0);
}

#[test]
fn wal_dump_prints_every_entry_and_how_the_log_ends() {
    let f = fixture();
    let (out, _, code) = run(&[&"wal", &"dump", &f.wal]);
    assert_eq!(code, 0, "{out}");
    let kinds: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .take(9)
        .collect();
    assert_eq!(
        kinds,
        ["put", "put", "commit", "put", "delete", "commit", "put", "commit", "put"]
    );
    assert!(out.contains("key user:1  value 5 bytes"), "{out}");
    assert!(out.contains("key 0x00ff10  value 3 bytes"), "{out}");
    assert!(
        out.contains("offsets {orders-0=20}  watermark 200"),
        "{out}"
    );
    assert!(out.contains("end: clean end of the log"), "{out}");
    assert!(out.contains("9 entries"), "{out}");

    let (doc, code) = run_json(&[&"wal", &"dump", &f.wal, &"--limit", &"2"]);
    assert_eq!(code, 0);
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["type"], "put");
    assert_eq!(entries[0]["key"]["utf8"], "user:1");
    assert_eq!(entries[1]["key"]["hex"], "00ff10");
    assert_eq!(doc["end"]["end"], "limit");
    let next = doc["end"]["position"].as_u64().unwrap();

    // Continuing from where the limit stopped gives the rest.
    let (doc, _) = run_json(&[&"wal", &"dump", &f.wal, &"--from", &next.to_string()]);
    assert_eq!(doc["entries"][0]["type"], "commit");
    assert_eq!(doc["entries"][0]["offsets"]["orders-0"], 10);
    assert_eq!(doc["end"]["entries"], 7);

    // A position inside a record is refused with a clear error.
    let (_, err, code) = run(&[&"wal", &"dump", &f.wal, &"--from", &(next + 1).to_string()]);
    assert_eq!(code, 4);
    assert!(err.contains("not a record boundary"), "{err}");
}

#[test]
fn wal_dump_of_a_damaged_log_says_what_ends_it_and_exits_1() {
    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    let end = std::fs::metadata(&segment).unwrap().len();
    append_garbage(&segment, &[0xAB; 7]);
    let (out, _, code) = run(&[&"wal", &"dump", &f.wal]);
    assert_eq!(code, 1);
    assert!(out.contains("end: torn tail at position"), "{out}");
    assert!(
        out.contains(&format!("{} at offset {end}", segment.display())),
        "{out}"
    );

    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    flip_byte(&segment, HEADER + 30);
    let (doc, code) = run_json(&[&"wal", &"dump", &f.wal]);
    assert_eq!(code, 1);
    assert_eq!(doc["end"]["end"], "corruption");
    assert_eq!(doc["end"]["problem"]["offset"], HEADER);
    assert_eq!(doc["entries"].as_array().unwrap().len(), 0);
}

#[test]
fn wal_repair_dry_run_changes_nothing_and_repair_cuts_exactly_that() {
    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    let end = std::fs::metadata(&segment).unwrap().len();
    append_garbage(&segment, &[0xAB; 7]);
    let before = std::fs::read(&segment).unwrap();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(&f.wal)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let files_before = listing();

    let (doc, code) = run_json(&[&"wal", &"repair", &f.wal, &"--dry-run"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["cut"], true);
    assert_eq!(doc["torn_tail"], true);
    assert_eq!(doc["offset"], end);
    assert_eq!(doc["bytes_cut"], 7);
    assert_eq!(std::fs::read(&segment).unwrap(), before, "a dry run wrote");
    assert_eq!(
        listing(),
        files_before,
        "a dry run created or removed files"
    );

    let (out, _, code) = run(&[&"wal", &"repair", &f.wal]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("cut torn tail: 7 bytes"), "{out}");
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), end);
    let (out, _, code) = run(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    assert_eq!(code, 0, "{out}");
    let (out, _, code) = run(&[&"wal", &"repair", &f.wal, &"--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to repair"), "{out}");
}

#[test]
fn wal_repair_refuses_corruption_unless_point_in_time_is_asked_for() {
    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    flip_byte(&segment, HEADER + 30);
    let before = std::fs::read(&segment).unwrap();
    let (doc, code) = run_json(&[&"wal", &"repair", &f.wal]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["kind"], "damage");
    assert_eq!(doc["file"], segment.display().to_string());
    assert_eq!(doc["offset"], HEADER);
    assert_eq!(std::fs::read(&segment).unwrap(), before);

    // With no checkpoint to protect, point in time would cut at the damage.
    let no_checkpoints = tempfile::tempdir().unwrap();
    let (doc, code) = run_json(&[
        &"wal",
        &"repair",
        &f.wal,
        &"--dry-run",
        &"--mode",
        &"point-in-time",
        &"--checkpoints",
        &no_checkpoints.path(),
    ]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["torn_tail"], false);
    assert_eq!(doc["position"], 0);
    assert_eq!(std::fs::read(&segment).unwrap(), before);

    let (_, err, code) = run(&[&"wal", &"repair", &f.ckpt.join("nope")]);
    assert_eq!(code, 3);
    assert!(err.contains("no write-ahead log at"), "{err}");
    assert!(!f.ckpt.join("nope").exists(), "repair created a directory");
    // A directory that is not a log (here: the checkpoint directory) is not
    // turned into one.
    let before = std::fs::read_dir(&f.ckpt).unwrap().count();
    let (_, err, code) = run(&[&"wal", &"repair", &f.ckpt]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("holds no segment files"), "{err}");
    assert_eq!(std::fs::read_dir(&f.ckpt).unwrap().count(), before);
}

#[test]
fn point_in_time_repair_needs_the_checkpoints_and_never_cuts_below_them() {
    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    // Damage in the first transaction, below both checkpoints.
    flip_byte(&segment, HEADER + 30);
    let before = std::fs::read(&segment).unwrap();
    let pit: [&dyn AsRef<std::ffi::OsStr>; 5] =
        [&"wal", &"repair", &f.wal, &"--mode", &"point-in-time"];
    let (_, err, code) = run(&pit);
    assert_eq!(code, 2, "--checkpoints is required: {err}");
    let mut args = pit.to_vec();
    args.extend_from_slice(&[&"--checkpoints", &f.ckpt]);
    let (doc, code) = run_json(&args);
    assert_eq!(code, 1, "{doc}");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("checkpoint 2 needs it"),
        "{doc}"
    );
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        before,
        "cut below a checkpoint"
    );
}

#[test]
fn wal_repair_of_a_clean_log_changes_nothing() {
    let f = fixture();
    let before: Vec<Vec<u8>> = segments(&f.wal)
        .iter()
        .map(|s| std::fs::read(s).unwrap())
        .collect();
    let (out, _, code) = run(&[&"wal", &"repair", &f.wal]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to repair"), "{out}");
    let after: Vec<Vec<u8>> = segments(&f.wal)
        .iter()
        .map(|s| std::fs::read(s).unwrap())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn state_get_and_dump_read_the_merged_chain() {
    let f = fixture();
    let (out, _, code) = run(&[&"state", &"get", &f.ckpt, &"user:2"]);
    assert_eq!((out.as_str(), code), ("bob\n", 0));
    // Deleted by the delta: not found, exit 3.
    let (_, err, code) = run(&[&"state", &"get", &f.ckpt, &"user:1"]);
    assert_eq!(code, 3);
    assert!(err.contains("not found"), "{err}");
    // ...but present in the older checkpoint.
    let (out, _, code) = run(&[&"state", &"get", &f.ckpt, &"user:1", &"--checkpoint", &"1"]);
    assert_eq!((out.as_str(), code), ("alice\n", 0));
    let (doc, code) = run_json(&[&"state", &"get", &f.ckpt, &"--hex", &"00ff10"]);
    assert_eq!(code, 0);
    assert_eq!(doc["value"]["hex"], "010203");
    assert_eq!(doc["checkpoint"], 2);
    let (out, _, _) = run(&[&"state", &"get", &f.ckpt, &"--hex", &"00ff10"]);
    assert_eq!(out, "0x010203\n");

    let (out, _, code) = run(&[&"state", &"dump", &f.ckpt]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "0x00ff10  0x010203\nuser:2  bob\n2 pairs (checkpoint 2, part state)\n"
    );
    let (doc, code) = run_json(&[&"state", &"dump", &f.ckpt, &"--prefix", &"user:"]);
    assert_eq!(code, 0);
    assert_eq!(doc["count"], 1);
    assert_eq!(doc["pairs"][0]["key"]["utf8"], "user:2");
    assert_eq!(doc["pairs"][0]["value"]["utf8"], "bob");
    assert!(doc["error"].is_null());

    let (_, err, code) = run(&[&"state", &"dump", &f.ckpt, &"--part", &"joins"]);
    assert_eq!(code, 3);
    assert!(
        err.contains("no part joins") && err.contains("parts: state"),
        "{err}"
    );
}

#[test]
fn state_get_of_a_damaged_part_is_a_typed_error_not_a_panic() {
    let f = fixture();
    let part = part_file(&f.ckpt, 2);
    let len = std::fs::metadata(&part).unwrap().len();
    flip_byte(&part, len - 3);
    let (doc, code) = run_json(&[&"state", &"dump", &f.ckpt, &"--checkpoint", &"2"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["kind"], "damage");
    assert_eq!(doc["file"], part.display().to_string());
    let (_, err, code) = run(&[&"state", &"get", &f.ckpt, &"user:2", &"--checkpoint", &"2"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("part-state.hwstate"), "{err}");
    // The default checkpoint is then the older one, which still reads.
    let (out, _, code) = run(&[&"state", &"get", &f.ckpt, &"user:1"]);
    assert_eq!((out.as_str(), code), ("alice\n", 0));
}

#[test]
fn recover_dry_run_reports_the_plan_and_changes_nothing() {
    let f = fixture();
    let segment = segments(&f.wal).pop().unwrap();
    append_garbage(&segment, &[0xAB; 7]);
    let before = std::fs::read(&segment).unwrap();
    let (doc, code) = run_json(&[&"recover", &f.ckpt, &f.wal, &"--dry-run"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["checkpoint"]["id"], 2);
    assert_eq!(doc["replay"]["from"], f.delta_position);
    assert_eq!(doc["replay"]["to"], f.committed_end);
    assert_eq!(doc["replay"]["committed_transactions"], 1);
    assert_eq!(doc["replay"]["changes"], 1);
    assert_eq!(doc["replay"]["uncommitted_entries"], 1);
    assert_eq!(doc["replay"]["uncommitted_position"], f.committed_end);
    assert_eq!(doc["wal_repair"]["bytes_cut"], 7);
    assert_eq!(doc["source_offsets"]["orders-0"], 30);
    assert_eq!(doc["watermark"], 300);
    assert_eq!(std::fs::read(&segment).unwrap(), before, "a dry run wrote");

    // The real recovery agrees with the plan.
    let state = highwater::RecoveryManager::recover_simple(&f.ckpt, &f.wal).unwrap();
    assert_eq!(state.checkpoint_id, Some(2));
    assert_eq!(state.wal_position, f.committed_end);
    assert_eq!(state.source_offsets["orders-0"], 30);

    let (_, err, code) = run(&[&"recover", &f.ckpt, &f.wal]);
    assert_eq!(code, 2, "--dry-run is required: {err}");
}

#[test]
fn recover_dry_run_names_rejected_checkpoints_and_refuses_corruption() {
    let f = fixture();
    let part = part_file(&f.ckpt, 2);
    flip_byte(&part, 70);
    let (out, _, code) = run(&[&"recover", &f.ckpt, &f.wal, &"--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rejected          2: "), "{out}");
    assert!(out.contains("checkpoint        1 (epoch 1"), "{out}");

    // Damage below the checkpoint's position is released, not fatal.
    let segment = segments(&f.wal).pop().unwrap();
    flip_byte(&segment, HEADER + 30);
    let (doc, code) = run_json(&[&"recover", &f.ckpt, &f.wal, &"--dry-run"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["released_damage"]["file"],
        segment.display().to_string()
    );
    assert_eq!(doc["released_damage"]["offset"], HEADER);

    // Damage from the checkpoint's position on (followed by valid records)
    // is refused, naming the file and the offset.
    let at = HEADER + f.delta_position;
    flip_byte(&segment, at + 2);
    let (doc, code) = run_json(&[&"recover", &f.ckpt, &f.wal, &"--dry-run"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["file"], segment.display().to_string());
    assert_eq!(doc["offset"], at);
}

#[test]
fn missing_and_garbage_inputs_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("none");
    std::fs::create_dir(&empty).unwrap();
    // An empty directory is not a checkpoint directory: never "OK".
    for args in [
        vec![&"checkpoints" as &dyn AsRef<std::ffi::OsStr>, &"ls", &empty],
        vec![&"verify", &empty],
        vec![&"state", &"get", &empty, &"k"],
    ] {
        let (_, err, code) = run(&args);
        assert_eq!(code, 3, "{err}");
        assert!(err.contains("not a checkpoint directory"), "{err}");
    }

    // Garbage metadata.
    let f = fixture();
    let meta = f
        .ckpt
        .join(format!("checkpoint-{:020}", 2))
        .join("metadata.json");
    std::fs::write(&meta, b"{\"not\": \"metadata\"").unwrap();
    let (doc, code) = run_json(&[&"verify", &f.ckpt]);
    assert_eq!(code, 1);
    let problem = &doc["checkpoints"]["checkpoints"][1]["problems"][0];
    assert!(
        problem["file"].as_str().unwrap().contains("checkpoint-"),
        "{problem}"
    );
    let (_, err, code) = run(&[&"checkpoints", &"show", &f.ckpt, &"2"]);
    assert_eq!(code, 1, "{err}");

    // A segment whose header is garbage.
    let segment = segments(&f.wal).pop().unwrap();
    let mut file = OpenOptions::new().write(true).open(&segment).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(b"garbage!").unwrap();
    drop(file);
    let (doc, code) = run_json(&[&"wal", &"dump", &f.wal]);
    assert_eq!(code, 1, "{doc}");
    let (_, _, code) = run(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    assert_eq!(code, 1);
}

#[test]
fn bad_usage_exits_2_and_is_json_with_json() {
    let (_, err, code) = run(&[&"wal", &"dump"]);
    assert_eq!(code, 2);
    assert!(err.contains("Usage"), "{err}");
    let (doc, code) = run_json(&[&"wal", &"dump"]);
    assert_eq!(code, 2);
    assert_eq!(doc["kind"], "usage");
    let f = fixture();
    for bad in ["zz", "aé0", "+a+b", "abc"] {
        let (_, err, code) = run(&[&"state", &"get", &f.ckpt, &"--hex", &bad]);
        assert_eq!(code, 4, "{bad}: {err}");
        assert!(err.contains("hex digits"), "{err}");
    }
}

#[test]
fn a_path_that_does_not_exist_is_not_found_never_clean() {
    let tmp = tempfile::tempdir().unwrap();
    let typo = tmp.path().join("typo");
    let root = tmp.path().to_path_buf();
    let cases: [Vec<&dyn AsRef<std::ffi::OsStr>>; 5] = [
        vec![&"verify", &typo],
        vec![&"verify", &root, &"--wal", &typo],
        vec![&"wal", &"dump", &typo],
        vec![&"recover", &root, &typo, &"--dry-run"],
        vec![&"checkpoints", &"ls", &typo],
    ];
    for args in cases {
        let (out, err, code) = run(&args);
        assert_eq!(code, 3, "{out}{err}");
        assert!(err.contains("typo"), "{err}");
    }
    assert!(!typo.exists());
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::process::Stdio;
    let f = fixture();
    for args in [["wal", "dump"], ["state", "dump"]] {
        let dir = if args[0] == "wal" { &f.wal } else { &f.ckpt };
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("highwater"))
            .arg("--json")
            .args(args)
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            matches!(out.status.code(), Some(0 | 4)),
            "{:?}: {err}",
            out.status
        );
    }
}

#[test]
fn names_from_disk_cannot_drive_the_terminal() {
    let f = fixture();
    std::fs::create_dir(f.ckpt.join(".tmp-\u{1b}[2J\u{1b}[31mevil")).unwrap();
    let (out, _, code) = run(&[&"checkpoints", &"ls", &f.ckpt]);
    assert_eq!(code, 0);
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(out.contains("\\u{1b}[2J"), "{out}");
}

#[test]
fn a_blob_part_is_not_read_as_key_value_state() {
    let tmp = tempfile::tempdir().unwrap();
    let manager =
        highwater::IncrementalCheckpointManager::new(highwater::CheckpointConfig::new(tmp.path()))
            .unwrap();
    manager
        .create_checkpoint_with_state(0, Default::default(), None, b"opaque operator bytes")
        .unwrap();
    let (_, err, code) = run(&[&"state", &"dump", &tmp.path()]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("holds a blob"), "{err}");
}

/// Every batch of the Arrow IPC file at `path`, read by Arrow's own reader.
fn read_ipc(path: &Path) -> Vec<arrow::record_batch::RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    arrow::ipc::reader::FileReader::try_new(file, None)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The key and value columns of an exported key/value state.
fn kv_rows(path: &Path) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    use arrow::array::{Array, LargeBinaryArray};
    let mut rows = Vec::new();
    for batch in read_ipc(path) {
        let keys = batch
            .column(0)
            .as_any()
            .downcast_ref::<LargeBinaryArray>()
            .unwrap();
        let values = batch
            .column(1)
            .as_any()
            .downcast_ref::<LargeBinaryArray>()
            .unwrap();
        for i in 0..batch.num_rows() {
            let value = (!values.is_null(i)).then(|| values.value(i).to_vec());
            rows.push((keys.value(i).to_vec(), value));
        }
    }
    rows
}

#[test]
fn export_state_writes_the_merged_state_or_one_delta_as_arrow() {
    let f = fixture();
    let out = f.ckpt.parent().unwrap().join("state.arrow");
    let (doc, code) = run_json(&[&"export", &"state", &f.ckpt, &out]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        (doc["rows"].as_u64(), doc["checkpoint"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(
        kv_rows(&out),
        vec![
            (job::BINARY_KEY.to_vec(), Some(vec![1, 2, 3])),
            (b"user:2".to_vec(), Some(b"bob".to_vec())),
        ]
    );
    // An existing file is only replaced when asked to.
    let (_, err, code) = run(&[&"export", &"state", &f.ckpt, &out, &"--delta"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--force"), "{err}");
    let (text, _, code) = run(&[&"export", &"state", &f.ckpt, &out, &"--delta", &"--force"]);
    assert_eq!(code, 0);
    assert!(
        text.contains("exported the delta of part state (delta) of checkpoint 2: 2 rows"),
        "{text}"
    );
    assert_eq!(
        kv_rows(&out),
        vec![
            (b"user:2".to_vec(), Some(b"bob".to_vec())),
            (b"user:1".to_vec(), None)
        ]
    );
    // The full checkpoint's own file is its snapshot.
    let (_, _, code) = run(&[
        &"export",
        &"state",
        &f.ckpt,
        &out,
        &"--force",
        &"--delta",
        &"--checkpoint",
        &"1",
    ]);
    assert_eq!(code, 0);
    assert_eq!(kv_rows(&out).len(), 2);
    let leftovers: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn export_state_of_an_arrow_part_keeps_its_schema_and_resolves_its_chain() {
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use highwater::{
        ArrowBatches, CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput,
    };
    let tmp = tempfile::tempdir().unwrap();
    let ckpt = tmp.path().join("ckpt");
    let m = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let schema = std::sync::Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
    let batch = |from: i64, n: i64| {
        let col: ArrayRef = std::sync::Arc::new(Int64Array::from_iter_values(from..from + n));
        arrow::record_batch::RecordBatch::try_new(schema.clone(), vec![col]).unwrap()
    };
    let first = [batch(0, 10), batch(10, 5)];
    m.create_checkpoint(
        CheckpointRequest::new(0)
            .with_part("rows", PartInput::Arrow(ArrowBatches::new(&schema, &first))),
    )
    .unwrap();
    let more = [batch(15, 3)];
    m.create_checkpoint(CheckpointRequest::new(0).with_part(
        "rows",
        PartInput::ArrowDelta(ArrowBatches::new(&schema, &more)),
    ))
    .unwrap();
    let out = tmp.path().join("rows.arrow");
    // Arrow parts are never the default part: name it.
    let (_, err, code) = run(&[&"export", &"state", &ckpt, &out]);
    assert_eq!(code, 3, "{err}");
    let (doc, code) = run_json(&[&"export", &"state", &ckpt, &out, &"--part", &"rows"]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["kind"], "arrow_delta");
    assert_eq!(
        read_ipc(&out),
        vec![first[0].clone(), first[1].clone(), more[0].clone()]
    );
    let (_, _, code) = run(&[
        &"export", &"state", &ckpt, &out, &"--part", &"rows", &"--delta", &"--force",
    ]);
    assert_eq!(code, 0);
    assert_eq!(read_ipc(&out), more.to_vec());
}

#[test]
fn export_wal_writes_one_row_per_entry_and_stops_at_damage() {
    use arrow::array::{Array, MapArray, StringArray, UInt64Array};
    let f = fixture();
    let out = f.wal.parent().unwrap().join("wal.arrow");
    let (doc, code) = run_json(&[&"export", &"wal", &f.wal, &out]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["end"], "clean_end");
    let batches = read_ipc(&out);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let types = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    let kinds: Vec<&str> = (0..b.num_rows()).map(|i| types.value(i)).collect();
    assert_eq!(
        kinds,
        ["put", "put", "commit", "put", "delete", "commit", "put", "commit", "put"]
    );
    let positions = b.column(0).as_any().downcast_ref::<UInt64Array>().unwrap();
    assert_eq!(positions.value(0), 0);
    assert!(positions.values().windows(2).all(|w| w[0] < w[1]));
    let offsets = b.column(4).as_any().downcast_ref::<MapArray>().unwrap();
    assert!(offsets.is_null(0) && !offsets.is_null(2));
    let commit = offsets.value(2);
    let values = commit
        .column(1)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    assert_eq!(values.value(0), 10);
    assert!(b.column(3).is_null(4), "a delete has no value");

    // Damage ends the range: what came before is exported, exit 1.
    let segment = segments(&f.wal).pop().unwrap();
    append_garbage(&segment, &[0xAB; 7]);
    let (doc, code) = run_json(&[
        &"export",
        &"wal",
        &f.wal,
        &out,
        &"--force",
        &"--from",
        &f.delta_position.to_string(),
    ]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["end"], "torn_tail");
    assert_eq!(doc["rows"], 3);
    assert_eq!(read_ipc(&out)[0].num_rows(), 3);
}

#[test]
fn state_dump_and_wal_dump_cut_long_keys_as_they_cut_long_values() {
    use highwater::{CheckpointConfig, IncrementalCheckpointManager, StateSnapshot};
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = (tmp.path().join("ckpt"), tmp.path().join("wal"));
    let key = vec![b'k'; 1 << 20];
    let snapshot = StateSnapshot::new(vec![(key.clone(), b"v".to_vec())]);
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    manager
        .create_checkpoint_with_state(0, Default::default(), None, &snapshot.to_bytes().unwrap())
        .unwrap();
    drop(manager);
    let wal = highwater::WriteAheadLog::new(&wal_dir, std::time::Duration::ZERO).unwrap();
    wal.append(&highwater::WalEntry::Delete { key }).unwrap();
    wal.close().unwrap();

    let (out, _, code) = run(&[&"state", &"dump", &ckpt]);
    assert_eq!(code, 0);
    assert!(out.len() < 1000, "{} bytes of output", out.len());
    assert!(out.contains("(+1048376 bytes)"), "{out}");
    let (out, _, code) = run(&[&"wal", &"dump", &wal_dir]);
    assert_eq!(code, 0);
    assert!(out.len() < 2000, "{} bytes of output", out.len());
}

#[test]
fn verify_says_a_job_that_will_not_recover_is_not_ok() {
    let tmp = tempfile::tempdir().unwrap();
    let (ckpt, wal_dir) = unrecoverable_job(tmp.path());

    let (out, _, code) = run(&[&"verify", &ckpt, &"--wal", &wal_dir]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("WILL NOT RECOVER"), "{out}");
    assert!(!out.contains("OK"), "{out}");
    let (doc, code) = run_json(&[&"verify", &ckpt, &"--wal", &wal_dir]);
    assert_eq!(code, 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["recovery"]["will_recover"], false);
    // recover --dry-run agrees, with the exit code docs/CLI.md gives.
    let (_, _, code) = run(&[&"recover", &ckpt, &wal_dir, &"--dry-run"]);
    assert_eq!(code, 1);

    // The job's root is not a checkpoint directory; the error says which is.
    let (_, err, code) = run(&[&"verify", &tmp.path()]);
    assert_eq!(code, 3);
    assert!(
        err.contains("not a checkpoint directory") && err.contains("checkpoints"),
        "{err}"
    );
}

#[test]
fn state_get_says_which_checkpoint_answered_and_why_newer_ones_were_skipped() {
    let f = fixture();
    let part = part_file(&f.ckpt, 2);
    let len = std::fs::metadata(&part).unwrap().len();
    flip_byte(&part, len - 3);
    let (out, err, code) = run(&[&"state", &"get", &f.ckpt, &"user:1"]);
    assert_eq!((out.as_str(), code), ("alice\n", 0), "{err}");
    assert!(
        err.contains("answering from checkpoint 1") && err.contains("skipped newer checkpoint 2"),
        "{err}"
    );
}

/// A job whose log no longer covers its only checkpoint: the segments it
/// needs were dropped by hand. Returns its checkpoint and log directories.
fn unrecoverable_job(root: &Path) -> (PathBuf, PathBuf) {
    use highwater::{CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager};
    use highwater::{SyncPolicy, WalEntry, WalOptions, WriteAheadLog};
    let (ckpt, wal_dir) = (root.join("checkpoints"), root.join("wal"));
    let wal = WriteAheadLog::open(
        &wal_dir,
        WalOptions::default()
            .with_sync_policy(SyncPolicy::Manual)
            .with_segment_size(4096),
    )
    .unwrap();
    let manager = IncrementalCheckpointManager::new(CheckpointConfig::new(&ckpt)).unwrap();
    let commit = || WalEntry::Commit {
        offsets: Default::default(),
        watermark: None,
    };
    wal.append(&commit()).unwrap();
    manager
        .create_checkpoint(CheckpointRequest::new(wal.position()).with_wal(&wal))
        .unwrap();
    for i in 0..40u32 {
        wal.append(&WalEntry::Put {
            key: i.to_le_bytes().to_vec(),
            value: vec![0; 500],
        })
        .unwrap();
        wal.append(&commit()).unwrap();
    }
    // Segments the checkpoint needs are dropped by hand (what a wrong
    // retention script would do): the log no longer covers its position.
    wal.sync().unwrap();
    assert!(wal.drop_segments_before(wal.position()).unwrap() > 0);
    drop((wal, manager));
    (ckpt, wal_dir)
}

/// docs/CLI.md's exit codes, command by command, against an intact job, one
/// with a damaged checkpoint (it still recovers, from the older one) and one
/// that will not recover.
#[test]
fn every_command_exits_as_the_exit_code_table_says() {
    let intact = fixture();
    let damaged = fixture();
    let part = part_file(&damaged.ckpt, 2);
    let len = std::fs::metadata(&part).unwrap().len();
    flip_byte(&part, len - 3);
    let tmp = tempfile::tempdir().unwrap();
    let (lost_ckpt, lost_wal) = unrecoverable_job(tmp.path());
    let jobs = [
        ("intact", intact.ckpt.clone(), intact.wal.clone()),
        ("damaged", damaged.ckpt.clone(), damaged.wal.clone()),
        ("unrecoverable", lost_ckpt, lost_wal),
    ];
    // (command, exit codes for the three jobs)
    type Args = fn(&Path, &Path) -> Vec<std::ffi::OsString>;
    let table: [(&str, Args, [i32; 3]); 6] = [
        (
            "checkpoints ls",
            |c, _| vec!["checkpoints".into(), "ls".into(), c.into()],
            [0, 0, 0],
        ),
        (
            "checkpoints show newest",
            |c, _| {
                let newest = std::fs::read_dir(c)
                    .unwrap()
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter_map(|n| n.strip_prefix("checkpoint-")?.parse::<u64>().ok())
                    .max()
                    .unwrap();
                vec![
                    "checkpoints".into(),
                    "show".into(),
                    c.into(),
                    newest.to_string().into(),
                ]
            },
            [0, 1, 0],
        ),
        (
            "verify --wal",
            |c, w| vec!["verify".into(), c.into(), "--wal".into(), w.into()],
            [0, 1, 1],
        ),
        ("verify", |c, _| vec!["verify".into(), c.into()], [0, 1, 0]),
        (
            "wal dump",
            |_, w| vec!["wal".into(), "dump".into(), w.into()],
            [0, 0, 0],
        ),
        (
            "recover --dry-run",
            |c, w| vec!["recover".into(), c.into(), w.into(), "--dry-run".into()],
            [0, 0, 1],
        ),
    ];
    for (name, args, codes) in table {
        for ((job, ckpt, wal), expected) in jobs.iter().zip(codes) {
            let out = highwater().args(args(ckpt, wal)).output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(expected),
                "{name} on the {job} job: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn verify_and_dump_count_and_word_a_log_the_same_way() {
    let f = fixture();
    let (verify, _, _) = run(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    let (dump, _, _) = run(&[&"wal", &"dump", &f.wal]);
    let entries = dump
        .lines()
        .rev()
        .find_map(|l| l.strip_suffix(" entries"))
        .unwrap();
    assert!(
        verify.contains(&format!("({entries} entries, ")),
        "verify counts what dump shows: {verify}"
    );

    // One checksum failure, one wording: region, stored and computed.
    let segment = segments(&f.wal).remove(0);
    flip_byte(&segment, HEADER + 20);
    let (verify, _, _) = run(&[&"verify", &f.ckpt, &"--wal", &f.wal]);
    let (dump, dump_err, _) = run(&[&"wal", &"dump", &f.wal]);
    let words = "payload checksum mismatch"; // byte 20 of the first record
    assert!(
        verify.contains(words) && verify.contains("stored 0x"),
        "{verify}"
    );
    let dumped = dump + &dump_err;
    assert!(
        dumped.contains(words) && dumped.contains("stored 0x"),
        "{dumped}"
    );
}
