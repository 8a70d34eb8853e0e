//! The blob-store contract (`highwater::blob::conformance`) against the
//! implementations that need no server.

use highwater::blob::{conformance, BlobKey, LocalBlobStore, SimBlobStore};

fn root() -> BlobKey {
    BlobKey::new("conformance").unwrap()
}

#[test]
fn local_directory_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).unwrap();
    conformance::run_all(&store, &root());
    // And again in the same place: every check starts from an empty prefix.
    conformance::run_all(&store, &root());
}

#[test]
fn simulator_keeps_the_contract() {
    conformance::run_all(&SimBlobStore::new(1), &root());
}

#[cfg(feature = "object-store")]
#[test]
fn object_store_in_memory_keeps_the_contract() {
    let store = highwater::blob::ObjectStoreBlobStore::in_memory().unwrap();
    conformance::run_all(&store, &root());
}

#[test]
fn the_suite_catches_a_store_that_breaks_create() {
    // A store whose create overwrites: the suite must refuse it.
    #[derive(Debug)]
    struct Overwriting(SimBlobStore);
    impl highwater::blob::BlobStore for Overwriting {
        fn create_if_absent(
            &self,
            key: &BlobKey,
            bytes: bytes::Bytes,
        ) -> highwater::blob::BlobResult<highwater::blob::CreateOutcome> {
            self.0.put(key, bytes)?;
            Ok(highwater::blob::CreateOutcome::Created)
        }
        fn put(&self, key: &BlobKey, bytes: bytes::Bytes) -> highwater::blob::BlobResult<()> {
            self.0.put(key, bytes)
        }
        fn put_multipart(
            &self,
            key: &BlobKey,
        ) -> highwater::blob::BlobResult<Box<dyn highwater::blob::MultipartUpload>> {
            self.0.put_multipart(key)
        }
        fn get(&self, key: &BlobKey) -> highwater::blob::BlobResult<bytes::Bytes> {
            self.0.get(key)
        }
        fn get_range(
            &self,
            key: &BlobKey,
            range: std::ops::Range<u64>,
        ) -> highwater::blob::BlobResult<bytes::Bytes> {
            self.0.get_range(key, range)
        }
        fn head(&self, key: &BlobKey) -> highwater::blob::BlobResult<highwater::blob::BlobMeta> {
            self.0.head(key)
        }
        fn list(
            &self,
            prefix: Option<&BlobKey>,
            after: Option<&BlobKey>,
            limit: usize,
        ) -> highwater::blob::BlobResult<highwater::blob::ListPage> {
            self.0.list(prefix, after, limit)
        }
        fn delete(&self, key: &BlobKey) -> highwater::blob::BlobResult<()> {
            self.0.delete(key)
        }
        fn abort_abandoned_uploads(
            &self,
            older_than: std::time::SystemTime,
        ) -> highwater::blob::BlobResult<u64> {
            self.0.abort_abandoned_uploads(older_than)
        }
    }
    let store = Overwriting(SimBlobStore::new(2));
    let caught = std::panic::catch_unwind(|| conformance::creates(&store, &root()));
    let message = caught.expect_err("the suite accepted a create that overwrites");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("AlreadyExists"), "{text}");
}
