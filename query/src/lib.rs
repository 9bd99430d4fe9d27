//! ProfileDB's query language: lexer, parser, AST, planner and executor.
//!
//! The pipeline: [`lexer`] (tokens with spans) → [`parser`] (recursive descent,
//! Pratt parsing for expressions) → [`ast`] (printable; parse → print → parse
//! gives the same tree) → binding and planning against the catalog → execution
//! over a [`View`] that pins one moment, scans split into ranges that run in
//! parallel on rayon.
//!
//! This crate never depends on RocksDB. It runs against the [`DataSource`]
//! trait, implemented here once for the storage engine over any store: the
//! `profiledb` facade runs it over RocksDB, and tests run the same engine in
//! memory ([`profiledb_storage::MemoryEngine`]). The language itself is
//! described in `docs/query-language.md`.
//!
//! # Examples
//! ```
//! use profiledb_query::{Limits, Output, execute};
//! use profiledb_storage::{MemoryEngine, Value};
//!
//! let db = MemoryEngine::memory();
//! let out = execute(
//!     &db,
//!     "CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
//!      INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-01T00:00:00Z', 40.0);
//!      SELECT id, spend_7d FROM users AS OF '2026-11-08T00:00:00Z';",
//!     &Limits::default(),
//! )?;
//! assert_eq!(out[1], Output::Done { summary: "INSERT 1".into(), count: Some(1) });
//! let rows = out[2].rows().expect("a query returns rows");
//! assert_eq!(rows.rows, vec![vec![Value::String("u1".into()), Value::Float(20.0)]]);
//!
//! // Errors point at the text they are about.
//! let err = execute(&db, "SELECT spend_7 FROM users", &Limits::default()).unwrap_err();
//! assert!(err.to_string().contains("did you mean 'spend_7d'?"));
//! # Ok::<(), profiledb_query::Error>(())
//! ```

#![forbid(unsafe_code)]

pub mod ast;
mod bind;
mod cluster;
mod distributed;
mod error;
mod eval;
mod exec;
mod functions;
pub mod lexer;
mod limits;
mod output;
pub mod parser;
mod plan;
mod similarity;
mod source;
mod statement;

pub use distributed::{Part, Peers, partial};
pub use error::{At, Error, ParseError, Position, Result, Span, closest};
pub use lexer::MAX_STATEMENT_TOKENS;
pub use lexer::{ends_statement, split_statements};
pub use limits::{Limits, clear_interrupt, interrupt, interrupted};
pub use output::{Column, Output, PartAt, RowSink, Rows, Type};
pub use parser::{
    MAX_EXPR_DEPTH, RECURSION_LIMIT, parse_expr, parse_script, parse_script_with, parse_statement,
};
pub use source::{DataSource, View};
pub use statement::{
    Permission, Prepared, create_segments_from, execute, execute_as, execute_params,
    execute_params_into, rows_as_of, run,
};
