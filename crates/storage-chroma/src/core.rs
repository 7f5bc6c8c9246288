//! The raw HTTP calls of Chroma's API v2 (<https://docs.trychroma.com/reference/api>), with
//! per-request retries and the mapping of HTTP failures to `StorageError` kinds.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};
use storage_core::model::JsonMap;
use storage_core::{ErrorKind, Result, StorageError};

use crate::config::ChromaConfig;

/// One HTTP client bound to a tenant and database.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    /// `<base>/api/v2`.
    root: String,
    /// `<root>/tenants/<tenant>/databases/<database>`.
    db: String,
    pub(crate) retries: u32,
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
    /// `timeout_secs` and `connect_timeout_secs`, for messages.
    timeout: Duration,
    connect_timeout: Duration,
}

/// A collection as `create_collection` returns it (the fields we read).
#[derive(Debug, Deserialize)]
pub(crate) struct CollectionInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub dimension: Option<i64>,
    #[serde(default)]
    pub metadata: Option<JsonMap>,
    #[serde(default)]
    pub configuration_json: Option<Json>,
}

/// The response of `collection_get`: parallel arrays, filled per `include`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct GetResponse {
    pub ids: Vec<String>,
    #[serde(default)]
    pub documents: Option<Vec<Option<String>>>,
    #[serde(default)]
    pub embeddings: Option<Vec<Option<Vec<f32>>>>,
    #[serde(default)]
    pub metadatas: Option<Vec<Option<JsonMap>>>,
}

/// The response of `collection_query` for one query embedding.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueryResponse {
    pub ids: Vec<Vec<String>>,
    #[serde(default)]
    pub distances: Option<Vec<Vec<Option<f32>>>>,
    #[serde(default)]
    pub documents: Option<Vec<Vec<Option<String>>>>,
    #[serde(default)]
    pub embeddings: Option<Vec<Vec<Option<Vec<f32>>>>>,
    #[serde(default)]
    pub metadatas: Option<Vec<Vec<Option<JsonMap>>>>,
}

#[derive(Deserialize)]
struct PreFlight {
    #[serde(default)]
    max_batch_size: Option<usize>,
}

impl Client {
    pub(crate) fn new(cfg: &ChromaConfig) -> Result<Self> {
        let mut headers = HeaderMap::new();
        let mut add = |name: &str, value: &str| -> Result<()> {
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                StorageError::config(format!("chromadb: header name {name:?} is invalid"))
            })?;
            let mut v = HeaderValue::from_str(value).map_err(|_| {
                StorageError::config(format!("chromadb: the value of header {name:?} is invalid"))
            })?;
            v.set_sensitive(true);
            headers.insert(n, v);
            Ok(())
        };
        for (name, value) in &cfg.headers {
            add(name, value.expose())?;
        }
        if !cfg.auth_token.is_empty() {
            add("x-chroma-token", cfg.auth_token.expose())?;
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(cfg.timeout())
            .connect_timeout(cfg.connect_timeout())
            .build()
            .map_err(|e| {
                StorageError::config("chromadb: cannot build the HTTP client").with_source(e)
            })?;
        let root = format!("{}/api/v2", cfg.base_url());
        let db = format!("{root}/tenants/{}/databases/{}", cfg.tenant, cfg.database);
        Ok(Client {
            http,
            root,
            db,
            retries: cfg.max_retries,
            backoff: Duration::from_millis(cfg.retry_backoff_ms),
            max_backoff: Duration::from_millis(cfg.max_backoff_ms),
            timeout: cfg.timeout(),
            connect_timeout: cfg.connect_timeout(),
        })
    }

    /// The delay before retry number `attempt` (0-based): `backoff * 2^attempt`, capped.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.max_backoff)
    }

    /// Sends a read (or a request whose outcome does not matter), retrying retryable
    /// failures `retries` times with backoff. Each attempt is bounded by `timeout_secs`.
    async fn call(&self, method: Method, url: &str, body: Option<&Json>) -> Result<Json> {
        self.send(method, url, body, false).await
    }

    /// Sends an idempotent write (an upsert or a delete by id), retrying as [`Self::call`].
    /// When any attempt's request may have reached the server without its answer coming
    /// back (a timeout after connecting, a connection cut mid-request, HTTP 502/504), the
    /// final error's outcome is [`storage_core::WriteOutcome::Unknown`] (still retryable:
    /// repeating the write gives the same state).
    async fn call_write(&self, method: Method, url: &str, body: &Json) -> Result<Json> {
        self.send(method, url, Some(body), true).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Json>,
        write: bool,
    ) -> Result<Json> {
        let mut attempt = 0;
        let mut maybe_applied = false;
        loop {
            let r = self.call_once(method.clone(), url, body).await;
            let r = match r {
                Err((e, sent)) if write && (sent || maybe_applied) => {
                    maybe_applied = true;
                    Err(e.with_outcome_unknown(true))
                }
                Err((e, _)) => Err(e),
                Ok(v) => Ok(v),
            };
            match r {
                Err(e) if e.is_retryable() && attempt < self.retries => {
                    tracing::debug!(
                        url = %crate::config::redact_url(url),
                        attempt,
                        error = %e,
                        "chromadb request failed, retrying"
                    );
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One attempt. The error comes with whether the request may have reached the server
    /// (so a write may have been applied): every failure except a failed connection, and
    /// HTTP 502/504 (a proxy that forwarded it may have lost the answer).
    async fn call_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Json>,
    ) -> std::result::Result<Json, (StorageError, bool)> {
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let sent = !e.is_connect() && !e.is_builder();
                return Err((self.transport_error(e), sent));
            }
        };
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| (self.transport_error(e), true))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Json::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                (
                    StorageError::backend("the server's response is not valid JSON").with_source(e),
                    false,
                )
            });
        }
        let maybe_applied = matches!(status.as_u16(), 502 | 504);
        Err((status_error(status, &bytes), maybe_applied))
    }

    fn transport_error(&self, e: reqwest::Error) -> StorageError {
        let (kind, message) = if e.is_timeout() {
            let (what, limit) = if e.is_connect() {
                ("connect_timeout_secs", self.connect_timeout)
            } else {
                ("timeout_secs", self.timeout)
            };
            (
                ErrorKind::Timeout,
                format!(
                    "the Chroma server did not answer within {what} = {} s",
                    limit.as_secs_f64()
                ),
            )
        } else if e.is_decode() || e.is_builder() {
            (
                ErrorKind::Backend,
                "request to the Chroma server failed".to_owned(),
            )
        } else {
            // Connection refused or reset, DNS, TLS, a body cut off: the server may come back.
            (
                ErrorKind::Unavailable,
                "request to the Chroma server failed".to_owned(),
            )
        };
        let retryable = kind != ErrorKind::Backend;
        StorageError::new(kind, message)
            .set_retryable(retryable)
            .with_source(e.without_url())
    }

    async fn call_as<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Json>,
    ) -> Result<T> {
        let json = self.call(method, url, body).await?;
        serde_json::from_value(json).map_err(|e| {
            StorageError::backend(format!(
                "unexpected response shape from {}",
                crate::config::redact_url(url)
            ))
            .with_source(e)
        })
    }

    pub(crate) async fn heartbeat(&self) -> Result<()> {
        self.call(Method::GET, &format!("{}/heartbeat", self.root), None)
            .await
            .map(drop)
    }

    /// The server's largest accepted batch (`max_batch_size` of the pre-flight checks).
    pub(crate) async fn max_batch_size(&self) -> Result<Option<usize>> {
        let p: PreFlight = self
            .call_as(
                Method::GET,
                &format!("{}/pre-flight-checks", self.root),
                None,
            )
            .await?;
        Ok(p.max_batch_size)
    }

    /// Creates the tenant and the database when missing.
    pub(crate) async fn ensure_database(&self, tenant: &str, database: &str) -> Result<()> {
        let tenant_url = format!("{}/tenants/{tenant}", self.root);
        if let Err(e) = self.call(Method::GET, &tenant_url, None).await {
            if e.kind() != ErrorKind::NotFound {
                return Err(e);
            }
            let body = json!({ "name": tenant });
            ignore_conflict(
                self.call(Method::POST, &format!("{}/tenants", self.root), Some(&body))
                    .await,
            )?;
        }
        if let Err(e) = self.call(Method::GET, &self.db, None).await {
            if e.kind() != ErrorKind::NotFound {
                return Err(e);
            }
            let body = json!({ "name": database });
            ignore_conflict(
                self.call(
                    Method::POST,
                    &format!("{tenant_url}/databases"),
                    Some(&body),
                )
                .await,
            )?;
        }
        Ok(())
    }

    /// Every collection of the database (paged by 100, the whole list).
    pub(crate) async fn list_collections(&self) -> Result<Vec<CollectionInfo>> {
        const PAGE: usize = 100;
        let mut out = Vec::new();
        loop {
            let page: Vec<CollectionInfo> = self
                .call_as(
                    Method::GET,
                    &format!("{}/collections?limit={PAGE}&offset={}", self.db, out.len()),
                    None,
                )
                .await?;
            let n = page.len();
            out.extend(page);
            if n < PAGE {
                return Ok(out);
            }
        }
    }

    /// `get_or_create` of a collection with `metadata` and `configuration`.
    pub(crate) async fn get_or_create_collection(
        &self,
        name: &str,
        metadata: Json,
        configuration: Json,
    ) -> Result<CollectionInfo> {
        let body = json!({
            "name": name,
            "get_or_create": true,
            "metadata": metadata,
            "configuration": configuration,
        });
        self.call_as(
            Method::POST,
            &format!("{}/collections", self.db),
            Some(&body),
        )
        .await
    }

    fn coll(&self, id: &str, op: &str) -> String {
        format!("{}/collections/{id}/{op}", self.db)
    }

    /// `collection_upsert` with a prepared body (`ids`, `embeddings`, `documents`, `metadatas`).
    pub(crate) async fn upsert(&self, collection_id: &str, body: &Json) -> Result<()> {
        self.call_write(Method::POST, &self.coll(collection_id, "upsert"), body)
            .await
            .map(drop)
    }

    /// `collection_get`; `body` holds `ids`, `where`, `limit`, `offset`, `include`.
    pub(crate) async fn get(&self, collection_id: &str, body: &Json) -> Result<GetResponse> {
        self.call_as(Method::POST, &self.coll(collection_id, "get"), Some(body))
            .await
    }

    /// `collection_query` for one embedding.
    pub(crate) async fn query(&self, collection_id: &str, body: &Json) -> Result<QueryResponse> {
        self.call_as(Method::POST, &self.coll(collection_id, "query"), Some(body))
            .await
    }

    /// `collection_delete` by ids.
    pub(crate) async fn delete_ids(&self, collection_id: &str, ids: &[String]) -> Result<()> {
        let body = json!({ "ids": ids });
        self.call_write(Method::POST, &self.coll(collection_id, "delete"), &body)
            .await
            .map(drop)
    }

    /// `collection_count`.
    pub(crate) async fn count(&self, collection_id: &str) -> Result<u64> {
        self.call_as(Method::GET, &self.coll(collection_id, "count"), None)
            .await
    }
}

fn ignore_conflict(r: Result<Json>) -> Result<()> {
    match r {
        Err(e) if e.kind() == ErrorKind::Conflict => Ok(()),
        other => other.map(drop),
    }
}

/// Maps an HTTP error status and Chroma's `{"error", "message"}` body to an error.
fn status_error(status: StatusCode, body: &[u8]) -> StorageError {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        error: String,
        #[serde(default)]
        message: String,
    }
    let detail = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) if !b.message.is_empty() || !b.error.is_empty() => {
            format!("{}: {}", b.error, b.message)
        }
        _ => String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned(),
    };
    let (kind, retryable) = match status.as_u16() {
        400 | 422 => (ErrorKind::InvalidInput, false),
        401 | 403 => (ErrorKind::PermissionDenied, false),
        404 => (ErrorKind::NotFound, false),
        409 => (ErrorKind::Conflict, false),
        408 => (ErrorKind::Timeout, true),
        429 | 502 | 503 | 504 => (ErrorKind::Unavailable, true),
        _ => (ErrorKind::Backend, false),
    };
    StorageError::new(kind, format!("HTTP {status}: {detail}")).set_retryable(retryable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let e = status_error(
            StatusCode::NOT_FOUND,
            br#"{"error":"NotFoundError","message":"Database [x] not found"}"#,
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.message().contains("Database [x] not found"));
        assert!(status_error(StatusCode::SERVICE_UNAVAILABLE, b"").is_retryable());
        assert!(status_error(StatusCode::TOO_MANY_REQUESTS, b"").is_retryable());
        assert!(!status_error(StatusCode::BAD_REQUEST, b"{}").is_retryable());
        assert_eq!(
            status_error(StatusCode::UNAUTHORIZED, b"").kind(),
            ErrorKind::PermissionDenied
        );
        assert_eq!(
            status_error(StatusCode::CONFLICT, b"").kind(),
            ErrorKind::Conflict
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = Client::new(&ChromaConfig::new("http://localhost:1", 3)).unwrap();
        assert_eq!(c.delay(0), Duration::from_millis(200));
        assert_eq!(c.delay(2), Duration::from_millis(800));
        assert_eq!(c.delay(40), Duration::from_millis(10_000));
    }
}
