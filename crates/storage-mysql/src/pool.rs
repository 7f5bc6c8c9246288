//! Connection options and the pool (sqlx's
//! [`PoolOptions`](https://docs.rs/sqlx/0.9.0/sqlx/pool/struct.PoolOptions.html)), and
//! creation of the database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor};
use storage_core::{Result, StorageError};

use crate::config::{MysqlConfig, SslMode, validate_database_name};
use crate::error::{SqlxResultExt, bounded};

/// Connect options for the server (no database selected) and the database name.
pub(crate) fn connect_options(config: &MysqlConfig) -> Result<(MySqlConnectOptions, String)> {
    let (mut opts, database) = match config.url() {
        Some(url) => {
            let mut parsed = url::Url::parse(url.expose()).map_err(|e| {
                StorageError::config(format!(
                    "mysql config.url {} is not a URL: {e}",
                    crate::config::redact_url(url.expose())
                ))
            })?;
            let db = parsed.path().trim_start_matches('/').to_owned();
            let database = if db.is_empty() {
                config.database.clone()
            } else {
                db
            };
            // The database is selected after it has been created, so connect without it.
            parsed.set_path("");
            let opts = MySqlConnectOptions::from_str(parsed.as_str()).map_err(|e| {
                StorageError::config(format!(
                    "mysql config.url {} is invalid: {e}",
                    crate::config::redact_url(url.expose())
                ))
            })?;
            (opts, database)
        }
        None => {
            let mut opts = MySqlConnectOptions::new()
                .host(&config.host)
                .port(config.port)
                .username(&config.user)
                .ssl_mode(config.ssl_mode.to_sqlx());
            if !config.password.is_empty() {
                opts = opts.password(config.password.expose());
            }
            (opts, config.database.clone())
        }
    };
    validate_database_name(&database)?;
    if config.url().is_none() || config.ssl_mode != SslMode::Preferred {
        opts = opts.ssl_mode(config.ssl_mode.to_sqlx());
    }
    if let Some(ca) = &config.ssl_ca {
        opts = opts.ssl_ca(ca);
    }
    if !cfg!(feature = "tls-rustls")
        && matches!(
            config.ssl_mode,
            SslMode::Required | SslMode::VerifyCa | SslMode::VerifyIdentity
        )
    {
        return Err(StorageError::config(format!(
            "mysql config.ssl_mode {:?} needs the crate feature tls-rustls",
            config.ssl_mode
        )));
    }
    // utf8mb4 on the wire; UTC session time zone (DATETIME columns hold UTC, see mapping.rs).
    opts = opts
        .charset("utf8mb4")
        .timezone(Some("+00:00".to_owned()))
        .statement_cache_capacity(config.statement_cache_capacity);
    Ok((opts, database))
}

/// Creates the database when `config.create_database` (utf8mb4, as the original), then
/// opens the pool on it. Connecting is bounded by `connect_timeout_ms`, each statement by
/// `statement_timeout_ms`.
pub(crate) async fn open_pool(config: &MysqlConfig) -> Result<(MySqlPool, String)> {
    let (server, database) = connect_options(config)?;
    if config.create_database {
        let mut conn = bounded(config.connect_timeout(), "connect_timeout_ms", async {
            server.connect().await.db()
        })
        .await?;
        // `database` is validated to [A-Za-z0-9_$]{1,64}, so quoting it is safe.
        let sql = format!(
            "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        );
        // A timed-out connection is dropped, which closes its socket.
        bounded(config.statement_timeout(), "statement_timeout_ms", async {
            conn.execute(sqlx::AssertSqlSafe(sql)).await.db()
        })
        .await?;
        bounded(config.statement_timeout(), "statement_timeout_ms", async {
            conn.close().await.db()
        })
        .await?;
    }
    let opts = server.database(&database);
    let idle = (config.idle_timeout_ms > 0).then(|| Duration::from_millis(config.idle_timeout_ms));
    let lifetime =
        (config.max_lifetime_ms > 0).then(|| Duration::from_millis(config.max_lifetime_ms));
    let lock_wait = config.lock_wait_timeout_secs;
    let options = MySqlPoolOptions::new()
        .max_connections(config.max_connections())
        .min_connections(config.min_connections)
        .acquire_timeout(config.acquire_timeout())
        .test_before_acquire(config.test_before_acquire)
        .idle_timeout(idle)
        .max_lifetime(lifetime)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                // Strict mode: a value that does not fit is an error, never silently truncated.
                conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                    .await?;
                if let Some(secs) = lock_wait {
                    // Validated to 1..=3600: a plain number in the statement.
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "SET SESSION innodb_lock_wait_timeout = {secs}"
                    )))
                    .await?;
                }
                Ok(())
            })
        });
    // sqlx opens (and tests) a first connection here, bounded by acquire_timeout_ms; the
    // handshake with a server that accepts TCP but never answers is bounded here too.
    let pool = bounded(config.connect_timeout(), "connect_timeout_ms", async {
        options.connect_with(opts).await.db()
    })
    .await?;
    Ok((pool, database))
}
