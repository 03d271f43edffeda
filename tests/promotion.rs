//! `organism promote` and `organism strategies` end to end: the gauntlet promotes the strategy
//! of a market with a planted edge, promotes nothing from return-permuted copies of it, records
//! its decisions in the registry, and refuses bad input with one clear message.
//!
//! The market is the planted-edge market of `tests/generalization.rs` (trend edge 0.25, seed 10,
//! BTC and ETH) over three years of hourly bars instead of one: with one year the training
//! segment (0.6 of a year) is too short for any Sharpe to be told from the best of a hundred
//! trials at 95 % (the deflated Sharpe of the best is about 0.5), which is the gauntlet being
//! right, not wrong. Evolution: three seeds, 16 members, 40 generations.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

mod common;

use common::{organism, s, stderr, stdout};

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "failed: {}", stderr(&o));
    o
}

fn json(o: Output) -> serde_json::Value {
    let o = ok(o);
    serde_json::from_str(stdout(&o).trim()).expect("one JSON object")
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("promote", name)
}

/// The planted-edge configuration in `dir`.
fn config(dir: &Path) -> PathBuf {
    let c = dir.join("planted.toml");
    std::fs::write(
        &c,
        format!(
            r#"{}
[evolution]
seeds = ["ema_crossover", "donchian_breakout", "rsi_filter"]
population = 16
generations = 40

[promotion]
nulls = 40
"#,
            common::PLANTED_MARKET
        ),
    )
    .unwrap();
    c
}

/// `promote --json` of run folder `pop` into registry `reg`, with `extra` flags.
fn promote(cfg: &Path, pop: &Path, reg: &Path, extra: &[&str]) -> serde_json::Value {
    let mut a = vec![
        "promote",
        "--config",
        s(cfg),
        "--from",
        s(pop),
        "--registry",
        s(reg),
        "--json",
    ];
    a.extend_from_slice(extra);
    json(organism(&a))
}

/// `strategies ARGS --registry REG --json`.
fn strategies(reg: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["strategies", args[0], "--registry", s(reg)];
    a.extend_from_slice(&args[1..]);
    a.push("--json");
    json(organism(&a))
}

fn stage<'a>(candidate: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    candidate["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["stage"] == name)
}

#[test]
fn the_planted_edge_is_promoted_and_recorded() {
    let dir = scratch("planted");
    let cfg = config(&dir);
    let pop = dir.join("pop");
    let reg = dir.join("registry.db");
    let report = dir.join("promotion.html");
    ok(organism(&[
        "evolve",
        "-q",
        "--config",
        s(&cfg),
        "--out",
        s(&pop),
    ]));
    let promote = |extra: &[&str]| promote(&cfg, &pop, &reg, extra);
    let j = promote(&["--report", s(&report)]);
    let promoted: Vec<&str> = j["promoted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!promoted.is_empty(), "nothing promoted: {}", j["summary"]);
    assert!(promoted.len() <= 5);
    assert!(j["holdout_read"].as_bool().unwrap());
    assert!(j["trials"]["count"].as_u64().unwrap() > 300);
    // The trials' clusters are counted beside them (400 sampled of the run's trials), and the
    // raw count is what the deflated Sharpe used (the default).
    let e = &j["trials"]["effective"];
    assert_eq!(e["clustered"], 400);
    let k = e["clusters"].as_u64().unwrap();
    assert!((1..=20).contains(&k), "{e}");
    assert_eq!(j["trials"]["clustered"], false);
    let noise = &j["noise_max_sharpe"];
    assert!(noise["raw"].as_f64().unwrap() > 0.0, "{noise}");
    assert!(j["pbo"]["pbo"].as_f64().unwrap() <= 0.5);
    let candidates = j["candidates"].as_array().unwrap();
    for c in candidates {
        let stages = c["stages"].as_array().unwrap();
        let failed: Vec<&serde_json::Value> =
            stages.iter().filter(|o| o["passed"] == false).collect();
        if c["admitted"] == true {
            // Every stage passed, the trend followers only, the holdout read and positive.
            assert!(failed.is_empty());
            assert_eq!(stages.len(), 8);
            // The run has no null searches: that stage is skipped, and says so.
            let sn = stage(c, "search_nulls").unwrap();
            assert!(
                sn["reason"].as_str().unwrap().starts_with("skipped"),
                "{sn}"
            );
            assert_eq!(sn["figures"]["searches"], 0);
            let seed = c["seed"].as_str().unwrap();
            assert!(
                seed == "ema_crossover" || seed == "donchian_breakout",
                "{seed}"
            );
            assert!(c["holdout"]["sharpe"].as_f64().unwrap() > 0.0);
            assert!(promoted.contains(&c["strategy"].as_str().unwrap()));
            let d = &stage(c, "deflated_sharpe").unwrap()["figures"];
            for key in [
                "sharpe",
                "t",
                "skew",
                "kurtosis",
                "trials",
                "trial_sharpe_var",
                "dsr",
            ] {
                assert!(!d[key].is_null(), "{key}");
            }
            assert_eq!(d["trials"], d["raw_trials"]);
            assert_eq!(d["trials"], j["trials"]["count"]);
            assert!(d["dsr"].as_f64().unwrap() >= 0.95);
            let n = &stage(c, "nulls").unwrap()["figures"];
            assert_eq!(n["nulls"], 40);
            // Cost and delay sensitivity: at 1x the segments' own Sharpe, falling as costs
            // rise, positive at 2x (double_costs is on by default), break-even past 2x.
            let sens = &stage(c, "costs").unwrap()["figures"]["sensitivity"];
            for (seg, own) in [("train", &c["train"]), ("validation", &c["validation"])] {
                let x = &sens[seg];
                let at: Vec<(f64, f64)> = x["costs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p["multiple"].as_f64().unwrap(),
                            p["sharpe"].as_f64().unwrap(),
                        )
                    })
                    .collect();
                let multiples: Vec<f64> = at.iter().map(|p| p.0).collect();
                assert_eq!(multiples, [0.5, 1.0, 2.0, 3.0]);
                let own = own["sharpe"].as_f64().unwrap();
                assert!((at[1].1 - own).abs() < 1e-9, "{seg}: {x} vs {own}");
                assert!(at.windows(2).all(|w| w[1].1 < w[0].1), "{seg}: {x}");
                assert!(at[2].1 > 0.0, "{seg}: {x}");
                let delays: Vec<u64> = x["delays"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["bars"].as_u64().unwrap())
                    .collect();
                assert_eq!(delays, [1, 2]);
                // Where the Sharpe changes sign between grid points, the break-even lies
                // between them.
                match x["break_even_multiple"].as_f64() {
                    Some(b) => {
                        assert!(b > 2.0, "{seg}: {x}");
                        if at[3].1 <= 0.0 {
                            assert!(b <= 3.0, "{seg}: {x}");
                        }
                    }
                    None => assert!(at[3].1 > 0.0, "{seg}: {x}"),
                }
            }
        } else {
            // It stopped at exactly one stage: the last it reached.
            assert_eq!(failed.len(), 1, "{c}");
            assert_eq!(stages.last().unwrap()["passed"], false);
            assert_eq!(c["stopped_at"], stages.last().unwrap()["stage"]);
        }
        // Figures per volatility regime (no Fear & Greed index here), and the policy they
        // suggest.
        let regimes: Vec<&str> = c["regimes"]["validation"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["regime"].as_str().unwrap())
            .collect();
        assert_eq!(
            regimes,
            ["low_volatility", "normal_volatility", "high_volatility"]
        );
        assert_eq!(
            c["regime_policy"]["volatility"].as_array().unwrap().len(),
            3
        );
        // Strategy ids: {seed}_{generation}_{hash8}.
        assert_eq!(
            c["strategy"].as_str().unwrap(),
            format!(
                "{}_40_{}",
                c["seed"].as_str().unwrap(),
                c["member"].as_str().unwrap()
            )
        );
    }
    // The report: the gauntlet table, equity with the segments marked, the null histograms.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<h2>Gauntlet</h2>"));
    // Two rows of cost and delay figures per candidate (training, validation).
    assert!(html.contains("<h2>Costs and delay</h2>"));
    assert!(html.contains("<th>2x costs</th>") && html.contains("<th>2 bars late</th>"));
    assert_eq!(
        html.matches("<td class=\"l\">validation</td>").count(),
        candidates.len(),
        "{html}"
    );
    assert!(html.contains("class=\"mark\""));
    assert!(html.matches("class=\"bar\"").count() >= 30);
    assert!(html.contains(">holdout</text>"));
    assert!(html.contains("policy from the validation figures"));

    // The registry holds every candidate; the promoted ones as promoted, with their weights.
    let list = strategies(&reg, &["list"]);
    assert_eq!(list.as_array().unwrap().len(), candidates.len());
    let listed = strategies(&reg, &["list", "--status", "promoted"]);
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = promoted.clone();
    want.sort_unstable();
    assert_eq!(ids, want);
    // Inverse-volatility shares capped at 25 % (portfolio.*): with four or fewer strategies
    // each gets the cap and the rest stays in cash; with more they sum to 1.
    let weights: Vec<f64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["weight"].as_f64().unwrap())
        .collect();
    if promoted.len() <= 4 {
        assert!(
            weights.iter().all(|w| (w - 0.25).abs() < 1e-12),
            "{weights:?}"
        );
    } else {
        assert!(weights.iter().all(|w| *w <= 0.25 + 1e-12), "{weights:?}");
        assert!(
            (weights.iter().sum::<f64>() - 1.0).abs() < 1e-9,
            "{weights:?}"
        );
    }
    let first = promoted[0];
    let shown = strategies(&reg, &["show", first]);
    assert_eq!(shown["strategy"]["status"], "promoted");
    assert_eq!(shown["strategy"]["verdict"], "passed");
    assert_eq!(shown["history"].as_array().unwrap().len(), 1);
    assert_eq!(shown["promotion"]["generation"], 40);
    // The stored genome backtests as it is.
    let genome = dir.join("genome.toml");
    std::fs::write(&genome, shown["strategy"]["genome"].as_str().unwrap()).unwrap();
    ok(organism(&[
        "backtest",
        "--config",
        s(&cfg),
        "--genome",
        s(&genome),
        "--json",
    ]));
    // Retire: recorded with its reason, final.
    let r = strategies(&reg, &["retire", first, "--reason", "superseded"]);
    assert_eq!(r["status"], "retired");
    assert_eq!(r["reason"], "superseded");
    let again = organism(&[
        "strategies",
        "retire",
        "--registry",
        s(&reg),
        first,
        "--reason",
        "twice",
    ]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("is retired"), "{}", stderr(&again));

    // A second promotion of the same run: the same verdicts, the retired one stays retired,
    // and each holdout read is counted.
    let j2 = promote(&[]);
    assert_eq!(j2["promoted"], j["promoted"]);
    // The summary says what happened: nothing new, the rest already promoted, one retired.
    let n = j["promoted"].as_array().unwrap().len();
    let summary = j2["summary"].as_str().unwrap();
    assert!(
        summary.starts_with(&format!("passed {n} of "))
            && summary.contains(&format!(
                "0 newly promoted, {} already promoted, paper or live, 1 retired (stay retired)",
                n - 1
            )),
        "{summary}"
    );
    assert!(
        j2["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("stays retired")),
        "{}",
        j2["notes"]
    );
    for c in j2["candidates"].as_array().unwrap() {
        if let Some(h) = stage(c, "holdout") {
            assert_eq!(h["figures"]["earlier_reads"], 1);
        }
    }
    let shown = strategies(&reg, &["show", first]);
    assert_eq!(shown["strategy"]["status"], "retired");
    assert_eq!(shown["history"].as_array().unwrap().len(), 2);

    // Null searches that found validation Sharpes of 9, 10, 11 and 12 on data with no edge
    // (their file as `evolve --null-searches 4` writes it): no candidate beats their 95th
    // percentile, 11.85, and each stops there; of another generation, they are not used.
    let nulls = |generations: u32| {
        let n: Vec<String> = [9.0, 10.0, 11.0, 12.0]
            .iter()
            .map(|x| format!(r#"{{"best_validation_sharpe": {x}, "hypervolume": 0.5}}"#))
            .collect();
        std::fs::write(
            pop.join("search_nulls.json"),
            format!(
                r#"{{"generations": {generations}, "real": {{"best_validation_sharpe": 3.0,
                "hypervolume": 0.6}}, "nulls": [{}], "p_value_sharpe": 1.0,
                "p_value_hypervolume": 0.2}}"#,
                n.join(",")
            ),
        )
        .unwrap();
    };
    nulls(40);
    let reg2 = dir.join("registry2.db");
    let j3 = crate::promote(&cfg, &pop, &reg2, &[]);
    assert!(
        j3["promoted"].as_array().unwrap().is_empty(),
        "{}",
        j3["summary"]
    );
    let mut reached = 0;
    for c in j3["candidates"].as_array().unwrap() {
        if let Some(sn) = stage(c, "search_nulls") {
            reached += 1;
            assert_eq!(sn["passed"], false, "{sn}");
            assert_eq!(c["stopped_at"], "search_nulls");
            let f = &sn["figures"];
            assert_eq!(f["searches"], 4);
            assert!((f["sharpe_at_quantile"].as_f64().unwrap() - 11.85).abs() < 1e-9);
            assert!(sn["reason"]
                .as_str()
                .unwrap()
                .contains("the search finds as much without an edge"));
        }
    }
    assert!(reached >= n, "the promoted ones reached it");
    nulls(39);
    let j4 = crate::promote(&cfg, &pop, &dir.join("registry3.db"), &[]);
    assert_eq!(j4["promoted"], j["promoted"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn return_permuted_copies_promote_nothing() {
    let dir = scratch("permuted");
    let cfg = config(&dir);
    let reg = dir.join("registry.db");
    for seed in ["1", "2", "3"] {
        let data = dir.join(format!("perm{seed}"));
        let pop = dir.join(format!("pop{seed}"));
        ok(organism(&[
            "data",
            "permute",
            "-q",
            "--config",
            s(&cfg),
            "--out",
            s(&data),
            "--seed",
            seed,
        ]));
        ok(organism(&[
            "evolve",
            "-q",
            "--config",
            s(&cfg),
            "--data",
            s(&data),
            "--source",
            "permuted",
            "--out",
            s(&pop),
        ]));
        let j = promote(&cfg, &pop, &reg, &[]);
        assert_eq!(
            j["promoted"].as_array().unwrap().len(),
            0,
            "seed {seed}: {j}"
        );
        let summary = j["summary"].as_str().unwrap();
        assert!(summary.starts_with("nothing promoted"), "{summary}");
    }
    // The table says so in words too.
    let o = ok(organism(&[
        "promote",
        "-q",
        "--config",
        s(&cfg),
        "--from",
        s(&dir.join("pop1")),
        "--registry",
        s(&reg),
    ]));
    assert!(
        stdout(&o).contains("nothing promoted: none of the"),
        "{}",
        stdout(&o)
    );
    let listed = strategies(&reg, &["list", "--status", "promoted"]);
    assert!(listed.as_array().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_gets_one_clear_message() {
    let dir = scratch("errors");
    // No checkpoints.
    let o = organism(&[
        "promote",
        "--from",
        s(&dir),
        "--registry",
        s(&dir.join("r.db")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no checkpoints"), "{}", stderr(&o));
    // A registry that is not a database is named and left untouched.
    let junk = dir.join("junk.db");
    let text = "not a database\n".repeat(200);
    std::fs::write(&junk, &text).unwrap();
    let o = organism(&["strategies", "list", "--registry", s(&junk)]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("junk.db") && e.contains("not a usable SQLite"),
        "{e}"
    );
    assert!(!e.contains("panicked"));
    assert_eq!(std::fs::read_to_string(&junk).unwrap(), text);
    // No registry yet.
    let o = organism(&["strategies", "list", "--registry", s(&dir.join("none.db"))]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no registry yet"), "{}", stderr(&o));
    assert!(!dir.join("none.db").exists());
    // Bad status, bad config value.
    let o = organism(&[
        "strategies",
        "list",
        "--registry",
        s(&junk),
        "--status",
        "gone",
    ]);
    assert!(stderr(&o).contains("--status") && stderr(&o).contains("not a status"));
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[promotion]\npbo_blocks = 15\n").unwrap();
    let o = organism(&["promote", "--config", s(&bad), "--from", s(&dir)]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("promotion.pbo_blocks") && stderr(&o).contains("even"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `organism calibrate` at small size (fixed seeds, so deterministic): return-permuted nulls
/// promote nothing and a strong planted edge (true Sharpe 11) is promoted on both markets; a
/// calibration killed after its first market continues where it stopped.
#[test]
fn calibrate_nulls_promote_nothing_and_a_strong_edge_is_found() {
    let dir = scratch("calibrate");
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        "[evolution]\nseeds = [\"ema_crossover\", \"donchian_breakout\", \"rsi_filter\"]\n\
         population = 16\ngenerations = 40\n\n[promotion]\nnulls = 40\n",
    )
    .unwrap();
    let out = dir.join("cal");
    let args = [
        "calibrate",
        "--config",
        s(&cfg),
        "--markets",
        "2",
        "--sharpe",
        "11",
        "--years",
        "3",
        "--jobs",
        "1",
        "--out",
        s(&out),
        "--json",
    ];
    // Killed once its first market has its result.
    let mut first = common::Proc::spawn(
        "calibrate",
        std::process::Command::new(env!("CARGO_BIN_EXE_organism"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped()),
    );
    first.wait_for(
        "its first market's result",
        std::time::Duration::from_secs(300),
        || out.join("null-000/result.json").is_file(),
    );
    first.kill();
    let v = json(organism(&args));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[0]["row"].as_str(), rows[0]["markets"].as_u64()),
        (Some("null"), Some(2))
    );
    assert_eq!(rows[0]["promoted"], 0, "{v}");
    assert_eq!(rows[1]["row"], "sharpe11");
    assert_eq!(rows[1]["promoted"], 2, "{v}");
    // Wilson 95 % upper bound of 0 of 2: z²/(2 + z²).
    let z2 = 1.959_963_984_540_054f64.powi(2);
    assert!((rows[0]["high"].as_f64().unwrap() - z2 / (2.0 + z2)).abs() < 1e-12);
    for m in ["null-000", "null-001", "sharpe11-000", "sharpe11-001"] {
        assert!(out.join(m).join("result.json").is_file(), "{m}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A registry written by the release before portfolio evolution (commit 2467b5b: evolve on the
/// planted-edge market of `common::promoted`, then `promote`) opens in this build, with what that
/// release printed: two promoted, six candidates with the stage that stopped each. The fixture
/// stays as it is, so the next change of the registry's schema is tested against a real old
/// file.
#[test]
fn a_registry_made_by_the_previous_release_opens() {
    let d = common::scratch("promotion", "old-registry");
    let reg = d.join("reg.db");
    std::fs::copy("tests/data/registry_2467b5b.db", &reg).unwrap();
    let out = common::run_ok(&[
        "strategies",
        "list",
        "--registry",
        common::s(&reg),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows: Vec<(String, String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("donchian_breakout_40_4169dc92", "promoted", "passed"),
        (
            "donchian_breakout_40_4534fecb",
            "candidate",
            "failed: out_of_sample",
        ),
        (
            "donchian_breakout_40_938ef057",
            "candidate",
            "failed: diversity",
        ),
        (
            "donchian_breakout_40_c94f5914",
            "candidate",
            "failed: diversity",
        ),
        ("ema_crossover_40_3bc36f40", "candidate", "failed: nulls"),
        (
            "ema_crossover_40_625bfdf8",
            "candidate",
            "failed: out_of_sample",
        ),
        (
            "ema_crossover_40_9be82c8f",
            "candidate",
            "failed: deflated_sharpe",
        ),
        ("ema_crossover_40_cd364e10", "promoted", "passed"),
    ];
    let mut rows = rows;
    rows.sort();
    assert_eq!(
        rows,
        want.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
    // Its genomes still read: the promoted EMA crossover's genes as that release wrote them.
    let show = common::run_ok(&[
        "strategies",
        "show",
        "ema_crossover_40_cd364e10",
        "--registry",
        common::s(&reg),
    ]);
    assert!(
        show.contains("fast = 7") && show.contains("slow = 37"),
        "{show}"
    );
    // Brought to the current schema (version 4: a portfolio strategy's universe, 5: the
    // venue of each journal account, 6: the alerts' cursors), its single-coin strategies
    // without a universe.
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["universe"].is_null()));
    let conn = rusqlite::Connection::open(&reg).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 6);
    let universes: i64 = conn
        .query_row("SELECT COUNT(universe) FROM strategies", [], |r| r.get(0))
        .unwrap();
    assert_eq!(universes, 0);
    let _ = std::fs::remove_dir_all(d);
}

/// A registry and journal written by release ba5d92a (store schema 5; how it was made is in
/// `tests/data/store_ba5d92a/README.md`): single-coin and portfolio strategies, a retired one,
/// a paper session with a kill switch and a resume, a live dry run and a live session with
/// orders on the local exchange. This build migrates a copy and prints what that release
/// printed, byte for byte: `strategies list` and `show`, `paper status`, `live status`.
#[test]
fn a_store_written_by_release_ba5d92a_reads_the_same() {
    let fixture = std::path::Path::new("tests/data/store_ba5d92a");
    let d = common::scratch("promotion", "store-ba5d92a");
    let reg = d.join("registry.db");
    std::fs::copy(fixture.join("registry.db"), &reg).unwrap();
    let cfg = fixture.join("config.toml");
    let r = s(&reg);
    let mut cases: Vec<(String, Vec<&str>)> = vec![
        (
            "strategies_list.json".into(),
            vec!["strategies", "list", "--registry", r, "--json"],
        ),
        (
            "strategies_list.txt".into(),
            vec!["strategies", "list", "--registry", r],
        ),
        (
            "paper_status.json".into(),
            vec!["paper", "status", "--registry", r, "--json"],
        ),
        (
            "paper_status.txt".into(),
            vec!["paper", "status", "--registry", r],
        ),
    ];
    let c = s(&cfg);
    for (file, dry) in [("live_status", false), ("live_status_dry", true)] {
        let mut args = vec!["live", "status", "--config", c, "--registry", r, "--json"];
        if dry {
            args.push("--dry-run");
        }
        cases.push((format!("{file}.json"), args));
    }
    cases.push((
        "live_status.txt".into(),
        vec!["live", "status", "--config", c, "--registry", r],
    ));
    let ids = [
        "ema_crossover_40_cd364e10",
        "xs_funding_carry_8_2eea634d",
        "donchian_breakout_40_4169dc92",
        "ema_crossover_40_9be82c8f",
    ];
    for id in ids {
        cases.push((
            format!("show_{id}.json"),
            vec!["strategies", "show", id, "--registry", r, "--json"],
        ));
        cases.push((
            format!("show_{id}.txt"),
            vec!["strategies", "show", id, "--registry", r],
        ));
    }
    for (file, args) in &cases {
        let want = std::fs::read_to_string(fixture.join(file)).unwrap();
        let o = organism(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(
            stdout(&o) == want,
            "{file}: this build prints\n{}",
            stdout(&o)
        );
    }
    let _ = std::fs::remove_dir_all(d);
}
