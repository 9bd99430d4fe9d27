//! ProfileDB's query language: lexer, parser, AST, planner and executor.
//!
//! This crate never depends on RocksDB: it plans and executes against a catalog
//! and data-source trait that the `profiledb` facade implements over storage.

pub mod ast;
mod error;
pub mod lexer;
pub mod parser;

pub use error::{At, Error, ParseError, Position, Result, Span, closest};
pub use parser::{RECURSION_LIMIT, parse_expr, parse_script, parse_statement};
