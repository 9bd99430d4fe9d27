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
    /// `catalog` in definition order, as [`ProfileRef`] evaluates them.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a features record without the user's cell.
    pub fn from_row(
        catalog: &Catalog,
        row: &UserRow,
        needs: &RowNeeds,
        as_of: i64,
    ) -> Result<Profile> {
        ProfileRef::new(catalog, row, needs, as_of).map(|p| p.to_profile())
    }
}

/// A user's profile as of a time, evaluated from the user's row as each item
/// is asked for: names borrowed from the catalog, values computed from the
/// row's cells. [`Profile`] is this made owned; a reader rendering profiles
/// (as JSON, say) walks the items here instead, and every item of either
/// is evaluated by the same code.
#[derive(Debug, Clone, Copy)]
pub struct ProfileRef<'a> {
    catalog: &'a Catalog,
    row: &'a UserRow,
    needs: &'a RowNeeds,
    /// The time the profile is evaluated at, epoch ms.
    pub as_of: i64,
    /// Time of the user's earliest event (or first attribute write).
    pub first_seen: i64,
    /// Time of the user's latest event (or attribute write).
    pub last_seen: i64,
    /// Number of events received.
    pub events: u64,
}

/// What an attribute never set reads as.
static NULL: Value = Value::Null;

impl<'a> ProfileRef<'a> {
    /// The profile of `row`, read with `needs`, as of `as_of`. A window
    /// `needs` did not fetch reads as empty, and an sgd vector it did not
    /// fetch as `Null`.
    ///
    /// # Errors
    /// [`Error::Corruption`] for a features record without the user's cell.
    pub fn new(
        catalog: &'a Catalog,
        row: &'a UserRow,
        needs: &'a RowNeeds,
        as_of: i64,
    ) -> Result<ProfileRef<'a>> {
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
        Ok(ProfileRef {
            catalog,
            row,
            needs,
            as_of,
            first_seen: *first,
            last_seen: *last,
            events: *events,
        })
    }

    /// User id.
    pub fn user(&self) -> &'a str {
        &self.row.user
    }

    /// Every attribute in definition order; `Null` when never set.
    pub fn attributes(&self) -> impl Iterator<Item = (&'a str, &'a Value)> + use<'a> {
        let row = self.row;
        self.catalog.attributes.iter().map(move |d| {
            let v = match row.attributes.cell(d.id) {
                Some(Cell::Attr { value, .. }) => value,
                _ => &NULL,
            };
            (d.name.as_str(), v)
        })
    }

    /// Every feature in definition order, evaluated at the profile's time.
    pub fn features(&self) -> impl Iterator<Item = (&'a str, Value)> + use<'a> {
        let (row, as_of) = (self.row, self.as_of);
        self.catalog.features.iter().map(move |d| {
            (
                d.name.as_str(),
                evaluate_feature(d, row.features.cell(d.id), as_of),
            )
        })
    }

    /// Every vector in definition order; `Null` for a user with no such
    /// events.
    pub fn vectors(&self) -> impl Iterator<Item = (&'a str, Value)> + use<'a> {
        let row = self.row;
        self.catalog.vectors.iter().map(move |d| {
            let v = current_vector(d, row).map_or(Value::Null, Value::Vector);
            (d.name.as_str(), v)
        })
    }

    /// Every window in definition order, aggregated over the span its need
    /// read.
    pub fn windows(&self) -> impl Iterator<Item = (&'a str, Bucket)> + use<'a> {
        let (row, needs) = (self.row, self.needs);
        self.catalog.windows.iter().map(move |d| {
            let mut agg = Bucket::empty();
            let fetched = needs.windows.iter().position(|w| w.id == d.id);
            for (_, b) in fetched
                .and_then(|i| row.windows.get(i))
                .into_iter()
                .flatten()
            {
                agg.merge(b);
            }
            (d.name.as_str(), agg)
        })
    }

    /// The profile, owned.
    pub fn to_profile(&self) -> Profile {
        let owned = |(n, v): (&str, Value)| (n.to_owned(), v);
        Profile {
            user: self.row.user.clone(),
            as_of: self.as_of,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            events: self.events,
            attributes: self
                .attributes()
                .map(|(n, v)| (n.to_owned(), v.clone()))
                .collect(),
            features: self.features().map(owned).collect(),
            vectors: self.vectors().map(owned).collect(),
            windows: self.windows().map(|(n, b)| (n.to_owned(), b)).collect(),
        }
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
