//! Translation of the typed [`Filter`] into VikingDB's filter DSL
//! (<https://www.volcengine.com/docs/84313/1791133>): `must` / `must_not` (value in / not in a
//! list; string, int64 and bool fields), `range` / `range_out` (`gt`, `gte`, `lt`, `lte`;
//! int64 and float32 fields), combined with `and` / `or`.
//!
//! * `not` is pushed down to the leaves (De Morgan), where every operator has a negated form:
//!   `must` ↔ `must_not`, a range ↔ `range_out` with the complementary bounds
//!   (`range_out` matches when a value lies beyond *any* of its bounds: `{"gt": 5, "lt": 1}`
//!   is `x > 5 or x < 1`).
//! * `float32` fields (`hierarchy_level`) have no `must`: equality is a range with equal
//!   `gte`/`lte`, as the specification prescribes.
//! * Range bounds on strings cannot be expressed: `Unsupported` (`string_ranges` is false).
//! * Only scalar-indexed fields can be filtered on; others are `Unsupported`.
//! * Conditions that are constant (`in []`, an integer field equal to `2.5`) fold away, so
//!   an empty `in` never reaches the server with a meaning of its own.

use serde_json::{Map, Value as Json, json};
use storage_core::filter::{Range, Value};
use storage_core::{Filter, Result, StorageError};

use crate::schema::{FieldType, Schema};

/// A translated condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cond {
    /// Matches every record.
    All,
    /// Matches no record.
    Nothing,
    /// A VikingDB filter expression.
    Expr(Json),
}

impl Cond {
    /// The conjunction.
    pub(crate) fn and(parts: Vec<Cond>) -> Cond {
        let mut exprs = Vec::new();
        for p in parts {
            match p {
                Cond::Nothing => return Cond::Nothing,
                Cond::All => {}
                Cond::Expr(e) => exprs.push(e),
            }
        }
        match exprs.len() {
            0 => Cond::All,
            1 => Cond::Expr(exprs.remove(0)),
            _ => Cond::Expr(json!({"op": "and", "conds": exprs})),
        }
    }

    /// The disjunction.
    pub(crate) fn or(parts: Vec<Cond>) -> Cond {
        let mut exprs = Vec::new();
        for p in parts {
            match p {
                Cond::All => return Cond::All,
                Cond::Nothing => {}
                Cond::Expr(e) => exprs.push(e),
            }
        }
        match exprs.len() {
            0 => Cond::Nothing,
            1 => Cond::Expr(exprs.remove(0)),
            _ => Cond::Expr(json!({"op": "or", "conds": exprs})),
        }
    }

    /// `field in values` on a string field (a building block for internal conditions).
    pub(crate) fn must_str(field: &str, values: &[&str]) -> Cond {
        Cond::Expr(json!({"op": "must", "field": field, "conds": values}))
    }
}

/// Translates a validated filter.
///
/// # Errors
/// [`storage_core::ErrorKind::Unsupported`] for string ranges and non-filterable fields,
/// [`storage_core::ErrorKind::InvalidInput`] for a value whose type does not fit the field.
pub(crate) fn translate(filter: &Filter, schema: &Schema) -> Result<Cond> {
    leaf_or_tree(filter, schema, false)
}

fn leaf_or_tree(filter: &Filter, schema: &Schema, negate: bool) -> Result<Cond> {
    match filter {
        Filter::And(fs) | Filter::Or(fs) => {
            let parts = fs
                .iter()
                .map(|f| leaf_or_tree(f, schema, negate))
                .collect::<Result<Vec<_>>>()?;
            // not (a and b) = not a or not b
            let is_and = matches!(filter, Filter::And(_)) != negate;
            Ok(if is_and {
                Cond::and(parts)
            } else {
                Cond::or(parts)
            })
        }
        Filter::Not(inner) => leaf_or_tree(inner, schema, !negate),
        Filter::Eq(f, v) => membership(schema, f, std::slice::from_ref(v), negate),
        Filter::Ne(f, v) => membership(schema, f, std::slice::from_ref(v), !negate),
        Filter::In(f, vs) => membership(schema, f, vs, negate),
        Filter::NotIn(f, vs) => membership(schema, f, vs, !negate),
        Filter::Range(f, r) => range(schema, f, r, negate),
    }
}

fn type_error(field: &str, t: FieldType, v: &Value) -> StorageError {
    StorageError::invalid_input(format!(
        "filter value {v} for '{field}' does not fit the field's type {}",
        t.wire()
    ))
}

/// `field in values` (or `not in` when `negate`).
fn membership(schema: &Schema, field: &str, values: &[Value], negate: bool) -> Result<Cond> {
    let t = schema.filterable(field)?;
    let mut conds: Vec<Json> = Vec::new();
    for v in values {
        match (t, v) {
            (FieldType::Str, Value::Str(s)) => conds.push(Json::String(s.clone())),
            (FieldType::Bool, Value::Bool(b)) => conds.push(Json::Bool(*b)),
            (FieldType::Int64, Value::Int(i)) => conds.push(Json::from(*i)),
            // An integer field never equals a fractional number: the value drops out.
            (FieldType::Int64, Value::Float(x)) => {
                if x.fract() == 0.0 && x.abs() < 9.0e15 {
                    conds.push(Json::from(*x as i64));
                }
            }
            (FieldType::Float32, v) if v.is_number() => {
                conds.push(v.to_json());
            }
            _ => return Err(type_error(field, t, v)),
        }
    }
    if conds.is_empty() {
        return Ok(if negate { Cond::All } else { Cond::Nothing });
    }
    if t == FieldType::Float32 {
        // No `must` on float fields: equality is a degenerate range.
        let parts = conds
            .into_iter()
            .map(|c| {
                if negate {
                    Cond::Expr(json!({"op": "range_out", "field": field, "gt": c, "lt": c}))
                } else {
                    Cond::Expr(json!({"op": "range", "field": field, "gte": c, "lte": c}))
                }
            })
            .collect();
        return Ok(if negate {
            Cond::and(parts)
        } else {
            Cond::or(parts)
        });
    }
    let op = if negate { "must_not" } else { "must" };
    Ok(Cond::Expr(
        json!({"op": op, "field": field, "conds": conds}),
    ))
}

fn range(schema: &Schema, field: &str, r: &Range, negate: bool) -> Result<Cond> {
    if !r.is_numeric() {
        return Err(StorageError::unsupported(format!(
            "range on '{field}' compares strings; VikingDB ranges apply to int64 and float32 fields only"
        )));
    }
    let t = schema.filterable(field)?;
    if !matches!(t, FieldType::Int64 | FieldType::Float32) {
        let (_, v) = r.bounds().next().expect("validated range has a bound");
        return Err(type_error(field, t, v));
    }
    let mut m = Map::new();
    m.insert(
        "op".into(),
        Json::from(if negate { "range_out" } else { "range" }),
    );
    m.insert("field".into(), Json::from(field));
    for (op, v) in r.bounds() {
        // The complement of `x >= a` is `x < a`, and so on.
        let op = match (negate, op) {
            (false, op) => op,
            (true, "gte") => "lt",
            (true, "gt") => "lte",
            (true, "lte") => "gt",
            (true, _) => "gte",
        };
        m.insert(op.into(), v.to_json());
    }
    Ok(Cond::Expr(Json::Object(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(4, &[])
    }

    fn t(f: Filter) -> Result<Cond> {
        f.validate()?;
        translate(&f, &schema())
    }

    #[test]
    fn hierarchy_level_equality_is_a_range() {
        assert_eq!(
            t(Filter::eq("hierarchy_level", 2)).unwrap(),
            Cond::Expr(json!({"op": "range", "field": "hierarchy_level", "gte": 2, "lte": 2}))
        );
        assert_eq!(
            t(Filter::ne("hierarchy_level", 2)).unwrap(),
            Cond::Expr(json!({"op": "range_out", "field": "hierarchy_level", "gt": 2, "lt": 2}))
        );
    }

    #[test]
    fn negation_is_pushed_to_the_leaves() {
        let f = Filter::eq("user_id", "u1")
            .and(Filter::gte("importance", 3))
            .not();
        assert_eq!(
            t(f).unwrap(),
            Cond::Expr(json!({"op": "or", "conds": [
                {"op": "must_not", "field": "user_id", "conds": ["u1"]},
                {"op": "range_out", "field": "importance", "lt": 3}
            ]}))
        );
    }

    #[test]
    fn constants_fold() {
        assert_eq!(
            t(Filter::is_in("user_id", Vec::<String>::new())).unwrap(),
            Cond::Nothing
        );
        assert_eq!(
            t(Filter::not_in("user_id", Vec::<String>::new())).unwrap(),
            Cond::All
        );
        assert_eq!(t(Filter::eq("importance", 2.5)).unwrap(), Cond::Nothing);
        assert_eq!(
            t(Filter::Or(vec![
                Filter::is_in("user_id", Vec::<String>::new()),
                Filter::eq("user_id", "a")
            ]))
            .unwrap(),
            Cond::Expr(json!({"op": "must", "field": "user_id", "conds": ["a"]}))
        );
    }

    #[test]
    fn refusals() {
        use storage_core::ErrorKind;
        assert_eq!(
            t(Filter::between("time_bucket", "a", "b"))
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            t(Filter::eq("keywords", "x")).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            t(Filter::eq("title", "x")).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            t(Filter::eq("nope", "x")).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            t(Filter::eq("user_id", 5)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            t(Filter::gte("user_id", 5)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
