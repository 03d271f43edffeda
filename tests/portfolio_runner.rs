//! Bar by bar equals the backtest, for portfolio strategies: every portfolio seed decided at
//! each grid bar from the bars up to it alone and booked by the backtest's own stepper gives the
//! whole-history backtest's equity, exposure and fills, bit for bit — on coins listed and
//! delisted at different bars, in both fill modes.

use organism::{
    backtest::portfolio::run,
    execution::{portfolio::Limits, EngineConfig, FillMode},
    market::{
        membership::MembershipRule,
        panel::Panel,
        synthetic::{generate, SyntheticParams},
    },
    runner::portfolio::PortfolioRunner,
    seeds::portfolio::{registry, PortfolioGenome},
};

/// Five synthetic hourly coins of unequal histories (two listed late, one delisted early).
fn panel() -> Panel {
    let u = generate(&SyntheticParams {
        seed: 11,
        bars: 900,
        coins: ["A", "B", "C", "D", "E"].map(String::from).to_vec(),
        annual_vol: vec![0.5, 0.7, 0.9, 1.1, 0.8],
        start_price: vec![100.0, 10.0, 1.0, 50.0, 5.0],
        ..SyntheticParams::default()
    });
    let spans = [(0, 900), (60, 900), (200, 700), (0, 500), (330, 900)];
    Panel::new(
        u.markets
            .into_iter()
            .zip(spans)
            .map(|(m, (a, b))| m.slice(a..b))
            .collect(),
    )
}

#[test]
fn every_portfolio_seed_bar_by_bar_books_what_the_backtest_books() {
    let p = panel();
    assert_eq!(p.len(), 900);
    let rule = MembershipRule {
        min_history: 24,
        min_volume_usd: 0.0,
        volume_days: 2,
        top: None,
    };
    let (mut checked, mut delisted) = (0, 0);
    for entry in registry().unwrap() {
        for (fill, genes) in [
            (
                FillMode::NextOpen,
                vec![("rebalance", "5"), ("lookback", "24")],
            ),
            (
                FillMode::Close,
                vec![
                    ("rebalance", "3"),
                    ("lookback", "12"),
                    ("weighting", "inverse_volatility"),
                    ("vol_target", "0.5"),
                    ("vol_lookback", "30"),
                ],
            ),
        ] {
            let genes: Vec<(String, String)> = genes
                .iter()
                .filter(|(k, _)| entry.spec.index(k).is_some())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let g = PortfolioGenome::of(&entry.spec.name, &genes).unwrap();
            let cfg = EngineConfig {
                fill,
                ..EngineConfig::default()
            };
            let limits = Limits::default();
            let schedule = g.schedule(&p, &rule);
            let whole = run(&p, &schedule, &cfg, &limits);
            let mut runner = PortfolioRunner::new(g.clone(), rule, limits, &p, &cfg);
            let mut decided = Vec::new();
            while let Some((t, equity)) = runner.step(&p) {
                assert_eq!(
                    equity.to_bits(),
                    whole.equity[t].to_bits(),
                    "{} {fill:?}: equity differs at bar {t}",
                    entry.spec.name
                );
                if let Some(r) = runner.decide(&p, t, p.interval_ms()) {
                    decided.push(r);
                }
            }
            let bar_by_bar = runner.finish();
            assert_eq!(bar_by_bar, whole, "{} {fill:?}", entry.spec.name);
            // The same rebalances, decided from the past alone.
            assert_eq!(decided.len(), schedule.len());
            for (a, b) in decided.iter().zip(&schedule) {
                assert_eq!(a.t, b.t);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a.weights), bits(&b.weights), "weights at {}", a.t);
            }
            // Something was traded; a coin closed when its data ended is C (bar 699) or D (499).
            assert!(whole.rebalances > 10, "{}", entry.spec.name);
            assert!(
                whole
                    .delisted
                    .iter()
                    .all(|d| d == &(3, 499) || d == &(2, 699)),
                "{:?}",
                whole.delisted
            );
            delisted += whole.delisted.len();
            checked += 1;
        }
    }
    assert_eq!(checked, 10);
    assert!(delisted > 0, "no run held D when its data ended");
}
