//! The problems evolved: the seed population over a universe of coins, and Workload B (the
//! 4-gene EMA crossover + ATR stop of BENCHMARKS.md) on one series.

use serde::{Deserialize, Serialize};

use super::{Evaluation, Problem};
use crate::{
    backtest::run,
    bench::{ema_cross_long, FastData},
    execution::EngineConfig,
    fitness::Metrics,
    genome::{GenomeError, SeedSpec},
    indicators::{atr, ema},
    market::{Market, Universe},
    seeds::{Prepared, SeedEntry},
};

/// Time split of the history: training, validation and holdout fractions of the time span.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub train: f64,
    pub validation: f64,
}

/// The three time segments of each coin.
#[derive(Debug)]
pub struct Segments {
    pub train: Vec<Market>,
    pub validation: Vec<Market>,
    /// Start of the holdout (UTC ms); `evolve` never reads data from here on.
    pub holdout_from: i64,
}

impl Split {
    /// Cuts every coin at the same timestamps: training is the first `train` of the universe's
    /// time span, validation the next `validation`, holdout the rest. Coins with no bars in a
    /// segment are left out of it.
    pub fn apply(&self, u: &Universe) -> Segments {
        let first = u.markets.iter().map(|m| m.candles.ts[0]).min().unwrap_or(0);
        let last = u
            .markets
            .iter()
            .map(|m| m.candles.ts[m.candles.len() - 1])
            .max()
            .unwrap_or(0);
        let span = (last - first) as f64;
        let t1 = first + (span * self.train) as i64;
        let t2 = first + (span * (self.train + self.validation)) as i64;
        let cut = |m: &Market, from: i64, to: i64| -> Option<Market> {
            let ts = &m.candles.ts;
            let a = ts.partition_point(|&t| t < from);
            let b = ts.partition_point(|&t| t < to);
            (b > a).then(|| {
                let c = m.candles.slice(a..b);
                Market::new(m.coin.clone(), c, m.funding.clone())
            })
        };
        Segments {
            train: u.markets.iter().filter_map(|m| cut(m, first, t1)).collect(),
            validation: u.markets.iter().filter_map(|m| cut(m, t1, t2)).collect(),
            holdout_from: t2,
        }
    }
}

/// How per-coin metrics become one objective vector.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aggregation {
    /// Weight of the worst coin: an objective is `(1−w)·mean + w·worst` over coins (worst =
    /// lowest Sharpe / consistency, highest drawdown / turnover). Rewards strategies that work
    /// on every coin rather than on one.
    pub worst_coin_weight: f64,
    /// Fewest trades per coin (mean over coins) for a feasible genome; fewer is infeasible,
    /// with violation `min_trades − mean trades`.
    pub min_trades: f64,
}

/// Per-coin metrics aggregated into an evaluation.
pub fn aggregate(per_coin: &[Metrics], agg: &Aggregation) -> Evaluation {
    let n = per_coin.len().max(1) as f64;
    let w = agg.worst_coin_weight;
    let combine = |f: &dyn Fn(&Metrics) -> f64, higher_is_better: bool| {
        let mean = per_coin.iter().map(f).sum::<f64>() / n;
        let worst = per_coin.iter().map(f).fold(
            if higher_is_better {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            },
            |a, b| if higher_is_better { a.min(b) } else { a.max(b) },
        );
        if per_coin.is_empty() {
            0.0
        } else {
            (1.0 - w) * mean + w * worst
        }
    };
    let trades = per_coin.iter().map(|m| m.trades as f64).sum::<f64>() / n;
    Evaluation::new(
        combine(&|m| m.sharpe, true),
        combine(&|m| m.consistency, true),
        combine(&|m| m.max_drawdown, false),
        combine(&|m| m.turnover, false),
        (agg.min_trades - trades).max(0.0),
    )
}

/// The seed population over the training segments of a universe.
pub struct UniverseProblem {
    pub entries: Vec<&'static SeedEntry>,
    pub train: Vec<Prepared>,
    pub validation: Vec<Prepared>,
    pub backtest: EngineConfig,
    pub aggregation: Aggregation,
}

impl UniverseProblem {
    fn score(&self, seed: u16, genes: &[f64], markets: &[Prepared]) -> (Evaluation, Vec<Metrics>) {
        let e = self.entries[seed as usize];
        let per_coin: Vec<Metrics> = markets
            .iter()
            .map(|p| {
                let m = &p.market;
                let r = run(
                    &m.candles,
                    &m.funding_per_bar,
                    &e.targets(genes, p),
                    &self.backtest,
                );
                Metrics::compute(&r, &m.candles.ts, m.candles.bars_per_year())
            })
            .collect();
        (aggregate(&per_coin, &self.aggregation), per_coin)
    }

    /// The evaluation on the validation segment (same aggregation).
    pub fn validate(&self, seed: u16, genes: &[f64]) -> Evaluation {
        self.score(seed, genes, &self.validation).0
    }
}

impl Problem for UniverseProblem {
    fn specs(&self) -> Vec<&SeedSpec> {
        self.entries.iter().map(|e| &e.spec).collect()
    }
    fn evaluate(&self, seed: u16, genes: &[f64]) -> Evaluation {
        self.score(seed, genes, &self.train).0
    }
}

/// Workload B's NSGA-II settings (BENCHMARKS.md): population 256, SBX crossover with
/// probability 0.9 and η 20, polynomial mutation with η 20 and per-gene probability 0.25.
pub fn workload_b_settings() -> super::Settings {
    super::Settings {
        population: 256,
        crossover_prob: 0.9,
        eta_crossover: 20.0,
        eta_mutation: 20.0,
        mutation_prob: 0.25,
    }
}

/// Gene spec of the Workload B genome (`seeds/workload_b.toml`; a benchmark genome, not a seed).
pub const WORKLOAD_B_SPEC: &str = include_str!("../../seeds/workload_b.toml");

/// Workload B: the long-only EMA crossover with a fixed ATR stop, close fills, on one series,
/// every EMA (2..=200) and ATR (5..=50) computed once up front.
pub struct WorkloadB {
    spec: SeedSpec,
    data: FastData,
    emas: Vec<Vec<f64>>,
    atrs: Vec<Vec<f64>>,
}

impl WorkloadB {
    /// Prepares the series.
    ///
    /// # Errors
    /// Only if the built-in gene spec is broken.
    pub fn new(market: &Market, cfg: &EngineConfig) -> Result<Self, GenomeError> {
        let spec = SeedSpec::parse("seeds/workload_b.toml", WORKLOAD_B_SPEC, &[])?;
        let c = &market.candles;
        let max_period = |name: &str| spec.index(name).map_or(1, |i| spec.genes[i].max as usize);
        let p_ema = max_period("fast").max(max_period("slow"));
        let p_atr = max_period("atr_period");
        use rayon::prelude::*;
        let emas = (0..=p_ema)
            .into_par_iter()
            .map(|p| ema(&c.close, p.max(1)))
            .collect();
        let atrs = (0..=p_atr)
            .into_par_iter()
            .map(|p| atr(&c.high, &c.low, &c.close, p.max(1)))
            .collect();
        Ok(Self {
            spec,
            data: FastData::new(c, cfg),
            emas,
            atrs,
        })
    }

    /// The fast-path metrics of one genome.
    pub fn metrics(&self, genes: &[f64]) -> crate::bench::FastMetrics {
        let g = self.spec.view(genes);
        ema_cross_long(
            &self.data,
            &self.emas[g.period("fast")],
            &self.emas[g.period("slow")],
            Some((&self.atrs[g.period("atr_period")], g.float("atr_stop_mult"))),
        )
    }
}

impl Problem for WorkloadB {
    fn specs(&self) -> Vec<&SeedSpec> {
        vec![&self.spec]
    }
    fn evaluate(&self, _seed: u16, genes: &[f64]) -> Evaluation {
        let m = self.metrics(genes);
        Evaluation::new(m.sharpe, m.consistency, m.max_drawdown, m.turnover, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(sharpe: f64, trades: usize) -> Metrics {
        Metrics {
            total_return: 0.0,
            sharpe,
            sortino: 0.0,
            max_drawdown: sharpe.abs() / 10.0,
            consistency: 0.5,
            turnover: trades as f64,
            trades,
            closed_trades: trades,
            final_equity: 1.0,
            win_rate: 0.0,
            profit_factor: 0.0,
            exposure: 0.0,
        }
    }

    #[test]
    fn aggregation_penalizes_the_worst_coin() {
        let agg = Aggregation {
            worst_coin_weight: 0.5,
            min_trades: 10.0,
        };
        let e = aggregate(
            &[metrics(2.0, 20), metrics(1.0, 10), metrics(-0.5, 0)],
            &agg,
        );
        // Sharpe: mean 2.5/3, worst -0.5 -> 0.5*0.8333 + 0.5*(-0.5) = 0.16667.
        assert!((e.sharpe() - (0.5 * 2.5 / 3.0 - 0.25)).abs() < 1e-12);
        // Drawdown (higher is worse): mean 0.35/3, worst 0.2.
        assert!((e.drawdown() - (0.5 * 0.35 / 3.0 + 0.1)).abs() < 1e-12);
        // Mean trades 10 -> feasible.
        assert_eq!(e.violation, 0.0);
        let e = aggregate(&[metrics(2.0, 4), metrics(1.0, 2)], &agg);
        assert_eq!(e.violation, 7.0);
    }
}
