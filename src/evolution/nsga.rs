//! NSGA-II selection: constrained domination, fast non-dominated sorting, crowding distance on
//! objectives normalized to their range in the pool, binary tournament, elitist (μ+λ) survival.
//! All ties are broken by position, so selection is deterministic.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{Evaluation, Member, N_OBJ};

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
pub fn fronts(evals: &[&Evaluation]) -> Vec<Vec<usize>> {
    let n = evals.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominates_list: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in i + 1..n {
            match compare(evals[i], evals[j]) {
                Dominance::First => {
                    dominates_list[i].push(j);
                    dominated_by[j] += 1;
                }
                Dominance::Second => {
                    dominates_list[j].push(i);
                    dominated_by[i] += 1;
                }
                Dominance::Neither => {}
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

    #[test]
    fn fronts_by_hand() {
        // Two objectives used (others 0): points (1,4) (2,2) (4,1) are front 0; (3,3) is
        // dominated by (2,2); (4,4) by all three; an infeasible point comes last.
        let pts = [
            ev([3.0, 3.0, 0.0, 0.0], 0.0),
            ev([1.0, 4.0, 0.0, 0.0], 0.0),
            ev([4.0, 4.0, 0.0, 0.0], 0.0),
            ev([2.0, 2.0, 0.0, 0.0], 0.0),
            ev([0.0, 0.0, 0.0, 0.0], 1.0),
            ev([4.0, 1.0, 0.0, 0.0], 0.0),
        ];
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
}
