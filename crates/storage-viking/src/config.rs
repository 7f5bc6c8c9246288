//! Configuration of the VikingDB backend (`config:` of a `backend: vikingdb` entry).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use storage_core::config::{Secret, lenient};
use storage_core::{Result, StorageError};

/// Type of a declared metadata field (VikingDB field types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataFieldType {
    /// `string`.
    String,
    /// `int64`.
    Int64,
    /// `float32`.
    Float32,
    /// `bool`.
    Bool,
}

/// A metadata key stored as its own scalar-indexed VikingDB field, so that filters can use it.
/// Metadata keys that are not declared are kept in one JSON string field and cannot be
/// filtered on (such filters return `Unsupported`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MetadataField {
    /// Field name (`[A-Za-z_][A-Za-z0-9_]*`, not a context field name).
    pub name: String,
    /// Field type.
    #[serde(rename = "type")]
    pub field_type: MetadataFieldType,
}

/// Connection, collection and retry settings.
///
/// YAML keys (all but the credentials and `dimension` optional):
///
/// | key | default | meaning |
/// |-----|---------|---------|
/// | `access_key_id` | env `VOLCENGINE_ACCESS_KEY_ID` | Volcengine access key |
/// | `secret_access_key` | env `VOLCENGINE_SECRET_ACCESS_KEY` | secret key (redacted in `Debug`) |
/// | `region` | `cn-beijing` | signing region |
/// | `data_host` | `api-vikingdb.vikingdb.<region>.volces.com` | data-plane `host[:port]` |
/// | `console_host` | `vikingdb.<region>.volcengineapi.com` | control-plane `host[:port]` |
/// | `scheme` | `https` | `https` or `http` (tests) |
/// | `dimension` (alias `vector_size`) | required | vector dimension, a multiple of 4 from 4 to 4096 |
/// | `collection_name` | `opencontext` | the one collection |
/// | `index_name` | `opencontext_index` | its index |
/// | `project_name` | `default` | Volcengine project of the collection |
/// | `index_type` | `hnsw` | `hnsw`, `flat`, ... (distance is always cosine) |
/// | `create_if_missing` | `true` | create collection and index when absent |
/// | `metadata_fields` | `[]` | `[{name, type}]` metadata keys stored as filterable fields |
/// | `timeout_secs` | `30` | per-request timeout, seconds (more than 0, at most 86 400) |
/// | `connect_timeout_secs` | `10` | connect timeout, seconds (more than 0, at most 86 400) |
/// | `max_retries` | `3` | retries of 429, 5xx, timeouts and connection errors (at most 10) |
/// | `retry_base_delay_ms` | `200` | first backoff delay, doubled per retry (at most 60 000) |
/// | `retry_max_delay_ms` | `5000` | backoff cap, milliseconds (at most 60 000) |
#[derive(Clone, Deserialize)]
pub struct VikingConfig {
    /// Volcengine access key id.
    #[serde(default)]
    pub access_key_id: String,
    /// Volcengine secret access key.
    #[serde(default)]
    pub secret_access_key: Secret,
    /// Signing region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Data-plane host (`host` or `host:port`); derived from the region when unset.
    #[serde(default)]
    pub data_host: Option<String>,
    /// Control-plane host; derived from the region when unset.
    #[serde(default)]
    pub console_host: Option<String>,
    /// `https` (default) or `http`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// Vector dimension.
    #[serde(alias = "vector_size", deserialize_with = "lenient")]
    pub dimension: usize,
    /// Collection name.
    #[serde(default = "default_collection")]
    pub collection_name: String,
    /// Index name.
    #[serde(default = "default_index")]
    pub index_name: String,
    /// Volcengine project name.
    #[serde(default = "default_project")]
    pub project_name: String,
    /// Vector index type.
    #[serde(default = "default_index_type")]
    pub index_type: String,
    /// Create the collection and index when missing.
    #[serde(default = "default_true", deserialize_with = "lenient")]
    pub create_if_missing: bool,
    /// Metadata keys stored as their own filterable fields.
    #[serde(default)]
    pub metadata_fields: Vec<MetadataField>,
    /// Request timeout in seconds.
    #[serde(default = "default_timeout", deserialize_with = "lenient")]
    pub timeout_secs: f64,
    /// Connect timeout in seconds.
    #[serde(default = "default_connect_timeout", deserialize_with = "lenient")]
    pub connect_timeout_secs: f64,
    /// Retries after the first attempt, for retryable failures only.
    #[serde(default = "default_retries", deserialize_with = "lenient")]
    pub max_retries: u32,
    /// First backoff delay in milliseconds.
    #[serde(default = "default_base_delay", deserialize_with = "lenient")]
    pub retry_base_delay_ms: u64,
    /// Backoff cap in milliseconds.
    #[serde(default = "default_max_delay", deserialize_with = "lenient")]
    pub retry_max_delay_ms: u64,
    /// Whether todo embeddings are stored (`consumption.enabled`); set by the factory.
    #[serde(default)]
    pub todo_embeddings: bool,
}

fn default_region() -> String {
    "cn-beijing".into()
}
fn default_scheme() -> String {
    "https".into()
}
fn default_collection() -> String {
    "opencontext".into()
}
fn default_index() -> String {
    "opencontext_index".into()
}
fn default_project() -> String {
    "default".into()
}
fn default_index_type() -> String {
    "hnsw".into()
}
fn default_true() -> bool {
    true
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
fn default_base_delay() -> u64 {
    200
}
fn default_max_delay() -> u64 {
    5000
}

impl VikingConfig {
    /// Keys of the original's configuration files that this backend accepts and does not use:
    /// the sizes of the original's aiohttp connection pool (reqwest's pool grows as needed).
    /// The factory drops them before parsing, so they are not reported as unknown keys.
    pub const ORIGINAL_KEYS_NOT_USED: &'static [&'static str] =
        &["max_connections", "max_connections_per_host"];

    /// A configuration with defaults for everything but credentials and dimension.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        dimension: usize,
    ) -> Self {
        VikingConfig {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret_access_key),
            region: default_region(),
            data_host: None,
            console_host: None,
            scheme: default_scheme(),
            dimension,
            collection_name: default_collection(),
            index_name: default_index(),
            project_name: default_project(),
            index_type: default_index_type(),
            create_if_missing: true,
            metadata_fields: Vec::new(),
            timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            max_retries: default_retries(),
            retry_base_delay_ms: default_base_delay(),
            retry_max_delay_ms: default_max_delay(),
            todo_embeddings: false,
        }
    }

    /// Points both planes at one `host:port` over plain HTTP (test servers).
    pub fn with_endpoint(mut self, scheme: &str, host: &str) -> Self {
        self.scheme = scheme.into();
        self.data_host = Some(host.into());
        self.console_host = Some(host.into());
        self
    }

    /// Enables or disables todo embeddings.
    pub fn with_todo_embeddings(mut self, enabled: bool) -> Self {
        self.todo_embeddings = enabled;
        self
    }

    /// The data-plane host.
    pub fn data_host(&self) -> String {
        self.data_host
            .clone()
            .unwrap_or_else(|| format!("api-vikingdb.vikingdb.{}.volces.com", self.region))
    }

    /// The control-plane host.
    pub fn console_host(&self) -> String {
        self.console_host
            .clone()
            .unwrap_or_else(|| format!("vikingdb.{}.volcengineapi.com", self.region))
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout_secs)
    }

    /// Fills credentials from the environment when unset and checks every value.
    ///
    /// # Errors
    /// [`storage_core::ErrorKind::Config`] naming the key and the bound.
    pub fn validate(&mut self) -> Result<()> {
        if self.access_key_id.is_empty()
            && let Ok(v) = std::env::var("VOLCENGINE_ACCESS_KEY_ID")
        {
            self.access_key_id = v;
        }
        if self.secret_access_key.is_empty()
            && let Ok(v) = std::env::var("VOLCENGINE_SECRET_ACCESS_KEY")
        {
            self.secret_access_key = Secret::new(v);
        }
        if self.access_key_id.is_empty() || self.secret_access_key.is_empty() {
            return Err(StorageError::config(
                "vikingdb access_key_id and secret_access_key are required (or VOLCENGINE_ACCESS_KEY_ID / VOLCENGINE_SECRET_ACCESS_KEY)",
            ));
        }
        // CreateVikingdbCollection: `Dim` "supports 4-4096 and must be an integer multiple
        // of 4" (https://docs.byteplus.com/en/docs/VikingDB/CreateVikingdbCollection).
        if !(4..=4096).contains(&self.dimension) || !self.dimension.is_multiple_of(4) {
            return Err(StorageError::config(format!(
                "vikingdb dimension is {}, expected a multiple of 4 from 4 to 4096",
                self.dimension
            )));
        }
        // The region is part of the derived host names and of the signature's scope; the
        // hosts go into the URL: neither may carry a path, user info, query or fragment.
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 64
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !region_ok {
            return Err(StorageError::config(format!(
                "vikingdb region {:?} must be 1 to 64 of A-Z, a-z, 0-9, '-' and '_'",
                self.region
            )));
        }
        for (key, host) in [
            ("data_host", self.data_host.as_deref()),
            ("console_host", self.console_host.as_deref()),
        ] {
            if let Some(h) = host {
                let ok = !h.is_empty()
                    && h.len() <= 255
                    && h.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                    });
                if !ok {
                    return Err(StorageError::config(format!(
                        "vikingdb {key} {h:?} must be host or host:port (letters, digits, '.', '-', ':', '[', ']')"
                    )));
                }
            }
        }
        if self.scheme != "https" && self.scheme != "http" {
            return Err(StorageError::config(format!(
                "vikingdb scheme is {:?}, expected \"https\" or \"http\"",
                self.scheme
            )));
        }
        for (key, name) in [
            ("collection_name", &self.collection_name),
            ("index_name", &self.index_name),
        ] {
            let ok = name.len() <= 128
                && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(StorageError::config(format!(
                    "vikingdb {key} {name:?} must start with a letter and hold only letters, digits and '_' (at most 128)"
                )));
            }
        }
        check_retry_settings(
            "vikingdb",
            &[
                ("timeout_secs", self.timeout_secs),
                ("connect_timeout_secs", self.connect_timeout_secs),
            ],
            self.max_retries,
            self.retry_base_delay_ms,
            self.retry_max_delay_ms,
        )?;
        for f in &self.metadata_fields {
            crate::schema::check_metadata_field(f)?;
        }
        Ok(())
    }
}

/// Longest accepted timeout, in seconds (one day).
pub(crate) const MAX_TIMEOUT_SECS: f64 = 86_400.0;
/// Most accepted `max_retries`.
pub(crate) const MAX_RETRIES: u32 = 10;
/// Largest accepted backoff setting (`retry_base_delay_ms`, `retry_max_delay_ms`), in
/// milliseconds (one minute).
pub(crate) const MAX_RETRY_DELAY_MS: u64 = 60_000;

/// Timeouts more than 0 and at most [`MAX_TIMEOUT_SECS`] (NaN and infinity refused), at most
/// [`MAX_RETRIES`] retries, backoff delays at most [`MAX_RETRY_DELAY_MS`].
pub(crate) fn check_retry_settings(
    who: &str,
    timeouts: &[(&str, f64)],
    max_retries: u32,
    base_delay_ms: u64,
    max_delay_ms: u64,
) -> Result<()> {
    for (key, v) in timeouts {
        if !(*v > 0.0 && *v <= MAX_TIMEOUT_SECS) {
            return Err(StorageError::config(format!(
                "{who} {key} is {v} seconds, expected more than 0 and at most {MAX_TIMEOUT_SECS} \
                 (one day)"
            )));
        }
    }
    if max_retries > MAX_RETRIES {
        return Err(StorageError::config(format!(
            "{who} max_retries is {max_retries}, expected at most {MAX_RETRIES}"
        )));
    }
    for (key, v) in [
        ("retry_base_delay_ms", base_delay_ms),
        ("retry_max_delay_ms", max_delay_ms),
    ] {
        if v > MAX_RETRY_DELAY_MS {
            return Err(StorageError::config(format!(
                "{who} {key} is {v} milliseconds, expected at most {MAX_RETRY_DELAY_MS}"
            )));
        }
    }
    Ok(())
}

impl fmt::Debug for VikingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VikingConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("region", &self.region)
            .field("data_host", &self.data_host())
            .field("console_host", &self.console_host())
            .field("scheme", &self.scheme)
            .field("dimension", &self.dimension)
            .field("collection_name", &self.collection_name)
            .field("index_name", &self.index_name)
            .field("project_name", &self.project_name)
            .field("index_type", &self.index_type)
            .field("create_if_missing", &self.create_if_missing)
            .field("metadata_fields", &self.metadata_fields)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_retries", &self.max_retries)
            .field("todo_embeddings", &self.todo_embeddings)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let c = VikingConfig::new("AK1", "very-secret-key", 8);
        let d = format!("{c:?}");
        assert!(!d.contains("very-secret-key"), "{d}");
        assert!(d.contains("***"));
    }

    #[test]
    fn parses_yaml_shape_with_lenient_numbers() {
        let c: VikingConfig = serde_json::from_value(serde_json::json!({
            "access_key_id": "AK", "secret_access_key": "SK", "vector_size": "16",
            "max_retries": "5", "metadata_fields": [{"name": "project", "type": "string"}]
        }))
        .unwrap();
        assert_eq!(c.dimension, 16);
        assert_eq!(c.max_retries, 5);
        assert_eq!(c.metadata_fields[0].field_type, MetadataFieldType::String);
        let mut bad = c.clone();
        bad.collection_name = "9bad-name".into();
        assert!(bad.validate().is_err());
    }
}
