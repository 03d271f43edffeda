//! The multi-objective evolution loop (theta-DEA, NSGA-III or NSGA-II), organism's own.
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
pub mod islands;
pub mod nsga;
pub mod nulls;
pub mod operators;
pub mod portfolio;
pub mod problem;
pub mod summary;
pub mod walkforward;
pub mod worlds;

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::settings::{count, range, Invalid};

/// `[evolution]`: the search, its split of the data and its objectives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvolutionConfig {
    pub generations: u32,
    pub population: usize,
    pub seed: u64,
    #[serde(deserialize_with = "crate::settings::named")]
    pub algorithm: nsga::Algorithm,
    pub crossover_prob: f64,
    pub eta_crossover: f64,
    pub eta_mutation: f64,
    pub mutation_prob: f64,
    #[serde(deserialize_with = "crate::settings::named")]
    pub mode: Mode,
    pub max_depth: usize,
    pub max_nodes: usize,
    pub program_mutation_prob: f64,
    pub min_trades: f64,
    #[serde(deserialize_with = "crate::settings::named")]
    pub sharpe_objective: problem::SharpeObjective,
    pub worst_coin_weight: f64,
    pub train_fraction: f64,
    pub validation_fraction: f64,
    pub seeds: Vec<String>,
    pub out: String,
    pub keep_last: u32,
    /// Null searches beside each run (`--null-searches`): the same search on null copies of
    /// its data.
    pub null_searches: usize,
    /// Perturbed worlds each genome is also scored on ([`worlds`]).
    pub worlds: usize,
    pub worlds_quantile: f64,
    pub world_block: f64,
    /// Islands (`--islands`): 1 is one population; more evolve apart and exchange migrants
    /// ([`islands`]).
    pub islands: u32,
    /// Generations per epoch of an island run (`--epoch`).
    pub epoch: u32,
    /// Members each island sends per epoch (`--migrants`).
    pub migrants: u32,
    #[serde(deserialize_with = "crate::settings::named")]
    pub topology: islands::Topology,
}

/// Most null searches one run may have.
pub const MAX_NULL_SEARCHES: usize = 1000;

impl EvolutionConfig {
    /// Checks every key of the section.
    ///
    /// # Errors
    /// [`Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.population < 4 || self.population > 100_000 || !self.population.is_multiple_of(2) {
            return Err(Invalid::new(
                "evolution.population",
                format!(
                    "{} is out of range: must be an even number in [4, 100000] (every member \
                     is held and backtested each generation: memory and time grow with it)",
                    self.population
                ),
            ));
        }
        if self.generations > 1_000_000 {
            return Err(Invalid::new(
                "evolution.generations",
                format!("{} is out of range: must be <= 1000000", self.generations),
            ));
        }
        range("evolution.crossover_prob", self.crossover_prob, 0.0, 1.0)?;
        range("evolution.mutation_prob", self.mutation_prob, 0.0, 1.0)?;
        range(
            "evolution.program_mutation_prob",
            self.program_mutation_prob,
            0.0,
            1.0,
        )?;
        count("evolution.max_depth", self.max_depth, 2, 17, "")?;
        count("evolution.max_nodes", self.max_nodes, 4, 1000, "")?;
        range("evolution.eta_crossover", self.eta_crossover, 1e-9, 200.0)?;
        range("evolution.eta_mutation", self.eta_mutation, 1e-9, 200.0)?;
        range("evolution.min_trades", self.min_trades, 0.0, 1e9)?;
        range(
            "evolution.worst_coin_weight",
            self.worst_coin_weight,
            0.0,
            1.0,
        )?;
        range("evolution.train_fraction", self.train_fraction, 0.05, 0.99)?;
        range(
            "evolution.validation_fraction",
            self.validation_fraction,
            0.0,
            0.95,
        )?;
        if self.train_fraction + self.validation_fraction >= 1.0 {
            return Err(Invalid::new(
                "evolution.validation_fraction",
                format!(
                    "train_fraction + validation_fraction = {} must be < 1 (the rest is the holdout)",
                    self.train_fraction + self.validation_fraction
                ),
            ));
        }
        if self.out.trim().is_empty() {
            return Err(Invalid::new("evolution.out", "must not be empty"));
        }
        count(
            "evolution.worlds",
            self.worlds,
            0,
            worlds::MAX_WORLDS,
            " (each world is one more backtest of every genome on every coin)",
        )?;
        range("evolution.worlds_quantile", self.worlds_quantile, 0.0, 1.0)?;
        range("evolution.world_block", self.world_block, 1.0, 10_000.0)?;
        count(
            "evolution.null_searches",
            self.null_searches,
            0,
            MAX_NULL_SEARCHES,
            " (each is one more run of the same size)",
        )?;
        if self.islands == 0 || self.islands > islands::MAX_ISLANDS {
            return Err(Invalid::new(
                "evolution.islands",
                format!(
                    "{} is out of range: must be in [1, {}] (1 is one population)",
                    self.islands,
                    islands::MAX_ISLANDS
                ),
            ));
        }
        if let Some(spec) = self.island_spec() {
            spec.validate(self.population, self.generations)?;
        }
        Ok(())
    }

    /// The islands of `[evolution]`; `None` for one population.
    pub fn island_spec(&self) -> Option<islands::IslandSpec> {
        (self.islands > 1).then_some(islands::IslandSpec {
            count: self.islands,
            epoch: self.epoch,
            migrants: self.migrants,
            topology: self.topology,
        })
    }

    /// The run's evolution settings.
    pub fn settings(&self) -> Settings {
        Settings {
            mode: self.mode,
            limits: crate::genome::program::Limits {
                max_depth: self.max_depth,
                max_nodes: self.max_nodes,
            },
            program_mutation_prob: self.program_mutation_prob,
            algorithm: self.algorithm,
            ..Settings::params(
                self.population,
                self.crossover_prob,
                self.eta_crossover,
                self.eta_mutation,
                self.mutation_prob,
            )
        }
    }

    /// The time split.
    /// The perturbed worlds of `[evolution]`.
    pub fn world_spec(&self) -> worlds::WorldSpec {
        worlds::WorldSpec {
            count: self.worlds,
            quantile: self.worlds_quantile,
            block: self.world_block,
        }
    }

    pub fn split(&self) -> problem::Split {
        problem::Split {
            train: self.train_fraction,
            validation: self.validation_fraction,
        }
    }

    /// How per-coin metrics are combined.
    pub fn aggregation(&self) -> problem::Aggregation {
        problem::Aggregation {
            worst_coin_weight: self.worst_coin_weight,
            min_trades: self.min_trades,
            sharpe: self.sharpe_objective,
        }
    }
}

use crate::genome::{
    program::{self, Generator, Limits, Program},
    SeedSpec,
};

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

/// One individual: a seed's genome or a strategy program, its evaluation and its NSGA-II rank
/// and crowding.
///
/// A seed's genome: `seed` is the seed's index and `genes` its genome; `program` is `None`. A
/// program: `seed` is the problem's [`Problem::program_seed`] (the index past the seeds, whose
/// spec is the shared risk genes), `genes` are the program's risk genes, and `program` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub seed: u16,
    pub genes: Vec<f64>,
    pub program: Option<Program>,
    pub eval: Evaluation,
    pub rank: u32,
    pub crowding: f64,
}

impl Member {
    /// Program size in nodes; 0 for a seed's genome.
    pub fn size(&self) -> usize {
        self.program.as_ref().map_or(0, Program::size)
    }
}

/// A genome to evaluate: seed index, genes and, for a program, the program.
pub type Genome = (u16, Vec<f64>, Option<Program>);

/// A run's seeds by index: what turns a member's compact encoding (seed index, genes, program)
/// into the strategy it stands for, [`seeds::Genome`](crate::seeds::Genome). The one place the
/// encoding is read.
#[derive(Debug, Clone)]
pub enum SeedSet {
    /// Single-coin seeds; the index past them is a program.
    Coins(Vec<&'static crate::seeds::SeedEntry>),
    /// Portfolio seeds.
    Portfolio(Vec<&'static crate::seeds::portfolio::PortfolioEntry>),
    /// A mixed run with portfolio seeds: single-coin seeds, the programs' index, then the
    /// portfolio seeds.
    Mixed(
        Vec<&'static crate::seeds::SeedEntry>,
        Vec<&'static crate::seeds::portfolio::PortfolioEntry>,
    ),
}

impl SeedSet {
    /// The strategy of seed index `seed` with `genes` (and `program` for a program).
    ///
    /// # Panics
    /// When `seed` is past the set (a checkpoint is checked before its members are read).
    pub fn genome(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
    ) -> crate::seeds::Genome {
        use crate::seeds::{portfolio::PortfolioGenome, Genome};
        let genes = genes.to_vec();
        match (self, program) {
            (Self::Coins(_), Some(p)) => Genome::Program {
                program: p.clone(),
                genes,
            },
            (Self::Coins(e), None) => Genome::seed(e[seed as usize], genes),
            (Self::Portfolio(e), _) => Genome::Portfolio(PortfolioGenome {
                entry: e[seed as usize],
                genes,
            }),
            (Self::Mixed(_, _), Some(p)) => Genome::Program {
                program: p.clone(),
                genes,
            },
            (Self::Mixed(c, e), None) => match (seed as usize).checked_sub(c.len() + 1) {
                Some(j) => Genome::Portfolio(PortfolioGenome { entry: e[j], genes }),
                None => Genome::seed(c[seed as usize], genes),
            },
        }
    }

    /// The strategy of `m`.
    pub fn member(&self, m: &Member) -> crate::seeds::Genome {
        self.genome(m.seed, &m.genes, m.program.as_ref())
    }
}

/// What is evolved: genome specs per seed index and a pure, thread-safe evaluation.
pub trait Problem: Sync {
    /// Gene specs, indexed by seed number; when programs are evolved the last one is the
    /// programs' risk genes (see [`Problem::program_seed`]).
    fn specs(&self) -> Vec<&SeedSpec>;
    /// The seed index whose spec holds a program's risk genes, when this problem evaluates
    /// programs; the seeds before it are the `seed` terminals.
    fn program_seed(&self) -> Option<u16> {
        None
    }
    /// Whether the data has the Fear & Greed index (programs may then read it).
    fn sentiment(&self) -> bool {
        false
    }
    /// Evaluates one genome of seed `seed` (genes in bounds), or a program with its risk genes.
    fn evaluate(&self, seed: u16, genes: &[f64], program: Option<&Program>) -> Evaluation;
    /// Evaluates several genomes, in order, calling `done` after each: by default each on its
    /// own, in parallel on the current rayon pool. A problem whose genomes share data may
    /// evaluate them together; the results are those of [`Problem::evaluate`].
    fn evaluate_all(&self, genomes: &[GenomeRef], done: &(dyn Fn() + Sync)) -> Vec<Evaluation> {
        genomes
            .par_iter()
            .map(|&(seed, genes, program)| {
                let e = self.evaluate(seed, genes, program);
                done();
                e
            })
            .collect()
    }
}

/// A genome to evaluate: seed index, genes, program.
pub type GenomeRef<'a> = (u16, &'a [f64], Option<&'a Program>);

/// What a run evolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// The seeds' parameters only.
    Params,
    /// Strategy programs only; the twelve seeds enter as programs that trade their own signal.
    Programs,
    /// Both in one population: the seeds' default genomes, random genomes and random programs.
    Mixed,
    /// The portfolio (cross-sectional) seeds' parameters, each genome one account over the
    /// universe ([`portfolio`]).
    Portfolio,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Params => "params",
            Self::Programs => "programs",
            Self::Mixed => "mixed",
            Self::Portfolio => "portfolio",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "params" => Ok(Self::Params),
            "programs" => Ok(Self::Programs),
            "mixed" => Ok(Self::Mixed),
            "portfolio" => Ok(Self::Portfolio),
            other => Err(format!(
                "`{other}` is not a mode: params, programs, mixed or portfolio"
            )),
        }
    }
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
    /// What is evolved.
    pub mode: Mode,
    /// Depth and node limits of programs.
    pub limits: Limits,
    /// Probability that a program offspring undergoes one random mutation.
    pub program_mutation_prob: f64,
    /// The survival rule.
    pub algorithm: nsga::Algorithm,
}

impl Settings {
    /// Settings that evolve the seeds' parameters only.
    pub fn params(
        population: usize,
        crossover_prob: f64,
        eta_crossover: f64,
        eta_mutation: f64,
        mutation_prob: f64,
    ) -> Self {
        Self {
            population,
            crossover_prob,
            eta_crossover,
            eta_mutation,
            mutation_prob,
            mode: Mode::Params,
            limits: Limits::default(),
            program_mutation_prob: 0.3,
            algorithm: nsga::Algorithm::Nsga2,
        }
    }
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
    /// Programs in the population.
    pub programs: usize,
    /// Mean size of those programs in nodes (0 without programs).
    pub mean_size: f64,
}

/// Key of the fitness cache: seed, the exact bits of each gene, and a program's canonical text
/// ([`program::canonical`]), so equal programs are evaluated once.
pub type CacheKey = (u16, Vec<u64>, Option<String>);

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

/// The evolution loop over a problem.
pub struct Evolver<'a, P: Problem> {
    pub problem: &'a P,
    pub settings: Settings,
    /// Programs' generator and the seed index of programs, when the problem evaluates programs
    /// and the mode evolves them.
    programs: Option<(u16, Generator)>,
    /// NSGA-III's reference directions (empty under NSGA-II).
    refs: Vec<Vec<f64>>,
}

/// Largest depth of the trees of the starting population (DEAP's customary 2..6; variation may
/// grow them to [`Limits::max_depth`]).
pub const INIT_MAX_DEPTH: usize = 6;

/// The cache key of a genome; `lookup` gives seed specs for a program's canonical text.
pub fn key(seed: u16, genes: &[f64], program: Option<&Program>, specs: &[&SeedSpec]) -> CacheKey {
    (
        seed,
        genes.iter().map(|g| g.to_bits()).collect(),
        program.map(|p| program::canonical(p, &lookup(specs))),
    )
}

/// A seed-spec lookup by name over `specs`.
pub fn lookup<'s>(specs: &'s [&'s SeedSpec]) -> impl Fn(&str) -> Option<SeedSpec> + 's {
    move |name| specs.iter().find(|s| s.name == name).map(|s| (*s).clone())
}

impl<'a, P: Problem> Evolver<'a, P> {
    pub fn new(problem: &'a P, settings: Settings) -> Self {
        let programs = match (settings.mode, problem.program_seed()) {
            (Mode::Params | Mode::Portfolio, _) | (_, None) => None,
            (_, Some(ps)) => {
                let specs = problem.specs();
                let seeds: Vec<SeedSpec> =
                    specs[..ps as usize].iter().map(|s| (*s).clone()).collect();
                let inert = specs[ps as usize].genes.len();
                let depth = INIT_MAX_DEPTH.min(settings.limits.max_depth);
                let gen = Generator::new(seeds, depth)
                    .with_inert_tail(inert)
                    .with_sentiment(problem.sentiment());
                Some((ps, gen))
            }
        };
        let refs = match settings.algorithm {
            nsga::Algorithm::Nsga2 => Vec::new(),
            nsga::Algorithm::Nsga3 | nsga::Algorithm::ThetaDea => {
                nsga::reference_directions(N_OBJ, nsga::divisions_for(settings.population))
            }
        };
        Self {
            problem,
            settings,
            programs,
            refs,
        }
    }

    /// Elitist survival of `n` members of `pool` by the run's algorithm.
    fn survive(&self, pool: Vec<Member>, n: usize, rng: &mut ChaCha8Rng) -> Vec<Member> {
        match self.settings.algorithm {
            nsga::Algorithm::Nsga2 => nsga::survive(pool, n),
            nsga::Algorithm::Nsga3 => nsga::survive_nsga3(pool, n, &self.refs, rng),
            nsga::Algorithm::ThetaDea => nsga::survive_theta(pool, n, &self.refs, rng),
        }
    }

    /// The seed indices whose members are genomes of a seed: every index but the programs'
    /// (in a mixed run with portfolio seeds, those come after the programs' index).
    fn genome_seeds(&self) -> Vec<usize> {
        let ps = self.problem.program_seed().map(usize::from);
        (0..self.problem.specs().len())
            .filter(|&i| Some(i) != ps)
            .collect()
    }

    /// Number of single-coin seeds (the `seed` terminals of programs).
    fn seed_count(&self) -> usize {
        self.problem
            .program_seed()
            .map_or(self.problem.specs().len(), usize::from)
    }

    /// A random program within the limits, with random risk genes.
    fn random_program(&self, ps: u16, gen: &Generator, rng: &mut ChaCha8Rng) -> Genome {
        let specs = self.problem.specs();
        let p = loop {
            let p = gen.program(rng);
            if self.settings.limits.allow(&p) && program::readable(&p) {
                break p;
            }
        };
        let risk = operators::random_genome(specs[ps as usize], rng);
        (ps, risk, Some(p))
    }

    /// Generation 0, by mode. *params* (and *portfolio*): each seed's default genome, then
    /// random genomes spread round-robin over the seeds. *programs*: each seed as a program trading its own signal at
    /// its default genome (default risk genes), then random programs (ramped half-and-half,
    /// depth 2..=[`INIT_MAX_DEPTH`]). *mixed*: the seeds' default genomes, then random genomes
    /// and random programs in turn (portfolio seeds among the seeds when the run has them).
    /// Evaluated and ranked.
    pub fn init(&self, seed: u64, tick: &(dyn Fn() + Sync)) -> State {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let specs = self.problem.specs();
        let n = self.settings.population;
        let seeds = self.seed_count();
        let genome_seeds = self.genome_seeds();
        let mut genomes: Vec<Genome> = Vec::with_capacity(n);
        match (&self.programs, self.settings.mode) {
            (Some((ps, _)), Mode::Programs) => {
                let risk = specs[*ps as usize].default_genome();
                for s in specs.iter().take(seeds.min(n)) {
                    let p = program::seed_program(s, &s.default_genome());
                    genomes.push((*ps, risk.clone(), Some(p)));
                }
            }
            _ => {
                for &i in genome_seeds.iter().take(n) {
                    genomes.push((i as u16, specs[i].default_genome(), None));
                }
            }
        }
        let mut i = 0usize;
        while genomes.len() < n {
            match (&self.programs, self.settings.mode) {
                (Some((ps, gen)), Mode::Programs) => {
                    genomes.push(self.random_program(*ps, gen, &mut rng));
                }
                (Some((ps, gen)), Mode::Mixed) if i % 2 == 1 => {
                    genomes.push(self.random_program(*ps, gen, &mut rng));
                }
                _ => {
                    let k = (if self.programs.is_some() { i / 2 } else { i }) % genome_seeds.len();
                    let sid = genome_seeds[k];
                    genomes.push((
                        sid as u16,
                        operators::random_genome(specs[sid], &mut rng),
                        None,
                    ));
                }
            }
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
        state.population = self.survive(members, n, &mut state.rng);
        let stats = self.stats(&state, evaluations);
        state.history.push(stats);
        state
    }

    /// Evaluates genomes (cache first, the rest in parallel, in order) and records them in the
    /// cache. Returns the members and the number of fresh evaluations.
    fn evaluate(
        &self,
        state: &mut State,
        genomes: Vec<Genome>,
        tick: &(dyn Fn() + Sync),
    ) -> (Vec<Member>, usize) {
        let specs = self.problem.specs();
        let keys: Vec<CacheKey> = genomes
            .iter()
            .map(|(s, g, p)| key(*s, g, p.as_ref(), &specs))
            .collect();
        // Fresh genomes in key order (seed, then genes): neighbours share indicator series,
        // which keeps them in the CPU caches. Results go back by key, so order never matters.
        let mut fresh_keys: BTreeMap<&CacheKey, usize> = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            if !state.cache.contains_key(k) {
                fresh_keys.entry(k).or_insert(i);
            }
        }
        let todo: Vec<usize> = fresh_keys.into_values().collect();
        let refs: Vec<GenomeRef> = todo
            .iter()
            .map(|&i| {
                let (s, g, p) = &genomes[i];
                (*s, &g[..], p.as_ref())
            })
            .collect();
        let results = self.problem.evaluate_all(&refs, tick);
        let fresh = todo.len();
        for (&i, e) in todo.iter().zip(results) {
            state.cache.insert(keys[i].clone(), e);
            state.fresh.push((keys[i].clone(), e));
        }
        let members = genomes
            .into_iter()
            .zip(&keys)
            .map(|((s, g, p), k)| Member {
                seed: s,
                genes: g,
                program: p,
                eval: state.cache[k],
                rank: 0,
                crowding: 0.0,
            })
            .collect();
        (members, fresh)
    }

    /// One generation: tournament selection, variation, evaluation of the offspring, elitist
    /// survival. Two genomes of one seed are crossed (SBX, choice swaps) and mutated
    /// (polynomial); two programs are crossed (type-respecting subtree crossover, SBX on their
    /// risk genes) and each mutated with `program_mutation_prob` (one random mutation) and on its
    /// risk genes; other pairs are only mutated. `tick` is called once per fresh evaluation.
    pub fn step(&self, state: &mut State, tick: &(dyn Fn() + Sync)) -> GenStats {
        let specs = self.problem.specs();
        let n = self.settings.population;
        let s = &self.settings;
        let mut offspring: Vec<Genome> = Vec::with_capacity(n);
        while offspring.len() < n {
            let a = nsga::tournament(&state.population, &mut state.rng);
            let b = nsga::tournament(&state.population, &mut state.rng);
            let (pa, pb) = (&state.population[a], &state.population[b]);
            let (mut ga, mut gb) = (pa.genes.clone(), pb.genes.clone());
            let (mut xa, mut xb) = (pa.program.clone(), pb.program.clone());
            let (sa, sb) = (pa.seed, pb.seed);
            let cross: f64 = state.rng.gen();
            if sa == sb && cross < s.crossover_prob {
                if let (Some(p), Some(q), Some((_, gen))) = (&xa, &xb, &self.programs) {
                    let (ca, cb) = gen.crossover(p, q, &s.limits, &mut state.rng);
                    (xa, xb) = (Some(ca), Some(cb));
                }
                operators::crossover(
                    specs[sa as usize],
                    &mut ga,
                    &mut gb,
                    s.eta_crossover,
                    &mut state.rng,
                );
            }
            for (x, g, sid) in [(&mut xa, &mut ga, sa), (&mut xb, &mut gb, sb)] {
                if let (Some(p), Some((_, gen))) = (x.as_mut(), &self.programs) {
                    if state.rng.gen::<f64>() < s.program_mutation_prob {
                        *p = gen.mutate(p, &s.limits, &mut state.rng);
                    }
                }
                operators::mutate(
                    specs[sid as usize],
                    g,
                    s.eta_mutation,
                    s.mutation_prob,
                    &mut state.rng,
                );
            }
            offspring.push((sa, ga, xa));
            if offspring.len() < n {
                offspring.push((sb, gb, xb));
            }
        }
        let (children, evaluations) = self.evaluate(state, offspring, tick);
        let mut pool = std::mem::take(&mut state.population);
        pool.extend(children);
        state.population = self.survive(pool, n, &mut state.rng);
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
            m.eval = self.problem.evaluate(m.seed, &m.genes, m.program.as_ref());
        }
        let n = state.population.len();
        let pop = std::mem::take(&mut state.population);
        state.population = self.survive(pop, n, &mut state.rng);
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
        let specs = self.problem.specs();
        let distinct: std::collections::BTreeSet<CacheKey> = pop
            .iter()
            .map(|m| key(m.seed, &m.genes, m.program.as_ref(), &specs))
            .collect();
        let sizes: Vec<usize> = pop
            .iter()
            .filter(|m| m.program.is_some())
            .map(Member::size)
            .collect();
        GenStats {
            generation: state.generation,
            evaluations,
            best_sharpe,
            front_size: pop.iter().filter(|m| m.rank == 0).count(),
            feasible: pop.iter().filter(|m| m.eval.feasible()).count(),
            hypervolume: hypervolume(&front),
            diversity: distinct.len() as f64 / pop.len().max(1) as f64,
            programs: sizes.len(),
            mean_size: if sizes.is_empty() {
                0.0
            } else {
                sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
            },
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
    // The lowest value of each objective over each prefix of that order: a point below a
    // prefix's lowest value in some objective is dominated by no member of the prefix, and
    // needs no scan.
    let lowest: Vec<[f64; N_OBJ]> = norm
        .iter()
        .scan([f64::INFINITY; N_OBJ], |low, f| {
            *low = std::array::from_fn(|k| low[k].min(f[k]));
            Some(*low)
        })
        .collect();
    let dominated: usize = points
        .par_iter()
        .with_min_len(1024)
        .filter(|p| {
            let members = norm.partition_point(|f| f[0] <= p[0]);
            members > 0
                && (1..N_OBJ).all(|k| lowest[members - 1][k] <= p[k])
                && norm[..members]
                    .iter()
                    .any(|f| f[1] <= p[1] && f[2] <= p[2] && f[3] <= p[3])
        })
        .count();
    dominated as f64 / HV_SAMPLES as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A problem that counts its evaluations: the programs' risk genes only, no seeds.
    struct Counting {
        risk: &'static SeedSpec,
        calls: AtomicUsize,
    }

    impl Problem for Counting {
        fn specs(&self) -> Vec<&SeedSpec> {
            vec![self.risk]
        }
        fn program_seed(&self) -> Option<u16> {
            Some(0)
        }
        fn evaluate(&self, _: u16, _: &[f64], p: Option<&Program>) -> Evaluation {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let size = p.map_or(0, Program::size) as f64;
            Evaluation::new(size, 0.5, 0.1, 10.0, 0.0)
        }
    }

    #[test]
    fn equal_programs_are_evaluated_once() {
        let problem = Counting {
            risk: crate::seeds::program::risk_spec().unwrap(),
            calls: AtomicUsize::new(0),
        };
        let settings = Settings {
            mode: Mode::Programs,
            ..Settings::params(4, 0.9, 20.0, 20.0, 0.25)
        };
        let evolver = Evolver::new(&problem, settings);
        let none = |_: &str| None;
        let prog = |t: &str| program::parse(t, &none).unwrap();
        // The same program with `and`'s arguments swapped and `lt` written as `gt`: one
        // canonical form, one evaluation. A different constant, or other risk genes, is another.
        let a = prog("(program (enter-long (and (lt (rsi 14) 30.0) (lt close (ema 10)))))");
        let b = prog("(program (enter-long (and (gt (ema 10) close) (lt (rsi 14) 30.0))))");
        let c = prog("(program (enter-long (and (lt (rsi 14) 31.0) (lt close (ema 10)))))");
        let risk = problem.risk.default_genome();
        let mut other = risk.clone();
        other[0] = 0.5;
        let mut state = evolver.init(1, &|| {});
        let before = problem.calls.load(Ordering::SeqCst);
        let (members, fresh) = evolver.evaluate(
            &mut state,
            vec![
                (0, risk.clone(), Some(a)),
                (0, risk.clone(), Some(b)),
                (0, risk.clone(), Some(c)),
                (
                    0,
                    other,
                    Some(prog("(program (enter-long (lt (rsi 14) 30.0)))")),
                ),
                (
                    0,
                    risk,
                    Some(prog("(program (enter-long (gt 30.0 (rsi 14))))")),
                ),
            ],
            &|| {},
        );
        assert_eq!(fresh, 4);
        assert_eq!(problem.calls.load(Ordering::SeqCst) - before, 4);
        assert_eq!(members[0].eval, members[1].eval);
        assert_eq!(members.len(), 5);
    }

    /// The share of the fixed points that some member dominates, counted point by point and
    /// member by member.
    #[test]
    fn hypervolume_counts_the_points_some_member_dominates() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        let points: Vec<[f64; N_OBJ]> = (0..HV_SAMPLES)
            .map(|_| std::array::from_fn(|_| rng.gen::<f64>()))
            .collect();
        let mut draw = ChaCha8Rng::seed_from_u64(7);
        for size in [1, 2, 5, 40, 300] {
            let front: Vec<Evaluation> = (0..size)
                .map(|_| {
                    let mut e = Evaluation::new(0.0, 0.0, 0.0, 0.0, 0.0);
                    e.objectives = std::array::from_fn(|k| {
                        HV_LO[k] + (HV_HI[k] - HV_LO[k]) * (0.2 + 0.8 * draw.gen::<f64>())
                    });
                    e
                })
                .collect();
            let norm: Vec<[f64; N_OBJ]> = front
                .iter()
                .map(|e| {
                    std::array::from_fn(|k| (e.objectives[k] - HV_LO[k]) / (HV_HI[k] - HV_LO[k]))
                })
                .collect();
            let count = points
                .iter()
                .filter(|p| norm.iter().any(|f| (0..N_OBJ).all(|k| f[k] <= p[k])))
                .count();
            let refs: Vec<&Evaluation> = front.iter().collect();
            assert_eq!(
                hypervolume(&refs),
                count as f64 / HV_SAMPLES as f64,
                "{size}"
            );
            assert!(count > 0, "{size}");
        }
    }

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
