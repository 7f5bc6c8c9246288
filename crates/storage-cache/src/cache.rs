//! The [`Cache`] trait: one async interface over Redis and process memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use async_trait::async_trait;
use serde_json::Value as Json;
use storage_core::{Result, StorageError};

use crate::lock;
use crate::pipeline::{Pipeline, PipelineOp};
use crate::validate::{decode_json, encode_json};

/// When a key written by [`Cache::set_with`] expires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The cache's `default_ttl` (no expiry when that is 0).
    #[default]
    Default,
    /// Never.
    Never,
    /// After this many milliseconds (at least 1).
    Millis(u64),
}

/// Options of [`Cache::set_with`]: expiry and the `NX`/`XX` conditions of Redis `SET`.
///
/// ```
/// use storage_cache::SetOptions;
/// let lock_like = SetOptions::new().ttl_millis(1500).nx();
/// let keep_forever = SetOptions::new().persist();
/// # let _ = (lock_like, keep_forever);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub(crate) expiry: Expiry,
    pub(crate) nx: bool,
    pub(crate) xx: bool,
    pub(crate) invalid: bool,
}

impl SetOptions {
    /// Default expiry (the cache's `default_ttl`), no condition.
    pub fn new() -> Self {
        Self::default()
    }

    /// From the `ttl` argument of [`Cache::set`]: `None` is the default TTL, `Some(0)` never
    /// expires, `Some(n)` expires after `n` seconds.
    pub fn ttl(ttl: Option<u64>) -> Self {
        match ttl {
            None => Self::new(),
            Some(0) => Self::new().persist(),
            Some(s) => Self::new().ttl_secs(s),
        }
    }

    /// Expire after `secs` seconds (0 means never). Above [`crate::MAX_TTL_SECS`] the write
    /// fails with `InvalidInput`.
    pub fn ttl_secs(self, secs: u64) -> Self {
        self.ttl_millis(secs.saturating_mul(1000))
    }

    /// Expire after `millis` milliseconds (0 means never). Above [`crate::MAX_TTL_SECS`]
    /// seconds the write fails with `InvalidInput`.
    pub fn ttl_millis(mut self, millis: u64) -> Self {
        self.invalid = millis > crate::MAX_TTL_SECS * 1000;
        self.expiry = if millis == 0 {
            Expiry::Never
        } else {
            Expiry::Millis(millis)
        };
        self
    }

    /// Never expire.
    pub fn persist(mut self) -> Self {
        self.expiry = Expiry::Never;
        self
    }

    /// Only set when the key does not exist (`SET ... NX`).
    pub fn nx(mut self) -> Self {
        self.nx = true;
        self
    }

    /// Only set when the key exists (`SET ... XX`).
    pub fn xx(mut self) -> Self {
        self.xx = true;
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.invalid {
            return Err(StorageError::invalid_input(format!(
                "ttl is above the limit of {} s (100 years)",
                crate::MAX_TTL_SECS
            )));
        }
        if self.nx && self.xx {
            return Err(StorageError::invalid_input("nx and xx exclude each other"));
        }
        Ok(())
    }
}

/// The cache of the storage layer: strings, lists, hashes, sets, sorted sets, counters,
/// distributed locks, Lua scripts and pipelines, with the original's operation names.
///
/// Implemented by [`crate::RedisCache`] (shared between processes) and
/// [`crate::InMemoryCache`] (one process). Object safe: use `Arc<dyn Cache>`.
///
/// Conventions of every method:
/// - **Keys** are given without the cache's key prefix; the implementation adds it (also to
///   keys of Lua scripts, pipelines and locks) and strips it from keys it returns.
/// - **TTLs are in seconds** unless a name says otherwise.
/// - **Errors** are [`StorageError`]s tagged with the operation and the backend (`redis` or
///   `memory`): `InvalidInput` for bad arguments (empty key, NaN score, no values to write,
///   a key holding another type, a value that is not an integer for `incr`, a JSON value
///   nested deeper than [`storage_core::validate::MAX_JSON_DEPTH`]), nothing written;
///   `DataCorrupted` for stored text that is not JSON in the `*_json` reads; `Unavailable` and
///   `Timeout` (retryable) when the server cannot be reached or answers too late, including
///   when no pooled connection frees up in time; `NotInitialized` after [`Cache::close`];
///   `Backend` otherwise.
/// - Missing keys read as empty (`None`, empty collections, 0).
/// - Operations that write values need at least one value (`InvalidInput` otherwise);
///   removals with nothing to remove return 0.
#[async_trait]
pub trait Cache: Send + Sync + fmt::Debug {
    /// `redis` or `memory`, as in error messages.
    fn backend_name(&self) -> &'static str;

    /// The prefix added to every key.
    fn key_prefix(&self) -> &str;

    /// Whether [`Cache::eval_lua`] can run arbitrary Lua (`false` for memory).
    fn supports_lua(&self) -> bool {
        true
    }

    /// Whether the cache answers (a `PING` for Redis); `false` after [`Cache::close`].
    async fn is_connected(&self) -> bool;

    // ----- strings -------------------------------------------------------------------------

    /// The string at `key`, `None` when missing or expired.
    async fn get(&self, key: &str) -> Result<Option<String>>;

    /// Sets `key` to `value`. `ttl`: `None` applies the cache's default TTL, `Some(0)` never
    /// expires, `Some(n)` expires after `n` seconds. Returns `true` (see [`Cache::set_with`]
    /// for conditional writes). Any previous value and TTL are replaced.
    async fn set(&self, key: &str, value: &str, ttl: Option<u64>) -> Result<bool> {
        self.set_with(key, value, SetOptions::ttl(ttl)).await
    }

    /// Sets `key` to `value` with expiry and `NX`/`XX` condition; `false` when the condition
    /// prevented the write.
    async fn set_with(&self, key: &str, value: &str, options: SetOptions) -> Result<bool>;

    /// Deletes keys of any type; returns how many existed. No keys: 0.
    async fn delete(&self, keys: &[&str]) -> Result<u64>;

    /// Whether `key` exists (of any type).
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Sets the TTL of an existing key to `ttl` seconds (0 deletes it, as Redis does);
    /// `false` when the key does not exist.
    async fn expire(&self, key: &str, ttl: u64) -> Result<bool>;

    /// Remaining TTL in seconds (rounded to the nearest second): -2 when the key does not
    /// exist, -1 when it has no expiry.
    async fn ttl(&self, key: &str) -> Result<i64>;

    /// Sets `key` to `value` and returns the old value; the key no longer expires (Redis
    /// `GETSET`).
    async fn getset(&self, key: &str, value: &str) -> Result<Option<String>>;

    /// Adds `amount` to the integer at `key` (missing: 0) and returns the new value; the TTL
    /// is kept. `InvalidInput` when the value is not an integer or the result overflows `i64`.
    async fn incr(&self, key: &str, amount: i64) -> Result<i64>;

    /// Subtracts `amount`, see [`Cache::incr`].
    async fn decr(&self, key: &str, amount: i64) -> Result<i64>;

    // ----- JSON strings --------------------------------------------------------------------

    /// The JSON document at `key`. `DataCorrupted` when the stored text is not JSON.
    async fn get_json(&self, key: &str) -> Result<Option<Json>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(text) => decode_json(self.backend_name(), "get_json", key, &text).map(Some),
        }
    }

    /// Stores `value` as JSON text (non-ASCII kept as is); `ttl` as in [`Cache::set`].
    async fn set_json(&self, key: &str, value: &Json, ttl: Option<u64>) -> Result<bool> {
        let text = encode_json(self.backend_name(), "set_json", value)?;
        self.set(key, &text, ttl).await
    }

    // ----- lists ---------------------------------------------------------------------------

    /// Pushes `values` to the head, one after the other (the last ends first); returns the
    /// new length.
    async fn lpush(&self, key: &str, values: &[&str]) -> Result<u64>;

    /// Pushes `values` to the tail; returns the new length.
    async fn rpush(&self, key: &str, values: &[&str]) -> Result<u64>;

    /// Removes and returns up to `count` (at least 1) elements from the head.
    async fn lpop(&self, key: &str, count: usize) -> Result<Vec<String>>;

    /// Removes and returns up to `count` (at least 1) elements from the tail, last first.
    async fn rpop(&self, key: &str, count: usize) -> Result<Vec<String>>;

    /// Elements `start..=stop`; negative indexes count from the end (-1 is the last).
    async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>>;

    /// Length of the list (0 when missing).
    async fn llen(&self, key: &str) -> Result<u64>;

    /// Keeps only elements `start..=stop` (indexes as in [`Cache::lrange`]).
    async fn ltrim(&self, key: &str, start: i64, stop: i64) -> Result<()>;

    /// `RPUSH` + `EXPIRE` (seconds, at least 1) + `LLEN` in one atomic round trip; returns
    /// the new length.
    async fn rpush_expire_llen(&self, key: &str, value: &str, ttl: u64) -> Result<u64>;

    /// [`Cache::lpush`] of JSON documents.
    async fn lpush_json(&self, key: &str, values: &[Json]) -> Result<u64> {
        let texts = values
            .iter()
            .map(|v| encode_json(self.backend_name(), "lpush_json", v))
            .collect::<Result<Vec<String>>>()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.lpush(key, &refs).await
    }

    /// [`Cache::rpush`] of JSON documents.
    async fn rpush_json(&self, key: &str, values: &[Json]) -> Result<u64> {
        let texts = values
            .iter()
            .map(|v| encode_json(self.backend_name(), "rpush_json", v))
            .collect::<Result<Vec<String>>>()?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.rpush(key, &refs).await
    }

    /// [`Cache::lrange`] decoding each element as JSON (`DataCorrupted` when one is not).
    async fn lrange_json(&self, key: &str, start: i64, stop: i64) -> Result<Vec<Json>> {
        let items = self.lrange(key, start, stop).await?;
        items
            .iter()
            .map(|t| decode_json(self.backend_name(), "lrange_json", key, t))
            .collect()
    }

    // ----- hashes --------------------------------------------------------------------------

    /// The value of `field`.
    async fn hget(&self, key: &str, field: &str) -> Result<Option<String>>;

    /// Sets `field`; `true` when the field is new.
    async fn hset(&self, key: &str, field: &str, value: &str) -> Result<bool>;

    /// Sets several fields (at least one).
    async fn hmset(&self, key: &str, fields: &[(&str, &str)]) -> Result<()>;

    /// All fields and values.
    async fn hgetall(&self, key: &str) -> Result<HashMap<String, String>>;

    /// Deletes fields; returns how many existed.
    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64>;

    /// Whether `field` exists.
    async fn hexists(&self, key: &str, field: &str) -> Result<bool>;

    /// Number of fields.
    async fn hlen(&self, key: &str) -> Result<u64>;

    /// Field names.
    async fn hkeys(&self, key: &str) -> Result<Vec<String>>;

    /// Values.
    async fn hvals(&self, key: &str) -> Result<Vec<String>>;

    /// Adds `amount` to the integer in `field` (missing: 0); returns the new value.
    /// `InvalidInput` when the field is not an integer or the result overflows.
    async fn hincrby(&self, key: &str, field: &str, amount: i64) -> Result<i64>;

    /// [`Cache::hget`] decoding JSON.
    async fn hget_json(&self, key: &str, field: &str) -> Result<Option<Json>> {
        match self.hget(key, field).await? {
            None => Ok(None),
            Some(t) => decode_json(self.backend_name(), "hget_json", key, &t).map(Some),
        }
    }

    /// [`Cache::hset`] of a JSON document.
    async fn hset_json(&self, key: &str, field: &str, value: &Json) -> Result<bool> {
        let text = encode_json(self.backend_name(), "hset_json", value)?;
        self.hset(key, field, &text).await
    }

    /// [`Cache::hmset`] of JSON documents.
    async fn hmset_json(&self, key: &str, fields: &[(&str, Json)]) -> Result<()> {
        let texts = fields
            .iter()
            .map(|(f, v)| Ok((*f, encode_json(self.backend_name(), "hmset_json", v)?)))
            .collect::<Result<Vec<(&str, String)>>>()?;
        let refs: Vec<(&str, &str)> = texts.iter().map(|(f, v)| (*f, v.as_str())).collect();
        self.hmset(key, &refs).await
    }

    /// [`Cache::hgetall`] decoding every value as JSON.
    async fn hgetall_json(&self, key: &str) -> Result<HashMap<String, Json>> {
        let all = self.hgetall(key).await?;
        all.into_iter()
            .map(|(f, t)| {
                Ok((
                    f,
                    decode_json(self.backend_name(), "hgetall_json", key, &t)?,
                ))
            })
            .collect()
    }

    /// [`Cache::hvals`] decoding every value as JSON.
    async fn hvals_json(&self, key: &str) -> Result<Vec<Json>> {
        let vals = self.hvals(key).await?;
        vals.iter()
            .map(|t| decode_json(self.backend_name(), "hvals_json", key, t))
            .collect()
    }

    // ----- sets ----------------------------------------------------------------------------

    /// Adds members (at least one); returns how many were new.
    async fn sadd(&self, key: &str, members: &[&str]) -> Result<u64>;

    /// Removes members; returns how many were present.
    async fn srem(&self, key: &str, members: &[&str]) -> Result<u64>;

    /// All members.
    async fn smembers(&self, key: &str) -> Result<HashSet<String>>;

    /// Whether `member` is in the set.
    async fn sismember(&self, key: &str, member: &str) -> Result<bool>;

    /// Number of members.
    async fn scard(&self, key: &str) -> Result<u64>;

    // ----- sorted sets ---------------------------------------------------------------------

    /// Adds members with scores (at least one; NaN is refused), updating the score of existing
    /// members; returns how many were new.
    async fn zadd(&self, key: &str, members: &[(&str, f64)]) -> Result<u64>;

    /// Removes members; returns how many were present.
    async fn zrem(&self, key: &str, members: &[&str]) -> Result<u64>;

    /// Members by rank `start..=stop` (ascending score, then member bytes; negative indexes
    /// count from the end).
    async fn zrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>>;

    /// [`Cache::zrange`] with scores.
    async fn zrange_withscores(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<(String, f64)>>;

    /// Members with `min <= score <= max` (infinities allowed, NaN refused), ascending.
    async fn zrangebyscore(&self, key: &str, min: f64, max: f64) -> Result<Vec<String>>;

    /// [`Cache::zrangebyscore`] with scores.
    async fn zrangebyscore_withscores(
        &self,
        key: &str,
        min: f64,
        max: f64,
    ) -> Result<Vec<(String, f64)>>;

    /// Removes members with `min <= score <= max`; returns how many.
    async fn zrem_range_by_score(&self, key: &str, min: f64, max: f64) -> Result<u64>;

    /// The score of `member`.
    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>>;

    /// Number of members.
    async fn zcard(&self, key: &str) -> Result<u64>;

    // ----- locks ---------------------------------------------------------------------------

    /// Acquires the lock `name` (key `lock:<name>`) for `timeout_secs` seconds (at least 1;
    /// the lock expires by itself after that) and returns its token (a random UUID v4), or
    /// `None` when another holder has it: at once when `blocking` is false, else after waiting
    /// up to `blocking_timeout_secs` seconds (polling with a short jittered back-off).
    ///
    /// Time: a blocking call with `blocking_timeout_secs > 0` returns within that many
    /// seconds, whatever the server does (every attempt is bounded by the time left); a
    /// non-blocking one (or `blocking_timeout_secs == 0`) makes one attempt within the cache's
    /// own call bounds.
    ///
    /// One token per call: every attempt of the call writes the same token, so an attempt
    /// whose answer was lost (the server stalled) is recognised by a later one. When the call
    /// gives up after such an attempt, it fails with `Timeout` (outcome `Unknown`, still
    /// retryable: a new call uses a new token) and the implementation removes the lock that
    /// attempt may have set under the call's token (`RedisCache`: a compare-and-delete queued
    /// behind it on the same socket), so no lock stays that nobody can release. `None` means
    /// an attempt was answered and someone else held the lock.
    ///
    /// # Errors
    /// `InvalidInput` for an empty name, `timeout_secs` 0 or above
    /// [`crate::MAX_LOCK_TIMEOUT_SECS`] (a year), or a `blocking_timeout_secs` that is
    /// negative, not finite or above [`crate::MAX_BLOCKING_TIMEOUT_SECS`] (a day); `Timeout`/`Unavailable` when the server did not answer any
    /// attempt; `NotInitialized` after close.
    async fn acquire_lock(
        &self,
        name: &str,
        timeout_secs: u64,
        blocking: bool,
        blocking_timeout_secs: f64,
    ) -> Result<Option<String>> {
        lock::acquire(self, name, timeout_secs, blocking, blocking_timeout_secs).await
    }

    /// Releases the lock `name` if `token` still holds it (atomic compare-and-delete);
    /// `false` when it expired or belongs to someone else.
    async fn release_lock(&self, name: &str, token: &str) -> Result<bool>;

    // ----- scripts -------------------------------------------------------------------------

    /// Runs a Lua script with `keys` (prefixed, `KEYS[i]`) and `args` (`ARGV[i]`) and
    /// converts its reply to JSON (nil: `null`, integers, strings, arrays; `true` is 1 and
    /// `false` is `null` in Redis' Lua conversion). Redis runs it by SHA (`EVALSHA`) and
    /// loads it on `NOSCRIPT`. [`crate::InMemoryCache`] returns `Unsupported`.
    async fn eval_lua(&self, script: &str, keys: &[&str], args: &[&str]) -> Result<Json>;

    // ----- pipelines -----------------------------------------------------------------------

    /// A pipeline builder whose keys are prefixed; see [`Pipeline`].
    fn pipeline(&self) -> Pipeline<'_>;

    /// Runs pipeline commands in one round trip; one integer per command (see
    /// [`Pipeline::execute`], which calls this). All commands are validated before any runs.
    /// `atomic` runs them as one `MULTI`/`EXEC` (no other client's command in between); as in
    /// Redis, a command that fails while running (an `incr` that would overflow, a key of
    /// another type) undoes nothing: the others run, and the error, the first one, says that
    /// the pipeline's writes may have been applied ([`storage_core::WriteOutcome::Unknown`]).
    async fn execute_pipeline(&self, ops: &[PipelineOp], atomic: bool) -> Result<Vec<i64>>;

    // ----- utilities -----------------------------------------------------------------------

    /// Keys under this cache's prefix matching a glob `pattern` (`*`, `?`, `[a-z]`, `[^a]`,
    /// `\` escapes), without the prefix, sorted. Redis uses `SCAN`, never `KEYS`.
    async fn keys(&self, pattern: &str) -> Result<Vec<String>>;

    /// Deletes every key under this cache's prefix (never the rest of the database); returns
    /// how many. `InvalidInput` when the prefix is empty.
    async fn flush_prefix(&self) -> Result<u64>;

    /// Server information (`INFO` fields for Redis; `type` and `keys` for memory).
    async fn info(&self) -> Result<BTreeMap<String, String>>;

    /// Closes the cache; later calls fail with `NotInitialized`. Idempotent.
    async fn close(&self) -> Result<()>;
}
