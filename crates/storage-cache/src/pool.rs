//! The connection pool: deadpool slots over a few shared multiplexed sockets.
//!
//! The pool has `max_connections` slots: that many commands may be in flight at once, and
//! further callers wait up to `pool_timeout` (back-pressure, as the original's
//! `BlockingConnectionPool`). The objects in the slots are clones of at most [`SOCKETS`]
//! multiplexed connections (opened with deadpool-redis' manager), so concurrent commands
//! share sockets and are pipelined by the driver instead of costing one socket and one
//! server wake-up each.
//!
//! deadpool-redis' own `recycle` sends `UNWATCH` + `PING` every time an object leaves the
//! pool, doubling the round trips of a single command. Here that check runs only for objects
//! idle longer than [`IDLE_CHECK`]. A socket that fails with an I/O error is retired
//! (`Slot::discard`); objects still holding it are dropped at their next
//! checkout without a round trip, and the next `create` opens a new socket.
//!
//! [`PooledConnection`] (lent by [`crate::RedisCache::connection`]) is different: it holds a
//! slot but talks over a socket of its own, so a blocking command sent on it (`BLPOP`,
//! `XREAD BLOCK`, ...) cannot stall the cache's commands queued on the shared sockets.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use redis::RedisError;
use redis::aio::MultiplexedConnection;

/// Objects idle longer than this are checked with a `PING` before reuse.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Most sockets one pool opens (fewer when `max_connections` is smaller).
pub(crate) const SOCKETS: usize = 4;

/// A clone of shared socket `slot`, opened as `generation`.
pub(crate) struct Shared {
    slot: usize,
    generation: u64,
    conn: MultiplexedConnection,
}

/// Creates objects as clones of shared sockets; recycles without a round trip when warm.
pub(crate) struct CacheManager {
    inner: deadpool_redis::Manager,
    sockets: Vec<Mutex<Option<(u64, MultiplexedConnection)>>>,
    next: AtomicUsize,
    generation: AtomicU64,
}

impl CacheManager {
    pub(crate) fn new(inner: deadpool_redis::Manager, max_connections: usize) -> Self {
        let n = max_connections.clamp(1, SOCKETS);
        CacheManager {
            inner,
            sockets: (0..n).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        }
    }

    fn socket(
        &self,
        slot: usize,
    ) -> std::sync::MutexGuard<'_, Option<(u64, MultiplexedConnection)>> {
        self.sockets[slot]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl CacheManager {
    /// Opens a socket that no slot shares (for [`PooledConnection`]).
    pub(crate) async fn open_dedicated(&self) -> Result<MultiplexedConnection, RedisError> {
        managed::Manager::create(&self.inner).await
    }
}

impl managed::Manager for CacheManager {
    type Type = Shared;
    type Error = RedisError;

    async fn create(&self) -> Result<Shared, RedisError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.sockets.len();
        if let Some((generation, conn)) = self.socket(slot).as_ref() {
            return Ok(Shared {
                slot,
                generation: *generation,
                conn: conn.clone(),
            });
        }
        let conn = managed::Manager::create(&self.inner).await?;
        let mut socket = self.socket(slot);
        // Another creator may have opened this slot meanwhile: share theirs.
        let (generation, conn) = socket
            .get_or_insert_with(|| (self.generation.fetch_add(1, Ordering::Relaxed), conn))
            .clone();
        Ok(Shared {
            slot,
            generation,
            conn,
        })
    }

    async fn recycle(&self, obj: &mut Shared, metrics: &Metrics) -> RecycleResult<RedisError> {
        let current = self.socket(obj.slot).as_ref().map(|(g, _)| *g);
        if current != Some(obj.generation) {
            return Err(RecycleError::message("the shared socket was retired"));
        }
        if metrics.last_used() < IDLE_CHECK {
            return Ok(());
        }
        managed::Manager::recycle(&self.inner, &mut obj.conn, metrics).await
    }

    fn detach(&self, obj: &mut Shared) {
        let mut socket = self.socket(obj.slot);
        if socket.as_ref().is_some_and(|(g, _)| *g == obj.generation) {
            *socket = None;
        }
    }
}

/// The pool type.
pub(crate) type Pool = managed::Pool<CacheManager>;

/// A slot checked out of the pool for one command of the cache; dereferences to the shared
/// multiplexed socket it was created on.
pub(crate) struct Slot(pub(crate) Object<CacheManager>);

impl Slot {
    /// Retires the slot's socket after an I/O error or a timeout (it may be closed or stuck).
    pub(crate) fn discard(self) {
        drop(Object::take(self.0));
    }
}

impl Deref for Slot {
    type Target = MultiplexedConnection;

    fn deref(&self) -> &MultiplexedConnection {
        &self.0.conn
    }
}

impl DerefMut for Slot {
    fn deref_mut(&mut self) -> &mut MultiplexedConnection {
        &mut self.0.conn
    }
}

/// A connection lent by [`crate::RedisCache::connection`] for commands the cache does not
/// wrap. Dereferences to a `redis` multiplexed connection, so
/// `redis::cmd(..).query_async(&mut *conn)` works. Keys sent on it are **not** prefixed.
///
/// It occupies one of the pool's `max_connections` slots until dropped (back-pressure), but
/// its socket is **dedicated**: opened for this loan, used by nobody else, closed on drop.
/// Blocking commands (`BLPOP`, `BRPOP`, `BLMOVE`, `BZPOPMIN`, `XREAD ... BLOCK`, `WAIT`, ...)
/// are therefore allowed and never delay the cache's own commands. Its response timeout is
/// the cache's `socket_timeout`: a blocking command whose server-side timeout is not shorter
/// fails with a timeout on the client first; raise it with
/// `conn.set_response_timeout(..)` for such commands.
pub struct PooledConnection {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) slot: Slot,
}

impl Deref for PooledConnection {
    type Target = MultiplexedConnection;

    fn deref(&self) -> &MultiplexedConnection {
        &self.conn
    }
}

impl DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut MultiplexedConnection {
        &mut self.conn
    }
}

impl std::fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConnection")
            .field("slot", &Object::id(&self.slot.0))
            .finish_non_exhaustive()
    }
}

/// Whether an error means the connection itself is unusable.
pub(crate) fn is_broken(err: &RedisError) -> bool {
    err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error()
}
