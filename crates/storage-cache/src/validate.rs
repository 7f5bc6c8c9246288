//! Argument checks and JSON encoding shared by both implementations.

use serde_json::Value as Json;
use storage_core::{ErrorKind, Result, StorageError};

/// Refuses empty keys (an empty key would name the bare prefix).
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StorageError::invalid_input("key must not be empty"));
    }
    Ok(())
}

/// Refuses writes with nothing to write (Redis would answer a syntax error).
pub(crate) fn check_not_empty<T>(items: &[T], what: &str) -> Result<()> {
    if items.is_empty() {
        return Err(StorageError::invalid_input(format!(
            "{what} must not be empty"
        )));
    }
    Ok(())
}

/// Refuses NaN scores and bounds (infinities are fine).
pub(crate) fn check_score(score: f64, what: &str) -> Result<()> {
    if score.is_nan() {
        return Err(StorageError::invalid_input(format!(
            "{what} must not be NaN"
        )));
    }
    Ok(())
}

/// Refuses a pop count of 0.
pub(crate) fn check_count(count: usize) -> Result<()> {
    if count == 0 {
        return Err(StorageError::invalid_input("count must be at least 1"));
    }
    Ok(())
}

/// The error of an operation on a key holding another type (Redis' `WRONGTYPE`).
pub(crate) fn wrong_type() -> StorageError {
    StorageError::invalid_input("WRONGTYPE: the key holds a value of another type")
}

/// The error of `incr`/`hincrby` on a value that is not an integer.
pub(crate) fn not_an_integer() -> StorageError {
    StorageError::invalid_input("the value is not an integer or out of range")
}

/// The error of `incr`/`hincrby` whose result does not fit in an `i64`.
pub(crate) fn overflow() -> StorageError {
    StorageError::invalid_input("increment or decrement would overflow")
}

/// JSON text of `value`, non-ASCII kept as is (the original's `ensure_ascii=False`).
pub(crate) fn encode_json(value: &Json) -> String {
    value.to_string()
}

/// Parses stored JSON text; `DataCorrupted` naming the key when it is not JSON.
pub(crate) fn decode_json(
    backend: &'static str,
    operation: &'static str,
    key: &str,
    text: &str,
) -> Result<Json> {
    serde_json::from_str(text).map_err(|e| {
        StorageError::new(
            ErrorKind::DataCorrupted,
            format!("the value at key {key:?} is not JSON"),
        )
        .with_source(e)
        .with_backend(backend)
        .with_operation(operation)
    })
}

/// Redis' index rules for `LRANGE`/`LTRIM`/`ZRANGE`: the inclusive range `start..=stop` of a
/// sequence of `len` items, negative indexes counting from the end; `None` when empty.
pub(crate) fn index_range(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        len.saturating_add(start)
    } else {
        start
    }
    .max(0);
    let stop = if stop < 0 {
        len.saturating_add(stop)
    } else {
        stop
    };
    if start > stop || start >= len {
        return None;
    }
    let stop = stop.min(len - 1);
    Some((start as usize, stop as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_range_follows_redis() {
        assert_eq!(index_range(5, 0, -1), Some((0, 4)));
        assert_eq!(index_range(5, -2, -1), Some((3, 4)));
        assert_eq!(index_range(5, 1, 100), Some((1, 4)));
        assert_eq!(index_range(5, -100, 1), Some((0, 1)));
        assert_eq!(index_range(5, 3, 1), None);
        assert_eq!(index_range(5, 5, 9), None);
        assert_eq!(index_range(0, 0, -1), None);
        assert_eq!(index_range(3, i64::MIN, i64::MAX), Some((0, 2)));
    }

    #[test]
    fn checks_refuse_bad_input() {
        assert!(check_key("").is_err());
        assert!(check_key("k").is_ok());
        assert!(check_score(f64::NAN, "score").is_err());
        assert!(check_score(f64::INFINITY, "score").is_ok());
        assert!(check_not_empty::<&str>(&[], "values").is_err());
        assert!(check_count(0).is_err());
        let e = decode_json("memory", "get_json", "k", "{nope").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DataCorrupted);
        assert_eq!(encode_json(&serde_json::json!({"a": "é"})), r#"{"a":"é"}"#);
    }
}
