//! A user's profile as of a time T, and how stored state reads at T.

use crate::catalog::{Catalog, FeatureDef, FeatureKind, META_ID};
use crate::error::{Error, Result};
use crate::keys;
use crate::kv::FEATURES;
use crate::merge::cell::Cell;
use crate::merge::decayed::value_at;
use crate::merge::window::Bucket;
use crate::row::{RowNeeds, UserRow, current_vector};
use crate::value::Value;

/// A user's whole profile, evaluated as of `as_of`.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// User id.
    pub user: String,
    /// The time the profile was evaluated at, epoch ms.
    pub as_of: i64,
    /// Time of the user's earliest event (or first attribute write).
    pub first_seen: i64,
    /// Time of the user's latest event (or attribute write).
    pub last_seen: i64,
    /// Number of events received.
    pub events: u64,
    /// Every attribute in definition order; `Null` when never set.
    pub attributes: Vec<(String, Value)>,
    /// Every feature in definition order, evaluated at `as_of`.
    pub features: Vec<(String, Value)>,
    /// Every vector in definition order; `Null` for a user with no such events.
    pub vectors: Vec<(String, Value)>,
    /// Every window in definition order, aggregated over the requested span ending at `as_of`.
    pub windows: Vec<(String, Bucket)>,
}

impl Profile {
    /// The attribute, feature or vector named `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .chain(&self.features)
            .chain(&self.vectors)
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The aggregate of the window named `name`.
    pub fn window(&self, name: &str) -> Option<&Bucket> {
        self.windows.iter().find(|(n, _)| n == name).map(|(_, b)| b)
    }

    /// Evaluates `row`, read with `needs`, as of `as_of`: every item of
    /// `catalog` in definition order. A window `needs` did not fetch reads as
    /// empty, and an sgd vector it did not fetch as `Null`.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a features record without the user's cell.
    pub fn from_row(
        catalog: &Catalog,
        row: &UserRow,
        needs: &RowNeeds,
        as_of: i64,
    ) -> Result<Profile> {
        let Some(Cell::Meta {
            first,
            last,
            events,
        }) = row.features.cell(META_ID)
        else {
            return Err(Error::corruption(
                FEATURES,
                &keys::user_key(&row.user),
                "record lacks the user cell",
            ));
        };
        let attributes = catalog
            .attributes
            .iter()
            .map(|d| {
                let v = match row.attributes.cell(d.id) {
                    Some(Cell::Attr { value, .. }) => value.clone(),
                    _ => Value::Null,
                };
                (d.name.clone(), v)
            })
            .collect();
        let features = catalog
            .features
            .iter()
            .map(|d| {
                (
                    d.name.clone(),
                    evaluate_feature(d, row.features.cell(d.id), as_of),
                )
            })
            .collect();
        let vectors = catalog
            .vectors
            .iter()
            .map(|d| {
                let v = current_vector(d, row, needs).map_or(Value::Null, Value::Vector);
                (d.name.clone(), v)
            })
            .collect();
        let windows = catalog
            .windows
            .iter()
            .map(|d| {
                let mut agg = Bucket::empty();
                let fetched = needs.windows.iter().position(|w| w.id == d.id);
                for (_, b) in fetched
                    .and_then(|i| row.windows.get(i))
                    .into_iter()
                    .flatten()
                {
                    agg.merge(b);
                }
                (d.name.clone(), agg)
            })
            .collect();
        Ok(Profile {
            user: row.user.clone(),
            as_of,
            first_seen: *first,
            last_seen: *last,
            events: *events,
            attributes,
            features,
            vectors,
            windows,
        })
    }
}

/// Reads a feature's stored cell at `as_of`. Values a user never received read as
/// 0 (count, sum, decayed count and sum), NULL (min, max, last, decayed avg), or the
/// prior mean (beta). A reference time after `as_of` reads at the reference time.
pub fn evaluate_feature(def: &FeatureDef, cell: Option<&Cell>, as_of: i64) -> Value {
    match (def.kind, cell) {
        (FeatureKind::Count, Some(Cell::Count(n))) => {
            Value::Int(i64::try_from(*n).unwrap_or(i64::MAX))
        }
        (FeatureKind::Count, _) => Value::Int(0),
        (FeatureKind::Sum, Some(Cell::Sum(s))) => Value::Float(*s),
        (FeatureKind::Sum, _) => Value::Float(0.0),
        (FeatureKind::Min, Some(Cell::Min(x)))
        | (FeatureKind::Max, Some(Cell::Max(x)))
        | (FeatureKind::Last, Some(Cell::Last { value: x, .. })) => Value::Float(*x),
        (
            FeatureKind::DecayedCount { half_life_ms } | FeatureKind::DecayedSum { half_life_ms },
            Some(Cell::Decayed { t, s, .. }),
        ) => Value::Float(value_at(*s, *t, as_of, half_life_ms)),
        (FeatureKind::DecayedCount { .. } | FeatureKind::DecayedSum { .. }, _) => Value::Float(0.0),
        (FeatureKind::DecayedAvg { .. }, Some(Cell::DecayedAvg { sx, sw, .. })) if *sw > 0.0 => {
            Value::Float(sx / sw)
        }
        (
            FeatureKind::Beta {
                half_life_ms,
                prior_a,
                prior_b,
            },
            cell,
        ) => {
            let (a, b) = match cell {
                Some(Cell::Beta { t, a, b, .. }) => (
                    value_at(*a, *t, as_of, half_life_ms),
                    value_at(*b, *t, as_of, half_life_ms),
                ),
                _ => (0.0, 0.0),
            };
            Value::Float((a + prior_a) / (a + b + prior_a + prior_b))
        }
        _ => Value::Null,
    }
}

/// The posterior of a beta feature at `as_of`: (α + a₀, β + b₀).
pub fn beta_posterior(def: &FeatureDef, cell: Option<&Cell>, as_of: i64) -> Option<(f64, f64)> {
    let FeatureKind::Beta {
        half_life_ms,
        prior_a,
        prior_b,
    } = def.kind
    else {
        return None;
    };
    let (a, b) = match cell {
        Some(Cell::Beta { t, a, b, .. }) => (
            value_at(*a, *t, as_of, half_life_ms),
            value_at(*b, *t, as_of, half_life_ms),
        ),
        _ => (0.0, 0.0),
    };
    Some((a + prior_a, b + prior_b))
}

/// A central credible interval of a Beta(a, b) posterior at `level` (e.g. 0.95), by
/// bisection on the regularized incomplete beta function.
pub fn beta_credible_interval(a: f64, b: f64, level: f64) -> (f64, f64) {
    let tail = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    (beta_quantile(a, b, tail), beta_quantile(a, b, 1.0 - tail))
}

fn beta_quantile(a: f64, b: f64, p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if reg_inc_beta(a, b, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9).
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut s = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        s += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

/// Regularized incomplete beta I_x(a, b) by its continued fraction.
fn reg_inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_interval_matches_closed_forms() {
        // Beta(1, 1) is uniform: the central 90% interval is [0.05, 0.95].
        let (lo, hi) = beta_credible_interval(1.0, 1.0, 0.9);
        assert!(
            (lo - 0.05).abs() < 1e-9 && (hi - 0.95).abs() < 1e-9,
            "{lo} {hi}"
        );
        // Beta(2, 1) has CDF x²: the 5% quantile is √0.05.
        let (lo, hi) = beta_credible_interval(2.0, 1.0, 0.9);
        assert!((lo - 0.05f64.sqrt()).abs() < 1e-9, "{lo}");
        assert!((hi - 0.95f64.sqrt()).abs() < 1e-9, "{hi}");
    }
}
