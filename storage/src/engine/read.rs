//! Reads: the one row reader every read goes through, and the read view that
//! pins what a query reads.
//!
//! [`RowReader`] assembles users' rows ([`UserRow`]) through one storage
//! snapshot, fetching only what [`RowNeeds`] names: the features record (the
//! list of users) always, the attributes record, sgd vectors and window
//! buckets when asked. Point reads, batched reads and scans all end in
//! [`RowReader::fill`]. A scan walks the features family and, when attributes
//! are needed, the attributes family in lockstep with it, so a filter on an
//! attribute costs an iterator step per user, not a point lookup.
//!
//! Everything else reads rows through it: profiles ([`Profile::from_row`]),
//! the vector index's build and refresh, and the query executor through
//! [`ReadView`].

use std::sync::Arc;

use parking_lot::RwLockReadGuard;
use rayon::prelude::*;

use super::Engine;
use super::index::{Pinned, Pins, State};
use super::rows::RowTable;
use crate::catalog::{Bindings, EventBindings, META_ID, WindowDef};
use crate::error::{Error, Result};
use crate::event;
use crate::history::{self, Entry, Write as HistoryWrite};
use crate::keys;
use crate::kv::{ATTRIBUTES, FEATURES, HISTORY, Kv, KvIter, KvSnapshot, Merge, VECTORS, WINDOWS};
use crate::merge::cell::Cell;
use crate::merge::record::Record;
use crate::merge::vector::VectorValue;
use crate::merge::window::Bucket;
use crate::profile::{Profile, ProfileRef};
use crate::row::{RowNeeds, UserRange, UserRow, WindowNeed, vector_needs};
use crate::time::now_ms;
use crate::value::Value;
use crate::vector::{IndexTable, Metric};

/// Reads rows through one snapshot; see the module documentation.
pub(crate) struct RowReader<'s, S: KvSnapshot + 's> {
    snap: &'s S,
    /// The windows iterator, made on first use.
    windows: Option<S::Iter<'s>>,
    /// Whether the reader reads one user alone, whose window keys bound its
    /// windows iterator.
    one_user: bool,
    /// The clock window retention counts from: the view's, or the wall
    /// clock's when the reader was made at once.
    now: i64,
    /// The catalog that history is replayed with ([`RowNeeds::history_as_of`]);
    /// without it the stored state is read.
    bindings: Option<&'s Bindings>,
}

impl<'s, S: KvSnapshot> RowReader<'s, S> {
    pub(crate) fn new(snap: &'s S) -> RowReader<'s, S> {
        RowReader {
            snap,
            windows: None,
            one_user: false,
            now: now_ms(),
            bindings: None,
        }
    }

    /// A reader of one user: its windows iterator is confined to the user's
    /// window keys, which lets RocksDB skip every file that holds none.
    fn for_user(snap: &'s S) -> RowReader<'s, S> {
        RowReader {
            snap,
            windows: None,
            one_user: true,
            now: now_ms(),
            bindings: None,
        }
    }

    /// The reader of a view: replaying history with `bindings` when needs ask
    /// for it, and counting window retention from `now`.
    fn of_view(mut self, bindings: &'s Bindings, now: i64) -> RowReader<'s, S> {
        self.bindings = Some(bindings);
        self.now = now;
        self
    }

    /// Builds the row of the user whose features key is `key`; `false` when
    /// the user did not exist at the time needs read history as of.
    fn row(
        &mut self,
        key: &[u8],
        features: &[u8],
        attributes: Option<&[u8]>,
        needs: &RowNeeds,
        row: &mut UserRow,
    ) -> Result<bool> {
        let user = keys::user_of(key)
            .ok_or_else(|| Error::corruption(FEATURES, key, "key is not a user key"))?;
        row.user.clear();
        row.user.push_str(user);
        row.features = Record::decode(features).map_err(|e| Error::corruption(FEATURES, key, e))?;
        if let Some(as_of) = needs.history_as_of
            && self.bindings.is_some()
            && last_write(&row.features).is_none_or(|last| last > as_of)
        {
            // A write after `as_of`: the stored state holds it, the history
            // can leave it out.
            return self.replay(row, needs, as_of);
        }
        row.attributes = match attributes {
            Some(a) => Record::decode(a).map_err(|e| Error::corruption(ATTRIBUTES, key, e))?,
            None => Record::default(),
        };
        self.fill(row, needs)?;
        Ok(true)
    }

    /// Rebuilds `row` (its user set) from the user's history up to `as_of`:
    /// the base state older writes were folded into, then every write with a
    /// time at or before it, planned as it was accepted and merged as the
    /// store merges (sgd steps in write order). `false` when there is none:
    /// the user did not exist yet.
    fn replay(&mut self, row: &mut UserRow, needs: &RowNeeds, as_of: i64) -> Result<bool> {
        let mut found = false;
        self.replay_asks(row, &[(as_of, needs)], &|_| true, &mut |_, r| {
            found = r.is_some();
            Ok(())
        })?;
        Ok(found)
    }

    /// Fills `row` (its user set) from a replayed `state`, as `needs` asks;
    /// the state stays as it was, to go on merging.
    fn row_of(&self, state: &mut Replay, row: &mut UserRow, needs: &RowNeeds) -> Result<()> {
        let mut features = state.features.clone();
        features.finalize();
        row.features = features;
        row.attributes = if needs.attributes {
            let mut attributes = state.attributes.clone();
            attributes.finalize();
            attributes
        } else {
            Record::default()
        };
        row.sgd.clear();
        for &id in &needs.sgd {
            let key = keys::vector_key(&row.user, id);
            let state = state
                .sgd_state(id)
                .map_err(|e| Error::corruption(HISTORY, &key, e))?;
            row.sgd
                .push((id, current_sgd(state.as_deref(), HISTORY, &key)?));
        }
        let buckets = &state.buckets;
        row.windows.resize_with(needs.windows.len(), Vec::new);
        for (w, out) in needs.windows.iter().zip(&mut row.windows) {
            out.clear();
            let Some((first, last)) = w.bucket_span() else {
                continue;
            };
            out.extend(
                buckets
                    .range((w.id, first)..=(w.id, last))
                    .filter(|((_, start), _)| !w.expired(*start, self.now))
                    .map(|((_, start), b)| (*start, *b)),
            );
        }
        Ok(())
    }

    /// The rows of `user` as of each time of `asks` (ascending), each read
    /// as its needs ask, reading the user's history once: every write up to
    /// the latest time is merged in time order, and each row is taken when
    /// the merge reaches its time. A time at or after the user's last write
    /// reads the stored state. `emit` gets each ask's index and row (`None`
    /// when the user did not exist then).
    pub(crate) fn rows_as_of(
        &mut self,
        user: &str,
        asks: &[(i64, &RowNeeds)],
        emit: &mut dyn FnMut(usize, Option<&UserRow>) -> Result<()>,
    ) -> Result<()> {
        let key = keys::user_key(user);
        let Some(feats) = self.snap.get(FEATURES, &key)? else {
            for i in 0..asks.len() {
                emit(i, None)?;
            }
            return Ok(());
        };
        let stored = Record::decode(&feats).map_err(|e| Error::corruption(FEATURES, &key, e))?;
        let last = last_write(&stored);
        let replays = |t: i64| last.is_none_or(|last| last > t);
        if self.bindings.is_none() || !asks.iter().any(|(t, _)| replays(*t)) {
            // Every time reads the stored state.
            for (i, (_, needs)) in asks.iter().enumerate() {
                emit(i, self.get(user, needs)?.as_ref())?;
            }
            return Ok(());
        }
        let mut row = UserRow {
            user: user.to_owned(),
            ..UserRow::default()
        };
        self.replay_asks(&mut row, asks, &replays, emit)
    }

    /// Replays the history of `row`'s user up to the latest of `asks`
    /// (ascending) that `replays`, merging only what those asks read
    /// ([`Wanted`]), and gives `emit` each ask's row as the merge reaches its
    /// time, filled into `row`: `None` when the user did not exist then. An
    /// ask that does not replay reads the stored state.
    fn replay_asks(
        &mut self,
        row: &mut UserRow,
        asks: &[(i64, &RowNeeds)],
        replays: &dyn Fn(i64) -> bool,
        emit: &mut dyn FnMut(usize, Option<&UserRow>) -> Result<()>,
    ) -> Result<()> {
        let bindings = self.bindings.expect("replay has bindings");
        let replayed = || asks.iter().filter(|(t, _)| replays(*t));
        let cutoff = history_cutoff(self.snap)?;
        if let Some((t, _)) = replayed().find(|(t, _)| *t < cutoff) {
            return Err(Error::InvalidArgument(format!(
                "AS OF {} is before the oldest time the event history answers, {}",
                crate::time::format_timestamp(*t),
                crate::time::format_timestamp(cutoff)
            )));
        }
        let upto = replayed().map(|(t, _)| *t).max().unwrap_or(i64::MIN);
        let wanted = Wanted::of(bindings, replayed().map(|(_, needs)| *needs));
        let mut state = Replay::default();
        let mut any = state.read_base(self.snap, &row.user, &wanted)?;
        let mut planner = Planner::new(bindings, wanted);
        let (lo, hi) = history::entry_range(&row.user, i64::MIN, upto);
        let mut it = self.snap.iter(HISTORY, Some(lo.clone()), Some(hi))?;
        it.seek(&lo);
        let mut next = 0;
        let mut entry = Entry::default();
        loop {
            let key = it.key();
            if let Some(k) = key {
                entry
                    .decode_into(k, it.value())
                    .map_err(|e| Error::corruption(HISTORY, k, e))?;
            }
            let ts = key.map_or(i64::MAX, |_| entry.write.ts());
            // Every ask before this write reads the state as it is.
            while next < asks.len() && asks[next].0 < ts {
                let (t, needs) = asks[next];
                if !replays(t) {
                    emit(next, self.get(&row.user, needs)?.as_ref())?;
                } else if any {
                    self.row_of(&mut state, row, needs)?;
                    emit(next, Some(row))?;
                } else {
                    emit(next, None)?;
                }
                next += 1;
            }
            let Some(k) = key else { break };
            planner
                .plan(&entry, &mut state)
                .map_err(|e| no_replay(k, &e))?;
            any = true;
            it.next();
        }
        it.status()
    }

    /// Fills `row`'s sgd vectors and window buckets, as `needs` asks.
    fn fill(&mut self, row: &mut UserRow, needs: &RowNeeds) -> Result<()> {
        row.sgd.clear();
        for &id in &needs.sgd {
            let vk = keys::vector_key(&row.user, id);
            let stored = self.snap.get(VECTORS, &vk)?;
            row.sgd
                .push((id, current_sgd(stored.as_deref(), VECTORS, &vk)?));
        }
        row.windows.resize_with(needs.windows.len(), Vec::new);
        // Every event writes its window buckets and its time into the user
        // cell in one batch, so the user's buckets all start between the
        // buckets of its first and last times: a span outside them needs no
        // seek (most users, for a recent span).
        let seen = match row.features.cell(META_ID) {
            Some(Cell::Meta { first, last, .. }) => Some((*first, *last)),
            _ => None,
        };
        for (w, out) in needs.windows.iter().zip(&mut row.windows) {
            out.clear();
            if seen.is_some_and(|(first, last)| !w.may_hold(first, last)) {
                continue;
            }
            let it = match &mut self.windows {
                Some(it) => it,
                none => {
                    let (lower, upper) = if self.one_user {
                        let (lo, hi) = keys::user_range(&row.user);
                        (Some(lo), Some(hi))
                    } else {
                        (None, None)
                    };
                    none.insert(self.snap.iter(WINDOWS, lower, upper)?)
                }
            };
            read_buckets(it, &row.user, w, self.now, out)?;
        }
        Ok(())
    }

    /// The row of `user`, or `None` when the user does not exist.
    pub(crate) fn get(&mut self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>> {
        let key = keys::user_key(user);
        let Some(feats) = self.snap.get(FEATURES, &key)? else {
            return Ok(None);
        };
        let attrs = if needs.attributes {
            self.snap.get(ATTRIBUTES, &key)?
        } else {
            None
        };
        let mut row = UserRow::default();
        Ok(self
            .row(&key, &feats, attrs.as_deref(), needs, &mut row)?
            .then_some(row))
    }

    /// The rows of `users` (sorted), by batched lookups.
    pub(crate) fn get_many(
        &mut self,
        users: &[impl AsRef<str>],
        needs: &RowNeeds,
    ) -> Result<Vec<Option<UserRow>>> {
        // User keys sort as their ids do, so the batch is sorted.
        let keys: Vec<Vec<u8>> = users.iter().map(|u| keys::user_key(u.as_ref())).collect();
        let feats = self.snap.multi_get(FEATURES, &keys)?;
        let attrs = if needs.attributes {
            Some(self.snap.multi_get(ATTRIBUTES, &keys)?)
        } else {
            None
        };
        let mut out = Vec::with_capacity(users.len());
        for (i, (key, f)) in keys.iter().zip(&feats).enumerate() {
            let Some(f) = f else {
                out.push(None);
                continue;
            };
            let a = attrs.as_ref().and_then(|a| a[i].as_deref());
            let mut row = UserRow::default();
            let exists = self.row(key, f, a, needs, &mut row)?;
            out.push(exists.then_some(row));
        }
        Ok(out)
    }

    /// Calls `visit` with the row of every user in `range`, in id order, until
    /// it returns `false`. The row is reused between calls.
    pub(crate) fn scan(
        &mut self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        let upper = range.end.as_deref().map(keys::user_key);
        let start = range.start.as_deref().map(keys::user_key);
        let seek = |it: &mut S::Iter<'s>| match &start {
            Some(s) => it.seek(s),
            None => it.seek_to_first(),
        };
        let snap = self.snap;
        let mut feats = snap.iter(FEATURES, None, upper.clone())?;
        seek(&mut feats);
        let mut attrs = if needs.attributes {
            let mut it = snap.iter(ATTRIBUTES, None, upper)?;
            seek(&mut it);
            Some(it)
        } else {
            None
        };
        let mut row = UserRow::default();
        while let Some(key) = feats.key() {
            let a = match attrs.as_mut() {
                Some(it) => {
                    while it.key().is_some_and(|k| k < key) {
                        it.next();
                    }
                    (it.key() == Some(key)).then(|| it.value())
                }
                None => None,
            };
            if self.row(key, feats.value(), a, needs, &mut row)? && !visit(&row) {
                return Ok(());
            }
            feats.next();
        }
        feats.status()?;
        if let Some(it) = &attrs {
            it.status()?;
        }
        Ok(())
    }
}

/// The key of the time before which the event history has been folded into
/// base states, in the catalog family.
pub(crate) const HISTORY_CUTOFF_KEY: &[u8] = b"history.cutoff";

/// The time before which history was folded into base states: `AS OF` an
/// earlier time cannot be answered for a user written since. `i64::MIN` when
/// nothing was folded.
pub(crate) fn history_cutoff<S: KvSnapshot>(snap: &S) -> Result<i64> {
    Ok(match snap.get(crate::kv::CATALOG, HISTORY_CUTOFF_KEY)? {
        Some(v) => {
            let b: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                Error::corruption(crate::kv::CATALOG, HISTORY_CUTOFF_KEY, "not 8 bytes")
            })?;
            i64::from_be_bytes(b)
        }
        None => i64::MIN,
    })
}

/// Plans history entries with the definitions that existed when each was
/// accepted (today's, but only those made by then, or computed over the
/// history when they were made): what replay and the fold of old history
/// both merge.
pub(crate) struct Planner<'b> {
    current: &'b Bindings,
    /// Past versions' bindings met so far.
    versions: Vec<Arc<Bindings>>,
    /// What the replays it plans for merge.
    wanted: Wanted,
    /// What each (catalog version, event type) met so far feeds, of what
    /// [`Planner::wanted`] takes: looked up and narrowed once, not for
    /// every write.
    events: Vec<(u64, String, Option<EventBindings>)>,
}

impl<'b> Planner<'b> {
    /// The most (version, event type) pairs [`Planner::events`] keeps.
    const EVENTS_KEPT: usize = 64;

    pub(crate) fn new(current: &'b Bindings, wanted: Wanted) -> Planner<'b> {
        Planner {
            current,
            versions: Vec::new(),
            wanted,
            events: Vec::new(),
        }
    }

    /// The catalog entries are planned with when they were accepted under
    /// it or since.
    pub(crate) fn current(&self) -> &Bindings {
        self.current
    }

    /// Where [`Planner::versions`] holds the bindings of `version`, made
    /// on first use; `None` for today's.
    fn version_index(&mut self, version: u64) -> Option<usize> {
        let past = self.current.at_version(version)?;
        Some(
            match self
                .versions
                .iter()
                .position(|b| b.catalog.version == version)
            {
                Some(at) => at,
                None => {
                    self.versions.push(past);
                    self.versions.len() - 1
                }
            },
        )
    }

    /// Where [`Planner::events`] holds what `event_type` feeds at `version`.
    fn event_at(&mut self, version: u64, event_type: &str) -> usize {
        if let Some(at) = self
            .events
            .iter()
            .position(|(v, t, _)| *v == version && t == event_type)
        {
            return at;
        }
        if self.events.len() >= Self::EVENTS_KEPT {
            self.events.clear();
        }
        let b = match self.version_index(version) {
            Some(at) => &*self.versions[at],
            None => self.current,
        };
        let bound = b.event(event_type).map(|b| self.wanted.narrow(b));
        self.events.push((version, event_type.to_owned(), bound));
        self.events.len() - 1
    }

    /// Merges into `state` what `entry` changes, of what the planner's
    /// [`Wanted`] takes. Items dropped since leave nothing to plan: an event
    /// whose type nothing is bound to any more still counts in the user
    /// cell, as in the stored state, and a dropped attribute's value is
    /// gone. After an error the state holds part of the write.
    ///
    /// # Errors
    /// Why the write does not plan, or does not merge into the state.
    pub(crate) fn plan(
        &mut self,
        entry: &Entry,
        state: &mut Replay,
    ) -> std::result::Result<(), String> {
        let seq = entry.seq;
        match &entry.write {
            // Accepted once, so checked once: only the fields the items
            // bind are read.
            HistoryWrite::Event(ev) => {
                let at = self.event_at(entry.version, &ev.event_type);
                let mut out = Merging {
                    state,
                    seq,
                    wanted: &self.wanted,
                };
                match &self.events[at].2 {
                    None => event::seen(ev.ts, &mut out),
                    Some(bound) => {
                        event::plan_bound(bound, ev, &mut out).map_err(|e| e.to_string())
                    }
                }
            }
            HistoryWrite::Attributes { user, ts, values } => {
                let b = match self.version_index(entry.version) {
                    Some(at) => &*self.versions[at],
                    None => self.current,
                };
                let live: Vec<(String, Value)> = values
                    .iter()
                    .filter(|(name, _)| b.catalog.attribute(name).is_some())
                    .cloned()
                    .collect();
                let mut out = Merging {
                    state,
                    seq,
                    wanted: &self.wanted,
                };
                event::plan_attributes_into(b, user, *ts, &live, &mut out)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// A user's state as history rebuilds it: the base state, then writes.
#[derive(Default)]
pub(crate) struct Replay {
    pub features: Record,
    pub attributes: Record,
    pub buckets: std::collections::BTreeMap<(u32, i64), Bucket>,
    /// sgd vectors' states from the base, by definition.
    pub sgd_base: std::collections::BTreeMap<u32, Vec<u8>>,
    /// sgd steps since, as (sequence number, definition, step).
    pub steps: Vec<(u64, u32, Vec<u8>)>,
}

impl Replay {
    /// Starts from `user`'s base state and merges every entry with a time at
    /// or before `upto`, as `planner` plans it (what its [`Wanted`] takes),
    /// returning whether there was anything; each entry read is shown to
    /// `visit`.
    pub(crate) fn read<S: KvSnapshot>(
        &mut self,
        snap: &S,
        planner: &mut Planner<'_>,
        user: &str,
        upto: i64,
        visit: &mut dyn FnMut(&[u8], &Entry),
    ) -> Result<bool> {
        let mut any = self.read_base(snap, user, &planner.wanted)?;
        let (lo, hi) = history::entry_range(user, i64::MIN, upto);
        let mut it = snap.iter(HISTORY, Some(lo.clone()), Some(hi))?;
        it.seek(&lo);
        let mut entry = Entry::default();
        while let Some(k) = it.key() {
            let bad = |e: &dyn std::fmt::Display| Error::corruption(HISTORY, k, e);
            entry.decode_into(k, it.value()).map_err(|e| bad(&e))?;
            planner.plan(&entry, self).map_err(|e| no_replay(k, &e))?;
            visit(k, &entry);
            any = true;
            it.next();
        }
        it.status()?;
        Ok(any)
    }

    /// Starts from `user`'s base state (its window buckets and sgd vectors
    /// only where `wanted` takes them); whether there is one.
    pub(crate) fn read_base<S: KvSnapshot>(
        &mut self,
        snap: &S,
        user: &str,
        wanted: &Wanted,
    ) -> Result<bool> {
        let base_key = history::base_key(user);
        let Some(b) = snap.get(HISTORY, &base_key)? else {
            return Ok(false);
        };
        let base =
            history::Base::decode(&b).map_err(|e| Error::corruption(HISTORY, &base_key, e))?;
        self.features = base.features;
        self.attributes = base.attributes;
        self.buckets = base
            .windows
            .into_iter()
            .filter(|((d, start), _)| wanted.bucket(*d, *start))
            .collect();
        self.sgd_base = base
            .sgd
            .into_iter()
            .filter(|(d, _)| wanted.wants(*d))
            .collect();
        Ok(true)
    }

    /// The state of sgd vector `def`: the base's, then the steps since in
    /// write order. `None` when there is neither.
    pub(crate) fn sgd_state(
        &mut self,
        def: u32,
    ) -> std::result::Result<Option<Vec<u8>>, crate::codec::DecodeError> {
        self.steps.sort_by_key(|s| s.0);
        let ops: Vec<&[u8]> = self
            .steps
            .iter()
            .filter(|s| s.1 == def)
            .map(|s| s.2.as_slice())
            .collect();
        let base = self.sgd_base.get(&def);
        if ops.is_empty() {
            return Ok(base.cloned());
        }
        Merge::Sgd.full(base.map(Vec::as_slice), ops).map(Some)
    }
}

/// What a replay merges: every item's changes, to rebuild a whole state
/// ([`Wanted::ALL`]), or only those of the items some reads use
/// ([`Wanted::of`]), so that reading a few columns as of a time does not
/// merge every item of every write. The user cell is always merged.
#[derive(Debug)]
pub(crate) struct Wanted {
    /// Ids of the items taken (features-record items, attributes, windows,
    /// sgd vectors), sorted; `None` takes every one.
    ids: Option<Vec<u32>>,
    /// The window buckets taken, as (window, first start, last start);
    /// `None` takes every one.
    buckets: Option<Vec<(u32, i64, i64)>>,
}

impl Wanted {
    /// Every item's changes.
    pub(crate) const ALL: Wanted = Wanted {
        ids: None,
        buckets: None,
    };

    /// What rows read as `needs` use, of a catalog bound as `bindings`.
    fn of<'n>(bindings: &Bindings, needs: impl IntoIterator<Item = &'n RowNeeds>) -> Wanted {
        let mut ids = Some(Vec::new());
        let mut buckets = Vec::new();
        let mut attributes = false;
        for n in needs {
            match (&mut ids, &n.items) {
                (Some(ids), Some(items)) => ids.extend(items.iter().chain(&n.sgd)),
                (ids, _) => *ids = None,
            }
            attributes |= n.attributes;
            buckets.extend(
                n.windows
                    .iter()
                    .filter_map(|w| w.bucket_span().map(|(first, last)| (w.id, first, last))),
            );
        }
        if let Some(ids) = &mut ids {
            ids.extend(buckets.iter().map(|b| b.0));
            if attributes {
                ids.extend(bindings.catalog.attributes.iter().map(|a| a.id));
            }
            ids.sort_unstable();
            ids.dedup();
        }
        Wanted {
            ids,
            buckets: Some(buckets),
        }
    }

    /// Whether item `id`'s changes are taken.
    fn wants(&self, id: u32) -> bool {
        id == META_ID
            || self
                .ids
                .as_ref()
                .is_none_or(|ids| ids.binary_search(&id).is_ok())
    }

    /// What of `b` (an event type's bindings) is taken.
    fn narrow(&self, b: &EventBindings) -> EventBindings {
        EventBindings {
            attributes: self.taken(&b.attributes, |d| d.id),
            features: self.taken(&b.features, |d| d.id),
            windows: self.taken(&b.windows, |d| d.id),
            vectors: self.taken(&b.vectors, |d| d.id),
            // Accepted once, so checked once: never admitted again.
            declared: None,
        }
    }

    /// The definitions of `defs` whose items are taken.
    fn taken<T: Clone>(&self, defs: &[T], id: impl Fn(&T) -> u32) -> Vec<T> {
        defs.iter().filter(|d| self.wants(id(d))).cloned().collect()
    }

    /// Whether window `window`'s bucket starting at `start` is taken.
    fn bucket(&self, window: u32, start: i64) -> bool {
        self.buckets.as_ref().is_none_or(|b| {
            b.iter()
                .any(|&(w, first, last)| w == window && first <= start && start <= last)
        })
    }
}

/// A replayed state taking one write's changes as they are planned.
struct Merging<'r, 'w> {
    state: &'r mut Replay,
    /// The write's sequence number, which orders sgd steps.
    seq: u64,
    wanted: &'w Wanted,
}

impl event::Changes for Merging<'_, '_> {
    fn feature(&mut self, id: u32, cell: Cell) -> std::result::Result<(), String> {
        self.state
            .features
            .merge_cell(id, cell)
            .map_err(|e| format!("the state does not merge: {e}"))
    }

    fn attribute(&mut self, id: u32, cell: Cell) -> std::result::Result<(), String> {
        self.state
            .attributes
            .merge_cell(id, cell)
            .map_err(|e| format!("the state does not merge: {e}"))
    }

    fn bucket(&mut self, window: u32, start: i64, bucket: Bucket) {
        if self.wanted.bucket(window, start) {
            self.state
                .buckets
                .entry((window, start))
                .and_modify(|x| x.merge(&bucket))
                .or_insert(bucket);
        }
    }

    fn sgd(&mut self, vector: u32, step: VectorValue) {
        self.state.steps.push((self.seq, vector, step.encode()));
    }

    fn ewma(&mut self, id: u32, h: i64, ts: i64, x: &[f32]) -> std::result::Result<(), String> {
        match self.state.features.cell_mut(id) {
            Some(Cell::Ewma(e)) if e.h == h => e
                .merge_single(ts, x)
                .map_err(|e| format!("the state does not merge: {e}")),
            _ => self.feature(id, Cell::Ewma(crate::merge::vector::Ewma::single(h, ts, x))),
        }
    }
}

/// The error of history entry `key`, which does not replay.
fn no_replay(key: &[u8], why: &str) -> Error {
    Error::corruption(HISTORY, key, format!("the write no longer replays: {why}"))
}

/// The current vector of an sgd state stored in family `cf` under `key`.
fn current_sgd(state: Option<&[u8]>, cf: &'static str, key: &[u8]) -> Result<Option<Vec<f32>>> {
    match state {
        Some(b) => Ok(VectorValue::decode(b)
            .map_err(|e| Error::corruption(cf, key, e))?
            .current()),
        None => Ok(None),
    }
}

/// The time of the latest write a features record holds (its user cell's).
fn last_write(features: &Record) -> Option<i64> {
    match features.cell(META_ID) {
        Some(Cell::Meta { last, .. }) => Some(*last),
        _ => None,
    }
}

/// Appends to `out` the buckets of window `w` for `user` that overlap
/// `[w.from, w.to]`, oldest first, but for those past the window's retention
/// at `now`. A bucket that starts before `from` but reaches into the range
/// counts whole.
fn read_buckets<I: KvIter>(
    it: &mut I,
    user: &str,
    w: &WindowNeed,
    now: i64,
    out: &mut Vec<(i64, Bucket)>,
) -> Result<()> {
    let Some((first, last)) = w.bucket_span() else {
        return Ok(());
    };
    let first = keys::window_key(user, w.id, first);
    let last = keys::window_key(user, w.id, last);
    it.seek(&first);
    while let Some(k) = it.key() {
        if k > last.as_slice() {
            break;
        }
        let start = keys::split(k)
            .and_then(|(_, _, tail)| keys::bucket_of(tail))
            .ok_or_else(|| Error::corruption(WINDOWS, k, "malformed window key"))?;
        let b = Bucket::decode(it.value()).map_err(|e| Error::corruption(WINDOWS, k, e))?;
        if !w.expired(start, now) {
            out.push((start, b));
        }
        it.next();
    }
    it.status()
}

/// What a profile reads: everything, with windows over `[as_of - span, as_of]`,
/// as of `as_of` from the event history when the database keeps one.
pub(crate) fn profile_needs(bindings: &Bindings, as_of: i64, span: i64) -> RowNeeds {
    RowNeeds {
        history_as_of: (bindings.catalog.history_ms > 0).then_some(as_of),
        windows: bindings
            .catalog
            .windows
            .iter()
            .map(|d: &WindowDef| WindowNeed::of(d, as_of.saturating_sub(span), as_of))
            .collect(),
        ..vector_needs(bindings)
    }
}

/// Whether a ranking admits a user, by id and attributes (the row holds the
/// attributes record only).
pub type Admit<'f> = &'f (dyn Fn(&str, Option<&UserRow>) -> bool + Sync);

/// Which users a ranking ([`ReadView::nearest`]) admits.
#[derive(Default)]
pub struct NearestFilter<'f> {
    /// Only users whose attribute (by id) holds one of these values: ranking
    /// visits those users' rows alone. Ints, strings and bools only.
    pub attribute: Option<(u32, &'f [Value])>,
    /// Whether to admit a user.
    pub keep: Option<Admit<'f>>,
    /// Only these users (those a scan found to match a predicate).
    pub users: Option<&'f std::collections::HashSet<String>>,
    /// Rank by the exact scan even when the vector has an index.
    pub exact: bool,
    /// Lists an index probes, in place of its own number (clamped to its lists).
    pub probes: Option<usize>,
}

impl std::fmt::Debug for NearestFilter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearestFilter")
            .field("attribute", &self.attribute)
            .field("keep", &self.keep.is_some())
            .field("users", &self.users.map(std::collections::HashSet::len))
            .field("exact", &self.exact)
            .field("probes", &self.probes)
            .finish()
    }
}

/// One consistent view of the database: the catalog, a storage snapshot and,
/// when asked for, the vector index and the row table, all of one moment.
/// Every read of a query goes through one view. It is `Sync`: scans of
/// disjoint ranges may run on different threads and all see the same data.
pub struct ReadView<'a, K: Kv> {
    kv: &'a K,
    bindings: Arc<Bindings>,
    snap: K::Snapshot<'a>,
    vectors: Option<RwLockReadGuard<'a, State>>,
    /// The row table, equal to `snap`: scans whose needs it holds read it.
    rows: Option<RowTable>,
    /// The engine's clock when the view was taken: window retention counts
    /// from it.
    now: i64,
}

impl<K: Kv> std::fmt::Debug for ReadView<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView")
            .field("vectors", &self.vectors.is_some())
            .field("rows", &self.rows.as_ref().map(RowTable::len))
            .finish_non_exhaustive()
    }
}

impl<K: Kv> Engine<K> {
    /// A view of the database as it is now, with the indexes `pins` names.
    /// The vector index is brought up to date (built on first use) and pinned
    /// with it; a view that holds it delays the index's next refresh until it
    /// is dropped, so hold it for one answer. The row table is built on first
    /// use too, and never delays anything.
    ///
    /// # Errors
    /// [`Error::Corruption`] or the store's failure, from building or
    /// catching up an index.
    pub fn view(&self, pins: Pins) -> Result<ReadView<'_, K>> {
        if pins != Pins::NONE {
            let Pinned {
                snap,
                bindings,
                vectors,
                rows,
            } = self.index.pin(pins)?;
            return Ok(ReadView {
                kv: &self.kv,
                bindings,
                snap,
                vectors,
                rows,
                now: self.now(),
            });
        }
        // A schema change writes the catalog, then swaps it in, and every
        // write shaped by the new catalog comes after the swap: a snapshot
        // taken between two reads that find the same catalog holds data of
        // that catalog alone. A swap in between (rare) takes another.
        loop {
            let bindings = self.bindings();
            let snap = self.kv.snapshot();
            if Arc::ptr_eq(&bindings, &self.bindings.read()) {
                return Ok(ReadView {
                    kv: &self.kv,
                    bindings,
                    snap,
                    vectors: None,
                    rows: None,
                    now: self.now(),
                });
            }
        }
    }

    /// Whether `user` exists (has had an event or an attribute write).
    ///
    /// # Errors
    /// The store's failure.
    pub fn user_exists(&self, user: &str) -> Result<bool> {
        let snap = self.kv.snapshot();
        Ok(snap.get(FEATURES, &keys::user_key(user))?.is_some())
    }

    /// The profile of `user` as of `as_of`, with window aggregates over the span
    /// `[as_of − window_span_ms, as_of]`. `None` when the user does not exist.
    ///
    /// # Errors
    /// [`Error::Corruption`] naming the column family and key of a value that does
    /// not decode; the store's failure.
    pub fn profile(&self, user: &str, as_of: i64, window_span_ms: i64) -> Result<Option<Profile>> {
        self.view(Pins::NONE)?.profile(user, as_of, window_span_ms)
    }

    /// The buckets of window `window` for `user` overlapping `[from, to]`, oldest
    /// first, as (bucket start, aggregate).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown window; [`Error::Corruption`] for a bad bucket.
    pub fn window_buckets(
        &self,
        user: &str,
        window: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Bucket)>> {
        let view = self.view(Pins::NONE)?;
        let d = view
            .bindings
            .catalog
            .window(window)
            .ok_or_else(|| Error::NotFound {
                kind: "window",
                name: window.to_owned(),
            })?;
        let needs = RowNeeds {
            windows: vec![WindowNeed::of(d, from, to)],
            ..RowNeeds::default()
        };
        Ok(view
            .get(user, &needs)?
            .and_then(|mut r| r.windows.pop())
            .unwrap_or_default())
    }
}

impl<K: Kv> ReadView<'_, K> {
    /// The catalog the view was taken with.
    pub fn bindings(&self) -> &Arc<Bindings> {
        &self.bindings
    }

    /// The row of `user`, or `None` when the user does not exist.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a stored value that does not decode.
    pub fn get(&self, user: &str, needs: &RowNeeds) -> Result<Option<UserRow>> {
        RowReader::for_user(&self.snap)
            .of_view(&self.bindings, self.now)
            .get(user, needs)
    }

    /// The rows of `user` as of each time of `asks`, ascending (each read as
    /// its needs ask; with [`RowNeeds::history_as_of`] set, exactly what the
    /// writes up to then give), reading the user's history once. `emit` gets
    /// each ask's index and row, `None` when the user did not exist then.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a time before the oldest the history
    /// answers, or times out of order; [`Error::Corruption`]; the store's
    /// failure, or `emit`'s.
    pub fn rows_as_of(
        &self,
        user: &str,
        asks: &[(i64, &RowNeeds)],
        emit: &mut dyn FnMut(usize, Option<&UserRow>) -> Result<()>,
    ) -> Result<()> {
        if asks.windows(2).any(|w| w[0].0 > w[1].0) {
            return Err(Error::InvalidArgument(
                "the times of a user's rows must be in ascending order".into(),
            ));
        }
        let mut reader = RowReader::for_user(&self.snap).of_view(&self.bindings, self.now);
        if asks.iter().all(|(_, n)| n.history_as_of.is_none()) {
            reader.bindings = None;
        }
        reader.rows_as_of(user, asks, emit)
    }

    /// Calls `visit` with the row of every user in `range`, in id order, until
    /// it returns `false`. Reads the row table when the view holds it and it
    /// holds `needs` ([`RowNeeds::in_row_table`]); the snapshot otherwise.
    /// Rows hold at least what `needs` asks for.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a key or value that does not decode; the
    /// store's failure.
    pub fn scan(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        match &self.rows {
            Some(rows) if needs.in_row_table() => {
                rows.scan(range, visit);
                Ok(())
            }
            _ => RowReader::new(&self.snap)
                .of_view(&self.bindings, self.now)
                .scan(range, needs, visit),
        }
    }

    /// Whether scans of this view read the row table.
    pub fn reads_row_table(&self) -> bool {
        self.rows.is_some()
    }

    /// [`ReadView::scan`] through the storage snapshot alone, never the row
    /// table: the reference the row table is tested against.
    ///
    /// # Errors
    /// As [`ReadView::scan`].
    #[cfg(feature = "testing")]
    pub fn scan_store(
        &self,
        range: &UserRange,
        needs: &RowNeeds,
        visit: &mut dyn FnMut(&UserRow) -> bool,
    ) -> Result<()> {
        RowReader::new(&self.snap)
            .of_view(&self.bindings, self.now)
            .scan(range, needs, visit)
    }

    /// Splits the users into at most `n` contiguous ranges of similar size
    /// (as the store can tell), which together cover every user.
    ///
    /// # Errors
    /// The store's failure.
    pub fn split_ranges(&self, n: usize) -> Result<Vec<UserRange>> {
        if let Some(rows) = &self.rows {
            return Ok(rows.split(n));
        }
        let mut bounds: Vec<String> = self
            .kv
            .split_keys(FEATURES, n)?
            .iter()
            .filter_map(|k| keys::user_of(k).map(str::to_owned))
            .collect();
        bounds.dedup();
        Ok(UserRange::cut_at(bounds))
    }

    /// The vector index's table of vector definition `def`, as of the view;
    /// `None` when there is no such vector, or the view was taken without the
    /// index.
    pub fn vectors(&self, def: u32) -> Option<&IndexTable> {
        self.vectors.as_ref()?.tables.get(&def)
    }

    /// The `k` users whose vector of definition `def` is closest to `query`
    /// by `metric`, among those `filter` admits, best first (equal scores in
    /// id order), as (user id, score), ranked on the index as of this view:
    /// exactly, or, when the vector has a built IVF index and `filter` does
    /// not ask for the exact scan, approximately (the candidates of the
    /// probed lists, re-ranked exactly). Every user returned is in this
    /// view's data, and its score is the metric of the vector
    /// [`ReadView::get`] reads for it. Empty when the view holds no index or
    /// there is no such vector.
    pub fn nearest(
        &self,
        def: u32,
        query: &[f32],
        metric: Metric,
        k: usize,
        filter: &NearestFilter<'_>,
    ) -> Vec<(String, f64)> {
        self.nearest_batch(def, &[query], metric, k, filter)
            .pop()
            .unwrap_or_default()
    }

    /// [`ReadView::nearest`] for many query vectors in one pass over the
    /// index (for lookalike and recommendation jobs): one answer per query,
    /// in order, each equal to that query's own `nearest`. A query of the
    /// wrong dimension gets an empty answer.
    pub fn nearest_batch(
        &self,
        def: u32,
        queries: &[&[f32]],
        metric: Metric,
        k: usize,
        filter: &NearestFilter<'_>,
    ) -> Vec<Vec<(String, f64)>> {
        let Some(t) = self.vectors(def) else {
            return vec![Vec::new(); queries.len()];
        };
        let admit = |row: usize| match filter.keep {
            Some(keep) => t
                .table
                .id(row)
                .is_some_and(|id| keep(id, t.users.get(row).and_then(Option::as_deref))),
            None => true,
        };
        // Without a filter every row is scored: spare each one the call.
        let all = |_: usize| true;
        let keep: &(dyn Fn(usize) -> bool + Sync) =
            if filter.keep.is_some() { &admit } else { &all };
        // Rank only the rows an attribute's posting lists and the given
        // users admit; `keep` still checks the whole filter on each.
        let by_attribute = filter.attribute.and_then(|(id, values)| {
            let mut rows = roaring::RoaringBitmap::new();
            for v in values {
                rows |= t.rows_with(id, v)?;
            }
            Some(rows)
        });
        let by_user = filter.users.map(|users| {
            users
                .iter()
                .filter_map(|u| u32::try_from(t.table.row_of(u)?).ok())
                .collect::<roaring::RoaringBitmap>()
        });
        let within = match (by_attribute, by_user) {
            (Some(a), Some(u)) => Some(a & u),
            (a, u) => a.or(u),
        };
        // The index, unless asked not to, or the filter keeps no more rows
        // than its probes would score: an exact scan of those costs no more.
        let ivf = t.ivf.as_ref().filter(|ivf| {
            !filter.exact
                && within
                    .as_ref()
                    .is_none_or(|w| w.len() > ivf.rows_probed(filter.probes) as u64)
        });
        // The ranking asks the filter only of rows that score high enough to
        // enter the best k so far, so a filter that excludes few users costs
        // little more than none.
        let hits = match (ivf, &within) {
            (Some(ivf), _) => queries
                .par_iter()
                .map(|q| ivf.search(&t.table, q, metric, k, filter.probes, within.as_ref(), keep))
                .collect(),
            (None, Some(rows)) => {
                let rows: Vec<u32> = rows.iter().collect();
                queries
                    .iter()
                    .map(|q| t.table.top_k_among(&rows, q, metric, k, keep))
                    .collect()
            }
            (None, None) if queries.len() == 1 => {
                vec![t.table.top_k(queries[0], metric, k, keep)]
            }
            (None, None) => t.table.top_k_batch(queries, metric, k, keep),
        };
        hits.into_iter()
            .map(|hits| {
                hits.into_iter()
                    .filter_map(|h| Some((t.table.id(h.row)?.to_owned(), h.score)))
                    .collect()
            })
            .collect()
    }

    /// The profile of `user` as of `as_of`, with window aggregates over
    /// `[as_of − window_span_ms, as_of]`; `None` when the user does not exist.
    ///
    /// # Errors
    /// As [`ReadView::get`].
    pub fn profile(&self, user: &str, as_of: i64, window_span_ms: i64) -> Result<Option<Profile>> {
        let needs = profile_needs(&self.bindings, as_of, window_span_ms);
        let Some(row) = self.get(user, &needs)? else {
            return Ok(None);
        };
        Profile::from_row(&self.bindings.catalog, &row, &needs, as_of).map(Some)
    }

    /// [`ReadView::profile`] of each of `users`, in their order, as
    /// [`ReadView::profile_rows`] reads them.
    ///
    /// # Errors
    /// As [`ReadView::get`].
    pub fn profiles(
        &self,
        users: &[impl AsRef<str>],
        as_of: i64,
        window_span_ms: i64,
    ) -> Result<Vec<Option<Profile>>> {
        let rows = self.profile_rows(users, as_of, window_span_ms)?;
        (0..rows.len())
            .map(|i| Ok(rows.get(i)?.map(|p| p.to_profile())))
            .collect()
    }

    /// The rows of `users` read for their profiles as of `as_of`, windows
    /// aggregated over the span ending then: a point read for one user (its
    /// window seek stays within the user's keys), one batch otherwise (a
    /// multi-get per family in key order, and windows by one iterator moving
    /// forward over everyone's).
    ///
    /// # Errors
    /// As [`ReadView::get`].
    pub fn profile_rows(
        &self,
        users: &[impl AsRef<str>],
        as_of: i64,
        window_span_ms: i64,
    ) -> Result<ProfileRows> {
        let needs = profile_needs(&self.bindings, as_of, window_span_ms);
        let (rows, at) = match users {
            [one] => (vec![self.get(one.as_ref(), &needs)?], vec![0]),
            _ => {
                // User keys sort as their ids do.
                let mut order: Vec<usize> = (0..users.len()).collect();
                order.sort_by(|&a, &b| users[a].as_ref().cmp(users[b].as_ref()));
                let sorted: Vec<&str> = order.iter().map(|&i| users[i].as_ref()).collect();
                let rows = RowReader::new(&self.snap)
                    .of_view(&self.bindings, self.now)
                    .get_many(&sorted, &needs)?;
                let mut at = vec![0; users.len()];
                for (k, &i) in order.iter().enumerate() {
                    at[i] = k;
                }
                (rows, at)
            }
        };
        Ok(ProfileRows {
            bindings: Arc::clone(&self.bindings),
            needs,
            as_of,
            rows,
            at,
        })
    }
}

/// The rows of some users read for their profiles
/// ([`ReadView::profile_rows`]): each user's [`ProfileRef`], in the order
/// the users were asked for.
#[derive(Debug)]
pub struct ProfileRows {
    bindings: Arc<Bindings>,
    needs: RowNeeds,
    as_of: i64,
    /// The rows, in key order; `None` for a user that does not exist.
    rows: Vec<Option<UserRow>>,
    /// For each user asked for, the index of its row.
    at: Vec<usize>,
}

impl ProfileRows {
    /// How many users were asked for.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether no user was asked for.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The profile of the `i`-th user asked for; `None` for a user that
    /// does not exist, or past the end.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a features record without the user's cell.
    pub fn get(&self, i: usize) -> Result<Option<ProfileRef<'_>>> {
        let Some(row) = self.at.get(i).and_then(|&r| self.rows.get(r)?.as_ref()) else {
            return Ok(None);
        };
        ProfileRef::new(&self.bindings.catalog, row, &self.needs, self.as_of).map(Some)
    }
}
