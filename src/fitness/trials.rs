//! The effective number of trials: a search's trials are correlated variants of a few ideas,
//! and the deflated Sharpe ratio should count the ideas. Following López de Prado (2019, "A
//! data science solution to the multiple-testing crisis in financial research"), the trials'
//! return series are clustered by correlation with the base step of ONC (optimal number of
//! clusters):
//!
//! * each series is standardized (mean 0, unit length), so that the squared Euclidean distance
//!   of two series is `2·(1 − ρ)`: k-means on the standardized series clusters by correlation;
//! * for every k from 2 to `max_k`, k-means (k-means++ seeding, `restarts` seeded restarts) gives
//!   a clustering; its quality is the mean of the silhouette scores over their standard deviation
//!   (silhouettes on the correlation distance `√((1 − ρ)/2)`), and the best quality wins;
//! * one cluster (a single idea) when the mean pairwise correlation is above
//!   [`ONE_CLUSTER_RHO`].
//!
//! The paper's recursive refinement of poor clusters is left out. The effective number of
//! trials is the number of clusters; the variance of the trials' Sharpe ratios is taken across
//! the clusters' representatives (each cluster's inverse-variance-weighted portfolio of its
//! members). Everything is deterministic for a given `seed`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

/// Most clusters tried by [`effective_trials`].
pub const MAX_K: usize = 20;

/// Seeded k-means restarts per k in [`effective_trials`].
pub const RESTARTS: usize = 2;

/// Above this mean pairwise correlation every trial is one idea (k = 1).
pub const ONE_CLUSTER_RHO: f64 = 0.9;

/// Standardized copies of `series`: mean 0, Euclidean length 1 (a constant series stays 0).
fn standardize(series: &[Vec<f64>]) -> Vec<Vec<f64>> {
    series
        .iter()
        .map(|s| {
            let n = s.len().max(1) as f64;
            let m = s.iter().sum::<f64>() / n;
            let norm = s.iter().map(|x| (x - m) * (x - m)).sum::<f64>().sqrt();
            s.iter()
                .map(|x| if norm > 0.0 { (x - m) / norm } else { 0.0 })
                .collect()
        })
        .collect()
}

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means on `x` (rows), k-means++ seeding from `rng`, at most 50 iterations. Returns the
/// labels.
fn kmeans(x: &[Vec<f64>], k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let n = x.len();
    let dim = x[0].len();
    let mut centers: Vec<Vec<f64>> = vec![x[rng.gen_range(0..n)].clone()];
    let mut d: Vec<f64> = x.iter().map(|p| dist2(p, &centers[0])).collect();
    while centers.len() < k {
        let total: f64 = d.iter().sum();
        let pick = if total > 0.0 {
            let mut u = rng.gen::<f64>() * total;
            let mut i = 0;
            while i + 1 < n && u >= d[i] {
                u -= d[i];
                i += 1;
            }
            i
        } else {
            rng.gen_range(0..n)
        };
        centers.push(x[pick].clone());
        for (i, p) in x.iter().enumerate() {
            d[i] = d[i].min(dist2(p, &centers[centers.len() - 1]));
        }
    }
    let mut labels = vec![usize::MAX; n];
    for _ in 0..50 {
        let nearest: Vec<usize> = x
            .par_iter()
            .map(|p| {
                let mut best = (0, f64::INFINITY);
                for (c, center) in centers.iter().enumerate() {
                    let d = dist2(p, center);
                    if d < best.1 {
                        best = (c, d);
                    }
                }
                best.0
            })
            .collect();
        let changed = nearest != labels;
        labels = nearest;
        if !changed {
            break;
        }
        let mut sums = vec![vec![0.0; dim]; k];
        let mut counts = vec![0usize; k];
        for (i, p) in x.iter().enumerate() {
            counts[labels[i]] += 1;
            for (s, v) in sums[labels[i]].iter_mut().zip(p) {
                *s += v;
            }
        }
        for c in 0..k {
            if counts[c] > 0 {
                centers[c] = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            }
        }
    }
    labels
}

/// Silhouette quality `mean(s) / std(s)` of `labels` under the distance matrix `dist`;
/// `None` with fewer than two non-empty clusters.
fn quality(dist: &[Vec<f64>], labels: &[usize], k: usize) -> Option<f64> {
    let n = labels.len();
    let sizes: Vec<usize> = (0..k)
        .map(|c| labels.iter().filter(|&&l| l == c).count())
        .collect();
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return None;
    }
    let s: Vec<f64> = (0..n)
        .map(|i| {
            let mut sum = vec![0.0; k];
            for j in 0..n {
                if j != i {
                    sum[labels[j]] += dist[i][j];
                }
            }
            let own = labels[i];
            if sizes[own] <= 1 {
                return 0.0;
            }
            let a = sum[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| sum[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let m = a.max(b);
            if m > 0.0 {
                (b - a) / m
            } else {
                0.0
            }
        })
        .collect();
    let mean = s.iter().sum::<f64>() / n as f64;
    let var = s.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    Some(if var > 0.0 {
        mean / var.sqrt()
    } else {
        f64::MAX
    })
}

/// Cluster labels of `series` by correlation (see the module documentation); labels are
/// `0..k`, numbered in order of first appearance.
pub fn clusters(series: &[Vec<f64>], max_k: usize, restarts: usize, seed: u64) -> Vec<usize> {
    let n = series.len();
    if n < 3 {
        return (0..n).collect();
    }
    let x = standardize(series);
    // Correlation of standardized series is their dot product.
    let rho = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let mut dist = vec![vec![0.0; n]; n];
    let mut mean_rho = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let r = rho(&x[i], &x[j]).clamp(-1.0, 1.0);
            mean_rho += r;
            let d = ((1.0 - r) / 2.0).sqrt();
            dist[i][j] = d;
            dist[j][i] = d;
        }
    }
    mean_rho /= (n * (n - 1) / 2) as f64;
    if mean_rho > ONE_CLUSTER_RHO {
        return vec![0; n];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<(f64, Vec<usize>)> = None;
    for k in 2..=max_k.min(n - 1) {
        for _ in 0..restarts.max(1) {
            let labels = kmeans(&x, k, &mut rng);
            if let Some(q) = quality(&dist, &labels, k) {
                if best.as_ref().is_none_or(|(b, _)| q > *b) {
                    best = Some((q, labels));
                }
            }
        }
    }
    let labels = best.map_or_else(|| vec![0; n], |(_, l)| l);
    // Renumber in order of first appearance.
    let mut map = std::collections::BTreeMap::new();
    labels
        .iter()
        .map(|l| {
            let next = map.len();
            *map.entry(*l).or_insert(next)
        })
        .collect()
}

/// The trials as the deflated Sharpe counts them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EffectiveTrials {
    /// Trials whose return series were clustered.
    pub clustered: usize,
    /// Clusters found: the effective number of trials.
    pub clusters: usize,
    /// Variance (ddof 1) of the clusters' representatives' annualized Sharpe ratios; `None`
    /// with fewer than two clusters.
    pub sharpe_var: Option<f64>,
}

/// The effective trials of `series` (per-period returns of equal length), with
/// `bars_per_year` periods a year.
pub fn effective_trials(series: &[Vec<f64>], bars_per_year: f64, seed: u64) -> EffectiveTrials {
    let max_k = (series.len() / 2).clamp(2, MAX_K);
    let labels = clusters(series, max_k, RESTARTS, seed);
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let t = series.first().map_or(0, Vec::len);
    let sharpes: Vec<f64> = (0..k)
        .map(|c| {
            let members: Vec<&Vec<f64>> = series
                .iter()
                .zip(&labels)
                .filter(|(_, l)| **l == c)
                .map(|(s, _)| s)
                .collect();
            // Inverse-variance weights.
            let w: Vec<f64> = members
                .iter()
                .map(|s| {
                    let v = super::Moments::of(s).std().powi(2);
                    if v > 0.0 {
                        1.0 / v
                    } else {
                        0.0
                    }
                })
                .collect();
            let total: f64 = w.iter().sum();
            let rep: Vec<f64> = (0..t)
                .map(|i| {
                    members
                        .iter()
                        .zip(&w)
                        .map(|(s, wi)| {
                            if total > 0.0 {
                                s[i] * wi / total
                            } else {
                                s[i] / members.len() as f64
                            }
                        })
                        .sum()
                })
                .collect();
            super::sharpe(&rep, bars_per_year)
        })
        .collect();
    let sharpe_var = (k >= 2).then(|| {
        let m = sharpes.iter().sum::<f64>() / k as f64;
        sharpes.iter().map(|s| (s - m) * (s - m)).sum::<f64>() / (k - 1) as f64
    });
    EffectiveTrials {
        clustered: series.len(),
        clusters: k,
        sharpe_var,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, StandardNormal};

    /// `groups` independent factors, `per` variants of each (the factor plus `noise` times
    /// independent noise), `t` periods.
    fn variants(groups: usize, per: usize, t: usize, noise: f64, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let factors: Vec<Vec<f64>> = (0..groups)
            .map(|_| (0..t).map(|_| StandardNormal.sample(&mut rng)).collect())
            .collect();
        let mut out = Vec::new();
        for f in &factors {
            for _ in 0..per {
                out.push(
                    f.iter()
                        .map(|x| {
                            let e: f64 = StandardNormal.sample(&mut rng);
                            0.01 * (x + noise * e)
                        })
                        .collect(),
                );
            }
        }
        out
    }

    #[test]
    fn sixty_variants_of_three_ideas_count_as_three() {
        // Variants correlate about 0.74 with each other, 0 across ideas.
        let s = variants(3, 20, 500, 0.6, 1);
        let labels = clusters(&s, 10, 4, 7);
        // Each group of 20 is one cluster.
        for g in 0..3 {
            let l = &labels[g * 20..(g + 1) * 20];
            assert!(l.iter().all(|x| *x == l[0]), "{labels:?}");
        }
        let e = effective_trials(&s, 8760.0, 7);
        assert_eq!((e.clustered, e.clusters), (60, 3));
        assert!(e.sharpe_var.is_some());
        // Five ideas of eight variants: five.
        assert_eq!(
            effective_trials(&variants(5, 8, 500, 0.6, 2), 8760.0, 7).clusters,
            5
        );
    }

    #[test]
    fn one_idea_is_one_cluster_and_the_result_is_deterministic() {
        // Variants of one idea that correlate about 0.96: one cluster.
        let tight = variants(1, 10, 300, 0.2, 3);
        assert_eq!(effective_trials(&tight, 8760.0, 1).clusters, 1);
        let a = clusters(&variants(4, 6, 200, 0.6, 9), 8, 4, 5);
        let b = clusters(&variants(4, 6, 200, 0.6, 9), 8, 4, 5);
        assert_eq!(a, b);
    }
}
