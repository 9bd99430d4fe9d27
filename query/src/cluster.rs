//! `CLUSTER` and `CREATE SEGMENTS … FROM CLUSTER`: k-means++ over the vectors
//! of the users a predicate selects, read from the vector index.

use std::sync::Arc;

use profiledb_storage::vector::kmeans;
use profiledb_storage::vector::kmeans::STOPPED;
use profiledb_storage::{Definition, Pins, Value};

use crate::ast::Cluster;
use crate::bind::{Binder, unknown};
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
    let def = catalog.vector(&c.vector.value).ok_or_else(|| {
        unknown(
            "vector",
            &c.vector,
            catalog.vectors.iter().map(|v| v.name.as_str()),
        )
    })?;
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
