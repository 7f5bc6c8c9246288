//! Pipelines: several commands in one round trip, keys prefixed like every other call.

use storage_core::{Result, StorageError};

use crate::cache::Cache;
use crate::validate::{check_key, check_not_empty, check_score, check_ttl};

/// One command of a [`Pipeline`]. Keys are given without the cache's prefix.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PipelineOp {
    /// `SET key value` with a TTL as in [`Cache::set`]; result 1.
    Set {
        /// Key.
        key: String,
        /// Value.
        value: String,
        /// `None`: default TTL; `Some(0)`: no expiry; `Some(n)`: `n` seconds.
        ttl: Option<u64>,
    },
    /// `DEL keys...`; result: how many existed.
    Del {
        /// Keys (at least one).
        keys: Vec<String>,
    },
    /// `EXPIRE key ttl`; result 1 when the key exists, else 0.
    Expire {
        /// Key.
        key: String,
        /// Seconds (0 deletes the key).
        ttl: u64,
    },
    /// `HSET key field value...`; result: how many fields were new.
    Hset {
        /// Key.
        key: String,
        /// Field/value pairs (at least one).
        fields: Vec<(String, String)>,
    },
    /// `ZADD key score member...`; result: how many members were new.
    Zadd {
        /// Key.
        key: String,
        /// Member/score pairs (at least one, no NaN).
        members: Vec<(String, f64)>,
    },
    /// `RPUSH key values...`; result: the new length.
    Rpush {
        /// Key.
        key: String,
        /// Values (at least one).
        values: Vec<String>,
    },
    /// `INCRBY key amount`; result: the new value.
    Incr {
        /// Key.
        key: String,
        /// Amount added.
        amount: i64,
    },
    /// `SADD key members...`; result: how many members were new.
    Sadd {
        /// Key.
        key: String,
        /// Members (at least one).
        members: Vec<String>,
    },
}

impl PipelineOp {
    /// The command's name, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            PipelineOp::Set { .. } => "set",
            PipelineOp::Del { .. } => "del",
            PipelineOp::Expire { .. } => "expire",
            PipelineOp::Hset { .. } => "hset",
            PipelineOp::Zadd { .. } => "zadd",
            PipelineOp::Rpush { .. } => "rpush",
            PipelineOp::Incr { .. } => "incr",
            PipelineOp::Sadd { .. } => "sadd",
        }
    }

    /// Whether applying the command twice leaves the same stored state as applying it once
    /// (`incr` and `rpush` do not). Decides whether a write with an unknown outcome may be
    /// retried.
    pub fn is_idempotent(&self) -> bool {
        !matches!(self, PipelineOp::Incr { .. } | PipelineOp::Rpush { .. })
    }

    /// Checks keys and arguments as the single-command methods do.
    pub(crate) fn validate(&self) -> Result<()> {
        let result = match self {
            PipelineOp::Set { key, ttl, .. } => {
                check_key(key).and_then(|()| check_ttl(ttl.unwrap_or(0)))
            }
            PipelineOp::Expire { key, ttl } => check_key(key).and_then(|()| check_ttl(*ttl)),
            PipelineOp::Incr { key, .. } => check_key(key),
            PipelineOp::Del { keys } => check_not_empty(keys, "keys")
                .and_then(|()| keys.iter().try_for_each(|k| check_key(k))),
            PipelineOp::Hset { key, fields } => {
                check_key(key).and_then(|()| check_not_empty(fields, "fields"))
            }
            PipelineOp::Zadd { key, members } => check_key(key)
                .and_then(|()| check_not_empty(members, "members"))
                .and_then(|()| {
                    members
                        .iter()
                        .try_for_each(|(_, s)| check_score(*s, "score"))
                }),
            PipelineOp::Rpush { key, values } => {
                check_key(key).and_then(|()| check_not_empty(values, "values"))
            }
            PipelineOp::Sadd { key, members } => {
                check_key(key).and_then(|()| check_not_empty(members, "members"))
            }
        };
        result.map_err(|e| {
            StorageError::invalid_input(format!("pipeline {}: {}", self.name(), e.message()))
        })
    }
}

/// Validates every command of a pipeline before any runs.
pub(crate) fn validate_all(ops: &[PipelineOp]) -> Result<()> {
    ops.iter().try_for_each(PipelineOp::validate)
}

/// Commands sent together in one round trip ([`Cache::pipeline`]); keys are prefixed.
///
/// ```no_run
/// # async fn f(cache: &dyn storage_cache::Cache) -> storage_core::Result<()> {
/// let results = cache
///     .pipeline()
///     .hset("task:1", "state", "queued")
///     .expire("task:1", 3600)
///     .zadd("queue", "task:1", 1_700_000_000.0)
///     .execute()
///     .await?;
/// assert_eq!(results.len(), 3);
/// # Ok(()) }
/// ```
///
/// Not atomic by default (as the original's `pipeline(transaction=False)`): other clients'
/// commands may interleave, and when one command fails (e.g. a key of another type) the others
/// still run and the first error is returned. [`Pipeline::atomic`] wraps the commands in
/// `MULTI`/`EXEC`. [`crate::InMemoryCache`] runs them one after the other under one lock.
#[must_use = "a pipeline does nothing until executed"]
pub struct Pipeline<'a> {
    cache: &'a dyn Cache,
    ops: Vec<PipelineOp>,
    atomic: bool,
}

impl std::fmt::Debug for Pipeline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("backend", &self.cache.backend_name())
            .field("ops", &self.ops)
            .field("atomic", &self.atomic)
            .finish()
    }
}

impl<'a> Pipeline<'a> {
    /// An empty pipeline on `cache`.
    pub fn new(cache: &'a dyn Cache) -> Self {
        Pipeline {
            cache,
            ops: Vec::new(),
            atomic: false,
        }
    }

    /// Adds a command.
    pub fn push(&mut self, op: PipelineOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Runs the commands as one `MULTI`/`EXEC` transaction.
    pub fn atomic(&mut self) -> &mut Self {
        self.atomic = true;
        self
    }

    /// `HSET key field value`.
    pub fn hset(&mut self, key: &str, field: &str, value: &str) -> &mut Self {
        self.hset_multiple(key, &[(field, value)])
    }

    /// `HSET key field value...` (the original's `hset(key, mapping=...)`).
    pub fn hset_multiple(&mut self, key: &str, fields: &[(&str, &str)]) -> &mut Self {
        self.push(PipelineOp::Hset {
            key: key.to_owned(),
            fields: fields
                .iter()
                .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
                .collect(),
        })
    }

    /// `EXPIRE key ttl` (seconds).
    pub fn expire(&mut self, key: &str, ttl: u64) -> &mut Self {
        self.push(PipelineOp::Expire {
            key: key.to_owned(),
            ttl,
        })
    }

    /// `ZADD key score member`.
    pub fn zadd(&mut self, key: &str, member: &str, score: f64) -> &mut Self {
        self.zadd_multiple(key, &[(member, score)])
    }

    /// `ZADD key score member...` (the original's `zadd(key, mapping)`).
    pub fn zadd_multiple(&mut self, key: &str, members: &[(&str, f64)]) -> &mut Self {
        self.push(PipelineOp::Zadd {
            key: key.to_owned(),
            members: members.iter().map(|(m, s)| ((*m).to_owned(), *s)).collect(),
        })
    }

    /// `RPUSH key values...`.
    pub fn rpush(&mut self, key: &str, values: &[&str]) -> &mut Self {
        self.push(PipelineOp::Rpush {
            key: key.to_owned(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        })
    }

    /// `SET key value` with a TTL as in [`Cache::set`].
    pub fn set(&mut self, key: &str, value: &str, ttl: Option<u64>) -> &mut Self {
        self.push(PipelineOp::Set {
            key: key.to_owned(),
            value: value.to_owned(),
            ttl,
        })
    }

    /// `DEL key`.
    pub fn del(&mut self, key: &str) -> &mut Self {
        self.push(PipelineOp::Del {
            keys: vec![key.to_owned()],
        })
    }

    /// `INCRBY key amount`.
    pub fn incr(&mut self, key: &str, amount: i64) -> &mut Self {
        self.push(PipelineOp::Incr {
            key: key.to_owned(),
            amount,
        })
    }

    /// `SADD key members...`.
    pub fn sadd(&mut self, key: &str, members: &[&str]) -> &mut Self {
        self.push(PipelineOp::Sadd {
            key: key.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        })
    }

    /// The commands added so far.
    pub fn ops(&self) -> &[PipelineOp] {
        &self.ops
    }

    /// Runs the commands in one round trip and returns one integer per command, in order
    /// (see [`PipelineOp`] for each command's result). An empty pipeline returns an empty
    /// vector without contacting the server.
    ///
    /// # Errors
    /// `InvalidInput` naming the command when one is malformed (nothing runs); otherwise the
    /// first command's error (see the type's documentation for what ran).
    pub async fn execute(&self) -> Result<Vec<i64>> {
        if self.ops.is_empty() {
            return Ok(Vec::new());
        }
        self.cache.execute_pipeline(&self.ops, self.atomic).await
    }
}
