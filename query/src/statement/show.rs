//! Listings: `SHOW` a kind of item and `DESCRIBE` one, each item printed as
//! the statement that would define it.

use profiledb_storage::catalog::{Catalog, EventDef, FilterValue, VectorRule};
use profiledb_storage::time::format_duration;
use profiledb_storage::{DefKind, FeatureKind, Value};

use super::*;
use crate::ast::{
    Duration, Expr, FeatureFunc, FieldSpec, Ident, KeyedSpec, Literal, Loc, ObjectKind, Statement,
    VectorSpec,
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
                    by: d.keyed.as_ref().map(|k| KeyedSpec {
                        field: ident(&k.by),
                        top: k.top,
                    }),
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

/// A declared event type as the `CREATE EVENT` statement that declares it.
pub(super) fn event_statement(def: &EventDef) -> Statement {
    Statement::CreateEvent {
        name: ident(&def.name),
        fields: def
            .fields
            .iter()
            .map(|f| FieldSpec {
                name: ident(&f.name),
                ty: f.ty,
                not_null: f.not_null,
                default: f.default.as_ref().map(|d| (literal(d), Loc::default())),
            })
            .collect(),
    }
}

/// A catalog constant in the language.
fn literal(v: &FilterValue) -> Literal {
    match v {
        FilterValue::Null => Literal::Null,
        FilterValue::Bool(b) => Literal::Bool(*b),
        FilterValue::Int(i) => Literal::Int(*i),
        FilterValue::Float(x) => Literal::Float(*x),
        FilterValue::String(s) => Literal::String(s.clone()),
    }
}

/// `SHOW EVENTS`: every event type, declared (in declaration order) or
/// only bound to by items (by name after them), with the number of items
/// bound to it and its declaration.
pub(super) fn events(catalog: &Catalog) -> Rows {
    let mut bound: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    let types = catalog
        .attributes
        .iter()
        .flat_map(|a| a.event_type.iter())
        .chain(catalog.features.iter().flat_map(|f| f.event_types()))
        .chain(catalog.windows.iter().flat_map(|w| w.event_types()))
        .chain(catalog.vectors.iter().flat_map(|v| v.event_types()));
    for t in types {
        *bound.entry(t.as_str()).or_default() += 1;
    }
    let mut rows: Vec<Vec<Value>> = catalog
        .events
        .iter()
        .map(|e| {
            vec![
                Value::String(e.name.clone()),
                Value::Bool(true),
                Value::Int(bound.get(e.name.as_str()).copied().unwrap_or(0)),
                Value::String(event_statement(e).to_string()),
            ]
        })
        .collect();
    for (name, n) in &bound {
        if catalog.event(name).is_none() {
            rows.push(vec![
                Value::String((*name).to_owned()),
                Value::Bool(false),
                Value::Int(*n),
                Value::Null,
            ]);
        }
    }
    let column = |name: &str, ty| Column {
        name: name.into(),
        ty,
    };
    Rows {
        columns: vec![
            column("name", Type::String),
            column("declared", Type::Bool),
            column("items", Type::Int),
            column("definition", Type::String),
        ],
        rows,
    }
}

/// `DESCRIBE EVENT name`: the declaration, as `DESCRIBE` shows an item.
pub(super) fn describe_event(catalog: &Catalog, name: &Ident) -> Result<Rows> {
    let def = catalog.event(&name.value).ok_or_else(|| {
        unknown(
            "event type",
            name,
            catalog.events.iter().map(|e| e.name.as_str()),
        )
    })?;
    Ok(Rows {
        columns: text_columns(&["kind", "name", "definition"]),
        rows: vec![vec![
            Value::String("event type".to_owned()),
            Value::String(def.name.clone()),
            Value::String(event_statement(def).to_string()),
        ]],
    })
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
    if catalog.event(&name.value).is_some() {
        return describe_event(catalog, name);
    }
    let all: Vec<String> = ObjectKind::ALL
        .into_iter()
        .flat_map(|k| definitions(catalog, k).into_iter().map(|(n, _)| n))
        .chain(catalog.segment_groups.iter().map(|g| g.name.clone()))
        .chain(catalog.events.iter().map(|e| e.name.clone()))
        .collect();
    Err(unknown("item", name, all.iter().map(String::as_str)))
}
