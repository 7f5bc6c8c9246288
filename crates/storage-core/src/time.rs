//! Timezone-aware timestamps and the lenient parser for the formats the original wrote.
//!
//! The original is Python: `datetime.isoformat()` gives `2025-03-01T10:00:00+08:00` (with
//! `.ffffff` when microseconds are set), naive datetimes give no offset at all, and SQLite's
//! `CURRENT_TIMESTAMP` gives `2025-03-01 10:00:00`. All of them parse here; a value without an
//! offset is taken as UTC.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serializer};

use crate::error::{Result, StorageError};

/// A point in time with its UTC offset, as written (offsets survive a round trip).
pub type Timestamp = DateTime<FixedOffset>;

/// The current time, in UTC.
pub fn now() -> Timestamp {
    Utc::now().fixed_offset()
}

/// Parse an ISO 8601 / RFC 3339 timestamp, a naive `YYYY-MM-DD[T ]HH:MM:SS[.f]` (taken as UTC)
/// or a bare date `YYYY-MM-DD` (midnight UTC).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the text when it matches none of these forms.
pub fn parse_timestamp(text: &str) -> Result<Timestamp> {
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t);
    }
    // RFC 3339 with a space instead of `T`, or a `Z`-less offset form chrono rejects above.
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Ok(t);
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&naive).fixed_offset());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Ok(Utc.from_utc_datetime(&naive).fixed_offset());
    }
    Err(StorageError::invalid_input(format!(
        "'{text}' is not a timestamp (expected ISO 8601, e.g. 2025-03-01T10:00:00+08:00)"
    )))
}

/// Format like Python's `datetime.isoformat()` for an aware datetime: offset as `+HH:MM`,
/// fractional seconds only when non-zero (microsecond precision).
pub fn format_timestamp(t: &Timestamp) -> String {
    if t.timestamp_subsec_nanos() == 0 {
        t.to_rfc3339_opts(SecondsFormat::Secs, false)
    } else {
        t.to_rfc3339_opts(SecondsFormat::Micros, false)
    }
}

/// Whole seconds since the Unix epoch, truncated toward zero like Python's
/// `int(dt.timestamp())` (the `<field>_ts` payload fields).
pub fn unix_seconds(t: &Timestamp) -> i64 {
    let secs = t.timestamp();
    if secs < 0 && t.timestamp_subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

/// Serde adapter for [`Timestamp`] fields: writes [`format_timestamp`], reads [`parse_timestamp`].
pub mod serde_ts {
    use super::*;

    /// Serialize as Python-style ISO 8601.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format_timestamp(t))
    }

    /// Deserialize from any form [`parse_timestamp`] accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        parse_timestamp(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for `Option<Timestamp>` fields.
pub mod serde_ts_opt {
    use super::*;

    /// Serialize as Python-style ISO 8601 or null.
    pub fn serialize<S: Serializer>(
        t: &Option<Timestamp>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_timestamp(t)),
            None => s.serialize_none(),
        }
    }

    /// Deserialize from null or any form [`parse_timestamp`] accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_timestamp(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_python_and_sqlite_forms() {
        let aware = parse_timestamp("2025-03-01T10:00:00+08:00").unwrap();
        assert_eq!(aware.offset().local_minus_utc(), 8 * 3600);
        assert_eq!(format_timestamp(&aware), "2025-03-01T10:00:00+08:00");

        let micro = parse_timestamp("2025-03-01T10:00:00.123456+00:00").unwrap();
        assert_eq!(format_timestamp(&micro), "2025-03-01T10:00:00.123456+00:00");

        let naive = parse_timestamp("2025-03-01 10:00:00").unwrap();
        assert_eq!(format_timestamp(&naive), "2025-03-01T10:00:00+00:00");
        let naive_t = parse_timestamp("2025-03-01T10:00:00.5").unwrap();
        assert_eq!(naive_t.timestamp_subsec_millis(), 500);
        let zulu = parse_timestamp("2025-03-01T10:00:00Z").unwrap();
        assert_eq!(zulu, naive);
        assert!(parse_timestamp("2025-03-01").is_ok());
        let err = parse_timestamp("yesterday").unwrap_err();
        assert!(err.to_string().contains("yesterday"));
    }

    #[test]
    fn unix_seconds_truncates_like_python_int() {
        let t = parse_timestamp("1970-01-01T00:00:01.5+00:00").unwrap();
        assert_eq!(unix_seconds(&t), 1);
        let t = parse_timestamp("1969-12-31T23:59:58.5+00:00").unwrap();
        assert_eq!(unix_seconds(&t), -1);
    }
}
