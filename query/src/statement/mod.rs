//! Running statements: the entry points and the dispatch on a statement's
//! kind, and `SELECT`. Each kind runs in a file of its own: [`ddl`]
//! (`CREATE`, `DROP`), [`dml`] (`INSERT`, `UPDATE`, `DELETE`), [`show`]
//! (`SHOW`, `DESCRIBE`) and [`explain`]; clustering is `crate::cluster`.

use std::sync::Arc;

use profiledb_storage::DefKind;

use crate::ast::Select;
use crate::ast::Statement;
use crate::bind::unknown;
use crate::error::{At, Error, Result, Span};
use crate::exec::run_select;
use crate::limits::Limits;
use crate::output::{Column, Output, RowSink, Rows, Type};
use crate::parser::parse_script_with;
use crate::plan::plan_select;
use crate::source::{DataSource, View};
use crate::{cluster, similarity};

mod at;
mod buckets;
mod ddl;
mod dml;
mod explain;
pub(crate) mod index;
mod show;

pub use at::rows_as_of;
use ddl::{altered, change_events, def_kind, definition, drop_item, field_at, name_is_free};
use dml::{insert, matching_users, update};
use explain::explain;
use show::{describe, ident, show};

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
    execute_params(source, sql, &[], limits, permission)
}

/// As [`execute_as`], with bind parameters: `$1` in `sql` is `params[0]`,
/// and so on, each put in place as a value, never as text to parse (see
/// [`crate::parser::parse_script_with`]).
///
/// # Errors
/// As [`execute_as`]; a `$n` without a parameter, a parameter not used, or
/// one of a type no literal has, naming the parameter.
pub fn execute_params(
    source: &dyn DataSource,
    sql: &str,
    params: &[profiledb_storage::Value],
    limits: &Limits,
    permission: Permission,
) -> Result<Vec<Output>> {
    execute_script(source, sql, params, limits, permission, None)
}

/// As [`execute_params`], with the last statement's rows handed to `sink`
/// part by part as they are scanned, when that statement is a plain scan
/// (see [`RowSink`]): its [`Rows`] then hold none. Earlier statements'
/// outputs are returned as usual.
///
/// # Errors
/// As [`execute_params`], and the sink's own errors.
pub fn execute_params_into(
    source: &dyn DataSource,
    sql: &str,
    params: &[profiledb_storage::Value],
    limits: &Limits,
    permission: Permission,
    sink: &dyn RowSink,
) -> Result<Vec<Output>> {
    execute_script(source, sql, params, limits, permission, Some(sink))
}

/// [`execute_params`], the last statement's rows to `sink` when given.
fn execute_script(
    source: &dyn DataSource,
    sql: &str,
    params: &[profiledb_storage::Value],
    limits: &Limits,
    permission: Permission,
    sink: Option<&dyn RowSink>,
) -> Result<Vec<Output>> {
    let named = |e: Error| at_param(e, sql, params);
    let statements =
        parse_script_with(sql, params).map_err(|e| named(Error::from(e)).locate(sql))?;
    if permission == Permission::ReadOnly
        && let Some((_, span)) = statements.iter().find(|(s, _)| !s.is_read_only())
    {
        return Err(Error::ReadOnly {
            at: At::span(*span),
        }
        .locate(sql));
    }
    let mut out = Vec::with_capacity(statements.len());
    for (i, (stmt, _)) in statements.iter().enumerate() {
        let sink = sink.filter(|_| i + 1 == statements.len());
        out.push(run_into(source, stmt, limits, sink).map_err(|e| named(e).locate(sql))?);
    }
    Ok(out)
}

/// Runs `CREATE SEGMENTS … FROM CLUSTER …` (`sql`, one statement, with
/// `params`) with the clustering `centroids` made already, rather than
/// clustering here: across a cluster's nodes, one clustering over every
/// node's users is made once and carried with the statement, so that each
/// node defines the same segments. `centroids` must be as many as the
/// statement asks for, each of its vector's dimension.
///
/// # Errors
/// Another statement; a name in use; an unknown vector; centroids that do
/// not fit the statement.
pub fn create_segments_from(
    source: &dyn DataSource,
    sql: &str,
    params: &[profiledb_storage::Value],
    centroids: Vec<Vec<f32>>,
) -> Result<Output> {
    let statements = parse_script_with(sql, params).map_err(|e| Error::from(e).locate(sql))?;
    let [(stmt @ Statement::CreateSegments { name, cluster: c }, _)] = statements.as_slice() else {
        return Err(Error::invalid(
            "a clustering made already goes with one CREATE SEGMENTS … FROM CLUSTER statement",
            None,
        ));
    };
    let run = || -> Result<Output> {
        let bindings = source.bindings();
        let catalog = &bindings.catalog;
        name_is_free(catalog, name)?;
        let def = cluster::clustered_vector(catalog, c)?;
        if centroids.len() as u64 != c.k || centroids.iter().any(|v| v.len() != def.dim as usize) {
            return Err(Error::invalid(
                format!(
                    "the clustering made for this statement has {} centroids of dimensions {:?}; it asks for {} of dimension {}",
                    centroids.len(),
                    centroids
                        .iter()
                        .map(Vec::len)
                        .collect::<std::collections::BTreeSet<_>>(),
                    c.k,
                    def.dim
                ),
                None,
            ));
        }
        let clusters = cluster::Clusters {
            vector: def.name.clone(),
            clusters: centroids.into_iter().map(|v| (0, v)).collect(),
        };
        define_segments(source, name, clusters, stmt)
    };
    run().map_err(|e| e.locate(sql))
}

/// Defines the segment group `name` of `clusters`, which `stmt` made.
fn define_segments(
    source: &dyn DataSource,
    name: &crate::ast::Ident,
    clusters: cluster::Clusters,
    stmt: &Statement,
) -> Result<Output> {
    let n = clusters.clusters.len() as u64;
    let def = cluster::segment_group(&name.value, clusters, stmt.to_string());
    source.define(def).map_err(|e| storage_at(e, name.span()))?;
    Ok(Output::counted("CREATE SEGMENTS", n))
}

/// `e`, saying which parameter it is at when it is at one.
fn at_param(e: Error, sql: &str, params: &[profiledb_storage::Value]) -> Error {
    match (params.is_empty(), e.at().and_then(|a| a.span)) {
        (false, Some(span)) => match param_at(sql, span) {
            Some(n) if !e.message().contains(&format!("${n}")) => {
                Error::invalid(format!("parameter ${n}: {}", e.message()), Some(span))
            }
            _ => e,
        },
        _ => e,
    }
}

/// The parameter `$n` written exactly at `span` of `sql`, if one is.
fn param_at(sql: &str, span: Span) -> Option<u32> {
    let text = sql.get(span.start..span.end)?;
    text.strip_prefix('$')?.parse().ok()
}

/// Runs one parsed statement. Error spans index the text it was parsed from.
///
/// # Errors
/// Unknown names, type mismatches, invalid definitions and storage failures.
pub fn run(source: &dyn DataSource, stmt: &Statement, limits: &Limits) -> Result<Output> {
    run_into(source, stmt, limits, None)
}

/// [`run`], a plain scan's rows to `sink` when given (see [`RowSink`]).
fn run_into(
    source: &dyn DataSource,
    stmt: &Statement,
    limits: &Limits,
    sink: Option<&dyn RowSink>,
) -> Result<Output> {
    match stmt {
        Statement::CreateAttribute { name, .. }
        | Statement::CreateFeature { name, .. }
        | Statement::CreateWindow { name, .. }
        | Statement::CreateVector { name, .. }
        | Statement::CreateSegment { name, .. } => {
            let def = definition(source, stmt, false)?;
            let kind = def.kind();
            source
                .define(def)
                .map_err(|e| field_at(e, stmt, name.span()))?;
            Ok(Output::done(format!("CREATE {}", keyword(kind))))
        }
        Statement::CreateOrReplace(inner) => {
            let name = match &**inner {
                Statement::CreateAttribute { name, .. }
                | Statement::CreateFeature { name, .. }
                | Statement::CreateWindow { name, .. }
                | Statement::CreateVector { name, .. }
                | Statement::CreateSegment { name, .. } => name,
                _ => return Err(Error::invalid("CREATE OR REPLACE of what?", None)),
            };
            let def = definition(source, inner, true)?;
            let kind = def.kind();
            source
                .replace(def)
                .map_err(|e| field_at(e, inner, name.span()))?;
            Ok(Output::done(format!("CREATE OR REPLACE {}", keyword(kind))))
        }
        Statement::Alter {
            kind,
            name,
            setting,
        } => {
            let (def, in_place) = altered(&source.bindings().catalog, *kind, name, setting)?;
            let dk = def.kind();
            if in_place {
                source.alter_in_place(&def)
            } else {
                source.replace(def)
            }
            .map_err(|e| storage_at(e, name.span()))?;
            Ok(Output::done(format!("ALTER {}", keyword(dk))))
        }
        Statement::CreateIfNotExists(inner) => {
            let name = match &**inner {
                Statement::CreateAttribute { name, .. }
                | Statement::CreateFeature { name, .. }
                | Statement::CreateWindow { name, .. }
                | Statement::CreateVector { name, .. }
                | Statement::CreateSegment { name, .. }
                | Statement::CreateIndex { name, .. }
                | Statement::CreateSegments { name, .. } => name,
                Statement::CreateEvent { name, .. } => {
                    if source.bindings().catalog.event(&name.value).is_some() {
                        return Ok(Output::done(format!(
                            "CREATE EVENT skipped: event type '{}' is declared",
                            name.value
                        )));
                    }
                    return run(source, inner, limits);
                }
                _ => return Err(Error::invalid("CREATE IF NOT EXISTS of what?", None)),
            };
            let taken = {
                let catalog = &source.bindings().catalog;
                catalog
                    .kind_of(&name.value)
                    .map(|k| k.name())
                    .or_else(|| catalog.segment_group(&name.value).map(|_| "segment group"))
            };
            match taken {
                Some(kind) => Ok(Output::done(format!(
                    "{} skipped: {kind} '{}' exists",
                    create_tag(inner),
                    name.value
                ))),
                None => run(source, inner, limits),
            }
        }
        Statement::Drop {
            kind,
            name,
            if_exists,
        } => {
            if *if_exists && source.bindings().catalog.kind_of(&name.value) != Some(def_kind(*kind))
            {
                return Ok(Output::done(format!(
                    "DROP {} skipped: no {} '{}'",
                    kind.keyword(),
                    def_kind(*kind).name(),
                    name.value
                )));
            }
            drop_item(source, *kind, name)
        }
        Statement::CreateEvent { .. }
        | Statement::AlterEventAddField { .. }
        | Statement::DropEvent { .. } => change_events(source, stmt),
        Statement::ShowEvents => Ok(Output::Rows(show::events(&source.bindings().catalog))),
        Statement::Buckets {
            window,
            user,
            span,
            fill,
            as_of,
        } => buckets::buckets(source, window, user, span, *fill, as_of.as_ref(), limits)
            .map(Output::Rows),
        Statement::DescribeEvent { name } => {
            show::describe_event(&source.bindings().catalog, name).map(Output::Rows)
        }
        Statement::Show { kind } => Ok(Output::Rows(show(&source.bindings().catalog, *kind))),
        Statement::Describe { name } => {
            let bindings = source.bindings();
            match bindings.catalog.index(&name.value) {
                Some(def) => index::describe(source, def),
                None => describe(&bindings.catalog, name),
            }
            .map(Output::Rows)
        }
        Statement::CreateIndex {
            name,
            table,
            method,
            vector,
            with,
        } => index::create(source, name, table, method, vector, with),
        Statement::DropIndex { name, if_exists } => index::drop(source, name, *if_exists),
        Statement::ShowIndexes => index::show(source).map(Output::Rows),
        Statement::AnalyzeIndex { name, with } => {
            index::analyze(source, name, with, limits).map(Output::Rows)
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
        Statement::Select(select) => query(source, select, limits, sink).map(Output::Rows),
        Statement::Explain(inner) => explain(source, inner),
        Statement::CreateSegments { .. } if source.peers().is_some() => Err(Error::invalid(
            "CREATE SEGMENTS … FROM CLUSTER is a change: send it to the router, which carries it through the log",
            None,
        )),
        Statement::Cluster(c) => {
            // One row per cluster: refuse before the work, not after.
            limits.check_rows(usize::try_from(c.k).unwrap_or(usize::MAX))?;
            let clusters = match source.peers() {
                Some(peers) => cluster::cluster_across(source, peers, c, limits)?,
                None => cluster::cluster(source, c, limits)?,
            };
            Ok(Output::Rows(cluster::rows(clusters)))
        }
        Statement::CreateSegments { name, cluster: c } => {
            name_is_free(&source.bindings().catalog, name)?;
            let clusters = cluster::cluster(source, c, limits)?;
            define_segments(source, name, clusters, stmt)
        }
        Statement::Vacuum => {
            if !source.vacuum(limits.deadline)? {
                // Stopped at the deadline; the purge stays due.
                limits.check()?;
            }
            Ok(Output::done("VACUUM"))
        }
        Statement::SetHistory { horizon } => {
            source
                .set_history(horizon.ms)
                .map_err(|e| storage_at(e, horizon.loc.0))?;
            Ok(Output::done("ALTER DATABASE"))
        }
        Statement::SetUserTtl { ttl } => {
            source
                .set_user_ttl(ttl.ms)
                .map_err(|e| storage_at(e, ttl.loc.0))?;
            Ok(Output::done("ALTER DATABASE"))
        }
        Statement::ShowHistory => Ok(Output::Rows(show::history(
            &source.bindings().catalog,
            source.history_cutoff()?,
        ))),
        Statement::DropSegments { name, if_exists } => {
            let bindings = source.bindings();
            let catalog = &bindings.catalog;
            if *if_exists && catalog.segment_group(&name.value).is_none() {
                return Ok(Output::done(format!(
                    "DROP SEGMENTS skipped: no segment group '{}'",
                    name.value
                )));
            }
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
///
/// A plain scan's rows go to `sink` when given, not into the rows returned
/// (see [`RowSink`]); a query across a cluster's machines returns them.
fn query(
    source: &dyn DataSource,
    select: &Select,
    limits: &Limits,
    sink: Option<&dyn RowSink>,
) -> Result<Rows> {
    if let Some(peers) = source.peers() {
        return crate::distributed::query(source, peers, select, limits);
    }
    let now = source.now();
    let mut bindings = source.bindings();
    // Each attempt loses only to a schema change in between: a few suffice.
    for _ in 0..16 {
        let prepared = Prepared::of(select, bindings, now)?;
        let view = source.view(prepared.pins())?;
        match prepared.run_into(view.as_ref(), limits, sink)? {
            Some(rows) => return Ok(rows),
            None => bindings = Arc::clone(view.bindings()),
        }
    }
    Err(Error::invalid(
        "the schema kept changing while the query was planned; run it again",
        None,
    ))
}

/// A `SELECT` planned against one catalog, to run on a view of that catalog
/// that the caller takes with [`Prepared::pins`]: so that a caller reading
/// more than the query from one view (a profile and the segments its user
/// is in) answers from one moment.
#[derive(Debug)]
pub struct Prepared {
    plan: crate::plan::SelectPlan,
    bindings: Arc<profiledb_storage::catalog::Bindings>,
}

impl Prepared {
    /// Plans `sql`, one `SELECT` with bind parameters `params` (as
    /// [`execute_params`] takes them), against `bindings`; `now` is the
    /// time of a query without `AS OF`.
    ///
    /// # Errors
    /// A statement that does not parse, is not one `SELECT`, or does not
    /// bind against the catalog; errors are located in `sql`.
    pub fn new(
        sql: &str,
        params: &[profiledb_storage::Value],
        bindings: Arc<profiledb_storage::catalog::Bindings>,
        now: i64,
    ) -> Result<Prepared> {
        let named = |e: Error| at_param(e, sql, params).locate(sql);
        let statements = parse_script_with(sql, params).map_err(|e| named(Error::from(e)))?;
        match statements.as_slice() {
            [(Statement::Select(select), _)] => Prepared::of(select, bindings, now).map_err(named),
            _ => Err(Error::invalid("expected one SELECT", None).locate(sql)),
        }
    }

    fn of(
        select: &Select,
        bindings: Arc<profiledb_storage::catalog::Bindings>,
        now: i64,
    ) -> Result<Prepared> {
        Ok(Prepared {
            plan: plan_select(select, &bindings.catalog, now)?,
            bindings,
        })
    }

    /// What the view the query runs on must hold besides the data (the
    /// vector index, when the query ranks or averages by similarity).
    pub fn pins(&self) -> profiledb_storage::Pins {
        self.plan.pins()
    }

    /// Runs the query on `view`, taken with [`Prepared::pins`] (a view
    /// taken without the vector index it names finds no neighbours);
    /// `None` when the view's catalog is not the one the query was planned
    /// against (a schema change landed in between): plan it again against
    /// the view's.
    ///
    /// # Errors
    /// As the query's execution.
    pub fn run(self, view: &dyn View, limits: &Limits) -> Result<Option<Rows>> {
        self.run_into(view, limits, None)
    }

    /// [`Prepared::run`], a plain scan's rows to `sink` when given.
    fn run_into(
        mut self,
        view: &dyn View,
        limits: &Limits,
        sink: Option<&dyn RowSink>,
    ) -> Result<Option<Rows>> {
        if !Arc::ptr_eq(view.bindings(), &self.bindings) {
            return Ok(None);
        }
        similarity::resolve(&mut self.plan, view, limits)?;
        run_select(&self.plan, view, limits, sink).map(Some)
    }
}

/// The summary a `CREATE` statement answers with, as `CREATE FEATURE`.
fn create_tag(stmt: &Statement) -> &'static str {
    match stmt {
        Statement::CreateAttribute { .. } => "CREATE ATTRIBUTE",
        Statement::CreateFeature { .. } => "CREATE FEATURE",
        Statement::CreateWindow { .. } => "CREATE WINDOW",
        Statement::CreateVector { .. } => "CREATE VECTOR",
        Statement::CreateSegment { .. } => "CREATE SEGMENT",
        Statement::CreateIndex { .. } => "CREATE INDEX",
        _ => "CREATE SEGMENTS",
    }
}

pub(super) fn keyword(kind: DefKind) -> &'static str {
    match kind {
        DefKind::Attribute => "ATTRIBUTE",
        DefKind::Feature => "FEATURE",
        DefKind::Window => "WINDOW",
        DefKind::Vector => "VECTOR",
        DefKind::Segment => "SEGMENT",
        DefKind::SegmentGroup => "SEGMENTS",
        DefKind::Index => "INDEX",
    }
}

/// A storage error about the item written at `span`, located there.
pub(super) fn storage_at(e: profiledb_storage::Error, span: Span) -> Error {
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

/// Columns of the given names and types.
pub(super) fn columns(spec: &[(&str, Type)]) -> Vec<Column> {
    spec.iter()
        .map(|(name, ty)| Column {
            name: (*name).to_owned(),
            ty: *ty,
        })
        .collect()
}

pub(super) fn text_columns(names: &[&str]) -> Vec<Column> {
    names
        .iter()
        .map(|n| Column {
            name: (*n).to_owned(),
            ty: Type::String,
        })
        .collect()
}
