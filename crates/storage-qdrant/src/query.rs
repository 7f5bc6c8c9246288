//! Argument checks and result shaping shared by every mode: what a call accepts, and how the
//! answers of the per-type collections are merged, does not depend on where the points live.
//! Every check runs before any engine or network call.

use std::collections::HashSet;

use storage_core::model::{ContextType, JsonMap};
use storage_core::payload::{FIELD_ID, FIELD_ORIGINAL_ID};
use storage_core::{
    Filter, HierarchyQuery, Result, Scope, SearchQuery, StorageError, time_bucket, validate,
};
use uuid::Uuid;

use crate::filter::{FilterPlan, plan};
use crate::ids::{point_uuid, todo_point_num};
use crate::points::todo_payload;

/// The requested types without repeats, in request order; every type when `None`.
pub(crate) fn types_or_all(types: Option<&Vec<ContextType>>) -> Vec<ContextType> {
    match types {
        Some(ts) => {
            let mut seen = HashSet::new();
            ts.iter().copied().filter(|t| seen.insert(*t)).collect()
        }
        None => ContextType::ALL.to_vec(),
    }
}

/// A cosine similarity clamped to `[-1, 1]` (rounding can step just outside).
pub(crate) fn clamp_score(score: f32) -> f32 {
    score.clamp(-1.0, 1.0)
}

/// Checks a search (vector dimension and components, finite threshold, filter) and plans
/// its filter.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] / [`storage_core::ErrorKind::Unsupported`] as
/// [`validate::validate_vector`] and [`plan`] say, or for a non-finite `score_threshold`.
pub(crate) fn check_search(query: &SearchQuery, dimension: usize) -> Result<FilterPlan> {
    validate::validate_vector("query vector", &query.vector, dimension)?;
    if let Some(t) = query.score_threshold.filter(|t| !t.is_finite()) {
        return Err(StorageError::invalid_input(format!(
            "score_threshold is {t}; it must be finite"
        )));
    }
    plan(query.filter.as_ref(), &query.scope)
}

/// Checks a hierarchy query (bucket bounds, user id) and plans its native part:
/// `hierarchy_level` (and `user_id`). The `time_bucket` bounds are string bounds, applied
/// with [`bucket_selected`] on each candidate.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] naming the bound or the field.
pub(crate) fn check_hierarchy(query: &HierarchyQuery) -> Result<FilterPlan> {
    time_bucket::validate_range(
        query.time_bucket_start.as_deref(),
        query.time_bucket_end.as_deref(),
    )?;
    let scope = match &query.user_id {
        Some(u) => {
            validate::validate_id("user_id", u)?;
            Scope::user(u.clone())
        }
        None => Scope::any(),
    };
    plan(
        Some(&Filter::eq("hierarchy_level", query.hierarchy_level)),
        &scope,
    )
}

/// Whether a point with this `time_bucket` (absent: `None`) is within the query's inclusive
/// bounds, compared as strings. Without bounds every point is; with bounds a point without a
/// bucket is not.
pub(crate) fn bucket_selected(bucket: Option<&str>, query: &HierarchyQuery) -> bool {
    let (start, end) = (
        query.time_bucket_start.as_deref(),
        query.time_bucket_end.as_deref(),
    );
    match bucket {
        Some(b) => time_bucket::in_range(b, start, end),
        None => start.is_none() && end.is_none(),
    }
}

/// Hierarchy candidates `(time_bucket, context id, item)` ordered by bucket then id, the
/// first `top_k` items.
pub(crate) fn order_hierarchy<T>(mut found: Vec<(String, String, T)>, top_k: usize) -> Vec<T> {
    found.sort_by(|(ba, ia, _), (bb, ib, _)| ba.cmp(bb).then_with(|| ia.cmp(ib)));
    found.into_iter().take(top_k).map(|(_, _, t)| t).collect()
}

/// A search hit before decoding: its clamped score, its context id (for ties) and the point.
pub(crate) struct Hit<P> {
    /// Similarity, clamped to `[-1, 1]`.
    pub score: f32,
    /// The context id ([`context_id`]).
    pub id: String,
    /// The engine's or the server's point.
    pub point: P,
}

/// Merges the hits of several collections: drops those below `threshold`, orders by score
/// (best first, then context id) and keeps `top_k`.
pub(crate) fn merge_hits<P>(
    mut hits: Vec<Hit<P>>,
    threshold: Option<f32>,
    top_k: usize,
) -> Vec<Hit<P>> {
    if let Some(threshold) = threshold {
        hits.retain(|h| h.score >= threshold);
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    hits.truncate(top_k);
    hits
}

/// The context id of a point, as [`crate::points::decode_context`] will decode it:
/// `original_id`, else `id`, else the point id.
pub(crate) fn context_id(payload: Option<&JsonMap>, point_id: &dyn std::fmt::Display) -> String {
    let field = |k: &str| {
        payload
            .and_then(|p| p.get(k))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    field(FIELD_ORIGINAL_ID)
        .or_else(|| field(FIELD_ID))
        .unwrap_or_else(|| point_id.to_string())
}

/// Validates ids (`ids[i]`) and returns their point UUIDs without repeats, in input order.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] naming the first bad id.
pub(crate) fn unique_point_uuids(ids: &[String]) -> Result<Vec<Uuid>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        validate::validate_id(&format!("ids[{i}]"), id)?;
        let p = point_uuid(id);
        if seen.insert(p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The filter of `delete_by_source_file`: `source_file_key == key` (and `user_id == u`).
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] for an empty or oversized key or user id.
pub(crate) fn source_file_filter(key: &str, user_id: Option<&str>) -> Result<Filter> {
    validate::validate_source_file_key(key, user_id)?;
    let mut filter = Filter::eq("source_file_key", key);
    if let Some(u) = user_id {
        filter = filter.and(Filter::eq("user_id", u));
    }
    Ok(filter)
}

/// Checks a todo embedding and builds its point: `(point number, payload)`.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] for a negative id, a bad embedding, a metadata
/// key that is not a field name or shadows a todo field, or an oversized payload.
pub(crate) fn todo_point(
    todo_id: i64,
    content: &str,
    embedding: &[f32],
    metadata: Option<&JsonMap>,
    dimension: usize,
) -> Result<(u64, JsonMap)> {
    let num = todo_point_num(todo_id)?;
    validate::validate_vector("embedding", embedding, dimension)?;
    if let Some(m) = metadata {
        for key in m.keys() {
            storage_core::filter::validate_field_name(key)?;
        }
    }
    Ok((num, todo_payload(todo_id, content, metadata)?))
}

/// Checks the arguments of `search_similar_todos`.
///
/// # Errors
/// [`storage_core::ErrorKind::InvalidInput`] for a bad embedding or a non-finite threshold.
pub(crate) fn check_todo_search(
    query_embedding: &[f32],
    dimension: usize,
    similarity_threshold: f32,
) -> Result<()> {
    validate::validate_vector("query_embedding", query_embedding, dimension)?;
    if !similarity_threshold.is_finite() {
        return Err(StorageError::invalid_input(format!(
            "similarity_threshold is {similarity_threshold}; it must be finite"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use storage_core::ErrorKind;

    fn hit(score: f32, id: &str) -> Hit<()> {
        Hit {
            score,
            id: id.into(),
            point: (),
        }
    }

    #[test]
    fn hits_merge_by_score_then_id() {
        let merged = merge_hits(
            vec![hit(0.5, "b"), hit(0.9, "c"), hit(0.5, "a"), hit(0.1, "d")],
            Some(0.2),
            2,
        );
        let ids: Vec<&str> = merged.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["c", "a"]);
        assert_eq!(clamp_score(1.000_001), 1.0);
    }

    #[test]
    fn hierarchy_orders_by_bucket_then_id() {
        let q = HierarchyQuery {
            context_type: ContextType::Event,
            hierarchy_level: 1,
            time_bucket_start: Some("2026-02-01".into()),
            time_bucket_end: Some("2026-02-28".into()),
            user_id: None,
            top_k: 2,
        };
        assert!(bucket_selected(Some("2026-02-21"), &q));
        assert!(!bucket_selected(Some("2026-03-01"), &q));
        assert!(!bucket_selected(None, &q));
        let out = order_hierarchy(
            vec![
                ("2026-02-03".into(), "z".into(), 1),
                ("2026-02-02".into(), "b".into(), 2),
                ("2026-02-02".into(), "a".into(), 3),
            ],
            2,
        );
        assert_eq!(out, [3, 2]);
        let bad = HierarchyQuery {
            time_bucket_end: Some("2026-W08".into()),
            ..q
        };
        assert_eq!(
            check_hierarchy(&bad).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn ids_and_arguments_are_checked() {
        let ids = vec!["a".to_owned(), "b".to_owned(), "a".to_owned()];
        assert_eq!(unique_point_uuids(&ids).unwrap().len(), 2);
        let e = unique_point_uuids(&["a".into(), String::new()]).unwrap_err();
        assert!(e.to_string().contains("ids[1]"), "{e}");
        let payload = json!({"original_id": "x", "id": "y"});
        assert_eq!(context_id(payload.as_object(), &"p"), "x");
        assert_eq!(context_id(None, &"p"), "p");
        assert!(source_file_filter("", None).is_err());
        assert_eq!(
            source_file_filter("k", Some("u")).unwrap().fields(),
            vec!["source_file_key", "user_id"]
        );
        assert!(check_todo_search(&[1.0, 0.0], 2, f32::NAN).is_err());
        assert!(check_todo_search(&[1.0], 2, 0.5).is_err());
        assert!(todo_point(-1, "x", &[1.0, 0.0], None, 2).is_err());
        let bad_key = json!({"bad key": 1}).as_object().unwrap().clone();
        assert!(todo_point(1, "x", &[1.0, 0.0], Some(&bad_key), 2).is_err());
        let mut q = SearchQuery::new(vec![1.0, 0.0]);
        q.score_threshold = Some(f32::INFINITY);
        assert!(check_search(&q, 2).is_err());
    }
}
