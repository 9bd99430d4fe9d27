//! The catalog compiled for ingest: for each event type, the definitions it feeds.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Catalog, FeatureDef, VectorDef, WindowDef};
use crate::value::AttrType;

/// An attribute set from an event field of the same name.
#[derive(Debug, Clone)]
pub struct AttrBinding {
    /// Definition id.
    pub id: u32,
    /// Attribute (and field) name.
    pub name: String,
    /// Type.
    pub ty: AttrType,
}

/// Everything one event type feeds.
#[derive(Debug, Clone, Default)]
pub struct EventBindings {
    /// Attributes set from the event's fields.
    pub attributes: Vec<AttrBinding>,
    /// Features.
    pub features: Vec<FeatureDef>,
    /// Windows.
    pub windows: Vec<WindowDef>,
    /// Vectors.
    pub vectors: Vec<VectorDef>,
    /// The type's declaration, when it is declared.
    pub declared: Option<super::EventDef>,
}

/// A catalog snapshot with its per-event-type index. Immutable; the engine swaps
/// in a new one on every schema change.
#[derive(Debug, Clone, Default)]
pub struct Bindings {
    /// The catalog it was built from.
    pub catalog: Catalog,
    by_event: HashMap<String, EventBindings>,
    live: HashSet<u32>,
    /// The bindings of past versions of this catalog ([`Bindings::at_version`]),
    /// made on first use and kept while this catalog is current.
    past: Arc<Mutex<Vec<Arc<Bindings>>>>,
}

/// The most past versions [`Bindings::at_version`] keeps: beyond, one is made
/// for each call.
const PAST_KEPT: usize = 64;

impl Bindings {
    /// Indexes `catalog`.
    pub fn new(catalog: Catalog) -> Bindings {
        let mut by_event: HashMap<String, EventBindings> = HashMap::new();
        let mut live = HashSet::new();
        live.insert(super::META_ID);
        for a in &catalog.attributes {
            live.insert(a.id);
            if let Some(e) = &a.event_type {
                by_event
                    .entry(e.clone())
                    .or_default()
                    .attributes
                    .push(AttrBinding {
                        id: a.id,
                        name: a.name.clone(),
                        ty: a.ty,
                    });
            }
        }
        for f in &catalog.features {
            live.insert(f.id);
            for e in f.event_types() {
                by_event
                    .entry(e.clone())
                    .or_default()
                    .features
                    .push(f.clone());
            }
        }
        for w in &catalog.windows {
            live.insert(w.id);
            for e in w.event_types() {
                by_event
                    .entry(e.clone())
                    .or_default()
                    .windows
                    .push(w.clone());
            }
        }
        for v in &catalog.vectors {
            live.insert(v.id);
            for e in v.event_types() {
                by_event
                    .entry(e.clone())
                    .or_default()
                    .vectors
                    .push(v.clone());
            }
        }
        for s in &catalog.segments {
            live.insert(s.id);
        }
        // A declared type is accepted with nothing bound to it.
        for e in &catalog.events {
            by_event.entry(e.name.clone()).or_default().declared = Some(e.clone());
        }
        // Not bound to anything yet, but their state is not garbage.
        live.extend(catalog.building.iter().copied());
        Bindings {
            catalog,
            by_event,
            live,
            past: Arc::default(),
        }
    }

    /// The bindings writes accepted at catalog `version` were planned with
    /// ([`Catalog::as_of_version`]); `None` for this catalog's version or a
    /// later one, which plan as this one does. Made once per version while
    /// this catalog is current: replays of the event history and a cluster
    /// node's reading of a partition from a past point ask for the same few
    /// versions again and again.
    pub fn at_version(&self, version: u64) -> Option<Arc<Bindings>> {
        if version >= self.catalog.version {
            return None;
        }
        let mut past = self.past.lock();
        if let Some(b) = past.iter().find(|b| b.catalog.version == version) {
            return Some(Arc::clone(b));
        }
        let b = Arc::new(Bindings::new(self.catalog.as_of_version(version)));
        if past.len() < PAST_KEPT {
            past.push(Arc::clone(&b));
        }
        Some(b)
    }

    /// What `event_type` feeds, if anything is bound to it.
    pub fn event(&self, event_type: &str) -> Option<&EventBindings> {
        self.by_event.get(event_type)
    }

    /// Whether `id` is a live definition (or the user bookkeeping cell).
    pub fn is_live(&self, id: u32) -> bool {
        self.live.contains(&id)
    }

    /// Whether `id` belongs to a dropped definition. Ids not yet handed out are not
    /// dead: a definition created by another handle may already use them.
    pub fn is_dead(&self, id: u32) -> bool {
        id < self.catalog.next_id && !self.live.contains(&id)
    }
}
