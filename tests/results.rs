//! End-to-end tests of the result tools through the binary: the ranked front, `runs`, member
//! backtests, genome export, time ranges, segments, multi-coin backtests, HTML reports and
//! closed pipes. All on the bundled synthetic market (hourly bars from 2024-01-01 00:00 UTC).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

mod common;

use common::{ok, organism};

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(ok(o).trim()).expect("one JSON value")
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("res", name)
}

const SMALL: &str = r#"
[evolution]
population = 12
min_trades = 5.0
seeds = ["ema_crossover", "rsi_filter"]
"#;

/// A 2-generation run in `dir`; returns (config path, stdout).
fn small_run(dir: &Path) -> (PathBuf, String) {
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let out = dir.join("run");
    let o = organism(&[
        "evolve",
        "--config",
        cfg.to_str().unwrap(),
        "--generations",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--report",
        dir.join("run.html").to_str().unwrap(),
    ]);
    let text = ok(&o);
    (cfg, text)
}

struct Row {
    id: String,
    score: f64,
    flag: String,
    feasible: bool,
    train_sharpe: f64,
    train_trades: u64,
    validation_sharpe: f64,
}

fn front(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("run/front.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Row {
                id: f[col("id")].into(),
                score: f[col("score")].parse().unwrap(),
                flag: f[col("flag")].into(),
                feasible: f[col("feasible")] == "true",
                train_sharpe: f[col("train_sharpe")].parse().unwrap(),
                train_trades: f[col("train_trades")].parse().unwrap(),
                validation_sharpe: f[col("validation_sharpe")].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn evolve_ranks_the_front_and_members_round_trip() {
    let dir = scratch("roundtrip");
    let (_, out) = small_run(&dir);
    let rows = front(&dir);
    assert!(!rows.is_empty());
    // Ranked: feasible first, then score = min(train, validation) descending; ids distinct.
    for r in &rows {
        assert_eq!(r.id.len(), 8);
        assert!(r.id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(r.score, r.train_sharpe.min(r.validation_sharpe));
        let want = if r.validation_sharpe < 0.0 {
            "val<0"
        } else if r.validation_sharpe < 0.5 * r.train_sharpe {
            "val<train/2"
        } else {
            ""
        };
        assert_eq!(r.flag, want, "{}", r.id);
    }
    for w in rows.windows(2) {
        assert!(
            (w[0].feasible && !w[1].feasible)
                || (w[0].feasible == w[1].feasible && w[0].score >= w[1].score),
            "{} before {}",
            w[0].id,
            w[1].id
        );
    }
    let mut ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), rows.len(), "duplicates collapsed");
    // The end of evolve prints the same ranking, best first.
    assert!(out.contains("first front after generation 2"), "{out}");
    let first_line = out
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(first_line.contains(&rows[0].id), "{first_line}");

    // The member's training and validation figures, reproduced exactly by backtest --member.
    let top = &rows[0];
    let ck = dir.join("run/gen2.bin");
    for place in [ck.clone(), dir.join("run/front.csv")] {
        let member = format!("{}:{}", place.display(), top.id);
        let t = json(&organism(&[
            "backtest",
            "--member",
            &member,
            "--segment",
            "train",
            "--json",
        ]));
        assert_eq!(t["aggregate"]["sharpe"].as_f64().unwrap(), top.train_sharpe);
        assert_eq!(t["aggregate"]["trades"].as_u64().unwrap(), top.train_trades);
        assert_eq!(t["coins"].as_array().unwrap().len(), 4);
        let v = json(&organism(&[
            "backtest",
            "--member",
            &member,
            "--segment",
            "validation",
            "--json",
        ]));
        assert_eq!(
            v["aggregate"]["sharpe"].as_f64().unwrap(),
            top.validation_sharpe
        );
    }
    // A bare --member reads training and validation only (their bars add up), says so, and
    // reads the holdout only when asked, with the warning.
    let member = format!("{}:{}", ck.display(), top.id);
    let bars = |extra: &[&str]| {
        let mut a = vec!["backtest", "--member", member.as_str(), "--json"];
        a.extend_from_slice(extra);
        let o = organism(&a);
        let v = json(&o);
        let n: u64 = v["coins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bars"].as_u64().unwrap())
            .sum();
        (n, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    let (bare, said) = bars(&[]);
    let (train, _) = bars(&["--segment", "train"]);
    let (validation, _) = bars(&["--segment", "validation"]);
    let (holdout, warned) = bars(&["--segment", "holdout"]);
    assert_eq!(bare, train + validation);
    assert!(holdout > 0);
    assert!(
        said.contains("training and validation only") && !said.contains("warning"),
        "{said}"
    );
    assert!(warned.contains("warning: reading the holdout"), "{warned}");
    let (_, warned) = bars(&["--timerange", "20200101-"]);
    assert!(warned.contains("warning: reading the holdout"), "{warned}");
    // A 4-digit prefix is enough.
    let short = format!("{}:{}", ck.display(), &top.id[..4]);
    let t = json(&organism(&[
        "backtest",
        "--member",
        &short,
        "--segment",
        "train",
        "--json",
    ]));
    assert_eq!(t["aggregate"]["sharpe"].as_f64().unwrap(), top.train_sharpe);

    // Export as TOML, read back with --genome: the same genome, the same figures.
    let toml_text = ok(&organism(&[
        "runs",
        "export",
        &format!("{}:{}", ck.display(), top.id),
    ]));
    assert!(toml_text.contains("[genes]"), "{toml_text}");
    let g = dir.join("g.toml");
    std::fs::write(&g, &toml_text).unwrap();
    let t = json(&organism(&[
        "backtest",
        "--genome",
        g.to_str().unwrap(),
        "--coins",
        "all",
        "--segment",
        "train",
        "--json",
    ]));
    assert_eq!(t["aggregate"]["sharpe"].as_f64().unwrap(), top.train_sharpe);

    // runs show: the same order, the history; runs list: the run with its figures.
    let show = json(&organism(&[
        "runs",
        "show",
        dir.join("run").to_str().unwrap(),
        "--json",
    ]));
    let shown: Vec<&str> = show["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let csv_ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(shown, csv_ids);
    assert_eq!(show["generation"], 2);
    assert_eq!(show["history"].as_array().unwrap().len(), 3);
    let list = json(&organism(&[
        "runs",
        "list",
        dir.to_str().unwrap(),
        "--json",
    ]));
    let runs = list.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{list}");
    // From a root above them, runs are found below it: one a level down, one three.
    let root = dir.join("root");
    for sub in ["a", "more/2026/12"] {
        let to = root.join(sub);
        std::fs::create_dir_all(&to).unwrap();
        for f in ["gen2.bin", "cache.log", "front.csv"] {
            std::fs::copy(dir.join("run").join(f), to.join(f)).unwrap();
        }
    }
    let from_above = json(&organism(&[
        "runs",
        "list",
        root.to_str().unwrap(),
        "--json",
    ]));
    let found: Vec<&str> = from_above
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run"].as_str().unwrap())
        .collect();
    assert_eq!(found.len(), 2, "{from_above}");
    assert!(
        found[0].ends_with("root/a") && found[1].ends_with("root/more/2026/12"),
        "{found:?}"
    );
    std::fs::remove_dir_all(&root).unwrap();
    assert_eq!(runs[0]["generations"], 2);
    assert_eq!(runs[0]["seeds"], 2);
    let best_train = show["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["best_sharpe"].as_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(runs[0]["best_train_sharpe"].as_f64().unwrap(), best_train);
    let best_val = rows
        .iter()
        .map(|r| r.validation_sharpe)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(
        runs[0]["best_validation_sharpe"].as_f64().unwrap(),
        best_val
    );

    // The run report: one scatter point per member on training and on validation, and the
    // two per-generation charts.
    let html = std::fs::read_to_string(dir.join("run.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"));
    assert_eq!(html.matches("class=\"point\"").count(), 2 * rows.len());
    assert_eq!(html.matches("class=\"series\"").count(), 2);
    assert_eq!(html.matches("class=\"member\"").count(), rows.len());
    // runs show --report writes the same report.
    let again = dir.join("again.html");
    ok(&organism(&[
        "runs",
        "show",
        ck.to_str().unwrap(),
        "--report",
        again.to_str().unwrap(),
    ]));
    let html2 = std::fs::read_to_string(&again).unwrap();
    assert_eq!(html2.matches("class=\"point\"").count(), 2 * rows.len());
    assert_eq!(html2.matches("class=\"member\"").count(), rows.len());
    // --top limits the report's table as it limits the printed one.
    if rows.len() > 1 {
        ok(&organism(&[
            "runs",
            "show",
            ck.to_str().unwrap(),
            "--top",
            "1",
            "--report",
            again.to_str().unwrap(),
        ]));
        let html3 = std::fs::read_to_string(&again).unwrap();
        assert_eq!(html3.matches("class=\"member\"").count(), 1);
        assert!(html3.contains(&format!("The top 1 of {} distinct members", rows.len())));
    }
    // Genes to 6 significant digits in the tables and the report, exact in front.csv.
    let csv = std::fs::read_to_string(dir.join("run/front.csv")).unwrap();
    let genes = csv.lines().nth(1).unwrap().split(',').nth(2).unwrap();
    let mut rounded_some = false;
    let short: Vec<String> = genes
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            match v.parse::<f64>() {
                Ok(x) if x.fract() != 0.0 => {
                    let six: f64 = format!("{x:.5e}").parse().unwrap();
                    rounded_some |= six != x;
                    format!("{k}={six}")
                }
                _ => kv.to_string(),
            }
        })
        .collect();
    assert!(rounded_some, "{genes}");
    let short = short.join(" ");
    assert!(html.contains(&short), "{short}");
    let table_row = out
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(table_row.ends_with(&short), "{table_row} / {short}");

    // Unknown ids and edited files are clear errors.
    let o = organism(&[
        "backtest",
        "--member",
        &format!("{}:ffffffff", ck.display()),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no member with id ffffffff"));
}

#[test]
fn timerange_keeps_the_bars_it_names() {
    let bars = |range: &str| {
        json(&organism(&["backtest", "--timerange", range, "--json"]))["bars"]
            .as_u64()
            .unwrap()
    };
    // January 2025: 31 days of hourly bars.
    assert_eq!(bars("20250101-20250201"), 744);
    // From 2024-03-01: 17,520 bars less January and February 2024 (60 days).
    assert_eq!(bars("20240301-"), 17_520 - 60 * 24);
    // Up to 2024-01-03: the first two days.
    assert_eq!(bars("-20240103"), 48);
    let o = organism(&["backtest", "--timerange", "2025-01-01"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--timerange 2025-01-01"));
    let o = organism(&["backtest", "--timerange", "20300101-"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no bar in timerange 20300101-"));
}

#[test]
fn segments_cut_the_split_evolve_uses() {
    // 17,520 bars span 17,519 hours: training ends at 0.6 x 17,519 = 10,511.4 h (bars 0..=10,511),
    // validation at 0.8 x 17,519 = 14,015.2 h (bars 10,512..=14,015), the holdout is the rest.
    let seg = |s: &str| organism(&["backtest", "--segment", s, "--json"]);
    let bars = |o: &Output| json(o)["bars"].as_u64().unwrap();
    assert_eq!(bars(&seg("train")), 10_512);
    assert_eq!(bars(&seg("validation")), 3_504);
    let h = seg("holdout");
    assert_eq!(bars(&h), 3_504);
    assert!(String::from_utf8_lossy(&h.stderr).contains("warning: reading the holdout"));
    let o = seg("test");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn multi_coin_backtests_aggregate_like_evolve() {
    let o = json(&organism(&["backtest", "--coins", "BTC,ETH", "--json"]));
    let coins = o["coins"].as_array().unwrap();
    assert_eq!(coins.len(), 2);
    let s: Vec<f64> = coins
        .iter()
        .map(|c| c["sharpe"].as_f64().unwrap())
        .collect();
    // (1 - 0.5) * mean + 0.5 * worst, the default aggregation.
    let want = 0.5 * (s[0] + s[1]) / 2.0 + 0.5 * s[0].min(s[1]);
    assert!((o["aggregate"]["sharpe"].as_f64().unwrap() - want).abs() < 1e-12);
    let t: u64 = coins.iter().map(|c| c["trades"].as_u64().unwrap()).sum();
    assert_eq!(o["aggregate"]["trades"].as_u64().unwrap(), t);
    for c in coins {
        for key in [
            "cagr",
            "calmar",
            "avg_trade",
            "exits",
            "monthly_returns",
            "exposure",
        ] {
            assert!(c.get(key).is_some(), "{key}");
        }
        // Two years of data: 24 calendar months.
        assert_eq!(c["monthly_returns"].as_array().unwrap().len(), 24);
        let e = &c["exits"];
        let n: u64 = ["signal", "stop_loss", "take_profit", "liquidation", "open"]
            .iter()
            .map(|k| e[k].as_u64().unwrap())
            .sum();
        assert_eq!(n, c["trades"].as_u64().unwrap());
    }
    let text = ok(&organism(&["backtest", "--coins", "all"]));
    for coin in ["BTC", "DOGE", "ETH", "SOL", "aggregate"] {
        assert!(text.lines().any(|l| l.starts_with(coin)), "{coin}: {text}");
    }
}

#[test]
fn backtest_report_draws_every_trade_and_month() {
    let dir = scratch("report");
    let f = dir.join("bt.html");
    let m = json(&organism(&[
        "backtest",
        "--report",
        f.to_str().unwrap(),
        "--json",
    ]));
    let html = std::fs::read_to_string(&f).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: no script, and no address but the SVG namespace.
    assert!(!html.contains("<script"));
    assert_eq!(
        html.matches("http").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    let trades = m["trades"].as_u64().unwrap() as usize;
    let closed = m["closed_trades"].as_u64().unwrap() as usize;
    assert!(trades > 10);
    assert_eq!(html.matches("class=\"entry\"").count(), trades);
    assert_eq!(html.matches("class=\"exit\"").count(), closed);
    // Price, equity beside buy & hold, and drawdown, each chart with the validation and
    // holdout boundaries.
    assert_eq!(html.matches("class=\"series\"").count(), 4);
    assert_eq!(html.matches("class=\"boundary\"").count(), 6);
    assert_eq!(html.matches("class=\"cell\"").count(), 24);
    // The heat map cells carry the monthly returns of --json.
    let first = m["monthly_returns"][0]["return"].as_f64().unwrap();
    assert!(html.contains(&format!("data-month=\"2024-01\" data-return=\"{first}\"")));
    // A row per trade in the trade table, and no "All coins" section for one coin.
    assert_eq!(html.matches("class=\"trade\"").count(), trades);
    assert!(!html.contains("<h2>All coins</h2>"));

    // Several coins: the aggregate section, its chart with a line per coin.
    let g = dir.join("all.html");
    let a = json(&organism(&[
        "backtest",
        "--coins",
        "BTC,ETH",
        "--report",
        g.to_str().unwrap(),
        "--json",
    ]));
    let html = std::fs::read_to_string(&g).unwrap();
    let sections: Vec<&str> = html.split("<h2>").collect();
    assert!(sections[1].starts_with("All coins</h2>"), "{}", sections[1]);
    assert_eq!(sections[1].matches("class=\"series\"").count(), 2);
    let agg_trades = a["aggregate"]["trades"].as_u64().unwrap();
    assert!(sections[1].contains(&format!("<th>{agg_trades}</th>")));
    assert_eq!(html.matches("class=\"trade\"").count() as u64, agg_trades);
}

/// The trade statistics of `backtest --json`, against figures worked out from `--trades`.
#[test]
fn trade_statistics_agree_with_the_trade_file() {
    let dir = scratch("trade-stats");
    let f = dir.join("t.csv");
    let m = json(&organism(&[
        "backtest",
        "--seed",
        "rsi_filter",
        "--trades",
        f.to_str().unwrap(),
        "--json",
    ]));
    let text = std::fs::read_to_string(&f).unwrap();
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    // side,entry_time_ms,entry_price,exit_time_ms,exit_price,size,fees,funding,pnl,exit_reason
    let num = |r: &Vec<String>, i: usize| r[i].parse::<f64>().unwrap();
    let closed: Vec<&Vec<String>> = rows.iter().filter(|r| r[9] != "open").collect();
    let s = &m["trade_stats"];
    assert_eq!(s["closed"].as_u64().unwrap() as usize, closed.len());
    let longs = closed.iter().filter(|r| r[0] == "long").count();
    assert_eq!(s["long"]["trades"].as_u64().unwrap() as usize, longs);
    assert_eq!(
        s["short"]["trades"].as_u64().unwrap() as usize,
        closed.len() - longs
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
    let fees: f64 = rows.iter().map(|r| num(r, 6)).sum();
    let funding: f64 = rows.iter().map(|r| num(r, 7)).sum();
    assert!(close(s["fees_paid"].as_f64().unwrap(), fees));
    assert!(close(s["funding_received"].as_f64().unwrap(), funding));
    let best = closed.iter().map(|r| num(r, 8)).fold(f64::MIN, f64::max);
    let worst = closed.iter().map(|r| num(r, 8)).fold(f64::MAX, f64::min);
    assert_eq!(s["best"]["pnl"].as_f64().unwrap(), best);
    assert_eq!(s["worst"]["pnl"].as_f64().unwrap(), worst);
    let hours: Vec<f64> = closed
        .iter()
        .map(|r| (num(r, 3) - num(r, 1)) / 3_600_000.0)
        .collect();
    let longest = hours.iter().copied().fold(0.0, f64::max);
    assert_eq!(s["max_hold_hours"].as_f64().unwrap(), longest);
    let (mut run, mut most) = (0, 0);
    for r in &closed {
        run = if num(r, 8) < 0.0 { run + 1 } else { 0 };
        most = most.max(run);
    }
    assert_eq!(s["longest_losing_streak"].as_u64().unwrap(), most);
    // The printed block says each sign.
    let text = String::from_utf8_lossy(&organism(&["backtest", "--seed", "rsi_filter"]).stdout)
        .into_owned();
    assert!(
        text.contains(&format!("fees paid    {fees:.2}"))
            && text.contains("net; + received, − paid)"),
        "{text}"
    );
}

#[test]
fn closed_pipes_end_quietly() {
    for args in [
        vec!["seeds"],
        vec!["backtest", "--coins", "all"],
        vec!["backtest", "--timerange", "20250101-"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_organism"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the program writes.
        drop(child.stdout.take());
        let o = common::Proc::new("organism", child).wait(common::DEADLINE);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn strategy_and_rng_seed_names_keep_their_old_spellings() {
    let a = json(&organism(&[
        "backtest",
        "--strategy",
        "rsi_filter",
        "--json",
    ]));
    let b = json(&organism(&["backtest", "--seed", "rsi_filter", "--json"]));
    assert_eq!(a, b);
    let o = organism(&["backtest", "--strategy", "nope"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown seed `nope`"));
}

/// `n` hourly bars from 2024-01-01 with a gentle oscillation, as candle CSV; `scale` multiplies
/// the timestamps (1 for milliseconds, 1/1000 for seconds).
fn candle_csv(n: usize, seconds: bool) -> String {
    let mut s = String::from("timestamp_ms,open,high,low,close,volume\n");
    for i in 0..n {
        let t = 1_704_067_200_000_i64 + i as i64 * 3_600_000;
        let t = if seconds { t / 1000 } else { t };
        let c = 100.0 + 5.0 * ((i as f64) / 7.0).sin();
        s.push_str(&format!("{t},{c},{},{},{c},10\n", c + 1.0, c - 1.0));
    }
    s
}

#[test]
fn too_little_data_is_an_error_naming_the_minimum() {
    let dir = scratch("short");
    let f = dir.join("x_BTC_1h.csv");
    std::fs::write(&f, candle_csv(200, false)).unwrap();
    // 200 bars: training holds 120, and sma_trend_filter looks back 200 at its defaults.
    let o = organism(&[
        "evolve",
        "--data",
        f.to_str().unwrap(),
        "--out",
        dir.join("run").to_str().unwrap(),
        "--generations",
        "1",
        "--population",
        "8",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("the training segment has 120 bars") && e.contains("needs at least 201"),
        "{e}"
    );
    // A backtest shorter than the strategy's longest period.
    let o = organism(&[
        "backtest",
        "--data",
        f.to_str().unwrap(),
        "--strategy",
        "ichimoku_cloud",
        "--set",
        "senkou=160",
        "--timerange",
        "20240101-20240105",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("96 bars are too few for ichimoku_cloud") && e.contains("at least 161"),
        "{e}"
    );
    // Timestamps in seconds are named as such, with the line.
    let s = dir.join("secs.csv");
    std::fs::write(&s, candle_csv(10, true)).unwrap();
    let o = organism(&["backtest", "--data", s.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("secs.csv: line 2") && e.contains("looks like seconds"),
        "{e}"
    );
}

#[test]
fn seeds_json_and_quiet() {
    let v = json(&organism(&["seeds", "--json"]));
    let seeds = v.as_array().unwrap();
    assert_eq!(seeds.len(), 17);
    assert_eq!(seeds[0]["name"], "ema_crossover");
    assert_eq!(seeds[0]["kind"], "coin");
    assert_eq!(seeds[12]["name"], "xs_momentum");
    assert_eq!(seeds[12]["kind"], "portfolio");
    let slow = &seeds[0]["genes"][1];
    assert_eq!(
        (slow["name"].as_str(), slow["default"].as_str()),
        (Some("slow"), Some("26"))
    );
    assert_eq!(slow["lookback"], true);
    // -q: results only, no notes on stderr (this file has no funding, which is a note).
    let dir = scratch("quiet");
    let f = dir.join("y_ETH_1h.csv");
    std::fs::write(&f, candle_csv(300, false)).unwrap();
    let loud = organism(&["backtest", "--data", f.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&loud.stderr).contains("note: ETH: no funding file"));
    let quiet = organism(&["-q", "backtest", "--data", f.to_str().unwrap()]);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert_eq!(quiet.stdout, loud.stdout);
}

#[test]
fn evolve_timerange_is_the_run_s_data_for_its_members() {
    let dir = scratch("evolve-range");
    let run = dir.join("run");
    ok(&organism(&[
        "evolve",
        "--timerange",
        "20240101-20240701",
        "--generations",
        "0",
        "--population",
        "8",
        "--seeds",
        "ema_crossover",
        "--out",
        run.to_str().unwrap(),
        "-q",
    ]));
    let front = std::fs::read_to_string(run.join("front.csv")).unwrap();
    let id = front
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    let member = format!("{}:{id}", run.join("gen0.bin").display());
    let bars = |extra: &[&str]| -> Vec<u64> {
        let mut args = vec!["backtest", "--member", &member, "--json"];
        args.extend_from_slice(extra);
        json(&organism(&args))["coins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["bars"].as_u64().unwrap())
            .collect()
    };
    // January to June 2024: 182 days of hourly bars on each of the four coins (4,368); training
    // is the first 0.6 of the 4,367-hour span (bars 0..=2,620), validation the next 0.2: a
    // bare --member reads those two (3,494 bars), the holdout the other 874.
    assert_eq!(bars(&[]), [3494; 4]);
    assert_eq!(bars(&["--segment", "train"]), [2621; 4]);
    assert_eq!(bars(&["--segment", "holdout"]), [874; 4]);
    let list = json(&organism(&[
        "runs",
        "list",
        dir.to_str().unwrap(),
        "--json",
    ]));
    assert!(
        list[0]["data"]
            .as_str()
            .unwrap()
            .ends_with("[20240101-20240701]"),
        "{list}"
    );
}

#[test]
fn a_program_written_as_the_ema_crossover_trades_exactly_as_the_seed() {
    let p = "(program (enter-long (cross-above (ema 12) (ema 26))) (exit-long (cross-below (ema 12) (ema 26)))\n (enter-short (cross-below (ema 12) (ema 26))) (exit-short (cross-above (ema 12) (ema 26))))";
    let seed = json(&organism(&[
        "backtest",
        "--strategy",
        "ema_crossover",
        "--coin",
        "ETH",
        "--json",
    ]));
    let prog = json(&organism(&[
        "backtest",
        "--program",
        p,
        "--coin",
        "ETH",
        "--json",
    ]));
    assert!(seed["trades"].as_u64().unwrap() > 100);
    assert_eq!(prog, seed);
    // From a file, with a risk gene set: half the size.
    let dir = scratch("program");
    let f = dir.join("p.sexp");
    std::fs::write(&f, p).unwrap();
    let half = json(&organism(&[
        "backtest",
        "--program-file",
        f.to_str().unwrap(),
        "--set",
        "size=0.5",
        "--coin",
        "ETH",
        "--json",
    ]));
    assert_eq!(half["trades"], seed["trades"]);
    assert_ne!(half["final_equity"], seed["final_equity"]);
    // A type error names the file, line and column.
    std::fs::write(&f, "(program\n  (enter-long (gt close (rsi 14))))").unwrap();
    let o = organism(&["backtest", "--program-file", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("p.sexp: line 2, column 26: `rsi` gives osc, but a price is expected"),
        "{e}"
    );
}
