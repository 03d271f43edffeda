//! The island model: `N` sub-populations, each evolving `G` generations per epoch with the run's
//! survival rule; between epochs each island's `K` best members (chosen by that rule) go to the
//! next island on a ring (or to every other island), replacing its worst.
//!
//! Every random stream is seeded by (run seed, island, epoch), and an island's epoch reads only
//! files the epochs before it wrote, so where and in what order the island-epochs ran never
//! changes a byte. One process (`evolve --islands N`), processes on one machine and a cluster's
//! jobs run the same three steps on the same files:
//!
//! - [`run_epoch`] — island `I`, epoch `E`: its checkpoint at the epoch's start (generation
//!   `E·G`) and the immigrants of migration `E − 1` in; `G` generations (a checkpoint each, in
//!   `island-I/`, its own `cache.log`), then its emigrants and its fresh evaluations out
//!   (`island-I/emigrants-E.bin`, written last: the task's "done").
//! - [`migrate`] — after every island finished epoch `E`: each island's immigrants for epoch
//!   `E + 1` (`shared/migration-E.bin`) and the evaluations of epoch `E` merged into the shared
//!   cache (`shared/cache-E.bin`), so a genome any island evaluated is not evaluated again.
//! - [`finish`] — after the last epoch: the run's checkpoint `genT.bin` in the run folder, every
//!   island's population one after another (each member keeps its island's rank, so the run's
//!   first front is the union of the islands' first fronts), its `cache.log` every distinct
//!   evaluation of every island (the trials promotion counts) and a history whose generations
//!   sum the islands' figures.
//!
//! The plan (`islands.plan`) holds the run spec, the data's fingerprint and the target.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{
    checkpoint::{
        self, path_for, Cache, CacheLog, Checkpoint, CheckpointError, RunSpec, SeedPrint,
    },
    executor::Checkpointer,
    folder::{self, FolderError, RunLock},
    CacheKey, Evaluation, Evolver, GenStats, Member, Problem, State,
};
use crate::settings::Invalid;

/// Where migrants go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topology {
    /// Island `i` sends to island `i + 1` (the last to the first).
    Ring,
    /// Every island sends to every other.
    Full,
}

impl Topology {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ring => "ring",
            Self::Full => "full",
        }
    }
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ring" => Ok(Self::Ring),
            "full" => Ok(Self::Full),
            other => Err(format!("`{other}` is not a topology: ring or full")),
        }
    }
}

/// Most islands one run may have.
pub const MAX_ISLANDS: u32 = 1024;

/// The islands of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IslandSpec {
    /// Number of islands (at least 2; one island is a plain run).
    pub count: u32,
    /// Generations per epoch.
    pub epoch: u32,
    /// Members each island sends per epoch.
    pub migrants: u32,
    pub topology: Topology,
}

impl IslandSpec {
    /// Checks the spec against the population and the run's last generation.
    ///
    /// # Errors
    /// [`Invalid`] naming the key refused.
    pub fn validate(&self, population: usize, generations: u32) -> Result<(), Invalid> {
        if self.count < 2 || self.count > MAX_ISLANDS {
            return Err(Invalid::new(
                "evolution.islands",
                format!(
                    "{} is out of range: must be in [1, {MAX_ISLANDS}] (1 is one population)",
                    self.count
                ),
            ));
        }
        if self.epoch == 0 || generations == 0 || !generations.is_multiple_of(self.epoch) {
            return Err(Invalid::new(
                "evolution.epoch",
                format!(
                    "{}: an island run's generations ({generations}) must be a positive multiple \
                     of its epoch (generations per epoch, >= 1)",
                    self.epoch
                ),
            ));
        }
        let incoming = self.incoming();
        if incoming >= population {
            return Err(Invalid::new(
                "evolution.migrants",
                format!(
                    "{}: each island would take in {incoming} members ({} topology), not fewer \
                     than its population of {population}",
                    self.migrants,
                    self.topology.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// Epochs of a run to generation `generations`.
    pub fn epochs(&self, generations: u32) -> u32 {
        generations / self.epoch
    }

    /// The islands that send to `island`, in the order their migrants are taken.
    pub fn sources(&self, island: u32) -> Vec<u32> {
        match self.topology {
            Topology::Ring => vec![(island + self.count - 1) % self.count],
            Topology::Full => (0..self.count).filter(|&j| j != island).collect(),
        }
    }

    /// Members an island takes in per migration.
    pub fn incoming(&self) -> usize {
        let sources = match self.topology {
            Topology::Ring => 1,
            Topology::Full => self.count as usize - 1,
        };
        sources * self.migrants as usize
    }
}

/// The seed of island `island`'s stream `purpose` in epoch `epoch` of the run seeded `seed`.
pub fn island_seed(seed: u64, island: u32, epoch: u32, purpose: &str) -> u64 {
    let mut b = seed.to_le_bytes().to_vec();
    b.extend(island.to_le_bytes());
    b.extend(epoch.to_le_bytes());
    b.extend(purpose.as_bytes());
    checkpoint::fnv1a(&b)
}

impl<P: Problem> Evolver<'_, P> {
    /// Island `island`'s generation 0.
    pub fn island_start(&self, seed: u64, island: u32, tick: &(dyn Fn() + Sync)) -> State {
        self.init(island_seed(seed, island, 0, "evolve"), tick)
    }

    /// The start of epoch `epoch` (> 0) of island `island`: the stream reseeded, the shared
    /// evaluations known, and the immigrants in place of the island's worst (the survival
    /// rule's `population − immigrants` best kept, then all ranked again).
    pub fn island_arrive(
        &self,
        state: &mut State,
        (seed, island, epoch): (u64, u32, u32),
        immigrants: Vec<Member>,
        shared: &Cache,
    ) {
        state.rng = ChaCha8Rng::seed_from_u64(island_seed(seed, island, epoch, "evolve"));
        for (k, e) in shared {
            state.cache.entry(k.clone()).or_insert(*e);
        }
        if immigrants.is_empty() {
            return;
        }
        let n = state.population.len();
        let pop = std::mem::take(&mut state.population);
        let mut kept = self.survive(pop, n - immigrants.len(), &mut state.rng);
        kept.extend(immigrants);
        state.population = self.survive(kept, n, &mut state.rng);
    }

    /// The `k` members island `island` sends after epoch `epoch`: the survival rule's `k` best
    /// (its own stream, so the choice depends on the population alone).
    pub fn island_emigrants(
        &self,
        state: &State,
        (seed, island, epoch): (u64, u32, u32),
        k: usize,
    ) -> Vec<Member> {
        let mut rng = ChaCha8Rng::seed_from_u64(island_seed(seed, island, epoch, "emigrants"));
        self.survive(state.population.clone(), k, &mut rng)
    }
}

/// Each island's immigrants from every island's emigrants (indexed by island).
pub fn immigrants(spec: &IslandSpec, emigrants: &[Vec<Member>]) -> Vec<Vec<Member>> {
    (0..spec.count)
        .map(|i| {
            spec.sources(i)
                .into_iter()
                .flat_map(|j| emigrants[j as usize].iter().cloned())
                .collect()
        })
        .collect()
}

/// The run's population and history from its islands' final states: the populations one after
/// another (each member keeps its island's rank and crowding), and per generation the islands'
/// evaluations, first-front sizes, feasible members and programs summed, the best Sharpe and
/// hypervolume the best island's, diversity their mean and the programs' mean size over all
/// islands' programs.
pub fn combine(states: &[State]) -> (Vec<Member>, Vec<GenStats>) {
    let population = states
        .iter()
        .flat_map(|s| s.population.iter().cloned())
        .collect();
    let gens = states.iter().map(|s| s.history.len()).min().unwrap_or(0);
    let history = (0..gens)
        .map(|g| {
            let rows: Vec<&GenStats> = states.iter().map(|s| &s.history[g]).collect();
            let programs: usize = rows.iter().map(|r| r.programs).sum();
            let nodes: f64 = rows.iter().map(|r| r.mean_size * r.programs as f64).sum();
            GenStats {
                generation: rows[0].generation,
                evaluations: rows.iter().map(|r| r.evaluations).sum(),
                best_sharpe: rows.iter().map(|r| r.best_sharpe).fold(f64::NAN, f64::max),
                front_size: rows.iter().map(|r| r.front_size).sum(),
                feasible: rows.iter().map(|r| r.feasible).sum(),
                hypervolume: rows.iter().map(|r| r.hypervolume).fold(0.0, f64::max),
                diversity: rows.iter().map(|r| r.diversity).sum::<f64>() / rows.len() as f64,
                programs,
                mean_size: if programs == 0 {
                    0.0
                } else {
                    nodes / programs as f64
                },
            }
        })
        .collect();
    (population, history)
}

/// An island run in memory, as [`run_epoch`], [`migrate`] and [`finish`] run it on files:
/// the combined state (population, history and every evaluation as the cache). Walk-forward
/// windows use it.
pub fn evolve_in_memory<P: Problem>(
    evolver: &Evolver<'_, P>,
    spec: &IslandSpec,
    seed: u64,
    generations: u32,
    tick: &(dyn Fn() + Sync),
) -> State {
    let n = spec.count;
    let mut states: Vec<State> = (0..n)
        .map(|i| evolver.island_start(seed, i, tick))
        .collect();
    let mut arriving: Vec<Vec<Member>> = vec![Vec::new(); n as usize];
    let mut shared = Cache::new();
    let epochs = spec.epochs(generations);
    for e in 0..epochs {
        let mut emigrants = Vec::with_capacity(n as usize);
        let mut fresh = Cache::new();
        for (i, state) in states.iter_mut().enumerate() {
            let i = i as u32;
            if e > 0 {
                let came = std::mem::take(&mut arriving[i as usize]);
                evolver.island_arrive(state, (seed, i, e), came, &shared);
            }
            for _ in 0..spec.epoch {
                evolver.step(state, tick);
            }
            // Generation 0's evaluations count among epoch 0's.
            fresh.extend(state.fresh.drain(..));
            emigrants.push(evolver.island_emigrants(state, (seed, i, e), spec.migrants as usize));
        }
        shared.extend(fresh);
        if e + 1 < epochs {
            arriving = immigrants(spec, &emigrants);
        }
    }
    let (population, history) = combine(&states);
    State {
        generation: generations,
        rng: ChaCha8Rng::seed_from_u64(island_seed(seed, n, epochs, "combined")),
        population,
        cache: shared,
        fresh: Vec::new(),
        history,
    }
}

/// `[cluster]`: how `organism island submit --slurm` and `--k8s` ask for resources.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Slurm partition (empty: the cluster's default).
    pub partition: String,
    /// Time limit of one island task or migration, Slurm's format (`HH:MM:SS`, `D-HH:MM:SS`).
    pub time_limit: String,
    /// Cores per island task (its evaluation threads).
    pub cpus_per_task: u32,
    /// Island tasks of one epoch running at once (Slurm's `%P`, Kubernetes' parallelism); 0:
    /// as many as there are islands.
    pub concurrency: u32,
    /// The container image of `--k8s` manifests (it must hold the `organism` binary).
    pub image: String,
    /// The persistent volume claim `--k8s` mounts at the run folder's path.
    pub volume_claim: String,
}

impl ClusterConfig {
    /// Island tasks of one epoch at once for a run of `islands` islands.
    pub fn parallel(&self, islands: u32) -> u32 {
        match self.concurrency {
            0 => islands,
            p => p.min(islands),
        }
    }

    /// Checks every key of the section.
    ///
    /// # Errors
    /// [`Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), Invalid> {
        let t = self.time_limit.trim();
        let clock = |x: &str| {
            !x.is_empty()
                && x.split(':').count() <= 3
                && x.split(':')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        let ok = match t.split_once('-') {
            Some((d, rest)) => {
                !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && clock(rest)
            }
            None => clock(t),
        };
        if !ok {
            return Err(Invalid::new(
                "cluster.time_limit",
                format!("`{t}` is not a Slurm time limit (MM, HH:MM:SS or D-HH:MM:SS)"),
            ));
        }
        crate::settings::count(
            "cluster.cpus_per_task",
            self.cpus_per_task as usize,
            1,
            1024,
            "",
        )?;
        if self
            .partition
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == ','))
        {
            return Err(Invalid::new(
                "cluster.partition",
                format!(
                    "`{}`: letters, digits, `_`, `-` and `,` only",
                    self.partition
                ),
            ));
        }
        Ok(())
    }
}

/// Island run errors; each names the file, island or epoch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IslandError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error("{dir}: not an island run (no {PLAN_FILE}); start one with `organism evolve --islands N` or `organism island plan`")]
    NoPlan { dir: PathBuf },
    #[error("island {island}, epoch {epoch}: {message}")]
    Order {
        island: u32,
        epoch: u32,
        message: String,
    },
    #[error("migration after epoch {epoch}: island {island}: {message}")]
    Emigrants {
        epoch: u32,
        island: u32,
        message: String,
    },
    #[error("{0}")]
    Plan(String),
}

/// The plan's file in an island run's folder.
pub const PLAN_FILE: &str = "islands.plan";
const PLAN_MAGIC: &[u8; 8] = b"ORGNSMIP";
const EMIGRANTS_MAGIC: &[u8; 8] = b"ORGNSMEM";
const MIGRATION_MAGIC: &[u8; 8] = b"ORGNSMMG";
const SHARED_MAGIC: &[u8; 8] = b"ORGNSMSC";

/// What an island run is: written once by the run's start, rewritten only to move its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The run, its islands in `run.islands`.
    pub run: RunSpec,
    /// The data's fingerprint ([`checkpoint::fingerprint`]).
    pub fingerprint: u64,
    /// The seeds' gene specs, as a checkpoint records them.
    pub specs: Vec<SeedPrint>,
    /// The run's last generation.
    pub generations: u32,
}

impl Plan {
    /// The islands.
    ///
    /// # Panics
    /// Never for a plan [`read_plan`] returned (it checks the spec is there).
    pub fn spec(&self) -> IslandSpec {
        self.run.islands.expect("an island plan has islands")
    }

    pub fn epochs(&self) -> u32 {
        self.spec().epochs(self.generations)
    }

    /// The run spec of one island's own checkpoints: the run's, one population.
    pub fn island_run(&self) -> RunSpec {
        RunSpec {
            islands: None,
            ..self.run.clone()
        }
    }
}

/// The folder of island `island`.
pub fn island_dir(dir: &Path, island: u32) -> PathBuf {
    dir.join(format!("island-{island}"))
}

/// Island `island`'s emigrants and fresh evaluations of epoch `epoch`.
pub fn emigrants_path(dir: &Path, island: u32, epoch: u32) -> PathBuf {
    island_dir(dir, island).join(format!("emigrants-{epoch}.bin"))
}

/// The folder of the migrations and the shared cache.
pub fn shared_dir(dir: &Path) -> PathBuf {
    dir.join("shared")
}

/// The migration after epoch `epoch`.
pub fn migration_path(dir: &Path, epoch: u32) -> PathBuf {
    shared_dir(dir).join(format!("migration-{epoch}.bin"))
}

/// The evaluations of epoch `epoch` merged into the shared cache.
pub fn shared_cache_path(dir: &Path, epoch: u32) -> PathBuf {
    shared_dir(dir).join(format!("cache-{epoch}.bin"))
}

/// What an island sends after an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emigrants {
    pub island: u32,
    pub epoch: u32,
    /// The island's best `migrants` members.
    pub members: Vec<Member>,
    /// The epoch's fresh evaluations, in key order.
    pub fresh: Vec<(CacheKey, Evaluation)>,
}

/// A migration: each island's immigrants for the next epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    pub epoch: u32,
    pub immigrants: Vec<Vec<Member>>,
}

/// The scope of a shared cache file: evaluations are reused only for the same data, costs and
/// scoring, and the same engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedCache {
    pub epoch: u32,
    /// The data's fingerprint.
    pub fingerprint: u64,
    /// FNV-1a of the run spec's scoring parts (split, aggregation, costs, data, regime,
    /// portfolio, worlds).
    pub scoring: u64,
    /// The engine's version (the crate's).
    pub engine: String,
    pub entries: Vec<(CacheKey, Evaluation)>,
}

fn scoring_digest(run: &RunSpec) -> Result<u64, CheckpointError> {
    let scoring = (
        &run.split,
        &run.aggregation,
        &run.backtest,
        &run.data,
        &run.regime,
        &run.portfolio,
        &run.worlds,
    );
    let bytes = bincode::serde::encode_to_vec(scoring, bincode::config::standard())
        .map_err(|e| CheckpointError::Encode(e.to_string()))?;
    Ok(checkpoint::fnv1a(&bytes))
}

fn write_sealed<T: Serialize>(path: &Path, magic: &[u8; 8], v: &T) -> Result<(), IslandError> {
    let bytes = checkpoint::seal(magic, v)?;
    crate::market::csv::write_atomic(path, &bytes).map_err(CheckpointError::from)?;
    Ok(())
}

fn read_sealed<T: serde::de::DeserializeOwned>(
    path: &Path,
    magic: &[u8; 8],
) -> Result<T, CheckpointError> {
    let bytes = fs::read(path).map_err(|source| CheckpointError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    checkpoint::open(magic, &bytes, path)
}

/// Writes the plan of an island run into `dir`.
///
/// # Errors
/// When it cannot be written.
pub fn write_plan(dir: &Path, plan: &Plan) -> Result<(), IslandError> {
    fs::create_dir_all(dir).map_err(|source| CheckpointError::WriteIo {
        file: dir.to_path_buf(),
        source,
    })?;
    write_sealed(&dir.join(PLAN_FILE), PLAN_MAGIC, plan)
}

/// Whether `dir` holds an island run.
pub fn is_island_run(dir: &Path) -> bool {
    dir.join(PLAN_FILE).is_file()
}

/// Reads and checks the plan of the island run in `dir`.
///
/// # Errors
/// [`IslandError::NoPlan`], or the file's error.
pub fn read_plan(dir: &Path) -> Result<Plan, IslandError> {
    let path = dir.join(PLAN_FILE);
    if !path.exists() {
        return Err(IslandError::NoPlan {
            dir: dir.to_path_buf(),
        });
    }
    let plan: Plan = read_sealed(&path, PLAN_MAGIC)?;
    let bad = |message: String| CheckpointError::Content {
        file: path.clone(),
        message,
    };
    let Some(spec) = plan.run.islands else {
        return Err(bad("the plan has no islands".into()).into());
    };
    spec.validate(plan.run.settings.population, plan.generations)
        .map_err(|e| bad(e.to_string()))?;
    Ok(plan)
}

/// Where one island-epoch task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Its emigrants file is written (and reads back).
    Done,
    /// A live process holds the island's lock and the epoch is under way.
    Running,
    /// It started (checkpoints past the epoch's start, or an unreadable emigrants file) and
    /// no process holds the island.
    Failed,
    /// Not started.
    Missing,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::Missing => "missing",
        }
    }
}

/// Whether island `island`'s epoch `epoch` is done: its emigrants file reads back.
pub fn epoch_done(dir: &Path, island: u32, epoch: u32) -> bool {
    read_sealed::<Emigrants>(&emigrants_path(dir, island, epoch), EMIGRANTS_MAGIC).is_ok()
}

/// Whether the migration after epoch `epoch` is done.
pub fn migration_done(dir: &Path, epoch: u32) -> bool {
    read_sealed::<Migration>(&migration_path(dir, epoch), MIGRATION_MAGIC).is_ok()
        && read_sealed::<SharedCache>(&shared_cache_path(dir, epoch), SHARED_MAGIC).is_ok()
}

/// Each island × epoch task's state (rows by island, columns by epoch) and each migration's
/// (done or not), from the files alone.
pub fn status(dir: &Path, plan: &Plan) -> (Vec<Vec<TaskState>>, Vec<bool>) {
    let spec = plan.spec();
    let epochs = plan.epochs();
    let tasks = (0..spec.count)
        .map(|i| {
            let idir = island_dir(dir, i);
            let held = folder::holder_alive(&idir);
            let newest = folder::generations(&idir).last().copied();
            let done: Vec<bool> = (0..epochs).map(|e| epoch_done(dir, i, e)).collect();
            (0..epochs)
                .map(|e| {
                    let ready = e == 0 || done[e as usize - 1];
                    let begun = emigrants_path(dir, i, e).exists()
                        || newest.is_some_and(|g| g > e * spec.epoch || e == 0);
                    if done[e as usize] {
                        TaskState::Done
                    } else if held && ready {
                        TaskState::Running
                    } else if begun && ready {
                        TaskState::Failed
                    } else {
                        TaskState::Missing
                    }
                })
                .collect()
        })
        .collect();
    let migrations = (0..epochs.saturating_sub(1))
        .map(|e| migration_done(dir, e))
        .collect();
    (tasks, migrations)
}

/// The shared cache known at the start of epoch `epoch`: the evaluations merged by the
/// migrations before it, each file checked against the run's data, scoring and engine.
fn shared_cache(dir: &Path, plan: &Plan, epoch: u32) -> Result<Cache, IslandError> {
    let scoring = scoring_digest(&plan.run)?;
    let mut cache = Cache::new();
    for e in 0..epoch {
        let path = shared_cache_path(dir, e);
        let s: SharedCache = read_sealed(&path, SHARED_MAGIC)?;
        if s.epoch != e
            || s.fingerprint != plan.fingerprint
            || s.scoring != scoring
            || s.engine != env!("CARGO_PKG_VERSION")
        {
            return Err(CheckpointError::Content {
                file: path,
                message: format!(
                    "evaluations of another epoch, data, scoring or engine (epoch {}, data \
                     {:016x}, engine {}); this run is epoch {e} on data {:016x} with engine {}",
                    s.epoch,
                    s.fingerprint,
                    s.engine,
                    plan.fingerprint,
                    env!("CARGO_PKG_VERSION")
                ),
            }
            .into());
        }
        cache.extend(s.entries);
    }
    Ok(cache)
}

/// How an island-epoch task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EpochOutcome {
    /// It ran; its last generation's checkpoint.
    Ran(PathBuf),
    /// Its files were already written (a retry of a finished task changes nothing).
    AlreadyDone,
    /// An interrupt arrived between generations; the generations done are saved and the task
    /// starts over from the epoch's start next time.
    Interrupted,
}

/// Runs epoch `epoch` of island `island` of the run in `dir` (see the module's summary).
/// Holds the island's folder lock while it runs; `stop` is polled between generations and
/// `each` is told every generation's figures.
///
/// # Errors
/// [`IslandError::Order`] when the epoch before it, or its migration, is not done; the
/// island's lock ([`FolderError::Locked`]); checkpoint errors naming the file.
pub fn run_epoch<P: Problem>(
    dir: &Path,
    plan: &Plan,
    evolver: &Evolver<'_, P>,
    (island, epoch): (u32, u32),
    stop: &dyn Fn() -> bool,
    each: &mut dyn FnMut(&GenStats),
    tick: &(dyn Fn() + Sync),
) -> Result<EpochOutcome, IslandError> {
    let spec = plan.spec();
    let order = |message: String| IslandError::Order {
        island,
        epoch,
        message,
    };
    if island >= spec.count || epoch >= plan.epochs() {
        return Err(order(format!(
            "out of range: the run has islands 0..{} and epochs 0..{}",
            spec.count - 1,
            plan.epochs().saturating_sub(1)
        )));
    }
    let idir = island_dir(dir, island);
    let _lock = RunLock::acquire(&idir)?;
    if epoch_done(dir, island, epoch) {
        return Ok(EpochOutcome::AlreadyDone);
    }
    let seed = plan.run.seed;
    let start = epoch * spec.epoch;
    // The epoch's fresh evaluations (generation 0's count among epoch 0's).
    let mut fresh: Vec<(CacheKey, Evaluation)> = Vec::new();
    let (mut ck, mut saver) = if epoch == 0 {
        let mut saver = Checkpointer::new_run(&idir, None)?;
        let state = evolver.island_start(seed, island, tick);
        fresh.extend(state.fresh.iter().cloned());
        let mut ck = Checkpoint {
            run: plan.island_run(),
            fingerprint: plan.fingerprint,
            specs: plan.specs.clone(),
            cache: checkpoint::CacheRef::default(),
            state,
        };
        saver.save(&mut ck)?;
        if let Some(s) = ck.state.history.last() {
            each(s);
        }
        (ck, saver)
    } else {
        if !epoch_done(dir, island, epoch - 1) {
            return Err(order(format!(
                "epoch {} of this island is not done (run `organism island run {} --island \
                 {island} --epoch {}` first)",
                epoch - 1,
                dir.display(),
                epoch - 1
            )));
        }
        if !migration_done(dir, epoch - 1) {
            return Err(order(format!(
                "the migration after epoch {} is not done (run `organism island migrate {} \
                 --epoch {}` first)",
                epoch - 1,
                dir.display(),
                epoch - 1
            )));
        }
        let file = path_for(&idir, start);
        let mut ck = checkpoint::read(&file)?;
        if ck.fingerprint != plan.fingerprint || ck.run != plan.island_run() {
            return Err(order(format!(
                "{} belongs to another run (its spec or data differ from the plan's)",
                file.display()
            )));
        }
        // Continuing from the epoch's start cuts a failed attempt's blocks off the cache log.
        let saver = Checkpointer::resume(&file, &mut ck, &idir, None)?;
        let migration: Migration = read_sealed(&migration_path(dir, epoch - 1), MIGRATION_MAGIC)?;
        let came = migration
            .immigrants
            .get(island as usize)
            .cloned()
            .unwrap_or_default();
        let shared = shared_cache(dir, plan, epoch)?;
        evolver.island_arrive(&mut ck.state, (seed, island, epoch), came, &shared);
        (ck, saver)
    };
    let mut last = path_for(&idir, ck.state.generation);
    while ck.state.generation < start + spec.epoch {
        if stop() {
            return Ok(EpochOutcome::Interrupted);
        }
        let stats = evolver.step(&mut ck.state, tick);
        fresh.extend(ck.state.fresh.iter().cloned());
        last = saver.save(&mut ck)?;
        each(&stats);
    }
    // Chosen after the last epoch too: a run continued to more generations migrates them.
    let members =
        evolver.island_emigrants(&ck.state, (seed, island, epoch), spec.migrants as usize);
    fresh.sort_by(|a, b| a.0.cmp(&b.0));
    fresh.dedup_by(|a, b| a.0 == b.0);
    write_sealed(
        &emigrants_path(dir, island, epoch),
        EMIGRANTS_MAGIC,
        &Emigrants {
            island,
            epoch,
            members,
            fresh,
        },
    )?;
    Ok(EpochOutcome::Ran(last))
}

/// Every island's emigrants of epoch `epoch`, checked.
fn all_emigrants(dir: &Path, plan: &Plan, epoch: u32) -> Result<Vec<Emigrants>, IslandError> {
    let spec = plan.spec();
    (0..spec.count)
        .map(|i| {
            let path = emigrants_path(dir, i, epoch);
            let err = |message: String| IslandError::Emigrants {
                epoch,
                island: i,
                message,
            };
            if !path.exists() {
                return Err(err(format!(
                    "{} is missing: the island has not finished the epoch (run `organism island \
                     run {} --island {i} --epoch {epoch}`)",
                    path.display(),
                    dir.display()
                )));
            }
            let em: Emigrants =
                read_sealed(&path, EMIGRANTS_MAGIC).map_err(|e| err(e.to_string()))?;
            let want = spec.migrants as usize;
            if em.island != i || em.epoch != epoch || em.members.len() != want {
                return Err(err(format!(
                    "{}: island {} epoch {} with {} emigrants; expected island {i} epoch {epoch} \
                     with {want}",
                    path.display(),
                    em.island,
                    em.epoch,
                    em.members.len()
                )));
            }
            Ok(em)
        })
        .collect()
}

/// The migration after epoch `epoch` (not the last): reads every island's emigrants (a missing
/// or corrupt file is an error naming the island), writes the epoch's evaluations into the
/// shared cache and each island's immigrants. Running it again writes the same bytes. Holds
/// the lock of `shared/`.
///
/// # Errors
/// [`IslandError::Emigrants`] naming the island; write errors.
pub fn migrate(dir: &Path, plan: &Plan, epoch: u32) -> Result<(), IslandError> {
    if epoch + 1 >= plan.epochs() {
        return Err(IslandError::Plan(format!(
            "epoch {epoch} is the run's last (epochs 0..{}): it has no migration; `organism \
             island finish {}` ends the run",
            plan.epochs().saturating_sub(1),
            dir.display()
        )));
    }
    let _lock = RunLock::acquire(&shared_dir(dir))?;
    let all = all_emigrants(dir, plan, epoch)?;
    let mut merged: BTreeMap<CacheKey, Evaluation> = BTreeMap::new();
    let mut emigrants = Vec::with_capacity(all.len());
    for em in all {
        merged.extend(em.fresh);
        emigrants.push(em.members);
    }
    write_sealed(
        &shared_cache_path(dir, epoch),
        SHARED_MAGIC,
        &SharedCache {
            epoch,
            fingerprint: plan.fingerprint,
            scoring: scoring_digest(&plan.run)?,
            engine: env!("CARGO_PKG_VERSION").to_string(),
            entries: merged.into_iter().collect(),
        },
    )?;
    write_sealed(
        &migration_path(dir, epoch),
        MIGRATION_MAGIC,
        &Migration {
            epoch,
            immigrants: immigrants(&plan.spec(), &emigrants),
        },
    )?;
    Ok(())
}

/// The end of the run after its last epoch: `genT.bin` and `cache.log` in `dir` (see the
/// module's summary). Returns the checkpoint and its path. The caller holds the run folder's
/// lock.
///
/// # Errors
/// [`IslandError::Emigrants`] when an island has not finished the last epoch; read and write
/// errors.
pub fn finish(dir: &Path, plan: &Plan) -> Result<(Checkpoint, PathBuf), IslandError> {
    let spec = plan.spec();
    let epochs = plan.epochs();
    let last = all_emigrants(dir, plan, epochs - 1)?;
    let mut cache = shared_cache(dir, plan, epochs - 1)?;
    for em in last {
        cache.extend(em.fresh);
    }
    let states = (0..spec.count)
        .map(|i| {
            let file = path_for(&island_dir(dir, i), plan.generations);
            checkpoint::read(&file).map(|c| c.state)
        })
        .collect::<Result<Vec<State>, _>>()?;
    let (population, history) = combine(&states);
    // A run continued to more generations keeps its earlier checkpoint readable: the log goes
    // on from it with the evaluations it lacks.
    let earlier = folder::generations(dir)
        .into_iter()
        .rfind(|&g| g < plan.generations)
        .map(|g| path_for(dir, g));
    let (mut log, known) = match earlier {
        Some(file) => {
            let old = checkpoint::read(&file)?;
            CacheLog::resume(&file, old.cache, dir)?
        }
        None => (CacheLog::create(dir)?, Cache::new()),
    };
    let entries: Vec<(CacheKey, Evaluation)> = cache
        .into_iter()
        .filter(|(k, _)| !known.contains_key(k))
        .collect();
    let at = log.append(plan.generations, &entries)?;
    let ck = Checkpoint {
        run: plan.run.clone(),
        fingerprint: plan.fingerprint,
        specs: plan.specs.clone(),
        cache: at,
        state: State {
            generation: plan.generations,
            rng: ChaCha8Rng::seed_from_u64(island_seed(
                plan.run.seed,
                spec.count,
                epochs,
                "combined",
            )),
            population,
            cache: BTreeMap::new(),
            fresh: Vec::new(),
            history,
        },
    };
    let path = path_for(dir, plan.generations);
    checkpoint::write(&path, &ck)?;
    Ok((ck, path))
}

/// Bytes an epoch moves between tasks: every island's emigrants file and the migration's two
/// files (what a cluster's shared disk carries besides the islands' own checkpoints).
pub fn exchanged_bytes(dir: &Path, plan: &Plan, epoch: u32) -> u64 {
    let size = |p: PathBuf| fs::metadata(p).map_or(0, |m| m.len());
    (0..plan.spec().count)
        .map(|i| size(emigrants_path(dir, i, epoch)))
        .sum::<u64>()
        + size(migration_path(dir, epoch))
        + size(shared_cache_path(dir, epoch))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{evolution::Settings, genome::SeedSpec};

    /// A problem of one seed whose score is a smooth function of its genes, counting calls.
    struct Counting {
        spec: &'static SeedSpec,
        calls: AtomicUsize,
    }

    impl Problem for Counting {
        fn specs(&self) -> Vec<&SeedSpec> {
            vec![self.spec]
        }
        fn evaluate(
            &self,
            _: u16,
            genes: &[f64],
            _: Option<&crate::genome::program::Program>,
        ) -> Evaluation {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let x: Vec<f64> = genes.iter().map(|g| g / 100.0).collect();
            let a = x.first().copied().unwrap_or(0.0);
            let b = x.get(1).copied().unwrap_or(0.0);
            Evaluation::new(a - b * b, 1.0 - (a - 0.5).abs(), b, 100.0 * a * b, 0.0)
        }
    }

    fn problem() -> Counting {
        Counting {
            spec: &crate::seeds::find("ema_crossover").unwrap().spec,
            calls: AtomicUsize::new(0),
        }
    }

    fn spec(topology: Topology) -> IslandSpec {
        IslandSpec {
            count: 3,
            epoch: 3,
            migrants: 2,
            topology,
        }
    }

    #[test]
    fn ring_and_full_topologies_send_where_they_say() {
        let ring = spec(Topology::Ring);
        assert_eq!(ring.sources(0), vec![2]);
        assert_eq!(ring.sources(2), vec![1]);
        assert_eq!(ring.incoming(), 2);
        let full = spec(Topology::Full);
        assert_eq!(full.sources(1), vec![0, 2]);
        assert_eq!(full.incoming(), 4);
        let m = |seed: u16| Member {
            seed,
            genes: vec![],
            program: None,
            eval: Evaluation::new(0.0, 0.0, 0.0, 0.0, 0.0),
            rank: 0,
            crowding: 0.0,
        };
        let out = vec![vec![m(0), m(0)], vec![m(1), m(1)], vec![m(2), m(2)]];
        let ring_in = immigrants(&ring, &out);
        assert_eq!(
            ring_in[0].iter().map(|m| m.seed).collect::<Vec<_>>(),
            vec![2, 2]
        );
        assert_eq!(
            ring_in[1].iter().map(|m| m.seed).collect::<Vec<_>>(),
            vec![0, 0]
        );
        let full_in = immigrants(&full, &out);
        assert_eq!(
            full_in[2].iter().map(|m| m.seed).collect::<Vec<_>>(),
            vec![0, 0, 1, 1]
        );
        // Four incoming of a population of four leaves no room.
        assert!(full.validate(4, 9).is_err());
        assert!(full.validate(6, 9).is_ok());
        let e = full.validate(6, 10).unwrap_err().to_string();
        assert!(
            e.contains("evolution.epoch") && e.contains("multiple"),
            "{e}"
        );
    }

    #[test]
    fn shared_cache_hits_never_change_results() {
        let settings = Settings::params(8, 0.9, 20.0, 20.0, 0.25);
        let spec = spec(Topology::Ring);
        // With the islands' evaluations shared at every migration.
        let shared = problem();
        let ev = Evolver::new(&shared, settings.clone());
        let run = evolve_in_memory(&ev, &spec, 7, 9, &|| {});
        let shared_calls = shared.calls.load(Ordering::SeqCst);
        let counted: usize = run.history.iter().map(|h| h.evaluations).sum();
        assert_eq!(
            counted, shared_calls,
            "history counts every evaluation made"
        );
        // The same islands with no cache at all: every genome is evaluated every time.
        let bare = problem();
        let ev = Evolver::new(&bare, settings);
        let mut states: Vec<State> = (0..3).map(|i| ev.island_start(7, i, &|| {})).collect();
        let mut arriving = vec![Vec::new(); 3];
        for e in 0..3 {
            let mut out = Vec::new();
            for (i, s) in states.iter_mut().enumerate() {
                let i = i as u32;
                if e > 0 {
                    let came = std::mem::take(&mut arriving[i as usize]);
                    ev.island_arrive(s, (7, i, e), came, &Cache::new());
                }
                for _ in 0..3 {
                    s.cache.clear();
                    ev.step(s, &|| {});
                }
                out.push(ev.island_emigrants(s, (7, i, e), 2));
            }
            arriving = immigrants(&spec, &out);
        }
        let (population, _) = combine(&states);
        assert_eq!(
            run.population, population,
            "the same members, ranks and scores"
        );
        let bare_calls = bare.calls.load(Ordering::SeqCst);
        // 3 islands x (8 at generation 0 + 9 generations x 8 offspring), all evaluated but
        // for a twin within one generation's offspring.
        assert!(bare_calls <= 3 * (8 + 9 * 8) && bare_calls > 3 * (8 + 9 * 8) - 8);
        assert!(
            shared_calls < bare_calls,
            "the cache saves evaluations: {shared_calls} of {bare_calls}"
        );
        // The run knows every distinct genome any island evaluated.
        assert!(run.cache.len() <= shared_calls && run.cache.len() > 3 * 8);
    }

    #[test]
    fn island_streams_differ_by_island_epoch_and_purpose() {
        let a = island_seed(42, 0, 0, "evolve");
        assert_ne!(a, island_seed(42, 1, 0, "evolve"));
        assert_ne!(a, island_seed(42, 0, 1, "evolve"));
        assert_ne!(a, island_seed(42, 0, 0, "emigrants"));
        assert_ne!(a, island_seed(43, 0, 0, "evolve"));
        assert_eq!(a, island_seed(42, 0, 0, "evolve"));
    }
}
