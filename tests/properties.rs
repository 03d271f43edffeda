//! Property tests: the ledger adds up for random genomes of every seed; the fused benchmark
//! kernel equals the engine on random Workload-B genomes; variation operators keep genomes valid
//! and are deterministic.

use std::sync::OnceLock;

use organism::{
    backtest::run,
    bench::{ema_cross_long, FastData},
    evolution::operators::{crossover, mutate, random_genome},
    execution::{EngineConfig, ExitReason, FillMode},
    fitness::Metrics,
    genome::{GeneKind, SeedSpec},
    indicators::{atr, ema},
    market::{
        synthetic::{generate, SyntheticParams},
        Market,
    },
    seeds::{registry, Prepared},
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One synthetic coin with funding, 1,500 hourly bars, prepared once for every case.
fn prepared() -> &'static Prepared {
    static P: OnceLock<Prepared> = OnceLock::new();
    P.get_or_init(|| {
        let u = generate(&SyntheticParams {
            bars: 1_500,
            seed: 11,
            ..SyntheticParams::default()
        });
        Prepared::new(u.markets[2].clone())
    })
}

fn market() -> &'static Market {
    &prepared().market
}

fn valid(spec: &SeedSpec, g: &[f64]) -> Result<(), String> {
    if g.len() != spec.genes.len() {
        return Err(format!("{} genes", g.len()));
    }
    for (v, s) in g.iter().zip(&spec.genes) {
        let whole = s.kind == GeneKind::Float || v.fract() == 0.0;
        if !(v.is_finite() && *v >= s.min && *v <= s.max && whole) {
            return Err(format!(
                "gene {} = {v} outside [{}, {}]",
                s.name, s.min, s.max
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 60, ..ProptestConfig::default() })]

    /// Trade PnL (price PnL − fees + funding, an open trade marked at the last close) sums to
    /// final equity − initial cash, in both fill modes.
    #[test]
    fn trades_add_up_to_the_equity_change(seed in 0usize..12, draw in any::<u64>(), close in any::<bool>()) {
        let entry = &registry().unwrap()[seed];
        let genome = random_genome(&entry.spec, &mut ChaCha8Rng::seed_from_u64(draw));
        let m = market();
        let cfg = EngineConfig {
            fill: if close { FillMode::Close } else { FillMode::NextOpen },
            ..EngineConfig::default()
        };
        let r = run(&m.candles, &m.funding_per_bar, &entry.targets(&genome, prepared()), &cfg);
        let final_equity = *r.equity.last().unwrap();
        let pnl: f64 = r.trades.iter().map(|t| t.pnl).sum();
        prop_assert!(
            (pnl - (final_equity - cfg.cash)).abs() <= 1e-9 * cfg.cash,
            "{}: pnl {pnl} vs equity change {}", entry.spec.name, final_equity - cfg.cash
        );
        for t in &r.trades {
            prop_assert!(t.fees > 0.0 && t.size > 0.0 && t.entry_bar <= t.exit_bar);
            let gross = t.side.sign() * t.size * (t.exit_price - t.entry_price);
            prop_assert!((t.pnl - (gross - t.fees + t.funding)).abs() <= 1e-9 * cfg.cash);
        }
        let open = r.trades.iter().filter(|t| t.exit_reason == ExitReason::Open).count();
        prop_assert!(open <= 1);
    }

    /// The fused kernel of Workload B gives the engine's numbers for the same genome.
    #[test]
    fn fast_kernel_equals_the_engine(
        fast in 2usize..=50, slow in 10usize..=200, mult in 0.5f64..=5.0, period in 5usize..=50,
    ) {
        let m = market();
        let c = &m.candles;
        let cfg = EngineConfig { fill: FillMode::Close, funding: false, ..EngineConfig::default() };
        let seed = registry().unwrap().iter().find(|e| e.spec.name == "ema_crossover").unwrap();
        let mut g = seed.spec.default_genome();
        for (k, v) in [
            ("fast", fast.to_string()), ("slow", slow.to_string()), ("direction", "long".into()),
            ("stop_kind", "atr".into()), ("stop_value", mult.to_string()),
            ("risk_atr_period", period.to_string()),
        ] {
            seed.spec.set(&mut g, k, &v).unwrap();
        }
        let mult = g[seed.spec.index("stop_value").unwrap()];
        let report = run(c, &[], &seed.targets(&g, prepared()), &cfg);
        let general = Metrics::compute(&report, &c.ts, c.bars_per_year());
        let a = atr(&c.high, &c.low, &c.close, period);
        let fm = ema_cross_long(
            &FastData::new(c, &cfg), &ema(&c.close, fast), &ema(&c.close, slow), Some((&a, mult)),
        );
        let rel = |x: f64, y: f64| (x - y).abs() / y.abs().max(1e-12);
        prop_assert_eq!(fm.trades, general.trades);
        prop_assert_eq!(fm.closed_trades, general.closed_trades);
        prop_assert!(rel(fm.final_equity, general.final_equity) < 1e-12);
        prop_assert!(rel(fm.sharpe, general.sharpe) < 1e-9 || (fm.sharpe - general.sharpe).abs() < 1e-12);
        prop_assert!(rel(fm.max_drawdown, general.max_drawdown) < 1e-12 || fm.max_drawdown == general.max_drawdown);
        prop_assert_eq!(fm.consistency, general.consistency);
        prop_assert!(rel(fm.turnover, general.turnover) < 1e-12 || fm.turnover == general.turnover);
    }

    /// Crossover and mutation keep every gene in its spec (ints and choices whole), and the same
    /// RNG seed gives the same children.
    #[test]
    fn variation_keeps_genomes_valid_and_is_deterministic(
        seed in 0usize..12, draw in any::<u64>(), eta in 1.0f64..100.0, p in 0.0f64..=1.0,
    ) {
        let spec = &registry().unwrap()[seed].spec;
        let children = |draw: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(draw);
            let mut a = random_genome(spec, &mut rng);
            let mut b = random_genome(spec, &mut rng);
            crossover(spec, &mut a, &mut b, eta, &mut rng);
            mutate(spec, &mut a, eta, p, &mut rng);
            mutate(spec, &mut b, eta, p, &mut rng);
            (a, b)
        };
        let (a, b) = children(draw);
        prop_assert_eq!(valid(spec, &a), Ok(()));
        prop_assert_eq!(valid(spec, &b), Ok(()));
        let (a2, b2) = children(draw);
        prop_assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), a2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        prop_assert_eq!(b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b2.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        // Repairing a valid genome changes nothing.
        let mut r = a.clone();
        spec.repair(&mut r);
        prop_assert_eq!(r, a);
    }
}
