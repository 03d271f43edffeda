//! The portfolio backtest's cost by universe size: synthetic panels of 50, 100 and 186 coins ×
//! 5,000 4-hourly bars (the size of Hyperliquid's 4h history), `xs_momentum` at its defaults
//! (a rebalance every 6 bars: 833 of them). Three parts, each per panel size:
//!
//! * `scores`: every coin's score column;
//! * `schedule`: membership and weights at every rebalance, scores given;
//! * `book`: the portfolio book over the whole grid with those rebalances.
//!
//! Each should grow linearly with the number of coins; the figures are in benches/BENCHMARKS.md.
//!
//! `generation`: one generation of `evolve --mode portfolio` — 64 genomes of the five portfolio
//! seeds (each seed's defaults, then random genomes), each scored, scheduled and booked over the
//! 186-coin panel, in parallel as evolution does (issue 39's target: ≤ 1 s, ≤ 2 GB).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use organism::{
    backtest::portfolio::run,
    execution::{portfolio::Limits, EngineConfig},
    market::{
        membership::MembershipRule,
        panel::Panel,
        synthetic::{generate, SyntheticParams},
        HOUR_MS,
    },
    seeds::portfolio::PortfolioGenome,
};

/// `coins` synthetic coins of 5,000 bars, 4 hours apart (every fourth hourly bar of the
/// synthetic market: the grid's times are what matters here, not the bars' shapes).
fn panel(coins: usize) -> Panel {
    let names: Vec<String> = (0..coins).map(|i| format!("C{i}")).collect();
    let u = generate(&SyntheticParams {
        seed: 1,
        bars: 5_000,
        coins: names,
        annual_vol: (0..coins).map(|i| 0.5 + 0.01 * (i % 50) as f64).collect(),
        start_price: (0..coins).map(|i| 1.0 + i as f64).collect(),
        ..SyntheticParams::default()
    });
    let markets = u
        .markets
        .into_iter()
        .map(|mut m| {
            for t in m.candles.ts.iter_mut() {
                *t = m_start() + (*t - m_start()) * 4;
            }
            m
        })
        .collect();
    Panel::new(markets)
}

fn m_start() -> i64 {
    SyntheticParams::default().start_ms
}

fn portfolio(c: &mut Criterion) {
    let g = PortfolioGenome::of("xs_momentum", &[]).expect("xs_momentum");
    let rule = MembershipRule {
        min_volume_usd: 0.0,
        ..MembershipRule::default()
    };
    let cfg = EngineConfig::default();
    let mut group = c.benchmark_group("portfolio_5000_4h_bars");
    group.sample_size(10);
    for coins in [50, 100, 186] {
        let p = panel(coins);
        assert_eq!(p.interval_ms(), 4 * HOUR_MS);
        let scores = g.scores(&p);
        let schedule = g.schedule_with(&p, &rule, &scores);
        assert!(schedule.len() > 800, "{}", schedule.len());
        group.bench_with_input(BenchmarkId::new("scores", coins), &p, |b, p| {
            b.iter(|| g.scores(p))
        });
        group.bench_with_input(BenchmarkId::new("schedule", coins), &p, |b, p| {
            b.iter(|| g.schedule_with(p, &rule, &scores))
        });
        group.bench_with_input(BenchmarkId::new("book", coins), &p, |b, p| {
            b.iter(|| run(p, &schedule, &cfg, &Limits::default()))
        });
    }
    group.finish();
}

fn generation(c: &mut Criterion) {
    use organism::evolution::{
        portfolio::{PanelSegment, PortfolioProblem},
        problem::{Aggregation, SharpeObjective},
        Evolver, Mode, Settings,
    };
    let rule = MembershipRule {
        min_volume_usd: 0.0,
        ..MembershipRule::default()
    };
    let train = panel(186);
    let problem = || PortfolioProblem {
        entries: organism::seeds::portfolio::registry()
            .expect("portfolio seeds")
            .iter()
            .collect(),
        train: PanelSegment::new(train.clone(), 0, rule),
        validation: PanelSegment::new(panel(4), 0, rule),
        backtest: EngineConfig::default(),
        membership: rule,
        limits: Limits::default(),
        aggregation: Aggregation {
            worst_coin_weight: 0.0,
            min_trades: 10.0,
            sharpe: SharpeObjective::Plain,
        },
    };
    let settings = Settings {
        mode: Mode::Portfolio,
        ..Settings::params(64, 0.9, 20.0, 20.0, 0.25)
    };
    let mut group = c.benchmark_group("portfolio_generation");
    group.sample_size(10);
    // A run's first generation: every bar's members computed as genomes ask for them.
    group.bench_function("first_64_genomes_186_coins_5000_4h_bars", |b| {
        b.iter_batched(
            problem,
            |p| {
                Evolver::new(&p, settings.clone())
                    .init(7, &|| ())
                    .population
                    .len()
            },
            criterion::BatchSize::PerIteration,
        )
    });
    // Every later generation: the members kept.
    let warm = problem();
    let evolver = Evolver::new(&warm, settings.clone());
    evolver.init(7, &|| ());
    group.bench_function("later_64_genomes_186_coins_5000_4h_bars", |b| {
        b.iter(|| evolver.init(7, &|| ()).population.len())
    });
    group.finish();
}

criterion_group!(benches, portfolio, generation);
criterion_main!(benches);
