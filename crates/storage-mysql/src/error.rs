//! Translation of sqlx/MySQL errors into [`StorageError`]s with a kind and a retryable flag.
//!
//! Server error numbers: <https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html>
//! and <https://mariadb.com/kb/en/mariadb-error-code-reference/> (the numbers used here are
//! the same on both).

use storage_core::{ErrorKind, StorageError};

/// `ER_LOCK_DEADLOCK`: the transaction was rolled back as a deadlock victim.
pub(crate) const ER_LOCK_DEADLOCK: u16 = 1213;
/// `ER_LOCK_WAIT_TIMEOUT`: a row lock was not granted within `innodb_lock_wait_timeout`.
pub(crate) const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
/// `ER_NO_REFERENCED_ROW_2`: a foreign key names no row.
const ER_NO_REFERENCED_ROW_2: u16 = 1452;
/// `ER_BAD_DB_ERROR`: unknown database.
pub(crate) const ER_BAD_DB_ERROR: u16 = 1049;

/// Translates an sqlx error.
pub(crate) fn db_err(err: sqlx::Error) -> StorageError {
    let (kind, retryable, msg): (ErrorKind, bool, String) = match &err {
        sqlx::Error::PoolTimedOut => (
            ErrorKind::Timeout,
            true,
            "no connection became available within acquire_timeout_ms (the pool is exhausted \
             or the server does not answer)"
                .into(),
        ),
        sqlx::Error::PoolClosed => (
            ErrorKind::NotInitialized,
            false,
            "the backend is closed".into(),
        ),
        sqlx::Error::Io(_) => (
            ErrorKind::Unavailable,
            true,
            "the connection to the server failed".into(),
        ),
        sqlx::Error::Tls(_) => (ErrorKind::Unavailable, false, "TLS failed".into()),
        sqlx::Error::Configuration(_) | sqlx::Error::InvalidArgument(_) => (
            ErrorKind::Config,
            false,
            "invalid connection settings".into(),
        ),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => (
            ErrorKind::DataCorrupted,
            false,
            "a stored value has an unexpected type".into(),
        ),
        sqlx::Error::Database(e) => {
            let number = e
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map_or(0, |m| m.number());
            let text = e.message().to_owned();
            let (kind, retryable) = match number {
                ER_LOCK_DEADLOCK => (ErrorKind::Conflict, true),
                ER_LOCK_WAIT_TIMEOUT => (ErrorKind::Timeout, true),
                // duplicate key, row referenced by a foreign key
                1062 | 1451 => (ErrorKind::Conflict, false),
                ER_NO_REFERENCED_ROW_2 => (ErrorKind::NotFound, false),
                // data too long, incorrect string value, out of range, packet too large,
                // value not allowed (NULL, check constraint), a result over max_allowed_packet
                1406 | 1366 | 1264 | 1153 | 1048 | 4025 | 3819 | 1301 => {
                    (ErrorKind::InvalidInput, false)
                }
                // access denied (1698: MariaDB's access denied for a user without a
                // matching password, also answered for unknown users)
                1044 | 1045 | 1142 | 1143 | 1227 | 1698 => (ErrorKind::PermissionDenied, false),
                ER_BAD_DB_ERROR => (ErrorKind::Config, false),
                // too many connections, server shutdown, connection killed, query interrupted,
                // server gone away, lost connection, read-only server
                1040 | 1053 | 1927 | 1317 | 2006 | 2013 | 1290 | 1836 => {
                    (ErrorKind::Unavailable, true)
                }
                _ => (ErrorKind::Backend, false),
            };
            (kind, retryable, format!("server error {number}: {text}"))
        }
        _ => (ErrorKind::Backend, false, "the MySQL driver failed".into()),
    };
    StorageError::new(kind, msg)
        .set_retryable(retryable)
        .with_source(err)
}

/// Whether `err` came from a server error that rolled the statement or transaction back and
/// is worth retrying from the start of the transaction (deadlock, lock wait timeout).
pub(crate) fn is_lock_error(err: &StorageError) -> bool {
    let m = err.message();
    m.starts_with("server error 1213:") || m.starts_with("server error 1205:")
}

/// Server error numbers meaning the connection ended while a statement was under way: a
/// request already sent may or may not have been executed (server shutdown, connection
/// killed, server gone away, lost connection).
const LOST_CONNECTION: [u16; 4] = [1053, 1927, 2006, 2013];

/// Whether `err` means the answer to a request was lost (the connection broke or the server
/// went away), so a request already sent may have been applied. Server replies (deadlock,
/// duplicate key, data too long...) and pool errors are not: the server refused the request,
/// or it was never sent.
pub(crate) fn answer_lost(err: &StorageError) -> bool {
    let source = std::error::Error::source(err).and_then(|s| s.downcast_ref::<sqlx::Error>());
    match source {
        Some(sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed) => true,
        Some(sqlx::Error::Database(e)) => e
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|m| LOST_CONNECTION.contains(&m.number())),
        _ => false,
    }
}

/// The error of a network call that did not finish within the configured `key` (`ms`
/// milliseconds): a retryable `Timeout` naming the key.
pub(crate) fn timed_out(key: &'static str, ms: u128) -> StorageError {
    StorageError::new(
        ErrorKind::Timeout,
        format!("the server did not answer within {key} ({ms} ms)"),
    )
    .set_retryable(true)
}

/// Runs `fut`, failing with [`timed_out`] after `limit` (the config key `key`).
pub(crate) async fn bounded<T>(
    limit: std::time::Duration,
    key: &'static str,
    fut: impl std::future::Future<Output = storage_core::Result<T>>,
) -> storage_core::Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(timed_out(key, limit.as_millis())),
    }
}

/// Shorthand: `sqlx::Result<T>` into our `Result<T>`.
pub(crate) trait SqlxResultExt<T> {
    fn db(self) -> storage_core::Result<T>;
}

impl<T> SqlxResultExt<T> for Result<T, sqlx::Error> {
    fn db(self) -> storage_core::Result<T> {
        self.map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_errors_map_to_kinds() {
        let e = db_err(sqlx::Error::PoolTimedOut);
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.is_retryable());
        assert!(
            !is_lock_error(&e),
            "pool exhaustion is returned, not retried"
        );
        let e = db_err(sqlx::Error::PoolClosed);
        assert_eq!(e.kind(), ErrorKind::NotInitialized);
        let e = db_err(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable() && !is_lock_error(&e));
    }

    #[test]
    fn lost_answers_are_told_from_refusals() {
        let io = db_err(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert!(answer_lost(&io));
        assert!(!answer_lost(&db_err(sqlx::Error::PoolTimedOut)));
        assert!(!answer_lost(&timed_out("statement_timeout_ms", 5)));
        let t = timed_out("statement_timeout_ms", 5);
        assert_eq!(t.kind(), ErrorKind::Timeout);
        assert!(t.is_retryable() && t.to_string().contains("statement_timeout_ms (5 ms)"));
    }

    #[test]
    fn lock_errors_are_recognised_by_number() {
        let deadlock = StorageError::new(ErrorKind::Conflict, "server error 1213: Deadlock found")
            .set_retryable(true);
        let wait = StorageError::new(ErrorKind::Timeout, "server error 1205: Lock wait timeout")
            .set_retryable(true);
        let dup = StorageError::new(ErrorKind::Conflict, "server error 1062: Duplicate entry");
        assert!(is_lock_error(&deadlock) && is_lock_error(&wait));
        assert!(!is_lock_error(&dup));
    }
}
