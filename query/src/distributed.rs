//! Queries over a database spread across machines: each machine holds some
//! users, runs the part of a `SELECT` that reads them, and answers a
//! *partial result* (its rows with their sort keys, cut to the query's
//! top-k, or its groups' aggregate states); the machine that took the query
//! merges them with its own exactly as a scan merges its ranges, so the
//! answer equals one database's over all the users.
//!
//! The machines reach each other through [`Peers`], which the caller
//! implements (the `profiledb` facade does, over HTTP, for a cluster's
//! nodes); a peer runs its part with [`partial`]. Partial results travel in
//! the storage codec's binary form (fixed-width little-endian, values as
//! records store them), with a version byte, and are checked against the
//! plan when they arrive.

use std::collections::BTreeMap;
use std::sync::Arc;

use profiledb_storage::catalog::{Bindings, EventChange};
use profiledb_storage::codec::{Reader, Writer};
use profiledb_storage::{
    DefKind, Definition, Event, IndexTable, Ingested, Measurement, Metric, NearestFilter, Pins,
    RowNeeds, UserRange, UserRow, Value,
};

use crate::ast::{Expr, FunctionArg, Literal, Select, SelectItem, Statement};
use crate::bind::AggSpec;
use crate::error::{Error, Result};
use crate::exec::{AggState, GroupKey, Partial, combine, finish_select, local_partials};
use crate::limits::Limits;
use crate::output::Rows;
use crate::plan::{Access, SelectPlan, Shape, plan_select};
use crate::source::{DataSource, View};

/// The other machines of a database spread over several: each runs a
/// `SELECT` over the users it answers for.
pub trait Peers: Sync {
    /// Runs `select` (one `SELECT` statement's text, parameters in place)
    /// at time `now` (epoch ms: the default `AS OF`, and `now()`) on every
    /// other machine, answering each one's partial result, as [`partial`]
    /// makes it.
    ///
    /// # Errors
    /// [`Error::Peer`] naming the machine that failed and why.
    fn partials(&self, select: &str, now: i64, limits: &Limits) -> Result<Vec<Vec<u8>>>;
}

/// The first byte of a partial result: its format's version.
const VERSION: u8 = 1;

/// Runs `select` (one `SELECT` statement) at time `now` over the users of
/// `source` alone, and answers its partial result, for the machine that
/// merges it (see [`Peers`]).
///
/// # Errors
/// A statement that is not a `SELECT`, or that compares with a centroid
/// (answered by no partial form yet); otherwise as [`crate::execute`].
pub fn partial(
    source: &dyn DataSource,
    select: &str,
    now: i64,
    limits: &Limits,
) -> Result<Vec<u8>> {
    let located = |e: Error| e.locate(select);
    let Statement::Select(select_ast) =
        crate::parser::parse_statement(select).map_err(|e| located(e.into()))?
    else {
        return Err(Error::invalid(
            "a partial result is asked of a SELECT alone",
            None,
        ));
    };
    let mut bindings = source.bindings();
    for _ in 0..16 {
        let plan = distributed_plan(&select_ast, &bindings.catalog, now).map_err(located)?;
        let view = source.view(plan.pins())?;
        if !Arc::ptr_eq(view.bindings(), &bindings) {
            bindings = Arc::clone(view.bindings());
            continue;
        }
        let partials = local_partials(&plan, view.as_ref(), limits)?;
        return Ok(encode(&combine(&plan, partials)));
    }
    Err(Error::invalid(
        "the schema kept changing while the query was planned; run it again",
        None,
    ))
}

/// Plans `select` for a merge across machines, or refuses what cannot be
/// merged yet.
fn distributed_plan(
    select: &Select,
    catalog: &profiledb_storage::catalog::Catalog,
    now: i64,
) -> Result<SelectPlan> {
    let mut plan = plan_select(select, catalog, now)?;
    if plan.reads_centroids() {
        return Err(Error::invalid(
            "a similarity to a centroid reaches a node's part of a query unread: the node that took the query reads it first",
            None,
        ));
    }
    plan.by_id = true;
    Ok(plan)
}

/// Runs `select` on `source` and on every peer, merging the parts. A
/// `SELECT` without `FROM` reads no users and runs here alone.
pub(crate) fn query(
    source: &dyn DataSource,
    peers: &dyn Peers,
    select: &Select,
    limits: &Limits,
) -> Result<Rows> {
    let now = source.now();
    let rewritten = with_target_vectors(source, peers, select, limits)?;
    let asked = select;
    let select = rewritten.as_ref().unwrap_or(asked);
    let mut bindings = source.bindings();
    for _ in 0..16 {
        let plan = distributed_plan(select, &bindings.catalog, now)?;
        let view = source.view(plan.pins())?;
        if !Arc::ptr_eq(view.bindings(), &bindings) {
            bindings = Arc::clone(view.bindings());
            continue;
        }
        if matches!(plan.access, Access::One) {
            return crate::exec::run_select(&plan, view.as_ref(), limits, None);
        }
        let text = select.to_string();
        let (local, remote) = rayon::join(
            || local_partials(&plan, view.as_ref(), limits),
            || peers.partials(&text, now, limits),
        );
        let mut partials = local?;
        for bytes in remote? {
            partials.push(decode(&plan, &bytes)?);
        }
        let mut rows = finish_select(&plan, partials, limits)?;
        if rewritten.is_some() {
            // Columns are named as asked, not with users' vectors put in.
            let named = plan_select(asked, &bindings.catalog, now)?;
            for (c, n) in rows.columns.iter_mut().zip(&named.columns) {
                c.name.clone_from(&n.name);
            }
        }
        return Ok(rows);
    }
    Err(Error::invalid(
        "the schema kept changing while the query was planned; run it again",
        None,
    ))
}

/// `select` with each similarity to a user (`cosine(taste, 'u1')`) or to
/// a centroid (`cosine(taste, centroid(taste, seg))`) given that vector as
/// an array literal (`NULL` for a centroid of no members), read across the
/// machines as of the query's time: every machine's part then compares with
/// the same vector, whichever machines hold the user or the members. A
/// centroid is the members' `avg()`, which merges each machine's sums.
/// `None` when it compares with neither.
fn with_target_vectors(
    source: &dyn DataSource,
    peers: &dyn Peers,
    select: &Select,
    limits: &Limits,
) -> Result<Option<Select>> {
    if targets(select).is_empty() {
        return Ok(None);
    }
    // Spans into the statement's own text, which is what peers are sent.
    let mut text = select.to_string();
    let parsed = reparse(&text)?;
    let mut found = targets(&parsed);
    found.sort_by_key(|t| std::cmp::Reverse(t.span.start));
    let as_of = parsed
        .as_of
        .as_ref()
        .map(|e| format!(" AS OF {e}"))
        .unwrap_or_default();
    for t in found {
        let (read, params) = match &t.of {
            Of::User(user) => (
                format!("SELECT {} FROM users WHERE id = $1{as_of}", t.vector),
                vec![Value::String(user.clone())],
            ),
            Of::Centroid(segment) => (
                format!(
                    "SELECT avg({}) FROM users WHERE IN SEGMENT {segment}{as_of}",
                    t.vector
                ),
                Vec::new(),
            ),
        };
        let read = match crate::parser::parse_script_with(&read, &params)
            .map_err(Error::from)?
            .pop()
        {
            Some((Statement::Select(s), _)) => s,
            _ => return Err(Error::invalid("reading a vector to compare with", None)),
        };
        let rows = query(source, peers, &read, limits)?;
        let literal = match (rows.rows.first().and_then(|r| r.first()), &t.of) {
            (Some(Value::Vector(v)), _) => {
                let items: Vec<String> = v.iter().map(|x| format!("{:?}", f64::from(*x))).collect();
                format!("[{}]", items.join(", "))
            }
            (None, Of::User(user)) => {
                return Err(Error::Unknown {
                    kind: "user",
                    name: user.clone(),
                    suggestion: None,
                    at: crate::error::At::none(),
                });
            }
            // A user with no vector yet, or a centroid of no member with
            // one: every score is NULL, as on one machine.
            _ => "NULL".to_owned(),
        };
        if text.get(t.span.end.saturating_sub(1)..t.span.end) != Some(")")
            && matches!(t.of, Of::Centroid(_))
        {
            return Err(Error::invalid(
                format!("reading a centroid to compare with: unexpected text {text}"),
                None,
            ));
        }
        text.replace_range(t.span.start..t.span.end, &literal);
    }
    reparse(&text).map(Some)
}

/// What a similarity in a query compares with, to be read across machines.
struct TargetRead {
    /// The span of the target (the user id, or the `centroid(…)` call).
    span: crate::error::Span,
    /// The vector's name (for a centroid, the one its members are averaged by).
    vector: String,
    of: Of,
}

enum Of {
    /// A user's vector: the user id.
    User(String),
    /// The centroid of a segment's members: the segment's name, as written.
    Centroid(String),
}

/// Each similarity to a user or a centroid in `select`.
fn targets(select: &Select) -> Vec<TargetRead> {
    let mut exprs: Vec<&Expr> = Vec::new();
    for item in &select.projection {
        if let SelectItem::Expr { expr, .. } = item {
            exprs.push(expr);
        }
    }
    exprs.extend(select.selection.iter());
    exprs.extend(select.group_by.iter());
    exprs.extend(select.having.iter());
    exprs.extend(select.order_by.iter().map(|o| &o.expr));
    let mut found = Vec::new();
    while let Some(e) = exprs.pop() {
        if let Expr::Function { name, args } = e
            && ["cosine", "dot", "l2_distance"]
                .iter()
                .any(|f| name.value.eq_ignore_ascii_case(f))
            && let [
                FunctionArg::Expr(Expr::Column(vector)),
                FunctionArg::Expr(target),
            ] = args.as_slice()
        {
            match target {
                Expr::Literal(Literal::String(user), loc) => found.push(TargetRead {
                    span: loc.0,
                    vector: vector.to_string(),
                    of: Of::User(user.clone()),
                }),
                Expr::Function { name, args } if name.value.eq_ignore_ascii_case("centroid") => {
                    if let [
                        FunctionArg::Expr(Expr::Column(members_vector)),
                        FunctionArg::Expr(Expr::Column(segment)),
                    ] = args.as_slice()
                    {
                        // From the call's name to the `)` after its last
                        // argument (in the statement's own text, that is
                        // the next character).
                        let end = segment.span().end + 1;
                        found.push(TargetRead {
                            span: crate::error::Span {
                                start: name.span().start,
                                end,
                            },
                            vector: members_vector.to_string(),
                            of: Of::Centroid(segment.to_string()),
                        });
                    }
                }
                _ => {}
            }
        }
        exprs.extend(e.children());
    }
    found
}

/// Runs the `SELECT` of `text` on `source` and every peer, merging the
/// parts: for work that several queries make up (a clustering's steps).
pub(crate) fn query_text(
    source: &dyn DataSource,
    peers: &dyn Peers,
    text: &str,
    limits: &Limits,
) -> Result<Rows> {
    query(source, peers, &reparse(text)?, limits)
}

/// The one `SELECT` of `text`.
fn reparse(text: &str) -> Result<Select> {
    match crate::parser::parse_script(text)
        .map_err(Error::from)?
        .pop()
    {
        Some((Statement::Select(s), _)) => Ok(*s),
        _ => Err(Error::invalid(
            format!("expected a SELECT to send to other machines: {text}"),
            None,
        )),
    }
}

/// Writes a partial result.
pub(crate) fn encode(partial: &Partial) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION);
    match partial {
        Partial::Rows(rows) => {
            w.u8(0);
            w.u64(rows.len() as u64);
            for (keys, out) in rows {
                values(&mut w, keys);
                values(&mut w, out);
            }
        }
        Partial::Groups(groups) => {
            w.u8(1);
            w.u64(groups.len() as u64);
            for (key, states) in groups {
                values(&mut w, &key.0);
                w.u32(states.len() as u32);
                for s in states {
                    state(&mut w, s);
                }
            }
        }
    }
    w.finish()
}

fn values(w: &mut Writer, vs: &[Value]) {
    w.u32(vs.len() as u32);
    for v in vs {
        v.encode_compact(w);
    }
}

fn state(w: &mut Writer, s: &AggState) {
    match s {
        AggState::Count(n) => {
            w.u8(0);
            w.i64(*n);
        }
        AggState::Sum { int, float, any } => {
            w.u8(1);
            w.u8(u8::from(int.is_some()));
            w.i64(int.unwrap_or(0));
            w.f64(*float);
            w.u8(u8::from(*any));
        }
        AggState::Avg { sum, n } => {
            w.u8(2);
            w.f64(*sum);
            w.u64(*n);
        }
        AggState::Extreme(v) => {
            w.u8(3);
            values(w, v.as_slice());
        }
        AggState::Distinct(set) => {
            w.u8(4);
            w.u64(set.len() as u64);
            for k in set {
                values(w, &k.0);
            }
        }
        AggState::Moments { n, mean, m2 } => {
            w.u8(5);
            w.u64(*n);
            w.f64(*mean);
            w.f64(*m2);
        }
        AggState::Vectors { sum, n } => {
            w.u8(7);
            w.u64(*n);
            w.u64(sum.len() as u64);
            for x in sum {
                w.f64(*x);
            }
        }
        AggState::Values(xs) => {
            w.u8(6);
            w.u64(xs.len() as u64);
            for x in xs {
                w.f64(*x);
            }
        }
    }
}

/// Reads a partial result of `plan`, checking that its shape is the plan's:
/// as many sort keys, columns, grouping keys and aggregate states, each
/// state of its aggregate's kind.
pub(crate) fn decode(plan: &SelectPlan, bytes: &[u8]) -> Result<Partial> {
    decode_checked(plan, bytes).map_err(|e| {
        Error::invalid(
            format!("a node's partial result does not decode: {e}"),
            None,
        )
    })
}

fn decode_checked(plan: &SelectPlan, bytes: &[u8]) -> Result<Partial, String> {
    let mut r = Reader::new(bytes);
    let e = |e: profiledb_storage::DecodeError| e.0;
    let version = r.u8().map_err(e)?;
    if version != VERSION {
        return Err(format!("format version {version}, expected {VERSION}"));
    }
    // Lengths are checked against what is left, so no count allocates
    // beyond the bytes that back it.
    let count = |r: &mut Reader<'_>| -> Result<usize, String> {
        let n = r.u64().map_err(e)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= r.remaining())
            .ok_or_else(|| format!("a count of {n} with {} bytes left", r.remaining()))
    };
    let read_values = |r: &mut Reader<'_>, want: Option<usize>| -> Result<Vec<Value>, String> {
        let n = r.u32().map_err(e)? as usize;
        if want.is_some_and(|w| w != n) || n > r.remaining() {
            return Err(format!("{n} values where {want:?} were expected"));
        }
        (0..n).map(|_| Value::decode(r).map_err(e)).collect()
    };
    let kind = r.u8().map_err(e)?;
    let out = match (kind, &plan.shape) {
        (0, Shape::Rows { exprs, .. }) => {
            let n = count(&mut r)?;
            let nkeys = plan.sort_desc().len();
            let mut rows = Vec::with_capacity(n);
            for _ in 0..n {
                let keys = read_values(&mut r, Some(nkeys))?;
                let out = read_values(&mut r, Some(exprs.len()))?;
                rows.push((keys, out));
            }
            Partial::Rows(rows)
        }
        // A part with no rows at all answers no groups.
        (0, Shape::Groups { .. }) => {
            if count(&mut r)? != 0 {
                return Err("rows where groups were expected".into());
            }
            Partial::Groups(BTreeMap::new())
        }
        (1, Shape::Groups { keys, aggs, .. }) => {
            let n = count(&mut r)?;
            let mut groups = BTreeMap::new();
            for _ in 0..n {
                let key = GroupKey(read_values(&mut r, Some(keys.len()))?);
                let k = r.u32().map_err(e)? as usize;
                if k != aggs.len() {
                    return Err(format!("{k} aggregate states, expected {}", aggs.len()));
                }
                let states = aggs
                    .iter()
                    .map(|spec| read_state(&mut r, spec))
                    .collect::<Result<Vec<_>, String>>()?;
                groups.insert(key, states);
            }
            Partial::Groups(groups)
        }
        (k, _) => return Err(format!("a result of kind {k} does not fit the query")),
    };
    r.end().map_err(e)?;
    Ok(out)
}

fn read_state(r: &mut Reader<'_>, spec: &AggSpec) -> Result<AggState, String> {
    let e = |e: profiledb_storage::DecodeError| e.0;
    let tag = r.u8().map_err(e)?;
    let state = match tag {
        0 => AggState::Count(r.i64().map_err(e)?),
        1 => {
            let has = r.u8().map_err(e)? != 0;
            let int = r.i64().map_err(e)?;
            AggState::Sum {
                int: has.then_some(int),
                float: r.f64().map_err(e)?,
                any: r.u8().map_err(e)? != 0,
            }
        }
        2 => AggState::Avg {
            sum: r.f64().map_err(e)?,
            n: r.u64().map_err(e)?,
        },
        3 => {
            let n = r.u32().map_err(e)?;
            match n {
                0 => AggState::Extreme(None),
                1 => AggState::Extreme(Some(Value::decode(r).map_err(e)?)),
                n => return Err(format!("an extreme of {n} values")),
            }
        }
        4 => {
            let n = r.u64().map_err(e)?;
            if n > r.remaining() as u64 {
                return Err(format!(
                    "{n} distinct values with {} bytes left",
                    r.remaining()
                ));
            }
            let mut set = std::collections::BTreeSet::new();
            for _ in 0..n {
                let k = r.u32().map_err(e)?;
                if k != 1 {
                    return Err(format!("a distinct value of {k} parts"));
                }
                set.insert(GroupKey(vec![Value::decode(r).map_err(e)?]));
            }
            AggState::Distinct(set)
        }
        5 => AggState::Moments {
            n: r.u64().map_err(e)?,
            mean: r.f64().map_err(e)?,
            m2: r.f64().map_err(e)?,
        },
        6 => {
            let n = r.u64().map_err(e)?;
            if n > (r.remaining() / 8) as u64 {
                return Err(format!("{n} values with {} bytes left", r.remaining()));
            }
            let xs = (0..n)
                .map(|_| r.f64().map_err(e))
                .collect::<Result<Vec<f64>, String>>()?;
            AggState::Values(xs)
        }
        7 => {
            let n = r.u64().map_err(e)?;
            let dim = r.u64().map_err(e)?;
            if dim > (r.remaining() / 8) as u64 {
                return Err(format!(
                    "a vector sum of {dim} elements with {} bytes left",
                    r.remaining()
                ));
            }
            let sum = (0..dim)
                .map(|_| r.f64().map_err(e))
                .collect::<Result<Vec<f64>, String>>()?;
            AggState::Vectors { sum, n }
        }
        t => return Err(format!("unknown aggregate state {t}")),
    };
    // Each aggregate's state is of the one kind it starts as.
    if std::mem::discriminant(&state) != std::mem::discriminant(&AggState::new(spec)) {
        return Err(format!("a state of kind {tag} for {:?}", spec.func));
    }
    Ok(state)
}

/// One machine's part of a database spread over several: a [`DataSource`]
/// that reads, of `source`'s users, only those `keep` admits (a machine may
/// hold users it does not answer for: standby copies, partitions being
/// handed over), at one fixed time, and reaches the rest through its
/// [`Peers`]. The catalog and events pass through to `source`; a change to
/// one user (`UPDATE`'s attributes, a delete) is made only to a user `keep`
/// admits: the others are other parts' to change.
pub struct Part<'a> {
    source: &'a dyn DataSource,
    keep: Option<&'a (dyn Fn(&str) -> bool + Sync)>,
    peers: Option<&'a dyn Peers>,
    changed: Option<&'a (dyn Fn(&str) + Sync)>,
    now: i64,
}

impl std::fmt::Debug for Part<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("keep", &self.keep.is_some())
            .field("peers", &self.peers.is_some())
            .field("changed", &self.changed.is_some())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> Part<'a> {
    /// All of `source`'s users, at time `now` (every part of one query reads
    /// at the same time), with no peers.
    pub fn new(source: &'a dyn DataSource, now: i64) -> Part<'a> {
        Part {
            source,
            keep: None,
            peers: None,
            changed: None,
            now,
        }
    }

    /// Calls `changed` with each user whose attributes a statement sets, or
    /// whom it deletes (one that existed), among those the part keeps: for
    /// a machine to count the users a change reached in each of its
    /// partitions.
    #[must_use]
    pub fn on_change(mut self, changed: &'a (dyn Fn(&str) + Sync)) -> Part<'a> {
        self.changed = Some(changed);
        self
    }

    /// Reads only the users `keep` admits.
    #[must_use]
    pub fn keeping(mut self, keep: &'a (dyn Fn(&str) -> bool + Sync)) -> Part<'a> {
        self.keep = Some(keep);
        self
    }

    /// Runs queries on `peers` too, merging their parts.
    #[must_use]
    pub fn with_peers(mut self, peers: &'a dyn Peers) -> Part<'a> {
        self.peers = Some(peers);
        self
    }

    fn keeps(&self, user: &str) -> bool {
        self.keep.is_none_or(|k| k(user))
    }
}

type StorageResult<T> = profiledb_storage::Result<T>;

impl DataSource for Part<'_> {
    fn bindings(&self) -> Arc<Bindings> {
        self.source.bindings()
    }
    fn define(&self, def: Definition) -> StorageResult<()> {
        self.source.define(def)
    }
    fn replace(&self, def: Definition) -> StorageResult<()> {
        self.source.replace(def)
    }
    fn drop_item(&self, kind: DefKind, name: &str) -> StorageResult<()> {
        self.source.drop_item(kind, name)
    }
    fn ingest(&self, events: &[Event]) -> StorageResult<Ingested> {
        self.source.ingest(events)
    }
    fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> StorageResult<()> {
        if !self.keeps(user) {
            return Ok(());
        }
        self.source.set_attributes(user, ts, values)?;
        if let Some(changed) = self.changed {
            changed(user);
        }
        Ok(())
    }
    fn delete_user(&self, user: &str) -> StorageResult<bool> {
        if !self.keeps(user) {
            return Ok(false);
        }
        let existed = self.source.delete_user(user)?;
        if existed && let Some(changed) = self.changed {
            changed(user);
        }
        Ok(existed)
    }
    fn set_history(&self, ms: i64) -> StorageResult<()> {
        self.source.set_history(ms)
    }
    fn set_user_ttl(&self, ms: i64) -> StorageResult<()> {
        self.source.set_user_ttl(ms)
    }
    fn alter_in_place(&self, def: &Definition) -> StorageResult<()> {
        self.source.alter_in_place(def)
    }
    fn change_events(&self, change: EventChange) -> StorageResult<()> {
        self.source.change_events(change)
    }
    fn history_cutoff(&self) -> StorageResult<Option<i64>> {
        self.source.history_cutoff()
    }
    fn vacuum(&self, deadline: Option<std::time::Instant>) -> StorageResult<bool> {
        self.source.vacuum(deadline)
    }
    fn view(&self, pins: Pins) -> StorageResult<Box<dyn View + '_>> {
        let inner = self.source.view(pins)?;
        Ok(match self.keep {
            None => inner,
            Some(_) => Box::new(PartView { inner, part: self }),
        })
    }
    fn analyze_index(
        &self,
        name: &str,
        metric: Metric,
        k: usize,
        queries: usize,
        probes: Option<usize>,
        deadline: Option<std::time::Instant>,
    ) -> StorageResult<Measurement> {
        self.source
            .analyze_index(name, metric, k, queries, probes, deadline)
    }
    fn now(&self) -> i64 {
        self.now
    }
    fn peers(&self) -> Option<&dyn Peers> {
        self.peers
    }
}

/// A view of a part's users alone.
struct PartView<'a> {
    inner: Box<dyn View + 'a>,
    part: &'a Part<'a>,
}

impl View for PartView<'_> {
    fn bindings(&self) -> &Arc<Bindings> {
        self.inner.bindings()
    }
    fn get(&self, user: &str, needs: &RowNeeds) -> StorageResult<Option<UserRow>> {
        if self.part.keeps(user) {
            self.inner.get(user, needs)
        } else {
            Ok(None)
        }
    }
    fn rows_as_of(
        &self,
        user: &str,
        asks: &[(i64, &RowNeeds)],
        emit: &mut dyn FnMut(usize, Option<&UserRow>) -> StorageResult<()>,
    ) -> StorageResult<()> {
        if self.part.keeps(user) {
            self.inner.rows_as_of(user, asks, emit)
        } else {
            (0..asks.len()).try_for_each(|i| emit(i, None))
        }
    }
    fn partitions(&self, n: usize) -> StorageResult<Vec<UserRange>> {
        self.inner.partitions(n)
    }
    fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> StorageResult<()> {
        self.inner.scan(range, needs, &mut |row| {
            !self.part.keeps(&row.user) || visit(row)
        })
    }
    /// The `k` nearest of the part's users: the part's own rule admits a
    /// user before the query's filter does, inside the ranking, so that
    /// other users ranking high never leave the part fewer than `k`.
    fn nearest(
        &self,
        def: u32,
        query: &[f32],
        metric: Metric,
        k: usize,
        filter: &NearestFilter<'_>,
    ) -> Vec<(String, f64)> {
        let inner = filter.keep;
        let admit = |id: &str, row: Option<&profiledb_storage::UserRow>| {
            self.part.keeps(id) && inner.is_none_or(|f| f(id, row))
        };
        let filter = NearestFilter {
            attribute: filter.attribute,
            keep: Some(&admit),
            users: filter.users,
            exact: filter.exact,
            probes: filter.probes,
        };
        self.inner.nearest(def, query, metric, k, &filter)
    }
    /// No table: the index holds users the part does not read.
    fn vectors(&self, _def: u32) -> Option<&IndexTable> {
        None
    }
}
