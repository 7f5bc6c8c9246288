//! Mapping between our model and Qdrant points (payload + id), shared by every Qdrant mode.
//!
//! Contexts use the shared flat layout of [`storage_core::payload`] plus `original_id`, as the
//! original's `_context_to_qdrant_format`. Todo embeddings use the original's todo payload:
//! `todo_id`, `content`, `created_at` (ISO 8601) and the caller's metadata entries.

use serde_json::Value as Json;
use storage_core::Result;
use storage_core::model::{ContextType, JsonMap, ProcessedContext};
use storage_core::{StorageError, payload, validate};
use uuid::Uuid;

use crate::ids::point_uuid;

/// Payload field of a todo's id.
pub(crate) const TODO_FIELD_ID: &str = "todo_id";
/// Payload field of a todo's text.
pub(crate) const TODO_FIELD_CONTENT: &str = "content";
/// Payload field of a todo embedding's creation time.
pub(crate) const TODO_FIELD_CREATED_AT: &str = "created_at";

/// A context ready to be written: validated, flattened, keyed.
#[derive(Debug)]
pub(crate) struct ContextPoint {
    /// The point id derived from it.
    pub uuid: Uuid,
    /// The collection it goes to.
    pub context_type: ContextType,
    /// The flattened payload (with `original_id`).
    pub payload: JsonMap,
    /// The embedding.
    pub vector: Vec<f32>,
}

/// Validates a batch (ids, vectors, metadata, sizes) and encodes every context. Nothing is
/// returned, and so nothing can be written, unless every context passes.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] naming the context and the field.
pub(crate) fn encode_contexts(
    contexts: &[ProcessedContext],
    dimension: usize,
) -> Result<Vec<ContextPoint>> {
    validate::validate_contexts(contexts, dimension)?;
    contexts
        .iter()
        .map(|c| {
            let mut payload = payload::to_payload(c)?;
            payload.insert(
                payload::FIELD_ORIGINAL_ID.into(),
                Json::String(c.id.clone()),
            );
            validate::validate_payload_size(&c.id, serde_json::to_vec(&payload)?.len())?;
            let vector = c.vectorize.vector.clone().ok_or_else(|| {
                StorageError::invalid_input(format!("context '{}' has no vector", c.id))
            })?;
            Ok(ContextPoint {
                uuid: point_uuid(&c.id),
                context_type: c.context_type(),
                payload,
                vector,
            })
        })
        .collect()
}

/// Rebuilds a context from a stored payload; `point_id` is the fallback id for points that
/// lack `original_id` and `id`.
///
/// # Errors
/// [`storage_core::ErrorKind::DataCorrupted`] when the payload is not a context.
pub(crate) fn decode_context(
    payload: JsonMap,
    point_id: &str,
    vector: Option<Vec<f32>>,
) -> Result<ProcessedContext> {
    payload::from_payload(payload, point_id, vector)
}

/// The original's todo payload, with the caller's metadata entries at the top level.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] when a metadata key shadows `todo_id`, `content`
/// or `created_at`, or the payload exceeds [`validate::MAX_PAYLOAD_BYTES`].
pub(crate) fn todo_payload(
    todo_id: i64,
    content: &str,
    metadata: Option<&JsonMap>,
) -> Result<JsonMap> {
    let mut out = JsonMap::new();
    out.insert(TODO_FIELD_ID.into(), Json::from(todo_id));
    out.insert(TODO_FIELD_CONTENT.into(), Json::String(content.to_owned()));
    out.insert(
        TODO_FIELD_CREATED_AT.into(),
        Json::String(storage_core::time::format_timestamp(
            &storage_core::time::now(),
        )),
    );
    for (k, v) in metadata.into_iter().flatten() {
        if out.contains_key(k) {
            return Err(StorageError::invalid_input(format!(
                "todo {todo_id} metadata key '{k}' collides with the todo field of the same name"
            )));
        }
        out.insert(k.clone(), v.clone());
    }
    validate::validate_payload_size(&format!("todo {todo_id}"), serde_json::to_vec(&out)?.len())?;
    Ok(out)
}

/// `(todo_id, content)` from a stored todo payload; `point_num` is the fallback id.
///
/// # Errors
/// [`storage_core::ErrorKind::DataCorrupted`] when `content` is missing.
pub(crate) fn decode_todo(payload: &JsonMap, point_num: u64) -> Result<(i64, String)> {
    let todo_id = payload
        .get(TODO_FIELD_ID)
        .and_then(Json::as_i64)
        .or_else(|| i64::try_from(point_num).ok())
        .ok_or_else(|| {
            StorageError::data_corrupted(format!("todo point {point_num} has no valid todo_id"))
        })?;
    let content = payload
        .get(TODO_FIELD_CONTENT)
        .and_then(Json::as_str)
        .ok_or_else(|| StorageError::data_corrupted(format!("todo {todo_id} has no content")))?
        .to_owned();
    Ok((todo_id, content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use storage_core::ErrorKind;

    fn ctx(id: &str) -> ProcessedContext {
        let mut c = ProcessedContext::new(ContextType::Knowledge, "text");
        c.id = id.into();
        // Stored times have microsecond precision (the original's ISO format).
        c.properties = storage_core::model::ContextProperties::at(
            storage_core::time::parse_timestamp("2026-02-21T09:30:00.25+08:00").unwrap(),
        );
        c.vectorize.vector = Some(vec![0.6, 0.8]);
        c.properties.user_id = Some("u1".into());
        c.metadata.insert("project".into(), json!("alpha"));
        c
    }

    #[test]
    fn contexts_round_trip_with_original_id() {
        let c = ctx("k-1");
        let points = encode_contexts(std::slice::from_ref(&c), 2).unwrap();
        let p = &points[0];
        assert_eq!(p.uuid, point_uuid("k-1"));
        assert_eq!(p.payload["original_id"], "k-1");
        assert_eq!(p.payload["id"], "k-1");
        assert_eq!(p.context_type, ContextType::Knowledge);
        let back =
            decode_context(p.payload.clone(), &p.uuid.to_string(), Some(vec![0.6, 0.8])).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn invalid_batches_encode_nothing() {
        let mut bad = ctx("b");
        bad.vectorize.vector = Some(vec![1.0, f32::NAN]);
        assert_eq!(
            encode_contexts(&[ctx("a"), bad], 2).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert!(
            encode_contexts(&[ctx("a")], 3).is_err(),
            "dimension mismatch"
        );
        let mut big = ctx("big");
        big.metadata.insert(
            "blob".into(),
            json!("x".repeat(validate::MAX_PAYLOAD_BYTES)),
        );
        let e = encode_contexts(&[big], 2).unwrap_err();
        assert!(e.to_string().contains("payload"), "{e}");
    }

    #[test]
    fn todo_payload_matches_the_original() {
        let meta = json!({"urgency": 2}).as_object().unwrap().clone();
        let p = todo_payload(5, "buy milk", Some(&meta)).unwrap();
        assert_eq!(p["todo_id"], 5);
        assert_eq!(p["content"], "buy milk");
        assert_eq!(p["urgency"], 2);
        assert!(p["created_at"].as_str().unwrap().starts_with("20"));
        assert_eq!(decode_todo(&p, 5).unwrap(), (5, "buy milk".to_owned()));
        let shadow = json!({"content": "x"}).as_object().unwrap().clone();
        assert!(todo_payload(5, "a", Some(&shadow)).is_err());
    }
}
