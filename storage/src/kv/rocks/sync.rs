//! Durability policy and group commit.

use parking_lot::{Condvar, Mutex};

/// When acknowledged writes reach stable storage. The write-ahead log is always
/// on, so under every policy an acknowledged write survives a process kill; the
/// policy decides whether it also survives power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Writes reach the operating system before they are acknowledged, and are
    /// synced to disk in the background. Survives a process kill, not power loss.
    #[default]
    None,
    /// Every batch is synced (fsync) before it is acknowledged.
    EveryBatch,
    /// Every batch is synced before it is acknowledged, but concurrent writers
    /// share one sync: while one sync runs, the batches written meanwhile wait and
    /// are covered together by the next.
    Group,
}

#[derive(Debug, Default)]
struct State {
    written: u64,
    synced: u64,
    syncing: bool,
}

/// Leader/follower group commit: the first waiter syncs the log for everyone
/// written so far; later waiters either find themselves covered or lead the next sync.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Called after a write has reached the log buffer: returns once that write is
    /// synced. `sync` flushes and syncs the whole log.
    pub(crate) fn wait<E>(&self, sync: impl Fn() -> Result<(), E>) -> Result<(), E> {
        let mut s = self.state.lock();
        s.written += 1;
        let mine = s.written;
        loop {
            if s.synced >= mine {
                return Ok(());
            }
            if s.syncing {
                self.done.wait(&mut s);
                continue;
            }
            s.syncing = true;
            let target = s.written;
            drop(s);
            let result = sync();
            s = self.state.lock();
            s.syncing = false;
            if result.is_ok() {
                s.synced = s.synced.max(target);
            }
            self.done.notify_all();
            result?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn every_waiter_is_covered_by_a_sync_started_after_its_write() {
        let g = Arc::new(GroupCommit::default());
        let syncs = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (g, syncs) = (Arc::clone(&g), Arc::clone(&syncs));
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let r: Result<(), ()> = g.wait(|| {
                            syncs.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        });
                        assert!(r.is_ok());
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        let s = g.state.lock();
        assert_eq!(s.written, 800);
        assert_eq!(s.synced, 800);
        let n = syncs.load(Ordering::SeqCst);
        assert!((1..=800).contains(&n));
    }

    #[test]
    fn a_failed_sync_is_reported_and_retried() {
        let g = GroupCommit::default();
        assert_eq!(g.wait(|| Err("disk on fire")), Err("disk on fire"));
        assert_eq!(g.wait(|| Ok::<(), &str>(())), Ok(()));
        assert_eq!(g.state.lock().synced, 2);
    }
}
