//! Evolving strategy programs end to end through the binary: `evolve --mode programs` ends with a
//! front of programs that `backtest --member` reproduces; mixed runs are identical on one and two
//! threads and resume exactly; checkpoints with impossible programs are clear errors.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use organism::{
    evolution::checkpoint,
    genome::program::{self, Node, Op, Ty},
};

/// Five seeds (one ML) on the bundled market, a small population: quick, and every variation
/// path (programs, genomes, both crossed) runs in a mixed population.
const SMALL: &str = r#"
[evolution]
population = 16
min_trades = 5.0
seeds = ["ema_crossover", "donchian_breakout", "rsi_filter", "sma_trend_filter", "pca_tree_quantile"]
"#;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("organism-gp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn organism(args: &[&str], threads: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_organism"));
    c.args(args);
    if let Some(t) = threads {
        c.env("RAYON_NUM_THREADS", t);
    }
    c.output().expect("run organism")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).unwrap()
}

fn bytes(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn evolve(out: &Path, cfg: &Path, mode: &str, gens: u32, threads: Option<&str>) -> Output {
    organism(
        &[
            "evolve",
            "--config",
            cfg.to_str().unwrap(),
            "--mode",
            mode,
            "--generations",
            &gens.to_string(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ],
        threads,
    )
}

struct Row {
    id: String,
    seed: String,
    program: String,
    train_sharpe: f64,
    train_trades: u64,
    validation_sharpe: f64,
}

fn front(file: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), header.len(), "{l}");
            Row {
                id: f[col("id")].into(),
                seed: f[col("seed")].into(),
                program: f[col("program")].into(),
                train_sharpe: f[col("train_sharpe")].parse().unwrap(),
                train_trades: f[col("train_trades")].parse().unwrap(),
                validation_sharpe: f[col("validation_sharpe")].parse().unwrap(),
            }
        })
        .collect()
}

fn lookup(name: &str) -> Option<organism::genome::SeedSpec> {
    organism::seeds::find(name).ok().map(|e| e.spec.clone())
}

#[test]
fn programs_mode_ends_with_a_front_of_programs_that_members_reproduce() {
    // The issue's "done means": 30 generations of programs on the bundled market (the default
    // config: four coins, population 64).
    let dir = scratch("programs30");
    let out = dir.join("run");
    let text = ok(&organism(
        &[
            "evolve",
            "--mode",
            "programs",
            "--generations",
            "30",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    ));
    assert!(text.contains("first front after generation 30"), "{text}");
    let rows = front(&out.join("front.csv"));
    assert!(!rows.is_empty());
    for r in &rows {
        assert_eq!(r.seed, "program", "{}", r.id);
        // Every program in the front parses back (types checked) from its one-line text.
        program::parse(&r.program, &lookup).unwrap_or_else(|e| panic!("{}: {e}", r.program));
    }
    // Every generation is all programs, and the checkpoint holds them.
    let hist = std::fs::read_to_string(out.join("history.csv")).unwrap();
    let header: Vec<&str> = hist.lines().next().unwrap().split(',').collect();
    let pc = header.iter().position(|h| *h == "programs").unwrap();
    assert_eq!(hist.lines().count(), 1 + 31);
    for l in hist.lines().skip(1) {
        assert_eq!(l.split(',').nth(pc), Some("64"), "{l}");
    }
    let ck = checkpoint::read(&out.join("gen30.bin")).unwrap();
    assert!(ck.state.population.iter().all(|m| m.program.is_some()));
    // Generation 0 held the twelve seeds as programs trading their own signal.
    let g0 = checkpoint::read(&out.join("gen0.bin")).unwrap();
    let seeded = g0
        .state
        .population
        .iter()
        .filter(|m| {
            m.program.as_ref().unwrap().roots[0]
                .as_ref()
                .is_some_and(|r| r.op == Op::Seed)
        })
        .count();
    assert!(seeded >= 12, "{seeded} seed programs in generation 0");

    // The top member's figures, reproduced exactly by backtest --member from the checkpoint
    // and from front.csv; its export reads back with --genome.
    let top = &rows[0];
    for place in [out.join("gen30.bin"), out.join("front.csv")] {
        let member = format!("{}:{}", place.display(), top.id);
        let t = json(&organism(
            &[
                "backtest",
                "--member",
                &member,
                "--segment",
                "train",
                "--json",
            ],
            None,
        ));
        assert_eq!(t["aggregate"]["sharpe"].as_f64().unwrap(), top.train_sharpe);
        assert_eq!(t["aggregate"]["trades"].as_u64().unwrap(), top.train_trades);
        let v = json(&organism(
            &[
                "backtest",
                "--member",
                &member,
                "--segment",
                "validation",
                "--json",
            ],
            None,
        ));
        assert_eq!(
            v["aggregate"]["sharpe"].as_f64().unwrap(),
            top.validation_sharpe
        );
    }
    let exported = ok(&organism(
        &[
            "runs",
            "export",
            &format!("{}:{}", out.join("gen30.bin").display(), top.id),
        ],
        None,
    ));
    assert!(exported.contains("seed = \"program\""), "{exported}");
    assert!(exported.contains("program = '(program"), "{exported}");
    let g = dir.join("g.toml");
    std::fs::write(&g, &exported).unwrap();
    let t = json(&organism(
        &[
            "backtest",
            "--genome",
            g.to_str().unwrap(),
            "--coins",
            "all",
            "--segment",
            "train",
            "--json",
        ],
        None,
    ));
    assert_eq!(t["aggregate"]["sharpe"].as_f64().unwrap(), top.train_sharpe);
    // runs show prints the program of the top member.
    let shown = ok(&organism(
        &["runs", "show", out.to_str().unwrap(), "--top", "3"],
        None,
    ));
    assert!(shown.contains("mode programs"), "{shown}");
    assert!(shown.contains(&top.program), "{shown}");
}

#[test]
fn mixed_runs_are_identical_on_one_and_two_threads_and_resume_exactly() {
    let dir = scratch("mixed");
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let (one, two, part) = (dir.join("one"), dir.join("two"), dir.join("part"));
    ok(&evolve(&one, &cfg, "mixed", 4, Some("1")));
    ok(&evolve(&two, &cfg, "mixed", 4, Some("2")));
    ok(&evolve(&part, &cfg, "mixed", 2, Some("2")));
    ok(&organism(
        &[
            "evolve",
            "resume",
            part.join("gen2.bin").to_str().unwrap(),
            "--generations",
            "4",
            "--quiet",
        ],
        Some("2"),
    ));
    for g in 0..=4 {
        let f = format!("gen{g}.bin");
        assert_eq!(bytes(one.join(&f)), bytes(two.join(&f)), "{f}: threads");
        assert_eq!(bytes(one.join(&f)), bytes(part.join(&f)), "{f}: resume");
    }
    for f in ["front.csv", "history.csv", "cache.log"] {
        assert_eq!(bytes(one.join(f)), bytes(two.join(f)), "{f}: threads");
        assert_eq!(bytes(one.join(f)), bytes(part.join(f)), "{f}: resume");
    }
    // Both kinds live in the population, and programs were bred (not only the starting ones).
    let ck = checkpoint::read(&one.join("gen4.bin")).unwrap();
    let programs = ck
        .state
        .population
        .iter()
        .filter(|m| m.program.is_some())
        .count();
    assert!(
        programs > 0 && programs < 16,
        "{programs} programs of 16 after 4 generations"
    );
    // Generation 0 of a mixed run: the five seeds' default genomes first, then genomes and
    // programs in turn.
    let g0 = checkpoint::read(&one.join("gen0.bin")).unwrap();
    let n0 = g0
        .state
        .population
        .iter()
        .filter(|m| m.program.is_some())
        .count();
    assert!(n0 > 0, "no program in generation 0");
}

#[test]
fn impossible_programs_in_a_checkpoint_are_clear_errors() {
    let dir = scratch("badprog");
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let run = dir.join("run");
    ok(&evolve(&run, &cfg, "programs", 0, None));
    let src = run.join("gen0.bin");
    let ck = checkpoint::read(&src).unwrap();
    let i = ck
        .state
        .population
        .iter()
        .position(|m| m.program.is_some())
        .unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&mut checkpoint::Checkpoint)>)> = vec![
        (
            // A comparison of a price with an oscillator: the types forbid it.
            "not a valid program",
            Box::new(move |ck| {
                let p = ck.state.population[i].program.as_mut().unwrap();
                p.roots[0] = Some(Node {
                    op: Op::Gt,
                    ty: Ty::Bool,
                    value: 0.0,
                    seed: None,
                    args: vec![
                        program::parse_expr("close", Ty::Price, &lookup).unwrap(),
                        program::parse_expr("(rsi 14)", Ty::Osc, &lookup).unwrap(),
                    ],
                });
            }),
        ),
        (
            "a seed's genome carries a program",
            Box::new(move |ck| {
                let p = ck.state.population[i].program.clone();
                let j = ck
                    .state
                    .population
                    .iter()
                    .position(|m| m.program.is_none())
                    .unwrap_or(0);
                ck.state.population[j].seed = 0;
                ck.state.population[j].genes = lookup("ema_crossover").unwrap().default_genome();
                ck.state.population[j].program = p;
            }),
        ),
        (
            "a program member without a program",
            Box::new(move |ck| ck.state.population[i].program = None),
        ),
        (
            "over the run's limits",
            Box::new(move |ck| {
                let p = ck.state.population[i].program.as_mut().unwrap();
                let mut deep = program::parse_expr("true", Ty::Bool, &lookup).unwrap();
                for _ in 0..10 {
                    deep = Node {
                        op: Op::Not,
                        ty: Ty::Bool,
                        value: 0.0,
                        seed: None,
                        args: vec![deep],
                    };
                }
                p.roots[1] = Some(deep);
            }),
        ),
    ];
    for (want, edit) in cases {
        let mut bad = ck.clone();
        edit(&mut bad);
        let f = dir.join("run").join("gen7.bin");
        checkpoint::write(&f, &bad).unwrap();
        let o = organism(&["runs", "show", f.to_str().unwrap()], None);
        assert_eq!(o.status.code(), Some(1), "{want}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(e.contains("gen7.bin") && e.contains(want), "{want}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
}
