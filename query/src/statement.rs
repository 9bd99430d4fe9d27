//! Running statements: schema changes, writes, listings and queries.

use std::sync::Arc;

use profiledb_storage::catalog::{Catalog, VectorRule};
use profiledb_storage::time::{check_ts, parse_timestamp};
use profiledb_storage::{DefKind, Definition, Event, FeatureKind, Value};

use crate::ast::Select;
use crate::ast::{
    Duration, Expr, FeatureFunc, FunctionArg, Ident, Literal, Loc, ObjectKind, Statement,
    VectorSpec,
};
use crate::bind::{Binder, unknown};
use crate::error::{At, Error, Result, Span};
use crate::exec::{run_select, scan_partitions};
use crate::limits::Limits;
use crate::output::{Column, Output, Rows, Type};
use crate::parser::{parse_expr, parse_script};
use crate::plan::{Access, const_value, plan_select, point_ids};
use crate::source::DataSource;
use crate::{cluster, similarity};

/// Parses and runs every statement of `sql` in order, stopping at the first
/// error. Errors carry the line, column and a caret drawing into `sql`.
///
/// # Errors
/// The first statement's error that fails; statements before it have run.
pub fn execute(source: &dyn DataSource, sql: &str, limits: &Limits) -> Result<Vec<Output>> {
    execute_as(source, sql, limits, Permission::ReadWrite)
}

/// Who may do what: a read-only caller may run only statements that read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Every statement.
    ReadWrite,
    /// Queries, `SHOW`, `DESCRIBE` and `EXPLAIN` only.
    ReadOnly,
}

/// As [`execute`], for a caller with `permission`: the script is parsed once,
/// and a read-only caller's script that would change data or schema is
/// refused whole, before any statement runs.
///
/// # Errors
/// [`Error::ReadOnly`] at the first statement that writes; otherwise as
/// [`execute`].
pub fn execute_as(
    source: &dyn DataSource,
    sql: &str,
    limits: &Limits,
    permission: Permission,
) -> Result<Vec<Output>> {
    let statements = parse_script(sql).map_err(|e| Error::from(e).locate(sql))?;
    if permission == Permission::ReadOnly
        && let Some((_, span)) = statements.iter().find(|(s, _)| !s.is_read_only())
    {
        return Err(Error::ReadOnly {
            at: At::span(*span),
        }
        .locate(sql));
    }
    let mut out = Vec::with_capacity(statements.len());
    for (stmt, _) in &statements {
        out.push(run(source, stmt, limits).map_err(|e| e.locate(sql))?);
    }
    Ok(out)
}

/// Runs one parsed statement. Error spans index the text it was parsed from.
///
/// # Errors
/// Unknown names, type mismatches, invalid definitions and storage failures.
pub fn run(source: &dyn DataSource, stmt: &Statement, limits: &Limits) -> Result<Output> {
    match stmt {
        Statement::CreateAttribute { name, .. }
        | Statement::CreateFeature { name, .. }
        | Statement::CreateWindow { name, .. }
        | Statement::CreateVector { name, .. }
        | Statement::CreateSegment { name, .. } => {
            let def = definition(source, stmt)?;
            let kind = def.kind();
            source.define(def).map_err(|e| storage_at(e, name.span()))?;
            Ok(Output::done(format!("CREATE {}", keyword(kind))))
        }
        Statement::Drop { kind, name } => drop_item(source, *kind, name),
        Statement::Show { kind } => Ok(Output::Rows(show(&source.bindings().catalog, *kind))),
        Statement::Describe { name } => {
            describe(&source.bindings().catalog, name).map(Output::Rows)
        }
        Statement::Insert {
            event,
            columns,
            rows,
        } => insert(source, event, columns, rows),
        Statement::Update {
            assignments,
            selection,
        } => update(source, assignments, selection, limits),
        Statement::DeleteUser { user, loc } => {
            let existed = source.delete_user(user).map_err(|e| storage_at(e, loc.0))?;
            Ok(Output::counted("DELETE", u64::from(existed)))
        }
        Statement::Delete { selection } => {
            let ids = matching_users(source, selection, limits)?;
            let mut n = 0;
            for id in &ids {
                n += u64::from(source.delete_user(id)?);
            }
            Ok(Output::counted("DELETE", n))
        }
        Statement::Select(select) => query(source, select, limits).map(Output::Rows),
        Statement::Explain(inner) => explain(source, inner),
        Statement::Cluster(c) => {
            // One row per cluster: refuse before the work, not after.
            limits.check_rows(usize::try_from(c.k).unwrap_or(usize::MAX))?;
            Ok(Output::Rows(cluster::rows(cluster::cluster(
                source, c, limits,
            )?)))
        }
        Statement::CreateSegments { name, cluster: c } => {
            let bindings = source.bindings();
            name_is_free(&bindings.catalog, name)?;
            let clusters = cluster::cluster(source, c, limits)?;
            let n = clusters.clusters.len() as u64;
            let def = cluster::segment_group(&name.value, clusters, stmt.to_string());
            source.define(def).map_err(|e| storage_at(e, name.span()))?;
            Ok(Output::counted("CREATE SEGMENTS", n))
        }
        Statement::Vacuum => {
            if !source.vacuum(limits.deadline)? {
                // Stopped at the deadline; the purge stays due.
                limits.check()?;
            }
            Ok(Output::done("VACUUM"))
        }
        Statement::DropSegments { name } => {
            let bindings = source.bindings();
            let catalog = &bindings.catalog;
            if catalog.segment_group(&name.value).is_none() {
                return Err(unknown(
                    "segment group",
                    name,
                    catalog.segment_groups.iter().map(|g| g.name.as_str()),
                ));
            }
            source
                .drop_item(DefKind::SegmentGroup, &name.value)
                .map_err(|e| storage_at(e, name.span()))?;
            Ok(Output::done("DROP SEGMENTS"))
        }
    }
}

/// Plans and runs a `SELECT`.
///
/// The query reads one view (catalog, data and, when the plan ranks or
/// averages by similarity, the vector index, all of one moment). The plan is
/// made against the view's catalog: when a schema change lands between
/// planning and taking the view, it is planned again.
fn query(source: &dyn DataSource, select: &Select, limits: &Limits) -> Result<Rows> {
    let now = source.now();
    let mut bindings = source.bindings();
    // Each attempt loses only to a schema change in between: a few suffice.
    for _ in 0..16 {
        let mut plan = plan_select(select, &bindings.catalog, now)?;
        let view = source.view(plan.uses_vectors())?;
        if !Arc::ptr_eq(view.bindings(), &bindings) {
            bindings = Arc::clone(view.bindings());
            continue;
        }
        similarity::resolve(&mut plan, view.as_ref(), limits)?;
        return run_select(&plan, view.as_ref(), limits);
    }
    Err(Error::invalid(
        "the schema kept changing while the query was planned; run it again",
        None,
    ))
}

fn keyword(kind: DefKind) -> &'static str {
    match kind {
        DefKind::Attribute => "ATTRIBUTE",
        DefKind::Feature => "FEATURE",
        DefKind::Window => "WINDOW",
        DefKind::Vector => "VECTOR",
        DefKind::Segment => "SEGMENT",
        DefKind::SegmentGroup => "SEGMENTS",
    }
}

fn def_kind(kind: ObjectKind) -> DefKind {
    match kind {
        ObjectKind::Attribute => DefKind::Attribute,
        ObjectKind::Feature => DefKind::Feature,
        ObjectKind::Window => DefKind::Window,
        ObjectKind::Vector => DefKind::Vector,
        ObjectKind::Segment => DefKind::Segment,
    }
}

/// A storage error about the item written at `span`, located there.
fn storage_at(e: profiledb_storage::Error, span: Span) -> Error {
    match e {
        profiledb_storage::Error::AlreadyExists { kind, name } => Error::AlreadyExists {
            kind,
            name,
            at: At::span(span),
        },
        profiledb_storage::Error::InvalidArgument(m) => Error::invalid(m, Some(span)),
        other => Error::Storage(other),
    }
}

/// Refuses a name some item already has, before any work is done for it.
fn name_is_free(catalog: &Catalog, name: &Ident) -> Result<()> {
    match catalog.kind_of(&name.value) {
        Some(kind) => Err(Error::AlreadyExists {
            kind: kind.name(),
            name: name.value.clone(),
            at: At::span(name.span()),
        }),
        None => Ok(()),
    }
}

/// The storage definition a `CREATE` statement makes.
fn definition(source: &dyn DataSource, stmt: &Statement) -> Result<Definition> {
    Ok(match stmt {
        Statement::CreateAttribute { name, ty, on } => Definition::Attribute {
            name: name.value.clone(),
            ty: *ty,
            event_type: on.as_ref().map(|e| e.value.clone()),
        },
        Statement::CreateFeature {
            name,
            event,
            func,
            field,
            half_life,
            prior,
        } => {
            let h = half_life.map_or(0, |h| h.ms);
            let kind = match func {
                FeatureFunc::Count => FeatureKind::Count,
                FeatureFunc::Sum => FeatureKind::Sum,
                FeatureFunc::Min => FeatureKind::Min,
                FeatureFunc::Max => FeatureKind::Max,
                FeatureFunc::Last => FeatureKind::Last,
                FeatureFunc::DecayedCount => FeatureKind::DecayedCount { half_life_ms: h },
                FeatureFunc::DecayedSum => FeatureKind::DecayedSum { half_life_ms: h },
                FeatureFunc::DecayedAvg => FeatureKind::DecayedAvg { half_life_ms: h },
                FeatureFunc::Beta => {
                    let (prior_a, prior_b) = prior.unwrap_or((1.0, 1.0));
                    FeatureKind::Beta {
                        half_life_ms: h,
                        prior_a,
                        prior_b,
                    }
                }
            };
            Definition::Feature {
                name: name.value.clone(),
                event_type: event.value.clone(),
                field: field.as_ref().map(|f| f.value.clone()),
                kind,
            }
        }
        Statement::CreateWindow {
            name,
            event,
            field,
            bucket,
            retain,
        } => Definition::Window {
            name: name.value.clone(),
            event_type: event.value.clone(),
            field: field.as_ref().map(|f| f.value.clone()),
            bucket_ms: bucket.ms,
            retain_ms: retain.ms,
        },
        Statement::CreateVector {
            name,
            event,
            dim,
            spec,
        } => Definition::Vector {
            name: name.value.clone(),
            event_type: event.value.clone(),
            dim: *dim,
            rule: match spec {
                VectorSpec::Ewma { field, half_life } => VectorRule::Ewma {
                    field: field.value.clone(),
                    half_life_ms: half_life.ms,
                },
                VectorSpec::Sgd {
                    item,
                    label,
                    learning_rate,
                    l2,
                } => VectorRule::Sgd {
                    item_field: item.value.clone(),
                    label_field: label.value.clone(),
                    learning_rate: *learning_rate,
                    l2: *l2,
                },
            },
        },
        Statement::CreateSegment { name, predicate } => {
            let bindings = source.bindings();
            name_is_free(&bindings.catalog, name)?;
            Binder::new(&bindings.catalog, source.now())
                .predicate(predicate, "segment predicate")?;
            Definition::Segment {
                name: name.value.clone(),
                predicate: predicate.to_string(),
            }
        }
        _ => return Err(Error::invalid("not a definition", None)),
    })
}

/// Names an expression refers to: columns, windows and segments.
fn referenced_names(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Column(c) | Expr::InSegment(c) => out.push(c.value.clone()),
        Expr::Literal(..) => {}
        Expr::Array(items, _) => items.iter().for_each(|i| referenced_names(i, out)),
        Expr::Unary { expr, .. } | Expr::IsNull { expr, .. } => referenced_names(expr, out),
        Expr::Binary { left, right, .. } => {
            referenced_names(left, out);
            referenced_names(right, out);
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            for x in [expr, low, high] {
                referenced_names(x, out);
            }
        }
        Expr::InList { expr, list, .. } => {
            referenced_names(expr, out);
            list.iter().for_each(|i| referenced_names(i, out));
        }
        Expr::Function { args, .. } => {
            for a in args {
                if let FunctionArg::Expr(x) = a {
                    referenced_names(x, out);
                }
            }
        }
    }
}

fn drop_item(source: &dyn DataSource, kind: ObjectKind, name: &Ident) -> Result<Output> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    let dk = def_kind(kind);
    if catalog.kind_of(&name.value) != Some(dk) {
        let names: Vec<&str> = match dk {
            DefKind::Attribute => catalog.attributes.iter().map(|d| d.name.as_str()).collect(),
            DefKind::Feature => catalog.features.iter().map(|d| d.name.as_str()).collect(),
            DefKind::Window => catalog.windows.iter().map(|d| d.name.as_str()).collect(),
            DefKind::Vector => catalog.vectors.iter().map(|d| d.name.as_str()).collect(),
            DefKind::Segment => catalog.segments.iter().map(|d| d.name.as_str()).collect(),
            DefKind::SegmentGroup => catalog
                .segment_groups
                .iter()
                .map(|d| d.name.as_str())
                .collect(),
        };
        return Err(unknown(dk.name(), name, names));
    }
    // Refuse to break a segment that reads the item.
    for seg in &catalog.segments {
        if seg.name == name.value {
            continue;
        }
        let mut names = Vec::new();
        if let Ok(e) = parse_expr(&seg.predicate) {
            referenced_names(&e, &mut names);
        }
        if names.contains(&name.value) {
            return Err(Error::invalid(
                format!(
                    "segment '{}' uses {} '{}'; drop the segment first",
                    seg.name,
                    dk.name(),
                    name.value
                ),
                Some(name.span()),
            ));
        }
    }
    source
        .drop_item(dk, &name.value)
        .map_err(|e| storage_at(e, name.span()))?;
    Ok(Output::done(format!("DROP {}", keyword(dk))))
}

fn ident(s: &str) -> Ident {
    Ident::new(s)
}

fn duration(ms: i64) -> Duration {
    Duration {
        ms,
        loc: Loc::default(),
    }
}

/// Each item of `kind` as the `CREATE` statement that would define it.
fn definitions(catalog: &Catalog, kind: ObjectKind) -> Vec<(String, Statement)> {
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
                    .find(|f| f.keyword() == d.kind.name())
                    .unwrap_or(FeatureFunc::Count);
                let prior = match d.kind {
                    FeatureKind::Beta {
                        prior_a, prior_b, ..
                    } => Some((prior_a, prior_b)),
                    _ => None,
                };
                let s = Statement::CreateFeature {
                    name: ident(&d.name),
                    event: ident(&d.event_type),
                    func,
                    field: d.field.as_deref().map(ident),
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
                    field: d.field.as_deref().map(ident),
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
                let predicate = parse_expr(&d.predicate).unwrap_or_else(|_| {
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

fn text_columns(names: &[&str]) -> Vec<Column> {
    names
        .iter()
        .map(|n| Column {
            name: (*n).to_owned(),
            ty: Type::String,
        })
        .collect()
}

/// `SHOW kinds`: each item's name and defining statement.
fn show(catalog: &Catalog, kind: ObjectKind) -> Rows {
    Rows {
        columns: text_columns(&["name", "definition"]),
        rows: definitions(catalog, kind)
            .into_iter()
            .map(|(n, s)| vec![Value::String(n), Value::String(s.to_string())])
            .collect(),
    }
}

/// `DESCRIBE name`: the item's kind, name and definition.
fn describe(catalog: &Catalog, name: &Ident) -> Result<Rows> {
    for kind in ObjectKind::ALL {
        if let Some((_, s)) = definitions(catalog, kind)
            .into_iter()
            .find(|(n, _)| *n == name.value)
        {
            return Ok(Rows {
                columns: text_columns(&["kind", "name", "definition"]),
                rows: vec![vec![
                    Value::String(def_kind(kind).name().to_owned()),
                    Value::String(name.value.clone()),
                    Value::String(s.to_string()),
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

fn insert(
    source: &dyn DataSource,
    event: &Ident,
    columns: &[Ident],
    rows: &[Vec<Expr>],
) -> Result<Output> {
    let bindings = source.bindings();
    let Some(bound) = bindings.event(&event.value) else {
        return Err(Error::UnboundEvent {
            event_type: event.value.clone(),
            at: At::span(event.span()),
        });
    };
    let position = |name: &str| columns.iter().position(|c| c.value == name);
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|p| p.value == c.value) {
            return Err(Error::invalid(
                format!("column '{}' is given twice", c.value),
                Some(c.span()),
            ));
        }
        if c.value == "type" {
            return Err(Error::invalid(
                "'type' is the event type, given by INSERT INTO",
                Some(c.span()),
            ));
        }
    }
    let (Some(user_col), Some(ts_col)) = (position("user"), position("ts")) else {
        return Err(Error::invalid(
            "INSERT needs the columns user and ts",
            Some(columns[0].span().to(columns[columns.len() - 1].span())),
        ));
    };
    // Vector fields this event type feeds, with their dimensions.
    let dims: Vec<(usize, &str, usize)> = bound
        .vectors
        .iter()
        .flat_map(|v| {
            let fields: Vec<&str> = match &v.rule {
                VectorRule::Ewma { field, .. } => vec![field.as_str()],
                VectorRule::Sgd { item_field, .. } => vec![item_field.as_str()],
            };
            fields
                .into_iter()
                .filter_map(|f| position(f).map(|i| (i, v.name.as_str(), v.dim as usize)))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        if row.len() != columns.len() {
            let span = row
                .first()
                .map_or(event.span(), |f| f.span().to(row[row.len() - 1].span()));
            return Err(Error::invalid(
                format!(
                    "a row has {} values for {} columns",
                    row.len(),
                    columns.len()
                ),
                Some(span),
            ));
        }
        let mut values = row
            .iter()
            .map(const_value)
            .collect::<Result<Vec<Value>>>()?;
        let user = match std::mem::replace(&mut values[user_col], Value::Null) {
            Value::String(s) => s,
            other => {
                return Err(Error::TypeMismatch {
                    context: "column user".into(),
                    expected: "string".into(),
                    found: other.type_name().into(),
                    at: At::span(row[user_col].span()),
                });
            }
        };
        let ts_span = Some(row[ts_col].span());
        let ts = match std::mem::replace(&mut values[ts_col], Value::Null) {
            Value::String(s) => parse_timestamp(&s),
            Value::Int(ms) => check_ts(ms),
            other => {
                return Err(Error::TypeMismatch {
                    context: "column ts".into(),
                    expected: "an RFC 3339 string or epoch ms".into(),
                    found: other.type_name().into(),
                    at: At::span(row[ts_col].span()),
                });
            }
        }
        .map_err(|e| Error::invalid(e.to_string(), ts_span))?;
        for &(i, vector, dim) in &dims {
            if let Value::Vector(v) = &values[i]
                && v.len() != dim
            {
                return Err(Error::Dimension {
                    vector: vector.to_owned(),
                    expected: dim,
                    found: v.len(),
                    at: At::span(row[i].span()),
                });
            }
        }
        let mut e = Event::new(user, event.value.clone(), ts);
        e.fields.reserve(columns.len() - 2);
        for (c, v) in columns.iter().zip(values) {
            // `user` and `ts` were taken out, leaving NULL, like absent fields.
            if !v.is_null() {
                e.fields.push((c.value.clone(), v));
            }
        }
        events.push(e);
    }
    match source.ingest(&events) {
        Ok(n) => Ok(Output::counted("INSERT", n as u64)),
        Err(profiledb_storage::Error::InvalidEvent {
            index,
            field,
            reason,
        }) => {
            let row = &rows[index.min(rows.len() - 1)];
            let span = field.as_deref().and_then(position).map_or_else(
                || row[0].span().to(row[row.len() - 1].span()),
                |i| row[i].span(),
            );
            let what = field.map_or_else(String::new, |f| format!(" field '{f}'"));
            Err(Error::invalid(
                format!("row {}{what}: {reason}; nothing was written", index + 1),
                Some(span),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The ids of the users `selection` matches.
fn matching_users(
    source: &dyn DataSource,
    selection: &Expr,
    limits: &Limits,
) -> Result<Vec<String>> {
    let select = crate::ast::Select {
        projection: vec![crate::ast::SelectItem::Expr {
            expr: Expr::Column(ident("id")),
            alias: None,
        }],
        from: ident("users"),
        selection: Some(selection.clone()),
        group_by: Vec::new(),
        order_by: Vec::new(),
        limit: None,
        as_of: None,
    };
    let unlimited = Limits {
        max_rows: None,
        ..limits.clone()
    };
    let rows = query(source, &select, &unlimited)?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|mut r| match r.pop() {
            Some(Value::String(s)) => Some(s),
            _ => None,
        })
        .collect())
}

fn update(
    source: &dyn DataSource,
    assignments: &[(Ident, Expr)],
    selection: &Expr,
    limits: &Limits,
) -> Result<Output> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    let mut values = Vec::with_capacity(assignments.len());
    for (i, (name, expr)) in assignments.iter().enumerate() {
        let Some(def) = catalog.attribute(&name.value) else {
            return Err(unknown(
                "attribute",
                name,
                catalog.attributes.iter().map(|a| a.name.as_str()),
            ));
        };
        if assignments[..i].iter().any(|(p, _)| p.value == name.value) {
            return Err(Error::invalid(
                format!("attribute '{}' is set twice", name.value),
                Some(name.span()),
            ));
        }
        let v = const_value(expr)?;
        let v = if v.is_null() {
            v
        } else {
            v.coerce(def.ty).map_err(|_| Error::TypeMismatch {
                context: format!("attribute '{}'", def.name),
                expected: def.ty.to_string().to_lowercase(),
                found: v.type_name().into(),
                at: At::span(expr.span()),
            })?
        };
        values.push((def.name.clone(), v));
    }
    // `WHERE id = 'x'` names the users outright, existing or not: UPDATE creates them.
    let ids = match point_ids(selection) {
        Some(ids) if is_plain_id_test(selection) => ids,
        _ => matching_users(source, selection, limits)?,
    };
    let now = source.now();
    for id in &ids {
        source
            .set_attributes(id, now, &values)
            .map_err(|e| storage_at(e, selection.span()))?;
    }
    Ok(Output::counted("UPDATE", ids.len() as u64))
}

/// Whether the predicate is exactly `id = '…'` or `id IN (…)`.
fn is_plain_id_test(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Binary {
            op: crate::ast::BinaryOp::Eq,
            ..
        } | Expr::InList { negated: false, .. }
    ) && point_ids(e).is_some()
}

fn explain(source: &dyn DataSource, stmt: &Statement) -> Result<Output> {
    let lines = match stmt {
        Statement::Select(select) => {
            let plan = plan_select(select, &source.bindings().catalog, source.now())?;
            let partitions = if plan.access == Access::Scan {
                source.view(false)?.partitions(scan_partitions())?.len()
            } else {
                1
            };
            plan.explain(partitions)
        }
        Statement::Insert { event, rows, .. } => {
            vec![format!(
                "Insert: {} event(s) of type {} in one atomic batch",
                rows.len(),
                event
            )]
        }
        Statement::Explain(_) => return Err(Error::invalid("EXPLAIN of EXPLAIN", None)),
        other => vec![format!("Statement: {other}")],
    };
    Ok(Output::Rows(Rows {
        columns: text_columns(&["plan"]),
        rows: lines.into_iter().map(|l| vec![Value::String(l)]).collect(),
    }))
}
