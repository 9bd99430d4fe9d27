//! Keeping each vector's IVF index ([`crate::vector::Ivf`]) in line with its
//! definition in the catalog, without holding up queries or writes.
//!
//! An index lives in its vector's [`crate::IndexTable`], so every change the
//! refresher applies to the table reaches it, under the same lock, and a
//! query that pins the table reads its own writes through the index too.
//!
//! Building (on `CREATE INDEX`, when a table first has as many vectors as
//! the index has lists, after the tables were rebuilt, or to retrain lists
//! that drifted apart) never holds the table for long:
//!
//! 1. Under a brief write lock the table starts noting changed rows.
//! 2. A sample is copied out under a brief read lock, and the centroids are
//!    trained on it holding no lock at all.
//! 3. Every row's nearest centroid is computed in pieces, each under a read
//!    lock of its own, which queries share.
//! 4. Under a brief write lock the rows changed since step 1 are assigned
//!    again, the lists are laid out and the new index replaces the old one,
//!    which queries used until then.
//!
//! Until an index is built, queries rank by the exact scan.

use std::sync::atomic::Ordering;

use super::Index;
use crate::catalog::IndexDef;
use crate::error::{Error, Result};
use crate::kv::Kv;
use crate::vector::{Ivf, IvfParams, Measurement, Metric};

/// Rows assigned per piece of a build: a few tens of milliseconds each.
const PIECE: usize = 16_384;
/// The seed of every index's training: equal data trains equal centroids.
const SEED: u64 = 0x1F5E_ED00;

/// The parameters of an index definition.
pub(crate) fn params(def: &IndexDef) -> IvfParams {
    IvfParams {
        lists: def.lists as usize,
        probes: def.probes as usize,
        rerank: def.rerank as usize,
    }
}

/// Whether index `def` needs a build over table `t`: it has none and the
/// table has a vector per list to train on, or it has other lists, or its
/// lists drifted apart ([`Ivf::wants_retraining`]).
fn due(t: &crate::vector::IndexTable, def: &IndexDef) -> bool {
    match &t.ivf {
        None => t.table.len() >= def.lists as usize,
        Some(ivf) => ivf.params().lists != def.lists as usize || ivf.wants_retraining(),
    }
}

impl<K: Kv> Index<K> {
    /// Builds (or rebuilds) index `def` from its vector's table, as the
    /// module describes. Returns `false` when the table has fewer vectors
    /// than the index has lists (queries keep scanning exactly until it has),
    /// or the index was dropped meanwhile.
    ///
    /// # Errors
    /// The store's failure, bringing the table up to date.
    pub(crate) fn build_ivf(&self, def: &IndexDef) -> Result<bool> {
        let _one = self.ivf_build.lock();
        // The table, built and current.
        drop(self.pin(super::Pins::VECTORS)?);
        let p = params(def);
        {
            let mut state = self.state.write();
            let Some(t) = state.tables.get_mut(&def.vector) else {
                return Ok(false);
            };
            // Another build may have done the work while this one waited.
            if !due(t, def) {
                return Ok(false);
            }
            t.track_changes();
        }
        let taken = {
            let state = self.state.read();
            state
                .tables
                .get(&def.vector)
                .map(|t| (Ivf::sample(&t.table, p.lists), t.table.dim()))
        };
        let untrack = || {
            if let Some(t) = self.state.write().tables.get_mut(&def.vector) {
                t.take_changes();
            }
        };
        let Some((Ok(sample), dim)) = taken else {
            untrack();
            return Ok(false);
        };
        let stop = || self.stop.load(Ordering::Relaxed);
        let centroids = match Ivf::train_on(&sample, dim, p.lists, SEED, &stop) {
            Ok(c) => c,
            Err(e) => {
                untrack();
                if stop() {
                    return Ok(false);
                }
                return Err(Error::Engine(format!(
                    "index '{}' could not be trained: {e}",
                    def.name
                )));
            }
        };
        drop(sample);
        let mut assignment: Vec<u32> = Vec::new();
        loop {
            if stop() {
                untrack();
                return Ok(false);
            }
            let state = self.state.read();
            let Some(t) = state.tables.get(&def.vector) else {
                return Ok(false);
            };
            let from = assignment.len();
            let to = (from + PIECE).min(t.table.rows());
            if from >= to {
                break;
            }
            assignment.extend(Ivf::assign(&centroids, &t.table, from..to));
        }
        let mut state = self.state.write();
        let Some(t) = state.tables.get_mut(&def.vector) else {
            return Ok(false);
        };
        let changed = t.take_changes();
        if self.bindings.read().catalog.index_on(def.vector) != Some(def) {
            return Ok(false);
        }
        for r in &changed {
            if let Some(a) = assignment.get_mut(r as usize) {
                // Assigned again from the row's current vector.
                *a = u32::MAX;
            }
        }
        t.ivf = Some(Ivf::from_assignment(p, centroids, &t.table, &assignment));
        Ok(true)
    }

    /// Brings every index in line with the catalog: drops those no longer
    /// defined, builds those missing (once their table has enough vectors)
    /// or whose lists drifted apart, and takes new search settings. Run by
    /// the refresher.
    pub(crate) fn maintain_ivf(&self) {
        let bindings = self.bindings();
        let mut drop_ids = Vec::new();
        let mut settings = Vec::new();
        let mut builds = Vec::new();
        {
            let state = self.state.read();
            for (id, t) in &state.tables {
                match (bindings.catalog.index_on(*id), &t.ivf) {
                    (None, Some(_)) => drop_ids.push(*id),
                    (Some(d), _) if due(t, d) => builds.push(d.clone()),
                    (Some(d), Some(ivf)) if ivf.params() != params(d) => settings.push(d.clone()),
                    _ => {}
                }
            }
        }
        if !drop_ids.is_empty() || !settings.is_empty() {
            let mut state = self.state.write();
            for id in drop_ids {
                if let Some(t) = state.tables.get_mut(&id) {
                    t.ivf = None;
                }
            }
            for d in settings {
                if let Some(ivf) = state.tables.get_mut(&d.vector).and_then(|t| t.ivf.as_mut()) {
                    ivf.set_search(d.probes as usize, d.rerank as usize);
                }
            }
        }
        for def in builds {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = self.build_ivf(&def) {
                log::warn!(
                    "index '{}' was not built: {e}; the next refresh retries",
                    def.name
                );
            }
        }
    }

    /// Drops the index of vector definition `vector`'s table.
    pub(crate) fn drop_ivf(&self, vector: u32) {
        let _one = self.ivf_build.lock();
        if let Some(t) = self.state.write().tables.get_mut(&vector) {
            t.ivf = None;
        }
    }

    /// Measures index `def`'s recall@`k` against the exact scan with up to
    /// `queries` of its rows as queries, keeps the measurement for
    /// `DESCRIBE`, and returns it. `None` when the index is not built; an
    /// error when `deadline` passed first.
    ///
    /// # Errors
    /// The store's failure, bringing the table up to date.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn measure_ivf(
        &self,
        def: &IndexDef,
        metric: Metric,
        k: usize,
        queries: usize,
        probes: Option<usize>,
        now_ms: i64,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<Measurement>> {
        let pinned = self.pin(super::Pins::VECTORS)?;
        let stop = || deadline.is_some_and(|d| std::time::Instant::now() >= d);
        let built = pinned.vectors.as_ref().and_then(|s| {
            let t = s.tables.get(&def.vector)?;
            let ivf = t.ivf.as_ref()?;
            Some(ivf.measure(&t.table, metric, k, queries, probes, now_ms, &stop))
        });
        drop(pinned);
        let m = match built {
            None => None,
            Some(None) => {
                return Err(Error::InvalidArgument(format!(
                    "ANALYZE INDEX {} stopped at the statement's deadline; ask for fewer queries",
                    def.name
                )));
            }
            Some(Some(m)) => Some(m),
        };
        if let Some(m) = &m
            && let Some(ivf) = self
                .state
                .write()
                .tables
                .get_mut(&def.vector)
                .and_then(|t| t.ivf.as_mut())
        {
            ivf.set_measured(Some(m.clone()));
        }
        Ok(m)
    }
}
