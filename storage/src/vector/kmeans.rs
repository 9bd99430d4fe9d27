//! k-means with k-means++ seeding, deterministic for a seed.
//!
//! Determinism: the random numbers come from SplitMix64 seeded by the caller,
//! and the parallel assignment step sums each chunk of points in order and
//! combines the chunks in order, so thread timing never changes a result.

use rayon::prelude::*;

use super::kernels::l2sq;

/// Points assigned per parallel task.
const CHUNK: usize = 4096;

/// The result of a clustering.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// One centroid per cluster.
    pub centroids: Vec<Vec<f32>>,
    /// How many points each cluster holds.
    pub sizes: Vec<usize>,
    /// The cluster of each point, in input order.
    pub assignment: Vec<usize>,
    /// Lloyd iterations run.
    pub iterations: usize,
}

/// One chunk's share of an assignment step: each point's cluster, each
/// cluster's coordinate sums and size, and the chunk's worst-fitting point.
struct ChunkSums {
    assigned: Vec<usize>,
    sums: Vec<Vec<f64>>,
    counts: Vec<usize>,
    farthest: (usize, f64),
}

/// SplitMix64: a small, fast, well-distributed generator.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n, for n > 0.
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n - 1)
    }
}

/// The index and squared distance of the centroid nearest to `p`; ties go to
/// the lower index.
fn nearest(p: &[f32], centroids: &[Vec<f32>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = l2sq(p, c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// k-means++ seeding: the first centroid uniformly, each next one with
/// probability proportional to the squared distance to the nearest chosen one.
fn seed_centroids(
    points: &[&[f32]],
    k: usize,
    rng: &mut SplitMix64,
    stop: &Stop<'_>,
) -> Result<Vec<Vec<f32>>, String> {
    let mut centroids = vec![points[rng.below(points.len())].to_vec()];
    let mut d2: Vec<f64> = points.iter().map(|p| l2sq(p, &centroids[0])).collect();
    while centroids.len() < k {
        if stop() {
            return Err(STOPPED.into());
        }
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 && total.is_finite() {
            let mut target = rng.unit() * total;
            let mut pick = points.len() - 1;
            for (i, d) in d2.iter().enumerate() {
                if target < *d {
                    pick = i;
                    break;
                }
                target -= d;
            }
            pick
        } else {
            // Every point sits on a centroid already: any point will do.
            rng.below(points.len())
        };
        let c = points[pick].to_vec();
        for (d, p) in d2.iter_mut().zip(points) {
            *d = d.min(l2sq(p, &c));
        }
        centroids.push(c);
    }
    Ok(centroids)
}

/// Asked between steps (each seeding pass, each chunk of each iteration):
/// `true` stops the clustering with [`STOPPED`].
pub type Stop<'a> = dyn Fn() -> bool + Sync + 'a;

/// The error of a clustering that its [`Stop`] stopped.
pub const STOPPED: &str = "stopped before it finished";

/// Clusters `points` (all of dimension `dim`) into `k` clusters, running Lloyd
/// iterations from a k-means++ seeding until no point changes cluster or
/// `max_iterations` pass. A cluster that empties is re-seeded with the point
/// farthest from its centroid.
///
/// `stop` is asked between steps, so that a caller's deadline can end a long run.
///
/// # Errors
/// A message when `k` is 0, there are fewer points than `k`, or a point has the
/// wrong dimension; [`STOPPED`] when `stop` said so.
pub fn kmeans(
    points: &[&[f32]],
    dim: usize,
    k: usize,
    seed: u64,
    max_iterations: usize,
    stop: &Stop<'_>,
) -> Result<Clustering, String> {
    if k == 0 {
        return Err("the number of clusters must be at least 1".into());
    }
    if points.len() < k {
        return Err(format!(
            "cannot make {k} clusters of {} vector{}",
            points.len(),
            if points.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(p) = points.iter().find(|p| p.len() != dim) {
        return Err(format!(
            "a vector has dimension {}, expected {dim}",
            p.len()
        ));
    }
    let mut rng = SplitMix64(seed);
    let mut centroids = seed_centroids(points, k, &mut rng, stop)?;
    let mut assignment = vec![usize::MAX; points.len()];
    let mut iterations = 0;
    loop {
        // Assign, and sum each cluster's points, chunk by chunk in order.
        let chunks: Vec<ChunkSums> = points
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(c, chunk)| {
                if stop() {
                    return None;
                }
                let mut assigned = Vec::with_capacity(chunk.len());
                let mut sums = vec![vec![0f64; dim]; k];
                let mut counts = vec![0usize; k];
                let mut farthest = (0usize, -1.0f64);
                for (i, p) in chunk.iter().enumerate() {
                    let (j, d) = nearest(p, &centroids);
                    assigned.push(j);
                    counts[j] += 1;
                    for (s, x) in sums[j].iter_mut().zip(p.iter()) {
                        *s += f64::from(*x);
                    }
                    if d > farthest.1 {
                        farthest = (c * CHUNK + i, d);
                    }
                }
                Some(ChunkSums {
                    assigned,
                    sums,
                    counts,
                    farthest,
                })
            })
            .collect::<Option<_>>()
            .ok_or_else(|| STOPPED.to_owned())?;
        let mut sums = vec![vec![0f64; dim]; k];
        let mut sizes = vec![0usize; k];
        let mut changed = false;
        let mut farthest = (0usize, -1.0f64);
        let mut offset = 0;
        for ChunkSums {
            assigned,
            sums: s,
            counts: n,
            farthest: far,
        } in chunks
        {
            for (i, j) in assigned.iter().enumerate() {
                if assignment[offset + i] != *j {
                    assignment[offset + i] = *j;
                    changed = true;
                }
            }
            offset += assigned.len();
            for j in 0..k {
                sizes[j] += n[j];
                for (a, b) in sums[j].iter_mut().zip(&s[j]) {
                    *a += b;
                }
            }
            if far.1 > farthest.1 {
                farthest = far;
            }
        }
        if !changed || iterations >= max_iterations {
            return Ok(Clustering {
                centroids,
                sizes,
                assignment,
                iterations,
            });
        }
        iterations += 1;
        for j in 0..k {
            if sizes[j] == 0 {
                // Re-seed an empty cluster where the fit is worst.
                centroids[j] = points[farthest.0].to_vec();
            } else {
                centroids[j] = sums[j]
                    .iter()
                    .map(|s| (s / sizes[j] as f64) as f32)
                    .collect();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points around `centers`, `per` each, spread by at most `spread`.
    fn planted(centers: &[[f32; 3]], per: usize, spread: f32, seed: u64) -> Vec<Vec<f32>> {
        let mut rng = SplitMix64(seed);
        let mut out = Vec::new();
        for _ in 0..per {
            for c in centers {
                out.push(
                    c.iter()
                        .map(|x| x + spread * (2.0 * rng.unit() as f32 - 1.0))
                        .collect(),
                );
            }
        }
        out
    }

    #[test]
    fn recovers_planted_clusters() -> Result<(), String> {
        let centers = [
            [10.0, 0.0, 0.0],
            [0.0, 10.0, 0.0],
            [0.0, 0.0, 10.0],
            [-10.0, -10.0, -10.0],
        ];
        let pts = planted(&centers, 2500, 1.0, 42);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let c = kmeans(&refs, 3, 4, 7, 100, &|| false)?;
        assert_eq!(c.sizes, vec![2500; 4]);
        // Each planted center has exactly one centroid within the spread.
        for center in &centers {
            let close = c
                .centroids
                .iter()
                .filter(|m| l2sq(m, center).sqrt() < 0.2)
                .count();
            assert_eq!(close, 1, "{center:?} in {:?}", c.centroids);
        }
        // Points planted around the same center share a cluster.
        for (i, a) in c.assignment.iter().enumerate() {
            assert_eq!(*a, c.assignment[i % 4]);
        }
        Ok(())
    }

    #[test]
    fn deterministic_for_a_seed() -> Result<(), String> {
        let pts = planted(&[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], 20_000, 2.0, 1);
        let refs: Vec<&[f32]> = pts.iter().map(Vec::as_slice).collect();
        let a = kmeans(&refs, 3, 5, 9, 50, &|| false)?;
        let b = kmeans(&refs, 3, 5, 9, 50, &|| false)?;
        assert_eq!(a, b);
        let other = kmeans(&refs, 3, 5, 10, 50, &|| false)?;
        assert_ne!(a.centroids, other.centroids);
        Ok(())
    }

    #[test]
    fn degenerate_inputs() -> Result<(), String> {
        let same = vec![vec![1.0f32, 1.0]; 5];
        let refs: Vec<&[f32]> = same.iter().map(Vec::as_slice).collect();
        let c = kmeans(&refs, 2, 3, 1, 10, &|| false)?;
        assert_eq!(c.sizes.iter().sum::<usize>(), 5);
        assert!(kmeans(&refs, 2, 6, 1, 10, &|| false).is_err());
        assert!(kmeans(&refs, 2, 0, 1, 10, &|| false).is_err());
        assert!(kmeans(&refs, 3, 2, 1, 10, &|| false).is_err());
        Ok(())
    }

    #[test]
    fn stop_ends_seeding_and_iterating() -> Result<(), String> {
        let points = planted(&[[0.0, 0.0, 0.0], [9.0, 9.0, 9.0]], 5000, 1.0, 3);
        let refs: Vec<&[f32]> = points.iter().map(Vec::as_slice).collect();
        assert_eq!(
            kmeans(&refs, 3, 2, 1, 10, &|| true).err().as_deref(),
            Some(STOPPED)
        );
        // Asked once per seeding step (one, for k = 2) and then per chunk: stopping
        // at the second question stops the first iteration.
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let stop = || asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1;
        assert_eq!(
            kmeans(&refs, 3, 2, 1, 10, &stop).err().as_deref(),
            Some(STOPPED)
        );
        Ok(())
    }
}
