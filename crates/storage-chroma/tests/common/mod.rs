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
        let port = port.unwrap_or_else(free_port);
        std::fs::create_dir_all(dir).expect("data dir");
        let pid_file = dir.join(format!("chroma-{port}.pid"));
        let log = dir.join(format!("chroma-{port}.log"));
        let script = r#"chroma run --path "$1" --host 127.0.0.1 --port "$2" >"$3" 2>&1 &
c=$!; echo $c >"$4"
while kill -0 "$5" 2>/dev/null && kill -0 $c 2>/dev/null; do sleep 1; done
kill $c 2>/dev/null; wait $c"#;
        let watcher = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(dir.join("data"))
            .arg(port.to_string())
            .arg(&log)
            .arg(&pid_file)
            .arg(std::process::id().to_string())
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
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.watcher.wait();
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
            let dir = tempfile::tempdir().expect("temp dir");
            let p = ChromaProcess::start(dir.path(), None).await;
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

/// A test configuration: its own prefix, a test database, quick retries.
pub fn config(url: &str, dimension: usize, tag: &str) -> ChromaConfig {
    let mut c = ChromaConfig::new(url, dimension).with_prefix(unique_prefix(tag));
    c.database = "opencontext_test".into();
    c.retry_backoff_ms = 50;
    c.max_backoff_ms = 1000;
    c
}
