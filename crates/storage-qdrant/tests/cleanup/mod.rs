//! Removal of the collections a test run created on a server, in every path: a guard whose
//! `Drop` deletes every collection whose name starts with the run's prefix, also while a
//! failed test unwinds. The real-server tests (`QDRANT_URL`) and the in-process-server tests
//! use the same guard, so this path runs in every `cargo test`.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use qdrant_client::Qdrant;
use storage_qdrant::QdrantRemoteConfig;

/// Longest time the cleanup may take; a server that does not answer is given up on (the
/// test then fails or has already failed, and says so).
const CLEANUP_BOUND: Duration = Duration::from_secs(60);

/// Deletes, when dropped, every collection whose name starts with [`Self::prefix`] on the
/// server.
pub struct PrefixCleanup {
    endpoint: String,
    api_key: Option<String>,
    prefix: String,
}

/// A prefix unique to this process and moment, `octest_<pid>_<nanos>_`.
pub fn run_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("octest_{}_{nanos}_", std::process::id())
}

impl PrefixCleanup {
    /// A guard for the collections named `prefix...` on the server at `url` (a REST or gRPC
    /// address, read as the backend reads it).
    pub fn new(url: &str, api_key: Option<String>, prefix: impl Into<String>) -> Self {
        let endpoint = QdrantRemoteConfig::new(url, 1)
            .endpoint()
            .expect("a valid server address");
        PrefixCleanup {
            endpoint,
            api_key,
            prefix: prefix.into(),
        }
    }

    /// The prefix every collection of the run must start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The names of the server's collections with the prefix.
    pub async fn remaining(&self) -> Result<Vec<String>, String> {
        let client = client(&self.endpoint, self.api_key.as_deref())?;
        prefixed(&client, &self.prefix).await
    }

    /// Deletes the prefixed collections now; returns how many there were.
    pub async fn delete_all(&self) -> Result<usize, String> {
        delete_prefixed(&self.endpoint, self.api_key.as_deref(), &self.prefix).await
    }
}

fn client(endpoint: &str, api_key: Option<&str>) -> Result<Qdrant, String> {
    let mut b = Qdrant::from_url(endpoint)
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .skip_compatibility_check();
    if let Some(key) = api_key {
        b = b.api_key(key.to_owned());
    }
    b.build().map_err(|e| e.to_string())
}

async fn prefixed(client: &Qdrant, prefix: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = client
        .list_collections()
        .await
        .map_err(|e| e.to_string())?
        .collections
        .into_iter()
        .map(|c| c.name)
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    Ok(names)
}

async fn delete_prefixed(
    endpoint: &str,
    api_key: Option<&str>,
    prefix: &str,
) -> Result<usize, String> {
    let client = client(endpoint, api_key)?;
    let names = prefixed(&client, prefix).await?;
    for name in &names {
        client
            .delete_collection(name.as_str())
            .await
            .map_err(|e| format!("delete {name}: {e}"))?;
    }
    Ok(names.len())
}

impl Drop for PrefixCleanup {
    fn drop(&mut self) {
        let (endpoint, key, prefix) = (
            self.endpoint.clone(),
            self.api_key.clone(),
            self.prefix.clone(),
        );
        // Drop cannot await: run the deletes on a thread with its own runtime. Inside a
        // multi-threaded runtime (the tests'), hand this worker's tasks to another thread
        // first, so that an in-process server on the same runtime keeps answering.
        let work = move || {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async {
                    tokio::time::timeout(
                        CLEANUP_BOUND,
                        delete_prefixed(&endpoint, key.as_deref(), &prefix),
                    )
                    .await
                    .map_err(|_| format!("no answer within {CLEANUP_BOUND:?}"))?
                })
            })
            .join()
            .unwrap_or_else(|_| Err("the cleanup thread panicked".to_owned()))
        };
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let result = if multi_thread {
            tokio::task::block_in_place(work)
        } else {
            work()
        };
        match result {
            Ok(n) => eprintln!("cleanup: deleted {n} collection(s) named {}*", self.prefix),
            Err(e) => {
                eprintln!(
                    "cleanup: collections named {}* may be left: {e}",
                    self.prefix
                );
                if !std::thread::panicking() {
                    panic!("cleanup of collections named {}* failed: {e}", self.prefix);
                }
            }
        }
    }
}
