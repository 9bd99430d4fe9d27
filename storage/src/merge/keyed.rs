//! Keyed features (`CREATE FEATURE cat_affinity ON view AS DECAYED_COUNT() BY
//! category HALF_LIFE '14d' TOP 50`): a count, sum, decayed count or decayed
//! sum kept per value of an event field, for at most `TOP n` keys per user.
//!
//! The bound is kept the way Misra and Gries keep frequent items, in its
//! mergeable form (Agarwal et al., "Mergeable Summaries", 2012): two states
//! merge by adding their values key by key; when that leaves more than `n`
//! keys, the (n+1)-th largest value `c` is subtracted from every value and
//! the keys left at zero or below are dropped, so at most `n` remain, and `c`
//! is added to the state's error bound `err`. Every estimate is then an
//! underestimate by at most `err`: for each key, `value ≤ true value ≤
//! value + err` (a key not kept has a true value of at most `err`), and `err`
//! is at most (total − kept total) / (n + 1), so keys that hold more than a
//! 1/(n+1) share of the total are always kept. This holds in any grouping of
//! merges (late events, partial merges, compaction). A decayed state decays
//! its values and its bound alike, so the same holds at every time.
//!
//! While a user has at most `n` keys, nothing is ever subtracted: the values
//! are exact, whatever order and grouping the merges took. Past `n` keys, the
//! values depend (within the bound) on the grouping. The guarantee is for
//! non-negative amounts, which is what counts and sums of spend or views
//! carry; a negative amount is kept and merged the same way, but a key whose
//! value falls to zero or below is the first to be dropped.

use std::cmp::Ordering;

use crate::codec::{DecodeError, Reader, Writer, derr};
use crate::merge::decayed::{decay_factor, value_at};

/// Longest key kept, in bytes.
pub const MAX_KEY_LEN: usize = 256;

/// A keyed feature's state for one user.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed {
    /// Half-life in ms; 0 for a count or sum that does not decay.
    pub h: i64,
    /// Most keys kept.
    pub top: u32,
    /// Reference time of the values and the bound (decayed states).
    pub t: i64,
    /// How much any value may fall short of its true value, at `t`.
    pub err: f64,
    /// Values by key, sorted by key, without repeats.
    pub entries: Vec<(String, f64)>,
}

impl Keyed {
    /// The state of one event that adds `x` to `key` at `t`.
    pub fn single(h: i64, top: u32, t: i64, key: String, x: f64) -> Keyed {
        Keyed {
            h,
            top,
            t: if h > 0 { t } else { 0 },
            err: 0.0,
            entries: vec![(key, x)],
        }
    }

    /// Memory held on the heap, in bytes (an estimate).
    pub fn heap_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|(k, _)| k.capacity() + 32)
            .sum::<usize>()
    }

    /// Folds `other` into this state.
    ///
    /// # Errors
    /// A [`DecodeError`] for states of different half-lives or bounds: they
    /// cannot belong to one definition.
    pub fn merge(&mut self, other: &Keyed) -> Result<(), DecodeError> {
        if self.h != other.h || self.top != other.top {
            return derr(format!(
                "cannot merge keyed states of half-life {} and {}, or of {} and {} keys",
                self.h, other.h, self.top, other.top
            ));
        }
        let (fa, fb) = if self.h > 0 {
            let t = self.t.max(other.t);
            let f = (
                decay_factor(t, self.t, self.h),
                decay_factor(t, other.t, self.h),
            );
            self.t = t;
            f
        } else {
            (1.0, 1.0)
        };
        let a = std::mem::take(&mut self.entries);
        let mut out = Vec::with_capacity(a.len() + other.entries.len());
        let mut b = other.entries.iter().peekable();
        for (key, x) in a {
            while let Some((k2, y)) = b.next_if(|(k2, _)| *k2 < key) {
                out.push((k2.clone(), y * fb));
            }
            match b.next_if(|(k2, _)| *k2 == key) {
                Some((_, y)) => out.push((key, x * fa + y * fb)),
                None => out.push((key, x * fa)),
            }
        }
        out.extend(b.map(|(k, y)| (k.clone(), y * fb)));
        self.err = self.err * fa + other.err * fb;
        self.entries = out;
        self.bound();
        Ok(())
    }

    /// Keeps at most `top` keys: subtracts the (top+1)-th largest value
    /// (when positive) from all, and drops the keys left at zero or below,
    /// or, when it is not positive, past the `top` largest.
    fn bound(&mut self) {
        let top = self.top as usize;
        if self.entries.len() <= top {
            return;
        }
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        order.sort_unstable_by(|&i, &j| rank(&self.entries[i], &self.entries[j]));
        let c = self.entries[order[top]].1.max(0.0);
        let mut keep = vec![false; self.entries.len()];
        for &i in &order[..top] {
            keep[i] = self.entries[i].1 - c > 0.0 || c == 0.0;
        }
        let mut i = 0;
        self.entries.retain_mut(|(_, x)| {
            let k = keep[i];
            i += 1;
            *x -= c;
            k
        });
        self.err += c;
    }

    /// The values at `as_of`, largest first (equal ones by key).
    pub fn values_at(&self, as_of: i64) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .entries
            .iter()
            .map(|(k, x)| (k.clone(), self.at(*x, as_of)))
            .collect();
        out.sort_by(rank);
        out
    }

    /// The error bound at `as_of`: each value may fall short of its true
    /// value by at most this much.
    pub fn err_at(&self, as_of: i64) -> f64 {
        self.at(self.err, as_of)
    }

    fn at(&self, x: f64, as_of: i64) -> f64 {
        if self.h > 0 {
            value_at(x, self.t, as_of, self.h)
        } else {
            x
        }
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        w.i64(self.h);
        w.u32(self.top);
        w.i64(self.t);
        w.f64(self.err);
        w.u32(self.entries.len() as u32);
        for (k, x) in &self.entries {
            w.bytes(k.as_bytes());
            w.f64(*x);
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Keyed, DecodeError> {
        let h = r.i64()?;
        if h < 0 {
            return derr(format!("keyed half-life {h} is negative"));
        }
        let top = r.u32()?;
        if top == 0 {
            return derr("a keyed state keeps no keys");
        }
        let t = r.i64()?;
        let err = r.finite()?;
        let n = r.u32()? as usize;
        if n > top as usize || n > r.remaining() / 12 {
            return derr(format!("keyed state of {n} keys, for at most {top}"));
        }
        let mut entries: Vec<(String, f64)> = Vec::with_capacity(n);
        for _ in 0..n {
            let k = r.str()?.to_owned();
            if entries.last().is_some_and(|(prev, _)| *prev >= k) {
                return derr("keyed state keys are not sorted");
            }
            entries.push((k, r.finite()?));
        }
        Ok(Keyed {
            h,
            top,
            t,
            err,
            entries,
        })
    }
}

/// Larger values first; equal values by key.
fn rank(a: &(String, f64), b: &(String, f64)) -> Ordering {
    b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn fold(states: &[Keyed]) -> Keyed {
        let mut acc = states[0].clone();
        for s in &states[1..] {
            acc.merge(s).expect("valid");
        }
        acc
    }

    /// Events in random order and random groupings.
    fn grouped(rng: &mut StdRng, mut singles: Vec<Keyed>) -> Keyed {
        singles.shuffle(rng);
        while singles.len() > 1 {
            let at = rng.random_range(0..singles.len() - 1);
            let b = singles.remove(at + 1);
            singles[at].merge(&b).expect("valid");
        }
        singles.pop().expect("valid")
    }

    /// With at most `top` keys the values are exact sums in any grouping.
    #[test]
    fn exact_while_the_keys_fit() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let keys = rng.random_range(1..=8);
            let events: Vec<(String, f64)> = (0..rng.random_range(1..60))
                .map(|_| {
                    (
                        format!("k{}", rng.random_range(0..keys)),
                        f64::from(rng.random_range(1..10u8)),
                    )
                })
                .collect();
            let mut truth: HashMap<String, f64> = HashMap::new();
            for (k, x) in &events {
                *truth.entry(k.clone()).or_default() += x;
            }
            let singles = events
                .iter()
                .map(|(k, x)| Keyed::single(0, 8, 0, k.clone(), *x))
                .collect();
            let got = grouped(&mut rng, singles);
            assert_eq!(got.err, 0.0);
            assert_eq!(got.entries.len(), truth.len());
            for (k, x) in &got.entries {
                assert_eq!(*x, truth[k], "key {k}");
            }
        }
    }

    /// Past `top` keys: at most `top` kept, each value within `err` below
    /// its true value, every key not kept at most `err`, and `err` within
    /// the Misra–Gries bound; in any order and grouping.
    #[test]
    fn bounded_past_the_keys_kept() {
        let mut rng = StdRng::seed_from_u64(4);
        for round in 0..100 {
            let top = rng.random_range(1..12u32);
            let keys = rng.random_range(1..60u32);
            // Skewed: low keys come more often.
            let events: Vec<(String, f64)> = (0..rng.random_range(50..400))
                .map(|_| {
                    let k = rng.random_range(0..keys).min(rng.random_range(0..keys));
                    (format!("k{k}"), f64::from(rng.random_range(1..5u8)))
                })
                .collect();
            let mut truth: HashMap<String, f64> = HashMap::new();
            for (k, x) in &events {
                *truth.entry(k.clone()).or_default() += x;
            }
            let total: f64 = events.iter().map(|e| e.1).sum();
            let singles = events
                .iter()
                .map(|(k, x)| Keyed::single(0, top, 0, k.clone(), *x))
                .collect();
            let got = grouped(&mut rng, singles);
            assert!(got.entries.len() <= top as usize, "round {round}");
            let kept: f64 = got.entries.iter().map(|e| e.1).sum();
            assert!(
                got.err <= (total - kept) / f64::from(top + 1) + 1e-9,
                "round {round}: err {} total {total} kept {kept}",
                got.err
            );
            for (k, t) in &truth {
                match got.entries.iter().find(|(k2, _)| k2 == k) {
                    Some((_, x)) => assert!(
                        *x <= t + 1e-9 && t - x <= got.err + 1e-9,
                        "round {round} key {k}: {x} of {t}, err {}",
                        got.err
                    ),
                    None => assert!(*t <= got.err + 1e-9, "round {round} key {k} dropped"),
                }
            }
        }
    }

    /// A decayed keyed state reads each key as the decayed sum of its events.
    #[test]
    fn decayed_values_match_a_naive_sum() {
        let mut rng = StdRng::seed_from_u64(5);
        let h = 1000;
        let events: Vec<(String, i64)> = (0..200)
            .map(|_| {
                (
                    format!("k{}", rng.random_range(0..5)),
                    rng.random_range(0..10_000i64),
                )
            })
            .collect();
        let singles: Vec<Keyed> = events
            .iter()
            .map(|(k, t)| Keyed::single(h, 10, *t, k.clone(), 1.0))
            .collect();
        let got = grouped(&mut rng, singles.clone());
        let as_of = 12_000;
        for (k, x) in got.values_at(as_of) {
            let naive: f64 = events
                .iter()
                .filter(|(k2, _)| *k2 == k)
                .map(|(_, t)| (-((as_of - t) as f64) / h as f64).exp2())
                .sum();
            assert!(
                (x - naive).abs() <= 1e-9 * naive.max(1.0),
                "{k}: {x} vs {naive}"
            );
        }
        let in_order = fold(&singles);
        assert_eq!(in_order.entries.len(), got.entries.len());
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let mut a = Keyed::single(0, 3, 0, "b".into(), 2.0);
        a.merge(&Keyed::single(0, 3, 0, "a".into(), 1.0))
            .expect("valid");
        let mut w = Writer::default();
        a.encode_body(&mut w);
        let bytes = w.finish();
        assert_eq!(
            Keyed::decode_body(&mut Reader::new(&bytes)).expect("valid"),
            a
        );
        for cut in 0..bytes.len() {
            assert!(Keyed::decode_body(&mut Reader::new(&bytes[..cut])).is_err());
        }
        let other = Keyed::single(5, 3, 0, "a".into(), 1.0);
        assert!(a.clone().merge(&other).is_err());
    }
}
