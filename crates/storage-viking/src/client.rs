//! The signed HTTP calls: data plane (`POST /api/vikingdb/data/...`, envelope
//! `{"code", "message", "request_id", "result"}`, <https://www.volcengine.com/docs/84313/1791163>)
//! and control plane (`POST /?Action=...&Version=2025-06-09`, envelope
//! `{"ResponseMetadata": {"Error": {"Code", "Message"}}, "Result"}`), with retries.

use std::time::Duration;

use serde_json::Value as Json;
use storage_core::{ErrorKind, Result, StorageError};
use tracing::debug;

use crate::config::VikingConfig;
use crate::signing::{SignInput, authorization, sha256_hex};

/// Control-plane API version.
pub(crate) const CONSOLE_VERSION: &str = "2025-06-09";
/// Signing service name.
pub(crate) const SERVICE: &str = "vikingdb";

/// Maps an error envelope's string `code` and the HTTP status to an error.
///
/// | code (prefix) or status | kind | retried |
/// |---|---|---|
/// | HTTP 429, `RequestLimitExceeded`, `Throttling`, `TooManyRequests`, `QuotaExceeded` | `Unavailable` | yes |
/// | `NotFound.*` | `NotFound` | no |
/// | `AlreadyExists.*`, `Conflict*` | `Conflict` | no |
/// | `InvalidParameter*`, `MissingParameter*`, `InvalidArgument*`, `OutOfRange*`, `BadRequest*` | `InvalidInput` | no |
/// | `SignatureDoesNotMatch`, `Unauthorized*`, `InvalidAccessKey*`, `AccessDenied*`, `Forbidden*`, `InvalidAuthorization*`, `MissingAuthenticationToken*`, `InvalidCredential*`, HTTP 401/403 | `PermissionDenied` | no |
/// | HTTP 5xx, `InternalError*`, `InternalServerError`, `ServiceUnavailable*` | `Unavailable` | yes |
/// | anything else | `Backend` | no |
pub(crate) fn error_for(code: &str, status: u16, message: &str, request_id: &str) -> StorageError {
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| code.starts_with(p));
    let (kind, retryable) = if status == 429
        || starts(&[
            "RequestLimitExceeded",
            "Throttling",
            "TooManyRequests",
            "QuotaExceeded",
        ]) {
        (ErrorKind::Unavailable, true)
    } else if starts(&["NotFound"]) {
        (ErrorKind::NotFound, false)
    } else if starts(&["AlreadyExists", "Conflict"]) {
        (ErrorKind::Conflict, false)
    } else if starts(&[
        "InvalidParameter",
        "MissingParameter",
        "InvalidArgument",
        "OutOfRange",
        "BadRequest",
    ]) {
        (ErrorKind::InvalidInput, false)
    } else if status == 401
        || status == 403
        || starts(&[
            "SignatureDoesNotMatch",
            "Unauthorized",
            "InvalidAccessKey",
            "AccessDenied",
            "Forbidden",
            "InvalidAuthorization",
            "MissingAuthenticationToken",
            "InvalidCredential",
        ])
    {
        (ErrorKind::PermissionDenied, false)
    } else if status >= 500
        || starts(&["InternalError", "InternalServerError", "ServiceUnavailable"])
    {
        (ErrorKind::Unavailable, true)
    } else {
        (ErrorKind::Backend, false)
    };
    let rid = if request_id.is_empty() {
        String::new()
    } else {
        format!(" (request id {request_id})")
    };
    StorageError::new(kind, format!("{code} (HTTP {status}): {message}{rid}"))
        .set_retryable(retryable)
}

/// Signed HTTP client with retries.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    config: VikingConfig,
}

impl Client {
    pub(crate) fn new(config: &VikingConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(config.connect_timeout())
            .build()
            .map_err(|e| StorageError::config("cannot build the HTTP client").with_source(e))?;
        Ok(Client {
            http,
            config: config.clone(),
        })
    }

    /// A data-plane read; returns the envelope's `result` (`null` when absent).
    pub(crate) async fn data(&self, path: &str, body: &Json) -> Result<Json> {
        let host = self.config.data_host();
        let envelope = self.with_retries(&host, path, &[], body, false).await?;
        Ok(envelope.get("result").cloned().unwrap_or(Json::Null))
    }

    /// A data-plane write (upsert or delete by primary key: idempotent). When a request may
    /// have reached the server without its answer coming back, the error's outcome is
    /// [`storage_core::WriteOutcome::Unknown`] (still retryable).
    pub(crate) async fn data_write(&self, path: &str, body: &Json) -> Result<Json> {
        let host = self.config.data_host();
        let envelope = self.with_retries(&host, path, &[], body, true).await?;
        Ok(envelope.get("result").cloned().unwrap_or(Json::Null))
    }

    /// A control-plane read; returns the envelope's `Result`.
    pub(crate) async fn console(&self, action: &str, body: &Json) -> Result<Json> {
        self.console_call(action, body, false).await
    }

    /// A control-plane write (`Create*`); the outcome rule of [`Self::data_write`].
    pub(crate) async fn console_write(&self, action: &str, body: &Json) -> Result<Json> {
        self.console_call(action, body, true).await
    }

    async fn console_call(&self, action: &str, body: &Json, write: bool) -> Result<Json> {
        let host = self.config.console_host();
        let query = [("Action", action), ("Version", CONSOLE_VERSION)];
        let envelope = self.with_retries(&host, "/", &query, body, write).await?;
        Ok(envelope.get("Result").cloned().unwrap_or(Json::Null))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.retry_base_delay_ms.max(1);
        let exp = base.saturating_mul(1u64 << attempt.min(20));
        let capped = exp.min(self.config.retry_max_delay_ms.max(base));
        // Up to 25% jitter so that concurrent clients do not retry in lockstep.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
        let jitter = if capped >= 4 { nanos % (capped / 4) } else { 0 };
        Duration::from_millis(capped + jitter)
    }

    async fn with_retries(
        &self,
        host: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Json,
        write: bool,
    ) -> Result<Json> {
        let bytes = serde_json::to_vec(body)?;
        let mut attempt = 0;
        let mut maybe_applied = false;
        loop {
            let e = match self.send_once(host, path, query, &bytes).await {
                Ok(v) => return Ok(v),
                Err(Failure { error, maybe_sent }) => {
                    maybe_applied |= write && maybe_sent;
                    error
                }
            };
            if e.is_retryable() && attempt < self.config.max_retries {
                let delay = self.backoff(attempt);
                debug!(path, attempt, ?delay, error = %e, "vikingdb call failed, retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            let e = if attempt > 0 {
                let msg = format!("{} (after {} attempts)", e.message(), attempt + 1);
                let retryable = e.is_retryable();
                StorageError::new(e.kind(), msg)
                    .set_retryable(retryable)
                    .with_source(e)
            } else {
                e
            };
            return Err(if maybe_applied {
                e.with_outcome_unknown(true)
            } else {
                e
            });
        }
    }

    async fn send_once(
        &self,
        host: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> std::result::Result<Json, Failure> {
        let x_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let payload_hash = sha256_hex(body);
        let headers = [
            ("content-type", "application/json"),
            ("host", host),
            ("x-content-sha256", payload_hash.as_str()),
            ("x-date", x_date.as_str()),
        ];
        let input = SignInput {
            method: "POST",
            path,
            query,
            headers: &headers,
            payload_hash: &payload_hash,
            x_date: &x_date,
            region: &self.config.region,
            service: SERVICE,
        };
        let auth = authorization(
            &input,
            &self.config.access_key_id,
            self.config.secret_access_key.expose(),
        );
        let query_string = crate::signing::canonical_query(query);
        let url = if query_string.is_empty() {
            format!("{}://{host}{path}", self.config.scheme)
        } else {
            format!("{}://{host}{path}?{query_string}", self.config.scheme)
        };
        let mut req = self.http.post(&url).body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req = req.header("authorization", auth);
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(transport_error)?;
        Ok(Self::decode(path, status, &text)?)
    }

    /// The envelope of a complete answer, or the error it reports.
    fn decode(path: &str, status: u16, text: &str) -> Result<Json> {
        let json: Json = match serde_json::from_str(text) {
            Ok(j) => j,
            Err(_) => {
                let snippet: String = text.chars().take(200).collect();
                return Err(error_for("NonJsonResponse", status, &snippet, ""));
            }
        };
        if path == "/" {
            let meta = json.get("ResponseMetadata");
            if let Some(err) = meta.and_then(|m| m.get("Error")) {
                let code = err.get("Code").and_then(Json::as_str).unwrap_or("");
                let msg = err.get("Message").and_then(Json::as_str).unwrap_or("");
                let rid = meta
                    .and_then(|m| m.get("RequestId"))
                    .and_then(Json::as_str)
                    .unwrap_or("");
                return Err(error_for(code, status, msg, rid));
            }
            if status != 200 {
                return Err(error_for("", status, "control-plane call failed", ""));
            }
            return Ok(json);
        }
        let code = json.get("code").and_then(Json::as_str).unwrap_or("");
        if status == 200 && code == "Success" {
            return Ok(json);
        }
        let msg = json.get("message").and_then(Json::as_str).unwrap_or("");
        let rid = json.get("request_id").and_then(Json::as_str).unwrap_or("");
        Err(error_for(code, status, msg, rid))
    }
}

/// A failed attempt, and whether its request may have reached the server.
pub(crate) struct Failure {
    error: StorageError,
    /// The request may have been delivered (a timeout or a connection lost after it was
    /// made), so a write may have been applied.
    maybe_sent: bool,
}

/// A complete answer of the server: whatever it says, it says the request was handled (an
/// error answer means not applied).
impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        Failure {
            error,
            maybe_sent: false,
        }
    }
}

fn transport_error(e: reqwest::Error) -> Failure {
    if e.is_builder() {
        // A malformed URL (host, scheme): retrying cannot help.
        return StorageError::config("cannot build the VikingDB request URL")
            .with_source(e)
            .into();
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unavailable
    };
    // A connection that could not be made carried no request.
    let maybe_sent = !e.is_connect();
    // Reqwest's message names the URL (host and path), never headers or credentials.
    Failure {
        error: StorageError::new(kind, "VikingDB request failed")
            .set_retryable(true)
            .with_source(e),
        maybe_sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let k = |c: &str, s: u16| error_for(c, s, "m", "r").kind();
        assert_eq!(k("NotFound.VikingdbCollection", 404), ErrorKind::NotFound);
        assert_eq!(k("InvalidParameter", 400), ErrorKind::InvalidInput);
        assert_eq!(k("SignatureDoesNotMatch", 401), ErrorKind::PermissionDenied);
        assert_eq!(k("AlreadyExists.VikingdbIndex", 409), ErrorKind::Conflict);
        assert_eq!(k("RequestLimitExceeded", 429), ErrorKind::Unavailable);
        assert_eq!(k("Weird", 418), ErrorKind::Backend);
        assert!(error_for("InternalServerError", 500, "m", "").is_retryable());
        assert!(error_for("Anything", 429, "m", "").is_retryable());
        assert!(!error_for("InvalidParameter", 400, "m", "").is_retryable());
    }
}
