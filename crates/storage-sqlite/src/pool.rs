//! Connections: one writer and N readers, used from `spawn_blocking` so that no SQLite call
//! ever runs on an async worker thread.
//!
//! WAL mode lets readers run in parallel with the single writer. Writers queue on an async
//! semaphore (not on a blocked thread), then run their closure inside `BEGIN IMMEDIATE ...
//! COMMIT` on the writer connection; readers take a free read-only connection the same way.
//! Because every write of this process goes through the one writer connection, our own
//! writes never see `database is locked`; other processes are waited for up to
//! `busy_timeout`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use storage_core::{ErrorKind, Result, StorageError};
use tokio::sync::Semaphore;

use crate::config::SqliteConfig;
use crate::mapping::{SqlResultExt, sql_err};

/// Statement cache size per connection (the crate uses fewer distinct statements).
const STATEMENT_CACHE: usize = 96;

pub(crate) struct Pool {
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    write_permits: Arc<Semaphore>,
    read_permits: Arc<Semaphore>,
    reader_count: u32,
    /// Opens a replacement reader when one had to be dropped (see [`Reader`]).
    open_reader: Box<dyn Fn() -> Result<Connection> + Send + Sync>,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside an operation rolls its transaction back while unwinding; the connection
    // itself stays usable, so a poisoned lock is not an error here.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed_error() -> StorageError {
    StorageError::new(ErrorKind::NotInitialized, "the sqlite backend is closed")
}

/// Applies the per-connection settings shared by the writer and the readers.
pub(crate) fn configure(conn: &Connection, config: &SqliteConfig) -> Result<()> {
    conn.busy_timeout(config.busy_timeout()).sql()?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON;
         PRAGMA synchronous = {};
         PRAGMA cache_size = -{};
         PRAGMA temp_store = MEMORY;",
        config.synchronous.pragma_value(),
        config.cache_size_kib,
    ))
    .sql()
}

/// Opens the writer connection: creates the file, switches to WAL.
pub(crate) fn open_writer(path: &Path, config: &SqliteConfig) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .sql()?;
    conn.busy_timeout(config.busy_timeout()).sql()?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .sql()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::backend(format!(
            "could not switch {} to WAL journal mode (got {mode})",
            path.display()
        )));
    }
    configure(&conn, config)?;
    Ok(conn)
}

/// Opens a read-only (`query_only`) connection.
pub(crate) fn open_reader(path: &Path, config: &SqliteConfig) -> Result<Connection> {
    // READ_WRITE (not READ_ONLY) so the reader can use the WAL index; `query_only` forbids
    // writes through it.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .sql()?;
    configure(&conn, config)?;
    conn.execute_batch("PRAGMA query_only = ON;").sql()?;
    Ok(conn)
}

/// Runs blocking SQLite work without blocking the async runtime.
///
/// On a multi-thread tokio runtime the work runs in place under `block_in_place`: tokio moves
/// the worker's other tasks to another thread first, and the call avoids the two thread
/// hand-offs of `spawn_blocking` (which dominate the cost of a point read). Elsewhere
/// (current-thread runtime, no runtime) it runs on the blocking pool. A panic inside the work
/// becomes a [`ErrorKind::Backend`] error in both cases.
pub(crate) async fn run_blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let guarded = move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StorageError::backend(format!(
                "a sqlite operation panicked: {what}"
            )))
        })
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(guarded)
        }
        _ => tokio::task::spawn_blocking(guarded)
            .await
            .map_err(|e| StorageError::backend("a sqlite task failed").with_source(e))?,
    }
}

impl Pool {
    /// `open_reader` opens one more reader like those in `readers`; it is called only to
    /// replace a reader that could not be put back.
    pub(crate) fn new(
        writer: Connection,
        readers: Vec<Connection>,
        open_reader: impl Fn() -> Result<Connection> + Send + Sync + 'static,
    ) -> Self {
        let n = readers.len();
        Pool {
            open_reader: Box::new(open_reader),
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(readers),
            write_permits: Arc::new(Semaphore::new(1)),
            read_permits: Arc::new(Semaphore::new(n)),
            reader_count: n as u32,
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer connection and commits when
    /// it returns `Ok`; an `Err` (or a panic) rolls back and nothing is written.
    pub(crate) async fn write<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let permit = self
            .write_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed_error())?;
        let pool = Arc::clone(self);
        run_blocking(move || {
            let _permit = permit;
            let mut guard = lock(&pool.writer);
            let conn = guard.as_mut().ok_or_else(closed_error)?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .sql()?;
            let out = f(&tx)?;
            tx.commit().sql()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a read-only connection (no transaction: use one inside `f` when several
    /// statements must see one snapshot).
    pub(crate) async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed_error())?;
        let pool = Arc::clone(self);
        run_blocking(move || {
            let _permit = permit;
            // The permit guarantees a free connection unless the pool was closed meanwhile (or
            // a reader was dropped and could not be replaced: open it now).
            let free = lock(&pool.readers).pop();
            let conn = match free {
                Some(conn) => conn,
                None if pool.is_closed() => return Err(closed_error()),
                None => (pool.open_reader)()?,
            };
            // The guard puts the connection back also when `f` panics: one bad call must not
            // cost the pool a reader (after as many panics as readers, every read would fail).
            let reader = Reader {
                pool: &pool,
                conn: Some(conn),
            };
            f(reader.conn())
        })
        .await
    }

    /// Refuses new operations, waits for running ones and closes every connection (the last
    /// close checkpoints the WAL into the main file).
    pub(crate) async fn close(self: &Arc<Self>) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Wait for running operations: take every permit, then close the semaphores.
        let w = self.write_permits.acquire_many(1).await;
        let r = self.read_permits.acquire_many(self.reader_count).await;
        self.write_permits.close();
        self.read_permits.close();
        drop((w, r));
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let readers = std::mem::take(&mut *lock(&pool.readers));
            for conn in readers {
                conn.close().map_err(|(_, e)| sql_err(e))?;
            }
            if let Some(conn) = lock(&pool.writer).take() {
                conn.close().map_err(|(_, e)| sql_err(e))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StorageError::backend("closing sqlite failed").with_source(e))?
    }
}

/// A borrowed reader connection, returned to the pool when dropped (unwinding included).
struct Reader<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Reader<'_> {
    fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.pool.is_closed() {
            return;
        }
        // A panic can leave a read transaction open (a `Transaction` rolls back when dropped,
        // a bare `BEGIN` does not): end it so the connection does not pin an old snapshot.
        if !conn.is_autocommit() && conn.execute_batch("ROLLBACK").is_err() {
            // A connection that cannot roll back is dropped; the next read opens another.
            tracing::warn!("a sqlite reader could not roll back after a failed read; replaced");
            return;
        }
        lock(&self.pool.readers).push(conn);
    }
}

/// Applies the writer's pragmas (WAL, busy timeout, synchronous, cache size, foreign keys) to a
/// connection opened elsewhere, so a benchmark can compare against bare rusqlite fairly.
pub fn configure_for_bench(conn: &Connection, config: &SqliteConfig) -> Result<()> {
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .sql()?;
    configure(conn, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &Path, readers: usize) -> Arc<Pool> {
        let config = SqliteConfig::default();
        let path = dir.join("pool.db");
        let writer = open_writer(&path, &config).unwrap();
        let readers: Vec<Connection> = (0..readers)
            .map(|_| open_reader(&path, &config).unwrap())
            .collect();
        Arc::new(Pool::new(writer, readers, move || {
            open_reader(&path, &config)
        }))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_read_does_not_cost_the_pool_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path(), 2);
        for _ in 0..5 {
            let err = pool
                .read(|conn| -> Result<()> {
                    conn.execute_batch("BEGIN; SELECT 1;").sql()?;
                    panic!("bad argument")
                })
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
            assert!(err.to_string().contains("bad argument"), "{err}");
        }
        let one: i64 = pool
            .read(|conn| conn.query_row("SELECT 1", [], |r| r.get(0)).sql())
            .await
            .unwrap();
        assert_eq!(one, 1);
        assert_eq!(
            lock(&pool.readers).len(),
            2,
            "every reader is back in the pool"
        );
        assert!(
            lock(&pool.readers).iter().all(|c| c.is_autocommit()),
            "no reader keeps the transaction the panic left open"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_write_rolls_back_and_keeps_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path(), 1);
        pool.write(|tx| tx.execute_batch("CREATE TABLE t (x INTEGER)").sql())
            .await
            .unwrap();
        let err = pool
            .write(|tx| -> Result<()> {
                tx.execute("INSERT INTO t VALUES (1)", []).sql()?;
                panic!("bad argument")
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        pool.write(|tx| tx.execute("INSERT INTO t VALUES (2)", []).sql())
            .await
            .unwrap();
        let rows: Vec<i64> = pool
            .read(|conn| {
                let mut st = conn.prepare("SELECT x FROM t").sql()?;
                let rows = st.query_map([], |r| r.get(0)).sql()?;
                rows.collect::<rusqlite::Result<Vec<i64>>>().sql()
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![2], "the panicked write left nothing behind");
    }
}
