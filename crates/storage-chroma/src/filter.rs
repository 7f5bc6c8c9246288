//! The typed `Filter` → Chroma `where` (<https://docs.trychroma.com/docs/querying-collections/metadata-filtering>).
//!
//! Chroma's `where` has `$eq`, `$ne`, `$in`, `$nin` on scalars, `$gt`/`$gte`/`$lt`/`$lte` on
//! numbers only, `$and`/`$or` of at least one clause, one operator per field object, and
//! homogeneous `$in` lists. `$ne`/`$nin` match records that lack the key, as
//! `Filter::matches` says. `Not` is pushed down (De Morgan; `Eq`↔`Ne`, `In`↔`NotIn`).
//!
//! Chroma compares a float operand with an integer-valued field by truncating the operand
//! (`$eq: 4.5` matches the integer 4, `$lt: 2.5` misses the integer 2; checked against a
//! 1.x server), while integer operands compare exactly with both kinds. So integral floats
//! are sent as integers and other floats are never sent.
//!
//! What `where` cannot express (ranges with string bounds such as `time_bucket`, a negated
//! range, which must also match records lacking the field or holding another type,
//! non-integral float operands, and conditions on `id`/`document`, which are not metadata)
//! is never dropped: the top-level
//! conjuncts holding it become a *residual* filter that the backend evaluates in process on
//! every record the native part selects (see `Plan`).

use serde_json::{Value as Json, json};
use storage_core::filter::Value;
use storage_core::model::JsonMap;
use storage_core::{Filter, Result, StorageError, payload};

/// A translated condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Where {
    /// Matches every record (no `where`).
    All,
    /// Matches no record (the call returns nothing without asking the server).
    Nothing,
    /// A `where` clause.
    Clause(Json),
}

impl Where {
    /// The clause to send, `None` for [`Where::All`] (and [`Where::Nothing`], which callers
    /// check first).
    pub(crate) fn clause(&self) -> Option<&Json> {
        match self {
            Where::Clause(j) => Some(j),
            _ => None,
        }
    }

    fn and(parts: Vec<Where>) -> Where {
        let mut clauses = Vec::new();
        for p in parts {
            match p {
                Where::Nothing => return Where::Nothing,
                Where::All => {}
                Where::Clause(c) => clauses.push(c),
            }
        }
        match clauses.len() {
            0 => Where::All,
            1 => Where::Clause(clauses.pop().expect("one")),
            _ => Where::Clause(json!({ "$and": clauses })),
        }
    }

    fn or(parts: Vec<Where>) -> Where {
        let mut clauses = Vec::new();
        for p in parts {
            match p {
                Where::All => return Where::All,
                Where::Nothing => {}
                Where::Clause(c) => clauses.push(c),
            }
        }
        match clauses.len() {
            0 => Where::Nothing,
            1 => Where::Clause(clauses.pop().expect("one")),
            _ => Where::Clause(json!({ "$or": clauses })),
        }
    }
}

/// A filter split into what Chroma evaluates and what the backend evaluates in process.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Sent as `where`.
    pub native: Where,
    /// Evaluated with `Filter::matches` on each record the native part selects (its metadata
    /// plus `id` and `document`); `None` when everything is native.
    pub residual: Option<Filter>,
}

impl Plan {
    /// Whether no record can match.
    pub(crate) fn is_empty(&self) -> bool {
        self.native == Where::Nothing
    }

    /// Whether the residual accepts `record`.
    pub(crate) fn accepts(&self, record: &JsonMap) -> bool {
        self.residual.as_ref().is_none_or(|f| f.matches(record))
    }
}

/// Validates and plans a filter.
///
/// # Errors
/// `InvalidInput` for a malformed filter (bad field name, NaN, mixed range);
/// `Unsupported` for conditions on the JSON-encoded list fields (`keywords`, ...), which hold
/// one JSON string and cannot be compared element-wise.
pub(crate) fn plan(filter: Option<&Filter>) -> Result<Plan> {
    let Some(filter) = filter else {
        return Ok(Plan {
            native: Where::All,
            residual: None,
        });
    };
    filter.validate()?;
    if let Some(field) = filter
        .fields()
        .into_iter()
        .find(|k| payload::JSON_ENCODED_FIELDS.contains(k))
    {
        return Err(StorageError::unsupported(format!(
            "'{field}' is stored JSON-encoded and cannot be filtered element-wise"
        )));
    }
    let conjuncts = match filter {
        Filter::And(parts) => parts.clone(),
        other => vec![other.clone()],
    };
    let mut native = Vec::new();
    let mut residual = Vec::new();
    for c in conjuncts {
        match translate(&c, false) {
            Some(w) => native.push(w),
            None => residual.push(c),
        }
    }
    Ok(Plan {
        native: Where::and(native),
        residual: match residual.len() {
            0 => None,
            1 => residual.pop(),
            _ => Some(Filter::And(residual)),
        },
    })
}

/// The operand to send: integral floats as integers; `None` for other floats (see the
/// module docs).
fn operand(v: &Value) -> Option<Value> {
    match v {
        Value::Float(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Some(Value::Int(*x as i64)),
        Value::Float(_) => None,
        other => Some(other.clone()),
    }
}

fn is_metadata_key(field: &str) -> bool {
    field != payload::FIELD_ID && field != payload::FIELD_DOCUMENT
}

/// `None` when `filter` (negated when `neg`) has no exact `where` form.
fn translate(filter: &Filter, neg: bool) -> Option<Where> {
    match filter {
        Filter::Eq(f, v) | Filter::Ne(f, v) => {
            if !is_metadata_key(f) {
                return None;
            }
            let v = operand(v)?;
            let equal = matches!(filter, Filter::Eq(..)) != neg;
            let op = if equal { "$eq" } else { "$ne" };
            Some(Where::Clause(json!({ f: { op: v.to_json() } })))
        }
        Filter::In(f, vs) | Filter::NotIn(f, vs) => {
            if !is_metadata_key(f) {
                return None;
            }
            let member = matches!(filter, Filter::In(..)) != neg;
            if vs.is_empty() {
                return Some(if member { Where::Nothing } else { Where::All });
            }
            let vs = vs.iter().map(operand).collect::<Option<Vec<_>>>()?;
            let homogeneous = vs
                .iter()
                .all(|v| std::mem::discriminant(v) == std::mem::discriminant(&vs[0]));
            let values: Vec<Json> = vs.iter().map(Value::to_json).collect();
            if homogeneous {
                let op = if member { "$in" } else { "$nin" };
                Some(Where::Clause(json!({ f: { op: values } })))
            } else {
                // Chroma wants one type per list: a union of equalities instead.
                let op = if member { "$eq" } else { "$ne" };
                let parts = values
                    .into_iter()
                    .map(|v| Where::Clause(json!({ f: { op: v } })))
                    .collect();
                Some(if member {
                    Where::or(parts)
                } else {
                    Where::and(parts)
                })
            }
        }
        Filter::Range(f, r) => {
            if neg || !r.is_numeric() || !is_metadata_key(f) {
                return None;
            }
            let parts = r
                .bounds()
                .map(|(op, v)| {
                    let v = operand(v)?;
                    Some(Where::Clause(
                        json!({ f: { format!("${op}"): v.to_json() } }),
                    ))
                })
                .collect::<Option<Vec<_>>>()?;
            Some(Where::and(parts))
        }
        Filter::And(fs) | Filter::Or(fs) => {
            let conj = matches!(filter, Filter::And(_)) != neg;
            let parts = fs
                .iter()
                .map(|f| translate(f, neg))
                .collect::<Option<Vec<_>>>()?;
            Some(if conj {
                Where::and(parts)
            } else {
                Where::or(parts)
            })
        }
        Filter::Not(inner) => translate(inner, !neg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(f: Filter) -> Where {
        let p = plan(Some(&f)).unwrap();
        assert!(p.residual.is_none(), "{f:?} should be native");
        p.native
    }

    #[test]
    fn operators_translate() {
        assert_eq!(
            native(Filter::eq("user_id", "u1")),
            Where::Clause(json!({"user_id": {"$eq": "u1"}}))
        );
        assert_eq!(
            native(Filter::eq("a", 1).not()),
            Where::Clause(json!({"a": {"$ne": 1}}))
        );
        assert_eq!(
            native(Filter::is_in("a", [1, 2])),
            Where::Clause(json!({"a": {"$in": [1, 2]}}))
        );
        assert_eq!(
            native(Filter::not_in("a", ["x"])),
            Where::Clause(json!({"a": {"$nin": ["x"]}}))
        );
        assert_eq!(
            native(Filter::In(
                "a".into(),
                vec![Value::Int(1), Value::Str("x".into())]
            )),
            Where::Clause(json!({"$or": [{"a": {"$eq": 1}}, {"a": {"$eq": "x"}}]}))
        );
        assert_eq!(
            native(Filter::In(
                "a".into(),
                vec![Value::Int(1), Value::Float(2.0)]
            )),
            Where::Clause(json!({"a": {"$in": [1, 2]}}))
        );
        assert_eq!(
            native(Filter::gte("a", 3.0)),
            Where::Clause(json!({"a": {"$gte": 3}}))
        );
        assert_eq!(
            native(Filter::between("importance", 3, 5)),
            Where::Clause(
                json!({"$and": [{"importance": {"$gte": 3}}, {"importance": {"$lte": 5}}]})
            )
        );
        assert_eq!(
            native(Filter::eq("a", 1).or(Filter::eq("b", 2)).not()),
            Where::Clause(json!({"$and": [{"a": {"$ne": 1}}, {"b": {"$ne": 2}}]}))
        );
        assert_eq!(
            native(Filter::is_in("a", Vec::<i64>::new())),
            Where::Nothing
        );
        assert_eq!(native(Filter::not_in("a", Vec::<i64>::new())), Where::All);
        assert_eq!(native(Filter::Or(vec![])), Where::Nothing);
        assert_eq!(native(Filter::And(vec![])), Where::All);
        assert_eq!(
            native(Filter::eq("a", 1).or(Filter::not_in("b", Vec::<i64>::new()))),
            Where::All
        );
    }

    #[test]
    fn inexpressible_conjuncts_become_residual() {
        let f = Filter::eq("user_id", "u")
            .and(Filter::between("time_bucket", "2026-02-01", "2026-02-05"))
            .and(Filter::gte("importance", 3).not());
        let p = plan(Some(&f)).unwrap();
        assert_eq!(p.native, Where::Clause(json!({"user_id": {"$eq": "u"}})));
        assert_eq!(
            p.residual,
            Some(Filter::And(vec![
                Filter::between("time_bucket", "2026-02-01", "2026-02-05"),
                Filter::gte("importance", 3).not()
            ]))
        );
        for f in [
            Filter::eq("a", 4.5),
            Filter::gt("a", 2.5),
            Filter::is_in("a", [1.5]),
            Filter::ne("a", 0.1),
        ] {
            let p = plan(Some(&f)).unwrap();
            assert_eq!(p.native, Where::All, "{f:?}");
            assert_eq!(p.residual, Some(f));
        }
        let p = plan(Some(&Filter::eq("id", "x"))).unwrap();
        assert_eq!(p.native, Where::All);
        assert!(p.residual.is_some());
    }

    #[test]
    fn refuses_json_fields_and_bad_keys() {
        let e = plan(Some(&Filter::eq("keywords", "a"))).unwrap_err();
        assert_eq!(e.kind(), storage_core::ErrorKind::Unsupported);
        let e = plan(Some(&Filter::eq("a b", 1))).unwrap_err();
        assert_eq!(e.kind(), storage_core::ErrorKind::InvalidInput);
    }
}
