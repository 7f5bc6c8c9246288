//! The process-wide accessors. One test, because they share process state.

use std::sync::Arc;

use storage_cache::testkit::RedisFactory;
use storage_cache::{
    Cache, RedisCacheConfig, close_redis_cache, get_cache, get_redis_cache, init_redis_cache,
};

fn unreachable_config() -> RedisCacheConfig {
    RedisCacheConfig {
        host: "127.0.0.1".into(),
        port: 1,
        socket_connect_timeout: 0.5,
        key_prefix: "global-test:".into(),
        default_ttl: 60,
        ..RedisCacheConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_accessors_and_fallback() {
    close_redis_cache().await.unwrap();

    // Concurrent first calls create exactly one instance.
    let handles: Vec<_> = (0..16)
        .map(|_| tokio::spawn(get_redis_cache(Some(unreachable_config()))))
        .collect();
    let mut caches = Vec::new();
    for h in handles {
        caches.push(h.await.unwrap().unwrap());
    }
    assert!(caches.iter().all(|c| Arc::ptr_eq(c, &caches[0])));
    assert_eq!(caches[0].config().port, 1);
    // Later configs are ignored, as in the original.
    let again = get_redis_cache(Some(RedisCacheConfig::default()))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&again, &caches[0]));

    // Unreachable Redis: the fallback is one shared in-memory cache with the same prefix.
    let first = get_cache(None).await;
    assert_eq!(first.backend_name(), "memory");
    assert_eq!(first.key_prefix(), "global-test:");
    first.set("k", "v", None).await.unwrap();
    let second = get_cache(None).await;
    assert_eq!(second.get("k").await.unwrap().as_deref(), Some("v"));
    assert!(
        (59..=60).contains(&second.ttl("k").await.unwrap()),
        "default_ttl kept"
    );

    // Invalid first config: still a working cache.
    close_redis_cache().await.unwrap();
    let bad = RedisCacheConfig {
        max_connections: 0,
        ..unreachable_config()
    };
    assert!(get_redis_cache(Some(bad.clone())).await.is_err());
    let fallback = get_cache(Some(bad)).await;
    assert_eq!(fallback.backend_name(), "memory");
    assert_eq!(
        fallback.get("k").await.unwrap(),
        None,
        "close_redis_cache reset the fallback"
    );

    // init replaces; close closes the instance and forgets it.
    let replaced = init_redis_cache(unreachable_config()).await.unwrap();
    let current = get_redis_cache(None).await.unwrap();
    assert!(Arc::ptr_eq(&replaced, &current));
    assert!(!Arc::ptr_eq(&replaced, &caches[0]));
    close_redis_cache().await.unwrap();
    assert!(!replaced.is_connected().await);
    let fresh = get_redis_cache(Some(unreachable_config())).await.unwrap();
    assert!(!Arc::ptr_eq(&fresh, &replaced));

    // A reachable server is used (skipped, or failing in CI, without one).
    if let Some(factory) = RedisFactory::from_env("global").await {
        close_redis_cache().await.unwrap();
        init_redis_cache(factory.config().clone()).await.unwrap();
        let cache = get_cache(None).await;
        assert_eq!(cache.backend_name(), "redis");
        cache.set("probe", "1", Some(10)).await.unwrap();
        assert_eq!(cache.get("probe").await.unwrap().as_deref(), Some("1"));
        close_redis_cache().await.unwrap();
        factory.cleanup().await.unwrap();
    }
    close_redis_cache().await.unwrap();
}
