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
//!
//! The native part is then translated by [`translate`], which holds the mapping onto Qdrant's
//! filter model once; each mode supplies the constructors of its representation through
//! [`ConditionBuilder`] (the embedded engine's types in `local::condition`, the gRPC messages
//! in `remote::condition`):
//!
//! | ours                  | qdrant                                                      |
//! |-----------------------|-------------------------------------------------------------|
//! | `Eq(k, str/int/bool)` | `match: value` (keyword / integer / boolean)                |
//! | `Eq(k, float)`        | `range: gte = lte = x` (Qdrant matches no float values)     |
//! | `Ne(k, v)`            | `must_not: [Eq(k, v)]` (a missing field matches)            |
//! | `In(k, strs/ints)`    | `match: any` (other value kinds: `should` of `Eq`s)         |
//! | `In(k, [])`           | `has_id: []` (matches nothing)                              |
//! | `NotIn(k, vs)`        | `must_not: [In(k, vs)]` (a missing field matches)           |
//! | `Range` (numbers)     | `range` on `f64`                                            |
//! | `And`/`Or`/`Not`      | `must`/`should`/`must_not` (empty `Or`: `has_id: []`)       |
//!
//! Keys name top-level payload keys verbatim (our payload is flat): a metadata key with a dot
//! is not read as a nested path (the engine gets the key as one path segment, the server gets
//! it quoted, `"a.b"`).

use storage_core::Result;
use storage_core::filter::{Range, Value};
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

/// Numeric bounds of a Qdrant `range` condition.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct NumericRange {
    /// Exclusive lower bound.
    pub gt: Option<f64>,
    /// Inclusive lower bound.
    pub gte: Option<f64>,
    /// Exclusive upper bound.
    pub lt: Option<f64>,
    /// Inclusive upper bound.
    pub lte: Option<f64>,
}

/// The constructors of one representation of Qdrant filters. [`translate`] builds the
/// conditions of a [`Filter`] with them.
pub(crate) trait ConditionBuilder {
    /// One condition (a field condition, a nested filter, ...).
    type Condition;
    /// `field` equals the string (`match: keyword`).
    fn match_keyword(field: &str, value: &str) -> Self::Condition;
    /// `field` equals the integer (`match: integer`).
    fn match_integer(field: &str, value: i64) -> Self::Condition;
    /// `field` equals the boolean (`match: boolean`).
    fn match_bool(field: &str, value: bool) -> Self::Condition;
    /// `field` equals one of the strings (`match: any`, non-empty).
    fn match_keywords(field: &str, values: Vec<String>) -> Self::Condition;
    /// `field` equals one of the integers (`match: any`, non-empty).
    fn match_integers(field: &str, values: Vec<i64>) -> Self::Condition;
    /// `field` is a number within the bounds.
    fn range(field: &str, range: NumericRange) -> Self::Condition;
    /// All of the conditions.
    fn must(conditions: Vec<Self::Condition>) -> Self::Condition;
    /// At least one of the conditions (non-empty).
    fn should(conditions: Vec<Self::Condition>) -> Self::Condition;
    /// None of the conditions.
    fn must_not(conditions: Vec<Self::Condition>) -> Self::Condition;
    /// A condition no point satisfies (`has_id: []`; an empty `should` is not one: Qdrant's
    /// counting path treats it as absent).
    fn nothing() -> Self::Condition;
}

/// The condition of `filter` in the representation `B` (see the module docs for the table).
///
/// # Errors
/// [`storage_core::ErrorKind::Unsupported`] for a range with a non-numeric bound (callers
/// split string ranges off with [`plan`] first; this is a guard, never a silent "match
/// nothing").
pub(crate) fn translate<B: ConditionBuilder>(filter: &Filter) -> Result<B::Condition> {
    let all = |fs: &[Filter]| fs.iter().map(translate::<B>).collect::<Result<Vec<_>>>();
    Ok(match filter {
        Filter::Eq(f, v) => eq_condition::<B>(f, v),
        Filter::Ne(f, v) => B::must_not(vec![eq_condition::<B>(f, v)]),
        Filter::In(f, vs) => in_condition::<B>(f, vs),
        Filter::NotIn(f, vs) => B::must_not(vec![in_condition::<B>(f, vs)]),
        Filter::Range(f, r) => B::range(f, numeric_range(f, r)?),
        Filter::And(fs) => B::must(all(fs)?),
        Filter::Or(fs) if fs.is_empty() => B::nothing(),
        Filter::Or(fs) => B::should(all(fs)?),
        Filter::Not(f) => B::must_not(vec![translate::<B>(f)?]),
    })
}

fn eq_condition<B: ConditionBuilder>(field: &str, value: &Value) -> B::Condition {
    match value {
        Value::Str(s) => B::match_keyword(field, s),
        Value::Int(i) => B::match_integer(field, *i),
        Value::Bool(b) => B::match_bool(field, *b),
        Value::Float(x) => B::range(
            field,
            NumericRange {
                gte: Some(*x),
                lte: Some(*x),
                ..NumericRange::default()
            },
        ),
    }
}

fn in_condition<B: ConditionBuilder>(field: &str, values: &[Value]) -> B::Condition {
    if values.is_empty() {
        return B::nothing();
    }
    let strings: Option<Vec<String>> = values
        .iter()
        .map(|v| match v {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    if let Some(strings) = strings {
        return B::match_keywords(field, strings);
    }
    let ints: Option<Vec<i64>> = values
        .iter()
        .map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        })
        .collect();
    if let Some(ints) = ints {
        return B::match_integers(field, ints);
    }
    B::should(values.iter().map(|v| eq_condition::<B>(field, v)).collect())
}

fn numeric_range(field: &str, range: &Range) -> Result<NumericRange> {
    let bound = |v: &Option<Value>| -> Result<Option<f64>> {
        match v {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                StorageError::unsupported(format!(
                    "range on '{field}' with a non-numeric bound cannot be evaluated by Qdrant"
                ))
            }),
        }
    };
    Ok(NumericRange {
        gt: bound(&range.gt)?,
        gte: bound(&range.gte)?,
        lt: bound(&range.lt)?,
        lte: bound(&range.lte)?,
    })
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
