//! Distributed locks on top of `SET key token NX PX ttl`, shared by both implementations.
//! Release is implementation-specific (an atomic compare-and-delete).

use std::time::Duration;

use storage_core::{Result, ResultExt, StorageError};
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

fn check(name: &str, timeout_secs: u64, blocking_timeout_secs: f64) -> Result<()> {
    if name.is_empty() {
        return Err(StorageError::invalid_input("lock name must not be empty"));
    }
    if timeout_secs == 0 {
        return Err(StorageError::invalid_input(
            "lock timeout must be at least 1 second",
        ));
    }
    if !(blocking_timeout_secs.is_finite() && blocking_timeout_secs >= 0.0) {
        return Err(StorageError::invalid_input(format!(
            "blocking_timeout is {blocking_timeout_secs}, it must be a finite number of seconds >= 0"
        )));
    }
    Ok(())
}

pub(crate) fn check_release(name: &str, token: &str) -> Result<()> {
    if name.is_empty() || token.is_empty() {
        return Err(StorageError::invalid_input(
            "lock name and token must not be empty",
        ));
    }
    Ok(())
}

/// See [`Cache::acquire_lock`].
pub(crate) async fn acquire<C: Cache + ?Sized>(
    cache: &C,
    name: &str,
    timeout_secs: u64,
    blocking: bool,
    blocking_timeout_secs: f64,
) -> Result<Option<String>> {
    check(name, timeout_secs, blocking_timeout_secs)
        .context(cache.backend_name(), "acquire_lock")?;
    let key = lock_key(name);
    let token = uuid::Uuid::new_v4().to_string();
    let options = SetOptions::new().ttl_secs(timeout_secs).nx();
    let deadline = Instant::now() + Duration::from_secs_f64(blocking_timeout_secs);
    let mut backoff = MIN_BACKOFF;
    loop {
        let acquired = cache
            .set_with(&key, &token, options)
            .await
            .map_err(|e| e.with_operation("acquire_lock"))?;
        if acquired {
            return Ok(Some(token));
        }
        let now = Instant::now();
        if !blocking || now >= deadline {
            return Ok(None);
        }
        // Jitter spreads contenders out so they do not retry in lock-step.
        let jitter = Duration::from_micros(
            (uuid::Uuid::new_v4().as_u128() % (backoff.as_micros().max(1))) as u64,
        );
        tokio::time::sleep((backoff + jitter).min(deadline - now)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
