//! A `ProcessedContext` ↔ a Chroma record (id, document, embedding, metadata), in the
//! original's layout (`_context_to_chroma_format` / `_chroma_result_to_context`): the shared
//! flat payload of `storage_core::payload` minus `id` (the record id) and `document` (the
//! record's document). Every metadata value is a Chroma scalar: strings, integers, floats,
//! booleans; lists and maps are JSON strings, `None` fields are absent, datetimes are ISO
//! strings with `<field>_ts` integer seconds.

use serde_json::{Value as Json, json};
use storage_core::model::{JsonMap, ProcessedContext};
use storage_core::{Result, StorageError, payload};

use crate::core::GetResponse;

/// One record ready for `upsert`.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub id: String,
    pub document: Option<String>,
    pub metadata: JsonMap,
    pub embedding: Vec<f32>,
}

/// Flattens a validated context (its vector is present).
///
/// # Errors
/// `InvalidInput` naming the context and the key when a metadata integer is outside the
/// signed 64-bit range: Chroma stores integers as `i64` and silently turns a larger one into
/// a float (`u64::MAX` reads back as `1.8446744073709552e19`), which would corrupt the value.
pub(crate) fn to_record(c: &ProcessedContext) -> Result<Record> {
    let mut metadata = payload::to_payload(c)?;
    metadata.remove(payload::FIELD_ID);
    check_integers(&format!("context '{}'", c.id), &metadata)?;
    let document = match metadata.remove(payload::FIELD_DOCUMENT) {
        Some(Json::String(s)) => Some(s),
        _ => None,
    };
    Ok(Record {
        id: c.id.clone(),
        document,
        metadata,
        embedding: c.vectorize.vector.clone().unwrap_or_default(),
    })
}

/// Refuses metadata integers outside the signed 64-bit range: Chroma stores integers as
/// `i64` and silently turns a larger one into a float (`u64::MAX` reads back as
/// `1.8446744073709552e19`). `owner` names the record in the message.
///
/// # Errors
/// `InvalidInput` naming the owner, the key, the value and the bound.
pub(crate) fn check_integers(owner: &str, metadata: &JsonMap) -> Result<()> {
    for (key, value) in metadata {
        if let Json::Number(n) = value
            && n.is_u64()
            && n.as_i64().is_none()
        {
            return Err(StorageError::invalid_input(format!(
                "{owner} metadata '{key}' is {n}, beyond the signed 64-bit integer range \
                 Chroma stores (at most {}); it would be silently turned into a float",
                i64::MAX
            )));
        }
    }
    Ok(())
}

/// The `upsert` request body of a batch of records.
pub(crate) fn upsert_body(records: &[Record]) -> Json {
    json!({
        "ids": records.iter().map(|r| &r.id).collect::<Vec<_>>(),
        "embeddings": records.iter().map(|r| &r.embedding).collect::<Vec<_>>(),
        "documents": records.iter().map(|r| &r.document).collect::<Vec<_>>(),
        "metadatas": records.iter().map(|r| &r.metadata).collect::<Vec<_>>(),
    })
}

/// The flat payload of a stored record: its metadata plus `id` and `document`, the form
/// `storage_core::payload::from_payload` and `Filter::matches` read.
pub(crate) fn payload_of(id: &str, document: Option<&str>, metadata: Option<JsonMap>) -> JsonMap {
    let mut p = metadata.unwrap_or_default();
    p.insert(payload::FIELD_ID.into(), Json::String(id.to_owned()));
    if let Some(d) = document {
        p.insert(payload::FIELD_DOCUMENT.into(), Json::String(d.to_owned()));
    }
    p
}

/// Rebuilds a context from a stored record.
///
/// # Errors
/// `DataCorrupted` naming the id when required fields are missing or mistyped.
pub(crate) fn from_parts(
    id: &str,
    document: Option<&str>,
    metadata: Option<JsonMap>,
    embedding: Option<Vec<f32>>,
) -> Result<ProcessedContext> {
    payload::from_payload(payload_of(id, document, metadata), id, embedding)
}

/// One row of a `get` response, by index.
pub(crate) struct Row {
    pub id: String,
    pub document: Option<String>,
    pub metadata: Option<JsonMap>,
    pub embedding: Option<Vec<f32>>,
}

/// Splits a `get` response into rows, checking that the parallel arrays agree.
pub(crate) fn rows(resp: GetResponse) -> Result<Vec<Row>> {
    let n = resp.ids.len();
    let check = |what: &str, len: Option<usize>| match len {
        Some(l) if l != n => Err(StorageError::backend(format!(
            "malformed get response: {l} {what} for {n} ids"
        ))),
        _ => Ok(()),
    };
    check("documents", resp.documents.as_ref().map(Vec::len))?;
    check("metadatas", resp.metadatas.as_ref().map(Vec::len))?;
    check("embeddings", resp.embeddings.as_ref().map(Vec::len))?;
    let mut docs = resp.documents.map(Vec::into_iter);
    let mut metas = resp.metadatas.map(Vec::into_iter);
    let mut embs = resp.embeddings.map(Vec::into_iter);
    Ok(resp
        .ids
        .into_iter()
        .map(|id| Row {
            id,
            document: docs.as_mut().and_then(|d| d.next().flatten()),
            metadata: metas.as_mut().and_then(|m| m.next().flatten()),
            embedding: embs.as_mut().and_then(|e| e.next().flatten()),
        })
        .collect())
}

impl Row {
    /// The flat payload (see [`payload_of`]), for residual filters.
    pub(crate) fn payload(&self) -> JsonMap {
        payload_of(&self.id, self.document.as_deref(), self.metadata.clone())
    }

    /// The context, with the vector when it was fetched and `need_vector` is set.
    pub(crate) fn into_context(self, need_vector: bool) -> Result<ProcessedContext> {
        let embedding = if need_vector { self.embedding } else { None };
        from_parts(&self.id, self.document.as_deref(), self.metadata, embedding)
    }
}

/// Flattens todo metadata into Chroma scalars (lists and maps JSON-encoded, nulls dropped).
pub(crate) fn flatten_metadata(meta: &JsonMap) -> JsonMap {
    meta.iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let v = match v {
                Json::Array(_) | Json::Object(_) => Json::String(v.to_string()),
                scalar => scalar.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_core::model::ContextType;

    #[test]
    fn record_splits_id_and_document_and_round_trips() {
        let mut c = ProcessedContext::new(ContextType::Knowledge, "body text");
        c.id = "k1".into();
        let t = storage_core::time::parse_timestamp("2026-02-21T09:30:00.5+08:00").unwrap();
        c.properties.create_time = t;
        c.properties.event_time = t;
        c.properties.update_time = t;
        c.extracted_data.keywords = vec!["a".into()];
        c.properties.user_id = Some("u".into());
        c.metadata.insert("tags".into(), json!(["x"]));
        c.vectorize.vector = Some(vec![0.5, 0.25]);
        let r = to_record(&c).unwrap();
        assert_eq!(r.id, "k1");
        assert_eq!(r.document.as_deref(), Some("body text"));
        assert!(!r.metadata.contains_key("id") && !r.metadata.contains_key("document"));
        assert_eq!(r.metadata["keywords"], json!("[\"a\"]"));
        assert_eq!(r.metadata["tags"], json!("[\"x\"]"));
        assert!(r.metadata["create_time_ts"].is_i64());
        assert!(
            r.metadata
                .values()
                .all(|v| !v.is_array() && !v.is_object() && !v.is_null())
        );
        let back = from_parts(
            &r.id,
            r.document.as_deref(),
            Some(r.metadata.clone()),
            Some(r.embedding.clone()),
        )
        .unwrap();
        assert_eq!(back, c);
        let body = upsert_body(&[r]);
        assert_eq!(body["ids"], json!(["k1"]));
        assert_eq!(body["embeddings"], json!([[0.5, 0.25]]));
    }

    #[test]
    fn reads_a_record_written_by_the_original() {
        // As the original's Chroma backend stored it: no `id` key in metadata, naive ISO times.
        let meta = json!({
            "title": "T", "keywords": "[\"a\"]", "entities": "[]", "context_type": "event",
            "confidence": 0, "importance": 3, "raw_properties": "[]",
            "create_time": "2025-05-01T08:00:00", "create_time_ts": 1746086400,
            "event_time": "2025-05-01T08:00:00", "event_time_ts": 1746086400,
            "update_time": "2025-05-01T08:00:00", "update_time_ts": 1746086400,
            "is_processed": false, "has_compression": false, "call_count": 0,
            "merge_count": 0, "duration_count": 1, "enable_merge": false,
            "is_happend": false, "hierarchy_level": 0, "children_ids": "[]", "user_id": "u1"
        });
        let c = from_parts("abc", Some("body"), meta.as_object().cloned(), None).unwrap();
        assert_eq!(c.id, "abc");
        assert_eq!(c.vectorize.text.as_deref(), Some("body"));
        assert_eq!(c.extracted_data.keywords, vec!["a"]);
        assert_eq!(c.properties.user_id.as_deref(), Some("u1"));
    }

    #[test]
    fn rows_check_lengths() {
        let resp = GetResponse {
            ids: vec!["a".into(), "b".into()],
            documents: Some(vec![None]),
            ..GetResponse::default()
        };
        assert!(rows(resp).is_err());
    }
}
