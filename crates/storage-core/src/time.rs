//! Timezone-aware timestamps and the lenient parser for the formats the original wrote.
//!
//! The original is Python: `datetime.isoformat()` gives `2025-03-01T10:00:00+08:00` (with
//! `.ffffff` when microseconds are set), naive datetimes give no offset at all, and SQLite's
//! `CURRENT_TIMESTAMP` gives `2025-03-01 10:00:00`. All of them parse here.
//!
//! # Naive values
//!
//! A value without an offset is read in a [`NaiveZone`]: the original wrote
//! `datetime.now()`, the machine's local time, so the default is [`NaiveZone::Local`] (the
//! `TZ` environment variable, else `/etc/localtime`, else UTC). A deployment whose data was
//! written in another zone sets `storage.naive_timezone` in the configuration (for example
//! `naive_timezone: "Asia/Shanghai"`, `"+08:00"` or `"UTC"`; see
//! [`crate::config::StorageConfig::naive_timezone`]), or calls [`set_default_naive_zone`]
//! before opening backends. The setting is process-wide: the original wrote every store
//! with the same machine's local time. Vector payloads need no setting when they carry
//! the original's `<field>_ts` epoch seconds next to the naive string: the instant is taken
//! from those (see [`crate::payload`]).
//!
//! # Precision
//!
//! Every backend keeps timestamps to the **microsecond**, like the original's Python
//! `datetime`: digits below a microsecond are truncated (not rounded) when a value is written,
//! so a value reads back as [`truncate_to_micros`] of what was given. Vector backends keep the
//! offset as written; the SQL backends store naive wall-clock times, as the original did, so
//! a row reads back as the same instant in the offset of the naive zone (see above). The
//! `<field>_ts` payload fields hold whole seconds (see [`unix_seconds`]). Only instants from
//! [`min_storable`] to [`max_storable`] are accepted ([`validate_timestamp`]).
//!
//! A naive local time that a daylight-saving change makes ambiguous (the repeated hour) reads
//! as the earlier instant, and one that falls in the skipped hour uses the offset in force
//! before the change (Python's `fold=0`); naive values cannot say more.

use std::sync::{Arc, RwLock};

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Timelike,
    Utc,
};
use serde::{Deserialize, Deserializer, Serializer};

use crate::error::{Result, StorageError};

/// A point in time with its UTC offset, as written (offsets survive a round trip). Stored to
/// the microsecond: see [Precision](self#precision).
pub type Timestamp = DateTime<FixedOffset>;

/// The current time, in UTC.
pub fn now() -> Timestamp {
    Utc::now().fixed_offset()
}

/// The time zone in which naive stored datetimes (no UTC offset) are read and written.
///
/// Parsed from configuration by [`NaiveZone::parse`]: `"local"` (the machine's zone),
/// `"UTC"`, a fixed offset `"+08:00"` / `"-05:30"`, or an IANA name such as
/// `"Asia/Shanghai"` (looked up in the system's tz database, `/usr/share/zoneinfo`).
#[derive(Clone, Debug)]
pub struct NaiveZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl PartialEq for NaiveZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Default for NaiveZone {
    /// [`NaiveZone::local`].
    fn default() -> Self {
        NaiveZone::local()
    }
}

impl NaiveZone {
    /// The machine's local zone: `TZ` if set, else `/etc/localtime`, else UTC.
    pub fn local() -> Self {
        NaiveZone {
            name: "local".into(),
            tz: jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// UTC.
    pub fn utc() -> Self {
        NaiveZone {
            name: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
        }
    }

    /// Parse a zone setting (see the type docs). Case-insensitive for `local` and `UTC`.
    ///
    /// # Errors
    /// [`crate::ErrorKind::Config`] naming the value when it is none of the accepted forms or
    /// the IANA name is not in the system's tz database.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("local") {
            return Ok(NaiveZone::local());
        }
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t == "+00:00" {
            return Ok(NaiveZone::utc());
        }
        if t.starts_with('+') || t.starts_with('-') {
            let off = DateTime::parse_from_str(
                &format!("2000-01-01T00:00:00{t}"),
                "%Y-%m-%dT%H:%M:%S%:z",
            )
            .map_err(|_| {
                StorageError::config(format!(
                    "naive_timezone '{text}' is not an offset of the form +HH:MM (-23:59 to +23:59)"
                ))
            })?
            .offset()
            .local_minus_utc();
            let offset = jiff::tz::Offset::from_seconds(off)
                .map_err(|e| StorageError::config(format!("naive_timezone '{text}': {e}")))?;
            return Ok(NaiveZone {
                name: t.to_owned(),
                tz: jiff::tz::TimeZone::fixed(offset),
            });
        }
        let tz = jiff::tz::TimeZone::get(t).map_err(|e| {
            StorageError::config(format!(
                "naive_timezone '{text}' is not 'local', 'UTC', an offset like '+08:00' or a \
                 time zone name of the system's tz database such as 'Asia/Shanghai': {e}"
            ))
        })?;
        Ok(NaiveZone {
            name: t.to_owned(),
            tz,
        })
    }

    /// Whether this zone is UTC at every instant.
    pub fn is_utc(&self) -> bool {
        self.tz == jiff::tz::TimeZone::UTC
    }

    /// The setting as given (`"local"`, `"UTC"`, `"+08:00"`, `"Asia/Shanghai"`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instant a naive datetime names in this zone (see the module docs for the
    /// daylight-saving rule). Years outside -9999..=9999 are read as UTC.
    pub fn from_naive(&self, naive: &NaiveDateTime) -> Timestamp {
        if self.is_utc() {
            return Utc.from_utc_datetime(naive).fixed_offset();
        }
        let civil = jiff::civil::DateTime::new(
            i16::try_from(naive.year()).unwrap_or(i16::MAX),
            naive.month() as i8,
            naive.day() as i8,
            naive.hour() as i8,
            naive.minute() as i8,
            naive.second() as i8,
            naive.nanosecond().min(999_999_999) as i32,
        );
        let seconds = match civil {
            Ok(dt) => match self.tz.to_ambiguous_timestamp(dt).offset() {
                jiff::tz::AmbiguousOffset::Unambiguous { offset } => offset.seconds(),
                jiff::tz::AmbiguousOffset::Gap { before, .. }
                | jiff::tz::AmbiguousOffset::Fold { before, .. } => before.seconds(),
            },
            Err(_) => 0,
        };
        let offset = FixedOffset::east_opt(seconds)
            .unwrap_or(FixedOffset::east_opt(0).expect("zero offset"));
        match offset.from_local_datetime(naive) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t,
            chrono::LocalResult::None => Utc.from_utc_datetime(naive).fixed_offset(),
        }
    }

    /// The naive wall-clock time of `t` in this zone (what the original would have written).
    pub fn to_naive(&self, t: &Timestamp) -> NaiveDateTime {
        let utc = t.naive_utc();
        if self.is_utc() {
            return utc;
        }
        let seconds = jiff::Timestamp::from_second(t.timestamp())
            .map(|ts| self.tz.to_offset(ts).seconds())
            .unwrap_or(0);
        utc + chrono::TimeDelta::seconds(i64::from(seconds))
    }
}

static DEFAULT_NAIVE_ZONE: RwLock<Option<Arc<NaiveZone>>> = RwLock::new(None);

/// The zone naive values are read in (and the SQL backends write naive values in):
/// [`NaiveZone::local`] unless [`set_default_naive_zone`] changed it.
pub fn default_naive_zone() -> Arc<NaiveZone> {
    if let Some(zone) = DEFAULT_NAIVE_ZONE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
    {
        return Arc::clone(zone);
    }
    let mut guard = DEFAULT_NAIVE_ZONE
        .write()
        .unwrap_or_else(|e| e.into_inner());
    Arc::clone(guard.get_or_insert_with(|| Arc::new(NaiveZone::local())))
}

/// Change the process-wide zone of naive stored datetimes (the `storage.naive_timezone`
/// setting). Call it before opening backends: values already read are not re-read.
pub fn set_default_naive_zone(zone: NaiveZone) {
    *DEFAULT_NAIVE_ZONE
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(zone));
}

/// Parse an ISO 8601 / RFC 3339 timestamp, a naive `YYYY-MM-DD[T ]HH:MM:SS[.f]` (read in
/// [`default_naive_zone`]) or a bare date `YYYY-MM-DD` (midnight in that zone).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the text when it matches none of these forms.
pub fn parse_timestamp(text: &str) -> Result<Timestamp> {
    parse_timestamp_in(text, &default_naive_zone())
}

/// [`parse_timestamp`] with naive values read in `zone`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the text when it is not a timestamp.
pub fn parse_timestamp_in(text: &str, zone: &NaiveZone) -> Result<Timestamp> {
    match parse_aware_or_naive(text)? {
        Parsed::Aware(t) => Ok(t),
        Parsed::Naive(n) => Ok(zone.from_naive(&n)),
    }
}

/// A parsed timestamp text: with an offset, or naive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The text carried a UTC offset.
    Aware(Timestamp),
    /// The text had no offset: its zone is the reader's to decide.
    Naive(NaiveDateTime),
}

/// Parse any form [`parse_timestamp`] accepts without deciding the zone of naive values.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the text when it is not a timestamp.
pub fn parse_aware_or_naive(text: &str) -> Result<Parsed> {
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Parsed::Aware(t));
    }
    // RFC 3339 with a space instead of `T`, or a `Z`-less offset form chrono rejects above.
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Ok(Parsed::Aware(t));
        }
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Parsed::Naive(naive));
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
        return Ok(Parsed::Naive(naive));
    }
    Err(StorageError::invalid_input(format!(
        "'{text}' is not a timestamp (expected ISO 8601, e.g. 2025-03-01T10:00:00+08:00)"
    )))
}

/// The earliest instant a look-back window reaches: `1000-01-01T00:00:00Z` (the first year
/// MySQL's `DATETIME` holds). Windows that would start earlier start here.
pub fn earliest() -> Timestamp {
    Utc.with_ymd_and_hms(1000, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
        .fixed_offset()
}

/// The instant `hours` hours before now, never earlier than [`earliest`] (a window of
/// `u32::MAX` hours means "everything", not an overflow).
pub fn hours_ago(hours: u32) -> Timestamp {
    now()
        .checked_sub_signed(chrono::TimeDelta::hours(i64::from(hours)))
        .filter(|t| *t > earliest())
        .unwrap_or_else(earliest)
}

/// The instant `days` days before now, never earlier than [`earliest`].
pub fn days_ago(days: u32) -> Timestamp {
    now()
        .checked_sub_signed(chrono::TimeDelta::days(i64::from(days)))
        .filter(|t| *t > earliest())
        .unwrap_or_else(earliest)
}

/// Earliest timestamp every backend stores: 0001-01-02T00:00:00Z, one day inside the range of
/// Python's `datetime` and MySQL's `DATETIME` (year 1 to 9999), so that no UTC offset or naive
/// zone moves it out.
pub fn min_storable() -> Timestamp {
    Utc.with_ymd_and_hms(1, 1, 2, 0, 0, 0)
        .single()
        .expect("a valid date")
        .fixed_offset()
}

/// Latest timestamp every backend stores: 9999-12-30T23:59:59.999999Z (see [`min_storable`]).
pub fn max_storable() -> Timestamp {
    Utc.with_ymd_and_hms(9999, 12, 30, 23, 59, 59)
        .single()
        .expect("a valid date")
        .fixed_offset()
        + chrono::Duration::microseconds(999_999)
}

/// Checks a caller's timestamp before it is stored or compared: between [`min_storable`] and
/// [`max_storable`], and not a leap second (`:60`; Python, MySQL and most engines cannot
/// hold one). Without this MariaDB stored such values as the zero date and read them back as
/// missing.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field`, the value and the bound.
pub fn validate_timestamp(field: &str, t: &Timestamp) -> Result<()> {
    if t.timestamp_subsec_nanos() >= 1_000_000_000 {
        return Err(StorageError::invalid_input(format!(
            "{field} is {t}, a leap second; no backend stores one (use :59.999999)"
        )));
    }
    if *t < min_storable() || *t > max_storable() {
        return Err(StorageError::invalid_input(format!(
            "{field} is {}, outside the storable range {} to {} (the years of Python's \
             datetime and MySQL's DATETIME, a day inside them)",
            format_timestamp(t),
            format_timestamp(&min_storable()),
            format_timestamp(&max_storable())
        )));
    }
    Ok(())
}

/// [`validate_timestamp`] of an optional value.
///
/// # Errors
/// As [`validate_timestamp`].
pub fn validate_opt_timestamp(field: &str, t: Option<&Timestamp>) -> Result<()> {
    t.map_or(Ok(()), |t| validate_timestamp(field, t))
}

/// `t` with the digits below a microsecond dropped: what every backend stores (see
/// [Precision](self#precision)).
pub fn truncate_to_micros(t: &Timestamp) -> Timestamp {
    let nanos = t.timestamp_subsec_nanos();
    *t - chrono::Duration::nanoseconds(i64::from(nanos % 1_000))
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

        let utc = NaiveZone::utc();
        let naive = parse_timestamp_in("2025-03-01 10:00:00", &utc).unwrap();
        assert_eq!(format_timestamp(&naive), "2025-03-01T10:00:00+00:00");
        let naive_t = parse_timestamp_in("2025-03-01T10:00:00.5", &utc).unwrap();
        assert_eq!(naive_t.timestamp_subsec_millis(), 500);
        let zulu = parse_timestamp("2025-03-01T10:00:00Z").unwrap();
        assert_eq!(zulu, naive);
        assert!(parse_timestamp("2025-03-01").is_ok());
        let err = parse_timestamp("yesterday").unwrap_err();
        assert!(err.to_string().contains("yesterday"));
    }

    #[test]
    fn naive_values_are_read_in_the_configured_zone() {
        let shanghai = NaiveZone::parse("Asia/Shanghai").unwrap();
        let t = parse_timestamp_in("2025-03-01 10:00:00.123456", &shanghai).unwrap();
        assert_eq!(t.offset().local_minus_utc(), 8 * 3600);
        assert_eq!(
            t.with_timezone(&Utc).to_rfc3339(),
            "2025-03-01T02:00:00.123456+00:00"
        );
        assert_eq!(
            shanghai.to_naive(&t).to_string(),
            "2025-03-01 10:00:00.123456"
        );
        // An aware value is never moved by the setting.
        let aware = parse_timestamp_in("2025-03-01T10:00:00+00:00", &shanghai).unwrap();
        assert_eq!(aware.offset().local_minus_utc(), 0);

        let fixed = NaiveZone::parse("-05:30").unwrap();
        let t = parse_timestamp_in("2025-03-01T10:00:00", &fixed).unwrap();
        assert_eq!(t.offset().local_minus_utc(), -(5 * 3600 + 1800));

        // Daylight saving: New York's repeated hour reads as the earlier instant (EDT), and
        // summer and winter get their own offsets.
        let ny = NaiveZone::parse("America/New_York").unwrap();
        let fold = parse_timestamp_in("2025-11-02 01:30:00", &ny).unwrap();
        assert_eq!(fold.offset().local_minus_utc(), -4 * 3600);
        let winter = parse_timestamp_in("2025-01-15 12:00:00", &ny).unwrap();
        assert_eq!(winter.offset().local_minus_utc(), -5 * 3600);

        for bad in ["Mars/Olympus", "+25:00", "8", ""] {
            let e = NaiveZone::parse(bad).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Config, "{bad}");
            assert!(e.to_string().contains("naive_timezone"), "{e}");
        }
        assert_eq!(NaiveZone::parse("utc").unwrap(), NaiveZone::utc());
        assert_eq!(NaiveZone::parse("LOCAL").unwrap().name(), "local");
    }

    #[test]
    fn look_back_windows_saturate() {
        assert_eq!(hours_ago(u32::MAX), earliest());
        assert_eq!(days_ago(u32::MAX), earliest());
        assert!(hours_ago(1) < now() && hours_ago(1) > earliest());
    }

    #[test]
    fn unix_seconds_truncates_like_python_int() {
        let t = parse_timestamp("1970-01-01T00:00:01.5+00:00").unwrap();
        assert_eq!(unix_seconds(&t), 1);
        let t = parse_timestamp("1969-12-31T23:59:58.5+00:00").unwrap();
        assert_eq!(unix_seconds(&t), -1);
    }
}
