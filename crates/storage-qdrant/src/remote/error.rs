//! Mapping of the client's errors (gRPC statuses) to [`StorageError`] kinds.
//!
//! | gRPC code                                   | kind               | retryable |
//! |---------------------------------------------|--------------------|-----------|
//! | `UNAVAILABLE`, `RESOURCE_EXHAUSTED`         | `Unavailable`      | yes       |
//! | `DEADLINE_EXCEEDED`                         | `Timeout`          | yes       |
//! | `CANCELLED` (the client's timeout)          | `Timeout`          | yes       |
//! | `CANCELLED` (otherwise)                     | `Unavailable`      | yes       |
//! | `INTERNAL` "Failed to connect" (the client) | `Unavailable`      | yes       |
//! | `ABORTED`                                   | `Conflict`         | yes       |
//! | `ALREADY_EXISTS`, `FAILED_PRECONDITION`     | `Conflict`         | no        |
//! | `INVALID_ARGUMENT`, `OUT_OF_RANGE`          | `InvalidInput`     | no        |
//! | `NOT_FOUND`                                 | `NotFound`         | no        |
//! | `UNAUTHENTICATED`, `PERMISSION_DENIED`      | `PermissionDenied` | no        |
//! | `UNIMPLEMENTED`                             | `Unsupported`      | no        |
//! | `DATA_LOSS`                                 | `DataCorrupted`    | no        |
//! | `INTERNAL`, `UNKNOWN`, others               | `Backend`          | no        |
//!
//! Codes from the [gRPC status code list](https://grpc.github.io/grpc/core/md_doc_statuscodes.html).

use std::time::Duration;

use qdrant_client::QdrantError;
use storage_core::{ErrorKind, StorageError};
use tonic::{Code, Status};

/// The kind and retryability of a status.
pub(crate) fn classify(status: &Status) -> (ErrorKind, bool) {
    let message = status.message();
    match status.code() {
        Code::Unavailable | Code::ResourceExhausted => (ErrorKind::Unavailable, true),
        Code::DeadlineExceeded => (ErrorKind::Timeout, true),
        Code::Cancelled if message.contains("Timeout expired") => (ErrorKind::Timeout, true),
        Code::Cancelled => (ErrorKind::Unavailable, true),
        Code::Internal if message.starts_with("Failed to connect") => {
            (ErrorKind::Unavailable, true)
        }
        Code::Aborted => (ErrorKind::Conflict, true),
        Code::AlreadyExists | Code::FailedPrecondition => (ErrorKind::Conflict, false),
        Code::InvalidArgument | Code::OutOfRange => (ErrorKind::InvalidInput, false),
        Code::NotFound => (ErrorKind::NotFound, false),
        Code::Unauthenticated | Code::PermissionDenied => (ErrorKind::PermissionDenied, false),
        Code::Unimplemented => (ErrorKind::Unsupported, false),
        Code::DataLoss => (ErrorKind::DataCorrupted, false),
        Code::Internal | Code::Unknown | Code::Ok => (ErrorKind::Backend, false),
    }
}

fn from_status(status: Status) -> StorageError {
    let (kind, retryable) = classify(&status);
    StorageError::new(
        kind,
        format!("server answered {:?}: {}", status.code(), status.message()),
    )
    .set_retryable(retryable)
    .with_source(status)
}

/// A client error as a [`StorageError`], plus the delay the server asked for before a retry
/// (`retry-after` of a rate-limited call).
pub(crate) fn map_error(e: QdrantError) -> (StorageError, Option<Duration>) {
    match e {
        QdrantError::ResponseError { status } => (from_status(status), None),
        QdrantError::ResourceExhaustedError {
            status,
            retry_after_seconds,
        } => (
            from_status(status),
            Some(Duration::from_secs(retry_after_seconds)),
        ),
        QdrantError::InvalidUri(e) => (
            StorageError::config(format!("invalid server address: {e}")),
            None,
        ),
        QdrantError::Io(e) => (
            StorageError::new(ErrorKind::Unavailable, format!("I/O error: {e}")).with_source(e),
            None,
        ),
        QdrantError::JsonToPayload(v) => (
            StorageError::invalid_input(format!("not a JSON object payload: {v}")),
            None,
        ),
        QdrantError::PayloadDeserialization(e) => (
            StorageError::data_corrupted(format!("payload cannot be decoded: {e}")),
            None,
        ),
        other => (StorageError::backend(other.to_string()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let kind = |s: Status| {
            let (e, _) = map_error(QdrantError::from(s));
            (e.kind(), e.is_retryable())
        };
        assert_eq!(
            kind(Status::unavailable("down")),
            (ErrorKind::Unavailable, true)
        );
        assert_eq!(
            kind(Status::deadline_exceeded("slow")),
            (ErrorKind::Timeout, true)
        );
        assert_eq!(
            kind(Status::cancelled("Timeout expired")),
            (ErrorKind::Timeout, true)
        );
        assert_eq!(
            kind(Status::internal("Failed to connect to http://x: refused")),
            (ErrorKind::Unavailable, true)
        );
        assert_eq!(kind(Status::internal("boom")), (ErrorKind::Backend, false));
        assert_eq!(
            kind(Status::invalid_argument("wrong dim")),
            (ErrorKind::InvalidInput, false)
        );
        assert_eq!(
            kind(Status::not_found("no collection")),
            (ErrorKind::NotFound, false)
        );
        assert_eq!(
            kind(Status::unauthenticated("key")),
            (ErrorKind::PermissionDenied, false)
        );
        assert_eq!(
            kind(Status::already_exists("x")),
            (ErrorKind::Conflict, false)
        );
        assert_eq!(
            kind(Status::unimplemented("x")),
            (ErrorKind::Unsupported, false)
        );
        let mut limited = Status::resource_exhausted("slow down");
        limited
            .metadata_mut()
            .insert("retry-after", "2".parse().unwrap());
        let (e, after) = map_error(QdrantError::from(limited));
        assert!(e.is_retryable());
        assert_eq!(after, Some(Duration::from_secs(2)));
    }
}
