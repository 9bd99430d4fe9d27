//! Purging deleted users from disk: `VACUUM`, and the same purge run by itself
//! a while after a delete.
//!
//! A delete is a tombstone per key of the user: the data is hidden at once
//! but its bytes stay on disk until compaction drops them, and the tombstones
//! themselves carry the id. A purge therefore:
//! 1. drops the vector index snapshot file, which is only a cache (the engine
//!    writes it again when it closes, from an index that no longer holds the
//!    deleted users);
//! 2. flushes every memtable, so no write-ahead log file holds a deleted user:
//!    a log is deleted once every family has flushed past it;
//! 3. compacts the deleted users' key ranges in every data family down to the
//!    last level, which drops both the data and the tombstones (all of each
//!    family when the ranges are not known: deletes from before the database
//!    was opened, or more than 10,000 of them);
//! 4. rolls the MANIFEST, whose file entries record each table's first and last
//!    key. RocksDB starts a new MANIFEST with a summary of the live files when
//!    the old one passes `max_manifest_file_size`, so a purge lowers that limit
//!    for its duration (a mutable option, see [`super::ffi`]) and makes one
//!    more small edit after the
//!    compaction: the new MANIFEST then lists only the compacted files.
//!
//! Whether a purge is due survives a crash: every delete writes a marker key
//! (no id in it) in the catalog family in the same batch, and a purge that saw
//! no delete while it ran removes it.
//!
//! A read that holds a snapshot across a purge keeps what it can see, so a
//! long-running query may delay the bytes' removal to the next purge.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use rocksdb::DB;

use super::ffi::{pause_manual_compaction, set_db_options};
use super::{handle, rocks_err, to_last_level};
use crate::error::Result;
use crate::kv::{ALL, CATALOG, DATA};

/// The catalog family's key that says a purge is due.
pub(crate) const PENDING_KEY: &[u8] = b"purge-pending";

/// Past this many deleted users awaiting a purge, it compacts everything
/// rather than one key range per user.
const MAX_RANGES: usize = 10_000;

/// What the purger knows about deletes not yet purged.
#[derive(Debug, Default)]
struct Pending {
    /// Deletes since the database opened. A purge clears the marker only when
    /// none arrived while it ran.
    deletes: u64,
    /// Since when a purge is due, if one is.
    since: Option<Instant>,
    /// The key ranges of the users deleted since the last purge, in order; `None`
    /// when they are not known (deletes from before this open, or too many), and
    /// the purge compacts everything.
    ranges: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// Runs purges: on demand, and from a background thread once one is due.
pub(crate) struct Purger {
    db: Arc<DB>,
    path: PathBuf,
    pending: Mutex<Pending>,
    /// One purge at a time.
    running: Mutex<()>,
}

impl std::fmt::Debug for Purger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Purger {
    /// A purger for an open database; a purge is due at once when the marker
    /// of an earlier run's deletes is there.
    pub(crate) fn new(db: Arc<DB>, path: PathBuf) -> Result<Purger> {
        let marked = db
            .get_pinned_cf(handle(&db, CATALOG)?, PENDING_KEY)
            .map_err(rocks_err)?
            .is_some();
        Ok(Purger {
            db,
            path,
            pending: Mutex::new(Pending {
                deletes: 0,
                since: marked.then(Instant::now),
                ranges: (!marked).then(Vec::new),
            }),
            running: Mutex::new(()),
        })
    }

    /// Runs `write`, a delete's batch (with the marker in it), and records
    /// the delete. The two happen under the lock a purge takes to decide whether
    /// to remove the marker, so that a purge never removes the marker of a delete
    /// it has not seen.
    /// `deleted` are the deleted key ranges, which the purge compacts.
    pub(crate) fn deleting(
        &self,
        deleted: Vec<(Vec<u8>, Vec<u8>)>,
        write: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let mut p = self.pending.lock();
        write()?;
        p.deletes += 1;
        p.since.get_or_insert_with(Instant::now);
        if let Some(ranges) = &mut p.ranges {
            ranges.extend(deleted);
            if ranges.len() > MAX_RANGES {
                p.ranges = None;
            }
        }
        Ok(())
    }

    /// Puts a failed purge off by one more delay.
    fn postpone(&self) {
        let mut p = self.pending.lock();
        if p.since.is_some() {
            p.since = Some(Instant::now());
        }
    }

    /// Whether a purge has been due for at least `delay`.
    fn due(&self, delay: Duration) -> bool {
        self.pending
            .lock()
            .since
            .is_some_and(|s| s.elapsed() >= delay)
    }

    /// Purges every deleted user from every file of the database; see the
    /// module documentation for how. Returns `false`, with the purge still due,
    /// when `deadline` passed first: the compaction is stopped then.
    pub(crate) fn purge(&self, deadline: Option<Instant>) -> Result<bool> {
        let _one = self.running.lock();
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(false);
        }
        let (deletes_before, ranges) = {
            let p = self.pending.lock();
            (p.deletes, p.ranges.clone())
        };
        let snapshot = self.path.join(crate::engine::INDEX_SNAPSHOT_FILE);
        match std::fs::remove_file(snapshot) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        self.db.flush_wal(true).map_err(rocks_err)?;
        for name in ALL {
            self.db
                .flush_cf(handle(&self.db, name)?)
                .map_err(rocks_err)?;
        }
        set_db_options(
            &self.db,
            &[
                ("max_manifest_file_size", "1"),
                ("max_manifest_space_amp_pct", "0"),
            ],
        )?;
        let compacted = self.compact_and_roll(deletes_before, ranges.as_deref(), deadline);
        let restored = set_db_options(
            &self.db,
            &[
                ("max_manifest_file_size", DEFAULT_MAX_MANIFEST),
                ("max_manifest_space_amp_pct", DEFAULT_MANIFEST_AMP),
            ],
        );
        let finished = compacted?;
        restored?;
        Ok(finished)
    }

    /// Compacts the deleted users' key ranges (all of every data family when
    /// they are not known) down to the last level, and rolls the MANIFEST;
    /// `false` when the deadline stopped the compaction first.
    fn compact_and_roll(
        &self,
        deletes_before: u64,
        ranges: Option<&[(Vec<u8>, Vec<u8>)]>,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        let co = to_last_level();
        // A watchdog stops the compaction at the deadline.
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let stopped = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| -> Result<()> {
            if let Some(deadline) = deadline {
                let (done, stopped, db) = (&done_rx, &stopped, &self.db);
                scope.spawn(move || {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    if done.recv_timeout(wait) == Err(RecvTimeoutError::Timeout) {
                        stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                        pause_manual_compaction(db, true);
                    }
                });
            }
            let compacted = DATA.iter().try_for_each(|name| {
                let family = handle(&self.db, name)?;
                match ranges {
                    None => self
                        .db
                        .compact_range_cf_opt(family, None::<&[u8]>, None::<&[u8]>, &co),
                    Some(ranges) => {
                        for (start, end) in ranges {
                            self.db
                                .compact_range_cf_opt(family, Some(start), Some(end), &co);
                        }
                    }
                }
                Ok(())
            });
            drop(done_tx);
            compacted
        })?;
        if stopped.load(std::sync::atomic::Ordering::SeqCst) {
            pause_manual_compaction(&self.db, false);
            return Ok(false);
        }
        // The edit that rolls the MANIFEST: the marker's removal when no delete
        // came in meanwhile, else a rewrite of it, flushed either way.
        let catalog = handle(&self.db, CATALOG)?;
        let mut p = self.pending.lock();
        let clear = p.deletes == deletes_before;
        if clear {
            self.db.delete_cf(catalog, PENDING_KEY).map_err(rocks_err)?;
            p.since = None;
            p.ranges = Some(Vec::new());
        } else {
            // The ranges purged now are the first ones; later deletes stay due.
            if let (Some(all), Some(done)) = (&mut p.ranges, ranges) {
                all.drain(..done.len().min(all.len()));
            }
            self.db
                .put_cf(catalog, PENDING_KEY, b"")
                .map_err(rocks_err)?;
        }
        drop(p);
        self.db.flush_cf(catalog).map_err(rocks_err)?;
        Ok(true)
    }
}

/// RocksDB's defaults for the options a purge changes for its duration.
const DEFAULT_MAX_MANIFEST: &str = "1073741824";
const DEFAULT_MANIFEST_AMP: &str = "500";

/// The background purge: checks now and then whether a purge has been due for
/// `delay`, and runs it. Ends when the sender is dropped.
pub(crate) fn spawn(
    purger: Arc<Purger>,
    delay: Duration,
) -> Result<(Sender<()>, std::thread::JoinHandle<()>)> {
    let (stop_tx, stop_rx): (Sender<()>, Receiver<()>) = crossbeam_channel::bounded(0);
    let tick = (delay / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let handle = std::thread::Builder::new()
        .name("profiledb-purge".into())
        .spawn(move || {
            loop {
                match stop_rx.recv_timeout(tick) {
                    Err(RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                if purger.due(delay)
                    && let Err(e) = purger.purge(None)
                {
                    log::warn!("purging deleted users failed; retrying in {delay:?}: {e}");
                    purger.postpone();
                }
            }
        })?;
    Ok((stop_tx, handle))
}
