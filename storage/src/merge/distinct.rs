//! Distinct counts (`COUNT_DISTINCT(field)`): a mergeable sketch of the set of
//! values a user's events carried.
//!
//! Each value is hashed to 64 bits ([`hash_value`]: a fixed function, so the
//! same value hashes alike on every machine and version). While a user has at
//! most [`EXACT_MAX`] distinct hashes the sketch keeps them all, sorted, and
//! counts exactly (two values share a 64-bit hash with negligible
//! probability). Past that it becomes a HyperLogLog of 2^[`P`] one-byte
//! registers (2 KiB): each hash sets register `hash >> (64 − P)` to at least
//! the position of the first set bit of the rest. The estimate is the
//! standard one (Flajolet et al. 2007), with linear counting while many
//! registers are still zero; its standard error is 1.04 / √2048 ≈ 2.3%, so
//! 99.7% of estimates fall within 7% of the true count (tested from 10^3 to
//! 10^6 values).
//!
//! Merging is the union of the sets, or the register-wise maximum: associative
//! and commutative, so partial merges and late events give the same sketch.

use crate::codec::{DecodeError, Reader, Writer, derr};
use crate::value::Value;

/// Most distinct hashes kept exactly.
pub const EXACT_MAX: usize = 128;

/// Register index bits of the HyperLogLog.
pub const P: u32 = 11;

/// Registers of the HyperLogLog.
const M: usize = 1 << P;

/// The sketch of a set of values.
#[derive(Debug, Clone, PartialEq)]
pub enum Distinct {
    /// Every hash, sorted, without repeats.
    Exact(Vec<u64>),
    /// HyperLogLog registers.
    Hll(Box<[u8]>),
}

impl Distinct {
    /// The sketch of one value's hash.
    pub fn single(hash: u64) -> Distinct {
        Distinct::Exact(vec![hash])
    }

    /// Folds `other` into this sketch.
    pub fn merge(&mut self, other: &Distinct) {
        match (&mut *self, other) {
            (Distinct::Exact(a), Distinct::Exact(b)) => {
                let mut out = Vec::with_capacity(a.len() + b.len());
                let (mut i, mut j) = (0, 0);
                while i < a.len() || j < b.len() {
                    let next = match (a.get(i), b.get(j)) {
                        (Some(x), Some(y)) if x < y => {
                            i += 1;
                            *x
                        }
                        (Some(x), Some(y)) if x > y => {
                            j += 1;
                            *y
                        }
                        (Some(x), Some(_)) => {
                            i += 1;
                            j += 1;
                            *x
                        }
                        (Some(x), None) => {
                            i += 1;
                            *x
                        }
                        (None, Some(y)) => {
                            j += 1;
                            *y
                        }
                        (None, None) => break,
                    };
                    out.push(next);
                }
                if out.len() > EXACT_MAX {
                    let mut regs = vec![0u8; M].into_boxed_slice();
                    for h in out {
                        add(&mut regs, h);
                    }
                    *self = Distinct::Hll(regs);
                } else {
                    *a = out;
                }
            }
            (Distinct::Hll(regs), Distinct::Exact(b)) => {
                for &h in b {
                    add(regs, h);
                }
            }
            (Distinct::Exact(a), Distinct::Hll(b)) => {
                let mut regs = b.clone();
                for &h in a.iter() {
                    add(&mut regs, h);
                }
                *self = Distinct::Hll(regs);
            }
            (Distinct::Hll(a), Distinct::Hll(b)) => {
                for (x, y) in a.iter_mut().zip(b.iter()) {
                    *x = (*x).max(*y);
                }
            }
        }
    }

    /// The number of distinct values: exact while small, estimated after.
    pub fn count(&self) -> u64 {
        match self {
            Distinct::Exact(v) => v.len() as u64,
            Distinct::Hll(regs) => {
                let m = M as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = regs.iter().map(|&r| (-f64::from(r)).exp2()).sum();
                let raw = alpha * m * m / sum;
                let zeros = regs.iter().filter(|&&r| r == 0).count();
                let e = if raw <= 2.5 * m && zeros > 0 {
                    m * (m / zeros as f64).ln()
                } else {
                    raw
                };
                e.round() as u64
            }
        }
    }

    /// Memory held on the heap, in bytes.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Distinct::Exact(v) => v.capacity() * 8,
            Distinct::Hll(r) => r.len(),
        }
    }

    /// Whether the sketch holds its hashes exactly.
    pub(crate) fn is_exact(&self) -> bool {
        matches!(self, Distinct::Exact(_))
    }

    pub(crate) fn encode_body(&self, w: &mut Writer) {
        match self {
            Distinct::Exact(v) => {
                w.u16(v.len() as u16);
                for &h in v {
                    w.u64(h);
                }
            }
            Distinct::Hll(regs) => {
                for &r in regs.iter() {
                    w.u8(r);
                }
            }
        }
    }

    pub(crate) fn decode_exact(r: &mut Reader<'_>) -> Result<Distinct, DecodeError> {
        let n = usize::from(r.u16()?);
        if n == 0 || n > EXACT_MAX {
            return derr(format!("a distinct set of {n} hashes"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let h = r.u64()?;
            if v.last().is_some_and(|&p| p >= h) {
                return derr("distinct hashes out of order");
            }
            v.push(h);
        }
        Ok(Distinct::Exact(v))
    }

    pub(crate) fn decode_hll(r: &mut Reader<'_>) -> Result<Distinct, DecodeError> {
        let mut regs = vec![0u8; M].into_boxed_slice();
        for x in regs.iter_mut() {
            *x = r.u8()?;
            if u32::from(*x) > 64 - P + 1 {
                return derr(format!("HyperLogLog register {x} out of range"));
            }
        }
        Ok(Distinct::Hll(regs))
    }
}

fn add(regs: &mut [u8], hash: u64) {
    let i = (hash >> (64 - P)) as usize;
    let rest = hash << P;
    let rank = (rest.leading_zeros() + 1).min(64 - P + 1) as u8;
    if let Some(r) = regs.get_mut(i) {
        *r = (*r).max(rank);
    }
}

/// A value as the text a distinct count hashes and a keyed feature keys by:
/// a string itself, a number in decimal (an integral float as the integer),
/// a boolean as `true` or `false`. `what` begins the error for other values.
pub(crate) fn value_text<'v>(
    value: &'v Value,
    what: &str,
) -> Result<std::borrow::Cow<'v, str>, String> {
    Ok(match value {
        Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
        Value::Int(i) => std::borrow::Cow::Owned(i.to_string()),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            std::borrow::Cow::Owned((*f as i64).to_string())
        }
        Value::Float(f) => std::borrow::Cow::Owned(f.to_string()),
        Value::Bool(b) => std::borrow::Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Tags(_) => {
            return Err(format!(
                "{what} strings, numbers and booleans, not tag sets"
            ));
        }
        other => {
            return Err(format!(
                "{what} strings, numbers and booleans, not {}s",
                other.type_name()
            ));
        }
    })
}

/// The 64-bit hash a distinct count keeps of `value`: FNV-1a over the value's
/// canonical text, finished with MurmurHash3's 64-bit mix for its avalanche.
/// An integer and a float of the same value, and a number and the string of
/// its decimal digits, are one value (as event ids are).
///
/// # Errors
/// A message for a value that is not a string, number or boolean.
pub fn hash_value(value: &Value) -> Result<u64, String> {
    let text = value_text(value, "a distinct count counts")?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // fmix64
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn sketch_of(values: impl Iterator<Item = Value>) -> Distinct {
        let mut d: Option<Distinct> = None;
        for v in values {
            let one = Distinct::single(hash_value(&v).expect("hashable"));
            match &mut d {
                Some(d) => d.merge(&one),
                None => d = Some(one),
            }
        }
        d.expect("values")
    }

    #[test]
    fn small_sets_count_exactly_and_repeats_count_once() {
        let values = (0..100)
            .chain(0..100)
            .map(|i| Value::String(format!("item{i}")));
        let d = sketch_of(values);
        assert!(d.is_exact());
        assert_eq!(d.count(), 100);
        // One value, however spelled.
        let same = [Value::Int(5), Value::Float(5.0), Value::String("5".into())];
        assert_eq!(sketch_of(same.into_iter()).count(), 1);
        assert!(hash_value(&Value::Vector(vec![1.0])).is_err());
    }

    #[test]
    fn large_sets_are_within_seven_percent() {
        let mut rng = StdRng::seed_from_u64(3);
        for n in [1_000u64, 10_000, 100_000, 1_000_000] {
            // Random values, some repeated: the truth is counted here.
            let base: u64 = rng.random();
            let d = sketch_of(
                (0..n)
                    .chain(0..n / 3)
                    .map(|i| Value::Int((base ^ i) as i64 & i64::MAX)),
            );
            let truth = {
                let mut set: Vec<i64> = (0..n).map(|i| (base ^ i) as i64 & i64::MAX).collect();
                set.sort_unstable();
                set.dedup();
                set.len() as f64
            };
            let err = (d.count() as f64 - truth).abs() / truth;
            assert!(err < 0.07, "{n}: {} against {truth} ({err:.3})", d.count());
        }
    }

    #[test]
    fn merging_is_associative_and_commutative() {
        let part = |r: std::ops::Range<u64>| sketch_of(r.map(|i| Value::Int(i as i64)));
        let (a, b, c) = (part(0..100), part(50..400), part(300..3000));
        let mut ab_c = a.clone();
        ab_c.merge(&b);
        ab_c.merge(&c);
        let mut bc = b.clone();
        bc.merge(&c);
        let mut a_bc = a.clone();
        a_bc.merge(&bc);
        let mut c_b_a = c.clone();
        c_b_a.merge(&b);
        c_b_a.merge(&a);
        assert_eq!(ab_c, a_bc);
        assert_eq!(ab_c, c_b_a);
        let mut w = Writer::default();
        ab_c.encode_body(&mut w);
        let bytes = w.finish();
        assert_eq!(
            Distinct::decode_hll(&mut Reader::new(&bytes)).expect("decodes"),
            ab_c
        );
    }
}
