//! Variation operators, all driven by the run's RNG.
//!
//! Numeric genes (int and float): simulated binary crossover and polynomial mutation, both
//! bounded (Deb's operators, as DEAP's `cxSimulatedBinaryBounded` and
//! `mutPolynomialBounded`), scaled to each gene's bounds; int genes are rounded afterwards by
//! the seed's repair function. Choice genes: uniform swap in crossover, and mutation to a
//! different choice drawn uniformly.
//!
//! genevo's operators are not used: its value mutators take one bound for every gene of a
//! genome and it has no SBX or polynomial mutation, while organism's genomes mix bounds and kinds.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::genome::{GeneKind, SeedSpec};

/// SBX on one pair of values within `[lo, hi]`; returns the two children.
pub fn sbx(a: f64, b: f64, lo: f64, hi: f64, eta: f64, rng: &mut ChaCha8Rng) -> (f64, f64) {
    if (a - b).abs() <= 1e-14 {
        return (a, b);
    }
    let (x1, x2) = if a < b { (a, b) } else { (b, a) };
    let u: f64 = rng.gen();
    let spread = |beta: f64| {
        let alpha = 2.0 - beta.powf(-(eta + 1.0));
        if u <= 1.0 / alpha {
            (u * alpha).powf(1.0 / (eta + 1.0))
        } else {
            (1.0 / (2.0 - u * alpha)).powf(1.0 / (eta + 1.0))
        }
    };
    let bq1 = spread(1.0 + 2.0 * (x1 - lo) / (x2 - x1));
    let c1 = (0.5 * (x1 + x2 - bq1 * (x2 - x1))).clamp(lo, hi);
    let bq2 = spread(1.0 + 2.0 * (hi - x2) / (x2 - x1));
    let c2 = (0.5 * (x1 + x2 + bq2 * (x2 - x1))).clamp(lo, hi);
    if rng.gen::<f64>() <= 0.5 {
        (c2, c1)
    } else {
        (c1, c2)
    }
}

/// Polynomial mutation of one value within `[lo, hi]`.
pub fn polynomial(x: f64, lo: f64, hi: f64, eta: f64, rng: &mut ChaCha8Rng) -> f64 {
    let span = hi - lo;
    if span <= 0.0 {
        return x;
    }
    let (d1, d2) = ((x - lo) / span, (hi - x) / span);
    let u: f64 = rng.gen();
    let pow = 1.0 / (eta + 1.0);
    let dq = if u < 0.5 {
        let val = 2.0 * u + (1.0 - 2.0 * u) * (1.0 - d1).powf(eta + 1.0);
        val.powf(pow) - 1.0
    } else {
        let val = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * (1.0 - d2).powf(eta + 1.0);
        1.0 - val.powf(pow)
    };
    (x + dq * span).clamp(lo, hi)
}

/// Crosses two genomes of the same seed in place: each gene with probability ½ (SBX for
/// numbers, a swap for choices).
pub fn crossover(spec: &SeedSpec, a: &mut [f64], b: &mut [f64], eta: f64, rng: &mut ChaCha8Rng) {
    for (i, g) in spec.genes.iter().enumerate() {
        if rng.gen::<f64>() > 0.5 {
            continue;
        }
        match g.kind {
            GeneKind::Choice => std::mem::swap(&mut a[i], &mut b[i]),
            GeneKind::Int | GeneKind::Float => {
                let (x, y) = sbx(a[i], b[i], g.min, g.max, eta, rng);
                a[i] = x;
                b[i] = y;
            }
        }
    }
    spec.repair(a);
    spec.repair(b);
}

/// Mutates each gene with probability `p` (polynomial for numbers, another choice for choices).
pub fn mutate(spec: &SeedSpec, x: &mut [f64], eta: f64, p: f64, rng: &mut ChaCha8Rng) {
    for (i, g) in spec.genes.iter().enumerate() {
        if rng.gen::<f64>() > p {
            continue;
        }
        match g.kind {
            GeneKind::Choice => {
                let n = g.choices.len();
                if n > 1 {
                    let k = rng.gen_range(0..n - 1);
                    let cur = x[i] as usize;
                    x[i] = if k >= cur { k + 1 } else { k } as f64;
                }
            }
            GeneKind::Int | GeneKind::Float => x[i] = polynomial(x[i], g.min, g.max, eta, rng),
        }
    }
    spec.repair(x);
}

/// A genome drawn uniformly within bounds (ints and choices uniform over their values).
pub fn random_genome(spec: &SeedSpec, rng: &mut ChaCha8Rng) -> Vec<f64> {
    spec.genes
        .iter()
        .map(|g| match g.kind {
            GeneKind::Float => rng.gen_range(g.min..=g.max),
            GeneKind::Int | GeneKind::Choice => rng.gen_range(g.min as i64..=g.max as i64) as f64,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn operators_stay_in_bounds_and_are_seeded() {
        let spec = SeedSpec::parse(
            "t.toml",
            "name = \"t\"\ndescription = \"d\"\n[[genes]]\nname = \"p\"\nkind = \"int\"\nmin = 2\nmax = 9\ndefault = 3\nmeaning = \"m\"\n[[genes]]\nname = \"x\"\nkind = \"float\"\nmin = -1.0\nmax = 1.0\ndefault = 0.0\nmeaning = \"m\"\n[[genes]]\nname = \"c\"\nkind = \"choice\"\nchoices = [\"a\", \"b\", \"c\"]\ndefault = \"a\"\nmeaning = \"m\"\n",
            &[],
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut changed_choice = 0;
        for _ in 0..2000 {
            let mut a = random_genome(&spec, &mut rng);
            let mut b = random_genome(&spec, &mut rng);
            crossover(&spec, &mut a, &mut b, 20.0, &mut rng);
            let before = a[2];
            mutate(&spec, &mut a, 20.0, 1.0, &mut rng);
            changed_choice += usize::from(a[2] != before);
            for g in [&a, &b] {
                assert!(g[0] >= 2.0 && g[0] <= 9.0 && g[0].fract() == 0.0);
                assert!(g[1] >= -1.0 && g[1] <= 1.0);
                assert!([0.0, 1.0, 2.0].contains(&g[2]));
            }
        }
        // With p = 1 a choice always changes.
        assert_eq!(changed_choice, 2000);
        // SBX against DEAP's `cxSimulatedBinaryBounded` (eta 20, bounds [0, 1]), computed in
        // Python with the same two uniforms: this stream's first draws are u = 0.114122751984878
        // (the spread) and 0.782008636498824 (> 0.5: the children keep their order), and DEAP's
        // formula gives children 0.12039536152331609 and 0.6796204788439998.
        let mut r1 = ChaCha8Rng::seed_from_u64(9);
        let mut probe = ChaCha8Rng::seed_from_u64(9);
        let (u1, u2): (f64, f64) = (rand::Rng::gen(&mut probe), rand::Rng::gen(&mut probe));
        assert!(
            (u1 - 0.114_122_751_984_878).abs() < 1e-15
                && (u2 - 0.782_008_636_498_824).abs() < 1e-15
        );
        let (c1, c2) = sbx(0.1, 0.7, 0.0, 1.0, 20.0, &mut r1);
        assert!((c1 - 0.120_395_361_523_316_09).abs() < 1e-12, "{c1}");
        assert!((c2 - 0.679_620_478_843_999_8).abs() < 1e-12, "{c2}");
        // Swapped parents give the same children (SBX orders them first).
        let mut r3 = ChaCha8Rng::seed_from_u64(9);
        assert_eq!(sbx(0.7, 0.1, 0.0, 1.0, 20.0, &mut r3), (c1, c2));
        // Equal parents are returned unchanged.
        assert_eq!(sbx(0.5, 0.5, 0.0, 1.0, 20.0, &mut r1), (0.5, 0.5));
        // Children of SBX keep the parents' mean when neither is clamped (spread is symmetric
        // only in expectation, so check bounds and ordering instead).
        let (c1, c2) = sbx(0.4, 0.6, 0.0, 1.0, 20.0, &mut r1);
        assert!((0.0..=1.0).contains(&c1) && (0.0..=1.0).contains(&c2));
    }
}
