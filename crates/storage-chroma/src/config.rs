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
///   vector_size: 384        # optional when the collections already hold vectors
///   tenant: default_tenant
///   database: default_database
///   collection_prefix: ""   # "" = the original's names; "oc" gives oc_event, oc_todo, ...
/// ```
///
/// Unknown keys (the original's `settings`) are ignored; `path` is read only to recognise
/// the original's local mode (see [`ChromaConfig::mode`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ChromaConfig {
    /// `server`, the only mode. Unset means `server`, unless `path` is set: the original
    /// defaults to its `local` mode, which embeds Chroma's engine in the Python process and
    /// has no Rust equivalent, so `mode: local` (or `path` without `mode`) is a `Config` error
    /// that says how to run a server instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The original's local-mode data directory. Never opened here: with `mode` unset it
    /// means the original's local mode (refused, see `mode`); with `mode: server` it is
    /// ignored, as the original ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
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
    /// Prefix of the collection names (default empty: the original's names `event`, `todo`,
    /// ...). A prefix not ending in `_`, `-` or `.` is joined with `_` (`opencontext` gives
    /// `opencontext_event`); see [`ChromaConfig::collection_name`]. The original reads no
    /// prefix at all: `open` refuses a prefix whose collections are missing or empty while
    /// collections of the original (or glued names `<prefix><type>`) hold data beside them.
    #[serde(default)]
    pub collection_prefix: String,
    /// Dimension of every stored vector. `0` (the default, as in the original's Chroma
    /// entries, which have no such key) takes it from the existing collections at `open`;
    /// when none holds a vector yet, `open` fails with a `Config` error asking for it.
    #[serde(default, deserialize_with = "lenient")]
    pub vector_size: usize,
    /// Whether the `todo` collection exists (the factory sets it from `consumption.enabled`).
    #[serde(default, deserialize_with = "lenient")]
    pub todo_embeddings: bool,
    /// Timeout of one HTTP request attempt, in seconds (default 30; more than 0, at most
    /// 86 400): from connecting until the response body is read. A call makes at most
    /// `max_retries + 1` attempts of each request.
    #[serde(default = "default_timeout", deserialize_with = "lenient")]
    pub timeout_secs: f64,
    /// Timeout of establishing a connection, in seconds (default 5; more than 0, at most
    /// 86 400). It is part of, and so never longer in effect than, `timeout_secs`.
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
            .field("path", &self.path)
            .field("base_url", &redact_url(&self.base_url()))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("auth_token", &self.auth_token)
            .field("tenant", &self.tenant)
            .field("database", &self.database)
            .field("collection_prefix", &self.collection_prefix)
            .field("vector_size", &self.vector_size)
            .field("todo_embeddings", &self.todo_embeddings)
            .field("timeout_secs", &self.timeout_secs)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// Seconds to a `Duration` without panicking: NaN and negatives give zero, huge values the
/// largest bound `validate` accepts.
fn secs(v: f64) -> Duration {
    Duration::try_from_secs_f64(v.clamp(0.0, MAX_TIMEOUT_SECS)).unwrap_or(Duration::ZERO)
}

/// Largest accepted `timeout_secs`, `connect_timeout_secs` and `close_timeout_secs` (a day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// The error for the original's embedded `local` mode: what to run instead.
fn local_mode_error(c: &ChromaConfig) -> StorageError {
    let why = match c.mode.as_deref() {
        Some(m) => format!("'mode' is {m:?}"),
        None => "'path' is set without 'mode' (the original's default mode is 'local')".into(),
    };
    let dir = c.path.as_deref().unwrap_or("DIR");
    StorageError::config(format!(
        "chromadb: {why}, but only 'server' mode exists here: the original's local mode runs \
         Chroma inside its Python process, which Rust cannot do. Run a Chroma server on the \
         data directory instead (a directory the original's local mode wrote is served as it \
         is): `pip install chromadb`, then `chroma run --path {dir} --port 8000`; then set \
         `mode: server`, `host: localhost`, `port: 8000` in this entry"
    ))
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
            mode: Some("server".into()),
            path: None,
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

    /// The Chroma collection name for `base` (a context type's name, or `todo`): `base`
    /// itself when `collection_prefix` is empty (the original's names), `<prefix><base>`
    /// when the prefix ends with `_`, `-` or `.`, else `<prefix>_<base>`.
    pub fn collection_name(&self, base: &str) -> String {
        let p = &self.collection_prefix;
        if p.is_empty() || p.ends_with(['_', '-', '.']) {
            format!("{p}{base}")
        } else {
            format!("{p}_{base}")
        }
    }

    /// The longest one request of a call can take against a server that accepts
    /// connections but never answers: `max_retries + 1` attempts of `timeout_secs` each plus
    /// the backoff delays between them (`retry_backoff_ms` doubled per attempt, capped at
    /// `max_backoff_ms`). A call fails at its first request that exhausts its attempts, so
    /// this bounds `open`, a search or a write against a stalled server.
    pub fn request_bound(&self) -> Duration {
        let attempts = self.max_retries.saturating_add(1);
        let mut total = self.timeout().saturating_mul(attempts);
        let mut delay = Duration::from_millis(self.retry_backoff_ms);
        let cap = Duration::from_millis(self.max_backoff_ms);
        for _ in 0..self.max_retries.min(64) {
            total = total.saturating_add(delay.min(cap));
            delay = delay.saturating_mul(2);
        }
        total.saturating_add(cap.saturating_mul(self.max_retries.saturating_sub(64)))
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

    /// `timeout_secs` as a `Duration` (`validate` bounds it; out-of-range values saturate
    /// here instead of panicking).
    pub(crate) fn timeout(&self) -> Duration {
        secs(self.timeout_secs)
    }

    /// `connect_timeout_secs` as a `Duration` (saturating, as [`Self::timeout`]).
    pub(crate) fn connect_timeout(&self) -> Duration {
        secs(self.connect_timeout_secs)
    }

    /// `close_timeout_secs` as a `Duration` (saturating, as [`Self::timeout`]).
    pub(crate) fn close_timeout(&self) -> Duration {
        secs(self.close_timeout_secs)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(StorageError::config(format!("chromadb: {m}")));
        match (self.mode.as_deref(), &self.path) {
            (Some("server"), _) | (None, None) => {}
            (Some("local"), _) | (None, Some(_)) => return Err(local_mode_error(self)),
            (Some(other), _) => {
                return err(format!(
                    "'mode' is {other:?}; the only mode is 'server' (a Chroma server reached over HTTP)"
                ));
            }
        }
        let url = self.base_url();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return err(format!(
                "'url' {:?} must start with http:// or https://",
                redact_url(&url)
            ));
        }
        if self.vector_size > MAX_VECTOR_SIZE {
            return err(format!(
                "'vector_size' is {}, expected 1 to {MAX_VECTOR_SIZE} (or 0: taken from the existing collections)",
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
            if !(v.is_finite() && v > 0.0 && v <= MAX_TIMEOUT_SECS) {
                return err(format!(
                    "'{key}' is {v} seconds, expected more than 0 and at most {MAX_TIMEOUT_SECS}"
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
        c.mode = Some("local".into());
        assert!(c.validate().unwrap_err().to_string().contains("'mode'"));
        let mut c = base.clone();
        c.mode = Some("embedded".into());
        assert!(c.validate().unwrap_err().to_string().contains("'mode'"));
        let c = ChromaConfig::new("http://x", MAX_VECTOR_SIZE + 1);
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("vector_size")
        );
        assert!(
            ChromaConfig::new("http://x", 0).validate().is_ok(),
            "0: from the collections"
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

    /// The original's own Chroma entry (config_mysql.yaml: `mode: "local"`, `path`, no
    /// `vector_size`) is refused for its mode, saying how to run a server, not for a missing
    /// `vector_size`.
    #[test]
    fn the_originals_local_mode_entry_says_how_to_run_a_server() {
        let yaml = r#"
storage:
  enabled: true
  backends:
    - name: "default_vector"
      storage_type: "vector_db"
      backend: "chromadb"
      config:
        mode: "local" # Options: "local", "server"
        path: "${CONTEXT_PATH:.}/persist/chromadb"
        collection_prefix: "opencontext"
"#;
        let app = storage_core::config::parse_config(yaml, |_| None).expect("parses");
        let entry = &app.storage.backends[0];
        let c: ChromaConfig = entry
            .parse()
            .expect("the entry parses; its mode is checked next");
        let e = c.validate().unwrap_err();
        let m = e.to_string();
        assert_eq!(e.kind(), storage_core::ErrorKind::Config, "{m}");
        assert!(!m.contains("missing field"), "{m}");
        for needle in [
            "'mode' is \"local\"",
            "only 'server' mode exists",
            "pip install chromadb",
            "chroma run --path ./persist/chromadb --port 8000",
            "mode: server",
            "host",
            "port",
        ] {
            assert!(m.contains(needle), "{needle:?} not in {m}");
        }
        // The original's default mode is local too: `path` without `mode` means it.
        let mut entry = entry.clone();
        entry.config.remove("mode");
        let e = entry
            .parse::<ChromaConfig>()
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            e.to_string().contains("'path' is set without 'mode'"),
            "{e}"
        );
        assert!(e.to_string().contains("chroma run --path"), "{e}");
        // With `mode: server`, `path` is ignored, as the original ignores it.
        entry
            .config
            .insert("mode".into(), serde_json::json!("server"));
        assert!(entry.parse::<ChromaConfig>().unwrap().validate().is_ok());
    }

    #[test]
    fn prefixes_are_joined_with_a_separator() {
        let c = ChromaConfig::new("http://x", 3);
        assert_eq!(c.collection_name("event"), "event");
        assert_eq!(
            c.clone()
                .with_prefix("opencontext")
                .collection_name("event"),
            "opencontext_event"
        );
        assert_eq!(
            c.clone().with_prefix("oc_").collection_name("todo"),
            "oc_todo"
        );
        assert_eq!(
            c.clone().with_prefix("oc-").collection_name("todo"),
            "oc-todo"
        );
        assert_eq!(c.with_prefix("a.b.").collection_name("todo"), "a.b.todo");
    }

    /// Timeouts out of bounds (0, negative, 1e20, NaN, also as strings from `${VAR}`
    /// substitution) are `Config` errors naming the key and the bound, never a panic.
    #[test]
    fn timeouts_out_of_bounds_are_config_errors() {
        for key in ["timeout_secs", "connect_timeout_secs", "close_timeout_secs"] {
            for value in [
                serde_json::json!(0),
                serde_json::json!(-1.5),
                serde_json::json!(1e20),
                serde_json::json!("1e20"),
                serde_json::json!("0"),
                serde_json::json!(86_400.5),
            ] {
                let mut j = serde_json::json!({"mode": "server", "port": 8000, "vector_size": 8});
                j[key] = value.clone();
                let c: ChromaConfig = serde_json::from_value(j).unwrap();
                // Building a Duration from the raw value must not panic either.
                let _ = (c.timeout(), c.connect_timeout(), c.close_timeout());
                let e = c.validate().unwrap_err();
                assert_eq!(e.kind(), storage_core::ErrorKind::Config);
                let m = e.to_string();
                assert!(m.contains(&format!("'{key}'")), "{key}={value}: {m}");
                assert!(
                    m.contains("more than 0 and at most 86400"),
                    "{key}={value}: {m}"
                );
            }
        }
        let mut c = ChromaConfig::new("http://x", 3);
        c.timeout_secs = f64::NAN;
        let _ = c.timeout();
        c.timeout_secs = 86_400.0;
        c.connect_timeout_secs = 0.001;
        assert!(c.validate().is_ok());
    }
}
