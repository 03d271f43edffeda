//! `organism evolve` and `organism evolve resume`: the main job. Progress, per-generation lines,
//! checkpoints after every generation, Ctrl-C handling, and the final front with validation.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::{bail, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use organism::{
    config::Config,
    evolution::{
        checkpoint::{path_for, Checkpoint, RunSpec},
        executor::{Checkpointer, Executor, Observer, TerminationReason},
        folder::{self, RunLock},
        nulls::{SearchFigures, SearchNulls},
        problem::{load_run, LoadedRun, RunProblem},
        summary::{self, Ranked},
        Evolver, GenStats, Member, Mode, Problem as _, State,
    },
    market::{csv::write_atomic, universe::CoinPick},
    seeds,
};

use super::DataArgs;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub resume: Option<ResumeCommand>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub evolution: super::EvolutionArgs,
    /// Checkpoint folder (default: evolution.out).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the checkpoints of another run in the checkpoint folder.
    #[arg(long)]
    pub overwrite: bool,
    /// Keep only the newest K checkpoints (default: evolution.keep_last; 0 keeps all).
    #[arg(long, value_name = "K")]
    pub keep_last: Option<u32>,
    /// After the run, the same search on K null copies of its data (default:
    /// evolution.null_searches).
    #[arg(long, value_name = "K")]
    pub null_searches: Option<usize>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Also write an HTML report of the run (history, first front, ranked members).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Print one JSON object per generation and a final JSON summary (for scripts).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum ResumeCommand {
    /// Continue a run from a checkpoint exactly as if it had not stopped.
    Resume {
        /// The checkpoint, e.g. populations/gen42.bin, or a run folder (its newest checkpoint).
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
        /// The null searches to have beside the run (default: evolution.null_searches); those
        /// done are kept, one interrupted continues.
        #[arg(long, value_name = "K")]
        null_searches: Option<usize>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

pub(super) fn run_spec(cfg: &Config, names: Vec<String>) -> Result<RunSpec> {
    let e = &cfg.evolution;
    let mut data = cfg.data_selection();
    // Stored absolute, so a run resumes from any working directory.
    data.path = data.path.map(|p| std::path::absolute(&p).unwrap_or(p));
    let settings = cfg.evolution.settings();
    let with_portfolio_seeds = names.iter().any(|n| seeds::portfolio::is_portfolio_seed(n));
    let portfolio = if settings.mode == Mode::Portfolio || with_portfolio_seeds {
        let pr = super::portfolio_universe(cfg, &mut data)?;
        // A mixed run's single-coin seeds trade the listed coins too.
        if let (CoinPick::List(c), Mode::Mixed) = (&pr.pick, settings.mode) {
            data.coins = c.clone();
        }
        Some(pr)
    } else {
        if data.coins.len() == 1 && data.coins[0].eq_ignore_ascii_case("all") {
            data.coins.clear();
        }
        if data
            .coins
            .iter()
            .any(|c| c.to_ascii_lowercase().starts_with("top:"))
        {
            bail!("--coins top:N belongs to --mode portfolio; a single-coin run takes a list of coins");
        }
        None
    };
    if settings.mode == Mode::Portfolio && cfg.regime.enabled {
        bail!("--regime filters a single coin's targets; a portfolio run has none to filter");
    }
    if portfolio.is_some() && e.worlds > 0 {
        bail!(
            "evolution.worlds = {}: perturbed worlds score single-coin strategies; a run with \
             portfolio seeds cannot use them yet (set evolution.worlds = 0)",
            e.worlds
        );
    }
    Ok(RunSpec {
        seed: e.seed,
        settings,
        split: cfg.evolution.split(),
        aggregation: cfg.evolution.aggregation(),
        backtest: cfg.backtest_config(),
        data,
        seeds: names,
        regime: cfg.regime.filter(),
        portfolio,
        worlds: e.world_spec(),
        islands: e.island_spec(),
    })
}

/// The names of the run's seeds: `evolution.seeds` (all when empty) — portfolio seeds for
/// `--mode portfolio`; in `--mode mixed`, the single-coin seeds then any portfolio seeds named.
pub(super) fn seed_names(cfg: &Config) -> Result<Vec<String>> {
    let mode = cfg.evolution.settings().mode;
    if mode == Mode::Portfolio {
        return Ok(super::portfolio_seeds(cfg)?
            .iter()
            .map(|e| e.spec.name.clone())
            .collect());
    }
    // Portfolio seeds join a mixed run when named; the single-coin seeds come first (all of
    // them when the list names none).
    let (xs, coins): (Vec<String>, Vec<String>) = cfg
        .evolution
        .seeds
        .iter()
        .cloned()
        .partition(|n| seeds::portfolio::is_portfolio_seed(n));
    if !xs.is_empty() && mode != Mode::Mixed {
        bail!(
            "--seeds {}: a portfolio seed needs --mode portfolio or --mode mixed",
            xs.join(",")
        );
    }
    let mut names: Vec<String> = seeds::select(&coins)
        .map_err(anyhow::Error::msg)?
        .iter()
        .map(|e| e.spec.name.clone())
        .collect();
    names.extend(xs);
    Ok(names)
}

/// Loads the run's data and builds the problem (notes printed unless `quiet`).
fn build_problem(run: &RunSpec, quiet: bool) -> Result<LoadedRun> {
    let loaded = load_run(run)?;
    if !quiet {
        for note in &loaded.notes {
            eprintln!("note: {note}");
        }
    }
    Ok(loaded)
}

/// The Ctrl-C flag, installed before anything else: the first Ctrl-C asks the run to stop after
/// the generation under way (generation 0 included); a second one exits at once (the last
/// complete checkpoint is already on disk).
pub(super) fn interrupt_flag() -> Arc<AtomicBool> {
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
    // Alerts of a finished run read the run's config.
    let (config, what) = match &args.resume {
        Some(ResumeCommand::Resume { config, file, .. }) => (
            config.clone(),
            format!("the run of {} finished (resumed)", file.display()),
        ),
        None => (
            args.data.config.clone(),
            format!(
                "the run {}finished",
                args.out
                    .as_ref()
                    .map_or(String::new(), |o| format!("in {} ", o.display()))
            ),
        ),
    };
    run_run(args)?;
    let cfg = super::load_config(config.as_deref())?;
    super::notify(
        &cfg,
        std::path::Path::new(&cfg.promotion.registry),
        "evolve",
        &what,
    );
    Ok(())
}

fn run_run(args: Args) -> Result<()> {
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
        null_searches,
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
            (keep_last, null_searches),
            output,
            stop,
        );
    }
    let mut flags = args.evolution.flags()?;
    flags.extend(null_flag(args.null_searches));
    let cfg = args.data.config_with(flags)?;
    let target = cfg.evolution.generations;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(&cfg.evolution.out));
    let run = run_spec(&cfg, seed_names(&cfg)?)?;
    let mut lock = RunLock::acquire(&out)?;
    folder::claim_for_new_run(&out, args.overwrite)?;
    let loaded = build_problem(&run, super::quiet() || args.output.json)?;
    if !super::quiet() && !args.output.json {
        for w in &loaded.warnings {
            eprintln!("note: {w}");
        }
    }
    let (problem, fp, holdout_from) = (&loaded.problem, loaded.fingerprint, loaded.holdout_from);
    // An island run reports each island's generations (generation 0 of each included).
    let reports = run.islands.map_or(target, |i| i.count * (target + 1) - 1);
    let reporter = Reporter::new(
        args.output.clone(),
        (reports, true),
        run.settings.population,
        f64::NEG_INFINITY,
        stop.clone(),
    );
    if !super::quiet() && !args.output.json {
        let (coins, bars) = problem.training_shape();
        reporter.println(format!(
            "evolving {} over {} seeds x {}{} individuals on {coins} coins ({bars} training bars {}, validation next, \
             holdout from {} UTC untouched), checkpoints in {}",
            match run.settings.mode {
                Mode::Params => "parameters",
                Mode::Programs => "programs",
                Mode::Mixed => "parameters and programs",
                Mode::Portfolio => "portfolio strategies (one account each)",
            },
            problem.seed_names().len(),
            run.islands.map_or(String::new(), |i| format!(
                "{} islands ({} epochs of {} generations, {} migrants, {}) x ",
                i.count,
                i.epochs(target),
                i.epoch,
                i.migrants,
                i.topology.as_str()
            )),
            run.settings.population,
            if run.portfolio.is_some() { "on the grid" } else { "each" },
            super::format_ts(holdout_from),
            out.display()
        ));
    }
    let settings = run.settings.clone();
    let keep_last = Some(args.keep_last.unwrap_or(cfg.evolution.keep_last)).filter(|&k| k > 0);
    let nulls = NullPlan {
        count: cfg.evolution.null_searches,
        keep_last,
        stop: stop.clone(),
    };
    if run.islands.is_some() {
        let plan = super::island::new_plan(run, target, &loaded);
        organism::evolution::islands::write_plan(&out, &plan)?;
        return run_islands(&plan, &loaded, &out, reporter, &mut lock, &nulls);
    }
    let checkpointer = Checkpointer::new_run(&out, keep_last)?;
    let mut lines = GenLines(&reporter);
    let reason;
    let ck;
    {
        let mut exec = Executor::new(Evolver::new(problem, settings), checkpointer, stop);
        exec.observe(&mut lines);
        let tick = || reporter.tick();
        let mut c = exec.start(run, fp, &tick)?;
        reason = exec.run(&mut c, target, &tick)?;
        ck = c;
    }
    conclude(
        &ck, &loaded, &out, reporter, reason, target, &mut lock, &nulls,
    )
}

/// `--null-searches K` as a layer over `evolution.null_searches` (checked with the config).
fn null_flag(k: Option<usize>) -> Option<organism::config::Flag> {
    k.map(|k| {
        organism::config::Flag::new("--null-searches", "evolution.null_searches", super::int(k))
    })
}

/// The null searches a run is to have beside it.
struct NullPlan {
    count: usize,
    keep_last: Option<u32>,
    stop: Arc<AtomicBool>,
}

#[allow(clippy::too_many_arguments)]
fn resume(
    file: &Path,
    generations: Option<u32>,
    out: Option<PathBuf>,
    (data, source): (Option<PathBuf>, Option<String>),
    config: Option<PathBuf>,
    force: bool,
    (keep_last, null_searches): (Option<u32>, Option<usize>),
    output: OutputArgs,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    if let Some(dir) = island_folder(file) {
        if data.is_some() || source.is_some() || config.is_some() || force {
            bail!(
                "{}: an island run continues on the data and config it was planned with \
                 (--data, --source, --config and --force are for one population)",
                dir.display()
            );
        }
        if out.is_some() {
            bail!(
                "{}: an island run continues in its own folder (no --out)",
                dir.display()
            );
        }
        let null_layer: Vec<organism::config::Flag> =
            null_flag(null_searches).into_iter().collect();
        let current = super::load_config_with(None, &null_layer)?;
        return resume_islands(
            &dir,
            generations,
            current.evolution.null_searches,
            output,
            stop,
        );
    }
    // A run folder continues from its newest checkpoint.
    let (file, mut ck) = super::runs::read_target(file)?;
    let file = file.as_path();
    let null_layer: Vec<organism::config::Flag> = null_flag(null_searches).into_iter().collect();
    let current = super::load_config_with(config.as_deref(), &null_layer)?;
    // Forced onto a config that scores members otherwise (costs, split, worlds, ...): the
    // population is scored again and the cache starts again.
    let mut rescore = false;
    if let Some(path) = config {
        let mut current = current.clone();
        current.evolution.mode = ck.run.settings.mode;
        if let Some(p) = &ck.run.portfolio {
            current.data.coins = vec![p.pick.to_string()];
        }
        let theirs = run_spec(&current, ck.run.seeds.clone())?;
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
            rescore = differ
                .iter()
                .any(|d| *d != organism::evolution::checkpoint::SETTINGS_DIFFER);
            ck.run.settings = theirs.settings;
            ck.run.split = theirs.split;
            ck.run.aggregation = theirs.aggregation;
            ck.run.backtest = theirs.backtest;
            ck.run.data = theirs.data;
            ck.run.portfolio = theirs.portfolio;
            ck.run.worlds = theirs.worlds;
        }
    }
    if let Some(d) = data {
        ck.run.data.path = Some(std::path::absolute(&d).unwrap_or(d));
    }
    if let Some(s) = source {
        ck.run.data.source = s;
    }
    ck.seed_set(file)?;
    let target = generations.unwrap_or(current.evolution.generations);
    let out = out.unwrap_or_else(|| {
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    });
    let keep_last = Some(keep_last.unwrap_or(current.evolution.keep_last)).filter(|&k| k > 0);
    let nulls = NullPlan {
        count: current.evolution.null_searches,
        keep_last,
        stop: stop.clone(),
    };
    if target <= ck.state.generation {
        return at_target(file, &ck, &out, target, &output, &nulls);
    }
    let mut lock = RunLock::acquire(&out)?;
    // Continuing into another folder: it must not hold another run's checkpoints.
    let own = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if std::fs::canonicalize(own).ok() != std::fs::canonicalize(&out).ok() {
        folder::claim_for_new_run(&out, false)?;
    }
    let loaded = build_problem(&ck.run, super::quiet() || output.json)?;
    let (problem, fp) = (&loaded.problem, loaded.fingerprint);
    let evolver = Evolver::new(problem, ck.run.settings.clone());
    let checkpointer = if fp != ck.fingerprint || rescore {
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
        // Cached results are stale on the new data or scoring: the cache log starts again.
        Checkpointer::new_run(&out, keep_last)?
    } else {
        Checkpointer::resume(file, &mut ck, &out, keep_last)?
    };
    let best = ck
        .state
        .history
        .iter()
        .map(|g| g.best_sharpe)
        .filter(|x| x.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let reporter = Reporter::new(
        output.clone(),
        (target - ck.state.generation, false),
        ck.run.settings.population,
        best,
        stop.clone(),
    );
    if !super::quiet() && !output.json {
        reporter.println(format!(
            "resuming {} at generation {} (until {target}), checkpoints in {}",
            file.display(),
            ck.state.generation,
            out.display()
        ));
    }
    let reason = {
        let mut lines = GenLines(&reporter);
        let mut exec = Executor::new(evolver, checkpointer, stop);
        exec.observe(&mut lines);
        exec.run(&mut ck, target, &|| reporter.tick())?
    };
    conclude(
        &ck, &loaded, &out, reporter, reason, target, &mut lock, &nulls,
    )
}

/// A resume of a run already at `target`: nothing to evolve, but a run that crashed between
/// its last checkpoint and its end files is finished. The lock (a dead run's is taken over) is
/// held while the missing `front.csv` / `history.csv` are written and half-written files of the
/// crash are removed.
fn at_target(
    file: &Path,
    ck: &Checkpoint,
    out: &Path,
    target: u32,
    output: &OutputArgs,
    nulls: &NullPlan,
) -> Result<()> {
    let json = output.json;
    let mut lock = RunLock::acquire(out)?;
    let newest = folder::generations(out).last().copied();
    let missing: Vec<&str> = ["front.csv", "history.csv"]
        .into_iter()
        .filter(|f| !out.join(f).exists())
        .collect();
    let is_end = newest == Some(ck.state.generation);
    if is_end && nulls.count > 0 && nulls_missing(out, nulls.count, ck.state.generation) {
        // The run is done but not its null searches: they continue.
        let loaded = build_problem(&ck.run, super::quiet() || json)?;
        check_fingerprint(file, ck, &loaded)?;
        return finish(ck, &loaded, out, output, &mut lock, nulls, None);
    }
    // Only the folder's newest checkpoint stands for the run's end.
    if missing.is_empty() || !is_end {
        lock.release();
        outln!(
            "{} is at generation {}; nothing to do for --generations {target}",
            file.display(),
            ck.state.generation
        );
        return Ok(());
    }
    let loaded = build_problem(&ck.run, super::quiet() || json)?;
    check_fingerprint(file, ck, &loaded)?;
    write_files(ck, &loaded.problem, out)?;
    lock.release();
    outln!(
        "{} is at generation {}: wrote the missing {} in {}",
        file.display(),
        ck.state.generation,
        missing.join(" and "),
        out.display()
    );
    Ok(())
}

/// Refuses data other than the run's.
fn check_fingerprint(file: &Path, ck: &Checkpoint, loaded: &LoadedRun) -> Result<()> {
    if loaded.fingerprint != ck.fingerprint {
        bail!(
            "{}: the run was made on different market data (fingerprint {:016x}, now {:016x}); \
             its front cannot be ranked on this data: restore the original data",
            file.display(),
            ck.fingerprint,
            loaded.fingerprint
        );
    }
    Ok(())
}

/// The end of a run: the front and history files, then the summary, or after an interrupt the
/// way to continue (exit code 130).
#[allow(clippy::too_many_arguments)]
fn conclude(
    ck: &Checkpoint,
    loaded: &LoadedRun,
    out: &Path,
    reporter: Reporter,
    reason: TerminationReason,
    target: u32,
    lock: &mut RunLock,
    nulls: &NullPlan,
) -> Result<()> {
    reporter.finish();
    let problem = &loaded.problem;
    if reporter.closed.load(Ordering::SeqCst) {
        // Stdout is gone (`organism evolve | head`): save the results and end quietly.
        write_files(ck, problem, out)?;
        lock.release();
        std::process::exit(0);
    }
    match reason {
        TerminationReason::TargetReached => finish(
            ck,
            loaded,
            out,
            &reporter.output,
            lock,
            nulls,
            Some(reporter.run_time()),
        ),
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

/// Ranks the first front and writes `front.csv` (ranked, with ids) and `history.csv`.
pub(super) fn write_files(
    ck: &Checkpoint,
    problem: &RunProblem,
    out: &Path,
) -> Result<Vec<Ranked>> {
    let front: Vec<&Member> = ck.state.population.iter().filter(|m| m.rank == 0).collect();
    let ranked = summary::rank(problem, &front);
    let specs = problem.specs();
    write_atomic(
        &out.join("front.csv"),
        summary::front_csv(&ranked, &specs).as_bytes(),
    )?;
    write_atomic(
        &out.join("history.csv"),
        summary::history_csv(&ck.state.history).as_bytes(),
    )?;
    Ok(ranked)
}

/// The end of a complete run: the files, then the ranked front (top 10) or JSON.
fn finish(
    ck: &Checkpoint,
    loaded: &LoadedRun,
    out: &Path,
    output: &OutputArgs,
    lock: &mut RunLock,
    nulls: &NullPlan,
    time: Option<RunTime>,
) -> Result<()> {
    let problem = &loaded.problem;
    let ranked = write_files(ck, problem, out)?;
    let searched = if nulls.count > 0 {
        let quiet = super::quiet() || output.json;
        match null_searches(ck, loaded, &ranked, out, nulls, quiet)? {
            Some(x) => Some(x),
            None => {
                lock.release();
                eprintln!(
                    "interrupted: the null searches done so far are saved in {}; continue with\n  \
                     organism evolve resume {} --null-searches {}",
                    out.join("nulls").display(),
                    out.display(),
                    nulls.count
                );
                std::process::exit(130);
            }
        }
    } else {
        None
    };
    lock.release();
    let checkpoint = path_for(out, ck.state.generation);
    if let Some(path) = &output.report {
        let html = super::runs::run_report_html(&checkpoint, ck, &ranked, loaded, 0);
        write_atomic(path, html.as_bytes())?;
        if !super::quiet() {
            eprintln!("wrote {}", path.display());
        }
    }
    if output.json {
        outln!(
            "{}",
            serde_json::json!({"generation": ck.state.generation, "front": ranked,
                "checkpoint": checkpoint, "null_searches": searched,
                "time": time.map(|t| t.json())})
        );
        return Ok(());
    }
    let specs = problem.specs();
    outln!();
    super::runs::print_ranked(
        &ranked,
        &specs,
        10,
        &format!("first front after generation {}", ck.state.generation),
    );
    outln!();
    outln!(
        "wrote {}, {} and {}",
        checkpoint.display(),
        out.join("front.csv").display(),
        out.join("history.csv").display()
    );
    outln!(
        "next: organism runs show {}   |   organism backtest --member {}:{}   (training and validation; the holdout stays unread)",
        checkpoint.display(),
        checkpoint.display(),
        ranked.first().map_or("ID", |r| r.id.as_str())
    );
    if let Some(t) = time.filter(|_| !super::quiet()) {
        outln!("{}", t.line());
    }
    if let Some(n) = &searched {
        outln!();
        for line in n.lines() {
            outln!("{line}");
        }
    }
    outln!(
        "training Sharpe is not evidence: evolution finds as much on shuffled noise. \
         `organism walkforward` with the same data tests whether the search works out of sample \
         here; `organism data permute{}` builds a null copy to evolve on.",
        if ck.run.portfolio.is_some() {
            " --cross-section"
        } else {
            ""
        }
    );
    Ok(())
}

/// Runs (or continues) the run's null searches, each a run of its own in `OUT/nulls/K` with
/// the run's settings, seed and generations on null copy `K` of its data
/// ([`RunProblem::null_copy`]), and writes `OUT/search_nulls.json`. `None` when interrupted
/// (what is done is saved).
fn null_searches(
    ck: &Checkpoint,
    loaded: &LoadedRun,
    ranked: &[Ranked],
    out: &Path,
    plan: &NullPlan,
    quiet: bool,
) -> Result<Option<SearchNulls>> {
    let mut nulls = Vec::with_capacity(plan.count);
    for k in 0..plan.count {
        if !quiet {
            eprintln!(
                "null search {} of {}: {} generations on null copy {k} of the data",
                k + 1,
                plan.count,
                ck.state.generation
            );
        }
        match null_search(ck, loaded, out, k, plan)? {
            Some(x) => nulls.push(x),
            None => return Ok(None),
        }
    }
    let result = SearchNulls::new(ck.state.generation, SearchFigures::of(ranked, ck), nulls);
    result.write(out).map_err(anyhow::Error::msg)?;
    Ok(Some(result))
}

/// The folder of null search `k`.
fn null_dir(out: &Path, k: usize) -> PathBuf {
    out.join("nulls").join(k.to_string())
}

/// Whether some of the first `count` null searches have not reached `generation`.
fn nulls_missing(out: &Path, count: usize, generation: u32) -> bool {
    !out.join(organism::evolution::nulls::FILE).exists()
        || (0..count).any(|k| {
            folder::generations(&null_dir(out, k))
                .last()
                .is_none_or(|&g| g < generation)
        })
}

/// Null search `k` of the run of `ck`, to its generation: continued from its newest
/// checkpoint, or started.
fn null_search(
    ck: &Checkpoint,
    loaded: &LoadedRun,
    out: &Path,
    k: usize,
    plan: &NullPlan,
) -> Result<Option<SearchFigures>> {
    let dir = null_dir(out, k);
    let target = ck.state.generation;
    let problem = loaded.problem.null_copy(ck.run.seed, k);
    let mut print = ck.fingerprint.to_le_bytes().to_vec();
    print.extend((k as u64).to_le_bytes());
    print.extend(b"null search");
    let fingerprint = organism::evolution::checkpoint::fnv1a(&print);
    if ck.run.islands.is_some() {
        return null_island_search(ck, &problem, &dir, fingerprint, plan);
    }
    let executor = |checkpointer| {
        Executor::new(
            Evolver::new(&problem, ck.run.settings.clone()),
            checkpointer,
            plan.stop.clone(),
        )
    };
    let nk = match folder::generations(&dir).last().copied() {
        Some(g) => {
            let file = path_for(&dir, g);
            let mut c = organism::evolution::checkpoint::read(&file)?;
            if c.fingerprint != fingerprint || c.run.seed != ck.run.seed {
                bail!(
                    "{}: not null search {k} of this run (made for other data or another run); \
                     remove {} to search again",
                    file.display(),
                    dir.display()
                );
            }
            if g < target {
                let mut exec = executor(Checkpointer::resume(&file, &mut c, &dir, plan.keep_last)?);
                if exec.run(&mut c, target, &|| {})? == TerminationReason::Interrupted {
                    return Ok(None);
                }
            }
            c
        }
        None => {
            std::fs::create_dir_all(&dir)?;
            let mut exec = executor(Checkpointer::new_run(&dir, plan.keep_last)?);
            let mut c = exec.start(ck.run.clone(), fingerprint, &|| {})?;
            if exec.run(&mut c, target, &|| {})? == TerminationReason::Interrupted {
                return Ok(None);
            }
            c
        }
    };
    let ranked = write_files(&nk, &problem, &dir)?;
    Ok(Some(SearchFigures::of(&ranked, &nk)))
}

/// The island run's folder `target` names (the folder, or a checkpoint in it), if it is one.
fn island_folder(target: &Path) -> Option<PathBuf> {
    use organism::evolution::islands::is_island_run;
    if target.is_dir() {
        return is_island_run(target).then(|| target.to_path_buf());
    }
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    is_island_run(parent).then(|| parent.to_path_buf())
}

/// Runs (or continues) the island run of `plan` in `out` in this process, then ends it as a
/// run of one population ends: the files, the null searches, the summary.
fn run_islands(
    plan: &organism::evolution::islands::Plan,
    loaded: &LoadedRun,
    out: &Path,
    reporter: Reporter,
    lock: &mut RunLock,
    nulls: &NullPlan,
) -> Result<()> {
    let evolver = Evolver::new(&loaded.problem, plan.run.settings.clone());
    let stop = reporter.stop.clone();
    let done = {
        let mut lines = GenLines(&reporter);
        super::island::drive(
            out,
            plan,
            &evolver,
            &|| stop.load(Ordering::SeqCst),
            &mut |i, s| {
                reporter.set_island(Some(i));
                lines.observed(s);
            },
            &|| reporter.tick(),
        )?
    };
    match done {
        Some((ck, _)) => conclude(
            &ck,
            loaded,
            out,
            reporter,
            TerminationReason::TargetReached,
            plan.generations,
            lock,
            nulls,
        ),
        None => {
            reporter.finish();
            lock.release();
            eprintln!(
                "interrupted: every island epoch done so far is saved in {}; continue with\n  \
                 organism evolve resume {} --generations {}",
                out.display(),
                out.display(),
                plan.generations
            );
            std::process::exit(130);
        }
    }
}

/// `evolve resume DIR` of an island run: on to `generations` (a multiple of the epoch, not
/// below the plan's), from whatever island-epochs are done.
fn resume_islands(
    dir: &Path,
    generations: Option<u32>,
    null_searches: usize,
    output: OutputArgs,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    use organism::evolution::islands;
    let mut lock = RunLock::acquire(dir)?;
    let (mut plan, loaded) = super::island::load(dir)?;
    let target = generations.unwrap_or(plan.generations);
    if target < plan.generations {
        bail!(
            "{}: the island run is planned to generation {}; it continues to more \
             generations, not fewer",
            dir.display(),
            plan.generations
        );
    }
    if target != plan.generations {
        plan.spec()
            .validate(plan.run.settings.population, target)
            .map_err(|e| anyhow::anyhow!("--generations: {e}"))?;
        plan.generations = target;
        islands::write_plan(dir, &plan)?;
    }
    // Island runs keep every checkpoint (an island's epoch restarts from its first one).
    let nulls = NullPlan {
        count: null_searches,
        keep_last: None,
        stop: stop.clone(),
    };
    let left = super::island::generations_left(dir, &plan);
    let reporter = Reporter::new(
        output.clone(),
        (left, false),
        plan.run.settings.population,
        f64::NEG_INFINITY,
        stop,
    );
    if !super::quiet() && !output.json {
        reporter.println(format!(
            "resuming the island run in {} (until generation {target}; {left} island \
             generations left)",
            dir.display()
        ));
    }
    run_islands(&plan, &loaded, dir, reporter, &mut lock, &nulls)
}

/// Null search of an island run: the same islands on the null copy, in `dir`.
fn null_island_search(
    ck: &Checkpoint,
    problem: &RunProblem,
    dir: &Path,
    fingerprint: u64,
    plan: &NullPlan,
) -> Result<Option<SearchFigures>> {
    use organism::evolution::islands;
    let want = islands::Plan {
        run: ck.run.clone(),
        fingerprint,
        specs: ck.specs.clone(),
        generations: ck.state.generation,
    };
    if islands::is_island_run(dir) {
        let have = islands::read_plan(dir)?;
        if have.fingerprint != fingerprint || have.run != want.run {
            bail!(
                "{}: not this run's null search (made for other data or another run); remove \
                 it to search again",
                dir.display()
            );
        }
    }
    islands::write_plan(dir, &want)?;
    let evolver = Evolver::new(problem, ck.run.settings.clone());
    let stop = plan.stop.clone();
    let Some((nk, _)) = super::island::drive(
        dir,
        &want,
        &evolver,
        &|| stop.load(Ordering::SeqCst),
        &mut |_, _| {},
        &|| {},
    )?
    else {
        return Ok(None);
    };
    let ranked = write_files(&nk, problem, dir)?;
    Ok(Some(SearchFigures::of(&ranked, &nk)))
}

/// Progress bar and per-generation lines.
///
/// On a terminal, a progress bar on stderr with the generation lines above it. When stderr is not
/// a terminal (a log file, CI), a `progress:` line on stderr at most every 10 seconds instead, and
/// the generation lines on stdout. When stdout is a closed pipe (`organism evolve | head`), the
/// run stops after the generation under way, writes its files and exits quietly.
struct Reporter {
    output: OutputArgs,
    bar: ProgressBar,
    /// Progress as `progress:` lines on stderr (stderr is not a terminal).
    lines: bool,
    population: u64,
    total: u64,
    /// Generations this reporter will see.
    generations: u64,
    done_generations: std::sync::atomic::AtomicU64,
    /// Whether the first generation reported is generation 0 (the seeds' first evaluation,
    /// which fits the ML seeds and so says nothing about the pace of the rest).
    fresh: bool,
    /// Seconds taken by each generation after generation 0, for the time left.
    paces: std::sync::Mutex<Vec<f64>>,
    /// The best feasible training Sharpe of any generation so far, and whether its fall has
    /// been explained.
    best: std::sync::Mutex<f64>,
    fall_noted: AtomicBool,
    /// When the previous generation was reported (or the reporter made).
    last: std::sync::Mutex<std::time::Instant>,
    started: std::time::Instant,
    /// The process's CPU seconds when the reporter was made.
    cpu_started: Option<f64>,
    /// When the last `progress:` line was printed.
    last_line: std::sync::Mutex<std::time::Instant>,
    /// The run's stop flag (set when stdout closes).
    stop: Arc<AtomicBool>,
    /// The island whose generations are being reported (island runs), or -1.
    island: std::sync::atomic::AtomicI64,
    /// Stdout could not be written.
    closed: AtomicBool,
}

/// How long a run's generations took, and how busy they kept the threads.
#[derive(Debug, Clone, Copy)]
struct RunTime {
    wall: f64,
    /// CPU seconds of every thread (`None` where the OS does not say).
    cpu: Option<f64>,
    threads: usize,
}

impl RunTime {
    /// How busy the threads were (see [`super::utilization`]), where the CPU time is known.
    fn busy(&self) -> Option<f64> {
        self.cpu
            .map(|cpu| super::utilization(cpu, self.wall, self.threads))
    }

    /// `time: 4.8 s, 8.8 s of CPU on 2 threads (92 % busy)`.
    fn line(&self) -> String {
        match self.cpu.zip(self.busy()) {
            Some((cpu, busy)) => format!(
                "time: {:.1} s, {cpu:.1} s of CPU on {} threads ({:.0} % busy)",
                self.wall,
                self.threads,
                100.0 * busy
            ),
            None => format!("time: {:.1} s on {} threads", self.wall, self.threads),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({"seconds": self.wall, "cpu_seconds": self.cpu, "threads": self.threads,
            "utilization": self.busy()})
    }
}

impl Reporter {
    #[allow(clippy::disallowed_methods)] // the CLI's progress timing
    /// A reporter for `generations` generations to come: from generation 0 when `fresh`, else
    /// after a checkpoint whose history's best Sharpe was `best`.
    fn new(
        output: OutputArgs,
        (generations, fresh): (u32, bool),
        population: usize,
        best: f64,
        stop: Arc<AtomicBool>,
    ) -> Self {
        let generations = u64::from(generations) + u64::from(fresh);
        let total = generations * population as u64;
        let quiet = super::quiet() || output.json;
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            // Not indicatif's {eta}: it extrapolates generation 0's ML fits over the whole run.
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} gen {msg} | {pos}/{len} evaluations | {per_sec}",
            ) {
                b.set_style(style);
            }
            b.set_message(format!(
                "{} | {}",
                if fresh { "0" } else { "-" },
                Self::eta_text(None, fresh)
            ));
            b
        };
        let now = std::time::Instant::now();
        Self {
            output,
            lines: !quiet && !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            bar,
            population: population as u64,
            total,
            generations,
            done_generations: 0.into(),
            fresh,
            paces: std::sync::Mutex::new(Vec::new()),
            best: std::sync::Mutex::new(best),
            fall_noted: AtomicBool::new(false),
            last: std::sync::Mutex::new(now),
            started: now,
            cpu_started: super::cpu_seconds(),
            last_line: std::sync::Mutex::new(now),
            stop,
            island: (-1).into(),
            closed: AtomicBool::new(false),
        }
    }

    /// The run's time so far: wall and CPU seconds since the reporter was made, and threads.
    fn run_time(&self) -> RunTime {
        RunTime {
            wall: self.started.elapsed().as_secs_f64(),
            cpu: super::cpu_seconds()
                .zip(self.cpu_started)
                .map(|(now, then)| now - then),
            threads: rayon::current_num_threads(),
        }
    }

    /// The island the next generation lines are of.
    fn set_island(&self, island: Option<u32>) {
        self.island
            .store(island.map_or(-1, i64::from), Ordering::SeqCst);
    }

    /// One line of results on stdout (above the bar on a terminal).
    fn println(&self, line: String) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        if !self.bar.is_hidden() {
            self.bar.println(line);
            return;
        }
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        if let Err(e) = writeln!(o, "{line}").and_then(|()| o.flush()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                eprintln!("warning: cannot write to standard output ({e}); stopping after this generation");
            }
            self.closed.store(true, Ordering::SeqCst);
            self.stop.store(true, Ordering::SeqCst);
        }
    }

    /// One evaluation done; on a non-terminal stderr, a progress line every 10 s.
    #[allow(clippy::disallowed_methods)] // the CLI's progress timing
    fn tick(&self) {
        self.bar.inc(1);
        if !self.lines {
            return;
        }
        let now = std::time::Instant::now();
        let Ok(mut last) = self.last_line.lock() else {
            return;
        };
        if now.duration_since(*last).as_secs_f64() < 10.0 {
            return;
        }
        *last = now;
        let pos = self.bar.position();
        let secs = now.duration_since(self.started).as_secs_f64();
        let since = self
            .last
            .lock()
            .map_or(0.0, |l| now.duration_since(*l).as_secs_f64());
        let done = self.done_generations.load(Ordering::SeqCst);
        let left = self.time_left(done).map(|t| (t - since).max(0.0));
        eprintln!(
            "progress: {pos}/{} evaluations, {secs:.0} s elapsed, {}",
            self.total,
            Self::eta_text(left, self.fresh && done == 0)
        );
    }

    /// Seconds left after `done` generations, from the pace of the generations after
    /// generation 0 (the mean of the last five); `None` before one has been timed.
    fn time_left(&self, done: u64) -> Option<f64> {
        let paces = self.paces.lock().ok()?;
        if paces.is_empty() {
            return None;
        }
        let recent = &paces[paces.len().saturating_sub(5)..];
        let pace = recent.iter().sum::<f64>() / recent.len() as f64;
        Some(pace * self.generations.saturating_sub(done) as f64)
    }

    /// The time left as words: seconds, or when it will be known.
    fn eta_text(left: Option<f64>, in_generation_0: bool) -> String {
        match left {
            Some(t) if t >= 90.0 => format!("about {:.0} min left", t / 60.0),
            Some(t) => format!("about {t:.0} s left"),
            None if in_generation_0 => {
                "time left known after generation 0 (the seeds' first evaluation, ML fits included)"
                    .to_string()
            }
            None => "time left known after this generation".to_string(),
        }
    }

    fn report(&self, s: &GenStats, secs: f64) {
        let done = self.done_generations.fetch_add(1, Ordering::SeqCst) + 1;
        if !(self.fresh && done == 1) {
            if let Ok(mut p) = self.paces.lock() {
                p.push(secs);
            }
        }
        self.bar.set_position(done * self.population);
        self.bar.set_message(format!(
            "{} | {}",
            s.generation,
            Self::eta_text(self.time_left(done), false)
        ));
        let rate = if secs > 0.0 {
            s.evaluations as f64 / secs
        } else {
            0.0
        };
        // The best so far, and whether the generation's best fell below it for the first time.
        let (so_far, fell) = match self.best.lock() {
            Ok(mut b) => {
                let before = *b;
                if s.best_sharpe.is_finite() && s.best_sharpe > *b {
                    *b = s.best_sharpe;
                }
                (*b, s.best_sharpe < before)
            }
            Err(_) => (s.best_sharpe, false),
        };
        let finite = |x: f64| if x.is_finite() { Some(x) } else { None };
        let island = u32::try_from(self.island.load(Ordering::SeqCst)).ok();
        if self.output.json {
            self.println(
                serde_json::json!({"island": island, "generation": s.generation, "evaluations": s.evaluations,
                    "best_sharpe": finite(s.best_sharpe),
                    "best_sharpe_so_far": finite(so_far),
                    "front_size": s.front_size,
                    "front_share": s.front_size as f64 / self.population.max(1) as f64,
                    "feasible": s.feasible,
                    "hypervolume": s.hypervolume, "diversity": s.diversity,
                    "programs": s.programs, "mean_program_size": s.mean_size,
                    "evaluations_per_sec": rate, "seconds": secs})
                .to_string(),
            );
        } else if !super::quiet() {
            let programs = if s.programs > 0 {
                format!("  programs {:>3} ({:.0} nodes)", s.programs, s.mean_size)
            } else {
                String::new()
            };
            self.println(format!(
                "{}gen {:>4}  best sharpe {:>7.3} (so far {:>7.3})  front {:>3} ({:>3.0}%)  feasible {:>3}  HV {:.4}  diversity {:.2}{programs}  evals {:>4} ({:.0}/s)",
                island.map_or(String::new(), |i| format!("island {i:>2}  ")),
                s.generation, s.best_sharpe, so_far, s.front_size,
                100.0 * s.front_size as f64 / self.population.max(1) as f64, s.feasible, s.hypervolume, s.diversity, s.evaluations, rate
            ));
            if fell && !self.fall_noted.swap(true, Ordering::SeqCst) {
                self.println(format!(
                    "note: the best training Sharpe fell below the best so far ({so_far:.3}): survival keeps \
                     a spread of trade-offs between Sharpe, consistency, drawdown and turnover, not the \
                     highest Sharpe alone, so a member with a lower Sharpe and a better balance can \
                     replace it"
                ));
            }
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The per-generation lines, as an observer of the executor.
struct GenLines<'r>(&'r Reporter);

impl Observer for GenLines<'_> {
    fn generation(&mut self, _state: &State, stats: &GenStats, _checkpoint: &Path) {
        self.observed(stats);
    }
}

impl GenLines<'_> {
    /// A generation done: timed and reported.
    #[allow(clippy::disallowed_methods)] // the CLI times generations for the progress line
    fn observed(&mut self, stats: &GenStats) {
        let now = std::time::Instant::now();
        let secs = match self.0.last.lock() {
            Ok(mut last) => {
                let secs = now.duration_since(*last).as_secs_f64();
                *last = now;
                secs
            }
            Err(_) => 0.0,
        };
        self.0.report(stats, secs);
    }
}
