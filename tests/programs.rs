//! Evolving strategy programs end to end through the binary: `evolve --mode programs` ends with a
//! front of programs that `backtest --member` reproduces; mixed runs are identical on one and two
//! threads and resume exactly; checkpoints with impossible programs are clear errors.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

use organism::{
    evolution::checkpoint,
    genome::program::{self, Node, Op, Ty},
};

mod common;

use common::{ok, organism_threads as organism};

/// Five seeds (one ML) on the bundled market, a small population: quick, and every variation
/// path (programs, genomes, both crossed) runs in a mixed population.
const SMALL: &str = r#"
[evolution]
population = 16
min_trades = 5.0
seeds = ["ema_crossover", "donchian_breakout", "rsi_filter", "sma_trend_filter", "pca_tree_quantile"]
"#;

fn scratch(name: &str) -> PathBuf {
    common::scratch("gp", name)
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
    // Every checkpoint reads back: each stored program parses from its text within the limits.
    for g in 0..30 {
        let f = out.join(format!("gen{g}.bin"));
        checkpoint::read(&f).unwrap_or_else(|e| panic!("{e}"));
    }
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

/// A change made to a checkpoint.
type Edit = Box<dyn Fn(&mut checkpoint::Checkpoint)>;

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
    let cases: Vec<(&str, Edit)> = vec![
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

#[test]
fn fear_greed_is_read_from_the_next_day_and_only_where_the_data_has_it() {
    let fg_program = "(program (enter-long (lt fear-greed 25.0)) (exit-long (gt fear-greed 75.0)))";
    // The bundled market has no index: a clear error, not a program that silently never trades.
    let o = organism(&["backtest", "--program", fg_program], None);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("has no Fear & Greed index"), "{e}");

    // The synthetic market as files (bars hourly from 2024-01-01 00:00 UTC), with an index of
    // 10 on Jan 1 and 2 and 90 from Jan 3 on.
    let dir = scratch("feargreed");
    let data = dir.join("data");
    ok(&organism(
        &["data", "generate", "--out", data.to_str().unwrap()],
        None,
    ));
    let mut fg = String::from("date,value\n");
    for i in 0..731 {
        let day = 19_723 + i; // 2024-01-01 + i
        let (y, m, d) = civil(day);
        fg.push_str(&format!(
            "{y:04}-{m:02}-{d:02},{}\n",
            if i < 2 { 10 } else { 90 }
        ));
    }
    std::fs::write(data.join("fear_greed.csv"), fg).unwrap();
    let trades = dir.join("trades.csv");
    let t = json(&organism(
        &[
            "backtest",
            "--data",
            data.to_str().unwrap(),
            "--source",
            "synthetic",
            "--coin",
            "BTC",
            "--program",
            fg_program,
            "--trades",
            trades.to_str().unwrap(),
            "--json",
        ],
        None,
    ));
    // Jan 1's 10 is known from Jan 2 00:00 (bar 24): the long fills at bar 25's open. Jan 3's
    // 90 is known from Jan 4 00:00 (bar 72): the exit fills at bar 73's open. One trade.
    assert_eq!(t["trades"].as_u64(), Some(1));
    assert_eq!(t["exits"]["signal"].as_u64(), Some(1));
    let csv = std::fs::read_to_string(&trades).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let start = 1_704_067_200_000_i64;
    let hour = 3_600_000;
    assert_eq!(row[1].parse::<i64>().unwrap(), start + 25 * hour);
    assert_eq!(row[3].parse::<i64>().unwrap(), start + 73 * hour);
}

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
