//! Mapping of `redis` and `deadpool` errors onto [`StorageError`] kinds.

use deadpool::managed::{PoolError, TimeoutType};
use redis::{RedisError, ServerErrorKind};
use storage_core::{ErrorKind, StorageError};

/// The kind of a driver error:
/// - I/O timeouts: `Timeout`; refused or dropped connections and other I/O: `Unavailable`
///   (both retryable); a server that is loading, read-only or busy: `Unavailable`;
/// - rejected credentials (`WRONGPASS`, `NOAUTH`, failed handshake): `PermissionDenied`;
/// - `WRONGTYPE`, non-integer values, overflow, Lua compile/runtime errors of the caller's
///   script: `InvalidInput`;
/// - replies that do not decode (e.g. a value that is not UTF-8): `DataCorrupted`;
/// - anything else: `Backend`.
pub(crate) fn map_redis_error(err: RedisError) -> StorageError {
    let text = err.to_string();
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_io_error() || err.is_connection_refusal() || err.is_connection_dropped() {
        ErrorKind::Unavailable
    } else {
        match err.kind() {
            redis::ErrorKind::AuthenticationFailed
            | redis::ErrorKind::Server(ServerErrorKind::NoPerm) => ErrorKind::PermissionDenied,
            redis::ErrorKind::Server(
                ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::ReadOnly,
            ) => ErrorKind::Unavailable,
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => {
                ErrorKind::DataCorrupted
            }
            redis::ErrorKind::InvalidClientConfig => ErrorKind::Config,
            _ if text.contains("WRONGPASS") || text.contains("NOAUTH") => {
                ErrorKind::PermissionDenied
            }
            _ if is_caller_error(&text) => ErrorKind::InvalidInput,
            _ => ErrorKind::Backend,
        }
    };
    // The driver's error is the source, so `Display` shows it once after the category.
    let category = match err.category() {
        "" => "server error",
        c => c,
    }
    .to_owned();
    StorageError::new(kind, category).with_source(err)
}

/// Server errors caused by the arguments rather than the server.
fn is_caller_error(text: &str) -> bool {
    [
        "WRONGTYPE",
        "not an integer",
        "would overflow",
        "Error compiling script",
        "user_script",
        "not a valid float",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// The kind of a pool error: no free connection within `pool_timeout` is a retryable
/// `Timeout` (back-pressure); a closed pool is `NotInitialized`.
pub(crate) fn map_pool_error(err: PoolError<RedisError>) -> StorageError {
    match err {
        PoolError::Timeout(TimeoutType::Wait) => StorageError::new(
            ErrorKind::Timeout,
            "no pooled connection became free within pool_timeout (all max_connections are in use)",
        ),
        PoolError::Timeout(TimeoutType::Create) => StorageError::new(
            ErrorKind::Timeout,
            "connecting to Redis took longer than socket_connect_timeout",
        ),
        PoolError::Timeout(TimeoutType::Recycle) => StorageError::new(
            ErrorKind::Timeout,
            "checking a pooled connection took longer than socket_timeout",
        ),
        PoolError::Backend(e) => map_redis_error(e),
        PoolError::Closed => StorageError::new(ErrorKind::NotInitialized, "the cache is closed"),
        other => StorageError::new(ErrorKind::Backend, format!("connection pool: {other}")),
    }
}
