//! `organism evolve` and `organism evolve resume`: the main job. Progress, per-generation lines,
//! checkpoints after every generation, Ctrl-C handling, and the final front with validation.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use organism::{
    config::Config,
    evolution::{
        checkpoint::{self, fingerprint, path_for, Checkpoint, RunSpec},
        executor::{Checkpointer, Executor, Observer, TerminationReason},
        folder::{self, RunLock},
        problem::{Aggregation, Split, UniverseProblem},
        Evaluation, Evolver, GenStats, Member, Settings, State,
    },
    genome::SeedSpec,
    market::{csv::write_atomic, load_universe},
    seeds::{self, Prepared, SeedEntry},
};

use super::DataArgs;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub resume: Option<ResumeCommand>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Run until this generation (default: evolution.generations).
    #[arg(long)]
    pub generations: Option<u32>,
    /// Individuals per generation (default: evolution.population).
    #[arg(long)]
    pub population: Option<usize>,
    /// RNG seed of the run (default: evolution.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Checkpoint folder (default: evolution.out).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seeds in the starting population, comma-separated (default: evolution.seeds, all).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// Replace the checkpoints of another run in the checkpoint folder.
    #[arg(long)]
    pub overwrite: bool,
    /// Keep only the newest K checkpoints (default: evolution.keep_last; 0 keeps all).
    #[arg(long, value_name = "K")]
    pub keep_last: Option<u32>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(clap::Args, Debug, Clone, Copy)]
pub struct OutputArgs {
    /// No progress bar and no per-generation lines; only the final summary.
    #[arg(long)]
    pub quiet: bool,
    /// Print one JSON object per generation and a final JSON summary (for scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum ResumeCommand {
    /// Continue a run from a checkpoint exactly as if it had not stopped.
    Resume {
        /// The checkpoint, e.g. populations/gen42.bin.
        file: PathBuf,
        /// Run until this generation (default: evolution.generations of the current config).
        #[arg(long)]
        generations: Option<u32>,
        /// Checkpoint folder (default: the checkpoint's own folder).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Data to continue on (default: the data the run started on).
        #[arg(long, value_name = "DIR|FILE")]
        data: Option<PathBuf>,
        /// Source prefix of the candle files given with --data.
        #[arg(long)]
        source: Option<String>,
        /// A config whose evolution, costs and data settings must match the run's.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Continue even if the data or the config differ from the run's (the population is
        /// re-evaluated on the new data).
        #[arg(long)]
        force: bool,
        /// Keep only the newest K checkpoints (default: evolution.keep_last; 0 keeps all).
        #[arg(long, value_name = "K")]
        keep_last: Option<u32>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

fn run_spec(cfg: &Config, names: Vec<String>) -> RunSpec {
    let e = &cfg.evolution;
    let mut data = cfg.data_selection();
    // Stored absolute, so a run resumes from any working directory.
    data.path = data.path.map(|p| std::path::absolute(&p).unwrap_or(p));
    RunSpec {
        seed: e.seed,
        settings: Settings {
            population: e.population,
            crossover_prob: e.crossover_prob,
            eta_crossover: e.eta_crossover,
            eta_mutation: e.eta_mutation,
            mutation_prob: e.mutation_prob,
        },
        split: Split {
            train: e.train_fraction,
            validation: e.validation_fraction,
        },
        aggregation: Aggregation {
            worst_coin_weight: e.worst_coin_weight,
            min_trades: e.min_trades,
        },
        backtest: cfg.backtest_config(),
        data,
        seeds: names,
    }
}

fn seed_entries(names: &[String]) -> Result<Vec<&'static SeedEntry>> {
    if names.is_empty() {
        return Ok(seeds::registry()?.iter().collect());
    }
    names
        .iter()
        .map(|n| seeds::find(n).map_err(anyhow::Error::msg))
        .collect()
}

/// Loads the run's data and builds the problem; returns it with the data fingerprint.
fn build_problem(run: &RunSpec, quiet: bool) -> Result<(UniverseProblem, u64, i64)> {
    let u = load_universe(&run.data).context("loading market data")?;
    if !quiet {
        for note in &u.notes {
            eprintln!("note: {note}");
        }
    }
    let fp = fingerprint(&u.markets);
    let seg = run.split.apply(&u);
    if seg.train.is_empty() {
        bail!("no coin has bars in the training part of {}", u.origin);
    }
    let entries = seed_entries(&run.seeds)?;
    Ok((
        UniverseProblem {
            entries,
            train: seg.train.into_iter().map(Prepared::new).collect(),
            validation: seg.validation.into_iter().map(Prepared::new).collect(),
            backtest: run.backtest,
            aggregation: run.aggregation,
        },
        fp,
        seg.holdout_from,
    ))
}

/// The Ctrl-C flag, installed before anything else: the first Ctrl-C asks the run to stop after
/// the generation under way (generation 0 included); a second one exits at once (the last
/// complete checkpoint is already on disk).
fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    stop
}

pub fn run(args: Args) -> Result<()> {
    let stop = interrupt_flag();
    if let Some(ResumeCommand::Resume {
        file,
        generations,
        out,
        data,
        source,
        config,
        force,
        keep_last,
        output,
    }) = args.resume
    {
        return resume(
            &file,
            generations,
            out,
            (data, source),
            config,
            force,
            keep_last,
            output,
            stop,
        );
    }
    let mut cfg = args.data.config()?;
    if let Some(p) = args.population {
        if p < 4 || p % 2 != 0 {
            bail!("--population {p} must be an even number >= 4");
        }
        cfg.evolution.population = p;
    }
    if let Some(s) = args.seed {
        cfg.evolution.seed = s;
    }
    if let Some(s) = args.seeds {
        cfg.evolution.seeds = s;
    }
    let target = args.generations.unwrap_or(cfg.evolution.generations);
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(&cfg.evolution.out));
    let names: Vec<String> = seed_entries(&cfg.evolution.seeds)?
        .iter()
        .map(|e| e.spec.name.clone())
        .collect();
    let run = run_spec(&cfg, names);
    let mut lock = RunLock::acquire(&out)?;
    folder::claim_for_new_run(&out, args.overwrite)?;
    let (problem, fp, holdout_from) = build_problem(&run, args.output.quiet || args.output.json)?;
    let mut reporter = Reporter::new(args.output, target, run.settings.population);
    if !args.output.quiet && !args.output.json {
        reporter.println(format!(
            "evolving {} seeds x {} individuals on {} coins ({} training bars each, validation next, \
             holdout from {} UTC untouched), checkpoints in {}",
            problem.entries.len(),
            run.settings.population,
            problem.train.len(),
            problem.train[0].market.candles.len(),
            super::format_ts(holdout_from),
            out.display()
        ));
    }
    let settings = run.settings.clone();
    let keep_last = Some(args.keep_last.unwrap_or(cfg.evolution.keep_last)).filter(|&k| k > 0);
    let checkpointer = Checkpointer::new_run(&out, keep_last)?;
    let reason;
    let ck;
    {
        let mut exec = Executor::new(Evolver::new(&problem, settings), checkpointer, stop);
        let bar = reporter.bar.clone();
        exec.observe(&mut reporter);
        let tick = || bar.inc(1);
        let mut c = exec.start(run, fp, &tick)?;
        reason = exec.run(&mut c, target, &tick)?;
        ck = c;
    }
    conclude(&ck, &problem, &out, reporter, reason, target, &mut lock)
}

#[allow(clippy::too_many_arguments)]
fn resume(
    file: &Path,
    generations: Option<u32>,
    out: Option<PathBuf>,
    (data, source): (Option<PathBuf>, Option<String>),
    config: Option<PathBuf>,
    force: bool,
    keep_last: Option<u32>,
    output: OutputArgs,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let mut ck = checkpoint::read(file)?;
    let current = match &config {
        Some(p) => Config::load(p)?,
        None => Config::defaults()?,
    };
    if let Some(path) = config {
        let theirs = run_spec(&current, ck.run.seeds.clone());
        let differ = ck.run.differences(&theirs);
        if !differ.is_empty() {
            if !force {
                bail!(
                    "{}: the run was made with a different config ({} differ from {}); \
                     resume without --config, or add --force to continue with the new one",
                    file.display(),
                    differ.join(", "),
                    path.display()
                );
            }
            ck.run.settings = theirs.settings;
            ck.run.split = theirs.split;
            ck.run.aggregation = theirs.aggregation;
            ck.run.backtest = theirs.backtest;
            ck.run.data = theirs.data;
        }
    }
    if let Some(d) = data {
        ck.run.data.path = Some(std::path::absolute(&d).unwrap_or(d));
    }
    if let Some(s) = source {
        ck.run.data.source = s;
    }
    let entries = seed_entries(&ck.run.seeds)?;
    let specs: Vec<&SeedSpec> = entries.iter().map(|e| &e.spec).collect();
    checkpoint::check_specs(&ck.specs, &specs).map_err(|m| {
        anyhow::anyhow!(
            "{}: the seeds' gene specs changed since this run was made ({m}); the run cannot be resumed with this build",
            file.display()
        )
    })?;
    let target = generations.unwrap_or(current.evolution.generations);
    if target <= ck.state.generation {
        println!(
            "{} is at generation {}; nothing to do for --generations {target}",
            file.display(),
            ck.state.generation
        );
        return Ok(());
    }
    let out = out.unwrap_or_else(|| {
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let keep_last = Some(keep_last.unwrap_or(current.evolution.keep_last)).filter(|&k| k > 0);
    let mut lock = RunLock::acquire(&out)?;
    // Continuing into another folder: it must not hold another run's checkpoints.
    let own = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if std::fs::canonicalize(own).ok() != std::fs::canonicalize(&out).ok() {
        folder::claim_for_new_run(&out, false)?;
    }
    let (problem, fp, _) = build_problem(&ck.run, output.quiet || output.json)?;
    let evolver = Evolver::new(&problem, ck.run.settings.clone());
    let checkpointer = if fp != ck.fingerprint {
        if !force {
            bail!(
                "{}: the run was made on different market data (fingerprint {:016x}, now {:016x}); \
                 resume on the original data, or add --force to continue on this data",
                file.display(),
                ck.fingerprint,
                fp
            );
        }
        ck.fingerprint = fp;
        evolver.reevaluate(&mut ck.state);
        // Cached results are stale on the new data: the cache log starts again.
        Checkpointer::new_run(&out, keep_last)?
    } else {
        Checkpointer::resume(file, &mut ck, &out, keep_last)?
    };
    let mut reporter = Reporter::new(
        output,
        target - ck.state.generation,
        ck.run.settings.population,
    );
    if !output.quiet && !output.json {
        reporter.println(format!(
            "resuming {} at generation {} (until {target}), checkpoints in {}",
            file.display(),
            ck.state.generation,
            out.display()
        ));
    }
    let reason = {
        let bar = reporter.bar.clone();
        let mut exec = Executor::new(evolver, checkpointer, stop);
        exec.observe(&mut reporter);
        exec.run(&mut ck, target, &|| bar.inc(1))?
    };
    conclude(&ck, &problem, &out, reporter, reason, target, &mut lock)
}

/// The end of a run: the front and history files, then the summary, or after an interrupt the
/// way to continue (exit code 130).
fn conclude(
    ck: &Checkpoint,
    problem: &UniverseProblem,
    out: &Path,
    reporter: Reporter,
    reason: TerminationReason,
    target: u32,
    lock: &mut RunLock,
) -> Result<()> {
    reporter.finish();
    match reason {
        TerminationReason::TargetReached => finish(ck, problem, out, reporter.output),
        TerminationReason::Interrupted => {
            write_files(ck, problem, out)?;
            lock.release();
            eprintln!(
                "interrupted: generation {} is complete and saved (with {} and {}); continue with\n  organism evolve resume {} --generations {target}",
                ck.state.generation,
                out.join("front.csv").display(),
                out.join("history.csv").display(),
                path_for(out, ck.state.generation).display()
            );
            std::process::exit(130);
        }
    }
}

/// A genome as `gene=value` pairs (`short`: floats to 4 decimals).
fn genes_of(problem: &UniverseProblem, m: &Member, short: bool) -> String {
    let spec = &problem.entries[m.seed as usize].spec;
    spec.genes
        .iter()
        .zip(&m.genes)
        .map(|(g, v)| {
            let text = if short {
                g.format_short(*v)
            } else {
                g.format(*v)
            };
            format!("{}={text}", g.name)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Validates the first front and writes `front.csv` and `history.csv`; returns the front and
/// its validation evaluations.
fn write_files<'c>(
    ck: &'c Checkpoint,
    problem: &UniverseProblem,
    out: &Path,
) -> Result<(Vec<&'c Member>, Vec<Evaluation>)> {
    let front: Vec<&Member> = ck.state.population.iter().filter(|m| m.rank == 0).collect();
    let validation: Vec<Evaluation> = {
        use rayon::prelude::*;
        front
            .par_iter()
            .map(|m| problem.validate(m.seed, &m.genes))
            .collect()
    };
    let genes_of = |m: &Member, short: bool| genes_of(problem, m, short);
    let mut csv = String::from(
        "seed,genes,feasible,train_sharpe,train_consistency,train_max_drawdown,train_turnover,\
         validation_sharpe,validation_consistency,validation_max_drawdown,validation_turnover\n",
    );
    for (m, v) in front.iter().zip(&validation) {
        let e = &m.eval;
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{}",
            problem.entries[m.seed as usize].spec.name,
            genes_of(m, false),
            e.feasible(),
            e.sharpe(),
            e.consistency(),
            e.drawdown(),
            e.turnover(),
            v.sharpe(),
            v.consistency(),
            v.drawdown(),
            v.turnover()
        );
    }
    write_atomic(&out.join("front.csv"), csv.as_bytes())?;
    let mut hist = String::from(
        "generation,evaluations,best_sharpe,front_size,feasible,hypervolume,diversity\n",
    );
    for h in &ck.state.history {
        let _ = writeln!(
            hist,
            "{},{},{},{},{},{},{}",
            h.generation,
            h.evaluations,
            h.best_sharpe,
            h.front_size,
            h.feasible,
            h.hypervolume,
            h.diversity
        );
    }
    write_atomic(&out.join("history.csv"), hist.as_bytes())?;
    Ok((front, validation))
}

/// The end of a complete run: the files, then the front table (or JSON).
fn finish(
    ck: &Checkpoint,
    problem: &UniverseProblem,
    out: &Path,
    output: OutputArgs,
) -> Result<()> {
    let (front, validation) = write_files(ck, problem, out)?;
    let genes_of = |m: &Member, short: bool| genes_of(problem, m, short);
    if output.json {
        let members: Vec<serde_json::Value> = front
            .iter()
            .zip(&validation)
            .map(|(m, v)| {
                let spec = &problem.entries[m.seed as usize].spec;
                let genes: serde_json::Map<String, serde_json::Value> = spec
                    .genes
                    .iter()
                    .zip(&m.genes)
                    .map(|(g, x)| (g.name.clone(), serde_json::Value::String(g.format(*x))))
                    .collect();
                let obj = |e: &Evaluation| {
                    serde_json::json!({"sharpe": e.sharpe(), "consistency": e.consistency(),
                        "max_drawdown": e.drawdown(), "turnover": e.turnover()})
                };
                serde_json::json!({"seed": spec.name, "genes": genes, "feasible": m.eval.feasible(),
                    "train": obj(&m.eval), "validation": obj(v)})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"generation": ck.state.generation, "front": members,
                "checkpoint": path_for(out, ck.state.generation)})
        );
        return Ok(());
    }
    println!();
    println!(
        "first front after generation {} ({} members; train | validation):",
        ck.state.generation,
        front.len()
    );
    println!(
        "{:<22} {:>7} {:>6} {:>6} {:>7} | {:>7} {:>6} {:>6} {:>7}  genes",
        "seed", "sharpe", "cons", "mdd", "turn/y", "sharpe", "cons", "mdd", "turn/y"
    );
    let mut order: Vec<usize> = (0..front.len()).collect();
    order.sort_by(|&a, &b| front[b].eval.sharpe().total_cmp(&front[a].eval.sharpe()));
    for i in order {
        let (m, v) = (front[i], &validation[i]);
        let e = &m.eval;
        println!(
            "{:<22} {:>7.3} {:>6.2} {:>6.2} {:>7.1} | {:>7.3} {:>6.2} {:>6.2} {:>7.1}  {}{}",
            problem.entries[m.seed as usize].spec.name,
            e.sharpe(),
            e.consistency(),
            e.drawdown(),
            e.turnover(),
            v.sharpe(),
            v.consistency(),
            v.drawdown(),
            v.turnover(),
            if e.feasible() { "" } else { "(infeasible) " },
            genes_of(m, true)
        );
    }
    println!();
    println!(
        "wrote {}, {} and {}",
        path_for(out, ck.state.generation).display(),
        out.join("front.csv").display(),
        out.join("history.csv").display()
    );
    Ok(())
}

/// Progress bar and per-generation lines.
struct Reporter {
    output: OutputArgs,
    bar: ProgressBar,
    population: u64,
    done_generations: std::sync::atomic::AtomicU64,
    /// When the previous generation was reported (or the reporter made).
    last: std::time::Instant,
}

impl Reporter {
    fn new(output: OutputArgs, generations: u32, population: usize) -> Self {
        let total = (u64::from(generations) + 1) * population as u64;
        let bar = if output.quiet || output.json {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} gen {msg} | {pos}/{len} evaluations | {per_sec} | ETA {eta}",
            ) {
                b.set_style(style);
            }
            b
        };
        Self {
            output,
            bar,
            population: population as u64,
            done_generations: 0.into(),
            #[allow(clippy::disallowed_methods)] // the CLI's progress timing
            last: std::time::Instant::now(),
        }
    }

    fn println(&self, line: String) {
        if self.bar.is_hidden() {
            println!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn report(&self, s: &GenStats, secs: f64) {
        let done = self.done_generations.fetch_add(1, Ordering::SeqCst) + 1;
        self.bar.set_position(done * self.population);
        self.bar.set_message(s.generation.to_string());
        let rate = if secs > 0.0 {
            s.evaluations as f64 / secs
        } else {
            0.0
        };
        if self.output.json {
            println!(
                "{}",
                serde_json::json!({"generation": s.generation, "evaluations": s.evaluations,
                    "best_sharpe": if s.best_sharpe.is_finite() { Some(s.best_sharpe) } else { None },
                    "front_size": s.front_size, "feasible": s.feasible,
                    "hypervolume": s.hypervolume, "diversity": s.diversity,
                    "evaluations_per_sec": rate, "seconds": secs})
            );
        } else if !self.output.quiet {
            self.println(format!(
                "gen {:>4}  best sharpe {:>7.3}  front {:>3}  feasible {:>3}  HV {:.4}  diversity {:.2}  evals {:>4} ({:.0}/s)",
                s.generation, s.best_sharpe, s.front_size, s.feasible, s.hypervolume, s.diversity, s.evaluations, rate
            ));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Reporter {
    #[allow(clippy::disallowed_methods)] // the CLI times generations for the progress line
    fn generation(&mut self, _state: &State, stats: &GenStats, _checkpoint: &Path) {
        let now = std::time::Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.report(stats, secs);
    }
}
