//! `CLUSTER` and `CREATE SEGMENTS … FROM CLUSTER`: k-means++ over the vectors
//! of the users a predicate selects, read from the vector index.

use std::sync::Arc;

use profiledb_storage::vector::kernels::l2sq;
use profiledb_storage::vector::kmeans;
use profiledb_storage::vector::kmeans::STOPPED;
use profiledb_storage::{Definition, Pins, Value};

use crate::ast::Cluster;
use crate::bind::{Binder, unknown};
use crate::distributed::Peers;
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::output::{Column, Rows, Type};
use crate::similarity::{keeps, matching_ids};
use crate::source::DataSource;

/// Lloyd iterations at most; k-means usually settles long before.
const MAX_ITERATIONS: usize = 100;

/// A clustering's result: the vector clustered, and one (size, centroid) per cluster.
pub(crate) struct Clusters {
    pub vector: String,
    pub clusters: Vec<(usize, Vec<f32>)>,
}

/// Runs the clustering `c` describes, within `limits`' deadline.
pub(crate) fn cluster(source: &dyn DataSource, c: &Cluster, limits: &Limits) -> Result<Clusters> {
    // One view: the members and their vectors are one moment's.
    let view = source.view(Pins {
        vectors: true,
        rows: c.selection.is_some(),
    })?;
    let bindings = Arc::clone(view.bindings());
    let catalog = &bindings.catalog;
    let def = clustered_vector(catalog, c)?;
    let now = source.now();
    let mut binder = Binder::new(catalog, now);
    let filter = match &c.selection {
        Some(w) => Some(binder.predicate(w, "WHERE")?),
        None => None,
    };
    let needs = binder.needs;
    let bucket_ms: Vec<i64> = needs.windows.iter().map(|w| w.bucket_ms).collect();
    let allowed = match &filter {
        Some(f) if !f.reads_only_attributes() => Some(matching_ids(
            view.as_ref(),
            &needs,
            &bucket_ms,
            now,
            f,
            limits,
        )?),
        _ => None,
    };
    let k = usize::try_from(c.k).unwrap_or(usize::MAX);
    let mut result = Err(String::new());
    if let Some(t) = view.vectors(def.id) {
        let points: Vec<&[f32]> = t
            .table
            .iter()
            .filter(|(row, id, _)| match (&allowed, &filter) {
                (Some(ids), _) => ids.contains(*id),
                (None, Some(f)) => keeps(f, t.users.get(*row).and_then(Option::as_deref), now),
                (None, None) => true,
            })
            .map(|(_, _, v)| v)
            .collect();
        result = kmeans(
            &points,
            t.table.dim(),
            k,
            c.seed.unwrap_or(0),
            MAX_ITERATIONS,
            &|| limits.expired(),
        );
    }
    if result.as_ref().is_err_and(|m| m == STOPPED) {
        limits.check()?;
    }
    let clustering = result.map_err(|m| {
        Error::invalid(
            format!("cannot cluster '{}': {m}", def.name),
            Some(c.vector.span()),
        )
    })?;
    Ok(Clusters {
        vector: def.name.clone(),
        clusters: clustering
            .sizes
            .into_iter()
            .zip(clustering.centroids)
            .collect(),
    })
}

/// Most users a clustering across machines is seeded from.
const SAMPLE_MAX: usize = 131_072;

/// Most centroid elements (clusters × dimension) a clustering across
/// machines sends them in one step: each step's query carries them as text.
const MAX_CENTROID_ELEMENTS: usize = 250_000;

/// Runs the clustering `c` describes over the users of `source` and of
/// every peer: k-means++ and Lloyd iterations on a sample (the users first
/// by `hash(id, seed)`, so the same whichever machine runs it), then Lloyd
/// iterations over all the users, each a query whose parts answer their
/// users' sums per nearest centroid (`avg()` of vectors merges sums), until
/// no centroid moves. A cluster that empties is re-seeded with the sampled
/// vector farthest from its nearest centroid.
pub(crate) fn cluster_across(
    source: &dyn DataSource,
    peers: &dyn Peers,
    c: &Cluster,
    limits: &Limits,
) -> Result<Clusters> {
    let bindings = source.bindings();
    let catalog = &bindings.catalog;
    let def = clustered_vector(catalog, c)?;
    let dim = def.dim as usize;
    let k = usize::try_from(c.k).unwrap_or(usize::MAX);
    let failed = |m: String| {
        Error::invalid(
            format!("cannot cluster '{}': {m}", def.name),
            Some(c.vector.span()),
        )
    };
    if k.saturating_mul(dim) > MAX_CENTROID_ELEMENTS {
        return Err(failed(format!(
            "across a cluster's nodes, clusters × dimension is at most {MAX_CENTROID_ELEMENTS} ({k} × {dim} asked)"
        )));
    }
    // Steps read as many rows as they need: the row cap is the answer's.
    let limits = Limits {
        deadline: limits.deadline,
        max_rows: None,
    };
    let seed = c.seed.unwrap_or(0);
    // `hash()` takes an integer literal: the seed's low 63 bits (so that no
    // seed writes as a literal beyond i64).
    let hash_seed = seed & (i64::MAX as u64);
    let vector = c.vector.to_string();
    let filter = match &c.selection {
        Some(w) => format!("({w}) AND {vector} IS NOT NULL"),
        None => format!("{vector} IS NOT NULL"),
    };
    let sample_size = k.saturating_mul(64).clamp(16_384, SAMPLE_MAX).max(k);
    let sample: Vec<Vec<f32>> = crate::distributed::query_text(
        source,
        peers,
        &format!(
            "SELECT {vector} FROM users WHERE {filter} ORDER BY hash(id, {hash_seed}) LIMIT {sample_size}"
        ),
        &limits,
    )?
    .rows
    .into_iter()
    .filter_map(|r| match r.into_iter().next() {
        Some(Value::Vector(v)) if v.len() == dim => Some(v),
        _ => None,
    })
    .collect();
    let points: Vec<&[f32]> = sample.iter().map(Vec::as_slice).collect();
    let seeded = kmeans(&points, dim, k, seed, MAX_ITERATIONS, &|| limits.expired());
    if seeded.as_ref().is_err_and(|m| m == STOPPED) {
        limits.check()?;
    }
    let mut centroids = seeded.map_err(failed)?.centroids;
    let mut iterations = 0;
    loop {
        let literal: Vec<String> = centroids
            .iter()
            .map(|c| {
                let xs: Vec<String> = c.iter().map(|x| format!("{:?}", f64::from(*x))).collect();
                format!("[{}]", xs.join(", "))
            })
            .collect();
        let step = crate::distributed::query_text(
            source,
            peers,
            &format!(
                "SELECT nearest_centroid({vector}, [{}]) AS c, count(*), avg({vector}) FROM users WHERE {filter} GROUP BY c",
                literal.join(", ")
            ),
            &limits,
        )?;
        let mut sizes = vec![0usize; k];
        let mut next: Vec<Option<Vec<f32>>> = vec![None; k];
        for row in &step.rows {
            if let [Value::Int(j), Value::Int(n), Value::Vector(mean)] = row.as_slice()
                && let Ok(j) = usize::try_from(*j)
                && j < k
                && mean.len() == dim
            {
                sizes[j] = usize::try_from(*n).unwrap_or(0);
                next[j] = Some(mean.clone());
            }
        }
        let next = reseed(next, &centroids, &sample);
        if next == centroids || iterations >= MAX_ITERATIONS {
            return Ok(Clusters {
                vector: def.name.clone(),
                clusters: sizes.into_iter().zip(centroids).collect(),
            });
        }
        limits.check()?;
        centroids = next;
        iterations += 1;
    }
}

/// `next` with each cluster that emptied (`None`) given a sampled vector,
/// the farthest from its nearest centroid first.
fn reseed(
    next: Vec<Option<Vec<f32>>>,
    centroids: &[Vec<f32>],
    sample: &[Vec<f32>],
) -> Vec<Vec<f32>> {
    let mut far: Vec<(f64, usize)> = Vec::new();
    if next.iter().any(Option::is_none) {
        far = sample
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let d = centroids
                    .iter()
                    .map(|c| l2sq(p, c))
                    .fold(f64::INFINITY, f64::min);
                (d, i)
            })
            .collect();
        // Farthest first; equal distances in sample order.
        far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    }
    let mut far = far.into_iter();
    next.into_iter()
        .zip(centroids)
        .map(|(n, old)| {
            n.unwrap_or_else(|| {
                far.next()
                    .map_or_else(|| old.clone(), |(_, i)| sample[i].clone())
            })
        })
        .collect()
}

/// The vector `c` clusters, or an error naming it with the closest name
/// the catalog has.
pub(crate) fn clustered_vector<'c>(
    catalog: &'c profiledb_storage::catalog::Catalog,
    c: &Cluster,
) -> Result<&'c profiledb_storage::catalog::VectorDef> {
    catalog.vector(&c.vector.value).ok_or_else(|| {
        unknown(
            "vector",
            &c.vector,
            catalog.vectors.iter().map(|v| v.name.as_str()),
        )
    })
}

/// The rows of `CLUSTER`: cluster, size and centroid.
pub(crate) fn rows(c: Clusters) -> Rows {
    Rows {
        columns: vec![
            Column {
                name: "cluster".into(),
                ty: Type::Int,
            },
            Column {
                name: "size".into(),
                ty: Type::Int,
            },
            Column {
                name: "centroid".into(),
                ty: Type::Vector,
            },
        ],
        rows: c
            .clusters
            .into_iter()
            .enumerate()
            .map(|(i, (size, centroid))| {
                vec![
                    Value::Int(i64::try_from(i).unwrap_or(i64::MAX)),
                    Value::Int(i64::try_from(size).unwrap_or(i64::MAX)),
                    Value::Vector(centroid),
                ]
            })
            .collect(),
    }
}

/// The definition `CREATE SEGMENTS name FROM <c>` makes.
pub(crate) fn segment_group(name: &str, c: Clusters, definition: String) -> Definition {
    Definition::SegmentGroup {
        name: name.to_owned(),
        vector: c.vector,
        centroids: c
            .clusters
            .into_iter()
            .map(|(_, centroid)| centroid)
            .collect(),
        definition,
    }
}
