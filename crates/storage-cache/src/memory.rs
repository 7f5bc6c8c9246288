//! [`InMemoryCache`]: the process-local implementation of [`Cache`].

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value as Json;
use storage_core::{ErrorKind, Result, ResultExt, StorageError};

use crate::cache::{Cache, Expiry, SetOptions};
use crate::config::RedisCacheConfig;
use crate::glob::glob_match;
use crate::lock::{check_release, lock_key};
use crate::pipeline::{Pipeline, PipelineOp, validate_all};
use crate::validate::{
    check_count, check_key, check_not_empty, check_score, check_ttl, index_range, not_an_integer,
    overflow, parse_redis_int, wrong_type,
};

const BACKEND: &str = "memory";

/// The smallest number of keys at which expired keys are swept in bulk.
const MIN_SWEEP: usize = 1024;

/// A [`Cache`] in process memory, with the semantics of [`crate::RedisCache`]: key prefix,
/// default TTL, expiry, the five value types, `WRONGTYPE` errors, locks with tokens,
/// `rpush_expire_llen`, pipelines. Not shared between processes.
///
/// Expiry is checked on every access (an expired key is invisible and removed), and expired
/// keys are swept in bulk whenever the number of keys has doubled since the last sweep, so
/// keys that are never read again do not accumulate. Generic Lua ([`Cache::eval_lua`]) is
/// `Unsupported`.
///
/// Clones share the data. [`InMemoryCache::with_prefix`] gives a view with another prefix on
/// the same data, like two `RedisCache`s with different prefixes on one server.
#[derive(Clone)]
pub struct InMemoryCache {
    store: Arc<Mutex<Store>>,
    prefix: Arc<str>,
    default_ttl: u64,
    closed: Arc<AtomicBool>,
}

impl fmt::Debug for InMemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryCache")
            .field("prefix", &self.prefix)
            .field("default_ttl", &self.default_ttl)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for InMemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryCache {
    /// An empty cache with the defaults of [`RedisCacheConfig`] (prefix `opencontext:`,
    /// default TTL 3600 s).
    pub fn new() -> Self {
        let d = RedisCacheConfig::default();
        Self::with_settings(d.key_prefix, d.default_ttl)
    }

    /// An empty cache with `key_prefix` and `default_ttl` (seconds, 0 = no expiry; above
    /// [`crate::MAX_TTL_SECS`] it is lowered to that limit).
    pub fn with_settings(key_prefix: impl Into<String>, default_ttl: u64) -> Self {
        InMemoryCache {
            store: Arc::new(Mutex::new(Store::default())),
            prefix: Arc::from(key_prefix.into()),
            default_ttl: default_ttl.min(crate::MAX_TTL_SECS),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// An empty cache with the key prefix and default TTL of `config` (the fallback of
    /// [`crate::get_cache`]).
    pub fn from_config(config: &RedisCacheConfig) -> Self {
        Self::with_settings(config.key_prefix.clone(), config.default_ttl)
    }

    /// A view of the same data under another key prefix (closing it leaves this one open).
    pub fn with_prefix(&self, key_prefix: impl Into<String>) -> Self {
        InMemoryCache {
            store: Arc::clone(&self.store),
            prefix: Arc::from(key_prefix.into()),
            default_ttl: self.default_ttl,
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn full(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Store>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::new(
                ErrorKind::NotInitialized,
                "the cache is closed",
            ));
        }
        // A panic while holding the lock cannot leave a half-applied command: every command
        // checks its arguments before mutating. Recover the data rather than poisoning forever.
        Ok(self.store.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Runs `f` on the store for one key, tagging errors with the operation.
    fn run<T>(
        &self,
        op: &'static str,
        key: &str,
        f: impl FnOnce(&mut Store, &str, Instant) -> Result<T>,
    ) -> Result<T> {
        let full = self.full(key).context(BACKEND, op)?;
        let mut store = self.lock().context(BACKEND, op)?;
        f(&mut store, &full, Instant::now()).context(BACKEND, op)
    }

    fn expiry_at(&self, expiry: Expiry, now: Instant) -> Option<Instant> {
        match expiry {
            Expiry::Default if self.default_ttl == 0 => None,
            Expiry::Default => now.checked_add(Duration::from_secs(self.default_ttl)),
            Expiry::Never => None,
            Expiry::Millis(ms) => now.checked_add(Duration::from_millis(ms)),
        }
    }

    fn apply(&self, store: &mut Store, op: &PipelineOp, now: Instant) -> Result<i64> {
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match op {
            PipelineOp::Set { key, value, ttl } => {
                let full = self.full(key)?;
                let at = self.expiry_at(SetOptions::ttl(*ttl).expiry, now);
                store
                    .set(&full, value, at, SetOptions::new(), now)
                    .map(i64::from)
            }
            PipelineOp::Del { keys } => {
                let mut n = 0;
                for k in keys {
                    n += u64::from(store.remove(&self.full(k)?, now));
                }
                Ok(int(n))
            }
            PipelineOp::Expire { key, ttl } => {
                store.expire(&self.full(key)?, *ttl, now).map(i64::from)
            }
            PipelineOp::Hset { key, fields } => {
                let refs: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(f, v)| (f.as_str(), v.as_str()))
                    .collect();
                store.hset(&self.full(key)?, &refs, now).map(int)
            }
            PipelineOp::Zadd { key, members } => {
                let refs: Vec<(&str, f64)> =
                    members.iter().map(|(m, s)| (m.as_str(), *s)).collect();
                store.zadd(&self.full(key)?, &refs, now).map(int)
            }
            PipelineOp::Rpush { key, values } => {
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                store.push(&self.full(key)?, &refs, false, now).map(int)
            }
            PipelineOp::Incr { key, amount } => store.incr(&self.full(key)?, *amount, now),
            PipelineOp::Sadd { key, members } => {
                let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                store.sadd(&self.full(key)?, &refs, now).map(int)
            }
        }
    }
}

/// A stored value.
#[derive(Debug)]
enum Value {
    Str(String),
    List(VecDeque<String>),
    Hash(HashMap<String, String>),
    Set(HashSet<String>),
    ZSet(HashMap<String, f64>),
}

impl Value {
    fn is_empty_container(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[derive(Debug, Default)]
struct Store {
    map: HashMap<String, Entry>,
    sweep_at: usize,
}

/// Read and create accessors for one value type: `WRONGTYPE` when the key holds another.
macro_rules! typed_access {
    ($get:ident, $create:ident, $variant:ident, $ty:ty) => {
        fn $get(&mut self, key: &str, now: Instant) -> Result<Option<&mut $ty>> {
            match self.alive(key, now) {
                None => Ok(None),
                Some(Entry {
                    value: Value::$variant(v),
                    ..
                }) => Ok(Some(v)),
                Some(_) => Err(wrong_type()),
            }
        }

        fn $create(&mut self, key: &str, now: Instant) -> Result<&mut $ty> {
            if self.alive(key, now).is_none() {
                self.sweep(now);
            }
            let entry = self.map.entry(key.to_owned()).or_insert_with(|| Entry {
                value: Value::$variant(Default::default()),
                expires_at: None,
            });
            match &mut entry.value {
                Value::$variant(v) => Ok(v),
                _ => Err(wrong_type()),
            }
        }
    };
}

impl Store {
    typed_access!(list, list_mut, List, VecDeque<String>);
    typed_access!(hash, hash_mut, Hash, HashMap<String, String>);
    typed_access!(set_, set_mut, Set, HashSet<String>);
    typed_access!(zset, zset_mut, ZSet, HashMap<String, f64>);

    /// The entry at `key` unless expired (an expired entry is removed).
    fn alive(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.map.get(key).is_some_and(|e| e.expired(now)) {
            self.map.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    /// Drops expired entries when the map has doubled since the last sweep.
    fn sweep(&mut self, now: Instant) {
        if self.map.len() >= self.sweep_at.max(MIN_SWEEP) {
            self.map.retain(|_, e| !e.expired(now));
            self.sweep_at = self.map.len() * 2;
        }
    }

    /// Redis removes a list/hash/set/sorted set when its last element goes.
    fn drop_if_empty(&mut self, key: &str) {
        if self
            .map
            .get(key)
            .is_some_and(|e| e.value.is_empty_container())
        {
            self.map.remove(key);
        }
    }

    fn remove(&mut self, key: &str, now: Instant) -> bool {
        self.alive(key, now).is_some() && self.map.remove(key).is_some()
    }

    fn set(
        &mut self,
        key: &str,
        value: &str,
        expires_at: Option<Instant>,
        options: SetOptions,
        now: Instant,
    ) -> Result<bool> {
        let exists = self.alive(key, now).is_some();
        if (options.nx && exists) || (options.xx && !exists) {
            return Ok(false);
        }
        if !exists {
            self.sweep(now);
        }
        self.map.insert(
            key.to_owned(),
            Entry {
                value: Value::Str(value.to_owned()),
                expires_at,
            },
        );
        Ok(true)
    }

    fn get(&mut self, key: &str, now: Instant) -> Result<Option<String>> {
        match self.alive(key, now) {
            None => Ok(None),
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type()),
        }
    }

    fn expire(&mut self, key: &str, ttl: u64, now: Instant) -> Result<bool> {
        check_ttl(ttl)?;
        if ttl == 0 {
            return Ok(self.remove(key, now));
        }
        match self.alive(key, now) {
            None => Ok(false),
            Some(e) => {
                e.expires_at = now.checked_add(Duration::from_secs(ttl));
                Ok(true)
            }
        }
    }

    fn incr(&mut self, key: &str, amount: i64, now: Instant) -> Result<i64> {
        match self.alive(key, now) {
            None => {
                self.sweep(now);
                self.map.insert(
                    key.to_owned(),
                    Entry {
                        value: Value::Str(amount.to_string()),
                        expires_at: None,
                    },
                );
                Ok(amount)
            }
            Some(Entry {
                value: Value::Str(s),
                ..
            }) => {
                let current = parse_redis_int(s).ok_or_else(not_an_integer)?;
                let next = current.checked_add(amount).ok_or_else(overflow)?;
                *s = next.to_string();
                Ok(next)
            }
            Some(_) => Err(wrong_type()),
        }
    }

    fn push(&mut self, key: &str, values: &[&str], front: bool, now: Instant) -> Result<u64> {
        check_not_empty(values, "values")?;
        let list = self.list_mut(key, now)?;
        for v in values {
            if front {
                list.push_front((*v).to_owned());
            } else {
                list.push_back((*v).to_owned());
            }
        }
        Ok(list.len() as u64)
    }

    fn hset(&mut self, key: &str, fields: &[(&str, &str)], now: Instant) -> Result<u64> {
        check_not_empty(fields, "fields")?;
        let hash = self.hash_mut(key, now)?;
        let mut added = 0;
        for (f, v) in fields {
            if hash.insert((*f).to_owned(), (*v).to_owned()).is_none() {
                added += 1;
            }
        }
        Ok(added)
    }

    fn sadd(&mut self, key: &str, members: &[&str], now: Instant) -> Result<u64> {
        check_not_empty(members, "members")?;
        let set = self.set_mut(key, now)?;
        Ok(members
            .iter()
            .filter(|m| set.insert((**m).to_owned()))
            .count() as u64)
    }

    fn zadd(&mut self, key: &str, members: &[(&str, f64)], now: Instant) -> Result<u64> {
        check_not_empty(members, "members")?;
        members
            .iter()
            .try_for_each(|(_, s)| check_score(*s, "score"))?;
        let z = self.zset_mut(key, now)?;
        Ok(members
            .iter()
            // Redis stores -0.0 as 0 (a double that prints "0"): the same here, so that
            // scores and their order agree.
            .filter(|(m, s)| {
                let score = if *s == 0.0 { 0.0 } else { *s };
                z.insert((*m).to_owned(), score).is_none()
            })
            .count() as u64)
    }

    /// Members in Redis order: ascending score, ties by member bytes.
    fn zsorted(&mut self, key: &str, now: Instant) -> Result<Vec<(String, f64)>> {
        let mut items: Vec<(String, f64)> = match self.zset(key, now)? {
            None => return Ok(Vec::new()),
            Some(z) => z.iter().map(|(m, s)| (m.clone(), *s)).collect(),
        };
        items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(items)
    }

    fn pop(&mut self, key: &str, count: usize, front: bool, now: Instant) -> Result<Vec<String>> {
        check_count(count)?;
        let out = match self.list(key, now)? {
            None => return Ok(Vec::new()),
            Some(list) => {
                let n = count.min(list.len());
                if front {
                    list.drain(..n).collect()
                } else {
                    let mut tail: Vec<String> = list.drain(list.len() - n..).collect();
                    tail.reverse();
                    tail
                }
            }
        };
        self.drop_if_empty(key);
        Ok(out)
    }

    fn keys_under(&mut self, prefix: &str, now: Instant) -> Vec<String> {
        self.map.retain(|_, e| !e.expired(now));
        self.map
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

#[async_trait]
impl Cache for InMemoryCache {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn supports_lua(&self) -> bool {
        false
    }

    async fn is_connected(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.run("get", key, |s, k, now| s.get(k, now))
    }

    async fn set_with(&self, key: &str, value: &str, options: SetOptions) -> Result<bool> {
        options.check().context(BACKEND, "set")?;
        self.run("set", key, |s, k, now| {
            let at = self.expiry_at(options.expiry, now);
            s.set(k, value, at, options, now)
        })
    }

    async fn delete(&self, keys: &[&str]) -> Result<u64> {
        let full: Vec<String> = keys
            .iter()
            .map(|k| self.full(k))
            .collect::<Result<_>>()
            .context(BACKEND, "delete")?;
        let mut store = self.lock().context(BACKEND, "delete")?;
        let now = Instant::now();
        Ok(full.iter().filter(|k| store.remove(k, now)).count() as u64)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.run("exists", key, |s, k, now| Ok(s.alive(k, now).is_some()))
    }

    async fn expire(&self, key: &str, ttl: u64) -> Result<bool> {
        self.run("expire", key, |s, k, now| s.expire(k, ttl, now))
    }

    async fn ttl(&self, key: &str) -> Result<i64> {
        self.run("ttl", key, |s, k, now| {
            Ok(match s.alive(k, now) {
                None => -2,
                Some(Entry {
                    expires_at: None, ..
                }) => -1,
                Some(Entry {
                    expires_at: Some(at),
                    ..
                }) => {
                    let ms = at.saturating_duration_since(now).as_millis();
                    i64::try_from((ms + 500) / 1000).unwrap_or(i64::MAX)
                }
            })
        })
    }

    async fn getset(&self, key: &str, value: &str) -> Result<Option<String>> {
        self.run("getset", key, |s, k, now| {
            let old = s.get(k, now)?;
            s.set(k, value, None, SetOptions::new(), now)?;
            Ok(old)
        })
    }

    async fn incr(&self, key: &str, amount: i64) -> Result<i64> {
        self.run("incr", key, |s, k, now| s.incr(k, amount, now))
    }

    async fn decr(&self, key: &str, amount: i64) -> Result<i64> {
        self.run("decr", key, |s, k, now| {
            let neg = amount.checked_neg().ok_or_else(overflow)?;
            s.incr(k, neg, now)
        })
    }

    async fn lpush(&self, key: &str, values: &[&str]) -> Result<u64> {
        self.run("lpush", key, |s, k, now| s.push(k, values, true, now))
    }

    async fn rpush(&self, key: &str, values: &[&str]) -> Result<u64> {
        self.run("rpush", key, |s, k, now| s.push(k, values, false, now))
    }

    async fn lpop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.run("lpop", key, |s, k, now| s.pop(k, count, true, now))
    }

    async fn rpop(&self, key: &str, count: usize) -> Result<Vec<String>> {
        self.run("rpop", key, |s, k, now| s.pop(k, count, false, now))
    }

    async fn lrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>> {
        self.run("lrange", key, |s, k, now| {
            Ok(match s.list(k, now)? {
                None => Vec::new(),
                Some(list) => match index_range(list.len(), start, stop) {
                    None => Vec::new(),
                    Some((a, b)) => list.range(a..=b).cloned().collect(),
                },
            })
        })
    }

    async fn llen(&self, key: &str) -> Result<u64> {
        self.run("llen", key, |s, k, now| {
            Ok(s.list(k, now)?.map_or(0, |l| l.len() as u64))
        })
    }

    async fn ltrim(&self, key: &str, start: i64, stop: i64) -> Result<()> {
        self.run("ltrim", key, |s, k, now| {
            if let Some(list) = s.list(k, now)? {
                match index_range(list.len(), start, stop) {
                    None => list.clear(),
                    Some((a, b)) => {
                        list.truncate(b + 1);
                        list.drain(..a);
                    }
                }
            }
            s.drop_if_empty(k);
            Ok(())
        })
    }

    async fn rpush_expire_llen(&self, key: &str, value: &str, ttl: u64) -> Result<u64> {
        self.run("rpush_expire_llen", key, |s, k, now| {
            if ttl == 0 {
                return Err(StorageError::invalid_input("ttl must be at least 1 second"));
            }
            check_ttl(ttl)?;
            let len = s.push(k, &[value], false, now)?;
            s.expire(k, ttl, now)?;
            Ok(len)
        })
    }

    async fn hget(&self, key: &str, field: &str) -> Result<Option<String>> {
        self.run("hget", key, |s, k, now| {
            Ok(s.hash(k, now)?.and_then(|h| h.get(field).cloned()))
        })
    }

    async fn hset(&self, key: &str, field: &str, value: &str) -> Result<bool> {
        self.run("hset", key, |s, k, now| {
            s.hset(k, &[(field, value)], now).map(|n| n == 1)
        })
    }

    async fn hmset(&self, key: &str, fields: &[(&str, &str)]) -> Result<()> {
        self.run("hmset", key, |s, k, now| s.hset(k, fields, now).map(drop))
    }

    async fn hgetall(&self, key: &str) -> Result<HashMap<String, String>> {
        self.run("hgetall", key, |s, k, now| {
            Ok(s.hash(k, now)?.map(|h| h.clone()).unwrap_or_default())
        })
    }

    async fn hdel(&self, key: &str, fields: &[&str]) -> Result<u64> {
        self.run("hdel", key, |s, k, now| {
            let n = match s.hash(k, now)? {
                None => 0,
                Some(h) => fields.iter().filter(|f| h.remove(**f).is_some()).count() as u64,
            };
            s.drop_if_empty(k);
            Ok(n)
        })
    }

    async fn hexists(&self, key: &str, field: &str) -> Result<bool> {
        self.run("hexists", key, |s, k, now| {
            Ok(s.hash(k, now)?.is_some_and(|h| h.contains_key(field)))
        })
    }

    async fn hlen(&self, key: &str) -> Result<u64> {
        self.run("hlen", key, |s, k, now| {
            Ok(s.hash(k, now)?.map_or(0, |h| h.len() as u64))
        })
    }

    async fn hkeys(&self, key: &str) -> Result<Vec<String>> {
        self.run("hkeys", key, |s, k, now| {
            Ok(s.hash(k, now)?
                .map(|h| h.keys().cloned().collect())
                .unwrap_or_default())
        })
    }

    async fn hvals(&self, key: &str) -> Result<Vec<String>> {
        self.run("hvals", key, |s, k, now| {
            Ok(s.hash(k, now)?
                .map(|h| h.values().cloned().collect())
                .unwrap_or_default())
        })
    }

    async fn hincrby(&self, key: &str, field: &str, amount: i64) -> Result<i64> {
        self.run("hincrby", key, |s, k, now| {
            let current = match s.hash(k, now)?.and_then(|h| h.get(field)) {
                None => 0,
                Some(v) => parse_redis_int(v).ok_or_else(not_an_integer)?,
            };
            let next = current.checked_add(amount).ok_or_else(overflow)?;
            s.hash_mut(k, now)?
                .insert(field.to_owned(), next.to_string());
            Ok(next)
        })
    }

    async fn sadd(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.run("sadd", key, |s, k, now| s.sadd(k, members, now))
    }

    async fn srem(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.run("srem", key, |s, k, now| {
            let n = match s.set_(k, now)? {
                None => 0,
                Some(set) => members.iter().filter(|m| set.remove(**m)).count() as u64,
            };
            s.drop_if_empty(k);
            Ok(n)
        })
    }

    async fn smembers(&self, key: &str) -> Result<HashSet<String>> {
        self.run("smembers", key, |s, k, now| {
            Ok(s.set_(k, now)?.map(|x| x.clone()).unwrap_or_default())
        })
    }

    async fn sismember(&self, key: &str, member: &str) -> Result<bool> {
        self.run("sismember", key, |s, k, now| {
            Ok(s.set_(k, now)?.is_some_and(|x| x.contains(member)))
        })
    }

    async fn scard(&self, key: &str) -> Result<u64> {
        self.run("scard", key, |s, k, now| {
            Ok(s.set_(k, now)?.map_or(0, |x| x.len() as u64))
        })
    }

    async fn zadd(&self, key: &str, members: &[(&str, f64)]) -> Result<u64> {
        self.run("zadd", key, |s, k, now| s.zadd(k, members, now))
    }

    async fn zrem(&self, key: &str, members: &[&str]) -> Result<u64> {
        self.run("zrem", key, |s, k, now| {
            let n = match s.zset(k, now)? {
                None => 0,
                Some(z) => members.iter().filter(|m| z.remove(**m).is_some()).count() as u64,
            };
            s.drop_if_empty(k);
            Ok(n)
        })
    }

    async fn zrange(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>> {
        let items = self.zrange_withscores(key, start, stop).await?;
        Ok(items.into_iter().map(|(m, _)| m).collect())
    }

    async fn zrange_withscores(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<(String, f64)>> {
        self.run("zrange", key, |s, k, now| {
            let items = s.zsorted(k, now)?;
            Ok(match index_range(items.len(), start, stop) {
                None => Vec::new(),
                Some((a, b)) => items[a..=b].to_vec(),
            })
        })
    }

    async fn zrangebyscore(&self, key: &str, min: f64, max: f64) -> Result<Vec<String>> {
        let items = self.zrangebyscore_withscores(key, min, max).await?;
        Ok(items.into_iter().map(|(m, _)| m).collect())
    }

    async fn zrangebyscore_withscores(
        &self,
        key: &str,
        min: f64,
        max: f64,
    ) -> Result<Vec<(String, f64)>> {
        self.run("zrangebyscore", key, |s, k, now| {
            check_score(min, "min")?;
            check_score(max, "max")?;
            Ok(s.zsorted(k, now)?
                .into_iter()
                .filter(|(_, sc)| min <= *sc && *sc <= max)
                .collect())
        })
    }

    async fn zrem_range_by_score(&self, key: &str, min: f64, max: f64) -> Result<u64> {
        self.run("zrem_range_by_score", key, |s, k, now| {
            check_score(min, "min")?;
            check_score(max, "max")?;
            let n = match s.zset(k, now)? {
                None => 0,
                Some(z) => {
                    let before = z.len();
                    z.retain(|_, sc| !(min <= *sc && *sc <= max));
                    (before - z.len()) as u64
                }
            };
            s.drop_if_empty(k);
            Ok(n)
        })
    }

    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>> {
        self.run("zscore", key, |s, k, now| {
            Ok(s.zset(k, now)?.and_then(|z| z.get(member).copied()))
        })
    }

    async fn zcard(&self, key: &str) -> Result<u64> {
        self.run("zcard", key, |s, k, now| {
            Ok(s.zset(k, now)?.map_or(0, |z| z.len() as u64))
        })
    }

    async fn release_lock(&self, name: &str, token: &str) -> Result<bool> {
        check_release(name, token).context(BACKEND, "release_lock")?;
        self.run("release_lock", &lock_key(name), |s, k, now| {
            let owned = matches!(
                s.alive(k, now),
                Some(Entry { value: Value::Str(t), .. }) if t == token
            );
            if owned {
                s.map.remove(k);
            }
            Ok(owned)
        })
    }

    async fn eval_lua(&self, _script: &str, _keys: &[&str], _args: &[&str]) -> Result<Json> {
        Err(StorageError::unsupported(
            "InMemoryCache cannot run Lua scripts; use RedisCache for eval_lua (the built-in \
             scripts rpush_expire_llen and release_lock work natively in memory)",
        )
        .with_backend(BACKEND)
        .with_operation("eval_lua"))
    }

    fn pipeline(&self) -> Pipeline<'_> {
        Pipeline::new(self)
    }

    async fn execute_pipeline(&self, ops: &[PipelineOp], _atomic: bool) -> Result<Vec<i64>> {
        validate_all(ops).context(BACKEND, "execute_pipeline")?;
        let mut store = self.lock().context(BACKEND, "execute_pipeline")?;
        let now = Instant::now();
        // Like a Redis pipeline, every command runs even when an earlier one fails; the
        // first error is reported.
        let mut results = Vec::with_capacity(ops.len());
        let mut first_error = None;
        for op in ops {
            match self.apply(&mut store, op, now) {
                Ok(v) => results.push(v),
                Err(e) => {
                    results.push(0);
                    if first_error.is_none() {
                        first_error = Some(StorageError::new(
                            e.kind(),
                            format!("pipeline {}: {}", op.name(), e.message()),
                        ));
                    }
                }
            }
        }
        match first_error {
            // The other commands ran (a command that fails at run time undoes nothing, as in
            // Redis' MULTI/EXEC): say so, as RedisCache does.
            Some(e) if ops.len() > 1 => {
                let idempotent = ops.iter().all(PipelineOp::is_idempotent);
                Err(e
                    .with_outcome_unknown(idempotent)
                    .with_backend(BACKEND)
                    .with_operation("execute_pipeline"))
            }
            Some(e) => Err(e.with_backend(BACKEND).with_operation("execute_pipeline")),
            None => Ok(results),
        }
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        if pattern.is_empty() {
            return Err(StorageError::invalid_input("pattern must not be empty")
                .with_backend(BACKEND)
                .with_operation("keys"));
        }
        let mut store = self.lock().context(BACKEND, "keys")?;
        let mut keys: Vec<String> = store
            .keys_under(&self.prefix, Instant::now())
            .into_iter()
            .map(|k| k[self.prefix.len()..].to_owned())
            .filter(|k| glob_match(pattern, k))
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn flush_prefix(&self) -> Result<u64> {
        if self.prefix.is_empty() {
            return Err(StorageError::invalid_input(
                "refusing to clear a cache whose key prefix is empty",
            )
            .with_backend(BACKEND)
            .with_operation("flush_prefix"));
        }
        let mut store = self.lock().context(BACKEND, "flush_prefix")?;
        let keys = store.keys_under(&self.prefix, Instant::now());
        for k in &keys {
            store.map.remove(k);
        }
        Ok(keys.len() as u64)
    }

    async fn info(&self) -> Result<BTreeMap<String, String>> {
        let mut store = self.lock().context(BACKEND, "info")?;
        let keys = store.keys_under(&self.prefix, Instant::now()).len();
        Ok(BTreeMap::from([
            ("type".to_owned(), "in_memory".to_owned()),
            ("keys".to_owned(), keys.to_string()),
        ]))
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}
