//! Point-in-time rows for training sets: chosen items of many (user, time)
//! pairs, each read as of its own time. The pairs are read in one pass
//! ordered by user, so that each user's history is read once for all its
//! pairs, with users in parallel; the whole answer reads one moment of the
//! database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rayon::prelude::*;

use crate::ast::{Expr, Literal, Loc, Statement};
use crate::error::{Error, Result};
use crate::eval::{Ctx, eval};
use crate::exec::check_int_columns;
use crate::limits::Limits;
use crate::output::Rows;
use crate::parser::parse_statement;
use crate::plan::{SelectPlan, Shape, plan_select};
use crate::similarity;
use crate::source::DataSource;
use profiledb_storage::Value;

/// Reads the items of `select` (a select list, as after `SELECT`) for each
/// (user, time) of `pairs` as of that time: one row per pair, in the pairs'
/// order, all NULL for a user that did not exist then. With the event
/// history on, each row is exactly what the writes up to its time give, as
/// `SELECT … WHERE id = user AS OF time` would read it.
///
/// # Errors
/// A select list that does not parse or bind, or that aggregates; a time
/// before the oldest the history answers; the limits' timeout; storage
/// failures.
pub fn rows_as_of(
    source: &dyn DataSource,
    select: &str,
    pairs: &[(String, i64)],
    limits: &Limits,
) -> Result<Rows> {
    if source.peers().is_some() {
        return Err(Error::invalid(
            "point-in-time exports are not yet run across a cluster's nodes; run them on each node",
            None,
        ));
    }
    let sql = format!("SELECT {select} FROM users");
    let located = |e: Error| e.locate(&sql);
    let Statement::Select(select) = parse_statement(&sql).map_err(|e| located(e.into()))? else {
        return Err(Error::invalid("expected a select list", None));
    };
    if select.selection.is_some()
        || select.distinct
        || !select.group_by.is_empty()
        || select.having.is_some()
        || !select.order_by.is_empty()
        || select.limit.is_some()
        || select.offset.is_some()
        || select.as_of.is_some()
    {
        return Err(Error::invalid(
            "a point-in-time read takes a select list alone: each pair names its user and time",
            None,
        ));
    }
    let now = source.now();
    let mut bindings = source.bindings();
    for _ in 0..16 {
        let probe = plan_select(&select, &bindings.catalog, now).map_err(located)?;
        if !matches!(probe.shape, Shape::Rows { .. }) {
            return Err(Error::invalid(
                "a point-in-time read reads items of one user: aggregates are not allowed",
                None,
            ));
        }
        let view = source.view(probe.pins())?;
        if !Arc::ptr_eq(view.bindings(), &bindings) {
            bindings = Arc::clone(view.bindings());
            continue;
        }
        let view = view.as_ref();
        let catalog = &bindings.catalog;
        // Each user's pairs, by time.
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by(|&a, &b| pairs[a].cmp(&pairs[b]));
        let groups: Vec<&[usize]> = order.chunk_by(|a, b| pairs[*a].0 == pairs[*b].0).collect();
        let plans = Plans {
            by_time: Mutex::new(HashMap::new()),
            plan: &|t| {
                let mut at = select.clone();
                at.as_of = Some(Expr::Literal(Literal::Int(t), Loc::default()));
                let mut plan = plan_select(&at, catalog, now).map_err(located)?;
                similarity::resolve(&mut plan, view, limits)?;
                Ok(plan)
            },
        };
        let read = groups
            .par_iter()
            .map(|group| -> Result<Vec<(usize, Vec<Value>)>> {
                limits.check()?;
                let plans = group
                    .iter()
                    .map(|&i| plans.get(pairs[i].1))
                    .collect::<Result<Vec<Arc<SelectPlan>>>>()?;
                let asks: Vec<(i64, &profiledb_storage::RowNeeds)> =
                    plans.iter().map(|p| (p.as_of, &p.needs)).collect();
                let mut out = Vec::with_capacity(group.len());
                view.rows_as_of(&pairs[group[0]].0, &asks, &mut |k, row| {
                    out.push((group[k], items(&plans[k], row)));
                    Ok(())
                })?;
                Ok(out)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut rows = vec![Vec::new(); pairs.len()];
        for (i, values) in read.into_iter().flatten() {
            rows[i] = values;
        }
        check_int_columns(&probe.columns, &rows)?;
        return Ok(Rows {
            columns: probe.columns,
            rows,
        });
    }
    Err(Error::invalid(
        "the schema kept changing while the read was planned; run it again",
        None,
    ))
}

/// The plans of one select list as of each time, made once per time: the
/// pairs of a training set most often share a few times (a label date).
struct Plans<'p> {
    /// Plans made so far, up to [`Plans::KEPT`].
    by_time: Mutex<HashMap<i64, Arc<SelectPlan>>>,
    plan: &'p (dyn Fn(i64) -> Result<SelectPlan> + Sync),
}

impl Plans<'_> {
    /// The most plans kept: beyond, a time's plan is made for each pair.
    const KEPT: usize = 4096;

    fn get(&self, t: i64) -> Result<Arc<SelectPlan>> {
        if let Some(p) = self.kept().get(&t) {
            return Ok(Arc::clone(p));
        }
        let plan = Arc::new((self.plan)(t)?);
        let mut kept = self.kept();
        if kept.len() < Self::KEPT {
            kept.insert(t, Arc::clone(&plan));
        }
        Ok(plan)
    }

    fn kept(&self) -> MutexGuard<'_, HashMap<i64, Arc<SelectPlan>>> {
        // A map is whole between two statements: one a panic left is fine.
        self.by_time.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The select list of `plan` over `row`; NULLs without one.
fn items(plan: &SelectPlan, row: Option<&profiledb_storage::UserRow>) -> Vec<Value> {
    let Shape::Rows { exprs, .. } = &plan.shape else {
        return Vec::new();
    };
    let Some(row) = row else {
        return vec![Value::Null; exprs.len()];
    };
    let ctx = Ctx::of_row(row, &plan.bucket_ms, plan.as_of);
    exprs.iter().map(|e| eval(e, &ctx).into_owned()).collect()
}
