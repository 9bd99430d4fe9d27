//! ProfileDB's query language: lexer, parser, AST, planner and executor.
//!
//! This crate never depends on RocksDB: it plans and executes against a catalog
//! and data-source trait that the `profiledb` facade implements over storage. It
//! is being built; today it holds nothing but this description.
