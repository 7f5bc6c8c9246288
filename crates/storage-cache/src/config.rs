//! Configuration of [`crate::RedisCache`] (the original's `RedisCacheConfig` dataclass).

use std::fmt;
use std::time::Duration;

use redis::IntoConnectionInfo;
use serde::{Deserialize, Serialize};
use storage_core::config::{Secret, lenient, lenient_opt};
use storage_core::{Result, StorageError};

/// Configuration of [`crate::RedisCache`]: the fields and defaults of the original's
/// `RedisCacheConfig`, plus `pool_timeout`. Numbers and booleans also load from strings
/// (`port: "${REDIS_PORT:6379}"`); unknown keys are ignored. `Debug` never prints the password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisCacheConfig {
    /// Server host name or address. Default `"localhost"`.
    pub host: String,
    /// Server TCP port. Default 6379.
    #[serde(deserialize_with = "lenient")]
    pub port: u16,
    /// Password (`AUTH`), `None` for none. Default `None`.
    #[serde(
        deserialize_with = "secret_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<Secret>,
    /// Database number (`SELECT`). Default 0.
    #[serde(deserialize_with = "lenient")]
    pub db: i64,
    /// Prepended to every key, including keys inside Lua scripts, pipelines and locks.
    /// Default `"opencontext:"`.
    pub key_prefix: String,
    /// Expiry in seconds applied by `set`/`set_json` when the caller passes no TTL; 0 means
    /// such keys never expire. Default 3600.
    #[serde(deserialize_with = "lenient")]
    pub default_ttl: u64,
    /// Size of the connection pool (at least 1). Default 50.
    #[serde(deserialize_with = "lenient")]
    pub max_connections: usize,
    /// How long one command may take, in seconds, before it fails with a retryable `Timeout`.
    /// Default 5.0.
    #[serde(deserialize_with = "lenient")]
    pub socket_timeout: f64,
    /// How long opening a connection may take, in seconds. Default 5.0.
    #[serde(deserialize_with = "lenient")]
    pub socket_connect_timeout: f64,
    /// Whether a read-only command that timed out is retried once (writes never are: a write
    /// that timed out may have been applied). Default `true`.
    #[serde(deserialize_with = "lenient")]
    pub retry_on_timeout: bool,
    /// Accepted for compatibility with the original and otherwise ignored: this API always
    /// returns `String` values (a stored value that is not UTF-8 is a `DataCorrupted` error).
    /// Default `true`.
    #[serde(deserialize_with = "lenient")]
    pub decode_responses: bool,
    /// How long a caller waits for a free pooled connection when all `max_connections` are in
    /// use, in seconds, before failing with a retryable `Timeout` (back-pressure). Default 5.0,
    /// the wait of the original's `BlockingConnectionPool`.
    #[serde(deserialize_with = "lenient_opt")]
    pub pool_timeout: Option<f64>,
}

fn secret_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Secret>, D::Error> {
    let s = Secret::deserialize(d)?;
    Ok((!s.is_empty()).then_some(s))
}

impl Default for RedisCacheConfig {
    fn default() -> Self {
        RedisCacheConfig {
            host: "localhost".to_owned(),
            port: 6379,
            password: None,
            db: 0,
            key_prefix: "opencontext:".to_owned(),
            default_ttl: 3600,
            max_connections: 50,
            socket_timeout: 5.0,
            socket_connect_timeout: 5.0,
            retry_on_timeout: true,
            decode_responses: true,
            pool_timeout: Some(5.0),
        }
    }
}

impl fmt::Debug for RedisCacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password)
            .field("db", &self.db)
            .field("key_prefix", &self.key_prefix)
            .field("default_ttl", &self.default_ttl)
            .field("max_connections", &self.max_connections)
            .field("socket_timeout", &self.socket_timeout)
            .field("socket_connect_timeout", &self.socket_connect_timeout)
            .field("retry_on_timeout", &self.retry_on_timeout)
            .field("decode_responses", &self.decode_responses)
            .field("pool_timeout", &self.pool_timeout)
            .finish()
    }
}

impl RedisCacheConfig {
    /// The default configuration with host, port, password and db taken from a URL
    /// `redis://[:password@]host[:port][/db]`.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] when the URL does not parse or is not a TCP URL.
    pub fn from_url(url: &str) -> Result<Self> {
        let info = url
            .into_connection_info()
            .map_err(|e| StorageError::config(format!("invalid Redis URL: {e}")))?;
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            _ => {
                return Err(StorageError::config(
                    "only redis:// TCP URLs are supported (no TLS, no unix socket)",
                ));
            }
        };
        let settings = info.redis_settings();
        Ok(RedisCacheConfig {
            host,
            port,
            password: settings.password().map(Secret::new),
            db: settings.db(),
            ..Self::default()
        })
    }

    /// `socket_timeout` as a [`Duration`].
    pub fn socket_timeout(&self) -> Duration {
        secs(self.socket_timeout)
    }

    /// `socket_connect_timeout` as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        secs(self.socket_connect_timeout)
    }

    /// `pool_timeout` as a [`Duration`] (5 s when unset).
    pub fn pool_timeout(&self) -> Duration {
        secs(self.pool_timeout.unwrap_or(5.0))
    }

    /// The longest one attempt of a [`crate::RedisCache`] call can take before it fails with
    /// a retryable `Timeout`: `pool_timeout` (waiting for a free slot) +
    /// `socket_connect_timeout` (opening, or checking with `PING`, the slot's connection) +
    /// `socket_timeout` (the command's round trips). A read-only call that timed out makes a
    /// second attempt when `retry_on_timeout` is set, so it is bounded by twice this value.
    pub fn attempt_timeout(&self) -> Duration {
        self.pool_timeout() + self.connect_timeout() + self.socket_timeout()
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<()> {
        if self.host.trim().is_empty() {
            return Err(StorageError::config("redis config.host must not be empty"));
        }
        if self.max_connections == 0 {
            return Err(StorageError::config(
                "redis config.max_connections must be at least 1",
            ));
        }
        if self.db < 0 {
            return Err(StorageError::config("redis config.db must not be negative"));
        }
        if self.default_ttl > crate::MAX_TTL_SECS {
            return Err(StorageError::config(format!(
                "redis config.default_ttl is {} s, the limit is {} s (100 years)",
                self.default_ttl,
                crate::MAX_TTL_SECS
            )));
        }
        for (name, value) in [
            ("socket_timeout", self.socket_timeout),
            ("socket_connect_timeout", self.socket_connect_timeout),
            ("pool_timeout", self.pool_timeout.unwrap_or(5.0)),
        ] {
            if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
                return Err(StorageError::config(format!(
                    "redis config.{name} is {value}, it must be a number of seconds above 0 \
                     and at most 86400"
                )));
            }
        }
        Ok(())
    }
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals() {
        let c = RedisCacheConfig::default();
        assert_eq!(c.host, "localhost");
        assert_eq!(c.port, 6379);
        assert!(c.password.is_none());
        assert_eq!(c.db, 0);
        assert_eq!(c.key_prefix, "opencontext:");
        assert_eq!(c.default_ttl, 3600);
        assert_eq!(c.max_connections, 50);
        assert_eq!(c.socket_timeout, 5.0);
        assert_eq!(c.socket_connect_timeout, 5.0);
        assert!(c.retry_on_timeout);
        assert!(c.decode_responses);
        assert_eq!(c.pool_timeout(), Duration::from_secs(5));
        let empty: RedisCacheConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.port, 6379);
        assert_eq!(empty.key_prefix, "opencontext:");
    }

    #[test]
    fn lenient_values_and_redacted_password() {
        let c: RedisCacheConfig = serde_json::from_value(serde_json::json!({
            "host": "redis.internal", "port": "6380", "password": "hunter2", "db": "2",
            "default_ttl": "60", "retry_on_timeout": "false", "socket_timeout": "1.5",
            "pool_timeout": "", "unknown": 1
        }))
        .unwrap();
        assert_eq!((c.port, c.db, c.default_ttl), (6380, 2, 60));
        assert!(!c.retry_on_timeout);
        assert_eq!(c.socket_timeout(), Duration::from_millis(1500));
        assert_eq!(c.pool_timeout, None);
        assert_eq!(c.password.as_ref().unwrap().expose(), "hunter2");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("redis.internal"));
        let none: RedisCacheConfig =
            serde_json::from_value(serde_json::json!({"password": null})).unwrap();
        assert!(none.password.is_none());
    }

    #[test]
    fn from_url_and_validation() {
        let c = RedisCacheConfig::from_url("redis://:pw@10.0.0.1:6390/3").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.db), ("10.0.0.1", 6390, 3));
        assert_eq!(c.password.unwrap().expose(), "pw");
        assert!(RedisCacheConfig::from_url("nope").is_err());
        assert!(RedisCacheConfig::default().validate().is_ok());
        let c = RedisCacheConfig {
            max_connections: 0,
            ..RedisCacheConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("max_connections"), "{e}");
        let c = RedisCacheConfig {
            socket_timeout: f64::NAN,
            ..RedisCacheConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("socket_timeout"), "{e}");
    }
}
