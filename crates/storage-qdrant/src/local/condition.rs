//! The embedded engine's filter: the constructors of [`crate::filter::translate`] for
//! `qdrant-edge` types.
//!
//! Ranges with string bounds never reach this module (see [`crate::filter::plan`]).

use qdrant_edge::external::ordered_float::OrderedFloat;
use qdrant_edge::{
    AnyVariants, Condition, FieldCondition, Filter as EdgeFilter, JsonPath, Match,
    Range as EdgeRange, ValueVariants,
};
use storage_core::Filter;
use storage_core::Result;

use crate::filter::{ConditionBuilder, NumericRange, translate};

/// The engine filter of `filter`.
///
/// # Errors
/// [`storage_core::ErrorKind::Unsupported`] for a string range (callers split those off
/// first; this is a guard, never a silent "match nothing").
pub(crate) fn to_edge_filter(filter: &Filter) -> Result<EdgeFilter> {
    Ok(match translate::<Edge>(filter)? {
        Condition::Filter(f) => f,
        c => Edge::filter_must(vec![c]),
    })
}

/// [`ConditionBuilder`] for the engine's types.
struct Edge;

impl Edge {
    fn filter_must(conditions: Vec<Condition>) -> EdgeFilter {
        EdgeFilter {
            must: Some(conditions),
            ..EdgeFilter::default()
        }
    }

    /// A one-segment path: the key verbatim, dots included.
    fn key(field: &str) -> JsonPath {
        JsonPath {
            first_key: field.to_owned(),
            rest: Vec::new(),
        }
    }

    fn field_match(field: &str, m: Match) -> Condition {
        Condition::Field(FieldCondition::new_match(Self::key(field), m))
    }
}

impl ConditionBuilder for Edge {
    type Condition = Condition;

    fn match_keyword(field: &str, value: &str) -> Condition {
        Self::field_match(
            field,
            Match::new_value(ValueVariants::String(value.to_owned())),
        )
    }

    fn match_integer(field: &str, value: i64) -> Condition {
        Self::field_match(field, Match::new_value(ValueVariants::Integer(value)))
    }

    fn match_bool(field: &str, value: bool) -> Condition {
        Self::field_match(field, Match::new_value(ValueVariants::Bool(value)))
    }

    fn match_keywords(field: &str, values: Vec<String>) -> Condition {
        Self::field_match(
            field,
            Match::new_any(AnyVariants::Strings(values.into_iter().collect())),
        )
    }

    fn match_integers(field: &str, values: Vec<i64>) -> Condition {
        Self::field_match(
            field,
            Match::new_any(AnyVariants::Integers(values.into_iter().collect())),
        )
    }

    fn range(field: &str, r: NumericRange) -> Condition {
        Condition::Field(FieldCondition::new_range(
            Self::key(field),
            EdgeRange {
                gt: r.gt.map(OrderedFloat),
                gte: r.gte.map(OrderedFloat),
                lt: r.lt.map(OrderedFloat),
                lte: r.lte.map(OrderedFloat),
            },
        ))
    }

    fn must(conditions: Vec<Condition>) -> Condition {
        Condition::Filter(Self::filter_must(conditions))
    }

    fn should(conditions: Vec<Condition>) -> Condition {
        Condition::Filter(EdgeFilter {
            should: Some(conditions),
            ..EdgeFilter::default()
        })
    }

    fn must_not(conditions: Vec<Condition>) -> Condition {
        Condition::Filter(EdgeFilter {
            must_not: Some(conditions),
            ..EdgeFilter::default()
        })
    }

    fn nothing() -> Condition {
        Condition::HasId(std::iter::empty::<qdrant_edge::PointId>().collect())
    }
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
    use storage_core::filter::Value;

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
                        field_name: Edge::key(field),
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
