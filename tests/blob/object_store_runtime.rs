//! The `object_store` backend's own runtime: its synchronous calls work from
//! inside a tokio runtime of the caller's (both flavours), and its requests
//! are signed and carry a Content-Type (seen by a capturing server on
//! 127.0.0.1).

use highwater::blob::{
    BlobKey, BlobStore, BlobWriter, CreateOutcome, ObjectStoreBlobStore, ObjectStoreOptions,
    MIN_PART_BYTES,
};
use std::io::{Read, Write};

fn every_call(store: &ObjectStoreBlobStore) {
    let key = BlobKey::new("inside/runtime").unwrap();
    assert_eq!(
        store.create_if_absent(&key, "a".into()).unwrap(),
        CreateOutcome::Created
    );
    assert_eq!(
        store.create_if_absent(&key, "b".into()).unwrap(),
        CreateOutcome::AlreadyExists
    );
    store.put(&key, "abc".into()).unwrap();
    assert_eq!(&store.get_range(&key, 1..3).unwrap()[..], b"bc");
    assert_eq!(store.head(&key).unwrap().size, 3);
    assert_eq!(store.list(None, None, 10).unwrap().objects.len(), 1);
    let mut w = BlobWriter::new(store, BlobKey::new("inside/big").unwrap(), MIN_PART_BYTES);
    w.write_all(&vec![7u8; MIN_PART_BYTES + 10]).unwrap();
    w.finish().unwrap();
    store.delete(&key).unwrap();
}

#[test]
fn calls_work_inside_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ObjectStoreBlobStore::in_memory().unwrap();
        every_call(&store);
        drop(store); // dropping the store inside a runtime must not panic either
    });
}

#[test]
fn calls_work_inside_a_current_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = ObjectStoreBlobStore::in_memory().unwrap();
        every_call(&store);
    });
}

#[tokio::test]
async fn calls_work_inside_tokio_test() {
    let store = ObjectStoreBlobStore::in_memory().unwrap();
    every_call(&store);
}

/// Accepts one connection on 127.0.0.1, returns its request head, answers
/// 200 with an ETag.
fn capture_one() -> (String, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_lowercase();
        let length: usize = text
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        conn.read_exact(&mut body).unwrap();
        conn.write_all(
            b"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        text
    });
    (endpoint, server)
}

#[test]
fn a_create_is_signed_conditional_and_typed() {
    let (endpoint, server) = capture_one();
    let options = ObjectStoreOptions::default()
        .with_config("aws_endpoint", endpoint)
        .with_config("aws_allow_http", "true")
        .with_config("aws_access_key_id", "test")
        .with_config("aws_secret_access_key", "test")
        .with_config("aws_region", "us-east-1")
        .with_max_retries(0);
    let store = ObjectStoreBlobStore::from_url("s3://bucket/jobs/one", options).unwrap();
    let key = BlobKey::new("commits/7").unwrap();
    assert_eq!(
        store.create_if_absent(&key, "record".into()).unwrap(),
        CreateOutcome::Created
    );
    let request = server.join().unwrap();
    assert!(
        request.starts_with("put /bucket/jobs/one/commits/7 "),
        "{request}"
    );
    assert!(
        request.contains("authorization: aws4-hmac-sha256 credential=test/"),
        "signed: {request}"
    );
    assert!(
        request.contains("if-none-match: *"),
        "conditional: {request}"
    );
    assert!(
        request.contains("content-type: application/octet-stream"),
        "typed: {request}"
    );
}
