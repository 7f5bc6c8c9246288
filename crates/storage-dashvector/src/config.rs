//! Configuration of the DashVector backend.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use storage_core::config::{Secret, lenient};
use storage_core::{Result, StorageError};

use crate::schema::FieldKind;

/// Most documents DashVector accepts in one upsert or delete call, and the largest `topk` of
/// one query ([Limits](https://www.alibabacloud.com/help/en/vrs/latest/constraints-and-limitations),
/// [query](https://www.alibabacloud.com/help/en/vrs/latest/retrieve-doc-1): `topk` 1 to 1024).
pub const MAX_DOCS_PER_CALL: usize = 1024;

/// Longest collection name DashVector accepts
/// ([create a collection](https://www.alibabacloud.com/help/en/vrs/latest/create-a-collection):
/// 3 to 32 characters, starting with a letter).
pub const MAX_COLLECTION_NAME_LEN: usize = 32;

/// Largest accepted `timeout_secs`, `connect_timeout_secs` and
/// `collection_ready_timeout_secs`: one day.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// Most accepted `max_retries`.
pub const MAX_RETRIES: u32 = 10;

/// Largest accepted `retry_base_delay_ms` and `retry_max_delay_ms`, in milliseconds (one
/// minute).
pub const MAX_RETRY_DELAY_MS: u64 = 60_000;

/// Configuration of [`crate::DashVectorBackend`] (the `dashvector` backend).
///
/// In YAML, under a `storage.backends` entry with `backend: dashvector`:
///
/// ```yaml
/// config:
///   endpoint: vrs-cn-xxxx.dashvector.cn-hangzhou.aliyuncs.com   # cluster endpoint
///   api_key: ${DASHVECTOR_API_KEY}                              # dashvector-auth-token
///   vector_size: 1024
///   collection_prefix: ""          # collections are <prefix><context_type>, <prefix>todo
///   extra_fields: {project: STRING} # metadata fields declared for filtering
///   timeout_secs: 30
///   max_retries: 3
/// ```
///
/// `api_key` is a [`Secret`]: `Debug` prints `***`.
#[derive(Clone, Debug, Deserialize)]
pub struct DashVectorConfig {
    /// The cluster endpoint, as the console shows it (`vrs-cn-....aliyuncs.com`, HTTPS is
    /// implied), or a full base URL with scheme (`http://127.0.0.1:8080`, for tests).
    pub endpoint: String,
    /// The API key, sent in the `dashvector-auth-token` header.
    pub api_key: Secret,
    /// Dimension of every stored vector (the original's `vector_size`, default 1536).
    #[serde(default = "default_vector_size", deserialize_with = "lenient")]
    pub vector_size: usize,
    /// Prefix of every collection name (default empty: the collections are named after the
    /// context types, as the original names them). Letters, digits, `_` and `-`.
    #[serde(default)]
    pub collection_prefix: String,
    /// Metadata fields declared in the collection schema besides the context fields, with
    /// their types (`STRING`, `INT`, `LONG`, `FLOAT`, `BOOL`). Only declared fields may be
    /// used in filters: the filter's value type is checked against the declared type.
    #[serde(default)]
    pub extra_fields: BTreeMap<String, FieldKind>,
    /// Whether the `todo` collection exists (the factory sets it from the original's
    /// `consumption.enabled`). When false, the todo methods return `Unsupported`.
    #[serde(default, deserialize_with = "lenient")]
    pub todo_embeddings: bool,
    /// Timeout of one HTTP request, in seconds (default 30, the original's).
    /// `timeout` in the original's configuration files is read as this key.
    #[serde(
        default = "default_timeout",
        alias = "timeout",
        deserialize_with = "lenient"
    )]
    pub timeout_secs: f64,
    /// Connection timeout, in seconds (default 10).
    #[serde(default = "default_connect_timeout", deserialize_with = "lenient")]
    pub connect_timeout_secs: f64,
    /// Retries after a retryable failure (HTTP 429 and 5xx, connection errors, timeouts,
    /// DashVector codes 408, -2029, -2030, -2034); default 3, at most [`MAX_RETRIES`]. 0
    /// disables retries.
    #[serde(default = "default_retries", deserialize_with = "lenient")]
    pub max_retries: u32,
    /// First backoff delay in milliseconds, doubled after each retry (default 200, at most
    /// [`MAX_RETRY_DELAY_MS`]).
    #[serde(default = "default_retry_base", deserialize_with = "lenient")]
    pub retry_base_delay_ms: u64,
    /// Largest backoff delay in milliseconds (default 5000, at most [`MAX_RETRY_DELAY_MS`]);
    /// also caps a server's `Retry-After`.
    #[serde(default = "default_retry_max", deserialize_with = "lenient")]
    pub retry_max_delay_ms: u64,
    /// Documents per upsert or delete call and page size limit of queries (default and
    /// maximum [`MAX_DOCS_PER_CALL`]). Larger batches are split.
    #[serde(default = "default_batch", deserialize_with = "lenient")]
    pub batch_size: usize,
    /// Ids per fetch call (default 100): fetch passes ids comma-separated in the URL.
    #[serde(default = "default_fetch_batch", deserialize_with = "lenient")]
    pub fetch_batch_size: usize,
    /// How long `open` waits for a newly created collection to serve, in seconds (default 60).
    #[serde(default = "default_ready_timeout", deserialize_with = "lenient")]
    pub collection_ready_timeout_secs: f64,
}

fn default_vector_size() -> usize {
    1536
}
fn default_timeout() -> f64 {
    30.0
}
fn default_connect_timeout() -> f64 {
    10.0
}
fn default_retries() -> u32 {
    3
}
fn default_retry_base() -> u64 {
    200
}
fn default_retry_max() -> u64 {
    5000
}
fn default_batch() -> usize {
    MAX_DOCS_PER_CALL
}
fn default_fetch_batch() -> usize {
    100
}
fn default_ready_timeout() -> f64 {
    60.0
}

impl DashVectorConfig {
    /// Keys of the original's configuration files that this backend accepts and does not use:
    /// the sizes of the original's aiohttp connection pool (reqwest's pool grows as needed).
    /// The factory drops them before parsing, so they are not reported as unknown keys.
    pub const ORIGINAL_KEYS_NOT_USED: &'static [&'static str] =
        &["max_connections", "max_connections_per_host"];

    /// A configuration with the defaults for `endpoint`, `api_key` and `vector_size`.
    pub fn new(
        endpoint: impl Into<String>,
        api_key: impl Into<String>,
        vector_size: usize,
    ) -> Self {
        DashVectorConfig {
            endpoint: endpoint.into(),
            api_key: Secret::new(api_key),
            vector_size,
            collection_prefix: String::new(),
            extra_fields: BTreeMap::new(),
            todo_embeddings: false,
            timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            max_retries: default_retries(),
            retry_base_delay_ms: default_retry_base(),
            retry_max_delay_ms: default_retry_max(),
            batch_size: default_batch(),
            fetch_batch_size: default_fetch_batch(),
            collection_ready_timeout_secs: default_ready_timeout(),
        }
    }

    /// Sets `collection_prefix`.
    pub fn with_collection_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.collection_prefix = prefix.into();
        self
    }

    /// Sets `todo_embeddings`.
    pub fn with_todo_embeddings(mut self, enabled: bool) -> Self {
        self.todo_embeddings = enabled;
        self
    }

    /// Declares a metadata field usable in filters.
    pub fn with_extra_field(mut self, name: impl Into<String>, kind: FieldKind) -> Self {
        self.extra_fields.insert(name.into(), kind);
        self
    }

    /// The base URL (`https://<endpoint>` unless the endpoint has a scheme), without a
    /// trailing slash.
    pub(crate) fn base_url(&self) -> String {
        let e = self.endpoint.trim().trim_end_matches('/');
        if e.starts_with("http://") || e.starts_with("https://") {
            e.to_owned()
        } else {
            format!("https://{e}")
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }

    /// Checks the values before anything is sent.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<()> {
        if self.endpoint.trim().is_empty() {
            return Err(StorageError::config(
                "dashvector config.endpoint is required",
            ));
        }
        if self.api_key.is_empty() {
            return Err(StorageError::config(
                "dashvector config.api_key is required",
            ));
        }
        // Documented range of `dimension`: (1, 20000].
        if !(2..=20_000).contains(&self.vector_size) {
            return Err(StorageError::config(format!(
                "dashvector config.vector_size is {}, DashVector accepts 2 to 20000",
                self.vector_size
            )));
        }
        // DashVector's collection name rule: 3 to 32 of [A-Za-z0-9_-], starting with a
        // letter. Names are `<prefix><context_type>` and `<prefix>todo`, so the prefix is
        // empty or starts with a letter, and the longest name must fit 32.
        let p = &self.collection_prefix;
        let longest = storage_core::ContextType::ALL
            .iter()
            .map(|t| t.as_str().len())
            .max()
            .unwrap_or(0);
        let max_prefix = MAX_COLLECTION_NAME_LEN - longest;
        if p.len() > max_prefix
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            || p.starts_with(|c: char| !c.is_ascii_alphabetic())
        {
            return Err(StorageError::config(format!(
                "dashvector config.collection_prefix {p:?} must be empty or start with a letter, \
                 use only [A-Za-z0-9_-] and be at most {max_prefix} bytes (collection names \
                 <prefix><context_type> are at most {MAX_COLLECTION_NAME_LEN} characters)"
            )));
        }
        for (name, value, min) in [
            ("timeout_secs", self.timeout_secs, 0.001),
            ("connect_timeout_secs", self.connect_timeout_secs, 0.001),
            (
                "collection_ready_timeout_secs",
                self.collection_ready_timeout_secs,
                0.0,
            ),
        ] {
            // The upper bound keeps `Duration::from_secs_f64` and `Instant + Duration` from
            // panicking on absurd values.
            if !value.is_finite() || value < min || value > MAX_TIMEOUT_SECS {
                return Err(StorageError::config(format!(
                    "dashvector config.{name} is {value}, expected a number from {min} to \
                     {MAX_TIMEOUT_SECS} (seconds)"
                )));
            }
        }
        if self.max_retries > MAX_RETRIES {
            return Err(StorageError::config(format!(
                "dashvector config.max_retries is {}, expected at most {MAX_RETRIES}",
                self.max_retries
            )));
        }
        for (name, value) in [
            ("retry_base_delay_ms", self.retry_base_delay_ms),
            ("retry_max_delay_ms", self.retry_max_delay_ms),
        ] {
            if value > MAX_RETRY_DELAY_MS {
                return Err(StorageError::config(format!(
                    "dashvector config.{name} is {value}, expected at most \
                     {MAX_RETRY_DELAY_MS} (milliseconds)"
                )));
            }
        }
        if !(1..=MAX_DOCS_PER_CALL).contains(&self.batch_size) {
            return Err(StorageError::config(format!(
                "dashvector config.batch_size is {}, expected 1 to {MAX_DOCS_PER_CALL}",
                self.batch_size
            )));
        }
        if !(1..=MAX_DOCS_PER_CALL).contains(&self.fetch_batch_size) {
            return Err(StorageError::config(format!(
                "dashvector config.fetch_batch_size is {}, expected 1 to {MAX_DOCS_PER_CALL}",
                self.fetch_batch_size
            )));
        }
        for name in self.extra_fields.keys() {
            crate::schema::check_extra_field(name)?;
        }
        Ok(())
    }
}
