//! Translation of the typed [`Filter`] into the embedded engine's filter.
//!
//! | ours                  | qdrant                                                      |
//! |-----------------------|-------------------------------------------------------------|
//! | `Eq(k, str/int/bool)` | `match: value`                                              |
//! | `Eq(k, float)`        | `range: gte = lte = x` (Qdrant matches no float values)     |
//! | `Ne(k, v)`            | `must_not: [Eq(k, v)]` (a missing field matches)            |
//! | `In(k, strs/ints)`    | `match: any` (other value kinds: `should` of `Eq`s)         |
//! | `In(k, [])`           | `should: []` (matches nothing)                              |
//! | `NotIn(k, vs)`        | `must_not: [In(k, vs)]` (a missing field matches)           |
//! | `Range` (numbers)     | `range` on `f64`                                            |
//! | `And`/`Or`/`Not`      | `must`/`should`/`must_not` (an empty `Or` matches nothing)  |
//!
//! Ranges with string bounds never reach this module (see [`crate::filter::plan`]).
//! Keys are used verbatim as top-level payload keys (our payload is flat), so a metadata key
//! with a dot is not read as a nested path.

use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    AnyVariants, Condition, FieldCondition, Filter as EdgeFilter, JsonPath, Match, Range as EdgeRange,
    ValueVariants,
};
use storage_core::Result;
use storage_core::filter::{Range, Value};
use storage_core::{Filter, StorageError};

/// The engine filter of `filter`.
///
/// # Errors
/// [`storage_core::ErrorKind::Unsupported`] for a string range (callers split those off
/// first; this is a guard, never a silent "match nothing").
pub(crate) fn to_edge_filter(filter: &Filter) -> Result<EdgeFilter> {
    Ok(match to_condition(filter)? {
        Condition::Filter(f) => f,
        c => must(vec![c]),
    })
}

fn must(conditions: Vec<Condition>) -> EdgeFilter {
    EdgeFilter { must: Some(conditions), ..EdgeFilter::default() }
}

fn should(conditions: Vec<Condition>) -> EdgeFilter {
    EdgeFilter { should: Some(conditions), ..EdgeFilter::default() }
}

fn must_not(conditions: Vec<Condition>) -> EdgeFilter {
    EdgeFilter { must_not: Some(conditions), ..EdgeFilter::default() }
}

fn key(field: &str) -> JsonPath {
    JsonPath { first_key: field.to_owned(), rest: Vec::new() }
}

fn field_match(field: &str, m: Match) -> Condition {
    Condition::Field(FieldCondition::new_match(key(field), m))
}

fn field_range(field: &str, range: EdgeRange<OrderedFloat<f64>>) -> Condition {
    Condition::Field(FieldCondition::new_range(key(field), range))
}

fn to_condition(filter: &Filter) -> Result<Condition> {
    Ok(match filter {
        Filter::Eq(f, v) => eq_condition(f, v),
        Filter::Ne(f, v) => Condition::Filter(must_not(vec![eq_condition(f, v)])),
        Filter::In(f, vs) => in_condition(f, vs),
        Filter::NotIn(f, vs) => Condition::Filter(must_not(vec![in_condition(f, vs)])),
        Filter::Range(f, r) => range_condition(f, r)?,
        Filter::And(fs) => Condition::Filter(must(fs.iter().map(to_condition).collect::<Result<_>>()?)),
        Filter::Or(fs) => Condition::Filter(should(fs.iter().map(to_condition).collect::<Result<_>>()?)),
        Filter::Not(f) => Condition::Filter(must_not(vec![to_condition(f)?])),
    })
}

fn eq_condition(field: &str, value: &Value) -> Condition {
    match value {
        Value::Str(s) => field_match(field, Match::new_value(ValueVariants::String(s.clone()))),
        Value::Int(i) => field_match(field, Match::new_value(ValueVariants::Integer(*i))),
        Value::Bool(b) => field_match(field, Match::new_value(ValueVariants::Bool(*b))),
        Value::Float(x) => field_range(
            field,
            EdgeRange { gte: Some(OrderedFloat(*x)), lte: Some(OrderedFloat(*x)), gt: None, lt: None },
        ),
    }
}

fn in_condition(field: &str, values: &[Value]) -> Condition {
    if values.is_empty() {
        return Condition::Filter(should(Vec::new()));
    }
    if let Some(strings) = values
        .iter()
        .map(|v| if let Value::Str(s) = v { Some(s.clone()) } else { None })
        .collect::<Option<Vec<String>>>()
    {
        return field_match(field, Match::new_any(AnyVariants::Strings(strings.into_iter().collect())));
    }
    if let Some(ints) =
        values.iter().map(|v| if let Value::Int(i) = v { Some(*i) } else { None }).collect::<Option<Vec<i64>>>()
    {
        return field_match(field, Match::new_any(AnyVariants::Integers(ints.into_iter().collect())));
    }
    Condition::Filter(should(values.iter().map(|v| eq_condition(field, v)).collect()))
}

fn range_condition(field: &str, range: &Range) -> Result<Condition> {
    let bound = |v: &Option<Value>| -> Result<Option<OrderedFloat<f64>>> {
        match v {
            None => Ok(None),
            Some(v) => v.as_f64().map(|x| Some(OrderedFloat(x))).ok_or_else(|| {
                StorageError::unsupported(format!(
                    "range on '{field}' with a non-numeric bound cannot be evaluated by Qdrant"
                ))
            }),
        }
    };
    Ok(field_range(
        field,
        EdgeRange { gt: bound(&range.gt)?, gte: bound(&range.gte)?, lt: bound(&range.lt)?, lte: bound(&range.lte)? },
    ))
}
