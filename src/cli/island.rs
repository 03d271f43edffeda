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
    /// Run every step not yet done: `--local` as processes on this machine, `--slurm` as one
    /// job array per epoch and a migration job chained with afterok, `--k8s` as Indexed Job
    /// manifests (written, not applied).
    Submit(SubmitArgs),
}

#[derive(clap::Args, Debug)]
pub struct SubmitArgs {
    /// The island run's folder.
    pub dir: PathBuf,
    /// Run the island-epoch commands as processes here.
    #[arg(long, group = "launcher")]
    pub local: bool,
    /// Submit to Slurm with sbatch (the folder must be on a disk every node sees).
    #[arg(long, group = "launcher")]
    pub slurm: bool,
    /// Write Kubernetes Indexed Job manifests and a script that applies them in order
    /// (untested here: no cluster).
    #[arg(long, group = "launcher")]
    pub k8s: bool,
    /// With --slurm: write the job scripts and print the sbatch commands, submitting nothing.
    #[arg(long)]
    pub print: bool,
    /// Continue a run some of whose steps are done (or failed).
    #[arg(long)]
    pub resume: bool,
    /// Island tasks at a time (default: cluster.concurrency; --local: the number of cores).
    #[arg(long, value_name = "P")]
    pub parallel: Option<usize>,
    /// Config file whose [cluster] section sets partition, time limit, CPUs per task, image.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
        IslandCommand::Submit(args) => submit(&args),
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
    let finished = finished(dir, plan.generations);
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

/// Whether the run in `dir` has ended at `generations`: its checkpoint and front written.
fn finished(dir: &Path, generations: u32) -> bool {
    folder::generations(dir).contains(&generations) && dir.join("front.csv").exists()
}

/// The first epoch with a step left (an island task, or its migration; the last epoch's is the
/// run's end), or `None` when the run is complete.
fn first_open_epoch(dir: &Path, plan: &Plan) -> Option<u32> {
    let epochs = plan.epochs();
    (0..epochs).find(|&e| {
        let islands_left = (0..plan.spec().count).any(|i| !islands::epoch_done(dir, i, e));
        let migration_left = if e + 1 < epochs {
            !islands::migration_done(dir, e)
        } else {
            !finished(dir, plan.generations)
        };
        islands_left || migration_left
    })
}

fn submit(args: &SubmitArgs) -> Result<()> {
    let dir = std::path::absolute(&args.dir).unwrap_or_else(|_| args.dir.clone());
    let plan = islands::read_plan(&dir)?;
    let Some(from) = first_open_epoch(&dir, &plan) else {
        outln!("{}: the run is complete; nothing to submit", dir.display());
        return Ok(());
    };
    let (tasks, _) = islands::status(&dir, &plan);
    let begun = from > 0 || tasks.iter().flatten().any(|t| *t != TaskState::Missing);
    if begun && !args.resume {
        bail!(
            "{}: steps of this run are done or failed (see `organism island status {}`); add \
             --resume to submit what is left (cancel the run's queued jobs first)",
            dir.display(),
            dir.display()
        );
    }
    if args.local {
        return submit_local(&dir, args.parallel);
    }
    let cfg = super::load_config(args.config.as_deref())?;
    let mut cluster = cfg.cluster.clone();
    if let Some(p) = args.parallel {
        cluster.concurrency = u32::try_from(p).unwrap_or(u32::MAX);
    }
    if args.slurm {
        return submit_slurm(&dir, &plan, &cluster, from, args.print);
    }
    if args.k8s {
        return write_k8s(&dir, &plan, &cluster, from);
    }
    bail!("island submit: say where the steps run: --local, --slurm or --k8s")
}

/// A job name for step `what` of the run in `dir`.
fn job_name(dir: &Path, what: &str) -> String {
    let base: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    // Kubernetes names are lowercase DNS labels.
    format!("organism-{base}-{what}")
}

/// `sh` single quotes around `s`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The Slurm scripts of epochs `from..`: an array job per epoch and its migration job.
fn slurm_scripts(
    dir: &Path,
    plan: &Plan,
    cluster: &organism::evolution::islands::ClusterConfig,
    exe: &Path,
    from: u32,
) -> Result<Vec<(PathBuf, PathBuf)>> {
    let n = plan.spec().count;
    let p = cluster.parallel(n);
    let d = quote(&dir.display().to_string());
    let x = quote(&exe.display().to_string());
    let logs = dir.join("logs");
    let header = |name: &str, log: &str, array: Option<String>| {
        let mut h = format!(
            "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --cpus-per-task={}\n\
             #SBATCH --time={}\n#SBATCH --output={}\n#SBATCH --requeue\n\
             #SBATCH --kill-on-invalid-dep=yes\n",
            cluster.cpus_per_task,
            cluster.time_limit.trim(),
            logs.join(log).display()
        );
        if !cluster.partition.is_empty() {
            h.push_str(&format!("#SBATCH --partition={}\n", cluster.partition));
        }
        if let Some(a) = array {
            h.push_str(&format!("#SBATCH --array={a}\n"));
        }
        h.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
        h
    };
    (from..plan.epochs())
        .map(|e| {
            let island = format!(
                "{}exec {x} island run {d} --island \"$SLURM_ARRAY_TASK_ID\" --epoch {e}\n",
                header(
                    &job_name(dir, &format!("e{e}")),
                    &format!("island-%a-epoch-{e}.slurm.log"),
                    Some(format!("0-{}%{p}", n - 1)),
                )
            );
            let migrate = format!(
                "{}exec {x} island migrate {d} --epoch {e}\n",
                header(
                    &job_name(dir, &format!("m{e}")),
                    &format!("migrate-{e}.slurm.log"),
                    None
                )
            );
            let sd = dir.join("slurm");
            let (a, b) = (
                sd.join(format!("epoch-{e}.sh")),
                sd.join(format!("migrate-{e}.sh")),
            );
            std::fs::create_dir_all(&sd)
                .with_context(|| format!("cannot create {}", sd.display()))?;
            for (f, text) in [(&a, island), (&b, migrate)] {
                std::fs::write(f, text).with_context(|| format!("cannot write {}", f.display()))?;
            }
            Ok((a, b))
        })
        .collect()
}

/// `island submit --slurm`: the scripts, then (unless `print`) each submitted with `sbatch
/// --parsable`, every epoch's array after the previous migration and every migration after
/// its epoch's array (`--dependency=afterok`).
fn submit_slurm(
    dir: &Path,
    plan: &Plan,
    cluster: &organism::evolution::islands::ClusterConfig,
    from: u32,
    print: bool,
) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the organism binary")?;
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.join("logs").display()))?;
    let scripts = slurm_scripts(dir, plan, cluster, &exe, from)?;
    if print {
        let mut prev = String::new();
        for (e, (a, b)) in (from..).zip(&scripts) {
            let dep = if prev.is_empty() {
                String::new()
            } else {
                format!("--dependency=afterok:${prev} ")
            };
            outln!("e{e}=$(sbatch --parsable {dep}{})", a.display());
            outln!(
                "m{e}=$(sbatch --parsable --dependency=afterok:$e{e} {})",
                b.display()
            );
            prev = format!("m{e}");
        }
        return Ok(());
    }
    let sbatch = |dep: Option<&str>, script: &Path| -> Result<String> {
        let mut c = Command::new("sbatch");
        c.arg("--parsable");
        if let Some(d) = dep {
            c.arg(format!("--dependency=afterok:{d}"));
        }
        let o = c.arg(script).output().with_context(|| {
            "cannot run sbatch (is Slurm installed here? --print writes the scripts only)"
        })?;
        if !o.status.success() {
            bail!(
                "sbatch {} failed: {}",
                script.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        let out = String::from_utf8_lossy(&o.stdout);
        // --parsable prints `id` or `id;cluster`.
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            bail!(
                "sbatch {}: unexpected reply `{}`",
                script.display(),
                out.trim()
            );
        }
        Ok(id)
    };
    let mut prev: Option<String> = None;
    let mut ids = Vec::new();
    for (e, (a, b)) in (from..).zip(&scripts) {
        let array = sbatch(prev.as_deref(), a)?;
        let migrate = sbatch(Some(&array), b)?;
        outln!("epoch {e}: islands job {array}, migration job {migrate}");
        ids.push(array);
        ids.push(migrate.clone());
        prev = Some(migrate);
    }
    std::fs::write(dir.join("slurm").join("jobs"), ids.join("\n") + "\n")
        .with_context(|| format!("cannot write {}", dir.join("slurm/jobs").display()))?;
    outln!(
        "submitted epochs {from}..{} of {} to Slurm; follow with `organism island status {}`",
        plan.epochs() - 1,
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// `island submit --k8s`: an Indexed Job manifest per epoch (the island from
/// `JOB_COMPLETION_INDEX`, `backoffLimitPerIndex`), a migration Job per epoch, and `run.sh`
/// applying them in order, waiting for each. Written, not applied.
fn write_k8s(
    dir: &Path,
    plan: &Plan,
    cluster: &organism::evolution::islands::ClusterConfig,
    from: u32,
) -> Result<()> {
    let n = plan.spec().count;
    let p = cluster.parallel(n);
    let kd = dir.join("k8s");
    std::fs::create_dir_all(&kd).with_context(|| format!("cannot create {}", kd.display()))?;
    let d = dir.display().to_string();
    let job = |name: &str, indexed: bool, cmd: &str| {
        let index = if indexed {
            format!(
                "  completions: {n}\n  parallelism: {p}\n  completionMode: Indexed\n  \
                 backoffLimitPerIndex: 3\n  maxFailedIndexes: {n}\n"
            )
        } else {
            "  backoffLimit: 3\n".to_string()
        };
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{index}  \
             template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: \
             organism\n        image: {}\n        command: [\"/bin/sh\", \"-c\", {cmd:?}]\n        \
             env:\n        - name: RAYON_NUM_THREADS\n          value: \"{}\"\n        \
             resources:\n          requests:\n            cpu: \"{}\"\n        volumeMounts:\n        \
             - name: runs\n          mountPath: {d:?}\n      volumes:\n      - name: runs\n        \
             persistentVolumeClaim:\n          claimName: {}\n",
            cluster.image, cluster.cpus_per_task, cluster.cpus_per_task, cluster.volume_claim
        )
    };
    let mut script = String::from(
        "#!/bin/sh\n# Applies the island run's jobs in order, each after the one before completed.\nset -e\n",
    );
    for e in from..plan.epochs() {
        let (a, b) = (
            job_name(dir, &format!("e{e}")),
            job_name(dir, &format!("m{e}")),
        );
        let island = job(
            &a,
            true,
            &format!(
                "exec organism island run '{d}' --island \"$JOB_COMPLETION_INDEX\" --epoch {e}"
            ),
        );
        let migrate = job(
            &b,
            false,
            &format!("exec organism island migrate '{d}' --epoch {e}"),
        );
        for (name, text) in [
            (format!("epoch-{e}.yaml"), island),
            (format!("migrate-{e}.yaml"), migrate),
        ] {
            std::fs::write(kd.join(&name), text)
                .with_context(|| format!("cannot write {}", kd.join(&name).display()))?;
        }
        script.push_str(&format!(
            "kubectl apply -f epoch-{e}.yaml\nkubectl wait --for=condition=complete --timeout=-1s job/{a}\n\
             kubectl apply -f migrate-{e}.yaml\nkubectl wait --for=condition=complete --timeout=-1s job/{b}\n"
        ));
    }
    std::fs::write(kd.join("run.sh"), script)
        .with_context(|| format!("cannot write {}", kd.join("run.sh").display()))?;
    outln!(
        "wrote Kubernetes manifests for epochs {from}..{} in {} (untested here); apply them in \
         order with: cd {} && sh run.sh",
        plan.epochs() - 1,
        kd.display(),
        kd.display()
    );
    Ok(())
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
    let step = |args: &[&str], log: PathBuf| -> Result<Child> {
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let err = file.try_clone()?;
        Command::new(&exe)
            .args(args)
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
                    let (i_, e_) = (i.to_string(), e.to_string());
                    let args = ["island", "run", &d, "--island", &i_, "--epoch", &e_];
                    step(&args, log.clone()).map(|c| (i, c, log))
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
            let e_ = e.to_string();
            let args = ["island", "migrate", &d, "--epoch", &e_];
            if !step(&args, log.clone())?.wait()?.success() {
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
