//! RedisCache-specific behaviour: pool back-pressure, script loading, unreachable servers,
//! prefixed storage, blocking commands on lent connections. Needs a server at `REDIS_URL`
//! (skipped without one unless `CI` is set). Each test's keys live under its factory's prefix
//! and are removed when the factory drops, also when the test fails. Fault tests that stop a
//! server are in `faults.rs`, on a private one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_cache::testkit::RedisFactory;
use storage_cache::{Cache, RedisCache, RedisCacheConfig};
use storage_core::ErrorKind;

async fn factory(label: &str) -> Option<RedisFactory> {
    RedisFactory::from_env(label).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_waits_then_times_out() {
    let Some(f) = factory("backpressure").await else {
        return;
    };
    let config = RedisCacheConfig {
        max_connections: 1,
        pool_timeout: Some(0.3),
        ..f.config().clone()
    };
    let cache = Arc::new(RedisCache::new(config).unwrap());
    cache.set("k", "v", Some(60)).await.unwrap();

    let held = cache.connection().await.unwrap();
    let status = cache.pool_status();
    assert_eq!((status.max_size, status.available), (1, 0));
    let started = Instant::now();
    let err = cache.get("k").await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_retryable());
    assert_eq!((err.backend_name(), err.operation()), ("redis", "get"));
    assert!(waited >= Duration::from_millis(250), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");

    // A caller queued behind the held connection is served once it is returned.
    let waiter = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move { cache.get("k").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    assert_eq!(waiter.await.unwrap().unwrap().as_deref(), Some("v"));
    f.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_reload_after_script_flush_and_keys_are_prefixed_on_the_server() {
    let Some(f) = factory("scripts").await else {
        return;
    };
    let cache = RedisCache::new(f.config().clone()).unwrap();
    assert_eq!(cache.rpush_expire_llen("q", "a", 30).await.unwrap(), 1);
    let mut raw = cache.connection().await.unwrap();
    // Drop the server's script cache: the next EVALSHA gets NOSCRIPT and the script is loaded.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut *raw)
        .await
        .unwrap();
    assert_eq!(cache.rpush_expire_llen("q", "b", 30).await.unwrap(), 2);
    let token = cache
        .acquire_lock("l", 5, false, 0.0)
        .await
        .unwrap()
        .unwrap();
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut *raw)
        .await
        .unwrap();
    assert!(cache.release_lock("l", &token).await.unwrap());

    let full = format!("{}q", cache.key_prefix());
    let len: u64 = redis::cmd("LLEN")
        .arg(&full)
        .query_async(&mut *raw)
        .await
        .unwrap();
    assert_eq!(len, 2, "stored under the prefix");
    let bare: u64 = redis::cmd("EXISTS")
        .arg("q")
        .query_async(&mut *raw)
        .await
        .unwrap();
    assert_eq!(bare, 0);
    drop(raw);
    f.cleanup().await.unwrap();
}

#[tokio::test]
async fn unreachable_server_is_a_retryable_unavailable_error() {
    let config = RedisCacheConfig {
        host: "127.0.0.1".into(),
        port: 1,
        socket_connect_timeout: 0.5,
        password: Some(storage_core::config::Secret::new("sekrit")),
        ..RedisCacheConfig::default()
    };
    let err = RedisCache::connect(config.clone()).await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(err.is_retryable());
    let cache = RedisCache::new(config).unwrap();
    assert!(!cache.is_connected().await);
    let err = cache.rpush("q", &["x"]).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!((err.backend_name(), err.operation()), ("redis", "rpush"));
    let dbg = format!("{cache:?}");
    assert!(!dbg.contains("sekrit"), "{dbg}");
}

/// Item 10 of issue 8: a blocking command on a lent connection used to block one of the shared
/// sockets, and every `get` queued behind it waited for it. Lent connections now have a
/// socket of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_command_on_a_lent_connection_does_not_stall_other_calls() {
    let Some(f) = factory("blocking").await else {
        return;
    };
    let cache = Arc::new(RedisCache::new(f.config().clone()).unwrap());
    cache.set("k", "v", Some(60)).await.unwrap();
    let empty = format!("{}empty", cache.key_prefix());

    // The case: a BLPOP cancelled on the client keeps blocking its socket on the server.
    {
        let mut raw = cache.connection().await.unwrap();
        let mut cmd = redis::cmd("BLPOP");
        cmd.arg(&empty).arg(3);
        let blpop = cmd.query_async::<Option<(String, String)>>(&mut *raw);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), blpop)
                .await
                .is_err()
        );
    }
    // And one still waiting on the server while the cache is used.
    let mut raw = cache.connection().await.unwrap();
    let blocked = tokio::spawn(async move {
        redis::cmd("BLPOP")
            .arg(empty)
            .arg(2)
            .query_async::<Option<(String, String)>>(&mut *raw)
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let gets: Vec<_> = (0..16)
        .map(|_| {
            let cache = Arc::clone(&cache);
            tokio::spawn(async move { cache.get("k").await })
        })
        .collect();
    for get in gets {
        assert_eq!(get.await.unwrap().unwrap().as_deref(), Some("v"));
    }
    assert!(
        !blocked.is_finished(),
        "the gets waited for the BLPOP: they share its socket"
    );
    assert_eq!(
        blocked.await.unwrap().unwrap(),
        None,
        "BLPOP timed out on the server"
    );
    f.cleanup().await.unwrap();
}

/// Item 13 of issue 8: a test that fails still removes the keys it wrote on the shared server
/// (the factory cleans its prefix when dropped, also while the test unwinds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_test_leaves_no_keys_behind() {
    let Some(f) = factory("failing").await else {
        return;
    };
    let config = f.config().clone();
    let failing = tokio::spawn(async move {
        let cache = RedisCache::new(f.config().clone()).unwrap();
        cache.set("left", "behind?", Some(600)).await.unwrap();
        cache.rpush("list", &["x"]).await.unwrap();
        assert_eq!(cache.keys("*").await.unwrap().len(), 2);
        panic!("a failing test");
    });
    assert!(failing.await.unwrap_err().is_panic());
    let check = RedisCache::new(config).unwrap();
    assert_eq!(check.keys("*").await.unwrap(), Vec::<String>::new());
}
