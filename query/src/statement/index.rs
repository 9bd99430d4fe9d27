//! Approximate nearest-neighbour indexes: `CREATE INDEX`, `DROP INDEX`,
//! `SHOW INDEXES`, `DESCRIBE` of an index and `ANALYZE INDEX`; and the
//! `WITH (…)` settings they and a similarity top-k take.

use profiledb_storage::catalog::{Catalog, IndexDef};
use profiledb_storage::time::format_timestamp;
use profiledb_storage::{DefKind, Definition, Metric, Pins, Value};

use crate::ast::{Expr, Ident, Literal, UnaryOp, WithOption};
use crate::bind::unknown;
use crate::error::{Error, Result};
use crate::output::{Output, Rows, Type};
use crate::source::DataSource;

use super::{columns, storage_at, text_columns};

/// The default lists, probes and re-rank factor of `CREATE INDEX`.
const DEFAULTS: (u32, u32, u32) = (1024, 16, 4);
/// Queries `ANALYZE INDEX` runs unless told.
const ANALYZE_QUERIES: u64 = 200;
/// The most queries `ANALYZE INDEX` runs (each one an exact scan too).
const MAX_ANALYZE_QUERIES: u64 = 10_000;

/// A `WITH` option's value, folded to a literal (`-1` included).
fn literal(o: &WithOption) -> Result<Literal> {
    match &o.value {
        Expr::Literal(l, _) => Ok(l.clone()),
        Expr::Unary {
            op: UnaryOp::Neg,
            expr,
            ..
        } => match &**expr {
            Expr::Literal(Literal::Int(i), _) => Ok(Literal::Int(-i)),
            Expr::Literal(Literal::Float(x), _) => Ok(Literal::Float(-x)),
            _ => Err(not_constant(o)),
        },
        _ => Err(not_constant(o)),
    }
}

fn not_constant(o: &WithOption) -> Error {
    Error::invalid(
        format!("{} takes a constant", o.key.value),
        Some(o.value.span()),
    )
}

/// A whole-number option in `1..=max`.
pub(crate) fn whole(o: &WithOption, max: u64) -> Result<u64> {
    match literal(o)? {
        Literal::Int(i) if i >= 1 && (i as u64) <= max => Ok(i as u64),
        other => Err(Error::invalid(
            format!(
                "{} must be a whole number 1..={max}, got {other}",
                o.key.value
            ),
            Some(o.value.span()),
        )),
    }
}

/// A boolean option.
pub(crate) fn boolean(o: &WithOption) -> Result<bool> {
    match literal(o)? {
        Literal::Bool(b) => Ok(b),
        other => Err(Error::invalid(
            format!("{} must be TRUE or FALSE, got {other}", o.key.value),
            Some(o.value.span()),
        )),
    }
}

/// An option no statement of this kind takes.
pub(crate) fn unknown_option(o: &WithOption, known: &[&str]) -> Error {
    Error::invalid(
        format!(
            "unknown setting '{}'; this statement takes {}",
            o.key.value,
            known.join(", ")
        ),
        Some(o.key.span()),
    )
}

/// Refuses a setting given twice.
pub(crate) fn check_unique(options: &[WithOption]) -> Result<()> {
    for (i, o) in options.iter().enumerate() {
        if options[..i]
            .iter()
            .any(|p| p.key.value.eq_ignore_ascii_case(&o.key.value))
        {
            return Err(Error::invalid(
                format!("{} is given twice", o.key.value),
                Some(o.key.span()),
            ));
        }
    }
    Ok(())
}

/// `CREATE INDEX name ON users USING ivf (vector) WITH (…)`.
pub(super) fn create(
    source: &dyn DataSource,
    name: &Ident,
    table: &Ident,
    method: &Ident,
    vector: &Ident,
    with: &[WithOption],
) -> Result<Output> {
    if !table.value.eq_ignore_ascii_case("users") {
        return Err(Error::invalid(
            format!(
                "an index is built on the users table, not '{}'",
                table.value
            ),
            Some(table.span()),
        ));
    }
    if !method.value.eq_ignore_ascii_case("ivf") {
        return Err(Error::invalid(
            format!(
                "unknown index method '{}'; the method is ivf (an inverted file of int8 codes)",
                method.value
            ),
            Some(method.span()),
        ));
    }
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    if catalog.vector(&vector.value).is_none() {
        return Err(match catalog.kind_of(&vector.value) {
            Some(kind) => Error::invalid(
                format!(
                    "'{}' is a{} {}, not a vector: an index is built on a vector",
                    vector.value,
                    if matches!(kind, DefKind::Attribute | DefKind::Index) {
                        "n"
                    } else {
                        ""
                    },
                    kind.name()
                ),
                Some(vector.span()),
            ),
            None => unknown(
                "vector",
                vector,
                catalog.vectors.iter().map(|v| v.name.as_str()),
            ),
        });
    }
    check_unique(with)?;
    let (mut lists, mut probes, mut rerank) = DEFAULTS;
    let max_lists = profiledb_storage::vector::ivf::MAX_LISTS as u64;
    let max_rerank = profiledb_storage::vector::ivf::MAX_RERANK as u64;
    let mut probes_at = None;
    for o in with {
        match o.key.value.to_ascii_lowercase().as_str() {
            "lists" => lists = whole(o, max_lists)? as u32,
            "probes" => {
                probes = whole(o, max_lists)? as u32;
                probes_at = Some(o.value.span());
            }
            "rerank" => rerank = whole(o, max_rerank)? as u32,
            _ => return Err(unknown_option(o, &["lists", "probes", "rerank"])),
        }
    }
    if probes > lists {
        if let Some(span) = probes_at {
            return Err(Error::invalid(
                format!("probes ({probes}) must be at most lists ({lists})"),
                Some(span),
            ));
        }
        // The default probes, for an index of fewer lists: all of them.
        probes = lists;
    }
    source
        .define(Definition::Index {
            name: name.value.clone(),
            vector: vector.value.clone(),
            lists,
            probes,
            rerank,
        })
        .map_err(|e| storage_at(e, name.span()))?;
    Ok(Output::done("CREATE INDEX"))
}

/// `DROP INDEX [IF EXISTS] name`.
pub(super) fn drop(source: &dyn DataSource, name: &Ident, if_exists: bool) -> Result<Output> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    if catalog.index(&name.value).is_none() {
        if if_exists {
            return Ok(Output::done(format!(
                "DROP INDEX skipped: no index '{}'",
                name.value
            )));
        }
        return Err(unknown(
            "index",
            name,
            catalog.indexes.iter().map(|d| d.name.as_str()),
        ));
    }
    source
        .drop_item(DefKind::Index, &name.value)
        .map_err(|e| storage_at(e, name.span()))?;
    Ok(Output::done("DROP INDEX"))
}

/// The statement that makes `def`.
pub(crate) fn definition(catalog: &Catalog, def: &IndexDef) -> String {
    let vector = catalog
        .vector_by_id(def.vector)
        .map_or("?", |v| v.name.as_str());
    format!(
        "CREATE INDEX {} ON users USING ivf ({vector}) WITH (lists = {}, probes = {}, rerank = {})",
        def.name, def.lists, def.probes, def.rerank
    )
}

/// What the index holds now, as (rows, a sentence): `None` rows when it is
/// not built.
fn state(source: &dyn DataSource, def: &IndexDef) -> Result<(Option<u64>, Option<f64>, String)> {
    let view = source.view(Pins::VECTORS)?;
    let Some(t) = view.vectors(def.vector) else {
        return Ok((None, None, "not built".to_owned()));
    };
    let Some(ivf) = &t.ivf else {
        return Ok((
            None,
            None,
            format!(
                "not built: the vector has {} rows, fewer than its {} lists; queries scan exactly until it has",
                t.table.len(),
                def.lists
            ),
        ));
    };
    let s = ivf.stats();
    let mut text = format!(
        "{} rows in {} lists (smallest {}, largest {}, imbalance {:.2}), trained on {} rows; {:.0} bytes per row beside the {}-byte f32 row",
        s.rows,
        s.lists,
        s.smallest,
        s.largest,
        s.imbalance,
        s.trained_on,
        s.bytes_per_row,
        t.table.dim() * 4
    );
    let recall = ivf.measured().map(|m| {
        text.push_str(&format!(
            "; recall@{} {:.4} at {:.0} queries/s ({}, probes {}, {} queries, measured {})",
            m.k,
            m.recall,
            m.qps,
            metric_name(m.metric),
            m.probes,
            m.queries,
            format_timestamp(m.at_ms)
        ));
        m.recall
    });
    if recall.is_none() {
        text.push_str("; recall not measured (ANALYZE INDEX measures it)");
    }
    Ok((Some(s.rows as u64), recall, text))
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "cosine",
        Metric::Dot => "dot",
        Metric::L2 => "l2",
    }
}

/// `DESCRIBE` of an index: its definition, then what it holds.
pub(super) fn describe(source: &dyn DataSource, def: &IndexDef) -> Result<Rows> {
    let bindings = source.bindings();
    let (_, _, text) = state(source, def)?;
    Ok(Rows {
        columns: text_columns(&["kind", "name", "definition"]),
        rows: vec![vec![
            Value::String(DefKind::Index.name().to_owned()),
            Value::String(def.name.clone()),
            Value::String(format!("{} -- {text}", definition(&bindings.catalog, def))),
        ]],
    })
}

/// `SHOW INDEXES`.
pub(super) fn show(source: &dyn DataSource) -> Result<Rows> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    let mut rows = Vec::new();
    for def in &catalog.indexes {
        let (n, recall, _) = state(source, def)?;
        rows.push(vec![
            Value::String(def.name.clone()),
            Value::String(
                catalog
                    .vector_by_id(def.vector)
                    .map_or_else(String::new, |v| v.name.clone()),
            ),
            Value::String("ivf".to_owned()),
            Value::Int(i64::from(def.lists)),
            Value::Int(i64::from(def.probes)),
            Value::Int(i64::from(def.rerank)),
            n.map_or(Value::Null, |n| Value::Int(n as i64)),
            recall.map_or(Value::Null, Value::Float),
        ]);
    }
    Ok(Rows {
        columns: columns(&[
            ("name", Type::String),
            ("vector", Type::String),
            ("method", Type::String),
            ("lists", Type::Int),
            ("probes", Type::Int),
            ("rerank", Type::Int),
            ("rows", Type::Int),
            ("recall_at_10", Type::Float),
        ]),
        rows,
    })
}

/// `ANALYZE INDEX name [WITH (queries = n, probes = n, metric = 'l2')]`.
pub(super) fn analyze(
    source: &dyn DataSource,
    name: &Ident,
    with: &[WithOption],
    limits: &crate::limits::Limits,
) -> Result<Rows> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    let Some(def) = catalog.index(&name.value) else {
        return Err(unknown(
            "index",
            name,
            catalog.indexes.iter().map(|d| d.name.as_str()),
        ));
    };
    check_unique(with)?;
    let mut queries = ANALYZE_QUERIES;
    let mut probes = None;
    let mut metric = Metric::Cosine;
    for o in with {
        match o.key.value.to_ascii_lowercase().as_str() {
            "queries" => queries = whole(o, MAX_ANALYZE_QUERIES)?,
            "probes" => {
                probes = Some(whole(o, profiledb_storage::vector::ivf::MAX_LISTS as u64)? as usize)
            }
            "metric" => {
                metric = match literal(o)? {
                    Literal::String(s) if s.eq_ignore_ascii_case("cosine") => Metric::Cosine,
                    Literal::String(s) if s.eq_ignore_ascii_case("dot") => Metric::Dot,
                    Literal::String(s) if s.eq_ignore_ascii_case("l2") => Metric::L2,
                    other => {
                        return Err(Error::invalid(
                            format!("metric must be 'cosine', 'dot' or 'l2', got {other}"),
                            Some(o.value.span()),
                        ));
                    }
                }
            }
            _ => return Err(unknown_option(o, &["queries", "probes", "metric"])),
        }
    }
    let m = source
        .analyze_index(
            &def.name,
            metric,
            10,
            queries as usize,
            probes,
            limits.deadline,
        )
        .map_err(|e| {
            // Stopped at the deadline: the timeout every statement answers.
            match limits.check() {
                Err(timeout) => timeout,
                Ok(()) => storage_at(e, name.span()),
            }
        })?;
    Ok(Rows {
        columns: columns(&[
            ("index", Type::String),
            ("metric", Type::String),
            ("probes", Type::Int),
            ("queries", Type::Int),
            ("recall_at_10", Type::Float),
            ("queries_per_second", Type::Float),
        ]),
        rows: vec![vec![
            Value::String(def.name.clone()),
            Value::String(metric_name(m.metric).to_owned()),
            Value::Int(m.probes as i64),
            Value::Int(m.queries as i64),
            Value::Float(m.recall),
            Value::Float(m.qps),
        ]],
    })
}
