//! [`RedisCache`]: the Redis implementation of [`Cache`] (redis + deadpool-redis).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool::Runtime;
use deadpool::managed::Status;
use deadpool_redis::Manager;
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Cmd, FromRedisValue, IntoConnectionInfo, RedisError, RedisResult,
    Script, ScriptInvocation, Value,
};
use serde_json::Value as Json;
use storage_core::{ErrorKind, Result, ResultExt, StorageError, WriteOutcome};
use tracing::Instrument;

use crate::cache::{Cache, Expiry, SetOptions};
use crate::config::RedisCacheConfig;
use crate::glob::escape_glob;
use crate::lock::{Schedule, check_acquire, check_release, lock_key, new_token};
use crate::pipeline::{Pipeline, PipelineOp, validate_all};
use crate::pool::{CacheManager, Pool, PooledConnection, Slot, is_broken};
use crate::redis_error::{map_pool_error, map_redis_error};
use crate::validate::{check_count, check_key, check_not_empty, check_score, check_ttl};

const BACKEND: &str = "redis";

/// RPUSH + EXPIRE + LLEN in one round trip (the original's `_RPUSH_EXPIRE_LLEN_LUA`).
const RPUSH_EXPIRE_LLEN_LUA: &str = "\
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return redis.call('LLEN', KEYS[1])";

/// Deletes the lock only when the caller's token still holds it.
const RELEASE_LOCK_LUA: &str = "\
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0";

/// What a command does, which decides how its failures are reported and retried.
#[derive(Clone, Copy, Debug)]
enum Access {
    /// Changes nothing: retried once after a timeout (`retry_on_timeout`) or a dead socket.
    Read,
    /// Changes data. When its request may have reached the server without an answer, the
    /// error's outcome is `Unknown`; `idempotent` says whether repeating it gives the same
    /// stored state (else that error is not retryable). Never retried here.
    Write { idempotent: bool },
}

const READ: Access = Access::Read;
const IDEMPOTENT: Access = Access::Write { idempotent: true };
const NOT_IDEMPOTENT: Access = Access::Write { idempotent: false };

/// The state of one `acquire_lock` call between its attempts.
#[derive(Default)]
struct LockAttempt {
    /// The socket of an attempt that got no answer (still pending on it).
    lost: Option<MultiplexedConnection>,
    /// Whether an attempt may have set the lock without any later answer telling.
    unresolved: bool,
}

/// One round trip's request.
enum Request<'a> {
    Cmd(&'a Cmd),
    Pipe(&'a redis::Pipeline),
    Script(&'a ScriptInvocation<'a>),
}

/// The driver's error for a request that ran out of time (an I/O timeout, like the
/// driver's own response timeout, so `is_timeout` and `is_broken` hold).
fn timed_out(limit: Duration) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {:.3} s", limit.as_secs_f64()),
    ))
}

/// Keys per `SCAN` page (a hint to the server).
const SCAN_COUNT: u32 = 1000;

/// A [`Cache`] on a Redis server, shared by every process using the same server and prefix.
///
/// Connections come from a deadpool pool of at most `max_connections` multiplexed
/// connections. When all are in use, callers wait up to `pool_timeout` and then fail with a
/// retryable `Timeout` (back-pressure, as the original's `BlockingConnectionPool`). Commands
/// time out after `socket_timeout`, connecting after `socket_connect_timeout`.
///
/// Every key carries `key_prefix`, including keys passed to Lua scripts, pipelines and locks.
/// Scripts run by SHA (`EVALSHA`) and are loaded on `NOSCRIPT`. Clones share the pool.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: RedisCacheConfig,
    rpush_expire_llen: Script,
    release_lock: Script,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("config", &self.inner.config)
            .field("pool", &self.inner.pool.status())
            .finish()
    }
}

impl RedisCache {
    /// Creates the cache and its pool without contacting the server (connections open on
    /// first use). See [`RedisCache::connect`] to check the server at once.
    ///
    /// # Errors
    /// `Config` when the configuration is invalid.
    pub fn new(config: RedisCacheConfig) -> Result<Self> {
        config.validate().context(BACKEND, "new")?;
        let mut settings = redis::RedisConnectionInfo::default().set_db(config.db);
        if let Some(password) = &config.password {
            settings = settings.set_password(password.expose());
        }
        let info = (config.host.clone(), config.port)
            .into_connection_info()
            .map_err(|e| StorageError::config(format!("redis address: {e}")))?
            .set_redis_settings(settings);
        let connection = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(config.connect_timeout()))
            .set_response_timeout(Some(config.socket_timeout()));
        let manager = Manager::new_with_config(info, connection).map_err(|e| {
            map_redis_error(e)
                .with_backend(BACKEND)
                .with_operation("new")
        })?;
        let pool = Pool::builder(CacheManager::new(manager, config.max_connections))
            .max_size(config.max_connections)
            .wait_timeout(Some(config.pool_timeout()))
            .create_timeout(Some(config.connect_timeout()))
            .recycle_timeout(Some(config.socket_timeout()))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StorageError::config(format!("redis connection pool: {e}")))?;
        Ok(RedisCache {
            inner: Arc::new(Inner {
                pool,
                config,
                rpush_expire_llen: Script::new(RPUSH_EXPIRE_LLEN_LUA),
                release_lock: Script::new(RELEASE_LOCK_LUA),
            }),
        })
    }

    /// Creates the cache and checks the server with a `PING` within `socket_connect_timeout`.
    ///
    /// # Errors
    /// `Config` for an invalid configuration; `Unavailable`/`Timeout` when the server does not
    /// answer; `PermissionDenied` for a wrong password.
    pub async fn connect(config: RedisCacheConfig) -> Result<Self> {
        let cache = Self::new(config)?;
        let limit = cache.inner.config.connect_timeout();
        match tokio::time::timeout(limit, cache.ping()).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(StorageError::new(
                    ErrorKind::Timeout,
                    format!("no answer to PING within {limit:?}"),
                )
                .with_backend(BACKEND)
                .with_operation("connect"));
            }
        }
        Ok(cache)
    }

    /// The configuration.
    pub fn config(&self) -> &RedisCacheConfig {
        &self.inner.config
    }

    /// Sends `PING`.
    ///
    /// # Errors
    /// As any command (`Unavailable`, `Timeout`, `NotInitialized` after close, ...).
    pub async fn ping(&self) -> Result<()> {
        self.query::<String>("ping", &redis::cmd("PING"), READ)
            .await
            .map(drop)
    }

    /// Pool occupancy: size, free connections, waiting callers.
    pub fn pool_status(&self) -> Status {
        self.inner.pool.status()
    }

    /// Lends a connection for commands this type does not wrap. Keys are **not** prefixed on
    /// it: add [`Cache::key_prefix`] yourself.
    ///
    /// The loan occupies one of the pool's `max_connections` slots until the connection is
    /// dropped, but its socket is **dedicated** (opened for this loan, within
    /// `socket_connect_timeout`, and closed on drop): the cache's own commands are pipelined
    /// on a few shared sockets, and a blocking command (`BLPOP`, `XREAD ... BLOCK`, `WAIT`, ...)
    /// on one of those would stall every command queued behind it. Blocking commands are
    /// therefore fine here. The connection's response timeout is `socket_timeout`; raise it
    /// with `conn.set_response_timeout(..)` before a blocking command that may wait longer.
    ///
    /// # Errors
    /// `Timeout` when no slot frees up within `pool_timeout` or the socket does not open within
    /// `socket_connect_timeout`; `Unavailable` when connecting fails; `PermissionDenied` for a
    /// wrong password.
    pub async fn connection(&self) -> Result<PooledConnection> {
        const OP: &str = "connection";
        let slot = self.conn(OP).await?;
        let limit = self.inner.config.connect_timeout();
        let opening = self.inner.pool.manager().open_dedicated();
        let conn = match tokio::time::timeout(limit, opening).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(map_redis_error(e).with_backend(BACKEND).with_operation(OP)),
            Err(_) => {
                return Err(StorageError::new(
                    ErrorKind::Timeout,
                    format!(
                        "opening a dedicated connection took longer than socket_connect_timeout \
                         ({} s)",
                        self.inner.config.socket_connect_timeout
                    ),
                )
                .with_backend(BACKEND)
                .with_operation(OP));
            }
        };
        Ok(PooledConnection { conn, slot })
    }

    fn k(&self, op: &'static str, key: &str) -> Result<String> {
        check_key(key).context(BACKEND, op)?;
        Ok(format!("{}{key}", self.inner.config.key_prefix))
    }

    /// Checks a slot out of the pool, bounded as a whole by `pool_timeout` +
    /// `socket_connect_timeout` (deadpool bounds each wait, `PING` check and connect on its own,
    /// but may check several idle connections in a row; this bounds their sum).
    async fn conn(&self, op: &'static str) -> Result<Slot> {
        let config = &self.inner.config;
        self.conn_within(op, config.pool_timeout() + config.connect_timeout())
            .await
    }

    async fn conn_within(&self, op: &'static str, limit: Duration) -> Result<Slot> {
        match tokio::time::timeout(limit, self.inner.pool.get()).await {
            Ok(got) => got
                .map(Slot)
                .map_err(|e| map_pool_error(e).with_backend(BACKEND).with_operation(op)),
            Err(_) => Err(StorageError::new(
                ErrorKind::Timeout,
                format!(
                    "no usable pooled connection within {:.3} s (pool_timeout + \
                     socket_connect_timeout, or the time left)",
                    limit.as_secs_f64()
                ),
            )
            .with_backend(BACKEND)
            .with_operation(op)),
        }
    }

    /// Sends `request` on `conn`, bounded by `limit` for all its round trips (a script may
    /// need three: `EVALSHA`, `SCRIPT LOAD`, `EVALSHA`). Running out of time is an I/O
    /// timeout, as the driver's own response timeout.
    async fn send<T: FromRedisValue>(
        conn: &mut MultiplexedConnection,
        request: &Request<'_>,
        limit: Duration,
    ) -> RedisResult<T> {
        let sending = async {
            match request {
                Request::Cmd(cmd) => cmd.query_async(conn).await,
                Request::Pipe(pipe) => pipe.query_async(conn).await,
                Request::Script(invocation) => invocation.invoke_async(conn).await,
            }
        };
        match tokio::time::timeout(limit, sending).await {
            Ok(result) => result,
            Err(_) => Err(timed_out(limit)),
        }
    }

    /// Maps a command's error. A socket that failed with an I/O error or timed out leaves the
    /// pool (it may be closed, or stuck behind an unanswered command). A write whose request
    /// may have reached the server (timeout, dropped connection) gets
    /// [`storage_core::WriteOutcome::Unknown`]; non-idempotent ones are then not retryable.
    fn failed(slot: Slot, op: &'static str, err: RedisError, access: Access) -> StorageError {
        let broken = is_broken(&err);
        if broken {
            slot.discard();
        }
        let sent = broken || err.is_timeout();
        let mapped = map_redis_error(err)
            .with_backend(BACKEND)
            .with_operation(op);
        match access {
            Access::Write { idempotent } if sent => mapped.with_outcome_unknown(idempotent),
            _ => mapped,
        }
    }

    /// Runs one command. A read-only command is retried once when it timed out (and
    /// `retry_on_timeout` is set) or when its pooled connection turned out to be closed.
    async fn query<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &Cmd,
        access: Access,
    ) -> Result<T> {
        traced(op, 1, self.run(op, Request::Cmd(cmd), access)).await
    }

    /// One request with the cache's bounds: a checkout within `pool_timeout` +
    /// `socket_connect_timeout`, then the round trips within `socket_timeout`; a read is
    /// retried once (see [`RedisCache::query`]).
    async fn run<T: FromRedisValue>(
        &self,
        op: &'static str,
        request: Request<'_>,
        access: Access,
    ) -> Result<T> {
        let mut retried = false;
        loop {
            let mut slot = self.conn(op).await?;
            let e = match Self::send(&mut slot, &request, self.inner.config.socket_timeout()).await
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let retry = matches!(access, Access::Read)
                && !retried
                && if e.is_timeout() {
                    self.inner.config.retry_on_timeout
                } else {
                    is_broken(&e)
                };
            let err = Self::failed(slot, op, e, access);
            if !retry {
                return Err(err);
            }
            tracing::debug!(backend = BACKEND, operation = op, error = %err, "retrying once");
            retried = true;
        }
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        op: &'static str,
        script: &Script,
        keys: &[String],
        args: &[&str],
        access: Access,
    ) -> Result<T> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(k);
        }
        for a in args {
            invocation.arg(*a);
        }
        traced(
            op,
            keys.len(),
            self.run(op, Request::Script(&invocation), access),
        )
        .await
    }

    /// The whole-checkout bound: `pool_timeout` + `socket_connect_timeout`.
    fn checkout_limit(&self) -> Duration {
        self.inner.config.pool_timeout() + self.inner.config.connect_timeout()
    }

    /// One attempt of [`Cache::acquire_lock`] within `left` (`None`: the usual bounds).
    /// `Ok(true)` when the key holds `token`.
    async fn lock_attempt(
        &self,
        pipe: &redis::Pipeline,
        token: &str,
        left: Option<Duration>,
        attempt: &mut LockAttempt,
    ) -> Result<bool> {
        const OP: &str = "acquire_lock";
        let start = Instant::now();
        let socket_timeout = self.inner.config.socket_timeout();
        let request = Request::Pipe(pipe);
        if let Some(conn) = attempt.lost.as_mut() {
            // Behind the unanswered attempt on its socket: this answer settles that one too.
            let limit = left.map_or(socket_timeout, |l| l.min(socket_timeout));
            return match Self::send::<(Option<String>,)>(conn, &request, limit).await {
                Ok((holder,)) => {
                    *attempt = LockAttempt::default();
                    Ok(holder.as_deref() == Some(token))
                }
                Err(e) => {
                    if !e.is_timeout() {
                        // The socket is gone; the next attempt takes a fresh one.
                        attempt.lost = None;
                    }
                    Err(map_redis_error(e)
                        .with_backend(BACKEND)
                        .with_operation(OP)
                        .with_outcome_unknown(true))
                }
            };
        }
        let checkout = left.map_or(self.checkout_limit(), |l| l.min(self.checkout_limit()));
        let mut slot = self.conn_within(OP, checkout).await?;
        let limit = left.map_or(socket_timeout, |l| {
            l.saturating_sub(start.elapsed()).min(socket_timeout)
        });
        match Self::send::<(Option<String>,)>(&mut slot, &request, limit).await {
            Ok((holder,)) => {
                attempt.unresolved = false;
                Ok(holder.as_deref() == Some(token))
            }
            Err(e) => {
                if e.is_timeout() {
                    attempt.lost = Some((*slot).clone());
                }
                if e.is_timeout() || is_broken(&e) {
                    attempt.unresolved = true;
                }
                Err(Self::failed(slot, OP, e, IDEMPOTENT))
            }
        }
    }

    /// Deletes the lock `key` if it holds `token`, in the background: on `lost` (the socket of
    /// the unanswered attempt, so Redis runs it after that attempt) or, when that socket is
    /// gone, on a pooled one. Best effort, bounded by the lock's own timeout: when it fails,
    /// the lock still expires after `timeout_secs`.
    fn abandon_lock(
        &self,
        key: String,
        token: String,
        lost: Option<MultiplexedConnection>,
        timeout_secs: u64,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.clone();
        let limit = Duration::from_secs(timeout_secs).max(self.inner.config.socket_timeout());
        runtime.spawn(async move {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(RELEASE_LOCK_LUA).arg(1).arg(&key).arg(&token);
            let cleanup = async {
                if let Some(mut conn) = lost {
                    match Self::send::<i64>(&mut conn, &Request::Cmd(&cmd), limit).await {
                        Ok(deleted) => return Ok(deleted),
                        Err(e) if e.is_timeout() => return Err(map_redis_error(e)),
                        Err(_) => {}
                    }
                }
                cache
                    .run::<i64>("acquire_lock", Request::Cmd(&cmd), IDEMPOTENT)
                    .await
            };
            match tokio::time::timeout(limit, cleanup).await {
                Ok(Ok(deleted)) => tracing::debug!(
                    backend = BACKEND,
                    key = %key,
                    deleted,
                    "removed the lock of an abandoned acquire_lock attempt (if it was set)"
                ),
                Ok(Err(e)) => tracing::warn!(
                    backend = BACKEND,
                    key = %key,
                    error = %e,
                    "could not remove an abandoned acquire_lock attempt; it expires by itself"
                ),
                Err(_) => tracing::warn!(
                    backend = BACKEND,
                    key = %key,
                    "removing an abandoned acquire_lock attempt timed out; it expires by itself"
                ),
            }
        });
    }

    fn set_cmd(&self, key: String, value: &str, options: SetOptions) -> Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        match options.expiry {
            Expiry::Default if self.inner.config.default_ttl > 0 => {
                cmd.arg("EX").arg(self.inner.config.default_ttl);
            }
            Expiry::Default | Expiry::Never => {}
            Expiry::Millis(ms) => {
                cmd.arg("PX").arg(ms);
            }
        }
        if options.nx {
            cmd.arg("NX");
        }
        if options.xx {
            cmd.arg("XX");
        }
        cmd
    }

    async fn scan(&self, op: &'static str, pattern: &str) -> Result<Vec<String>> {
        let mut cursor: u64 = 0;
        let mut found = BTreeSet::new();
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<String>) = self.query(op, &cmd, READ).await?;
            found.extend(keys);
            if next == 0 {
                return Ok(found.into_iter().collect());
            }
            cursor = next;
        }
    }

    fn prefix_pattern(&self) -> String {
        format!("{}*", escape_glob(&self.inner.config.key_prefix))
    }

    fn add_op(&self, pipe: &mut redis::Pipeline, op: &PipelineOp) -> Result<()> {
        let prefix = &self.inner.config.key_prefix;
        let full = |k: &str| format!("{prefix}{k}");
        match op {
            PipelineOp::Set { key, value, ttl } => {
                pipe.add_command(self.set_cmd(full(key), value, SetOptions::ttl(*ttl)));
            }
            PipelineOp::Del { keys } => {
                pipe.cmd("DEL")
                    .arg(keys.iter().map(|k| full(k)).collect::<Vec<_>>());
            }
            PipelineOp::Expire { key, ttl } => {
                pipe.cmd("EXPIRE").arg(full(key)).arg(*ttl);
            }
            PipelineOp::Hset { key, fields } => {
                let c = pipe.cmd("HSET").arg(full(key));
                for (f, v) in fields {
                    c.arg(f).arg(v);
                }
            }
            PipelineOp::Zadd { key, members } => {
                let c = pipe.cmd("ZADD").arg(full(key));
                for (m, s) in members {
                    c.arg(score_arg(*s)).arg(m);
                }
            }
            PipelineOp::Rpush { key, values } => {
                pipe.cmd("RPUSH").arg(full(key)).arg(values);
            }
            PipelineOp::Incr { key, amount } => {
                pipe.cmd("INCRBY").arg(full(key)).arg(*amount);
            }
            PipelineOp::Sadd { key, members } => {
                pipe.cmd("SADD").arg(full(key)).arg(members);
            }
            #[allow(unreachable_patterns)]
            other => {
                return Err(StorageError::unsupported(format!(
                    "pipeline command {} is not supported by redis",
                    other.name()
                )));
            }
        }
        Ok(())
    }
}

/// A score or bound as Redis parses it (`+inf`/`-inf` for infinities).
/// Runs one round trip inside a span `cache{backend="redis", op, count}`, recording its
/// latency in milliseconds at debug level and a failure at warn level. With no subscriber
/// interested, the span costs one relaxed load of its callsite's interest.
async fn traced<T>(
    op: &'static str,
    count: usize,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let span = tracing::debug_span!("cache", backend = BACKEND, op, count);
    if span.is_disabled() {
        return fut.await;
    }
    async move {
        let start = Instant::now();
        let result = fut.await;
        let latency_ms = start.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(_) => tracing::debug!(latency_ms, "ok"),
            Err(e) => tracing::warn!(latency_ms, error = %e, "failed"),
        }
        result
    }
    .instrument(span)
    .await
}

fn score_arg(score: f64) -> String {
    if score == f64::INFINITY {
        "+inf".to_owned()
    } else if score == f64::NEG_INFINITY {
        "-inf".to_owned()
    } else {
        format!("{score}")
    }
}

fn parse_score(text: &str) -> Result<f64> {
    text.parse::<f64>()
        .map_err(|_| StorageError::data_corrupted(format!("redis returned {text:?} as a score")))
}

/// `[member, score, member, score, ...]` (a `WITHSCORES` reply) as pairs.
fn pairs(flat: Vec<String>) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        out.push((m, parse_score(&s)?));
    }
    Ok(out)
}

/// A script reply as JSON.
fn value_to_json(value: Value) -> Result<Json> {
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Int(i) => Json::from(i),
        Value::BulkString(bytes) => Json::String(String::from_utf8(bytes).map_err(|_| {
            StorageError::data_corrupted("the script returned a string that is not UTF-8")
        })?),
        Value::SimpleString(s) => Json::String(s),
        Value::Okay => Json::String("OK".to_owned()),
        Value::Double(d) => Json::from(d),
        Value::Boolean(b) => Json::Bool(b),
        Value::VerbatimString { text, .. } => Json::String(text),
        Value::Array(items) | Value::Set(items) => Json::Array(
            items
                .into_iter()
                .map(value_to_json)
                .collect::<Result<_>>()?,
        ),
        Value::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                let key = match value_to_json(k)? {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                map.insert(key, value_to_json(v)?);
            }
            Json::Object(map)
        }
        Value::Attribute { data, .. } => value_to_json(*data)?,
        Value::ServerError(e) => {
            return Err(map_redis_error(redis::RedisError::from(e)));
        }
        other => {
            return Err(StorageError::unsupported(format!(
                "script reply of an unsupported type: {other:?}"
            )));
        }
    })
}

fn pipeline_int(value: &Value) -> i64 {
    match value {
        Value::Int(n) => *n,
        Value::Okay | Value::SimpleString(_) => 1,
        _ => 0,
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn key_prefix(&self) -> &str {
        &self.inner.config.key_prefix
    }

    async fn is_connected(&self) -> bool {
        let limit = self.inner.config.connect_timeout();
        matches!(tokio::time::timeout(limit, self.ping()).await, Ok(Ok(())))
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.k("get", key)?);
        self.query("get", &cmd, READ).await
    }

    async fn set_with(&self, key: &str, value: &str, options: SetOptions) -> Result<bool> {
        options.check().context(BACKEND, "set")?;
        let cmd = self.set_cmd(self.k("set", key)?, value, options);
        let reply: Value = self.query("set", &cmd, IDEMPOTENT).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    async fn delete(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let full = keys
            .iter()
            .map(|k| self.k("delete", k))
            .collect::<Result<Vec<_>>>()?;
        let mut cmd = redis::cmd("DEL");
        cmd.arg(full);
        self.query("delete", &cmd, IDEMPOTENT).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.k("exists", key)?);
        let n: i64 = self.query("exists", &cmd, READ).await?;
        Ok(n > 0)
    }

    async fn expire(&self, key: &str, ttl: u64) -> Result<bool> {
        let k = self.k("expire", key)?;
        check_ttl(ttl).context(BACKEND, "expire")?;
        let mut cmd = redis::cmd("EXPIRE");
        cmd.arg(k).arg(ttl);
        self.query("expire", &cmd, IDEMPOTENT).await
    }

    async fn ttl(&self, key: &str) -> Result<i64> {
        let mut cmd = redis::cmd("TTL");
        cmd.arg(self.k("ttl", key)?);
        self.query("ttl", &cmd, READ).await
    }

    async fn getset(&self, key: &str, value: &str) -> Result<Option<String>> {
        let mut cmd = redis::cmd("GETSET");
        cmd.arg(self.k("getset", key)?).arg(value);
        self.query("getset", &cmd, IDEMPOTENT).await
    }

    async fn incr(&self, key: &str, amount: i64) -> Result<i64> {
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(self.k("incr", key)?).arg(amount);
        self.query("incr", &cmd, NOT_IDEMPOTENT).await
    }

    async fn decr(&self, key: &str, amount: i64) -> Result<i64> {
        let mut cmd = redis::cmd("DECRBY");
        cmd.arg(self.k("decr", key)?).arg(amount);
        self.query("decr", &cmd, NOT_IDEMPOTENT).await
    }

    async fn lpush(&self, key: &str, values: &[&str]) -> Result<u64> {
        let k = self.k("lpush", key)?;
        check_not_empty(values, "values").context(BACKEND, "lpush")?;
        let mut cmd = redis::cmd("LPUSH");
        cmd.arg(k).arg(values);
        self.query("lpush", &cmd, NOT_IDEMPOTENT).await
    }

    async fn rpush(&self, key: &str, values: &[&str]) -> Result<u64> {
        let k = self.k("rpush", key)?;
        check_not_empty(values, "values").context(BACKEND, "rpush")?;
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(k).arg(values);
        self.query("rpush", &cmd, NOT_IDEMPOTENT).await
    }

    async fn lpop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let k = self.k("lpop", key)?;
        check_count(count).context(BACKEND, "lpop")?;
        let mut cmd = redis::cmd("LPOP");
        // Redis takes a count up to i64::MAX; no list is longer, so a larger one means "all".
        cmd.arg(k).arg(count.min(i64::MAX as usize));
        let items: Option<Vec<String>> = self.query("lpop", &cmd, NOT_IDEMPOTENT).await?;
        Ok(items.unwrap_or_default())
    }

    async fn rpop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        let k = self.k("rpop", key)?;
        check_count(count).context(BACKEND, "rpop")?;
        let mut cmd = redis::cmd("RPOP");
        cmd.arg(k).arg(count.min(i64::MAX as usize));
        let items: Option<Vec<String>> = self.query("rpop", &cmd, NOT_IDEMPOTENT).await?;
        Ok(items.unwrap_or_default())
    }

    async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(self.k("lrange", key)?).arg(start).arg(stop);
        self.query("lrange", &cmd, READ).await
    }

    async fn llen(&self, key: &str) -> Result<u64> {
        let mut cmd = redis::cmd("LLEN");
        cmd.arg(self.k("llen", key)?);
        self.query("llen", &cmd, READ).await
    }

    async fn ltrim(&self, key: &str, start: i64, stop: i64) -> Result<()> {
        let mut cmd = redis::cmd("LTRIM");
        cmd.arg(self.k("ltrim", key)?).arg(start).arg(stop);
        self.query("ltrim", &cmd, IDEMPOTENT).await
    }

    async fn rpush_expire_llen(&self, key: &str, value: &str, ttl: u64) -> Result<u64> {
        let k = self.k("rpush_expire_llen", key)?;
        if ttl == 0 {
            return Err(StorageError::invalid_input("ttl must be at least 1 second")
                .with_backend(BACKEND)
                .with_operation("rpush_expire_llen"));
        }
        check_ttl(ttl).context(BACKEND, "rpush_expire_llen")?;
        let ttl = ttl.to_string();
        self.invoke(
            "rpush_expire_llen",
            &self.inner.rpush_expire_llen,
            &[k],
            &[value, &ttl],
            NOT_IDEMPOTENT,
        )
        .await
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<String>> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.k("hget", key)?).arg(field);
        self.query("hget", &cmd, READ).await
    }

    async fn hset(&self, key: &str, field: &str, value: &str) -> Result<bool> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.k("hset", key)?).arg(field).arg(value);
        let added: i64 = self.query("hset", &cmd, IDEMPOTENT).await?;
        Ok(added == 1)
    }

    async fn hmset(&self, key: &str, fields: &[(&str, &str)]) -> Result<()> {
        let k = self.k("hmset", key)?;
        check_not_empty(fields, "fields").context(BACKEND, "hmset")?;
        let mut cmd = redis::cmd("HSET");
        cmd.arg(k);
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        self.query::<i64>("hmset", &cmd, IDEMPOTENT).await.map(drop)
    }

    async fn hgetall(&self, key: &str) -> Result<HashMap<String, String>> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.k("hgetall", key)?);
        self.query("hgetall", &cmd, READ).await
    }

    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64> {
        let k = self.k("hdel", key)?;
        if fields.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(k).arg(fields);
        self.query("hdel", &cmd, IDEMPOTENT).await
    }

    async fn hexists(&self, key: &str, field: &str) -> Result<bool> {
        let mut cmd = redis::cmd("HEXISTS");
        cmd.arg(self.k("hexists", key)?).arg(field);
        self.query("hexists", &cmd, READ).await
    }

    async fn hlen(&self, key: &str) -> Result<u64> {
        let mut cmd = redis::cmd("HLEN");
        cmd.arg(self.k("hlen", key)?);
        self.query("hlen", &cmd, READ).await
    }

    async fn hkeys(&self, key: &str) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("HKEYS");
        cmd.arg(self.k("hkeys", key)?);
        self.query("hkeys", &cmd, READ).await
    }

    async fn hvals(&self, key: &str) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("HVALS");
        cmd.arg(self.k("hvals", key)?);
        self.query("hvals", &cmd, READ).await
    }

    async fn hincrby(&self, key: &str, field: &str, amount: i64) -> Result<i64> {
        let mut cmd = redis::cmd("HINCRBY");
        cmd.arg(self.k("hincrby", key)?).arg(field).arg(amount);
        self.query("hincrby", &cmd, NOT_IDEMPOTENT).await
    }

    async fn sadd(&self, key: &str, members: &[&str]) -> Result<u64> {
        let k = self.k("sadd", key)?;
        check_not_empty(members, "members").context(BACKEND, "sadd")?;
        let mut cmd = redis::cmd("SADD");
        cmd.arg(k).arg(members);
        self.query("sadd", &cmd, IDEMPOTENT).await
    }

    async fn srem(&self, key: &str, members: &[&str]) -> Result<u64> {
        let k = self.k("srem", key)?;
        if members.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("SREM");
        cmd.arg(k).arg(members);
        self.query("srem", &cmd, IDEMPOTENT).await
    }

    async fn smembers(&self, key: &str) -> Result<HashSet<String>> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.k("smembers", key)?);
        self.query("smembers", &cmd, READ).await
    }

    async fn sismember(&self, key: &str, member: &str) -> Result<bool> {
        let mut cmd = redis::cmd("SISMEMBER");
        cmd.arg(self.k("sismember", key)?).arg(member);
        self.query("sismember", &cmd, READ).await
    }

    async fn scard(&self, key: &str) -> Result<u64> {
        let mut cmd = redis::cmd("SCARD");
        cmd.arg(self.k("scard", key)?);
        self.query("scard", &cmd, READ).await
    }

    async fn zadd(&self, key: &str, members: &[(&str, f64)]) -> Result<u64> {
        let k = self.k("zadd", key)?;
        check_not_empty(members, "members")
            .and_then(|()| {
                members
                    .iter()
                    .try_for_each(|(_, s)| check_score(*s, "score"))
            })
            .context(BACKEND, "zadd")?;
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(k);
        for (m, s) in members {
            cmd.arg(score_arg(*s)).arg(*m);
        }
        self.query("zadd", &cmd, IDEMPOTENT).await
    }

    async fn zrem(&self, key: &str, members: &[&str]) -> Result<u64> {
        let k = self.k("zrem", key)?;
        if members.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(k).arg(members);
        self.query("zrem", &cmd, IDEMPOTENT).await
    }

    async fn zrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.k("zrange", key)?).arg(start).arg(stop);
        self.query("zrange", &cmd, READ).await
    }

    async fn zrange_withscores(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<(String, f64)>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.k("zrange", key)?)
            .arg(start)
            .arg(stop)
            .arg("WITHSCORES");
        pairs(self.query("zrange", &cmd, READ).await?).context(BACKEND, "zrange")
    }

    async fn zrangebyscore(&self, key: &str, min: f64, max: f64) -> Result<Vec<String>> {
        let k = self.k("zrangebyscore", key)?;
        check_score(min, "min")
            .and_then(|()| check_score(max, "max"))
            .context(BACKEND, "zrangebyscore")?;
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(k).arg(score_arg(min)).arg(score_arg(max));
        self.query("zrangebyscore", &cmd, READ).await
    }

    async fn zrangebyscore_withscores(
        &self,
        key: &str,
        min: f64,
        max: f64,
    ) -> Result<Vec<(String, f64)>> {
        let k = self.k("zrangebyscore", key)?;
        check_score(min, "min")
            .and_then(|()| check_score(max, "max"))
            .context(BACKEND, "zrangebyscore")?;
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(k)
            .arg(score_arg(min))
            .arg(score_arg(max))
            .arg("WITHSCORES");
        pairs(self.query("zrangebyscore", &cmd, READ).await?).context(BACKEND, "zrangebyscore")
    }

    async fn zrem_range_by_score(&self, key: &str, min: f64, max: f64) -> Result<u64> {
        let k = self.k("zrem_range_by_score", key)?;
        check_score(min, "min")
            .and_then(|()| check_score(max, "max"))
            .context(BACKEND, "zrem_range_by_score")?;
        let mut cmd = redis::cmd("ZREMRANGEBYSCORE");
        cmd.arg(k).arg(score_arg(min)).arg(score_arg(max));
        self.query("zrem_range_by_score", &cmd, IDEMPOTENT).await
    }

    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>> {
        let mut cmd = redis::cmd("ZSCORE");
        cmd.arg(self.k("zscore", key)?).arg(member);
        let score: Option<String> = self.query("zscore", &cmd, READ).await?;
        score
            .map(|s| parse_score(&s))
            .transpose()
            .context(BACKEND, "zscore")
    }

    async fn zcard(&self, key: &str) -> Result<u64> {
        let mut cmd = redis::cmd("ZCARD");
        cmd.arg(self.k("zcard", key)?);
        self.query("zcard", &cmd, READ).await
    }

    /// See [`Cache::acquire_lock`]. Each attempt is one round trip, `SET key token NX PX ttl`
    /// pipelined with `GET key`: the lock is ours when the key holds this call's token, also
    /// when an earlier attempt of the call set it but its answer was lost. After an
    /// unanswered attempt the next attempts go on the same socket, so Redis executes them
    /// after it and their answer settles it. When the call gives up while an attempt may have
    /// set the lock, a compare-and-delete of the token is queued on that socket in the
    /// background, so no lock is left that the caller cannot release.
    async fn acquire_lock(
        &self,
        name: &str,
        timeout_secs: u64,
        blocking: bool,
        blocking_timeout_secs: f64,
    ) -> Result<Option<String>> {
        const OP: &str = "acquire_lock";
        check_acquire(name, timeout_secs, blocking_timeout_secs).context(BACKEND, OP)?;
        let key = self.k(OP, &lock_key(name))?;
        let ttl_ms = timeout_secs.checked_mul(1000).ok_or_else(|| {
            StorageError::invalid_input(format!("timeout_secs {timeout_secs} is too large"))
                .with_backend(BACKEND)
                .with_operation(OP)
        })?;
        let token = new_token();
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .ignore();
        pipe.cmd("GET").arg(&key);
        traced(OP, 1, async {
            let mut schedule = Schedule::new(blocking, blocking_timeout_secs);
            let mut attempt = LockAttempt::default();
            let mut answered = false;
            let mut last_err: Option<StorageError>;
            loop {
                match self
                    .lock_attempt(&pipe, &token, schedule.time_left(), &mut attempt)
                    .await
                {
                    Ok(true) => return Ok(Some(token)),
                    Ok(false) => {
                        answered = true;
                        last_err = None;
                    }
                    Err(e) => {
                        let transient = e.is_retryable();
                        last_err = Some(e);
                        if !transient {
                            break;
                        }
                    }
                }
                if !schedule.wait().await {
                    break;
                }
            }
            let unresolved = attempt.unresolved;
            if unresolved {
                self.abandon_lock(key, token.clone(), attempt.lost, timeout_secs);
            }
            match last_err {
                Some(e) if !(answered && e.is_retryable()) => {
                    let within = if blocking && blocking_timeout_secs > 0.0 {
                        format!("blocking_timeout_secs ({blocking_timeout_secs} s)")
                    } else {
                        format!(
                            "one attempt (socket_timeout {} s)",
                            self.inner.config.socket_timeout
                        )
                    };
                    let mut err = StorageError::new(
                        e.kind(),
                        format!("lock {name:?} not acquired within {within}"),
                    )
                    .set_retryable(e.is_retryable())
                    .with_source(e);
                    if unresolved {
                        // Each call has its own token, and the abandoned one is being removed:
                        // calling again is safe.
                        err = StorageError::new(
                            err.kind(),
                            format!(
                                "{}; an unanswered attempt may have set it, so a \
                                 compare-and-delete of this call's token was queued",
                                err.message()
                            ),
                        )
                        .set_retryable(err.is_retryable())
                        .with_source(err)
                        .with_outcome_unknown(true);
                    }
                    Err(err.with_backend(BACKEND).with_operation(OP))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn release_lock(&self, name: &str, token: &str) -> Result<bool> {
        check_release(name, token).context(BACKEND, "release_lock")?;
        let k = self.k("release_lock", &lock_key(name))?;
        let deleted: i64 = self
            .invoke(
                "release_lock",
                &self.inner.release_lock,
                &[k],
                &[token],
                IDEMPOTENT,
            )
            .await?;
        Ok(deleted == 1)
    }

    async fn eval_lua(&self, script: &str, keys: &[&str], args: &[&str]) -> Result<Json> {
        if script.trim().is_empty() {
            return Err(StorageError::invalid_input("script must not be empty")
                .with_backend(BACKEND)
                .with_operation("eval_lua"));
        }
        let full = keys
            .iter()
            .map(|k| self.k("eval_lua", k))
            .collect::<Result<Vec<_>>>()?;
        let reply: Value = self
            .invoke(
                "eval_lua",
                &Script::new(script),
                &full,
                args,
                NOT_IDEMPOTENT,
            )
            .await?;
        value_to_json(reply).context(BACKEND, "eval_lua")
    }

    fn pipeline(&self) -> Pipeline<'_> {
        Pipeline::new(self)
    }

    async fn execute_pipeline(&self, ops: &[PipelineOp], atomic: bool) -> Result<Vec<i64>> {
        validate_all(ops).context(BACKEND, "execute_pipeline")?;
        let mut pipe = redis::pipe();
        if atomic {
            pipe.atomic();
        }
        for op in ops {
            self.add_op(&mut pipe, op)
                .context(BACKEND, "execute_pipeline")?;
        }
        let idempotent = ops.iter().all(PipelineOp::is_idempotent);
        let access = Access::Write { idempotent };
        let replies: Vec<Value> = traced(
            "execute_pipeline",
            ops.len(),
            self.run("execute_pipeline", Request::Pipe(&pipe), access),
        )
        .await
        .map_err(|e| {
            // A command refused by the server does not undo the others (not even inside
            // MULTI/EXEC): with more than one command, some may have been applied.
            if ops.len() > 1 && e.outcome() == WriteOutcome::NotApplied {
                e.with_outcome_unknown(idempotent)
            } else {
                e
            }
        })?;
        Ok(replies.iter().map(pipeline_int).collect())
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        if pattern.is_empty() {
            return Err(StorageError::invalid_input("pattern must not be empty")
                .with_backend(BACKEND)
                .with_operation("keys"));
        }
        let prefix = &self.inner.config.key_prefix;
        let full = format!("{}{pattern}", escape_glob(prefix));
        let keys = self.scan("keys", &full).await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(prefix.as_str()).map(str::to_owned))
            .collect())
    }

    async fn flush_prefix(&self) -> Result<u64> {
        if self.inner.config.key_prefix.is_empty() {
            return Err(StorageError::invalid_input(
                "refusing to clear a cache whose key prefix is empty (that is the whole database)",
            )
            .with_backend(BACKEND)
            .with_operation("flush_prefix"));
        }
        let keys = self.scan("flush_prefix", &self.prefix_pattern()).await?;
        let mut removed = 0;
        for chunk in keys.chunks(500) {
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(chunk);
            removed += self.query::<u64>("flush_prefix", &cmd, IDEMPOTENT).await?;
        }
        Ok(removed)
    }

    async fn info(&self) -> Result<BTreeMap<String, String>> {
        let text: String = self.query("info", &redis::cmd("INFO"), READ).await?;
        Ok(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect())
    }

    async fn close(&self) -> Result<()> {
        self.inner.pool.close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_and_replies_convert() {
        assert_eq!(score_arg(f64::INFINITY), "+inf");
        assert_eq!(score_arg(f64::NEG_INFINITY), "-inf");
        assert_eq!(score_arg(1.5), "1.5");
        assert_eq!(parse_score("inf").unwrap(), f64::INFINITY);
        assert_eq!(parse_score("-inf").unwrap(), f64::NEG_INFINITY);
        assert!(parse_score("x").is_err());
        let pairs = pairs(vec!["a".into(), "1".into(), "b".into(), "2.5".into()]).unwrap();
        assert_eq!(pairs, vec![("a".to_owned(), 1.0), ("b".to_owned(), 2.5)]);
        let v = value_to_json(Value::Array(vec![
            Value::Nil,
            Value::Int(3),
            Value::BulkString(b"x".to_vec()),
            Value::Okay,
        ]))
        .unwrap();
        assert_eq!(v, serde_json::json!([null, 3, "x", "OK"]));
        assert!(value_to_json(Value::BulkString(vec![0xff])).is_err());
    }

    #[test]
    fn new_validates_without_connecting() {
        let cache = RedisCache::new(RedisCacheConfig::default()).unwrap();
        assert_eq!(cache.key_prefix(), "opencontext:");
        let bad = RedisCacheConfig {
            max_connections: 0,
            ..RedisCacheConfig::default()
        };
        assert_eq!(RedisCache::new(bad).unwrap_err().kind(), ErrorKind::Config);
    }
}
