//! The raw HTTP calls: authentication header, the response envelope, status codes mapped to
//! [`StorageError`] kinds, retries with exponential backoff.
//!
//! Every DashVector response is an envelope `{"code": int, "message": str, "request_id": str,
//! "output": ...}`; `code` 0 is success
//! ([status codes](https://www.alibabacloud.com/help/en/vrs/latest/return-status-code-description)).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value as Json;
use storage_core::config::Secret;
use storage_core::{ErrorKind, Result, StorageError};

use crate::config::DashVectorConfig;

const AUTH_HEADER: &str = "dashvector-auth-token";

/// Maps a DashVector status code to an error kind and whether retrying may help.
pub(crate) fn code_kind(code: i64) -> (ErrorKind, bool) {
    match code {
        // Timeout.
        408 => (ErrorKind::Timeout, true),
        // ExceedRateLimit, UnreadyPartition, UnreadyCollection, Closed.
        -2034 | -2029 | -2030 | -998 => (ErrorKind::Unavailable, true),
        // InexistentCollection, InexistentPartition, InexistentKey.
        -2021 | -2022 | -2024 => (ErrorKind::NotFound, false),
        // DuplicateCollection, DuplicatePartition, DuplicateKey, DuplicateField.
        -2028..=-2025 => (ErrorKind::Conflict, false),
        // UnsupportedCondition.
        -2031 => (ErrorKind::Unsupported, false),
        // Empty*/Invalid*/Mismatched* (-2000 to -2020), InexistentColumn, bad order-by and
        // query conversion.
        -2020..=-2000 | -2023 | -2032 | -2033 => (ErrorKind::InvalidInput, false),
        _ => (ErrorKind::Backend, false),
    }
}

/// An HTTP client bound to one cluster endpoint and API key.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Secret,
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl Client {
    pub(crate) fn new(config: &DashVectorConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout())
            .connect_timeout(Duration::from_secs_f64(config.connect_timeout_secs))
            .build()
            .map_err(|e| StorageError::config("cannot build the HTTP client").with_source(e))?;
        Ok(Client {
            http,
            base: config.base_url(),
            token: config.api_key.clone(),
            max_retries: config.max_retries,
            base_delay: Duration::from_millis(config.retry_base_delay_ms),
            max_delay: Duration::from_millis(
                config.retry_max_delay_ms.max(config.retry_base_delay_ms),
            ),
        })
    }

    /// Calls `method <base>/v1/<path>` (a read) and returns the envelope's `output` (`null`
    /// when absent). Retryable failures are retried up to `max_retries` times.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Json> {
        self.run(method, path, query, body, false).await
    }

    /// [`Self::call`] for an idempotent write (upsert or delete by id, collection creation).
    /// When a request may have reached the server without its answer coming back (a
    /// timeout, a connection lost after it was made), the error's outcome is
    /// [`storage_core::WriteOutcome::Unknown`]; it stays retryable.
    pub(crate) async fn call_write(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Json> {
        self.run(method, path, query, body, true).await
    }

    async fn run(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
        write: bool,
    ) -> Result<Json> {
        let url = format!("{}/v1/{path}", self.base);
        let mut attempt = 0u32;
        let mut maybe_applied = false;
        loop {
            match self.once(method.clone(), &url, query, body).await {
                Ok(out) => return Ok(out),
                Err(Failure {
                    error: err,
                    retry_after,
                    maybe_sent,
                }) => {
                    maybe_applied |= write && maybe_sent;
                    if !err.is_retryable() || attempt >= self.max_retries {
                        return Err(if maybe_applied {
                            err.with_outcome_unknown(true)
                        } else {
                            err
                        });
                    }
                    let delay = retry_after.unwrap_or_else(|| self.backoff(attempt));
                    tracing::warn!(
                        backend = "dashvector",
                        %method,
                        path,
                        attempt = attempt + 1,
                        delay_ms = delay.as_millis() as u64,
                        error = %err,
                        "retrying DashVector request"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// `base * 2^attempt`, at most `max_delay`, minus up to a quarter of jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_delay);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let jitter = exp.mul_f64(f64::from(nanos % 1000) / 4000.0);
        exp.saturating_sub(jitter)
    }

    async fn once(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> std::result::Result<Json, Failure> {
        let mut req = self
            .http
            .request(method, url)
            .header(AUTH_HEADER, self.token.expose());
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(transport_error)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(self.max_delay));
        let text = resp.text().await.map_err(transport_error)?;
        let envelope: Option<Json> = serde_json::from_str(&text).ok();
        let code = envelope
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(Json::as_i64);
        let detail = describe(status, envelope.as_ref(), &text);
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(Failure::answered(
                StorageError::new(
                    ErrorKind::PermissionDenied,
                    format!("DashVector refused the API key: {detail}"),
                ),
                None,
            ));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Failure::answered(
                StorageError::new(ErrorKind::Unavailable, format!("rate limited: {detail}")),
                retry_after,
            ));
        }
        if status.is_server_error() {
            return Err(Failure::answered(
                StorageError::new(ErrorKind::Unavailable, format!("server error: {detail}")),
                retry_after,
            ));
        }
        match code {
            Some(0) if status.is_success() => Ok(envelope
                .and_then(|mut e| e.get_mut("output").map(Json::take))
                .unwrap_or(Json::Null)),
            Some(c) if c != 0 => {
                let (kind, retryable) = code_kind(c);
                Err(Failure::answered(
                    StorageError::new(kind, detail).set_retryable(retryable),
                    retry_after,
                ))
            }
            _ => {
                let kind = match status {
                    StatusCode::NOT_FOUND => ErrorKind::NotFound,
                    s if s.is_success() => ErrorKind::DataCorrupted,
                    _ => ErrorKind::Backend,
                };
                Err(Failure::answered(
                    StorageError::new(kind, format!("unexpected response: {detail}")),
                    None,
                ))
            }
        }
    }
}

/// A failed attempt: the error, the delay the server asked for, and whether the request may
/// have reached the server.
struct Failure {
    error: StorageError,
    retry_after: Option<Duration>,
    /// The request may have been delivered without its answer arriving (a timeout, or a
    /// connection lost after it was made), so a write may have been applied.
    maybe_sent: bool,
}

impl Failure {
    /// The server answered with an error: the request was not applied.
    fn answered(error: StorageError, retry_after: Option<Duration>) -> Failure {
        Failure {
            error,
            retry_after,
            maybe_sent: false,
        }
    }
}

fn transport_error(e: reqwest::Error) -> Failure {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Backend
    };
    // A connection that could not be made carried no request.
    let maybe_sent = !e.is_connect();
    // reqwest's message names the URL, never the headers: the token cannot leak here.
    Failure {
        error: StorageError::new(kind, "DashVector request failed").with_source(e),
        retry_after: None,
        maybe_sent,
    }
}

fn describe(status: StatusCode, envelope: Option<&Json>, text: &str) -> String {
    match envelope {
        Some(e) => format!(
            "HTTP {}, code {}, message {:?}, request_id {}",
            status.as_u16(),
            e.get("code").map_or_else(|| "none".into(), Json::to_string),
            e.get("message").and_then(Json::as_str).unwrap_or(""),
            e.get("request_id").and_then(Json::as_str).unwrap_or("none"),
        ),
        None => {
            let snippet: String = text.chars().take(200).collect();
            format!("HTTP {}, body {snippet:?}", status.as_u16())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_map_to_kinds() {
        assert_eq!(code_kind(-2034), (ErrorKind::Unavailable, true));
        assert_eq!(code_kind(408), (ErrorKind::Timeout, true));
        assert_eq!(code_kind(-2021), (ErrorKind::NotFound, false));
        assert_eq!(code_kind(-2025), (ErrorKind::Conflict, false));
        assert_eq!(code_kind(-2015), (ErrorKind::InvalidInput, false));
        assert_eq!(code_kind(-2019), (ErrorKind::InvalidInput, false));
        assert_eq!(code_kind(-2031), (ErrorKind::Unsupported, false));
        assert_eq!(code_kind(-999), (ErrorKind::Backend, false));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut c = DashVectorConfig::new("http://x", "k", 4);
        c.retry_base_delay_ms = 100;
        c.retry_max_delay_ms = 500;
        let client = Client::new(&c).unwrap();
        let d0 = client.backoff(0);
        let d2 = client.backoff(2);
        let d9 = client.backoff(9);
        assert!(d0 <= Duration::from_millis(100) && d0 >= Duration::from_millis(75));
        assert!(d2 <= Duration::from_millis(400) && d2 >= Duration::from_millis(300));
        assert!(d9 <= Duration::from_millis(500));
        assert!(!format!("{client:?}").contains("\"k\""));
    }
}
