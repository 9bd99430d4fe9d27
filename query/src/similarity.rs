//! Similarity queries: resolving what a similarity compares against, and
//! ranking with the vector index.
//!
//! A plan whose order is `ORDER BY <similarity> DESC LIMIT k` (or
//! `l2_distance … ASC`) ranks on the index: the vector's IVF index when it
//! has one (unless the query says `WITH (exact = true)`), an exact parallel
//! scan of the vector definition's table otherwise. The index is read through the same [`View`] as
//! the rows, which pins both at one moment: every user the ranking picks is
//! there when its row is read, and the score its row prints is the score
//! that ranked it. The `WHERE` predicate filters before ranking, so
//! the k results are the k best matching users, never fewer because of the
//! filter. A predicate that reads only ids and attributes runs on the index's
//! rows; any other is evaluated by a scan first, and ranking keeps its matches.

use std::collections::HashSet;
use std::sync::Arc;

use profiledb_storage::catalog::{Catalog, VectorRule};
use profiledb_storage::row::current_vector;
use profiledb_storage::{AttrType, Metric, NearestFilter, RowNeeds, UserRange, Value};

use crate::ast::BinaryOp;

use crate::bind::{BExpr, Target};
use crate::error::{At, Error, Result};
use crate::eval::{Ctx, eval, truth};
use crate::limits::Limits;
use crate::plan::{SelectPlan, Shape};
use crate::source::View;

/// Context for resolving targets.
struct Resolver<'a> {
    view: &'a dyn View,
    needs: &'a RowNeeds,
    bucket_ms: &'a [i64],
    as_of: i64,
    limits: &'a Limits,
}

impl Resolver<'_> {
    fn expr(&self, e: &mut BExpr) -> Result<()> {
        for c in e.children_mut() {
            self.expr(c)?;
        }
        if let BExpr::Similarity { target, .. } = e {
            let resolved = match target {
                Target::User { id, def, span } => self.user(id, *def, *span)?,
                Target::Centroid { def, members, .. } => self.centroid(*def, members)?,
                Target::Vector(_) | Target::Null => return Ok(()),
            };
            *target = resolved;
        }
        Ok(())
    }

    /// The vector of user `id`: an error when there is no such user, NULL
    /// scores when the user has no vector.
    fn user(&self, id: &str, def: u32, span: crate::error::Span) -> Result<Target> {
        let bindings = self.view.bindings();
        let d = bindings.catalog.vector_by_id(def);
        let needs = RowNeeds {
            sgd: d
                .filter(|d| matches!(d.rule, VectorRule::Sgd { .. }))
                .map(|d| vec![d.id])
                .unwrap_or_default(),
            // As of when the query reads everyone else.
            history_as_of: self.needs.history_as_of,
            items: Some(vec![def]),
            ..RowNeeds::default()
        };
        if let Some(row) = self.view.get(id, &needs)? {
            let v = d.and_then(|d| current_vector(d, &row));
            return Ok(v.map_or(Target::Null, Target::vector));
        }
        Err(Error::Unknown {
            kind: "user",
            name: id.to_owned(),
            suggestion: None,
            at: At::span(span),
        })
    }

    /// The mean vector of the users `members` accepts.
    fn centroid(&self, def: u32, members: &BExpr) -> Result<Target> {
        if self.needs.history_as_of.is_some() {
            return self.centroid_as_of(def, members);
        }
        let allowed = if members.reads_only_attributes() {
            None
        } else {
            Some(matching_ids(
                self.view,
                self.needs,
                self.bucket_ms,
                self.as_of,
                members,
                self.limits,
            )?)
        };
        let as_of = self.as_of;
        let Some(t) = self.view.vectors(def) else {
            return Ok(Target::Null);
        };
        let rows = (0..t.table.rows()).filter(|&r| match (&allowed, t.table.id(r)) {
            (Some(ids), Some(id)) => ids.contains(id),
            (None, Some(_)) => keeps(members, t.users.get(r).and_then(Option::as_deref), as_of),
            (_, None) => false,
        });
        Ok(t.table.mean(rows).map_or(Target::Null, Target::vector))
    }
}

impl Resolver<'_> {
    /// The centroid of the members' vectors as of a past time, from their
    /// rows as the history rebuilds them (the index holds today's vectors):
    /// the mean the index computes, over the same rows.
    fn centroid_as_of(&self, def: u32, members: &BExpr) -> Result<Target> {
        let bindings = Arc::clone(self.view.bindings());
        let Some(d) = bindings.catalog.vector_by_id(def) else {
            return Ok(Target::Null);
        };
        let mut needs = self.needs.clone();
        if matches!(d.rule, VectorRule::Sgd { .. }) && !needs.sgd.contains(&def) {
            needs.sgd.push(def);
        }
        let mut sum = vec![0f64; d.dim as usize];
        let mut n = 0usize;
        for_matching(
            self.view,
            &needs,
            self.bucket_ms,
            self.as_of,
            members,
            self.limits,
            &mut |row| {
                if let Some(v) = current_vector(d, row) {
                    for (s, x) in sum.iter_mut().zip(&v) {
                        *s += f64::from(*x);
                    }
                    n += 1;
                }
            },
        )?;
        Ok(if n == 0 {
            Target::Null
        } else {
            Target::vector(sum.into_iter().map(|s| (s / n as f64) as f32).collect())
        })
    }
}

/// Whether `pred` holds for an index row's user.
pub(crate) fn keeps(pred: &BExpr, user: Option<&profiledb_storage::UserRow>, as_of: i64) -> bool {
    let Some(user) = user else { return false };
    let ctx = Ctx::of_row(user, &[], as_of);
    truth(&eval(pred, &ctx)) == Some(true)
}

/// The ids of the users `pred` holds for, by a scan that stops at the deadline.
pub(crate) fn matching_ids(
    view: &dyn View,
    needs: &RowNeeds,
    bucket_ms: &[i64],
    as_of: i64,
    pred: &BExpr,
    limits: &Limits,
) -> Result<HashSet<String>> {
    let mut ids = HashSet::new();
    for_matching(view, needs, bucket_ms, as_of, pred, limits, &mut |row| {
        ids.insert(row.user.clone());
    })?;
    Ok(ids)
}

/// Calls `visit` with the row of every user `pred` holds for, by a scan that
/// stops at the deadline.
fn for_matching(
    view: &dyn View,
    needs: &RowNeeds,
    bucket_ms: &[i64],
    as_of: i64,
    pred: &BExpr,
    limits: &Limits,
    visit: &mut dyn FnMut(&profiledb_storage::UserRow),
) -> Result<()> {
    let mut seen = 0u64;
    let mut expired = false;
    view.scan(&UserRange::all(), needs, &mut |row| {
        seen += 1;
        if seen.is_multiple_of(1024) && limits.expired() {
            expired = true;
            return false;
        }
        let ctx = Ctx::of_row(row, bucket_ms, as_of);
        if truth(&eval(pred, &ctx)) == Some(true) {
            visit(row);
        }
        true
    })?;
    if expired {
        limits.check()?;
    }
    Ok(())
}

/// Replaces every user and centroid target in the plan by its vector.
///
/// # Errors
/// [`Error::Unknown`] for a user that does not exist; storage failures.
pub(crate) fn resolve(plan: &mut SelectPlan, view: &dyn View, limits: &Limits) -> Result<()> {
    let needs = plan.needs.clone();
    let bucket_ms = plan.bucket_ms.clone();
    let r = Resolver {
        view,
        needs: &needs,
        bucket_ms: &bucket_ms,
        as_of: plan.as_of,
        limits,
    };
    if let Some(f) = &mut plan.filter {
        r.expr(f)?;
    }
    match &mut plan.shape {
        Shape::Rows { exprs, order, .. } => {
            for e in exprs.iter_mut().chain(order.iter_mut().map(|(e, _)| e)) {
                r.expr(e)?;
            }
        }
        Shape::Groups {
            keys,
            aggs,
            outputs,
            having,
            order,
            ..
        } => {
            for e in keys
                .iter_mut()
                .chain(outputs.iter_mut())
                .chain(having.iter_mut())
                .chain(order.iter_mut().map(|(e, _)| e))
                .chain(aggs.iter_mut().filter_map(|a| a.arg.as_mut()))
            {
                r.expr(e)?;
            }
        }
    }
    Ok(())
}

/// An `attribute = constant` or `attribute IN (constants)` conjunct of the
/// filter's top-level `AND`s, as (attribute id, values), when the constants'
/// type is the attribute's own, so that the index's posting lists of those
/// values hold every row the conjunct admits.
fn posting_lookup(filter: &BExpr, catalog: &Catalog) -> Option<(u32, Vec<Value>)> {
    let same_type = |id: u32, v: &Value| {
        catalog
            .attributes
            .iter()
            .find(|a| a.id == id)
            .is_some_and(|a| {
                matches!(
                    (a.ty, v),
                    (AttrType::Int, Value::Int(_))
                        | (AttrType::String, Value::String(_))
                        | (AttrType::Bool, Value::Bool(_))
                )
            })
    };
    match filter {
        BExpr::And(a, b) => posting_lookup(a, catalog).or_else(|| posting_lookup(b, catalog)),
        BExpr::Cmp(BinaryOp::Eq, a, b) => match (a.as_ref(), b.as_ref()) {
            (BExpr::Attr(id), BExpr::Const(v)) | (BExpr::Const(v), BExpr::Attr(id))
                if same_type(*id, v) =>
            {
                Some((*id, vec![v.clone()]))
            }
            _ => None,
        },
        BExpr::InList {
            expr,
            list,
            negated: false,
        } => match expr.as_ref() {
            BExpr::Attr(id) => list
                .iter()
                .map(|e| match e {
                    BExpr::Const(v) if same_type(*id, v) => Some(v.clone()),
                    _ => None,
                })
                .collect::<Option<Vec<Value>>>()
                .map(|values| (*id, values)),
            _ => None,
        },
        _ => None,
    }
}

/// Runs an index top-k plan: ranks the vector index of `def` by `metric`
/// against the resolved target of the first ORDER BY key, keeping the users the
/// plan's `WHERE` accepts, then reads the k winners' rows for the select list.
pub(crate) fn run_top_k(
    plan: &SelectPlan,
    def: u32,
    metric: Metric,
    k: usize,
    search: &crate::plan::Search,
    view: &dyn View,
    limits: &Limits,
) -> Result<Vec<(Vec<Value>, Vec<Value>)>> {
    let Shape::Rows { exprs, order, .. } = &plan.shape else {
        return Err(Error::invalid("a vector top-k needs an ORDER BY", None));
    };
    let query = match order.first() {
        Some((
            BExpr::Similarity {
                target: Target::Vector(q),
                ..
            },
            _,
        )) => Arc::clone(q),
        _ => return Ok(Vec::new()),
    };
    let filter = plan.filter.as_ref();
    let allowed = match filter {
        Some(f) if !f.reads_only_attributes() => Some(matching_ids(
            view,
            &plan.needs,
            &plan.bucket_ms,
            plan.as_of,
            f,
            limits,
        )?),
        _ => None,
    };
    let lookup = filter.and_then(|f| posting_lookup(f, &view.bindings().catalog));
    // The users a scan found are the filter, whole; otherwise the filter
    // reads the index's attributes, asked of the rows that rank high enough.
    let keep = |_: &str, user: Option<&profiledb_storage::UserRow>| {
        filter.is_none_or(|f| keeps(f, user, plan.as_of))
    };
    let winners = view.nearest(
        def,
        &query.v,
        metric,
        k,
        &NearestFilter {
            attribute: lookup.as_ref().map(|(id, values)| (*id, values.as_slice())),
            keep: (allowed.is_none() && filter.is_some()).then_some(&keep as _),
            users: allowed.as_ref(),
            exact: search.exact,
            probes: search.probes,
        },
    );
    let mut out = Vec::with_capacity(winners.len());
    // In the order of the scores that ranked them.
    for (id, _score) in &winners {
        // The view pins the index with the data, so every winner is there.
        let row = view.get(id, &plan.needs)?.ok_or_else(|| {
            Error::Storage(profiledb_storage::Error::Engine(format!(
                "user '{id}' is in the vector index but not in the same view's data"
            )))
        })?;
        let ctx = Ctx::of_row(&row, &plan.bucket_ms, plan.as_of);
        // A part's rows carry their sort keys, to be merged with other
        // parts' as a scan's are; one database's come in ranking order.
        let keys = if plan.by_id {
            let mut keys: Vec<Value> = order
                .iter()
                .map(|(e, _)| eval(e, &ctx).into_owned())
                .collect();
            keys.push(Value::String(row.user.clone()));
            keys
        } else {
            Vec::new()
        };
        out.push((
            keys,
            exprs.iter().map(|e| eval(e, &ctx).into_owned()).collect(),
        ));
    }
    Ok(out)
}
