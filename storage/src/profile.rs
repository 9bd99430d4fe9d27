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
                let v = current_vector(d, row).map_or(Value::Null, Value::Vector);
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
    if def.reads_event_time() {
        // First and last times, epoch ms, exact in an f64 cell.
        return match cell {
            Some(Cell::Min(x) | Cell::Max(x) | Cell::Last { value: x, .. }) => {
                Value::Int(*x as i64)
            }
            _ => Value::Null,
        };
    }
    if def.keyed.is_some() {
        // Values by key, largest first; a count's as integers.
        let values = match cell {
            Some(Cell::Keyed(k)) => k.values_at(as_of),
            _ => Vec::new(),
        };
        return Value::Map(values);
    }
    match (def.kind, cell) {
        (FeatureKind::Count, Some(Cell::Count(n))) => {
            Value::Int(i64::try_from(*n).unwrap_or(i64::MAX))
        }
        (FeatureKind::Count, _) => Value::Int(0),
        (FeatureKind::CountDistinct, Some(Cell::Distinct(d))) => {
            Value::Int(i64::try_from(d.count()).unwrap_or(i64::MAX))
        }
        (FeatureKind::CountDistinct, _) => Value::Int(0),
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
            }
            | FeatureKind::Rate {
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
