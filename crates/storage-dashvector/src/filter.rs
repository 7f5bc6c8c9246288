//! Translation of the typed [`Filter`] into DashVector's SQL-like filter string
//! ([conditional filtering](https://www.alibabacloud.com/help/en/vrs/latest/conditional-filter-retrieval)).
//!
//! | filter                      | DashVector                           |
//! |-----------------------------|--------------------------------------|
//! | `eq(f, v)`                  | `f = v`                              |
//! | `in(f, [a, b])`             | `(f = a or f = b)`; empty: no match  |
//! | `range(f, gte a, lt b)`     | `(f >= a and f < b)` (numbers only)  |
//! | `and`, `or`                 | `(x and y)`, `(x or y)`              |
//! | `ne`, `not in`, `not`       | `Unsupported`                        |
//! | range with string bounds    | `Unsupported`                        |
//!
//! Values are written by the declared type of their field: strings are always single-quoted
//! with `\` and `'` backslash-escaped, numbers in plain decimal, booleans as `true`/`false`.
//! Field names are never quoted: they must be declared fields (which are identifiers), so no
//! value and no key can change the structure of the expression. Constant parts are folded
//! (an empty `in` matches nothing; the call then sends no request at all).
//!
//! Negation is refused because DashVector documents no semantics of `!=` on a document that
//! lacks the field, while our contract says such a document matches `ne`; string ranges are
//! refused because DashVector documents `<`, `>` only for numbers.

use storage_core::filter::{Range, Value};
use storage_core::{Filter, Result, StorageError, payload};

use crate::schema::{FieldKind, Schema};

/// A filter ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Compiled {
    /// Matches every document: no `filter` parameter.
    All,
    /// Matches no document: the call answers empty without a request.
    Nothing,
    /// A filter expression.
    Expr(String),
}

impl Compiled {
    /// `self and other`.
    pub(crate) fn and(self, other: Compiled) -> Compiled {
        match (self, other) {
            (Compiled::Nothing, _) | (_, Compiled::Nothing) => Compiled::Nothing,
            (Compiled::All, x) | (x, Compiled::All) => x,
            (Compiled::Expr(a), Compiled::Expr(b)) => Compiled::Expr(format!("({a} and {b})")),
        }
    }
}

/// Compiles `filter` for collections declared with `schema`.
///
/// # Errors
/// * [`storage_core::ErrorKind::InvalidInput`]: a field name that is not an identifier, a
///   field that is not declared, a value whose type differs from the declared type, an `INT`
///   value outside 32 bits, a non-finite float;
/// * [`storage_core::ErrorKind::Unsupported`]: negation, string ranges, fields stored as
///   JSON-encoded strings (`keywords`, ...).
pub(crate) fn compile(filter: Option<&Filter>, schema: &Schema) -> Result<Compiled> {
    let Some(filter) = filter else {
        return Ok(Compiled::All);
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
    translate(filter, schema)
}

fn translate(filter: &Filter, schema: &Schema) -> Result<Compiled> {
    match filter {
        Filter::Eq(f, v) => Ok(Compiled::Expr(format!("{f} = {}", literal(schema, f, v)?))),
        Filter::In(f, vs) => {
            let parts = vs
                .iter()
                .map(|v| Ok(Compiled::Expr(format!("{f} = {}", literal(schema, f, v)?))))
                .collect::<Result<Vec<_>>>()?;
            Ok(or_all(parts))
        }
        Filter::Range(f, r) => range(schema, f, r),
        Filter::And(fs) => {
            let mut acc = Compiled::All;
            for f in fs {
                acc = acc.and(translate(f, schema)?);
            }
            Ok(acc)
        }
        Filter::Or(fs) => {
            let parts = fs
                .iter()
                .map(|f| translate(f, schema))
                .collect::<Result<Vec<_>>>()?;
            Ok(or_all(parts))
        }
        Filter::Ne(..) | Filter::NotIn(..) | Filter::Not(_) => Err(StorageError::unsupported(
            "DashVector filters cannot express negation exactly (`!=` on a document without \
             the field is undocumented); ne, not in and not are refused",
        )),
    }
}

fn or_all(parts: Vec<Compiled>) -> Compiled {
    let mut exprs = Vec::new();
    for p in parts {
        match p {
            Compiled::All => return Compiled::All,
            Compiled::Nothing => {}
            Compiled::Expr(e) => exprs.push(e),
        }
    }
    match exprs.len() {
        0 => Compiled::Nothing,
        1 => Compiled::Expr(exprs.pop().expect("one")),
        _ => Compiled::Expr(format!("({})", exprs.join(" or "))),
    }
}

fn range(schema: &Schema, f: &str, r: &Range) -> Result<Compiled> {
    if !r.is_numeric() {
        return Err(StorageError::unsupported(format!(
            "range on '{f}' has string bounds; DashVector compares only numbers with <, <=, >, >="
        )));
    }
    let mut parts = Vec::new();
    for (op, v) in r.bounds() {
        let sym = match op {
            "gt" => ">",
            "gte" => ">=",
            "lt" => "<",
            _ => "<=",
        };
        parts.push(format!("{f} {sym} {}", literal(schema, f, v)?));
    }
    Ok(Compiled::Expr(if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        format!("({})", parts.join(" and "))
    }))
}

/// The literal for `v` compared with declared field `f`.
fn literal(schema: &Schema, f: &str, v: &Value) -> Result<String> {
    let kind = schema.kind(f).ok_or_else(|| {
        StorageError::invalid_input(format!(
            "filter field '{f}' is not a declared field of the DashVector collections \
             (declare metadata fields in config.extra_fields)"
        ))
    })?;
    let mismatch = || {
        StorageError::invalid_input(format!(
            "filter on '{f}' compares a {} field with {v}",
            kind.as_str()
        ))
    };
    match (kind, v) {
        (FieldKind::String, Value::Str(s)) => Ok(quote(s)),
        (FieldKind::Bool, Value::Bool(b)) => Ok(b.to_string()),
        (FieldKind::Int, Value::Int(i)) => {
            if i32::try_from(*i).is_err() {
                return Err(StorageError::invalid_input(format!(
                    "filter value {i} for '{f}' is outside the 32-bit range of an INT field"
                )));
            }
            Ok(i.to_string())
        }
        (k, Value::Int(i)) if k.is_numeric() => Ok(i.to_string()),
        (k, Value::Float(x)) if k.is_numeric() => {
            if !x.is_finite() {
                return Err(StorageError::invalid_input(format!(
                    "filter value for '{f}' must be finite, got {x}"
                )));
            }
            // `Display` of f64 never uses an exponent and round-trips.
            Ok(format!("{x}"))
        }
        _ => Err(mismatch()),
    }
}

/// A single-quoted string literal: `\` becomes `\\` and `'` becomes `\'`; every other
/// character (newlines, Unicode) stays as is inside the quotes.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use storage_core::ErrorKind;

    use super::*;

    fn schema() -> Schema {
        let mut extra = BTreeMap::new();
        extra.insert("project".to_owned(), FieldKind::String);
        extra.insert("ratio".to_owned(), FieldKind::Float);
        Schema::new(&extra)
    }

    fn c(f: &Filter) -> Result<Compiled> {
        compile(Some(f), &schema())
    }

    #[test]
    fn translates_each_operator() {
        assert_eq!(
            c(&Filter::eq("user_id", "u1")).unwrap(),
            Compiled::Expr("user_id = 'u1'".into())
        );
        assert_eq!(
            c(&Filter::is_in("importance", [1, 3])).unwrap(),
            Compiled::Expr("(importance = 1 or importance = 3)".into())
        );
        assert_eq!(
            c(&Filter::between("create_time_ts", 10, 20)).unwrap(),
            Compiled::Expr("(create_time_ts >= 10 and create_time_ts <= 20)".into())
        );
        assert_eq!(
            c(&Filter::eq("is_processed", true).and(Filter::gt("ratio", 0.5))).unwrap(),
            Compiled::Expr("(is_processed = true and ratio > 0.5)".into())
        );
        assert_eq!(
            c(&Filter::eq("project", "a").or(Filter::eq("project", "b"))).unwrap(),
            Compiled::Expr("(project = 'a' or project = 'b')".into())
        );
        assert_eq!(compile(None, &schema()).unwrap(), Compiled::All);
    }

    #[test]
    fn folds_constants() {
        assert_eq!(
            c(&Filter::is_in("user_id", Vec::<String>::new())).unwrap(),
            Compiled::Nothing
        );
        assert_eq!(
            c(&Filter::eq("user_id", "u").and(Filter::is_in("user_id", Vec::<String>::new())))
                .unwrap(),
            Compiled::Nothing
        );
        assert_eq!(c(&Filter::And(vec![])).unwrap(), Compiled::All);
        assert_eq!(c(&Filter::Or(vec![])).unwrap(), Compiled::Nothing);
        assert_eq!(
            c(&Filter::Or(vec![
                Filter::And(vec![]),
                Filter::eq("user_id", "u")
            ]))
            .unwrap(),
            Compiled::All
        );
    }

    #[test]
    fn quotes_and_escapes_every_string() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"a\b"), r"'a\\b'");
        assert_eq!(quote(r"\'"), r"'\\\''");
        assert_eq!(quote("x' or 1=1 or 'a'='a"), r"'x\' or 1=1 or \'a\'=\'a'");
        assert_eq!(quote("中文\n🦀"), "'中文\n🦀'");
    }

    #[test]
    fn refuses_what_it_cannot_express() {
        let kind = |f: Filter| c(&f).unwrap_err().kind();
        assert_eq!(kind(Filter::ne("user_id", "u")), ErrorKind::Unsupported);
        assert_eq!(
            kind(Filter::not_in("user_id", ["u"])),
            ErrorKind::Unsupported
        );
        assert_eq!(
            kind(Filter::eq("user_id", "u").not()),
            ErrorKind::Unsupported
        );
        assert_eq!(
            kind(Filter::between("time_bucket", "2026-01", "2026-02")),
            ErrorKind::Unsupported
        );
        assert_eq!(kind(Filter::eq("keywords", "x")), ErrorKind::Unsupported);
        assert_eq!(kind(Filter::eq("undeclared", "x")), ErrorKind::InvalidInput);
        assert_eq!(kind(Filter::eq("x' or '1'='1", 1)), ErrorKind::InvalidInput);
        assert_eq!(kind(Filter::eq("user_id", 1)), ErrorKind::InvalidInput);
        assert_eq!(kind(Filter::eq("importance", "1")), ErrorKind::InvalidInput);
        assert_eq!(
            kind(Filter::eq("importance", 1i64 << 40)),
            ErrorKind::InvalidInput
        );
        assert_eq!(kind(Filter::eq("is_processed", 1)), ErrorKind::InvalidInput);
        let msg = c(&Filter::eq("undeclared", "x")).unwrap_err().to_string();
        assert!(
            msg.contains("'undeclared'") && msg.contains("extra_fields"),
            "{msg}"
        );
    }
}
