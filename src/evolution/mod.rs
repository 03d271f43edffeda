//! The multi-objective evolution loop (NSGA-II), organism's own.
//!
//! Shaped like argmin: a [`Problem`] evaluates genomes; [`Evolver`] holds the settings and
//! advances a [`State`] one generation per [`Evolver::step`]. The state is everything a run
//! needs to continue — population, RNG, fitness cache, history — so a checkpoint of it
//! ([`checkpoint`]) resumes exactly. Evaluation is the one parallel seam (rayon, results
//! collected in order); all randomness is the state's ChaCha8 stream, drawn on one thread, so
//! thread count never changes a result.

pub mod checkpoint;
pub mod executor;
pub mod folder;
pub mod nsga;
pub mod operators;
pub mod problem;
pub mod summary;

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::genome::SeedSpec;

/// Number of objectives.
pub const N_OBJ: usize = 4;

/// Objective values in minimization form — `[−Sharpe, −consistency, max drawdown, turnover]`
/// — and the constraint violation (0 when feasible).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub objectives: [f64; N_OBJ],
    pub violation: f64,
}

impl Evaluation {
    /// Builds the minimization vector from the four metrics.
    pub fn new(
        sharpe: f64,
        consistency: f64,
        drawdown: f64,
        turnover: f64,
        violation: f64,
    ) -> Self {
        Self {
            objectives: [-sharpe, -consistency, drawdown, turnover],
            violation,
        }
    }
    pub fn sharpe(&self) -> f64 {
        -self.objectives[0]
    }
    pub fn consistency(&self) -> f64 {
        -self.objectives[1]
    }
    pub fn drawdown(&self) -> f64 {
        self.objectives[2]
    }
    pub fn turnover(&self) -> f64 {
        self.objectives[3]
    }
    pub fn feasible(&self) -> bool {
        self.violation <= 0.0
    }
}

/// One individual: which seed, its genes, its evaluation and its NSGA-II rank and crowding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub seed: u16,
    pub genes: Vec<f64>,
    pub eval: Evaluation,
    pub rank: u32,
    pub crowding: f64,
}

/// What is evolved: genome specs per seed index and a pure, thread-safe evaluation.
pub trait Problem: Sync {
    /// Gene specs, indexed by seed number.
    fn specs(&self) -> Vec<&SeedSpec>;
    /// Evaluates one genome of seed `seed` (genes in bounds).
    fn evaluate(&self, seed: u16, genes: &[f64]) -> Evaluation;
}

/// Evolution settings (from `[evolution]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub population: usize,
    pub crossover_prob: f64,
    pub eta_crossover: f64,
    pub eta_mutation: f64,
    /// Probability that each gene of an offspring is mutated.
    pub mutation_prob: f64,
}

/// Figures of one generation (all deterministic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenStats {
    pub generation: u32,
    /// Genomes evaluated this generation (cache misses).
    pub evaluations: usize,
    /// Best Sharpe among feasible members (`NaN` if none is feasible).
    pub best_sharpe: f64,
    /// Members in the first front.
    pub front_size: usize,
    /// Feasible members.
    pub feasible: usize,
    /// Share of the objective box dominated by the feasible first front; see [`hypervolume`].
    pub hypervolume: f64,
    /// Distinct genomes / population size.
    pub diversity: f64,
}

/// Key of the fitness cache: seed and the exact bits of each gene.
pub type CacheKey = (u16, Vec<u64>);

/// Everything a run needs to continue.
///
/// The fitness cache is not serialized with the rest: checkpoints keep it in an append-only side
/// file ([`checkpoint::CacheLog`]) to which each generation adds only its fresh evaluations
/// (`fresh`, in evaluation order), so the disk a run uses grows linearly with generations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Last completed generation (0 = the evaluated initial population).
    pub generation: u32,
    pub rng: ChaCha8Rng,
    pub population: Vec<Member>,
    #[serde(skip)]
    pub cache: BTreeMap<CacheKey, Evaluation>,
    /// Cache entries added since the cache log was last written.
    #[serde(skip)]
    pub fresh: Vec<(CacheKey, Evaluation)>,
    pub history: Vec<GenStats>,
}

/// The NSGA-II loop over a problem.
pub struct Evolver<'a, P: Problem> {
    pub problem: &'a P,
    pub settings: Settings,
}

fn key(seed: u16, genes: &[f64]) -> CacheKey {
    (seed, genes.iter().map(|g| g.to_bits()).collect())
}

impl<'a, P: Problem> Evolver<'a, P> {
    pub fn new(problem: &'a P, settings: Settings) -> Self {
        Self { problem, settings }
    }

    /// Generation 0: each seed's default genome, then random genomes spread round-robin over
    /// the seeds, evaluated and ranked.
    pub fn init(&self, seed: u64, tick: &(dyn Fn() + Sync)) -> State {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let specs = self.problem.specs();
        let n = self.settings.population;
        let mut genomes: Vec<(u16, Vec<f64>)> = Vec::with_capacity(n);
        for (i, s) in specs.iter().enumerate().take(n) {
            genomes.push((i as u16, s.default_genome()));
        }
        let mut i = 0usize;
        while genomes.len() < n {
            let sid = i % specs.len();
            genomes.push((sid as u16, operators::random_genome(specs[sid], &mut rng)));
            i += 1;
        }
        let mut state = State {
            generation: 0,
            rng,
            population: Vec::new(),
            cache: BTreeMap::new(),
            fresh: Vec::new(),
            history: Vec::new(),
        };
        let (members, evaluations) = self.evaluate(&mut state, genomes, tick);
        state.population = nsga::survive(members, n);
        let stats = self.stats(&state, evaluations);
        state.history.push(stats);
        state
    }

    /// Evaluates genomes (cache first, the rest in parallel, in order) and records them in the
    /// cache. Returns the members and the number of fresh evaluations.
    fn evaluate(
        &self,
        state: &mut State,
        genomes: Vec<(u16, Vec<f64>)>,
        tick: &(dyn Fn() + Sync),
    ) -> (Vec<Member>, usize) {
        let keys: Vec<CacheKey> = genomes.iter().map(|(s, g)| key(*s, g)).collect();
        // Fresh genomes in key order (seed, then genes): neighbours share indicator series,
        // which keeps them in the CPU caches. Results go back by key, so order never matters.
        let mut fresh_keys: BTreeMap<&CacheKey, usize> = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            if !state.cache.contains_key(k) {
                fresh_keys.entry(k).or_insert(i);
            }
        }
        let todo: Vec<usize> = fresh_keys.into_values().collect();
        let results: Vec<Evaluation> = todo
            .par_iter()
            .map(|&i| {
                let (s, g) = &genomes[i];
                let e = self.problem.evaluate(*s, g);
                tick();
                e
            })
            .collect();
        let fresh = todo.len();
        for (&i, e) in todo.iter().zip(results) {
            state.cache.insert(keys[i].clone(), e);
            state.fresh.push((keys[i].clone(), e));
        }
        let members = genomes
            .into_iter()
            .zip(&keys)
            .map(|((s, g), k)| Member {
                seed: s,
                genes: g,
                eval: state.cache[k],
                rank: 0,
                crowding: 0.0,
            })
            .collect();
        (members, fresh)
    }

    /// One generation: tournament selection, crossover within a seed, mutation, evaluation of
    /// the offspring, elitist survival. `tick` is called once per fresh evaluation.
    pub fn step(&self, state: &mut State, tick: &(dyn Fn() + Sync)) -> GenStats {
        let specs = self.problem.specs();
        let n = self.settings.population;
        let s = &self.settings;
        let mut offspring: Vec<(u16, Vec<f64>)> = Vec::with_capacity(n);
        while offspring.len() < n {
            let a = nsga::tournament(&state.population, &mut state.rng);
            let b = nsga::tournament(&state.population, &mut state.rng);
            let (pa, pb) = (&state.population[a], &state.population[b]);
            let (mut ga, mut gb) = (pa.genes.clone(), pb.genes.clone());
            let (sa, sb) = (pa.seed, pb.seed);
            let cross: f64 = state.rng.gen();
            if sa == sb && cross < s.crossover_prob {
                operators::crossover(
                    specs[sa as usize],
                    &mut ga,
                    &mut gb,
                    s.eta_crossover,
                    &mut state.rng,
                );
            }
            operators::mutate(
                specs[sa as usize],
                &mut ga,
                s.eta_mutation,
                s.mutation_prob,
                &mut state.rng,
            );
            operators::mutate(
                specs[sb as usize],
                &mut gb,
                s.eta_mutation,
                s.mutation_prob,
                &mut state.rng,
            );
            offspring.push((sa, ga));
            if offspring.len() < n {
                offspring.push((sb, gb));
            }
        }
        let (children, evaluations) = self.evaluate(state, offspring, tick);
        let mut pool = std::mem::take(&mut state.population);
        pool.extend(children);
        state.population = nsga::survive(pool, n);
        state.generation += 1;
        let stats = self.stats(state, evaluations);
        state.history.push(stats.clone());
        stats
    }

    /// After a change of data: every cached result is stale. Clears the cache and re-evaluates
    /// and re-ranks the population (the RNG and history are kept).
    pub fn reevaluate(&self, state: &mut State) {
        state.cache.clear();
        state.fresh.clear();
        for m in &mut state.population {
            m.eval = self.problem.evaluate(m.seed, &m.genes);
        }
        let n = state.population.len();
        state.population = nsga::survive(std::mem::take(&mut state.population), n);
    }

    fn stats(&self, state: &State, evaluations: usize) -> GenStats {
        let pop = &state.population;
        let front: Vec<&Evaluation> = pop
            .iter()
            .filter(|m| m.rank == 0 && m.eval.feasible())
            .map(|m| &m.eval)
            .collect();
        let best_sharpe = pop
            .iter()
            .filter(|m| m.eval.feasible())
            .map(|m| m.eval.sharpe())
            .fold(f64::NAN, f64::max);
        let distinct: std::collections::BTreeSet<CacheKey> =
            pop.iter().map(|m| key(m.seed, &m.genes)).collect();
        GenStats {
            generation: state.generation,
            evaluations,
            best_sharpe,
            front_size: pop.iter().filter(|m| m.rank == 0).count(),
            feasible: pop.iter().filter(|m| m.eval.feasible()).count(),
            hypervolume: hypervolume(&front),
            diversity: distinct.len() as f64 / pop.len().max(1) as f64,
        }
    }
}

/// Fixed box for the hypervolume, in minimization form: Sharpe in [−3, 3], consistency in
/// [0, 1], drawdown in [0, 1], turnover in [0, 1000] entries per year; values outside are
/// clipped to the box.
pub const HV_LO: [f64; N_OBJ] = [-3.0, -1.0, 0.0, 0.0];
pub const HV_HI: [f64; N_OBJ] = [3.0, 0.0, 1.0, 1000.0];
const HV_SAMPLES: usize = 10_000;

/// Hypervolume of `front` as the share of the fixed box [`HV_LO`]..[`HV_HI`] it dominates,
/// estimated on 10,000 points drawn once from a fixed seed — the same points every time, so
/// values are deterministic and comparable across generations and runs.
pub fn hypervolume(front: &[&Evaluation]) -> f64 {
    use std::sync::OnceLock;
    static POINTS: OnceLock<Vec<[f64; N_OBJ]>> = OnceLock::new();
    let points = POINTS.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        (0..HV_SAMPLES)
            .map(|_| std::array::from_fn(|_| rng.gen::<f64>()))
            .collect()
    });
    if front.is_empty() {
        return 0.0;
    }
    let norm: Vec<[f64; N_OBJ]> = front
        .iter()
        .map(|e| {
            std::array::from_fn(|k| {
                ((e.objectives[k] - HV_LO[k]) / (HV_HI[k] - HV_LO[k])).clamp(0.0, 1.0)
            })
        })
        .collect();
    // Points sorted by their first coordinate can only be dominated by front members with a
    // smaller or equal first objective: sort the front by it and stop early.
    let mut norm = norm;
    norm.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let dominated: usize = points
        .par_iter()
        .with_min_len(1024)
        .filter(|p| {
            norm.iter()
                .take_while(|f| f[0] <= p[0])
                .any(|f| f[1] <= p[1] && f[2] <= p[2] && f[3] <= p[3])
        })
        .count();
    dominated as f64 / HV_SAMPLES as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypervolume_of_simple_fronts() {
        // A point at the box's best corner dominates everything; at the worst corner nothing
        // but the corner itself.
        let best = Evaluation::new(3.0, 1.0, 0.0, 0.0, 0.0);
        let worst = Evaluation::new(-3.0, 0.0, 1.0, 1000.0, 0.0);
        assert_eq!(hypervolume(&[&best]), 1.0);
        assert_eq!(hypervolume(&[&worst]), 0.0);
        assert_eq!(hypervolume(&[]), 0.0);
        // The box centre dominates 1/16 of the box (2^-4), within sampling error.
        let mid = Evaluation::new(0.0, 0.5, 0.5, 500.0, 0.0);
        let hv = hypervolume(&[&mid]);
        assert!((hv - 1.0 / 16.0).abs() < 0.006, "{hv}");
        // Adding a point never lowers it.
        let other = Evaluation::new(1.0, 0.2, 0.7, 100.0, 0.0);
        assert!(hypervolume(&[&mid, &other]) >= hv);
    }
}
