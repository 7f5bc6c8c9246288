//! The typed filter language and the tenant [`Scope`].
//!
//! A [`Filter`] is a tree of comparisons on payload fields combined with `and`, `or` and `not`.
//! Every backend translates it natively; an operator a backend cannot express makes the whole
//! call fail with [`crate::ErrorKind::Unsupported`]: conditions are never dropped or weakened.
//!
//! The original passed filters as loose maps; [`Filter::from_loose_map`] parses that form:
//!
//! | loose form                                   | filter                                  |
//! |----------------------------------------------|-----------------------------------------|
//! | `{"k": v}`                                   | `k == v`                                |
//! | `{"k": [a, b]}`                              | `k in [a, b]`                           |
//! | `{"k": {"$gte": n, "$lte": m}}`              | `n <= k <= m` (also `$gt`, `$lt`)       |
//! | `{"k": {"$eq": v}}`, `{"$ne": v}`            | `k == v`, `k != v`                      |
//! | `{"k": {"$in": [..]}}`, `{"$nin": [..]}`     | `k in ..`, `k not in ..`                |
//! | `{"$and": [..]}`, `{"$or": [..]}`, `{"$not": {..}}` | nested combinations              |
//! | `{"k": null}`                                | no condition (Python callers pass `None` for "unset") |
//!
//! Several keys in one map are combined with `and`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Result, StorageError};
use crate::model::JsonMap;

/// A scalar value compared by a filter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// Boolean.
    Bool(bool),
    /// Signed integer.
    Int(i64),
    /// Floating point number (finite).
    Float(f64),
    /// UTF-8 string.
    Str(String),
}

impl Value {
    /// The value as JSON.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Str(s) => Json::String(s.clone()),
        }
    }

    /// The value as `f64` when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Whether the value is a number.
    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Float(_))
    }

    /// Converts a JSON scalar. Arrays, objects, null and non-finite numbers are refused,
    /// naming `field`.
    pub fn from_json(field: &str, json: &Json) -> Result<Value> {
        match json {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::Int(i))
                } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
                    Ok(Value::Float(f))
                } else {
                    Err(StorageError::invalid_input(format!(
                        "filter value for '{field}' is out of range: {n}"
                    )))
                }
            }
            Json::String(s) => Ok(Value::Str(s.clone())),
            other => Err(StorageError::invalid_input(format!(
                "filter value for '{field}' must be a string, number or boolean, got {other}"
            ))),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Str(s.clone())
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i.into())
    }
}
impl From<u8> for Value {
    fn from(i: u8) -> Self {
        Value::Int(i.into())
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// Bounds of a range condition; at least one is set. Bounds compare numbers with numbers and
/// strings with strings (lexicographically, by UTF-8 bytes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// Exclusive lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gt: Option<Value>,
    /// Inclusive lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gte: Option<Value>,
    /// Exclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lt: Option<Value>,
    /// Inclusive upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lte: Option<Value>,
}

impl Range {
    /// The bounds that are set, with their operator names.
    pub fn bounds(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        [
            ("gt", self.gt.as_ref()),
            ("gte", self.gte.as_ref()),
            ("lt", self.lt.as_ref()),
            ("lte", self.lte.as_ref()),
        ]
        .into_iter()
        .filter_map(|(op, v)| v.map(|v| (op, v)))
    }

    /// Whether every bound is a number.
    pub fn is_numeric(&self) -> bool {
        self.bounds().all(|(_, v)| v.is_number())
    }
}

/// A condition on stored fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// `field == value`.
    Eq(String, Value),
    /// `field != value` (a missing field also matches).
    Ne(String, Value),
    /// `field` equals one of the values (an empty list matches nothing).
    In(String, Vec<Value>),
    /// `field` equals none of the values (a missing field also matches).
    NotIn(String, Vec<Value>),
    /// `field` within the bounds.
    Range(String, Range),
    /// All of the conditions (an empty list matches everything).
    And(Vec<Filter>),
    /// Any of the conditions (an empty list matches nothing).
    Or(Vec<Filter>),
    /// Negation.
    Not(Box<Filter>),
}

impl Filter {
    /// `field == value`.
    pub fn eq(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Eq(field.into(), value.into())
    }

    /// `field != value`.
    pub fn ne(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Ne(field.into(), value.into())
    }

    /// `field in values`.
    pub fn is_in<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::In(field.into(), values.into_iter().map(Into::into).collect())
    }

    /// `field not in values`.
    pub fn not_in<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Filter {
        Filter::NotIn(field.into(), values.into_iter().map(Into::into).collect())
    }

    /// `field >= value`.
    pub fn gte(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Range(
            field.into(),
            Range {
                gte: Some(value.into()),
                ..Range::default()
            },
        )
    }

    /// `field > value`.
    pub fn gt(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Range(
            field.into(),
            Range {
                gt: Some(value.into()),
                ..Range::default()
            },
        )
    }

    /// `field <= value`.
    pub fn lte(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Range(
            field.into(),
            Range {
                lte: Some(value.into()),
                ..Range::default()
            },
        )
    }

    /// `field < value`.
    pub fn lt(field: impl Into<String>, value: impl Into<Value>) -> Filter {
        Filter::Range(
            field.into(),
            Range {
                lt: Some(value.into()),
                ..Range::default()
            },
        )
    }

    /// `low <= field <= high`.
    pub fn between(
        field: impl Into<String>,
        low: impl Into<Value>,
        high: impl Into<Value>,
    ) -> Filter {
        Filter::Range(
            field.into(),
            Range {
                gte: Some(low.into()),
                lte: Some(high.into()),
                ..Range::default()
            },
        )
    }

    /// `self and other`, flattening nested `and`s.
    pub fn and(self, other: Filter) -> Filter {
        match (self, other) {
            (Filter::And(mut a), Filter::And(b)) => {
                a.extend(b);
                Filter::And(a)
            }
            (Filter::And(mut a), f) => {
                a.push(f);
                Filter::And(a)
            }
            (f, Filter::And(mut b)) => {
                b.insert(0, f);
                Filter::And(b)
            }
            (a, b) => Filter::And(vec![a, b]),
        }
    }

    /// `self or other`.
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut a) => {
                a.push(other);
                Filter::Or(a)
            }
            f => Filter::Or(vec![f, other]),
        }
    }

    /// Negation.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }

    /// Combines an optional filter with an optional extra condition.
    pub fn and_opt(filter: Option<Filter>, extra: Option<Filter>) -> Option<Filter> {
        match (filter, extra) {
            (Some(a), Some(b)) => Some(a.and(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every field name the filter mentions, depth first.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::Eq(f, _)
            | Filter::Ne(f, _)
            | Filter::In(f, _)
            | Filter::NotIn(f, _)
            | Filter::Range(f, _) => out.push(f),
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.collect_fields(out)),
            Filter::Not(f) => f.collect_fields(out),
        }
    }

    /// Nesting depth: 1 for a condition, plus one per enclosing `and` / `or` / `not`.
    /// Iterative, so a filter of any depth is measured without recursion.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((f, d)) = stack.pop() {
            deepest = deepest.max(d);
            match f {
                Filter::And(fs) | Filter::Or(fs) => stack.extend(fs.iter().map(|x| (x, d + 1))),
                Filter::Not(x) => stack.push((x, d + 1)),
                _ => {}
            }
        }
        deepest
    }

    /// Checks the structure: nesting at most [`MAX_FILTER_DEPTH`] levels, field names are identifiers (`[A-Za-z_][A-Za-z0-9_.]*`, at most
    /// 128 bytes, so they can never break a backend's filter syntax), ranges have a bound and
    /// do not mix strings with numbers, floats are finite.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let depth = self.depth();
        if depth > MAX_FILTER_DEPTH {
            return Err(StorageError::invalid_input(format!(
                "the filter nests {depth} levels of and/or/not, the limit is {MAX_FILTER_DEPTH}"
            )));
        }
        self.validate_nodes()
    }

    fn validate_nodes(&self) -> Result<()> {
        match self {
            Filter::Eq(f, v) | Filter::Ne(f, v) => {
                validate_field_name(f)?;
                validate_value(f, v)
            }
            Filter::In(f, vs) | Filter::NotIn(f, vs) => {
                validate_field_name(f)?;
                vs.iter().try_for_each(|v| validate_value(f, v))
            }
            Filter::Range(f, r) => {
                validate_field_name(f)?;
                if r.bounds().next().is_none() {
                    return Err(StorageError::invalid_input(format!(
                        "range filter on '{f}' has no bound"
                    )));
                }
                let numeric = r.bounds().filter(|(_, v)| v.is_number()).count();
                let strings = r
                    .bounds()
                    .filter(|(_, v)| matches!(v, Value::Str(_)))
                    .count();
                if numeric + strings != r.bounds().count() || (numeric > 0 && strings > 0) {
                    return Err(StorageError::invalid_input(format!(
                        "range filter on '{f}' must compare only numbers or only strings"
                    )));
                }
                r.bounds().try_for_each(|(_, v)| validate_value(f, v))
            }
            Filter::And(fs) | Filter::Or(fs) => fs.iter().try_for_each(Filter::validate_nodes),
            Filter::Not(f) => f.validate_nodes(),
        }
    }

    /// Evaluates the filter against a JSON object (a flattened payload). Backends without a
    /// native form of some condition never call this to weaken a query; it serves in-process
    /// engines, fakes and tests.
    pub fn matches(&self, record: &JsonMap) -> bool {
        match self {
            Filter::Eq(f, v) => record.get(f).is_some_and(|j| json_eq(j, v)),
            Filter::Ne(f, v) => !record.get(f).is_some_and(|j| json_eq(j, v)),
            Filter::In(f, vs) => record
                .get(f)
                .is_some_and(|j| vs.iter().any(|v| json_eq(j, v))),
            Filter::NotIn(f, vs) => !record
                .get(f)
                .is_some_and(|j| vs.iter().any(|v| json_eq(j, v))),
            Filter::Range(f, r) => record.get(f).is_some_and(|j| in_range(j, r)),
            Filter::And(fs) => fs.iter().all(|f| f.matches(record)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(record)),
            Filter::Not(f) => !f.matches(record),
        }
    }

    /// Parses the original's loose filter map (see the module docs). Returns `None` when the
    /// map holds no condition.
    ///
    /// # Errors
    /// [`crate::ErrorKind::InvalidInput`] for an unknown `$` operator, a non-scalar value, or an
    /// operator object that mixes operators with plain keys.
    pub fn from_loose_map(map: &JsonMap) -> Result<Option<Filter>> {
        Filter::from_loose_map_at(map, 1)
    }

    fn from_loose_map_at(map: &JsonMap, depth: usize) -> Result<Option<Filter>> {
        if depth > MAX_FILTER_DEPTH {
            return Err(StorageError::invalid_input(format!(
                "the filter nests more than {MAX_FILTER_DEPTH} levels of $and/$or/$not, the limit is {MAX_FILTER_DEPTH}"
            )));
        }
        let mut parts = Vec::new();
        for (key, value) in map {
            if let Some(f) = parse_loose_entry(key, value, depth)? {
                parts.push(f);
            }
        }
        let filter = match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Filter::And(parts)),
        };
        if let Some(f) = &filter {
            f.validate()?;
        }
        Ok(filter)
    }

    /// Parses a loose filter given as JSON text or a JSON value (see [`Filter::from_loose_map`]).
    pub fn from_loose_json(json: &Json) -> Result<Option<Filter>> {
        match json {
            Json::Null => Ok(None),
            Json::Object(map) => Filter::from_loose_map(map),
            other => Err(StorageError::invalid_input(format!(
                "a filter must be a JSON object, got {other}"
            ))),
        }
    }
}

fn parse_loose_entry(key: &str, value: &Json, depth: usize) -> Result<Option<Filter>> {
    match key {
        "$and" | "$or" => {
            let items = value.as_array().ok_or_else(|| {
                StorageError::invalid_input(format!("'{key}' takes a list of filter objects"))
            })?;
            let mut parts = Vec::with_capacity(items.len());
            for item in items {
                let map = item.as_object().ok_or_else(|| {
                    StorageError::invalid_input(format!("'{key}' takes a list of filter objects"))
                })?;
                parts.push(
                    Filter::from_loose_map_at(map, depth + 1)?.unwrap_or(Filter::And(Vec::new())),
                );
            }
            Ok(Some(if key == "$and" {
                Filter::And(parts)
            } else {
                Filter::Or(parts)
            }))
        }
        "$not" => {
            let map = value
                .as_object()
                .ok_or_else(|| StorageError::invalid_input("'$not' takes one filter object"))?;
            Ok(Filter::from_loose_map_at(map, depth + 1)?.map(Filter::not))
        }
        k if k.starts_with('$') => Err(StorageError::invalid_input(format!(
            "unknown filter operator '{k}' (expected $and, $or or $not at the top level)"
        ))),
        field => match value {
            Json::Null => Ok(None),
            Json::Array(items) => Ok(Some(Filter::In(
                field.to_owned(),
                items
                    .iter()
                    .map(|v| Value::from_json(field, v))
                    .collect::<Result<_>>()?,
            ))),
            Json::Object(ops) => parse_operator_object(field, ops).map(Some),
            scalar => Ok(Some(Filter::Eq(
                field.to_owned(),
                Value::from_json(field, scalar)?,
            ))),
        },
    }
}

fn parse_operator_object(field: &str, ops: &JsonMap) -> Result<Filter> {
    let mut range = Range::default();
    let mut parts = Vec::new();
    for (op, v) in ops {
        let list = || -> Result<Vec<Value>> {
            v.as_array()
                .ok_or_else(|| {
                    StorageError::invalid_input(format!("'{op}' on '{field}' takes a list"))
                })?
                .iter()
                .map(|x| Value::from_json(field, x))
                .collect()
        };
        match op.as_str() {
            "$gt" => range.gt = Some(Value::from_json(field, v)?),
            "$gte" => range.gte = Some(Value::from_json(field, v)?),
            "$lt" => range.lt = Some(Value::from_json(field, v)?),
            "$lte" => range.lte = Some(Value::from_json(field, v)?),
            "$eq" => parts.push(Filter::Eq(field.to_owned(), Value::from_json(field, v)?)),
            "$ne" => parts.push(Filter::Ne(field.to_owned(), Value::from_json(field, v)?)),
            "$in" => parts.push(Filter::In(field.to_owned(), list()?)),
            "$nin" => parts.push(Filter::NotIn(field.to_owned(), list()?)),
            other => {
                return Err(StorageError::invalid_input(format!(
                    "unknown filter operator '{other}' on '{field}' (expected $eq, $ne, $in, $nin, $gt, $gte, $lt, $lte)"
                )));
            }
        }
    }
    if range.bounds().next().is_some() {
        parts.push(Filter::Range(field.to_owned(), range));
    }
    match parts.len() {
        0 => Err(StorageError::invalid_input(format!(
            "empty operator object for '{field}'"
        ))),
        1 => Ok(parts.pop().expect("one part")),
        _ => Ok(Filter::And(parts)),
    }
}

/// Deepest accepted nesting of `and` / `or` / `not` in a filter (the loose map form
/// included). Deeper filters are refused before any backend translates them (a translation
/// recurses and would overflow a thread's stack).
pub const MAX_FILTER_DEPTH: usize = 32;

/// Maximum length of a filter field name, in bytes.
pub const MAX_FIELD_NAME_LEN: usize = 128;

/// Checks that `name` is an identifier usable as a field name in every backend:
/// `[A-Za-z_][A-Za-z0-9_.]*`, 1 to [`MAX_FIELD_NAME_LEN`] bytes.
pub fn validate_field_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if ok_first && ok_rest && name.len() <= MAX_FIELD_NAME_LEN {
        Ok(())
    } else {
        Err(StorageError::invalid_input(format!(
            "filter field {name:?} is not a field name (expected [A-Za-z_][A-Za-z0-9_.]*, at most {MAX_FIELD_NAME_LEN} bytes)"
        )))
    }
}

fn validate_value(field: &str, v: &Value) -> Result<()> {
    match v {
        Value::Float(f) if !f.is_finite() => Err(StorageError::invalid_input(format!(
            "filter value for '{field}' must be finite, got {f}"
        ))),
        _ => Ok(()),
    }
}

fn json_eq(j: &Json, v: &Value) -> bool {
    match (j, v) {
        (Json::String(a), Value::Str(b)) => a == b,
        (Json::Bool(a), Value::Bool(b)) => a == b,
        (Json::Number(n), Value::Int(i)) => n
            .as_i64()
            .map_or_else(|| n.as_f64() == Some(*i as f64), |a| a == *i),
        (Json::Number(n), Value::Float(f)) => n.as_f64() == Some(*f),
        _ => false,
    }
}

fn in_range(j: &Json, r: &Range) -> bool {
    r.bounds().all(|(op, bound)| {
        let ord = match (j, bound) {
            (Json::Number(n), b) if b.is_number() => match (n.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => a.partial_cmp(&b),
                _ => None,
            },
            (Json::String(a), Value::Str(b)) => Some(a.as_str().cmp(b.as_str())),
            _ => None,
        };
        let Some(ord) = ord else { return false };
        match op {
            "gt" => ord.is_gt(),
            "gte" => ord.is_ge(),
            "lt" => ord.is_lt(),
            _ => ord.is_le(),
        }
    })
}

/// The tenant triple. Set fields become equality conditions on `user_id`, `device_id` and
/// `agent_id`; unset fields do not restrict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// User identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Device identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// Agent identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
}

impl Scope {
    /// No restriction.
    pub fn any() -> Self {
        Scope::default()
    }

    /// Restrict to one user.
    pub fn user(user_id: impl Into<String>) -> Self {
        Scope {
            user_id: Some(user_id.into()),
            ..Scope::default()
        }
    }

    /// Restrict to one full tenant triple.
    pub fn tenant(
        user_id: impl Into<String>,
        device_id: impl Into<String>,
        agent_id: impl Into<String>,
    ) -> Self {
        Scope {
            user_id: Some(user_id.into()),
            device_id: Some(device_id.into()),
            agent_id: Some(agent_id.into()),
        }
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.device_id.is_none() && self.agent_id.is_none()
    }

    /// The scope as a filter (`None` when empty).
    pub fn to_filter(&self) -> Option<Filter> {
        let mut parts: Vec<Filter> = [
            ("user_id", &self.user_id),
            ("device_id", &self.device_id),
            ("agent_id", &self.agent_id),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| Filter::eq(k, v)))
        .collect();
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Filter::And(parts)),
        }
    }

    /// `filter and scope`, the combined condition a backend must apply.
    pub fn apply(&self, filter: Option<&Filter>) -> Option<Filter> {
        Filter::and_opt(filter.cloned(), self.to_filter())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nesting_deeper_than_the_limit_is_refused_without_recursion() {
        let mut f = Filter::eq("user_id", "u");
        for _ in 0..MAX_FILTER_DEPTH - 1 {
            f = f.not();
        }
        assert_eq!(f.depth(), MAX_FILTER_DEPTH);
        assert!(f.validate().is_ok());
        let e = f.not().validate().unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("limit is 32"), "{e}");

        // The loose map form: a thousand levels of $not.
        let mut loose = serde_json::json!({"user_id": "u"});
        for _ in 0..1000 {
            loose = serde_json::json!({"$not": loose});
        }
        let e = Filter::from_loose_json(&loose).unwrap_err();
        assert!(e.to_string().contains("limit is 32"), "{e}");
        // A deep filter built in code is measured iteratively.
        let mut deep = Filter::eq("user_id", "u");
        for _ in 0..100_000 {
            deep = Filter::Not(Box::new(deep));
        }
        assert_eq!(deep.depth(), 100_001);
        assert!(deep.validate().is_err());
        // Dropping it recursively would overflow the stack: unwind it by hand.
        let mut cur = deep;
        while let Filter::Not(inner) = cur {
            cur = *inner;
        }
    }

    use super::*;
    use serde_json::json;

    fn loose(j: Json) -> Result<Option<Filter>> {
        Filter::from_loose_json(&j)
    }

    #[test]
    fn loose_map_forms_parse_into_the_tree() {
        assert_eq!(
            loose(json!({"user_id": "u1"})).unwrap(),
            Some(Filter::eq("user_id", "u1"))
        );
        assert_eq!(
            loose(json!({"device_id": ["a", "b"]})).unwrap(),
            Some(Filter::is_in("device_id", ["a", "b"]))
        );
        assert_eq!(
            loose(json!({"create_time_ts": {"$gte": 10, "$lte": 20}})).unwrap(),
            Some(Filter::between("create_time_ts", 10, 20))
        );
        assert_eq!(
            loose(json!({"a": 1, "b": {"$ne": "x"}})).unwrap(),
            Some(Filter::And(vec![Filter::eq("a", 1), Filter::ne("b", "x")]))
        );
        assert_eq!(
            loose(json!({"$or": [{"a": 1}, {"b": {"$nin": [2, 3]}}]})).unwrap(),
            Some(Filter::Or(vec![
                Filter::eq("a", 1),
                Filter::not_in("b", [2, 3])
            ]))
        );
        assert_eq!(loose(json!({"user_id": null})).unwrap(), None);
        assert_eq!(loose(json!({})).unwrap(), None);
    }

    #[test]
    fn loose_map_rejects_what_it_cannot_express() {
        let err = loose(json!({"x": {"$regex": "a.*"}})).unwrap_err();
        assert!(err.to_string().contains("$regex"), "{err}");
        assert!(loose(json!({"$where": "1"})).is_err());
        assert!(loose(json!({"x": {"nested": 1}})).is_err());
        assert!(loose(json!({"x": [[1]]})).is_err());
        assert!(loose(json!({"x'; DROP TABLE t; --": 1})).is_err());
        assert!(loose(json!({"x": {"$gte": 1, "$lte": "b"}})).is_err());
        assert!(loose(json!([1])).is_err());
    }

    #[test]
    fn matches_evaluates_every_operator() {
        let rec = json!({"a": 1, "s": "2026-W08", "b": true, "f": 0.5});
        let rec = rec.as_object().unwrap();
        assert!(Filter::eq("a", 1).matches(rec));
        assert!(Filter::eq("f", 0.5).matches(rec));
        assert!(Filter::ne("a", 2).matches(rec));
        assert!(Filter::ne("missing", 2).matches(rec));
        assert!(Filter::is_in("a", [3, 1]).matches(rec));
        assert!(!Filter::is_in("a", Vec::<i64>::new()).matches(rec));
        assert!(Filter::not_in("a", [3]).matches(rec));
        assert!(Filter::between("s", "2026-W01", "2026-W08").matches(rec));
        assert!(!Filter::gt("s", "2026-W08").matches(rec));
        assert!(
            !Filter::gte("s", 5).matches(rec),
            "string field never matches a numeric range"
        );
        assert!(Filter::eq("b", true).and(Filter::lt("a", 2)).matches(rec));
        assert!(Filter::eq("a", 9).or(Filter::eq("a", 1)).matches(rec));
        assert!(Filter::eq("a", 9).not().matches(rec));
        assert!(Filter::And(vec![]).matches(rec));
        assert!(!Filter::Or(vec![]).matches(rec));
    }

    #[test]
    fn scope_becomes_equality_conditions() {
        assert_eq!(Scope::any().to_filter(), None);
        assert_eq!(
            Scope::user("u").to_filter(),
            Some(Filter::eq("user_id", "u"))
        );
        let f = Scope::tenant("u", "d", "a")
            .apply(Some(&Filter::eq("x", 1)))
            .unwrap();
        assert_eq!(f.fields(), vec!["x", "user_id", "device_id", "agent_id"]);
    }
}
