//! Evaluation of bound expressions against one user's row, or one group.
//!
//! Evaluation never fails: SQL's NULL stands for every value that does not exist
//! (a missing attribute, an empty window, a division by zero), and comparisons
//! with NULL are unknown, so `WHERE` follows three-valued logic.

use std::borrow::Cow;
use std::cmp::Ordering;

use profiledb_storage::keys::bucket_start;
use profiledb_storage::merge::cell::Cell;
use profiledb_storage::merge::window::sample_stddev;
use profiledb_storage::profile::evaluate_feature;
use profiledb_storage::row::current_vector;
use profiledb_storage::vector::kernels;
use profiledb_storage::{Bucket, Metric, UserRow, Value};

use crate::ast::BinaryOp;
use crate::bind::{BExpr, MathFunc, Target, WindowFunc};

static NULL: Value = Value::Null;

/// What an expression is evaluated against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    /// The user's row, in a row context.
    pub row: Option<&'a UserRow>,
    /// The window buckets' bucket widths, parallel to the row's windows.
    pub bucket_ms: &'a [i64],
    /// Evaluation time.
    pub as_of: i64,
    /// The group's keys, in a group context.
    pub keys: &'a [Value],
    /// The group's aggregates, in a group context.
    pub aggs: &'a [Value],
}

impl<'a> Ctx<'a> {
    /// A row context: `row`'s values, with its windows' bucket widths, at
    /// `as_of`.
    pub fn of_row(row: &'a UserRow, bucket_ms: &'a [i64], as_of: i64) -> Ctx<'a> {
        Ctx {
            row: Some(row),
            bucket_ms,
            as_of,
            keys: &[],
            aggs: &[],
        }
    }
}

#[cfg(test)]
impl Ctx<'_> {
    /// A context with no row: constants only.
    pub fn constant(as_of: i64) -> Ctx<'static> {
        Ctx {
            row: None,
            bucket_ms: &[],
            as_of,
            keys: &[],
            aggs: &[],
        }
    }
}

/// The truth of a value: `None` is unknown.
pub(crate) fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

fn bool_value(b: Option<bool>) -> Value {
    b.map_or(Value::Null, Value::Bool)
}

/// Compares two values of comparable types; `None` when either is NULL or the
/// types do not compare.
pub(crate) fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    }
}

/// A total order for sorting and grouping: NULL after everything, then by
/// [`compare`], then by type.
pub(crate) fn total_cmp(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    if let Some(o) = compare(a, b) {
        return o;
    }
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Int(_) | Value::Float(_) => 2,
        Value::String(_) => 3,
        Value::Tags(_) => 4,
        Value::Vector(_) => 5,
        Value::Map(_) => 6,
    };
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Tags(x), Value::Tags(y)) => x.cmp(y),
        (Value::Map(x), Value::Map(y)) => {
            let n = x.len().min(y.len());
            (0..n)
                .map(|i| x[i].0.cmp(&y[i].0).then(x[i].1.total_cmp(&y[i].1)))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| x.len().cmp(&y.len()))
        }
        (Value::Vector(x), Value::Vector(y)) => {
            let n = x.len().min(y.len());
            (0..n)
                .map(|i| x[i].total_cmp(&y[i]))
                .find(|o| o.is_ne())
                .unwrap_or_else(|| x.len().cmp(&y.len()))
        }
        _ => Ordering::Equal,
    })
}

fn arith(op: BinaryOp, a: &Value, b: &Value) -> Value {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let r = match op {
            BinaryOp::Add => x.checked_add(*y),
            BinaryOp::Sub => x.checked_sub(*y),
            BinaryOp::Mul => x.checked_mul(*y),
            BinaryOp::Rem if *y == 0 => return Value::Null,
            BinaryOp::Rem => Some(x.wrapping_rem(*y)),
            _ => None,
        };
        if let Some(r) = r {
            return Value::Int(r);
        }
        if op == BinaryOp::Rem {
            return Value::Null;
        }
        // Integer overflow (or division): continue in floating point.
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Value::Null;
    };
    let r = match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div if y == 0.0 => return Value::Null,
        BinaryOp::Div => x / y,
        BinaryOp::Rem if y == 0.0 => return Value::Null,
        BinaryOp::Rem => x % y,
        _ => return Value::Null,
    };
    float(r)
}

/// A float result; NULL when it is not finite.
fn float(x: f64) -> Value {
    if x.is_finite() {
        Value::Float(x)
    } else {
        Value::Null
    }
}

/// Evaluates `e` in `ctx`.
pub(crate) fn eval<'a>(e: &'a BExpr, ctx: &Ctx<'a>) -> Cow<'a, Value> {
    use Cow::{Borrowed, Owned};
    match e {
        BExpr::Const(v) => Borrowed(v),
        BExpr::Id => match ctx.row {
            Some(r) => Owned(Value::String(r.user.clone())),
            None => Borrowed(&NULL),
        },
        BExpr::Attr(id) => match ctx.row.and_then(|r| r.attributes.cell(*id)) {
            Some(Cell::Attr { value, .. }) => Borrowed(value),
            _ => Borrowed(&NULL),
        },
        BExpr::Feature(def) => match ctx.row {
            Some(r) => Owned(evaluate_feature(def, r.features.cell(def.id), ctx.as_of)),
            None => Borrowed(&NULL),
        },
        BExpr::Vector(def) => match ctx.row.and_then(|r| current_vector(def, r)) {
            Some(v) => Owned(Value::Vector(v)),
            None => Borrowed(&NULL),
        },
        BExpr::Window {
            slot,
            func,
            span_ms,
        } => Owned(window(ctx, *slot, *func, *span_ms)),
        BExpr::ZScore {
            slot,
            current_ms,
            spans,
            counts,
        } => Owned(
            match (
                ctx.row.and_then(|r| r.windows.get(*slot)),
                ctx.bucket_ms.get(*slot),
            ) {
                (Some(buckets), Some(&width)) => {
                    zscore(buckets, width, ctx.as_of, *current_ms, *spans, *counts)
                        .map_or(Value::Null, float)
                }
                _ => Value::Null,
            },
        ),
        BExpr::Not(x) => Owned(bool_value(truth(&eval(x, ctx)).map(|b| !b))),
        BExpr::Neg(x) => Owned(match &*eval(x, ctx) {
            Value::Int(i) => i
                .checked_neg()
                .map_or_else(|| float(-(*i as f64)), Value::Int),
            Value::Float(f) => Value::Float(-f),
            _ => Value::Null,
        }),
        BExpr::And(a, b) => {
            let l = truth(&eval(a, ctx));
            if l == Some(false) {
                return Owned(Value::Bool(false));
            }
            let r = truth(&eval(b, ctx));
            Owned(match (l, r) {
                (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            })
        }
        BExpr::Or(a, b) => {
            let l = truth(&eval(a, ctx));
            if l == Some(true) {
                return Owned(Value::Bool(true));
            }
            let r = truth(&eval(b, ctx));
            Owned(match (l, r) {
                (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            })
        }
        BExpr::Cmp(op, a, b) => {
            // The id against a string (`id != 'u1'`, the usual way to leave a
            // user out of a ranking) compares in place, without a copy of the id.
            let o = match (&**a, &**b, ctx.row) {
                (BExpr::Id, BExpr::Const(Value::String(c)), Some(r)) => {
                    Some(r.user.as_str().cmp(c.as_str()))
                }
                (BExpr::Const(Value::String(c)), BExpr::Id, Some(r)) => {
                    Some(c.as_str().cmp(r.user.as_str()))
                }
                _ => compare(&eval(a, ctx), &eval(b, ctx)),
            };
            Owned(bool_value(o.map(|o| match op {
                BinaryOp::Eq => o.is_eq(),
                BinaryOp::NotEq => o.is_ne(),
                BinaryOp::Lt => o.is_lt(),
                BinaryOp::LtEq => o.is_le(),
                BinaryOp::Gt => o.is_gt(),
                _ => o.is_ge(),
            })))
        }
        BExpr::Arith(op, a, b) => Owned(arith(*op, &eval(a, ctx), &eval(b, ctx))),
        BExpr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let x = eval(expr, ctx);
            let lo = compare(&x, &eval(low, ctx)).map(Ordering::is_ge);
            let hi = compare(&x, &eval(high, ctx)).map(Ordering::is_le);
            let inside = match (lo, hi) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            Owned(bool_value(inside.map(|b| b != *negated)))
        }
        BExpr::InList {
            expr,
            list,
            negated,
        } => {
            let x = eval(expr, ctx);
            let mut found = Some(false);
            for item in list {
                match compare(&x, &eval(item, ctx)) {
                    Some(Ordering::Equal) => {
                        found = Some(true);
                        break;
                    }
                    None => found = None,
                    Some(_) => {}
                }
            }
            Owned(bool_value(found.map(|b| b != *negated)))
        }
        BExpr::IsNull { expr, negated } => {
            Owned(Value::Bool(eval(expr, ctx).is_null() != *negated))
        }
        BExpr::Abs(x) => Owned(match &*eval(x, ctx) {
            Value::Int(i) => i
                .checked_abs()
                .map_or_else(|| float((*i as f64).abs()), Value::Int),
            Value::Float(f) => Value::Float(f.abs()),
            _ => Value::Null,
        }),
        BExpr::KeyValue { map, key, int } => {
            let (map, key) = (eval(map, ctx), eval(key, ctx));
            let (Value::Map(m), Value::String(k)) = (&*map, &*key) else {
                return Borrowed(&NULL);
            };
            let x = m.iter().find(|(k2, _)| k2 == k).map_or(0.0, |e| e.1);
            Owned(if *int {
                Value::Int(x.round() as i64)
            } else {
                float(x)
            })
        }
        BExpr::Like {
            expr,
            pattern,
            insensitive,
        } => {
            let (x, p) = (eval(expr, ctx), eval(pattern, ctx));
            let (Value::String(x), Value::String(p)) = (&*x, &*p) else {
                return Borrowed(&NULL);
            };
            Owned(Value::Bool(if *insensitive {
                like(&x.to_lowercase(), &p.to_lowercase())
            } else {
                like(x, p)
            }))
        }
        BExpr::Case {
            operand,
            whens,
            otherwise,
        } => {
            let subject = operand.as_ref().map(|o| eval(o, ctx));
            for (w, t) in whens {
                let w = eval(w, ctx);
                let holds = match &subject {
                    Some(s) => compare(s, &w) == Some(Ordering::Equal),
                    None => truth(&w) == Some(true),
                };
                if holds {
                    return eval(t, ctx);
                }
            }
            match otherwise {
                Some(o) => eval(o, ctx),
                None => Borrowed(&NULL),
            }
        }
        BExpr::Math(func, args) => {
            let values: Vec<Cow<'_, Value>> = args.iter().map(|a| eval(a, ctx)).collect();
            Owned(math(*func, &values))
        }
        BExpr::TopKeys { map, n } => Owned(match &*eval(map, ctx) {
            Value::Map(m) => Value::Tags(m.iter().take(*n).map(|(k, _)| k.clone()).collect()),
            _ => Value::Null,
        }),
        BExpr::Coalesce(items) => {
            for item in items {
                let v = eval(item, ctx);
                if !v.is_null() {
                    return v;
                }
            }
            Borrowed(&NULL)
        }
        BExpr::Similarity {
            metric,
            vector,
            target,
            ..
        } => Owned(match (&*eval(vector, ctx), target) {
            (Value::Vector(v), Target::Vector(q)) if v.len() == q.v.len() => {
                let s = match metric {
                    // The distance itself, not the index's negated score.
                    Metric::L2 => Some(kernels::l2sq(&q.v, v).sqrt()),
                    m => kernels::score(*m, &q.v, q.norm, v, kernels::norm(v)),
                };
                s.map_or(Value::Null, float)
            }
            _ => Value::Null,
        }),
        BExpr::NearestCentroid { vector, centroids } => Owned(match &*eval(vector, ctx) {
            Value::Vector(v) => nearest(v, centroids).map_or(Value::Null, Value::Int),
            _ => Value::Null,
        }),
        BExpr::Hash { arg, seed } => Owned(match &*eval(arg, ctx) {
            Value::Null => Value::Null,
            Value::String(s) => hash(s.as_bytes(), *seed),
            v => {
                let mut w = profiledb_storage::codec::Writer::default();
                v.encode_compact(&mut w);
                hash(&w.finish(), *seed)
            }
        }),
        BExpr::Agg(i) => ctx.aggs.get(*i).map_or(Borrowed(&NULL), Borrowed),
        BExpr::Key(i) => ctx.keys.get(*i).map_or(Borrowed(&NULL), Borrowed),
    }
}

/// XXH3 of `bytes` (a string's UTF-8, another value's storage encoding)
/// with `seed` (its bits), as a signed 64-bit integer: the same on every
/// machine, so that an order by it (a sample of users) is too.
fn hash(bytes: &[u8], seed: i64) -> Value {
    Value::Int(xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed as u64) as i64)
}

/// The index of the centroid nearest to `v`, ties to the lower index; `None`
/// when no centroid has `v`'s dimension.
fn nearest(v: &[f32], centroids: &[Vec<f32>]) -> Option<i64> {
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in centroids.iter().enumerate() {
        if c.len() != v.len() {
            continue;
        }
        let d = kernels::l2sq(v, c);
        if best.is_none_or(|(_, b)| d < b) {
            best = Some((i, d));
        }
    }
    best.and_then(|(i, _)| i64::try_from(i).ok())
}

/// The buckets of slot `slot` that overlap `[as_of − span, as_of]`, combined.
fn window_total(ctx: &Ctx<'_>, slot: usize, span_ms: i64) -> Bucket {
    let mut total = Bucket::empty();
    let (Some(buckets), Some(&width)) = (
        ctx.row.and_then(|r| r.windows.get(slot)),
        ctx.bucket_ms.get(slot),
    ) else {
        return total;
    };
    let from = ctx.as_of.saturating_sub(span_ms);
    for (start, b) in buckets {
        let last = start.saturating_add(width - 1);
        if *start <= ctx.as_of && last >= from {
            total.merge(b);
        }
    }
    total
}

fn window(ctx: &Ctx<'_>, slot: usize, func: WindowFunc, span_ms: i64) -> Value {
    let b = window_total(ctx, slot, span_ms);
    let n = b.count;
    match func {
        WindowFunc::Count => Value::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        WindowFunc::Sum => float(b.sum),
        WindowFunc::Avg => b.mean().map_or(Value::Null, float),
        WindowFunc::Min => b.min().map_or(Value::Null, float),
        WindowFunc::Max => b.max().map_or(Value::Null, float),
        WindowFunc::Stddev => b.stddev().map_or(Value::Null, float),
    }
}

/// The z-score of the latest `current`-long span against the `spans` spans of
/// the same length before it.
///
/// Spans are laid on the bucket grid: span 0 ends where the bucket holding
/// `as_of` ends, span i ends `i·current` earlier, and a bucket belongs to the
/// span that holds its start. Each span's total is the number of events in it
/// (`counts`) or the sum of their values; spans without events count as 0. The
/// score is (x₀ − mean) / s over the baseline spans 1..=spans, with s their
/// sample standard deviation; `None` when there are fewer than two baseline
/// spans or s is 0.
pub(crate) fn zscore(
    buckets: &[(i64, Bucket)],
    bucket_ms: i64,
    as_of: i64,
    current_ms: i64,
    spans: i64,
    counts: bool,
) -> Option<f64> {
    if spans < 2 || current_ms <= 0 {
        return None;
    }
    let n = usize::try_from(spans).ok()?.checked_add(1)?;
    if n > 1 << 20 {
        return None;
    }
    let end = bucket_start(as_of, bucket_ms).saturating_add(bucket_ms);
    let mut totals = vec![0.0f64; n];
    for (start, b) in buckets {
        if *start >= end {
            continue;
        }
        let i = (i128::from(end) - i128::from(*start) - 1) / i128::from(current_ms);
        if let Some(t) = usize::try_from(i).ok().and_then(|i| totals.get_mut(i)) {
            *t += if counts { b.count as f64 } else { b.sum };
        }
    }
    let base = &totals[1..];
    let k = base.len() as f64;
    let sum: f64 = base.iter().sum();
    let sumsq: f64 = base.iter().map(|x| x * x).sum();
    let s = sample_stddev(k, sum, sumsq)?;
    if s <= 0.0 || !s.is_finite() {
        return None;
    }
    Some((totals[0] - sum / k) / s)
}

/// SQL `LIKE`: `%` matches any run of characters, `_` any one, and `\`
/// makes the next character literal; the whole string must match.
pub(crate) fn like(s: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        pat.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let s: Vec<char> = s.chars().collect();
    // Greedy with one backtrack point: the last `%` seen.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pat.get(j) {
            Some(P::Any) => {
                star = Some((j, i));
                j += 1;
            }
            Some(P::One) => {
                i += 1;
                j += 1;
            }
            Some(P::Char(c)) if *c == s[i] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((sj, si)) => {
                    j = sj + 1;
                    i = si + 1;
                    star = Some((sj, si + 1));
                }
                None => return false,
            },
        }
    }
    pat[j..].iter().all(|p| *p == P::Any)
}

/// A scalar function of numbers: NULL when an argument is NULL (greatest
/// and least skip NULLs, as PostgreSQL's do) or the result is not a finite
/// number (`ln(0)`, `sqrt(-1)`).
fn math(func: MathFunc, args: &[Cow<'_, Value>]) -> Value {
    if matches!(func, MathFunc::Greatest | MathFunc::Least) {
        let mut best: Option<&Value> = None;
        for v in args.iter().map(|v| &**v).filter(|v| !v.is_null()) {
            let better = best.is_none_or(|b| {
                let o = total_cmp(v, b);
                if func == MathFunc::Greatest {
                    o.is_gt()
                } else {
                    o.is_lt()
                }
            });
            if better {
                best = Some(v);
            }
        }
        return best.cloned().unwrap_or(Value::Null);
    }
    let Some(x) = args.first().and_then(|v| v.as_f64()) else {
        return Value::Null;
    };
    let int = matches!(&*args[0], Value::Int(_));
    let y = args.get(1).map(|v| v.as_f64());
    let r = match (func, y) {
        (MathFunc::Round, None) if int => return (*args[0]).clone(),
        (MathFunc::Floor | MathFunc::Ceil, _) if int => return (*args[0]).clone(),
        // Half away from zero, as PostgreSQL rounds numerics.
        (MathFunc::Round, None) => x.round(),
        (MathFunc::Round, Some(Some(d))) => {
            let scale = 10f64.powi(d.clamp(-300.0, 300.0) as i32);
            (x * scale).round() / scale
        }
        (MathFunc::Floor, _) => x.floor(),
        (MathFunc::Ceil, _) => x.ceil(),
        (MathFunc::Ln, _) if x > 0.0 => x.ln(),
        (MathFunc::Exp, _) => x.exp(),
        (MathFunc::Sqrt, _) if x >= 0.0 => x.sqrt(),
        (MathFunc::Pow, Some(Some(y))) => x.powf(y),
        _ => return Value::Null,
    };
    float(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(count: u64, sum: f64) -> Bucket {
        Bucket {
            count,
            sum,
            min: 0.0,
            max: 0.0,
            sumsq: 0.0,
        }
    }

    #[test]
    fn zscore_by_hand() {
        let day = 86_400_000;
        let hour = 3_600_000;
        // as_of is noon of day 10; hourly buckets; current span 1d, baseline 4d.
        let as_of = 10 * day + 12 * hour;
        // The bucket holding as_of ends at 13:00, so span 0 is [day 9 13:00, day 10 13:00).
        let end = 10 * day + 13 * hour;
        let at = |spans_back: i64, hours_in: i64| end - spans_back * day + hours_in * hour - day;
        let buckets = vec![
            (at(4, 0), b(2, 0.0)),
            (at(3, 5), b(4, 0.0)),
            (at(2, 23), b(6, 0.0)),
            (at(1, 1), b(3, 0.0)),
            (at(1, 2), b(1, 0.0)),
            (at(0, 0), b(9, 0.0)),
            (at(0, 23), b(1, 0.0)),
        ];
        // Baseline totals: span1 = 4, span2 = 6, span3 = 4, span4 = 2: mean 4, s = sqrt(8/3).
        let z = zscore(&buckets, hour, as_of, day, 4, true);
        let expect = (10.0 - 4.0) / (8.0f64 / 3.0).sqrt();
        assert!(
            z.is_some_and(|z| (z - expect).abs() < 1e-12),
            "{z:?} vs {expect}"
        );
        // One baseline span, or a flat baseline, gives no score.
        assert_eq!(zscore(&buckets, hour, as_of, day, 1, true), None);
        let flat = vec![(at(1, 0), b(1, 0.0)), (at(2, 0), b(1, 0.0))];
        assert_eq!(zscore(&flat, hour, as_of, day, 2, true), None);
    }

    #[test]
    fn three_valued_logic() {
        let ctx = Ctx::constant(0);
        let null = || Box::new(BExpr::Const(Value::Null));
        let t = || Box::new(BExpr::Const(Value::Bool(true)));
        let f = || Box::new(BExpr::Const(Value::Bool(false)));
        let cases = [
            (BExpr::And(null(), f()), Value::Bool(false)),
            (BExpr::And(null(), t()), Value::Null),
            (BExpr::Or(null(), t()), Value::Bool(true)),
            (BExpr::Or(null(), f()), Value::Null),
            (BExpr::Not(null()), Value::Null),
            (BExpr::Cmp(BinaryOp::Eq, null(), null()), Value::Null),
        ];
        for (e, want) in cases {
            assert_eq!(*eval(&e, &ctx), want, "{e:?}");
        }
    }

    #[test]
    fn arithmetic_edges() {
        assert_eq!(
            arith(BinaryOp::Div, &Value::Int(1), &Value::Int(0)),
            Value::Null
        );
        assert_eq!(
            arith(BinaryOp::Div, &Value::Int(1), &Value::Int(2)),
            Value::Float(0.5)
        );
        assert_eq!(
            arith(BinaryOp::Rem, &Value::Int(7), &Value::Int(0)),
            Value::Null
        );
        assert_eq!(
            arith(BinaryOp::Rem, &Value::Int(i64::MIN), &Value::Int(-1)),
            Value::Int(0)
        );
        assert_eq!(
            arith(BinaryOp::Add, &Value::Int(i64::MAX), &Value::Int(1)),
            Value::Float(i64::MAX as f64 + 1.0)
        );
        assert_eq!(
            arith(BinaryOp::Mul, &Value::Float(1e300), &Value::Float(1e300)),
            Value::Null
        );
    }

    /// `like` against a naive recursive matcher, on random strings and
    /// patterns over a small alphabet.
    #[test]
    fn like_matches_a_naive_reference() {
        fn naive(s: &[char], p: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some(('%', rest)) => (0..=s.len()).any(|i| naive(&s[i..], rest)),
                Some(('_', rest)) => !s.is_empty() && naive(&s[1..], rest),
                Some(('\\', rest)) => match rest.split_first() {
                    Some((c, rest)) => s.first() == Some(c) && naive(&s[1..], rest),
                    None => s.first() == Some(&'\\') && naive(&s[1..], &[]),
                },
                Some((c, rest)) => s.first() == Some(c) && naive(&s[1..], rest),
            }
        }
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..20_000 {
            let s: String = (0..next(7))
                .map(|_| ['a', 'b', '%'][next(3) as usize])
                .collect();
            let p: String = (0..next(6))
                .map(|_| ['a', 'b', '%', '_', '\\'][next(5) as usize])
                .collect();
            let (sc, pc): (Vec<char>, Vec<char>) = (s.chars().collect(), p.chars().collect());
            assert_eq!(like(&s, &p), naive(&sc, &pc), "{s:?} LIKE {p:?}");
        }
    }
}
