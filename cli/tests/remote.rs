//! The `highwater` binary against a remote checkpoint location (a `file://`
//! bucket written by a manager with `CheckpointConfig::with_remote`): the
//! commit sequence listed, the committed checkpoints mirrored, verified,
//! shown and read, intact and damaged.

use assert_cmd::Command;
use highwater::{
    CheckpointConfig, CheckpointRequest, IncrementalCheckpointManager, PartInput, RemoteConfig,
    StateDelta, StateSnapshot,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A bucket holding a full checkpoint (1) and a delta on it (2).
struct Bucket {
    tmp: tempfile::TempDir,
    root: PathBuf,
    url: String,
}

fn bucket() -> Bucket {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bucket");
    let url = format!("file://{}", root.display());
    let remote = RemoteConfig::open(&url).unwrap();
    let config = CheckpointConfig::new(tmp.path().join("cache")).with_remote(remote);
    let manager = IncrementalCheckpointManager::new(config).unwrap();
    let full = StateSnapshot::new(vec![
        (b"user:1".to_vec(), b"alice".to_vec()),
        (b"user:9".to_vec(), b"zed".to_vec()),
    ]);
    manager.set_epoch(1);
    manager
        .create_checkpoint(
            CheckpointRequest::new(10)
                .with_watermark(Some(100))
                .with_part("state", PartInput::Snapshot(&full)),
        )
        .unwrap();
    let delta = StateDelta::from_changes(vec![
        (b"user:2".to_vec(), Some(b"bob".to_vec())),
        (b"user:1".to_vec(), None),
    ]);
    manager.set_epoch(2);
    manager
        .create_checkpoint(
            CheckpointRequest::new(20)
                .with_watermark(Some(200))
                .with_part("state", PartInput::Delta(&delta)),
        )
        .unwrap();
    drop(manager);
    // The first commit's garbage collection raised the floor to its slot
    // (2) and removed the claim below it; a second writer's claim takes
    // slot 4.
    let remote = RemoteConfig::open(&url).unwrap();
    drop(IncrementalCheckpointManager::new(
        CheckpointConfig::new(tmp.path().join("cache")).with_remote(remote),
    ));
    Bucket { tmp, root, url }
}

/// Runs the binary; returns stdout, stderr and the exit code.
fn run(args: &[&str]) -> (String, String, i32) {
    let out = Command::cargo_bin("highwater")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().expect("exited"),
    )
}

/// Runs with `--json`; the parsed document and the exit code.
fn run_json(args: &[&str]) -> (Value, i32) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (stdout, stderr, code) = run(&all);
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}, stderr {stderr:?}"));
    (doc, code)
}

/// The part objects of checkpoint `id` under the bucket's `parts/`.
fn part_objects(root: &Path, id: u64) -> Vec<PathBuf> {
    let prefix = format!("{id:020}-");
    let mut found = Vec::new();
    for generation in std::fs::read_dir(root.join("parts")).unwrap() {
        for upload in std::fs::read_dir(generation.unwrap().path()).unwrap() {
            let upload = upload.unwrap();
            if upload.file_name().to_str().unwrap().starts_with(&prefix) {
                for file in std::fs::read_dir(upload.path()).unwrap() {
                    found.push(file.unwrap().path());
                }
            }
        }
    }
    assert!(!found.is_empty(), "checkpoint {id} has part objects");
    found
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

/// The commit record objects, by slot.
fn records(root: &Path) -> Vec<PathBuf> {
    let mut r: Vec<PathBuf> = std::fs::read_dir(root.join("commits"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    r.sort();
    r
}

#[test]
fn ls_lists_the_claim_and_both_checkpoints() {
    let b = bucket();
    let (out, _, code) = run(&["checkpoints", "ls", &b.url]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].contains(&b.url), "{out}");
    assert!(lines[1].starts_with("SLOT"), "{out}");
    assert!(
        lines[2].starts_with("2 ") && lines[2].contains("checkpoint") && lines[2].contains("full"),
        "{out}"
    );
    assert!(
        lines[3].contains("checkpoint") && lines[3].contains("delta"),
        "{out}"
    );
    assert!(
        lines[4].starts_with("4 ") && lines[4].contains("claim"),
        "{out}"
    );
    assert!(out.contains("newest committed checkpoint: 2"), "{out}");

    let (doc, code) = run_json(&["checkpoints", "ls", &b.url]);
    assert_eq!(code, 0);
    assert_eq!(doc["location"], b.url.as_str());
    assert_eq!(doc["floor"], 2);
    assert_eq!(doc["newest_checkpoint"], 2);
    let c = doc["commits"].as_array().unwrap();
    assert_eq!(c.len(), 3, "{doc}");
    assert_eq!(c[2]["record"], "claim");
    // A claim's generation is its slot.
    assert_eq!(c[2]["slot"], 4);
    assert_eq!(c[2]["generation"], 4);
    assert!(c[2]["writer"].as_str().is_some_and(|w| !w.is_empty()));
    assert!(c[2]["id"].is_null());
    assert_eq!(c[0]["record"], "checkpoint");
    assert_eq!(c[0]["slot"], 2);
    assert_eq!(c[0]["generation"], 1);
    assert_eq!(c[0]["id"], 1);
    assert_eq!(c[0]["kind"], "full");
    assert_eq!(c[0]["epoch"], 1);
    assert!(c[0]["bytes"].as_u64().unwrap() > 0);
    assert!(c[0]["created_unix_ms"].as_u64().unwrap() > 0);
    assert_eq!(c[1]["id"], 2);
    assert_eq!(c[1]["kind"], "delta");
    assert_eq!(c[1]["parent_id"], 1);
    assert_eq!(c[1]["wal_position"], 20);
    assert_eq!(c[1]["watermark"], 200);
    assert_eq!(
        c[1]["path"],
        format!("{}/commits/{:020}", b.url, 3).as_str()
    );
    assert!(c[1]["problem"].is_null());
}

#[test]
fn ls_shows_a_damaged_record_with_its_error() {
    let b = bucket();
    flip_byte(&records(&b.root)[1], 20);
    let (out, _, code) = run(&["checkpoints", "ls", &b.url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.lines().nth(3).unwrap().contains("damaged"), "{out}");
    assert!(out.contains("slot 3: damaged record: "), "{out}");
    let (doc, _) = run_json(&["checkpoints", "ls", &b.url]);
    let c = &doc["commits"][1];
    assert_eq!(c["record"], "damaged");
    assert!(c["id"].is_null());
    assert!(
        c["problem"]["file"]
            .as_str()
            .unwrap()
            .ends_with(&format!("commits/{:020}", 3)),
        "{doc}"
    );
    assert_eq!(doc["newest_checkpoint"], 1);

    // verify fails on it.
    let (out, _, code) = run(&["verify", &b.url]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("damaged commit record: "), "{out}");
}

#[test]
fn verify_mirrors_and_verifies_every_committed_checkpoint() {
    let b = bucket();
    let (out, err, code) = run(&["verify", &b.url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK: everything verifies"), "{out}");
    assert!(out.contains("recovery would use checkpoint 2"), "{out}");
    let downloaded: u64 = err
        .split("downloaded ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count on stderr: {err}"));
    assert!(downloaded > 0, "{err}");

    let (doc, code) = run_json(&["verify", &b.url]);
    assert_eq!(code, 0);
    assert_eq!(doc["ok"], true);
    let t = &doc["checkpoints"];
    assert_eq!(t["dir"], b.url.as_str());
    assert_eq!(t["recovery_checkpoint"], 2);
    assert_eq!(t["checkpoints"].as_array().unwrap().len(), 2);
    assert_eq!(
        t["checkpoints"][1]["path"],
        format!("{}/commits/{:020}", b.url, 3).as_str()
    );
    assert!(t.get("damaged_records").is_none(), "{doc}");
}

#[test]
fn verify_names_a_damaged_part_object_and_fails() {
    let b = bucket();
    let object = part_objects(&b.root, 2).remove(0);
    flip_byte(&object, 10);
    let key = object.strip_prefix(&b.root).unwrap().display().to_string();

    let (out, _, code) = run(&["verify", &b.url]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED: damage found"), "{out}");
    assert!(out.contains("checkpoint 2: "), "{out}");
    assert!(out.contains(&key), "{out}");
    assert!(out.contains("recovery would use checkpoint 1"), "{out}");

    let (doc, code) = run_json(&["verify", &b.url]);
    assert_eq!(code, 1);
    assert_eq!(doc["ok"], false);
    let rows = doc["checkpoints"]["checkpoints"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{doc}");
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["verifies"], true);
    assert_eq!(rows[1]["id"], 2);
    assert_eq!(rows[1]["verifies"], false);
    assert_eq!(rows[1]["restorable"], false);
    assert_eq!(rows[1]["kind"], "delta");
    assert_eq!(
        rows[1]["problems"][0]["file"],
        format!("{}/{key}", b.url).as_str()
    );
}

#[test]
fn a_damaged_parent_breaks_the_chain_of_its_delta() {
    let b = bucket();
    flip_byte(&part_objects(&b.root, 1).remove(0), 10);
    let (doc, code) = run_json(&["verify", &b.url]);
    assert_eq!(code, 1, "{doc}");
    let t = &doc["checkpoints"];
    assert!(t["recovery_checkpoint"].is_null(), "{doc}");
    let rows = t["checkpoints"].as_array().unwrap();
    // One row each, though the delta itself downloaded into the mirror.
    assert_eq!(rows.len(), 2, "{doc}");
    assert_eq!(rows[0]["verifies"], false, "{doc}");
    assert_eq!(rows[1]["verifies"], true, "{doc}");
    assert_eq!(rows[1]["restorable"], false, "{doc}");
    let why = rows[1]["unrestorable"].as_str().unwrap();
    assert!(
        why.contains("parts/") && !why.contains("highwater-mirror"),
        "{doc}"
    );
    let (out, _, _) = run(&["verify", &b.url]);
    assert!(
        out.contains("CHAIN BROKEN") && out.contains("DAMAGED"),
        "{out}"
    );
}

#[test]
fn show_reads_one_committed_checkpoint() {
    let b = bucket();
    let (out, _, code) = run(&["checkpoints", "show", &b.url, "2"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("delta (parent 1"), "{out}");
    assert!(
        out.starts_with(&format!("checkpoint 2 ({}/commits/", b.url)),
        "{out}"
    );
    let (doc, code) = run_json(&["checkpoints", "show", &b.url, "1"]);
    assert_eq!(code, 0);
    assert_eq!(doc["metadata"]["id"], 1);
    assert_eq!(doc["metadata"]["epoch"], 1);
    assert_eq!(doc["verifies"], true);
    assert_eq!(doc["restorable"], true);

    let (doc, code) = run_json(&["checkpoints", "show", &b.url, "7"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["kind"], "not_found");
    assert!(doc["error"].as_str().unwrap().contains(&b.url), "{doc}");

    flip_byte(&part_objects(&b.root, 2).remove(0), 10);
    let (out, _, code) = run(&["checkpoints", "show", &b.url, "2"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("  verifies") && l.ends_with(" NO")),
        "{out}"
    );
    assert!(out.contains("problem: "), "{out}");
}

#[test]
fn state_get_reads_the_newest_mirrored_checkpoint() {
    let b = bucket();
    let (out, _, code) = run(&["state", "get", &b.url, "user:2"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "bob");
    let (_, _, code) = run(&["state", "get", &b.url, "user:1"]);
    assert_eq!(code, 3, "deleted by the delta");
    let (out, _, code) = run(&["state", "get", &b.url, "--checkpoint", "1", "user:1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), "alice");
    let (doc, code) = run_json(&["state", "get", &b.url, "user:9"]);
    assert_eq!(code, 0);
    assert_eq!(doc["checkpoint"], 2);
    assert_eq!(doc["part"], "state");

    // Checkpoint 2 damaged: answers from 1, and says so.
    flip_byte(&part_objects(&b.root, 2).remove(0), 10);
    let (out, err, code) = run(&["state", "get", &b.url, "user:1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "alice");
    assert!(
        err.contains("answering from checkpoint 1") && err.contains("skipped newer checkpoint 2"),
        "{err}"
    );
    let (doc, code) = run_json(&["state", "get", &b.url, "--checkpoint", "2", "user:2"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["kind"], "damage");
    assert!(doc["file"].as_str().unwrap().contains("/parts/"), "{doc}");
}

#[test]
fn a_location_that_is_not_one_is_not_found_and_not_created() {
    let b = bucket();
    let missing = b.tmp.path().join("typo");
    let url = format!("file://{}", missing.display());
    let (doc, code) = run_json(&["verify", &url]);
    assert_eq!(code, 3, "{doc}");
    assert!(!missing.exists());
    // An empty directory holds no commit records.
    let empty = b.tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (doc, code) = run_json(&["checkpoints", "ls", &format!("file://{}", empty.display())]);
    assert_eq!(code, 3, "{doc}");
    assert!(
        doc["error"].as_str().unwrap().contains("no commit records"),
        "{doc}"
    );
}

#[test]
fn commands_that_write_refuse_a_remote_location() {
    let b = bucket();
    let (doc, code) = run_json(&["checkpoints", "delete", &b.url, "1", "--dry-run"]);
    assert_eq!(code, 2, "{doc}");
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("local checkpoint directory"),
        "{doc}"
    );
}

#[cfg(not(feature = "object-store"))]
#[test]
fn a_cloud_url_without_the_feature_names_it() {
    let (doc, code) = run_json(&["checkpoints", "ls", "s3://bucket/job"]);
    assert_ne!(code, 0, "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("`object-store` feature"), "{doc}");
    assert!(error.contains("--features object-store"), "{doc}");
    assert_eq!(doc["kind"], "failed");
}
