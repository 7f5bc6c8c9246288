//! The cache conformance kit (feature `testkit`): the same cases run against every
//! [`Cache`] implementation.
//!
//! Each case takes a [`CacheFactory`]; caches created by one factory share their storage
//! (one Redis server, or one in-memory store) and differ by key prefix. Cases use short TTLs
//! (1 s) and sleep, so a case takes up to about 2 s. [`RedisFactory::from_env`] reads
//! `REDIS_URL` (default `redis://127.0.0.1:6379`), uses a key prefix unique to the run and
//! removes its keys in [`RedisFactory::cleanup`]; when no server answers it returns `None`
//! after printing why, or panics when the `CI` environment variable is set.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use storage_core::{ErrorKind, Result};

use crate::{Cache, InMemoryCache, RedisCache, RedisCacheConfig, SetOptions};

/// Creates the caches a case works on.
#[async_trait]
pub trait CacheFactory: Send + Sync {
    /// A cache whose key prefix is unique to `namespace` within this factory; caches of one
    /// factory share their storage.
    async fn create(&self, namespace: &str) -> Arc<dyn Cache>;
}

/// Caches sharing one in-memory store.
#[derive(Debug, Default)]
pub struct MemoryFactory {
    root: InMemoryCache,
}

impl MemoryFactory {
    /// A factory with a fresh store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CacheFactory for MemoryFactory {
    async fn create(&self, namespace: &str) -> Arc<dyn Cache> {
        Arc::new(self.root.with_prefix(format!("kit:{namespace}:")))
    }
}

/// Caches on the Redis server of `REDIS_URL`, under a prefix unique to this factory.
///
/// Dropping the factory removes every key under its prefix (also while a failing test
/// unwinds), so tests on a shared server leave nothing behind.
#[derive(Debug)]
pub struct RedisFactory {
    config: RedisCacheConfig,
    run_prefix: String,
}

impl Drop for RedisFactory {
    fn drop(&mut self) {
        let config = self.config.clone();
        // Drop cannot await, and may run on a runtime thread: clean up on a thread of its own.
        let cleaned = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let cache = RedisCache::new(config).map_err(|e| e.to_string())?;
                let removed = cache.flush_prefix().await.map_err(|e| e.to_string());
                let _ = cache.close().await;
                removed
            })
        })
        .join();
        match cleaned {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!("redis test cleanup of {:?} failed: {e}", self.run_prefix),
            Err(_) => eprintln!("redis test cleanup of {:?} panicked", self.run_prefix),
        }
    }
}

static RUN: AtomicU64 = AtomicU64::new(0);

impl RedisFactory {
    /// The URL of the test server: `REDIS_URL`, default `redis://127.0.0.1:6379`.
    pub fn url() -> String {
        std::env::var("REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
    }

    /// Connects to [`RedisFactory::url`]. `None` (with a message on stderr) when no server
    /// answers and `CI` is not set.
    ///
    /// # Panics
    /// When no server answers and `CI` is set, or when `REDIS_URL` is malformed.
    pub async fn from_env(label: &str) -> Option<Self> {
        let url = Self::url();
        let mut config = RedisCacheConfig::from_url(&url)
            .unwrap_or_else(|e| panic!("REDIS_URL {url:?} is invalid: {e}"));
        config.socket_connect_timeout = 2.0;
        config.max_connections = 16;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let run_prefix = format!(
            "storage-cache-test:{}:{nanos}:{}:{label}:",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        config.key_prefix = run_prefix.clone();
        match RedisCache::connect(config.clone()).await {
            Ok(cache) => {
                let _ = cache.close().await;
                Some(RedisFactory { config, run_prefix })
            }
            Err(e) => {
                if ci() {
                    panic!("CI is set but the Redis server at {url} does not answer: {e}");
                }
                eprintln!(
                    "SKIPPED (redis): no Redis server answers at {url} ({e}); start one or set \
                     REDIS_URL. With CI set this fails instead."
                );
                None
            }
        }
    }

    /// The configuration used for caches (its `key_prefix` is the run prefix).
    pub fn config(&self) -> &RedisCacheConfig {
        &self.config
    }

    /// Removes every key written under this factory's prefix.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub async fn cleanup(&self) -> Result<u64> {
        let cache = RedisCache::new(self.config.clone())?;
        let removed = cache.flush_prefix().await;
        cache.close().await?;
        removed
    }
}

#[async_trait]
impl CacheFactory for RedisFactory {
    async fn create(&self, namespace: &str) -> Arc<dyn Cache> {
        let config = RedisCacheConfig {
            key_prefix: format!("{}{namespace}:", self.run_prefix),
            ..self.config.clone()
        };
        Arc::new(RedisCache::new(config).expect("valid test configuration"))
    }
}

/// A private `redis-server` for fault tests: started on a free port of 127.0.0.1 without
/// persistence, stopped (`SIGSTOP`) and resumed (`SIGCONT`) on request, killed when dropped.
/// Never touches a shared server.
#[derive(Debug)]
pub struct PrivateRedis {
    child: std::process::Child,
    port: u16,
}

impl PrivateRedis {
    /// Starts `redis-server` from `PATH` and waits (up to 10 s) until it answers `PING`.
    /// `None`, after printing `SKIPPED`, when `redis-server` is not installed.
    ///
    /// # Panics
    /// When `redis-server` is missing and `CI` is set, or when it does not start.
    pub fn start() -> Option<Self> {
        use std::process::{Command, Stdio};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free local port");
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if ci() {
                    panic!("CI is set but redis-server is not on PATH");
                }
                eprintln!(
                    "SKIPPED (redis fault test): redis-server is not on PATH; install it to run \
                     this test. With CI set this fails instead."
                );
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let server = PrivateRedis { child, port };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !server.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "the private redis-server on port {port} did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A configuration for this server (prefix `fault-test:`, other fields default).
    pub fn config(&self) -> RedisCacheConfig {
        RedisCacheConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            key_prefix: "fault-test:".into(),
            ..RedisCacheConfig::default()
        }
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.child.id());
    }

    /// Freezes the server (`SIGSTOP`): connections stay open, nothing is answered.
    pub fn stop(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server (`SIGCONT`).
    pub fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Asserts that `result` failed with `kind`, tagged with the cache's backend name.
fn assert_err<T: Debug>(cache: &dyn Cache, result: Result<T>, kind: ErrorKind, what: &str) {
    match result {
        Ok(v) => panic!(
            "{}: {what}: expected {kind:?}, got Ok({v:?})",
            cache.backend_name()
        ),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{}: {what}: {e}", cache.backend_name());
            assert_eq!(e.backend_name(), cache.backend_name(), "{what}: {e}");
            assert!(!e.operation().is_empty(), "{what}: no operation in {e}");
        }
    }
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Strings: get/set/delete/exists/expire/ttl, NX/XX, default TTL, getset, incr/decr.
pub async fn strings(f: &dyn CacheFactory) {
    let c = f.create("strings").await;
    assert_eq!(c.get("missing").await.unwrap(), None);
    assert!(c.set("a", "1", None).await.unwrap());
    assert_eq!(c.get("a").await.unwrap().as_deref(), Some("1"));
    assert!(c.exists("a").await.unwrap());
    let ttl = c.ttl("a").await.unwrap();
    assert!(
        (3590..=3600).contains(&ttl),
        "default TTL applied, got {ttl}"
    );
    assert!(c.set("p", "x", Some(0)).await.unwrap());
    assert_eq!(c.ttl("p").await.unwrap(), -1, "Some(0) never expires");
    assert_eq!(c.ttl("missing").await.unwrap(), -2);
    assert!(c.set("t", "x", Some(100)).await.unwrap());
    assert!((99..=100).contains(&c.ttl("t").await.unwrap()));
    assert!(c.expire("p", 50).await.unwrap());
    assert!((49..=50).contains(&c.ttl("p").await.unwrap()));
    assert!(!c.expire("missing", 10).await.unwrap());

    assert!(!c.set_with("a", "2", SetOptions::new().nx()).await.unwrap());
    assert!(c.set_with("b", "2", SetOptions::new().nx()).await.unwrap());
    assert!(c.set_with("b", "3", SetOptions::new().xx()).await.unwrap());
    assert!(!c.set_with("c", "3", SetOptions::new().xx()).await.unwrap());
    assert_eq!(c.get("b").await.unwrap().as_deref(), Some("3"));

    assert_eq!(c.getset("b", "4").await.unwrap().as_deref(), Some("3"));
    assert_eq!(c.getset("new", "1").await.unwrap(), None);
    assert_eq!(c.ttl("b").await.unwrap(), -1, "getset drops the TTL");

    assert_eq!(c.incr("n", 1).await.unwrap(), 1);
    assert_eq!(c.incr("n", 5).await.unwrap(), 6);
    assert_eq!(c.decr("n", 2).await.unwrap(), 4);
    assert_eq!(c.decr("m", 3).await.unwrap(), -3);
    assert_eq!(c.get("n").await.unwrap().as_deref(), Some("4"));
    assert_eq!(
        c.ttl("n").await.unwrap(),
        -1,
        "incr creates keys without TTL"
    );
    c.expire("n", 100).await.unwrap();
    c.incr("n", 1).await.unwrap();
    assert!(c.ttl("n").await.unwrap() > 0, "incr keeps the TTL");

    assert_eq!(c.delete(&["a", "b", "missing"]).await.unwrap(), 2);
    assert_eq!(c.delete(&[]).await.unwrap(), 0);
    assert!(!c.exists("a").await.unwrap());
    assert!(c.expire("t", 0).await.unwrap(), "expire 0 deletes");
    assert!(!c.exists("t").await.unwrap());
    c.flush_prefix().await.unwrap();
}

/// Expiry with short TTLs: strings, collections, millisecond TTLs and `rpush_expire_llen`.
pub async fn expiry(f: &dyn CacheFactory) {
    let c = f.create("expiry").await;
    c.set("s", "v", Some(1)).await.unwrap();
    c.hset("h", "f", "v").await.unwrap();
    assert!(c.expire("h", 1).await.unwrap());
    c.rpush_expire_llen("l", "v", 1).await.unwrap();
    c.set_with("ms", "v", SetOptions::new().ttl_millis(200))
        .await
        .unwrap();
    c.set("keep", "v", Some(0)).await.unwrap();
    assert_eq!(c.ttl("s").await.unwrap(), 1);
    sleep_ms(400).await;
    assert_eq!(c.get("ms").await.unwrap(), None, "200 ms TTL");
    assert_eq!(c.get("s").await.unwrap().as_deref(), Some("v"));
    sleep_ms(1100).await;
    assert_eq!(c.get("s").await.unwrap(), None);
    assert!(!c.exists("s").await.unwrap());
    assert_eq!(c.ttl("s").await.unwrap(), -2);
    assert_eq!(c.hget("h", "f").await.unwrap(), None);
    assert_eq!(c.hlen("h").await.unwrap(), 0);
    assert_eq!(c.llen("l").await.unwrap(), 0);
    assert_eq!(c.keys("*").await.unwrap(), vec!["keep".to_owned()]);
    // An expired key is gone for NX too.
    assert!(
        c.set_with("s", "again", SetOptions::new().nx())
            .await
            .unwrap()
    );
    c.flush_prefix().await.unwrap();
}

/// JSON strings, list and hash variants; non-JSON text is `DataCorrupted`.
pub async fn json_values(f: &dyn CacheFactory) {
    let c = f.create("json").await;
    let doc = json!({"name": "Zoë", "tags": ["a", "b"], "n": 1.5, "none": null});
    assert!(c.set_json("doc", &doc, None).await.unwrap());
    assert_eq!(c.get_json("doc").await.unwrap(), Some(doc.clone()));
    assert!(
        c.get("doc").await.unwrap().unwrap().contains("Zoë"),
        "non-ASCII kept"
    );
    assert_eq!(c.get_json("missing").await.unwrap(), None);
    c.set("text", "not json", None).await.unwrap();
    assert_err(
        &*c,
        c.get_json("text").await,
        ErrorKind::DataCorrupted,
        "get_json",
    );

    assert_eq!(
        c.rpush_json("l", &[json!(1), json!({"a": 2})])
            .await
            .unwrap(),
        2
    );
    assert_eq!(c.lpush_json("l", &[json!("first")]).await.unwrap(), 3);
    assert_eq!(
        c.lrange_json("l", 0, -1).await.unwrap(),
        vec![json!("first"), json!(1), json!({"a": 2})]
    );

    assert!(c.hset_json("h", "a", &json!([1, 2])).await.unwrap());
    c.hmset_json("h", &[("b", json!(true)), ("c", json!({"x": "y"}))])
        .await
        .unwrap();
    assert_eq!(c.hget_json("h", "a").await.unwrap(), Some(json!([1, 2])));
    assert_eq!(c.hget_json("h", "zz").await.unwrap(), None);
    let all = c.hgetall_json("h").await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all["c"], json!({"x": "y"}));
    assert_eq!(c.hvals_json("h").await.unwrap().len(), 3);
    c.hset("h", "raw", "{broken").await.unwrap();
    assert_err(
        &*c,
        c.hgetall_json("h").await,
        ErrorKind::DataCorrupted,
        "hgetall_json",
    );

    // As deep as storage_core::validate::MAX_JSON_DEPTH round-trips; one level deeper could be
    // written but never read back (serde_json stops at 128), so every JSON write refuses it
    // and leaves what was stored.
    let nested = |levels: usize| (0..levels).fold(json!(1), |v, _| json!([v]));
    let max = storage_core::validate::MAX_JSON_DEPTH;
    assert!(c.set_json("deep", &nested(max), None).await.unwrap());
    assert_eq!(c.get_json("deep").await.unwrap(), Some(nested(max)));
    let deep = nested(max + 1);
    let bad = [
        ("set_json", c.set_json("doc", &deep, None).await.err()),
        (
            "rpush_json",
            c.rpush_json("l", &[json!(0), deep.clone()]).await.err(),
        ),
        (
            "lpush_json",
            c.lpush_json("l", std::slice::from_ref(&deep)).await.err(),
        ),
        ("hset_json", c.hset_json("h", "a", &deep).await.err()),
        (
            "hmset_json",
            c.hmset_json("h", &[("new", json!(1)), ("b", deep.clone())])
                .await
                .err(),
        ),
    ];
    for (op, err) in bad {
        let e = err.unwrap_or_else(|| panic!("{op} of a value nested {} deep succeeded", max + 1));
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{op}: {e}");
        assert_eq!(e.operation(), op, "{op}: {e}");
        assert!(
            e.to_string().contains("value") && e.to_string().contains(&max.to_string()),
            "{op}: {e}"
        );
    }
    assert_eq!(
        c.get_json("doc").await.unwrap(),
        Some(doc),
        "set_json left the old value"
    );
    assert_eq!(
        c.llen("l").await.unwrap(),
        3,
        "no element of a refused push was written"
    );
    assert_eq!(c.hget_json("h", "a").await.unwrap(), Some(json!([1, 2])));
    assert_eq!(
        c.hget("h", "new").await.unwrap(),
        None,
        "hmset_json wrote nothing"
    );
    c.flush_prefix().await.unwrap();
}

/// Lists: push order, ranges with negative indexes, trims, pops, `rpush_expire_llen`.
pub async fn lists(f: &dyn CacheFactory) {
    let c = f.create("lists").await;
    assert_eq!(c.rpush("l", &["b", "c"]).await.unwrap(), 2);
    assert_eq!(c.lpush("l", &["a2", "a1"]).await.unwrap(), 4);
    assert_eq!(c.lrange("l", 0, -1).await.unwrap(), ["a1", "a2", "b", "c"]);
    assert_eq!(c.lrange("l", -2, -1).await.unwrap(), ["b", "c"]);
    assert_eq!(c.lrange("l", 1, 100).await.unwrap(), ["a2", "b", "c"]);
    assert!(c.lrange("l", 3, 1).await.unwrap().is_empty());
    assert!(c.lrange("missing", 0, -1).await.unwrap().is_empty());
    assert_eq!(c.llen("l").await.unwrap(), 4);
    c.ltrim("l", 1, -1).await.unwrap();
    assert_eq!(c.lrange("l", 0, -1).await.unwrap(), ["a2", "b", "c"]);
    assert_eq!(c.lpop("l", 1).await.unwrap(), ["a2"]);
    assert_eq!(c.rpop("l", 5).await.unwrap(), ["c", "b"]);
    assert!(c.lpop("l", 1).await.unwrap().is_empty());
    assert!(!c.exists("l").await.unwrap(), "an emptied list is removed");
    c.rpush("t", &["x", "y"]).await.unwrap();
    c.ltrim("t", 5, 10).await.unwrap();
    assert!(
        !c.exists("t").await.unwrap(),
        "trimming everything removes the list"
    );

    assert_eq!(c.rpush_expire_llen("q", "m1", 60).await.unwrap(), 1);
    assert_eq!(c.rpush_expire_llen("q", "m2", 120).await.unwrap(), 2);
    assert_eq!(c.lrange("q", 0, -1).await.unwrap(), ["m1", "m2"]);
    let ttl = c.ttl("q").await.unwrap();
    assert!((119..=120).contains(&ttl), "ttl refreshed, got {ttl}");
    c.flush_prefix().await.unwrap();
}

/// Hashes, including `hincrby`.
pub async fn hashes(f: &dyn CacheFactory) {
    let c = f.create("hashes").await;
    assert!(c.hset("h", "a", "1").await.unwrap());
    assert!(!c.hset("h", "a", "2").await.unwrap(), "existing field");
    c.hmset("h", &[("b", "x"), ("c", "y")]).await.unwrap();
    assert_eq!(c.hget("h", "a").await.unwrap().as_deref(), Some("2"));
    assert_eq!(c.hget("h", "zz").await.unwrap(), None);
    assert_eq!(c.hget("missing", "a").await.unwrap(), None);
    let all = c.hgetall("h").await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all["b"], "x");
    assert!(c.hgetall("missing").await.unwrap().is_empty());
    assert!(c.hexists("h", "c").await.unwrap());
    assert!(!c.hexists("h", "zz").await.unwrap());
    assert_eq!(c.hlen("h").await.unwrap(), 3);
    let mut keys = c.hkeys("h").await.unwrap();
    keys.sort();
    assert_eq!(keys, ["a", "b", "c"]);
    let mut vals = c.hvals("h").await.unwrap();
    vals.sort();
    assert_eq!(vals, ["2", "x", "y"]);
    assert_eq!(c.hincrby("h", "a", 5).await.unwrap(), 7);
    assert_eq!(c.hincrby("h", "n", -2).await.unwrap(), -2);
    assert_err(
        &*c,
        c.hincrby("h", "b", 1).await,
        ErrorKind::InvalidInput,
        "hincrby text",
    );
    assert_eq!(c.hdel("h", &["a", "b", "zz"]).await.unwrap(), 2);
    assert_eq!(c.hdel("h", &[]).await.unwrap(), 0);
    assert_eq!(c.hdel("h", &["c", "n"]).await.unwrap(), 2);
    assert!(!c.exists("h").await.unwrap(), "an emptied hash is removed");
    c.flush_prefix().await.unwrap();
}

/// Sets.
pub async fn sets(f: &dyn CacheFactory) {
    let c = f.create("sets").await;
    assert_eq!(c.sadd("s", &["a", "b", "a"]).await.unwrap(), 2);
    assert_eq!(c.sadd("s", &["b", "c"]).await.unwrap(), 1);
    assert_eq!(c.scard("s").await.unwrap(), 3);
    assert!(c.sismember("s", "a").await.unwrap());
    assert!(!c.sismember("s", "z").await.unwrap());
    assert!(!c.sismember("missing", "a").await.unwrap());
    let members = c.smembers("s").await.unwrap();
    assert_eq!(members.len(), 3);
    assert!(members.contains("c"));
    assert_eq!(c.srem("s", &["a", "z"]).await.unwrap(), 1);
    assert_eq!(c.srem("s", &[]).await.unwrap(), 0);
    assert_eq!(c.scard("missing").await.unwrap(), 0);
    assert_eq!(c.srem("s", &["b", "c"]).await.unwrap(), 2);
    assert!(!c.exists("s").await.unwrap());
    c.flush_prefix().await.unwrap();
}

/// Sorted sets: ordering (score, then member), ranges, infinities, removal by score.
pub async fn sorted_sets(f: &dyn CacheFactory) {
    let c = f.create("zsets").await;
    assert_eq!(
        c.zadd("z", &[("b", 2.0), ("a", 2.0), ("c", 1.0), ("d", -0.5)])
            .await
            .unwrap(),
        4
    );
    assert_eq!(c.zadd("z", &[("d", 10.0), ("e", 3.5)]).await.unwrap(), 1);
    assert_eq!(
        c.zrange("z", 0, -1).await.unwrap(),
        ["c", "a", "b", "e", "d"]
    );
    assert_eq!(c.zrange("z", -2, -1).await.unwrap(), ["e", "d"]);
    assert_eq!(
        c.zrange_withscores("z", 0, 1).await.unwrap(),
        vec![("c".to_owned(), 1.0), ("a".to_owned(), 2.0)]
    );
    assert_eq!(
        c.zrangebyscore("z", 2.0, 3.5).await.unwrap(),
        ["a", "b", "e"]
    );
    assert_eq!(
        c.zrangebyscore("z", f64::NEG_INFINITY, 1.0).await.unwrap(),
        ["c"]
    );
    assert_eq!(
        c.zrangebyscore_withscores("z", 3.0, f64::INFINITY)
            .await
            .unwrap(),
        vec![("e".to_owned(), 3.5), ("d".to_owned(), 10.0)]
    );
    assert!(c.zrangebyscore("z", 5.0, 4.0).await.unwrap().is_empty());
    assert_eq!(c.zscore("z", "e").await.unwrap(), Some(3.5));
    assert_eq!(c.zscore("z", "zz").await.unwrap(), None);
    assert_eq!(c.zcard("z").await.unwrap(), 5);
    assert_eq!(c.zrem("z", &["a", "zz"]).await.unwrap(), 1);
    assert_eq!(c.zrem_range_by_score("z", 1.0, 3.5).await.unwrap(), 3);
    assert_eq!(c.zrange("z", 0, -1).await.unwrap(), ["d"]);
    c.zadd(
        "inf",
        &[("top", f64::INFINITY), ("bottom", f64::NEG_INFINITY)],
    )
    .await
    .unwrap();
    assert_eq!(c.zscore("inf", "top").await.unwrap(), Some(f64::INFINITY));
    assert_eq!(c.zrange("inf", 0, -1).await.unwrap(), ["bottom", "top"]);
    assert_eq!(
        c.zrem_range_by_score("z", f64::NEG_INFINITY, f64::INFINITY)
            .await
            .unwrap(),
        1
    );
    assert!(!c.exists("z").await.unwrap());
    c.flush_prefix().await.unwrap();
}

/// Wrong types and non-integer counters are `InvalidInput`.
pub async fn type_errors(f: &dyn CacheFactory) {
    let c = f.create("types").await;
    c.set("s", "text", None).await.unwrap();
    c.rpush("l", &["x"]).await.unwrap();
    assert_err(
        &*c,
        c.lpush("s", &["x"]).await,
        ErrorKind::InvalidInput,
        "lpush on string",
    );
    assert_err(
        &*c,
        c.get("l").await,
        ErrorKind::InvalidInput,
        "get on list",
    );
    assert_err(
        &*c,
        c.hget("l", "f").await,
        ErrorKind::InvalidInput,
        "hget on list",
    );
    assert_err(
        &*c,
        c.sadd("l", &["m"]).await,
        ErrorKind::InvalidInput,
        "sadd on list",
    );
    assert_err(
        &*c,
        c.zadd("s", &[("m", 1.0)]).await,
        ErrorKind::InvalidInput,
        "zadd on string",
    );
    assert_err(
        &*c,
        c.incr("s", 1).await,
        ErrorKind::InvalidInput,
        "incr on text",
    );
    c.set("max", &i64::MAX.to_string(), None).await.unwrap();
    assert_err(
        &*c,
        c.incr("max", 1).await,
        ErrorKind::InvalidInput,
        "incr overflow",
    );
    assert!(
        c.set("l", "now a string", None).await.unwrap(),
        "set replaces any type"
    );
    assert_eq!(c.get("l").await.unwrap().as_deref(), Some("now a string"));
    c.flush_prefix().await.unwrap();
}

/// Locks: tokens, compare-and-release, expiry, blocking acquire.
pub async fn locks(f: &dyn CacheFactory) {
    let c = f.create("locks").await;
    let t1 = c
        .acquire_lock("job", 10, false, 0.0)
        .await
        .unwrap()
        .expect("free lock");
    assert_eq!(t1.len(), 36, "a UUID token");
    assert_eq!(c.acquire_lock("job", 10, false, 0.0).await.unwrap(), None);
    let started = std::time::Instant::now();
    assert_eq!(c.acquire_lock("job", 10, true, 0.3).await.unwrap(), None);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "blocking waits");
    assert!(
        waited < Duration::from_millis(300) + Duration::from_secs(2),
        "blocking_timeout_secs is honoured: waited {waited:?}"
    );
    assert!(!c.release_lock("job", "not-the-token").await.unwrap());
    assert!(
        c.exists("lock:job").await.unwrap(),
        "the lock key is lock:<name>"
    );
    assert!(c.release_lock("job", &t1).await.unwrap());
    assert!(
        !c.release_lock("job", &t1).await.unwrap(),
        "already released"
    );

    let t2 = c
        .acquire_lock("short", 1, false, 0.0)
        .await
        .unwrap()
        .expect("free");
    // A blocking acquire succeeds once the holder's lock expires.
    let t3 = c
        .acquire_lock("short", 5, true, 3.0)
        .await
        .unwrap()
        .expect("after expiry");
    assert_ne!(t2, t3);
    assert!(
        !c.release_lock("short", &t2).await.unwrap(),
        "expired token cannot release"
    );
    assert!(c.release_lock("short", &t3).await.unwrap());

    // Spans that do not fit a duration are refused, never a panic.
    for (blocking, wait) in [
        (false, 1e20),
        (true, 1e20),
        (true, f64::INFINITY),
        (true, -1.0),
    ] {
        let r = c.acquire_lock("huge", 10, blocking, wait).await;
        assert_err(
            &*c,
            r,
            ErrorKind::InvalidInput,
            "blocking_timeout out of range",
        );
    }
    let r = c.acquire_lock("huge", u64::MAX, false, 0.0).await;
    assert_err(&*c, r, ErrorKind::InvalidInput, "lock timeout out of range");
    c.flush_prefix().await.unwrap();
}

/// 50 tasks increment a counter read-modify-write under one lock: no update is lost.
pub async fn lock_contention(f: &dyn CacheFactory) {
    let c = f.create("contention").await;
    c.set("counter", "0", Some(0)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = Arc::clone(&c);
        tasks.push(tokio::spawn(async move {
            let token = c
                .acquire_lock("counter", 30, true, 60.0)
                .await
                .unwrap()
                .expect("lock acquired within 60 s");
            let n: u64 = c.get("counter").await.unwrap().unwrap().parse().unwrap();
            sleep_ms(2).await;
            c.set("counter", &(n + 1).to_string(), Some(0))
                .await
                .unwrap();
            assert!(c.release_lock("counter", &token).await.unwrap());
        }));
    }
    for t in tasks {
        t.await.expect("task panicked");
    }
    assert_eq!(c.get("counter").await.unwrap().as_deref(), Some("50"));
    c.flush_prefix().await.unwrap();
}

/// Pipelines: results per command, prefixed keys, atomic mode, validation before running.
pub async fn pipelines(f: &dyn CacheFactory) {
    let c = f.create("pipes").await;
    let other = f.create("pipes-other").await;
    let results = c
        .pipeline()
        .hset("task", "state", "queued")
        .hset_multiple("task", &[("a", "1"), ("b", "2")])
        .expire("task", 100)
        .zadd("queue", "task", 5.0)
        .rpush("list", &["x", "y"])
        .set("plain", "v", Some(0))
        .incr("n", 3)
        .sadd("set", &["m"])
        .del("plain")
        .expire("missing", 10)
        .execute()
        .await
        .unwrap();
    assert_eq!(results, vec![1, 2, 1, 1, 2, 1, 3, 1, 1, 0]);
    assert_eq!(
        c.hget("task", "state").await.unwrap().as_deref(),
        Some("queued")
    );
    assert!((99..=100).contains(&c.ttl("task").await.unwrap()));
    assert_eq!(c.zscore("queue", "task").await.unwrap(), Some(5.0));
    assert_eq!(c.lrange("list", 0, -1).await.unwrap(), ["x", "y"]);
    assert!(!c.exists("plain").await.unwrap());
    assert_eq!(
        c.keys("*").await.unwrap(),
        ["list", "n", "queue", "set", "task"],
        "pipeline keys carry the prefix"
    );
    assert!(other.keys("*").await.unwrap().is_empty());

    let atomic = c
        .pipeline()
        .atomic()
        .incr("n", 1)
        .incr("n", 1)
        .execute()
        .await
        .unwrap();
    assert_eq!(atomic, vec![4, 5]);
    assert!(c.pipeline().execute().await.unwrap().is_empty());

    let bad = c
        .pipeline()
        .set("written?", "v", None)
        .zadd("queue", "m", f64::NAN)
        .execute()
        .await;
    assert_err(&*c, bad, ErrorKind::InvalidInput, "NaN in pipeline");
    assert!(!c.exists("written?").await.unwrap(), "nothing ran");
    let bad = c.pipeline().hset("", "f", "v").execute().await;
    assert_err(&*c, bad, ErrorKind::InvalidInput, "empty key in pipeline");

    let failing = c
        .pipeline()
        .incr("list", 1)
        .set("after", "v", None)
        .execute()
        .await;
    assert_err(
        &*c,
        failing,
        ErrorKind::InvalidInput,
        "wrong type in pipeline",
    );
    assert!(c.exists("after").await.unwrap(), "later commands still ran");
    c.flush_prefix().await.unwrap();
}

/// Lua scripts: keys are prefixed, replies convert to JSON; `Unsupported` where the cache
/// cannot run Lua.
pub async fn scripts(f: &dyn CacheFactory) {
    let c = f.create("scripts").await;
    let script = "redis.call('SET', KEYS[1], ARGV[1]); \
                  return {KEYS[1], redis.call('GET', KEYS[1]), 7, false}";
    if !c.supports_lua() {
        assert_err(
            &*c,
            c.eval_lua(script, &["k"], &["v"]).await,
            ErrorKind::Unsupported,
            "lua",
        );
        // The built-in scripts work natively.
        assert_eq!(c.rpush_expire_llen("q", "v", 10).await.unwrap(), 1);
        c.flush_prefix().await.unwrap();
        return;
    }
    let reply = c.eval_lua(script, &["k"], &["v"]).await.unwrap();
    let full_key = format!("{}k", c.key_prefix());
    assert_eq!(reply, json!([full_key, "v", 7, null]));
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(
        c.eval_lua("return nil", &[], &[]).await.unwrap(),
        json!(null)
    );
    assert_eq!(
        c.eval_lua("return ARGV[1] .. ARGV[2]", &[], &["a", "b"])
            .await
            .unwrap(),
        json!("ab")
    );
    assert_err(
        &*c,
        c.eval_lua("this is not lua", &[], &[]).await,
        ErrorKind::InvalidInput,
        "bad script",
    );
    assert_err(
        &*c,
        c.eval_lua("return 1", &[""], &[]).await,
        ErrorKind::InvalidInput,
        "empty key",
    );
    c.flush_prefix().await.unwrap();
}

/// Prefix isolation, `keys` patterns (prefixes with glob characters match literally),
/// `flush_prefix` clearing only its own keys.
pub async fn prefixes(f: &dyn CacheFactory) {
    let a = f.create("iso-a").await;
    let b = f.create("iso-b").await;
    let g = f.create("iso-[g]*").await;
    a.set("user:1", "a1", None).await.unwrap();
    a.set("user:2", "a2", None).await.unwrap();
    a.rpush("queue", &["x"]).await.unwrap();
    b.set("user:1", "b1", None).await.unwrap();
    g.set("user:1", "g1", None).await.unwrap();
    assert_eq!(a.get("user:1").await.unwrap().as_deref(), Some("a1"));
    assert_eq!(b.get("user:1").await.unwrap().as_deref(), Some("b1"));
    assert_eq!(b.get("user:2").await.unwrap(), None);
    assert_eq!(a.keys("*").await.unwrap(), ["queue", "user:1", "user:2"]);
    assert_eq!(a.keys("user:*").await.unwrap(), ["user:1", "user:2"]);
    assert_eq!(a.keys("user:?").await.unwrap(), ["user:1", "user:2"]);
    assert_eq!(a.keys("user:[2-9]").await.unwrap(), ["user:2"]);
    assert_eq!(b.keys("*").await.unwrap(), ["user:1"]);
    assert_eq!(
        g.keys("*").await.unwrap(),
        ["user:1"],
        "glob characters in the prefix"
    );
    assert_eq!(a.flush_prefix().await.unwrap(), 3);
    assert!(a.keys("*").await.unwrap().is_empty());
    assert_eq!(
        b.get("user:1").await.unwrap().as_deref(),
        Some("b1"),
        "other prefix intact"
    );
    assert_eq!(g.get("user:1").await.unwrap().as_deref(), Some("g1"));
    let info = a.info().await.unwrap();
    assert!(!info.is_empty());
    assert!(a.is_connected().await);
    b.flush_prefix().await.unwrap();
    g.flush_prefix().await.unwrap();
}

/// Bad arguments fail with `InvalidInput` before anything is written.
pub async fn bad_input(f: &dyn CacheFactory) {
    let c = f.create("bad").await;
    let c = &*c;
    assert_err(c, c.get("").await, ErrorKind::InvalidInput, "empty key get");
    assert_err(
        c,
        c.set("", "v", None).await,
        ErrorKind::InvalidInput,
        "empty key set",
    );
    assert_err(
        c,
        c.delete(&["ok", ""]).await,
        ErrorKind::InvalidInput,
        "empty key delete",
    );
    assert_err(
        c,
        c.rpush("l", &[]).await,
        ErrorKind::InvalidInput,
        "no values",
    );
    assert_err(
        c,
        c.lpush_json("l", &[]).await,
        ErrorKind::InvalidInput,
        "no json values",
    );
    assert_err(c, c.lpop("l", 0).await, ErrorKind::InvalidInput, "count 0");
    assert_err(
        c,
        c.hmset("h", &[]).await,
        ErrorKind::InvalidInput,
        "no fields",
    );
    assert_err(
        c,
        c.sadd("s", &[]).await,
        ErrorKind::InvalidInput,
        "no members",
    );
    assert_err(
        c,
        c.zadd("z", &[]).await,
        ErrorKind::InvalidInput,
        "no members",
    );
    assert_err(
        c,
        c.zadd("z", &[("ok", 1.0), ("m", f64::NAN)]).await,
        ErrorKind::InvalidInput,
        "NaN",
    );
    assert_err(
        c,
        c.zrangebyscore("z", f64::NAN, 1.0).await,
        ErrorKind::InvalidInput,
        "NaN min",
    );
    assert_err(
        c,
        c.zrem_range_by_score("z", 0.0, f64::NAN).await,
        ErrorKind::InvalidInput,
        "NaN max",
    );
    assert_err(
        c,
        c.rpush_expire_llen("q", "v", 0).await,
        ErrorKind::InvalidInput,
        "ttl 0",
    );
    assert_err(
        c,
        c.acquire_lock("", 10, false, 0.0).await,
        ErrorKind::InvalidInput,
        "lock name",
    );
    assert_err(
        c,
        c.acquire_lock("x", 0, false, 0.0).await,
        ErrorKind::InvalidInput,
        "lock ttl",
    );
    assert_err(
        c,
        c.acquire_lock("x", 1, true, f64::NAN).await,
        ErrorKind::InvalidInput,
        "wait",
    );
    assert_err(
        c,
        c.release_lock("x", "").await,
        ErrorKind::InvalidInput,
        "empty token",
    );
    assert_err(
        c,
        c.keys("").await,
        ErrorKind::InvalidInput,
        "empty pattern",
    );
    assert_err(
        c,
        c.set_with("k", "v", SetOptions::new().nx().xx()).await,
        ErrorKind::InvalidInput,
        "nx and xx",
    );
    assert_err(
        c,
        c.set_with("k", "v", SetOptions::new().ttl_secs(u64::MAX))
            .await,
        ErrorKind::InvalidInput,
        "huge ttl",
    );
    assert!(c.keys("*").await.unwrap().is_empty(), "nothing was written");
}

/// Where Redis and a naive in-memory map would differ, both caches give one answer: TTLs above
/// [`crate::MAX_TTL_SECS`] are refused on every call that takes one (nothing written), `incr`
/// and `hincrby` read integers as Redis does (`"+5"`, `" 5"`, `"05"` are not integers), a
/// score of -0.0 is stored as 0, and a pop count above what Redis takes returns the whole
/// list.
pub async fn edges_agree(f: &dyn CacheFactory) {
    let c = f.create("edges").await;
    let c = &*c;
    let too_long = crate::MAX_TTL_SECS + 1;
    c.set("k", "kept", Some(60)).await.unwrap();
    c.rpush("q", &["a"]).await.unwrap();
    assert!(c.set("max", "v", Some(crate::MAX_TTL_SECS)).await.unwrap());
    assert!(
        c.ttl("max").await.unwrap() > 0,
        "the longest TTL is accepted"
    );
    assert_err(
        c,
        c.set("k", "v", Some(too_long)).await,
        ErrorKind::InvalidInput,
        "set ttl",
    );
    assert_err(
        c,
        c.set_json("k", &json!(1), Some(u64::MAX)).await,
        ErrorKind::InvalidInput,
        "set_json ttl",
    );
    assert_err(
        c,
        c.set_with("k", "v", SetOptions::new().ttl_millis(too_long * 1000))
            .await,
        ErrorKind::InvalidInput,
        "set_with ttl_millis",
    );
    assert_err(
        c,
        c.expire("k", too_long).await,
        ErrorKind::InvalidInput,
        "expire",
    );
    assert_err(
        c,
        c.rpush_expire_llen("q", "b", too_long).await,
        ErrorKind::InvalidInput,
        "rpush_expire_llen",
    );
    assert_err(
        c,
        c.pipeline()
            .set("p", "v", None)
            .expire("k", too_long)
            .execute()
            .await,
        ErrorKind::InvalidInput,
        "pipeline expire",
    );
    assert_err(
        c,
        c.pipeline().set("p", "v", Some(too_long)).execute().await,
        ErrorKind::InvalidInput,
        "pipeline set",
    );
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some("kept"));
    let ttl = c.ttl("k").await.unwrap();
    assert!(
        (1..=60).contains(&ttl),
        "the refused expire left the TTL ({ttl})"
    );
    assert_eq!(c.lrange("q", 0, -1).await.unwrap(), ["a"], "nothing pushed");
    assert_eq!(
        c.get("p").await.unwrap(),
        None,
        "no command of a refused pipeline ran"
    );

    for text in [
        "+5",
        " 5",
        "5 ",
        "05",
        "-0",
        "1e3",
        "5.0",
        "9223372036854775808",
    ] {
        c.set("n", text, None).await.unwrap();
        assert_err(c, c.incr("n", 1).await, ErrorKind::InvalidInput, text);
        assert_eq!(
            c.get("n").await.unwrap().as_deref(),
            Some(text),
            "{text:?} kept"
        );
        c.hset("h", "f", text).await.unwrap();
        assert_err(
            c,
            c.hincrby("h", "f", 1).await,
            ErrorKind::InvalidInput,
            text,
        );
    }
    c.set("n", "-5", None).await.unwrap();
    assert_eq!(c.incr("n", 1).await.unwrap(), -4);
    c.hset("h", "f", "0").await.unwrap();
    assert_eq!(c.hincrby("h", "f", 7).await.unwrap(), 7);

    c.zadd("z", &[("neg", -0.0), ("pos", 0.0)]).await.unwrap();
    let s = c.zscore("z", "neg").await.unwrap().expect("member");
    assert!(
        s == 0.0 && s.is_sign_positive(),
        "-0.0 is stored as 0 ({s})"
    );

    c.rpush("l", &["1", "2", "3"]).await.unwrap();
    assert_eq!(c.lpop("l", usize::MAX).await.unwrap(), ["1", "2", "3"]);
    c.rpush("l", &["1", "2", "3"]).await.unwrap();
    assert_eq!(c.rpop("l", usize::MAX).await.unwrap(), ["3", "2", "1"]);
    c.flush_prefix().await.unwrap();
}

/// After `close`, calls fail with `NotInitialized`; other caches are unaffected.
pub async fn close(f: &dyn CacheFactory) {
    let c = f.create("close").await;
    let other = f.create("close-other").await;
    c.set("k", "v", None).await.unwrap();
    other.set("k", "v", None).await.unwrap();
    c.close().await.unwrap();
    c.close().await.unwrap();
    assert!(!c.is_connected().await);
    assert_err(
        &*c,
        c.get("k").await,
        ErrorKind::NotInitialized,
        "get after close",
    );
    assert_err(
        &*c,
        c.rpush("l", &["x"]).await,
        ErrorKind::NotInitialized,
        "rpush after close",
    );
    assert_eq!(other.get("k").await.unwrap().as_deref(), Some("v"));
    let again = f.create("close").await;
    assert_eq!(again.flush_prefix().await.unwrap(), 1);
    other.flush_prefix().await.unwrap();
}
