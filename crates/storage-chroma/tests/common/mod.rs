//! A Chroma server for the tests: `CHROMA_URL` when set, else one started here with
//! `chroma run` (random free port, temp directory, killed when the test process exits);
//! when neither is possible the tests print why and pass, unless `CI` is set (then they fail).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use storage_chroma::ChromaConfig;
use tokio::sync::OnceCell;

/// A `chroma run` process watched by a shell loop that kills it when this test process ends.
pub struct ChromaProcess {
    pub url: String,
    pub port: u16,
    pub dir: PathBuf,
    pid_file: PathBuf,
    /// The watching shell; it exits within a second of the server.
    watcher: std::process::Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Whether the `chroma` command is installed.
pub fn chroma_installed() -> bool {
    Command::new("chroma")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl ChromaProcess {
    /// Starts a server on `port` (a free one when `None`) storing its data in `dir`, and waits
    /// until `/api/v2/heartbeat` answers.
    pub async fn start(dir: &Path, port: Option<u16>) -> ChromaProcess {
        Self::start_inner(dir, port, false).await
    }

    /// Starts a server whose watcher removes `dir` once the server has ended.
    async fn start_owning(dir: &Path) -> ChromaProcess {
        Self::start_inner(dir, None, true).await
    }

    async fn start_inner(dir: &Path, port: Option<u16>, remove_dir: bool) -> ChromaProcess {
        let port = port.unwrap_or_else(free_port);
        std::fs::create_dir_all(dir).expect("data dir");
        let pid_file = dir.join(format!("chroma-{port}.pid"));
        let log = dir.join(format!("chroma-{port}.log"));
        // The watcher ends the server when this test process ends (statics, such as the
        // shared server, are never dropped), continuing it first in case a test left it
        // stopped; with `$6` set it then removes that directory (the shared server's).
        let script = r#"chroma run --path "$1" --host 127.0.0.1 --port "$2" >"$3" 2>&1 &
c=$!; echo $c >"$4"
while kill -0 "$5" 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 1; done
kill -CONT $c 2>/dev/null; kill $c 2>/dev/null; wait $c
if [ -n "$6" ]; then rm -rf "$6"; fi"#;
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(dir.join("data"))
            .arg(port.to_string())
            .arg(&log)
            .arg(&pid_file)
            .arg(std::process::id().to_string())
            .arg(if remove_dir {
                dir.as_os_str()
            } else {
                std::ffi::OsStr::new("")
            })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn chroma run");
        let p = ChromaProcess {
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir: dir.to_owned(),
            pid_file,
            watcher,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = client
                .get(format!("{}/api/v2/heartbeat", p.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "chroma did not answer on port {port} within 60 s; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> String {
        std::fs::read_to_string(&self.pid_file)
            .expect("pid file")
            .trim()
            .to_owned()
    }

    /// Stops the server with SIGSTOP: it keeps its port and accepts connections (the kernel
    /// queues them) but answers nothing. The returned guard continues it (SIGCONT) when
    /// dropped, also when the test fails.
    pub fn stop(&self) -> Stopped {
        let pid = self.pid();
        let ok = Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -STOP {pid}");
        Stopped { pid }
    }

    /// Kills the server (SIGKILL) and waits until the port refuses connections.
    pub async fn kill(&self) {
        let pid = std::fs::read_to_string(&self.pid_file).expect("pid file");
        let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "chroma still listening");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ChromaProcess {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            // A stopped process does not act on SIGTERM: continue it first.
            let _ = Command::new("kill").args(["-CONT", pid.trim()]).status();
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.watcher.wait();
    }
}

/// A server stopped by [`ChromaProcess::stop`]; dropping it sends SIGCONT.
pub struct Stopped {
    pid: String,
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid]).status();
    }
}

/// Where the shared server is.
pub struct Shared {
    pub url: String,
    _process: Option<(ChromaProcess, tempfile::TempDir)>,
}

static SHARED: OnceCell<Option<Shared>> = OnceCell::const_new();

/// Prints why a test is skipped, or panics when `CI` is set.
pub fn skip(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{why} (CI is set, so this is a failure)");
    }
    eprintln!("SKIPPED: {why}");
}

/// The shared server's URL, or `None` (after printing why) when there is none.
pub async fn shared_url() -> Option<String> {
    let shared = SHARED
        .get_or_init(|| async {
            if let Ok(url) = std::env::var("CHROMA_URL")
                && !url.trim().is_empty()
            {
                return Some(Shared {
                    url: url.trim().to_owned(),
                    _process: None,
                });
            }
            if !chroma_installed() {
                return None;
            }
            // Statics are never dropped: the watcher removes the directory when the server
            // ends with this process.
            let dir = tempfile::tempdir().expect("temp dir");
            let p = ChromaProcess::start_owning(dir.path()).await;
            Some(Shared {
                url: p.url.clone(),
                _process: Some((p, dir)),
            })
        })
        .await;
    match shared {
        Some(s) => Some(s.url.clone()),
        None => {
            skip(
                "no Chroma server: CHROMA_URL is unset and the `chroma` command is not installed (pip install chromadb)",
            );
            None
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A collection prefix no other test or run uses.
pub fn unique_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!(
        "{tag}{}x{}x{}_",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A test configuration: its own prefix, a test database, quick retries; and the guard that
/// removes the collections with that prefix when the test ends, passed or failed.
pub fn config(url: &str, dimension: usize, tag: &str) -> (ChromaConfig, Cleanup) {
    let mut c = ChromaConfig::new(url, dimension).with_prefix(unique_prefix(tag));
    c.database = "opencontext_test".into();
    c.retry_backoff_ms = 50;
    c.max_backoff_ms = 1000;
    let guard = Cleanup::collections(&c);
    (c, guard)
}

/// Removes what a test created on a Chroma server when dropped (the test passed, failed or
/// panicked): every collection whose name starts with the prefix, in the config's tenant
/// and database, or the whole database. Chroma's API cannot delete tenants, so tests use
/// the default tenant or [`TEST_TENANT`], never a new one per run.
pub struct Cleanup(Target);

/// What a [`Cleanup`] removes.
#[derive(Clone, Debug)]
struct Target {
    url: String,
    tenant: String,
    database: String,
    /// `None`: delete the database.
    prefix: Option<String>,
}

/// The one tenant tests create (Chroma cannot delete tenants).
pub const TEST_TENANT: &str = "opencontext_test_tenant";

impl Cleanup {
    /// Removes the collections of `c`'s prefix (which must not be empty) in its database.
    pub fn collections(c: &ChromaConfig) -> Cleanup {
        assert!(
            !c.collection_prefix.is_empty(),
            "tests clean up by prefix: use a unique one"
        );
        Cleanup(Target {
            url: c.base_url(),
            tenant: c.tenant.clone(),
            database: c.database.clone(),
            prefix: Some(c.collection_prefix.clone()),
        })
    }

    /// Removes `c`'s whole database (a database the test made for itself).
    pub fn database(c: &ChromaConfig) -> Cleanup {
        Cleanup(Target {
            url: c.base_url(),
            tenant: c.tenant.clone(),
            database: c.database.clone(),
            prefix: None,
        })
    }
}

impl Target {
    async fn run(&self) -> Result<usize, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let db = format!(
            "{}/api/v2/tenants/{}/databases/{}",
            self.url, self.tenant, self.database
        );
        let Some(prefix) = &self.prefix else {
            let r = http.delete(&db).send().await.map_err(|e| e.to_string())?;
            return match r.status().as_u16() {
                200..=299 | 404 => Ok(1),
                s => Err(format!("DELETE database: HTTP {s}")),
            };
        };
        let mut names = Vec::new();
        loop {
            let r = http
                .get(format!("{db}/collections?limit=100&offset={}", names.len()))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if r.status().as_u16() == 404 {
                return Ok(0);
            }
            let page: Vec<serde_json::Value> = r.json().await.map_err(|e| e.to_string())?;
            let n = page.len();
            names.extend(
                page.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned)),
            );
            if n < 100 {
                break;
            }
        }
        let mut deleted = 0;
        for name in names.iter().filter(|n| n.starts_with(prefix.as_str())) {
            let r = http
                .delete(format!("{db}/collections/{name}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !(r.status().is_success() || r.status().as_u16() == 404) {
                return Err(format!("DELETE collection {name}: HTTP {}", r.status()));
            }
            deleted += 1;
        }
        Ok(deleted)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let job = self.0.clone();
        // Drop may run inside the test's runtime (which cannot block on a future): use a
        // thread with its own. Never panic here (a panic while unwinding aborts).
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(job.run())
        })
        .join();
        match outcome {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => eprintln!(
                "cleanup of {}/{} (prefix {:?}) failed: {e}",
                self.0.tenant, self.0.database, self.0.prefix
            ),
            Err(_) => eprintln!("cleanup thread panicked"),
        }
    }
}

/// The collection names (all of them) of a database, for tests that check cleanup.
pub async fn collection_names(url: &str, tenant: &str, database: &str) -> Vec<String> {
    let r = reqwest::get(format!(
        "{url}/api/v2/tenants/{tenant}/databases/{database}/collections?limit=1000"
    ))
    .await
    .expect("list collections");
    if r.status().as_u16() == 404 {
        return Vec::new();
    }
    let v: Vec<serde_json::Value> = r.json().await.expect("collections json");
    v.iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect()
}
