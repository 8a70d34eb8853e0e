//! Opening an [`ObjectStoreBlobStore`] from a URL: `s3://bucket/prefix`,
//! `gs://bucket/prefix`, `az://container/prefix`.
//!
//! Credentials, region and endpoint come from the environment exactly as
//! `object_store`'s builders read it (`AmazonS3Builder::from_env`:
//! `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ALLOW_HTTP`, …; `GoogleCloudStorageBuilder::from_env`:
//! `GOOGLE_*`; `MicrosoftAzureBuilder::from_env`: `AZURE_*`). highwater adds
//! three settings on top: conditional put by ETag headers (S3:
//! `If-None-Match: *`, object_store 0.14's default, set explicitly so that an
//! `AWS_CONDITIONAL_PUT=disabled` cannot silently remove the atomic create),
//! the default Content-Type, and its retry policy.

use super::{ObjectStoreBlobStore, CONTENT_TYPE};
use crate::blob::{BlobError, BlobKey, BlobResult};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// How an [`ObjectStoreBlobStore`] retries and uploads.
#[derive(Debug, Clone)]
pub struct ObjectStoreOptions {
    /// Retries of a failed request (server errors, throttling, a dropped
    /// connection of an idempotent request). Default 10.
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt. Default 3 min.
    pub retry_timeout: Duration,
    /// The first backoff; each next one doubles, up to `max_backoff`.
    /// Defaults 100 ms and 15 s.
    pub init_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// Parts of one multipart upload in flight at once. Default 4.
    pub part_concurrency: usize,
    /// Threads of the store's own runtime. Default 2.
    pub worker_threads: usize,
    /// Builder settings applied after the environment's, as `object_store`
    /// names them (`"aws_endpoint"`, `"aws_region"`, `"google_service_account"`,
    /// …). Default none.
    pub config: Vec<(String, String)>,
}

impl Default for ObjectStoreOptions {
    fn default() -> Self {
        ObjectStoreOptions {
            max_retries: 10,
            retry_timeout: Duration::from_secs(180),
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            part_concurrency: 4,
            worker_threads: 2,
            config: Vec::new(),
        }
    }
}

impl ObjectStoreOptions {
    /// Sets [`max_retries`](Self::max_retries).
    pub fn with_max_retries(mut self, n: usize) -> Self {
        self.max_retries = n;
        self
    }

    /// Sets [`part_concurrency`](Self::part_concurrency).
    pub fn with_part_concurrency(mut self, n: usize) -> Self {
        self.part_concurrency = n;
        self
    }

    /// Adds a builder setting (see [`config`](Self::config)).
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.push((key.into(), value.into()));
        self
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.init_backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

impl ObjectStoreBlobStore {
    /// Opens `url` (`s3://`, `gs://` or `az://`; the path after the bucket is
    /// the prefix of every key).
    ///
    /// # Errors
    /// [`BlobError::InvalidLocation`] for another scheme, a missing bucket, a
    /// prefix that is not a valid key, or a configuration the builder
    /// refuses (missing credentials are reported by the first request).
    pub fn from_url(url: &str, options: ObjectStoreOptions) -> BlobResult<Self> {
        let invalid = |reason: String| BlobError::InvalidLocation {
            location: url.to_string(),
            reason,
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("not a URL".into()))?;
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket (container) named".into()));
        }
        let path = path.trim_end_matches('/');
        let prefix = match path {
            "" => None,
            p => Some(BlobKey::new(p).map_err(|e| invalid(format!("prefix: {e}")))?),
        };
        let root = format!("{scheme}://{bucket}");
        let bad_key = |k: &str| invalid(format!("unknown setting {k:?}"));
        let built: object_store::Result<Arc<dyn ObjectStore>> = match scheme {
            "s3" | "s3a" => options
                .config
                .iter()
                .try_fold(AmazonS3Builder::from_env(), |b, (k, v)| {
                    Ok(b.with_config(k.parse().map_err(|_| bad_key(k))?, v))
                })?
                .with_url(root)
                .with_conditional_put(S3ConditionalPut::ETagMatch)
                .with_config(
                    AmazonS3ConfigKey::Client(ClientConfigKey::DefaultContentType),
                    CONTENT_TYPE,
                )
                .with_retry(options.retry())
                .with_http_connector(super::trace::ObservedConnector)
                .build()
                .map(|s| Arc::new(s) as _),
            "gs" => options
                .config
                .iter()
                .try_fold(GoogleCloudStorageBuilder::from_env(), |b, (k, v)| {
                    Ok(b.with_config(k.parse().map_err(|_| bad_key(k))?, v))
                })?
                .with_url(root)
                .with_config(
                    GoogleConfigKey::Client(ClientConfigKey::DefaultContentType),
                    CONTENT_TYPE,
                )
                .with_retry(options.retry())
                .with_http_connector(super::trace::ObservedConnector)
                .build()
                .map(|s| Arc::new(s) as _),
            "az" | "azure" | "abfs" | "abfss" => options
                .config
                .iter()
                .try_fold(MicrosoftAzureBuilder::from_env(), |b, (k, v)| {
                    Ok(b.with_config(k.parse().map_err(|_| bad_key(k))?, v))
                })?
                .with_url(root)
                .with_config(
                    AzureConfigKey::Client(ClientConfigKey::DefaultContentType),
                    CONTENT_TYPE,
                )
                .with_retry(options.retry())
                .with_http_connector(super::trace::ObservedConnector)
                .build()
                .map(|s| Arc::new(s) as _),
            other => return Err(invalid(format!("unknown scheme {other:?}"))),
        };
        let store = built.map_err(|e| invalid(e.to_string()))?;
        let mut this = Self::from_store(store, prefix.as_ref(), options)?;
        this.label = url.to_string();
        Ok(this)
    }
}
