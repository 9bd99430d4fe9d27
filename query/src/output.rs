//! What a statement returns: typed rows, or a summary of what it did.

use std::fmt;

use profiledb_storage::Value;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Only NULL, or unknown until run.
    Null,
    /// `BOOL`
    Bool,
    /// `INT`
    Int,
    /// `FLOAT`
    Float,
    /// `STRING`
    String,
    /// `TAGS`
    Tags,
    /// A vector of f32.
    Vector,
    /// A keyed feature's values by key.
    Map,
}

impl Type {
    /// Whether values of this type are numbers (or NULL).
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Float | Type::Null)
    }

    /// The type of a value.
    pub fn of(v: &Value) -> Type {
        match v {
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Float(_) => Type::Float,
            Value::String(_) => Type::String,
            Value::Tags(_) => Type::Tags,
            Value::Vector(_) => Type::Vector,
            Value::Map(_) => Type::Map,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Null => "null",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::String => "string",
            Type::Tags => "tags",
            Type::Vector => "vector",
            Type::Map => "map",
        })
    }
}

/// A result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name: the alias, else the item it reads, else the expression's text.
    pub name: String,
    /// Its type.
    pub ty: Type,
}

/// Rows with named, typed columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// The columns.
    pub columns: Vec<Column>,
    /// The rows, each as long as `columns`.
    pub rows: Vec<Vec<Value>>,
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A query's rows.
    Rows(Rows),
    /// A statement that returns no rows, with its summary (`INSERT 2`, `CREATE FEATURE`).
    Done {
        /// The summary.
        summary: String,
        /// Rows written or deleted, where that applies.
        count: Option<u64>,
    },
}

impl Output {
    /// The rows, when the statement returned rows.
    pub fn rows(&self) -> Option<&Rows> {
        match self {
            Output::Rows(r) => Some(r),
            Output::Done { .. } => None,
        }
    }

    pub(crate) fn done(summary: impl Into<String>) -> Output {
        Output::Done {
            summary: summary.into(),
            count: None,
        }
    }

    pub(crate) fn counted(verb: &str, n: u64) -> Output {
        Output::Done {
            summary: format!("{verb} {n}"),
            count: Some(n),
        }
    }
}

/// Where a part of a query's rows lies in the answer: parts are ordered by
/// the scanned range they come from, then by their place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartAt {
    /// The range of users the part was scanned from, in id order.
    pub range: usize,
    /// The part's place among its range's.
    pub part: usize,
}

/// Takes a query's rows part by part, on the threads that scan them, as
/// they are made, so that a large answer is converted (to Arrow batches,
/// say) and its rows freed while the scan goes on rather than all held at
/// once. Given to [`crate::execute_params_into`].
///
/// Only a plain scan hands its rows over this way: a `SELECT` over every
/// user (filtered or not) without `ORDER BY`, `GROUP BY`, aggregates,
/// `DISTINCT`, `LIMIT` or `OFFSET`. Then every row goes to the sink and the
/// statement's [`Rows`] hold none; any other statement returns its rows as
/// usual and never calls the sink. So the answer is always the parts, in
/// [`PartAt`] order, followed by the rows returned.
pub trait RowSink: Sync {
    /// Takes `rows` of `columns`, the part of the answer at `at`. Called
    /// from many threads at once, in no order; no two calls of one
    /// statement share an `at`. An error fails the statement.
    ///
    /// # Errors
    /// Whatever the sink cannot take; the statement fails with it.
    fn take(&self, at: PartAt, columns: &[Column], rows: Vec<Vec<Value>>) -> crate::Result<()>;
}
