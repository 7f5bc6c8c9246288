//! Mapping between [`ProcessedContext`] and VikingDB data items (`{"id", "vector", ...fields}`),
//! in one place with round-trip tests.

use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use storage_core::model::JsonMap;
use storage_core::payload::{DATETIME_FIELDS, from_payload, to_payload};
use storage_core::validate::validate_payload_size;
use storage_core::{ProcessedContext, Result, StorageError};

use crate::schema::{
    DATA_TYPE_CONTEXT, FIELD_CONTENT, FIELD_DATA_TYPE, FIELD_ID, FIELD_METADATA_JSON,
    FIELD_METADATA_KEYS, FIELD_SCROLL_KEY, FIELD_TODO_ID, FIELD_VECTOR, FieldType,
    OPTIONAL_STRINGS, Schema,
};

/// Fields holding integers; a server may return them as floats (`3.0`).
const INTEGER_FIELDS: &[&str] = &[
    "confidence",
    "importance",
    "call_count",
    "merge_count",
    "duration_count",
    "hierarchy_level",
    "create_time_ts",
    "event_time_ts",
    "update_time_ts",
    "last_call_time_ts",
];

/// The cursor key of an id: the first 63 bits of its SHA-256, a non-negative `int64`.
pub(crate) fn scroll_key(id: &str) -> i64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(b) >> 1) as i64
}

/// The data item of a context (vector included). The context must have passed
/// `validate_context`.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] when a declared metadata field has a value of
/// the wrong type or the payload exceeds the size limit.
pub(crate) fn to_item(context: &ProcessedContext, schema: &Schema) -> Result<JsonMap> {
    let mut item = to_payload(context)?;
    let mut undeclared = Map::new();
    let mut declared = Vec::new();
    for (key, value) in &context.metadata {
        if schema.is_declared_metadata(key) {
            let (t, _) = schema.field(key).unwrap_or((FieldType::Str, true));
            let stored = item.get(key).cloned().unwrap_or(Json::Null);
            let ok = match t {
                FieldType::Str => stored.is_string(),
                // `int64` holds i64 only (a u64 above i64::MAX is refused by the server,
                // possibly after earlier chunks of the batch were written).
                FieldType::Int64 => stored.is_i64(),
                // `float32`: finite and within f32's range (1e300 is not a float32).
                FieldType::Float32 => stored
                    .as_f64()
                    .is_some_and(|x| x.is_finite() && x.abs() <= f64::from(f32::MAX)),
                FieldType::Bool => stored.is_boolean(),
            } || stored.is_null();
            if !ok {
                return Err(StorageError::invalid_input(format!(
                    "context '{}' metadata '{key}' is {value}, but the collection declares it as {}",
                    context.id,
                    t.wire()
                )));
            }
            if !stored.is_null() {
                declared.push(Json::String(key.clone()));
            }
        } else {
            item.remove(key);
            undeclared.insert(key.clone(), value.clone());
        }
    }
    if !undeclared.is_empty() {
        item.insert(
            FIELD_METADATA_JSON.into(),
            Json::String(Json::Object(undeclared).to_string()),
        );
    }
    if !declared.is_empty() {
        item.insert(
            FIELD_METADATA_KEYS.into(),
            Json::String(Json::Array(declared).to_string()),
        );
    }
    if let Some(level) = item.get("hierarchy_level").and_then(Json::as_f64) {
        item.insert("hierarchy_level".into(), Json::from(level));
    }
    item.insert(
        FIELD_DATA_TYPE.into(),
        Json::String(DATA_TYPE_CONTEXT.into()),
    );
    item.insert(FIELD_SCROLL_KEY.into(), Json::from(scroll_key(&context.id)));
    let encoded_len = serde_json::to_string(&item)?.len();
    validate_payload_size(&context.id, encoded_len)?;
    let vector = context.vectorize.vector.as_deref().unwrap_or_default();
    item.insert(FIELD_VECTOR.into(), Json::from(vector.to_vec()));
    item.insert(FIELD_ID.into(), Json::String(context.id.clone()));
    Ok(item)
}

/// Reads a vector out of a JSON array.
pub(crate) fn read_vector(value: Option<&Json>) -> Option<Vec<f32>> {
    value.and_then(Json::as_array).map(|a| {
        a.iter()
            .map(|x| x.as_f64().unwrap_or_default() as f32)
            .collect()
    })
}

/// Rebuilds a context from a data item's id and fields.
///
/// # Errors
/// [`storage_core::ErrorKind::DataCorrupted`] naming the id when fields are missing or of
/// the wrong type.
pub(crate) fn from_fields(
    id: &str,
    mut fields: JsonMap,
    schema: &Schema,
    need_vector: bool,
) -> Result<ProcessedContext> {
    let vector = if need_vector {
        let v = read_vector(fields.get(FIELD_VECTOR)).ok_or_else(|| {
            StorageError::data_corrupted(format!(
                "stored context '{id}' came back without its vector"
            ))
        })?;
        Some(v)
    } else {
        None
    };
    for internal in [
        FIELD_VECTOR,
        FIELD_DATA_TYPE,
        FIELD_SCROLL_KEY,
        FIELD_TODO_ID,
        FIELD_CONTENT,
    ] {
        fields.remove(internal);
    }
    let present: Vec<String> = match fields.remove(FIELD_METADATA_KEYS) {
        Some(Json::String(s)) if !s.is_empty() => serde_json::from_str(&s).map_err(|e| {
            StorageError::data_corrupted(format!(
                "stored context '{id}' has invalid metadata_keys: {e}"
            ))
        })?,
        _ => Vec::new(),
    };
    for name in schema.declared_metadata() {
        if !present.iter().any(|p| p == name) {
            fields.remove(name);
        }
    }
    let undeclared = match fields.remove(FIELD_METADATA_JSON) {
        Some(Json::String(s)) if !s.is_empty() => match serde_json::from_str(&s) {
            Ok(Json::Object(m)) => m,
            _ => {
                return Err(StorageError::data_corrupted(format!(
                    "stored context '{id}' has invalid metadata_json"
                )));
            }
        },
        _ => Map::new(),
    };
    for key in OPTIONAL_STRINGS {
        if fields.get(*key).is_some_and(|v| v.as_str() == Some("")) {
            fields.remove(*key);
        }
    }
    for base in DATETIME_FIELDS {
        if !fields.contains_key(*base) {
            fields.remove(&format!("{base}_ts"));
        }
    }
    for key in INTEGER_FIELDS {
        if let Some(v) = fields.get(*key)
            && !v.is_i64()
            && let Some(f) = v.as_f64()
            && f.fract() == 0.0
        {
            fields.insert((*key).to_owned(), Json::from(f as i64));
        }
    }
    fields.insert(FIELD_ID.into(), Json::String(id.to_owned()));
    let mut context = from_payload(fields, id, vector)?;
    for (k, v) in undeclared {
        context.metadata.insert(k, v);
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MetadataField, MetadataFieldType};
    use serde_json::json;
    use storage_core::ContextType;

    fn schema() -> Schema {
        Schema::new(
            3,
            &[MetadataField {
                name: "project".into(),
                field_type: MetadataFieldType::String,
            }],
        )
    }

    fn context() -> ProcessedContext {
        let mut c = ProcessedContext::new(ContextType::Event, "hello");
        c.id = "ev-1".into();
        let t = storage_core::time::parse_timestamp("2026-02-21T10:00:00+00:00").unwrap();
        c.properties.create_time = t;
        c.properties.event_time = t;
        c.properties.update_time = t;
        c.vectorize.vector = Some(vec![0.5, 0.25, 1.0]);
        c.properties.hierarchy_level = 2;
        c.properties.user_id = Some("u1".into());
        c.extracted_data.keywords = vec!["a".into()];
        c.metadata.insert("project".into(), json!("alpha"));
        c.metadata.insert("nested".into(), json!({"x": [1, 2]}));
        c
    }

    #[test]
    fn item_layout() {
        let item = to_item(&context(), &schema()).unwrap();
        assert_eq!(item["id"], "ev-1");
        assert_eq!(item["hierarchy_level"], json!(2.0));
        assert_eq!(item["data_type"], "context");
        assert_eq!(item["project"], "alpha");
        assert_eq!(item["metadata_json"], r#"{"nested":{"x":[1,2]}}"#);
        assert_eq!(item["metadata_keys"], r#"["project"]"#);
        assert!(item["scroll_key"].as_i64().unwrap() >= 0);
        assert_eq!(item["vector"], json!([0.5, 0.25, 1.0]));
    }

    #[test]
    fn round_trip_including_server_defaults() {
        let c = context();
        let s = schema();
        let mut item = to_item(&c, &s).unwrap();
        item.remove("id");
        // What a real server adds: defaults for unset fields, floats for numbers.
        item.insert("summary".into(), json!(""));
        item.insert("last_call_time_ts".into(), json!(0));
        item.insert("importance".into(), json!(0.0));
        let back = from_fields("ev-1", item, &s, true).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn wrongly_typed_declared_metadata_is_refused() {
        let mut c = context();
        c.metadata.insert("project".into(), json!(5));
        let e = to_item(&c, &schema()).unwrap_err();
        assert_eq!(e.kind(), storage_core::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("project"), "{e}");
    }
}
