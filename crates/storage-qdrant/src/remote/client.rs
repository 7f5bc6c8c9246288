//! The raw server calls: every request goes through [`Client::call`], which bounds it with the
//! configured timeout and retries transient failures with exponential backoff.

use std::future::Future;
use std::time::Duration;

use qdrant_client::{Qdrant, QdrantError};
use storage_core::{ErrorKind, Result, StorageError};

use super::config::QdrantRemoteConfig;
use super::error::map_error;

/// Longest backoff between two attempts chosen by us.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest `retry-after` of the server we honour.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A connected `qdrant-client` plus the retry policy.
pub(crate) struct Client {
    pub(crate) qdrant: Qdrant,
    max_retries: u32,
    backoff: Duration,
    /// Outer bound of one attempt: the client's own timeout plus the connect timeout and a
    /// margin, so that a hung connection cannot stall a call forever.
    attempt_timeout: Duration,
    timeout: Duration,
}

impl Client {
    /// A client for the configured endpoint. Connections are made lazily, on the first call.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for an invalid endpoint.
    pub(crate) fn new(config: &QdrantRemoteConfig) -> Result<Client> {
        let endpoint = config.endpoint()?;
        let mut builder = Qdrant::from_url(&endpoint)
            .timeout(config.call_timeout())
            .connect_timeout(config.connect_timeout_duration())
            .skip_compatibility_check();
        if let Some(key) = config.api_key.as_ref().filter(|k| !k.is_empty()) {
            builder = builder.api_key(key.expose().to_owned());
        }
        let qdrant = builder.build().map_err(|e| map_error(e).0)?;
        Ok(Client {
            qdrant,
            max_retries: config.max_retries,
            backoff: Duration::from_millis(config.retry_backoff_ms),
            attempt_timeout: config.call_timeout()
                + config.connect_timeout_duration()
                + Duration::from_secs(1),
            timeout: config.call_timeout(),
        })
    }

    /// Runs `attempt` until it succeeds, fails with a permanent error, or `max_retries`
    /// retries have failed. Waits `backoff * 2^n` (at most 5 s) between attempts, or the
    /// server's `retry-after` (at most 30 s) when it sends one.
    ///
    /// # Errors
    /// The last attempt's error, mapped by [`map_error`]; [`ErrorKind::Timeout`] when an
    /// attempt outlives its bound.
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>>,
    {
        let mut retry = 0u32;
        loop {
            let (err, retry_after) =
                match tokio::time::timeout(self.attempt_timeout, attempt()).await {
                    Ok(Ok(v)) => return Ok(v),
                    Ok(Err(e)) => map_error(e),
                    Err(_) => (
                        StorageError::new(
                            ErrorKind::Timeout,
                            format!("no answer within {:?}", self.timeout),
                        ),
                        None,
                    ),
                };
            if !err.is_retryable() || retry >= self.max_retries {
                let err = if retry > 0 {
                    let message = format!("{what}: {} (after {retry} retries)", err.message());
                    StorageError::new(err.kind(), message)
                        .set_retryable(err.is_retryable())
                        .with_source(err)
                } else {
                    let message = format!("{what}: {}", err.message());
                    StorageError::new(err.kind(), message)
                        .set_retryable(err.is_retryable())
                        .with_source(err)
                };
                return Err(err);
            }
            let delay = match retry_after {
                Some(d) => d.min(MAX_RETRY_AFTER),
                None => self
                    .backoff
                    .saturating_mul(1u32 << retry.min(16))
                    .min(MAX_BACKOFF),
            };
            tracing::debug!(call = what, retry = retry + 1, ?delay, error = %err, "retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
}
