//! Translation of the typed [`Filter`] into the embedded engine's filter.
//!
//! | ours                  | qdrant                                                      |
//! |-----------------------|-------------------------------------------------------------|
//! | `Eq(k, str/int/bool)` | `match: value`                                              |
//! | `Eq(k, float)`        | `range: gte = lte = x` (Qdrant matches no float values)     |
//! | `Ne(k, v)`            | `must_not: [Eq(k, v)]` (a missing field matches)            |
//! | `In(k, strs/ints)`    | `match: any` (other value kinds: `should` of `Eq`s)         |
//! | `In(k, [])`           | `has_id: []` (matches nothing)                              |
//! | `NotIn(k, vs)`        | `must_not: [In(k, vs)]` (a missing field matches)           |
//! | `Range` (numbers)     | `range` on `f64`                                            |
//! | `And`/`Or`/`Not`      | `must`/`should`/`must_not` (empty `Or`: `has_id: []`)       |
//!
//! Ranges with string bounds never reach this module (see [`crate::filter::plan`]).
//! Keys are used verbatim as top-level payload keys (our payload is flat), so a metadata key
//! with a dot is not read as a nested path.

use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    AnyVariants, Condition, FieldCondition, Filter as EdgeFilter, JsonPath, Match,
    Range as EdgeRange, ValueVariants,
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
    EdgeFilter {
        must: Some(conditions),
        ..EdgeFilter::default()
    }
}

fn should(conditions: Vec<Condition>) -> EdgeFilter {
    EdgeFilter {
        should: Some(conditions),
        ..EdgeFilter::default()
    }
}

fn must_not(conditions: Vec<Condition>) -> EdgeFilter {
    EdgeFilter {
        must_not: Some(conditions),
        ..EdgeFilter::default()
    }
}

/// A condition no point satisfies. (`should: []` is not one: the engine's counting path
/// treats an empty `should` as absent.)
fn nothing() -> Condition {
    Condition::HasId(std::iter::empty::<qdrant_edge::PointId>().collect())
}

fn key(field: &str) -> JsonPath {
    JsonPath {
        first_key: field.to_owned(),
        rest: Vec::new(),
    }
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
        Filter::And(fs) => {
            Condition::Filter(must(fs.iter().map(to_condition).collect::<Result<_>>()?))
        }
        Filter::Or(fs) if fs.is_empty() => nothing(),
        Filter::Or(fs) => {
            Condition::Filter(should(fs.iter().map(to_condition).collect::<Result<_>>()?))
        }
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
            EdgeRange {
                gte: Some(OrderedFloat(*x)),
                lte: Some(OrderedFloat(*x)),
                gt: None,
                lt: None,
            },
        ),
    }
}

fn in_condition(field: &str, values: &[Value]) -> Condition {
    if values.is_empty() {
        return nothing();
    }
    if let Some(strings) = values
        .iter()
        .map(|v| {
            if let Value::Str(s) = v {
                Some(s.clone())
            } else {
                None
            }
        })
        .collect::<Option<Vec<String>>>()
    {
        return field_match(
            field,
            Match::new_any(AnyVariants::Strings(strings.into_iter().collect())),
        );
    }
    if let Some(ints) = values
        .iter()
        .map(|v| {
            if let Value::Int(i) = v {
                Some(*i)
            } else {
                None
            }
        })
        .collect::<Option<Vec<i64>>>()
    {
        return field_match(
            field,
            Match::new_any(AnyVariants::Integers(ints.into_iter().collect())),
        );
    }
    Condition::Filter(should(
        values.iter().map(|v| eq_condition(field, v)).collect(),
    ))
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
        EdgeRange {
            gt: bound(&range.gt)?,
            gte: bound(&range.gte)?,
            lt: bound(&range.lt)?,
            lte: bound(&range.lte)?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qdrant_edge::{
        CountRequest, CreateIndex, Distance, EdgeConfig, EdgeShard, EdgeVectorParams,
        FieldIndexOperations, PayloadFieldSchema, PayloadSchemaType, PointId,
        PointInsertOperations, PointOperations, PointStruct, UpdateOperation,
    };
    use serde_json::json;
    use storage_core::JsonMap;

    fn records() -> Vec<JsonMap> {
        [
            json!({"s": "a", "n": 1, "f": 0.5, "b": true, "tb": "2026-02-21", "a.b": "dot"}),
            json!({"s": "b", "n": 2, "f": 1.5, "b": false, "tb": "2026-W08"}),
            json!({"s": "c", "n": 3, "b": true}),
            json!({"n": 10, "f": -2.0}),
            json!({"s": "a", "n": -4, "f": 3.0, "b": false}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect()
    }

    /// Every translated filter selects exactly the records `Filter::matches` selects, with
    /// and without payload indexes on the fields (keyword `s`, integer `n`, bool `b`).
    #[test]
    fn translation_agrees_with_the_reference_semantics() {
        translation_agrees(false);
        translation_agrees(true);
    }

    fn translation_agrees(indexed: bool) {
        let dir = tempfile::tempdir().unwrap();
        let config = EdgeConfig::builder()
            .vector("", EdgeVectorParams::builder(2, Distance::Cosine).build())
            .build();
        let edge = EdgeShard::new(dir.path(), config).unwrap();
        if indexed {
            for (field, schema) in [
                ("s", PayloadSchemaType::Keyword),
                ("n", PayloadSchemaType::Integer),
                ("b", PayloadSchemaType::Bool),
            ] {
                edge.update(UpdateOperation::FieldIndexOperation(
                    FieldIndexOperations::CreateIndex(CreateIndex {
                        field_name: key(field),
                        field_schema: Some(PayloadFieldSchema::FieldType(schema)),
                    }),
                ))
                .unwrap();
            }
            assert_eq!(edge.info().payload_schema.len(), 3);
        }
        let recs = records();
        let points = recs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PointStruct::new(PointId::NumId(i as u64), vec![1.0, i as f32], json!(r)).into()
            })
            .collect();
        edge.update(UpdateOperation::PointOperation(
            PointOperations::UpsertPoints(PointInsertOperations::PointsList(points)),
        ))
        .unwrap();

        let filters = vec![
            Filter::eq("s", "a"),
            Filter::eq("n", 2),
            Filter::eq("f", 1.5),
            Filter::eq("b", true),
            Filter::eq("a.b", "dot"),
            Filter::eq("missing", 1),
            Filter::ne("s", "a"),
            Filter::ne("b", false),
            Filter::is_in("s", ["a", "c"]),
            Filter::is_in("n", [1, 10]),
            Filter::In("n".into(), vec![Value::Int(3), Value::Float(1.0)]),
            Filter::In("b".into(), vec![Value::Bool(false)]),
            Filter::is_in("s", Vec::<String>::new()),
            Filter::not_in("s", ["a"]),
            Filter::not_in("n", [1, 2, 3]),
            Filter::gte("n", 2),
            Filter::lt("f", 1.0),
            Filter::between("n", -4, 2),
            Filter::gt("n", 1.5),
            Filter::lte("n", 2.5),
            Filter::between("n", -4.5, 1.0),
            Filter::lt("n", -4),
            Filter::eq("n", 2.0),
            Filter::eq("s", 1),
            Filter::is_in("s", ["zz"]),
            Filter::ne("n", 10),
            Filter::gte("s", 1),
            Filter::eq("s", "a").and(Filter::eq("b", true)),
            Filter::eq("s", "a").or(Filter::eq("n", 10)),
            Filter::Or(vec![]),
            Filter::And(vec![]),
            Filter::eq("s", "a").not(),
            Filter::eq("s", "a")
                .or(Filter::gte("n", 3))
                .not()
                .and(Filter::ne("b", true)),
        ];
        for f in filters {
            let expected: Vec<usize> = (0..recs.len()).filter(|i| f.matches(&recs[*i])).collect();
            let edge_filter = to_edge_filter(&f).unwrap();
            let n = edge
                .count(CountRequest {
                    filter: Some(edge_filter.clone()),
                    exact: true,
                })
                .unwrap();
            assert_eq!(n, expected.len(), "count of {f:?} (indexed: {indexed})");
            let (found, _) = edge
                .scroll(qdrant_edge::ScrollRequest {
                    offset: None,
                    limit: Some(100),
                    filter: Some(edge_filter),
                    with_payload: None,
                    with_vector: qdrant_edge::WithVector::Bool(false),
                    order_by: None,
                })
                .unwrap();
            let mut got: Vec<usize> = found
                .iter()
                .map(|r| match r.id {
                    PointId::NumId(n) => n as usize,
                    PointId::Uuid(_) => unreachable!("numeric ids only"),
                })
                .collect();
            got.sort_unstable();
            assert_eq!(got, expected, "records of {f:?} (indexed: {indexed})");
        }
    }

    #[test]
    fn string_ranges_are_refused_not_weakened() {
        let e = to_edge_filter(&Filter::gte("tb", "2026-02")).unwrap_err();
        assert_eq!(e.kind(), storage_core::ErrorKind::Unsupported);
    }
}
