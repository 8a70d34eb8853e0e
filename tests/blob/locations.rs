//! Keys and locations: what is refused, and what each location opens.

use highwater::blob::{open_blob_store, BlobError, BlobKey, BlobStore, LocalBlobStore};

#[test]
fn keys_cannot_escape_their_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = LocalBlobStore::open(&root).unwrap();
    for bad in [
        "../outside",
        "a/../../outside",
        "/etc/passwd",
        "a//b",
        ".tmp/x",
        "a/./b",
        "",
    ] {
        let err = BlobKey::new(bad).unwrap_err();
        assert!(
            matches!(err, BlobError::InvalidKey { .. }),
            "{bad:?}: {err:?}"
        );
        assert_eq!(err.key(), bad, "the error names the key");
    }
    store
        .put(&BlobKey::new("inside").unwrap(), "x".into())
        .unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("store")],
        "nothing outside the root"
    );
}

#[test]
fn a_local_directory_refuses_a_key_that_is_also_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    store
        .put(&BlobKey::new("a/b").unwrap(), "x".into())
        .unwrap();
    let err = store
        .create_if_absent(&BlobKey::new("a").unwrap(), "y".into())
        .unwrap_err();
    assert!(matches!(err, BlobError::Unsupported { .. }), "{err:?}");
    let err = store
        .put(&BlobKey::new("a/b/c").unwrap(), "z".into())
        .unwrap_err();
    assert!(matches!(err, BlobError::Unsupported { .. }), "{err:?}");
    assert_eq!(&store.get(&BlobKey::new("a/b").unwrap()).unwrap()[..], b"x");
}

#[test]
fn plain_paths_and_file_urls_open_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let key = BlobKey::new("k").unwrap();
    let plain = open_blob_store(dir.path().to_str().unwrap()).unwrap();
    plain.put(&key, "v".into()).unwrap();
    let url = format!("file://{}", dir.path().display());
    let via_url = open_blob_store(&url).unwrap();
    assert_eq!(&via_url.get(&key).unwrap()[..], b"v");
    assert!(
        dir.path().join("k").is_file(),
        "the object is the file <root>/<key>"
    );
}

#[test]
fn unknown_locations_are_refused() {
    for bad in ["ftp://host/x", "file://host/x", ""] {
        let err = open_blob_store(bad).unwrap_err();
        assert!(
            matches!(err, BlobError::InvalidLocation { .. }),
            "{bad:?}: {err:?}"
        );
    }
}

#[cfg(not(feature = "object-store"))]
#[test]
fn object_store_urls_need_the_feature() {
    let err = open_blob_store("s3://bucket/prefix").unwrap_err();
    assert!(matches!(err, BlobError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("object-store"), "{err}");
}

#[cfg(feature = "object-store")]
#[test]
fn object_store_urls_check_bucket_and_prefix() {
    for bad in [
        "s3://",
        "s3:///prefix",
        "s3://bucket/a/../b",
        "gs://bucket/a//b",
    ] {
        let err = open_blob_store(bad).unwrap_err();
        assert!(
            matches!(err, BlobError::InvalidLocation { .. }),
            "{bad:?}: {err:?}"
        );
    }
}
