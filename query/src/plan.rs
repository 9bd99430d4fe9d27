//! Planning a `SELECT`: how users are reached (point lookups or a parallel scan),
//! what each row must fetch, the filter, and the shape of the output (rows,
//! top-k, or groups with aggregates).

use profiledb_storage::catalog::Catalog;
use profiledb_storage::time::{check_ts, format_timestamp, parse_timestamp};
use profiledb_storage::{Metric, Pins, RowNeeds, Value};

use crate::ast::{BinaryOp, Expr, Literal, Select, SelectItem};
use crate::bind::{AggSpec, BExpr, Binder, Grouping, has_aggregate};
use crate::error::{Error, Result};
use crate::output::{Column, Type};

/// How a query reaches its users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Only these users, by id (sorted, deduplicated).
    Points(Vec<String>),
    /// Every user, scanned in parallel.
    Scan,
    /// No user: one row of constants (`SELECT 1 + 1`, no `FROM`).
    One,
    /// The `k` users closest by `metric` under vector definition `def`, ranked
    /// on the vector index, after the filter.
    VectorTopK {
        def: u32,
        vector: String,
        metric: Metric,
        k: usize,
        search: Search,
    },
}

/// How a vector top-k ranks: on the vector's IVF index, or by the exact scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Search {
    /// `WITH (exact = true)`.
    pub exact: bool,
    /// `WITH (probes = n)`: lists probed in place of the index's own.
    pub probes: Option<usize>,
    /// The vector's index: (name, lists, probes, rerank).
    pub index: Option<(String, u32, u32, u32)>,
    /// For `EXPLAIN`: whether the index is built, with the vectors it has.
    pub built: Option<(bool, usize)>,
}

impl Search {
    /// The settings of `WITH (…)` on a top-k of vector `def`.
    fn of(select: &Select, catalog: &Catalog, def: u32) -> Result<Search> {
        crate::statement::index::check_unique(&select.with)?;
        let mut search = Search {
            index: catalog
                .index_on(def)
                .map(|i| (i.name.clone(), i.lists, i.probes, i.rerank)),
            ..Search::default()
        };
        let max = profiledb_storage::vector::ivf::MAX_LISTS as u64 * 1024;
        for o in &select.with {
            match o.key.value.to_ascii_lowercase().as_str() {
                "exact" => search.exact = crate::statement::index::boolean(o)?,
                "probes" => {
                    search.probes = Some(crate::statement::index::whole(o, max)? as usize);
                }
                _ => {
                    return Err(crate::statement::index::unknown_option(
                        o,
                        &["probes", "exact"],
                    ));
                }
            }
        }
        Ok(search)
    }

    /// The line EXPLAIN shows for how the ranking runs.
    fn text(&self, vector: &str) -> String {
        match &self.index {
            Some((name, ..)) if self.exact => format!(
                "the vector index of {vector}, exact (WITH (exact = true) passes over index {name})"
            ),
            Some((name, lists, ..)) if self.built.is_some_and(|(built, _)| !built) => format!(
                "the vector index of {vector}, exact (index {name} is not built: {} vectors, fewer than its {lists} lists)",
                self.built.map_or(0, |(_, n)| n)
            ),
            Some((name, lists, probes, rerank)) => {
                let used = self.probes.unwrap_or(*probes as usize);
                let clamped = if used > *lists as usize {
                    format!(" ({used} asked, clamped to the lists)")
                } else {
                    String::new()
                };
                format!(
                    "IVF index {name} (probes {} of {lists} lists{clamped}, the best {rerank}x re-ranked exactly; a filter that keeps fewer rows than the probes scan ranks those exactly)",
                    used.min(*lists as usize)
                )
            }
            None => format!("the vector index of {vector}, exact"),
        }
    }
}

/// What a query returns per user or per group.
#[derive(Debug)]
pub(crate) enum Shape {
    /// One output row per matching user.
    Rows {
        exprs: Vec<BExpr>,
        order: Vec<(BExpr, bool)>,
        limit: Limit,
    },
    /// One output row per group.
    Groups {
        keys: Vec<BExpr>,
        aggs: Vec<AggSpec>,
        outputs: Vec<BExpr>,
        /// `HAVING`: the groups kept.
        having: Option<BExpr>,
        order: Vec<(BExpr, bool)>,
        limit: Limit,
    },
}

/// Which of the sorted output rows a query answers: each distinct row once
/// when `distinct`, then `offset` skipped, then at most `limit`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limit {
    pub distinct: bool,
    pub offset: u64,
    pub limit: Option<u64>,
}

impl Limit {
    /// The line EXPLAIN shows for a `DISTINCT` or an `OFFSET`, if any (a
    /// limit alone shows as a top-k or a limit).
    fn text(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.distinct {
            parts.push("Distinct".to_owned());
            if let Some(k) = self.limit {
                parts.push(format!("Limit: {k}"));
            }
        }
        if self.offset > 0 {
            parts.push(format!("Offset: {}", self.offset));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// How many rows, in sort order, a partition must keep so that the
    /// answer is among them; `None` for all (a `DISTINCT`, or no limit).
    pub fn keep(&self) -> Option<u64> {
        match (self.distinct, self.limit) {
            (false, Some(k)) => Some(k.saturating_add(self.offset)),
            _ => None,
        }
    }
}

/// A planned `SELECT`.
#[derive(Debug)]
pub(crate) struct SelectPlan {
    pub as_of: i64,
    pub access: Access,
    pub needs: RowNeeds,
    /// Bucket width of each fetched window, parallel to `needs.windows`.
    pub bucket_ms: Vec<i64>,
    pub filter: Option<BExpr>,
    pub columns: Vec<Column>,
    pub shape: Shape,
    /// Text of the parts, for EXPLAIN.
    pub text: PlanText,
    /// Whether rows carry their user id as a last, ascending sort key: set
    /// when parts of the answer come from several machines, so that merged
    /// rows keep the order (ties, and id order without `ORDER BY`) a single
    /// database gives.
    pub by_id: bool,
}

/// The plan's parts as text, for EXPLAIN.
#[derive(Debug, Default)]
pub(crate) struct PlanText {
    pub filter: Option<String>,
    pub order: Vec<String>,
    pub group_by: Vec<String>,
    pub aggregates: Vec<String>,
}

/// Evaluates an `AS OF` expression: an RFC 3339 string or epoch ms.
pub(crate) fn as_of_time(e: &Expr) -> Result<i64> {
    let span = Some(e.span());
    match e {
        Expr::Literal(Literal::String(s), _) => {
            parse_timestamp(s).map_err(|err| Error::invalid(err.to_string(), span))
        }
        Expr::Literal(Literal::Int(ms), _) => {
            check_ts(*ms).map_err(|err| Error::invalid(err.to_string(), span))
        }
        Expr::Unary { .. } => Err(Error::invalid(
            "AS OF takes a timestamp after year 0: an RFC 3339 string or epoch ms",
            span,
        )),
        _ => Err(Error::invalid(
            "AS OF takes a timestamp: an RFC 3339 string or epoch milliseconds",
            span,
        )),
    }
}

/// The ids a predicate pins the query to: `id = 'x'` or `id IN ('x', …)` as a
/// conjunct of the top-level `AND`s.
pub(crate) fn point_ids(e: &Expr) -> Option<Vec<String>> {
    let is_id = |e: &Expr| matches!(e, Expr::Column(c) if c.value == "id");
    let string = |e: &Expr| match e {
        Expr::Literal(Literal::String(s), _) => Some(s.clone()),
        _ => None,
    };
    match e {
        Expr::Binary {
            left,
            op: BinaryOp::And,
            right,
        } => point_ids(left).or_else(|| point_ids(right)),
        Expr::Binary {
            left,
            op: BinaryOp::Eq,
            right,
        } => {
            if is_id(left) {
                string(right).map(|s| vec![s])
            } else if is_id(right) {
                string(left).map(|s| vec![s])
            } else {
                None
            }
        }
        Expr::InList {
            expr,
            negated: false,
            list,
        } if is_id(expr) => {
            let mut ids = list.iter().map(string).collect::<Option<Vec<_>>>()?;
            ids.sort();
            ids.dedup();
            Some(ids)
        }
        _ => None,
    }
}

/// The columns of `SELECT *`: id, then every attribute, feature and vector in
/// definition order.
fn wildcard(catalog: &Catalog) -> Vec<Expr> {
    let mut items: Vec<(u32, &str)> = catalog
        .attributes
        .iter()
        .map(|d| (d.id, d.name.as_str()))
        .chain(catalog.features.iter().map(|d| (d.id, d.name.as_str())))
        .chain(catalog.vectors.iter().map(|d| (d.id, d.name.as_str())))
        .collect();
    items.sort_unstable_by_key(|(id, _)| *id);
    std::iter::once("id")
        .chain(items.into_iter().map(|(_, n)| n))
        .map(|n| Expr::Column(crate::ast::Ident::new(n)))
        .collect()
}

/// Plans `select` against `catalog`, at time `now` unless it says `AS OF`.
pub(crate) fn plan_select(select: &Select, catalog: &Catalog, now: i64) -> Result<SelectPlan> {
    match &select.from {
        Some(from) if !from.value.eq_ignore_ascii_case("users") => {
            return Err(crate::bind::unknown("table", from, ["users"]));
        }
        Some(_) => {}
        None => constants_only(select)?,
    }
    let as_of = match &select.as_of {
        Some(e) => as_of_time(e)?,
        None => now,
    };
    let mut b = Binder::new(catalog, as_of);
    let mut text = PlanText::default();
    let mut filter = match &select.selection {
        Some(w) => {
            if has_aggregate(w) {
                return Err(Error::invalid(
                    "aggregates are not allowed in WHERE",
                    Some(w.span()),
                ));
            }
            text.filter = Some(w.to_string());
            Some(b.predicate(w, "WHERE")?)
        }
        None => None,
    };
    let mut access = if select.from.is_none() {
        Access::One
    } else {
        select
            .selection
            .as_ref()
            .and_then(point_ids)
            .map_or(Access::Scan, Access::Points)
    };
    let limit = Limit {
        distinct: select.distinct,
        offset: select.offset.unwrap_or(0),
        limit: select.limit,
    };

    // The select list, with `*` expanded.
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(_) => {
                items.extend(wildcard(catalog).into_iter().map(|e| (e, None)))
            }
            SelectItem::Expr { expr, alias } => {
                items.push((expr.clone(), alias.as_ref().map(|a| a.value.clone())));
            }
        }
    }
    let names: Vec<String> = items
        .iter()
        .map(|(e, alias)| match (alias, e) {
            (Some(a), _) => a.clone(),
            (None, Expr::Column(c)) => c.value.clone(),
            (None, e) => e.to_string(),
        })
        .collect();
    text.order = select.order_by.iter().map(ToString::to_string).collect();

    // GROUP BY may name a select-list alias that is not a column.
    let group_by: Vec<Expr> = select
        .group_by
        .iter()
        .map(|g| match g {
            Expr::Column(c) if catalog.kind_of(&c.value).is_none() && c.value != "id" => items
                .iter()
                .find(|(_, alias)| alias.as_deref() == Some(c.value.as_str()))
                .map_or_else(|| g.clone(), |(e, _)| e.clone()),
            _ => g.clone(),
        })
        .collect();
    let grouped = !group_by.is_empty()
        || select.having.is_some()
        || items.iter().any(|(e, _)| has_aggregate(e));
    let (columns, shape) = if grouped {
        let mut g = Grouping {
            keys: group_by.iter().map(ToString::to_string).collect(),
            aggs: Vec::new(),
        };
        let mut keys = Vec::new();
        for k in &group_by {
            if has_aggregate(k) {
                return Err(Error::invalid(
                    "aggregates are not allowed in GROUP BY",
                    Some(k.span()),
                ));
            }
            let (bk, ty) = b.expr(k, None)?;
            if matches!(ty, Type::Vector) {
                return Err(Error::invalid("cannot GROUP BY a vector", Some(k.span())));
            }
            keys.push(bk);
        }
        let (outputs, columns, order) = bind_list(&mut b, &items, &names, select, Some(&mut g))?;
        let having = match &select.having {
            Some(h) => {
                let (bh, ty) = b.expr(h, Some(&mut g))?;
                if !matches!(ty, Type::Bool | Type::Null) {
                    return Err(Error::invalid(
                        format!("HAVING takes a condition, not a {ty}"),
                        Some(h.span()),
                    ));
                }
                Some(bh)
            }
            None => None,
        };
        text.group_by = g.keys.clone();
        text.aggregates = select
            .projection
            .iter()
            .filter_map(|i| match i {
                SelectItem::Expr { expr, .. } if has_aggregate(expr) => Some(expr.to_string()),
                _ => None,
            })
            .collect();
        (
            columns,
            Shape::Groups {
                keys,
                aggs: g.aggs,
                outputs,
                having,
                order,
                limit,
            },
        )
    } else {
        let (exprs, columns, order) = bind_list(&mut b, &items, &names, select, None)?;
        // A similarity as the first key: rank on the vector index when it is
        // the only key, best first, with a LIMIT; otherwise users without a
        // score are left out, as the index would leave them out.
        if let Some((
            BExpr::Similarity {
                metric,
                def,
                vector,
                ..
            },
            desc,
        )) = order.first()
        {
            let best_first = *desc == (*metric != Metric::L2);
            let on_index = matches!(**vector, BExpr::Vector(_));
            // The index holds today's vectors: as of a past time that the
            // history answers, rank the rows it rebuilds instead.
            let replaying = select.as_of.is_some() && catalog.history_ms > 0;
            match (order.len(), limit.keep(), &access) {
                (1, Some(k), Access::Scan) if best_first && on_index && !replaying => {
                    access = Access::VectorTopK {
                        def: *def,
                        vector: catalog
                            .vectors
                            .iter()
                            .find(|v| v.id == *def)
                            .map_or_else(String::new, |v| v.name.clone()),
                        metric: *metric,
                        k: usize::try_from(k).unwrap_or(usize::MAX),
                        search: Search::of(select, catalog, *def)?,
                    };
                }
                _ => {
                    let scored = BExpr::IsNull {
                        expr: Box::new(order[0].0.clone()),
                        negated: true,
                    };
                    filter = Some(match filter.take() {
                        Some(f) => BExpr::And(Box::new(f), Box::new(scored)),
                        None => scored,
                    });
                }
            }
        }
        (
            columns,
            Shape::Rows {
                exprs,
                order,
                limit,
            },
        )
    };
    if let (Some(o), false) = (
        select.with.first(),
        matches!(access, Access::VectorTopK { .. }),
    ) {
        return Err(Error::invalid(
            "WITH (…) sets how a similarity top-k ranks users (ORDER BY a similarity, best first, with a LIMIT, of today's vectors); this query does not rank on the vector index",
            Some(o.key.span()),
        ));
    }
    // An explicit `AS OF` reads each user as of then: users written since are
    // rebuilt from the event history, when the database keeps one.
    if select.as_of.is_some() && catalog.history_ms > 0 {
        b.needs.history_as_of = Some(as_of);
    }
    let bucket_ms = b.needs.windows.iter().map(|w| w.bucket_ms).collect();
    Ok(SelectPlan {
        as_of,
        access,
        needs: b.needs,
        bucket_ms,
        filter,
        columns,
        shape,
        text,
        by_id: false,
    })
}

/// Refuses a select without `FROM` that reads users: it gives one row of
/// constants (and `now()`).
fn constants_only(select: &Select) -> Result<()> {
    fn column(e: &Expr) -> Option<&Expr> {
        match e {
            Expr::Column(_) | Expr::InSegment(_) => Some(e),
            _ => e.children().into_iter().find_map(column),
        }
    }
    let exprs = select
        .projection
        .iter()
        .filter_map(|i| match i {
            SelectItem::Expr { expr, .. } => Some(expr),
            SelectItem::Wildcard(_) => None,
        })
        .chain(&select.selection)
        .chain(&select.group_by)
        .chain(&select.having)
        .chain(select.order_by.iter().map(|o| &o.expr));
    for e in exprs {
        if let Some(c) = column(e) {
            return Err(Error::invalid(
                "a select without FROM reads no users: add FROM users to read this",
                Some(c.span()),
            ));
        }
    }
    if let Some(SelectItem::Wildcard(loc)) = select
        .projection
        .iter()
        .find(|i| matches!(i, SelectItem::Wildcard(_)))
    {
        return Err(Error::invalid("SELECT * needs FROM users", Some(loc.0)));
    }
    Ok(())
}

/// The bound select list, its columns, and the ORDER BY keys (with their
/// direction): per row, or with `group`, per group.
type BoundList = (Vec<BExpr>, Vec<Column>, Vec<(BExpr, bool)>);

/// Binds the select list `items` (named `names`) and `select`'s ORDER BY. A key
/// that names an output column sorts by that column.
fn bind_list(
    b: &mut Binder<'_>,
    items: &[(Expr, Option<String>)],
    names: &[String],
    select: &Select,
    mut group: Option<&mut Grouping>,
) -> Result<BoundList> {
    let mut exprs = Vec::with_capacity(items.len());
    let mut columns = Vec::with_capacity(items.len());
    for ((e, _), name) in items.iter().zip(names) {
        let (be, ty) = b.expr(e, group.as_deref_mut())?;
        exprs.push(be);
        columns.push(Column {
            name: name.clone(),
            ty,
        });
    }
    let output = |e: &Expr| match e {
        Expr::Column(c) => names.iter().position(|n| *n == c.value).filter(|&i| {
            items[i].1.is_some() || matches!(&items[i].0, Expr::Column(x) if x.value == c.value)
        }),
        _ => None,
    };
    let mut order = Vec::with_capacity(select.order_by.len());
    for o in &select.order_by {
        let (key, ty) = match output(&o.expr) {
            Some(i) => (exprs[i].clone(), columns[i].ty),
            None => b.expr(&o.expr, group.as_deref_mut())?,
        };
        if matches!(ty, Type::Vector | Type::Tags) {
            return Err(Error::invalid(
                format!("cannot ORDER BY a {ty}"),
                Some(o.expr.span()),
            ));
        }
        order.push((key, o.desc));
    }
    Ok((exprs, columns, order))
}

impl SelectPlan {
    /// What the plan's view pins beside the data: the vector index when the
    /// plan reads it, the row table when the plan scans users for what the
    /// table holds (a scan, or a ranking filtered by more than attributes).
    pub fn pins(&self) -> Pins {
        let scans = match &self.access {
            Access::Scan => true,
            Access::VectorTopK { .. } => self
                .filter
                .as_ref()
                .is_some_and(|f| !f.reads_only_attributes()),
            Access::Points(_) | Access::One => false,
        };
        Pins {
            vectors: self.uses_vectors(),
            rows: scans && self.needs.in_row_table(),
        }
    }

    /// Whether running the plan reads the vector index: a ranking on it, or a
    /// similarity to a centroid. Such a plan reads through a view that pins
    /// the index with the data.
    pub fn uses_vectors(&self) -> bool {
        matches!(self.access, Access::VectorTopK { .. }) || self.reads_centroids()
    }

    /// Whether an expression compares with a centroid (the mean of a
    /// segment's vectors).
    pub fn reads_centroids(&self) -> bool {
        let mut exprs: Vec<&BExpr> = self.filter.iter().collect();
        match &self.shape {
            Shape::Rows {
                exprs: e, order, ..
            } => {
                exprs.extend(e);
                exprs.extend(order.iter().map(|(e, _)| e));
            }
            Shape::Groups {
                keys,
                aggs,
                outputs,
                having,
                order,
                ..
            } => {
                exprs.extend(keys);
                exprs.extend(outputs);
                exprs.extend(having);
                exprs.extend(order.iter().map(|(e, _)| e));
                exprs.extend(aggs.iter().filter_map(|a| a.arg.as_ref()));
            }
        }
        exprs.into_iter().any(BExpr::reads_vector_index)
    }

    /// The plan as indented lines, outermost first; `partitions` is how many
    /// ranges a scan would run over.
    pub fn explain(&self, partitions: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let cols: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        lines.push(format!("Projection: {}", cols.join(", ")));
        match &self.shape {
            Shape::Rows { .. } if matches!(self.access, Access::VectorTopK { .. }) => {}
            Shape::Rows { order, limit, .. } => {
                lines.extend(limit.text());
                match (order.is_empty(), limit.limit) {
                    (false, Some(k)) if !limit.distinct => {
                        lines.push(format!("TopK: {} by {}", k, self.text.order.join(", ")));
                    }
                    (false, _) => lines.push(format!("Sort: {}", self.text.order.join(", "))),
                    (true, Some(k)) if !limit.distinct => lines.push(format!("Limit: {k}")),
                    (true, _) => {}
                }
            }
            Shape::Groups {
                order,
                limit,
                having,
                ..
            } => {
                lines.extend(limit.text());
                if !order.is_empty() {
                    lines.push(format!("Sort: {}", self.text.order.join(", ")));
                }
                if let Some(k) = limit.limit.filter(|_| !limit.distinct) {
                    lines.push(format!("Limit: {k}"));
                }
                if having.is_some() {
                    lines.push("Having".to_owned());
                }
                let by = if self.text.group_by.is_empty() {
                    String::new()
                } else {
                    format!(" group by {};", self.text.group_by.join(", "))
                };
                lines.push(format!(
                    "Aggregate:{by} {}",
                    self.text.aggregates.join(", ")
                ));
            }
        }
        let as_of = format_timestamp(self.as_of);
        if let Access::VectorTopK {
            vector, k, search, ..
        } = &self.access
        {
            lines.push(format!(
                "VectorTopK: {k} by {} over {}, as of {as_of}",
                self.text.order.join(", "),
                search.text(vector)
            ));
            if let (Some(text), Some(f)) = (&self.text.filter, &self.filter) {
                lines.push(if f.reads_only_attributes() {
                    format!("IndexFilter: {text} (on the index's attributes, before ranking)")
                } else {
                    format!("Filter: {text} (a scan before ranking)")
                });
            }
            lines.push(format!(
                "Fetch: {} for the {k} ranked users",
                self.fetch_text()
            ));
            return indent(lines);
        }
        if let Some(f) = &self.text.filter {
            lines.push(format!("Filter: {f}"));
        }
        lines.push(match &self.access {
            Access::Points(ids) => {
                let ids: Vec<String> = ids
                    .iter()
                    .map(|i| Literal::String(i.clone()).to_string())
                    .collect();
                format!("PointLookup: users id = {} as of {as_of}", ids.join(", "))
            }
            Access::One => "Constants: one row".to_owned(),
            Access::Scan | Access::VectorTopK { .. } => format!(
                "ParallelScan: users, {partitions} partition{} as of {as_of}",
                if partitions == 1 { "" } else { "s" }
            ),
        });
        lines.push(format!("Fetch: {}", self.fetch_text()));
        indent(lines)
    }

    /// What each user's read fetches.
    fn fetch_text(&self) -> String {
        let mut fetch = vec!["features".to_owned()];
        if self.needs.attributes {
            fetch.push("attributes".to_owned());
        }
        if !self.needs.windows.is_empty() {
            fetch.push(format!("{} window range(s)", self.needs.windows.len()));
        }
        if !self.needs.sgd.is_empty() {
            fetch.push(format!("{} sgd vector(s)", self.needs.sgd.len()));
        }
        let mut text = fetch.join(", ");
        if self.needs.history_as_of.is_some() {
            text.push_str("; users written since replayed from the event history");
        }
        text
    }
}

/// Indents each line one step deeper than the one before.
fn indent(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| format!("{}{l}", "  ".repeat(i)))
        .collect()
}

/// A value as a constant in `VALUES` or `SET`: literals, negated numbers and
/// vectors of numbers.
pub(crate) fn const_value(e: &Expr) -> Result<Value> {
    match e {
        Expr::Literal(l, _) => Ok(crate::bind::literal(l).0),
        Expr::Unary {
            op: crate::ast::UnaryOp::Neg,
            expr,
            ..
        } => match const_value(expr)? {
            Value::Int(i) => Ok(i
                .checked_neg()
                .map_or(Value::Float(-(i as f64)), Value::Int)),
            Value::Float(x) => Ok(Value::Float(-x)),
            other => Err(Error::TypeMismatch {
                context: "unary minus".into(),
                expected: "a number".into(),
                found: other.type_name().into(),
                at: crate::error::At::span(e.span()),
            }),
        },
        Expr::Array(items, _) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(crate::bind::const_number(item)? as f32);
            }
            Ok(Value::Vector(out))
        }
        _ => Err(Error::invalid(
            "expected a constant: a string, number, bool, NULL or [vector]",
            Some(e.span()),
        )),
    }
}
