//! The catalog: every schema item, persisted in the catalog column family.
//!
//! The catalog is one JSON document behind a tag byte, rewritten on every change
//! with a bumped `version`. Definitions never change after creation; ids grow
//! monotonically and are never reused, so every stored cell, bucket and vector
//! (all keyed by id) decodes with the definition it was written under. An id below
//! `next_id` that no live definition holds belongs to a dropped definition: readers
//! ignore its state and compaction purges it.

mod bindings;
mod defs;
mod events;
pub mod filter;

pub use events::{
    EventChange, EventDef, FieldDecl, FieldType, MAX_EVENT_FIELDS, MAX_EVENT_TYPES,
    MAX_PAST_EVENTS, PastEventDef,
};

pub use bindings::{AttrBinding, Bindings, EventBindings};
pub use filter::{ArithOp, CmpOp, EventExpr, EventFilter, FilterValue};

/// The current catalog, shared by the engine, its vector index and RocksDB's
/// compaction filters; a schema change swaps the inner `Arc`.
pub(crate) type SharedBindings = std::sync::Arc<parking_lot::RwLock<std::sync::Arc<Bindings>>>;
pub use defs::{
    AttributeDef, ClusterMember, DefKind, Definition, FeatureDef, FeatureKind, IndexDef, KeyedBy,
    SegmentDef, SegmentGroupDef, VectorDef, VectorRule, WindowDef,
};

use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, derr};
use crate::error::{Error, Result};
use crate::merge::tags;
use crate::merge::vector::MAX_DIM;

/// Id of the per-user bookkeeping cell in the features record.
pub const META_ID: u32 = 0;

/// Names no schema item may take: they are columns or event keys of their own.
pub const RESERVED_NAMES: &[&str] = &["id", "user", "ts", "type", "users"];

/// Most schema items a catalog holds. A user's record stores its cell count in
/// 16 bits; this leaves room to spare.
pub const MAX_DEFINITIONS: usize = 16_384;

/// Most segments one clustering may create.
pub const MAX_GROUP_SEGMENTS: usize = 1000;

/// Most keys a keyed feature keeps per user (`TOP n`).
pub const MAX_TOP: u32 = 10_000;

/// Longest accepted name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// The persisted schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Bumped on every change.
    pub version: u64,
    /// Next definition id to hand out.
    pub next_id: u32,
    /// Attributes, in definition order.
    #[serde(default)]
    pub attributes: Vec<AttributeDef>,
    /// Features, in definition order.
    #[serde(default)]
    pub features: Vec<FeatureDef>,
    /// Windows, in definition order.
    #[serde(default)]
    pub windows: Vec<WindowDef>,
    /// Vectors, in definition order.
    #[serde(default)]
    pub vectors: Vec<VectorDef>,
    /// Segments, in definition order.
    #[serde(default)]
    pub segments: Vec<SegmentDef>,
    /// Segment groups made from clusterings, in definition order.
    #[serde(default)]
    pub segment_groups: Vec<SegmentGroupDef>,
    /// How long accepted writes are kept in the event history, in ms
    /// ([`crate::history`]); 0 (the default, and what a catalog written
    /// before the history existed reads as) keeps none.
    #[serde(default)]
    pub history_ms: i64,
    /// Ids of items being computed over the event history
    /// ([`crate::Engine::define`]): reserved, and their state kept by
    /// compaction, but bound to nothing and read by nothing. An engine that
    /// opens a catalog with one (a build a crash cut short) forgets its state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub building: Vec<u32>,
    /// How long a user is kept without a write, in ms: older ones are
    /// deleted (`ALTER DATABASE SET USER TTL`); 0, the default, keeps all.
    #[serde(default)]
    pub user_ttl_ms: i64,
    /// Declared event types ([`EventDef`]), in declaration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventDef>,
    /// Declarations since changed or dropped, oldest first, at most
    /// [`events::MAX_PAST_EVENTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub past_events: Vec<PastEventDef>,
    /// Approximate nearest-neighbour indexes, in definition order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
}

impl Default for Catalog {
    fn default() -> Catalog {
        Catalog {
            version: 0,
            next_id: META_ID + 1,
            attributes: Vec::new(),
            features: Vec::new(),
            windows: Vec::new(),
            vectors: Vec::new(),
            segments: Vec::new(),
            segment_groups: Vec::new(),
            history_ms: 0,
            building: Vec::new(),
            user_ttl_ms: 0,
            events: Vec::new(),
            past_events: Vec::new(),
            indexes: Vec::new(),
        }
    }
}

/// Checks a schema item, event type or field name: an identifier of at most 64 bytes.
///
/// # Errors
/// [`Error::InvalidArgument`] saying what is wrong with it.
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::invalid(format!(
            "{what} name '{name}' must start with a letter or '_' and hold only letters, digits and '_'"
        )));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "{what} name '{name}' is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(())
}

/// The field name a feature reads the event's own time by: `MIN(ts)`,
/// `MAX(ts)` and `LAST(ts)` are its first and last times, epoch ms.
pub const EVENT_TIME: &str = "ts";

fn check_field(name: &str) -> Result<()> {
    check_name("field", name)?;
    if ["user", "ts", "type"].contains(&name) {
        return Err(Error::invalid(format!(
            "'{name}' is an event key, not a field"
        )));
    }
    Ok(())
}

fn check_half_life(h: i64) -> Result<()> {
    if h <= 0 {
        return Err(Error::invalid(format!(
            "half-life must be positive, got {h} ms"
        )));
    }
    Ok(())
}

fn check_positive(what: &str, x: f64) -> Result<()> {
    if !(x.is_finite() && x > 0.0) {
        return Err(Error::invalid(format!(
            "{what} must be a positive finite number, got {x}"
        )));
    }
    Ok(())
}

impl Catalog {
    /// The catalog as writes accepted at `version` were planned with: its
    /// attributes, features, windows and vectors made by then (or computed
    /// over the event history when made, which holds every write the
    /// history does), and its event types declared as they were then (as
    /// far as [`Catalog::past_events`] reaches back; an older one is taken
    /// as undeclared). Items dropped since are gone for good. Its version
    /// is `version`.
    pub fn as_of_version(&self, version: u64) -> Catalog {
        let mut c = self.clone();
        c.version = version.min(self.version);
        c.attributes
            .retain(|d| d.version <= version || d.backfilled_from.is_some());
        c.features
            .retain(|d| d.version <= version || d.backfilled_from.is_some());
        c.windows
            .retain(|d| d.version <= version || d.backfilled_from.is_some());
        c.vectors
            .retain(|d| d.version <= version || d.backfilled_from.is_some());
        c.events = self
            .events
            .iter()
            .filter(|d| d.in_effect(version, u64::MAX))
            .chain(
                self.past_events
                    .iter()
                    .filter(|p| p.def.in_effect(version, p.until))
                    .map(|p| &p.def),
            )
            .cloned()
            .collect();
        c.past_events.clear();
        c
    }

    /// Finds any item by name.
    pub fn kind_of(&self, name: &str) -> Option<DefKind> {
        if self.attribute(name).is_some() {
            Some(DefKind::Attribute)
        } else if self.feature(name).is_some() {
            Some(DefKind::Feature)
        } else if self.window(name).is_some() {
            Some(DefKind::Window)
        } else if self.vector(name).is_some() {
            Some(DefKind::Vector)
        } else if self.segment(name).is_some() {
            Some(DefKind::Segment)
        } else if self.segment_group(name).is_some() {
            Some(DefKind::SegmentGroup)
        } else if self.index(name).is_some() {
            Some(DefKind::Index)
        } else {
            None
        }
    }

    /// The attribute named `name`.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.iter().find(|d| d.name == name)
    }
    /// The feature named `name`.
    pub fn feature(&self, name: &str) -> Option<&FeatureDef> {
        self.features.iter().find(|d| d.name == name)
    }
    /// The window named `name`.
    pub fn window(&self, name: &str) -> Option<&WindowDef> {
        self.windows.iter().find(|d| d.name == name)
    }
    /// The vector named `name`.
    pub fn vector(&self, name: &str) -> Option<&VectorDef> {
        self.vectors.iter().find(|d| d.name == name)
    }
    /// The index named `name`.
    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.indexes.iter().find(|d| d.name == name)
    }
    /// The index on vector definition `vector`.
    pub fn index_on(&self, vector: u32) -> Option<&IndexDef> {
        self.indexes.iter().find(|d| d.vector == vector)
    }
    /// How many items the catalog holds.
    pub fn definitions(&self) -> usize {
        self.indexes.len()
            + self.attributes.len()
            + self.features.len()
            + self.windows.len()
            + self.vectors.len()
            + self.segments.len()
            + self.segment_groups.len()
    }

    /// The segment group named `name`.
    pub fn segment_group(&self, name: &str) -> Option<&SegmentGroupDef> {
        self.segment_groups.iter().find(|d| d.name == name)
    }

    /// The group a segment belongs to, if it was made from a clustering.
    pub fn group_of_segment(&self, segment: &str) -> Option<&SegmentGroupDef> {
        self.segment_groups.iter().find(|g| {
            (0..g.centroids.len()).any(|i| SegmentGroupDef::segment_name(&g.name, i) == segment)
        })
    }

    /// The segment named `name`.
    pub fn segment(&self, name: &str) -> Option<&SegmentDef> {
        self.segments.iter().find(|d| d.name == name)
    }

    /// Validates `def` and adds it, returning its new id. The catalog is unchanged on error.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when any item has that name; [`Error::InvalidArgument`]
    /// for a bad name, field or parameter.
    pub fn define(&mut self, def: Definition) -> Result<u32> {
        let mut next = self.clone();
        let id = next.define_item(def)?;
        next.check_rates(id)?;
        next.check_declared(id)?;
        *self = next;
        Ok(id)
    }

    /// A `RATE(success)` feature binds to its success event type and at least
    /// one trial event type (`ON impression, click AS RATE(click)`).
    fn check_rates(&self, id: u32) -> Result<()> {
        for f in self.features.iter().filter(|f| f.id == id) {
            if let (FeatureKind::Rate { .. }, Some(success)) = (f.kind, &f.field) {
                let types: Vec<&String> = f.event_types().collect();
                if !types.contains(&success) || types.len() < 2 {
                    return Err(Error::invalid(format!(
                        "RATE({success}) counts '{success}' events as successes of the trials of the other event types it binds: ON <trial type>, {success} AS RATE({success})"
                    )));
                }
            }
        }
        Ok(())
    }

    /// [`Catalog::define`] without the checks of the item as a whole.
    fn define_item(&mut self, def: Definition) -> Result<u32> {
        let name = def.name().to_owned();
        check_name(def.kind().name(), &name)?;
        if RESERVED_NAMES.contains(&name.as_str()) {
            return Err(Error::invalid(format!("'{name}' is a reserved name")));
        }
        if let Some(kind) = self.kind_of(&name) {
            return Err(Error::AlreadyExists {
                kind: kind.name(),
                name,
            });
        }
        if self.definitions() >= MAX_DEFINITIONS {
            return Err(Error::invalid(format!(
                "the catalog holds at most {MAX_DEFINITIONS} items; drop some first"
            )));
        }
        let id = self.next_id;
        let version = self.version + 1;
        match def {
            Definition::Computed { item, expr } => {
                let reads_number = match &*item {
                    Definition::Feature { kind, field, .. } => {
                        field.is_some()
                            && !matches!(
                                kind,
                                FeatureKind::Beta { .. }
                                    | FeatureKind::Rate { .. }
                                    | FeatureKind::CountDistinct
                            )
                    }
                    Definition::Window { field, .. } => field.is_some(),
                    _ => false,
                };
                if !reads_number {
                    return Err(Error::invalid(
                        "only a feature or window that aggregates a number takes a computed one",
                    ));
                }
                if expr.depth() > filter::MAX_FILTER_DEPTH {
                    return Err(Error::invalid(format!(
                        "an expression nests at most {} deep",
                        filter::MAX_FILTER_DEPTH
                    )));
                }
                for f in expr.fields() {
                    check_field(f)?;
                }
                let mut next = self.clone();
                let id = next.define_item(*item)?;
                for d in next.features.iter_mut().filter(|d| d.id == id) {
                    d.field = None;
                    d.expr = Some(expr.clone());
                }
                for d in next.windows.iter_mut().filter(|d| d.id == id) {
                    d.field = None;
                    d.expr = Some(expr.clone());
                }
                *self = next;
                return Ok(id);
            }
            Definition::Keyed { item, by, top } => {
                check_field(&by).map_err(|e| Error::InvalidField {
                    field: by.clone(),
                    reason: match e {
                        Error::InvalidArgument(m) => m,
                        other => other.to_string(),
                    },
                })?;
                if top == 0 || top > MAX_TOP {
                    return Err(Error::invalid(format!(
                        "TOP keeps 1 to {MAX_TOP} keys per user, not {top}"
                    )));
                }
                let mut next = self.clone();
                let id = next.define_item(*item)?;
                let Some(d) = next.features.iter_mut().find(|d| d.id == id) else {
                    return Err(Error::invalid("only features are kept per key (BY)"));
                };
                if !matches!(
                    d.kind,
                    FeatureKind::Count
                        | FeatureKind::Sum
                        | FeatureKind::DecayedCount { .. }
                        | FeatureKind::DecayedSum { .. }
                ) {
                    return Err(Error::invalid(format!(
                        "only COUNT, SUM, DECAYED_COUNT and DECAYED_SUM features are kept per key (BY), not {}",
                        d.kind.name()
                    )));
                }
                d.keyed = Some(KeyedBy { by, top });
                *self = next;
                return Ok(id);
            }
            Definition::AlsoOn { item, event_types } => {
                if !matches!(
                    item.kind(),
                    DefKind::Feature | DefKind::Window | DefKind::Vector
                ) {
                    return Err(Error::invalid(format!(
                        "only features, windows and vectors bind to several event types, not {}s",
                        item.kind().name()
                    )));
                }
                for e in &event_types {
                    check_name("event type", e)?;
                }
                let mut next = self.clone();
                let id = next.define_item(*item)?;
                let set = |own: &str, also: &mut Vec<String>| -> Result<()> {
                    let mut all = vec![own.to_owned()];
                    for e in &event_types {
                        if all.contains(e) {
                            return Err(Error::invalid(format!("event type '{e}' is named twice")));
                        }
                        all.push(e.clone());
                    }
                    also.clone_from(&event_types);
                    Ok(())
                };
                for d in next.features.iter_mut().filter(|d| d.id == id) {
                    set(&d.event_type, &mut d.also_on)?;
                }
                for d in next.windows.iter_mut().filter(|d| d.id == id) {
                    set(&d.event_type, &mut d.also_on)?;
                }
                for d in next.vectors.iter_mut().filter(|d| d.id == id) {
                    set(&d.event_type, &mut d.also_on)?;
                }
                *self = next;
                return Ok(id);
            }
            Definition::Filtered { item, filter } => {
                if !matches!(
                    item.kind(),
                    DefKind::Feature | DefKind::Window | DefKind::Vector
                ) {
                    return Err(Error::invalid(format!(
                        "only features, windows and vectors take the events a filter passes, not {}s",
                        item.kind().name()
                    )));
                }
                if filter.depth() > filter::MAX_FILTER_DEPTH {
                    return Err(Error::invalid(format!(
                        "a filter nests at most {} deep",
                        filter::MAX_FILTER_DEPTH
                    )));
                }
                for f in filter.fields() {
                    check_field(f)?;
                }
                let mut next = self.clone();
                let id = next.define_item(*item)?;
                next.features
                    .iter_mut()
                    .filter(|d| d.id == id)
                    .for_each(|d| d.filter = Some(filter.clone()));
                next.windows
                    .iter_mut()
                    .filter(|d| d.id == id)
                    .for_each(|d| d.filter = Some(filter.clone()));
                next.vectors
                    .iter_mut()
                    .filter(|d| d.id == id)
                    .for_each(|d| d.filter = Some(filter.clone()));
                *self = next;
                return Ok(id);
            }
            Definition::Attribute {
                name,
                ty,
                event_type,
            } => {
                if let Some(e) = &event_type {
                    check_name("event type", e)?;
                    check_field(&name)?;
                }
                self.attributes.push(AttributeDef {
                    id,
                    name,
                    ty,
                    event_type,
                    version,
                    backfilled_from: None,
                });
            }
            Definition::Feature {
                name,
                event_type,
                field,
                kind,
            } => {
                check_name("event type", &event_type)?;
                match (&field, kind.needs_field()) {
                    // `RATE(click)` names the success event type.
                    (Some(f), true) if matches!(kind, FeatureKind::Rate { .. }) => {
                        check_name("event type", f)?;
                    }
                    // The event's own time, for first and last times.
                    (Some(f), true)
                        if f == EVENT_TIME
                            && matches!(
                                kind,
                                FeatureKind::Min | FeatureKind::Max | FeatureKind::Last
                            ) => {}
                    (Some(f), true) => check_field(f)?,
                    (None, false) => {}
                    (None, true) => {
                        return Err(Error::invalid(format!(
                            "{}() needs an event field",
                            kind.name()
                        )));
                    }
                    (Some(f), false) => {
                        return Err(Error::invalid(format!(
                            "{}() takes no field, got '{f}'",
                            kind.name()
                        )));
                    }
                }
                if let Some(h) = kind.half_life_ms() {
                    check_half_life(h)?;
                }
                if let FeatureKind::Beta {
                    prior_a, prior_b, ..
                }
                | FeatureKind::Rate {
                    prior_a, prior_b, ..
                } = kind
                {
                    check_positive("prior successes", prior_a)?;
                    check_positive("prior failures", prior_b)?;
                }
                self.features.push(FeatureDef {
                    id,
                    name,
                    event_type,
                    field,
                    kind,
                    version,
                    backfilled_from: None,
                    filter: None,
                    also_on: Vec::new(),
                    expr: None,
                    keyed: None,
                });
            }
            Definition::Window {
                name,
                event_type,
                field,
                bucket_ms,
                retain_ms,
            } => {
                check_name("event type", &event_type)?;
                if let Some(f) = &field {
                    check_field(f)?;
                }
                if bucket_ms <= 0 {
                    return Err(Error::invalid("bucket width must be positive"));
                }
                if retain_ms < bucket_ms {
                    return Err(Error::invalid("retention must be at least one bucket"));
                }
                self.windows.push(WindowDef {
                    id,
                    name,
                    event_type,
                    field,
                    bucket_ms,
                    retain_ms,
                    version,
                    backfilled_from: None,
                    filter: None,
                    also_on: Vec::new(),
                    expr: None,
                });
            }
            Definition::Vector {
                name,
                event_type,
                dim,
                rule,
            } => {
                check_name("event type", &event_type)?;
                if dim == 0 || dim as usize > MAX_DIM {
                    return Err(Error::invalid(format!(
                        "dimension must be 1..={MAX_DIM}, got {dim}"
                    )));
                }
                match &rule {
                    VectorRule::Ewma {
                        field,
                        half_life_ms,
                    } => {
                        check_field(field)?;
                        check_half_life(*half_life_ms)?;
                    }
                    VectorRule::Sgd {
                        item_field,
                        label_field,
                        learning_rate,
                        l2,
                    } => {
                        check_field(item_field)?;
                        check_field(label_field)?;
                        if item_field == label_field {
                            return Err(Error::invalid("item and label fields must differ"));
                        }
                        check_positive("learning rate", *learning_rate)?;
                        if *learning_rate > 1e3 {
                            return Err(Error::invalid(format!(
                                "learning rate must be at most 1000, got {learning_rate}"
                            )));
                        }
                        if !(l2.is_finite() && *l2 >= 0.0) {
                            return Err(Error::invalid(format!(
                                "L2 must be a finite number >= 0, got {l2}"
                            )));
                        }
                    }
                }
                self.vectors.push(VectorDef {
                    id,
                    name,
                    event_type,
                    dim,
                    rule,
                    version,
                    backfilled_from: None,
                    filter: None,
                    also_on: Vec::new(),
                });
            }
            Definition::Index {
                name,
                vector,
                lists,
                probes,
                rerank,
            } => {
                let Some(v) = self.vector(&vector) else {
                    return Err(match self.kind_of(&vector) {
                        Some(kind) => Error::invalid(format!(
                            "'{vector}' is {} {}, not a vector: an index is built on a vector",
                            if kind == DefKind::Attribute || kind == DefKind::Index {
                                "an"
                            } else {
                                "a"
                            },
                            kind.name()
                        )),
                        None => Error::NotFound {
                            kind: "vector",
                            name: vector,
                        },
                    });
                };
                if let Some(other) = self.index_on(v.id) {
                    return Err(Error::invalid(format!(
                        "vector '{vector}' has an index already, '{}'; DROP INDEX {} first",
                        other.name, other.name
                    )));
                }
                let max_lists = crate::vector::ivf::MAX_LISTS as u32;
                if !(1..=max_lists).contains(&lists) {
                    return Err(Error::invalid(format!(
                        "lists must be 1..={max_lists}, got {lists}"
                    )));
                }
                if !(1..=lists).contains(&probes) {
                    return Err(Error::invalid(format!(
                        "probes must be 1..={lists} (the lists), got {probes}"
                    )));
                }
                let max_rerank = crate::vector::ivf::MAX_RERANK as u32;
                if !(1..=max_rerank).contains(&rerank) {
                    return Err(Error::invalid(format!(
                        "rerank must be 1..={max_rerank}, got {rerank}"
                    )));
                }
                let vector = v.id;
                self.indexes.push(IndexDef {
                    id,
                    name,
                    vector,
                    lists,
                    probes,
                    rerank,
                    version,
                });
            }
            Definition::Segment { name, predicate } => {
                if predicate.trim().is_empty() {
                    return Err(Error::invalid("segment predicate is empty"));
                }
                self.segments.push(SegmentDef {
                    id,
                    name,
                    predicate,
                    cluster: None,
                    version,
                });
            }
            Definition::SegmentGroup {
                name,
                vector,
                centroids,
                definition,
            } => {
                let dim = self
                    .vector(&vector)
                    .ok_or_else(|| Error::NotFound {
                        kind: "vector",
                        name: vector.clone(),
                    })?
                    .dim as usize;
                if centroids.is_empty() || centroids.len() > MAX_GROUP_SEGMENTS {
                    return Err(Error::invalid(format!(
                        "a segment group holds 1 to {MAX_GROUP_SEGMENTS} segments, not {}",
                        centroids.len()
                    )));
                }
                if centroids
                    .iter()
                    .any(|c| c.len() != dim || c.iter().any(|x| !x.is_finite()))
                {
                    return Err(Error::invalid(format!(
                        "every centroid must be {dim} finite numbers, the dimension of '{vector}'"
                    )));
                }
                if self.definitions() + centroids.len() + 1 > MAX_DEFINITIONS {
                    return Err(Error::invalid(format!(
                        "the catalog holds at most {MAX_DEFINITIONS} items; drop some first"
                    )));
                }
                for i in 0..centroids.len() {
                    let seg = SegmentGroupDef::segment_name(&name, i);
                    check_name("segment", &seg)?;
                    if let Some(kind) = self.kind_of(&seg) {
                        return Err(Error::AlreadyExists {
                            kind: kind.name(),
                            name: seg,
                        });
                    }
                }
                for i in 0..centroids.len() {
                    self.next_id += 1;
                    self.segments.push(SegmentDef {
                        id: self.next_id,
                        name: SegmentGroupDef::segment_name(&name, i),
                        predicate: String::new(),
                        cluster: Some(ClusterMember {
                            group: name.clone(),
                            index: i,
                        }),
                        version,
                    });
                }
                self.segment_groups.push(SegmentGroupDef {
                    id,
                    name,
                    vector,
                    centroids,
                    definition,
                    version,
                });
            }
        }
        self.next_id += 1;
        self.version = version;
        Ok(id)
    }

    /// Removes the item `name` of `kind`, returning its id.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such item of that kind.
    pub fn drop_item(&mut self, kind: DefKind, name: &str) -> Result<u32> {
        fn take<T>(v: &mut Vec<T>, pos: Option<usize>) -> Option<T> {
            pos.map(|p| v.remove(p))
        }
        let id = match kind {
            DefKind::Attribute => {
                let pos = self.attributes.iter().position(|d| d.name == name);
                take(&mut self.attributes, pos).map(|d| d.id)
            }
            DefKind::Feature => {
                let pos = self.features.iter().position(|d| d.name == name);
                take(&mut self.features, pos).map(|d| d.id)
            }
            DefKind::Window => {
                let pos = self.windows.iter().position(|d| d.name == name);
                take(&mut self.windows, pos).map(|d| d.id)
            }
            DefKind::Segment => {
                if let Some(g) = self.group_of_segment(name) {
                    return Err(Error::invalid(format!(
                        "segment '{name}' belongs to the segment group '{g}'; drop the whole group with DROP SEGMENTS {g}",
                        g = g.name
                    )));
                }
                let pos = self.segments.iter().position(|d| d.name == name);
                take(&mut self.segments, pos).map(|d| d.id)
            }
            DefKind::SegmentGroup => {
                let pos = self.segment_groups.iter().position(|d| d.name == name);
                let group = take(&mut self.segment_groups, pos);
                if let Some(g) = &group {
                    let names: Vec<String> = (0..g.centroids.len())
                        .map(|i| SegmentGroupDef::segment_name(&g.name, i))
                        .collect();
                    self.segments.retain(|s| !names.contains(&s.name));
                }
                group.map(|d| d.id)
            }
            DefKind::Vector => {
                if let Some(g) = self.segment_groups.iter().find(|g| g.vector == name) {
                    return Err(Error::invalid(format!(
                        "vector '{name}' is clustered by the segment group '{g}'; drop it first with DROP SEGMENTS {g}",
                        g = g.name
                    )));
                }
                let pos = self.vectors.iter().position(|d| d.name == name);
                let id = take(&mut self.vectors, pos).map(|d| d.id);
                // Its index is derived from it alone, and goes with it.
                self.indexes.retain(|i| Some(i.vector) != id);
                id
            }
            DefKind::Index => {
                let pos = self.indexes.iter().position(|d| d.name == name);
                take(&mut self.indexes, pos).map(|d| d.id)
            }
        };
        let id = id.ok_or_else(|| Error::NotFound {
            kind: kind.name(),
            name: name.to_owned(),
        })?;
        self.version += 1;
        Ok(id)
    }

    /// Changes in place what an item only reads with: a beta or rate's prior,
    /// a window's retention. `def` is the item as it is to be (found by its
    /// name and kind); its id, state and history are kept. Returns its id.
    ///
    /// # Errors
    /// [`Error::NotFound`] for no such item; [`Error::InvalidArgument`] when
    /// `def` changes anything else, or a bad prior or retention.
    pub fn alter_in_place(&mut self, def: &Definition) -> Result<u32> {
        let kind = def.kind();
        let name = def.name();
        let not_found = || Error::NotFound {
            kind: kind.name(),
            name: name.to_owned(),
        };
        let other = || {
            Error::invalid(format!(
                "only a prior or a retention changes in place; {} '{name}' is re-derived with CREATE OR REPLACE",
                kind.name()
            ))
        };
        // The scope (filter, event types, computed argument) stays as it is.
        let mut def = def;
        while let Definition::Filtered { item, .. }
        | Definition::AlsoOn { item, .. }
        | Definition::Computed { item, .. }
        | Definition::Keyed { item, .. } = def
        {
            def = item;
        }
        let id = match def {
            Definition::Feature {
                kind:
                    new @ (FeatureKind::Beta {
                        prior_a, prior_b, ..
                    }
                    | FeatureKind::Rate {
                        prior_a, prior_b, ..
                    }),
                ..
            } => {
                check_positive("prior successes", *prior_a)?;
                check_positive("prior failures", *prior_b)?;
                let d = self
                    .features
                    .iter_mut()
                    .find(|d| d.name == name)
                    .ok_or_else(not_found)?;
                // The prior, and nothing else, may differ.
                if d.kind.with_prior(*prior_a, *prior_b) != Some(*new) {
                    return Err(other());
                }
                d.kind = *new;
                d.id
            }
            Definition::Window {
                bucket_ms,
                retain_ms,
                ..
            } => {
                let d = self
                    .windows
                    .iter_mut()
                    .find(|d| d.name == name)
                    .ok_or_else(not_found)?;
                if d.bucket_ms != *bucket_ms {
                    return Err(other());
                }
                if *retain_ms < d.bucket_ms {
                    return Err(Error::invalid("retention must be at least one bucket"));
                }
                d.retain_ms = *retain_ms;
                d.id
            }
            _ => return Err(other()),
        };
        self.version += 1;
        Ok(id)
    }

    /// Sets the user TTL ([`Catalog::user_ttl_ms`]; 0 keeps every user).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative TTL.
    pub fn set_user_ttl(&mut self, ms: i64) -> Result<()> {
        if ms < 0 {
            return Err(Error::invalid(format!(
                "a user TTL cannot be negative ({ms} ms)"
            )));
        }
        self.user_ttl_ms = ms;
        self.version += 1;
        Ok(())
    }

    /// Sets the history horizon ([`Catalog::history_ms`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a horizon that is negative or longer
    /// than [`crate::history::MAX_HORIZON_MS`].
    pub fn set_history(&mut self, ms: i64) -> Result<()> {
        self.history_ms = crate::history::check_horizon(ms).map_err(Error::InvalidArgument)?;
        self.version += 1;
        Ok(())
    }

    /// Marks the attribute, feature, window or vector `id` as made at
    /// catalog `version` and, with `from`, computed over the event history
    /// from then; `false` when no such item exists.
    pub(crate) fn mark_backfilled(&mut self, id: u32, from: Option<i64>, version: u64) -> bool {
        let slots = self
            .attributes
            .iter_mut()
            .filter(|d| d.id == id)
            .map(|d| (&mut d.backfilled_from, &mut d.version))
            .chain(
                self.features
                    .iter_mut()
                    .filter(|d| d.id == id)
                    .map(|d| (&mut d.backfilled_from, &mut d.version)),
            )
            .chain(
                self.windows
                    .iter_mut()
                    .filter(|d| d.id == id)
                    .map(|d| (&mut d.backfilled_from, &mut d.version)),
            )
            .chain(
                self.vectors
                    .iter_mut()
                    .filter(|d| d.id == id)
                    .map(|d| (&mut d.backfilled_from, &mut d.version)),
            );
        let mut found = false;
        for (b, v) in slots {
            *b = from;
            *v = version;
            found = true;
        }
        found
    }

    /// Whether `id` belongs to a live window.
    pub fn window_by_id(&self, id: u32) -> Option<&WindowDef> {
        self.windows.iter().find(|d| d.id == id)
    }

    /// Whether `id` belongs to a live vector.
    pub fn vector_by_id(&self, id: u32) -> Option<&VectorDef> {
        self.vectors.iter().find(|d| d.id == id)
    }

    /// Encodes the catalog for the catalog column family.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![tags::CATALOG];
        // Serializing plain structs of strings and numbers cannot fail.
        if let Ok(json) = serde_json::to_vec(self) {
            out.extend_from_slice(&json);
        }
        out
    }

    /// Catalogs written before cluster segments were typed data kept their
    /// predicate as the text `nearest_cluster(group) = i`: read it as the
    /// cluster it names.
    fn upgrade(mut self) -> Catalog {
        for seg in &mut self.segments {
            if seg.cluster.is_some() {
                continue;
            }
            for g in &self.segment_groups {
                let index = (0..g.centroids.len())
                    .find(|i| seg.predicate == format!("nearest_cluster({}) = {i}", g.name));
                if let Some(index) = index {
                    seg.cluster = Some(ClusterMember {
                        group: g.name.clone(),
                        index,
                    });
                    seg.predicate.clear();
                }
            }
        }
        self
    }

    /// Decodes a stored catalog.
    pub fn decode(bytes: &[u8]) -> Result<Catalog, DecodeError> {
        match bytes.split_first() {
            Some((&tags::CATALOG, json)) => serde_json::from_slice(json)
                .map(Catalog::upgrade)
                .or_else(|e| derr(format!("catalog JSON does not decode: {e}"))),
            Some((t, _)) => derr(format!(
                "expected a catalog (tag {}), found tag {t}",
                tags::CATALOG
            )),
            None => derr("empty catalog value"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(name: &str, kind: FeatureKind, field: Option<&str>) -> Definition {
        Definition::Feature {
            name: name.into(),
            event_type: "purchase".into(),
            field: field.map(Into::into),
            kind,
        }
    }

    #[test]
    fn ids_are_never_reused_and_versions_grow() -> Result<()> {
        let mut c = Catalog::default();
        let a = c.define(feature("spend", FeatureKind::Sum, Some("amount")))?;
        assert_eq!(c.version, 1);
        c.drop_item(DefKind::Feature, "spend")?;
        assert_eq!(c.version, 2);
        let b = c.define(feature("spend", FeatureKind::Count, None))?;
        assert!(b > a);
        assert_eq!(c.feature("spend").map(|f| f.id), Some(b));
        let back = Catalog::decode(&c.encode()).map_err(|e| Error::invalid(e.to_string()))?;
        assert_eq!(back, c);
        Ok(())
    }

    #[test]
    fn rejects_bad_definitions_without_change() {
        let mut c = Catalog::default();
        let bad = [
            feature("1x", FeatureKind::Count, None),
            feature("id", FeatureKind::Count, None),
            feature("s", FeatureKind::Sum, None),
            feature("c", FeatureKind::Count, Some("amount")),
            feature("s", FeatureKind::Sum, Some("ts")),
            feature(
                "d",
                FeatureKind::DecayedSum { half_life_ms: 0 },
                Some("amount"),
            ),
            feature(
                "b",
                FeatureKind::Beta {
                    half_life_ms: 10,
                    prior_a: -1.0,
                    prior_b: 1.0,
                },
                Some("clicked"),
            ),
            Definition::Vector {
                name: "v".into(),
                event_type: "view".into(),
                dim: 0,
                rule: VectorRule::Ewma {
                    field: "vec".into(),
                    half_life_ms: 10,
                },
            },
            Definition::Window {
                name: "w".into(),
                event_type: "view".into(),
                field: None,
                bucket_ms: 3_600_000,
                retain_ms: 1,
            },
        ];
        for d in bad {
            assert!(c.define(d.clone()).is_err(), "{d:?} accepted");
        }
        assert_eq!(c, Catalog::default());
    }

    #[test]
    fn names_are_unique_across_kinds() -> Result<()> {
        let mut c = Catalog::default();
        c.define(feature("spend", FeatureKind::Count, None))?;
        let err = c.define(Definition::Segment {
            name: "spend".into(),
            predicate: "x > 1".into(),
        });
        assert!(matches!(
            err,
            Err(Error::AlreadyExists {
                kind: "feature",
                ..
            })
        ));
        Ok(())
    }

    fn vector(name: &str, dim: u32) -> Definition {
        Definition::Vector {
            name: name.into(),
            event_type: "view".into(),
            dim,
            rule: VectorRule::Ewma {
                field: "v".into(),
                half_life_ms: 1000,
            },
        }
    }

    fn group(name: &str, vector: &str, centroids: Vec<Vec<f32>>) -> Definition {
        Definition::SegmentGroup {
            name: name.into(),
            vector: vector.into(),
            centroids,
            definition: String::new(),
        }
    }

    #[test]
    fn segment_groups_make_and_guard_their_segments() -> Result<()> {
        let mut c = Catalog::default();
        c.define(vector("taste", 2))?;
        c.define(group("g", "taste", vec![vec![0.0, 1.0], vec![1.0, 0.0]]))?;
        let names: Vec<&str> = c.segments.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["g_0", "g_1"]);
        assert_eq!(
            c.segments[1].cluster,
            Some(ClusterMember {
                group: "g".into(),
                index: 1
            })
        );
        // A catalog from before typed cluster segments reads as typed.
        let mut old = c.clone();
        old.segments[1].cluster = None;
        old.segments[1].predicate = "nearest_cluster(g) = 1".into();
        let back = Catalog::decode(&old.encode()).map_err(|e| Error::invalid(e.to_string()))?;
        assert_eq!(back.segments[1], c.segments[1]);
        // Ids stay unique across the group and its segments.
        let mut ids: Vec<u32> = c.segments.iter().map(|s| s.id).collect();
        ids.push(c.segment_groups[0].id);
        ids.push(c.vectors[0].id);
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 4);
        assert!(c.next_id > ids[3]);
        // One segment, or the clustered vector, cannot go alone.
        let e = c
            .drop_item(DefKind::Segment, "g_1")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("DROP SEGMENTS g")));
        assert!(c.drop_item(DefKind::Vector, "taste").is_err());
        // Names are checked before anything is added.
        assert!(c.define(group("g", "taste", vec![vec![0.0, 0.0]])).is_err());
        c.define(Definition::Segment {
            name: "h_1".into(),
            predicate: "TRUE".into(),
        })?;
        let before = c.clone();
        assert!(
            c.define(group("h", "taste", vec![vec![0.0, 0.0]; 2]))
                .is_err()
        );
        assert!(c.define(group("k", "taste", vec![vec![0.0]; 2])).is_err());
        assert!(c.define(group("k", "nope", vec![vec![0.0, 0.0]])).is_err());
        assert_eq!(c, before);
        c.drop_item(DefKind::SegmentGroup, "g")?;
        assert_eq!(c.segments.len(), 1);
        c.drop_item(DefKind::Vector, "taste")?;
        Ok(())
    }

    #[test]
    fn the_catalog_is_capped() -> Result<()> {
        let mut c = Catalog::default();
        for i in 0..MAX_DEFINITIONS {
            c.define(Definition::Segment {
                name: format!("s{i}"),
                predicate: "TRUE".into(),
            })?;
        }
        let e = c.define(Definition::Segment {
            name: "one_more".into(),
            predicate: "TRUE".into(),
        });
        assert!(e.is_err());
        Ok(())
    }
}
