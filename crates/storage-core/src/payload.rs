//! Flattening a [`ProcessedContext`] into one flat JSON object (a vector database payload or
//! metadata record) and back.
//!
//! The layout is the original's (`_context_to_qdrant_format` / `_qdrant_result_to_context` in
//! its Qdrant and Chroma backends), so points written by the original read back here and the
//! other way round:
//!
//! * `id`: the context id; per-backend code may add `original_id` (Qdrant).
//! * extracted data, properties and metadata entries side by side at the top level;
//! * `document`: the text to embed (`vectorize.text`);
//! * datetimes as ISO 8601 strings plus `<field>_ts` integer seconds (`create_time_ts`, ...);
//! * lists and objects (`keywords`, `entities`, `children_ids`, `raw_properties`, metadata
//!   values) as JSON-encoded strings;
//! * `None` fields absent.
//!
//! On the way back, keys that are not context fields become metadata; metadata strings that
//! start with `{` or `[` and parse as JSON are decoded, as the original does.
//!
//! Reserved by the layout, and so refused in metadata on write
//! ([`crate::validate::validate_context`]): every context field name ([`is_reserved_key`]),
//! keys ending in [`TS_SUFFIX`] (`_ts`), `null` values (absent fields), strings holding JSON
//! lists or objects ([`reads_back_as_json`]), and values nested deeper than
//! [`crate::validate::MAX_JSON_DEPTH`].
//! `content_format` and `image_path` are stored only when they differ from the defaults,
//! where the original dropped them.

use serde_json::{Map, Value as Json};

use crate::error::{Result, StorageError};
use crate::model::{
    ContentFormat, ContextProperties, ExtractedData, JsonMap, ProcessedContext, Vectorize,
};
use crate::time::{Parsed, format_timestamp, parse_aware_or_naive, unix_seconds};

/// Payload key of the context id.
pub const FIELD_ID: &str = "id";
/// Payload key of the original string id, in backends that key points by UUID.
pub const FIELD_ORIGINAL_ID: &str = "original_id";
/// Payload key of the embedded text.
pub const FIELD_DOCUMENT: &str = "document";
/// Payload key of [`ContextProperties::is_happened`], spelled as the original spells it.
pub const FIELD_IS_HAPPEND: &str = "is_happend";
/// The spelling earlier versions of this library wrote; read as [`FIELD_IS_HAPPEND`], never
/// written.
pub const FIELD_IS_HAPPENED_ALIAS: &str = "is_happened";

const EXTRACTED_FIELDS: &[&str] = &[
    "title",
    "summary",
    "keywords",
    "entities",
    "context_type",
    "confidence",
    "importance",
];

const PROPERTY_FIELDS: &[&str] = &[
    "raw_properties",
    "create_time",
    "event_time",
    "is_processed",
    "has_compression",
    "update_time",
    "call_count",
    "merge_count",
    "duration_count",
    "enable_merge",
    FIELD_IS_HAPPEND,
    FIELD_IS_HAPPENED_ALIAS,
    "last_call_time",
    "file_path",
    "raw_type",
    "raw_id",
    "user_id",
    "device_id",
    "agent_id",
    "hierarchy_level",
    "parent_id",
    "children_ids",
    "time_bucket",
    "source_file_key",
];

/// Suffix of the epoch-seconds companions of datetime fields (`create_time_ts`); metadata
/// keys may not end in it.
pub const TS_SUFFIX: &str = "_ts";

/// Whether a metadata string would read back as a list or object: the layout stores lists
/// and objects as JSON text and decodes strings that start with `{` or `[` and parse (as the
/// original does), so such strings cannot be stored as strings.
pub fn reads_back_as_json(text: &str) -> bool {
    (text.starts_with('{') || text.starts_with('['))
        && matches!(
            serde_json::from_str::<Json>(text),
            Ok(Json::Object(_) | Json::Array(_))
        )
}

/// Datetime fields; each also has a `<field>_ts` integer companion.
pub const DATETIME_FIELDS: &[&str] =
    &["create_time", "event_time", "update_time", "last_call_time"];

const VECTORIZE_FIELDS: &[&str] = &["content_format", "image_path", "text", "vector"];

const OTHER_RESERVED: &[&str] = &[
    FIELD_ID,
    FIELD_ORIGINAL_ID,
    FIELD_DOCUMENT,
    "create_time_ts",
    "event_time_ts",
    "update_time_ts",
    "last_call_time_ts",
    "properties",
    "extracted_data",
    "vectorize",
    "metadata",
];

/// The type of a top-level payload field, for backends that declare a schema or index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    /// A string (keywords, ids, ISO datetimes, JSON-encoded lists).
    Keyword,
    /// An integer.
    Integer,
    /// A boolean.
    Bool,
}

/// Fields worth a payload index, with their types: the tenant triple, the type, hierarchy,
/// source tracking and the `_ts` companions.
pub const INDEXED_FIELDS: &[(&str, FieldType)] = &[
    ("user_id", FieldType::Keyword),
    ("device_id", FieldType::Keyword),
    ("agent_id", FieldType::Keyword),
    ("context_type", FieldType::Keyword),
    ("hierarchy_level", FieldType::Integer),
    ("time_bucket", FieldType::Keyword),
    ("source_file_key", FieldType::Keyword),
    ("create_time_ts", FieldType::Integer),
    ("event_time_ts", FieldType::Integer),
    ("update_time_ts", FieldType::Integer),
];

/// Whether `key` is a context field name, so that metadata must not use it.
pub fn is_reserved_key(key: &str) -> bool {
    EXTRACTED_FIELDS.contains(&key)
        || PROPERTY_FIELDS.contains(&key)
        || VECTORIZE_FIELDS.contains(&key)
        || OTHER_RESERVED.contains(&key)
}

/// Fields stored as JSON-encoded strings, which filters cannot compare element-wise.
pub const JSON_ENCODED_FIELDS: &[&str] =
    &["keywords", "entities", "children_ids", "raw_properties"];

/// Flattens a context into the original's payload layout (see the module docs). The vector is
/// not included.
///
/// # Errors
/// Only if serialisation fails, which the model's types rule out in practice.
pub fn to_payload(context: &ProcessedContext) -> Result<JsonMap> {
    let mut out = Map::new();
    out.insert(FIELD_ID.into(), Json::String(context.id.clone()));

    let extracted = serde_json::to_value(&context.extracted_data)?;
    let properties = serde_json::to_value(&context.properties)?;
    for section in [extracted, properties] {
        if let Json::Object(map) = section {
            for (k, v) in map {
                insert_flat(&mut out, k, v);
            }
        }
    }
    for (k, v) in &context.metadata {
        insert_flat(&mut out, k.clone(), v.clone());
    }
    // `_ts` companions, from the typed values (not re-parsed strings).
    let p = &context.properties;
    for (name, t) in [
        ("create_time", Some(&p.create_time)),
        ("event_time", Some(&p.event_time)),
        ("update_time", Some(&p.update_time)),
        ("last_call_time", p.last_call_time.as_ref()),
    ] {
        if let Some(t) = t {
            out.insert(name.into(), Json::String(format_timestamp(t)));
            out.insert(format!("{name}_ts"), Json::from(unix_seconds(t)));
        }
    }
    let v = &context.vectorize;
    if let Some(text) = &v.text {
        out.insert(FIELD_DOCUMENT.into(), Json::String(text.clone()));
    }
    if v.content_format != ContentFormat::Text {
        out.insert(
            "content_format".into(),
            serde_json::to_value(v.content_format)?,
        );
    }
    if let Some(path) = &v.image_path {
        out.insert("image_path".into(), Json::String(path.clone()));
    }
    Ok(out)
}

fn insert_flat(out: &mut JsonMap, key: String, value: Json) {
    match value {
        Json::Null => {}
        Json::Array(_) | Json::Object(_) => {
            out.insert(key, Json::String(value.to_string()));
        }
        scalar => {
            out.insert(key, scalar);
        }
    }
}

/// Rebuilds a context from a flattened payload.
///
/// The id is `original_id`, else `id`, else `fallback_id` (the point id). `vector` is put into
/// `vectorize.vector` as given.
///
/// # Errors
/// [`crate::ErrorKind::DataCorrupted`] naming the id when a required field (`context_type`,
/// `create_time`, `event_time`, `update_time`) is missing or a field has the wrong type.
pub fn from_payload(
    mut payload: JsonMap,
    fallback_id: &str,
    vector: Option<Vec<f32>>,
) -> Result<ProcessedContext> {
    let id = match payload.remove(FIELD_ORIGINAL_ID) {
        Some(Json::String(s)) => s,
        _ => match payload.get(FIELD_ID) {
            Some(Json::String(s)) => s.clone(),
            _ => fallback_id.to_owned(),
        },
    };
    payload.remove(FIELD_ID);

    let mut extracted = Map::new();
    let mut properties = Map::new();
    let mut vectorize = Map::new();
    let mut metadata = Map::new();

    // The original wrote naive local times next to exact epoch seconds (`int(dt.timestamp())`):
    // the pair gives the instant and the writer's offset, whatever zone this machine is in.
    for name in DATETIME_FIELDS {
        resolve_naive_with_epoch(&mut payload, name);
    }

    let derived_ts: Vec<String> = payload
        .keys()
        .filter_map(|k| k.strip_suffix("_ts"))
        .filter(|base| payload.contains_key(*base))
        .map(|base| format!("{base}_ts"))
        .collect();
    for k in derived_ts {
        payload.remove(&k);
    }

    // Both spellings at once would be a duplicate field for serde: the original's wins.
    if payload.contains_key(FIELD_IS_HAPPEND) {
        payload.remove(FIELD_IS_HAPPENED_ALIAS);
    }

    if let Some(doc) = payload.remove(FIELD_DOCUMENT) {
        vectorize.insert("text".into(), doc);
    }

    for (key, value) in payload {
        let k = key.as_str();
        if EXTRACTED_FIELDS.contains(&k) {
            let value = decode_typed(k, value);
            extracted.insert(key, value);
        } else if PROPERTY_FIELDS.contains(&k) {
            let value = decode_typed(k, value);
            properties.insert(key, value);
        } else if VECTORIZE_FIELDS.contains(&k) {
            if k == "vector" {
                continue; // vectors come from the engine, not the payload
            }
            vectorize.entry(key).or_insert(value);
        } else {
            metadata.insert(key, decode_loose(value));
        }
    }

    let corrupt = |what: &str, e: serde_json::Error| {
        StorageError::data_corrupted(format!("stored context '{id}' has invalid {what}: {e}"))
    };
    let extracted_data: ExtractedData = serde_json::from_value(Json::Object(extracted))
        .map_err(|e| corrupt("extracted data", e))?;
    let properties: ContextProperties =
        serde_json::from_value(Json::Object(properties)).map_err(|e| corrupt("properties", e))?;
    let mut vectorize: Vectorize =
        serde_json::from_value(Json::Object(vectorize)).map_err(|e| corrupt("vectorize", e))?;
    vectorize.vector = vector;

    Ok(ProcessedContext {
        id,
        properties,
        extracted_data,
        vectorize,
        metadata,
    })
}

/// Replaces a naive datetime string by the aware one its `<name>_ts` companion pins down.
/// Anything else (aware strings, no companion, a companion that disagrees by a day or more) is
/// left for the model's parser, which reads naive values in the default naive zone.
fn resolve_naive_with_epoch(payload: &mut JsonMap, name: &str) {
    let Some(Json::String(text)) = payload.get(name) else {
        return;
    };
    let Ok(Parsed::Naive(naive)) = parse_aware_or_naive(text) else {
        return;
    };
    let Some(epoch) = payload.get(&format!("{name}_ts")).and_then(Json::as_i64) else {
        return;
    };
    // `_ts` is truncated toward zero: whole seconds of the wall clock minus it is the offset,
    // up to a second, so round to whole minutes (every zone in use today has them).
    let wall = naive.and_utc().timestamp();
    let Some(diff) = wall.checked_sub(epoch) else {
        return;
    };
    let minutes = (diff as f64 / 60.0).round() as i64;
    if minutes.abs() >= 24 * 60 {
        return;
    }
    let Some(offset) = chrono::FixedOffset::east_opt((minutes * 60) as i32) else {
        return;
    };
    if let chrono::LocalResult::Single(t) = chrono::TimeZone::from_local_datetime(&offset, &naive) {
        payload.insert(name.to_owned(), Json::String(format_timestamp(&t)));
    }
}

/// Known list fields are JSON-decoded when stored as strings (they may also arrive as native
/// arrays from backends that keep them so).
fn decode_typed(key: &str, value: Json) -> Json {
    match (&value, JSON_ENCODED_FIELDS.contains(&key)) {
        (Json::String(s), true) => serde_json::from_str(s).unwrap_or(value),
        _ => value,
    }
}

fn decode_loose(value: Json) -> Json {
    match &value {
        Json::String(s) if reads_back_as_json(s) => serde_json::from_str(s).unwrap_or(value),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContextSource, ContextType, RawContextProperties};
    use crate::time::parse_timestamp;
    use serde_json::json;

    fn full_context() -> ProcessedContext {
        let t = parse_timestamp("2026-02-21T09:30:00.5+08:00").unwrap();
        let mut c = ProcessedContext::new(ContextType::Event, "met the team");
        c.id = "ev-1".into();
        c.properties.create_time = t;
        c.properties.event_time = t;
        c.properties.update_time = t;
        c.properties.last_call_time = Some(t);
        c.properties.user_id = Some("u1".into());
        c.properties.device_id = Some("d1".into());
        c.properties.agent_id = Some("a1".into());
        c.properties.hierarchy_level = 1;
        c.properties.children_ids = vec!["c1".into(), "c2".into()];
        c.properties.time_bucket = Some("2026-02-21".into());
        c.properties.source_file_key = Some("u1:notes.md".into());
        c.properties.raw_properties.push(RawContextProperties {
            content_format: ContentFormat::Text,
            source: ContextSource::ChatLog,
            create_time: t,
            object_id: "o1".into(),
            content_path: None,
            content_type: None,
            content_text: Some("hi".into()),
            filter_path: None,
            additional_info: Some(json!({"k": [1, 2]}).as_object().unwrap().clone()),
            enable_merge: true,
            user_id: Some("u1".into()),
            device_id: None,
            agent_id: None,
        });
        c.extracted_data.title = Some("[WIP] standup".into());
        c.extracted_data.keywords = vec!["team".into(), "meeting".into()];
        c.extracted_data.importance = 7;
        c.metadata.insert("project".into(), json!("alpha"));
        c.metadata.insert("tags".into(), json!(["x", "y"]));
        c.metadata.insert("score_ts".into(), json!(5));
        c
    }

    #[test]
    fn flattens_like_the_original() {
        let p = to_payload(&full_context()).unwrap();
        assert_eq!(p["id"], "ev-1");
        assert_eq!(p["document"], "met the team");
        assert_eq!(p["context_type"], "event");
        assert_eq!(p["keywords"], r#"["team","meeting"]"#);
        assert_eq!(p["children_ids"], r#"["c1","c2"]"#);
        assert_eq!(p["create_time"], "2026-02-21T09:30:00.500000+08:00");
        assert_eq!(p["create_time_ts"], 1771637400);
        assert_eq!(p["hierarchy_level"], 1);
        assert_eq!(p["tags"], r#"["x","y"]"#);
        assert!(!p.contains_key("summary"), "None fields are absent");
        assert!(
            !p.contains_key("content_format"),
            "default format is not stored"
        );
    }

    #[test]
    fn round_trips_every_field() {
        let mut c = full_context();
        c.vectorize.content_format = ContentFormat::Image;
        c.vectorize.image_path = Some("/tmp/a.png".into());
        let p = to_payload(&c).unwrap();
        let back = from_payload(p, "ignored", Some(vec![0.5])).unwrap();
        c.vectorize.vector = Some(vec![0.5]);
        assert_eq!(back, c);
    }

    #[test]
    fn reads_a_payload_written_by_the_original() {
        // As the original's Qdrant backend stored it (naive times, JSON-encoded lists).
        let p = json!({
            "id": "abc", "original_id": "abc", "title": "T", "keywords": "[\"a\"]",
            "entities": "[]", "context_type": "knowledge", "confidence": 0, "importance": 3,
            "document": "body", "raw_properties": "[]",
            "create_time": "2025-05-01T08:00:00", "create_time_ts": 1746086400,
            "event_time": "2025-05-01T08:00:00", "event_time_ts": 1746086400,
            "update_time": "2025-05-01T08:00:00", "update_time_ts": 1746086400,
            "is_processed": false, "has_compression": false, "call_count": 0,
            "merge_count": 0, "duration_count": 1, "enable_merge": false,
            "is_happend": true, "hierarchy_level": 0, "children_ids": "[]",
            "user_id": "u1", "custom": "{\"a\": 1}"
        });
        let c = from_payload(p.as_object().unwrap().clone(), "uuid", None).unwrap();
        assert_eq!(c.id, "abc");
        assert_eq!(c.extracted_data.keywords, vec!["a"]);
        assert_eq!(c.vectorize.text.as_deref(), Some("body"));
        assert_eq!(c.metadata["custom"], json!({"a": 1}));
        assert!(!c.metadata.contains_key("create_time_ts"));
        assert!(
            c.properties.is_happened,
            "the original's `is_happend` is read"
        );
        assert!(!c.metadata.contains_key("is_happend"));
    }

    #[test]
    fn is_happened_is_written_in_the_original_spelling_and_both_are_read() {
        let mut c = full_context();
        c.properties.is_happened = true;
        let p = to_payload(&c).unwrap();
        assert_eq!(p.get(FIELD_IS_HAPPEND), Some(&json!(true)));
        assert!(!p.contains_key(FIELD_IS_HAPPENED_ALIAS));

        // What earlier versions of this library wrote.
        let mut old = p.clone();
        old.remove(FIELD_IS_HAPPEND);
        old.insert(FIELD_IS_HAPPENED_ALIAS.into(), json!(true));
        let back = from_payload(old, "x", None).unwrap();
        assert!(back.properties.is_happened);
        assert!(back.metadata.is_empty() || !back.metadata.contains_key("is_happened"));

        // Both at once: the original's spelling wins, nothing leaks into metadata.
        let mut both = p;
        both.insert(FIELD_IS_HAPPENED_ALIAS.into(), json!(false));
        let back = from_payload(both, "x", None).unwrap();
        assert!(back.properties.is_happened);
        assert!(!back.metadata.contains_key("is_happened"));
        assert!(!back.metadata.contains_key("is_happend"));
        assert!(is_reserved_key("is_happend") && is_reserved_key("is_happened"));
    }

    #[test]
    fn naive_times_of_the_original_take_their_offset_from_the_ts_companion() {
        // Written by the original in UTC+8: naive local strings, exact epoch seconds.
        let p = json!({
            "id": "n1", "context_type": "event",
            "create_time": "2025-05-01 08:00:00.250000", "create_time_ts": 1746057600,
            "event_time": "2025-05-01T08:00:00", "event_time_ts": 1746057600,
            "update_time": "2025-05-01T08:00:00", "update_time_ts": 1746057600
        });
        let c = from_payload(p.as_object().unwrap().clone(), "n1", None).unwrap();
        for t in [
            c.properties.create_time,
            c.properties.event_time,
            c.properties.update_time,
        ] {
            assert_eq!(t.offset().local_minus_utc(), 8 * 3600);
            assert_eq!(t.timestamp(), 1746057600);
        }
        assert_eq!(c.properties.create_time.timestamp_subsec_millis(), 250);
    }

    #[test]
    fn missing_required_fields_are_data_corruption() {
        let p = json!({"id": "x", "context_type": "event"});
        let e = from_payload(p.as_object().unwrap().clone(), "x", None).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::DataCorrupted);
        assert!(e.to_string().contains("'x'"));
    }

    #[test]
    fn reserved_keys() {
        assert!(is_reserved_key("user_id"));
        assert!(is_reserved_key("create_time_ts"));
        assert!(is_reserved_key("document"));
        assert!(!is_reserved_key("project"));
    }
}
