//! Writes: schema changes, events, attributes and deletes.
//!
//! Every write is one atomic batch of merge operands, sorted by family and key
//! (see [`sorted_batch`]), written while holding the vector index's write
//! guard and followed by a change notice to the index, so that a read view
//! that pins the index never sees a write the index has not been told of.

use super::Engine;
use super::index::{RowChange, RowMerges};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::catalog::{Bindings, DefKind, Definition};
use crate::error::{Error, Result};
use crate::event::{self, Event, EventOps};
use crate::history;
use crate::keys;
use crate::kv::{
    ATTRIBUTES, DATA, FEATURES, HISTORY, Kv, KvBatch, KvIter, KvSnapshot, VECTORS, WINDOWS,
};
use crate::merge::record::Record;
use crate::value::Value;

/// What a batch of events did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Events written.
    pub accepted: usize,
    /// Events skipped because their user already had an accepted event of
    /// their id ([`event::EVENT_ID`]).
    pub duplicates: usize,
}

/// What [`Engine::apply_log`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogApplied {
    /// Events written, and those skipped as duplicates of an accepted id.
    pub ingested: Ingested,
    /// The position was at or past the sequence already: nothing written.
    pub repeated: bool,
    /// Events the schema does not take, by index, skipped.
    pub rejected: Vec<(usize, event::EventError)>,
}

/// What applying a log entry (a cluster's statement) left, as
/// [`Engine::note_log_entry`] keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogNote {
    /// The catalog's version after it.
    pub version: u64,
    /// The place in its script (from 0) of the statement it failed at, if
    /// it failed: those before it were applied.
    pub failed_at: Option<u32>,
}

/// Where a write from a log ends: its partition and sequence number.
#[derive(Debug, Clone, Copy)]
struct LogPosition {
    partition: u32,
    seq: u64,
}

/// What one attempt at a write did.
struct Outcome {
    counts: Ingested,
    /// Already written before (a request key or a log position seen).
    repeated: bool,
    rejected: Vec<(usize, event::EventError)>,
}

impl Outcome {
    fn repeated(counts: Ingested) -> Outcome {
        Outcome {
            counts,
            repeated: true,
            rejected: Vec::new(),
        }
    }
}

/// Where a log partition's applied position is kept (the catalog family,
/// beside the schema).
fn log_position_key(partition: u32) -> Vec<u8> {
    let mut key = b"log.position.".to_vec();
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The prefix of the keys of log entries' outcomes.
const LOG_OUTCOME: &[u8] = b"log.outcome.";

/// Where the outcome of log entry `seq` is kept ([`Engine::put_log_outcome`]).
fn log_outcome_key(seq: u64) -> Vec<u8> {
    let mut key = LOG_OUTCOME.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The prefix of the keys of what log entries left
/// ([`Engine::note_log_entry`]).
const LOG_NOTE: &[u8] = b"log.note.";

/// The prefix of the marks of drops under way.
const LOG_DROPPING: &[u8] = b"log.dropping.";

/// Where a drop of log position `partition` under way is marked
/// ([`Engine::drop_log_partitions`]).
fn log_drop_key(partition: u32) -> Vec<u8> {
    let mut key = LOG_DROPPING.to_vec();
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

/// The catalog family's keys that start with `prefix`, each as (the rest
/// of the key, its value), in key order.
fn catalog_entries(snap: &impl KvSnapshot, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut it = snap.iter(crate::kv::CATALOG, Some(prefix.to_vec()), None)?;
    it.seek(prefix);
    let mut out = Vec::new();
    while let Some(k) = it.key() {
        let Some(tail) = k.strip_prefix(prefix) else {
            break;
        };
        out.push((tail.to_vec(), it.value().to_vec()));
        it.next();
    }
    it.status()?;
    Ok(out)
}

/// The log entry number the key `prefix` + `tail` ends with.
fn entry_number(prefix: &[u8], tail: &[u8]) -> Result<u64> {
    let seq: [u8; 8] = tail.try_into().map_err(|_| {
        Error::corruption(
            crate::kv::CATALOG,
            &[prefix, tail].concat(),
            "not an entry number",
        )
    })?;
    Ok(u64::from_be_bytes(seq))
}

fn read_log_position(snap: &impl KvSnapshot, partition: u32) -> Result<Option<u64>> {
    let key = log_position_key(partition);
    match snap.get(crate::kv::CATALOG, &key)? {
        None => Ok(None),
        Some(v) => {
            let bytes: [u8; 8] = v
                .as_ref()
                .try_into()
                .map_err(|_| Error::corruption(crate::kv::CATALOG, &key, "not 8 bytes"))?;
            Ok(Some(u64::from_be_bytes(bytes)))
        }
    }
}

/// What a history entry is made from, borrowed from the write.
enum HistoryWrite<'w> {
    Event(&'w Event),
    Attributes(&'w [(String, Value)]),
}

impl<K: Kv> Engine<K> {
    /// Sets how long accepted writes are kept in the event history, in ms
    /// (0 keeps none, and deletes what was kept, with the change). A schema
    /// change, synced like the others.
    ///
    /// History can be turned on only while the database has no users: the
    /// writes of existing users were never kept, so it could not replay them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative or too long horizon, or for
    /// turning history on over existing users.
    pub fn set_history(&self, ms: i64) -> Result<()> {
        let _guard = self.ddl.lock();
        let _work = self.index.history_work.lock();
        let mut catalog = self.catalog();
        let was = catalog.history_ms;
        catalog.set_history(ms)?;
        let mut batch = self.kv.batch();
        // Checked and changed with writes held off: no first write slips in
        // between, and writes planned without history plan again.
        let _held = self.index.hold_writes();
        if was == 0 && ms > 0 {
            let snap = self.kv.snapshot();
            let mut it = snap.iter(FEATURES, None, None)?;
            it.seek_to_first();
            if let Some(user) = it.key().and_then(keys::user_of) {
                return Err(Error::InvalidArgument(format!(
                    "history can be turned on only for a database without users: it holds '{user}', whose earlier writes were never kept"
                )));
            }
            it.status()?;
        } else if was > 0 && ms == 0 {
            batch.delete(crate::kv::CATALOG, super::read::HISTORY_CUTOFF_KEY);
        }
        self.store_catalog_held(catalog, batch)?;
        drop(_held);
        if was > 0 && ms == 0 {
            self.clear_history()?;
        }
        Ok(())
    }

    /// Deletes everything the event history kept, when the catalog keeps
    /// none: after turning it off (nothing writes it then), and when the
    /// engine opens, for what a crash in between left. Keys one by one, in
    /// batches, from one snapshot (RocksDB's row cache refuses range
    /// deletions).
    pub(crate) fn clear_history(&self) -> Result<()> {
        let end = history::keys_end();
        let snap = self.kv.snapshot();
        let mut it = snap.iter(HISTORY, None, Some(end))?;
        it.seek_to_first();
        let mut batch = self.kv.batch();
        while let Some(k) = it.key() {
            batch.delete(HISTORY, k);
            if batch.len() >= 10_000 {
                self.kv
                    .write(std::mem::replace(&mut batch, self.kv.batch()), false)?;
            }
            it.next();
        }
        it.status()?;
        if batch.len() > 0 {
            self.kv.write(batch, false)?;
        }
        Ok(())
    }

    /// Changes in place what an item only reads with (a beta or rate's prior,
    /// a window's retention: buckets compaction has not dropped yet count
    /// again under a longer one), keeping its state; a schema change.
    ///
    /// # Errors
    /// See [`crate::Catalog::alter_in_place`].
    pub fn alter_in_place(&self, def: &Definition) -> Result<u32> {
        let _guard = self.ddl.lock();
        let mut catalog = self.catalog();
        let id = catalog.alter_in_place(def)?;
        self.store_catalog(catalog)?;
        Ok(id)
    }

    /// Sets how long a user is kept without a write, in ms (0 keeps all); a
    /// schema change. Users past it are deleted at most hourly, as writes
    /// come, or by [`Engine::expire_users`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative TTL.
    pub fn set_user_ttl(&self, ms: i64) -> Result<()> {
        let _guard = self.ddl.lock();
        let mut catalog = self.catalog();
        catalog.set_user_ttl(ms)?;
        self.store_catalog(catalog)
    }

    /// Declares an event type, adds a field to one, or drops a declaration;
    /// a schema change. Batches planned under the old declarations plan
    /// again.
    ///
    /// # Errors
    /// See [`crate::Catalog::change_events`].
    pub fn change_events(&self, change: crate::catalog::EventChange) -> Result<()> {
        let _guard = self.ddl.lock();
        let mut catalog = self.catalog();
        catalog.change_events(change)?;
        self.store_catalog(catalog)
    }

    /// Folds the event history older than the horizon into each user's base
    /// state, at the engine's clock, so that the history keeps only the
    /// horizon's writes: the cutoff (the start of the day the horizon
    /// reaches back to) is recorded first, so that reads as of before it are
    /// refused from then on; then each user with older history, found
    /// through the day markers, gets its base state and loses those entries
    /// and their event ids in one atomic batch, with writes held off for each
    /// group of users. A crash anywhere leaves every write either in a base
    /// state or in the history, once. The engine does it by itself at most
    /// hourly, as writes come. Returns the number of users folded.
    ///
    /// # Errors
    /// The store's failure; [`Error::Corruption`] for history that does not
    /// decode.
    pub fn fold_history(&self) -> Result<usize> {
        fold_history(&*self.kv, &self.index, self.now())
    }

    /// The oldest time `AS OF` can answer for every user: the cutoff the
    /// history was folded to; `None` when nothing was folded (every time is).
    ///
    /// # Errors
    /// The store's failure.
    pub fn history_cutoff(&self) -> Result<Option<i64>> {
        let t = super::read::history_cutoff(&self.kv.snapshot())?;
        Ok((t != i64::MIN).then_some(t))
    }

    /// Drops a schema item and its data. Readers stop seeing the data at once.
    /// Attribute, feature and ewma vector cells are forgotten in every user's record
    /// now; window buckets and sgd vectors are removed by compaction.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no such item exists.
    pub fn drop_item(&self, kind: DefKind, name: &str) -> Result<()> {
        let _guard = self.ddl.lock();
        let mut catalog = self.catalog();
        let family = super::build::forgets_in(&catalog, kind, name);
        let indexed = catalog
            .index(name)
            .filter(|_| kind == DefKind::Index)
            .map(|d| d.vector);
        let id = catalog.drop_item(kind, name)?;
        self.store_catalog(catalog)?;
        if let Some(vector) = indexed {
            self.index.drop_ivf(vector);
        }
        let Some(family) = family else {
            return Ok(());
        };
        let forgot = self.forget_everywhere(family, id);
        // Every row of the row table holds the forgotten cell.
        self.index.reset_rows();
        forgot
    }

    /// Writes a "forget id" operand to every user's record in family `cf`.
    pub(super) fn forget_everywhere(&self, cf: &'static str, id: u32) -> Result<()> {
        let op = Record::forget(id).encode();
        let snap = self.kv.snapshot();
        let mut it = snap.iter(cf, None, None)?;
        it.seek_to_first();
        let mut batch = self.kv.batch();
        while let Some(key) = it.key() {
            batch.merge(cf, key, &op);
            if batch.len() >= 10_000 {
                let full = std::mem::replace(&mut batch, self.kv.batch());
                let _in_flight = self.index.begin_write();
                self.kv.write(full, false)?;
            }
            it.next();
        }
        it.status()?;
        let _in_flight = self.index.begin_write();
        self.kv.write(batch, false)
    }

    /// Ingests a batch of events atomically: either every event is applied or, when
    /// any is invalid, nothing is. Returns the number of events written.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] naming the first bad event's index, field and reason;
    /// [`Error::Engine`] when the write fails.
    pub fn ingest(&self, events: &[Event]) -> Result<usize> {
        self.ingest_counted(events).map(|n| n.accepted)
    }

    /// [`Engine::ingest`], counting what it did: with the event history on,
    /// an event whose user already has an accepted event of its id
    /// ([`event::EVENT_ID`]) inside the horizon, or earlier in the batch, is
    /// skipped and counted as a duplicate, so that a retried batch is never
    /// counted twice. A batch with an invalid event writes nothing.
    ///
    /// # Errors
    /// As [`Engine::ingest`].
    pub fn ingest_counted(&self, events: &[Event]) -> Result<Ingested> {
        self.ingest_keyed(events, None).map(|(n, _)| n)
    }

    /// [`Engine::ingest_counted`] for a request that may be retried, named
    /// by `request` (an HTTP `Idempotency-Key`): the first request of a key
    /// writes and is remembered with the history; a repeated one writes
    /// nothing and returns the first one's counts, with `true`.
    ///
    /// # Errors
    /// As [`Engine::ingest`]; [`Error::InvalidArgument`] when the database
    /// keeps no history (nothing would remember the key), or for a key that
    /// is empty or longer than 256 bytes.
    pub fn ingest_once(&self, events: &[Event], request: &str) -> Result<(Ingested, bool)> {
        if request.is_empty() || request.len() > history::MAX_REQUEST_KEY_LEN {
            return Err(Error::InvalidArgument(format!(
                "a request key must be 1 to {} bytes, not {}",
                history::MAX_REQUEST_KEY_LEN,
                request.len()
            )));
        }
        if self.bindings().catalog.history_ms == 0 {
            return Err(Error::InvalidArgument(
                "a request key is remembered with the event history, which this database does not keep (ALTER DATABASE SET HISTORY turns it on)".into(),
            ));
        }
        self.ingest_keyed(events, Some(request))
    }

    /// Applies `events` read from partition `partition` of a log, up to and
    /// including the log's sequence number `seq`, atomically with that
    /// position: a crash keeps both or neither, so a node that resumes from
    /// [`Engine::log_position`] neither loses nor applies twice. A `seq` at
    /// or below the stored position writes nothing (`repeated`). An event
    /// the schema does not take cannot be refused (the log holds it): it is
    /// skipped, returned in `rejected`, and the position moves past it.
    ///
    /// # Errors
    /// A storage failure; [`Error::InvalidArgument`] for a `seq` of 0.
    pub fn apply_log(&self, partition: u32, seq: u64, events: &[Event]) -> Result<LogApplied> {
        self.apply_logs(&[(partition, seq)], events)
    }

    /// [`Engine::apply_log`] for several partitions in one atomic write:
    /// `events` are those of every partition in `positions`, each position
    /// stored with them. One write of many partitions' pulls costs much less
    /// per event than one write each. All the positions are at or below
    /// their stored ones (`repeated`, nothing written), or none is.
    ///
    /// # Errors
    /// A storage failure; [`Error::InvalidArgument`] for a `seq` of 0, a
    /// partition named twice, or positions of which some were applied and
    /// others not (a partition read by two readers at once).
    pub fn apply_logs(&self, positions: &[(u32, u64)], events: &[Event]) -> Result<LogApplied> {
        self.apply_logs_at(positions, events, &[])
    }

    /// [`Engine::apply_logs`] with each event planned under the catalog as
    /// it was at a version ([`crate::Catalog::as_of_version`]): `versions` holds
    /// one for each event (`None`: today's), or none at all. A cluster
    /// node reading a partition from a point before statements it applied
    /// since plans the events there as every node did that read them
    /// before those statements: an item made later does not count them.
    /// The event history keeps each with that version, so that reads as
    /// of a past time and the fold plan it the same way.
    ///
    /// # Errors
    /// As [`Engine::apply_logs`]; also `versions` of another length than
    /// `events`.
    pub fn apply_logs_at(
        &self,
        positions: &[(u32, u64)],
        events: &[Event],
        versions: &[Option<u64>],
    ) -> Result<LogApplied> {
        if !versions.is_empty() && versions.len() != events.len() {
            return Err(Error::InvalidArgument(format!(
                "a log write has {} events and {} catalog versions",
                events.len(),
                versions.len()
            )));
        }
        if positions.iter().any(|&(_, seq)| seq == 0) {
            return Err(Error::InvalidArgument(
                "a log sequence number starts at 1".into(),
            ));
        }
        let log: Vec<LogPosition> = positions
            .iter()
            .map(|&(partition, seq)| LogPosition { partition, seq })
            .collect();
        let mut partitions: Vec<u32> = positions.iter().map(|p| p.0).collect();
        partitions.sort_unstable();
        if partitions.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidArgument(
                "a log write names a partition twice".into(),
            ));
        }
        loop {
            if let Some(done) = self.try_ingest(events, None, &log, versions)? {
                return Ok(LogApplied {
                    ingested: done.counts,
                    repeated: done.repeated,
                    rejected: done.rejected,
                });
            }
        }
    }

    /// The last sequence number of log partition `partition` applied by
    /// [`Engine::apply_log`]; `None` before the first.
    ///
    /// # Errors
    /// A storage failure, or a stored position that is not 8 bytes.
    pub fn log_position(&self, partition: u32) -> Result<Option<u64>> {
        read_log_position(&self.kv.snapshot(), partition)
    }

    /// Drops what was applied of log partitions (a node's copy of
    /// partitions it no longer follows): forgets the stored `positions`
    /// and marks a drop under way, in one write; deletes every user
    /// `belongs` picks (found in every data family), as
    /// [`Engine::delete_user`] deletes one; then clears the marks. A
    /// process killed in between finds the marks ([`Engine::log_drops`])
    /// and must drop again before it applies those partitions anew, so
    /// that none is applied from its start over part of an old copy.
    /// Returns how many users were deleted.
    ///
    /// # Errors
    /// A storage failure (the marks stay: the drop is to be run again).
    pub fn drop_log_partitions(
        &self,
        positions: &[u32],
        belongs: &dyn Fn(&str) -> bool,
    ) -> Result<usize> {
        let _work = self.index.history_work.lock();
        let mut batch = self.kv.batch();
        for &p in positions {
            batch.delete(crate::kv::CATALOG, &log_position_key(p));
            batch.put(crate::kv::CATALOG, &log_drop_key(p), &[]);
        }
        self.kv.write(batch, true)?;
        let users = users_where(&self.kv.snapshot(), belongs)?;
        let deleted = delete_users(&*self.kv, &self.index, &users, &|_, _| Ok(false))?;
        let mut batch = self.kv.batch();
        for &p in positions {
            batch.delete(crate::kv::CATALOG, &log_drop_key(p));
        }
        self.kv.write(batch, true)?;
        Ok(deleted)
    }

    /// Keeps `outcome` (bytes the caller encodes) as what applying entry
    /// `seq` of a log did, dropping the kept outcomes of entries `keep` or
    /// more before it in the same write: a process restarted after
    /// applying an entry can still say what it did
    /// ([`Engine::log_outcomes`]).
    ///
    /// # Errors
    /// A storage failure.
    pub fn put_log_outcome(&self, seq: u64, outcome: &[u8], keep: u64) -> Result<()> {
        let mut batch = self.kv.batch();
        batch.put(crate::kv::CATALOG, &log_outcome_key(seq), outcome);
        if let Some(old) = seq.checked_sub(keep) {
            for (tail, _) in catalog_entries(&self.kv.snapshot(), LOG_OUTCOME)? {
                if entry_number(LOG_OUTCOME, &tail)? <= old {
                    batch.delete(crate::kv::CATALOG, &[LOG_OUTCOME, &tail].concat());
                }
            }
        }
        self.kv.write(batch, false)
    }

    /// The outcomes kept by [`Engine::put_log_outcome`], by entry, in
    /// order.
    ///
    /// # Errors
    /// A storage failure, or a key that names no entry.
    pub fn log_outcomes(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        catalog_entries(&self.kv.snapshot(), LOG_OUTCOME)?
            .into_iter()
            .map(|(tail, value)| Ok((entry_number(LOG_OUTCOME, &tail)?, value)))
            .collect()
    }

    /// Notes what applying log entry `seq` (a cluster's statement just
    /// applied, or 0 before any) left: the catalog's version now, which
    /// [`Engine::apply_logs_at`] plans a partition's events with when they
    /// come before the marker of a later statement, and the place of the
    /// statement of its script it failed at, if it did, so that a replay
    /// of its changes to users stops there too. Each note takes a few
    /// bytes and is kept.
    ///
    /// # Errors
    /// A storage failure.
    pub fn note_log_entry(&self, seq: u64, failed_at: Option<u32>) -> Result<LogNote> {
        let note = LogNote {
            version: self.bindings().catalog.version,
            failed_at,
        };
        let mut value = note.version.to_be_bytes().to_vec();
        if let Some(at) = failed_at {
            value.extend_from_slice(&at.to_be_bytes());
        }
        let mut batch = self.kv.batch();
        batch.put(
            crate::kv::CATALOG,
            &[LOG_NOTE, &seq.to_be_bytes()].concat(),
            &value,
        );
        self.kv.write(batch, false)?;
        Ok(note)
    }

    /// The notes [`Engine::note_log_entry`] kept, by entry, in order.
    ///
    /// # Errors
    /// A storage failure, or a note that does not decode.
    pub fn log_notes(&self) -> Result<Vec<(u64, LogNote)>> {
        catalog_entries(&self.kv.snapshot(), LOG_NOTE)?
            .into_iter()
            .map(|(tail, value)| {
                let seq = entry_number(LOG_NOTE, &tail)?;
                let bad = || {
                    Error::corruption(
                        crate::kv::CATALOG,
                        &[LOG_NOTE, &tail].concat(),
                        "a log entry's note is neither 8 nor 12 bytes",
                    )
                };
                let version: [u8; 8] = value
                    .get(..8)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?;
                let failed_at = match value.get(8..) {
                    Some([]) => None,
                    Some(rest) => {
                        let at: [u8; 4] = rest.try_into().map_err(|_| bad())?;
                        Some(u32::from_be_bytes(at))
                    }
                    None => return Err(bad()),
                };
                Ok((
                    seq,
                    LogNote {
                        version: u64::from_be_bytes(version),
                        failed_at,
                    },
                ))
            })
            .collect()
    }

    /// The positions of drops ([`Engine::drop_log_partitions`]) that did
    /// not finish, in order.
    ///
    /// # Errors
    /// A storage failure.
    pub fn log_drops(&self) -> Result<Vec<u32>> {
        catalog_entries(&self.kv.snapshot(), LOG_DROPPING)?
            .into_iter()
            .map(|(tail, _)| {
                let p: [u8; 4] = tail.as_slice().try_into().map_err(|_| {
                    Error::corruption(
                        crate::kv::CATALOG,
                        &[LOG_DROPPING, &tail].concat(),
                        "not a partition number",
                    )
                })?;
                Ok(u32::from_be_bytes(p))
            })
            .collect()
    }

    /// Ingests `events`, once per `request` key when there is one.
    fn ingest_keyed(&self, events: &[Event], request: Option<&str>) -> Result<(Ingested, bool)> {
        loop {
            if let Some(done) = self.try_ingest(events, request, &[], &[])? {
                return Ok((done.counts, done.repeated));
            }
        }
    }

    /// [`Engine::ingest_keyed`] under the current catalog; `None`, having
    /// written nothing, when the catalog changed before the write.
    fn try_ingest(
        &self,
        events: &[Event],
        request: Option<&str>,
        log: &[LogPosition],
        versions: &[Option<u64>],
    ) -> Result<Option<Outcome>> {
        let bindings = self.bindings();
        // Ids and request keys are kept with the history, for its horizon.
        let keeping = bindings.catalog.history_ms > 0;
        let mut planned: Vec<Planned<'_>> = Vec::with_capacity(events.len());
        let mut rejected = Vec::new();
        // The catalogs of past versions events are planned under.
        let mut past: Vec<Arc<Bindings>> = Vec::new();
        for (index, ev) in events.iter().enumerate() {
            let at = versions.get(index).copied().flatten().and_then(|v| {
                if let Some(at) = past.iter().position(|b| b.catalog.version == v) {
                    return Some(at);
                }
                past.push(bindings.at_version(v)?);
                Some(past.len() - 1)
            });
            let b = at.map_or(&*bindings, |at| &*past[at]);
            let version = b.catalog.version;
            // Planning checks the id; it is read only where it is kept.
            // The event is kept as accepted, with its declared defaults.
            let plan = event::plan_event(b, ev).and_then(|(ev, ops)| {
                let id = if keeping {
                    event::event_id(&ev)?.map(|id| history::id_key(&ev.user, &id))
                } else {
                    None
                };
                Ok((ev, id, ops, version))
            });
            match plan {
                Ok(p) => planned.push(p),
                // From a log, a bad event is skipped: the log holds it.
                Err(e) if !log.is_empty() => rejected.push((index, e)),
                Err(e) => {
                    return Err(Error::InvalidEvent {
                        index,
                        field: e.field,
                        reason: e.reason,
                    });
                }
            }
        }
        let dedup = keeping && planned.iter().any(|p| p.1.is_some());
        let request = request.filter(|_| keeping);
        // Held until the batch is written: no other batch accepts one of
        // these ids, or this request, meanwhile.
        // A log partition's writes are serialized too, so that its
        // position only moves forward.
        let log_locks: Vec<String> = log
            .iter()
            .map(|l| format!("\u{1}log/{}", l.partition))
            .collect();
        let _id_locks = self.id_locks.lock(
            planned
                .iter()
                .filter(|p| dedup && p.1.is_some())
                .map(|p| p.0.user.as_str())
                .chain(request)
                .chain(log_locks.iter().map(String::as_str)),
        );
        if let Some(raw) = request {
            let key = history::request_key(raw);
            if let Some(first) = self.kv.snapshot().get(HISTORY, &key)? {
                let first = history::decode_request(&first)
                    .map_err(|e| Error::corruption(HISTORY, &key, e))?;
                return Ok(Some(Outcome::repeated(first)));
            }
        }
        if !log.is_empty() {
            let snapshot = self.kv.snapshot();
            let mut applied = 0;
            for l in log {
                if read_log_position(&snapshot, l.partition)?.is_some_and(|at| at >= l.seq) {
                    applied += 1;
                }
            }
            if applied == log.len() {
                return Ok(Some(Outcome::repeated(Ingested::default())));
            }
            if applied > 0 {
                return Err(Error::InvalidArgument(format!(
                    "{applied} of the {} partitions of a log write were applied already",
                    log.len()
                )));
            }
        }
        let mut duplicates = 0;
        if dedup {
            let before = planned.len();
            self.drop_duplicates(&mut planned)?;
            duplicates = before - planned.len();
        }
        let counts = Ingested {
            accepted: planned.len(),
            duplicates,
        };
        let mut history = self.history_puts(
            &bindings,
            planned.iter().map(|(ev, id, _, version)| {
                (
                    ev.user.as_str(),
                    ev.ts,
                    HistoryWrite::Event(ev.as_ref()),
                    id.as_deref(),
                    *version,
                )
            }),
        );
        if let Some(raw) = request {
            // With the writes, atomically: a crash keeps both or neither. The
            // marker dates it for the fold, which retires it with the horizon.
            let now = self.now();
            history.push((
                history::request_key(raw),
                history::encode_request(counts, now),
            ));
            history.push((
                history::request_marker_key(history::day_of(now), raw),
                Vec::new(),
            ));
        }
        let ops: Vec<EventOps> = planned
            .iter_mut()
            .map(|p| std::mem::take(&mut p.2))
            .collect();
        let in_flight = self.index.begin_write();
        if !Arc::ptr_eq(&bindings, &self.bindings.read()) {
            // Planned under a catalog since replaced (a swap holds writes
            // off, so none comes between this check and the write).
            return Ok(None);
        }
        let mut batch = self.sorted_batch(&ops, history);
        for l in log {
            batch.put(
                crate::kv::CATALOG,
                &log_position_key(l.partition),
                &l.seq.to_be_bytes(),
            );
        }
        self.kv.write(batch, false)?;
        self.note_written(planned.iter().map(|p| p.0.user.as_str()));
        let feeds = |ev: &Event| {
            let b = bindings.event(&ev.event_type)?;
            Some((!b.vectors.is_empty(), !b.attributes.is_empty()))
        };
        let vectors = if self.index.wants_vector_changes() {
            planned
                .iter()
                .filter_map(|(ev, ..)| {
                    let (vectors, attributes) = feeds(ev)?;
                    (vectors || attributes).then(|| (ev.user.clone(), attributes))
                })
                .collect()
        } else {
            Vec::new()
        };
        let rows = if self.index.wants_row_changes() {
            // The operands themselves: the row table merges them as the
            // store does, without reading.
            let bytes = ops
                .iter()
                .zip(&planned)
                .map(|(p, (ev, ..))| {
                    ev.user.len() + p.features.len() + p.attributes.as_ref().map_or(0, Vec::len)
                })
                .sum();
            let mut merges = RowMerges::with_capacity(ops.len(), bytes);
            for (p, (ev, ..)) in ops.iter().zip(&planned) {
                merges.push(&ev.user, &p.features, p.attributes.as_deref());
            }
            vec![RowChange::Merges(merges)]
        } else {
            Vec::new()
        };
        self.index.changed(vectors, rows);
        drop(in_flight);
        Ok(Some(Outcome {
            counts,
            repeated: false,
            rejected,
        }))
    }

    /// Removes from `planned` the events whose user already has an accepted
    /// event of their id, or has one earlier in `planned`. The caller holds
    /// the users' id locks, so no other write can accept one meanwhile.
    fn drop_duplicates(&self, planned: &mut Vec<Planned<'_>>) -> Result<()> {
        let mut sorted: Vec<Vec<u8>> = planned.iter().filter_map(|p| p.1.clone()).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let snap = self.kv.snapshot();
        let found = snap.multi_get(HISTORY, &sorted)?;
        // Whether each key is taken: stored, or by an event kept before.
        let mut taken: Vec<bool> = found.iter().map(Option::is_some).collect();
        planned.retain(|(_, id, ..)| match id {
            None => true,
            Some(key) => match sorted.binary_search(key) {
                Ok(i) => !std::mem::replace(&mut taken[i], true),
                // Not reached: `sorted` holds every key.
                Err(_) => true,
            },
        });
        Ok(())
    }

    /// Decodes JSON events (an array, one object, or JSON Lines) and ingests them
    /// atomically. Returns the number of events written.
    ///
    /// # Errors
    /// [`Error::InvalidEvent`] for JSON that does not decode or an invalid event.
    pub fn ingest_json(&self, text: &str) -> Result<usize> {
        let events = event::events_from_json(text).map_err(|(index, e)| Error::InvalidEvent {
            index,
            field: e.field,
            reason: e.reason,
        })?;
        self.ingest(&events)
    }

    /// Sets attributes of `user` directly (last writer wins at time `ts`), creating
    /// the user if needed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown attribute, a value of the wrong
    /// type, or a bad user id.
    pub fn set_attributes(&self, user: &str, ts: i64, values: &[(String, Value)]) -> Result<()> {
        loop {
            let bindings = self.bindings();
            let ops = event::plan_attributes(&bindings, user, ts, values)
                .map_err(|e| Error::InvalidArgument(e.to_string()))?;
            let history = self.history_puts(
                &bindings,
                std::iter::once((
                    user,
                    ts,
                    HistoryWrite::Attributes(values),
                    None,
                    bindings.catalog.version,
                )),
            );
            let _in_flight = self.index.begin_write();
            if !Arc::ptr_eq(&bindings, &self.bindings.read()) {
                // Planned under a catalog since replaced: plan again.
                continue;
            }
            self.kv.write(
                self.sorted_batch(std::slice::from_ref(&ops), history),
                false,
            )?;
            self.note_written(std::iter::once(user));
            self.index.changed_user(user);
            return Ok(());
        }
    }

    /// Deletes every key of `user` in every column family, atomically. Returns
    /// whether the user existed; deleting a user that does not exist writes
    /// nothing (a tombstone would carry the id). A store on disk purges the
    /// bytes later, by itself or on [`Engine::vacuum`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a malformed id; [`Error::Engine`] on failure.
    pub fn delete_user(&self, user: &str) -> Result<bool> {
        keys::check_stored_user(user)?;
        // The user's keys are read and deleted with writes held off: a key a
        // write adds in between would outlive the delete.
        let _held = self.index.hold_writes();
        let snap = self.kv.snapshot();
        if snap.get(FEATURES, &keys::user_key(user))?.is_none() {
            return Ok(false);
        }
        let mut batch = self.kv.batch();
        let ranges = user_deletion(&snap, &mut batch, user)?;
        drop(snap);
        self.kv.write_delete(batch, ranges)?;
        self.note_written(std::iter::once(user));
        // The next catch-up re-reads the user, finds nothing and removes it.
        self.index.changed_user(user);
        Ok(true)
    }

    /// Deletes the users with no write for the user TTL ([`Catalog::user_ttl_ms`])
    /// at the engine's clock, as [`Engine::delete_user`] does, and returns how
    /// many. The engine does it by itself at most hourly, as writes come.
    ///
    /// [`Catalog::user_ttl_ms`]: crate::Catalog::user_ttl_ms
    ///
    /// # Errors
    /// The store's failure; [`Error::Corruption`] for a record that does not
    /// decode.
    pub fn expire_users(&self) -> Result<usize> {
        expire_users(&*self.kv, &self.index, self.now())
    }

    /// Purges deleted users from disk: once it returns, no file in the database
    /// directory holds (for a store on disk) a byte of a user deleted before it began (their data,
    /// their tombstones, their entries in the MANIFEST and in the vector index
    /// snapshot). It flushes every family and compacts the deleted users' key
    /// ranges to the last level (the whole database when it does not know them:
    /// deletes from before it was opened, or more than 10,000). The engine runs
    /// it by itself `purge_delay` after a delete; see `EngineOptions::purge_delay`.
    ///
    /// # Errors
    /// [`crate::Error::Engine`] on failure; a failed purge is retried by the next.
    pub fn vacuum(&self) -> Result<()> {
        self.kv.vacuum(None).map(drop)
    }

    /// As [`Engine::vacuum`], stopping at `deadline`: returns `false` when it
    /// stopped before the purge was complete (it stays due, and the automatic
    /// purge finishes it).
    ///
    /// # Errors
    /// As [`Engine::vacuum`].
    pub fn vacuum_until(&self, deadline: Option<std::time::Instant>) -> Result<bool> {
        self.kv.vacuum(deadline)
    }

    /// Builds the batch of a group of planned events, its operands sorted by
    /// family and key. Sorting lets each memtable insert start from the
    /// position of the one before, which saves most of the skiplist search on
    /// a large memtable. The sort is stable, so operands on one key keep their
    /// write order, which sgd depends on.
    fn sorted_batch(&self, planned: &[EventOps], history: Vec<(Vec<u8>, Vec<u8>)>) -> K::Batch {
        const CFS: [&str; 4] = [ATTRIBUTES, FEATURES, WINDOWS, VECTORS];
        let mut ops: Vec<(u8, &[u8], &[u8])> = Vec::with_capacity(planned.len() * 4);
        for p in planned {
            ops.push((1, &p.user_key, &p.features));
            if let Some(a) = &p.attributes {
                ops.push((0, &p.user_key, a));
            }
            ops.extend(
                p.windows
                    .iter()
                    .map(|(k, v)| (2, k.as_slice(), v.as_slice())),
            );
            ops.extend(p.sgd.iter().map(|(k, v)| (3, k.as_slice(), v.as_slice())));
        }
        ops.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        // Room for every record: a record's tag, family and two lengths
        // take at most 16 bytes beside its key and value.
        let bytes = ops
            .iter()
            .map(|(_, k, v)| k.len() + v.len())
            .chain(history.iter().map(|(k, v)| k.len() + v.len()))
            .map(|n| n + 16)
            .sum();
        let mut batch = self.kv.batch_with_capacity(bytes);
        for (cf, k, v) in ops {
            batch.merge(CFS[usize::from(cf)], k, v);
        }
        for (k, v) in &history {
            batch.put(HISTORY, k, v);
        }
        batch
    }

    /// The history puts of `writes` (each as user, time, what was written
    /// and the key of its event id if any): an entry each, the day markers
    /// and the ids, sorted by key. None when the catalog keeps no history.
    fn history_puts<'w>(
        &self,
        bindings: &Bindings,
        writes: impl ExactSizeIterator<Item = (&'w str, i64, HistoryWrite<'w>, Option<&'w [u8]>, u64)>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        if bindings.catalog.history_ms == 0 {
            return Vec::new();
        }
        let first = self
            .history_seq
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        let mut puts = Vec::with_capacity(2 * writes.len());
        for (seq, (user, ts, write, id, version)) in (first..).zip(writes) {
            if let Some(key) = id {
                puts.push((key.to_vec(), history::id_value(ts, seq)));
            }
            let value = match write {
                HistoryWrite::Event(ev) => history::event_value(seq, version, ev),
                HistoryWrite::Attributes(values) => history::attributes_value(seq, version, values),
            };
            puts.push((history::entry_key(user, ts, seq), value));
            puts.push((history::marker_key(history::day_of(ts), user), Vec::new()));
        }
        puts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        puts.dedup_by(|a, b| a.0 == b.0);
        puts
    }
}

/// An event of a batch as planned: as accepted, the key of its id when the
/// history keeps it, its operands, and the catalog version it was planned
/// under.
type Planned<'e> = (std::borrow::Cow<'e, Event>, Option<Vec<u8>>, EventOps, u64);

/// Folds the history older than the horizon at `now` into each user's base
/// state, so that the history keeps only the horizon's writes. The cutoff
/// (the start of the day the horizon reaches back to) is recorded first, so
/// that reads as of before it are refused from then on; then each user with
/// older history, found through the day markers (not by walking every user),
/// gets its base state and loses those entries, their event ids and the
/// markers, in one atomic batch, with writes held off for each group of
/// users. A crash anywhere leaves every write either in a base state or in
/// the history, once; the next fold finishes the job.
pub(crate) fn fold_history<K: Kv>(
    kv: &K,
    index: &super::index::Index<K>,
    now: i64,
) -> Result<usize> {
    // Items built over the history meanwhile are read with the rest.
    let _work = index.history_work.lock();
    let bindings = &*index.bindings();
    let horizon = bindings.catalog.history_ms;
    if horizon == 0 {
        return Ok(0);
    }
    let stored = super::read::history_cutoff(&kv.snapshot())?;
    let cutoff = history::day_of(now.saturating_sub(horizon)).saturating_mul(86_400_000);
    retire_requests(kv, history::day_of(cutoff))?;
    // Nothing dated before the cutoff: nothing to fold, and every time can
    // still be answered.
    let older = {
        let snap = kv.snapshot();
        let end = history::marker_key(history::day_of(cutoff.max(stored)), "");
        let mut it = snap.iter(HISTORY, Some(history::markers_start()), Some(end))?;
        it.seek_to_first();
        let any = it.key().is_some();
        it.status()?;
        any
    };
    if !older {
        return Ok(0);
    }
    if cutoff > stored {
        let mut batch = kv.batch();
        batch.put(
            crate::kv::CATALOG,
            super::read::HISTORY_CUTOFF_KEY,
            &cutoff.to_be_bytes(),
        );
        kv.write(batch, true)?;
    }
    // A fold cut short before, or late writes since, leave markers of days
    // before the recorded cutoff too.
    let cutoff = cutoff.max(stored);
    if cutoff == i64::MIN {
        return Ok(0);
    }
    let end = history::marker_key(history::day_of(cutoff), "");
    let mut folded = 0;
    // The markers as they were when the fold began, read by one iterator
    // (read again from the start for each group, the markers the groups
    // before deleted would be skipped one tombstone at a time). A marker
    // written since is for a user the next fold reaches, if the fold of its
    // group has not already.
    let scan = kv.snapshot();
    let mut it = scan.iter(HISTORY, Some(history::markers_start()), Some(end))?;
    it.seek_to_first();
    loop {
        // The next group of users with history older than the cutoff.
        let mut markers: Vec<(Vec<u8>, String)> = Vec::new();
        while let Some(k) = it.key() {
            if let Some((_, user)) = history::parse_marker_key(k) {
                markers.push((k.to_vec(), user.to_owned()));
            }
            it.next();
            if markers.len() >= 64 {
                break;
            }
        }
        it.status()?;
        if markers.is_empty() {
            return Ok(folded);
        }
        let mut users: Vec<&str> = markers.iter().map(|(_, u)| u.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        let _held = index.hold_writes();
        let snap = kv.snapshot();
        let mut planner = super::read::Planner::new(bindings, super::read::Wanted::ALL);
        let mut batch = kv.batch();
        for user in &users {
            if fold_user(&snap, &mut planner, user, cutoff, now, &mut batch)? {
                folded += 1;
            }
        }
        for (k, _) in &markers {
            batch.delete(HISTORY, k);
        }
        kv.write(batch, false)?;
    }
}

/// Adds to `batch` the deletion of every key of family `cf` in `[lo, hi)`
/// that `snap` holds, one by one: RocksDB's row cache, which serves point
/// reads, refuses range deletions. Keys written after `snap` are not
/// deleted: callers hold writes off, or read again what was written since.
/// `seen` gets each key deleted.
pub(crate) fn delete_keys<S: KvSnapshot, B: KvBatch>(
    snap: &S,
    batch: &mut B,
    cf: &'static str,
    lo: &[u8],
    hi: &[u8],
    seen: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    let mut it = snap.iter(cf, Some(lo.to_vec()), Some(hi.to_vec()))?;
    it.seek(lo);
    while let Some(k) = it.key() {
        batch.delete(cf, k);
        seen(k);
        it.next();
    }
    it.status()
}

/// Adds to `batch` the deletion of every key of `user` that `snap` holds,
/// and returns the key ranges to purge from disk.
fn user_deletion<S: KvSnapshot, B: KvBatch>(
    snap: &S,
    batch: &mut B,
    user: &str,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let (start, end) = keys::user_range(user);
    // The history's day markers carry the id too: the days of the user's
    // history entries, seen as they are deleted, name the markers to delete
    // and purge with the rest.
    let mut days = Vec::new();
    for cf in DATA {
        delete_keys(snap, batch, cf, &start, &end, &mut |k| {
            if cf == HISTORY
                && let Some((_, ts, _)) = history::parse_entry_key(k)
            {
                // Entries are in time order: a day's come together.
                let day = history::day_of(ts);
                if days.last() != Some(&day) {
                    days.push(day);
                }
            }
        })?;
    }
    let mut ranges = vec![(start, end)];
    for day in days {
        let marker = history::marker_key(day, user);
        batch.delete(HISTORY, &marker);
        let mut after = marker.clone();
        after.push(0);
        ranges.push((marker, after));
    }
    Ok(ranges)
}

/// Deletes the users whose latest write is older than the user TTL at `now`,
/// with writes held off for each group of them (a user written meanwhile is
/// kept); returns how many. Builds over the history wait for it.
pub(crate) fn expire_users<K: Kv>(
    kv: &K,
    index: &super::index::Index<K>,
    now: i64,
) -> Result<usize> {
    let _work = index.history_work.lock();
    let ttl = index.bindings().catalog.user_ttl_ms;
    if ttl <= 0 {
        return Ok(0);
    }
    let before = now.saturating_sub(ttl);
    let stale = |features: &[u8], key: &[u8]| -> Result<bool> {
        let record = Record::decode(features).map_err(|e| Error::corruption(FEATURES, key, e))?;
        Ok(matches!(
            record.cell(crate::catalog::META_ID),
            Some(crate::merge::cell::Cell::Meta { last, .. }) if *last < before
        ))
    };
    let mut users = Vec::new();
    {
        let snap = kv.snapshot();
        let mut it = snap.iter(FEATURES, None, None)?;
        it.seek_to_first();
        while let Some(k) = it.key() {
            if stale(it.value(), k)?
                && let Some(user) = keys::user_of(k)
            {
                users.push(user.to_owned());
            }
            it.next();
        }
        it.status()?;
    }
    let expired = delete_users(kv, index, &users, &|features, key| match features {
        Some(v) => Ok(!stale(v, key)?),
        // Deleted since the scan.
        None => Ok(true),
    })?;
    index
        .users_expired
        .fetch_add(expired as u64, Ordering::Relaxed);
    Ok(expired)
}

/// Whether a user chosen for deletion stays, asked with its features
/// record (`None` when it has none) and that record's key.
type Keep<'a> = dyn Fn(Option<&[u8]>, &[u8]) -> Result<bool> + 'a;

/// Deletes `users` in groups of 256, with writes held off for each group,
/// as [`Engine::delete_user`] deletes one; `keep` is asked again of each
/// user under the hold, with its features record (`None` when it has none)
/// and that record's key, and a user it keeps stays (written since it was
/// chosen). Returns how many were deleted.
fn delete_users<K: Kv>(
    kv: &K,
    index: &super::index::Index<K>,
    users: &[String],
    keep: &Keep<'_>,
) -> Result<usize> {
    let mut deleted = 0;
    for group in users.chunks(256) {
        let _held = index.hold_writes();
        let snap = kv.snapshot();
        let mut batch = kv.batch();
        let mut ranges = Vec::new();
        let mut gone = Vec::new();
        for user in group {
            let key = keys::user_key(user);
            if keep(snap.get(FEATURES, &key)?.as_deref(), &key)? {
                continue;
            }
            ranges.extend(user_deletion(&snap, &mut batch, user)?);
            gone.push(user);
        }
        if gone.is_empty() {
            continue;
        }
        kv.write_delete(batch, ranges)?;
        deleted += gone.len();
        for user in gone {
            index.changed_user(user);
        }
    }
    Ok(deleted)
}

/// Every user with a key in any data family that `chosen` picks, in id
/// order: one seek per user and family.
fn users_where<S: KvSnapshot>(snap: &S, chosen: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
    let mut users = std::collections::BTreeSet::new();
    for cf in DATA {
        // The history's request keys and markers sort after its users'.
        let end = (cf == HISTORY).then(history::users_end);
        let mut it = snap.iter(cf, None, end)?;
        it.seek_to_first();
        while let Some(k) = it.key() {
            let Some(user) = keys::user_of(k) else {
                return Err(Error::corruption(cf, k, "key is not a user key"));
            };
            if !users.contains(user) && chosen(user) {
                users.insert(user.to_owned());
            }
            // Past the user's keys.
            let (_, after) = keys::user_range(user);
            it.seek(&after);
        }
        it.status()?;
    }
    Ok(users.into_iter().collect())
}

/// Deletes the request keys first seen before `day` (past the horizon: a
/// repeat of one is a new request), with their markers.
fn retire_requests<K: Kv>(kv: &K, day: i64) -> Result<()> {
    let (lo, hi) = history::request_markers_before(day);
    let snap = kv.snapshot();
    let mut it = snap.iter(HISTORY, Some(lo), Some(hi))?;
    it.seek_to_first();
    let mut batch = kv.batch();
    while let Some(marker) = it.key() {
        if let Some(key) = history::request_of_marker(marker) {
            batch.delete(HISTORY, &key);
        }
        batch.delete(HISTORY, marker);
        if batch.len() >= 10_000 {
            kv.write(std::mem::replace(&mut batch, kv.batch()), false)?;
        }
        it.next();
    }
    it.status()?;
    if batch.len() > 0 {
        kv.write(batch, false)?;
    }
    Ok(())
}

/// Adds to `batch` the fold of `user`'s history before `cutoff` into its
/// base state; whether there was any.
fn fold_user<S: KvSnapshot, B: KvBatch>(
    snap: &S,
    planner: &mut super::read::Planner<'_>,
    user: &str,
    cutoff: i64,
    now: i64,
    batch: &mut B,
) -> Result<bool> {
    let mut state = super::read::Replay::default();
    let mut gone: Vec<Vec<u8>> = Vec::new();
    let mut ids: Vec<Vec<u8>> = Vec::new();
    state.read(snap, planner, user, cutoff - 1, &mut |k, entry| {
        gone.push(k.to_vec());
        if let history::Write::Event(ev) = &entry.write
            && let Ok(Some(id)) = event::event_id(ev)
        {
            ids.push(history::id_key(user, &id));
        }
    })?;
    if gone.is_empty() {
        return Ok(false);
    }
    let base_key = history::base_key(user);
    let mut defs: Vec<u32> = state
        .sgd_base
        .keys()
        .copied()
        .chain(state.steps.iter().map(|s| s.1))
        .collect();
    defs.sort_unstable();
    defs.dedup();
    let mut sgd = std::collections::BTreeMap::new();
    for def in defs {
        if let Some(v) = state
            .sgd_state(def)
            .map_err(|e| Error::corruption(HISTORY, &base_key, e))?
        {
            sgd.insert(def, v);
        }
    }
    let mut features = std::mem::take(&mut state.features);
    let mut attributes = std::mem::take(&mut state.attributes);
    features.finalize();
    attributes.finalize();
    let base = history::Base {
        features,
        attributes,
        // Buckets past their window's retention, or of a dropped window,
        // no read can see: the base keeps none.
        windows: std::mem::take(&mut state.buckets)
            .into_iter()
            .filter(|((def, start), _)| {
                planner
                    .current()
                    .catalog
                    .window_by_id(*def)
                    .is_some_and(|w| !keys::bucket_expired(*start, w.bucket_ms, w.retain_ms, now))
            })
            .collect(),
        sgd,
    };
    batch.put(HISTORY, &base_key, &base.encode());
    for k in gone.iter().chain(&ids) {
        batch.delete(HISTORY, k);
    }
    Ok(true)
}
