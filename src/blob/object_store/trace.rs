//! What the HTTP layer saw during one blob-store call: every response's
//! status passes through [`Observed`], which records it in the calling task's
//! [`Trace`], counts requests and throttling in metrics and logs a throttled
//! response as a tracing event.
//!
//! Invariant: one call of the blob store runs as one tokio task inside
//! [`TRACE`]'s scope, and `object_store` awaits each HTTP request inside that
//! task (its retries too), so the trace holds exactly that call's requests.
//! The errors of `object_store` do not expose the HTTP status; the trace does,
//! and [`super::errors`] decides from it what an error means.

use crate::blob::BlobOp;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// What one call's requests got back.
#[derive(Debug, Default)]
pub(super) struct Trace {
    /// The operation and key, for the throttling event.
    pub(super) operation: Option<BlobOp>,
    pub(super) key: String,
    /// The status of the last response, if any arrived.
    pub(super) last_status: Option<u16>,
    /// HTTP requests sent (retries included).
    pub(super) requests: u32,
    /// Responses that asked to slow down (429, 503).
    pub(super) throttled: u32,
}

tokio::task_local! {
    /// The trace of the call the current task runs.
    pub(super) static TRACE: Arc<Mutex<Trace>>;
}

/// The `reqwest` client of `object_store`, observed.
#[derive(Debug, Default)]
pub(super) struct ObservedConnector;

impl HttpConnector for ObservedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(Observed(inner)))
    }
}

#[derive(Debug)]
struct Observed(HttpClient);

impl HttpService for Observed {
    fn call<'a, 'b>(
        &'a self,
        req: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            let result = self.0.execute(req).await;
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            let _ = TRACE.try_with(|trace| {
                let mut t = trace.lock().unwrap_or_else(|e| e.into_inner());
                t.requests += 1;
                t.last_status = status;
                let op = t.operation.map(BlobOp::as_str).unwrap_or("other");
                ::metrics::counter!(crate::metrics::BLOB_REQUESTS, "operation" => op).increment(1);
                if matches!(status, Some(429 | 503)) {
                    t.throttled += 1;
                    ::metrics::counter!(crate::metrics::BLOB_THROTTLED, "operation" => op)
                        .increment(1);
                    tracing::warn!(
                        operation = op,
                        key = %t.key,
                        status = status.unwrap_or_default(),
                        "object store throttled a request; retrying with backoff"
                    );
                }
            });
            result
        })
    }
}
