//! Window buckets: count, sum, min, max and sum of squares of the events that fell
//! into one time bucket. All five combine associatively.

use crate::codec::{DecodeError, Reader, Writer, derr};
use crate::merge::tags;

/// The aggregate of one bucket (or of several buckets combined).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Number of events.
    pub count: u64,
    /// Sum of the values (the count, for a window without a field).
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of squared values.
    pub sumsq: f64,
}

impl Bucket {
    /// The bucket of one event with value `x`.
    pub fn single(x: f64) -> Bucket {
        Bucket {
            count: 1,
            sum: x,
            min: x,
            max: x,
            sumsq: x * x,
        }
    }

    /// The empty aggregate, identity of [`Bucket::merge`].
    pub fn empty() -> Bucket {
        Bucket {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sumsq: 0.0,
        }
    }

    /// Adds another bucket's events to this one.
    pub fn merge(&mut self, o: &Bucket) {
        self.count = self.count.saturating_add(o.count);
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sumsq += o.sumsq;
    }

    /// Mean of the values, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Smallest value, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Sample standard deviation of the values (divided by n − 1, as
    /// PostgreSQL's `stddev`), `None` below two values. SQL's `window_stddev`
    /// and every profile read this one.
    pub fn stddev(&self) -> Option<f64> {
        sample_stddev(self.count as f64, self.sum, self.sumsq)
    }

    /// Encodes the bucket.
    ///
    /// A bucket of one event (every operand that ingest writes) is stored as its
    /// value alone: 9 bytes instead of 41, and exactly the same bucket on decode.
    pub fn encode(&self) -> Vec<u8> {
        let x = self.sum;
        if self.count == 1 && self.min == x && self.max == x && self.sumsq == x * x {
            let mut w = Writer::with_tag(tags::WINDOW_SINGLE, 8);
            w.f64(x);
            return w.finish();
        }
        let mut w = Writer::with_tag(tags::WINDOW, 40);
        w.u64(self.count);
        w.f64(self.sum);
        w.f64(self.min);
        w.f64(self.max);
        w.f64(self.sumsq);
        w.finish()
    }

    /// Decodes a bucket.
    pub fn decode(bytes: &[u8]) -> Result<Bucket, DecodeError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        if tag == tags::WINDOW_SINGLE {
            let b = Bucket::single(r.finite()?);
            r.end()?;
            if !b.sumsq.is_finite() {
                return derr("window value too large");
            }
            return Ok(b);
        }
        if tag != tags::WINDOW {
            return derr(format!(
                "expected a window bucket (tag {}), found tag {tag}",
                tags::WINDOW
            ));
        }
        let b = Bucket {
            count: r.u64()?,
            sum: r.finite()?,
            min: r.finite()?,
            max: r.finite()?,
            sumsq: r.finite()?,
        };
        r.end()?;
        if b.count == 0 || b.min > b.max || b.sumsq < 0.0 {
            return derr("inconsistent window bucket");
        }
        Ok(b)
    }
}

/// The sample standard deviation (divided by n − 1) of `n` values from their
/// sum and sum of squares; `None` below two values.
pub fn sample_stddev(n: f64, sum: f64, sumsq: f64) -> Option<f64> {
    if n < 2.0 {
        return None;
    }
    let mean = sum / n;
    // Clamp rounding below zero: the variance of equal values is exactly 0.
    Some(((sumsq - n * mean * mean) / (n - 1.0)).max(0.0).sqrt())
}

/// Full (and partial) merge of window buckets: the merge is associative, so both
/// are the same fold.
pub fn merge<'a>(
    existing: Option<&[u8]>,
    operands: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, DecodeError> {
    let mut acc = match existing {
        Some(b) => Bucket::decode(b)?,
        None => Bucket::empty(),
    };
    for op in operands {
        acc.merge(&Bucket::decode(op)?);
    }
    if acc.count == 0 {
        return derr("window merge with no operands");
    }
    Ok(acc.encode())
}
