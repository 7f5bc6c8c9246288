//! Input checks shared by every backend, run before anything is written.

use std::collections::HashSet;

use crate::error::{Result, StorageError};
use crate::model::ProcessedContext;
use crate::payload;

/// Longest accepted id, in bytes.
pub const MAX_ID_LEN: usize = 512;

/// Largest accepted flattened payload of one context, in bytes of JSON (1 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Checks an id: non-empty, at most [`MAX_ID_LEN`] bytes, no control characters.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field`.
pub fn validate_id(field: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(StorageError::invalid_input(format!(
            "{field} must not be empty"
        )));
    }
    if id.len() > MAX_ID_LEN {
        return Err(StorageError::invalid_input(format!(
            "{field} is {} bytes long, the limit is {MAX_ID_LEN}",
            id.len()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(StorageError::invalid_input(format!(
            "{field} {id:?} contains a control character"
        )));
    }
    Ok(())
}

/// Smallest accepted Euclidean norm of a vector. Engines normalise in 32-bit floats: below
/// this the sum of squares underflows and the vector would be stored as all zeros.
pub const MIN_VECTOR_NORM: f64 = 1e-18;
/// Largest accepted Euclidean norm of a vector (above it the sum of squares overflows f32).
pub const MAX_VECTOR_NORM: f64 = 1e18;

/// Deepest accepted nesting of a JSON value (objects and arrays) in metadata and in cached
/// JSON, so that every stored value is accepted and reads back on every backend: MariaDB's
/// `JSON_VALID` check refuses a `JSON_DEPTH` above 32, which counts the innermost scalar as a
/// level (so 31 levels of objects and arrays), and serde_json stops reading at 128.
pub const MAX_JSON_DEPTH: usize = 31;

/// Checks a vector: exactly `dimension` components, all finite, not all zero (cosine
/// similarity is undefined for the zero vector), and a Euclidean norm within
/// [`MIN_VECTOR_NORM`]..=[`MAX_VECTOR_NORM`] so that it can be normalised in 32-bit floats
/// (components of 1e38 or 1e-30 cannot).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field`, the bound and the first bad component.
pub fn validate_vector(field: &str, vector: &[f32], dimension: usize) -> Result<()> {
    if vector.len() != dimension {
        return Err(StorageError::invalid_input(format!(
            "{field} has {} components, expected {dimension}",
            vector.len()
        )));
    }
    if let Some((i, x)) = vector.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(StorageError::invalid_input(format!(
            "{field}[{i}] is {x}; components must be finite"
        )));
    }
    if vector.iter().all(|x| *x == 0.0) {
        return Err(StorageError::invalid_input(format!(
            "{field} is the zero vector; cosine similarity is undefined for it"
        )));
    }
    let norm = vector
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !(MIN_VECTOR_NORM..=MAX_VECTOR_NORM).contains(&norm) {
        return Err(StorageError::invalid_input(format!(
            "{field} has norm {norm:e}; it must be between {MIN_VECTOR_NORM:e} and \
             {MAX_VECTOR_NORM:e} to be normalised in 32-bit floats (scale the vector)"
        )));
    }
    Ok(())
}

/// Nesting depth of a JSON value: 0 for a scalar, 1 for a flat array or object. Iterative,
/// so any depth is measured without recursion.
pub fn json_depth(value: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            serde_json::Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|x| (x, d + 1)));
            }
            serde_json::Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|x| (x, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// Checks that a JSON value nests at most [`MAX_JSON_DEPTH`] levels.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field`, the depth and the limit.
pub fn validate_json_depth(field: &str, value: &serde_json::Value) -> Result<()> {
    let depth = json_depth(value);
    if depth > MAX_JSON_DEPTH {
        return Err(StorageError::invalid_input(format!(
            "{field} nests {depth} levels deep, the limit is {MAX_JSON_DEPTH}"
        )));
    }
    Ok(())
}

/// Checks a batch of contexts for upsert: unique valid ids, vectors of `dimension`, scores in
/// 0..=10, a valid `time_bucket`, metadata keys that do not shadow context fields, payload
/// within [`MAX_PAYLOAD_BYTES`]. Nothing is written when this fails.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the context id and the field.
pub fn validate_contexts(contexts: &[ProcessedContext], dimension: usize) -> Result<()> {
    let mut seen = HashSet::with_capacity(contexts.len());
    for (i, c) in contexts.iter().enumerate() {
        validate_id(&format!("contexts[{i}].id"), &c.id)?;
        if !seen.insert(c.id.as_str()) {
            return Err(StorageError::invalid_input(format!(
                "context id '{}' appears twice in one batch",
                c.id
            )));
        }
        validate_context(c, dimension)?;
    }
    Ok(())
}

/// Checks one context (see [`validate_contexts`]).
pub fn validate_context(c: &ProcessedContext, dimension: usize) -> Result<()> {
    let id = &c.id;
    let vector = c.vectorize.vector.as_deref().ok_or_else(|| {
        StorageError::invalid_input(format!(
            "context '{id}' has no vector (vectorize.vector); embed it first or configure an embedder"
        ))
    })?;
    validate_vector(
        &format!("context '{id}' vectorize.vector"),
        vector,
        dimension,
    )?;
    for (name, v) in [
        ("confidence", c.extracted_data.confidence),
        ("importance", c.extracted_data.importance),
    ] {
        if v > 10 {
            return Err(StorageError::invalid_input(format!(
                "context '{id}' {name} is {v}, the range is 0 to 10"
            )));
        }
    }
    if let Some(tb) = &c.properties.time_bucket {
        crate::time_bucket::granularity(&format!("context '{id}' time_bucket"), tb)?;
    }
    let p = &c.properties;
    for (name, t) in [
        ("create_time", Some(&p.create_time)),
        ("event_time", Some(&p.event_time)),
        ("update_time", Some(&p.update_time)),
        ("last_call_time", p.last_call_time.as_ref()),
    ] {
        crate::time::validate_opt_timestamp(&format!("context '{id}' {name}"), t)?;
    }
    for (i, raw) in p.raw_properties.iter().enumerate() {
        crate::time::validate_timestamp(
            &format!("context '{id}' raw_properties[{i}].create_time"),
            &raw.create_time,
        )?;
    }
    for (key, value) in &c.metadata {
        if payload::is_reserved_key(key) {
            return Err(StorageError::invalid_input(format!(
                "context '{id}' metadata key '{key}' collides with a context field of the same name"
            )));
        }
        if key.ends_with(payload::TS_SUFFIX) {
            return Err(StorageError::invalid_input(format!(
                "context '{id}' metadata key '{key}' ends in '{}', which the payload layout \
                 reserves for the epoch seconds of datetime fields; rename the key",
                payload::TS_SUFFIX
            )));
        }
        match value {
            serde_json::Value::Null => {
                return Err(StorageError::invalid_input(format!(
                    "context '{id}' metadata key '{key}' is null; null values are not stored \
                     (omit the key)"
                )));
            }
            serde_json::Value::String(text) if payload::reads_back_as_json(text) => {
                return Err(StorageError::invalid_input(format!(
                    "context '{id}' metadata key '{key}' is a string holding JSON text, which the \
                     payload layout reads back as the list or object it encodes; store the value \
                     itself instead of its JSON text"
                )));
            }
            _ => validate_json_depth(&format!("context '{id}' metadata key '{key}'"), value)?,
        }
        crate::filter::validate_field_name(key).map_err(|_| {
            StorageError::invalid_input(format!(
                "context '{id}' metadata key {key:?} is not a field name (expected [A-Za-z_][A-Za-z0-9_.]*)"
            ))
        })?;
    }
    Ok(())
}

/// Checks a list of context ids (`ids[i]`, see [`validate_id`]).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the first bad id by its index.
pub fn validate_ids(ids: &[String]) -> Result<()> {
    ids.iter()
        .enumerate()
        .try_for_each(|(i, id)| validate_id(&format!("ids[{i}]"), id))
}

/// Checks the arguments of `delete_by_source_file`: a valid `source_file_key` and, when
/// given, a valid `user_id` (an empty key would match nothing or, worse, everything).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the argument.
pub fn validate_source_file_key(key: &str, user_id: Option<&str>) -> Result<()> {
    // Not `validate_id`: these are field values a stored context may hold (control
    // characters and any length within the payload bound included), matched exactly; only
    // empty values, which no context can be deleted by, are refused.
    for (field, value) in [("source_file_key", Some(key)), ("user_id", user_id)] {
        if value.is_some_and(str::is_empty) {
            return Err(StorageError::invalid_input(format!(
                "{field} must not be empty"
            )));
        }
    }
    Ok(())
}

/// Checks a todo id (the document store's row id, so never negative).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the id.
pub fn validate_todo_id(todo_id: i64) -> Result<u64> {
    u64::try_from(todo_id).map_err(|_| {
        StorageError::invalid_input(format!(
            "todo_id {todo_id} is negative; todo ids must be >= 0"
        ))
    })
}

/// Checks a similarity threshold: finite (a NaN threshold would match everything or
/// nothing, depending on the backend).
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field`.
pub fn validate_threshold(field: &str, threshold: f32) -> Result<()> {
    if !threshold.is_finite() {
        return Err(StorageError::invalid_input(format!(
            "{field} is {threshold}; it must be finite"
        )));
    }
    Ok(())
}

/// A counter argument (token counts, durations, sample counts) as the signed 64-bit integer
/// SQL stores.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming `field` when `value` exceeds `i64::MAX`.
pub fn counter(field: &str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        StorageError::invalid_input(format!(
            "{field} is {value}, the largest storable count is {}",
            i64::MAX
        ))
    })
}

/// A page offset as the signed 64-bit integer SQL takes: offsets past `i64::MAX` saturate
/// (the page is empty either way; a wrapped negative offset would mean "no offset").
pub fn offset(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Checks the size of a flattened payload.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the id, the size and the limit.
pub fn validate_payload_size(id: &str, encoded_len: usize) -> Result<()> {
    if encoded_len > MAX_PAYLOAD_BYTES {
        return Err(StorageError::invalid_input(format!(
            "context '{id}' payload is {encoded_len} bytes, the limit is {MAX_PAYLOAD_BYTES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContextType;

    fn ctx(id: &str, v: Vec<f32>) -> ProcessedContext {
        let mut c = ProcessedContext::new(ContextType::Event, "t");
        c.id = id.into();
        c.vectorize.vector = Some(v);
        c
    }

    #[test]
    fn rejects_bad_vectors_with_the_bound() {
        let e = validate_vector("q", &[1.0, 2.0], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 components, expected 3"), "{e}");
        let e = validate_vector("q", &[1.0, f32::NAN, 0.0], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("q[1] is NaN"), "{e}");
        assert!(validate_vector("q", &[f32::INFINITY, 0.0, 0.0], 3).is_err());
        assert!(validate_vector("q", &[0.0; 3], 3).is_err());
        assert!(validate_vector("q", &[0.0, 1.0, 0.0], 3).is_ok());
        // Norms that overflow or underflow f32 normalisation.
        let e = validate_vector("q", &[1e38, 1e38, 0.0], 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("norm") && e.contains("1e18"), "{e}");
        assert!(validate_vector("q", &[1e-30, 1e-30, 0.0], 3).is_err());
        assert!(validate_vector("q", &[1e-40, 0.0, 0.0], 3).is_err());
        assert!(validate_vector("q", &[1e17, 1e-40, 0.0], 3).is_ok());
    }

    #[test]
    fn refuses_metadata_that_would_not_read_back_as_written() {
        for (key, value, needle) in [
            ("foo_ts", serde_json::json!(5), "_ts"),
            ("title_ts", serde_json::json!("x"), "_ts"),
            ("gone", serde_json::Value::Null, "null"),
            ("list_text", serde_json::json!("[1, 2]"), "JSON text"),
            ("obj_text", serde_json::json!("{\"a\": 1}"), "JSON text"),
        ] {
            let mut c = ctx("m", vec![1.0]);
            c.metadata.insert(key.into(), value);
            let e = validate_contexts(&[c], 1).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains(needle), "{key}: {e}");
        }
        // Strings that merely start like JSON, and real lists, are fine.
        let mut c = ctx("m", vec![1.0]);
        c.metadata
            .insert("note".into(), serde_json::json!("[draft] notes"));
        c.metadata
            .insert("tags".into(), serde_json::json!(["a", "b"]));
        assert!(validate_contexts(&[c], 1).is_ok());

        let mut deep = serde_json::json!(1);
        for _ in 0..(MAX_JSON_DEPTH + 1) {
            deep = serde_json::json!([deep]);
        }
        let mut c = ctx("m", vec![1.0]);
        c.metadata.insert("deep".into(), deep);
        let e = validate_contexts(&[c], 1).unwrap_err().to_string();
        assert!(
            e.contains("levels deep") && e.contains(&MAX_JSON_DEPTH.to_string()),
            "{e}"
        );
    }

    #[test]
    fn rejects_bad_batches() {
        assert!(validate_contexts(&[ctx("", vec![1.0])], 1).is_err());
        let e = validate_contexts(&[ctx("a", vec![1.0]), ctx("a", vec![1.0])], 1).unwrap_err();
        assert!(e.to_string().contains("twice"));
        let mut no_vec = ctx("a", vec![1.0]);
        no_vec.vectorize.vector = None;
        assert!(validate_contexts(&[no_vec], 1).is_err());
        let mut shadow = ctx("a", vec![1.0]);
        shadow.metadata.insert("user_id".into(), "x".into());
        assert!(
            validate_contexts(&[shadow], 1)
                .unwrap_err()
                .to_string()
                .contains("user_id")
        );
        let mut bucket = ctx("a", vec![1.0]);
        bucket.properties.time_bucket = Some("last week".into());
        assert!(validate_contexts(&[bucket], 1).is_err());
        let mut imp = ctx("a", vec![1.0]);
        imp.extracted_data.importance = 11;
        assert!(validate_contexts(&[imp], 1).is_err());
        assert!(validate_contexts(&[ctx("a", vec![1.0]), ctx("b", vec![1.0])], 1).is_ok());
        assert!(validate_id("id", "a\u{0}b").is_err());
        assert!(validate_id("id", &"x".repeat(MAX_ID_LEN + 1)).is_err());
    }
}
