//! Mapping between MySQL rows and the record types, in one place: column lists, timestamp and
//! JSON encodings.
//!
//! Encodings:
//! - timestamps: `DATETIME(6)` holding UTC (the session time zone is `+00:00`), microsecond
//!   precision like the SQLite backend; rows the original wrote (naive local times) read as
//!   UTC, as everywhere in this layer;
//! - lists and metadata: `JSON` columns written as JSON text (`json.dumps(..., ensure_ascii=False)`
//!   shape). MariaDB's `JSON` is `LONGTEXT` (with a `json_valid` check) and MySQL 8 returns
//!   its binary JSON as text, so both are read as text and parsed here; `NULL` and `''` read
//!   as empty;
//! - keys and compared names: `VARBINARY`, read as UTF-8 (see `schema.rs` for why);
//! - booleans: `TINYINT(1)`.

use chrono::{NaiveDateTime, Timelike};
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::mysql::MySqlRow;
use storage_core::{
    Conversation, Entity, JsonMap, Message, MessageThinking, Profile, Result, StorageError,
    Timestamp, Tip, Todo, Vault,
};

use crate::error::SqlxResultExt;

/// Truncates to microseconds (the stored precision).
pub(crate) fn truncate_micros(t: Timestamp) -> Timestamp {
    let nanos = t.nanosecond();
    t - chrono::Duration::nanoseconds(i64::from(nanos % 1_000))
}

/// The current time at stored precision.
pub(crate) fn now() -> Timestamp {
    truncate_micros(storage_core::time::now())
}

/// The stored form of a timestamp: the naive wall-clock time in the process's naive zone
/// (`storage.naive_timezone`, default the machine's local zone, as the original's
/// `datetime.now()` wrote it), truncated to microseconds.
pub(crate) fn ts_to_sql(t: &Timestamp) -> NaiveDateTime {
    storage_core::time::default_naive_zone().to_naive(&truncate_micros(*t))
}

fn column_name(row: &MySqlRow, idx: usize) -> String {
    use sqlx::Column;
    row.columns()
        .get(idx)
        .map(|c| c.name().to_owned())
        .unwrap_or_else(|| format!("#{idx}"))
}

fn corrupted(row: &MySqlRow, idx: usize, what: impl std::fmt::Display) -> StorageError {
    StorageError::data_corrupted(format!("{}: {what}", column_name(row, idx)))
}

/// A text-like column (`VARCHAR`, `TEXT`, `VARBINARY`, `JSON`) as UTF-8, `None` for `NULL`.
/// Decoded without sqlx's type check, which refuses `JSON` and binary strings as `String`.
pub(crate) fn text_opt(row: &MySqlRow, idx: usize) -> Result<Option<String>> {
    let bytes: Option<&[u8]> = row.try_get_unchecked(idx).db()?;
    bytes
        .map(|b| {
            String::from_utf8(b.to_vec())
                .map_err(|e| corrupted(row, idx, format!("not UTF-8: {e}")))
        })
        .transpose()
}

pub(crate) fn text(row: &MySqlRow, idx: usize) -> Result<String> {
    text_opt(row, idx)?.ok_or_else(|| corrupted(row, idx, "is NULL"))
}

fn text_or(row: &MySqlRow, idx: usize, default: &str) -> Result<String> {
    Ok(text_opt(row, idx)?.unwrap_or_else(|| default.to_owned()))
}

pub(crate) fn i64_opt(row: &MySqlRow, idx: usize) -> Result<Option<i64>> {
    row.try_get::<Option<i64>, _>(idx).db()
}

pub(crate) fn i64_or(row: &MySqlRow, idx: usize, default: i64) -> Result<i64> {
    Ok(i64_opt(row, idx)?.unwrap_or(default))
}

fn bool_or_false(row: &MySqlRow, idx: usize) -> Result<bool> {
    Ok(i64_opt(row, idx)?.is_some_and(|v| v != 0))
}

pub(crate) fn ts_opt(row: &MySqlRow, idx: usize) -> Result<Option<Timestamp>> {
    let t: Option<NaiveDateTime> = row.try_get(idx).db()?;
    Ok(t.map(|n| storage_core::time::default_naive_zone().from_naive(&n)))
}

pub(crate) fn ts(row: &MySqlRow, idx: usize) -> Result<Timestamp> {
    ts_opt(row, idx)?.ok_or_else(|| corrupted(row, idx, "is NULL"))
}

/// A JSON column; `NULL`, `''` and JSON `null` read as the default value.
pub(crate) fn json<T: DeserializeOwned + Default>(row: &MySqlRow, idx: usize) -> Result<T> {
    let Some(text) = text_opt(row, idx)? else {
        return Ok(T::default());
    };
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    let v: Option<T> = serde_json::from_str(&text)
        .map_err(|e| corrupted(row, idx, format!("invalid JSON: {e}")))?;
    Ok(v.unwrap_or_default())
}

/// JSON text of a value, as the original writes it: Python's `json.dumps(value,
/// ensure_ascii=False)`, whose separators are `", "` and `": "` (serde_json's compact form
/// has none); non-ASCII characters are written as they are.
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    // serde_json writes valid UTF-8 only.
    String::from_utf8(out)
        .map_err(|e| StorageError::backend("JSON text is not UTF-8").with_source(e))
}

/// serde_json's compact formatter with Python's default separators.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

// ----- records -------------------------------------------------------------------------------

/// Column order: `user_id, device_id, agent_id, content, summary, keywords, entities,
/// importance, metadata, created_at, updated_at` (see `queries::GET_PROFILE_SQL`).
pub(crate) fn profile(row: &MySqlRow) -> Result<Profile> {
    Ok(Profile {
        user_id: text(row, 0)?,
        device_id: text(row, 1)?,
        agent_id: text(row, 2)?,
        content: text_or(row, 3, "")?,
        summary: text_opt(row, 4)?,
        keywords: json(row, 5)?,
        entities: json(row, 6)?,
        importance: i64_or(row, 7, 0)?,
        metadata: json::<JsonMap>(row, 8)?,
        created_at: ts(row, 9)?,
        updated_at: ts(row, 10)?,
    })
}

pub(crate) const ENTITY_COLS: &str = "id, user_id, device_id, agent_id, entity_name, entity_type, \
     content, summary, keywords, aliases, metadata, created_at, updated_at";

pub(crate) fn entity(row: &MySqlRow) -> Result<Entity> {
    Ok(Entity {
        id: text(row, 0)?,
        user_id: text(row, 1)?,
        device_id: text(row, 2)?,
        agent_id: text(row, 3)?,
        entity_name: text(row, 4)?,
        entity_type: text_opt(row, 5)?,
        content: text_or(row, 6, "")?,
        summary: text_opt(row, 7)?,
        keywords: json(row, 8)?,
        aliases: json(row, 9)?,
        metadata: json::<JsonMap>(row, 10)?,
        created_at: ts(row, 11)?,
        updated_at: ts(row, 12)?,
    })
}

pub(crate) const VAULT_COLS: &str = "id, title, summary, content, tags, parent_id, is_folder, \
     is_deleted, created_at, updated_at, document_type, sort_order";

pub(crate) fn vault(row: &MySqlRow) -> Result<Vault> {
    Ok(Vault {
        id: i64_or(row, 0, 0)?,
        title: text_opt(row, 1)?,
        summary: text_opt(row, 2)?,
        content: text_opt(row, 3)?,
        tags: text_opt(row, 4)?,
        parent_id: i64_opt(row, 5)?,
        is_folder: bool_or_false(row, 6)?,
        is_deleted: bool_or_false(row, 7)?,
        created_at: ts(row, 8)?,
        updated_at: ts(row, 9)?,
        document_type: text_or(row, 10, "vaults")?,
        sort_order: i64_or(row, 11, 0)?,
    })
}

pub(crate) const TODO_COLS: &str =
    "id, content, created_at, start_time, end_time, status, urgency, assignee, reason";

pub(crate) fn todo(row: &MySqlRow) -> Result<Todo> {
    Ok(Todo {
        id: i64_or(row, 0, 0)?,
        content: text_opt(row, 1)?,
        created_at: ts(row, 2)?,
        start_time: ts_opt(row, 3)?,
        end_time: ts_opt(row, 4)?,
        status: i64_or(row, 5, 0)?,
        urgency: i64_or(row, 6, 0)?,
        assignee: text_opt(row, 7)?,
        reason: text_opt(row, 8)?,
    })
}

pub(crate) const TIP_COLS: &str = "id, content, created_at";

pub(crate) fn tip(row: &MySqlRow) -> Result<Tip> {
    Ok(Tip {
        id: i64_or(row, 0, 0)?,
        content: text_opt(row, 1)?,
        created_at: ts(row, 2)?,
    })
}

pub(crate) const CONVERSATION_COLS: &str =
    "id, title, user_id, page_name, status, metadata, created_at, updated_at";

pub(crate) fn conversation(row: &MySqlRow) -> Result<Conversation> {
    Ok(Conversation {
        id: i64_or(row, 0, 0)?,
        title: text_opt(row, 1)?,
        user_id: text_opt(row, 2)?,
        page_name: text_or(row, 3, "home")?,
        status: text_or(row, 4, "active")?,
        metadata: json::<JsonMap>(row, 5)?,
        created_at: ts(row, 6)?,
        updated_at: ts(row, 7)?,
    })
}

pub(crate) const MESSAGE_COLS: &str = "id, conversation_id, parent_message_id, role, content, \
     status, token_count, metadata, latency_ms, error_message, completed_at, created_at, updated_at";

pub(crate) fn message(row: &MySqlRow) -> Result<Message> {
    Ok(Message {
        id: i64_or(row, 0, 0)?,
        conversation_id: i64_or(row, 1, 0)?,
        parent_message_id: text_opt(row, 2)?,
        role: text(row, 3)?,
        content: text_or(row, 4, "")?,
        status: text_or(row, 5, "pending")?,
        token_count: i64_or(row, 6, 0)?,
        metadata: json::<JsonMap>(row, 7)?,
        latency_ms: i64_or(row, 8, 0)?,
        error_message: text_or(row, 9, "")?,
        completed_at: ts_opt(row, 10)?,
        created_at: ts(row, 11)?,
        updated_at: ts(row, 12)?,
        thinking: Vec::new(),
    })
}

pub(crate) const THINKING_COLS: &str =
    "id, message_id, content, stage, progress, sequence, metadata, created_at";

pub(crate) fn thinking(row: &MySqlRow) -> Result<MessageThinking> {
    Ok(MessageThinking {
        id: i64_or(row, 0, 0)?,
        message_id: i64_or(row, 1, 0)?,
        content: text_or(row, 2, "")?,
        stage: text_opt(row, 3)?,
        progress: row.try_get::<Option<f64>, _>(4).db()?.unwrap_or(0.0),
        sequence: i64_or(row, 5, 0)?,
        metadata: json::<JsonMap>(row, 6)?,
        created_at: ts(row, 7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_core::time::parse_timestamp;

    #[test]
    fn timestamps_store_as_naive_micros_in_the_naive_zone() {
        // Every zone-dependent test of this binary sets the same zone (UTC); the shared
        // MariaDB test in tests/naive_zone.rs uses UTC+8.
        storage_core::time::set_default_naive_zone(storage_core::time::NaiveZone::utc());
        let t = parse_timestamp("2025-03-01T10:00:00.123456789+08:00").unwrap();
        assert_eq!(
            ts_to_sql(&t).to_string(),
            "2025-03-01 02:00:00.123456",
            "UTC, truncated to microseconds"
        );
    }

    #[test]
    fn json_text_keeps_non_ascii() {
        assert_eq!(json_text(&["茶", "a\"b"]).unwrap(), r#"["茶", "a\"b"]"#);
    }

    /// The original's `json.dumps(..., ensure_ascii=False)` output, byte for byte.
    #[test]
    fn json_text_is_pythons_json_dumps() {
        let v = serde_json::json!({"k": [1, "x", {"n": null}], "b": true, "e": {}, "l": []});
        let mut m = JsonMap::new();
        for (k, v) in v.as_object().unwrap() {
            m.insert(k.clone(), v.clone());
        }
        // json.dumps({"k": [1, "x", {"n": None}], "b": True, "e": {}, "l": []}, ensure_ascii=False)
        let expected = r#"{"k": [1, "x", {"n": null}], "b": true, "e": {}, "l": []}"#;
        let got = json_text(&m).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(parsed, v);
        // Key order follows the map (serde_json's default map is sorted); compare separators.
        assert!(got.contains(r#""k": [1, "x", {"n": null}]"#), "{got}");
        assert!(
            got.contains(r#""e": {}, "#) && got.contains(r#""l": []"#),
            "{got}"
        );
        assert_eq!(got.len(), expected.len());
        assert_eq!(json_text(&Vec::<String>::new()).unwrap(), "[]");
        assert_eq!(
            json_text(&["a\nb", "\u{1}"]).unwrap(),
            r#"["a\nb", "\u0001"]"#
        );
    }
}
