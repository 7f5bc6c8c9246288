//! Process-wide caches: the original's `get_redis_cache`, `init_redis_cache`,
//! `close_redis_cache` and `get_cache`.

use std::sync::Arc;

use storage_core::Result;
use tokio::sync::Mutex;

use crate::{Cache, InMemoryCache, RedisCache, RedisCacheConfig};

static REDIS: Mutex<Option<Arc<RedisCache>>> = Mutex::const_new(None);
static MEMORY: Mutex<Option<Arc<InMemoryCache>>> = Mutex::const_new(None);

/// The process-wide [`RedisCache`], created from `config` (default: [`RedisCacheConfig`]'s
/// defaults) on the first call; later calls return the same instance and ignore `config`.
/// Creating does not contact the server.
///
/// # Errors
/// `Config` when the configuration of the first call is invalid (nothing is stored then).
pub async fn get_redis_cache(config: Option<RedisCacheConfig>) -> Result<Arc<RedisCache>> {
    let mut slot = REDIS.lock().await;
    if let Some(cache) = slot.as_ref() {
        return Ok(Arc::clone(cache));
    }
    let cache = Arc::new(RedisCache::new(config.unwrap_or_default())?);
    *slot = Some(Arc::clone(&cache));
    Ok(cache)
}

/// Replaces the process-wide [`RedisCache`] with one created from `config`. The previous
/// instance is not closed: holders keep using it until they drop it.
///
/// # Errors
/// `Config` when the configuration is invalid (the previous instance stays in place).
pub async fn init_redis_cache(config: RedisCacheConfig) -> Result<Arc<RedisCache>> {
    let cache = Arc::new(RedisCache::new(config)?);
    *REDIS.lock().await = Some(Arc::clone(&cache));
    Ok(cache)
}

/// Closes and forgets the process-wide [`RedisCache`] (holders get `NotInitialized`), and
/// forgets the in-memory fallback of [`get_cache`]. The next call creates new ones.
///
/// # Errors
/// As [`Cache::close`].
pub async fn close_redis_cache() -> Result<()> {
    let redis = REDIS.lock().await.take();
    MEMORY.lock().await.take();
    match redis {
        Some(cache) => cache.close().await,
        None => Ok(()),
    }
}

/// The best available cache: the process-wide [`RedisCache`] (see [`get_redis_cache`]) when
/// it answers a `PING` within `socket_connect_timeout`, otherwise a process-wide
/// [`InMemoryCache`] with the same key prefix and default TTL, announced with
/// `tracing::warn!`. Every caller that falls back gets the same in-memory instance, so state
/// is shared within the process (never between processes). Data written to the fallback is
/// not copied to Redis when Redis becomes reachable later.
pub async fn get_cache(config: Option<RedisCacheConfig>) -> Arc<dyn Cache> {
    let fallback_config = config.clone().unwrap_or_default();
    match get_redis_cache(config).await {
        Ok(redis) => {
            if redis.is_connected().await {
                return redis;
            }
            let c = redis.config();
            tracing::warn!(
                host = %c.host,
                port = c.port,
                "Redis unavailable, falling back to the in-memory cache \
                 (state is not shared between processes)"
            );
            memory_fallback(c).await
        }
        Err(e) => {
            tracing::warn!(error = %e, "invalid Redis configuration, falling back to the in-memory cache");
            memory_fallback(&fallback_config).await
        }
    }
}

async fn memory_fallback(config: &RedisCacheConfig) -> Arc<dyn Cache> {
    let mut slot = MEMORY.lock().await;
    let cache = slot.get_or_insert_with(|| Arc::new(InMemoryCache::from_config(config)));
    Arc::clone(cache) as Arc<dyn Cache>
}
