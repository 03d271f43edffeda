//! `evolve --mode portfolio` end to end: thread invariance and exact resume as for single-coin
//! runs; a member read back by `backtest --member`, `runs export` and `backtest --genome`; and
//! the search on a synthetic universe with a planted cross-sectional factor against the same
//! universe without one.

use std::path::Path;

use organism::fitness::portfolio::sharpe_standard_error;
use serde_json::Value;

mod common;

use common::{organism_threads, run_ok, s, scratch};

/// The bundled four-coin market, short, with a membership rule it can meet.
const SMALL: &str = r#"
[synthetic]
bars = 3000
[universe]
min_history = 10
[evolution]
population = 12
min_trades = 5.0
"#;

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn evolve(dir: &Path, cfg: &Path, gens: u32, threads: Option<&str>) {
    let o = organism_threads(
        &[
            "evolve",
            "--mode",
            "portfolio",
            "--config",
            s(cfg),
            "--generations",
            &gens.to_string(),
            "--out",
            s(dir),
            "--quiet",
        ],
        threads,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn portfolio_runs_ignore_threads_and_resume_exactly() {
    let base = scratch("pevo", "exact");
    let cfg = base.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let (one, two, part) = (base.join("one"), base.join("two"), base.join("part"));
    evolve(&one, &cfg, 4, Some("1"));
    evolve(&two, &cfg, 4, Some("2"));
    for g in 0..=4 {
        let f = format!("gen{g}.bin");
        assert_eq!(bytes(&one.join(&f)), bytes(&two.join(&f)), "{f} differs");
    }
    for f in ["front.csv", "history.csv"] {
        assert_eq!(bytes(&one.join(f)), bytes(&two.join(f)), "{f} differs");
    }
    evolve(&part, &cfg, 2, None);
    run_ok(&[
        "evolve",
        "resume",
        s(&part.join("gen2.bin")),
        "--generations",
        "4",
        "--quiet",
    ]);
    for f in ["gen3.bin", "gen4.bin", "front.csv", "history.csv"] {
        assert_eq!(
            bytes(&one.join(f)),
            bytes(&part.join(f)),
            "{f} differs after resume"
        );
    }
    // front.csv carries the portfolio columns; every member is a portfolio seed.
    let front = String::from_utf8(bytes(&one.join("front.csv"))).unwrap();
    let header = front.lines().next().unwrap();
    assert!(
        header.ends_with(
            "train_rank_ic,train_rank_ic_t,validation_rank_ic,validation_rank_ic_t,\
             train_avg_held,validation_avg_held,validation_capacity_max,validation_capacity_median"
        ),
        "{header}"
    );
    let id = front.lines().nth(1).unwrap().split(',').next().unwrap();
    let seed = front.lines().nth(1).unwrap().split(',').nth(1).unwrap();
    assert!(seed.starts_with("xs_"), "{seed}");

    // The member read back three ways trades the same: from the checkpoint, and through its
    // exported genome on the same data and split (the run's costs are the defaults here).
    let member = format!("{}:{id}", s(&one.join("gen4.bin")));
    let by_member: Value =
        serde_json::from_str(&run_ok(&["backtest", "--member", &member, "--json"])).unwrap();
    let toml = base.join("g.toml");
    run_ok(&["runs", "export", &member, "--out", s(&toml)]);
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(text.contains(&format!("seed = \"{seed}\"")), "{text}");
    // Paper replay drives the same book bar by bar: the equity of the backtest, bar for bar.
    let (e1, e2) = (base.join("replay.csv"), base.join("backtest.csv"));
    let replay: Value = serde_json::from_str(&run_ok(&[
        "paper",
        "replay",
        "--config",
        s(&cfg),
        "--genome",
        s(&toml),
        "--equity",
        s(&e1),
        "--json",
    ]))
    .unwrap();
    let whole: Value = serde_json::from_str(&run_ok(&[
        "backtest",
        "--config",
        s(&cfg),
        "--genome",
        s(&toml),
        "--equity",
        s(&e2),
        "--json",
    ]))
    .unwrap();
    assert_eq!(bytes(&e1), bytes(&e2));
    assert_eq!(bytes(&e1).iter().filter(|&&b| b == b'\n').count(), 3001);
    assert_eq!(replay["fills"], whole["figures"]["fills"]);
    assert_eq!(replay["final_equity"], whole["figures"]["final_equity"]);
    // A single-coin flag on a portfolio strategy: one clear error.
    let o = common::organism(&["paper", "replay", "--genome", s(&toml), "--coin", "BTC"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("a portfolio strategy trades its universe"),
        "{}",
        common::stderr(&o)
    );
    // The member's backtest ends where the holdout starts.
    let last = by_member["last_ts"].as_i64().unwrap();
    let show: Value = serde_json::from_str(&run_ok(&["runs", "show", s(&one), "--json"])).unwrap();
    let holdout_from = show["holdout_from"].as_str().unwrap().to_string();
    let day = &holdout_from[..10].replace('-', "");
    let by_genome: Value = serde_json::from_str(&run_ok(&[
        "backtest",
        "--config",
        s(&cfg),
        "--genome",
        s(&toml),
        "--timerange",
        &format!("-{day}"),
        "--json",
    ]))
    .unwrap();
    assert!(by_genome["last_ts"].as_i64().unwrap() <= last);
    assert_eq!(by_member["seed"], by_genome["seed"]);
    assert_eq!(by_member["genome"], by_genome["genome"]);
    // Every member shows its rank IC, coins held and capacity.
    let m = &show["members"][0];
    for k in ["rank_ic", "avg_held", "capacity_max", "capacity_median"] {
        assert!(
            !m["validation"]["portfolio"][k].is_null(),
            "{k} missing: {m}"
        );
    }
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn walkforward_runs_portfolio_strategies_window_by_window() {
    let base = scratch("pevo", "walk");
    let cfg = base.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let out = run_ok(&[
        "walkforward",
        "--mode",
        "portfolio",
        "--config",
        s(&cfg),
        "--train",
        "60d",
        "--test",
        "20d",
        "--generations",
        "1",
        "--include-holdout",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    // 3,000 hourly bars are 124.96 days: windows start at days 0, 20 and 40 (40 + 80 <= 124.96;
    // 60 + 80 is past the end).
    let windows = v["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3, "{v}");
    assert_eq!(v["summary"]["windows"], 3);
    for w in windows {
        for m in w["selected"].as_array().unwrap() {
            assert!(m["seed"].as_str().unwrap().starts_with("xs_"), "{m}");
            // Twenty days of hours: the Sharpe's standard error at Sharpe 0 is √(8760/480).
            let se = m["test_sharpe_se"].as_f64().unwrap();
            let sharpe = m["test_sharpe"].as_f64().unwrap();
            let expected = sharpe_standard_error(sharpe, 480, 8760.0);
            assert!((se - expected).abs() < 1e-9, "{se} vs {expected}");
            assert!(m["test_rank_ic"]["count"].as_u64().is_some(), "{m}");
        }
    }
    assert!(windows
        .iter()
        .any(|w| !w["selected"].as_array().unwrap().is_empty()));
    assert!(v["summary"]["stitched_oos_sharpe"].as_f64().is_some());
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn a_mixed_run_holds_portfolio_seeds_beside_single_coin_seeds_and_programs() {
    let base = scratch("pevo", "mixed");
    let cfg = base.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let (full, part) = (base.join("full"), base.join("part"));
    let evolve = |dir: &Path, gens: &str| {
        run_ok(&[
            "evolve",
            "--mode",
            "mixed",
            "--seeds",
            "ema_crossover,xs_momentum,rsi_filter,xs_reversal",
            "--config",
            s(&cfg),
            "--generations",
            gens,
            "--out",
            s(dir),
            "--quiet",
        ])
    };
    evolve(&full, "3");
    evolve(&part, "1");
    run_ok(&[
        "evolve",
        "resume",
        s(&part.join("gen1.bin")),
        "--generations",
        "3",
        "--quiet",
    ]);
    for f in ["gen2.bin", "gen3.bin", "front.csv", "history.csv"] {
        assert_eq!(
            bytes(&full.join(f)),
            bytes(&part.join(f)),
            "{f} after resume"
        );
    }
    // The gauntlet judges runs of one kind: one clear error, and no registry written.
    let reg = base.join("reg.db");
    let o = common::organism(&["promote", "--from", s(&full), "--registry", s(&reg)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("a mixed run with portfolio seeds"),
        "{}",
        common::stderr(&o)
    );
    assert!(!reg.exists());
    // Generation 0: each seed's defaults (single-coin seeds first, portfolio seeds named in the
    // order given after them), then random genomes and programs.
    let show: Value = serde_json::from_str(&run_ok(&[
        "runs",
        "show",
        s(&full.join("gen0.bin")),
        "--all",
        "--json",
    ]))
    .unwrap();
    assert_eq!(
        show["run"]["seeds"],
        serde_json::json!(["ema_crossover", "rsi_filter", "xs_momentum", "xs_reversal"])
    );
    let kinds: std::collections::BTreeSet<&str> = show["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seed"].as_str().unwrap())
        .collect();
    for k in [
        "ema_crossover",
        "rsi_filter",
        "program",
        "xs_momentum",
        "xs_reversal",
    ] {
        assert!(kinds.contains(k), "{k} missing from {kinds:?}");
    }
    // Portfolio members carry their diagnostics, single-coin ones none.
    for m in show["members"].as_array().unwrap() {
        let portfolio = m["seed"].as_str().unwrap().starts_with("xs_");
        assert_eq!(!m["validation"]["portfolio"].is_null(), portfolio, "{m}");
    }
    // front.csv rows have the header's 28 columns (program text aside, which has no commas).
    let front = String::from_utf8(bytes(&full.join("front.csv"))).unwrap();
    assert_eq!(front.lines().next().unwrap().split(',').count(), 28);
    assert!(front.lines().all(|l| l.split(',').count() == 28), "{front}");
    let _ = std::fs::remove_dir_all(base);
}

/// The planted-factor market: 40 coins, five years of hours, nothing cross-sectional but the
/// factor (no mean reversion in ranges, funding baseline plus noise plus the factor's trace).
fn factor_config(dir: &Path, xs_edge: f64) -> std::path::PathBuf {
    let p = dir.join(format!("xs{xs_edge}.toml"));
    std::fs::write(
        &p,
        format!(
            "[synthetic]\nxs_edge = {xs_edge}\nbars = 43800\nrange_pull = 0.0\n\
             funding_trend = 0.0\nxs_funding = 0.00002\n\
             [costs]\nfunding = false\n\
             [evolution]\ntrain_fraction = 0.5\nvalidation_fraction = 0.4\n\
             population = 32\ngenerations = 8\n"
        ),
    )
    .unwrap();
    p
}

/// Generates the market and evolves on it; the ranked front and `data generate`'s output.
fn search(dir: &Path, xs_edge: f64) -> (Vec<Value>, String) {
    let cfg = factor_config(dir, xs_edge);
    let data = dir.join(format!("d{xs_edge}"));
    let said = common::generate_coins(&cfg, &data);
    let out = run_ok(&[
        "evolve",
        "--mode",
        "portfolio",
        "--config",
        s(&cfg),
        "--data",
        s(&data),
        "--source",
        "synthetic",
        "--out",
        s(&dir.join(format!("r{xs_edge}"))),
        "--json",
    ]);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    (last["front"].as_array().unwrap().clone(), said)
}

fn validation(m: &Value, k: &str) -> f64 {
    m["validation"][k].as_f64().unwrap()
}

fn ic(m: &Value) -> (f64, f64) {
    let r = &m["validation"]["portfolio"]["rank_ic"];
    (
        r["mean"].as_f64().unwrap_or(f64::NAN),
        r["t"].as_f64().unwrap_or(f64::NAN),
    )
}

/// The search finds the planted factor, and finds nothing of the kind where none was planted.
///
/// The factor is strong enough that its factor-sorted long-short portfolio (top and bottom
/// fifth by the latent score, every bar, before costs) has a Sharpe near 3 (`data generate`
/// prints it: 2.71 on this seed); the latent score shows in funding, which the
/// `xs_funding_carry` seed ranks on, and funding is off as a cash flow so the only edge is the
/// factor's drift. Validation is two years (40 % of five).
///
/// Planted: some member's validation rank IC is positive at t > 3 and its validation Sharpe is
/// at least half the factor's.
///
/// Null (no factor): no member's validation rank IC reaches t > 3, and the best validation
/// Sharpe stays within noise. The bound: a member's validation Sharpe has standard error
/// `se` ≈ 0.71 over two years (Lo, Sharpe 0), and the front's members were chosen on training,
/// not validation, so the best of its `k` validation Sharpes is below `se·√(2·ln k)` (the
/// expected maximum of k independent normals, slightly above it for small k) unless something
/// real is there.
#[test]
fn the_search_finds_a_planted_cross_sectional_factor_and_nothing_without_one() {
    let base = scratch("pevo", "planted");
    let (front, said) = search(&base, 0.003);
    let oracle: f64 = said
        .split("has Sharpe ")
        .nth(1)
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no factor Sharpe in: {said}"));
    assert!((2.0..4.0).contains(&oracle), "factor Sharpe {oracle}");
    let found: Vec<&Value> = front
        .iter()
        .filter(|m| {
            let (mean, t) = ic(m);
            mean > 0.0 && t > 3.0 && validation(m, "sharpe") >= oracle / 2.0
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no member with validation rank IC t > 3 and Sharpe >= {:.2}: {}",
        oracle / 2.0,
        serde_json::to_string_pretty(&front).unwrap()
    );

    let (null, _) = search(&base, 0.0);
    let k = null.len().max(2) as f64;
    let bars = (43_800.0 * 0.4) as usize;
    let bound = sharpe_standard_error(0.0, bars, 8760.0) * (2.0 * k.ln()).sqrt();
    assert!((0.6..0.8).contains(&sharpe_standard_error(0.0, bars, 8760.0)));
    let best = null
        .iter()
        .map(|m| validation(m, "sharpe"))
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(
        best < bound,
        "null: best validation Sharpe {best:.2} >= bound {bound:.2}"
    );
    for m in &null {
        let (_, t) = ic(m);
        assert!(
            t.is_nan() || t <= 3.0,
            "null: a member with rank IC t {t:.1}: {m}"
        );
    }
    let _ = std::fs::remove_dir_all(base);
}
