//! Running a planned `SELECT`: point reads, or a scan split into partitions that
//! run in parallel on rayon's pool. Each partition filters and keeps its own
//! top-k or partial aggregates; the partials are merged at the end, so the answer
//! equals a row-by-row evaluation in id order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use profiledb_storage::{UserRange, UserRow, Value};
use rayon::prelude::*;

use crate::bind::{AggFunc, AggSpec};
use crate::error::{Error, Result};
use crate::eval::{Ctx, eval, total_cmp, truth};
use crate::limits::Limits;
use crate::output::{Column, PartAt, RowSink, Rows, Type};
use crate::plan::{Access, Limit, SelectPlan, Shape};
use crate::similarity;
use crate::source::View;

/// How many partitions a scan is split into: a few per thread, so that uneven
/// ranges still keep every thread busy.
pub(crate) fn scan_partitions() -> usize {
    rayon::current_num_threads() * 2
}

/// Rows a plain scan hands its [`RowSink`] at a time: few enough that
/// their memory, freed by the sink, is reused by the next part's rather
/// than fresh (a million rows of five columns held at once are about 300
/// MB, which the process must fault in).
const SINK_ROWS: usize = 16_384;

/// One partition's result.
#[derive(Debug)]
pub(crate) enum Partial {
    Rows(Vec<(Vec<Value>, Vec<Value>)>),
    Groups(BTreeMap<GroupKey, Vec<AggState>>),
}

/// A grouping key, ordered by [`total_cmp`].
#[derive(Debug, Clone)]
pub(crate) struct GroupKey(pub(crate) Vec<Value>);

impl PartialEq for GroupKey {
    fn eq(&self, other: &GroupKey) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for GroupKey {}
impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &GroupKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for GroupKey {
    fn cmp(&self, other: &GroupKey) -> Ordering {
        self.0
            .iter()
            .zip(&other.0)
            .map(|(a, b)| total_cmp(a, b))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

/// Whether `v` should replace `current` as the running `min` (or `max`).
fn beats(func: AggFunc, v: &Value, current: Option<&Value>) -> bool {
    match current {
        None => true,
        Some(c) if func == AggFunc::Min => total_cmp(v, c).is_lt(),
        Some(c) => total_cmp(v, c).is_gt(),
    }
}

/// An aggregate's running state.
#[derive(Debug, Clone)]
pub(crate) enum AggState {
    Count(i64),
    Sum {
        int: Option<i64>,
        float: f64,
        any: bool,
    },
    Avg {
        sum: f64,
        n: u64,
    },
    Extreme(Option<Value>),
    /// The distinct values seen.
    Distinct(std::collections::BTreeSet<GroupKey>),
    /// Count, mean and sum of squared deviations (Welford), merged as Chan
    /// et al. merge them.
    Moments {
        n: u64,
        mean: f64,
        m2: f64,
    },
    /// Every value, for an exact percentile.
    Values(Vec<f64>),
    /// `sum` or `avg` of vectors: element-wise sums (empty until the first
    /// vector) and how many vectors were added.
    Vectors {
        sum: Vec<f64>,
        n: u64,
    },
}

/// Adds `v` into the element-wise `sum`, which takes the dimension of the
/// first vector added (one vector expression has one dimension).
fn add_vector(sum: &mut Vec<f64>, v: impl ExactSizeIterator<Item = f64>) {
    if sum.is_empty() {
        sum.resize(v.len(), 0.0);
    }
    for (s, x) in sum.iter_mut().zip(v) {
        *s += x;
    }
}

impl AggState {
    pub(crate) fn new(spec: &AggSpec) -> AggState {
        match spec.func {
            AggFunc::CountStar | AggFunc::Count => AggState::Count(0),
            AggFunc::Sum | AggFunc::Avg if spec.ty == Type::Vector => AggState::Vectors {
                sum: Vec::new(),
                n: 0,
            },
            AggFunc::Sum => AggState::Sum {
                int: Some(0),
                float: 0.0,
                any: false,
            },
            AggFunc::Avg => AggState::Avg { sum: 0.0, n: 0 },
            AggFunc::Min | AggFunc::Max => AggState::Extreme(None),
            AggFunc::CountDistinct => AggState::Distinct(std::collections::BTreeSet::new()),
            AggFunc::Stddev | AggFunc::StddevPop | AggFunc::Variance | AggFunc::VarPop => {
                AggState::Moments {
                    n: 0,
                    mean: 0.0,
                    m2: 0.0,
                }
            }
            AggFunc::Percentile | AggFunc::Median => AggState::Values(Vec::new()),
        }
    }

    fn add(&mut self, spec: &AggSpec, ctx: &Ctx<'_>) {
        let v = spec.arg.as_ref().map(|a| eval(a, ctx));
        let v = v.as_deref();
        match (self, v) {
            (AggState::Count(n), None) => *n += 1,
            (_, Some(Value::Null)) => {}
            (AggState::Count(n), Some(_)) => *n += 1,
            (AggState::Sum { int, float, any }, Some(v)) => {
                *any = true;
                if let Some(x) = v.as_f64() {
                    *float += x;
                }
                *int = match (*int, v) {
                    (Some(acc), Value::Int(i)) => acc.checked_add(*i),
                    _ => None,
                };
            }
            (AggState::Avg { sum, n }, Some(v)) => {
                if let Some(x) = v.as_f64() {
                    *sum += x;
                    *n += 1;
                }
            }
            (AggState::Extreme(cur), Some(v)) if beats(spec.func, v, cur.as_ref()) => {
                *cur = Some(v.clone());
            }
            (AggState::Distinct(set), Some(v)) => {
                set.insert(GroupKey(vec![v.clone()]));
            }
            (AggState::Moments { n, mean, m2 }, Some(v)) => {
                if let Some(x) = v.as_f64() {
                    *n += 1;
                    let d = x - *mean;
                    *mean += d / *n as f64;
                    *m2 += d * (x - *mean);
                }
            }
            (AggState::Values(values), Some(v)) => values.extend(v.as_f64()),
            (AggState::Vectors { sum, n }, Some(Value::Vector(v))) => {
                add_vector(sum, v.iter().map(|x| f64::from(*x)));
                *n += 1;
            }
            _ => {}
        }
    }

    pub(crate) fn merge(&mut self, spec: &AggSpec, other: AggState) {
        match (self, other) {
            (AggState::Count(a), AggState::Count(b)) => *a += b,
            (
                AggState::Sum { int, float, any },
                AggState::Sum {
                    int: i2,
                    float: f2,
                    any: a2,
                },
            ) => {
                *int = int.zip(i2).and_then(|(a, b)| a.checked_add(b));
                *float += f2;
                *any |= a2;
            }
            (AggState::Avg { sum, n }, AggState::Avg { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (AggState::Extreme(cur), AggState::Extreme(Some(v)))
                if beats(spec.func, &v, cur.as_ref()) =>
            {
                *cur = Some(v);
            }
            (AggState::Distinct(a), AggState::Distinct(b)) => a.extend(b),
            (
                AggState::Moments { n, mean, m2 },
                AggState::Moments {
                    n: n2,
                    mean: mean2,
                    m2: m22,
                },
            ) if n2 > 0 => {
                let total = *n + n2;
                let d = mean2 - *mean;
                *m2 += m22 + d * d * (*n as f64) * (n2 as f64) / total as f64;
                *mean += d * n2 as f64 / total as f64;
                *n = total;
            }
            (AggState::Values(a), AggState::Values(b)) => a.extend(b),
            (AggState::Vectors { sum, n }, AggState::Vectors { sum: s2, n: n2 }) if n2 > 0 => {
                add_vector(sum, s2.into_iter());
                *n += n2;
            }
            _ => {}
        }
    }

    fn finish(self, spec: &AggSpec) -> Value {
        match self {
            AggState::Count(n) => Value::Int(n),
            AggState::Sum { any: false, .. } => Value::Null,
            AggState::Sum { int, float, .. } => match (spec.ty, int) {
                (Type::Int, Some(i)) => Value::Int(i),
                _ if float.is_finite() => Value::Float(float),
                _ => Value::Null,
            },
            AggState::Avg { n: 0, .. } => Value::Null,
            AggState::Avg { sum, n } => {
                let avg = sum / n as f64;
                if avg.is_finite() {
                    Value::Float(avg)
                } else {
                    Value::Null
                }
            }
            AggState::Extreme(v) => v.unwrap_or(Value::Null),
            AggState::Distinct(set) => Value::Int(i64::try_from(set.len()).unwrap_or(i64::MAX)),
            AggState::Moments { n, m2, .. } => {
                let pop = matches!(spec.func, AggFunc::StddevPop | AggFunc::VarPop);
                let d = if pop { n } else { n.saturating_sub(1) };
                if d == 0 {
                    return Value::Null;
                }
                let var = (m2 / d as f64).max(0.0);
                Value::Float(match spec.func {
                    AggFunc::Stddev | AggFunc::StddevPop => var.sqrt(),
                    _ => var,
                })
            }
            AggState::Vectors { n: 0, .. } => Value::Null,
            AggState::Vectors { sum, n } => {
                let avg = spec.func == AggFunc::Avg;
                let v: Vec<f32> = sum
                    .into_iter()
                    .map(|s| (if avg { s / n as f64 } else { s }) as f32)
                    .collect();
                if v.iter().all(|x| x.is_finite()) {
                    Value::Vector(v)
                } else {
                    Value::Null
                }
            }
            AggState::Values(mut values) => {
                if values.is_empty() {
                    return Value::Null;
                }
                values.sort_by(f64::total_cmp);
                // percentile_cont: interpolated between the two nearest ranks.
                let pos = spec.fraction * (values.len() - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                let x = values[lo] + (values[hi] - values[lo]) * (pos - lo as f64);
                Value::Float(x)
            }
        }
    }
}

/// Sorts `rows` by `keys` under `order` (desc flags); stable, so rows with equal
/// keys keep their id order.
fn sort_keyed<T>(rows: &mut [(Vec<Value>, T)], desc: &[bool]) {
    rows.sort_by(|(a, _), (b, _)| {
        for ((x, y), d) in a.iter().zip(b).zip(desc) {
            // NULLs sort last in both directions.
            let o = match (x.is_null(), y.is_null()) {
                (false, false) if *d => total_cmp(y, x),
                _ => total_cmp(x, y),
            };
            if o.is_ne() {
                return o;
            }
        }
        Ordering::Equal
    });
}

/// Runs a planned `SELECT` on `view`. Its similarity targets must be
/// resolved (see `crate::similarity::resolve`). A plain scan's rows go to
/// `sink` when given (see [`RowSink`]).
pub(crate) fn run_select(
    plan: &SelectPlan,
    view: &dyn View,
    limits: &Limits,
    sink: Option<&dyn RowSink>,
) -> Result<Rows> {
    let (partials, sent) = partials(plan, view, limits, sink)?;
    finish_rows_sent(plan, partials, limits, sent)
}

/// The partial results of `plan` over `view`, one per scanned range.
pub(crate) fn local_partials(
    plan: &SelectPlan,
    view: &dyn View,
    limits: &Limits,
) -> Result<Vec<Partial>> {
    partials(plan, view, limits, None).map(|(p, _)| p)
}

/// [`local_partials`], a plain scan's rows to `sink` when given; with how
/// many rows went there.
fn partials(
    plan: &SelectPlan,
    view: &dyn View,
    limits: &Limits,
    sink: Option<&dyn RowSink>,
) -> Result<(Vec<Partial>, usize)> {
    let cancelled = AtomicBool::new(false);
    // Set by a partition that alone has more rows than the limit allows: the
    // answer is then the row-limit error, and every partition stops.
    let enough = AtomicBool::new(false);
    let mut sent = 0;
    let partials: Vec<Partial> = match &plan.access {
        Access::VectorTopK {
            def,
            metric,
            k,
            search,
            ..
        } => {
            let rows = similarity::run_top_k(plan, *def, *metric, *k, search, view, limits)?;
            vec![Partial::Rows(rows)]
        }
        Access::One => {
            // No users: the constants' one row.
            let mut part = Partition::new();
            part.visit(plan, &UserRow::default());
            vec![part.finish()]
        }
        Access::Points(ids) => {
            let mut part = Partition::new();
            for id in ids {
                if let Some(row) = view.get(id, &plan.needs)? {
                    part.visit(plan, &row);
                }
            }
            vec![part.finish()]
        }
        Access::Scan => {
            let ranges = view.partitions(scan_partitions())?;
            let sink = sink.filter(|_| plan.is_plain_scan());
            let scan = Scan {
                plan,
                view,
                limits,
                cancelled: &cancelled,
                enough: &enough,
                sink,
            };
            let parts = ranges
                .par_iter()
                .enumerate()
                .map(|(at, range)| scan.partition(at, range))
                .collect::<Result<Vec<_>>>()?;
            sent = parts.iter().map(|(_, n)| n).sum();
            parts.into_iter().map(|(p, _)| p).collect()
        }
    };
    if cancelled.load(AtomicOrdering::Relaxed) && !enough.load(AtomicOrdering::Relaxed) {
        limits.check()?;
    }
    Ok((partials, sent))
}

/// Merges partial results (of any number of ranges and machines) into the
/// answer of `plan`.
pub(crate) fn finish_select(
    plan: &SelectPlan,
    partials: Vec<Partial>,
    limits: &Limits,
) -> Result<Rows> {
    finish_rows_sent(plan, partials, limits, 0)
}

/// [`finish_select`], with `sent` rows of the answer handed to a
/// [`RowSink`] already, which count towards the row cap.
fn finish_rows_sent(
    plan: &SelectPlan,
    partials: Vec<Partial>,
    limits: &Limits,
    sent: usize,
) -> Result<Rows> {
    let rows = merge(plan, partials);
    limits.check_rows(rows.len().saturating_add(sent))?;
    check_int_columns(&plan.columns, &rows)?;
    Ok(Rows {
        columns: plan.columns.clone(),
        rows,
    })
}

/// Integer arithmetic that overflows goes on in floating point, so that
/// comparisons stay right; a float in a column typed `int` is such an overflow,
/// refused rather than answered under the wrong type.
pub(crate) fn check_int_columns(columns: &[Column], rows: &[Vec<Value>]) -> Result<()> {
    for (i, col) in columns.iter().enumerate() {
        if col.ty == Type::Int
            && rows
                .iter()
                .any(|r| matches!(r.get(i), Some(Value::Float(_))))
        {
            return Err(Error::Overflow {
                column: col.name.clone(),
            });
        }
    }
    Ok(())
}

/// One scan of a plan's ranges: what each range's partition reads with.
struct Scan<'a> {
    plan: &'a SelectPlan,
    view: &'a dyn View,
    limits: &'a Limits,
    /// Set when the deadline passed: every partition stops.
    cancelled: &'a AtomicBool,
    /// Set when a partition alone has more rows than the cap allows.
    enough: &'a AtomicBool,
    /// Where a plain scan's rows go, when anywhere but the answer.
    sink: Option<&'a dyn RowSink>,
}

impl Scan<'_> {
    /// Scans `range`, the `at`-th of the scan's; with how many of its rows
    /// went to the sink.
    fn partition(&self, at: usize, range: &UserRange) -> Result<(Partial, usize)> {
        let (plan, limits) = (self.plan, self.limits);
        let mut part = Partition::new();
        let mut seen = 0u64;
        let mut failed = None;
        self.view.scan(range, &plan.needs, &mut |row| {
            if self.enough.load(AtomicOrdering::Relaxed) {
                return false;
            }
            seen += 1;
            if seen.is_multiple_of(1024) {
                if self.cancelled.load(AtomicOrdering::Relaxed) {
                    return false;
                }
                if limits.expired() {
                    self.cancelled.store(true, AtomicOrdering::Relaxed);
                    return false;
                }
            }
            part.visit(plan, row);
            if let Some(max) = limits.max_rows {
                // Enough rows to fail the limit; no need to read on.
                if part.sent + part.len() > max && plan.ordering_is_empty() {
                    self.enough.store(true, AtomicOrdering::Relaxed);
                    return false;
                }
            }
            if let Some(sink) = self.sink
                && part.len() >= SINK_ROWS
                && let Err(e) = part.send(plan, sink, at)
            {
                failed = Some(e);
                return false;
            }
            !part.done(plan)
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        match self.sink {
            Some(sink) => {
                if part.len() > 0 {
                    part.send(plan, sink, at)?;
                }
                let sent = part.sent;
                Ok((part.finish(), sent))
            }
            None => Ok((part.finish(), 0)),
        }
    }
}

impl SelectPlan {
    fn ordering_is_empty(&self) -> bool {
        matches!(&self.shape, Shape::Rows { order, .. } if order.is_empty())
    }

    /// Whether the answer is every matching row of a scan, in the scan's
    /// order: its partitions' rows, one after another, with nothing to sort,
    /// cut or fold (the plans whose rows a [`RowSink`] takes).
    fn is_plain_scan(&self) -> bool {
        matches!(self.access, Access::Scan)
            && !self.by_id
            && matches!(&self.shape, Shape::Rows { order, limit, .. }
                if order.is_empty()
                    && limit.limit.is_none()
                    && !limit.distinct
                    && limit.offset == 0)
    }

    /// The direction of each sort key a row carries: the `ORDER BY` keys,
    /// then the user id (ascending) when [`SelectPlan::by_id`].
    pub(crate) fn sort_desc(&self) -> Vec<bool> {
        let order = match &self.shape {
            Shape::Rows { order, .. } | Shape::Groups { order, .. } => order,
        };
        let mut desc: Vec<bool> = order.iter().map(|(_, d)| *d).collect();
        if self.by_id && matches!(self.shape, Shape::Rows { .. }) {
            desc.push(false);
        }
        desc
    }
}

/// Folds partials into one, as small as the plan allows: rows cut to the
/// plan's top-k when it orders and limits, groups merged.
pub(crate) fn combine(plan: &SelectPlan, partials: Vec<Partial>) -> Partial {
    match &plan.shape {
        Shape::Rows { order, limit, .. } => {
            let mut rows = keyed_rows(partials);
            if let Some(k) = limit.keep() {
                let k = usize::try_from(k).unwrap_or(usize::MAX);
                if !order.is_empty() || plan.by_id {
                    sort_keyed(&mut rows, &plan.sort_desc());
                }
                rows.truncate(k);
            }
            Partial::Rows(rows)
        }
        Shape::Groups { aggs, .. } => Partial::Groups(merge_groups(aggs, partials)),
    }
}

/// The keyed rows of `partials`, in order, in one allocation of their
/// total length (a million rows grown by doubling copied most of them
/// again, into memory the process had to fault in).
fn keyed_rows(partials: Vec<Partial>) -> Vec<(Vec<Value>, Vec<Value>)> {
    let len = partials
        .iter()
        .map(|p| match p {
            Partial::Rows(r) => r.len(),
            Partial::Groups(_) => 0,
        })
        .sum();
    let mut rows = Vec::with_capacity(len);
    for p in partials {
        if let Partial::Rows(r) = p {
            rows.extend(r);
        }
    }
    rows
}

fn merge_groups(aggs: &[AggSpec], partials: Vec<Partial>) -> BTreeMap<GroupKey, Vec<AggState>> {
    let mut groups: BTreeMap<GroupKey, Vec<AggState>> = BTreeMap::new();
    for p in partials {
        let Partial::Groups(g) = p else { continue };
        for (k, states) in g {
            match groups.get_mut(&k) {
                Some(cur) => {
                    for ((c, s), spec) in cur.iter_mut().zip(states).zip(aggs) {
                        c.merge(spec, s);
                    }
                }
                None => {
                    groups.insert(k, states);
                }
            }
        }
    }
    groups
}

/// A partition's running state.
struct Partition {
    rows: Vec<(Vec<Value>, Vec<Value>)>,
    groups: BTreeMap<GroupKey, Vec<AggState>>,
    /// Rows handed to a [`RowSink`] so far, and in how many parts.
    sent: usize,
    parts: usize,
}

impl Partition {
    fn new() -> Partition {
        Partition {
            rows: Vec::new(),
            groups: BTreeMap::new(),
            sent: 0,
            parts: 0,
        }
    }

    /// Hands the rows held to `sink`, as the next part of range `range`,
    /// keeping their buffer for the next part's. Only for a plain scan,
    /// whose rows carry no sort keys.
    fn send(&mut self, plan: &SelectPlan, sink: &dyn RowSink, range: usize) -> Result<()> {
        let rows: Vec<Vec<Value>> = self.rows.drain(..).map(|(_, r)| r).collect();
        check_int_columns(&plan.columns, &rows)?;
        let at = PartAt {
            range,
            part: self.parts,
        };
        self.parts += 1;
        self.sent += rows.len();
        sink.take(at, &plan.columns, rows)
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no later row can change this partition's result.
    fn done(&self, plan: &SelectPlan) -> bool {
        match &plan.shape {
            Shape::Rows { order, limit, .. } if order.is_empty() => {
                limit.keep().is_some_and(|k| self.rows.len() as u64 >= k)
            }
            _ => false,
        }
    }

    fn visit(&mut self, plan: &SelectPlan, row: &UserRow) {
        let ctx = Ctx::of_row(row, &plan.bucket_ms, plan.as_of);
        if let Some(f) = &plan.filter
            && truth(&eval(f, &ctx)) != Some(true)
        {
            return;
        }
        match &plan.shape {
            Shape::Rows {
                exprs,
                order,
                limit,
            } => {
                let out: Vec<Value> = exprs.iter().map(|e| eval(e, &ctx).into_owned()).collect();
                let mut keys: Vec<Value> = order
                    .iter()
                    .map(|(e, _)| eval(e, &ctx).into_owned())
                    .collect();
                if plan.by_id {
                    keys.push(Value::String(row.user.clone()));
                }
                self.rows.push((keys, out));
                // Keep a top-k bounded: sort and cut once it holds twice k.
                if let (false, Some(k)) = (order.is_empty(), limit.keep()) {
                    let k = usize::try_from(k).unwrap_or(usize::MAX);
                    if self.rows.len() >= k.saturating_mul(2).max(1024) {
                        sort_keyed(&mut self.rows, &plan.sort_desc());
                        self.rows.truncate(k);
                    }
                }
            }
            Shape::Groups { keys, aggs, .. } => {
                let key = GroupKey(keys.iter().map(|k| eval(k, &ctx).into_owned()).collect());
                let states = self
                    .groups
                    .entry(key)
                    .or_insert_with(|| aggs.iter().map(AggState::new).collect());
                for (s, spec) in states.iter_mut().zip(aggs) {
                    s.add(spec, &ctx);
                }
            }
        }
    }

    fn finish(self) -> Partial {
        if self.groups.is_empty() {
            Partial::Rows(self.rows)
        } else {
            Partial::Groups(self.groups)
        }
    }
}

/// Sorts keyed rows by `order` (stably, so ties keep id order), drops the
/// keys, keeps the first of equal rows for a `DISTINCT`, then skips the
/// offset and applies the limit.
fn finish_rows(
    mut rows: Vec<(Vec<Value>, Vec<Value>)>,
    desc: &[bool],
    limit: &Limit,
) -> Vec<Vec<Value>> {
    if !desc.is_empty() {
        sort_keyed(&mut rows, desc);
    }
    let mut out: Vec<Vec<Value>> = rows.into_iter().map(|(_, r)| r).collect();
    if limit.distinct {
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|r| seen.insert(GroupKey(r.clone())));
    }
    let skip = usize::try_from(limit.offset).unwrap_or(usize::MAX);
    let take = limit
        .limit
        .map_or(usize::MAX, |k| usize::try_from(k).unwrap_or(usize::MAX));
    out.into_iter().skip(skip).take(take).collect()
}

fn merge(plan: &SelectPlan, partials: Vec<Partial>) -> Vec<Vec<Value>> {
    match &plan.shape {
        Shape::Rows { limit, .. } => finish_rows(keyed_rows(partials), &plan.sort_desc(), limit),
        Shape::Groups {
            keys,
            aggs,
            outputs,
            having,
            order,
            limit,
        } => {
            let mut groups = merge_groups(aggs, partials);
            // Aggregates over no rows at all still give one row, without GROUP BY.
            if groups.is_empty() && keys.is_empty() {
                groups.insert(
                    GroupKey(Vec::new()),
                    aggs.iter().map(AggState::new).collect(),
                );
            }
            let rows: Vec<(Vec<Value>, Vec<Value>)> = groups
                .into_iter()
                .filter_map(|(k, states)| {
                    let agg_values: Vec<Value> = states
                        .into_iter()
                        .zip(aggs)
                        .map(|(s, spec)| s.finish(spec))
                        .collect();
                    let ctx = Ctx {
                        row: None,
                        bucket_ms: &[],
                        as_of: plan.as_of,
                        keys: &k.0,
                        aggs: &agg_values,
                    };
                    if let Some(h) = having
                        && truth(&eval(h, &ctx)) != Some(true)
                    {
                        return None;
                    }
                    let out = outputs.iter().map(|e| eval(e, &ctx).into_owned()).collect();
                    let sort = order
                        .iter()
                        .map(|(e, _)| eval(e, &ctx).into_owned())
                        .collect();
                    Some((sort, out))
                })
                .collect();
            finish_rows(rows, &plan.sort_desc(), limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bind::BExpr;

    fn spec(func: AggFunc, fraction: f64) -> AggSpec {
        AggSpec {
            func,
            arg: Some(BExpr::Key(0)),
            ty: Type::Float,
            fraction,
        }
    }

    /// Spread and percentiles folded over partitions in any split equal a
    /// two-pass computation over all the values.
    #[test]
    fn spread_and_percentiles_merge_to_the_two_pass_values() {
        let mut seed = 11u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for round in 0..200 {
            let n = 1 + (next() * 50.0) as usize;
            let xs: Vec<f64> = (0..n).map(|_| next() * 1000.0 - 300.0).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            let p = next();
            let pos = p * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            let want_p = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64);
            let cases = [
                (spec(AggFunc::VarPop, 0.0), Some(ss / n as f64)),
                (
                    spec(AggFunc::Variance, 0.0),
                    (n > 1).then(|| ss / (n - 1) as f64),
                ),
                (
                    spec(AggFunc::Stddev, 0.0),
                    (n > 1).then(|| (ss / (n - 1) as f64).sqrt()),
                ),
                (spec(AggFunc::Percentile, p), Some(want_p)),
            ];
            for (spec, want) in cases {
                // Split into up to four partitions at random points.
                let mut parts: Vec<AggState> = Vec::new();
                let mut state = AggState::new(&spec);
                for x in &xs {
                    if next() < 0.2 {
                        parts.push(std::mem::replace(&mut state, AggState::new(&spec)));
                    }
                    let keys = [Value::Float(*x)];
                    let ctx = Ctx {
                        row: None,
                        bucket_ms: &[],
                        as_of: 0,
                        keys: &keys,
                        aggs: &[],
                    };
                    state.add(&spec, &ctx);
                }
                for part in parts {
                    state.merge(&spec, part);
                }
                match (state.finish(&spec), want) {
                    (Value::Float(got), Some(w)) => assert!(
                        (got - w).abs() <= 1e-9 * w.abs().max(1.0),
                        "round {round} {:?}: {got} vs {w}",
                        spec.func
                    ),
                    (Value::Null, None) => {}
                    (got, want) => panic!("round {round} {:?}: {got:?} vs {want:?}", spec.func),
                }
            }
        }
    }
}
