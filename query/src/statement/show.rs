//! Listings: `SHOW` a kind of item and `DESCRIBE` one, each item printed as
//! the statement that would define it.

use profiledb_storage::catalog::{Catalog, VectorRule};
use profiledb_storage::time::format_duration;
use profiledb_storage::{DefKind, FeatureKind, Value};

use super::*;
use crate::ast::{
    Duration, Expr, FeatureFunc, Ident, Literal, Loc, ObjectKind, Statement, VectorSpec,
};
use crate::bind::{segment_expr, unknown};
use crate::error::Result;
use crate::output::Rows;

pub(super) fn ident(s: &str) -> Ident {
    Ident::new(s)
}

pub(super) fn duration(ms: i64) -> Duration {
    Duration {
        ms,
        loc: Loc::default(),
    }
}

/// Each item of `kind` as the `CREATE` statement that would define it.
pub(super) fn definitions(catalog: &Catalog, kind: ObjectKind) -> Vec<(String, Statement)> {
    match kind {
        ObjectKind::Attribute => catalog
            .attributes
            .iter()
            .map(|d| {
                let s = Statement::CreateAttribute {
                    name: ident(&d.name),
                    ty: d.ty,
                    on: d.event_type.as_deref().map(ident),
                };
                (d.name.clone(), s)
            })
            .collect(),
        ObjectKind::Feature => catalog
            .features
            .iter()
            .map(|d| {
                let func = FeatureFunc::ALL
                    .into_iter()
                    .find(|f| f.keyword().as_str() == d.kind.name())
                    .unwrap_or(FeatureFunc::Count);
                let prior = match d.kind {
                    FeatureKind::Beta {
                        prior_a, prior_b, ..
                    }
                    | FeatureKind::Rate {
                        prior_a, prior_b, ..
                    } => Some((prior_a, prior_b)),
                    _ => None,
                };
                let s = Statement::CreateFeature {
                    name: ident(&d.name),
                    event: ident(&d.event_type),
                    also_on: d.also_on.iter().map(|e| ident(e)).collect(),
                    filter: filter_expr(d.filter.as_ref()),
                    func,
                    field: d.field.as_deref().map(ident),
                    arg: expr_of(d.expr.as_ref()),
                    half_life: d.kind.half_life_ms().map(duration),
                    prior,
                };
                (d.name.clone(), s)
            })
            .collect(),
        ObjectKind::Window => catalog
            .windows
            .iter()
            .map(|d| {
                let s = Statement::CreateWindow {
                    name: ident(&d.name),
                    event: ident(&d.event_type),
                    also_on: d.also_on.iter().map(|e| ident(e)).collect(),
                    filter: filter_expr(d.filter.as_ref()),
                    field: d.field.as_deref().map(ident),
                    arg: expr_of(d.expr.as_ref()),
                    bucket: duration(d.bucket_ms),
                    retain: duration(d.retain_ms),
                };
                (d.name.clone(), s)
            })
            .collect(),
        ObjectKind::Vector => catalog
            .vectors
            .iter()
            .map(|d| {
                let spec = match &d.rule {
                    VectorRule::Ewma {
                        field,
                        half_life_ms,
                    } => VectorSpec::Ewma {
                        field: ident(field),
                        half_life: duration(*half_life_ms),
                    },
                    VectorRule::Sgd {
                        item_field,
                        label_field,
                        learning_rate,
                        l2,
                    } => VectorSpec::Sgd {
                        item: ident(item_field),
                        label: ident(label_field),
                        learning_rate: *learning_rate,
                        l2: *l2,
                    },
                };
                let s = Statement::CreateVector {
                    name: ident(&d.name),
                    event: ident(&d.event_type),
                    also_on: d.also_on.iter().map(|e| ident(e)).collect(),
                    filter: filter_expr(d.filter.as_ref()),
                    dim: d.dim,
                    spec,
                };
                (d.name.clone(), s)
            })
            .collect(),
        ObjectKind::Segment => catalog
            .segments
            .iter()
            .map(|d| {
                let predicate = segment_expr(d).unwrap_or_else(|_| {
                    Expr::Literal(Literal::String(d.predicate.clone()), Loc::default())
                });
                let s = Statement::CreateSegment {
                    name: ident(&d.name),
                    predicate,
                };
                (d.name.clone(), s)
            })
            .collect(),
    }
}

/// `SHOW kinds`: each item's name and defining statement.
pub(super) fn show(catalog: &Catalog, kind: ObjectKind) -> Rows {
    Rows {
        columns: text_columns(&["name", "definition"]),
        rows: definitions(catalog, kind)
            .into_iter()
            .map(|(n, s)| vec![Value::String(n), Value::String(s.to_string())])
            .collect(),
    }
}

/// `SHOW HISTORY`: how long accepted writes are kept, as a duration and in
/// ms (`'0s'` and 0 when history is off), and the oldest time `AS OF` can
/// answer (NULL when any time can: nothing was folded yet).
pub(super) fn history(catalog: &Catalog, cutoff: Option<i64>) -> Rows {
    let ms = catalog.history_ms;
    Rows {
        columns: vec![
            Column {
                name: "horizon".into(),
                ty: Type::String,
            },
            Column {
                name: "horizon_ms".into(),
                ty: Type::Int,
            },
            Column {
                name: "oldest_as_of".into(),
                ty: Type::String,
            },
        ],
        rows: vec![vec![
            Value::String(if ms == 0 {
                "0s".to_owned()
            } else {
                format_duration(ms)
            }),
            Value::Int(ms),
            cutoff.map_or(Value::Null, |t| {
                Value::String(profiledb_storage::time::format_timestamp(t))
            }),
        ]],
    }
}

/// A computed argument as the expression that spells it.
fn expr_of(expr: Option<&profiledb_storage::catalog::EventExpr>) -> Option<crate::ast::Expr> {
    // It prints in the language; a stored one always parses.
    expr.and_then(|e| crate::parser::parse_expr(&e.to_string()).ok())
}

/// A filter as the expression that spells it.
fn filter_expr(
    filter: Option<&profiledb_storage::catalog::EventFilter>,
) -> Option<crate::ast::Expr> {
    // The filter prints in the language; a stored one always parses.
    filter.and_then(|f| crate::parser::parse_expr(&f.to_string()).ok())
}

/// When item `name` was computed over the event history from, if it was.
fn backfilled_from(catalog: &Catalog, name: &str) -> Option<i64> {
    let of = |n: &str, from: Option<i64>| (n == name).then_some(from).flatten();
    catalog
        .attributes
        .iter()
        .find_map(|d| of(&d.name, d.backfilled_from))
        .or_else(|| {
            catalog
                .features
                .iter()
                .find_map(|d| of(&d.name, d.backfilled_from))
        })
        .or_else(|| {
            catalog
                .windows
                .iter()
                .find_map(|d| of(&d.name, d.backfilled_from))
        })
        .or_else(|| {
            catalog
                .vectors
                .iter()
                .find_map(|d| of(&d.name, d.backfilled_from))
        })
}

/// `DESCRIBE name`: the item's kind, name and definition, with when it was
/// computed over the event history from, as a trailing comment.
pub(super) fn describe(catalog: &Catalog, name: &Ident) -> Result<Rows> {
    for kind in ObjectKind::ALL {
        if let Some((_, s)) = definitions(catalog, kind)
            .into_iter()
            .find(|(n, _)| *n == name.value)
        {
            let mut definition = s.to_string();
            if let Some(from) = backfilled_from(catalog, &name.value) {
                // A comment: the definition still runs as written.
                definition.push_str(&format!(
                    " -- backfilled from {}",
                    profiledb_storage::time::format_timestamp(from)
                ));
            }
            return Ok(Rows {
                columns: text_columns(&["kind", "name", "definition"]),
                rows: vec![vec![
                    Value::String(def_kind(kind).name().to_owned()),
                    Value::String(name.value.clone()),
                    Value::String(definition),
                ]],
            });
        }
    }
    if let Some(g) = catalog.segment_group(&name.value) {
        return Ok(Rows {
            columns: text_columns(&["kind", "name", "definition"]),
            rows: vec![vec![
                Value::String(DefKind::SegmentGroup.name().to_owned()),
                Value::String(g.name.clone()),
                Value::String(g.definition.clone()),
            ]],
        });
    }
    let all: Vec<String> = ObjectKind::ALL
        .into_iter()
        .flat_map(|k| definitions(catalog, k).into_iter().map(|(n, _)| n))
        .chain(catalog.segment_groups.iter().map(|g| g.name.clone()))
        .collect();
    Err(unknown("item", name, all.iter().map(String::as_str)))
}
