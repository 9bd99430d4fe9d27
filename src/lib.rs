//! ProfileDB: an embedded database engine for dynamic user profiles.
//!
//! Behaviour events (views, purchases, clicks) update each user's state the moment
//! they arrive: decayed counters and averages that are exact even when events
//! arrive late, time-bucketed windows with retention, and embedding vectors
//! updated by EWMA or online SGD. Updates are RocksDB merge operands, so ingest
//! never reads first.
//!
//! [`Db`] is the library interface. It prints nothing and never exits the process.
//!
//! # Examples
//! ```
//! use profiledb::{Db, Definition, Event, FeatureKind, Value};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Db::open(dir.path())?;
//! let day = 86_400_000;
//! db.define(Definition::Feature {
//!     name: "spend_7d".into(),
//!     event_type: "purchase".into(),
//!     field: Some("amount".into()),
//!     kind: FeatureKind::DecayedSum { half_life_ms: 7 * day },
//! })?;
//!
//! let t0 = 1_761_991_200_000; // 2025-11-01T10:00:00Z
//! db.ingest(&[Event::new("u1", "purchase", t0).with("amount", 40.0)])?;
//! db.ingest_json(r#"{"user":"u1","type":"purchase","ts":"2025-11-01T10:00:00Z","amount":60.0}"#)?;
//!
//! // A week later, the decayed sum has halved.
//! let p = db.profile("u1", t0 + 7 * day)?.expect("u1 exists");
//! assert_eq!(p.get("spend_7d"), Some(&Value::Float(50.0)));
//!
//! db.checkpoint(dir.path().join("backup"))?;
//! assert!(db.delete_user("u1")?);
//! assert!(db.profile("u1", t0)?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

#[cfg(feature = "arrow")]
pub mod arrow;
pub mod cluster;
mod error;
#[cfg(feature = "import")]
pub mod import;
pub mod json;
#[cfg(feature = "parquet")]
pub mod parquet;
mod profiles;
mod schema;
mod threads;

use std::path::Path;

pub use error::{Error, Result};
pub use profiledb_query::{
    Column, Limits, Output, PartAt, Permission, Position, RowSink, Rows, Type, clear_interrupt,
    closest, ends_statement, interrupt, interrupted, split_statements,
};
pub use profiledb_storage::RocksEngine;
pub use profiledb_storage::catalog::{
    AttributeDef, EventChange, EventDef, FeatureDef, FieldDecl, FieldType, FilterValue, KeyedBy,
    SegmentDef, VectorDef, WindowDef,
};
pub use profiledb_storage::time::{
    check_ts, format_timestamp, now_ms, parse_duration, parse_timestamp,
};
pub use profiledb_storage::tune_malloc;
pub use profiledb_storage::{
    AttrType, Bucket, Catalog, DefKind, Definition, EngineOptions as Options, EngineStats,
    ErrorKind, Event, EventError, FeatureKind, Ingested, LogApplied, LogNote, Metric,
    NearestFilter, Pins, Profile, ReadView, RowTableStats, Status, SyncPolicy, TimeError,
    UserRange, Value, VectorRule,
};
pub use profiles::{Fetched, JsonProfiles, ProfileRead, ProfileView};
pub use schema::Schema;
pub use threads::pin_threads;

/// Fewer profiles than this are read on the caller's thread: handing them to
/// rayon's pool costs more (a wake-up of a sleeping thread) than reading them.
pub(crate) const PARALLEL_READS: usize = 16;

/// `work` over `items` cut into one chunk per core, the results in chunk
/// order (one chunk below [`PARALLEL_READS`] items). rayon's pool takes every
/// chunk and the caller waits for them.
///
/// The caller once took the first chunk itself, to spare a wake-up. On a
/// two-core virtual machine that measured slower whenever the threads had
/// slept between batches: 200 profiles paced at 100 batches a second took
/// as long on two threads as on one (1.4 ms at the median), the caller's
/// share longer than the worker's, as if the woken worker started on the
/// caller's core (the scheduler's placement beside its waker) and the two
/// shared it until a rebalance moved one. A caller that sleeps at once
/// leaves its core to a worker: 0.8–0.9 ms, and in a loop no slower
/// (`profile_read`'s `batch_200`: 495k–629k against 463k–558k profiles/s,
/// alternating runs).
///
/// # Errors
/// The first chunk's error, in chunk order.
pub(crate) fn on_cores<T, R>(items: &[T], work: impl Fn(&[T]) -> Result<R> + Sync) -> Result<Vec<R>>
where
    T: Sync,
    R: Send,
{
    if items.len() < PARALLEL_READS {
        return Ok(vec![work(items)?]);
    }
    let per = items.len().div_ceil(rayon::current_num_threads().max(1));
    let mut chunks: Vec<(&[T], Option<Result<R>>)> = items.chunks(per).map(|c| (c, None)).collect();
    let work = &work;
    rayon::in_place_scope(|s| {
        for (chunk, out) in &mut chunks {
            let chunk: &[T] = chunk;
            s.spawn(move |_| *out = Some(work(chunk)));
        }
    });
    chunks
        .into_iter()
        .map(|(_, out)| {
            out.unwrap_or_else(|| {
                Err(Error::Storage(profiledb_storage::Error::Engine(
                    "a chunk of a batch read was not run".into(),
                )))
            })
        })
        .collect()
}

/// The profiles of `users` from `view`, in order, read on every core for
/// many ([`on_cores`]).
pub(crate) fn read_all<K: profiledb_storage::kv::Kv>(
    view: &ReadView<'_, K>,
    users: &[String],
    as_of: i64,
    window_span_ms: i64,
) -> Result<Vec<Option<Profile>>> {
    let batches = on_cores(users, |batch| {
        Ok(view.profiles(batch, as_of, window_span_ms)?)
    })?;
    Ok(batches.into_iter().flatten().collect())
}

/// The storage engine over RocksDB, as [`Db::engine`] gives it.
pub type Engine = RocksEngine;

/// Decodes JSON events (one object, an array, or JSON Lines) without
/// writing them.
///
/// # Errors
/// [`Error::Storage`] with the index of the first event that does not decode
/// and the field at fault; see [`Error::rejected_event`].
pub fn decode_events(text: &str) -> Result<Vec<Event>> {
    profiledb_storage::event::events_from_json(text)
        .map_err(|(index, e)| Error::invalid_event(index, e))
}

/// [`decode_events`], event by event: each event, or why it does not
/// decode, so that a caller can set the bad ones aside.
///
/// # Errors
/// [`Error::Storage`] for a body that is an array but not JSON.
pub fn decode_each_event(text: &str) -> Result<Vec<std::result::Result<Event, EventError>>> {
    profiledb_storage::event::each_event_from_json(text).map_err(|e| Error::invalid_event(0, e))
}

/// The window span [`Db::profile`] aggregates windows over: one day.
pub const DEFAULT_WINDOW_SPAN_MS: i64 = 86_400_000;

/// An open ProfileDB database.
#[derive(Debug)]
pub struct Db {
    engine: Engine,
}

impl Db {
    /// Opens the database at `path`, creating it if missing, with default options.
    ///
    /// # Errors
    /// [`profiledb_storage::Error::Locked`] when another process holds it, and any
    /// other storage error.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(Options::new(path.as_ref()))
    }

    /// Opens a database with explicit options.
    ///
    /// # Errors
    /// As [`Db::open`].
    pub fn open_with(options: Options) -> Result<Db> {
        Ok(Db {
            engine: Engine::open(options)?,
        })
    }

    /// The storage engine, for what `Db` does not wrap. Its hooks that
    /// bypass every codec exist only with the `testing` feature.
    pub fn engine(&self) -> &RocksEngine {
        &self.engine
    }

    /// Figures for monitoring: memtables, compactions and the vector index's lag.
    pub fn stats(&self) -> EngineStats {
        self.engine.stats()
    }

    /// Compacts the database fully: merges operands, applies retention, and
    /// drops the data of deleted users and dropped definitions from disk.
    ///
    /// # Errors
    /// A storage failure.
    pub fn compact(&self) -> Result<()> {
        Ok(self.engine.compact()?)
    }

    /// The current schema.
    pub fn catalog(&self) -> Catalog {
        self.engine.catalog()
    }

    /// Adds an attribute, feature, window, vector or segment. While the
    /// database keeps an event history, a new attribute, feature, window or
    /// vector is first computed over it (backfilled).
    ///
    /// # Errors
    /// A name already in use, an invalid definition, or a write in the
    /// history the definition cannot take.
    pub fn define(&self, def: Definition) -> Result<()> {
        self.engine.define(def)?;
        Ok(())
    }

    /// Replaces the item of `def`'s name and kind (or adds it), as `CREATE
    /// OR REPLACE` does: an attribute, feature, window or vector is
    /// re-derived from the event history, atomically.
    ///
    /// # Errors
    /// As [`Db::define`]; an item of another kind with that name; history off.
    pub fn replace(&self, def: Definition) -> Result<()> {
        self.engine.replace(def)?;
        Ok(())
    }

    /// Declares an event type, adds a field to one, or drops a declaration,
    /// as `CREATE EVENT`, `ALTER EVENT … ADD FIELD` and `DROP EVENT` do.
    ///
    /// # Errors
    /// A declared (or undeclared) type, a bad field, or a field an item
    /// bound to the type reads otherwise.
    pub fn change_events(&self, change: EventChange) -> Result<()> {
        self.engine.change_events(change)?;
        Ok(())
    }

    /// Drops a schema item and its data.
    ///
    /// # Errors
    /// No item of that kind and name.
    pub fn drop_item(&self, kind: DefKind, name: &str) -> Result<()> {
        Ok(self.engine.drop_item(kind, name)?)
    }

    /// Ingests a batch of events atomically; returns how many were written.
    ///
    /// # Errors
    /// The first invalid event, by index, field and reason; nothing is written then.
    pub fn ingest(&self, events: &[Event]) -> Result<usize> {
        Ok(self.engine.ingest(events)?)
    }

    /// [`Db::ingest`], counting the events written and those skipped as
    /// duplicates: with the event history on, an event carrying an
    /// `event_id` field that its user already has an accepted event of
    /// (inside the history horizon, or earlier in the batch) is skipped, so a
    /// retried batch is never counted twice.
    ///
    /// # Errors
    /// As [`Db::ingest`]; an `event_id` that is not a non-empty string or an
    /// integer is an invalid event.
    pub fn ingest_counted(&self, events: &[Event]) -> Result<Ingested> {
        Ok(self.engine.ingest_counted(events)?)
    }

    /// [`Db::ingest_counted`] for a request that may be retried, named by
    /// `request` (the server's `Idempotency-Key`): the first request of a key
    /// writes, and a repeated one writes nothing and returns the first one's
    /// counts, with `true`. Keys are kept with the event history.
    ///
    /// # Errors
    /// As [`Db::ingest`]; a database without history, or a key that is empty
    /// or longer than 256 bytes, is an invalid argument.
    pub fn ingest_once(&self, events: &[Event], request: &str) -> Result<(Ingested, bool)> {
        Ok(self.engine.ingest_once(events, request)?)
    }

    /// Applies `events` read from partition `partition` of a log, up to and
    /// including its sequence number `seq`, atomically with that position
    /// ([`Db::log_position`]): a node that resumes from its stored position
    /// after a crash neither loses nor applies an event twice, and a
    /// redelivered batch (`seq` at or below the position) writes nothing.
    /// An event the schema does not take is skipped and returned in
    /// `rejected` (the log holds it; it cannot be refused).
    ///
    /// # Errors
    /// A storage failure; an invalid argument for a `seq` of 0.
    pub fn apply_log(&self, partition: u32, seq: u64, events: &[Event]) -> Result<LogApplied> {
        Ok(self.engine.apply_log(partition, seq, events)?)
    }

    /// [`Db::apply_log`] for several partitions (partition, sequence) in
    /// one atomic write: `events` are all of theirs.
    ///
    /// # Errors
    /// As [`Db::apply_log`]; also a partition named twice, or positions of
    /// which some were applied already and others not.
    pub fn apply_logs(&self, positions: &[(u32, u64)], events: &[Event]) -> Result<LogApplied> {
        Ok(self.engine.apply_logs(positions, events)?)
    }

    /// [`Db::apply_logs`] with each event planned under the catalog as it
    /// was at a version (`None`: today's; `versions` holds one for each
    /// event, or none): a cluster node reading a partition from before
    /// statements it applied since plans those events as the nodes that
    /// read them then did (see [`Db::note_log_entry`]).
    ///
    /// # Errors
    /// As [`Db::apply_logs`]; also `versions` of another length than `events`.
    pub fn apply_logs_at(
        &self,
        positions: &[(u32, u64)],
        events: &[Event],
        versions: &[Option<u64>],
    ) -> Result<LogApplied> {
        Ok(self.engine.apply_logs_at(positions, events, versions)?)
    }

    /// Notes what applying log entry `seq` (a cluster statement just
    /// applied, or 0 before any) left: the catalog's version now, and the
    /// place of the statement of its script it failed at, if it did.
    ///
    /// # Errors
    /// A storage failure.
    pub fn note_log_entry(&self, seq: u64, failed_at: Option<u32>) -> Result<LogNote> {
        Ok(self.engine.note_log_entry(seq, failed_at)?)
    }

    /// The notes [`Db::note_log_entry`] kept, by entry, in order.
    ///
    /// # Errors
    /// A storage failure, or a damaged note.
    pub fn log_notes(&self) -> Result<Vec<(u64, LogNote)>> {
        Ok(self.engine.log_notes()?)
    }

    /// The last sequence number of log partition `partition` that
    /// [`Db::apply_log`] applied; `None` before the first.
    ///
    /// # Errors
    /// A storage failure.
    pub fn log_position(&self, partition: u32) -> Result<Option<u64>> {
        Ok(self.engine.log_position(partition)?)
    }

    /// Drops what was applied of log positions `positions` (a cluster
    /// node's copy of partitions it no longer follows): forgets them, and
    /// deletes every user `belongs` picks, as [`Db::delete_user`] deletes
    /// one. A process killed meanwhile finds the drop in [`Db::log_drops`]
    /// and must run it again before it applies those positions anew.
    /// Returns how many users were deleted.
    ///
    /// # Errors
    /// A storage failure (the drop is then still to be run).
    pub fn drop_log_partitions(
        &self,
        positions: &[u32],
        belongs: &dyn Fn(&str) -> bool,
    ) -> Result<usize> {
        Ok(self.engine.drop_log_partitions(positions, belongs)?)
    }

    /// Keeps `outcome` as what applying entry `seq` of a log did (the
    /// cluster's statements), forgetting those of entries `keep` or more
    /// before it.
    ///
    /// # Errors
    /// A storage failure.
    pub fn put_log_outcome(&self, seq: u64, outcome: &[u8], keep: u64) -> Result<()> {
        Ok(self.engine.put_log_outcome(seq, outcome, keep)?)
    }

    /// The outcomes [`Db::put_log_outcome`] kept, by entry, in order.
    ///
    /// # Errors
    /// A storage failure.
    pub fn log_outcomes(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        Ok(self.engine.log_outcomes()?)
    }

    /// The log positions of drops ([`Db::drop_log_partitions`]) that did
    /// not finish.
    ///
    /// # Errors
    /// A storage failure.
    pub fn log_drops(&self) -> Result<Vec<u32>> {
        Ok(self.engine.log_drops()?)
    }

    /// Checks one event against the current schema without writing it.
    ///
    /// # Errors
    /// The field at fault and why, as [`Db::ingest`] would reject it.
    pub fn validate(&self, event: &Event) -> std::result::Result<(), EventError> {
        self.schema().validate(event)
    }

    /// The schema as it is now, to check events against apart from the
    /// database (a cluster's router does, before it publishes them).
    pub fn schema(&self) -> Schema {
        Schema::new(self.engine.bindings())
    }

    /// Ingests JSON events (`{"user":"u1","type":"purchase","ts":1761991200000,"amount":35.0}`),
    /// given as one object, an array, or JSON Lines, atomically.
    ///
    /// # Errors
    /// As [`Db::ingest`], and JSON that does not decode.
    pub fn ingest_json(&self, text: &str) -> Result<usize> {
        Ok(self.engine.ingest_json(text)?)
    }

    /// Sets attributes of `user` now, creating the user if needed.
    ///
    /// # Errors
    /// An unknown attribute or a value of the wrong type.
    pub fn set_attributes(&self, user: &str, values: &[(String, Value)]) -> Result<()> {
        Ok(self.engine.set_attributes(user, now_ms(), values)?)
    }

    /// The profile of `user` as of `as_of` (epoch ms), with windows aggregated over
    /// the last [`DEFAULT_WINDOW_SPAN_MS`]. `None` when the user does not exist.
    ///
    /// # Errors
    /// Corruption of a stored value, naming its column family and key.
    pub fn profile(&self, user: &str, as_of: i64) -> Result<Option<Profile>> {
        self.profile_with_span(user, as_of, DEFAULT_WINDOW_SPAN_MS)
    }

    /// The profile of `user` as of `as_of`, with windows aggregated over
    /// `[as_of − window_span_ms, as_of]`. `None` when the user does not exist.
    ///
    /// # Errors
    /// As [`Db::profile`].
    pub fn profile_with_span(
        &self,
        user: &str,
        as_of: i64,
        window_span_ms: i64,
    ) -> Result<Option<Profile>> {
        Ok(self.engine.profile(user, as_of, window_span_ms)?)
    }

    /// The profiles of `users` as of `as_of` (windows over the span back
    /// from it), in order, `None` for a user that does not exist: all read
    /// from one view of the database (one moment), on every core.
    ///
    /// # Errors
    /// As [`Db::profile`].
    pub fn profiles_with_span(
        &self,
        users: &[String],
        as_of: i64,
        window_span_ms: i64,
    ) -> Result<Vec<Option<Profile>>> {
        read_all(&self.engine.view(Pins::NONE)?, users, as_of, window_span_ms)
    }

    /// Deletes every trace of `user`; returns whether the user existed.
    ///
    /// # Errors
    /// A malformed user id, or a storage failure.
    pub fn delete_user(&self, user: &str) -> Result<bool> {
        Ok(self.engine.delete_user(user)?)
    }

    /// Purges deleted users from disk: once it returns, no file in the database
    /// directory holds a byte of a user deleted before it began. It compacts the
    /// deleted users' key ranges (the whole database after a restart, or past
    /// 10,000 deletes), so it is not free; the database also does it by itself
    /// [`Options::purge_delay`] after a delete (10 minutes by default). The
    /// statement `VACUUM` does the same.
    ///
    /// # Errors
    /// A storage failure.
    pub fn vacuum(&self) -> Result<()> {
        Ok(self.engine.vacuum()?)
    }

    /// Runs one or more statements of the query language, in order, and returns
    /// the output of the last: rows for a query, a summary (`INSERT 2`) otherwise.
    ///
    /// # Examples
    /// ```
    /// use profiledb::{Db, Value};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let db = Db::open(dir.path())?;
    /// db.execute("CREATE FEATURE purchases ON purchase AS COUNT()")?;
    /// db.execute("INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1761991200000, 35.0)")?;
    /// let out = db.execute("SELECT id, purchases FROM users")?;
    /// let rows = out.rows().expect("a query returns rows");
    /// assert_eq!(rows.rows, vec![vec![Value::String("u1".into()), Value::Int(1)]]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Query`] for a statement that does not parse, names something
    /// unknown, mismatches types or cannot run; its `Display` draws a caret under
    /// the offending text. Statements before the failing one have run.
    pub fn execute(&self, sql: &str) -> Result<Output> {
        last_output(sql, self.execute_script(sql)?)
    }

    /// Runs every statement of `sql` in order and returns each one's output.
    ///
    /// # Errors
    /// As [`Db::execute`].
    pub fn execute_script(&self, sql: &str) -> Result<Vec<Output>> {
        self.execute_with(sql, &Limits::default())
    }

    /// As [`Db::execute_script`], under a deadline and a cap on result rows.
    ///
    /// # Errors
    /// As [`Db::execute`], and [`profiledb_query::Error::Cancelled`] or
    /// [`profiledb_query::Error::TooManyRows`] past the limits.
    pub fn execute_with(&self, sql: &str, limits: &Limits) -> Result<Vec<Output>> {
        self.execute_as(sql, limits, Permission::ReadWrite)
    }

    /// As [`Db::execute_with`], for a caller with `permission`: the script is
    /// parsed once, and a read-only caller's script that would change data or
    /// schema is refused whole before any statement runs.
    ///
    /// # Errors
    /// As [`Db::execute`]; a refused script's error answers `true` to
    /// [`Error::is_read_only_refusal`].
    pub fn execute_as(
        &self,
        sql: &str,
        limits: &Limits,
        permission: Permission,
    ) -> Result<Vec<Output>> {
        self.execute_params_as(sql, &[], limits, permission)
    }

    /// Runs `sql` with bind parameters, `$1` being `params[0]` and so on,
    /// and returns the last statement's output. A parameter is a value in
    /// place of its `$n`, never SQL text:
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let db = profiledb::Db::open(dir.path())?;
    /// db.execute("CREATE FEATURE spend ON purchase AS SUM(amount)")?;
    /// db.execute_params(
    ///     "INSERT INTO purchase (user, ts, amount) VALUES ($1, $2, $3)",
    ///     &["u1".into(), 1_761_991_200_000i64.into(), 35.0.into()],
    /// )?;
    /// let out = db.execute_params("SELECT spend FROM users WHERE id = $1", &["u1".into()])?;
    /// assert_eq!(out.rows().map(|r| r.rows.len()), Some(1));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Db::execute`]; a `$n` without a parameter, a parameter the
    /// statement does not use, or one of a type no literal has (tags, maps),
    /// naming the parameter.
    pub fn execute_params(&self, sql: &str, params: &[Value]) -> Result<Output> {
        let outs =
            self.execute_params_as(sql, params, &Limits::default(), Permission::ReadWrite)?;
        last_output(sql, outs)
    }

    /// As [`Db::execute_params`], with the last statement's rows handed to
    /// `sink` part by part, on the threads that scan them, when it is a plain
    /// scan (a `SELECT` over every user, filtered or not, that neither
    /// sorts, groups, aggregates nor limits): its [`Rows`] then hold none.
    /// What `arrow::BatchSink` takes (with the `arrow` feature), so that a
    /// large result is converted and its rows freed while the scan goes on.
    ///
    /// # Errors
    /// As [`Db::execute_params`], and the sink's own errors.
    pub fn execute_params_into(
        &self,
        sql: &str,
        params: &[Value],
        sink: &dyn RowSink,
    ) -> Result<Output> {
        let outs = profiledb_query::execute_params_into(
            &self.engine,
            sql,
            params,
            &Limits::default(),
            Permission::ReadWrite,
            sink,
        )?;
        last_output(sql, outs)
    }

    /// As [`Db::execute_as`], with bind parameters ([`Db::execute_params`]).
    ///
    /// # Errors
    /// As [`Db::execute_as`] and [`Db::execute_params`].
    pub fn execute_params_as(
        &self,
        sql: &str,
        params: &[Value],
        limits: &Limits,
        permission: Permission,
    ) -> Result<Vec<Output>> {
        Ok(profiledb_query::execute_params(
            &self.engine,
            sql,
            params,
            limits,
            permission,
        )?)
    }

    /// Point-in-time rows, for training sets: the items of `select` (a
    /// select list, as after `SELECT`, e.g. `"spend, window_count(views,
    /// '1d')"`) for each (user, time) of `pairs`, as of that time. One row
    /// per pair, in the pairs' order; all NULL for a user that did not exist
    /// then. With the event history on, each row is exactly what the writes
    /// up to its time give; each user's history is read once for all its
    /// pairs, and the whole answer reads one moment of the database.
    ///
    /// # Errors
    /// A select list that does not parse or bind, or that aggregates; a time
    /// before the oldest the history answers; a storage failure.
    pub fn rows_as_of(&self, select: &str, pairs: &[(String, i64)]) -> Result<Rows> {
        Ok(profiledb_query::rows_as_of(
            &self.engine,
            select,
            pairs,
            &Limits::default(),
        )?)
    }

    /// [`Db::rows_as_of`] with each pair before its items: columns `user`
    /// and `ts` (epoch ms), then the items, one row per pair in their order.
    /// What the server's `POST /v1/rows_as_of` and the Python package answer.
    ///
    /// # Errors
    /// As [`Db::rows_as_of`].
    pub fn pairs_as_of(&self, select: &str, pairs: &[(String, i64)]) -> Result<Rows> {
        let items = self.rows_as_of(select, pairs)?;
        let mut columns = vec![
            Column {
                name: "user".into(),
                ty: Type::String,
            },
            Column {
                name: "ts".into(),
                ty: Type::Int,
            },
        ];
        columns.extend(items.columns);
        let rows = pairs
            .iter()
            .zip(items.rows)
            .map(|((user, ts), values)| {
                let mut row = Vec::with_capacity(values.len() + 2);
                row.push(Value::String(user.clone()));
                row.push(Value::Int(*ts));
                row.extend(values);
                row
            })
            .collect();
        Ok(Rows { columns, rows })
    }

    /// Flushes memtables and syncs the write-ahead log.
    ///
    /// # Errors
    /// A storage failure.
    pub fn flush(&self) -> Result<()> {
        Ok(self.engine.flush()?)
    }

    /// Writes an openable copy of the database to `dir`, which must not exist.
    ///
    /// # Errors
    /// `dir` exists, or the copy fails.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        Ok(self.engine.checkpoint(dir)?)
    }
}

/// The last statement's output of `sql`, which ran as `outs`; an error at
/// the end of `sql` when it held no statement.
fn last_output(sql: &str, mut outs: Vec<Output>) -> Result<Output> {
    outs.pop().ok_or_else(|| {
        Error::Query(profiledb_query::Error::from(
            profiledb_query::ParseError::new("expected a statement", sql.len()..sql.len()),
        ))
    })
}
