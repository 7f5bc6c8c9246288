//! An independent parser and evaluator of DashVector's SQL-like filter language, written for
//! the fake server from the documented syntax (comparisons `= != < <= > >=` between a field
//! and a constant, `and`, `or`, parentheses; strings in single quotes; in this fake `\\` and
//! `\'` are the only escapes). It shares no code with the backend's translator, so a value
//! that could change the filter's structure shows up as a different parse tree here.

use serde_json::{Map, Value as Json};

/// A constant of the language.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// A parsed filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Cmp(String, String, Lit),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Op(String),
    Ident(String),
    Str(String),
    Num(f64),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '=' => {
                out.push(Tok::Op("=".into()));
                i += 1;
            }
            '!' | '<' | '>' => {
                if cs.get(i + 1) == Some(&'=') {
                    out.push(Tok::Op(format!("{c}=")));
                    i += 2;
                } else if c == '!' {
                    return Err(format!("stray '!' at {i}"));
                } else {
                    out.push(Tok::Op(c.to_string()));
                    i += 1;
                }
            }
            '\'' => {
                i += 1;
                let mut v = String::new();
                loop {
                    match cs.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => match cs.get(i + 1) {
                            Some(e @ ('\\' | '\'')) => {
                                v.push(*e);
                                i += 2;
                            }
                            other => return Err(format!("bad escape \\{other:?}")),
                        },
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                    i += 1;
                }
                let text: String = cs[start..i].iter().collect();
                out.push(Tok::Num(
                    text.parse().map_err(|_| format!("bad number {text}"))?,
                ));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < cs.len()
                    && (cs[i].is_ascii_alphanumeric() || cs[i] == '_' || cs[i] == '.')
                {
                    i += 1;
                }
                out.push(Tok::Ident(cs[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected {other:?} at {i}")),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_kw("or") {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.atom()?;
        while self.peek_kw("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.expr()?;
                if self.toks.get(self.pos) != Some(&Tok::RParen) {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Ident(field)) => {
                let Some(Tok::Op(op)) = self.toks.get(self.pos + 1).cloned() else {
                    return Err(format!("expected an operator after {field}"));
                };
                let lit = match self.toks.get(self.pos + 2).cloned() {
                    Some(Tok::Str(s)) => Lit::Str(s),
                    Some(Tok::Num(n)) => Lit::Num(n),
                    Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
                    Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
                    other => return Err(format!("expected a constant, got {other:?}")),
                };
                if matches!(lit, Lit::Str(_) | Lit::Bool(_)) && !matches!(op.as_str(), "=" | "!=") {
                    return Err(format!("operator {op} needs a number"));
                }
                self.pos += 3;
                Ok(Expr::Cmp(field, op, lit))
            }
            other => Err(format!("unexpected token {other:?}")),
        }
    }
}

/// Parses a whole filter string.
pub fn parse(s: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: lex(s)?,
        pos: 0,
    };
    let e = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(format!("trailing tokens from {}", p.pos));
    }
    Ok(e)
}

/// Evaluates a parsed filter against a doc's fields; a missing or null field never matches.
pub fn eval(e: &Expr, fields: &Map<String, Json>) -> bool {
    match e {
        Expr::And(a, b) => eval(a, fields) && eval(b, fields),
        Expr::Or(a, b) => eval(a, fields) || eval(b, fields),
        Expr::Cmp(f, op, lit) => {
            let Some(v) = fields.get(f).filter(|v| !v.is_null()) else {
                return false;
            };
            let ord = match (v, lit) {
                (Json::String(a), Lit::Str(b)) => a.as_str().cmp(b.as_str()),
                (Json::Bool(a), Lit::Bool(b)) => a.cmp(b),
                (Json::Number(a), Lit::Num(b)) => match a.as_f64().and_then(|a| a.partial_cmp(b)) {
                    Some(o) => o,
                    None => return false,
                },
                _ => return false,
            };
            match op.as_str() {
                "=" => ord.is_eq(),
                "!=" => ord.is_ne(),
                "<" => ord.is_lt(),
                "<=" => ord.is_le(),
                ">" => ord.is_gt(),
                _ => ord.is_ge(),
            }
        }
    }
}

/// Every comparison of a parsed filter, depth first.
pub fn comparisons(e: &Expr) -> Vec<(String, String, Lit)> {
    match e {
        Expr::Cmp(f, op, l) => vec![(f.clone(), op.clone(), l.clone())],
        Expr::And(a, b) | Expr::Or(a, b) => {
            let mut v = comparisons(a);
            v.extend(comparisons(b));
            v
        }
    }
}
