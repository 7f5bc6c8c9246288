//! The gRPC filter: the constructors of [`crate::filter::translate`] for the server's
//! messages ([`qdrant_client::qdrant::Filter`], see the
//! [filtering reference](https://qdrant.tech/documentation/concepts/filtering/)).
//!
//! Ranges with string bounds never reach this module (see [`crate::filter::plan`]).

use qdrant_client::qdrant::condition::ConditionOneOf;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::{
    Condition, FieldCondition, Filter as GrpcFilter, HasIdCondition, Match, PointId, Range,
    RepeatedIntegers, RepeatedStrings,
};
use storage_core::{Filter, Result};

use crate::filter::{ConditionBuilder, NumericRange, translate};

/// The server filter of `filter`.
///
/// # Errors
/// [`storage_core::ErrorKind::Unsupported`] for a string range (callers split those off
/// first; this is a guard, never a silent "match nothing").
pub(crate) fn to_grpc_filter(filter: &Filter) -> Result<GrpcFilter> {
    Ok(match translate::<Grpc>(filter)? {
        Condition {
            condition_one_of: Some(ConditionOneOf::Filter(f)),
        } => f,
        c => GrpcFilter {
            must: vec![c],
            ..GrpcFilter::default()
        },
    })
}

/// `filter and id in ids`.
pub(crate) fn with_ids(filter: Option<GrpcFilter>, ids: Vec<PointId>) -> GrpcFilter {
    let mut must = vec![Condition {
        condition_one_of: Some(ConditionOneOf::HasId(HasIdCondition { has_id: ids })),
    }];
    if let Some(f) = filter {
        must.push(nested(f));
    }
    GrpcFilter {
        must,
        ..GrpcFilter::default()
    }
}

/// The server's JSON path of a top-level payload key: the key itself, or quoted when it
/// contains characters a path reads specially (our field names allow `.`).
pub(crate) fn key_path(field: &str) -> String {
    if field
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        field.to_owned()
    } else {
        format!("\"{field}\"")
    }
}

fn nested(filter: GrpcFilter) -> Condition {
    Condition {
        condition_one_of: Some(ConditionOneOf::Filter(filter)),
    }
}

/// [`ConditionBuilder`] for the gRPC messages.
struct Grpc;

impl Grpc {
    fn field(condition: FieldCondition) -> Condition {
        Condition {
            condition_one_of: Some(ConditionOneOf::Field(condition)),
        }
    }

    fn field_match(field: &str, m: MatchValue) -> Condition {
        Self::field(FieldCondition {
            key: key_path(field),
            r#match: Some(Match {
                match_value: Some(m),
            }),
            ..FieldCondition::default()
        })
    }
}

impl ConditionBuilder for Grpc {
    type Condition = Condition;

    fn match_keyword(field: &str, value: &str) -> Condition {
        Self::field_match(field, MatchValue::Keyword(value.to_owned()))
    }

    fn match_integer(field: &str, value: i64) -> Condition {
        Self::field_match(field, MatchValue::Integer(value))
    }

    fn match_bool(field: &str, value: bool) -> Condition {
        Self::field_match(field, MatchValue::Boolean(value))
    }

    fn match_keywords(field: &str, values: Vec<String>) -> Condition {
        Self::field_match(
            field,
            MatchValue::Keywords(RepeatedStrings { strings: values }),
        )
    }

    fn match_integers(field: &str, values: Vec<i64>) -> Condition {
        Self::field_match(
            field,
            MatchValue::Integers(RepeatedIntegers { integers: values }),
        )
    }

    fn range(field: &str, r: NumericRange) -> Condition {
        Self::field(FieldCondition {
            key: key_path(field),
            range: Some(Range {
                gt: r.gt,
                gte: r.gte,
                lt: r.lt,
                lte: r.lte,
            }),
            ..FieldCondition::default()
        })
    }

    fn must(conditions: Vec<Condition>) -> Condition {
        nested(GrpcFilter {
            must: conditions,
            ..GrpcFilter::default()
        })
    }

    fn should(conditions: Vec<Condition>) -> Condition {
        nested(GrpcFilter {
            should: conditions,
            ..GrpcFilter::default()
        })
    }

    fn must_not(conditions: Vec<Condition>) -> Condition {
        nested(GrpcFilter {
            must_not: conditions,
            ..GrpcFilter::default()
        })
    }

    fn nothing() -> Condition {
        Condition {
            condition_one_of: Some(ConditionOneOf::HasId(HasIdCondition { has_id: vec![] })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(c: &Condition) -> &FieldCondition {
        match &c.condition_one_of {
            Some(ConditionOneOf::Field(f)) => f,
            other => panic!("not a field condition: {other:?}"),
        }
    }

    #[test]
    fn leaves_and_combinators_translate() {
        let f = to_grpc_filter(&Filter::eq("user_id", "u")).unwrap();
        assert_eq!(f.must.len(), 1);
        let fc = field_of(&f.must[0]);
        assert_eq!(fc.key, "user_id");
        assert_eq!(
            fc.r#match.as_ref().unwrap().match_value,
            Some(MatchValue::Keyword("u".into()))
        );

        let f = to_grpc_filter(&Filter::eq("a.b", 1.5)).unwrap();
        let fc = field_of(&f.must[0]);
        assert_eq!(fc.key, "\"a.b\"");
        assert_eq!(
            fc.range,
            Some(Range {
                gte: Some(1.5),
                lte: Some(1.5),
                ..Range::default()
            })
        );

        let f = to_grpc_filter(&Filter::is_in("n", [1, 2]).or(Filter::ne("b", true))).unwrap();
        assert_eq!(f.should.len(), 2);
        assert_eq!(
            field_of(&f.should[0]).r#match.as_ref().unwrap().match_value,
            Some(MatchValue::Integers(RepeatedIntegers {
                integers: vec![1, 2]
            }))
        );
        let f = to_grpc_filter(&Filter::Or(vec![])).unwrap();
        assert!(matches!(
            &f.must[0].condition_one_of,
            Some(ConditionOneOf::HasId(h)) if h.has_id.is_empty()
        ));
        let e = to_grpc_filter(&Filter::gte("time_bucket", "2026-02")).unwrap_err();
        assert_eq!(e.kind(), storage_core::ErrorKind::Unsupported);
        assert_eq!(key_path("create_time_ts"), "create_time_ts");
    }
}
