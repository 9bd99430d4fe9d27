//! Writes: `INSERT` of events, `UPDATE` of attributes, and `DELETE` of
//! users by id or by predicate.

use profiledb_storage::catalog::VectorRule;
use profiledb_storage::time::{check_ts, parse_timestamp};
use profiledb_storage::{Event, Value};

use super::*;
use crate::ast::{Expr, Ident};
use crate::bind::unknown;
use crate::error::{At, Error, Result};
use crate::limits::Limits;
use crate::output::Output;
use crate::plan::{const_value, point_ids};
use crate::source::DataSource;

pub(super) fn insert(
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
        Ok(n) if n.duplicates > 0 => Ok(Output::Done {
            summary: format!(
                "INSERT {} ({} duplicate{} skipped)",
                n.accepted,
                n.duplicates,
                if n.duplicates == 1 { "" } else { "s" }
            ),
            count: Some(n.accepted as u64),
        }),
        Ok(n) => Ok(Output::counted("INSERT", n.accepted as u64)),
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
pub(super) fn matching_users(
    source: &dyn DataSource,
    selection: &Expr,
    limits: &Limits,
) -> Result<Vec<String>> {
    let select = crate::ast::Select {
        projection: vec![crate::ast::SelectItem::Expr {
            expr: Expr::Column(ident("id")),
            alias: None,
        }],
        from: Some(ident("users")),
        selection: Some(selection.clone()),
        ..crate::ast::Select::default()
    };
    let unlimited = Limits {
        max_rows: None,
        ..limits.clone()
    };
    let rows = query(source, &select, &unlimited, None)?;
    Ok(rows
        .rows
        .into_iter()
        .filter_map(|mut r| match r.pop() {
            Some(Value::String(s)) => Some(s),
            _ => None,
        })
        .collect())
}

pub(super) fn update(
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
pub(super) fn is_plain_id_test(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Binary {
            op: crate::ast::BinaryOp::Eq,
            ..
        } | Expr::InList { negated: false, .. }
    ) && point_ids(e).is_some()
}
