//! Time buckets of hierarchical summaries: a day `2026-02-21`, an ISO week `2026-W08` or a
//! month `2026-02`.
//!
//! Buckets of one granularity sort correctly as strings (they are zero-padded), which is how
//! `search_by_hierarchy` compares them in every backend, as the specification prescribes.
//! Bounds are checked here once so that no backend can silently turn a range into "match
//! nothing" (a numeric range on a string field does exactly that in Qdrant).

use chrono::NaiveDate;

use crate::error::{Result, StorageError};

/// The granularity of a time bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// `YYYY-MM-DD`.
    Day,
    /// `YYYY-Www` (ISO 8601 week, `W01` to `W53`).
    Week,
    /// `YYYY-MM`.
    Month,
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The granularity of `bucket`.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field` when `bucket` is none of the three forms
/// or not a real date, week or month.
pub fn granularity(field: &str, bucket: &str) -> Result<Granularity> {
    let bad = || {
        StorageError::invalid_input(format!(
            "{field} '{bucket}' is not a time bucket (expected a day 2026-02-21, an ISO week 2026-W08 or a month 2026-02)"
        ))
    };
    let b = bucket.as_bytes();
    match b.len() {
        10 if NaiveDate::parse_from_str(bucket, "%Y-%m-%d").is_ok() && b[4] == b'-' => {
            Ok(Granularity::Day)
        }
        8 if digits(&bucket[..4]) && &bucket[4..6] == "-W" && digits(&bucket[6..]) => {
            let week: u32 = bucket[6..].parse().map_err(|_| bad())?;
            let year: i32 = bucket[..4].parse().map_err(|_| bad())?;
            if NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon).is_some() {
                Ok(Granularity::Week)
            } else {
                Err(bad())
            }
        }
        7 if digits(&bucket[..4]) && b[4] == b'-' && digits(&bucket[5..]) => {
            let month: u32 = bucket[5..].parse().map_err(|_| bad())?;
            if (1..=12).contains(&month) {
                Ok(Granularity::Month)
            } else {
                Err(bad())
            }
        }
        _ => Err(bad()),
    }
}

/// Checks the bounds of a hierarchy query: each is a valid bucket, both have the same
/// granularity, and start is not after end.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the offending bound.
pub fn validate_range(start: Option<&str>, end: Option<&str>) -> Result<()> {
    let gs = start
        .map(|s| granularity("time_bucket_start", s))
        .transpose()?;
    let ge = end.map(|e| granularity("time_bucket_end", e)).transpose()?;
    if let (Some(gs), Some(ge), Some(s), Some(e)) = (gs, ge, start, end) {
        if gs != ge {
            return Err(StorageError::invalid_input(format!(
                "time_bucket_start '{s}' and time_bucket_end '{e}' have different granularities"
            )));
        }
        if s > e {
            return Err(StorageError::invalid_input(format!(
                "time_bucket_start '{s}' is after time_bucket_end '{e}'"
            )));
        }
    }
    Ok(())
}

/// Whether `bucket` lies within the inclusive bounds, compared as strings.
pub fn in_range(bucket: &str, start: Option<&str>, end: Option<&str>) -> bool {
    start.is_none_or(|s| bucket >= s) && end.is_none_or(|e| bucket <= e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_three_forms() {
        assert_eq!(granularity("b", "2026-02-21").unwrap(), Granularity::Day);
        assert_eq!(granularity("b", "2026-W08").unwrap(), Granularity::Week);
        assert_eq!(granularity("b", "2026-02").unwrap(), Granularity::Month);
        for bad in [
            "2026-02-30",
            "2026-W54",
            "2026-13",
            "2026-2",
            "26-02-01",
            "",
            "2026-W8",
            "２０２６-02",
        ] {
            assert!(granularity("b", bad).is_err(), "{bad}");
        }
        assert!(
            granularity("b", "2020-W53").is_ok(),
            "2020 has 53 ISO weeks"
        );
        assert!(
            granularity("b", "2021-W53").is_err(),
            "2021 has 52 ISO weeks"
        );
    }

    #[test]
    fn ranges_compare_as_strings_within_a_granularity() {
        assert!(in_range(
            "2026-02-21",
            Some("2026-02-01"),
            Some("2026-02-28")
        ));
        assert!(!in_range(
            "2026-03-01",
            Some("2026-02-01"),
            Some("2026-02-28")
        ));
        assert!(in_range("2026-W08", Some("2026-W08"), None));
        assert!(in_range("2025-12", None, Some("2026-01")));
        assert!(validate_range(Some("2026-W01"), Some("2026-02")).is_err());
        assert!(validate_range(Some("2026-03"), Some("2026-02")).is_err());
        assert!(validate_range(None, Some("2026-02")).is_ok());
    }
}
