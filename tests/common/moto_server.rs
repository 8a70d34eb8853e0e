//! Finding moto's S3 server for the tests that need one (started by
//! `.ci/run`; docs/OBJECT_STORAGE.md, "Running the tests against moto").
//!
//! Without `AWS_ENDPOINT` a test fails when `CI=true` (an S3 test must never
//! pass silently in CI) and otherwise prints `SKIPPED:` with the way to
//! start the server, and returns.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// How to run the S3 tests of test binary `test`.
fn how(test: &str) -> String {
    format!(
        "the S3 tests need moto's server and its environment: \
python3 -m venv target/moto-venv && target/moto-venv/bin/pip install 'moto[server]==5.2.5' && \
(target/moto-venv/bin/moto_server -H 127.0.0.1 -p 5123 &) && \
AWS_ENDPOINT=http://127.0.0.1:5123 AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=test \
AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 cargo test --test {test} --features object-store moto \
(or run .ci/run, which does all of this)"
    )
}

/// The endpoint, or `None` (after saying so) when the S3 tests of test
/// binary `test` cannot run here.
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var("AWS_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but AWS_ENDPOINT is not set: {}", how(test))
        }
        _ => {
            eprintln!("SKIPPED: {}", how(test));
            None
        }
    }
}

/// Creates a fresh bucket on the server (moto takes an unsigned request; the
/// library's own requests are all signed) and returns its name.
pub fn fresh_bucket(endpoint: &str, tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!("highwater-{tag}-{}-{nanos}", std::process::id());
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(host)
        .unwrap_or_else(|e| panic!("cannot reach the S3 server at {endpoint}: {e}"));
    write!(
        conn,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "create bucket {bucket}: {answer}"
    );
    bucket
}
