//! The run executor, in argmin's shape: it owns the generation loop, writes a checkpoint after
//! every generation (the fresh cache entries appended to the cache log first, then `genN.bin`
//! atomically, then pruning for `--keep-last`), tells its [`Observer`]s, and stops with a
//! [`TerminationReason`] — the target generation reached, or an interrupt between generations.
//! The command line only parses, builds and prints.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use super::{
    checkpoint::{self, path_for, CacheLog, Checkpoint, CheckpointError, RunSpec, SeedPrint},
    folder, Evolver, GenStats, Problem, State,
};

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationReason {
    /// The target generation is complete.
    TargetReached,
    /// An interrupt (Ctrl-C) arrived; the last complete generation is saved.
    Interrupted,
}

/// Told about every completed generation (generation 0 included), after its checkpoint is on
/// disk. (Observers that report speed keep their own clock: the executor reads none.)
pub trait Observer {
    fn generation(&mut self, state: &State, stats: &GenStats, checkpoint: &Path);
}

/// Writes a run's checkpoints into one folder.
#[derive(Debug)]
pub struct Checkpointer {
    dir: PathBuf,
    log: CacheLog,
    keep_last: Option<u32>,
}

impl Checkpointer {
    /// Checkpoints of a new run in `dir` (a fresh cache log).
    ///
    /// # Errors
    /// [`CheckpointError`] when the log cannot be created.
    pub fn new_run(dir: &Path, keep_last: Option<u32>) -> Result<Self, CheckpointError> {
        Ok(Self {
            dir: dir.to_path_buf(),
            log: CacheLog::create(dir)?,
            keep_last,
        })
    }

    /// Continues the run of `ck` (read from `ck_file`) in `dir`: loads its fitness cache into
    /// `ck.state` and continues the cache log from its prefix.
    ///
    /// # Errors
    /// [`CheckpointError`] when the cache log is missing or does not match.
    pub fn resume(
        ck_file: &Path,
        ck: &mut Checkpoint,
        dir: &Path,
        keep_last: Option<u32>,
    ) -> Result<Self, CheckpointError> {
        let (log, cache) = CacheLog::resume(ck_file, ck.cache, dir)?;
        ck.state.cache = cache;
        ck.state.fresh.clear();
        Ok(Self {
            dir: dir.to_path_buf(),
            log,
            keep_last,
        })
    }

    /// Saves the current generation of `ck`; returns the checkpoint's path.
    ///
    /// # Errors
    /// [`CheckpointError`] when writing fails (earlier checkpoints stay intact).
    pub fn save(&mut self, ck: &mut Checkpoint) -> Result<PathBuf, CheckpointError> {
        let g = ck.state.generation;
        let fresh = std::mem::take(&mut ck.state.fresh);
        ck.cache = self.log.append(g, &fresh)?;
        let path = path_for(&self.dir, g);
        checkpoint::write(&path, ck)?;
        tracing::debug!(
            generation = g,
            checkpoint = %path.display(),
            cache_entries = fresh.len(),
            cache_log_bytes = ck.cache.bytes,
            "checkpoint written"
        );
        if let Some(k) = self.keep_last {
            folder::prune(&self.dir, g, k.max(1))?;
        }
        Ok(path)
    }
}

/// Runs an evolver to a target generation with checkpoints and observers.
pub struct Executor<'a, P: Problem> {
    evolver: Evolver<'a, P>,
    checkpointer: Checkpointer,
    observers: Vec<&'a mut dyn Observer>,
    stop: Arc<AtomicBool>,
}

impl<'a, P: Problem> Executor<'a, P> {
    /// `stop` is polled between generations (set it from a Ctrl-C handler).
    pub fn new(evolver: Evolver<'a, P>, checkpointer: Checkpointer, stop: Arc<AtomicBool>) -> Self {
        Self {
            evolver,
            checkpointer,
            observers: Vec::new(),
            stop,
        }
    }

    /// Adds an observer.
    pub fn observe(&mut self, o: &'a mut dyn Observer) {
        self.observers.push(o);
    }

    fn saved(&mut self, ck: &mut Checkpoint) -> Result<(), CheckpointError> {
        let path = self.checkpointer.save(ck)?;
        if let Some(stats) = ck.state.history.last() {
            for o in &mut self.observers {
                o.generation(&ck.state, stats, &path);
            }
        }
        Ok(())
    }

    /// Generation 0 of a new run: the initial population, evaluated, ranked and saved.
    ///
    /// # Errors
    /// [`CheckpointError`] when the checkpoint cannot be written.
    pub fn start(
        &mut self,
        run: RunSpec,
        fingerprint: u64,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Checkpoint, CheckpointError> {
        let specs = self
            .evolver
            .problem
            .specs()
            .into_iter()
            .map(SeedPrint::of)
            .collect();
        let state = self.evolver.init(run.seed, tick);
        let mut ck = Checkpoint {
            run,
            fingerprint,
            specs,
            cache: checkpoint::CacheRef::default(),
            state,
        };
        self.saved(&mut ck)?;
        Ok(ck)
    }

    /// Steps `ck` until generation `target` or an interrupt, saving every generation.
    ///
    /// # Errors
    /// [`CheckpointError`] when a checkpoint cannot be written.
    pub fn run(
        &mut self,
        ck: &mut Checkpoint,
        target: u32,
        tick: &(dyn Fn() + Sync),
    ) -> Result<TerminationReason, CheckpointError> {
        while ck.state.generation < target {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(TerminationReason::Interrupted);
            }
            self.evolver.step(&mut ck.state, tick);
            self.saved(ck)?;
        }
        Ok(TerminationReason::TargetReached)
    }
}
