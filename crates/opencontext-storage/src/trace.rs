//! One `tracing` span per facade operation, with backend, operation, count and latency:
//! written once here instead of in every backend.

use std::future::Future;
use std::time::Instant;

use storage_core::{Result, StorageError};
use tracing::Instrument;

/// Runs `fut` inside a span `storage{backend, op}`; logs latency (ms) and `count` items at
/// debug level, and the error at warn level. Errors are tagged with backend and operation.
pub(crate) async fn traced<T, F>(
    backend: &'static str,
    op: &'static str,
    count: usize,
    fut: F,
) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let span = tracing::debug_span!("storage", backend, op, count);
    async move {
        let start = Instant::now();
        let result = fut.await;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(_) => tracing::debug!(latency_ms = ms, "ok"),
            Err(e) => tracing::warn!(latency_ms = ms, error = %e, "failed"),
        }
        result.map_err(|e: StorageError| e.with_backend(backend).with_operation(op))
    }
    .instrument(span)
    .await
}
