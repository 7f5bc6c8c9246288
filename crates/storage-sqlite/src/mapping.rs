//! Mapping between SQLite rows and the record types, in one place: column lists, timestamp
//! and JSON encodings, and the translation of SQLite errors.
//!
//! Encodings (those of the original, so both read each other's rows):
//! - timestamps: text `YYYY-MM-DD HH:MM:SS[.ffffff]`, naive, in the process's naive zone
//!   (`storage.naive_timezone`, default the machine's local zone), i.e. Python's
//!   `str(datetime.now())` as the original wrote it; this sorts like the instant (except
//!   inside the repeated hour of a daylight-saving change), so range filters are string
//!   comparisons that use the indexes. Any form [`storage_core::time::parse_timestamp`]
//!   accepts is read; values with an offset keep it. Note that columns the original left to
//!   SQLite's `DEFAULT CURRENT_TIMESTAMP` (and its vault update, `updated_at =
//!   CURRENT_TIMESTAMP`) hold UTC, which the original itself mixed with local times; they
//!   are read in the naive zone like every naive value;
//! - lists and metadata: JSON text, non-ASCII kept as is (`json.dumps(..., ensure_ascii=False)`);
//!   `NULL` and `''` read as empty;
//! - booleans: integers 0/1.

use chrono::{Duration, Timelike};
use rusqlite::types::{Type, ValueRef};
use rusqlite::{ErrorCode, Row};
use serde::de::DeserializeOwned;
use storage_core::time::{default_naive_zone, parse_timestamp};
use storage_core::{
    Conversation, Entity, ErrorKind, JsonMap, Message, MessageThinking, Profile, StorageError,
    Timestamp, Tip, Todo, Vault,
};

/// Translates a rusqlite error into a [`StorageError`] with a kind and retryable flag.
pub(crate) fn sql_err(err: rusqlite::Error) -> StorageError {
    let (kind, retryable, msg) = match &err {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => (
                ErrorKind::Conflict,
                true,
                "the database is locked by another connection",
            ),
            ErrorCode::ConstraintViolation => {
                (ErrorKind::Conflict, false, "a constraint was violated")
            }
            ErrorCode::CannotOpen => (
                ErrorKind::Unavailable,
                false,
                "the database file cannot be opened",
            ),
            ErrorCode::PermissionDenied | ErrorCode::ReadOnly => (
                ErrorKind::PermissionDenied,
                false,
                "the database file is not writable",
            ),
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => (
                ErrorKind::DataCorrupted,
                false,
                "the file is not a valid SQLite database",
            ),
            ErrorCode::DiskFull | ErrorCode::SystemIoFailure => {
                (ErrorKind::Unavailable, true, "disk I/O failed")
            }
            ErrorCode::TooBig => (
                ErrorKind::InvalidInput,
                false,
                "a value is too big for SQLite",
            ),
            _ => (ErrorKind::Backend, false, "SQLite failed"),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => (
            ErrorKind::DataCorrupted,
            false,
            "a stored value has an unexpected type",
        ),
        _ => (ErrorKind::Backend, false, "SQLite failed"),
    };
    StorageError::new(kind, msg)
        .set_retryable(retryable)
        .with_source(err)
}

/// Shorthand: `rusqlite::Result<T>` into our `Result<T>`.
pub(crate) trait SqlResultExt<T> {
    fn sql(self) -> storage_core::Result<T>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn sql(self) -> storage_core::Result<T> {
        self.map_err(sql_err)
    }
}

/// Truncates to microseconds (the stored precision).
pub(crate) fn truncate_micros(t: Timestamp) -> Timestamp {
    let nanos = t.nanosecond();
    t - Duration::nanoseconds(i64::from(nanos % 1_000))
}

/// The stored form of a timestamp: the wall-clock time in the naive zone,
/// `YYYY-MM-DD HH:MM:SS` plus `.ffffff` when the microseconds are non-zero (Python's
/// `str(datetime)`).
pub(crate) fn ts_to_sql(t: &Timestamp) -> String {
    let n = default_naive_zone().to_naive(t);
    if n.nanosecond() / 1_000 == 0 {
        n.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        n.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// The current time at stored precision.
pub(crate) fn now() -> Timestamp {
    truncate_micros(storage_core::time::now())
}

fn conversion(col: usize, ty: Type, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(col, ty, msg.into())
}

fn column_name(row: &Row<'_>, idx: usize) -> String {
    row.as_ref()
        .column_name(idx)
        .map(str::to_owned)
        .unwrap_or_else(|_| format!("#{idx}"))
}

pub(crate) fn get_ts_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                conversion(idx, Type::Text, format!("{}: {e}", column_name(row, idx)))
            })?;
            if text.is_empty() {
                return Ok(None);
            }
            if let Some(t) = parse_stored_timestamp(text) {
                return Ok(Some(t));
            }
            parse_timestamp(text).map(Some).map_err(|e| {
                conversion(
                    idx,
                    Type::Text,
                    format!("{}: {}", column_name(row, idx), e.message()),
                )
            })
        }
        // Someone stored Unix seconds: accept them rather than fail the whole read.
        ValueRef::Integer(secs) => chrono::DateTime::from_timestamp(secs, 0)
            .map(|t| Some(t.fixed_offset()))
            .ok_or_else(|| {
                conversion(
                    idx,
                    Type::Integer,
                    format!("{}: {secs} is out of range", column_name(row, idx)),
                )
            }),
        other => Err(conversion(
            idx,
            other.data_type(),
            format!("{}: expected a timestamp text", column_name(row, idx)),
        )),
    }
}

/// The form this crate (and the original) stores, `YYYY-MM-DD HH:MM:SS[.f{1,9}]` in the
/// naive zone, parsed without chrono's format machinery (which tries several formats in turn and costs
/// about a microsecond per value). `None` for anything else, which then goes through
/// [`parse_timestamp`]; the results of both agree on this form.
pub(crate) fn parse_stored_timestamp(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            let n = num(20..b.len())?;
            n * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time =
        chrono::NaiveTime::from_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)?;
    Some(default_naive_zone().from_naive(&date.and_time(time)))
}

pub(crate) fn get_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    get_ts_opt(row, idx)?.ok_or_else(|| {
        conversion(
            idx,
            Type::Null,
            format!("{} is NULL", column_name(row, idx)),
        )
    })
}

/// A JSON text column; `NULL`, `''` and JSON `null` read as the default value.
pub(crate) fn get_json<T: DeserializeOwned + Default>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text = match row.get_ref(idx)? {
        ValueRef::Null => return Ok(T::default()),
        ValueRef::Text(b) | ValueRef::Blob(b) => b,
        other => {
            return Err(conversion(
                idx,
                other.data_type(),
                format!("{}: expected JSON text", column_name(row, idx)),
            ));
        }
    };
    if text.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Option<T> = serde_json::from_slice(text).map_err(|e| {
        conversion(
            idx,
            Type::Text,
            format!("{}: invalid JSON: {e}", column_name(row, idx)),
        )
    })?;
    Ok(value.unwrap_or_default())
}

pub(crate) fn get_bool(row: &Row<'_>, idx: usize) -> rusqlite::Result<bool> {
    match row.get_ref(idx)? {
        ValueRef::Null => Ok(false),
        ValueRef::Integer(i) => Ok(i != 0),
        ValueRef::Real(f) => Ok(f != 0.0),
        ValueRef::Text(t) => Ok(matches!(t, b"1" | b"true" | b"True" | b"TRUE")),
        ValueRef::Blob(_) => Err(conversion(
            idx,
            Type::Blob,
            format!("{}: expected a boolean", column_name(row, idx)),
        )),
    }
}

fn get_i64_or(row: &Row<'_>, idx: usize, default: i64) -> rusqlite::Result<i64> {
    Ok(row.get::<_, Option<i64>>(idx)?.unwrap_or(default))
}

fn get_string_or(row: &Row<'_>, idx: usize, default: &str) -> rusqlite::Result<String> {
    Ok(row
        .get::<_, Option<String>>(idx)?
        .unwrap_or_else(|| default.to_owned()))
}

/// JSON text of a list, as the original writes it.
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> storage_core::Result<String> {
    Ok(serde_json::to_string(value)?)
}

// ----- records -------------------------------------------------------------------------------

/// Column order expected by [`profile`] (see `queries::GET_PROFILE_SQL`).
pub(crate) fn profile(row: &Row<'_>) -> rusqlite::Result<Profile> {
    Ok(Profile {
        user_id: row.get(0)?,
        device_id: row.get(1)?,
        agent_id: row.get(2)?,
        content: get_string_or(row, 3, "")?,
        summary: row.get(4)?,
        keywords: get_json(row, 5)?,
        entities: get_json(row, 6)?,
        importance: get_i64_or(row, 7, 0)?,
        metadata: get_json::<JsonMap>(row, 8)?,
        created_at: get_ts(row, 9)?,
        updated_at: get_ts(row, 10)?,
    })
}

pub(crate) const ENTITY_COLS: &str = "id, user_id, device_id, agent_id, entity_name, entity_type, content, \
     summary, keywords, aliases, metadata, created_at, updated_at";

pub(crate) fn entity(row: &Row<'_>) -> rusqlite::Result<Entity> {
    Ok(Entity {
        id: row.get(0)?,
        user_id: row.get(1)?,
        device_id: row.get(2)?,
        agent_id: row.get(3)?,
        entity_name: row.get(4)?,
        entity_type: row.get(5)?,
        content: get_string_or(row, 6, "")?,
        summary: row.get(7)?,
        keywords: get_json(row, 8)?,
        aliases: get_json(row, 9)?,
        metadata: get_json::<JsonMap>(row, 10)?,
        created_at: get_ts(row, 11)?,
        updated_at: get_ts(row, 12)?,
    })
}

pub(crate) const VAULT_COLS: &str = "id, title, summary, content, tags, parent_id, is_folder, is_deleted, \
     created_at, updated_at, document_type, sort_order";

pub(crate) fn vault(row: &Row<'_>) -> rusqlite::Result<Vault> {
    Ok(Vault {
        id: row.get(0)?,
        title: row.get(1)?,
        summary: row.get(2)?,
        content: row.get(3)?,
        tags: row.get(4)?,
        parent_id: row.get(5)?,
        is_folder: get_bool(row, 6)?,
        is_deleted: get_bool(row, 7)?,
        created_at: get_ts(row, 8)?,
        updated_at: get_ts(row, 9)?,
        document_type: get_string_or(row, 10, "vaults")?,
        sort_order: get_i64_or(row, 11, 0)?,
    })
}

pub(crate) const TODO_COLS: &str =
    "id, content, created_at, start_time, end_time, status, urgency, assignee, reason";

pub(crate) fn todo(row: &Row<'_>) -> rusqlite::Result<Todo> {
    Ok(Todo {
        id: row.get(0)?,
        content: row.get(1)?,
        created_at: get_ts(row, 2)?,
        start_time: get_ts_opt(row, 3)?,
        end_time: get_ts_opt(row, 4)?,
        status: get_i64_or(row, 5, 0)?,
        urgency: get_i64_or(row, 6, 0)?,
        assignee: row.get(7)?,
        reason: row.get(8)?,
    })
}

pub(crate) const TIP_COLS: &str = "id, content, created_at";

pub(crate) fn tip(row: &Row<'_>) -> rusqlite::Result<Tip> {
    Ok(Tip {
        id: row.get(0)?,
        content: row.get(1)?,
        created_at: get_ts(row, 2)?,
    })
}

pub(crate) const CONVERSATION_COLS: &str =
    "id, title, user_id, page_name, status, metadata, created_at, updated_at";

pub(crate) fn conversation(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: row.get(0)?,
        title: row.get(1)?,
        user_id: row.get(2)?,
        page_name: get_string_or(row, 3, "home")?,
        status: get_string_or(row, 4, "active")?,
        metadata: get_json::<JsonMap>(row, 5)?,
        created_at: get_ts(row, 6)?,
        updated_at: get_ts(row, 7)?,
    })
}

pub(crate) const MESSAGE_COLS: &str = "id, conversation_id, parent_message_id, role, content, status, token_count, \
     metadata, latency_ms, error_message, completed_at, created_at, updated_at";

pub(crate) fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(0)?,
        conversation_id: row.get(1)?,
        parent_message_id: row.get(2)?,
        role: row.get(3)?,
        content: get_string_or(row, 4, "")?,
        status: get_string_or(row, 5, "pending")?,
        token_count: get_i64_or(row, 6, 0)?,
        metadata: get_json::<JsonMap>(row, 7)?,
        latency_ms: get_i64_or(row, 8, 0)?,
        error_message: get_string_or(row, 9, "")?,
        completed_at: get_ts_opt(row, 10)?,
        created_at: get_ts(row, 11)?,
        updated_at: get_ts(row, 12)?,
        thinking: Vec::new(),
    })
}

pub(crate) const THINKING_COLS: &str =
    "id, message_id, content, stage, progress, sequence, metadata, created_at";

pub(crate) fn thinking(row: &Row<'_>) -> rusqlite::Result<MessageThinking> {
    Ok(MessageThinking {
        id: row.get(0)?,
        message_id: row.get(1)?,
        content: get_string_or(row, 2, "")?,
        stage: row.get(3)?,
        progress: row.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
        sequence: get_i64_or(row, 5, 0)?,
        metadata: get_json::<JsonMap>(row, 6)?,
        created_at: get_ts(row, 7)?,
    })
}

/// An FTS5 phrase matching `text` literally.
pub(crate) fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_store_like_python_str_in_the_naive_zone() {
        // Every test of this binary that depends on the zone sets the same one (UTC); a
        // non-UTC zone is tested in tests/naive_zone.rs, a process of its own.
        utc();
        let t = parse_timestamp("2025-03-01T10:00:00+08:00").unwrap();
        assert_eq!(ts_to_sql(&t), "2025-03-01 02:00:00");
        let t = parse_timestamp("2025-03-01T10:00:00.000120+00:00").unwrap();
        assert_eq!(ts_to_sql(&t), "2025-03-01 10:00:00.000120");
        let t = parse_timestamp("2025-03-01T10:00:00.123456789+00:00").unwrap();
        assert_eq!(ts_to_sql(&truncate_micros(t)), "2025-03-01 10:00:00.123456");
    }

    fn utc() {
        storage_core::time::set_default_naive_zone(storage_core::time::NaiveZone::utc());
    }

    #[test]
    fn fast_timestamp_parsing_agrees_with_parse_timestamp() {
        utc();
        for text in [
            "2025-03-01 10:00:00",
            "2025-03-01 10:00:00.000120",
            "2025-03-01 10:00:00.5",
            "2024-02-29 23:59:59.123456789",
            "1999-12-31 00:00:00.000000",
        ] {
            assert_eq!(
                parse_stored_timestamp(text),
                Some(parse_timestamp(text).unwrap()),
                "{text}"
            );
        }
        for other in [
            "2025-03-01T10:00:00",
            "2025-03-01 10:00:00+08:00",
            "2025-03-01 10:00",
            "2025-02-30 10:00:00",
            "2025-03-01 10:00:00.",
            "2025-03-01 10:00:00.1234567890",
            "2025-03-01 1a:00:00",
            " 2025-03-01 10:00:00",
        ] {
            assert_eq!(parse_stored_timestamp(other), None, "{other}");
        }
    }

    #[test]
    fn fts_escaping() {
        assert_eq!(fts_phrase("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
