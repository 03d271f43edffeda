//! Selection: constrained domination, fast non-dominated sorting, binary tournament and two
//! elitist (μ+λ) survival rules over the same fronts:
//!
//! - **NSGA-II** (Deb et al. 2002): the last front that fits is cut by crowding distance on
//!   objectives normalized to their range in the pool. All ties are broken by position.
//! - **NSGA-III** (Deb & Jain 2014): the last front is cut by niching around Das–Dennis
//!   reference directions on adaptively normalized objectives ([`survive_nsga3`]). Its random
//!   choices are drawn from the run's RNG, so it is deterministic too.
//! - **θ-DEA** (Yuan, Xu, Wang & Yao 2016): the same normalization and directions, but members
//!   are ranked by θ-dominance — within each direction's cluster by the penalty-based distance
//!   `d1 + θ·d2` — instead of Pareto dominance ([`survive_theta`]). Its first front holds at
//!   most one member per direction, so selection keeps pressure where Pareto fronts with four
//!   objectives swallow the population.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use super::{Evaluation, Member, N_OBJ};

/// The survival rule of a run (`evolution.algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    Nsga2,
    Nsga3,
    ThetaDea,
}

impl Algorithm {
    /// Its name in `evolution.algorithm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nsga2 => "nsga2",
            Self::Nsga3 => "nsga3",
            Self::ThetaDea => "theta-dea",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nsga2" => Ok(Self::Nsga2),
            "nsga3" => Ok(Self::Nsga3),
            "theta-dea" => Ok(Self::ThetaDea),
            other => Err(format!(
                "`{other}` is not an algorithm: nsga2, nsga3 or theta-dea"
            )),
        }
    }
}

/// Constrained domination (Deb): a feasible solution beats an infeasible one; of two
/// infeasible ones the smaller violation wins; of two feasible ones, Pareto domination on the
/// (minimized) objectives.
pub fn dominates(a: &Evaluation, b: &Evaluation) -> bool {
    let (fa, fb) = (a.violation <= 0.0, b.violation <= 0.0);
    match (fa, fb) {
        (true, false) => true,
        (false, true) => false,
        (false, false) => a.violation < b.violation,
        (true, true) => {
            let mut strictly = false;
            for k in 0..N_OBJ {
                if a.objectives[k] > b.objectives[k] {
                    return false;
                }
                if a.objectives[k] < b.objectives[k] {
                    strictly = true;
                }
            }
            strictly
        }
    }
}

/// Which of two evaluations dominates the other (constrained domination), in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dominance {
    First,
    Second,
    Neither,
}

/// [`dominates`] in both directions at once.
pub fn compare(a: &Evaluation, b: &Evaluation) -> Dominance {
    let (fa, fb) = (a.violation <= 0.0, b.violation <= 0.0);
    match (fa, fb) {
        (true, false) => Dominance::First,
        (false, true) => Dominance::Second,
        (false, false) if a.violation < b.violation => Dominance::First,
        (false, false) if b.violation < a.violation => Dominance::Second,
        (false, false) => Dominance::Neither,
        (true, true) => {
            let (mut a_better, mut b_better) = (false, false);
            for k in 0..N_OBJ {
                a_better |= a.objectives[k] < b.objectives[k];
                b_better |= b.objectives[k] < a.objectives[k];
            }
            match (a_better, b_better) {
                (true, false) => Dominance::First,
                (false, true) => Dominance::Second,
                _ => Dominance::Neither,
            }
        }
    }
}

/// Fast non-dominated sort: the fronts, as indices into `evals`, best first.
///
/// The pairs are compared in parallel on the current rayon pool (each `i` against every later
/// `j`) and the results applied in order, so the fronts do not depend on the thread count.
pub fn fronts(evals: &[&Evaluation]) -> Vec<Vec<usize>> {
    use rayon::prelude::*;
    let n = evals.len();
    let rows: Vec<Vec<(usize, Dominance)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            (i + 1..n)
                .map(|j| (j, compare(evals[i], evals[j])))
                .filter(|(_, d)| *d != Dominance::Neither)
                .collect()
        })
        .collect();
    let mut dominated_by = vec![0usize; n];
    let mut dominates_list: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, row) in rows.into_iter().enumerate() {
        for (j, d) in row {
            if d == Dominance::First {
                dominates_list[i].push(j);
                dominated_by[j] += 1;
            } else {
                dominates_list[j].push(i);
                dominated_by[i] += 1;
            }
        }
    }
    let mut out = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominates_list[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        out.push(std::mem::take(&mut current));
        current = next;
    }
    out
}

/// Crowding distance of each member of `front`: boundary points infinite, others the sum over
/// objectives of the gap between neighbours divided by that objective's range over the whole
/// pool (`lo`, `hi`).
pub fn crowding(
    front: &[usize],
    evals: &[&Evaluation],
    lo: &[f64; N_OBJ],
    hi: &[f64; N_OBJ],
) -> Vec<f64> {
    let m = front.len();
    let mut d = vec![0.0; m];
    if m <= 2 {
        return vec![f64::INFINITY; m];
    }
    let mut order: Vec<usize> = (0..m).collect();
    for k in 0..N_OBJ {
        order.sort_by(|&a, &b| {
            evals[front[a]].objectives[k]
                .total_cmp(&evals[front[b]].objectives[k])
                .then(a.cmp(&b))
        });
        let range = hi[k] - lo[k];
        if range <= 0.0 {
            continue; // a constant objective says nothing about crowding
        }
        d[order[0]] = f64::INFINITY;
        d[order[m - 1]] = f64::INFINITY;
        for w in 1..m - 1 {
            let gap =
                evals[front[order[w + 1]]].objectives[k] - evals[front[order[w - 1]]].objectives[k];
            d[order[w]] += gap / range;
        }
    }
    d
}

/// Elitist survival: keeps `n` members of `pool` by front, then by crowding distance (largest
/// first), and records each survivor's rank and crowding distance. Survivors keep pool order
/// within their front.
pub fn survive(pool: Vec<Member>, n: usize) -> Vec<Member> {
    let evals: Vec<&Evaluation> = pool.iter().map(|m| &m.eval).collect();
    let mut lo = [f64::INFINITY; N_OBJ];
    let mut hi = [f64::NEG_INFINITY; N_OBJ];
    for e in &evals {
        for k in 0..N_OBJ {
            lo[k] = lo[k].min(e.objectives[k]);
            hi[k] = hi[k].max(e.objectives[k]);
        }
    }
    let mut keep: Vec<(usize, u32, f64)> = Vec::with_capacity(n);
    for (rank, front) in fronts(&evals).into_iter().enumerate() {
        if keep.len() >= n {
            break;
        }
        let cd = crowding(&front, &evals, &lo, &hi);
        let mut members: Vec<(usize, u32, f64)> = front
            .iter()
            .zip(cd)
            .map(|(&i, c)| (i, rank as u32, c))
            .collect();
        if keep.len() + members.len() > n {
            members.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
            members.truncate(n - keep.len());
            members.sort_by_key(|m| m.0);
        }
        keep.extend(members);
    }
    take(pool, keep)
}

/// The members of `pool` at the indices of `keep` (ascending), with their rank and crowding.
fn take(pool: Vec<Member>, keep: Vec<(usize, u32, f64)>) -> Vec<Member> {
    let mut slots: Vec<Option<Member>> = pool.into_iter().map(Some).collect();
    keep.into_iter()
        .filter_map(|(i, rank, c)| {
            slots[i].take().map(|mut m| {
                m.rank = rank;
                m.crowding = c;
                m
            })
        })
        .collect()
}

/// Das–Dennis reference directions: every point of the unit simplex in `m` dimensions whose
/// coordinates are multiples of `1/p` — C(p+m−1, m−1) of them, in lexicographic order.
pub fn reference_directions(m: usize, p: usize) -> Vec<Vec<f64>> {
    fn walk(m: usize, p: usize, left: usize, prefix: &mut Vec<usize>, out: &mut Vec<Vec<f64>>) {
        if prefix.len() == m - 1 {
            prefix.push(left);
            out.push(prefix.iter().map(|&k| k as f64 / p as f64).collect());
            prefix.pop();
            return;
        }
        for k in (0..=left).rev() {
            prefix.push(k);
            walk(m, p, left - k, prefix, out);
            prefix.pop();
        }
    }
    let mut out = Vec::new();
    if m == 0 || p == 0 {
        return out;
    }
    walk(m, p, p, &mut Vec::with_capacity(m), &mut out);
    out
}

/// The divisions NSGA-III uses for a population of `n` with [`N_OBJ`] objectives: the largest
/// `p` whose C(p+3, 3) reference directions do not outnumber the population (at least 1), as
/// Deb & Jain size them (population ≈ number of directions).
pub fn divisions_for(n: usize) -> usize {
    let count = |p: usize| (1..N_OBJ).fold(1usize, |c, k| c * (p + k) / k);
    let mut p = 1;
    while count(p + 1) <= n {
        p += 1;
    }
    p
}

/// Solves `a x = b` for a small square system by Gaussian elimination with partial pivoting;
/// `None` when it is (nearly) singular.
fn solve(mut a: [[f64; N_OBJ]; N_OBJ], mut b: [f64; N_OBJ]) -> Option<[f64; N_OBJ]> {
    for c in 0..N_OBJ {
        let piv = (c..N_OBJ).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[piv][c].abs() < 1e-12 {
            return None;
        }
        a.swap(c, piv);
        b.swap(c, piv);
        for r in c + 1..N_OBJ {
            let f = a[r][c] / a[c][c];
            for k in c..N_OBJ {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; N_OBJ];
    for r in (0..N_OBJ).rev() {
        let s: f64 = (r + 1..N_OBJ).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Adaptive normalization of Deb & Jain §IV-C over the points `objs` (the survivors so far
/// and the last front): the ideal point (each objective's minimum) and the intercepts of the
/// hyperplane through the extreme points (each axis's minimizer, after translation by the
/// ideal point, of the achievement scalarizing function with weights 10⁻⁶ off the axis). A
/// point `o` normalizes to `(o − ideal) / intercepts`. When the hyperplane is degenerate —
/// singular, or an intercept not positive — each intercept falls back to the largest
/// translated value of its objective among `front0` (indices into `objs` of the first front),
/// then among all points, then 1.
pub fn normalization(objs: &[[f64; N_OBJ]], front0: &[usize]) -> ([f64; N_OBJ], [f64; N_OBJ]) {
    let mut ideal = [f64::INFINITY; N_OBJ];
    for o in objs {
        for k in 0..N_OBJ {
            ideal[k] = ideal[k].min(o[k]);
        }
    }
    let t: Vec<[f64; N_OBJ]> = objs
        .iter()
        .map(|o| std::array::from_fn(|k| o[k] - ideal[k]))
        .collect();
    let mut extremes = [[0.0; N_OBJ]; N_OBJ];
    for (axis, e) in extremes.iter_mut().enumerate() {
        let asf = |p: &[f64; N_OBJ]| {
            (0..N_OBJ)
                .map(|k| p[k] / if k == axis { 1.0 } else { 1e-6 })
                .fold(f64::NEG_INFINITY, f64::max)
        };
        if let Some(best) = t.iter().min_by(|a, b| asf(a).total_cmp(&asf(b))) {
            *e = *best;
        }
    }
    let intercepts = solve(extremes, [1.0; N_OBJ])
        .map(|x| x.map(|v| 1.0 / v))
        .filter(|a| a.iter().all(|&v| v.is_finite() && v > 1e-10));
    let a = intercepts.unwrap_or_else(|| {
        std::array::from_fn(|k| {
            let w0 = front0.iter().map(|&i| t[i][k]).fold(0.0_f64, f64::max);
            let w = t.iter().map(|p| p[k]).fold(0.0_f64, f64::max);
            if w0 > 1e-10 {
                w0
            } else if w > 1e-10 {
                w
            } else {
                1.0
            }
        })
    });
    (ideal, a)
}

/// Where [`normalization`] over the members `basis` (indices into `evals`; the first front
/// `front0`, ascending, gives its fallback) places any member `i` of the pool:
/// `(objectives − ideal) / intercepts`.
fn placement<'e>(
    evals: &'e [&'e Evaluation],
    basis: &[usize],
    front0: &[usize],
) -> impl Fn(usize) -> [f64; N_OBJ] + 'e {
    let objs: Vec<[f64; N_OBJ]> = basis.iter().map(|&i| evals[i].objectives).collect();
    let first: Vec<usize> = (0..basis.len())
        .filter(|&j| front0.binary_search(&basis[j]).is_ok())
        .collect();
    let (ideal, intercepts) = normalization(&objs, &first);
    move |i| std::array::from_fn(|q| (evals[i].objectives[q] - ideal[q]) / intercepts[q])
}

/// The reference direction nearest to a normalized point (perpendicular distance to the line
/// through the origin along it) and that distance; ties go to the first direction.
pub fn associate(p: &[f64; N_OBJ], refs: &[Vec<f64>]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (j, w) in refs.iter().enumerate() {
        let ww: f64 = w.iter().map(|x| x * x).sum();
        let pw: f64 = (0..N_OBJ).map(|k| p[k] * w[k]).sum();
        let s = pw / ww;
        let d2: f64 = (0..N_OBJ).map(|k| (p[k] - s * w[k]).powi(2)).sum();
        let d = d2.max(0.0).sqrt();
        if d < best.1 {
            best = (j, d);
        }
    }
    best
}

/// NSGA-III survival (Deb & Jain 2014, Algorithms 1–4, with Jain & Deb's constrained
/// domination): whole fronts are kept while they fit; the last front that does not fit is cut
/// by niching. Every point kept so far and in that front is normalized ([`normalization`], over the
/// feasible ones when there are any) and associated with its nearest reference direction;
/// then, one member at a time, the direction with the fewest kept members is chosen (ties
/// drawn at random), and of the last front's members associated with it the nearest to its
/// line is kept if it has none yet, else a random one. Survivors keep pool order and record
/// their front as rank; crowding is 0 (the tournament then decides by rank, as in the paper's
/// constrained variant).
pub fn survive_nsga3(
    pool: Vec<Member>,
    n: usize,
    refs: &[Vec<f64>],
    rng: &mut ChaCha8Rng,
) -> Vec<Member> {
    let evals: Vec<&Evaluation> = pool.iter().map(|m| &m.eval).collect();
    let mut keep: Vec<(usize, u32)> = Vec::with_capacity(n);
    let all = fronts(&evals);
    let mut last: Option<(u32, Vec<usize>)> = None;
    for (rank, front) in all.iter().enumerate() {
        if keep.len() >= n {
            break;
        }
        if keep.len() + front.len() <= n {
            keep.extend(front.iter().map(|&i| (i, rank as u32)));
        } else {
            last = Some((rank as u32, front.clone()));
            break;
        }
    }
    if let Some((rank, front)) = last {
        let k = n - keep.len();
        let mut considered: Vec<usize> = keep.iter().map(|&(i, _)| i).collect();
        considered.extend(&front);
        let feasible: Vec<usize> = considered
            .iter()
            .copied()
            .filter(|&i| evals[i].feasible())
            .collect();
        let basis = if feasible.is_empty() {
            &considered
        } else {
            &feasible
        };
        // Infeasible members outside the basis are placed with the same normalization.
        let place = placement(&evals, basis, &all[0]);
        let mut niche = vec![0usize; refs.len()];
        for &(i, _) in &keep {
            niche[associate(&place(i), refs).0] += 1;
        }
        let mut candidates: Vec<(usize, usize, f64)> = front
            .iter()
            .map(|&i| {
                let (j, d) = associate(&place(i), refs);
                (i, j, d)
            })
            .collect();
        let mut open: Vec<bool> = vec![true; refs.len()];
        let mut chosen = 0;
        while chosen < k {
            let min = (0..refs.len())
                .filter(|&j| open[j])
                .map(|j| niche[j])
                .min()
                .expect("a direction stays open while candidates remain");
            let ties: Vec<usize> = (0..refs.len())
                .filter(|&j| open[j] && niche[j] == min)
                .collect();
            let j = ties[rng.gen_range(0..ties.len())];
            let members: Vec<usize> = (0..candidates.len())
                .filter(|&c| candidates[c].1 == j)
                .collect();
            if members.is_empty() {
                open[j] = false;
                continue;
            }
            let c = if niche[j] == 0 {
                *members
                    .iter()
                    .min_by(|&&a, &&b| candidates[a].2.total_cmp(&candidates[b].2))
                    .expect("not empty")
            } else {
                members[rng.gen_range(0..members.len())]
            };
            keep.push((candidates.remove(c).0, rank));
            niche[j] += 1;
            chosen += 1;
        }
    }
    keep.sort_by_key(|&(i, _)| i);
    take(pool, keep.into_iter().map(|(i, r)| (i, r, 0.0)).collect())
}

/// θ of the penalty-based distance for directions off the axes (Yuan et al.'s setting);
/// directions along an axis use 10⁶, which keeps the extremes of each objective.
pub const THETA: f64 = 5.0;

/// The distance of a normalized point along direction `w` from the ideal point (`d1`) and
/// from the line through it (`d2`).
pub fn pbi_parts(p: &[f64; N_OBJ], w: &[f64]) -> (f64, f64) {
    let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
    let d1 = (0..N_OBJ).map(|k| p[k] * w[k]).sum::<f64>() / norm;
    let d2 = (0..N_OBJ)
        .map(|k| (p[k] - d1 * w[k] / norm).powi(2))
        .sum::<f64>()
        .max(0.0)
        .sqrt();
    (d1, d2)
}

/// θ-DEA survival (Yuan, Xu, Wang & Yao 2016, Algorithm 2). The union of Pareto fronts that
/// first holds `n` members is normalized as in NSGA-III ([`normalization`]); each member joins
/// the cluster of its nearest reference direction; within a cluster members are ordered by
/// `d1 + θ·d2` ([`pbi_parts`], [`THETA`]); θ-front `k` is the `k`-th member of every cluster.
/// θ-fronts are kept whole while they fit and the last one is sampled at random (the run's
/// RNG). Survivors record their θ-front as rank, so the first front is the best member of
/// each occupied direction. With fewer than `n` feasible members the constrained NSGA-II rule
/// ([`survive`]) applies instead: feasibility comes first.
pub fn survive_theta(
    pool: Vec<Member>,
    n: usize,
    refs: &[Vec<f64>],
    rng: &mut ChaCha8Rng,
) -> Vec<Member> {
    let evals: Vec<&Evaluation> = pool.iter().map(|m| &m.eval).collect();
    let all = fronts(&evals);
    let mut union: Vec<usize> = Vec::with_capacity(pool.len());
    for f in &all {
        if union.len() >= n {
            break;
        }
        union.extend(f);
    }
    if union.iter().filter(|&&i| evals[i].feasible()).count() < n {
        return survive(pool, n);
    }
    // Every member of the union is feasible here: infeasible fronts come after feasible ones.
    let mut clusters: Vec<Vec<(f64, usize)>> = vec![Vec::new(); refs.len()];
    {
        let place = placement(&evals, &union, &all[0]);
        for &i in &union {
            let p = place(i);
            let (j, _) = associate(&p, refs);
            let (d1, d2) = pbi_parts(&p, &refs[j]);
            let theta = if refs[j].contains(&1.0) { 1e6 } else { THETA };
            clusters[j].push((d1 + theta * d2, i));
        }
    }
    for c in &mut clusters {
        c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    }
    let depth = clusters.iter().map(Vec::len).max().unwrap_or(0);
    let mut keep: Vec<(usize, u32)> = Vec::with_capacity(n);
    for k in 0..depth {
        let mut front: Vec<usize> = clusters
            .iter()
            .filter_map(|c| c.get(k).map(|x| x.1))
            .collect();
        front.sort_unstable();
        let room = n - keep.len();
        if front.len() > room {
            // A random `room` of them (partial Fisher–Yates).
            for a in 0..room {
                let b = rng.gen_range(a..front.len());
                front.swap(a, b);
            }
            front.truncate(room);
        }
        keep.extend(front.into_iter().map(|i| (i, k as u32)));
        if keep.len() >= n {
            break;
        }
    }
    keep.sort_by_key(|&(i, _)| i);
    take(pool, keep.into_iter().map(|(i, r)| (i, r, 0.0)).collect())
}

/// Binary tournament by crowded comparison: lower rank wins, then larger crowding distance,
/// then the smaller program (bloat control: of two equally good members the one with fewer
/// nodes breeds; a seed's genome counts as size 0), then the first drawn.
pub fn tournament(pop: &[Member], rng: &mut ChaCha8Rng) -> usize {
    let a = rng.gen_range(0..pop.len());
    let b = rng.gen_range(0..pop.len());
    let (ma, mb) = (&pop[a], &pop[b]);
    let b_wins = mb
        .rank
        .cmp(&ma.rank)
        .then(ma.crowding.total_cmp(&mb.crowding))
        .then_with(|| mb.size().cmp(&ma.size()))
        .is_lt();
    if b_wins {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(o: [f64; N_OBJ], violation: f64) -> Evaluation {
        Evaluation {
            objectives: o,
            violation,
        }
    }

    #[test]
    fn constrained_domination() {
        let good = ev([0.0, 0.0, 0.0, 0.0], 0.0);
        let better = ev([-1.0, 0.0, 0.0, 0.0], 0.0);
        let trade = ev([-2.0, 1.0, 0.0, 0.0], 0.0);
        let bad = ev([-9.0, -9.0, 0.0, 0.0], 3.0);
        let worse = ev([-9.0, -9.0, 0.0, 0.0], 5.0);
        assert!(dominates(&better, &good));
        assert!(!dominates(&good, &better));
        assert!(!dominates(&good, &good));
        assert!(!dominates(&trade, &better) && !dominates(&better, &trade));
        assert!(dominates(&good, &bad), "feasible beats infeasible");
        assert!(dominates(&bad, &worse) && !dominates(&worse, &bad));
        for (x, y) in [
            (&good, &better),
            (&trade, &better),
            (&bad, &good),
            (&bad, &worse),
            (&good, &good),
        ] {
            let want = if dominates(x, y) {
                Dominance::First
            } else if dominates(y, x) {
                Dominance::Second
            } else {
                Dominance::Neither
            };
            assert_eq!(compare(x, y), want);
        }
    }

    /// Six points in two objectives (the others 0): (3,3) (1,4) (4,4) (2,2), an infeasible
    /// (0,0), then (4,1).
    fn by_hand() -> [Evaluation; 6] {
        [
            ev([3.0, 3.0, 0.0, 0.0], 0.0),
            ev([1.0, 4.0, 0.0, 0.0], 0.0),
            ev([4.0, 4.0, 0.0, 0.0], 0.0),
            ev([2.0, 2.0, 0.0, 0.0], 0.0),
            ev([0.0, 0.0, 0.0, 0.0], 1.0),
            ev([4.0, 1.0, 0.0, 0.0], 0.0),
        ]
    }

    #[test]
    fn fronts_by_hand() {
        // Two objectives used (others 0): points (1,4) (2,2) (4,1) are front 0; (3,3) is
        // dominated by (2,2); (4,4) by all three; an infeasible point comes last.
        let pts = by_hand();
        let refs: Vec<&Evaluation> = pts.iter().collect();
        assert_eq!(
            fronts(&refs),
            vec![vec![1, 3, 5], vec![0], vec![2], vec![4]]
        );
        // Crowding on front 0 with ranges over the pool (objective 0: 0..4, objective 1: 0..4):
        // ends infinite; (2,2) gets (4-1)/4 + (4-1)/4 = 1.5.
        let lo = [0.0; N_OBJ];
        let hi = [4.0, 4.0, 0.0, 0.0];
        let cd = crowding(&[1, 3, 5], &refs, &lo, &hi);
        assert_eq!(cd[0], f64::INFINITY);
        assert_eq!(cd[2], f64::INFINITY);
        assert!((cd[1] - 1.5).abs() < 1e-12);
    }

    fn member(o: [f64; N_OBJ]) -> Member {
        Member {
            seed: 0,
            genes: vec![],
            program: None,
            eval: ev(o, 0.0),
            rank: 9,
            crowding: 9.0,
        }
    }

    #[test]
    fn survival_keeps_whole_fronts_then_the_least_crowded_by_hand() {
        // The points of `fronts_by_hand`: front 0 is (1,4) (2,2) (4,1) at indices 1, 3, 5;
        // front 1 is (3,3); then (4,4); the infeasible point last.
        let pool = || {
            by_hand()
                .into_iter()
                .enumerate()
                .map(|(i, e)| Member {
                    seed: i as u16,
                    eval: e,
                    ..member(e.objectives)
                })
                .collect::<Vec<_>>()
        };
        let kept = |n| -> Vec<(u16, u32)> {
            survive(pool(), n)
                .iter()
                .map(|m| (m.seed, m.rank))
                .collect()
        };
        // Four: the whole first front, then the second.
        assert_eq!(kept(4), vec![(1, 0), (3, 0), (5, 0), (0, 1)]);
        // Two: the first front cut by crowding; its two ends (infinite distance) stay, (2,2)
        // (distance 1.5) goes: the best member of each objective survives.
        assert_eq!(kept(2), vec![(1, 0), (5, 0)]);
        // Five: every feasible point but (4,4)'s front is taken whole before it.
        assert_eq!(kept(5), vec![(1, 0), (3, 0), (5, 0), (0, 1), (2, 2)]);
    }

    /// Seven mutually non-dominated points on the simplex: four crowd the first axis (indices
    /// 0, 1, 2, 4 at 0.94, 0.97, 0.91, 0.88), one sits near each other axis.
    fn simplex() -> Vec<Member> {
        [
            [0.94, 0.02, 0.02, 0.02],
            [0.97, 0.01, 0.01, 0.01],
            [0.91, 0.03, 0.03, 0.03],
            [0.01, 0.97, 0.01, 0.01],
            [0.88, 0.04, 0.04, 0.04],
            [0.01, 0.01, 0.97, 0.01],
            [0.01, 0.01, 0.01, 0.97],
        ]
        .into_iter()
        .map(member)
        .collect()
    }

    #[test]
    fn das_dennis_directions() {
        let r = reference_directions(3, 2);
        let want: Vec<Vec<f64>> = vec![
            vec![1.0, 0.0, 0.0],
            vec![0.5, 0.5, 0.0],
            vec![0.5, 0.0, 0.5],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.5, 0.5],
            vec![0.0, 0.0, 1.0],
        ];
        assert_eq!(r, want);
        // C(p+3, 3) directions in four objectives: p = 5 gives 56.
        assert_eq!(reference_directions(4, 5).len(), 56);
        assert_eq!(reference_directions(4, 1).len(), 4);
        assert_eq!(divisions_for(64), 5);
        assert_eq!(divisions_for(10), 2);
        assert_eq!(divisions_for(9), 1);
        assert_eq!(divisions_for(4), 1);
    }

    #[test]
    fn normalization_by_hand() {
        // Axis points 1 + (2, 3, 4, 5) on each axis and an inner point: ideal (1,1,1,1), the
        // hyperplane through the translated axis points has intercepts 2, 3, 4, 5.
        let pts = [
            [3.0, 1.0, 1.0, 1.0],
            [1.0, 4.0, 1.0, 1.0],
            [1.0, 1.0, 5.0, 1.0],
            [1.0, 1.0, 1.0, 6.0],
            [2.0, 2.0, 2.0, 2.0],
        ];
        let (ideal, a) = normalization(&pts, &[0, 1, 2, 3, 4]);
        assert_eq!(ideal, [1.0; N_OBJ]);
        for (got, want) in a.iter().zip([2.0, 3.0, 4.0, 5.0]) {
            assert!((got - want).abs() < 1e-9, "{a:?}");
        }
        // All points on one line: the extreme points coincide, the plane is singular, and the
        // intercepts fall back to the first front's worst values (then 1 for a constant
        // objective).
        let line = [
            [1.0, 1.0, 0.0, 0.0],
            [2.0, 3.0, 0.0, 0.0],
            [4.0, 7.0, 0.0, 0.0],
        ];
        let (ideal, a) = normalization(&line, &[0, 1]);
        assert_eq!(ideal, [1.0, 1.0, 0.0, 0.0]);
        assert_eq!(a, [1.0, 2.0, 1.0, 1.0]);
    }

    #[test]
    fn nsga3_keeps_whole_fronts_then_one_per_direction() {
        // Whole fronts that fit are kept with their rank, in pool order, without niching.
        let pool: Vec<Member> = [
            [3.0, 3.0, 0.0, 0.0],
            [1.0, 4.0, 0.0, 0.0],
            [4.0, 4.0, 0.0, 0.0],
            [2.0, 2.0, 0.0, 0.0],
            [5.0, 5.0, 0.0, 0.0],
            [4.0, 1.0, 0.0, 0.0],
        ]
        .into_iter()
        .map(member)
        .collect();
        let refs = reference_directions(4, 1);
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
        let kept = survive_nsga3(pool.clone(), 4, &refs, &mut rng);
        let got: Vec<(f64, u32)> = kept
            .iter()
            .map(|m| (m.eval.objectives[0], m.rank))
            .collect();
        assert_eq!(got, vec![(3.0, 1), (1.0, 0), (2.0, 0), (4.0, 0)]);

        // One front of seven on the simplex: four crowd the first axis, one sits near each
        // other axis. Four survivors with the four axes as directions: one per direction, and
        // of the crowd the one nearest its axis — whatever the random draws.
        let simplex = simplex();
        for seed in 0..20 {
            let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
            let kept = survive_nsga3(simplex.clone(), 4, &refs, &mut rng);
            let firsts: Vec<f64> = kept.iter().map(|m| m.eval.objectives[0]).collect();
            assert_eq!(firsts, vec![0.97, 0.01, 0.01, 0.01], "rng seed {seed}");
            assert!(kept.iter().all(|m| m.rank == 0 && m.crowding == 0.0));
        }
    }

    #[test]
    fn theta_dea_ranks_within_each_direction() {
        // The simplex of the NSGA-III test: four points crowd the first axis, one sits near
        // each other axis; the four axes are the directions (θ = 10⁶ on axes, so the order in
        // a cluster is by distance to its axis). θ-front 0 is the best of each cluster:
        // 0.97 (index 1) and the three others; θ-front 1 is the second of the crowd, 0.94
        // (index 0), then 0.91 (2), then 0.88 (4).
        let simplex = simplex();
        let refs = reference_directions(4, 1);
        let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
        let kept = survive_theta(simplex.clone(), 6, &refs, &mut rng);
        let got: Vec<(f64, u32)> = kept
            .iter()
            .map(|m| (m.eval.objectives[0], m.rank))
            .collect();
        assert_eq!(
            got,
            vec![
                (0.94, 1),
                (0.97, 0),
                (0.91, 2),
                (0.01, 0),
                (0.01, 0),
                (0.01, 0)
            ]
        );
        // Pareto ranks would call all seven one front; θ-ranks tell them apart.
        let refs_all: Vec<&Evaluation> = simplex.iter().map(|m| &m.eval).collect();
        assert_eq!(fronts(&refs_all).len(), 1);

        // Fewer feasible members than survivors: the constrained NSGA-II rule decides.
        let mut mixed = simplex;
        mixed[2].eval.violation = 2.0;
        mixed[4].eval.violation = 1.0;
        let kept = survive_theta(mixed.clone(), 6, &refs, &mut rng);
        assert_eq!(kept, survive(mixed, 6));
    }

    #[test]
    fn pbi_parts_by_hand() {
        // p = (3, 4, 0, 0) along w = (1, 0, 0, 0): 3 along, 4 off; along (1, 1, 0, 0)/√2 …
        let (d1, d2) = pbi_parts(&[3.0, 4.0, 0.0, 0.0], &[1.0, 0.0, 0.0, 0.0]);
        assert!((d1 - 3.0).abs() < 1e-12 && (d2 - 4.0).abs() < 1e-12);
        // … 7/√2 along and 1/√2 off.
        let (d1, d2) = pbi_parts(&[3.0, 4.0, 0.0, 0.0], &[0.5, 0.5, 0.0, 0.0]);
        let r = std::f64::consts::SQRT_2;
        assert!((d1 - 7.0 / r).abs() < 1e-12 && (d2 - 1.0 / r).abs() < 1e-12);
    }
}
