//! Island runs end to end: one process, `island submit --local` and the steps run by hand in
//! another order give the same bytes on any thread count; `--islands 1` is a plain run; a task
//! killed mid-epoch is retried with the same result; locks, missing and corrupt emigrants are
//! clear errors; promotion and `runs show` read island runs.
#![allow(clippy::disallowed_methods)] // these tests wait on real processes in real time

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use organism::evolution::{folder::RunLock, islands};

mod common;

use common::{ok, organism, organism_threads, run_ok, s, Proc};

const SMALL: &str = r#"
[synthetic]
bars = 3000
[evolution]
population = 16
min_trades = 5.0
seeds = ["ema_crossover", "donchian_breakout", "rsi_filter", "sma_trend_filter"]
"#;

/// Three islands of 16, three epochs of three generations, two migrants on a ring.
const ISLANDS: [&str; 8] = [
    "--islands",
    "3",
    "--epoch",
    "3",
    "--migrants",
    "2",
    "--generations",
    "9",
];

fn setup(name: &str) -> (PathBuf, PathBuf) {
    let base = common::scratch("islands", name);
    let cfg = base.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    (base, cfg)
}

fn err(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!e.contains("panicked"), "{e}");
    e
}

/// `evolve` of the island run into `out` (on `threads` threads when given).
fn evolve(cfg: &Path, out: &Path, threads: Option<&str>) -> Output {
    evolve_of(&ISLANDS, cfg, out, threads)
}

fn evolve_of(islands: &[&str], cfg: &Path, out: &Path, threads: Option<&str>) -> Output {
    let mut args = vec!["evolve", "--config", s(cfg), "--out", s(out), "--quiet"];
    args.extend(islands);
    organism_threads(&args, threads)
}

/// A scratch folder with the config, the island run `islands` done in one process
/// (`reference`) and the same run planned beside it (`run`): (folder, config, reference, run).
fn reference_and_plan(name: &str, islands: &[&str]) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let (base, cfg) = setup(name);
    let reference = base.join("reference");
    ok(&evolve_of(islands, &cfg, &reference, None));
    let dir = base.join("run");
    plan_of(islands, &cfg, &dir);
    (base, cfg, reference, dir)
}

fn plan(cfg: &Path, out: &Path) {
    plan_of(&ISLANDS, cfg, out);
}

fn plan_of(islands: &[&str], cfg: &Path, out: &Path) {
    let mut args = vec!["island", "plan", "--config", s(cfg), "--out", s(out)];
    args.extend(islands);
    ok(&organism(&args));
}

/// The files a finished island run is judged by.
const FILES: [&str; 8] = [
    "gen9.bin",
    "cache.log",
    "front.csv",
    "history.csv",
    "island-0/gen9.bin",
    "island-2/gen9.bin",
    "island-1/cache.log",
    "shared/migration-1.bin",
];

fn same_run(a: &Path, b: &Path) {
    same_run_of(a, b, &FILES);
}

#[test]
fn one_process_local_processes_and_hand_run_steps_give_the_same_bytes() {
    let (base, cfg) = setup("same");
    let one = base.join("one");
    let out = ok(&evolve(&cfg, &one, None));
    assert!(out.is_empty() || !out.contains("panicked"));
    // One thread.
    let single = base.join("single");
    ok(&evolve(&cfg, &single, Some("1")));
    same_run(&one, &single);
    // Processes on this machine, three at a time (their completion order varies).
    let local = base.join("local");
    plan(&cfg, &local);
    let o = run_ok(&["island", "submit", s(&local), "--local", "--parallel", "3"]);
    assert!(o.contains("the run is complete"), "{o}");
    same_run(&one, &local);
    // The steps by hand, islands in reverse order.
    let hand = base.join("hand");
    plan(&cfg, &hand);
    let d = s(&hand);
    for e in ["0", "1", "2"] {
        for i in ["2", "0", "1"] {
            let o = run_ok(&["island", "run", d, "--island", i, "--epoch", e]);
            assert!(o.contains(&format!("island {i} epoch {e} done")), "{o}");
        }
        run_ok(&["island", "migrate", d, "--epoch", e]);
    }
    same_run(&one, &hand);
    // A retry of a finished task changes nothing.
    let before = std::fs::read(hand.join("island-1/gen6.bin")).unwrap();
    let o = run_ok(&["island", "run", d, "--island", "1", "--epoch", "1"]);
    assert!(o.contains("already done"), "{o}");
    assert_eq!(
        std::fs::read(hand.join("island-1/gen6.bin")).unwrap(),
        before
    );
    same_run(&one, &hand);
    // Status: every task and migration done, as JSON too.
    let st = run_ok(&["island", "status", d, "--json"]);
    let v: serde_json::Value = serde_json::from_str(st.trim()).unwrap();
    assert_eq!(v["finished"], true);
    assert_eq!(v["migrations"], serde_json::json!([true, true]));
    for row in v["tasks"].as_array().unwrap() {
        assert_eq!(row["epochs"], serde_json::json!(["done", "done", "done"]));
    }
    // The run's checkpoint: 3 × 16 members, the front the union of the islands' first fronts.
    let ck = organism::evolution::checkpoint::read(&one.join("gen9.bin")).unwrap();
    assert_eq!(ck.state.population.len(), 48);
    let front = ck.state.population.iter().filter(|m| m.rank == 0).count();
    let islands_front: usize = (0..3)
        .map(|i| {
            let c = organism::evolution::checkpoint::read(
                &islands::island_dir(&one, i).join("gen9.bin"),
            )
            .unwrap();
            c.state.population.iter().filter(|m| m.rank == 0).count()
        })
        .sum();
    assert_eq!(front, islands_front);
    assert_eq!(ck.state.history[9].front_size, islands_front);
    // `runs show` and `promote` read it; the trials promotion counts are every distinct
    // evaluation of every island.
    let shown = run_ok(&["runs", "show", s(&one)]);
    assert!(
        shown.contains(
            "islands: 3 of 16 members each, 2 migrants per island every 3 generations (ring)"
        ),
        "{shown}"
    );
    let cache =
        organism::evolution::checkpoint::read_cache(&one.join("gen9.bin"), ck.cache).unwrap();
    let reg = base.join("reg.db");
    let o = organism(&[
        "promote",
        "--config",
        s(&cfg),
        "--from",
        s(&one),
        "--registry",
        s(&reg),
        "--nulls",
        "10",
    ]);
    let text = format!("{}{}", common::stdout(&o), common::stderr(&o));
    assert!(
        text.contains(&format!("trials: {}", cache.len())),
        "{} trials expected: {text}",
        cache.len()
    );
}

#[test]
fn one_island_is_a_plain_run() {
    let (base, cfg) = setup("one");
    let run = |dir: &Path, extra: &[&str]| {
        let mut a = vec![
            "evolve",
            "--config",
            s(&cfg),
            "--out",
            s(dir),
            "--generations",
            "3",
            "-q",
        ];
        a.extend(extra);
        ok(&organism(&a));
    };
    run(&base.join("plain"), &[]);
    run(&base.join("one"), &["--islands", "1", "--epoch", "2"]);
    for f in ["gen3.bin", "cache.log", "front.csv", "history.csv"] {
        assert_eq!(
            std::fs::read(base.join("plain").join(f)).unwrap(),
            std::fs::read(base.join("one").join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(!base.join("one").join(islands::PLAN_FILE).exists());
}

#[test]
fn a_killed_task_is_retried_and_faults_are_clear_errors() {
    let (_, cfg, reference, dir) = reference_and_plan("faults", &ISLANDS);
    let d = s(&dir);
    for i in ["0", "1"] {
        run_ok(&["island", "run", d, "--island", i, "--epoch", "0"]);
    }
    // A migration before every island is done names the island missing.
    let e = err(&organism(&["island", "migrate", d, "--epoch", "0"]));
    assert!(
        e.contains("island 2") && e.contains("emigrants-0.bin is missing"),
        "{e}"
    );
    // A corrupt emigrants file, too.
    let em = islands::emigrants_path(&dir, 2, 0);
    std::fs::create_dir_all(em.parent().unwrap()).unwrap();
    std::fs::write(&em, b"garbage").unwrap();
    let e = err(&organism(&["island", "migrate", d, "--epoch", "0"]));
    assert!(
        e.contains("island 2") && e.contains("emigrants-0.bin"),
        "{e}"
    );
    std::fs::remove_file(&em).unwrap();
    run_ok(&["island", "run", d, "--island", "2", "--epoch", "0"]);
    // Epoch 1 before its migration.
    let e = err(&organism(&[
        "island", "run", d, "--island", "0", "--epoch", "1",
    ]));
    assert!(e.contains("the migration after epoch 0 is not done"), "{e}");
    run_ok(&["island", "migrate", d, "--epoch", "0"]);
    // Two tasks on one island: the second is refused while the first holds its lock.
    {
        let _held = RunLock::acquire(&islands::island_dir(&dir, 1)).unwrap();
        let e = err(&organism(&[
            "island", "run", d, "--island", "1", "--epoch", "1",
        ]));
        assert!(e.contains("in use by another organism process"), "{e}");
        let st = run_ok(&["island", "status", d, "--json"]);
        let v: serde_json::Value = serde_json::from_str(st.trim()).unwrap();
        assert_eq!(v["tasks"][1]["epochs"][1], "running", "{st}");
    }
    // Killed mid-epoch (kill -9 once its first generation is out).
    let mut task = Proc::spawn(
        "island run",
        Command::new(common::bin())
            .args(["island", "run", d, "--island", "1", "--epoch", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let idir = islands::island_dir(&dir, 1);
    task.wait_for(
        "its first generation of epoch 1",
        Duration::from_secs(120),
        || idir.join("gen4.bin").exists(),
    );
    task.kill();
    if islands::epoch_done(&dir, 1, 1) {
        // It finished before the kill landed: make it a crash after generation 5 by hand.
        std::fs::remove_file(islands::emigrants_path(&dir, 1, 1)).unwrap();
        std::fs::remove_file(idir.join("gen6.bin")).unwrap();
    }
    // A torn block at the end of its cache log, and a lock of a process long gone.
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .append(true)
        .open(idir.join("cache.log"))
        .unwrap()
        .write_all(b"CBLK\x05\x00")
        .unwrap();
    std::fs::write(idir.join(".organism.lock"), "4294967295").unwrap();
    let st = run_ok(&["island", "status", d]);
    let row = st
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(row.contains("done") && row.contains("failed"), "{st}");
    // Resubmitted: the run continues from what is done and ends with the reference's bytes.
    let e = err(&organism(&["island", "submit", d, "--local"]));
    assert!(e.contains("--resume"), "{e}");
    let o = run_ok(&[
        "island",
        "submit",
        d,
        "--local",
        "--parallel",
        "2",
        "--resume",
    ]);
    assert!(o.contains("the run is complete"), "{o}");
    same_run(&reference, &dir);
    // A new run refuses the folder of an island run unless told to replace it.
    let e = err(&evolve(&cfg, &dir, None));
    assert!(
        e.contains("holds an island run") && e.contains("--overwrite"),
        "{e}"
    );
}

#[test]
fn an_interrupted_island_run_resumes_to_the_same_bytes_and_continues_further() {
    let (base, cfg, reference, dir) = reference_and_plan("resume", &ISLANDS);
    // Islands 0 and 1 of epoch 0 done, as a Ctrl-C would leave it.
    let d = s(&dir);
    run_ok(&["island", "run", d, "--island", "0", "--epoch", "0"]);
    run_ok(&["island", "run", d, "--island", "1", "--epoch", "0"]);
    let o = ok(&organism(&["evolve", "resume", d, "-q"]));
    assert!(!o.contains("panicked"));
    same_run(&reference, &dir);
    // Further: to 12 generations, the same as a run to 12 but for the run checkpoint's cache
    // prefix (its log goes on from generation 9's, which stays readable).
    let o = ok(&organism(&[
        "evolve",
        "resume",
        d,
        "--generations",
        "12",
        "-q",
    ]));
    assert!(!o.contains("panicked"));
    let longer = base.join("longer");
    let to_12 = [&ISLANDS[..6], &["--generations", "12"]].concat();
    ok(&evolve_of(&to_12, &cfg, &longer, None));
    for f in ["front.csv", "history.csv", "island-2/gen12.bin"] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(longer.join(f)).unwrap(),
            "{f}"
        );
    }
    let a = organism::evolution::checkpoint::read(&dir.join("gen12.bin")).unwrap();
    let b = organism::evolution::checkpoint::read(&longer.join("gen12.bin")).unwrap();
    assert_eq!(a.state, b.state);
    let old = organism::evolution::checkpoint::read(&dir.join("gen9.bin")).unwrap();
    organism::evolution::checkpoint::read_cache(&dir.join("gen9.bin"), old.cache).unwrap();
    // Fewer generations, or data flags, are refused.
    let e = err(&organism(&["evolve", "resume", d, "--generations", "6"]));
    assert!(e.contains("not fewer"), "{e}");
    let e = err(&organism(&["evolve", "resume", d, "--generations", "13"]));
    assert!(e.contains("multiple"), "{e}");
}

#[test]
fn k8s_manifests_are_indexed_jobs_applied_in_order() {
    let (base, cfg) = setup("k8s");
    let dir = base.join("Run_1");
    plan(&cfg, &dir);
    let o = run_ok(&["island", "submit", s(&dir), "--k8s"]);
    assert!(o.contains("untested here"), "{o}");
    let kd = dir.join("k8s");
    let job = std::fs::read_to_string(kd.join("epoch-1.yaml")).unwrap();
    for want in [
        "name: organism-run-1-e1",
        "completions: 3",
        "completionMode: Indexed",
        "backoffLimitPerIndex: 3",
        "--island \\\"$JOB_COMPLETION_INDEX\\\" --epoch 1",
        "claimName: organism-runs",
    ] {
        assert!(job.contains(want), "{want} not in {job}");
    }
    let run = std::fs::read_to_string(kd.join("run.sh")).unwrap();
    let order: Vec<&str> = run
        .lines()
        .filter(|l| l.starts_with("kubectl apply"))
        .collect();
    assert_eq!(
        order,
        [
            "kubectl apply -f epoch-0.yaml",
            "kubectl apply -f migrate-0.yaml",
            "kubectl apply -f epoch-1.yaml",
            "kubectl apply -f migrate-1.yaml",
            "kubectl apply -f epoch-2.yaml",
            "kubectl apply -f migrate-2.yaml"
        ]
    );
    assert!(!islands::epoch_done(&dir, 0, 0), "nothing ran");
}

/// Whether a Slurm cluster answers here. `.ci/run` starts one (`.ci/slurm-up`) and sets
/// `ORGANISM_REQUIRE_SLURM`, so in CI a missing cluster fails instead of skipping.
fn slurm_ready() -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert!(
            std::env::var_os("ORGANISM_REQUIRE_SLURM").is_none(),
            "ORGANISM_REQUIRE_SLURM is set but no Slurm cluster answers (sinfo)"
        );
        eprintln!(
            "skipped: no Slurm cluster here (sinfo does not answer); .ci/slurm-up starts one"
        );
    }
    up
}

/// Four islands of 16, three epochs of three generations.
const SLURM_ISLANDS: [&str; 8] = [
    "--islands",
    "4",
    "--epoch",
    "3",
    "--migrants",
    "2",
    "--generations",
    "9",
];

fn finished(dir: &Path) -> bool {
    dir.join("gen9.bin").exists() && dir.join("front.csv").exists()
}

/// Waits for the run in `dir` to finish on the cluster, failing at the deadline with the jobs
/// Slurm still has.
fn wait_finished(dir: &Path, deadline: Duration) {
    let start = std::time::Instant::now();
    while !finished(dir) {
        if start.elapsed() > deadline {
            let q = Command::new("squeue").output().map(|o| common::stdout(&o));
            let st = organism(&["island", "status", s(dir)]);
            panic!(
                "the Slurm run did not finish within {deadline:?}; squeue: {q:?}; status: {}",
                common::stdout(&st)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// With Slurm up: the one-process reference run and a planned island run beside it (`None`
/// where there is no Slurm).
fn slurm_runs(name: &str) -> Option<(PathBuf, PathBuf)> {
    if !slurm_ready() {
        return None;
    }
    let (_, _, reference, dir) = reference_and_plan(name, &SLURM_ISLANDS);
    Some((reference, dir))
}

#[test]
fn slurm_job_arrays_give_the_one_process_bytes() {
    let Some((reference, dir)) = slurm_runs("slurm") else {
        return;
    };
    // --print writes the scripts and submits nothing.
    let printed = run_ok(&["island", "submit", s(&dir), "--slurm", "--print"]);
    assert!(
        printed.contains("e1=$(sbatch --parsable --dependency=afterok:$m0 "),
        "{printed}"
    );
    let script = std::fs::read_to_string(dir.join("slurm/epoch-0.sh")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%4"), "{script}");
    assert!(
        script.contains("--island \"$SLURM_ARRAY_TASK_ID\" --epoch 0"),
        "{script}"
    );
    assert!(!finished(&dir) && !islands::epoch_done(&dir, 0, 0));
    let t = std::time::Instant::now();
    let o = run_ok(&["island", "submit", s(&dir), "--slurm"]);
    assert!(o.contains("epoch 2: islands job"), "{o}");
    wait_finished(&dir, Duration::from_secs(300));
    eprintln!(
        "4 islands x 3 epochs through sbatch: {:.1} s",
        t.elapsed().as_secs_f64()
    );
    same_run_of(&reference, &dir, &SLURM_FILES);
}

#[test]
fn a_cancelled_slurm_task_is_resubmitted_to_the_same_result() {
    let Some((reference, dir)) = slurm_runs("scancel") else {
        return;
    };
    let o = run_ok(&["island", "submit", s(&dir), "--slurm"]);
    assert!(o.contains("epoch 0: islands job"), "{o}");
    let jobs = std::fs::read_to_string(dir.join("slurm/jobs")).unwrap();
    let ids: Vec<&str> = jobs.lines().collect();
    // Island 2's task of epoch 1, cancelled once its epoch has begun (or at once if it has
    // not), then the rest of the chain.
    let idir = islands::island_dir(&dir, 2);
    let start = std::time::Instant::now();
    while !idir.join("gen3.bin").exists() && start.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cancel = |what: &str| {
        let o = Command::new("scancel").arg(what).output().unwrap();
        assert!(o.status.success(), "scancel {what}: {}", common::stderr(&o));
    };
    cancel(&format!("{}_2", ids[2]));
    for id in &ids {
        cancel(id);
    }
    // Wait for Slurm to let go of them.
    let start = std::time::Instant::now();
    loop {
        let q = Command::new("squeue")
            .args(["-h", "-o", "%i"])
            .output()
            .unwrap();
        let left = common::stdout(&q);
        if !ids.iter().any(|id| left.contains(id)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "jobs left: {left}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!finished(&dir));
    // Without --resume a begun run is refused; with it, what is left is submitted.
    let e = err(&organism(&["island", "submit", s(&dir), "--slurm"]));
    assert!(e.contains("--resume"), "{e}");
    run_ok(&["island", "submit", s(&dir), "--slurm", "--resume"]);
    wait_finished(&dir, Duration::from_secs(300));
    same_run_of(&reference, &dir, &SLURM_FILES);
}

const SLURM_FILES: [&str; 6] = [
    "gen9.bin",
    "cache.log",
    "front.csv",
    "history.csv",
    "island-3/gen9.bin",
    "shared/migration-1.bin",
];

fn same_run_of(a: &Path, b: &Path, files: &[&str]) {
    for f in files {
        let (x, y) = (a.join(f), b.join(f));
        let bx = std::fs::read(&x).unwrap_or_else(|e| panic!("{}: {e}", x.display()));
        let by = std::fs::read(&y).unwrap_or_else(|e| panic!("{}: {e}", y.display()));
        assert!(bx == by, "{} and {} differ", x.display(), y.display());
    }
}
