//! [`open_blob_store`]: a blob store from a location string.
//!
//! | location | store |
//! |---|---|
//! | `s3://bucket/prefix`, `gs://…`, `az://…` | `ObjectStoreBlobStore` (feature `object-store`; without it, [`BlobError::Unsupported`]) |
//! | `file:///abs/path` | [`LocalBlobStore`] |
//! | a plain path | [`LocalBlobStore`] |
//! | anything else with `://` | [`BlobError::InvalidLocation`] |

use super::{BlobError, BlobResult, BlobStore, LocalBlobStore};
use std::sync::Arc;

/// Opens the blob store at `location` (module docs: which store for which
/// location; docs/OBJECT_STORAGE.md: the environment variables).
///
/// # Errors
/// [`BlobError::InvalidLocation`] for a location that names no store;
/// [`BlobError::Unsupported`] for an object-store URL in a build without the
/// `object-store` feature; the store's own error when it cannot be opened.
///
/// # Examples
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let store = highwater::blob::open_blob_store(dir.path().to_str().unwrap())?;
/// let key = highwater::blob::BlobKey::new("a")?;
/// store.put(&key, "x".into())?;
/// # Ok::<(), highwater::blob::BlobError>(())
/// ```
pub fn open_blob_store(location: &str) -> BlobResult<Arc<dyn BlobStore>> {
    let Some((scheme, rest)) = location.split_once("://") else {
        if location.is_empty() {
            return Err(BlobError::InvalidLocation {
                location: location.into(),
                reason: "empty".into(),
            });
        }
        return Ok(Arc::new(LocalBlobStore::open(location)?));
    };
    match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err(BlobError::InvalidLocation {
                    location: location.into(),
                    reason: "a file URL needs an absolute path and no host: file:///path".into(),
                });
            }
            Ok(Arc::new(LocalBlobStore::open(rest)?))
        }
        "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" => remote(location),
        other => Err(BlobError::InvalidLocation {
            location: location.into(),
            reason: format!("unknown scheme {other:?} (s3, gs, az, file, or a plain path)"),
        }),
    }
}

#[cfg(feature = "object-store")]
fn remote(location: &str) -> BlobResult<Arc<dyn BlobStore>> {
    Ok(Arc::new(super::ObjectStoreBlobStore::from_url(
        location,
        super::ObjectStoreOptions::default(),
    )?))
}

#[cfg(not(feature = "object-store"))]
fn remote(location: &str) -> BlobResult<Arc<dyn BlobStore>> {
    Err(BlobError::Unsupported {
        operation: super::BlobOp::Open,
        key: location.into(),
        reason: "this build of highwater has no object storage: enable its `object-store` feature"
            .into(),
    })
}
