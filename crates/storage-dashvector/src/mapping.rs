//! Mapping between [`ProcessedContext`] and DashVector docs (`{"id", "vector", "fields"}`).
//!
//! `fields` is the original's flattened payload ([`storage_core::payload`]) with the id in
//! `original_id` (as the original's DashVector backend writes it) plus `dv_scroll_key`, the
//! cursor key of scrolling. DashVector returns every declared field, with `null` where a doc
//! has no value; nulls are dropped before the payload is decoded.

use serde_json::{Map, Value as Json, json};
use storage_core::{ProcessedContext, Result, StorageError, payload, validate};

use crate::schema::{FIELD_ORIGINAL_ID, FIELD_SCROLL_KEY};

/// Longest doc id DashVector accepts, in bytes.
pub const MAX_DOC_ID_LEN: usize = 64;

/// Checks that `id` can be a DashVector primary key: 1 to 64 of
/// `[A-Za-z0-9_!@#$%+=.-]` (the primary-key rule of Proxima/zvec, DashVector's engine). Ids
/// never contain a comma, which separates ids in the fetch URL.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] naming `field` and the rule.
pub fn validate_doc_id(field: &str, id: &str) -> Result<()> {
    validate::validate_id(field, id)?;
    let ok = id.len() <= MAX_DOC_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_!@#$%+=.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StorageError::invalid_input(format!(
            "{field} {id:?} is not a DashVector doc id (1 to {MAX_DOC_ID_LEN} of [A-Za-z0-9_!@#$%+=.-])"
        )))
    }
}

/// The scroll cursor key of an id: FNV-1a (32 bits) of its bytes, masked to 31 bits so that
/// it fits DashVector's signed `INT`.
pub(crate) fn scroll_key(id: &str) -> i64 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    i64::from(h & 0x7fff_ffff)
}

/// The upsert doc of a validated context.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] when a metadata key is `dv_scroll_key` (this
/// backend's own field: the value would be overwritten and lost) or the payload exceeds
/// [`validate::MAX_PAYLOAD_BYTES`].
pub(crate) fn to_doc(c: &ProcessedContext) -> Result<Json> {
    if c.metadata.contains_key(FIELD_SCROLL_KEY) {
        return Err(StorageError::invalid_input(format!(
            "context '{}' metadata key '{FIELD_SCROLL_KEY}' is reserved by the DashVector \
             backend (its scroll cursor field)",
            c.id
        )));
    }
    let mut fields = payload::to_payload(c)?;
    fields.remove(payload::FIELD_ID);
    fields.insert(FIELD_ORIGINAL_ID.into(), Json::String(c.id.clone()));
    fields.insert(FIELD_SCROLL_KEY.into(), Json::from(scroll_key(&c.id)));
    validate::validate_payload_size(&c.id, serde_json::to_vec(&fields)?.len())?;
    let vector = c.vectorize.vector.as_deref().unwrap_or_default();
    Ok(json!({"id": c.id, "vector": vector, "fields": fields}))
}

/// A doc of a query or fetch response, with its id.
pub(crate) fn doc_id(doc: &Json) -> Result<&str> {
    doc.get("id")
        .and_then(Json::as_str)
        .ok_or_else(|| StorageError::data_corrupted("DashVector returned a doc without an id"))
}

/// The non-null fields of a doc.
pub(crate) fn fields_of(doc: &Json) -> Map<String, Json> {
    doc.get("fields")
        .and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The vector of a doc.
pub(crate) fn vector_of(doc: &Json) -> Result<Vec<f32>> {
    let id = doc_id(doc).unwrap_or("?");
    doc.get("vector")
        .and_then(Json::as_array)
        .ok_or_else(|| StorageError::data_corrupted(format!("doc '{id}' has no vector")))?
        .iter()
        .map(|x| {
            x.as_f64().map(|f| f as f32).ok_or_else(|| {
                StorageError::data_corrupted(format!(
                    "doc '{id}' has a non-numeric vector component"
                ))
            })
        })
        .collect()
}

/// Decodes a context doc.
///
/// # Errors
/// [`storage_core::ErrorKind::DataCorrupted`] naming the id when fields are missing or have
/// the wrong type.
pub(crate) fn from_doc(doc: &Json, need_vector: bool) -> Result<ProcessedContext> {
    let id = doc_id(doc)?;
    let mut fields = fields_of(doc);
    fields.remove(FIELD_SCROLL_KEY);
    let vector = if need_vector {
        Some(vector_of(doc)?)
    } else {
        None
    };
    payload::from_payload(fields, id, vector)
}

#[cfg(test)]
mod tests {
    use storage_core::{ContextType, ErrorKind};

    use super::*;

    #[test]
    fn doc_round_trip_drops_nulls_and_the_scroll_key() {
        let mut c = ProcessedContext::new(ContextType::Event, "hello");
        c.id = "ev-1".into();
        // The layout keeps microseconds: use a time without nanoseconds.
        let t = storage_core::time::parse_timestamp("2026-02-21T10:00:00.25+08:00").unwrap();
        c.properties.create_time = t;
        c.properties.event_time = t;
        c.properties.update_time = t;
        c.vectorize.vector = Some(vec![0.5, 0.25]);
        c.metadata.insert("project".into(), json!("alpha"));
        let mut doc = to_doc(&c).unwrap();
        assert_eq!(doc["fields"]["original_id"], "ev-1");
        assert!(doc["fields"].get("id").is_none());
        assert_eq!(doc["fields"][FIELD_SCROLL_KEY], scroll_key("ev-1"));
        doc["fields"]["summary"] = Json::Null; // as DashVector returns absent declared fields
        let back = from_doc(&doc, true).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn doc_ids_follow_dashvector_rules() {
        assert!(validate_doc_id("id", "a-b_c.d@e#1").is_ok());
        for bad in ["", "a,b", "a b", "中文", &"x".repeat(65)] {
            let e = validate_doc_id("id", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn scroll_key_is_stable_and_31_bits() {
        assert_eq!(scroll_key("a"), scroll_key("a"));
        assert_ne!(scroll_key("a"), scroll_key("b"));
        for id in ["", "x", "full-1", "zzzzzzzzzz"] {
            assert!((0..=i64::from(i32::MAX)).contains(&scroll_key(id)));
        }
    }
}
