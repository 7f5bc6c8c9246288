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

/// Longest accepted expiry, in seconds: 100 years of 365 days. Both caches refuse a longer
/// TTL with `InvalidInput` (Redis itself refuses some larger values and the in-memory cache
/// would have to round them to "never").
pub const MAX_TTL_SECS: u64 = 100 * 365 * 86_400;

/// Refuses a TTL above [`MAX_TTL_SECS`].
pub(crate) fn check_ttl(ttl_secs: u64) -> Result<()> {
    if ttl_secs > MAX_TTL_SECS {
        return Err(StorageError::invalid_input(format!(
            "ttl is {ttl_secs} s, the limit is {MAX_TTL_SECS} s (100 years)"
        )));
    }
    Ok(())
}

/// Parses an integer the way Redis' `INCR`/`HINCRBY` do (`string2ll`): an optional `-`,
/// then `0` alone or digits not starting with `0`; no `+`, no spaces, at most 20 characters,
/// within `i64`. `None` otherwise (Redis answers "value is not an integer").
pub(crate) fn parse_redis_int(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    if text == "0" {
        return Some(0);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    let mut bytes = digits.bytes();
    if !matches!(bytes.next(), Some(b'1'..=b'9')) || !bytes.all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
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
///
/// Refuses a value nested deeper than [`storage_core::validate::MAX_JSON_DEPTH`]: it could
/// be written but not read back (serde_json stops reading at 128 levels).
pub(crate) fn encode_json(
    backend: &'static str,
    operation: &'static str,
    value: &Json,
) -> Result<String> {
    storage_core::validate::validate_json_depth("value", value)
        .map_err(|e| e.with_backend(backend).with_operation(operation))?;
    Ok(value.to_string())
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
    fn integers_parse_as_redis_parses_them() {
        for (text, want) in [
            ("0", Some(0)),
            ("5", Some(5)),
            ("-5", Some(-5)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("+5", None),
            (" 5", None),
            ("5 ", None),
            ("05", None),
            ("-0", None),
            ("-", None),
            ("", None),
            ("1e3", None),
            ("5.0", None),
        ] {
            assert_eq!(parse_redis_int(text), want, "{text:?}");
        }
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
        assert_eq!(
            encode_json("memory", "set_json", &serde_json::json!({"a": "é"})).unwrap(),
            r#"{"a":"é"}"#
        );
    }
}
