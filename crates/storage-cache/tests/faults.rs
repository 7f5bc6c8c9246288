//! Fault tests on a PRIVATE redis-server (started on a free port, frozen with SIGSTOP, resumed
//! with SIGCONT, killed at the end): every kind of call fails with a `Timeout` within its
//! configured bound while the server is frozen, writes report an unknown outcome, a stalled
//! `acquire_lock` honours its blocking timeout and leaves no lock behind, and the cache works
//! again once the server resumes. Skipped with a message when `redis-server` is not on `PATH`
//! (failing when `CI` is set). Never touches the shared server.

use std::future::Future;
use std::time::{Duration, Instant};

use storage_cache::testkit::PrivateRedis;
use storage_cache::{Cache, RedisCache, RedisCacheConfig};
use storage_core::{ErrorKind, Result, WriteOutcome};

/// Scheduling noise allowed on top of a configured bound.
const SLACK: Duration = Duration::from_millis(1000);

fn fast_config(server: &PrivateRedis) -> RedisCacheConfig {
    RedisCacheConfig {
        socket_timeout: 0.5,
        socket_connect_timeout: 0.5,
        pool_timeout: Some(0.5),
        max_connections: 4,
        ..server.config()
    }
}

/// Runs `call`, checks it failed with `Timeout` within `bound` + [`SLACK`], returns the error.
async fn times_out<T: std::fmt::Debug>(
    what: &str,
    bound: Duration,
    call: impl Future<Output = Result<T>>,
) -> storage_core::StorageError {
    let started = Instant::now();
    let result = tokio::time::timeout(bound + SLACK * 10, call).await;
    let took = started.elapsed();
    let err = match result {
        Err(_) => panic!("{what}: still running after {took:?} (bound {bound:?})"),
        Ok(Ok(v)) => panic!("{what}: succeeded against a frozen server: {v:?}"),
        Ok(Err(e)) => e,
    };
    assert_eq!(err.kind(), ErrorKind::Timeout, "{what}: {err}");
    assert!(
        took <= bound + SLACK,
        "{what}: took {took:?}, bound {bound:?}: {err}"
    );
    assert_eq!(err.backend_name(), "redis", "{what}: {err}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_times_out_within_its_bound_while_redis_is_stopped() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let config = fast_config(&server);
    let attempt = config.attempt_timeout();
    let cache = RedisCache::connect(config.clone()).await.unwrap();
    cache.set("k", "v", Some(60)).await.unwrap();
    cache.rpush("q", &["a"]).await.unwrap();
    server.stop();
    let read = times_out("get", attempt * 2, cache.get("k")).await;
    assert_eq!(
        read.outcome(),
        WriteOutcome::NotApplied,
        "a read changes nothing"
    );
    assert!(read.is_retryable());

    // Writes: sent on a socket that no longer answers (Unknown), or not sent at all because
    // no new socket opened in time (NotApplied); see the next test for the Unknown case.
    for (what, idempotent, err) in [
        (
            "set",
            true,
            times_out("set", attempt, cache.set("k", "w", Some(60))).await,
        ),
        (
            "incr",
            false,
            times_out("incr", attempt, cache.incr("n", 1)).await,
        ),
        (
            "rpush",
            false,
            times_out("rpush", attempt, cache.rpush("q", &["b"])).await,
        ),
        (
            "pipeline with incr",
            false,
            times_out(
                "pipeline",
                attempt,
                cache.pipeline().hset("h", "f", "v").incr("n", 1).execute(),
            )
            .await,
        ),
        (
            "eval_lua",
            false,
            times_out(
                "eval_lua",
                attempt,
                cache.eval_lua("return redis.call('INCR', KEYS[1])", &["n"], &[]),
            )
            .await,
        ),
        (
            "rpush_expire_llen",
            false,
            times_out(
                "rpush_expire_llen",
                attempt,
                cache.rpush_expire_llen("q", "c", 60),
            )
            .await,
        ),
    ] {
        match err.outcome() {
            WriteOutcome::Unknown => assert_eq!(err.is_retryable(), idempotent, "{what}: {err}"),
            _ => assert!(
                err.is_retryable(),
                "{what}: not applied, so retryable: {err}"
            ),
        }
    }

    times_out(
        "acquire_lock (not blocking)",
        attempt,
        cache.acquire_lock("L", 30, false, 0.0),
    )
    .await;
    let lock = times_out(
        "acquire_lock (blocking 1 s)",
        Duration::from_secs(1),
        cache.acquire_lock("L", 30, true, 1.0),
    )
    .await;
    assert!(lock.is_retryable(), "{lock}");
    times_out("release_lock", attempt, cache.release_lock("L", "t")).await;

    // Opening: a new cache, its first call, and a lent connection.
    times_out(
        "connect",
        config.connect_timeout(),
        RedisCache::connect(config.clone()),
    )
    .await;
    let fresh = RedisCache::new(config.clone()).unwrap();
    times_out("first get of a new cache", attempt * 2, fresh.get("k")).await;
    times_out(
        "connection",
        attempt + config.connect_timeout(),
        cache.connection(),
    )
    .await;
    assert!(!cache.is_connected().await);

    server.resume();
    // Whatever was pending runs now; the cache recovers on its own.
    let back = Instant::now();
    loop {
        match cache.get("k").await {
            Ok(_) => break,
            Err(e) => assert!(back.elapsed() < Duration::from_secs(5), "no recovery: {e}"),
        }
    }
    assert!(cache.set("k", "after", Some(60)).await.unwrap());
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("after"));
    assert_eq!(
        cache.pipeline().incr("p", 1).execute().await.unwrap(),
        vec![1]
    );
    assert!(fresh.is_connected().await);
    let token = cache
        .acquire_lock("L", 30, true, 2.0)
        .await
        .unwrap()
        .expect("no lock left behind by the abandoned attempts");
    assert!(cache.release_lock("L", &token).await.unwrap());
    cache.close().await.unwrap();
}

/// A checkout checks connections idle for more than 1 s with `PING`; against a frozen server
/// each check times out and the pool moves on to the next connection. The checkout as a whole
/// is bounded (it took one `socket_timeout` per shared socket, plus a connect, before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_over_idle_connections_is_bounded_as_a_whole() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let config = RedisCacheConfig {
        socket_timeout: 1.0,
        socket_connect_timeout: 0.3,
        pool_timeout: Some(0.3),
        max_connections: 16,
        ..server.config()
    };
    let cache = RedisCache::connect(config.clone()).await.unwrap();
    cache.set("k", "v", Some(60)).await.unwrap();
    // Holding 16 loans makes the pool create 16 slots (spread over its 4 shared sockets).
    let mut loans = Vec::new();
    for _ in 0..16 {
        loans.push(cache.connection().await.unwrap());
    }
    drop(loans);
    assert_eq!(cache.pool_status().size, 16);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.stop();
    let err = times_out(
        "set",
        config.attempt_timeout(),
        cache.set("k", "w", Some(60)),
    )
    .await;
    assert!(err.is_retryable(), "{err}");
    server.resume();
    assert!(cache.set("k", "after", Some(60)).await.unwrap());
    cache.close().await.unwrap();
}

/// A write whose request reached a socket that then never answered may have been applied:
/// `WriteOutcome::Unknown`, retryable only when repeating it is harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_sent_without_an_answer_have_an_unknown_outcome() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let config = fast_config(&server);
    let attempt = config.attempt_timeout();
    type Call = fn(&RedisCache) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send + '_>>;
    let calls: [(&str, bool, Call); 8] = [
        ("set", true, |c| {
            Box::pin(async { c.set("k", "w", Some(60)).await.map(drop) })
        }),
        ("delete", true, |c| {
            Box::pin(async { c.delete(&["k"]).await.map(drop) })
        }),
        ("hset", true, |c| {
            Box::pin(async { c.hset("h", "f", "v").await.map(drop) })
        }),
        ("incr", false, |c| {
            Box::pin(async { c.incr("n", 1).await.map(drop) })
        }),
        ("lpush", false, |c| {
            Box::pin(async { c.lpush("q", &["a"]).await.map(drop) })
        }),
        ("rpush_expire_llen", false, |c| {
            Box::pin(async { c.rpush_expire_llen("q", "a", 60).await.map(drop) })
        }),
        ("pipeline hset+expire", true, |c| {
            Box::pin(async {
                c.pipeline()
                    .hset("h", "f", "v")
                    .expire("h", 60)
                    .execute()
                    .await
                    .map(drop)
            })
        }),
        ("pipeline rpush", false, |c| {
            Box::pin(async { c.pipeline().rpush("q", &["a"]).execute().await.map(drop) })
        }),
    ];
    for (what, idempotent, call) in calls {
        // A fresh cache whose one socket is open and warm.
        let cache = RedisCache::connect(RedisCacheConfig {
            max_connections: 1,
            ..config.clone()
        })
        .await
        .unwrap();
        server.stop();
        let err = times_out(what, attempt, call(&cache)).await;
        server.resume();
        assert_eq!(err.outcome(), WriteOutcome::Unknown, "{what}: {err}");
        assert_eq!(err.is_retryable(), idempotent, "{what}: {err}");
        assert!(
            err.to_string().contains("may or may not have been applied"),
            "{err}"
        );
        cache.close().await.unwrap();
    }
}

/// Item 8 of issue 8: with the server frozen, a blocking acquire with a 2 s blocking timeout
/// gave up only after the 5 s socket timeout, and the SET it had sent was applied when the
/// server resumed, under a token nobody had: the lock stayed taken for its 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_acquire_honours_its_blocking_timeout_and_leaves_no_lock() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let config = server.config(); // socket_timeout 5 s
    let cache = RedisCache::connect(config.clone()).await.unwrap();
    cache.set("warm", "1", Some(60)).await.unwrap();

    server.stop();
    let err = times_out(
        "acquire_lock(L3, 30, blocking, 2.0)",
        Duration::from_secs(2),
        cache.acquire_lock("L3", 30, true, 2.0),
    )
    .await;
    assert_eq!(err.outcome(), WriteOutcome::Unknown, "{err}");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("blocking_timeout_secs"), "{err}");
    server.resume();

    // The abandoned SET ran when the server resumed, and the queued compare-and-delete after
    // it: the next caller gets the lock at once instead of waiting 30 s.
    let token = cache
        .acquire_lock("L3", 30, true, 2.0)
        .await
        .unwrap()
        .expect("the lock is free again");
    assert!(cache.release_lock("L3", &token).await.unwrap());
    assert!(!cache.exists("lock:L3").await.unwrap());
    cache.close().await.unwrap();
}

/// An attempt whose answer was lost is recognised by the next attempt of the same call
/// (same token), so a blocking acquire that outlives a short stall gets its own lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_acquire_recognises_its_own_unanswered_attempt() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let config = RedisCacheConfig {
        socket_timeout: 0.3,
        ..server.config()
    };
    let cache = RedisCache::connect(config).await.unwrap();
    cache.set("warm", "1", Some(60)).await.unwrap();
    server.stop();
    let acquiring = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.acquire_lock("own", 30, true, 5.0).await })
    };
    // Long enough for the first attempt (0.3 s bound) to be abandoned unanswered.
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.resume();
    let token = acquiring
        .await
        .unwrap()
        .unwrap()
        .expect("the call's own lock, not someone else's");
    let holder: Option<String> = {
        let mut raw = cache.connection().await.unwrap();
        redis::cmd("GET")
            .arg("fault-test:lock:own")
            .query_async(&mut *raw)
            .await
            .unwrap()
    };
    assert_eq!(holder.as_deref(), Some(token.as_str()));
    assert!(cache.release_lock("own", &token).await.unwrap());
    cache.close().await.unwrap();
}

/// Writes refused by the server were not applied; a pipeline with a refused command may
/// have applied the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_are_not_applied_and_partial_pipelines_are_unknown() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let cache = RedisCache::connect(server.config()).await.unwrap();
    cache.set("s", "text", Some(60)).await.unwrap();
    let err = cache.rpush("s", &["x"]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert_eq!(err.outcome(), WriteOutcome::NotApplied);
    let err = cache
        .pipeline()
        .set("other", "1", Some(60))
        .rpush("s", &["x"])
        .execute()
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), WriteOutcome::Unknown, "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(cache.get("other").await.unwrap().as_deref(), Some("1"));
    cache.close().await.unwrap();
}

/// A socket killed by the server is retired and replaced; a read on it is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_socket_is_replaced_and_reads_retry() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let config = RedisCacheConfig {
        max_connections: 1,
        ..server.config()
    };
    let cache = RedisCache::new(config).unwrap();
    cache.set("k", "v", Some(60)).await.unwrap();
    // Kill every client but the killer: the cache's shared socket (private server only).
    let killer = redis::Client::open(format!("redis://127.0.0.1:{}", server.port())).unwrap();
    let mut killer = killer.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut killer)
        .await
        .unwrap();
    assert_eq!(killed, 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    assert!(cache.set("k2", "v2", Some(60)).await.unwrap());
    cache.close().await.unwrap();
}
