//! Vector state.
//!
//! - **ewma**: the decayed sum of the event vectors and the decayed sum of their
//!   weights, sharing one reference time (see [`crate::merge::decayed`]). The mean
//!   is their quotient. Associative, so an ewma vector is a cell of the user's
//!   features record ([`crate::merge::cell::Cell::Ewma`]): an event writes it in the
//!   same operand as its scalar features, and a profile read finds it there.
//! - **sgd**: each operand is one logistic-regression step against an item vector:
//!   p = σ(u·v); u ← u + η·((y−p)·v − λ·u). Steps do not commute, so sgd vectors
//!   live in the vectors column family under their own keys; the full merge applies
//!   steps in write order and the partial merge declines. The engine bounds the
//!   chain of waiting steps with RocksDB's `max_successive_merges`, so a read never
//!   applies more than a few dozen steps.

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
        self.fold(o.t, o.w, o.v.iter().copied());
        Ok(())
    }

    /// [`Ewma::merge`] of the state of one event vector `x` at time `t`
    /// ([`Ewma::single`] with this half-life), without making it.
    pub fn merge_single(&mut self, t: i64, x: &[f32]) -> Result<(), DecodeError> {
        if x.len() != self.v.len() {
            return derr("ewma states differ in dimension");
        }
        self.fold(t, 1.0, x.iter().map(|&x| f64::from(x)));
        Ok(())
    }

    /// Folds in the state of weight `w` and vector sum `v` at time `t`.
    fn fold(&mut self, t: i64, w: f64, v: impl Iterator<Item = f64>) {
        let at = self.t.max(t);
        let fa = decayed::decay_factor(at, self.t, self.h);
        let fb = decayed::decay_factor(at, t, self.h);
        self.w = self.w * fa + w * fb;
        for (a, b) in self.v.iter_mut().zip(v) {
            *a = *a * fa + b * fb;
        }
        self.t = at;
    }

    /// Whether this is the state of one event (weight exactly 1, f32 components),
    /// which the compact form stores without loss in about half the bytes.
    pub(crate) fn is_single(&self) -> bool {
        self.w == 1.0 && self.v.iter().all(|&x| f64::from(x as f32) == x)
    }

    /// Encodes the state; the `compact` form (only for [`Ewma::is_single`] states)
    /// leaves out the weight and stores f32 components.
    pub(crate) fn encode_body(&self, w: &mut Writer, compact: bool) {
        w.i64(self.h);
        w.i64(self.t);
        if !compact {
            w.f64(self.w);
        }
        w.u32(self.v.len() as u32);
        for &x in &self.v {
            if compact { w.f32(x as f32) } else { w.f64(x) }
        }
    }

    /// Decodes what [`Ewma::encode_body`] wrote with the same `compact`.
    pub(crate) fn decode_body(r: &mut Reader<'_>, compact: bool) -> Result<Ewma, DecodeError> {
        let h = r.i64()?;
        if h <= 0 {
            return derr(format!("half-life {h} is not positive"));
        }
        let t = r.i64()?;
        let w = if compact { 1.0 } else { r.finite()? };
        let d = dim(r)?;
        let mut v = Vec::with_capacity(d.min(r.remaining() / if compact { 4 } else { 8 }));
        if compact {
            r.f32s_as_f64_into(d, &mut v)?;
        } else {
            r.finites_into(d, &mut v)?;
        }
        Ok(Ewma { h, t, w, v })
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
                    item.push(r.f64_as_f32()?);
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
                r.finites_into(d, &mut u)?;
                VectorValue::Sgd(u)
            }
            t => return derr(format!("unknown vector value tag {t}")),
        };
        r.end()?;
        Ok(v)
    }

    /// The vector a reader sees: the sgd user vector.
    pub fn current(&self) -> Option<Vec<f32>> {
        match self {
            VectorValue::Sgd(u) => Some(u.iter().map(|&x| x as f32).collect()),
            VectorValue::Step(_) => None,
        }
    }
}

/// Full merge of an sgd key: the base value, then every step in write order.
pub fn full_merge<'a>(
    existing: Option<&[u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let mut acc = match existing.map(VectorValue::decode).transpose()? {
        None => None,
        Some(VectorValue::Sgd(u)) => Some(u),
        Some(VectorValue::Step(_)) => return derr("an sgd step stored as a base value"),
    };
    for op in operands {
        let VectorValue::Step(s) = VectorValue::decode(op)? else {
            return derr("an sgd vector stored as a merge operand");
        };
        let u = acc.get_or_insert_with(|| vec![0.0; s.item.len()]);
        if u.len() != s.item.len() {
            return derr("sgd step dimension differs from the stored vector's");
        }
        s.apply(u);
    }
    match acc {
        Some(u) => Ok(VectorValue::Sgd(u).encode()),
        None => derr("vector merge with no value and no operands"),
    }
}

/// Partial merge: sgd steps do not commute, so it always declines and RocksDB
/// keeps the operands for the full merge. Bad operands are still reported.
pub fn partial_merge<'a>(
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Option<Vec<u8>>, DecodeError> {
    for op in operands {
        VectorValue::decode(op)?;
    }
    Ok(None)
}
