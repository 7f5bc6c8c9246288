//! Test support: a server from `MYSQL_URL` (default `mysql://root@127.0.0.1:3306`), one
//! uniquely named database per test, dropped when the test ends (also when it fails).
//!
//! Without a server the tests print why and return, unless `CI` is set: then they fail.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{Connection, Executor};
use storage_mysql::{MysqlBackend, MysqlConfig};

pub const DEFAULT_URL: &str = "mysql://root@127.0.0.1:3306";

/// Prefix of every test database; `DROP DATABASE` targets only names built here.
pub const PREFIX: &str = "oc_test_";

/// The server URL without a database path.
pub fn server_url() -> String {
    std::env::var("MYSQL_URL")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// Whether a server answers; prints the reason to skip, or panics in CI.
pub async fn server_available(test: &str) -> bool {
    let url = server_url();
    let attempt = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut c = sqlx::MySqlConnection::connect(&url).await?;
        c.execute("SELECT 1").await?;
        c.close().await
    })
    .await;
    let reason = match attempt {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 5 s".to_owned(),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: no MySQL/MariaDB server at MYSQL_URL ({reason}) and CI is set");
    }
    eprintln!(
        "skipping {test}: no MySQL/MariaDB server at MYSQL_URL / {DEFAULT_URL} ({reason}); \
         set MYSQL_URL to run it"
    );
    false
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh database name: prefix, process id, a counter and the time.
pub fn unique_name() -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{PREFIX}{}_{n}_{nanos:x}", std::process::id())
}

/// Databases created by one test; [`Databases::drop_all`] removes them, and so does dropping
/// the value (a guard: a test that panics, or whose future is cancelled, leaves nothing).
#[derive(Default)]
pub struct Databases {
    names: std::sync::Mutex<Vec<String>>,
}

impl Drop for Databases {
    fn drop(&mut self) {
        let names: Vec<String> =
            std::mem::take(&mut *self.names.lock().unwrap_or_else(|p| p.into_inner()));
        if names.is_empty() {
            return;
        }
        // Drop may run on a runtime thread (where blocking on a runtime is refused), so the
        // cleanup gets a thread and a runtime of its own.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(drop_databases(names));
        });
        if cleanup.join().is_err() {
            eprintln!("could not drop the test databases of a failed test");
        }
    }
}

/// Drops the named test databases (only names with [`PREFIX`]).
async fn drop_databases(names: Vec<String>) {
    let mut c = sqlx::MySqlConnection::connect(&server_url())
        .await
        .expect("connect to drop test databases");
    for name in names {
        assert!(name.starts_with(PREFIX));
        c.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS `{name}`"
        )))
        .await
        .expect("drop test database");
    }
    c.close().await.expect("close");
}

impl Databases {
    /// A config for a new database (created by `MysqlBackend::open`), remembered for dropping.
    pub fn config(&self) -> MysqlConfig {
        let name = unique_name();
        self.names.lock().unwrap().push(name.clone());
        let mut c = MysqlConfig::from_url(format!("{}/{name}", server_url()));
        // Tests run many backends side by side: keep each pool small.
        c.pool_size = 8;
        c.max_overflow = 4;
        // Many tests share 2 cores: wait for a connection longer than the default 10 s.
        c.acquire_timeout_ms = 30_000;
        c
    }

    /// Opens a backend on a new database.
    pub async fn open(&self) -> MysqlBackend {
        MysqlBackend::open(self.config()).await.expect("open mysql")
    }

    /// Drops every database created through this value.
    pub async fn drop_all(&self) {
        let names: Vec<String> = std::mem::take(&mut *self.names.lock().unwrap());
        if !names.is_empty() {
            drop_databases(names).await;
        }
    }
}

/// Runs `body` with a [`Databases`] (skipping without a server), then drops its databases,
/// also when `body` panicked (the panic is re-raised afterwards).
pub async fn with_databases<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Arc<Databases>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if !server_available(test).await {
        return;
    }
    let dbs = Arc::new(Databases::default());
    let outcome = tokio::spawn(body(Arc::clone(&dbs))).await;
    dbs.drop_all().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
