//! Vector state.
//!
//! - **ewma**: the decayed sum of the event vectors and the decayed sum of their
//!   weights, sharing one reference time (see [`crate::merge::decayed`]). The mean
//!   is their quotient. Associative, so it has a partial merge.
//! - **sgd**: each operand is one logistic-regression step against an item vector:
//!   p = σ(u·v); u ← u + η·((y−p)·v − λ·u). Steps do not commute, so the full merge
//!   applies them in write order and the partial merge declines. The engine bounds
//!   the chain of waiting steps with RocksDB's `max_successive_merges`, so a read
//!   never applies more than a few dozen steps.

use crate::codec::{DecodeError, Reader, Writer, derr};
use crate::merge::{decayed, tags};

/// The largest supported vector dimension.
pub const MAX_DIM: usize = 4096;

/// A decayed mean of event vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Ewma {
    /// Half-life in ms.
    pub h: i64,
    /// Reference time.
    pub t: i64,
    /// Decayed sum of weights.
    pub w: f64,
    /// Decayed sum of vectors.
    pub v: Vec<f64>,
}

impl Ewma {
    /// The state of one event vector `x` at time `t`.
    pub fn single(h: i64, t: i64, x: &[f32]) -> Ewma {
        Ewma {
            h,
            t,
            w: 1.0,
            v: x.iter().map(|&x| f64::from(x)).collect(),
        }
    }

    /// Folds another state into this one.
    pub fn merge(&mut self, o: &Ewma) -> Result<(), DecodeError> {
        if o.h != self.h || o.v.len() != self.v.len() {
            return derr("ewma states differ in half-life or dimension");
        }
        let t = self.t.max(o.t);
        let fa = decayed::decay_factor(t, self.t, self.h);
        let fb = decayed::decay_factor(t, o.t, self.h);
        self.w = self.w * fa + o.w * fb;
        for (a, b) in self.v.iter_mut().zip(&o.v) {
            *a = *a * fa + *b * fb;
        }
        self.t = t;
        Ok(())
    }

    /// The decayed mean vector. It does not depend on the time it is read at.
    pub fn mean(&self) -> Vec<f32> {
        if self.w > 0.0 {
            self.v.iter().map(|x| (x / self.w) as f32).collect()
        } else {
            vec![0.0; self.v.len()]
        }
    }
}

/// The largest magnitude an sgd component may reach. Steps clamp to it, so a user
/// vector stays finite (also as f32) whatever the inputs.
pub const SGD_LIMIT: f64 = 1e30;

/// One online logistic-regression step.
#[derive(Debug, Clone, PartialEq)]
pub struct SgdStep {
    /// Learning rate η.
    pub lr: f64,
    /// L2 penalty λ.
    pub l2: f64,
    /// Label y, 0 or 1.
    pub label: f64,
    /// The item vector v.
    pub item: Vec<f32>,
}

impl SgdStep {
    /// Applies the step to user vector `u`.
    pub fn apply(&self, u: &mut [f64]) {
        let z: f64 = u
            .iter()
            .zip(&self.item)
            .map(|(a, &b)| a * f64::from(b))
            .sum();
        let g = self.label - sigmoid(z);
        for (a, &b) in u.iter_mut().zip(&self.item) {
            *a += self.lr * (g * f64::from(b) - self.l2 * *a);
            *a = a.clamp(-SGD_LIMIT, SGD_LIMIT);
        }
    }
}

/// The logistic function, computed without overflow for large |z|.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// A value in the vectors column family.
#[derive(Debug, Clone, PartialEq)]
pub enum VectorValue {
    /// Decayed mean state (value or operand).
    Ewma(Ewma),
    /// An sgd operand.
    Step(SgdStep),
    /// An sgd user vector.
    Sgd(Vec<f64>),
}

fn dim(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let d = r.u32()? as usize;
    if d == 0 || d > MAX_DIM {
        return derr(format!("vector dimension {d} out of range"));
    }
    Ok(d)
}

impl VectorValue {
    /// Encodes the value.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            VectorValue::Ewma(e) => {
                let mut w = Writer::with_tag(tags::EWMA, 28 + 8 * e.v.len());
                w.i64(e.h);
                w.i64(e.t);
                w.f64(e.w);
                w.u32(e.v.len() as u32);
                for x in &e.v {
                    w.f64(*x);
                }
                w.finish()
            }
            VectorValue::Step(s) => {
                let mut w = Writer::with_tag(tags::SGD_STEP, 28 + 8 * s.item.len());
                w.f64(s.lr);
                w.f64(s.l2);
                w.f64(s.label);
                w.u32(s.item.len() as u32);
                for x in &s.item {
                    w.f64(f64::from(*x));
                }
                w.finish()
            }
            VectorValue::Sgd(u) => {
                let mut w = Writer::with_tag(tags::SGD_STATE, 4 + 8 * u.len());
                w.u32(u.len() as u32);
                for x in u {
                    w.f64(*x);
                }
                w.finish()
            }
        }
    }

    /// Decodes a value.
    pub fn decode(bytes: &[u8]) -> Result<VectorValue, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = match r.u8()? {
            tags::EWMA => {
                let h = r.i64()?;
                if h <= 0 {
                    return derr(format!("half-life {h} is not positive"));
                }
                let t = r.i64()?;
                let w = r.finite()?;
                let d = dim(&mut r)?;
                let mut v = Vec::with_capacity(d.min(r.remaining() / 8));
                for _ in 0..d {
                    v.push(r.finite()?);
                }
                VectorValue::Ewma(Ewma { h, t, w, v })
            }
            tags::SGD_STEP => {
                let lr = r.finite()?;
                let l2 = r.finite()?;
                let label = r.finite()?;
                if !(lr > 0.0 && l2 >= 0.0 && (label == 0.0 || label == 1.0)) {
                    return derr(format!(
                        "bad sgd step: learning rate {lr}, l2 {l2}, label {label}"
                    ));
                }
                let d = dim(&mut r)?;
                let mut item = Vec::with_capacity(d.min(r.remaining() / 8));
                for _ in 0..d {
                    item.push(r.finite_f32()?);
                }
                VectorValue::Step(SgdStep {
                    lr,
                    l2,
                    label,
                    item,
                })
            }
            tags::SGD_STATE => {
                let d = dim(&mut r)?;
                let mut u = Vec::with_capacity(d.min(r.remaining() / 8));
                for _ in 0..d {
                    u.push(r.finite()?);
                }
                VectorValue::Sgd(u)
            }
            t => return derr(format!("unknown vector value tag {t}")),
        };
        r.end()?;
        Ok(v)
    }

    /// The vector a reader sees: the ewma mean or the sgd user vector.
    pub fn current(&self) -> Option<Vec<f32>> {
        match self {
            VectorValue::Ewma(e) => Some(e.mean()),
            VectorValue::Sgd(u) => Some(u.iter().map(|&x| x as f32).collect()),
            VectorValue::Step(_) => None,
        }
    }
}

/// Full merge of a vector key: the base value, then every operand in write order.
pub fn full_merge<'a>(
    existing: Option<&[u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let mut acc = existing.map(VectorValue::decode).transpose()?;
    for op in operands {
        let op = VectorValue::decode(op)?;
        acc = Some(match (acc, op) {
            (None, VectorValue::Ewma(e)) => VectorValue::Ewma(e),
            (Some(VectorValue::Ewma(mut a)), VectorValue::Ewma(b)) => {
                a.merge(&b)?;
                VectorValue::Ewma(a)
            }
            (None, VectorValue::Step(s)) => {
                let mut u = vec![0.0; s.item.len()];
                s.apply(&mut u);
                VectorValue::Sgd(u)
            }
            (Some(VectorValue::Sgd(mut u)), VectorValue::Step(s)) if u.len() == s.item.len() => {
                s.apply(&mut u);
                VectorValue::Sgd(u)
            }
            // A folded sgd state arrives as an operand only from a partial merge,
            // which this operator never produces; treat it as a replacement.
            (_, VectorValue::Sgd(u)) => VectorValue::Sgd(u),
            _ => {
                return derr("vector operand does not match the stored vector's rule or dimension");
            }
        });
    }
    match acc {
        Some(v) => Ok(v.encode()),
        None => derr("vector merge with no value and no operands"),
    }
}

/// Partial merge: ewma operands fold; sgd steps do not commute, so the merge
/// declines (`Ok(None)`) and RocksDB keeps them for the full merge.
pub fn partial_merge<'a>(
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let mut acc: Option<Ewma> = None;
    for op in operands {
        match VectorValue::decode(op)? {
            VectorValue::Ewma(e) => match &mut acc {
                Some(a) => a.merge(&e)?,
                None => acc = Some(e),
            },
            _ => return Ok(None),
        }
    }
    Ok(acc.map(|e| VectorValue::Ewma(e).encode()))
}
