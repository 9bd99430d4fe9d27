//! Schema definitions: attributes, features, windows, vectors and segments.
//!
//! A definition is immutable once created. Each gets an id that is never reused,
//! and stored state is keyed by that id, so state written under an old definition
//! is always read with that definition (or ignored once it is dropped), never with
//! a newer definition that happens to share its name.

use serde::{Deserialize, Serialize};

use crate::time::format_duration;
use crate::value::AttrType;

/// A scalar feature's kind.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureKind {
    /// Number of events.
    Count,
    /// Sum of a field.
    Sum,
    /// Smallest value of a field.
    Min,
    /// Largest value of a field.
    Max,
    /// Value of the field in the latest event.
    Last,
    /// Decayed number of events.
    DecayedCount {
        /// Half-life in ms.
        half_life_ms: i64,
    },
    /// Decayed sum of a field.
    DecayedSum {
        /// Half-life in ms.
        half_life_ms: i64,
    },
    /// Decayed average of a field (continuous-time EWMA).
    DecayedAvg {
        /// Half-life in ms.
        half_life_ms: i64,
    },
    /// A decayed rate from two event types: events of the type the feature's
    /// field names are successes, events of its other types trials, read as
    /// the posterior mean (successes + a₀) / (trials + a₀ + b₀).
    Rate {
        /// Half-life in ms.
        half_life_ms: i64,
        /// Prior successes a₀.
        prior_a: f64,
        /// Prior failures b₀.
        prior_b: f64,
    },
    /// Number of distinct values of a field: exact while small, then a
    /// HyperLogLog estimate ([`crate::merge::distinct`]).
    CountDistinct,
    /// Decayed successes and failures of a 0/1 field, read as the posterior mean.
    Beta {
        /// Half-life in ms.
        half_life_ms: i64,
        /// Prior successes a₀.
        prior_a: f64,
        /// Prior failures b₀.
        prior_b: f64,
    },
}

impl FeatureKind {
    /// Whether this kind reads an event field.
    pub fn needs_field(&self) -> bool {
        !matches!(self, FeatureKind::Count | FeatureKind::DecayedCount { .. })
    }

    /// The half-life, for decayed kinds.
    pub fn half_life_ms(&self) -> Option<i64> {
        match self {
            FeatureKind::DecayedCount { half_life_ms }
            | FeatureKind::DecayedSum { half_life_ms }
            | FeatureKind::DecayedAvg { half_life_ms }
            | FeatureKind::Beta { half_life_ms, .. }
            | FeatureKind::Rate { half_life_ms, .. } => Some(*half_life_ms),
            _ => None,
        }
    }

    /// The same kind with half-life `h`; `None` for a kind that does not decay.
    pub fn with_half_life(self, h: i64) -> Option<FeatureKind> {
        Some(match self {
            FeatureKind::DecayedCount { .. } => FeatureKind::DecayedCount { half_life_ms: h },
            FeatureKind::DecayedSum { .. } => FeatureKind::DecayedSum { half_life_ms: h },
            FeatureKind::DecayedAvg { .. } => FeatureKind::DecayedAvg { half_life_ms: h },
            FeatureKind::Beta {
                prior_a, prior_b, ..
            } => FeatureKind::Beta {
                half_life_ms: h,
                prior_a,
                prior_b,
            },
            FeatureKind::Rate {
                prior_a, prior_b, ..
            } => FeatureKind::Rate {
                half_life_ms: h,
                prior_a,
                prior_b,
            },
            _ => return None,
        })
    }

    /// The same kind with prior (a₀, b₀); `None` for a kind without one.
    pub fn with_prior(self, a: f64, b: f64) -> Option<FeatureKind> {
        Some(match self {
            FeatureKind::Beta { half_life_ms, .. } => FeatureKind::Beta {
                half_life_ms,
                prior_a: a,
                prior_b: b,
            },
            FeatureKind::Rate { half_life_ms, .. } => FeatureKind::Rate {
                half_life_ms,
                prior_a: a,
                prior_b: b,
            },
            _ => return None,
        })
    }

    /// The kind's name in the query language.
    pub fn name(&self) -> &'static str {
        match self {
            FeatureKind::Count => "COUNT",
            FeatureKind::Sum => "SUM",
            FeatureKind::Min => "MIN",
            FeatureKind::Max => "MAX",
            FeatureKind::Last => "LAST",
            FeatureKind::DecayedCount { .. } => "DECAYED_COUNT",
            FeatureKind::DecayedSum { .. } => "DECAYED_SUM",
            FeatureKind::DecayedAvg { .. } => "DECAYED_AVG",
            FeatureKind::Beta { .. } => "BETA",
            FeatureKind::CountDistinct => "COUNT_DISTINCT",
            FeatureKind::Rate { .. } => "RATE",
        }
    }
}

/// An attribute: a typed static field, last writer wins by event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeDef {
    /// Unique, never reused id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Type.
    pub ty: AttrType,
    /// Event type whose field of the same name sets it, if any.
    pub event_type: Option<String>,
    /// Catalog version that created it.
    pub version: u64,
    /// When the item was computed over the event history as it was created:
    /// the time from which that history held every write. Such an item
    /// reflects every write the history holds, whenever it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfilled_from: Option<i64>,
}

/// A scalar feature bound to an event type (and field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDef {
    /// Unique, never reused id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Event type it is bound to.
    pub event_type: String,
    /// Event field it reads, for kinds that read one.
    pub field: Option<String>,
    /// Kind and parameters.
    pub kind: FeatureKind,
    /// Catalog version that created it.
    pub version: u64,
    /// When the item was computed over the event history as it was created:
    /// the time from which that history held every write. Such an item
    /// reflects every write the history holds, whenever it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfilled_from: Option<i64>,
    /// The events it takes: those its filter passes (`ON view WHERE …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<super::EventFilter>,
    /// Event types it is bound to beside `event_type` (`ON purchase, add_to_cart`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_on: Vec<String>,
    /// The number it aggregates, computed from the event's fields, in place
    /// of `field` (`SUM(price * qty)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<super::EventExpr>,
    /// Kept per value of an event field, for at most so many values
    /// (`BY category TOP 50`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyed: Option<KeyedBy>,
}

/// What a keyed feature is kept per: `BY field TOP n`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedBy {
    /// The event field whose values are the keys.
    pub by: String,
    /// Most keys kept per user.
    pub top: u32,
}

/// A bucketed metric with retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowDef {
    /// Unique, never reused id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Event type it is bound to.
    pub event_type: String,
    /// Field aggregated; `None` counts events (each event contributes 1).
    pub field: Option<String>,
    /// Bucket width in ms.
    pub bucket_ms: i64,
    /// Retention in ms: buckets that end earlier than now − retention are dropped
    /// during compaction.
    pub retain_ms: i64,
    /// Catalog version that created it.
    pub version: u64,
    /// When the item was computed over the event history as it was created:
    /// the time from which that history held every write. Such an item
    /// reflects every write the history holds, whenever it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfilled_from: Option<i64>,
    /// The events it takes: those its filter passes (`ON view WHERE …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<super::EventFilter>,
    /// Event types it is bound to beside `event_type` (`ON purchase, add_to_cart`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_on: Vec<String>,
    /// The number it aggregates, computed from the event's fields, in place
    /// of `field` (`SUM(price * qty)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<super::EventExpr>,
}

/// A vector's update rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum VectorRule {
    /// Decayed mean of the event vectors in `field`.
    Ewma {
        /// Field holding the event vector.
        field: String,
        /// Half-life in ms.
        half_life_ms: i64,
    },
    /// Online logistic regression against the item vector in `item_field`, with
    /// the 0/1 label in `label_field`.
    Sgd {
        /// Field holding the item vector.
        item_field: String,
        /// Field holding the label.
        label_field: String,
        /// Learning rate η.
        learning_rate: f64,
        /// L2 penalty λ.
        l2: f64,
    },
}

/// A fixed-dimension embedding with an update rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorDef {
    /// Unique, never reused id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Event type it is bound to.
    pub event_type: String,
    /// Dimension.
    pub dim: u32,
    /// Update rule.
    pub rule: VectorRule,
    /// Catalog version that created it.
    pub version: u64,
    /// When the item was computed over the event history as it was created:
    /// the time from which that history held every write. Such an item
    /// reflects every write the history holds, whenever it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfilled_from: Option<i64>,
    /// The events it takes: those its filter passes (`ON view WHERE …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<super::EventFilter>,
    /// Event types it is bound to beside `event_type` (`ON purchase, add_to_cart`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_on: Vec<String>,
}

/// An approximate nearest-neighbour index on a vector (`CREATE INDEX … USING
/// ivf (vector) WITH (lists = …, probes = …)`). Its contents are derived
/// state, rebuilt from the vectors; only its definition is stored here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Unique, never reused id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// The vector definition it indexes.
    pub vector: u32,
    /// Lists (coarse centroids).
    pub lists: u32,
    /// Lists a query probes unless it asks for another number.
    pub probes: u32,
    /// Candidates re-ranked exactly per result.
    pub rerank: u32,
    /// Catalog version that created it.
    pub version: u64,
}

/// A named, stored predicate: text in the query language, which the query
/// crate parses and evaluates, or one cluster of a segment group, kept as
/// typed data (storage writes no query text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentDef {
    /// Unique, never reused id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Predicate text in the query language; empty for a cluster's segment.
    pub predicate: String,
    /// For a segment made by `CREATE SEGMENTS`: its group and cluster, the
    /// users whose vector is nearest that cluster's centroid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterMember>,
    /// Catalog version that created it.
    pub version: u64,
}

/// One cluster of a segment group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMember {
    /// The segment group's name.
    pub group: String,
    /// The cluster's index in the group, from 0.
    pub index: usize,
}

/// A group of segments made from a clustering: one segment per centroid, each
/// holding the users whose vector is nearest to that centroid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentGroupDef {
    /// Unique, never reused id.
    pub id: u32,
    /// Name; its segments are `name_0`, `name_1`, …
    pub name: String,
    /// The vector definition clustered.
    pub vector: String,
    /// One centroid per segment, in segment order.
    pub centroids: Vec<Vec<f32>>,
    /// The statement that made it, for listings.
    pub definition: String,
    /// Catalog version that created it.
    pub version: u64,
}

impl SegmentGroupDef {
    /// The name of segment `i` of group `group`.
    pub fn segment_name(group: &str, i: usize) -> String {
        format!("{group}_{i}")
    }
}

/// What a [`Definition`] or drop refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefKind {
    /// An attribute.
    Attribute,
    /// A feature.
    Feature,
    /// A window.
    Window,
    /// A vector.
    Vector,
    /// A segment.
    Segment,
    /// A group of segments made from a clustering.
    SegmentGroup,
    /// An approximate nearest-neighbour index on a vector.
    Index,
}

impl DefKind {
    /// Lower-case name, as used in messages.
    pub fn name(&self) -> &'static str {
        match self {
            DefKind::Attribute => "attribute",
            DefKind::Feature => "feature",
            DefKind::Window => "window",
            DefKind::Vector => "vector",
            DefKind::Segment => "segment",
            DefKind::SegmentGroup => "segment group",
            DefKind::Index => "index",
        }
    }
}

/// A new schema item, before the catalog gives it an id.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    /// `CREATE ATTRIBUTE name TYPE [ON event_type]`.
    Attribute {
        /// Name.
        name: String,
        /// Type.
        ty: AttrType,
        /// Event type that sets it from its field of the same name.
        event_type: Option<String>,
    },
    /// `CREATE FEATURE name ON event_type AS KIND(field)`.
    Feature {
        /// Name.
        name: String,
        /// Event type.
        event_type: String,
        /// Field, for kinds that read one.
        field: Option<String>,
        /// Kind.
        kind: FeatureKind,
    },
    /// `CREATE WINDOW name ON event_type [OF field] BUCKET d RETAIN d`.
    Window {
        /// Name.
        name: String,
        /// Event type.
        event_type: String,
        /// Field, or `None` to count events.
        field: Option<String>,
        /// Bucket width in ms.
        bucket_ms: i64,
        /// Retention in ms.
        retain_ms: i64,
    },
    /// `CREATE VECTOR name ON event_type AS RULE(..) DIM n ...`.
    Vector {
        /// Name.
        name: String,
        /// Event type.
        event_type: String,
        /// Dimension.
        dim: u32,
        /// Update rule.
        rule: VectorRule,
    },
    /// A feature, window or vector that takes only the events `filter`
    /// passes (`CREATE FEATURE … ON view WHERE category = 'tech' …`).
    Filtered {
        /// The feature, window or vector.
        item: Box<Definition>,
        /// Which events it takes.
        filter: super::EventFilter,
    },
    /// A count, sum, decayed count or decayed sum kept per value of event
    /// field `by`, for at most `top` values per user (`… BY category TOP 50`).
    Keyed {
        /// The feature.
        item: Box<Definition>,
        /// The event field whose values are the keys.
        by: String,
        /// Most keys kept per user.
        top: u32,
    },
    /// A feature, window or vector bound to more event types than its own
    /// (`CREATE FEATURE buys ON purchase, add_to_cart AS COUNT()`).
    AlsoOn {
        /// The feature, window or vector.
        item: Box<Definition>,
        /// The other event types.
        event_types: Vec<String>,
    },
    /// A feature or window over a number computed from the event's fields
    /// (`SUM(price * qty)`); `item` names any field, which `expr` replaces.
    Computed {
        /// The feature or window.
        item: Box<Definition>,
        /// The number it aggregates.
        expr: super::EventExpr,
    },
    /// `CREATE INDEX name ON users USING ivf (vector) WITH (…)`.
    Index {
        /// Name.
        name: String,
        /// The vector it indexes.
        vector: String,
        /// Lists.
        lists: u32,
        /// Lists probed per query.
        probes: u32,
        /// Candidates re-ranked per result.
        rerank: u32,
    },
    /// `CREATE SEGMENT name AS predicate`.
    Segment {
        /// Name.
        name: String,
        /// Predicate text.
        predicate: String,
    },
    /// `CREATE SEGMENTS name FROM CLUSTER …`: a segment per centroid.
    SegmentGroup {
        /// Name.
        name: String,
        /// The vector definition clustered.
        vector: String,
        /// The centroids.
        centroids: Vec<Vec<f32>>,
        /// The statement that made it.
        definition: String,
    },
}

impl Definition {
    /// The new item's name.
    pub fn name(&self) -> &str {
        match self {
            Definition::Attribute { name, .. }
            | Definition::Feature { name, .. }
            | Definition::Window { name, .. }
            | Definition::Vector { name, .. }
            | Definition::Segment { name, .. }
            | Definition::Index { name, .. }
            | Definition::SegmentGroup { name, .. } => name,
            Definition::Filtered { item, .. }
            | Definition::AlsoOn { item, .. }
            | Definition::Computed { item, .. }
            | Definition::Keyed { item, .. } => item.name(),
        }
    }

    /// The new item's kind.
    pub fn kind(&self) -> DefKind {
        match self {
            Definition::Attribute { .. } => DefKind::Attribute,
            Definition::Feature { .. } => DefKind::Feature,
            Definition::Window { .. } => DefKind::Window,
            Definition::Vector { .. } => DefKind::Vector,
            Definition::Segment { .. } => DefKind::Segment,
            Definition::SegmentGroup { .. } => DefKind::SegmentGroup,
            Definition::Index { .. } => DefKind::Index,
            Definition::Filtered { item, .. }
            | Definition::AlsoOn { item, .. }
            | Definition::Computed { item, .. }
            | Definition::Keyed { item, .. } => item.kind(),
        }
    }
}

/// The event types an item is bound to: its own, then the others it names.
macro_rules! event_types {
    ($($def:ty),*) => {$(
        impl $def {
            /// The event types it is bound to: its own, then those it names
            /// beside (`ON purchase, add_to_cart`).
            pub fn event_types(&self) -> impl Iterator<Item = &String> {
                std::iter::once(&self.event_type).chain(&self.also_on)
            }
        }
    )*};
}

event_types!(FeatureDef, WindowDef, VectorDef);

impl FeatureDef {
    /// Whether it reads the event's own time (`MIN(ts)`, `MAX(ts)`,
    /// `LAST(ts)`): it reads as an integer, epoch ms.
    pub fn reads_event_time(&self) -> bool {
        self.field.as_deref() == Some(super::EVENT_TIME)
    }
}

impl std::fmt::Display for FeatureDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = self.field.as_deref().unwrap_or("");
        write!(
            f,
            "{} ON {} AS {}({field})",
            self.name,
            self.event_type,
            self.kind.name()
        )?;
        if let Some(h) = self.kind.half_life_ms() {
            write!(f, " HALF_LIFE '{}'", format_duration(h))?;
        }
        if let FeatureKind::Beta {
            prior_a, prior_b, ..
        }
        | FeatureKind::Rate {
            prior_a, prior_b, ..
        } = self.kind
        {
            write!(f, " PRIOR ({prior_a}, {prior_b})")?;
        }
        Ok(())
    }
}
