//! Configuration of the Chroma backend, in the original's shape (`mode: server`, `host`,
//! `port`, `ssl`, `headers`) plus the keys this backend adds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_core::config::{Secret, lenient, lenient_opt};
use storage_core::{Result, StorageError};

/// Configuration of [`crate::ChromaBackend`] (the `chromadb` backend).
///
/// In YAML, under a `storage.backends` entry with `backend: chromadb`:
///
/// ```yaml
/// config:
///   mode: server            # the only mode: the original's "local" mode is Python-only
///   host: localhost
///   port: 8000
///   ssl: false
///   vector_size: 384
///   tenant: default_tenant
///   database: default_database
///   collection_prefix: ""   # collections are named <prefix><context_type>, <prefix>todo
/// ```
///
/// Unknown keys (the original's `path`, `settings`) are ignored.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ChromaConfig {
    /// `server` (default). The original's `local` mode embeds Chroma's engine in the Python
    /// process; it has no Rust equivalent and is refused with a `Config` error.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Full base URL (`http://localhost:8000`); when set, `host`, `port` and `ssl` are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Server host (default `localhost`).
    #[serde(default = "default_host")]
    pub host: String,
    /// Server port (default 1733, the original's default; `chroma run` listens on 8000).
    #[serde(default = "default_port", deserialize_with = "lenient")]
    pub port: u16,
    /// Use HTTPS (default false).
    #[serde(default, deserialize_with = "lenient")]
    pub ssl: bool,
    /// Extra HTTP headers sent with every request (e.g. `x-chroma-token`); values are
    /// secrets, never printed.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Token sent as `x-chroma-token` (Chroma's token authentication), if set.
    #[serde(default, alias = "api_key")]
    pub auth_token: Secret,
    /// Chroma tenant (default `default_tenant`); created if missing.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Chroma database (default `default_database`); created if missing.
    #[serde(default = "default_database")]
    pub database: String,
    /// Prefix of the collection names (default empty: the original's names `event`, `todo`...).
    #[serde(default)]
    pub collection_prefix: String,
    /// Dimension of every stored vector (the original's `vector_size`).
    #[serde(deserialize_with = "lenient")]
    pub vector_size: usize,
    /// Whether the `todo` collection exists (the factory sets it from `consumption.enabled`).
    #[serde(default, deserialize_with = "lenient")]
    pub todo_embeddings: bool,
    /// Timeout of one HTTP request, in seconds (default 30).
    #[serde(default = "default_timeout", deserialize_with = "lenient")]
    pub timeout_secs: f64,
    /// Timeout of establishing a connection, in seconds (default 5).
    #[serde(default = "default_connect_timeout", deserialize_with = "lenient")]
    pub connect_timeout_secs: f64,
    /// Retries of a request that failed with a retryable error (connection refused or reset,
    /// timeout, HTTP 429/502/503/504), default 3.
    #[serde(default = "default_retries", deserialize_with = "lenient")]
    pub max_retries: u32,
    /// First retry delay in milliseconds, doubled per attempt (default 200).
    #[serde(default = "default_backoff_ms", deserialize_with = "lenient")]
    pub retry_backoff_ms: u64,
    /// Largest retry delay in milliseconds (default 10 000); also the longest pause of the
    /// background retry of pending writes.
    #[serde(default = "default_max_backoff_ms", deserialize_with = "lenient")]
    pub max_backoff_ms: u64,
    /// Records per upsert request; larger batches are split. Default: the server's
    /// `max_batch_size` (pre-flight check), capped at 1000.
    #[serde(default, deserialize_with = "lenient_opt")]
    pub max_batch_size: Option<usize>,
    /// HNSW `ef_search` of new collections (default 100): larger is more exact and slower.
    #[serde(default = "default_ef", deserialize_with = "lenient")]
    pub hnsw_ef_search: usize,
    /// HNSW `ef_construction` of new collections (default 100).
    #[serde(default = "default_ef", deserialize_with = "lenient")]
    pub hnsw_ef_construction: usize,
    /// HNSW `max_neighbors` (M) of new collections (default 16).
    #[serde(default = "default_m", deserialize_with = "lenient")]
    pub hnsw_max_neighbors: usize,
    /// Seconds `close()` keeps retrying pending writes before it gives up (default 30).
    #[serde(default = "default_close_timeout", deserialize_with = "lenient")]
    pub close_timeout_secs: f64,
}

fn default_mode() -> String {
    "server".into()
}
fn default_host() -> String {
    "localhost".into()
}
fn default_port() -> u16 {
    1733
}
fn default_tenant() -> String {
    "default_tenant".into()
}
fn default_database() -> String {
    "default_database".into()
}
fn default_timeout() -> f64 {
    30.0
}
fn default_connect_timeout() -> f64 {
    5.0
}
fn default_retries() -> u32 {
    3
}
fn default_backoff_ms() -> u64 {
    200
}
fn default_max_backoff_ms() -> u64 {
    10_000
}
fn default_ef() -> usize {
    100
}
fn default_m() -> usize {
    16
}
fn default_close_timeout() -> f64 {
    30.0
}

/// Largest accepted `vector_size`.
pub const MAX_VECTOR_SIZE: usize = 65_536;

impl fmt::Debug for ChromaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChromaConfig")
            .field("mode", &self.mode)
            .field("base_url", &redact_url(&self.base_url()))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("auth_token", &self.auth_token)
            .field("tenant", &self.tenant)
            .field("database", &self.database)
            .field("collection_prefix", &self.collection_prefix)
            .field("vector_size", &self.vector_size)
            .field("todo_embeddings", &self.todo_embeddings)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// `url` with the userinfo (`user:password@`) of its authority replaced by `***@`, for
/// messages, logs and `Debug`: credentials in the URL are secrets.
pub(crate) fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

impl ChromaConfig {
    /// A configuration for the server at `url` (`http://host:port`) with `vector_size`
    /// dimensions and defaults for the rest.
    pub fn new(url: impl Into<String>, vector_size: usize) -> Self {
        ChromaConfig {
            mode: default_mode(),
            url: Some(url.into()),
            host: default_host(),
            port: default_port(),
            ssl: false,
            headers: BTreeMap::new(),
            auth_token: Secret::default(),
            tenant: default_tenant(),
            database: default_database(),
            collection_prefix: String::new(),
            vector_size,
            todo_embeddings: false,
            timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            max_retries: default_retries(),
            retry_backoff_ms: default_backoff_ms(),
            max_backoff_ms: default_max_backoff_ms(),
            max_batch_size: None,
            hnsw_ef_search: default_ef(),
            hnsw_ef_construction: default_ef(),
            hnsw_max_neighbors: default_m(),
            close_timeout_secs: default_close_timeout(),
        }
    }

    /// Sets `collection_prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.collection_prefix = prefix.into();
        self
    }

    /// Sets `todo_embeddings`.
    pub fn with_todo_embeddings(mut self, enabled: bool) -> Self {
        self.todo_embeddings = enabled;
        self
    }

    /// The server's base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.url {
            Some(u) if !u.trim().is_empty() => u.trim().trim_end_matches('/').to_owned(),
            _ => format!(
                "{}://{}:{}",
                if self.ssl { "https" } else { "http" },
                self.host,
                self.port
            ),
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout_secs)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(StorageError::config(format!("chromadb: {m}")));
        if self.mode != "server" {
            return err(format!(
                "'mode' is {:?}; only 'server' is supported (the original's embedded 'local' mode is Python-only: start a server with `chroma run --path DIR`)",
                self.mode
            ));
        }
        let url = self.base_url();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return err(format!(
                "'url' {:?} must start with http:// or https://",
                redact_url(&url)
            ));
        }
        if self.vector_size == 0 || self.vector_size > MAX_VECTOR_SIZE {
            return err(format!(
                "'vector_size' is {}, expected 1 to {MAX_VECTOR_SIZE}",
                self.vector_size
            ));
        }
        // Chroma's name rule for tenants and databases: 3 to 512 of [A-Za-z0-9_.-], starting
        // and ending with a letter or digit (so never a path segment such as `..`).
        for (key, value) in [("tenant", &self.tenant), ("database", &self.database)] {
            if !(3..=512).contains(&value.len())
                || !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                || !value.starts_with(|c: char| c.is_ascii_alphanumeric())
                || !value.ends_with(|c: char| c.is_ascii_alphanumeric())
            {
                return err(format!(
                    "'{key}' {value:?} must be 3 to 512 of [A-Za-z0-9_.-], starting and ending with a letter or digit (Chroma's name rule)"
                ));
            }
        }
        let p = &self.collection_prefix;
        if !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            || p.starts_with(|c: char| !c.is_ascii_alphanumeric())
            || p.len() > 200
            || p.contains("..")
        {
            return err(format!(
                "'collection_prefix' {p:?} must start with a letter or digit, use only [A-Za-z0-9_.-], not contain '..' and be at most 200 bytes (Chroma's collection name rules)"
            ));
        }
        for (key, v) in [
            ("timeout_secs", self.timeout_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("close_timeout_secs", self.close_timeout_secs),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
                return err(format!(
                    "'{key}' is {v}, expected more than 0 and at most 86400"
                ));
            }
        }
        if self.max_batch_size == Some(0) {
            return err("'max_batch_size' must be at least 1".into());
        }
        if self.retry_backoff_ms == 0 || self.max_backoff_ms < self.retry_backoff_ms {
            return err(format!(
                "'retry_backoff_ms' ({}) must be at least 1 and at most 'max_backoff_ms' ({})",
                self.retry_backoff_ms, self.max_backoff_ms
            ));
        }
        if self.hnsw_ef_search == 0 || self.hnsw_ef_construction == 0 || self.hnsw_max_neighbors < 2
        {
            return err("'hnsw_ef_search' and 'hnsw_ef_construction' must be at least 1, 'hnsw_max_neighbors' at least 2".into());
        }
        for name in self.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return err(format!("'headers' key {name:?} is not an HTTP header name"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            redact_url("http://u:p@h:1/api/v2/x?y=a@b"),
            "http://***@h:1/api/v2/x?y=a@b"
        );
        assert_eq!(redact_url("https://h:1/a@b"), "https://h:1/a@b");
        assert_eq!(redact_url("http://a@b@h"), "http://***@h");
        assert_eq!(redact_url("nonsense"), "nonsense");
    }

    #[test]
    fn original_shape_with_defaults_and_strings() {
        let c: ChromaConfig = serde_json::from_str(
            r#"{"mode": "server", "host": "db", "port": "8000", "ssl": "true", "vector_size": "384",
                "headers": {"x-chroma-token": "s3cret"}, "path": "./ignored"}"#,
        )
        .unwrap();
        assert_eq!(c.base_url(), "https://db:8000");
        assert_eq!(c.tenant, "default_tenant");
        assert_eq!(c.database, "default_database");
        assert_eq!(c.collection_prefix, "");
        assert!(c.validate().is_ok());
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("x-chroma-token"));
    }

    #[test]
    fn refuses_bad_values_naming_the_key() {
        let base = ChromaConfig::new("http://localhost:8000", 8);
        assert!(base.validate().is_ok());
        let mut c = base.clone();
        c.mode = "local".into();
        assert!(c.validate().unwrap_err().to_string().contains("'mode'"));
        let c = ChromaConfig::new("http://x", 0);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("vector_size")
        );
        let c = base.clone().with_prefix("_bad");
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("collection_prefix")
        );
        let mut c = base.clone();
        c.timeout_secs = f64::NAN;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("timeout_secs")
        );
        let c = ChromaConfig::new("localhost:8000", 8);
        assert!(c.validate().unwrap_err().to_string().contains("http://"));
        let mut c = base;
        c.tenant = "a/b".into();
        assert!(c.validate().unwrap_err().to_string().contains("tenant"));
    }
}
