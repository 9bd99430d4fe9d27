//! Limits on one statement: a deadline and a cap on result rows, which every
//! long-running step checks (scans, rankings, clustering, purges); and the
//! process's interrupt (Ctrl-C in the shell), which those checks honour as a
//! deadline that has passed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::error::{Error, Result};

/// Set by [`interrupt`]: every statement of this process under way stops
/// at its next check, as if past its deadline.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Cancels the statements this process is running (the shell calls it on
/// Ctrl-C): each fails with [`Error::Cancelled`] at its next check. Stays
/// set until [`clear_interrupt`].
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Lets statements run again after [`interrupt`] (the shell calls it before
/// each statement).
pub fn clear_interrupt() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// Whether [`interrupt`] was called since the last [`clear_interrupt`]: for
/// long work outside statements (bulk imports) to stop as statements do.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Limits on one statement.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Stop and fail with [`Error::Cancelled`] after this instant.
    pub deadline: Option<Instant>,
    /// Fail with [`Error::TooManyRows`] rather than return more rows.
    pub max_rows: Option<usize>,
}

impl Limits {
    /// Whether the deadline has passed, or the process was interrupted.
    pub(crate) fn expired(&self) -> bool {
        interrupted() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// [`Error::Cancelled`] once the deadline has passed or the process was
    /// interrupted.
    pub(crate) fn check(&self) -> Result<()> {
        if interrupted() {
            return Err(Error::Cancelled {
                reason: "the statement was interrupted".into(),
            });
        }
        if self.expired() {
            return Err(Error::Cancelled {
                reason: "the statement ran past its time limit".into(),
            });
        }
        Ok(())
    }

    /// [`Error::TooManyRows`] when `rows` is over the row cap.
    pub(crate) fn check_rows(&self, rows: usize) -> Result<()> {
        match self.max_rows {
            Some(limit) if rows > limit => Err(Error::TooManyRows { limit }),
            _ => Ok(()),
        }
    }
}
