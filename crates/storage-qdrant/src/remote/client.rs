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

    /// Runs the read `attempt` until it succeeds, fails with a permanent error, or
    /// `max_retries` retries have failed. Waits `backoff * 2^n` (at most 5 s) between
    /// attempts, or the server's `retry-after` (at most 30 s) when it sends one.
    ///
    /// # Errors
    /// The last attempt's error, mapped by [`map_error`]; [`ErrorKind::Timeout`] when an
    /// attempt outlives its bound.
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>>,
    {
        self.run(what, false, attempt).await
    }

    /// [`Self::call`] for an idempotent write (an upsert by id, a delete by id or filter, a
    /// collection or index creation). When an attempt's request may have reached the server
    /// without its answer coming back (a timeout, a connection lost after the request was
    /// sent), the error's outcome is [`storage_core::WriteOutcome::Unknown`]; it stays
    /// retryable, since repeating the write gives the same state.
    pub(crate) async fn call_write<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>>,
    {
        self.run(what, true, attempt).await
    }

    async fn run<T, F, Fut>(&self, what: &str, write: bool, attempt: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, QdrantError>>,
    {
        let mut retry = 0u32;
        let mut maybe_applied = false;
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
            maybe_applied |= write && may_have_been_sent(&err);
            if !err.is_retryable() || retry >= self.max_retries {
                let message = if retry > 0 {
                    format!("{what}: {} (after {retry} retries)", err.message())
                } else {
                    format!("{what}: {}", err.message())
                };
                let mut out = StorageError::new(err.kind(), message)
                    .set_retryable(err.is_retryable())
                    .with_source(err);
                if maybe_applied {
                    out = out.with_outcome_unknown(true);
                }
                return Err(out);
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

/// Whether a failed attempt may have delivered its request: it timed out (the server may be
/// applying it), or the connection broke after it was made. A connection that could not be
/// made, and every answer of the server other than `UNAVAILABLE`, mean the request was not
/// applied. (A server's `UNAVAILABLE` cannot be told apart from a connection that broke
/// mid-call, so it counts as possibly delivered.)
fn may_have_been_sent(err: &StorageError) -> bool {
    match err.kind() {
        ErrorKind::Timeout => true,
        ErrorKind::Unavailable => {
            let m = err.message().to_ascii_lowercase();
            !(m.contains("failed to connect")
                || m.contains("connect error")
                || m.contains("error trying to connect")
                || m.contains("connection refused")
                || m.contains("resourceexhausted"))
        }
        _ => false,
    }
}
