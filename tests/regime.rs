//! The regime filter through the binary: `backtest --regime` reports the Sharpe each regime
//! decided and changes nothing when every regime trades; a policy that stays flat in one regime
//! trades less; `evolve --regime` records the filter in its run, and the run's members are
//! backtested with it.

use std::{path::PathBuf, process::Output};

mod common;

use common::{organism, s};

fn json(o: Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("one JSON object")
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("regime", name)
}

#[test]
fn backtest_reports_regimes_and_a_flat_regime_trades_less() {
    let dir = scratch("backtest");
    let base = [
        "backtest",
        "--strategy",
        "rsi_filter",
        "--coin",
        "BTC",
        "--json",
    ];
    let plain = json(organism(&base));
    let mut with = base.to_vec();
    with.push("--regime");
    let all_trade = json(organism(&with));
    // Every regime trades by default: the same backtest, with the regimes reported.
    for key in ["sharpe", "total_return", "trades", "exposure"] {
        assert_eq!(plain[key], all_trade[key], "{key}");
    }
    assert!(plain.get("regimes").is_none());
    let regimes = all_trade["regimes"].as_array().unwrap();
    let names: Vec<&str> = regimes
        .iter()
        .map(|r| r["regime"].as_str().unwrap())
        .collect();
    // The bundled market has no Fear & Greed index: volatility regimes only.
    assert_eq!(
        names,
        ["low_volatility", "normal_volatility", "high_volatility"]
    );
    // Regimes are known from bar vol_window + lookback − 1 = 24 + 2160 − 1 = 2183 on; the
    // returns of bars 2184 ..= 17519 are decided in a known regime: 15,336 bars.
    let bars: u64 = regimes.iter().map(|r| r["bars"].as_u64().unwrap()).sum();
    assert_eq!(bars, 17_520 - 2184);
    // A third of the bars in each regime, give or take the percentile's ties and trends.
    for r in regimes {
        let b = r["bars"].as_u64().unwrap();
        assert!((4000..=6500).contains(&b), "{r}");
    }

    // Flat in high volatility: fewer bars in the market.
    let cfg = dir.join("flat.toml");
    std::fs::write(&cfg, "[regime]\nhigh_volatility = \"flat\"\n").unwrap();
    let mut flat = with.clone();
    flat.extend(["--config", s(&cfg)]);
    let filtered = json(organism(&flat));
    assert!(
        filtered["exposure"].as_f64().unwrap() < plain["exposure"].as_f64().unwrap() - 0.05,
        "{} vs {}",
        filtered["exposure"],
        plain["exposure"]
    );
    assert_ne!(filtered["trades"], plain["trades"]);

    // A bad action names its key.
    std::fs::write(&cfg, "[regime]\nfear = \"sometimes\"\n").unwrap();
    let o = organism(&["backtest", "--config", s(&cfg)]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("regime.fear") && e.contains("not an action"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn evolve_records_the_filter_and_members_backtest_with_it() {
    let dir = scratch("evolve");
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        r#"
[synthetic]
bars = 4000
[evolution]
population = 8
generations = 2
min_trades = 2.0
seeds = ["ema_crossover", "rsi_filter"]
[regime]
lookback = 500
high_volatility = "flat"
"#,
    )
    .unwrap();
    let pop = dir.join("pop");
    let o = organism(&[
        "evolve",
        "-q",
        "--config",
        s(&cfg),
        "--out",
        s(&pop),
        "--regime",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown = json(organism(&["runs", "show", s(&pop), "--json"]));
    let regime = &shown["run"]["regime"];
    assert_eq!(regime["volatility"]["lookback"], 500);
    assert_eq!(regime["policy"]["volatility"][2], "Flat");
    // A member's backtest applies its run's filter without being asked.
    let id = shown["members"][0]["id"].as_str().unwrap();
    let member = format!("{}:{id}", pop.join("gen2.bin").display());
    let o = organism(&["backtest", "--member", &member]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("regime filter:") && out.contains("trade / trade / flat"),
        "{out}"
    );
    // The member's validation Sharpe in `runs show` is what the filtered backtest gives.
    let b = json(organism(&[
        "backtest",
        "--member",
        &member,
        "--segment",
        "validation",
        "--coins",
        "all",
        "--json",
    ]));
    let want = shown["members"][0]["validation"]["sharpe"]
        .as_f64()
        .unwrap();
    let got = b["aggregate"]["sharpe"].as_f64().unwrap();
    assert!((want - got).abs() < 1e-9, "{want} vs {got}");
    let _ = std::fs::remove_dir_all(&dir);
}
