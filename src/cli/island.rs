//! `organism island`: an island run's steps as commands a scheduler can run anywhere — plan,
//! run one island's epoch, migrate, status, submit — and the one-process driver `evolve
//! --islands N` runs the very same steps with.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::atomic::Ordering,
};

use anyhow::{bail, Context, Result};
use organism::evolution::{
    checkpoint::{Checkpoint, SeedPrint},
    folder::{self, RunLock},
    islands::{self, EpochOutcome, Plan, TaskState},
    problem::{load_run, LoadedRun},
    Evolver, GenStats, Problem,
};

#[derive(clap::Subcommand, Debug)]
pub enum IslandCommand {
    /// Write an island run's plan into a folder (its data, settings and islands), to be run
    /// step by step by `island run` and `island migrate`, or all at once by `island submit`.
    Plan(Box<PlanArgs>),
    /// Run epoch E of island I: its checkpoint and immigrants in, its generations, checkpoint
    /// and emigrants out. A retry of a finished task changes nothing.
    Run {
        /// The island run's folder.
        dir: PathBuf,
        #[arg(long)]
        island: u32,
        #[arg(long)]
        epoch: u32,
    },
    /// After every island finished epoch E: each island's immigrants and the shared cache;
    /// after the last epoch, the run's checkpoint, front.csv and history.csv.
    Migrate {
        dir: PathBuf,
        #[arg(long)]
        epoch: u32,
    },
    /// Each island × epoch as done, running, failed or missing, and each migration.
    Status {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Run every step not yet done: `--local` as processes on this machine, P at a time.
    Submit {
        dir: PathBuf,
        /// Run the island-epoch commands as processes here.
        #[arg(long)]
        local: bool,
        /// Island tasks at a time (default: the number of cores).
        #[arg(long, value_name = "P")]
        parallel: Option<usize>,
    },
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub data: super::DataArgs,
    #[command(flatten)]
    pub evolution: super::EvolutionArgs,
    /// The run's folder (default: evolution.out).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace another run in the folder.
    #[arg(long)]
    pub overwrite: bool,
}

pub fn run(cmd: IslandCommand) -> Result<()> {
    match cmd {
        IslandCommand::Plan(args) => plan(*args),
        IslandCommand::Run { dir, island, epoch } => run_task(&dir, island, epoch),
        IslandCommand::Migrate { dir, epoch } => migrate(&dir, epoch),
        IslandCommand::Status { dir, json } => status(&dir, json),
        IslandCommand::Submit {
            dir,
            local,
            parallel,
        } => {
            if !local {
                bail!("island submit: say where the steps run: --local");
            }
            submit_local(&dir, parallel)
        }
    }
}

/// A new island run's plan: the run spec and target from the config and flags, the data's
/// fingerprint and the seeds' specs. The caller holds the folder's lock.
pub(super) fn new_plan(
    run: organism::evolution::checkpoint::RunSpec,
    generations: u32,
    loaded: &LoadedRun,
) -> Plan {
    Plan {
        run,
        fingerprint: loaded.fingerprint,
        specs: loaded
            .problem
            .specs()
            .into_iter()
            .map(SeedPrint::of)
            .collect(),
        generations,
    }
}

fn plan(args: PlanArgs) -> Result<()> {
    let cfg = args.data.config_with(args.evolution.flags()?)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(&cfg.evolution.out));
    let run = super::evolve::run_spec(&cfg, super::evolve::seed_names(&cfg)?)?;
    if run.islands.is_none() {
        bail!("island plan: evolution.islands is 1 (one population); give --islands N (N >= 2)");
    }
    let mut lock = RunLock::acquire(&out)?;
    folder::claim_for_new_run(&out, args.overwrite)?;
    let loaded = load_run(&run)?;
    let plan = new_plan(run, cfg.evolution.generations, &loaded);
    islands::write_plan(&out, &plan)?;
    lock.release();
    let spec = plan.spec();
    outln!(
        "planned {} islands x {} members, {} epochs of {} generations, {} migrants per island \
         ({}), in {}",
        spec.count,
        plan.run.settings.population,
        plan.epochs(),
        spec.epoch,
        spec.migrants,
        spec.topology.as_str(),
        out.display()
    );
    outln!(
        "next: organism island submit {} --local   (or island run / island migrate per step)",
        out.display()
    );
    Ok(())
}

/// The plan of `dir` and its problem, the data checked against the plan's fingerprint.
pub(super) fn load(dir: &Path) -> Result<(Plan, LoadedRun)> {
    let plan = islands::read_plan(dir)?;
    let loaded = load_run(&plan.run)?;
    if loaded.fingerprint != plan.fingerprint {
        bail!(
            "{}: the run was planned on other market data (fingerprint {:016x}, now {:016x}); \
             restore the original data",
            dir.join(islands::PLAN_FILE).display(),
            plan.fingerprint,
            loaded.fingerprint
        );
    }
    Ok((plan, loaded))
}

/// One line of an island's generation.
pub(super) fn gen_line(island: u32, s: &GenStats) -> String {
    format!(
        "island {island:>3}  gen {:>4}  best sharpe {:>7.3}  front {:>3}  feasible {:>3}  HV {:.4}  evals {:>4}",
        s.generation, s.best_sharpe, s.front_size, s.feasible, s.hypervolume, s.evaluations
    )
}

fn run_task(dir: &Path, island: u32, epoch: u32) -> Result<()> {
    let stop = super::evolve::interrupt_flag();
    let (plan, loaded) = load(dir)?;
    let evolver = Evolver::new(&loaded.problem, plan.run.settings.clone());
    let quiet = super::quiet();
    let outcome = islands::run_epoch(
        dir,
        &plan,
        &evolver,
        (island, epoch),
        &|| stop.load(Ordering::SeqCst),
        &mut |s| {
            if !quiet {
                outln!("{}", gen_line(island, s));
            }
        },
        &|| {},
    )?;
    match outcome {
        EpochOutcome::Ran(last) => outln!(
            "island {island} epoch {epoch} done: {} and {}",
            last.display(),
            islands::emigrants_path(dir, island, epoch).display()
        ),
        EpochOutcome::AlreadyDone => {
            outln!("island {island} epoch {epoch} was already done; nothing changed");
        }
        EpochOutcome::Interrupted => {
            eprintln!(
                "interrupted: island {island} epoch {epoch} starts over from its start next time"
            );
            std::process::exit(130);
        }
    }
    Ok(())
}

fn migrate(dir: &Path, epoch: u32) -> Result<()> {
    let plan = islands::read_plan(dir)?;
    if epoch + 1 < plan.epochs() {
        islands::migrate(dir, &plan, epoch)?;
        outln!(
            "migration after epoch {epoch} done: {} ({} bytes moved this epoch)",
            islands::migration_path(dir, epoch).display(),
            islands::exchanged_bytes(dir, &plan, epoch)
        );
        return Ok(());
    }
    if epoch + 1 > plan.epochs() {
        bail!(
            "{}: epoch {epoch} is past the run's last ({})",
            dir.display(),
            plan.epochs() - 1
        );
    }
    let (plan, loaded) = load(dir)?;
    let mut lock = RunLock::acquire(dir)?;
    let (ck, path) = islands::finish(dir, &plan)?;
    super::evolve::write_files(&ck, &loaded.problem, dir)?;
    lock.release();
    outln!(
        "the run is complete: wrote {}, {} and {}",
        path.display(),
        dir.join("front.csv").display(),
        dir.join("history.csv").display()
    );
    Ok(())
}

fn status(dir: &Path, json: bool) -> Result<()> {
    let plan = islands::read_plan(dir)?;
    let (tasks, migrations) = islands::status(dir, &plan);
    let finished =
        folder::generations(dir).contains(&plan.generations) && dir.join("front.csv").exists();
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "islands": plan.spec().count, "epochs": plan.epochs(),
                "generations": plan.generations,
                "tasks": tasks.iter().enumerate().map(|(i, row)| serde_json::json!({
                    "island": i, "epochs": row })).collect::<Vec<_>>(),
                "migrations": migrations, "finished": finished,
            })
        );
        return Ok(());
    }
    outln!(
        "{}: {} islands x {} epochs of {} generations{}",
        dir.display(),
        plan.spec().count,
        plan.epochs(),
        plan.spec().epoch,
        if finished { " (finished)" } else { "" }
    );
    let head: Vec<String> = (0..plan.epochs()).map(|e| format!("{e:>8}")).collect();
    outln!("island  epoch{}", head.join(""));
    for (i, row) in tasks.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|t| format!("{:>8}", t.as_str())).collect();
        outln!("{i:>6}       {}", cells.join(""));
    }
    let cells: Vec<String> = migrations
        .iter()
        .map(|&m| format!("{:>8}", if m { "done" } else { "missing" }))
        .collect();
    outln!("migrate      {}", cells.join(""));
    Ok(())
}

/// Runs the island run in `dir` to its plan's target in this process: every island-epoch and
/// migration not yet done, in order, then the run's end. `None` when `stop` interrupted it
/// (what is done is on disk; the same call continues it).
pub(super) fn drive<P: Problem>(
    dir: &Path,
    plan: &Plan,
    evolver: &Evolver<'_, P>,
    stop: &dyn Fn() -> bool,
    each: &mut dyn FnMut(u32, &GenStats),
    tick: &(dyn Fn() + Sync),
) -> Result<Option<(Checkpoint, PathBuf)>> {
    let spec = plan.spec();
    for e in 0..plan.epochs() {
        for i in 0..spec.count {
            let outcome =
                islands::run_epoch(dir, plan, evolver, (i, e), stop, &mut |s| each(i, s), tick)?;
            if outcome == EpochOutcome::Interrupted {
                return Ok(None);
            }
        }
        if e + 1 < plan.epochs() && !islands::migration_done(dir, e) {
            islands::migrate(dir, plan, e)?;
        }
    }
    Ok(Some(islands::finish(dir, plan)?))
}

/// Generations the island run in `dir` has yet to report (generation 0 of each island counted).
pub(super) fn generations_left(dir: &Path, plan: &Plan) -> u32 {
    let (tasks, _) = islands::status(dir, plan);
    let g = plan.spec().epoch;
    let mut left = 0;
    for row in &tasks {
        for (e, t) in row.iter().enumerate() {
            if *t != TaskState::Done {
                left += if e == 0 { g + 1 } else { g };
            }
        }
    }
    left
}

/// `island submit --local`: each epoch's island tasks as `organism island run` processes, `P`
/// at a time (each with its share of the cores), then `organism island migrate`; each task's
/// output in `DIR/logs/`. Steps already done are skipped, so after a failure or a kill the same
/// command continues.
fn submit_local(dir: &Path, parallel: Option<usize>) -> Result<()> {
    let plan = islands::read_plan(dir)?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let p = parallel.unwrap_or(cores).max(1);
    let threads = (cores / p).max(1);
    let exe = std::env::current_exe().context("cannot find the organism binary")?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let spec = plan.spec();
    let step = |args: Vec<String>, log: PathBuf| -> Result<Child> {
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = file.try_clone()?;
        Command::new(&exe)
            .args(&args)
            .env("RAYON_NUM_THREADS", threads.to_string())
            .stdout(file)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))
    };
    let d = dir.display().to_string();
    for e in 0..plan.epochs() {
        let todo: Vec<u32> = (0..spec.count)
            .filter(|&i| !islands::epoch_done(dir, i, e))
            .collect();
        let mut failed = Vec::new();
        for chunk in todo.chunks(p) {
            let children = chunk
                .iter()
                .map(|&i| {
                    let log = logs.join(format!("island-{i}-epoch-{e}.log"));
                    let args = ["island", "run", &d, "--island", &i.to_string()]
                        .into_iter()
                        .map(str::to_string)
                        .chain(["--epoch".into(), e.to_string()])
                        .collect();
                    step(args, log.clone()).map(|c| (i, c, log))
                })
                .collect::<Result<Vec<_>>>()?;
            for (i, mut child, log) in children {
                let status = child.wait()?;
                if !status.success() {
                    failed.push(format!("island {i} ({})", log.display()));
                }
            }
        }
        if !failed.is_empty() {
            bail!(
                "epoch {e}: {} failed: {}; see the logs, then run the same command again to \
                 continue",
                if failed.len() == 1 { "a task" } else { "tasks" },
                failed.join(", ")
            );
        }
        outln!("epoch {e}: {} islands done", spec.count);
        let last = e + 1 == plan.epochs();
        if last || !islands::migration_done(dir, e) {
            let log = logs.join(format!("migrate-{e}.log"));
            let args = ["island", "migrate", &d, "--epoch", &e.to_string()]
                .into_iter()
                .map(str::to_string)
                .collect();
            if !step(args, log.clone())?.wait()?.success() {
                bail!(
                    "the migration after epoch {e} failed ({}); run the same command again to \
                     continue",
                    log.display()
                );
            }
        }
    }
    outln!(
        "the run is complete: {}, {} and {}",
        organism::evolution::checkpoint::path_for(dir, plan.generations).display(),
        dir.join("front.csv").display(),
        dir.join("history.csv").display()
    );
    Ok(())
}
