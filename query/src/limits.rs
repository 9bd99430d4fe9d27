//! Limits on one statement: a deadline and a cap on result rows, which every
//! long-running step checks (scans, rankings, clustering, purges).

use std::time::Instant;

use crate::error::{Error, Result};

/// Limits on one statement.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// Stop and fail with [`Error::Cancelled`] after this instant.
    pub deadline: Option<Instant>,
    /// Fail with [`Error::TooManyRows`] rather than return more rows.
    pub max_rows: Option<usize>,
}

impl Limits {
    /// Whether the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// [`Error::Cancelled`] once the deadline has passed.
    pub(crate) fn check(&self) -> Result<()> {
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
