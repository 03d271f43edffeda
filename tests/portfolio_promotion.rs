//! Promotion of portfolio strategies: a planted cross-sectional factor passes every stage of
//! the gauntlet, is recorded with its universe and replays bar by bar as it backtests; on
//! cross-sectionally shuffled and on return-permuted copies of the same market nothing is
//! promoted; and a strategy long the whole universe on a market with a strong common trend is
//! stopped by the cross-sectional null.

use std::path::Path;

use organism::{
    config::Config,
    evolution::{
        portfolio::{PanelSegment, PortfolioProblem},
        summary, Evaluation, Member,
    },
    execution::{portfolio::Limits, EngineConfig},
    market::{
        membership::MembershipRule,
        panel::Panel,
        synthetic::{generate, SyntheticParams},
        Candles, Market,
    },
    promotion::gauntlet::{self, Candidates, PortfolioCandidates, Setup, Stage, Trials},
    seeds::portfolio::{find_portfolio, PortfolioGenome},
};
use serde_json::Value;

mod common;

use common::{run_ok, s, scratch};

/// Every stage a portfolio strategy passes to be promoted, in order.
const STAGES: [&str; 9] = [
    "costs",
    "cross_section",
    "nulls",
    "search_nulls",
    "out_of_sample",
    "deflated_sharpe",
    "overfitting",
    "holdout",
    "diversity",
];

/// The planted-factor market: 40 coins, three years of hours, the factor's drift the only
/// thing cross-sectional (its trace shows in funding; funding is off as a cash flow), split
/// 60 / 20 / 20, a small search, 20 copies per null.
fn config(dir: &Path, xs_edge: f64) -> std::path::PathBuf {
    let p = dir.join("c.toml");
    std::fs::write(
        &p,
        format!(
            "[synthetic]\nxs_edge = {xs_edge}\nbars = 26280\nrange_pull = 0.0\n\
             funding_trend = 0.0\nxs_funding = 0.00002\n\
             [costs]\nfunding = false\n\
             [evolution]\nseed = 7\ntrain_fraction = 0.6\nvalidation_fraction = 0.2\n\
             population = 32\ngenerations = 8\n\
             [promotion]\nnulls = 20\ncross_nulls = 20\nregistry = \"{}\"\n",
            s(&dir.join("reg.db"))
        ),
    )
    .unwrap();
    p
}

/// Evolves a portfolio run on `data` into `dir/<name>` and promotes it: the JSON of `promote`.
fn evolve_and_promote(cfg: &Path, data: &Path, source: &str, dir: &Path, name: &str) -> Value {
    let run = dir.join(name);
    run_ok(&[
        "evolve",
        "--mode",
        "portfolio",
        "--config",
        s(cfg),
        "--data",
        s(data),
        "--source",
        source,
        "--out",
        s(&run),
        "-q",
    ]);
    serde_json::from_str(&run_ok(&[
        "promote",
        "--config",
        s(cfg),
        "--from",
        s(&run),
        "--json",
    ]))
    .unwrap()
}

/// The planted factor (its factor-sorted long–short portfolio has Sharpe 5.9 before costs over
/// the three years; `data generate` prints it) is found and promoted with every stage passed;
/// the registry keeps its universe, `strategies show` prints it, and `paper replay` of the
/// promoted strategy books what `backtest --genome` books over the same bars. On three
/// cross-sectionally shuffled copies and three return-permuted copies (bars together) of the
/// same market, nothing is promoted.
#[test]
fn a_planted_factor_is_promoted_and_its_null_copies_are_not() {
    let base = scratch("ppro", "planted");
    let cfg = config(&base, 0.006);
    let data = base.join("d");
    let said = common::generate_coins(&cfg, &data);
    assert!(said.contains("has Sharpe 5.9"), "{said}");
    let v = evolve_and_promote(&cfg, &data, "synthetic", &base, "real");
    let promoted: Vec<&Value> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["admitted"] == true)
        .collect();
    assert!(!promoted.is_empty(), "{}", v["summary"]);
    let c = promoted[0];
    let stages: Vec<(&str, bool)> = c["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["stage"].as_str().unwrap(), o["passed"] == true))
        .collect();
    assert_eq!(stages, STAGES.map(|st| (st, true)).to_vec(), "{c}");
    // It picks coins: its validation rank IC is positive, its Sharpe has a standard error.
    assert!(
        c["validation"]["portfolio"]["rank_ic"]["mean"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(c["sharpe_se"]["holdout"].as_f64().unwrap() > 0.0);
    // The universe is kept with the strategy.
    let u = &v["universe"];
    assert_eq!(u["coins"], "all");
    assert_eq!(u["source"], "synthetic");
    assert_eq!(u["interval"], "1h");
    assert_eq!(u["data_fingerprint"], v["data_fingerprint"]);
    let id = c["strategy"].as_str().unwrap();
    let shown = run_ok(&[
        "strategies",
        "show",
        id,
        "--registry",
        s(&base.join("reg.db")),
    ]);
    assert!(
        shown.contains("universe: synthetic 1h bars from") && shown.contains("--coins all"),
        "{shown}"
    );
    assert!(shown.contains("cross_section    pass"), "{shown}");

    // Paper replay over two months of stored bars books what the backtest books.
    let (e1, e2) = (base.join("replay.csv"), base.join("backtest.csv"));
    let replay: Value = serde_json::from_str(&run_ok(&[
        "paper",
        "replay",
        "--config",
        s(&cfg),
        "--strategy",
        id,
        "--from",
        "20250301",
        "--to",
        "20250501",
        "--equity",
        s(&e1),
        "--json",
    ]))
    .unwrap();
    let genome = base.join("g.toml");
    let member = format!(
        "{}:{}",
        s(&base.join("real")),
        c["member"].as_str().unwrap()
    );
    run_ok(&["runs", "export", &member, "--out", s(&genome)]);
    let backtest: Value = serde_json::from_str(&run_ok(&[
        "backtest",
        "--config",
        s(&cfg),
        "--genome",
        s(&genome),
        "--data",
        s(&data),
        "--source",
        "synthetic",
        "--timerange",
        "20250301-20250501",
        "--equity",
        s(&e2),
        "--json",
    ]))
    .unwrap();
    let (a, b) = (
        std::fs::read_to_string(&e1).unwrap(),
        std::fs::read_to_string(&e2).unwrap(),
    );
    assert_eq!(
        a.lines().count(),
        61 * 24 + 1,
        "two months of hours and a header"
    );
    assert_eq!(a, b, "replay and backtest equity differ");
    assert_eq!(replay["fills"], backtest["figures"]["fills"]);
    assert!(replay["fills"].as_u64().unwrap() > 0);
    assert_eq!(
        replay["validated_on_these_bars"], false,
        "a cut of the data"
    );

    // Null copies of the same market: nothing promoted.
    for k in 1..=3 {
        for (flag, source) in [("--cross-section", "xshuffled"), ("--together", "permuted")] {
            let copy = base.join(format!("{source}{k}"));
            run_ok(&[
                "data",
                "permute",
                "--config",
                s(&cfg),
                "--data",
                s(&data),
                "--source",
                "synthetic",
                flag,
                "--seed",
                &k.to_string(),
                "--out",
                s(&copy),
            ]);
            let v = evolve_and_promote(&cfg, &copy, source, &base, &format!("run-{source}{k}"));
            assert_eq!(
                v["promoted"].as_array().unwrap().len(),
                0,
                "{source} copy {k}: {}",
                v["summary"]
            );
        }
    }
    let _ = std::fs::remove_dir_all(base);
}

/// Twelve synthetic coins (no factor) with a strong common trend added: every price times
/// `exp(1.5 · years)`.
fn trending_market() -> Vec<Market> {
    let u = generate(&SyntheticParams {
        seed: 21,
        bars: 17_520,
        coins: (1..=12).map(|i| format!("C{i:02}")).collect(),
        annual_vol: vec![0.6; 12],
        start_price: vec![10.0; 12],
        ..SyntheticParams::default()
    });
    u.markets
        .into_iter()
        .map(|m| {
            let k = &m.candles;
            let mut c = Candles::with_capacity(k.len());
            for t in 0..k.len() {
                let f = (1.5 * t as f64 / 8760.0).exp();
                c.push(
                    k.ts[t],
                    k.open[t] * f,
                    k.high[t] * f,
                    k.low[t] * f,
                    k.close[t] * f,
                    k.volume[t],
                );
            }
            Market::new(m.coin.clone(), c, m.funding.clone())
        })
        .collect()
}

/// Long every coin alike (pure beta) on a market whose coins all trend up strongly and where
/// nothing picks one coin over another: costs are passed, and the cross-sectional null stops
/// it, every shuffled copy earning what the market earns (the same equal-weight move each bar:
/// the same Sharpe to within [`gauntlet::SHARPE_TIE`]).
#[test]
fn pure_beta_is_stopped_by_the_cross_sectional_null() {
    let panel = Panel::new(trending_market());
    let n = panel.len();
    let (t1, t2) = (panel.ts[n * 6 / 10], panel.ts[n * 8 / 10]);
    let rule = MembershipRule {
        min_history: 24,
        min_volume_usd: 0.0,
        volume_days: 2,
        top: None,
    };
    let cfg = Config::defaults().unwrap();
    let validation = panel.between(panel.ts[0], t2);
    let start = validation.ts.partition_point(|&t| t < t1);
    let problem = PortfolioProblem {
        entries: vec![find_portfolio("xs_momentum").unwrap()],
        train: PanelSegment::new(panel.between(panel.ts[0], t1), 0, rule),
        validation: PanelSegment::new(validation, start, rule),
        // Funding off: every coin pays its own rate, which a shuffle would move between coins.
        backtest: EngineConfig {
            funding: false,
            ..EngineConfig::default()
        },
        membership: rule,
        limits: Limits::default(),
        aggregation: cfg.evolution.aggregation(),
    };
    let beta = PortfolioGenome::of(
        "xs_momentum",
        &[
            ("direction", "long_only"),
            ("selection", "count"),
            ("count", "50"),
            ("weighting", "equal"),
            ("rebalance", "1"),
            ("gross", "1.0"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    )
    .unwrap();
    let member = Member {
        seed: 0,
        genes: beta.genes.clone(),
        program: None,
        eval: Evaluation::new(0.0, 0.0, 0.0, 0.0, 0.0),
        rank: 0,
        crowding: 0.0,
    };
    let ranked = summary::rank(&problem, &[&member]);
    let candidates = PortfolioCandidates { problem: &problem };
    let mut promotion = cfg.promotion.clone();
    promotion.cross_nulls = 20;
    promotion.nulls = 20;
    let setup = Setup {
        candidates: &candidates,
        seed: 42,
        cfg: &promotion,
        trials: Trials {
            count: 1,
            sharpe_var: None,
            effective: None,
            clustered: false,
        },
        top: 5,
        search_nulls: Vec::new(),
    };
    let holdout = PanelSegment::new(panel.clone(), panel.ts.partition_point(|&t| t < t2), rule);
    let verdict = gauntlet::run(
        &ranked,
        &setup,
        &mut |_| Ok::<usize, ()>(0),
        &mut || Ok(holdout.clone()),
        &|_| {},
    )
    .unwrap();
    let j = &verdict.candidates[0];
    // It holds all twelve coins and earns the trend.
    let vf = j.validation.figures.unwrap();
    assert!(vf.sharpe > 1.0, "validation Sharpe {}", vf.sharpe);
    assert!((vf.portfolio.unwrap().avg_held - 12.0).abs() < 0.5);
    let stopped = j.stopped_at().unwrap();
    assert_eq!(stopped.stage, Stage::CrossSection, "{:?}", j.stages);
    assert!(j.stages[0].passed, "costs: {}", j.stages[0].reason);
    let gauntlet::StageFigures::CrossSection(f) = &stopped.figures else {
        panic!("{:?}", stopped.figures)
    };
    assert_eq!(f.copies_at_or_above, 20, "{}", stopped.reason);
    for x in &j.cross_sharpes {
        assert!((x - vf.sharpe).abs() < 1e-3, "{x} vs {}", vf.sharpe);
    }
    // What the return-permutation null alone would have said (for the record).
    let r = &ranked[0];
    let nulls: Vec<f64> = (0..20).map(|k| candidates.null_sharpe(r, 42, k)).collect();
    let alone = gauntlet::nulls(vf.sharpe, candidates.flipped_sharpe(r), &nulls, 0.95);
    eprintln!(
        "pure beta: validation Sharpe {:.2}; the return-permutation null alone: {} ({})",
        vf.sharpe,
        if alone.passed { "passed" } else { "failed" },
        alone.reason
    );
}
