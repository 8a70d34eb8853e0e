//! Encryption at rest, end to end (the `encryption` feature): the
//! `exactly_once_pipeline` example's job run with a key file in real child
//! processes (this test binary, one of them killed with SIGKILL) leaves no
//! word of its input in any byte of any file under its job directory, and
//! its output reads back through the key, exactly once; without the key it
//! is `KeyUnavailable`. The same job without a key must leave the words in
//! the clear, or the search proves nothing.

#[path = "../../examples/exactly_once_pipeline/at_rest.rs"]
mod at_rest;
#[path = "../../examples/exactly_once_pipeline/supervisor.rs"]
mod supervisor;

// The job's module, loaded once in this binary (sink_crash_protocol.rs).
use crate::sink_crash_protocol::pipeline;
use highwater::{Error, FileSink};
use pipeline::{Job, Paths};
use std::path::Path;
use std::process::Command;

const JOB: Job = Job {
    partitions: 2,
    records: 4_000,
    batch: 200,
    ms_per_record: 10,
};
const CHILD_DIR: &str = "HIGHWATER_SEALED_PIPELINE_DIR";
const CHILD_KEY: &str = "HIGHWATER_SEALED_PIPELINE_KEY";
const TEST: &str = "sealed_pipeline::a_sealed_job_leaves_no_word_of_its_input_in_any_file";

/// Runs the job in `dir` in child processes (sealed with `key` if given),
/// one killed.
fn run_job(dir: &Path, key: Option<&Path>) {
    let exe = std::env::current_exe().expect("the test binary");
    let command = || {
        let mut c = Command::new(&exe);
        c.args([TEST, "--exact", "--nocapture", "--test-threads=1"]);
        c.env(CHILD_DIR, dir);
        if let Some(key) = key {
            c.env(CHILD_KEY, key);
        }
        c
    };
    let (_, killed) = supervisor::supervise(&command, 1, 7, &mut |_| {}).expect("the job runs");
    assert_eq!(killed, 1, "one child was killed");
}

/// The published output in `dir`, read through `key` if given (and
/// refused without it), checked to hold every count exactly once.
fn published(dir: &Path, key: Option<&Path>) -> Vec<u8> {
    let sink = FileSink::open(Paths::under(dir).output, pipeline::SINK).expect("open the sink");
    let output = match key {
        Some(key) => {
            let err = sink
                .read_committed()
                .expect_err("sealed output without keys");
            assert!(
                matches!(&err, Error::KeyUnavailable { path, key_id: 1 } if path.starts_with(dir)),
                "{err:?}"
            );
            let keys = pipeline::job_keys(key).expect("the job's keys");
            sink.with_encryption(keys).read_committed()
        }
        None => sink.read_committed(),
    };
    let output = output.expect("read the published output");
    pipeline::verify(&JOB, &output).expect("exactly once");
    output
}

#[test]
fn a_sealed_job_leaves_no_word_of_its_input_in_any_file() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let mut paths = Paths::under(Path::new(&dir));
        if let Some(key) = std::env::var_os(CHILD_KEY) {
            paths = paths.with_key_file(key);
        }
        supervisor::child(&paths, &JOB).expect("child");
        return;
    }
    let root = tempfile::tempdir().unwrap();

    // The control: without a key the search finds the words.
    let plain = root.path().join("plain");
    run_job(&plain, None);
    assert!(!published(&plain, None).is_empty());
    let hits = at_rest::plaintext_hits(&plain, &pipeline::WORDS).unwrap();
    let in_output = |hits: &[(std::path::PathBuf, String)], part: &str| {
        hits.iter()
            .any(|(p, _)| p.components().any(|c| c.as_os_str() == part))
    };
    assert!(
        in_output(&hits, "output") && in_output(&hits, "checkpoints"),
        "an unencrypted job shows its words in its output and its checkpoints: {hits:?}"
    );

    let sealed = root.path().join("sealed");
    std::fs::create_dir_all(&sealed).unwrap();
    let key = sealed.join("job.key");
    at_rest::write_new_key(&key).unwrap();
    run_job(&sealed, Some(&key));
    let hits = at_rest::plaintext_hits(&sealed, &pipeline::WORDS).unwrap();
    assert!(hits.is_empty(), "words of the input in the clear: {hits:?}");
    assert_eq!(published(&sealed, Some(&key)), published(&plain, None));
}
