//! Engine-independent filter planning, shared by every Qdrant mode.
//!
//! Qdrant has no range over strings: a numeric `Range` on a string field silently matches
//! nothing, which would turn a caller's condition into "no results". So before a filter is
//! translated (see `local::condition` for the embedded engine), it is split in two:
//!
//! * `native`: the conditions Qdrant evaluates exactly (everything except string ranges);
//! * `post`: the top-level conjuncts that contain a string range, evaluated in process with
//!   [`Filter::matches`] on the stored payload (which holds exactly the fields the filter
//!   names, in the layout [`Filter::matches`] expects).
//!
//! The result of applying both is exactly the caller's filter: the native part is a
//! conjunction of some of its top-level conjuncts, and the post part is the rest.

use storage_core::Result;
use storage_core::filter::Value;
use storage_core::payload::JSON_ENCODED_FIELDS;
use storage_core::{Filter, Scope, StorageError};

/// A filter split into what Qdrant evaluates and what is checked in process.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FilterPlan {
    /// Conditions sent to the engine.
    pub native: Option<Filter>,
    /// Conditions checked on each returned payload (string ranges).
    pub post: Option<Filter>,
}

impl FilterPlan {
    /// Whether a payload passes the in-process part.
    pub fn post_matches(&self, payload: &storage_core::JsonMap) -> bool {
        self.post.as_ref().is_none_or(|f| f.matches(payload))
    }
}

/// Validates `filter` combined with the tenant `scope` and splits it (see the module docs).
///
/// # Errors
/// * [`storage_core::ErrorKind::InvalidInput`] for a malformed filter ([`Filter::validate`]).
/// * [`storage_core::ErrorKind::Unsupported`] for a condition on a JSON-encoded list field
///   (`keywords`, `entities`, `children_ids`, `raw_properties`): the payload holds them as one
///   JSON string, so element-wise comparison is impossible and equality on the string would
///   silently depend on the encoding.
pub(crate) fn plan(filter: Option<&Filter>, scope: &Scope) -> Result<FilterPlan> {
    if let Some(f) = filter {
        f.validate()?;
    }
    let Some(combined) = scope.apply(filter) else {
        return Ok(FilterPlan::default());
    };
    combined.validate()?;
    if let Some(field) = combined
        .fields()
        .into_iter()
        .find(|f| JSON_ENCODED_FIELDS.contains(f))
    {
        return Err(StorageError::unsupported(format!(
            "filter on '{field}' is not supported: the field is stored as a JSON-encoded string \
             (the original's payload layout), so its elements cannot be compared"
        )));
    }
    if !has_string_range(&combined) {
        return Ok(FilterPlan {
            native: Some(combined),
            post: None,
        });
    }
    let conjuncts = match combined {
        Filter::And(parts) => parts,
        other => vec![other],
    };
    let (post, native): (Vec<Filter>, Vec<Filter>) =
        conjuncts.into_iter().partition(has_string_range);
    Ok(FilterPlan {
        native: conjunction(native),
        post: conjunction(post),
    })
}

fn conjunction(mut parts: Vec<Filter>) -> Option<Filter> {
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Filter::And(parts)),
    }
}

/// Whether the filter contains a range with string bounds anywhere.
pub(crate) fn has_string_range(filter: &Filter) -> bool {
    match filter {
        Filter::Range(_, r) => r.bounds().any(|(_, v)| matches!(v, Value::Str(_))),
        Filter::And(fs) | Filter::Or(fs) => fs.iter().any(has_string_range),
        Filter::Not(f) => has_string_range(f),
        Filter::Eq(..) | Filter::Ne(..) | Filter::In(..) | Filter::NotIn(..) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_core::ErrorKind;

    #[test]
    fn numeric_filters_stay_native() {
        let f = Filter::eq("a", 1).and(Filter::gte("create_time_ts", 10));
        let p = plan(Some(&f), &Scope::user("u")).unwrap();
        assert_eq!(p.post, None);
        assert_eq!(
            p.native.unwrap().fields(),
            vec!["a", "create_time_ts", "user_id"]
        );
        assert_eq!(plan(None, &Scope::any()).unwrap(), FilterPlan::default());
    }

    #[test]
    fn string_ranges_move_to_the_post_filter() {
        let range = Filter::between("time_bucket", "2026-02-01", "2026-02-28");
        let p = plan(
            Some(&range.clone().and(Filter::eq("a", 1))),
            &Scope::user("u"),
        )
        .unwrap();
        assert_eq!(p.post, Some(range.clone()));
        assert_eq!(
            p.native,
            Some(Filter::And(vec![
                Filter::eq("a", 1),
                Filter::eq("user_id", "u")
            ]))
        );

        // Inside an `or` the whole disjunction is checked in process.
        let or = range.clone().or(Filter::eq("b", 2));
        let p = plan(Some(&or), &Scope::any()).unwrap();
        assert_eq!(p.native, None);
        assert_eq!(p.post, Some(or));

        let rec = serde_json::json!({"time_bucket": "2026-02-21"});
        assert!(p.post_matches(rec.as_object().unwrap()));
        let rec = serde_json::json!({"time_bucket": "2026-03-01"});
        assert!(!p.post_matches(rec.as_object().unwrap()));
    }

    #[test]
    fn json_encoded_fields_are_unsupported_and_bad_filters_invalid() {
        let e = plan(Some(&Filter::eq("keywords", "x")), &Scope::any()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = plan(
            Some(&Filter::eq("a", 1).or(Filter::eq("children_ids", "x")).not()),
            &Scope::any(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = plan(Some(&Filter::eq("bad key", 1)), &Scope::any()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = plan(Some(&Filter::gte("x", f64::NAN)), &Scope::any()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
