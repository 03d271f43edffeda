//! Universes of many coins: point-in-time membership that no data after *t* changes (a
//! property test), and the real universes of `../shared/universe` loading whole, where a coin
//! too young or a doubted bar once stopped everything.

use std::path::{Path, PathBuf};

use organism::market::{
    csv::{load_candles, load_candles_lenient},
    membership::{Membership, MembershipRule},
    panel::Panel,
    synthetic::{generate, SyntheticParams},
    universe::{load_panel, load_universe, CoinPick, DataSelection, PanelSelection},
    Market,
};
use organism::seeds::portfolio::PortfolioGenome;
use proptest::prelude::*;

mod common;

/// Six synthetic coins of unequal histories (listed at different bars, two delisted early).
fn markets() -> Vec<Market> {
    let u = generate(&SyntheticParams {
        seed: 5,
        bars: 1_200,
        coins: ["A", "B", "C", "D", "E", "F"].map(String::from).to_vec(),
        annual_vol: vec![0.5, 0.7, 0.9, 1.1, 0.8, 0.6],
        start_price: vec![100.0, 10.0, 1.0, 50.0, 5.0, 0.5],
        ..SyntheticParams::default()
    });
    let spans = [
        (0, 1200),
        (100, 1200),
        (250, 900),
        (0, 700),
        (400, 1200),
        (30, 1100),
    ];
    u.markets
        .into_iter()
        .zip(spans)
        .map(|(m, (a, b))| m.slice(a..b))
        .collect()
}

/// Everything membership says at grid bars `0..=t`.
fn decisions(panel: &Panel, rule: &MembershipRule, t: usize) -> Vec<(Vec<usize>, Vec<u64>)> {
    let m = Membership::new(panel);
    (0..=t)
        .map(|u| {
            let vols = (0..panel.coins.len())
                .map(|i| {
                    m.trailing_volume(panel, i, u, rule.volume_days)
                        .map_or(u64::MAX, f64::to_bits)
                })
                .collect();
            (m.members(panel, rule, u), vols)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Changing every coin's bars after grid bar t (prices, volumes, doubted bars, and ending
    /// some coins there) changes no membership decision and no trailing volume up to t.
    #[test]
    fn membership_up_to_t_ignores_everything_after_t(
        t in 0usize..1_150,
        scale in prop::collection::vec(0.2f64..5.0, 6),
        cut in prop::collection::vec(any::<bool>(), 6),
        top in prop::option::of(1usize..5),
    ) {
        let rule = MembershipRule {
            min_history: 48,
            min_volume_usd: 50_000.0,
            volume_days: 7,
            top,
        };
        let base = markets();
        let mut panel = Panel::new(base.clone());
        panel.coins[1].doubted = vec![300];
        let before = decisions(&panel, &rule, t);
        let t_ms = panel.ts[t];
        let changed: Vec<Market> = base
            .into_iter()
            .enumerate()
            .map(|(i, mut m)| {
                let k = m.candles.ts.partition_point(|&x| x <= t_ms);
                if cut[i] {
                    return m.slice(0..k.max(1));
                }
                for j in k..m.candles.len() {
                    let c = &mut m.candles;
                    c.open[j] *= scale[i];
                    c.high[j] *= scale[i];
                    c.low[j] *= scale[i];
                    c.close[j] *= scale[i];
                    c.volume[j] *= scale[(i + 1) % 6];
                }
                m
            })
            .collect();
        let mut after = Panel::new(changed);
        after.coins[1].doubted = vec![300];
        // A doubted bar after t, in every coin long enough.
        for c in &mut after.coins {
            let k = c.market.candles.ts.partition_point(|&x| x <= t_ms);
            if k + 1 < c.market.candles.len() {
                c.doubted.push(k + 1);
                c.doubted.sort_unstable();
                c.doubted.dedup();
            }
        }
        prop_assert_eq!(&after.ts[..=t], &panel.ts[..=t]);
        prop_assert_eq!(decisions(&after, &rule, t), before);
        // The portfolio seeds' scores and weights up to t are unchanged too.
        let seed = ["xs_momentum", "xs_reversal", "xs_low_volatility", "xs_funding_carry",
            "xs_rule_rank"][t % 5];
        let direction = ["long_short", "long_only", "short_only"][t % 3];
        let weighting = ["equal", "inverse_volatility", "score"][(t / 3) % 3];
        let set = [("direction", direction), ("weighting", weighting), ("rebalance", "5"),
            ("vol_target", if t % 2 == 0 { "0.5" } else { "0" }), ("rule", "rsi_filter")];
        let set: Vec<(String, String)> = set
            .iter()
            .filter(|(k, _)| *k != "rule" || seed == "xs_rule_rank")
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let g = PortfolioGenome::of(seed, &set).unwrap();
        let upto = |p: &Panel| -> Vec<(usize, Vec<u64>)> {
            g.schedule(p, &rule)
                .into_iter()
                .filter(|r| r.t <= t)
                .map(|r| (r.t, r.weights.iter().map(|w| w.to_bits()).collect()))
                .collect()
        };
        prop_assert_eq!(upto(&after), upto(&panel), "{}", seed);
    }
}

fn universe() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/universe");
    if p.join("candles").is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

fn pick(path: &Path, source: &str, interval: &str) -> PanelSelection {
    PanelSelection {
        path: path.to_path_buf(),
        source: source.into(),
        interval: interval.into(),
        pick: CoinPick::All,
        exclude: Vec::new(),
        timerange: None,
        keep_not_crypto: false,
    }
}

/// Hyperliquid 1d once stopped at `CYBER: 13 bars are too few`, Binance spot 4h at APT's
/// listing-day candle: both load whole now, APT with one note and its doubted bar kept; metals
/// and stablecoins are left out; a coin named alone is as strict as ever.
#[test]
fn the_real_universes_load_whole_and_a_coin_named_alone_stays_strict() {
    let Some(dir) = universe() else { return };
    let mut calls = 0;
    let hl = load_panel(&pick(&dir, "hyperliquid", "1d"), &mut |_, _| calls += 1).unwrap();
    assert!(calls > 100, "{calls}");
    let names = hl.panel.names();
    assert!(names.contains(&"CYBER") && names.contains(&"BTC"));
    assert!(!names.contains(&"PAXG"), "PAXG is not crypto");
    assert!(hl.panel.coins.len() >= 180, "{}", hl.panel.coins.len());
    let cyber = &hl.panel.coins[names.iter().position(|c| *c == "CYBER").unwrap()];
    assert!(cyber.market.candles.len() < 20);
    // Too young for the default rule at any bar: never a member, never an error.
    let m = Membership::new(&hl.panel);
    let rule = MembershipRule::default();
    let ci = names.iter().position(|c| *c == "CYBER").unwrap();
    assert!((0..hl.panel.len()).all(|t| !m.members(&hl.panel, &rule, t).contains(&ci)));

    let spot = load_panel(&pick(&dir, "binancespot", "4h"), &mut |_, _| {}).unwrap();
    let names = spot.panel.names();
    assert!(names.contains(&"APT"));
    assert!(!names.contains(&"USD1") && !names.contains(&"PAXG"));
    let apt = &spot.panel.coins[names.iter().position(|c| *c == "APT").unwrap()];
    assert!(!apt.doubted.is_empty());
    let note: Vec<&String> = spot
        .notes
        .iter()
        .filter(|n| n.starts_with("APT:"))
        .collect();
    assert_eq!(note.len(), 1, "{:?}", spot.notes);
    assert!(note[0].contains("line 2: implausible bar"), "{}", note[0]);
    // Named alone, APT's file is refused as before.
    let file = dir.join("candles/binancespot_APT_4h.csv");
    let e = load_candles(&file).unwrap_err().to_string();
    assert!(
        e.contains("binancespot_APT_4h.csv: line 2: implausible bar"),
        "{e}"
    );
    let e = load_universe(&DataSelection {
        path: Some(dir.clone()),
        interval: "4h".into(),
        source: "binancespot".into(),
        coins: vec!["APT".into()],
        timerange: None,
        synthetic: SyntheticParams::default(),
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 2: implausible bar"), "{e}");
}

/// The lenient loader keeps a doubted bar and says where it is; the strict one refuses it.
#[test]
fn a_doubted_bar_is_kept_and_located_or_refused() {
    let d = common::scratch("universe", "doubt");
    let f = d.join("x_AAA_1h.csv");
    std::fs::write(
        &f,
        "timestamp_ms,open,high,low,close,volume\n\
         1704067200000,10,11,9,10,1\n\
         1704070800000,10,150,9,10,1\n\
         1704074400000,10,11,9,10,1\n\
         1704078000000,200,210,190,200,1\n",
    )
    .unwrap();
    let (c, doubts) = load_candles_lenient(&f).unwrap();
    assert_eq!(c.len(), 4);
    let at: Vec<(usize, usize)> = doubts.iter().map(|x| (x.bar, x.line)).collect();
    assert_eq!(at, vec![(1, 3), (3, 5)]);
    assert!(
        doubts[0].message.contains("the high is 15x"),
        "{:?}",
        doubts[0]
    );
    assert!(
        doubts[1].message.contains("open 200 is 20x"),
        "{:?}",
        doubts[1]
    );
    let e = load_candles(&f).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "line 3: implausible bar: the high is 15x away from the body (open 10, close 10)"
        ),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(d);
}

/// `data coverage` on a folder made here: a gap, a doubted bar, funding over half the span,
/// and the median daily volume, all worked by hand.
#[test]
fn data_coverage_reports_each_coin_by_hand() {
    let d = common::scratch("universe", "coverage");
    std::fs::create_dir_all(d.join("candles")).unwrap();
    std::fs::create_dir_all(d.join("funding")).unwrap();
    let h = 3_600_000i64;
    let t0 = 1_704_067_200_000i64; // 2024-01-01 00:00 UTC
    let header = "timestamp_ms,open,high,low,close,volume\n";
    // X: 48 hours less hours 10 and 11; $1,000 a bar: day 0 $22,000, day 1 $24,000.
    let mut x = header.to_string();
    for i in (0..48).filter(|i| *i != 10 && *i != 11) {
        x += &format!("{},10,10,10,10,100\n", t0 + i * h);
    }
    std::fs::write(d.join("candles/t_X_1h.csv"), x).unwrap();
    // Funding for X over the first day only: half the span.
    let mut f = "timestamp_ms,rate\n".to_string();
    for i in 0..24 {
        f += &format!("{},0.0001\n", t0 + i * h);
    }
    std::fs::write(d.join("funding/t_X.csv"), f).unwrap();
    // Y: 72 hours at $10 a bar ($240 a day), a 100x wick at hour 30.
    let mut y = header.to_string();
    for i in 0..72 {
        let high = if i == 30 { 100 } else { 1 };
        y += &format!("{},1,{high},1,1,10\n", t0 + i * h);
    }
    std::fs::write(d.join("candles/t_Y_1h.csv"), y).unwrap();
    // A stablecoin is listed too, and an unreadable file is a note.
    std::fs::write(
        d.join("candles/t_USDC_1h.csv"),
        format!("{header}{t0},1,1,1,1,5\n"),
    )
    .unwrap();
    std::fs::write(d.join("candles/t_BAD_1h.csv"), "nonsense\n").unwrap();
    let out = common::run_ok(&["data", "coverage", common::s(&d), "--source", "t", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let coins = v["coins"].as_array().unwrap();
    let names: Vec<&str> = coins.iter().map(|c| c["coin"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["USDC", "X", "Y"]);
    let x = &coins[1];
    assert_eq!(x["bars"], 46);
    assert_eq!(x["gaps"], 1);
    assert_eq!(x["missing_bars"], 2);
    assert_eq!(x["funding_events"], 24);
    assert_eq!(x["funding_coverage"], 0.5);
    assert_eq!(x["median_daily_volume"], 23000.0);
    assert_eq!(x["doubted"], 0);
    let y = &coins[2];
    assert_eq!(y["bars"], 72);
    assert_eq!(y["doubted"], 1);
    assert_eq!(y["median_daily_volume"], 240.0);
    assert_eq!(y["funding_coverage"], 0.0);
    assert_eq!(y["first_ms"], t0);
    assert_eq!(y["last_ms"], t0 + 71 * h);
    let notes = v["notes"].to_string();
    assert!(
        notes.contains("BAD: left out:") && notes.contains("t_BAD_1h.csv: line 1"),
        "{notes}"
    );
    // The table says the same.
    let table = common::run_ok(&["data", "coverage", common::s(&d), "--source", "t"]);
    assert!(table.contains("3 coins from"), "{table}");
    let _ = std::fs::remove_dir_all(d);
}

/// The property test above compares real weights: on its panel every portfolio seed holds
/// coins at most rebalances once the coins are old enough.
#[test]
fn the_property_panel_is_traded_by_every_portfolio_seed() {
    let panel = Panel::new(markets());
    let rule = MembershipRule {
        min_history: 48,
        min_volume_usd: 50_000.0,
        volume_days: 7,
        top: None,
    };
    for seed in organism::seeds::portfolio::registry().unwrap() {
        let g = PortfolioGenome::of(&seed.spec.name, &[("rebalance".into(), "5".into())]).unwrap();
        let s = g.schedule(&panel, &rule);
        let held = s
            .iter()
            .filter(|r| r.weights.iter().any(|w| *w != 0.0))
            .count();
        assert!(s.len() > 200, "{}: {} rebalances", seed.spec.name, s.len());
        assert!(
            held * 2 > s.len(),
            "{}: {held} of {} hold coins",
            seed.spec.name,
            s.len()
        );
    }
}

/// A universe of six synthetic coins written by `organism data generate` into `dir`, and a
/// config that reads it with no volume floor.
fn synthetic_universe(dir: &Path) -> PathBuf {
    let cfg = dir.join("u.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[data]
path = "{data}"
source = "synthetic"
interval = "1h"

[synthetic]
seed = 3
bars = 3000
coins = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
annual_vol = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
start_price = [100.0, 50.0, 20.0, 10.0, 5.0, 1.0]

[universe]
min_history = 100
min_volume_usd = 0.0
"#,
            data = common::s(&dir.join("data"))
        ),
    )
    .unwrap();
    common::run_ok(&[
        "data",
        "generate",
        "--config",
        common::s(&cfg),
        "--out",
        common::s(&dir.join("data")),
    ]);
    cfg
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).expect("one JSON object")
}

/// `backtest --portfolio` end to end on a generated universe: the figures agree with the
/// equity file and with Lo's standard error worked here; a genome file of the same genes gives
/// the same result; top:N holds at most N coins; an HTML report is written; bad input is one
/// clear error.
#[test]
fn backtest_portfolio_on_a_generated_universe() {
    let d = common::scratch("universe", "portfolio");
    let cfg = synthetic_universe(&d);
    let (eq, html) = (d.join("eq.csv"), d.join("r.html"));
    let base = [
        "-q",
        "backtest",
        "--config",
        common::s(&cfg),
        "--portfolio",
        "xs_momentum",
        "--set",
        "lookback=24",
        "--set",
        "rebalance=4",
    ];
    let mut args = base.to_vec();
    args.extend([
        "--json",
        "--equity",
        common::s(&eq),
        "--report",
        common::s(&html),
    ]);
    let v = json_of(&common::run_ok(&args));
    assert_eq!(v["coins_loaded"], 6);
    let f = &v["figures"];
    let bars = f["bars"].as_u64().unwrap() as f64;
    assert_eq!(bars, 3000.0);
    // Lo: √((1 + SR²/2)/T) per bar, annualized, with SR per bar = sharpe/√8760.
    let s = f["sharpe"].as_f64().unwrap();
    let per_bar = s / 8760f64.sqrt();
    let se = ((1.0 + per_bar * per_bar / 2.0) / bars).sqrt() * 8760f64.sqrt();
    assert!((f["sharpe_se"].as_f64().unwrap() - se).abs() < 1e-12);
    // The equity file's last row is the final equity; 3000 rows and a header.
    let text = std::fs::read_to_string(&eq).unwrap();
    assert_eq!(text.lines().count(), 3001);
    assert_eq!(
        common::last_equity(&text),
        f["final_equity"].as_f64().unwrap()
    );
    assert!(f["rebalances"].as_u64().unwrap() > 600);
    assert!(f["avg_held"].as_f64().unwrap() > 1.5);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("monthly rank IC"),
        "report"
    );
    // The genome it printed, as a file, is the same strategy.
    let g = d.join("g.toml");
    std::fs::write(&g, v["genome"].as_str().unwrap()).unwrap();
    let w = json_of(&common::run_ok(&[
        "-q",
        "backtest",
        "--config",
        common::s(&cfg),
        "--genome",
        common::s(&g),
        "--json",
    ]));
    assert_eq!(w["figures"], v["figures"]);
    // top:2 → one coin per side at most.
    let mut args = base.to_vec();
    args.extend(["--coins", "top:2", "--json"]);
    let t = json_of(&common::run_ok(&args));
    assert!(t["figures"]["avg_held"].as_f64().unwrap() <= 2.0);
    // --exclude leaves a coin out of the panel.
    let mut args = base.to_vec();
    args.extend(["--exclude", "AAA,BBB", "--json"]);
    assert_eq!(json_of(&common::run_ok(&args))["coins_loaded"], 4);
    // Bad input: one clear error each.
    let o = common::organism(&[
        "backtest",
        "--config",
        common::s(&cfg),
        "--portfolio",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = common::stderr(&o);
    assert!(
        e.contains("unknown portfolio seed `nope`") && e.contains("xs_momentum"),
        "{e}"
    );
    // Without --data, the bundled synthetic market's four coins are the universe.
    let bundled = json_of(&common::run_ok(&[
        "backtest",
        "--portfolio",
        "xs_momentum",
        "--json",
    ]));
    assert_eq!(bundled["coins_loaded"], 4);
    assert_eq!(bundled["figures"]["bars"], 17_520);
    let o = common::organism(&[
        "backtest",
        "--config",
        common::s(&cfg),
        "--portfolio",
        "xs_momentum",
        "--coins",
        "top:0",
    ]);
    assert!(common::stderr(&o).contains("top:N needs a whole number N of at least 1"));
    let o = common::organism(&[
        "backtest",
        "--config",
        common::s(&cfg),
        "--portfolio",
        "xs_momentum",
        "--set",
        "skip=900",
    ]);
    assert!(
        common::stderr(&o).contains("skip"),
        "{}",
        common::stderr(&o)
    );
    let _ = std::fs::remove_dir_all(d);
}

/// Hyperliquid 1d with every coin once stopped at `CYBER: 13 bars are too few`; as a portfolio
/// it runs over all of them.
#[test]
fn a_portfolio_runs_over_every_hyperliquid_coin() {
    let Some(dir) = universe() else { return };
    let v = json_of(&common::run_ok(&[
        "-q",
        "backtest",
        "--portfolio",
        "xs_low_volatility",
        "--data",
        common::s(&dir),
        "--source",
        "hyperliquid",
        "--interval",
        "1d",
        "--coins",
        "all",
        "--json",
    ]));
    assert!(v["coins_loaded"].as_u64().unwrap() >= 180);
    assert!(v["coins_traded"].as_u64().unwrap() > 30);
}

/// Among several coins of a single-coin strategy's universe: a coin with a doubted bar keeps
/// its longest stretch without one, a file that does not load is left out, and a coin too young
/// for the strategy is not traded; named alone, each is refused as before.
#[test]
fn single_coin_strategies_over_many_coins_skip_what_cannot_trade() {
    let d = common::scratch("universe", "many");
    std::fs::create_dir_all(d.join("candles")).unwrap();
    let h = 3_600_000i64;
    let t0 = 1_704_067_200_000i64;
    let header = "timestamp_ms,open,high,low,close,volume\n";
    let series = |n: i64, wick_at: Option<i64>| {
        let mut s = header.to_string();
        for i in 0..n {
            let p = 100.0 + (i as f64 * 0.7).sin() * 5.0;
            let high = if Some(i) == wick_at {
                p * 50.0
            } else {
                p + 1.0
            };
            s += &format!("{},{p},{high},{},{p},10\n", t0 + i * h, p - 1.0);
        }
        s
    };
    // A: 400 clean bars. B: 400 bars, a 50x wick at bar 300: bars 0..300 are the longest
    // clean stretch (after it, 300 + 24 .. 400 is shorter). C: 10 bars. D: unreadable.
    std::fs::write(d.join("candles/t_A_1h.csv"), series(400, None)).unwrap();
    std::fs::write(d.join("candles/t_B_1h.csv"), series(400, Some(300))).unwrap();
    std::fs::write(d.join("candles/t_C_1h.csv"), series(10, None)).unwrap();
    std::fs::write(d.join("candles/t_D_1h.csv"), "garbage\n").unwrap();
    let run = |extra: &[&str]| {
        let mut a = vec![
            "backtest",
            "--data",
            common::s(&d),
            "--source",
            "t",
            "--json",
        ];
        a.extend_from_slice(extra);
        common::organism(&a)
    };
    let o = run(&["--coins", "all"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let v: serde_json::Value = serde_json::from_str(common::stdout(&o).trim()).unwrap();
    let coins: Vec<(String, u64)> = v["coins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["coin"].as_str().unwrap().to_string(),
                c["bars"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(coins, vec![("A".into(), 400), ("B".into(), 300)], "{v}");
    let e = common::stderr(&o);
    assert!(
        e.contains("B: 1 bar(s) the plausibility check doubts"),
        "{e}"
    );
    assert!(
        e.contains("kept the 300 bars from 2024-01-01 00:00 to 2024-01-13 11:00"),
        "{e}"
    );
    assert!(
        e.contains("D: left out:") && e.contains("t_D_1h.csv: line 1"),
        "{e}"
    );
    assert!(
        e.contains("too young for ema_crossover") && e.contains("C (10 bars)"),
        "{e}"
    );
    // Named alone: refused as before.
    let o = run(&["--coin", "B"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("t_B_1h.csv: line 302: implausible bar"),
        "{}",
        common::stderr(&o)
    );
    let o = run(&["--coin", "C"]);
    assert!(common::stderr(&o).contains("C: 10 bars are too few for ema_crossover"));
    let _ = std::fs::remove_dir_all(d);
}

/// An evolution over Hyperliquid 4h once stopped at `RENDER: the training segment has 46
/// bars`: such a coin is left out of that segment with a note, and the run goes on.
#[test]
fn an_evolution_over_every_hyperliquid_coin_runs() {
    let Some(dir) = universe() else { return };
    let out = common::scratch("universe", "evolve");
    let o = common::organism(&[
        "evolve",
        "--data",
        common::s(&dir),
        "--source",
        "hyperliquid",
        "--interval",
        "4h",
        "--generations",
        "1",
        "--population",
        "8",
        "--seeds",
        "ema_crossover,rsi_filter",
        "--out",
        common::s(&out.join("run")),
    ]);
    let e = common::stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("RENDER: left out of the training segment: 46 bars there, it needs 50"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(out);
}

/// `data generate --coins` writes a universe of 40 coins, and with a planted cross-sectional
/// factor says what the factor-sorted portfolio earns.
#[test]
fn data_generate_writes_a_universe_and_the_factor_s_sharpe() {
    let d = common::scratch("universe", "generate");
    let cfg = d.join("xs.toml");
    std::fs::write(&cfg, "[synthetic]\nxs_edge = 0.02\nbars = 2000\n").unwrap();
    let out = common::run_ok(&[
        "data",
        "generate",
        "--config",
        common::s(&cfg),
        "--coins",
        "--out",
        common::s(&d.join("u")),
    ]);
    assert!(out.contains("wrote 40 coins x 2000 bars"), "{out}");
    assert!(
        out.contains("the factor-sorted long-short portfolio"),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(d.join("u/candles")).unwrap().count(), 40);
    assert!(d.join("u/candles/synthetic_X40_1h.csv").is_file());
    // Without a factor, nothing is said about one.
    let plain = common::run_ok(&[
        "data",
        "generate",
        "--coins",
        "6",
        "--out",
        common::s(&d.join("p")),
    ]);
    assert!(
        plain.contains("wrote 6 coins") && !plain.contains("factor"),
        "{plain}"
    );
    // Its cross-sectionally shuffled copy: six coins, each bar's moves dealt among them.
    let shuffled = common::run_ok(&[
        "data",
        "permute",
        "--cross-section",
        "--data",
        common::s(&d.join("p")),
        "--source",
        "synthetic",
        "--seed",
        "3",
        "--out",
        common::s(&d.join("x")),
    ]);
    assert!(
        shuffled.contains("wrote 6 coins")
            && shuffled.contains("shuffled across coins with seed 3"),
        "{shuffled}"
    );
    assert!(d.join("x/candles/xshuffled_X01_1h.csv").is_file());
    let copy = load_candles(&d.join("x/candles/xshuffled_X01_1h.csv")).unwrap();
    let orig = load_candles(&d.join("p/candles/synthetic_X01_1h.csv")).unwrap();
    assert_eq!(copy.ts, orig.ts);
    assert_eq!(copy.close[0], orig.close[0]);
    assert_ne!(copy.close, orig.close);
    let _ = std::fs::remove_dir_all(d);
}
