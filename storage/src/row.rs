//! Users' stored state as queries read it: raw records, plus only the window
//! buckets and sgd vectors a query asks for.
//!
//! A profile ([`crate::Profile`]) evaluates everything; a scan that tests two
//! columns of a million users cannot afford that. A [`UserRow`] keeps the
//! decoded records and leaves evaluation to the reader, which evaluates only the
//! cells its expressions name ([`crate::profile::evaluate_feature`]).

use crate::catalog::{Bindings, VectorDef, VectorRule, WindowDef};
use crate::keys;
use crate::merge::cell::Cell;
use crate::merge::record::Record;
use crate::merge::window::Bucket;

/// A half-open range of user ids `[start, end)`; `None` is unbounded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRange {
    /// First user id included.
    pub start: Option<String>,
    /// First user id excluded.
    pub end: Option<String>,
}

impl UserRange {
    /// Every user.
    pub fn all() -> UserRange {
        UserRange::default()
    }

    /// Contiguous ranges that together cover every user, cut at `bounds`
    /// (sorted, without repeats): one more range than bounds.
    pub fn cut_at(bounds: Vec<String>) -> Vec<UserRange> {
        let mut out = Vec::with_capacity(bounds.len() + 1);
        let mut start = None;
        for b in bounds {
            out.push(UserRange {
                start: start.take(),
                end: Some(b.clone()),
            });
            start = Some(b);
        }
        out.push(UserRange { start, end: None });
        out
    }
}

/// The buckets of one window that a read fetches: those overlapping `[from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowNeed {
    /// Window definition id.
    pub id: u32,
    /// Bucket width of that window, in ms.
    pub bucket_ms: i64,
    /// Earliest time of interest.
    pub from: i64,
    /// Latest time of interest.
    pub to: i64,
    /// Retention of that window, in ms: a bucket that ended before the
    /// read's clock minus it is never read, whether or not compaction has
    /// dropped it yet ([`keys::bucket_expired`]).
    pub retain_ms: i64,
}

impl WindowNeed {
    /// The starts of the first and last buckets this need reads (those
    /// holding `from` and `to`); `None` for an empty span.
    pub fn bucket_span(&self) -> Option<(i64, i64)> {
        (self.from <= self.to).then(|| {
            (
                keys::bucket_start(self.from, self.bucket_ms),
                keys::bucket_start(self.to, self.bucket_ms),
            )
        })
    }

    /// Whether the bucket starting at `start` is past the window's retention
    /// at `now`: never read.
    pub fn expired(&self, start: i64, now: i64) -> bool {
        keys::bucket_expired(start, self.bucket_ms, self.retain_ms, now)
    }

    /// The buckets of window `def` overlapping `[from, to]`.
    pub fn of(def: &WindowDef, from: i64, to: i64) -> WindowNeed {
        WindowNeed {
            id: def.id,
            bucket_ms: def.bucket_ms,
            from,
            to,
            retain_ms: def.retain_ms,
        }
    }

    /// Whether a user whose event times lie in `[first, last]` can hold a
    /// bucket this need reads: every bucket of that user starts between the
    /// buckets of `first` and `last`.
    pub fn may_hold(&self, first: i64, last: i64) -> bool {
        let start = |ts| keys::bucket_start(ts, self.bucket_ms);
        self.bucket_span()
            .is_some_and(|(lo, hi)| start(first) <= hi && start(last) >= lo)
    }
}

/// What a row read fetches beyond the features record, which it always reads
/// (it is the list of users).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowNeeds {
    /// Read the attributes record.
    pub attributes: bool,
    /// Sgd vector definitions to read, by id.
    pub sgd: Vec<u32>,
    /// Window bucket ranges to read.
    pub windows: Vec<WindowNeed>,
    /// Read each user as of this time from the event history
    /// ([`crate::history`]): a user with a write after it is rebuilt from
    /// their writes up to it, and one without any up to it does not exist.
    /// `None` reads the stored state.
    pub history_as_of: Option<i64>,
    /// The features-record items (features and ewma vectors) read, by id;
    /// `None` reads every one. A row may hold more than these (a stored
    /// record is read whole), never less: a replay from the event history
    /// merges only these, and so costs what the read uses.
    pub items: Option<Vec<u32>>,
}

impl RowNeeds {
    /// Whether the engine's row table holds everything these needs ask for
    /// (current records only: no window buckets, no sgd vectors, no replay),
    /// so that a scan can read it instead of the store.
    pub fn in_row_table(&self) -> bool {
        self.sgd.is_empty() && self.windows.is_empty() && self.history_as_of.is_none()
    }
}

/// One user's stored state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    /// User id.
    pub user: String,
    /// The attributes record (empty when not requested or never set).
    pub attributes: Record,
    /// The features record: the user cell, every feature and every ewma vector.
    pub features: Record,
    /// The current sgd vectors [`RowNeeds::sgd`] asked for, by definition id;
    /// `None` when the user has none.
    pub sgd: Vec<(u32, Option<Vec<f32>>)>,
    /// Buckets as (start, aggregate), oldest first, parallel to [`RowNeeds::windows`].
    pub windows: Vec<Vec<(i64, Bucket)>>,
}

/// What a read of every vector needs: the attributes (the index filters on
/// them) and every sgd vector.
pub fn vector_needs(bindings: &Bindings) -> RowNeeds {
    RowNeeds {
        attributes: true,
        sgd: bindings
            .catalog
            .vectors
            .iter()
            .filter(|d| matches!(d.rule, VectorRule::Sgd { .. }))
            .map(|d| d.id)
            .collect(),
        windows: Vec::new(),
        history_as_of: None,
        items: None,
    }
}

/// The current vector of definition `def` in `row`: the decayed mean of an
/// ewma vector, the stored state of an sgd one. `None` for a user without one
/// (or an sgd vector the read did not fetch). Every reader of a vector —
/// queries, profiles, the vector index — reads it here.
pub fn current_vector(def: &VectorDef, row: &UserRow) -> Option<Vec<f32>> {
    match def.rule {
        VectorRule::Ewma { .. } => match row.features.cell(def.id) {
            Some(Cell::Ewma(e)) => Some(e.mean()),
            _ => None,
        },
        VectorRule::Sgd { .. } => row
            .sgd
            .iter()
            .find(|(id, _)| *id == def.id)
            .and_then(|(_, v)| v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::WindowNeed;

    /// `may_hold` says no only when no event time in `[first, last]` puts a
    /// bucket in the span: checked against every such time.
    #[test]
    fn may_hold_never_skips_a_bucket_in_the_span() {
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..20_000 {
            let bucket_ms = rng.random_range(1..8i64);
            let first = rng.random_range(-40..40i64);
            let last = first + rng.random_range(0..20i64);
            let from = rng.random_range(-50..50i64);
            let to = from + rng.random_range(-3..25i64);
            let need = WindowNeed {
                id: 1,
                bucket_ms,
                from,
                to,
                retain_ms: i64::MAX,
            };
            // A bucket starting at `s` is read when it starts between the
            // buckets of `from` and `to`, as the reader seeks.
            let lo = from.div_euclid(bucket_ms) * bucket_ms;
            let hi = to.div_euclid(bucket_ms) * bucket_ms;
            let any = from <= to
                && (first..=last).any(|t| {
                    let s = t.div_euclid(bucket_ms) * bucket_ms;
                    lo <= s && s <= hi
                });
            assert_eq!(
                need.may_hold(first, last),
                any,
                "bucket {bucket_ms}, events [{first}, {last}], span [{from}, {to}]"
            );
        }
    }
}
