//! Event filters: the `WHERE` of `CREATE FEATURE tech_views ON view WHERE
//! category = 'tech' AS COUNT()`. A filter is a predicate over one event's
//! fields, kept in the catalog as typed data (storage writes no query text)
//! and checked as each event is planned: an item whose filter an event does
//! not pass is left as it was for that event.
//!
//! Comparisons follow SQL's three-valued logic: a field the event does not
//! carry, or a value of another type than the one compared with, is unknown,
//! and an unknown filter does not pass. Numbers compare as numbers (an
//! integer with a float), strings by their bytes.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::value::Value;

/// The deepest filter accepted: ample for any hand-written predicate, and a
/// bound on the recursion of checking one.
pub const MAX_FILTER_DEPTH: usize = 64;

/// A constant a filter compares with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum FilterValue {
    /// `NULL`
    Null,
    /// `TRUE`, `FALSE`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    String(String),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A predicate over an event's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum EventFilter {
    /// `field op value`
    Cmp {
        /// The field.
        field: String,
        /// The comparison.
        cmp: CmpOp,
        /// The constant.
        value: FilterValue,
    },
    /// `field [NOT] IN (values)`
    In {
        /// The field.
        field: String,
        /// The constants.
        values: Vec<FilterValue>,
        /// `NOT IN`
        negated: bool,
    },
    /// `field IS [NOT] NULL`: whether the event carries the field.
    IsNull {
        /// The field.
        field: String,
        /// `IS NOT NULL`
        negated: bool,
    },
    /// `a AND b`
    And {
        /// Left.
        left: Box<EventFilter>,
        /// Right.
        right: Box<EventFilter>,
    },
    /// `a OR b`
    Or {
        /// Left.
        left: Box<EventFilter>,
        /// Right.
        right: Box<EventFilter>,
    },
    /// `NOT a`
    Not {
        /// The negated filter.
        inner: Box<EventFilter>,
    },
}

impl EventFilter {
    /// Whether `ev` passes: the filter is true for it (not false, not unknown).
    pub fn passes(&self, ev: &Event) -> bool {
        self.truth(ev) == Some(true)
    }

    /// The filter's three-valued truth for `ev`.
    fn truth(&self, ev: &Event) -> Option<bool> {
        match self {
            EventFilter::Cmp { field, cmp, value } => {
                let ord = compare(ev.field(field)?, value)?;
                Some(match cmp {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                })
            }
            EventFilter::In {
                field,
                values,
                negated,
            } => {
                let v = ev.field(field)?;
                let mut unknown = false;
                for c in values {
                    match compare(v, c) {
                        Some(Ordering::Equal) => return Some(!negated),
                        Some(_) => {}
                        None => unknown = true,
                    }
                }
                if unknown { None } else { Some(*negated) }
            }
            EventFilter::IsNull { field, negated } => {
                let null = matches!(ev.field(field), None | Some(Value::Null));
                Some(null != *negated)
            }
            EventFilter::And { left, right } => match (left.truth(ev), right.truth(ev)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            EventFilter::Or { left, right } => match (left.truth(ev), right.truth(ev)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            },
            EventFilter::Not { inner } => inner.truth(ev).map(|t| !t),
        }
    }

    /// The fields it reads.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            EventFilter::Cmp { field, .. }
            | EventFilter::In { field, .. }
            | EventFilter::IsNull { field, .. } => out.push(field),
            EventFilter::And { left, right } | EventFilter::Or { left, right } => {
                left.collect_fields(out);
                right.collect_fields(out);
            }
            EventFilter::Not { inner } => inner.collect_fields(out),
        }
    }

    /// How deep it nests.
    pub fn depth(&self) -> usize {
        match self {
            EventFilter::And { left, right } | EventFilter::Or { left, right } => {
                1 + left.depth().max(right.depth())
            }
            EventFilter::Not { inner } => 1 + inner.depth(),
            _ => 1,
        }
    }
}

/// `v` against constant `c`: `None` when either is NULL or their types differ.
fn compare(v: &Value, c: &FilterValue) -> Option<Ordering> {
    match (v, c) {
        (Value::Int(a), FilterValue::Int(b)) => Some(a.cmp(b)),
        (Value::Int(a), FilterValue::Float(b)) => (*a as f64).partial_cmp(b),
        (Value::Float(a), FilterValue::Int(b)) => a.partial_cmp(&(*b as f64)),
        (Value::Float(a), FilterValue::Float(b)) => a.partial_cmp(b),
        (Value::String(a), FilterValue::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Bool(a), FilterValue::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl fmt::Display for FilterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterValue::Null => f.write_str("NULL"),
            FilterValue::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            FilterValue::Int(i) => write!(f, "{i}"),
            FilterValue::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => write!(f, "{x:.1}"),
            FilterValue::Float(x) => write!(f, "{x}"),
            FilterValue::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

/// The filter in the query language, fully parenthesised where it nests.
impl fmt::Display for EventFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventFilter::Cmp { field, cmp, value } => {
                write!(f, "{} {} {value}", quoted(field), cmp.symbol())
            }
            EventFilter::In {
                field,
                values,
                negated,
            } => {
                let not = if *negated { "NOT " } else { "" };
                let list: Vec<String> = values.iter().map(ToString::to_string).collect();
                write!(f, "{} {not}IN ({})", quoted(field), list.join(", "))
            }
            EventFilter::IsNull { field, negated } => {
                let not = if *negated { "NOT " } else { "" };
                write!(f, "{} IS {not}NULL", quoted(field))
            }
            EventFilter::And { left, right } => write!(f, "({left} AND {right})"),
            EventFilter::Or { left, right } => write!(f, "({left} OR {right})"),
            EventFilter::Not { inner } => write!(f, "NOT ({inner})"),
        }
    }
}

/// Arithmetic of an [`EventExpr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// A number computed from an event's fields: the argument of `SUM(price *
/// qty)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum EventExpr {
    /// A field's number.
    Field {
        /// The field.
        field: String,
    },
    /// A constant.
    Const {
        /// Its value.
        value: f64,
    },
    /// `-a`
    Neg {
        /// The negated expression.
        inner: Box<EventExpr>,
    },
    /// `a op b`
    Arith {
        /// The operation.
        arith: ArithOp,
        /// Left.
        left: Box<EventExpr>,
        /// Right.
        right: Box<EventExpr>,
    },
}

impl EventExpr {
    /// Its value for `ev`: `None` when the event lacks a field it reads
    /// (missing is not wrong: the item is left as it was) or it divides by
    /// zero.
    ///
    /// # Errors
    /// The field and reason for a field that is not a number, or a result
    /// that is not a finite number.
    pub fn eval(&self, ev: &Event) -> Result<Option<f64>, (String, String)> {
        Ok(match self {
            EventExpr::Field { field } => match ev.field(field) {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.to_number().map_err(|r| (field.clone(), r))?),
            },
            EventExpr::Const { value } => Some(*value),
            EventExpr::Neg { inner } => inner.eval(ev)?.map(|x| -x),
            EventExpr::Arith { arith, left, right } => {
                let (Some(a), Some(b)) = (left.eval(ev)?, right.eval(ev)?) else {
                    return Ok(None);
                };
                let x = match arith {
                    ArithOp::Add => a + b,
                    ArithOp::Sub => a - b,
                    ArithOp::Mul => a * b,
                    ArithOp::Div if b == 0.0 => return Ok(None),
                    ArithOp::Div => a / b,
                };
                if !x.is_finite() {
                    return Err((
                        self.fields()
                            .first()
                            .map_or_else(String::new, |f| (*f).to_owned()),
                        format!("{self} is not a finite number"),
                    ));
                }
                Some(x)
            }
        })
    }

    /// The fields it reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            EventExpr::Field { field } => vec![field],
            EventExpr::Const { .. } => Vec::new(),
            EventExpr::Neg { inner } => inner.fields(),
            EventExpr::Arith { left, right, .. } => {
                let mut f = left.fields();
                f.extend(right.fields());
                f
            }
        }
    }

    /// How deep it nests.
    pub fn depth(&self) -> usize {
        match self {
            EventExpr::Neg { inner } => 1 + inner.depth(),
            EventExpr::Arith { left, right, .. } => 1 + left.depth().max(right.depth()),
            _ => 1,
        }
    }
}

/// The expression in the query language, parenthesised where it nests.
impl fmt::Display for EventExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventExpr::Field { field } => write!(f, "{}", quoted(field)),
            EventExpr::Const { value } => write!(f, "{}", FilterValue::Float(*value)),
            EventExpr::Neg { inner } => write!(f, "-({inner})"),
            EventExpr::Arith { arith, left, right } => {
                let op = match arith {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    ArithOp::Mul => "*",
                    ArithOp::Div => "/",
                };
                write!(f, "({left} {op} {right})")
            }
        }
    }
}

/// A field name as the language writes it.
fn quoted(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(field: &str, cmp: CmpOp, value: FilterValue) -> EventFilter {
        EventFilter::Cmp {
            field: field.into(),
            cmp,
            value,
        }
    }

    #[test]
    fn three_valued_logic_passes_only_what_is_true() {
        let ev = Event::new("u", "view", 1)
            .with("category", "tech")
            .with("price", 12)
            .with("qty", 2.5);
        let tech = cmp("category", CmpOp::Eq, FilterValue::String("tech".into()));
        let cheap = cmp("price", CmpOp::Lt, FilterValue::Float(12.5));
        let missing = cmp("brand", CmpOp::Eq, FilterValue::String("x".into()));
        let mistyped = cmp("price", CmpOp::Eq, FilterValue::String("12".into()));
        assert!(tech.passes(&ev));
        assert!(cheap.passes(&ev));
        assert!(!missing.passes(&ev));
        assert!(!mistyped.passes(&ev));
        // NOT of unknown is unknown; OR with true is true; AND with false is false.
        let not_missing = EventFilter::Not {
            inner: Box::new(missing.clone()),
        };
        assert!(!not_missing.passes(&ev));
        let or = EventFilter::Or {
            left: Box::new(missing.clone()),
            right: Box::new(tech.clone()),
        };
        assert!(or.passes(&ev));
        let and = EventFilter::And {
            left: Box::new(missing),
            right: Box::new(tech),
        };
        assert!(!and.passes(&ev));
        let listed = EventFilter::In {
            field: "qty".into(),
            values: vec![FilterValue::Int(1), FilterValue::Float(2.5)],
            negated: false,
        };
        assert!(listed.passes(&ev));
        let absent = EventFilter::IsNull {
            field: "brand".into(),
            negated: false,
        };
        assert!(absent.passes(&ev));
        assert_eq!(or.to_string(), "(brand = 'x' OR category = 'tech')");
    }
}
