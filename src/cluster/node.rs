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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::log::{Log, LogReader, Message};
use crate::{Db, Event};

/// Messages applied in one write at most.
pub const PULL: usize = 1000;
/// How long a partition's reader waits for a message before looking again.
const WAIT: Duration = Duration::from_millis(200);
/// The pause after a failed read or write.
const RETRY: Duration = Duration::from_millis(500);

/// What a node has done, shared with whoever reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Partition → last applied sequence number.
    pub positions: BTreeMap<u32, u64>,
    /// Messages skipped: not an event, or not one the schema takes.
    pub rejected: u64,
    /// The last failure, if the last attempt of some partition failed.
    pub last_error: Option<String>,
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
}

impl<L: Log> Node<L> {
    /// Starts reading `partitions` of `log` into `db`, on the current
    /// tokio runtime, until [`Node::stop`].
    pub fn start(db: Arc<Db>, log: Arc<L>, partitions: &[u32]) -> Node<L> {
        let mut node = Node {
            db,
            log,
            progress: Arc::new(Mutex::new(Progress::default())),
            followers: BTreeMap::new(),
        };
        node.follow(&partitions.iter().copied().collect());
        node
    }

    /// Reads exactly `partitions` from now on: starts a reader for each new
    /// one, and lets the others stop after the pull they are applying (a
    /// reader stopped and wanted again before it stopped goes on; one
    /// started again resumes from the stored position, so no partition is
    /// ever read by two readers at once).
    pub fn follow(&mut self, partitions: &std::collections::BTreeSet<u32>) {
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
                self.db.clone(),
                self.log.clone(),
                p,
                self.progress.clone(),
                wanted.clone(),
            ));
            self.followers.insert(p, Follower { task, wanted });
        }
    }

    /// What the node has applied so far, in the partitions it reads.
    pub fn progress(&self) -> Progress {
        self.progress.lock().map(|p| p.clone()).unwrap_or_default()
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
    }
}

/// Reads partition `p` into `db` while `wanted`, then forgets its position
/// in `progress`.
async fn follow<L: Log>(
    db: Arc<Db>,
    log: Arc<L>,
    p: u32,
    progress: Arc<Mutex<Progress>>,
    wanted: Arc<AtomicBool>,
) {
    read_partition(&db, &log, p, &progress, &wanted).await;
    if let Ok(mut g) = progress.lock() {
        g.positions.remove(&p);
    }
}

async fn read_partition<L: Log>(
    db: &Arc<Db>,
    log: &Arc<L>,
    p: u32,
    progress: &Mutex<Progress>,
    wanted: &AtomicBool,
) {
    let note = |f: &dyn Fn(&mut Progress)| {
        if let Ok(mut g) = progress.lock() {
            f(&mut g);
        }
    };
    while wanted.load(Ordering::Relaxed) {
        // From the stored position: the truth after any failure.
        let at = {
            let db = db.clone();
            tokio::task::spawn_blocking(move || db.log_position(p)).await
        };
        let mut at = match at {
            Ok(Ok(at)) => at.unwrap_or(0),
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
        let mut reader = match log.reader(p, at).await {
            Ok(r) => r,
            Err(e) => {
                note(&|g| g.last_error = Some(format!("partition {p}: {e}")));
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
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
            let Some(last) = batch.last().map(|m| m.seq) else {
                continue;
            };
            let mut undecodable = 0u64;
            let events: Vec<Event> = batch
                .iter()
                .filter_map(|m| {
                    let ev = serde_json::from_slice::<serde_json::Value>(&m.payload)
                        .ok()
                        .and_then(|j| Event::from_json(&j).ok());
                    undecodable += u64::from(ev.is_none());
                    ev
                })
                .collect();
            let applied = {
                let db = db.clone();
                tokio::task::spawn_blocking(move || db.apply_log(p, last, &events)).await
            };
            match applied {
                Ok(Ok(done)) => {
                    at = last;
                    let rejected = undecodable + done.rejected.len() as u64;
                    note(&|g| {
                        g.positions.insert(p, last);
                        g.rejected += rejected;
                    });
                }
                Ok(Err(e)) => {
                    note(&|g| g.last_error = Some(format!("partition {p}: {e}")));
                    break;
                }
                Err(_) => return,
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}
