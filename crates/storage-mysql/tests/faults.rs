//! Fault tests on a PRIVATE MariaDB server (never the shared one): `mariadb-install-db` into
//! a temporary directory per test, and `mariadbd` on a free port. The
//! tests SIGSTOP / SIGKILL only that process, and a guard kills it and removes its directory
//! when the test ends, also when it fails.
//!
//! * a stopped server: `open`, a read and writes fail with `Timeout` within the configured
//!   bounds (plus slack), an insert of unknown outcome is not retryable, an upsert is;
//! * a killed server during a stream of inserts: every error that says "retryable"
//!   belongs to a row that was not stored.
//!
//! Skipped with a message when `mariadbd` / `mariadb-install-db` are missing, failing when
//! `CI` is set.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, Row};
use storage_core::*;
use storage_mysql::{MysqlBackend, MysqlConfig};

/// Slack on top of a configured bound, for a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(10);

fn find(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/local/sbin".into(),
            "/usr/bin".into(),
        ])
        .map(|d| d.join(binary))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The binaries, or `None` after printing why the test is skipped (panics under `CI`).
fn binaries(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (find("mariadbd"), find("mariadb-install-db")) {
        (Some(d), Some(i)) => Some((d, i)),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: mariadbd / mariadb-install-db not found and CI is set");
            }
            eprintln!("skipping {test}: mariadbd / mariadb-install-db not found on PATH");
            None
        }
    }
}

/// Initialises a data directory with `mariadb-install-db`.
fn install_db(install: &Path, dir: &Path) {
    // One bootstrap at a time, each with its own temporary directory: concurrent bootstraps
    // sharing /tmp were seen to fail on each other's temporary tables.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.with_extension("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = Command::new(install);
    cmd.env("TMPDIR", &tmp);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.display()))
        .arg("--auth-root-authentication-method=normal")
        .arg("--skip-test-db")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if is_root() {
        cmd.arg("--user=root");
    }
    let out = cmd.output().expect("run mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A private `mariadbd`: stopped, continued and killed by its process id only; killed and
/// its directory removed on drop.
struct PrivateServer {
    mariadbd: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateServer {
    async fn start(test: &str) -> Option<PrivateServer> {
        let (mariadbd, install) = binaries(test)?;
        let dir = std::env::temp_dir().join(format!(
            "oc_mariadb_{}_{}",
            std::process::id(),
            common_unique()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = PrivateServer {
            mariadbd,
            dir,
            port,
            child: None,
        };
        install_db(&install, &server.dir);
        server.spawn().await;
        Some(server)
    }

    /// Starts `mariadbd` on the directory and waits until it answers.
    async fn spawn(&mut self) {
        let d = self.dir.display();
        let mut cmd = Command::new(&self.mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={d}"))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={d}/mysqld.sock"))
            .arg(format!("--pid-file={d}/mysqld.pid"))
            .arg(format!(
                "--tmpdir={}",
                self.dir.with_extension("tmp").display()
            ))
            .arg(format!("--log-error={d}/error.log"))
            .arg("--bind-address=127.0.0.1")
            .arg("--skip-grant-tables")
            .arg("--innodb-buffer-pool-size=16M")
            .arg("--innodb-log-file-size=16M")
            .arg("--innodb-flush-log-at-trx-commit=1")
            .arg("--skip-name-resolve")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        self.child = Some(cmd.spawn().expect("start mariadbd"));
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let ok = tokio::time::timeout(Duration::from_secs(2), async {
                let mut c = sqlx::MySqlConnection::connect(&self.url()).await?;
                sqlx::query("SELECT 1").execute(&mut c).await?;
                c.close().await
            })
            .await;
            if matches!(ok, Ok(Ok(()))) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("mariadbd exited with {status}: see {d}/error.log");
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd did not answer within 40 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    fn config(&self, database: &str) -> MysqlConfig {
        let mut c = MysqlConfig::from_url(format!("{}/{database}", self.url()));
        c.pool_size = 4;
        c.max_overflow = 0;
        c.ssl_mode = storage_mysql::SslMode::Disabled;
        c
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg("-s")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -s {sig} {pid}");
    }

    /// SIGKILL and reap.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-s")
                .arg("CONT")
                .arg(child.id().to_string())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(self.dir.with_extension("tmp"));
    }
}

fn common_unique() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{}", N.fetch_add(1, Ordering::Relaxed))
}

fn assert_timeout(what: &str, r: Result<impl std::fmt::Debug>, started: Instant, bound: Duration) {
    let elapsed = started.elapsed();
    let e = r.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Timeout, "{what}: {e}");
    assert!(
        elapsed < bound + SLACK,
        "{what} took {elapsed:?}, the bound is {bound:?} (+{SLACK:?} slack)"
    );
}

/// With the server stopped (SIGSTOP), `open`, a read and writes return `Timeout` within
/// their bounds; an insert then has an unknown outcome and is not retryable, an upsert by
/// key is retryable; after SIGCONT the backend works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_server_calls_time_out() {
    let Some(server) = PrivateServer::start("stopped_server_calls_time_out").await else {
        return;
    };
    let mut config = server.config("oc_faults");
    config.connect_timeout_ms = 2_000;
    config.statement_timeout_ms = 2_000;
    config.acquire_timeout_ms = 2_000;
    // Hand out pooled connections without a ping, so the statements themselves meet the
    // stopped server (the ping is bounded by acquire_timeout_ms, checked below too).
    config.test_before_acquire = false;
    config.min_connections = 4;
    let b = MysqlBackend::open(config.clone()).await.expect("open");
    // Four idle connections in the pool.
    let warm: Vec<_> = (0..4)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move {
                b.upsert_profile(&ProfileUpsert::new(TenantKey::user(format!("w{i}")), "x"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for w in warm {
        w.await.unwrap();
    }

    server.signal("STOP");
    let statement = Duration::from_millis(config.statement_timeout_ms);
    let acquire = Duration::from_millis(config.acquire_timeout_ms);
    let connect = Duration::from_millis(config.connect_timeout_ms);

    let t = Instant::now();
    let r = b.get_profile(&TenantKey::user("w0")).await;
    assert_timeout("get_profile", r, t, acquire + statement);

    let t = Instant::now();
    let r = b.insert_todo(&NewTodo::new("during stop")).await;
    let elapsed = t.elapsed();
    let e = r.expect_err("insert_todo");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        elapsed < acquire + statement + SLACK,
        "insert_todo took {elapsed:?}"
    );
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    assert!(
        !e.is_retryable(),
        "an insert of unknown outcome is not retryable: {e}"
    );

    let t = Instant::now();
    let r = b
        .upsert_profile(&ProfileUpsert::new(TenantKey::user("s"), "during stop"))
        .await;
    let elapsed = t.elapsed();
    let e = r.expect_err("upsert_profile");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        elapsed < acquire + statement + SLACK,
        "upsert_profile took {elapsed:?}"
    );
    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{e}");
    assert!(e.is_retryable(), "an upsert by key stays retryable: {e}");

    // A transaction that times out before its commit was sent changed nothing.
    let t = Instant::now();
    let r = b.create_conversation(&NewConversation::new("page")).await;
    let elapsed = t.elapsed();
    let e = r.expect_err("create_conversation");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(
        elapsed < acquire + statement + SLACK,
        "create_conversation took {elapsed:?}"
    );
    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");
    assert!(e.is_retryable(), "{e}");

    // `open` on an existing database (no CREATE DATABASE): the pool's first connection.
    let mut existing = config.clone();
    existing.create_database = false;
    existing.min_connections = 0;
    let t = Instant::now();
    let r = MysqlBackend::open(existing).await;
    assert_timeout("open (existing database)", r, t, connect);

    let mut new_db = server.config("oc_faults_new");
    new_db.connect_timeout_ms = 2_000;
    new_db.statement_timeout_ms = 2_000;
    let t = Instant::now();
    let r = MysqlBackend::open(new_db).await;
    assert_timeout("open (create database)", r, t, connect);

    server.signal("CONT");
    // Connections that timed out were closed; the pool recovers.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match b.get_profile(&TenantKey::user("w1")).await {
            Ok(p) => {
                assert_eq!(p.unwrap().content, "x");
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "no recovery after SIGCONT: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    b.close().await.unwrap();
    drop(server);
}

/// The server is killed (SIGKILL) during a stream of inserts and restarted on the same data:
/// an error that says "retryable" never belongs to a row that was stored (retrying it would
/// duplicate the row), and every insert that returned an id is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_never_reports_a_stored_insert_as_retryable() {
    let Some(mut server) =
        PrivateServer::start("killed_server_never_reports_a_stored_insert_as_retryable").await
    else {
        return;
    };
    let mut config = server.config("oc_kill");
    config.connect_timeout_ms = 2_000;
    config.statement_timeout_ms = 3_000;
    config.acquire_timeout_ms = 2_000;
    let b = MysqlBackend::open(config).await.expect("open");

    let writers: Vec<_> = (0..4)
        .map(|w| {
            let b = b.clone();
            tokio::spawn(async move {
                let mut results = Vec::new();
                for i in 0..100_000 {
                    let content = format!("w{w}-{i}");
                    let r = b.insert_todo(&NewTodo::new(content.clone())).await;
                    let failed = r.is_err();
                    results.push((content, r));
                    if failed {
                        break;
                    }
                }
                results
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    server.kill();
    let mut results = Vec::new();
    for w in writers {
        results.extend(w.await.unwrap());
    }
    server.spawn().await;

    let mut c = sqlx::MySqlConnection::connect(&format!("{}/oc_kill", server.url()))
        .await
        .unwrap();
    let stored: std::collections::HashSet<String> = sqlx::query("SELECT content FROM todo")
        .fetch_all(&mut c)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    c.close().await.unwrap();

    let mut errors = 0;
    for (content, r) in &results {
        match r {
            Ok(_) => assert!(
                stored.contains(content),
                "insert {content} returned an id but is lost"
            ),
            Err(e) => {
                errors += 1;
                if e.is_retryable() {
                    assert!(
                        !stored.contains(content),
                        "{content} is stored, yet its error says retryable: {e}"
                    );
                    assert_eq!(e.outcome(), WriteOutcome::NotApplied, "{e}");
                } else {
                    assert_eq!(e.outcome(), WriteOutcome::Unknown, "{content}: {e}");
                }
            }
        }
    }
    assert_eq!(
        errors, 4,
        "each writer stopped at its first error: {results:?}"
    );
    assert!(results.len() > 4, "some inserts ran before the kill");
    drop(server);
}
