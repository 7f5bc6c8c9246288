//! Distributed locks on top of `SET key token NX PX ttl`, shared by both implementations.
//! Release is implementation-specific (an atomic compare-and-delete).

use std::time::Duration;

use storage_core::{ErrorKind, Result, ResultExt, StorageError};
use tokio::time::Instant;

use crate::cache::{Cache, SetOptions};

/// First pause between attempts of a blocking acquire; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(2);
/// Longest pause between attempts (the original polls every 100 ms).
const MAX_BACKOFF: Duration = Duration::from_millis(100);

/// The key of lock `name` (before prefixing), as in the original: `lock:<name>`.
pub(crate) fn lock_key(name: &str) -> String {
    format!("lock:{name}")
}

/// Checks the arguments of [`Cache::acquire_lock`].
pub(crate) fn check_acquire(
    name: &str,
    timeout_secs: u64,
    blocking_timeout_secs: f64,
) -> Result<()> {
    if name.is_empty() {
        return Err(StorageError::invalid_input("lock name must not be empty"));
    }
    if timeout_secs == 0 {
        return Err(StorageError::invalid_input(
            "lock timeout must be at least 1 second",
        ));
    }
    if !(blocking_timeout_secs.is_finite()
        && (0.0..=MAX_BLOCKING_TIMEOUT_SECS).contains(&blocking_timeout_secs))
    {
        return Err(StorageError::invalid_input(format!(
            "blocking_timeout is {blocking_timeout_secs}, it must be a number of seconds from 0 to {MAX_BLOCKING_TIMEOUT_SECS}"
        )));
    }
    if timeout_secs > MAX_LOCK_TIMEOUT_SECS {
        return Err(StorageError::invalid_input(format!(
            "lock timeout is {timeout_secs} s, the limit is {MAX_LOCK_TIMEOUT_SECS} s (one year)"
        )));
    }
    Ok(())
}

/// Longest accepted `blocking_timeout` of `acquire_lock`, in seconds (one day).
pub const MAX_BLOCKING_TIMEOUT_SECS: f64 = 86_400.0;
/// Longest accepted lock `timeout` (its lease), in seconds (one year).
pub const MAX_LOCK_TIMEOUT_SECS: u64 = 365 * 86_400;

pub(crate) fn check_release(name: &str, token: &str) -> Result<()> {
    if name.is_empty() || token.is_empty() {
        return Err(StorageError::invalid_input(
            "lock name and token must not be empty",
        ));
    }
    Ok(())
}

/// Least time left for which another attempt is started; with less, a blocking acquire
/// gives up instead of sending a command that could not get its answer in time.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

/// When the attempts of one `acquire_lock` call happen and how long each may take.
///
/// Not blocking (or `blocking_timeout_secs` 0): one attempt, bounded by the cache's own
/// call bounds. Blocking: attempts until `blocking_timeout_secs` after the start, each
/// bounded by the time left, with a jittered back-off between them.
pub(crate) struct Schedule {
    deadline: Option<Instant>,
    backoff: Duration,
}

impl Schedule {
    pub(crate) fn new(blocking: bool, blocking_timeout_secs: f64) -> Self {
        let deadline = (blocking && blocking_timeout_secs > 0.0)
            .then(|| Instant::now() + Duration::from_secs_f64(blocking_timeout_secs));
        Schedule {
            deadline,
            backoff: MIN_BACKOFF,
        }
    }

    /// The time the next attempt may take, `None` when only the cache's own bounds apply.
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// After an unsuccessful attempt: pauses and returns whether to attempt again.
    pub(crate) async fn wait(&mut self) -> bool {
        let Some(deadline) = self.deadline else {
            return false;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left < MIN_ATTEMPT * 2 {
            return false;
        }
        // Jitter spreads contenders out so they do not retry in lock-step.
        let jitter = Duration::from_micros(
            (uuid::Uuid::new_v4().as_u128() % (self.backoff.as_micros().max(1))) as u64,
        );
        tokio::time::sleep((self.backoff + jitter).min(left - MIN_ATTEMPT)).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        true
    }
}

/// A new lock token (a random UUID v4), one per `acquire_lock` call: every attempt of the call
/// writes the same token, so a later attempt recognises an earlier one whose answer was lost.
pub(crate) fn new_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The generic [`Cache::acquire_lock`] (used by [`crate::InMemoryCache`] and other
/// implementations): `SET NX` with the call's token; an attempt that did not finish within
/// the time left is abandoned and the next one also accepts the key already holding this
/// call's token. Implementations whose calls can time out should override `acquire_lock`
/// to also remove an abandoned attempt's lock (as [`crate::RedisCache`] does).
pub(crate) async fn acquire<C: Cache + ?Sized>(
    cache: &C,
    name: &str,
    timeout_secs: u64,
    blocking: bool,
    blocking_timeout_secs: f64,
) -> Result<Option<String>> {
    check_acquire(name, timeout_secs, blocking_timeout_secs)
        .context(cache.backend_name(), "acquire_lock")?;
    let key = lock_key(name);
    let token = new_token();
    let options = SetOptions::new().ttl_secs(timeout_secs).nx();
    let mut schedule = Schedule::new(blocking, blocking_timeout_secs);
    let mut abandoned = false;
    let mut answered = false;
    loop {
        let attempt = async {
            let set = cache.set_with(&key, &token, options).await?;
            Ok::<_, StorageError>(
                set || (abandoned && cache.get(&key).await?.as_deref() == Some(token.as_str())),
            )
        };
        let outcome = match schedule.time_left() {
            None => Some(attempt.await),
            Some(left) => tokio::time::timeout(left, attempt).await.ok(),
        };
        match outcome {
            Some(Ok(true)) => return Ok(Some(token)),
            Some(Ok(false)) => answered = true,
            Some(Err(e)) => return Err(e.with_operation("acquire_lock")),
            None => abandoned = true,
        }
        if !schedule.wait().await {
            if abandoned && !answered {
                return Err(StorageError::new(
                    ErrorKind::Timeout,
                    format!("no answer within blocking_timeout_secs ({blocking_timeout_secs} s)"),
                )
                .with_outcome_unknown(true)
                .with_backend(cache.backend_name())
                .with_operation("acquire_lock"));
            }
            return Ok(None);
        }
    }
}
