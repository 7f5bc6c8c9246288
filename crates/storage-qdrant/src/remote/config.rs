//! Configuration of the Qdrant backend's remote mode (a Qdrant server over gRPC).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_core::config::Secret;
use storage_core::{Result, StorageError};

use crate::config::MAX_VECTOR_SIZE;

/// Configuration of [`crate::QdrantRemoteBackend`] (the `qdrant` backend when `url` or `host`
/// is set and `path` is not).
///
/// The keys are those of the original's `qdrant` config, which it passes to Python's
/// `QdrantClient` (`url`, `host`, `port`, `grpc_port`, `https`, `api_key`, `timeout`), plus
/// `vector_size` and this crate's additions. In YAML, under a `storage.backends` entry with
/// `backend: qdrant`:
///
/// ```yaml
/// config:
///   url: http://localhost:6333   # or host: localhost (+ grpc_port, https)
///   api_key: ${QDRANT_API_KEY:}
///   vector_size: 1024
///   timeout: 30                  # seconds per call
/// ```
///
/// This mode always speaks gRPC (the server's `grpc_port`, 6334 by default). As in the Python
/// client, the REST port (`port`, 6333 by default) in a `url` is replaced by `grpc_port`; a
/// `url` naming another port is taken to be the gRPC endpoint itself. Unknown keys (such as
/// `prefer_grpc` or `prefix`) are ignored. See the
/// [Qdrant API reference](https://api.qdrant.tech/api-reference) and the crate docs.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct QdrantRemoteConfig {
    /// Server address, `http://host[:port]` or `https://host[:port]`, without a path.
    #[serde(default, deserialize_with = "empty_is_none")]
    pub url: Option<String>,
    /// Server host name or address; used when `url` is not set (setting both is an error).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub host: Option<String>,
    /// The server's REST port (default 6333). Only used to recognise a REST `url`.
    #[serde(
        default = "default_port",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub port: u16,
    /// The server's gRPC port (default 6334).
    #[serde(
        default = "default_grpc_port",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub grpc_port: u16,
    /// Use TLS. Default: whether `url` starts with `https://`. The server certificate is
    /// verified against the system's root certificates.
    #[serde(default, deserialize_with = "storage_core::config::lenient_opt")]
    pub https: Option<bool>,
    /// API key sent in the `api-key` header (Qdrant Cloud, or a server with
    /// `service.api_key`). Never printed.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Timeout of one call, in seconds (default 30; more than 0, at most 86 400). A call
    /// that times out is retried.
    #[serde(
        default = "default_timeout",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub timeout: f64,
    /// Timeout of establishing the connection, in seconds (default 5; more than 0, at most
    /// 86 400).
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub connect_timeout: f64,
    /// Retries of a call that failed with a transient error (unavailable, timeout, rate
    /// limited), with exponential backoff (default 3; 0 disables retries; at most 10).
    #[serde(
        default = "default_max_retries",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub max_retries: u32,
    /// First backoff delay in milliseconds (default 100, at most 5000); doubled after each
    /// retry, at most 5 s (or the server's `retry-after` when it sends one, capped at 30 s).
    #[serde(
        default = "default_retry_backoff_ms",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub retry_backoff_ms: u64,
    /// Dimension of every stored vector (the original's `vector_size`).
    #[serde(deserialize_with = "storage_core::config::lenient")]
    pub vector_size: usize,
    /// Whether the `todo` collection exists (the factory sets it from the original's
    /// `consumption.enabled`). When false, the todo methods return `Unsupported`.
    #[serde(default, deserialize_with = "storage_core::config::lenient")]
    pub todo_embeddings: bool,
    /// Prefix of every collection name (default empty: the original's names, `event`,
    /// `knowledge`, ..., `todo`). Lets several stores share one server.
    #[serde(default)]
    pub collection_prefix: String,
    /// Most points sent in one upsert request (default 256). Larger batches are split; each
    /// request also stays under 16 MiB of encoded points.
    #[serde(
        default = "default_upsert_batch_size",
        deserialize_with = "storage_core::config::lenient"
    )]
    pub upsert_batch_size: usize,
}

fn empty_is_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    Ok(v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

fn default_port() -> u16 {
    6333
}
fn default_grpc_port() -> u16 {
    6334
}
fn default_timeout() -> f64 {
    30.0
}
fn default_connect_timeout() -> f64 {
    5.0
}
fn default_max_retries() -> u32 {
    3
}
fn default_retry_backoff_ms() -> u64 {
    100
}
fn default_upsert_batch_size() -> usize {
    256
}

/// Longest accepted `timeout` / `connect_timeout`, in seconds (one day).
const MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// Most accepted `max_retries`.
pub(crate) const MAX_RETRIES: u32 = 10;
/// Largest accepted `retry_backoff_ms`: the cap of any backoff (5 s).
pub(crate) const MAX_RETRY_BACKOFF_MS: u64 = 5_000;
/// Largest accepted `upsert_batch_size`.
const MAX_UPSERT_BATCH: usize = 10_000;
/// Longest collection prefix, in bytes (Qdrant names are at most 255 bytes).
const MAX_PREFIX_LEN: usize = 64;

impl QdrantRemoteConfig {
    /// A configuration for the server at `url` with the given dimension and defaults for the
    /// rest.
    pub fn new(url: impl Into<String>, vector_size: usize) -> Self {
        QdrantRemoteConfig {
            url: Some(url.into()),
            host: None,
            port: default_port(),
            grpc_port: default_grpc_port(),
            https: None,
            api_key: None,
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            max_retries: default_max_retries(),
            retry_backoff_ms: default_retry_backoff_ms(),
            vector_size,
            todo_embeddings: false,
            collection_prefix: String::new(),
            upsert_batch_size: default_upsert_batch_size(),
        }
    }

    /// Sets `todo_embeddings`.
    pub fn with_todo_embeddings(mut self, enabled: bool) -> Self {
        self.todo_embeddings = enabled;
        self
    }

    /// Sets `collection_prefix`.
    pub fn with_collection_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.collection_prefix = prefix.into();
        self
    }

    /// Sets `api_key`.
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(api_key));
        self
    }

    /// The gRPC endpoint, `http(s)://host:port` (see the type's docs for how `url`, `host`,
    /// `port`, `grpc_port` and `https` combine).
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key: neither or both of `url` and
    /// `host`, a scheme other than `http`/`https`, a path, a malformed address.
    pub fn endpoint(&self) -> Result<String> {
        let (scheme, host, port) = match (&self.url, &self.host) {
            (Some(_), Some(_)) => {
                return Err(StorageError::config(
                    "qdrant remote: set either 'url' or 'host', not both",
                ));
            }
            (None, None) => {
                return Err(StorageError::config(
                    "qdrant remote: 'url' or 'host' is required",
                ));
            }
            (Some(url), None) => parse_url(url)?,
            (None, Some(host)) => {
                if host.contains("://") || host.contains('/') {
                    return Err(StorageError::config(format!(
                        "qdrant remote: 'host' {host:?} must be a host name, not a URL (use 'url')"
                    )));
                }
                ("http".to_owned(), host.clone(), None)
            }
        };
        let tls = self.https.unwrap_or(scheme == "https");
        let port = match port {
            Some(p) if p != self.port => p,
            _ => self.grpc_port,
        };
        let scheme = if tls { "https" } else { "http" };
        let endpoint = format!("{scheme}://{host}:{port}");
        endpoint.parse::<tonic::codegen::http::Uri>().map_err(|e| {
            StorageError::config(format!(
                "qdrant remote: endpoint {endpoint:?} is not a valid address: {e}"
            ))
        })?;
        Ok(endpoint)
    }

    /// [`Self::timeout`] as a duration.
    pub(crate) fn call_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    /// [`Self::connect_timeout`] as a duration.
    pub(crate) fn connect_timeout_duration(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&self) -> Result<()> {
        if self.grpc_port == 0 {
            return Err(StorageError::config(
                "qdrant remote: 'grpc_port' is 0, expected 1 to 65535",
            ));
        }
        self.endpoint()?;
        // qdrant-client sends the key as a header and, when it is not a valid header value,
        // fails every call with a message that contains the key: refuse it here, unshown.
        if let Some(key) = &self.api_key
            && let Some(c) = key.expose().chars().find(|c| !matches!(c, ' '..='~'))
        {
            return Err(StorageError::config(format!(
                "qdrant remote: 'api_key' contains {}, but only printable ASCII characters \
                 are allowed in the api-key header (the key is not shown)",
                if c.is_ascii_control() {
                    format!("the control character {:?}", c.escape_default().to_string())
                } else {
                    "a non-ASCII character".to_owned()
                }
            )));
        }
        if self.vector_size == 0 || self.vector_size > MAX_VECTOR_SIZE {
            return Err(StorageError::config(format!(
                "qdrant remote: 'vector_size' is {}, expected 1 to {MAX_VECTOR_SIZE}",
                self.vector_size
            )));
        }
        for (key, v) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if !(v > 0.0 && v <= MAX_TIMEOUT_SECS) {
                return Err(StorageError::config(format!(
                    "qdrant remote: '{key}' is {v} seconds, expected more than 0 and at most \
                     {MAX_TIMEOUT_SECS}"
                )));
            }
        }
        if self.max_retries > MAX_RETRIES {
            return Err(StorageError::config(format!(
                "qdrant remote: 'max_retries' is {}, expected at most {MAX_RETRIES}",
                self.max_retries
            )));
        }
        if self.retry_backoff_ms > MAX_RETRY_BACKOFF_MS {
            return Err(StorageError::config(format!(
                "qdrant remote: 'retry_backoff_ms' is {}, expected at most \
                 {MAX_RETRY_BACKOFF_MS} (milliseconds; every backoff is capped at 5 s)",
                self.retry_backoff_ms
            )));
        }
        if self.upsert_batch_size == 0 || self.upsert_batch_size > MAX_UPSERT_BATCH {
            return Err(StorageError::config(format!(
                "qdrant remote: 'upsert_batch_size' is {}, expected 1 to {MAX_UPSERT_BATCH}",
                self.upsert_batch_size
            )));
        }
        let p = &self.collection_prefix;
        if p.len() > MAX_PREFIX_LEN
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(StorageError::config(format!(
                "qdrant remote: 'collection_prefix' {p:?} must be at most {MAX_PREFIX_LEN} \
                 characters of [A-Za-z0-9_-]"
            )));
        }
        Ok(())
    }
}

/// `url` with any user credentials (`user:password@`) replaced by `***@`, for messages.
fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// The API key and any credentials in `url` are not shown.
impl std::fmt::Debug for QdrantRemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantRemoteConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("grpc_port", &self.grpc_port)
            .field("https", &self.https)
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff_ms", &self.retry_backoff_ms)
            .field("vector_size", &self.vector_size)
            .field("todo_embeddings", &self.todo_embeddings)
            .field("collection_prefix", &self.collection_prefix)
            .field("upsert_batch_size", &self.upsert_batch_size)
            .finish()
    }
}

/// `(scheme, host, port)` of a `url` value.
fn parse_url(url: &str) -> Result<(String, String, Option<u16>)> {
    let shown = redact_url(url);
    let bad = |why: &str| StorageError::config(format!("qdrant remote: 'url' {shown:?} {why}"));
    let uri: tonic::codegen::http::Uri = url
        .parse()
        .map_err(|e| bad(&format!("is not a URL: {e}")))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s.to_owned(),
        Some(s) => return Err(bad(&format!("has scheme '{s}'; expected http or https"))),
        None => return Err(bad("has no scheme; write http://host:port or https://...")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("has no host"))?
        .to_owned();
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad(
            "has a path or query; gRPC endpoints are host and port only",
        ));
    }
    // The URI parser accepts any digits after the host and reports an out-of-range port as
    // no port at all, which would silently mean `grpc_port`: check the written port.
    let authority = uri.authority().map_or("", |a| a.as_str());
    if authority.contains('@') {
        return Err(bad(
            "contains user credentials, which gRPC does not send; use 'api_key'",
        ));
    }
    let after_host = authority.get(host.len()..).unwrap_or("");
    let port = match after_host.strip_prefix(':') {
        None | Some("") => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(bad(&format!("has port '{p}'; expected 1 to 65535"))),
        },
    };
    Ok((scheme, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_core::ErrorKind;

    #[test]
    fn endpoints_follow_the_python_client() {
        let c = |url: &str| QdrantRemoteConfig::new(url, 8).endpoint().unwrap();
        assert_eq!(c("http://localhost:6333"), "http://localhost:6334");
        assert_eq!(c("http://localhost"), "http://localhost:6334");
        assert_eq!(c("http://localhost:6334/"), "http://localhost:6334");
        assert_eq!(
            c("https://x.cloud.qdrant.io:6333"),
            "https://x.cloud.qdrant.io:6334"
        );
        assert_eq!(c("http://127.0.0.1:41234"), "http://127.0.0.1:41234");
        assert_eq!(c("http://[::1]:7000"), "http://[::1]:7000");
        assert_eq!(c("http://[::1]"), "http://[::1]:6334");
        let mut h = QdrantRemoteConfig::new("", 8);
        h.url = None;
        h.host = Some("qdrant".into());
        h.grpc_port = 7000;
        h.https = Some(true);
        assert_eq!(h.endpoint().unwrap(), "https://qdrant:7000");
        for bad in [
            "localhost:6333",
            "ftp://x",
            "http://x:6333/prefix",
            "http://",
            "http://x:99999",
            "http://x:0",
            "http://[::1]:70000",
            "http://user:pw@q:7000",
        ] {
            let e = QdrantRemoteConfig::new(bad, 8).endpoint().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(e.to_string().contains("'url'"), "{e}");
        }
        let mut both = QdrantRemoteConfig::new("http://a", 8);
        both.host = Some("b".into());
        assert!(both.endpoint().is_err());
    }

    #[test]
    fn deserialises_the_original_keys_leniently() {
        let c: QdrantRemoteConfig = serde_json::from_str(
            r#"{"host": "qdrant", "port": "6333", "grpc_port": "6334", "https": "false",
                "api_key": "k3y", "timeout": "2.5", "vector_size": "384", "prefer_grpc": true,
                "url": ""}"#,
        )
        .unwrap();
        assert_eq!(c.url, None);
        assert_eq!(c.host.as_deref(), Some("qdrant"));
        assert_eq!(c.https, Some(false));
        assert_eq!(c.timeout, 2.5);
        assert_eq!(c.vector_size, 384);
        assert_eq!(c.endpoint().unwrap(), "http://qdrant:6334");
        assert!(c.validate().is_ok());
        let debug = format!("{c:?}");
        assert!(!debug.contains("k3y"), "{debug}");
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "k3y");
    }

    #[test]
    fn credentials_in_url_are_never_shown() {
        assert_eq!(redact_url("http://u:pw@q:1/x"), "http://***@q:1/x");
        assert_eq!(redact_url("http://q:1"), "http://q:1");
        assert_eq!(redact_url("http://q/a@b"), "http://q/a@b");
        let c = QdrantRemoteConfig::new("http://admin:hunter2@q:6333/p", 8);
        let e = c.validate().unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("***@q"), "{debug}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let base = QdrantRemoteConfig::new("http://localhost", 8);
        let cases: Vec<(QdrantRemoteConfig, &str)> = vec![
            (
                QdrantRemoteConfig::new("http://localhost", 0),
                "vector_size",
            ),
            (
                QdrantRemoteConfig {
                    timeout: 0.0,
                    ..base.clone()
                },
                "timeout",
            ),
            (
                QdrantRemoteConfig {
                    connect_timeout: f64::NAN,
                    ..base.clone()
                },
                "connect_timeout",
            ),
            (
                QdrantRemoteConfig {
                    upsert_batch_size: 0,
                    ..base.clone()
                },
                "upsert_batch_size",
            ),
            (
                base.clone().with_collection_prefix("a b"),
                "collection_prefix",
            ),
        ];
        for (c, key) in cases {
            let e = c.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            assert!(e.to_string().contains(key), "{e}");
        }
        assert!(base.validate().is_ok());
    }
}
