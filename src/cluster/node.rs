//! A node: reads partitions of the log and applies them to its database,
//! each pull in one atomic batch with the partition's position
//! ([`Db::apply_log`]), so that a node killed anywhere resumes from its
//! stored position without losing or doubling an event.
//!
//! One task per partition: it reads after the stored position, decodes each
//! message as an event, and applies the pull on the blocking pool. A read
//! or write that fails is retried after a pause from the stored position
//! (nothing past it was applied); a message that is not an event the schema
//! takes is skipped and counted (the log holds it; it cannot be refused).
//!
//! Statements (schema and data changes) are published once to the log of
//! statements and marked in every partition ([`super::Entry::Statements`]).
//! A partition's reader that meets a marker applies the events before it
//! and waits there ([`Statements`]); when every partition the node follows
//! waits at a marker, the last to arrive applies the statements up to the
//! lowest marker, and those partitions go on. So each statement is applied
//! after each partition's events before its marker and before those after
//! it, on every node alike. A router that dies between publishing a
//! statement and marking every partition leaves the rest to the nodes: one
//! that waits at a marker for [`COMPLETE_AFTER`], or sees a statement
//! unmarked that long, marks its partitions itself (the marker's message id
//! makes the log keep one per partition and statement).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::log::{Log, LogReader, Message};
use super::{Entry, STARTED, STATEMENTS};
use crate::{Db, Event, Limits, LogNote, Output, Value};

/// Messages read in one pull at most.
pub const PULL: usize = 1000;
/// Events written in one write, about (a write ends at a message's end).
const WRITE_EVENTS: usize = 10_000;
/// How long a partition's reader waits for a message before looking again.
const WAIT: Duration = Duration::from_millis(200);
/// The pause after a failed read or write.
const RETRY: Duration = Duration::from_millis(500);
/// How long a partition's reader may see nothing before it asks the log
/// whether there is more than it delivers.
const STALLED: Duration = Duration::from_secs(2);
/// How long a statement may wait for markers before a node marks its
/// partitions itself.
pub const COMPLETE_AFTER: Duration = Duration::from_secs(3);
/// How long a partition may wait at a marker before the node says so.
const WAITING_LONG: Duration = Duration::from_secs(10);
/// Statements whose outcome a node remembers, the latest.
const OUTCOMES: usize = 256;
/// How long reading the statements up to a marker may take.
const READ_STATEMENTS: Duration = Duration::from_secs(30);

/// What a statement did on a node: its outputs, or why it failed (the same
/// on every node, which all apply it to the same schema).
pub type Outcome = Result<Done, Arc<crate::Error>>;

/// What applying statements did on a node.
#[derive(Debug, Default)]
struct Applied {
    /// Each statement's outcome, in order.
    outcomes: Vec<(u64, Outcome)>,
    /// What each left (none for a partition's replay, which changes no
    /// definition), as [`Db::note_log_entry`] kept it.
    notes: Vec<(u64, LogNote)>,
}

/// What a statement applied on a node did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Done {
    /// Each statement's output, in order.
    pub outputs: Vec<Output>,
    /// When the script's last statement changes users (`UPDATE`,
    /// `DELETE`): how many of each partition the node follows it changed.
    /// Every node that follows a partition counts the same, so a router
    /// adds the counts up over the partitions, each from one node.
    pub changed: Option<BTreeMap<u32, u64>>,
}

/// Which users a statement applied on a node may change.
#[derive(Debug, Clone)]
enum Scope {
    /// Those of the partitions the node follows (all waiting at a marker),
    /// and the schema.
    Following(Arc<BTreeSet<u32>>),
    /// Partition `p`'s alone, and nothing else: the changes to users of
    /// statements the node applied before its reader of `p` reached them
    /// (it followed `p` only later, or from further back); of a statement
    /// whose script failed, only those before the place it failed at
    /// (statement → place).
    Replay(u32, Arc<BTreeMap<u64, u32>>),
}

/// What a node has done, shared with whoever reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Partition → last applied sequence number.
    pub positions: BTreeMap<u32, u64>,
    /// Messages skipped: not an event, or not one the schema takes.
    pub rejected: u64,
    /// The last failure, if the last attempt of some partition failed.
    pub last_error: Option<String>,
    /// Partitions whose copy was dropped ([`Node::drop_stale`]).
    pub dropped_partitions: u64,
    /// Users deleted with them.
    pub dropped_users: u64,
}

/// One partition's reader: its task, and whether it should go on.
#[derive(Debug)]
struct Follower {
    task: tokio::task::JoinHandle<()>,
    wanted: Arc<AtomicBool>,
}

/// A running node's partitions.
#[derive(Debug)]
pub struct Node<L: Log> {
    db: Arc<Db>,
    log: Arc<L>,
    progress: Arc<Mutex<Progress>>,
    followers: BTreeMap<u32, Follower>,
    statements: Arc<Statements>,
    /// The last statement of the log while it was not applied, and since when.
    unmarked: Option<(u64, Instant)>,
    writer: Writer,
    writing: tokio::task::JoinHandle<()>,
    /// Partitions the database holds a copy of that the node does not
    /// follow, and since when ([`Node::drop_stale`]).
    stale: BTreeMap<u32, Instant>,
    /// The partitions whose copy is being dropped, and the drop.
    dropping: Option<Dropping>,
    /// The partitions [`Node::follow`] was last asked for.
    wanted: BTreeSet<u32>,
}

/// A drop of the copy of partitions under way, on the blocking pool.
#[derive(Debug)]
struct Dropping {
    partitions: BTreeSet<u32>,
    task: tokio::task::JoinHandle<crate::Result<usize>>,
}

/// Writes the pulls of every partition a node reads, many in one write: a
/// reader hands its events and position over and waits for the write; the
/// writer takes whatever waits meanwhile (up to about [`WRITE_EVENTS`]
/// events) into one atomic write ([`Db::apply_logs`]). Measured, a write of
/// one partition's pull (tens of events when a request's events are spread
/// over 64 partitions) cost twice as much per event as a server's write of
/// a whole request.
#[derive(Debug, Clone)]
struct Writer {
    db: Arc<Db>,
    tx: tokio::sync::mpsc::Sender<Pull>,
}

/// One partition's events up to a position, waiting to be written.
#[derive(Debug)]
struct Pull {
    partition: u32,
    seq: u64,
    /// When it moved: one more than the last statement whose changes the
    /// partition's users have ([`super::COVERED`]), stored with its
    /// position. (A record that did not move is left out: a log write's
    /// positions must all move, or none.)
    covered: Option<u64>,
    events: Vec<Event>,
    /// The catalog version to plan the events under (`None`: today's;
    /// see [`Statements::schema`]).
    schema: Option<u64>,
    /// Answers how many events the schema did not take, or why the write
    /// failed.
    done: tokio::sync::oneshot::Sender<Result<u64, String>>,
}

impl Writer {
    fn start(db: Arc<Db>) -> (Writer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let task = tokio::spawn(write_pulls(db.clone(), rx));
        (Writer { db, tx }, task)
    }

    /// Writes `events` of `partition` with its position `seq` (and the
    /// statements its users have, `covered`, when that moved), planned
    /// under the catalog version `schema` (`None`: today's); answers how
    /// many the schema did not take.
    async fn write(
        &self,
        partition: u32,
        seq: u64,
        covered: Option<u64>,
        events: Vec<Event>,
        schema: Option<u64>,
    ) -> Result<u64, String> {
        let stopped = || "the node's writer stopped".to_owned();
        let (done, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Pull {
                partition,
                seq,
                covered,
                events,
                schema,
                done,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The writer's loop: each write takes the first pull waiting and every
/// other one waiting then. A partition is in a write at most once: its
/// reader waits for one write before it hands over the next pull.
async fn write_pulls(db: Arc<Db>, mut rx: tokio::sync::mpsc::Receiver<Pull>) {
    while let Some(first) = rx.recv().await {
        let mut n = first.events.len();
        let mut group = vec![first];
        while n < WRITE_EVENTS
            && let Ok(next) = rx.try_recv()
        {
            n += next.events.len();
            group.push(next);
        }
        let positions: Vec<(u32, u64)> = group
            .iter()
            .flat_map(|p| {
                std::iter::once((p.partition, p.seq))
                    .chain(p.covered.map(|c| (super::COVERED + p.partition, c)))
            })
            .collect();
        // Where each pull's events end among the write's.
        let mut ends = Vec::with_capacity(group.len());
        let mut events = Vec::with_capacity(n);
        let mut replies = Vec::with_capacity(group.len());
        // Only a partition read from before statements the node applied
        // plans its events under a past catalog.
        let mut versions = Vec::new();
        if group.iter().any(|p| p.schema.is_some()) {
            versions.reserve(n);
            for pull in &group {
                versions.extend(std::iter::repeat_n(pull.schema, pull.events.len()));
            }
        }
        for pull in group {
            events.extend(pull.events);
            ends.push(events.len());
            replies.push(pull.done);
        }
        let db = db.clone();
        let written =
            tokio::task::spawn_blocking(move || db.apply_logs_at(&positions, &events, &versions))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        match written {
            Ok(done) => {
                let mut rejected = vec![0u64; ends.len()];
                for (i, _) in &done.rejected {
                    let part = ends.partition_point(|&end| end <= *i);
                    if let Some(r) = rejected.get_mut(part) {
                        *r += 1;
                    }
                }
                for (reply, r) in replies.into_iter().zip(rejected) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The cluster's statements on one node: how far they are applied, what
/// they did, and which partitions wait at a marker.
#[derive(Debug, Default)]
pub struct Statements {
    state: Mutex<Barrier>,
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct Barrier {
    /// Partitions users are spread over (set when the node starts).
    partitions: Option<std::num::NonZeroU32>,
    /// Partition → the last statement whose changes reached its users on
    /// this node: statements past it are replayed for the partition alone
    /// when its reader meets their markers after the node applied them.
    covered: BTreeMap<u32, u64>,
    /// Partition → the record of `covered` last stored (one more).
    recorded: BTreeMap<u32, u64>,
    /// Statements whose catalog version was missed (and told once).
    unversioned: BTreeSet<u64>,
    /// Statement → what applying it left (0: before any): the events of a
    /// partition whose users have the statements up to `covered` are
    /// planned under the catalog version of `covered`, and a replay of a
    /// statement's changes stops where its script failed.
    notes: BTreeMap<u64, LogNote>,
    /// The partitions the node follows: all of them meet a marker before
    /// statements are applied.
    following: BTreeSet<u32>,
    /// Partition → the statement its reader waits at a marker for.
    parked: BTreeMap<u32, u64>,
    /// The statements are applied up to this sequence number.
    applied: u64,
    /// A reader is applying statements.
    applying: bool,
    /// The latest statements' outcomes, by sequence number.
    outcomes: BTreeMap<u64, Outcome>,
    /// The statement the node was applying when it was last killed, if it
    /// was ([`STARTED`]).
    interrupted: Option<u64>,
}

/// A statement's outcome as a node keeps it on disk, so that it can still
/// say what the statement did once restarted: each output's summary and
/// count, and the users changed in each partition.
#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    outputs: Vec<(String, Option<u64>)>,
    changed: Option<BTreeMap<u32, u64>>,
}

impl Done {
    /// The bytes a node keeps of it; `None` for an output of rows (no
    /// statement of the log has one).
    fn kept(&self) -> Option<Vec<u8>> {
        let outputs = self
            .outputs
            .iter()
            .map(|o| match o {
                Output::Done { summary, count } => Some((summary.clone(), *count)),
                Output::Rows(_) => None,
            })
            .collect::<Option<Vec<_>>>()?;
        serde_json::to_vec(&Kept {
            outputs,
            changed: self.changed.clone(),
        })
        .ok()
    }

    /// What [`Done::kept`] wrote.
    fn from_kept(bytes: &[u8]) -> Option<Done> {
        let kept: Kept = serde_json::from_slice(bytes).ok()?;
        Some(Done {
            outputs: kept
                .outputs
                .into_iter()
                .map(|(summary, count)| Output::Done { summary, count })
                .collect(),
            changed: kept.changed,
        })
    }
}

impl Barrier {
    /// The partitions the node follows that wait at no marker.
    fn unparked(&self) -> Vec<u32> {
        self.following
            .iter()
            .copied()
            .filter(|q| !self.parked.contains_key(q))
            .collect()
    }
}

impl Statements {
    /// Notes that partition `p` covers the statements through `through`,
    /// and joins what replaying them for `p` changed to their outcomes;
    /// returns the outcomes changed, as kept on disk.
    fn join_replayed(&self, p: u32, through: u64, replayed: Applied) -> Vec<(u64, Vec<u8>)> {
        let mut s = self.lock();
        let c = s.covered.entry(p).or_default();
        *c = (*c).max(through);
        let mut kept = Vec::new();
        for (seq, outcome) in replayed.outcomes {
            if let (
                Ok(Done {
                    changed: Some(more),
                    ..
                }),
                Some(Ok(done)),
            ) = (outcome, s.outcomes.get_mut(&seq))
                && let Some(changed) = &mut done.changed
            {
                for (q, n) in more {
                    changed.entry(q).or_insert(n);
                }
                kept.extend(done.kept().map(|k| (seq, k)));
            }
        }
        kept
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Barrier> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sequence number the statements are applied up to.
    pub fn applied(&self) -> u64 {
        self.lock().applied
    }

    /// Waits until the statements are applied up to `through`, for at most
    /// `timeout`, and answers the outcome of `through` (`None` when it
    /// timed out, or when the node no longer remembers it).
    pub async fn wait(&self, through: u64, timeout: Duration) -> Option<Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            {
                let s = self.lock();
                if s.applied >= through {
                    return s.outcomes.get(&through).cloned();
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    /// Whether the node follows partition `p` now.
    pub fn follows(&self, p: u32) -> bool {
        self.lock().following.contains(&p)
    }

    /// What partition `p`'s reader waits for at a marker, if it does: the
    /// statement, and the partitions the node follows that have not
    /// reached theirs yet.
    pub fn parked(&self, p: u32) -> Option<String> {
        let s = self.lock();
        let through = s.parked.get(&p)?;
        let behind = s.unparked();
        Some(if s.applying {
            format!(
                "it waits at the marker of statement {through} while the statements are applied"
            )
        } else {
            format!(
                "it waits at the marker of statement {through} for partitions {behind:?} to reach theirs"
            )
        })
    }

    /// The record of the statements partition `p`'s users have to store
    /// with its next position, when it moved since the last stored: one
    /// more than the last statement (positions start at 1, and no
    /// statement yet must be told from no record).
    fn record(&self, p: u32) -> Option<u64> {
        let s = self.lock();
        let record = s.covered.get(&p).copied().unwrap_or(0) + 1;
        (s.recorded.get(&p).is_none_or(|&r| record > r)).then_some(record)
    }

    /// The catalog version partition `p`'s events are planned under:
    /// `None` (today's) when its users have every statement the node
    /// applied; else the version the last statement they have left, as
    /// every node that read those events before the later statements
    /// planned them. A node that kept no such version (statements it
    /// applied before it kept them) plans them under today's.
    fn schema(&self, p: u32) -> Option<u64> {
        let mut s = self.lock();
        let covered = s.covered.get(&p).copied().unwrap_or(0);
        if covered >= s.applied {
            return None;
        }
        let version = s.notes.get(&covered).map(|n| n.version);
        if version.is_none() && s.unversioned.insert(covered) {
            tracing::warn!(
                "partition {p}: no catalog version kept for statement {covered}; its events up to the next marker are planned under today's schema"
            );
        }
        version
    }

    /// `record` is stored for partition `p`.
    fn recorded(&self, p: u32, record: u64) {
        self.lock().recorded.insert(p, record);
    }

    /// Partition `p`'s reader starts at its stored position `at` with the
    /// `record` of the statements that reached its users (stored with every
    /// position): none for a partition never read, or read before any
    /// statement; a partition stored by a version that kept no such record
    /// had them as they were applied.
    fn start_partition(&self, p: u32, at: Option<u64>, record: Option<u64>) {
        let mut s = self.lock();
        let covered = match (record, at) {
            (Some(r), _) => r.saturating_sub(1),
            (None, None) => 0,
            (None, Some(_)) => s.applied,
        };
        s.covered.insert(p, covered);
        match record {
            Some(r) => s.recorded.insert(p, r),
            None => s.recorded.remove(&p),
        };
    }

    fn set_following(&self, partitions: &BTreeSet<u32>) {
        let mut s = self.lock();
        s.following.clone_from(partitions);
        s.parked.retain(|p, _| partitions.contains(p));
        drop(s);
        self.changed.notify_waiters();
    }

    fn done(&self, through: u64, applied: Applied) {
        let mut s = self.lock();
        s.notes.extend(applied.notes);
        let outcomes = applied.outcomes;
        s.applying = false;
        s.applied = s.applied.max(through);
        // The partitions waiting at a marker had the changes, there.
        let parked: Vec<u32> = s.parked.keys().copied().collect();
        for q in parked {
            let c = s.covered.entry(q).or_default();
            *c = (*c).max(through);
        }
        s.outcomes.extend(outcomes);
        while s.outcomes.len() > OUTCOMES {
            s.outcomes.pop_first();
        }
        drop(s);
        self.changed.notify_waiters();
    }

    fn failed(&self) {
        self.lock().applying = false;
        self.changed.notify_waiters();
    }

    /// Partition `p`'s reader at a marker for `through`: waits until the
    /// statements up to it are applied, applying them when `p` is the last
    /// of the node's partitions to reach a marker. Answers whether it
    /// passed (not when the partition stopped being wanted meanwhile).
    async fn pass<L: Log>(
        &self,
        p: u32,
        through: u64,
        db: &Arc<Db>,
        log: &L,
        wanted: &AtomicBool,
    ) -> Result<bool, String> {
        let arrived = Instant::now();
        let mut marked = false;
        let mut told = false;
        loop {
            let changed = self.changed.notified();
            if !wanted.load(Ordering::Relaxed) {
                self.lock().parked.remove(&p);
                return Ok(false);
            }
            // Applied already: replayed for this partition when its users
            // did not have the changes yet.
            let replay = {
                let mut s = self.lock();
                if s.applied >= through {
                    s.parked.remove(&p);
                    let covered = s.covered.get(&p).copied().unwrap_or(0);
                    Some((covered < through).then_some(covered).zip(s.partitions))
                } else {
                    None
                }
            };
            if let Some(replay) = replay {
                tracing::debug!(
                    "partition {p}: passes the marker of statement {through} (replay {replay:?})"
                );
                if let Some((covered, partitions)) = replay {
                    let stops = self
                        .lock()
                        .notes
                        .range(covered + 1..=through)
                        .filter_map(|(&seq, n)| Some((seq, n.failed_at?)))
                        .collect();
                    let replay = Scope::Replay(p, Arc::new(stops));
                    let replayed =
                        apply_statements(db, log, covered, through, partitions, replay, None)
                            .await?;
                    // What the statements changed in this partition joins
                    // their outcomes: the node applied them before it
                    // followed it, and counted none of its users then.
                    let kept = self.join_replayed(p, through, replayed);
                    self.changed.notify_waiters();
                    // Kept as they are now, for a restart to say.
                    let db = db.clone();
                    tokio::task::spawn_blocking(move || {
                        for (seq, k) in kept {
                            db.put_log_outcome(seq, &k, OUTCOMES as u64)?;
                        }
                        Ok::<_, crate::Error>(())
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("keeping statements' outcomes: {e}"))?;
                }
                return Ok(true);
            }
            let (task, unparked) = {
                let mut s = self.lock();
                if s.parked.insert(p, through).is_none() {
                    tracing::debug!(
                        "partition {p}: at the marker of statement {through}; parked {:?} of {:?}, applied {}, applying {}",
                        s.parked,
                        s.following,
                        s.applied,
                        s.applying
                    );
                }
                let applied = s.applied;
                let lowest = s.parked.values().copied().filter(|&t| t > applied).min();
                let all = s.following.contains(&p)
                    && s.following.iter().all(|q| s.parked.contains_key(q));
                let task = match (lowest, s.partitions) {
                    (Some(to), Some(partitions)) if all && !s.applying => {
                        s.applying = true;
                        let following = Scope::Following(Arc::new(s.following.clone()));
                        Some((applied, to, partitions, following, s.interrupted))
                    }
                    _ => None,
                };
                (task, s.unparked())
            };
            if let Some((after, to, partitions, following, again)) = task {
                tracing::debug!("partition {p}: applies statements {after}..={to}");
                match apply_statements(db, log, after, to, partitions, following, again).await {
                    Ok(outcomes) => self.done(to, outcomes),
                    Err(e) => {
                        self.failed();
                        return Err(e);
                    }
                }
                continue;
            }
            if !marked && arrived.elapsed() >= COMPLETE_AFTER {
                // A router may have died before marking every partition.
                marked = true;
                mark(log, through, &unparked).await?;
            }
            if !told && arrived.elapsed() >= WAITING_LONG {
                told = true;
                if let Some(why) = self.parked(p) {
                    tracing::warn!("partition {p}: {why}, for {WAITING_LONG:?} now");
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
        }
    }
}

/// Publishes markers for the statements up to `through` in `partitions`.
async fn mark<L: Log>(log: &L, through: u64, partitions: &[u32]) -> Result<(), String> {
    let messages = partitions
        .iter()
        .map(|&q| {
            (
                q,
                Some(Entry::marker_id(through, q)),
                Entry::marker(through),
            )
        })
        .collect();
    log.publish_all(messages)
        .await
        .map(drop)
        .map_err(|e| format!("marking statements up to {through}: {e}"))
}

/// Applies the statements after `after` up to `through`, in order, to the
/// users and schema `scope` says. Applied to the partitions the node
/// follows, each is preceded by its number stored as begun ([`STARTED`])
/// and followed by the position it brings the node to: a node that stops
/// between the two applies that one statement again when it resumes, as
/// `again` (a definition it finds made, or an item it finds dropped, is
/// taken as applied, and the script goes on; a change to users changes
/// them as it did, its values being constants). A replay for one
/// partition moves no position: its reader stores the statements it
/// covered with the partition's position at the marker.
async fn apply_statements<L: Log>(
    db: &Arc<Db>,
    log: &L,
    after: u64,
    through: u64,
    partitions: std::num::NonZeroU32,
    scope: Scope,
    again: Option<u64>,
) -> Result<Applied, String> {
    let replay = matches!(scope, Scope::Replay(..));
    let failed = |e: &dyn std::fmt::Display| format!("reading the statements after {after}: {e}");
    let mut reader = log.statements(after).await.map_err(|e| failed(&e))?;
    let deadline = Instant::now() + READ_STATEMENTS;
    let mut at = after;
    let mut applied = Applied::default();
    let mut idle = Instant::now();
    while at < through {
        let batch = reader.next_batch(64, WAIT).await.map_err(|e| failed(&e))?;
        if batch.is_empty() {
            // A marker past the last statement marks nothing more.
            if log.last_statement().await.map_err(|e| failed(&e))? <= at {
                break;
            }
            if Instant::now() >= deadline {
                return Err(failed(&format!("statement {through} did not arrive")));
            }
            // The log holds more than the reader delivers: a reader whose
            // log server died may wait for ever without an error, as a
            // partition's may; read anew from where it got.
            if idle.elapsed() >= STALLED {
                idle = Instant::now();
                reader = log.statements(at).await.map_err(|e| failed(&e))?;
            }
            continue;
        }
        idle = Instant::now();
        for m in batch {
            if m.seq <= at || m.seq > through {
                continue;
            }
            let seq = m.seq;
            // A replay changes the users each statement picked by a
            // predicate changed when it was applied, as the nodes that
            // followed the partition then kept them; without them (none
            // kept), it evaluates the predicate again.
            let effect = match &scope {
                Scope::Replay(p, _) => kept_effect(log, seq, *p).await.map_err(|e| failed(&e))?,
                Scope::Following(_) => None,
            };
            let task = {
                let (db, scope) = (db.clone(), scope.clone());
                move || {
                    if let Scope::Replay(_, stops) = &scope {
                        // Up to where the script failed when it was applied.
                        let upto = stops.get(&seq).copied();
                        let run = execute(
                            &db,
                            &m.payload,
                            partitions,
                            &scope,
                            false,
                            upto,
                            effect.as_ref(),
                        );
                        return Ok((run.outcome, None, BTreeMap::new()));
                    }
                    db.apply_log(STARTED, seq, &[])?;
                    let again = again == Some(seq);
                    let run = execute(&db, &m.payload, partitions, &scope, again, None, None);
                    if let Some(kept) = run.outcome.as_ref().ok().and_then(Done::kept) {
                        db.put_log_outcome(seq, &kept, OUTCOMES as u64)?;
                    }
                    // Before the position: a node killed in between applies
                    // the statement again, and notes it then.
                    let note = db.note_log_entry(seq, run.failed_at)?;
                    Ok::<_, crate::Error>((run.outcome, Some(note), run.effects))
                }
            };
            let (outcome, note, effects) = tokio::task::spawn_blocking(task)
                .await
                .map_err(|e| failed(&e))?
                .map_err(|e| failed(&e))?;
            if !replay {
                if !effects.is_empty() {
                    keep_effects(log, seq, effects).await;
                }
                let db = db.clone();
                tokio::task::spawn_blocking(move || db.apply_log(STATEMENTS, seq, &[]))
                    .await
                    .map_err(|e| failed(&e))?
                    .map_err(|e| failed(&e))?;
            }
            if let (true, Err(e)) = (replay, &outcome) {
                // Failed on every node alike when it was first applied (or
                // refers to what the schema has since dropped): nothing to
                // change in this partition.
                tracing::debug!("replaying statement {seq} for a partition: {e}");
            }
            applied.outcomes.push((seq, outcome));
            applied.notes.extend(note.map(|n| (seq, n)));
            at = seq;
        }
    }
    if at < through && !replay {
        let db = db.clone();
        let note = tokio::task::spawn_blocking(move || {
            let note = db.note_log_entry(through, None)?;
            db.apply_log(STATEMENTS, through, &[]).map(|_| note)
        })
        .await
        .map_err(|e| failed(&e))?
        .map_err(|e| failed(&e))?;
        applied.notes.push((through, note));
    }
    Ok(applied)
}

/// What the nodes that followed `partition` when they applied `statement`
/// kept in the log of what it changed there ([`keep_effects`]); `None` when
/// none kept it whole, and a replay evaluates the predicates again.
async fn kept_effect<L: Log>(
    log: &L,
    statement: u64,
    partition: u32,
) -> Result<Option<super::Effect>, super::log::LogError> {
    let Some(bytes) = log.effect(statement, partition).await? else {
        tracing::debug!(
            "statement {statement}: no effect kept for partition {partition}; its predicates are evaluated again"
        );
        return Ok(None);
    };
    match serde_json::from_slice(&bytes) {
        Ok(effect) => Ok(Some(effect)),
        Err(e) => {
            tracing::warn!(
                "the effect of statement {statement} in partition {partition} does not decode: {e}"
            );
            Ok(None)
        }
    }
}

/// Puts what `statement` changed in each partition in the log, for nodes
/// that follow a partition later to replay. Without them such a node
/// evaluates the statement's predicates again, so a log that does not take
/// them does not stop the node: it is told, and the node goes on.
async fn keep_effects<L: Log>(log: &L, statement: u64, effects: BTreeMap<u32, super::Effect>) {
    let mut encoded = Vec::with_capacity(effects.len());
    for (p, effect) in effects {
        match serde_json::to_vec(&effect) {
            Ok(bytes) => encoded.push((p, bytes)),
            Err(e) => tracing::warn!("encoding the effect of statement {statement}: {e}"),
        }
    }
    for attempt in 1..=2 {
        match log.put_effects(statement, encoded.clone()).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(
                "keeping what statement {statement} changed in the log (attempt {attempt} of 2): {e}"
            ),
        }
    }
}

/// What running one statement of the log did ([`execute`]).
#[derive(Debug)]
struct Executed {
    outcome: Outcome,
    /// The place in the script of the statement it failed at, if it did
    /// (0 for a script that does not parse).
    failed_at: Option<u32>,
    /// Applied to the partitions the node follows (not again): what the
    /// statements that pick users by a predicate changed in each of them,
    /// to keep in the log ([`keep_effects`]).
    effects: BTreeMap<u32, super::Effect>,
}

/// Runs one statement of the log, as of the router's clock when it
/// published it, changing only the users `scope` admits. `again`: the node
/// was killed while it applied this one, so a statement of its script that
/// finds its definition made, or its item dropped, was applied then (and
/// what its predicates pick now may not be what they picked then, so no
/// effect is recorded). `upto`: only the statements of the script before
/// that place run (a replay of one that failed there). `effect`, for a
/// replay: what the script's statements that pick users by a predicate
/// changed in the partition when they were applied; each changes those
/// users (`WHERE id IN (…)`) rather than evaluating its predicate again.
fn execute(
    db: &Db,
    payload: &[u8],
    partitions: std::num::NonZeroU32,
    scope: &Scope,
    again: bool,
    upto: Option<u32>,
    effect: Option<&super::Effect>,
) -> Executed {
    // The place of the statement being run.
    let mut at = 0u32;
    let recording = matches!(scope, Scope::Following(_)) && !again;
    let mut effects: BTreeMap<u32, super::Effect> = BTreeMap::new();
    let outcome = (|| -> Outcome {
        use profiledb_query::ast::Statement as Ast;
        let bad = |m: String| {
            Arc::new(crate::Error::Storage(
                profiledb_storage::Error::InvalidArgument(m),
            ))
        };
        let query = |e: profiledb_query::Error| Arc::new(crate::Error::Query(e));
        let statement: super::Statement = serde_json::from_slice(payload)
            .map_err(|e| bad(format!("a statement in the log is not one: {e}")))?;
        let params = statement
            .params
            .iter()
            .enumerate()
            .map(|(i, v)| {
                Value::from_json(v).map_err(|e| bad(format!("parameter ${}: {e}", i + 1)))
            })
            .collect::<Result<Vec<Value>, _>>()?;
        let keep = |user: &str| {
            let q = super::partition_of(user, partitions);
            match scope {
                Scope::Following(set) => set.contains(&q),
                Scope::Replay(p, _) => q == *p,
            }
        };
        let tally: Mutex<BTreeMap<u32, u64>> = Mutex::new(BTreeMap::new());
        // The users the statement being run changed, by partition, while
        // it is one whose effect is recorded.
        let picked: Mutex<Option<BTreeMap<u32, Vec<String>>>> = Mutex::new(None);
        let count = |user: &str| {
            let q = super::partition_of(user, partitions);
            if let Ok(mut t) = tally.lock() {
                *t.entry(q).or_default() += 1;
            }
            if let Ok(mut p) = picked.lock()
                && let Some(p) = p.as_mut()
            {
                p.entry(q).or_default().push(user.to_owned());
            }
        };
        let now = statement.now.unwrap_or_else(crate::now_ms);
        let part = profiledb_query::Part::new(db.engine(), now)
            .keeping(&keep)
            .on_change(&count);
        let replay = matches!(scope, Scope::Replay(..));
        let mut done = Done::default();
        let mut last_changes_users = false;
        if let Some(centroids) = statement.centroids {
            // A definition: nothing to replay.
            if !replay {
                done.outputs.push(
                    profiledb_query::create_segments_from(
                        &part,
                        &statement.sql,
                        &params,
                        centroids,
                    )
                    .map_err(query)?,
                );
            }
            return Ok(done);
        }
        let parsed = profiledb_query::parse_script_with(&statement.sql, &params)
            .map_err(|e| query(profiledb_query::Error::from(e).locate(&statement.sql)))?;
        for (i, (stmt, _)) in parsed.iter().enumerate() {
            at = u32::try_from(i).unwrap_or(u32::MAX);
            if upto.is_some_and(|upto| at >= upto) {
                break;
            }
            let changes_users = matches!(
                stmt,
                Ast::Update { .. } | Ast::Delete { .. } | Ast::DeleteUser { .. }
            );
            if replay && !changes_users {
                continue;
            }
            let by_predicate = matches!(stmt, Ast::Update { .. } | Ast::Delete { .. });
            if let Ok(mut t) = tally.lock() {
                // Every partition in scope is counted, none changed or not, so
                // that a router can tell a partition no node counted yet.
                *t = match scope {
                    Scope::Following(set) => set.iter().map(|&q| (q, 0)).collect(),
                    Scope::Replay(p, _) => [(*p, 0)].into_iter().collect(),
                };
            }
            if let Ok(mut p) = picked.lock() {
                *p = (recording && by_predicate).then(BTreeMap::new);
            }
            last_changes_users = changes_users;
            let kept = effect.and_then(|e| e.changed.get(&at));
            let replayed = kept
                .filter(|_| by_predicate)
                .map(|users| picking(stmt, users));
            let stmt = replayed.as_ref().unwrap_or(stmt);
            let output = match profiledb_query::run(&part, stmt, &Limits::default()) {
                // A change to users is applied anew (its values are constants).
                Err(e) if again && !changes_users && applied_before(&e) => {
                    tracing::info!("statement applied before this node was killed: {e}");
                    Output::Done {
                        summary: "APPLIED".into(),
                        count: None,
                    }
                }
                ran => ran.map_err(|e| query(e.locate(&statement.sql)))?,
            };
            done.outputs.push(output);
            // Some only while recording, which is of the partitions followed.
            let picked = picked.lock().ok().and_then(|mut p| p.take());
            if let (Some(mut picked), Scope::Following(set)) = (picked, scope) {
                for &q in set.iter() {
                    let mut users = picked.remove(&q).unwrap_or_default();
                    users.sort_unstable();
                    users.dedup();
                    effects.entry(q).or_default().changed.insert(at, users);
                }
            }
        }
        let tally = tally
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        done.changed = last_changes_users.then_some(tally);
        Ok(done)
    })();
    let failed_at = outcome.is_err().then_some(at);
    Executed {
        outcome,
        failed_at,
        effects,
    }
}

/// `stmt` (an `UPDATE` or `DELETE` that picks users by a predicate)
/// picking `users` instead: `WHERE id IN (…)`, which an `UPDATE` applies to
/// each named user, as it was applied to each when it picked them.
fn picking(
    stmt: &profiledb_query::ast::Statement,
    users: &[String],
) -> profiledb_query::ast::Statement {
    use profiledb_query::ast::{Expr, Ident, Literal, Loc, Statement as Ast};
    let selection = Expr::InList {
        expr: Box::new(Expr::Column(Ident::new("id"))),
        negated: false,
        list: users
            .iter()
            .map(|u| Expr::Literal(Literal::String(u.clone()), Loc::default()))
            .collect(),
    };
    match stmt {
        Ast::Update { assignments, .. } => Ast::Update {
            assignments: assignments.clone(),
            selection,
        },
        Ast::Delete { .. } => Ast::Delete { selection },
        other => other.clone(),
    }
}

/// Whether a definition failed for what applying it once already leaves:
/// its name taken, or its item gone.
fn applied_before(e: &profiledb_query::Error) -> bool {
    use profiledb_storage::ErrorKind;
    match e {
        profiledb_query::Error::Storage(s) => {
            matches!(s.kind(), ErrorKind::AlreadyExists | ErrorKind::NotFound)
        }
        profiledb_query::Error::Unknown { .. } | profiledb_query::Error::AlreadyExists { .. } => {
            true
        }
        _ => false,
    }
}

impl<L: Log> Node<L> {
    /// Starts reading `partitions` of `log` into `db`, on the current
    /// tokio runtime, until [`Node::stop`].
    ///
    /// # Errors
    /// The node's position in the statements cannot be read.
    pub fn start(
        db: Arc<Db>,
        log: Arc<L>,
        total: std::num::NonZeroU32,
        partitions: &[u32],
    ) -> crate::Result<Node<L>> {
        let statements = Arc::new(Statements::default());
        {
            let mut s = statements.lock();
            s.applied = db.log_position(STATEMENTS)?.unwrap_or(0);
            let started = db.log_position(STARTED)?.unwrap_or(0);
            s.interrupted = (started > s.applied).then_some(started);
            // What the statements applied before a restart did.
            for (seq, bytes) in db.log_outcomes()? {
                match Done::from_kept(&bytes) {
                    Some(done) => {
                        s.outcomes.insert(seq, Ok(done));
                    }
                    None => tracing::warn!("the kept outcome of statement {seq} does not decode"),
                }
            }
            while s.outcomes.len() > OUTCOMES {
                s.outcomes.pop_first();
            }
            s.notes = db.log_notes()?.into_iter().collect();
            if s.applied == 0 && !s.notes.contains_key(&0) {
                // The schema before the first statement: events a
                // partition has before its first marker are planned under
                // it, wherever the node is by then.
                let note = db.note_log_entry(0, None)?;
                s.notes.insert(0, note);
            }
            s.partitions = Some(total);
        }
        let (writer, writing) = Writer::start(db.clone());
        // A drop a killed process left is run again before its partitions
        // are read anew.
        let unfinished: BTreeSet<u32> = db
            .log_drops()?
            .into_iter()
            .filter(|&p| p < super::COVERED)
            .collect();
        let mut node = Node {
            writer,
            writing,
            db,
            log,
            progress: Arc::new(Mutex::new(Progress::default())),
            followers: BTreeMap::new(),
            statements,
            unmarked: None,
            stale: BTreeMap::new(),
            dropping: None,
            wanted: BTreeSet::new(),
        };
        if !unfinished.is_empty() {
            node.start_drop(unfinished);
        }
        node.follow(&partitions.iter().copied().collect());
        Ok(node)
    }

    /// Drops the database's copy of partitions the node has not followed
    /// for `after` (it handed them over, or held them before a restart):
    /// forgets their positions and deletes their users, on the blocking
    /// pool, one drop at a time. A partition wanted again before the drop
    /// began keeps its copy and resumes from its position; one wanted
    /// while its copy is dropped is read from the log's start once the
    /// drop is done. Called now and then (every report), once the node
    /// knows what it holds.
    pub fn drop_stale(&mut self, after: Duration) {
        if let Some(d) = &self.dropping {
            if !d.task.is_finished() {
                return;
            }
            if let Some(d) = self.dropping.take() {
                self.finish_drop(d);
            }
            let wanted = self.wanted.clone();
            self.follow(&wanted);
            if self.dropping.is_some() {
                return;
            }
        }
        let Some(total) = self.statements.lock().partitions else {
            return;
        };
        let now = Instant::now();
        let mut held = BTreeSet::new();
        for p in 0..total.get() {
            let reading = self
                .followers
                .get(&p)
                .is_some_and(|f| !f.task.is_finished());
            if self.wanted.contains(&p) || reading {
                continue;
            }
            match self.db.log_position(p) {
                Ok(Some(_)) => {
                    held.insert(p);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!("reading partition {p}'s position: {e}"),
            }
        }
        self.stale.retain(|p, _| held.contains(p));
        for &p in &held {
            self.stale.entry(p).or_insert(now);
        }
        let due: BTreeSet<u32> = self
            .stale
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= after)
            .map(|(p, _)| *p)
            .collect();
        if !due.is_empty() {
            self.stale.retain(|p, _| !due.contains(p));
            self.start_drop(due);
        }
    }

    /// Starts dropping the copy of `partitions` ([`Db::drop_log_partitions`]).
    fn start_drop(&mut self, partitions: BTreeSet<u32>) {
        let Some(total) = self.statements.lock().partitions else {
            return;
        };
        tracing::info!("dropping this node's copy of partitions {partitions:?}");
        let positions: Vec<u32> = partitions
            .iter()
            .flat_map(|&p| [p, super::COVERED + p])
            .collect();
        let (db, set) = (self.db.clone(), partitions.clone());
        let task = tokio::task::spawn_blocking(move || {
            db.drop_log_partitions(&positions, &|user| {
                set.contains(&super::partition_of(user, total))
            })
        });
        self.dropping = Some(Dropping { partitions, task });
    }

    /// Reports how a finished drop went; a failed one starts again (its
    /// partitions' positions may be gone already, so none of them may be
    /// read until a drop of them succeeds).
    fn finish_drop(&mut self, d: Dropping) {
        use futures_util::FutureExt;
        let answer = match d.task.now_or_never() {
            Some(Ok(answer)) => answer.map_err(|e| e.to_string()),
            Some(Err(e)) => Err(e.to_string()),
            None => Err("it was still running".into()),
        };
        match answer {
            Ok(users) => {
                tracing::info!(
                    "dropped this node's copy of partitions {:?}: {users} users",
                    d.partitions
                );
                if let Ok(mut g) = self.progress.lock() {
                    g.dropped_partitions += d.partitions.len() as u64;
                    g.dropped_users += users as u64;
                }
            }
            Err(e) => {
                tracing::warn!("dropping partitions {:?} failed: {e}", d.partitions);
                self.start_drop(d.partitions);
            }
        }
    }

    /// The cluster's statements on this node.
    pub fn statements(&self) -> Arc<Statements> {
        self.statements.clone()
    }

    /// Looks after statements no partition's marker brings in: a node that
    /// follows no partition applies them as they come, and one whose
    /// partitions have had no marker for a statement in [`COMPLETE_AFTER`]
    /// marks them itself. Called now and then (every report).
    ///
    /// # Errors
    /// The log cannot be read or written, or a statement's position cannot
    /// be stored.
    pub async fn settle(&mut self) -> Result<(), String> {
        let last = self
            .log
            .last_statement()
            .await
            .map_err(|e| format!("reading the last statement: {e}"))?;
        let (applied, idle, following) = {
            let s = self.statements.lock();
            let idle = s.following.is_empty() && !s.applying;
            (
                s.applied,
                idle,
                s.following.iter().copied().collect::<Vec<u32>>(),
            )
        };
        if last <= applied {
            self.unmarked = None;
            return Ok(());
        }
        let partitions = self.statements.lock().partitions;
        if idle && let Some(partitions) = partitions {
            self.statements.lock().applying = true;
            let none = Scope::Following(Arc::new(BTreeSet::new()));
            let again = self.statements.lock().interrupted;
            return match apply_statements(
                &self.db,
                self.log.as_ref(),
                applied,
                last,
                partitions,
                none,
                again,
            )
            .await
            {
                Ok(outcomes) => {
                    self.statements.done(last, outcomes);
                    Ok(())
                }
                Err(e) => {
                    self.statements.failed();
                    Err(e)
                }
            };
        }
        match self.unmarked {
            Some((seq, since)) if seq == last && since.elapsed() >= COMPLETE_AFTER => {
                self.unmarked = None;
                mark(self.log.as_ref(), last, &following).await
            }
            Some((seq, _)) if seq == last => Ok(()),
            _ => {
                self.unmarked = Some((last, Instant::now()));
                Ok(())
            }
        }
    }

    /// Reads exactly `partitions` from now on: starts a reader for each new
    /// one, and lets the others stop after the pull they are applying (a
    /// reader stopped and wanted again before it stopped goes on; one
    /// started again resumes from the stored position, so no partition is
    /// ever read by two readers at once).
    pub fn follow(&mut self, partitions: &BTreeSet<u32>) {
        self.wanted = partitions.clone();
        // A partition whose copy is being dropped is read after the drop.
        let dropping = self.dropping.as_ref().map(|d| &d.partitions);
        let partitions: &BTreeSet<u32> = &match dropping {
            Some(d) if !d.is_disjoint(partitions) => partitions.difference(d).copied().collect(),
            _ => partitions.clone(),
        };
        for p in partitions {
            self.stale.remove(p);
        }
        self.statements.set_following(partitions);
        self.followers.retain(|p, f| {
            let wanted = partitions.contains(p);
            f.wanted.store(wanted, Ordering::Relaxed);
            wanted || !f.task.is_finished()
        });
        for &p in partitions {
            if self
                .followers
                .get(&p)
                .is_some_and(|f| !f.task.is_finished())
            {
                continue;
            }
            let wanted = Arc::new(AtomicBool::new(true));
            let task = tokio::spawn(follow(
                self.writer.clone(),
                self.log.clone(),
                p,
                self.progress.clone(),
                self.statements.clone(),
                wanted.clone(),
            ));
            self.followers.insert(p, Follower { task, wanted });
        }
    }

    /// The last failure of a partition's reader since the last call, if any.
    pub fn take_error(&self) -> Option<String> {
        self.progress
            .lock()
            .ok()
            .and_then(|mut p| p.last_error.take())
    }

    /// What the node has applied so far, in the partitions it reads.
    pub fn progress(&self) -> Progress {
        self.progress.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// [`Node::progress`] as it goes on, to read from elsewhere.
    pub fn progress_handle(&self) -> Arc<Mutex<Progress>> {
        self.progress.clone()
    }

    /// Stops reading; a pull being applied finishes first (its write is
    /// atomic either way).
    pub async fn stop(self) {
        for f in self.followers.values() {
            f.task.abort();
        }
        for (_, f) in self.followers {
            let _ = f.task.await;
        }
        self.writing.abort();
        let _ = self.writing.await;
    }
}

/// Reads partition `p` into `db` while `wanted`, then forgets its position
/// in `progress`.
async fn follow<L: Log>(
    writer: Writer,
    log: Arc<L>,
    p: u32,
    progress: Arc<Mutex<Progress>>,
    statements: Arc<Statements>,
    wanted: Arc<AtomicBool>,
) {
    read_partition(&writer, &log, p, &progress, &statements, &wanted).await;
    if let Ok(mut g) = progress.lock() {
        g.positions.remove(&p);
    }
}

async fn read_partition<L: Log>(
    writer: &Writer,
    log: &Arc<L>,
    p: u32,
    progress: &Mutex<Progress>,
    statements: &Statements,
    wanted: &AtomicBool,
) {
    let db = &writer.db;
    let note = |f: &dyn Fn(&mut Progress)| {
        if let Ok(mut g) = progress.lock() {
            f(&mut g);
        }
    };
    while wanted.load(Ordering::Relaxed) {
        // From the stored position (and the statements its users have):
        // the truth after any failure.
        let at = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || {
                Ok::<_, crate::Error>((db.log_position(p)?, db.log_position(super::COVERED + p)?))
            })
            .await
        };
        let mut at = match at {
            Ok(Ok((at, covered))) => {
                statements.start_partition(p, at, covered);
                at.unwrap_or(0)
            }
            Ok(Err(e)) => {
                note(&|g| g.last_error = Some(format!("partition {p}: {e}")));
                tokio::time::sleep(RETRY).await;
                continue;
            }
            Err(_) => return,
        };
        note(&|g| {
            g.positions.insert(p, at);
        });
        tracing::debug!("partition {p}: reading after {at}");
        let reader = log.reader(p, at).await;
        let mut reader = match reader {
            Ok(r) => r,
            Err(e) => {
                note(&|g| g.last_error = Some(format!("partition {p}: {e}")));
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut idle = Instant::now();
        while wanted.load(Ordering::Relaxed) {
            let batch = match reader.next_batch(PULL, WAIT).await {
                Ok(b) => b,
                Err(e) => {
                    note(&|g| g.last_error = Some(format!("partition {p}: {e}")));
                    break;
                }
            };
            // A reader recreated after a failure may repeat what was applied.
            let batch: Vec<Message> = batch.into_iter().filter(|m| m.seq > at).collect();
            if batch.is_empty() {
                // A reader whose log server died may wait for ever without
                // an error: while idle, look now and then whether the log
                // holds more than it delivers, and read anew if so.
                if idle.elapsed() >= STALLED {
                    idle = Instant::now();
                    // The log's end unknown (its server may be the one
                    // that died) is no proof of idleness either.
                    let stalled = match log.last(p).await {
                        Ok(end) if end > at => Some(format!("the log is at {end}")),
                        Ok(end) => {
                            tracing::debug!("partition {p}: idle at {at}, the log ends at {end}");
                            None
                        }
                        Err(e) => Some(format!("the log's end is unknown ({e})")),
                    };
                    if let Some(why) = stalled {
                        note(&|g| {
                            g.last_error = Some(format!(
                                "partition {p}: the reader stalled at {at} and {why}; reading anew"
                            ));
                        });
                        break;
                    }
                }
                continue;
            }
            idle = Instant::now();
            tracing::debug!(
                "partition {p}: pulled {} messages, {}..={}",
                batch.len(),
                batch.first().map_or(0, |m| m.seq),
                batch.last().map_or(0, |m| m.seq)
            );
            match apply_pull(writer, log, p, batch, &mut at, progress, statements, wanted).await {
                Ok(Pulled::All) => {}
                // The rest of the pull is not applied: going on with this
                // reader would skip it.
                Ok(Pulled::Stopped) => break,
                Err(e) => {
                    note(&|g| g.last_error = Some(format!("partition {p}: {e}")));
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// How much of a pull [`apply_pull`] applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pulled {
    /// All of it.
    All,
    /// Up to a marker, where the partition stopped being wanted.
    Stopped,
}

/// Applies a pull of partition `p` after position `at`, moving `at` along:
/// its events in writes of about [`WRITE_EVENTS`] (each ending at a
/// message, with its position) up to the first marker, where the reader
/// waits for the statements ([`Statements::pass`]), then the events after
/// it, and so on. Answers whether the whole pull was applied, or the
/// partition stopped being wanted at a marker (its reader must then read
/// anew from the stored position, if it goes on at all).
#[allow(clippy::too_many_arguments)]
async fn apply_pull<L: Log>(
    writer: &Writer,
    log: &Arc<L>,
    p: u32,
    pull: Vec<Message>,
    at: &mut u64,
    progress: &Mutex<Progress>,
    statements: &Statements,
    wanted: &AtomicBool,
) -> Result<Pulled, String> {
    let db = &writer.db;
    let mut events = Vec::new();
    let mut last = None;
    let mut unreadable = 0u64;
    for m in pull {
        match Entry::decode(&m.payload) {
            Entry::Events(mut some, bad) => {
                events.append(&mut some);
                unreadable += bad;
                // Messages carry many events each: a pull is written in
                // parts of about WRITE_EVENTS, each with its position.
                if events.len() >= WRITE_EVENTS {
                    apply_events(
                        writer,
                        p,
                        m.seq,
                        std::mem::take(&mut events),
                        unreadable,
                        progress,
                        statements,
                    )
                    .await?;
                    unreadable = 0;
                    last = None;
                    *at = m.seq;
                    continue;
                }
            }
            Entry::Unreadable => unreadable += 1,
            Entry::Statements(through) => {
                if let Some(last) = last.take() {
                    apply_events(
                        writer,
                        p,
                        last,
                        std::mem::take(&mut events),
                        unreadable,
                        progress,
                        statements,
                    )
                    .await?;
                    unreadable = 0;
                    *at = last;
                }
                if !statements
                    .pass(p, through, db, log.as_ref(), wanted)
                    .await?
                {
                    return Ok(Pulled::Stopped);
                }
                // Past the marker, with the statements its users now have.
                apply_events(writer, p, m.seq, Vec::new(), 0, progress, statements).await?;
                *at = m.seq;
                continue;
            }
        }
        last = Some(m.seq);
    }
    if let Some(last) = last {
        apply_events(writer, p, last, events, unreadable, progress, statements).await?;
        *at = last;
    }
    Ok(Pulled::All)
}

/// Writes `events` of partition `p` with its position `last` (and the
/// statements its users have), counting what the schema did not take (and
/// `unreadable` messages) as rejected.
async fn apply_events(
    writer: &Writer,
    p: u32,
    last: u64,
    events: Vec<Event>,
    unreadable: u64,
    progress: &Mutex<Progress>,
    statements: &Statements,
) -> Result<(), String> {
    let record = statements.record(p);
    let schema = statements.schema(p);
    let rejected = unreadable + writer.write(p, last, record, events, schema).await?;
    if let Some(r) = record {
        statements.recorded(p, r);
    }
    if let Ok(mut g) = progress.lock() {
        g.positions.insert(p, last);
        g.rejected += rejected;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(sql: &str) -> Vec<u8> {
        let statement = super::super::Statement {
            sql: sql.into(),
            params: Vec::new(),
            centroids: None,
            now: Some(1_761_991_200_000),
        };
        serde_json::to_vec(&statement).expect("a statement encodes")
    }

    /// A script a node was killed in the middle of: applied again, the part
    /// applied before counts as applied and the rest is applied; applied
    /// for the first time, a definition made already fails it, as on one
    /// server.
    #[test]
    fn a_script_applied_again_after_a_kill_goes_on_past_what_it_applied() -> crate::Result<()> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Db::open(dir.path())?;
        let parts = std::num::NonZeroU32::new(8).expect("8");
        let scope = Scope::Following(Arc::new((0..8).collect()));
        // Killed after the first two statements of the script.
        db.execute("CREATE FEATURE n ON buy AS COUNT(); DROP FEATURE n")?;
        db.execute("CREATE FEATURE m ON buy AS COUNT()")?;
        let script = payload(
            "CREATE FEATURE n ON buy AS COUNT(); DROP FEATURE n; CREATE FEATURE m ON buy AS COUNT(); \
             CREATE FEATURE total ON buy AS SUM(amount)",
        );
        let features = |db: &Db| -> crate::Result<Vec<String>> {
            Ok(db
                .catalog()
                .features
                .iter()
                .map(|f| f.name.clone())
                .collect())
        };
        assert!(
            execute(&db, &script, parts, &scope, false, None, None)
                .outcome
                .is_err()
        );
        assert_eq!(features(&db)?, ["m"]);
        let done = execute(&db, &script, parts, &scope, true, None, None)
            .outcome
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(done.outputs.len(), 4);
        assert_eq!(features(&db)?, ["m", "total"]);
        // A statement that fails for another reason still fails.
        let bad = payload("CREATE FEATURE late ON buy AS SUM(amount) HALF_LIFE 'soon'");
        assert!(
            execute(&db, &bad, parts, &scope, true, None, None)
                .outcome
                .is_err()
        );
        Ok(())
    }

    /// Every user's id and `tag`, by id.
    fn tags(db: &Db) -> crate::Result<Vec<(String, Option<String>)>> {
        let out = db.execute("SELECT id, tag FROM users ORDER BY id")?;
        Ok(out
            .rows()
            .map(|r| r.rows.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| match (&r[0], &r[1]) {
                (Value::String(id), Value::String(tag)) => (id.clone(), Some(tag.clone())),
                (Value::String(id), Value::Null) => (id.clone(), None),
                other => panic!("not an id and a tag: {other:?}"),
            })
            .collect())
    }

    /// A script that failed part way tells where; replayed for a partition
    /// later, it stops there, even when the statement that failed would now
    /// run (its item made since): the partition's users get what every
    /// other node's got.
    #[test]
    fn a_replay_stops_where_the_script_failed() -> crate::Result<()> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = Db::open(dir.path())?;
        let parts = std::num::NonZeroU32::new(8).expect("8");
        db.execute("CREATE FEATURE n ON buy AS COUNT(); CREATE ATTRIBUTE tag STRING")?;
        let users: Vec<String> = (0..40).map(|u| format!("u{u:02}")).collect();
        let events: Vec<Event> = users
            .iter()
            .map(|u| Event::new(u.clone(), "buy", 1_761_991_200_000))
            .collect();
        db.ingest(&events)?;
        let script = payload(
            "UPDATE users SET tag = 'first' WHERE n >= 1; UPDATE users SET tag = 'second' WHERE later >= 1",
        );
        let all = Scope::Following(Arc::new((0..8).collect()));
        let Executed {
            outcome, failed_at, ..
        } = execute(&db, &script, parts, &all, false, None, None);
        assert!(outcome.is_err());
        assert_eq!(failed_at, Some(1), "{outcome:?}");
        let first = Some("first".to_owned());
        assert!(tags(&db)?.iter().all(|(_, t)| *t == first));
        // The item the second statement named is made since; a replay for
        // partition 3 stops where the script failed, so its users keep what
        // every node gave them.
        db.execute("CREATE FEATURE later ON buy AS COUNT()")?;
        db.ingest(&events)?;
        let p = 3;
        let theirs: Vec<&String> = users
            .iter()
            .filter(|u| super::super::partition_of(u, parts) == p)
            .collect();
        assert!(!theirs.is_empty() && theirs.len() < users.len());
        let stops = Arc::new([(9u64, 1u32)].into_iter().collect());
        let replay = Scope::Replay(p, stops);
        let outcome = execute(&db, &script, parts, &replay, false, Some(1), None).outcome;
        outcome.unwrap_or_else(|e| panic!("{e}"));
        assert!(tags(&db)?.iter().all(|(_, t)| *t == first));
        // Without the stop the second statement runs now, for partition 3's
        // users alone: what a replay did before it knew where the script
        // failed.
        let outcome = execute(&db, &script, parts, &replay, false, None, None).outcome;
        outcome.unwrap_or_else(|e| panic!("{e}"));
        let second = Some("second".to_owned());
        for (id, tag) in tags(&db)? {
            let want = if theirs.contains(&&id) {
                &second
            } else {
                &first
            };
            assert_eq!(&tag, want, "{id}");
        }
        Ok(())
    }

    /// A partition a node follows only after it applied a statement gets
    /// what that statement did to its users when the nodes that followed
    /// it applied it, as they kept it, though an item its predicates name
    /// is dropped since: the users an `UPDATE … WHERE` tagged, those a
    /// `DELETE … WHERE` deleted, and a user an `UPDATE … WHERE id = …` made.
    /// Without what they kept, the replay evaluates the predicate under
    /// today's schema (and here changes nothing).
    #[test]
    fn a_replay_changes_the_users_the_statement_changed_though_its_item_is_dropped()
    -> crate::Result<()> {
        let parts = std::num::NonZeroU32::new(8).expect("8");
        let part_of = |u: &str| super::super::partition_of(u, parts);
        let p = part_of("fresh");
        // User k buys k % 3 + 1 times.
        let buys = |k: usize| k % 3 + 1;
        let users: Vec<String> = (0..40).map(|u| format!("u{u:02}")).collect();
        assert!(users.iter().any(|u| part_of(u) == p));
        let load = |db: &Db| -> crate::Result<()> {
            db.execute("CREATE FEATURE n ON buy AS COUNT(); CREATE ATTRIBUTE tag STRING")?;
            let events: Vec<Event> = users
                .iter()
                .enumerate()
                .flat_map(|(k, u)| {
                    (0..buys(k))
                        .map(move |i| Event::new(u.clone(), "buy", 1_761_991_200_000 + i as i64))
                })
                .collect();
            db.ingest(&events)?;
            Ok(())
        };
        let script = payload(
            "UPDATE users SET tag = 'loyal' WHERE n >= 2; DELETE FROM users WHERE n >= 3; \
             UPDATE users SET tag = 'new' WHERE id = 'fresh'",
        );
        // The node that followed p when the script was applied.
        let dir_b = tempfile::tempdir().expect("a temporary directory");
        let b = Db::open(dir_b.path())?;
        load(&b)?;
        let all = Scope::Following(Arc::new((0..8).collect()));
        let run = execute(&b, &script, parts, &all, false, None, None);
        run.outcome.unwrap_or_else(|e| panic!("{e}"));
        let kept = run.effects.get(&p).cloned().expect("an effect for p");
        let theirs = |pick: &dyn Fn(usize) -> bool| -> Vec<String> {
            users
                .iter()
                .enumerate()
                .filter(|&(k, u)| part_of(u) == p && pick(k))
                .map(|(_, u)| u.clone())
                .collect()
        };
        let want: BTreeMap<u32, Vec<String>> = [
            (0, theirs(&|k| buys(k) >= 2)),
            (1, theirs(&|k| buys(k) >= 3)),
            (2, vec!["fresh".to_owned()]),
        ]
        .into_iter()
        .collect();
        assert_eq!(kept.changed, want);
        assert_eq!(run.effects.len(), 8);
        // Applied again after a kill, nothing is recorded.
        let again = execute(&b, &script, parts, &all, true, None, None);
        assert!(again.effects.is_empty());

        // The node that replays: it applied the script for the other
        // partitions, and `n` is dropped since.
        let dir_a = tempfile::tempdir().expect("a temporary directory");
        let a = Db::open(dir_a.path())?;
        load(&a)?;
        let others = Scope::Following(Arc::new((0..8).filter(|&q| q != p).collect()));
        execute(&a, &script, parts, &others, false, None, None)
            .outcome
            .unwrap_or_else(|e| panic!("{e}"));
        a.execute("DROP FEATURE n")?;
        let before = tags(&a)?;
        let replay = Scope::Replay(p, Arc::new(BTreeMap::new()));
        let blind = execute(&a, &script, parts, &replay, false, None, None);
        assert!(blind.outcome.is_err(), "{:?}", blind.outcome);
        assert_eq!(tags(&a)?, before);
        let replayed = execute(&a, &script, parts, &replay, false, None, Some(&kept));
        let done = replayed.outcome.unwrap_or_else(|e| panic!("{e}"));
        assert!(replayed.effects.is_empty());
        // Its count is the partition's users the last statement changed.
        assert_eq!(done.changed, Some([(p, 1)].into_iter().collect()));
        // Every user as one server fed the same would have it, by hand:
        // three buys deleted, two tagged loyal, one untagged; and fresh.
        let mut want: Vec<(String, Option<String>)> = users
            .iter()
            .enumerate()
            .filter(|&(k, _)| buys(k) < 3)
            .map(|(k, u)| (u.clone(), (buys(k) == 2).then(|| "loyal".to_owned())))
            .collect();
        want.push(("fresh".to_owned(), Some("new".to_owned())));
        want.sort();
        assert_eq!(tags(&a)?, want);
        Ok(())
    }
}
