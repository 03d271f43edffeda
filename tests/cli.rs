//! End-to-end tests through the `organism` binary.

use std::{
    path::{Path, PathBuf},
    process::Output,
};

mod common;

use common::{organism, stderr, stdout};

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_str(stdout(o).trim()).expect("one JSON object")
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("cli", name)
}

const KEYS: [&str; 23] = [
    "coin",
    "bars",
    "buy_hold",
    "trade_stats",
    "cagr",
    "calmar",
    "avg_trade",
    "exits",
    "monthly_returns",
    "total_return",
    "sharpe",
    "fold_sharpe",
    "psr",
    "sortino",
    "max_drawdown",
    "consistency",
    "turnover",
    "trades",
    "closed_trades",
    "final_equity",
    "win_rate",
    "profit_factor",
    "exposure",
];

#[test]
fn backtest_on_the_bundled_market_prints_plausible_metrics() {
    let o = organism(&["backtest", "--fast", "12", "--slow", "26"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("BTC on synthetic market"), "{out}");
    for row in ["total return", "sharpe", "max drawdown", "profit factor"] {
        assert!(out.contains(row), "{out}");
    }
    let v = json(&organism(&[
        "backtest", "--fast", "12", "--slow", "26", "--json",
    ]));
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), KEYS.len());
    for k in KEYS {
        assert!(obj.contains_key(k), "missing {k}");
    }
    assert!(v["trades"].as_u64().unwrap() > 0);
    assert!(v["sharpe"].as_f64().unwrap().is_finite());
    let eq = v["final_equity"].as_f64().unwrap();
    assert!((v["total_return"].as_f64().unwrap() - (eq / 10_000.0 - 1.0)).abs() < 1e-12);
}

#[test]
fn trade_and_equity_files_are_written() {
    let dir = scratch("files");
    let trades = dir.join("trades.csv");
    let equity = dir.join("equity.csv");
    let v = json(&organism(&[
        "backtest",
        "--coin",
        "ETH",
        "--long-only",
        "--atr-stop",
        "2",
        "--json",
        "--trades",
        trades.to_str().unwrap(),
        "--equity",
        equity.to_str().unwrap(),
    ]));
    let t = std::fs::read_to_string(&trades).unwrap();
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("side,entry_time_ms,entry_price"));
    assert_eq!(lines.len() - 1, v["trades"].as_u64().unwrap() as usize);
    assert!(
        t.contains(",stop-loss"),
        "a 2-ATR stop fires on two years of data"
    );
    assert!(lines[1..].iter().all(|l| l.starts_with("long,")));
    let e = std::fs::read_to_string(&equity).unwrap();
    assert_eq!(e.lines().count(), 17_520 + 1);
    assert_eq!(common::last_equity(&e), v["final_equity"].as_f64().unwrap());
}

#[test]
fn generated_csv_round_trips_to_identical_results() {
    let dir = scratch("gen");
    let o = organism(&["data", "generate", "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("candles/synthetic_SOL_1h.csv").is_file());
    assert!(dir.join("funding/synthetic_SOL.csv").is_file());
    let args = ["backtest", "--coin", "SOL", "--json"];
    let built_in = json(&organism(&args));
    let mut with_data = args.to_vec();
    with_data.extend(["--data", dir.to_str().unwrap(), "--source", "synthetic"]);
    assert_eq!(json(&organism(&with_data)), built_in);
}

#[test]
fn malformed_csv_is_one_clear_error() {
    let dir = scratch("bad");
    let f = dir.join("bad.csv");
    std::fs::write(
        &f,
        "timestamp_ms,open,high,low,close,volume\n1704067200000,10,12,9,11,5\n\
         1704070800000,10,9,9.5,11,5\n",
    )
    .unwrap();
    let o = organism(&["backtest", "--data", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("bad.csv: line 3: high 9 is below"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_config_value_is_one_clear_error() {
    let dir = scratch("cfg");
    let f = dir.join("my.toml");
    std::fs::write(&f, "[costs]\nslippage = 0.5\n").unwrap();
    let o = organism(&["backtest", "--config", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("my.toml: costs.slippage: 0.5 is out of range"),
        "{err}"
    );
    std::fs::write(&f, "[backtest]\nleverag = 3\n").unwrap();
    let err = stderr(&organism(&["backtest", "--config", f.to_str().unwrap()]));
    assert!(err.contains("backtest.leverag: unknown key"), "{err}");
    std::fs::write(&f, "[backtest]\nleverage = 60\n").unwrap();
    let err = stderr(&organism(&["backtest", "--config", f.to_str().unwrap()]));
    assert!(
        err.contains("my.toml: backtest.leverage: 60 is out of range: must be in [1, 50]"),
        "{err}"
    );
    std::fs::write(&f, "[backtest]\nleverage = 10\nmaintenance_margin = 0.1\n").unwrap();
    let err = stderr(&organism(&["backtest", "--config", f.to_str().unwrap()]));
    assert!(
        err.contains("backtest.maintenance_margin: 0.1 at backtest.leverage 10 liquidates"),
        "{err}"
    );
    // An empty registry file is refused with one line, for every command that reads it, and
    // stays empty.
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    for args in [
        vec!["strategies", "list", "--registry"],
        vec!["paper", "status", "--registry"],
    ] {
        let mut a = args.clone();
        a.push(empty.to_str().unwrap());
        let o = organism(&a);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{e}");
        assert!(e.contains("empty.db: the file is empty (0 bytes)"), "{e}");
    }
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    let o = organism(&["backtest", "--leverage", "0.5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("--leverage: backtest.leverage: 0.5 is out of range: must be in [1, 50]"),
        "{}",
        stderr(&o)
    );
    let o = organism(&["backtest", "--fee", "-1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--fee: costs.taker_fee: -1 is out of range"),
        "{}",
        stderr(&o)
    );
    let o = organism(&["backtest", "--coin", "XYZ"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("XYZ"), "{}", stderr(&o));
}

/// Leverage from the config or the flag trades the same: a full-size position of 2x equity,
/// twice the coins of 1x at the first entry.
#[test]
fn leverage_from_the_config_or_the_flag_doubles_the_position() {
    let dir = scratch("leverage");
    let f = dir.join("two.toml");
    std::fs::write(&f, "[backtest]\nleverage = 2.0\n").unwrap();
    let trades = |extra: &[&str], name: &str| {
        let t = dir.join(name);
        let mut a = vec![
            "backtest",
            "--seed",
            "rsi_filter",
            "--trades",
            t.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        let o = organism(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = std::fs::read_to_string(&t).unwrap();
        let first: Vec<String> = text
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        (text, first[5].parse::<f64>().unwrap(), stdout(&o))
    };
    let (one, size1, _) = trades(&[], "one.csv");
    let (by_config, size2, said) = trades(&["--config", f.to_str().unwrap()], "cfg.csv");
    let (by_flag, _, _) = trades(&["--leverage", "2"], "flag.csv");
    assert_eq!(by_config, by_flag);
    assert_ne!(one, by_config);
    // The same fill price (the same bar, no leverage in the price), twice the coins.
    assert!((size2 / size1 - 2.0).abs() < 1e-12, "{size1} {size2}");
    assert!(
        said.contains("leverage 2x (maintenance margin 1.25 % of notional)"),
        "{said}"
    );
}

/// vectorbt 0.28.1 `Portfolio.from_signals(close, ma_crossed_above, ma_crossed_below,
/// fees=0.00045, slippage=0.0001, init_cash=10000, freq='1h')` on the benchmark file:
/// (fast, slow, total_return, sharpe_ratio, max_drawdown (vectorbt's sign), closed trades).
const VECTORBT: [(u32, u32, f64, f64, f64, u64); 5] = [
    (
        12,
        26,
        -0.416320137628194,
        -0.0772964468798894,
        -0.7210663486011764,
        583,
    ),
    (
        2,
        10,
        -0.979720944635116,
        -1.9226133067100537,
        -0.9810175330494212,
        2344,
    ),
    (
        51,
        200,
        -0.21206535950504357,
        0.07696858318036817,
        -0.6031251151073396,
        101,
    ),
    (
        20,
        50,
        -0.4801196940212577,
        -0.14906337743754008,
        -0.7044616797232096,
        337,
    ),
    (
        7,
        130,
        0.41365120924703297,
        0.4163138637209969,
        -0.4801369192842492,
        312,
    ),
];

#[test]
fn close_fill_mode_reproduces_vectorbt() {
    let file = shared().join("bench/synth_1h_4y_seed42.csv");
    if !file.is_file() {
        eprintln!("skipping: {} is absent", file.display());
        return;
    }
    check_vectorbt(&file, &VECTORBT);
}

/// vectorbt 0.28.1 on the committed fixture `tests/data/vbt_fixture_1h.csv`, computed by
/// `tests/data/vectorbt_reference.py` (same call and columns as [`VECTORBT`]).
const VECTORBT_FIXTURE: [(u32, u32, f64, f64, f64, u64); 5] = [
    (
        12,
        26,
        -0.5500732573863547,
        -5.377504035429863,
        -0.5550186135195194,
        47,
    ),
    (
        2,
        10,
        -0.3851456164762327,
        -2.942292342034386,
        -0.43716148232962626,
        141,
    ),
    (
        51,
        200,
        -0.06436160716148642,
        -0.3023112540484168,
        -0.24134463275548368,
        5,
    ),
    (
        20,
        50,
        -0.6325068197418626,
        -7.180076373936038,
        -0.6412199278445301,
        35,
    ),
    (
        7,
        130,
        -0.45897044882757526,
        -4.560732793619198,
        -0.4599083195142014,
        31,
    ),
];

#[test]
fn close_fill_mode_reproduces_vectorbt_on_the_committed_fixture() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vbt_fixture_1h.csv");
    check_vectorbt(&file, &VECTORBT_FIXTURE);
}

/// Buy & hold of the fixture's coin beside the strategy: the first close 99.8852, the last
/// 72.5365, and the deepest fall of the closes 35.84 % (worked out in Python from the file).
#[test]
fn backtest_shows_buy_and_hold_over_the_same_bars() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vbt_fixture_1h.csv");
    let args = [
        "backtest",
        "--data",
        file.to_str().unwrap(),
        "--fast",
        "10",
        "--slow",
        "30",
    ];
    let v = json(&organism(&[&args[..], &["--json"]].concat()));
    let b = &v["buy_hold"];
    assert!(
        (b["total_return"].as_f64().unwrap() - (-0.2738013239198599)).abs() < 1e-12,
        "{b}"
    );
    assert!(
        (b["max_drawdown"].as_f64().unwrap() - 0.35840262300702896).abs() < 1e-12,
        "{b}"
    );
    let text = String::from_utf8_lossy(&organism(&args).stdout).into_owned();
    assert!(text.contains("buy & hold     -27.38% (Sharpe"), "{text}");
}

fn check_vectorbt(file: &Path, reference: &[(u32, u32, f64, f64, f64, u64)]) {
    for &(fast, slow, tr, sharpe, mdd, closed) in reference {
        let v = json(&organism(&[
            "backtest",
            "--data",
            file.to_str().unwrap(),
            "--fill",
            "close",
            "--long-only",
            "--fast",
            &fast.to_string(),
            "--slow",
            &slow.to_string(),
            "--fee",
            "0.00045",
            "--slippage",
            "0.0001",
            "--cash",
            "10000",
            "--json",
        ]));
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
        let ctx = format!("{fast}/{slow}: {v}");
        assert!(rel(v["total_return"].as_f64().unwrap(), tr) < 1e-9, "{ctx}");
        assert!(rel(v["sharpe"].as_f64().unwrap(), sharpe) < 1e-9, "{ctx}");
        assert!(
            rel(v["max_drawdown"].as_f64().unwrap(), -mdd) < 1e-9,
            "{ctx}"
        );
        assert_eq!(v["closed_trades"].as_u64().unwrap(), closed, "{ctx}");
    }
}

#[test]
fn backtest_on_real_hyperliquid_data() {
    let dir = shared().join("candles");
    if !dir.is_dir() {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    }
    for coin in ["BTC", "SOL"] {
        let v = json(&organism(&[
            "backtest",
            "--data",
            dir.to_str().unwrap(),
            "--coin",
            coin,
            "--fast",
            "12",
            "--slow",
            "26",
            "--json",
        ]));
        assert!(v["trades"].as_u64().unwrap() > 50, "{coin}: {v}");
        assert!(v["sharpe"].as_f64().unwrap().is_finite(), "{coin}: {v}");
        assert!(v["max_drawdown"].as_f64().unwrap() > 0.0, "{coin}: {v}");
    }
    // Both sources have BTC 1h: without a source choice the selection is ambiguous.
    let o = organism(&[
        "backtest",
        "--data",
        dir.to_str().unwrap(),
        "--source",
        "",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("choose one with --source"),
        "{}",
        stderr(&o)
    );
}

/// A scratch folder `name` with the bundled synthetic market generated in it, and its BTC file.
fn generated_btc(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = scratch(name);
    let o = organism(&["data", "generate", "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = dir.join("candles/synthetic_BTC_1h.csv");
    (dir, f)
}

#[test]
fn bench_sweep_reports_its_workload() {
    let (_, f) = generated_btc("bench");
    let v = json(&organism(&[
        "bench",
        "sweep",
        "--data",
        f.to_str().unwrap(),
        "--threads",
        "1",
        "--repeat",
        "1",
        "--json",
    ]));
    assert_eq!(v["combos"], 890);
    assert_eq!(v["candles"], 17_520);
    assert_eq!(v["threads"], 1);
    let secs = v["seconds"].as_f64().unwrap();
    let rate = v["candle_combos_per_sec"].as_f64().unwrap();
    assert!((rate * secs - 890.0 * 17_520.0).abs() < 1.0);
}

#[test]
fn bench_evolve_reports_its_parallel_efficiency() {
    let (_, f) = generated_btc("bench-evolve");
    let evolve = |threads: &str| {
        json(&organism(&[
            "bench",
            "evolve",
            "--data",
            f.to_str().unwrap(),
            "--threads",
            threads,
            "--repeat",
            "1",
            "--json",
        ]))
    };
    let v = evolve("2");
    assert_eq!(v["threads"], 2);
    assert_eq!(v["individuals"], 256 * 31);
    let (one, two) = (
        v["one_thread_seconds_per_generation"].as_f64().unwrap(),
        v["seconds_per_generation"].as_f64().unwrap(),
    );
    let speedup = v["speedup"].as_f64().unwrap();
    assert!((speedup - one / two).abs() < 1e-9 * speedup, "{v}");
    let eff = v["parallel_efficiency"].as_f64().unwrap();
    assert!((eff - speedup / 2.0).abs() < 1e-12, "{v}");
    // One thread: nothing to compare with.
    let v = evolve("1");
    assert!(v["speedup"].is_null(), "{v}");
}

#[test]
fn bench_programs_reports_workload_c2_and_names_a_bad_line() {
    let (dir, f) = generated_btc("bench-programs");
    let progs = dir.join("programs.txt");
    // Enter-long expressions of 5 nodes (lt, sma, 90, sma, 139: periods are nodes) and of 9
    // (and, gt, close, ema, 20, gt, close, sma, 50).
    std::fs::write(
        &progs,
        "# two programs\n\
         (program (enter-long (lt (sma 90) (sma 139))) (exit-long (not (lt (sma 90) (sma 139)))))\n\
         \n\
         (program (enter-long (and (gt close (ema 20)) (gt close (sma 50)))) (exit-long (not (gt close (ema 20)))))\n",
    )
    .unwrap();
    for backtest in [false, true] {
        let mut args = vec![
            "bench",
            "programs",
            "--data",
            f.to_str().unwrap(),
            "--programs",
            progs.to_str().unwrap(),
            "--json",
        ];
        if backtest {
            args.push("--backtest");
        }
        let v = json(&organism(&args));
        assert_eq!(v["programs"], 2);
        assert_eq!(v["bars"], 17_520);
        assert_eq!(v["nodes"], 5 + 9);
        assert_eq!(v["repeat"], 3);
        assert_eq!(v["backtest"], backtest);
        for k in ["cold", "warm"] {
            let us = v[k]["us_per_program"].as_f64().unwrap();
            let ns = v[k]["ns_per_node_bar"].as_f64().unwrap();
            // µs per program = ns per node × bar × nodes × bars / programs / 1000.
            assert!(
                (us - ns * 14.0 * 17_520.0 / 2.0 / 1000.0).abs() < 1e-6 * us,
                "{v}"
            );
        }
    }
    std::fs::write(
        &progs,
        "(program (enter-long (lt (sma 90) (sma 139))))\n(program (enter-long (lt 3)))\n",
    )
    .unwrap();
    let o = organism(&[
        "bench",
        "programs",
        "--data",
        f.to_str().unwrap(),
        "--programs",
        progs.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("programs.txt:2"), "{}", stderr(&o));
}

#[test]
fn seeds_lists_the_twelve_then_the_portfolio_seeds_with_their_genes() {
    let o = organism(&["seeds"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for (name, i) in ["ema_crossover", "donchian_breakout", "pca_tree_quantile"]
        .iter()
        .zip([1, 2, 12])
    {
        assert!(
            out.contains(&format!("{i:>2}. coin      {name} — ")),
            "{out}"
        );
    }
    for (name, i) in ["xs_momentum", "xs_rule_rank"].iter().zip([13, 17]) {
        assert!(
            out.contains(&format!("{i:>2}. portfolio {name} — ")),
            "{out}"
        );
    }
    assert!(
        out.contains("weighting        choice equal | inverse_volatility | score"),
        "{out}"
    );
    assert!(out.contains("threshold        float  0 .. 0.03"), "{out}");
    assert!(
        out.contains("direction        choice both | long | short"),
        "{out}"
    );
}

#[test]
fn backtest_any_seed_with_genes_set() {
    let v = json(&organism(&[
        "backtest",
        "--seed",
        "donchian_breakout",
        "--set",
        "period=48",
        "--set",
        "stop_kind=pct",
        "--set",
        "stop_value=3",
        "--json",
    ]));
    assert!(v["trades"].as_u64().unwrap() > 0);
    // Setting the default explicitly changes nothing.
    let a = json(&organism(&["backtest", "--seed", "rsi_filter", "--json"]));
    let b = json(&organism(&[
        "backtest",
        "--seed",
        "rsi_filter",
        "--set",
        "period=14",
        "--json",
    ]));
    assert_eq!(a, b);
    for (args, msg) in [
        (vec!["--seed", "nope"], "unknown seed `nope`"),
        (
            vec!["--seed", "rsi_filter", "--set", "perio=3"],
            "unknown gene `perio`",
        ),
        (
            vec!["--seed", "rsi_filter", "--set", "period=1"],
            "gene period: 1 is out of bounds [2, 50]",
        ),
        (
            vec!["--seed", "rsi_filter", "--set", "direction=up"],
            "`up` is not one of both, long, short",
        ),
        (
            vec!["--seed", "rsi_filter", "--fast", "3"],
            "--fast and --slow belong to ema_crossover",
        ),
    ] {
        let mut full = vec!["backtest"];
        full.extend(args);
        let o = organism(&full);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(msg), "{}", stderr(&o));
    }
}

#[test]
fn data_permute_writes_a_null_copy_that_loads() {
    let dir = scratch("permute");
    let (data, perm) = (dir.join("data"), dir.join("perm"));
    let o = organism(&["data", "generate", "--out", data.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = organism(&[
        "data",
        "permute",
        "--data",
        data.to_str().unwrap(),
        "--source",
        "synthetic",
        "--seed",
        "5",
        "--out",
        perm.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |p: PathBuf| -> Vec<Vec<f64>> {
        std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
            .collect()
    };
    let a = read(data.join("candles/synthetic_BTC_1h.csv"));
    let b = read(perm.join("candles/permuted_BTC_1h.csv"));
    assert_eq!(a.len(), b.len());
    // Same timestamps and first bar; the last close is the product of the same moves, in
    // another order; the bars in between differ.
    assert!(a.iter().zip(&b).all(|(x, y)| x[0] == y[0]));
    assert_eq!(a[0], b[0]);
    let (la, lb) = (a[a.len() - 1][4], b[b.len() - 1][4]);
    assert!((la - lb).abs() / la < 1e-9, "{la} vs {lb}");
    let differ = a.iter().zip(&b).filter(|(x, y)| x[4] != y[4]).count();
    assert!(differ > a.len() / 2, "{differ} closes differ");
    // Funding is kept as it was; the copy backtests like any data folder.
    assert_eq!(
        std::fs::read_to_string(data.join("funding/synthetic_BTC.csv")).unwrap(),
        std::fs::read_to_string(perm.join("funding/permuted_BTC.csv")).unwrap()
    );
    let t = json(&organism(&[
        "backtest",
        "--data",
        perm.to_str().unwrap(),
        "--source",
        "permuted",
        "--coin",
        "ETH",
        "--json",
    ]));
    assert_eq!(t["bars"].as_u64(), Some(17_520));
}

#[test]
fn walkforward_runs_end_to_end_with_json_and_report() {
    let dir = scratch("walkforward");
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        "[synthetic]\nbars = 3025\ncoins = [\"BTC\", \"ETH\"]\nannual_vol = [0.5, 0.7]\n\
         start_price = [42000.0, 2300.0]\n[evolution]\npopulation = 8\nmin_trades = 2.0\n\
         seeds = [\"ema_crossover\", \"rsi_filter\"]\n",
    )
    .unwrap();
    let report = dir.join("wf.html");
    let c = cfg.to_str().unwrap();
    // 3025 bars span 126 days; without the holdout (the last 20 %) 100.8: train 40d, test
    // 20d, step 20d gives windows at 0, 20 and 40 days (40 + 60 fits, 60 + 60 does not).
    let v = json(&organism(&[
        "walkforward",
        "--config",
        c,
        "--train",
        "40d",
        "--test",
        "20d",
        "--generations",
        "1",
        "--json",
        "--report",
        report.to_str().unwrap(),
    ]));
    let windows = v["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    let day = 86_400_000_i64;
    let start = 1_704_067_200_000_i64;
    for (k, w) in windows.iter().enumerate() {
        let k = k as i64;
        assert_eq!(w["train_from"].as_i64().unwrap(), start + k * 20 * day);
        assert_eq!(
            w["validation_from"].as_i64().unwrap(),
            start + k * 20 * day + 30 * day
        );
        assert_eq!(
            w["test_from"].as_i64().unwrap(),
            start + (k * 20 + 40) * day
        );
        assert_eq!(w["test_to"].as_i64().unwrap(), start + (k * 20 + 60) * day);
        assert!(w["selected"].as_array().unwrap().len() <= 5);
    }
    assert_eq!(v["summary"]["windows"], 3);
    assert!(v["summary"]["stitched_oos_sharpe"].is_number());
    assert!(v["verdict"].as_str().unwrap().starts_with("verdict: "));
    // The data walked, its coins named.
    let data = v["data"].as_str().unwrap();
    assert!(
        data.starts_with("synthetic market") && data.ends_with(", 2 coins: BTC, ETH"),
        "{data}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("stitched out-of-sample Sharpe") && html.contains("<svg"));

    // Windows longer than the data: one clear error, no panic.
    let o = organism(&[
        "walkforward",
        "--config",
        c,
        "--train",
        "180d",
        "--test",
        "60d",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("fewer than one window needs (240.0"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    let o = organism(&["walkforward", "--config", c, "--train", "40x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--train: `40x` is not a length"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn coin_names_never_leave_the_output_folder() {
    // Issue 30: `data fetch --coins ../../../../X` (when a server answered for the name) and
    // `synthetic.coins = ["../../../../X"]` in `data generate` wrote outside --out. Both are
    // refused before anything is written or asked (the URL is one nothing listens on).
    let dir = scratch("coin-paths");
    let out = dir.join("out");
    for coins in ["../../../../X", "a/b"] {
        let o = organism(&[
            "data",
            "fetch",
            "--coins",
            coins,
            "--out",
            out.to_str().unwrap(),
            "--api-url",
            "http://127.0.0.1:9",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("--coins: `{coins}` is not a coin name")),
            "{}",
            stderr(&o)
        );
    }
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[synthetic]\ncoins = [\"../../../../X\"]\nannual_vol = [0.5]\nstart_price = [10.0]\n",
    )
    .unwrap();
    let o = organism(&[
        "data",
        "generate",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("synthetic.coins"), "{}", stderr(&o));
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

/// A misspelled coin is an error naming it and every coin there is, never silently dropped:
/// in a data folder (`--coins`, `data.coins`) and in the synthetic market, for backtest and
/// evolve alike.
#[test]
fn an_unknown_coin_is_named_with_every_coin_there_is() {
    let d = scratch("unknown-coin");
    let header = "timestamp_ms,open,high,low,close,volume\n";
    std::fs::create_dir_all(d.join("candles")).unwrap();
    for coin in ["AAA", "BBB", "CCC"] {
        let mut s = header.to_string();
        for i in 0..100i64 {
            s += &format!("{},10,11,9,10,1\n", 1_704_067_200_000 + i * 3_600_000);
        }
        std::fs::write(d.join(format!("candles/t_{coin}_1h.csv")), s).unwrap();
    }
    let o = organism(&[
        "backtest",
        "--data",
        d.to_str().unwrap(),
        "--source",
        "t",
        "--coins",
        "AAA,BBX",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("no t 1h candles for BBX (coins: AAA, BBB, CCC)"),
        "{e}"
    );
    let cfg = d.join("c.toml");
    std::fs::write(&cfg, "[data]\ncoins = [\"BTC\", \"ETHH\"]\n").unwrap();
    for args in [
        vec!["backtest", "--coins", "all"],
        vec!["evolve", "--generations", "1"],
    ] {
        let mut a = args.clone();
        a.extend(["--config", cfg.to_str().unwrap()]);
        let out = d.join("run");
        if args[0] == "evolve" {
            a.extend(["--out", out.to_str().unwrap()]);
        }
        let o = organism(&a);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("coin ETHH is not in the synthetic market (coins: BTC, ETH, SOL, DOGE)"),
            "{args:?}: {e}"
        );
        assert!(!out.join("gen0.bin").exists());
    }
    let _ = std::fs::remove_dir_all(d);
}

/// Every flag is held to its config key's type and range, and settings that would make a
/// number that is not one (or multiply memory without bound) are refused at load: one line
/// naming the flag or the file, the key and the value, exit 1, nothing written.
#[test]
fn flags_meet_their_keys_bounds_and_impossible_settings_are_refused() {
    let dir = scratch("bounds");
    let one_line = |args: &[&str], want: &str| {
        let o = organism(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
    };
    let out = dir.join("pop");
    let out_s = out.to_str().unwrap();
    // A population of a billion grew memory until killed: now refused before anything runs.
    one_line(
        &["evolve", "--population", "1000000000", "--out", out_s],
        "--population: evolution.population: 1000000000 is out of range: must be an even number \
         in [4, 100000] (every member is held and backtested each generation",
    );
    one_line(
        &["evolve", "--population", "7", "--out", out_s],
        "--population: evolution.population: 7 is out of range",
    );
    one_line(
        &["evolve", "--mode", "everything", "--out", out_s],
        "--mode: evolution.mode:",
    );
    one_line(
        &["evolve", "--coins", "BTC,btc", "--out", out_s],
        "--coins: data.coins: `btc` is listed twice",
    );
    one_line(
        &["evolve", "--algorithm", "nsga4", "--out", out_s],
        "--algorithm: evolution.algorithm: `nsga4` is not an algorithm: nsga2, nsga3 or theta-dea",
    );
    one_line(
        &["evolve", "--exclude", "LU NA", "--out", out_s],
        "--exclude: universe.exclude: `LU NA` is not a coin name (letters and digits only)",
    );
    one_line(
        &[
            "evolve",
            "--rng-seed",
            "18446744073709551615",
            "--out",
            out_s,
        ],
        "--rng-seed: evolution.seed: 18446744073709551615 is out of range: must be in [0, \
         9223372036854775807]",
    );
    one_line(
        &["evolve", "--null-searches", "5000", "--out", out_s],
        "--null-searches: evolution.null_searches: 5000 is out of range: must be in [0, 1000]",
    );
    one_line(
        &["evolve", "--worlds", "65", "--out", out_s],
        "--worlds: evolution.worlds: 65 is out of range: must be in [0, 64]",
    );
    assert!(!out.exists(), "nothing is written");
    // Four billion null copies aborted half way through a promotion: refused at load.
    let reg = dir.join("reg.db");
    one_line(
        &[
            "promote",
            "--nulls",
            "4000000000",
            "--registry",
            reg.to_str().unwrap(),
            "--from",
            out_s,
        ],
        "--nulls: promotion.nulls: 4000000000 is out of range: must be in [1, 100000] (each \
         copy is one more backtest",
    );
    one_line(
        &["promote", "--top", "0", "--from", out_s],
        "--top: promotion.top: 0 is out of range: must be in [1, 1000]",
    );
    assert!(!reg.exists(), "no registry is created");
    one_line(
        &["paper", "replay", "--cash=-5", "--strategy", "x"],
        "--cash: backtest.cash: -5 is out of range",
    );
    // Settings whose market cannot be computed: prices far from 1, dates past 2100, a coin
    // twice, more coin-bars than memory holds.
    let f = dir.join("bad.toml");
    let fs = f.to_str().unwrap();
    for (text, want) in [
        (
            "[synthetic]\ncoins = [\"BTC\"]\nannual_vol = [0.5]\nstart_price = [1e308]\n",
            "bad.toml: synthetic.start_price: 1e308 (coin 1) is out of range: must be in [1e-06, 1e9]",
        ),
        (
            "[synthetic]\ncoins = [\"BTC\"]\nannual_vol = [0.5]\nstart_price = [1e-308]\n",
            "bad.toml: synthetic.start_price: 1e-308 (coin 1) is out of range",
        ),
        (
            "[synthetic]\nstart_ms = 9223372036854775000\n",
            "bad.toml: synthetic.start_ms: 9223372036854775000 is out of range: the market's",
        ),
        (
            "[synthetic]\ncoins = [\"BTC\", \"ETH\", \"BTC\"]\nannual_vol = [0.5, 0.5, 0.5]\n\
             start_price = [1.0, 1.0, 1.0]\n",
            "bad.toml: synthetic.coins: `BTC` is listed twice",
        ),
        (
            "[synthetic]\nbars = 10000000\n",
            "bad.toml: synthetic.bars: 10000000 bars x 4 coins = 40000000 coin-bars",
        ),
        (
            "[data]\ncoins = [\"ETH\", \"eth\"]\n",
            "bad.toml: data.coins: `eth` is listed twice",
        ),
        (
            "[paper]\ncoins = [\"BTC\", \"BTC\"]\n",
            "bad.toml: paper.coins: `BTC` is listed twice",
        ),
        // Closed sets are read as their enums, named by key.
        (
            "[evolution]\nalgorithm = \"nsga4\"\n",
            "bad.toml: evolution.algorithm: `nsga4` is not an algorithm: nsga2, nsga3 or theta-dea",
        ),
        (
            "[paper]\nregime_policy = \"maybe\"\n",
            "bad.toml: paper.regime_policy: unknown variant `maybe`, expected `suggested` or `config`",
        ),
        (
            "[promotion]\ntrials = \"some\"\n",
            "bad.toml: promotion.trials: unknown variant `some`, expected `raw` or `clustered`",
        ),
        (
            "[backtest]\nfill = \"sideways\"\n",
            "bad.toml: backtest.fill: unknown fill mode `sideways` (expected next-open or close)",
        ),
    ] {
        std::fs::write(&f, text).unwrap();
        one_line(&["backtest", "--config", fs], want);
    }
    let _ = std::fs::remove_dir_all(dir);
}
