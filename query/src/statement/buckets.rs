//! `BUCKETS window FOR 'user' OVER 'span' [FILL ZEROS] [AS OF t]`: one
//! user's buckets of a window, oldest first, as rows ("30-day purchases by
//! day"). The buckets are read the way a query reads a window (one view,
//! the same retention, exact as of t from the event history). `FILL ZEROS`
//! adds the empty buckets of the span that the retention still covers.

use profiledb_storage::keys::bucket_start;
use profiledb_storage::time::format_timestamp;
use profiledb_storage::{Bucket, Pins, RowNeeds, Value, WindowNeed};

use super::*;
use crate::ast::{Duration, Expr, Ident, Literal};
use crate::bind::unknown;
use crate::output::Rows;
use crate::plan::as_of_time;

/// Most buckets one series answers with.
pub const MAX_SERIES_BUCKETS: i64 = 100_000;

pub(super) fn buckets(
    source: &dyn DataSource,
    window: &Ident,
    user: &Expr,
    span: &Duration,
    fill: bool,
    as_of: Option<&Expr>,
    limits: &Limits,
) -> Result<Rows> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    let def = catalog.window(&window.value).ok_or_else(|| {
        unknown(
            "window",
            window,
            catalog.windows.iter().map(|w| w.name.as_str()),
        )
    })?;
    let Expr::Literal(Literal::String(id), _) = user else {
        return Err(Error::invalid(
            "BUCKETS … FOR takes a user id, a string ('u1')",
            Some(user.span()),
        ));
    };
    let t = match as_of {
        Some(e) => as_of_time(e)?,
        None => source.now(),
    };
    let from = t.saturating_sub(span.ms);
    let (first, last) = (
        bucket_start(from, def.bucket_ms),
        bucket_start(t, def.bucket_ms),
    );
    let n = (last - first) / def.bucket_ms + 1;
    if fill && n > MAX_SERIES_BUCKETS {
        return Err(Error::invalid(
            format!(
                "the span holds {n} buckets of window '{}'; a filled series has at most {MAX_SERIES_BUCKETS}",
                def.name
            ),
            Some(span.loc.0),
        ));
    }
    let needs = RowNeeds {
        windows: vec![WindowNeed::of(def, from, t)],
        history_as_of: (as_of.is_some() && catalog.history_ms > 0).then_some(t),
        // The window's buckets alone.
        items: Some(Vec::new()),
        ..RowNeeds::default()
    };
    let view = source.view(Pins::NONE)?;
    let held: Vec<(i64, Bucket)> = view
        .get(id, &needs)?
        .and_then(|mut row| row.windows.pop())
        .unwrap_or_default();
    let row = |start: i64, b: &Bucket| {
        let float = |x: Option<f64>| x.map_or(Value::Null, Value::Float);
        vec![
            Value::String(format_timestamp(start)),
            Value::Int(i64::try_from(b.count).unwrap_or(i64::MAX)),
            Value::Float(b.sum),
            float(b.min()),
            float(b.max()),
            float(b.mean()),
        ]
    };
    let rows: Vec<Vec<Value>> = if fill {
        // Empty buckets count 0, but only within the retention: older
        // ones are not known to be empty.
        let now = source.now();
        let empty = Bucket::empty();
        let mut held = held.iter().peekable();
        (0..n)
            .map(|k| first + k * def.bucket_ms)
            .filter(|start| !needs.windows[0].expired(*start, now))
            .map(|start| match held.next_if(|(s, _)| *s == start) {
                Some((_, b)) => row(start, b),
                None => row(start, &empty),
            })
            .collect()
    } else {
        held.iter().map(|(s, b)| row(*s, b)).collect()
    };
    limits.check_rows(rows.len())?;
    Ok(Rows {
        columns: super::columns(&[
            ("start", Type::String),
            ("count", Type::Int),
            ("sum", Type::Float),
            ("min", Type::Float),
            ("max", Type::Float),
            ("mean", Type::Float),
        ]),
        rows,
    })
}
