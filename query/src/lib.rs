//! ProfileDB's query language: lexer, parser, AST, planner and executor.
//!
//! This crate never depends on RocksDB: it plans and executes against a catalog
//! and data-source trait ([`DataSource`]) that the `profiledb` facade implements
//! over storage.
//!
//! The pipeline: [`lexer`] → [`parser`] (recursive descent, Pratt parsing for
//! expressions) → [`ast`] (printable, round-trips) → binding and planning
//! against the catalog → parallel execution over [`Snapshot`] scans.

pub mod ast;
mod bind;
mod error;
mod eval;
mod exec;
pub mod lexer;
mod memory;
mod output;
pub mod parser;
mod plan;
mod source;
mod statement;

pub use error::{At, Error, ParseError, Position, Result, Span, closest};
pub use exec::Limits;
pub use memory::MemorySource;
pub use output::{Column, Output, Rows, Type};
pub use parser::{RECURSION_LIMIT, parse_expr, parse_script, parse_statement};
pub use source::{DataSource, Snapshot};
pub use statement::{execute, run};
