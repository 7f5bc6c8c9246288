//! The one error type of the storage layer.
//!
//! Modelled on OpenDAL's error: a [`ErrorKind`] says *what* went wrong, a separate retryable
//! flag says whether trying again may help, and the operation and backend name say *where*.
//! Callers decide to retry with [`StorageError::is_retryable`] without parsing messages.
//!
//! # Failed writes: not applied, or outcome unknown
//!
//! A write that fails before the request left the client (bad input, a refused connection, a
//! pool that had no free connection) was **not applied**. A write whose request was sent but
//! whose answer never came (the connection dropped during the commit, the call timed out
//! after the request was written) may or may not have been applied: its
//! [`StorageError::outcome`] is [`WriteOutcome::Unknown`]. The rule every backend follows:
//!
//! * an error with an unknown outcome is retryable only when the operation is idempotent
//!   (an upsert by key, a delete by id): repeating it gives the same stored state;
//! * for a non-idempotent write (an insert that allocates a new auto-increment id, an
//!   increment, a list push) an unknown outcome is **not** retryable: repeating it could
//!   store the record twice. The caller reads back to find out what happened.

use std::borrow::Cow;
use std::fmt;

/// Result alias used throughout the storage layer.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// What went wrong, independent of the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The requested record, collection or file does not exist.
    NotFound,
    /// The caller passed something the layer refuses: a wrong vector dimension, a NaN
    /// component, an empty id, an unknown context type, a filter key that is not a field...
    /// Nothing was written.
    InvalidInput,
    /// The backend cannot express the requested operation or filter operator. Nothing was
    /// dropped or weakened: the whole call was refused.
    Unsupported,
    /// The write conflicts with existing state (a lock held by another process, a unique key).
    Conflict,
    /// The backend cannot be reached or refused the connection.
    Unavailable,
    /// The operation did not finish in time.
    Timeout,
    /// Authentication or authorisation failed.
    PermissionDenied,
    /// Configuration is missing or malformed.
    Config,
    /// Stored data could not be decoded into the model (written by something else, or damaged).
    DataCorrupted,
    /// The storage layer was used before it was initialised, or after it was closed.
    NotInitialized,
    /// Any other failure reported by the backend or its driver.
    Backend,
}

impl ErrorKind {
    /// A short stable name, used in `Display`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Config => "configuration error",
            ErrorKind::DataCorrupted => "data corrupted",
            ErrorKind::NotInitialized => "not initialized",
            ErrorKind::Backend => "backend error",
        }
    }

    /// Whether errors of this kind are usually transient. Used as the default of
    /// [`StorageError::is_retryable`].
    pub fn default_retryable(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed write may have changed stored data. See the module docs for the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WriteOutcome {
    /// The call changed nothing: it failed before its request reached the server, or the
    /// server refused it. Also the value for reads.
    #[default]
    NotApplied,
    /// The request was sent, but its result never arrived: it may or may not have been
    /// applied. Retrying a non-idempotent write could apply it twice.
    Unknown,
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error returned by every storage operation.
///
/// `Display` reads `<backend> <operation>: <kind>: <message>`, for example
/// `sqlite upsert_profile: invalid input: user_id must not be empty`.
pub struct StorageError {
    kind: ErrorKind,
    retryable: bool,
    outcome: WriteOutcome,
    operation: Cow<'static, str>,
    backend: Cow<'static, str>,
    message: String,
    source: Option<BoxError>,
}

impl StorageError {
    /// A new error of `kind`. Its retryable flag starts at [`ErrorKind::default_retryable`].
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StorageError {
            kind,
            retryable: kind.default_retryable(),
            outcome: WriteOutcome::NotApplied,
            operation: Cow::Borrowed(""),
            backend: Cow::Borrowed(""),
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for an [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for an [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Shorthand for an [`ErrorKind::Backend`] error.
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }

    /// Shorthand for an [`ErrorKind::DataCorrupted`] error.
    pub fn data_corrupted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DataCorrupted, message)
    }

    /// Attach the operation name (the specification's name, e.g. `batch_upsert_processed_context`).
    /// An operation already set is kept: the innermost one is the most precise.
    pub fn with_operation(mut self, operation: impl Into<Cow<'static, str>>) -> Self {
        if self.operation.is_empty() {
            self.operation = operation.into();
        }
        self
    }

    /// Attach the backend name (e.g. `sqlite`, `qdrant-local`). An existing one is kept.
    pub fn with_backend(mut self, backend: impl Into<Cow<'static, str>>) -> Self {
        if self.backend.is_empty() {
            self.backend = backend.into();
        }
        self
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Override whether the operation may succeed when retried.
    pub fn set_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Mark the write as possibly applied ([`WriteOutcome::Unknown`]). `idempotent` says
    /// whether repeating the same call is safe: when it is not, the error is no longer
    /// retryable, whatever its kind.
    pub fn with_outcome_unknown(mut self, idempotent: bool) -> Self {
        self.outcome = WriteOutcome::Unknown;
        if !idempotent {
            self.retryable = false;
        }
        if !self.message.contains("may or may not have been applied") {
            self.message
                .push_str(" (the write may or may not have been applied)");
        }
        self
    }

    /// Whether the failed call may have changed stored data.
    pub fn outcome(&self) -> WriteOutcome {
        self.outcome
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying the same call may succeed (connection refused, timeout, busy database).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The operation that failed, or `""` when unknown.
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// The backend that failed, or `""` when unknown.
    pub fn backend_name(&self) -> &str {
        &self.backend
    }

    /// The human-readable message, without kind, backend or operation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.backend.is_empty(), self.operation.is_empty()) {
            (false, false) => write!(f, "{} {}: ", self.backend, self.operation)?,
            (false, true) => write!(f, "{}: ", self.backend)?,
            (true, false) => write!(f, "{}: ", self.operation)?,
            (true, true) => {}
        }
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageError")
            .field("kind", &self.kind)
            .field("retryable", &self.retryable)
            .field("outcome", &self.outcome)
            .field("operation", &self.operation)
            .field("backend", &self.backend)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for StorageError {
    fn from(err: serde_json::Error) -> Self {
        StorageError::new(ErrorKind::DataCorrupted, "JSON encoding or decoding failed")
            .with_source(err)
    }
}

/// Adds backend/operation context to any `Result<_, StorageError>`.
pub trait ResultExt<T> {
    /// Tag the error (if any) with the operation and backend names.
    fn context(self, backend: &'static str, operation: &'static str) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context(self, backend: &'static str, operation: &'static str) -> Result<T> {
        self.map_err(|e| e.with_backend(backend).with_operation(operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_backend_operation_kind_and_message() {
        let err = StorageError::invalid_input("vector has 3 components, expected 384")
            .with_backend("sqlite")
            .with_operation("search");
        assert_eq!(
            err.to_string(),
            "sqlite search: invalid input: vector has 3 components, expected 384"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn retryable_defaults_follow_kind_and_can_be_overridden() {
        assert!(StorageError::new(ErrorKind::Timeout, "slow").is_retryable());
        assert!(!StorageError::backend("x").is_retryable());
        assert!(
            StorageError::backend("busy")
                .set_retryable(true)
                .is_retryable()
        );
    }

    #[test]
    fn unknown_outcome_of_a_non_idempotent_write_is_not_retryable() {
        let err = StorageError::new(ErrorKind::Unavailable, "connection reset during commit");
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
        let insert = err.with_outcome_unknown(false);
        assert_eq!(insert.outcome(), WriteOutcome::Unknown);
        assert!(!insert.is_retryable());
        assert!(insert.to_string().contains("may or may not have been applied"));
        let upsert =
            StorageError::new(ErrorKind::Timeout, "no answer").with_outcome_unknown(true);
        assert!(upsert.is_retryable());
        assert_eq!(upsert.outcome(), WriteOutcome::Unknown);
    }

    #[test]
    fn innermost_operation_is_kept() {
        let err = StorageError::not_found("x")
            .with_operation("get_by_ids")
            .with_operation("outer");
        assert_eq!(err.operation(), "get_by_ids");
    }
}
