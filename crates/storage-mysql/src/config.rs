//! Configuration of the MySQL/MariaDB backend.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_core::config::{Secret, lenient, lenient_opt};
use storage_core::{Result, StorageError};

/// Largest `max_retries`.
pub const MAX_RETRIES: u32 = 10;
/// Largest `retry_backoff_ms` and `max_backoff_ms`, in milliseconds (one minute).
pub const MAX_BACKOFF_MS: u64 = 60_000;
/// Largest `connect_timeout_ms` and `statement_timeout_ms`, in milliseconds (ten minutes).
pub const MAX_TIMEOUT_MS: u64 = 600_000;

/// TLS mode of the connections (`ssl_mode`), as MySQL's `--ssl-mode`.
///
/// Modes other than `disabled` and `preferred` need the crate feature `tls-rustls` (on by
/// default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslMode {
    /// Plain TCP.
    Disabled,
    /// TLS when the server offers it, plain TCP otherwise (the default, as the MySQL client).
    #[default]
    Preferred,
    /// TLS required; the server certificate is not verified.
    Required,
    /// TLS required; the certificate must chain to `ssl_ca` (or the bundled web roots).
    VerifyCa,
    /// As `verify_ca`, and the certificate must name the host.
    VerifyIdentity,
}

impl SslMode {
    pub(crate) fn to_sqlx(self) -> sqlx::mysql::MySqlSslMode {
        use sqlx::mysql::MySqlSslMode as M;
        match self {
            SslMode::Disabled => M::Disabled,
            SslMode::Preferred => M::Preferred,
            SslMode::Required => M::Required,
            SslMode::VerifyCa => M::VerifyCa,
            SslMode::VerifyIdentity => M::VerifyIdentity,
        }
    }
}

/// Configuration of [`crate::MysqlBackend`]: the `config:` map of a `mysql` entry of the
/// original's `storage.backends` list (`host`, `port`, `user`, `password`, `database`,
/// `charset`; its `pool_size`/`max_overflow` pool shape), plus our knobs. Unknown keys are
/// ignored; numbers and booleans also accept strings (`port: "${MYSQL_PORT:3306}"`).
///
/// Either `url` (`mysql://user:password@host:port/database?ssl-mode=required`, the format of
/// [sqlx's `MySqlConnectOptions`](https://docs.rs/sqlx/0.9.0/sqlx/mysql/struct.MySqlConnectOptions.html))
/// or the separate keys; when `url` is set, the separate connection keys are ignored except
/// `database` when the URL names none. `Debug` never prints the password (nor the URL's).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MysqlConfig {
    /// Connection URL; overrides host/port/user/password.
    pub url: Option<Secret>,
    /// Server host name or address. Default `localhost`.
    pub host: String,
    /// Server TCP port. Default 3306.
    #[serde(deserialize_with = "lenient")]
    pub port: u16,
    /// User name. Default `root`.
    pub user: String,
    /// Password (empty: none).
    pub password: Secret,
    /// Database (schema) name: letters, digits, `_` and `$`, at most 64 characters. Created
    /// at start-up when missing (see `create_database`). Default `opencontext`.
    pub database: String,
    /// Connection character set; only `utf8mb4` is accepted (the original's default).
    pub charset: String,
    /// Connections kept open (the original's SQLAlchemy `pool_size`). Default 20.
    #[serde(deserialize_with = "lenient")]
    pub pool_size: u32,
    /// Extra connections opened under load (the original's `max_overflow`); the pool holds at
    /// most `pool_size + max_overflow` connections. Default 10.
    #[serde(deserialize_with = "lenient")]
    pub max_overflow: u32,
    /// Connections opened at start-up and kept open at least. Default 0.
    #[serde(deserialize_with = "lenient")]
    pub min_connections: u32,
    /// How long a call waits for a free connection before failing with a retryable
    /// `Timeout`, in milliseconds (the original's `QueuePool(timeout=10)`). Default 10 000.
    #[serde(deserialize_with = "lenient")]
    pub acquire_timeout_ms: u64,
    /// Ping a connection before handing it out (the original's `pool_pre_ping`), so a
    /// connection the server closed is replaced instead of failing the call. Default `true`.
    #[serde(deserialize_with = "lenient")]
    pub test_before_acquire: bool,
    /// Close connections idle longer than this, in milliseconds; 0 keeps them. Default 600 000.
    #[serde(deserialize_with = "lenient")]
    pub idle_timeout_ms: u64,
    /// Replace connections older than this, in milliseconds (the original's `pool_recycle`);
    /// 0 keeps them. Default 3 600 000.
    #[serde(deserialize_with = "lenient")]
    pub max_lifetime_ms: u64,
    /// TLS mode. Default `preferred`.
    pub ssl_mode: SslMode,
    /// PEM file of the certificate authority for `verify_ca`/`verify_identity`.
    #[serde(deserialize_with = "lenient_opt_path")]
    pub ssl_ca: Option<PathBuf>,
    /// Create the database at start-up when it does not exist (as the original does).
    /// Default `true`.
    #[serde(deserialize_with = "lenient")]
    pub create_database: bool,
    /// Times a transaction is retried after a deadlock or lock wait timeout (the server rolled
    /// it back, so a retry cannot duplicate a write), 0 to [`MAX_RETRIES`] (10). Default 3.
    #[serde(deserialize_with = "lenient")]
    pub max_retries: u32,
    /// Backoff before the first retry, doubled for each further retry up to
    /// `max_backoff_ms`, in milliseconds, 0 to [`MAX_BACKOFF_MS`] (60 000). Default 20.
    #[serde(deserialize_with = "lenient")]
    pub retry_backoff_ms: u64,
    /// Longest backoff between two retries, in milliseconds, `retry_backoff_ms` to
    /// [`MAX_BACKOFF_MS`] (60 000). Default 1 000.
    #[serde(deserialize_with = "lenient")]
    pub max_backoff_ms: u64,
    /// How long opening a connection outside the pool may take (the connection that creates
    /// the database, and the pool's first connection in `open`), in milliseconds, 1 to
    /// [`MAX_TIMEOUT_MS`] (600 000). Then `open` fails with a retryable `Timeout`. Default
    /// 10 000. (Connections the pool opens later are bounded by `acquire_timeout_ms`.)
    #[serde(deserialize_with = "lenient")]
    pub connect_timeout_ms: u64,
    /// How long one attempt of a call may wait for the server once it holds a connection:
    /// every statement of the attempt and its commit, in milliseconds, 1 to
    /// [`MAX_TIMEOUT_MS`] (600 000). Then the call fails with a `Timeout` (retryable unless
    /// the outcome of a non-idempotent write is unknown, see `docs.md`) and the connection is
    /// closed. Each statement of `open` has the same bound. Default 30 000.
    #[serde(deserialize_with = "lenient")]
    pub statement_timeout_ms: u64,
    /// Prepared statements cached per connection. Default 100.
    #[serde(deserialize_with = "lenient")]
    pub statement_cache_capacity: usize,
    /// How long a statement waits for a row lock held by another transaction before failing
    /// with a retryable `Timeout`, in seconds (the session's `innodb_lock_wait_timeout`, 1 to
    /// 3600). Unset: the server's setting (50 s by default), so one call can wait
    /// `(max_retries + 1) * 50` s. Default unset.
    #[serde(deserialize_with = "lenient_opt")]
    pub lock_wait_timeout_secs: Option<u32>,
}

fn lenient_opt_path<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<PathBuf>, D::Error> {
    let s: Option<String> = lenient_opt(d)?;
    Ok(s.filter(|s| !s.trim().is_empty()).map(PathBuf::from))
}

impl Default for MysqlConfig {
    fn default() -> Self {
        MysqlConfig {
            url: None,
            host: "localhost".into(),
            port: 3306,
            user: "root".into(),
            password: Secret::default(),
            database: "opencontext".into(),
            charset: "utf8mb4".into(),
            pool_size: 20,
            max_overflow: 10,
            min_connections: 0,
            acquire_timeout_ms: 10_000,
            test_before_acquire: true,
            idle_timeout_ms: 600_000,
            max_lifetime_ms: 3_600_000,
            ssl_mode: SslMode::Preferred,
            ssl_ca: None,
            create_database: true,
            max_retries: 3,
            retry_backoff_ms: 20,
            max_backoff_ms: 1_000,
            connect_timeout_ms: 10_000,
            statement_timeout_ms: 30_000,
            statement_cache_capacity: 100,
            lock_wait_timeout_secs: None,
        }
    }
}

impl fmt::Debug for MysqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MysqlConfig")
            .field("url", &self.url.as_ref().map(|u| redact_url(u.expose())))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("database", &self.database)
            .field("charset", &self.charset)
            .field("pool_size", &self.pool_size)
            .field("max_overflow", &self.max_overflow)
            .field("min_connections", &self.min_connections)
            .field("acquire_timeout_ms", &self.acquire_timeout_ms)
            .field("test_before_acquire", &self.test_before_acquire)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("max_lifetime_ms", &self.max_lifetime_ms)
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_ca", &self.ssl_ca)
            .field("create_database", &self.create_database)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff_ms", &self.retry_backoff_ms)
            .field("max_backoff_ms", &self.max_backoff_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("statement_cache_capacity", &self.statement_cache_capacity)
            .field("lock_wait_timeout_secs", &self.lock_wait_timeout_secs)
            .finish()
    }
}

/// The URL with its password replaced by `***` (and unparseable URLs replaced entirely).
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                // Cannot fail for URLs with a host, which a password implies.
                let _ = u.set_password(Some("***"));
            }
            let query: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.contains("password") {
                        "***".into()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !query.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(query);
            }
            u.to_string()
        }
        Err(_) => "***".into(),
    }
}

impl MysqlConfig {
    /// The default configuration with `url` set.
    pub fn from_url(url: impl Into<String>) -> Self {
        MysqlConfig {
            url: Some(Secret::new(url)),
            ..Self::default()
        }
    }

    /// The connection URL, `None` when unset or empty (`url: "${MYSQL_URL:}"`).
    pub fn url(&self) -> Option<&Secret> {
        self.url.as_ref().filter(|u| !u.expose().trim().is_empty())
    }

    /// Most connections the pool holds: `pool_size + max_overflow`.
    pub fn max_connections(&self) -> u32 {
        self.pool_size.saturating_add(self.max_overflow)
    }

    /// The acquire timeout as a [`Duration`].
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }

    /// `connect_timeout_ms` as a [`Duration`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// `statement_timeout_ms` as a [`Duration`].
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_millis(self.statement_timeout_ms)
    }

    /// The backoff before retry number `attempt + 1` (0-based `attempt`):
    /// `retry_backoff_ms * 2^attempt`, at most `max_backoff_ms`; never overflows.
    pub fn backoff(&self, attempt: u32) -> Duration {
        backoff(self.retry_backoff_ms, self.max_backoff_ms, attempt)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<()> {
        if !self.charset.eq_ignore_ascii_case("utf8mb4") {
            return Err(StorageError::config(format!(
                "mysql config.charset is {:?}, only utf8mb4 is supported",
                self.charset
            )));
        }
        if self.max_connections() == 0 || self.max_connections() > 10_000 {
            return Err(StorageError::config(format!(
                "mysql config.pool_size + max_overflow is {}, the range is 1 to 10000",
                self.max_connections()
            )));
        }
        if self.min_connections > self.max_connections() {
            return Err(StorageError::config(format!(
                "mysql config.min_connections is {}, above pool_size + max_overflow ({})",
                self.min_connections,
                self.max_connections()
            )));
        }
        if self.acquire_timeout_ms == 0 {
            return Err(StorageError::config(
                "mysql config.acquire_timeout_ms is 0, it must be at least 1",
            ));
        }
        if self.max_retries > MAX_RETRIES {
            return Err(StorageError::config(format!(
                "mysql config.max_retries is {}, the maximum is {MAX_RETRIES}",
                self.max_retries
            )));
        }
        if self.retry_backoff_ms > MAX_BACKOFF_MS {
            return Err(StorageError::config(format!(
                "mysql config.retry_backoff_ms is {}, the range is 0 to {MAX_BACKOFF_MS}",
                self.retry_backoff_ms
            )));
        }
        if !(self.retry_backoff_ms..=MAX_BACKOFF_MS).contains(&self.max_backoff_ms) {
            return Err(StorageError::config(format!(
                "mysql config.max_backoff_ms is {}, the range is retry_backoff_ms ({}) to \
                 {MAX_BACKOFF_MS}",
                self.max_backoff_ms, self.retry_backoff_ms
            )));
        }
        for (key, value) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("statement_timeout_ms", self.statement_timeout_ms),
        ] {
            if !(1..=MAX_TIMEOUT_MS).contains(&value) {
                return Err(StorageError::config(format!(
                    "mysql config.{key} is {value}, the range is 1 to {MAX_TIMEOUT_MS}"
                )));
            }
        }
        if let Some(t) = self.lock_wait_timeout_secs
            && !(1..=3600).contains(&t)
        {
            return Err(StorageError::config(format!(
                "mysql config.lock_wait_timeout_secs is {t}, the range is 1 to 3600"
            )));
        }
        if self.url().is_none() && self.host.trim().is_empty() {
            return Err(StorageError::config("mysql config.host must not be empty"));
        }
        Ok(())
    }
}

/// `base_ms * 2^attempt` milliseconds, at most `max_ms`; saturating, so it never overflows.
pub(crate) fn backoff(base_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let factor = 1u64.checked_shl(attempt).unwrap_or(u64::MAX);
    Duration::from_millis(base_ms.saturating_mul(factor).min(max_ms))
}

/// Checks a database name: 1 to 64 of `[A-Za-z0-9_$]` (it is quoted into `CREATE DATABASE`).
pub(crate) fn validate_database_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$');
    if ok {
        Ok(())
    } else {
        Err(StorageError::config(format!(
            "mysql database name {name:?} must be 1 to 64 characters of A-Z, a-z, 0-9, _ and $"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_originals_config_map() {
        let c: MysqlConfig = serde_json::from_value(serde_json::json!({
            "host": "db.internal", "port": "3307", "user": "oc", "password": "s3cret",
            "database": "ctx", "charset": "utf8mb4", "pool_size": "5", "max_overflow": 2,
            "something_else": true
        }))
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.user.as_str()),
            ("db.internal", 3307, "oc")
        );
        assert_eq!(c.password.expose(), "s3cret");
        assert_eq!(c.database, "ctx");
        assert_eq!(c.max_connections(), 7);
        assert!(c.test_before_acquire);
        c.validate().unwrap();
        let d = MysqlConfig::default();
        assert_eq!(
            d.max_connections(),
            30,
            "20 plus 10 overflow, as the original"
        );
    }

    #[test]
    fn debug_never_shows_passwords() {
        let mut c = MysqlConfig::from_url("mysql://oc:hunter2@db:3306/ctx?ssl-mode=required");
        c.password = Secret::new("pa55word");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("pa55word"),
            "{dbg}"
        );
        assert!(dbg.contains("db:3306"), "{dbg}");
        assert_eq!(redact_url("not a url hunter2"), "***");
        assert!(!redact_url("mysql://u@h/db?password=hunter2").contains("hunter2"));
    }

    #[test]
    fn rejects_bad_values() {
        let c = MysqlConfig {
            charset: "latin1".into(),
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("charset"));
        let c = MysqlConfig {
            pool_size: 0,
            max_overflow: 0,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("pool_size"));
        assert!(validate_database_name("ok_db$1").is_ok());
        assert!(validate_database_name("bad`name").is_err());
        assert!(validate_database_name("").is_err());
        assert!(
            serde_json::from_value::<MysqlConfig>(serde_json::json!({"port": "many"})).is_err()
        );
        let c: MysqlConfig = serde_json::from_value(
            serde_json::json!({"ssl_mode": "verify_identity", "ssl_ca": ""}),
        )
        .unwrap();
        assert_eq!((c.ssl_mode, c.ssl_ca), (SslMode::VerifyIdentity, None));
    }

    /// Out-of-range retry and timeout values are Config errors naming the key and the bound.
    #[test]
    fn retry_and_timeout_bounds() {
        let cases: Vec<(MysqlConfig, &str, &str)> = vec![
            (
                MysqlConfig {
                    max_retries: 11,
                    ..Default::default()
                },
                "max_retries",
                "maximum is 10",
            ),
            (
                MysqlConfig {
                    max_retries: 100,
                    ..Default::default()
                },
                "max_retries",
                "maximum is 10",
            ),
            (
                MysqlConfig {
                    retry_backoff_ms: 60_001,
                    max_backoff_ms: 60_001,
                    ..Default::default()
                },
                "retry_backoff_ms",
                "0 to 60000",
            ),
            (
                MysqlConfig {
                    retry_backoff_ms: u64::MAX,
                    ..Default::default()
                },
                "retry_backoff_ms",
                "0 to 60000",
            ),
            (
                MysqlConfig {
                    max_backoff_ms: 60_001,
                    ..Default::default()
                },
                "max_backoff_ms",
                "to 60000",
            ),
            (
                MysqlConfig {
                    retry_backoff_ms: 500,
                    max_backoff_ms: 100,
                    ..Default::default()
                },
                "max_backoff_ms",
                "retry_backoff_ms (500)",
            ),
            (
                MysqlConfig {
                    connect_timeout_ms: 0,
                    ..Default::default()
                },
                "connect_timeout_ms",
                "1 to 600000",
            ),
            (
                MysqlConfig {
                    connect_timeout_ms: 600_001,
                    ..Default::default()
                },
                "connect_timeout_ms",
                "1 to 600000",
            ),
            (
                MysqlConfig {
                    statement_timeout_ms: 0,
                    ..Default::default()
                },
                "statement_timeout_ms",
                "1 to 600000",
            ),
            (
                MysqlConfig {
                    statement_timeout_ms: u64::MAX,
                    ..Default::default()
                },
                "statement_timeout_ms",
                "1 to 600000",
            ),
        ];
        for (c, key, bound) in cases {
            let e = c.validate().unwrap_err();
            assert_eq!(e.kind(), storage_core::ErrorKind::Config, "{e}");
            let msg = e.to_string();
            assert!(
                msg.contains(key) && msg.contains(bound),
                "{key} {bound}: {msg}"
            );
        }
        let ok = MysqlConfig {
            max_retries: 10,
            retry_backoff_ms: 60_000,
            max_backoff_ms: 60_000,
            connect_timeout_ms: 600_000,
            statement_timeout_ms: 1,
            ..Default::default()
        };
        ok.validate().unwrap();
        let d = MysqlConfig::default();
        d.validate().unwrap();
        assert_eq!(d.backoff(0), Duration::from_millis(20));
        assert_eq!(d.backoff(3), Duration::from_millis(160));
        assert_eq!(
            d.backoff(6),
            Duration::from_millis(1_000),
            "capped at max_backoff_ms"
        );
        assert_eq!(
            d.backoff(u32::MAX),
            Duration::from_millis(1_000),
            "no overflow"
        );
        assert_eq!(ok.backoff(63), Duration::from_millis(60_000));
    }
}
