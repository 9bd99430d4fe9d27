//! Scalar cells: the per-definition state inside a user's record, and how two
//! cells of the same definition combine.
//!
//! Every combination here is associative and commutative, so the record merge can
//! fold operands in any grouping (partial merges) and events in any order; a
//! keyed state past its bound is the one exception, within its stated error
//! ([`crate::merge::keyed`]).

use std::cmp::Ordering;

use crate::codec::{DecodeError, Reader, Writer, derr};
use crate::merge::decayed;
use crate::merge::distinct::Distinct;
use crate::merge::keyed::Keyed;
use crate::merge::vector::Ewma;
use crate::value::Value;

/// State of one definition for one user.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// The user's own bookkeeping: first and last event time, and event count.
    Meta {
        /// Earliest event time seen (or the time of the first attribute write).
        first: i64,
        /// Latest event time seen.
        last: i64,
        /// Number of events.
        events: u64,
    },
    /// `count`.
    Count(u64),
    /// `sum`.
    Sum(f64),
    /// `min`.
    Min(f64),
    /// `max`.
    Max(f64),
    /// `last`: the value of the latest event; equal times keep the larger value.
    Last {
        /// Event time of the value.
        ts: i64,
        /// The value.
        value: f64,
    },
    /// `decayed_sum` and `decayed_count`: S(T) = s·2^(−(T−t)/h).
    Decayed {
        /// Half-life in ms.
        h: i64,
        /// Reference time.
        t: i64,
        /// Sum at the reference time.
        s: f64,
    },
    /// `decayed_avg`: decayed sum of x over decayed sum of 1.
    DecayedAvg {
        /// Half-life in ms.
        h: i64,
        /// Reference time.
        t: i64,
        /// Decayed sum of the values.
        sx: f64,
        /// Decayed sum of the weights.
        sw: f64,
    },
    /// `beta`: decayed successes and failures.
    Beta {
        /// Half-life in ms.
        h: i64,
        /// Reference time.
        t: i64,
        /// Decayed successes.
        a: f64,
        /// Decayed failures.
        b: f64,
    },
    /// An ewma vector: decayed sums of event vectors and of their weights.
    Ewma(Ewma),
    /// `count_distinct`: a sketch of the values seen.
    Distinct(Distinct),
    /// A keyed count or sum: values per key, for at most so many keys.
    Keyed(Keyed),
    /// An attribute: last writer wins by time; equal times keep the larger encoding.
    Attr {
        /// Time of the write.
        ts: i64,
        /// The value.
        value: Value,
    },
}

const META: u8 = 0;
const COUNT: u8 = 1;
const SUM: u8 = 2;
const MIN: u8 = 3;
const MAX: u8 = 4;
const LAST: u8 = 5;
const DECAYED: u8 = 6;
const DECAYED_AVG: u8 = 7;
const BETA: u8 = 8;
const ATTR: u8 = 9;
const EWMA: u8 = 10;
/// An ewma cell of one event, stored with f32 components (see `Ewma::is_single`).
const EWMA_SINGLE: u8 = 11;
/// A distinct count's exact set of hashes.
const DISTINCT_EXACT: u8 = 12;
/// A distinct count's HyperLogLog registers.
const DISTINCT_HLL: u8 = 13;
/// A keyed feature's values.
const KEYED: u8 = 14;

impl Cell {
    /// Memory the cell holds on the heap, in bytes (an estimate).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Cell::Ewma(e) => e.v.capacity() * std::mem::size_of::<f64>(),
            Cell::Distinct(d) => d.heap_bytes(),
            Cell::Keyed(k) => k.heap_bytes(),
            Cell::Attr { value, .. } => match value {
                Value::String(s) => s.capacity(),
                Value::Tags(t) => t.iter().map(|s| s.capacity() + 24).sum(),
                Value::Vector(v) => v.capacity() * std::mem::size_of::<f32>(),
                _ => 0,
            },
            _ => 0,
        }
    }

    fn tag(&self) -> u8 {
        match self {
            Cell::Meta { .. } => META,
            Cell::Count(_) => COUNT,
            Cell::Sum(_) => SUM,
            Cell::Min(_) => MIN,
            Cell::Max(_) => MAX,
            Cell::Last { .. } => LAST,
            Cell::Decayed { .. } => DECAYED,
            Cell::DecayedAvg { .. } => DECAYED_AVG,
            Cell::Beta { .. } => BETA,
            Cell::Attr { .. } => ATTR,
            Cell::Ewma(_) => EWMA,
            Cell::Distinct(d) if d.is_exact() => DISTINCT_EXACT,
            Cell::Distinct(_) => DISTINCT_HLL,
            Cell::Keyed(_) => KEYED,
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer, flags: u8) {
        if let Cell::Ewma(e) = self
            && e.is_single()
        {
            w.u8(EWMA_SINGLE | flags);
            e.encode_body(w, true);
            return;
        }
        w.u8(self.tag() | flags);
        match self {
            Cell::Meta {
                first,
                last,
                events,
            } => {
                w.i64(*first);
                w.i64(*last);
                w.u64(*events);
            }
            Cell::Count(n) => w.u64(*n),
            Cell::Sum(x) | Cell::Min(x) | Cell::Max(x) => w.f64(*x),
            Cell::Last { ts, value } => {
                w.i64(*ts);
                w.f64(*value);
            }
            Cell::Decayed { h, t, s } => {
                w.i64(*h);
                w.i64(*t);
                w.f64(*s);
            }
            Cell::DecayedAvg { h, t, sx, sw } | Cell::Beta { h, t, a: sx, b: sw } => {
                w.i64(*h);
                w.i64(*t);
                w.f64(*sx);
                w.f64(*sw);
            }
            Cell::Attr { ts, value } => {
                w.i64(*ts);
                value.encode(w);
            }
            Cell::Ewma(e) => e.encode_body(w, false),
            Cell::Distinct(d) => d.encode_body(w),
            Cell::Keyed(k) => k.encode_body(w),
        }
    }

    pub(crate) fn decode(tag: u8, r: &mut Reader<'_>) -> Result<Cell, DecodeError> {
        let half_life = |r: &mut Reader<'_>| -> Result<i64, DecodeError> {
            let h = r.i64()?;
            if h > 0 {
                Ok(h)
            } else {
                derr(format!("half-life {h} is not positive"))
            }
        };
        Ok(match tag {
            META => Cell::Meta {
                first: r.i64()?,
                last: r.i64()?,
                events: r.u64()?,
            },
            COUNT => Cell::Count(r.u64()?),
            SUM => Cell::Sum(r.finite()?),
            MIN => Cell::Min(r.finite()?),
            MAX => Cell::Max(r.finite()?),
            LAST => Cell::Last {
                ts: r.i64()?,
                value: r.finite()?,
            },
            DECAYED => Cell::Decayed {
                h: half_life(r)?,
                t: r.i64()?,
                s: r.finite()?,
            },
            DECAYED_AVG => Cell::DecayedAvg {
                h: half_life(r)?,
                t: r.i64()?,
                sx: r.finite()?,
                sw: r.finite()?,
            },
            BETA => Cell::Beta {
                h: half_life(r)?,
                t: r.i64()?,
                a: r.finite()?,
                b: r.finite()?,
            },
            ATTR => Cell::Attr {
                ts: r.i64()?,
                value: Value::decode(r)?,
            },
            EWMA => Cell::Ewma(Ewma::decode_body(r, false)?),
            EWMA_SINGLE => Cell::Ewma(Ewma::decode_body(r, true)?),
            DISTINCT_EXACT => Cell::Distinct(Distinct::decode_exact(r)?),
            DISTINCT_HLL => Cell::Distinct(Distinct::decode_hll(r)?),
            KEYED => Cell::Keyed(Keyed::decode_body(r)?),
            other => return derr(format!("unknown cell tag {other}")),
        })
    }

    /// Folds `newer` into `self`. Cells of different kinds, or decayed cells with
    /// different half-lives, cannot belong to one definition: that is corruption.
    pub(crate) fn merge(&mut self, newer: &Cell) -> Result<(), DecodeError> {
        match (self, newer) {
            (
                Cell::Meta {
                    first,
                    last,
                    events,
                },
                Cell::Meta {
                    first: f2,
                    last: l2,
                    events: e2,
                },
            ) => {
                *first = (*first).min(*f2);
                *last = (*last).max(*l2);
                *events = events.saturating_add(*e2);
            }
            (Cell::Count(a), Cell::Count(b)) => *a = a.saturating_add(*b),
            (Cell::Sum(a), Cell::Sum(b)) => *a += b,
            (Cell::Min(a), Cell::Min(b)) => *a = a.min(*b),
            (Cell::Max(a), Cell::Max(b)) => *a = a.max(*b),
            (Cell::Last { ts, value }, Cell::Last { ts: t2, value: v2 }) => {
                if *t2 > *ts || (*t2 == *ts && v2.total_cmp(value) == Ordering::Greater) {
                    *ts = *t2;
                    *value = *v2;
                }
            }
            (
                Cell::Decayed { h, t, s },
                Cell::Decayed {
                    h: h2,
                    t: t2,
                    s: s2,
                },
            ) if h == h2 => {
                let mut a = [*s];
                *t = decayed::combine(&mut a, *t, &[*s2], *t2, *h);
                *s = a[0];
            }
            (
                Cell::DecayedAvg { h, t, sx, sw },
                Cell::DecayedAvg {
                    h: h2,
                    t: t2,
                    sx: x2,
                    sw: w2,
                },
            )
            | (
                Cell::Beta { h, t, a: sx, b: sw },
                Cell::Beta {
                    h: h2,
                    t: t2,
                    a: x2,
                    b: w2,
                },
            ) if h == h2 => {
                let mut a = [*sx, *sw];
                *t = decayed::combine(&mut a, *t, &[*x2, *w2], *t2, *h);
                *sx = a[0];
                *sw = a[1];
            }
            (Cell::Attr { ts, value }, Cell::Attr { ts: t2, value: v2 }) => {
                let newer_wins = match t2.cmp(ts) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal => encoded(v2) > encoded(value),
                };
                if newer_wins {
                    *ts = *t2;
                    *value = v2.clone();
                }
            }
            (Cell::Ewma(a), Cell::Ewma(b)) => a.merge(b)?,
            (Cell::Distinct(a), Cell::Distinct(b)) => a.merge(b),
            (Cell::Keyed(a), Cell::Keyed(b)) => a.merge(b)?,
            (a, b) => {
                return derr(format!(
                    "cannot merge cell kind {} with kind {} (or half-lives differ)",
                    a.tag(),
                    b.tag()
                ));
            }
        }
        Ok(())
    }
}

fn encoded(v: &Value) -> Vec<u8> {
    let mut w = Writer::default();
    v.encode(&mut w);
    w.finish()
}
