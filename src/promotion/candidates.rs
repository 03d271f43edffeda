//! What the gauntlet backtests, by kind of run: a single-coin run's candidates on each coin of
//! its segments ([`CoinCandidates`]), a portfolio run's as one account over its universe
//! ([`PortfolioCandidates`]). The stages themselves ([`super::gauntlet`]) see only return
//! series and figures, so every candidate of either kind meets the same rules.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::gauntlet::SegmentRun;
use crate::{
    evolution::{
        portfolio::{PanelSegment, PortfolioProblem, PortfolioRunResult},
        problem::{backtest_targets, Aggregation, Figures, SharpeObjective, UniverseProblem},
        summary::Ranked,
    },
    execution::EngineConfig,
    fitness::{
        self,
        portfolio::sharpe_standard_error,
        regime::{pooled_figures, RegimeFigure},
    },
    genome::program::Program,
    market::{
        panel::Panel,
        permute::{permute_market, permute_panel_from, shuffle_cross_section_from},
        Market,
    },
    seeds::Prepared,
    strategy::{
        portfolio::Rebalance,
        regime::{Regimes, VolatilityParams},
        Targets,
    },
};

/// A run's candidates, backtested for the gauntlet.
pub trait Candidates: Sync {
    /// The holdout's data, loaded once, when the first candidate reaches it.
    type Holdout: Sync;

    /// Bars per year of the run's data.
    fn bars_per_year(&self) -> f64;

    /// The costs the run was evolved and is judged with.
    fn engine(&self) -> &EngineConfig;

    /// Distinct bar times in the training segment.
    fn train_bars(&self) -> usize;

    /// `r` on the training or the validation segment, with its figures per regime.
    fn segment(&self, r: &Ranked, validation: bool) -> SegmentRun;

    /// `r`'s validation Sharpe with its signal flipped (long ↔ short).
    fn flipped_sharpe(&self, r: &Ranked) -> f64;

    /// `r`'s Sharpe on the training or the validation segment with fees and slippage
    /// `cost_multiple` times the run's and every decision acted on `delay` bars late (1 and 0:
    /// the segment's own Sharpe).
    fn stressed_sharpe(
        &self,
        r: &Ranked,
        validation: bool,
        cost_multiple: f64,
        delay: usize,
    ) -> f64;

    /// `r`'s validation Sharpe on return-permuted copy `k` of the validation segment, drawn
    /// from stream `k` of `seed`.
    fn null_sharpe(&self, r: &Ranked, seed: u64, k: usize) -> f64;

    /// Whether its strategies pick among coins, so that the cross-sectional null applies
    /// (portfolio strategies; a single-coin strategy has no cross-section to shuffle).
    const CROSS_SECTION: bool;

    /// `r`'s validation Sharpe on cross-sectionally shuffled copy `k` of the validation
    /// segment ([`crate::market::permute::shuffle_cross_section`]), drawn from stream `k` of
    /// `seed`; asked only when [`Candidates::CROSS_SECTION`].
    fn cross_section_sharpe(&self, r: &Ranked, seed: u64, k: usize) -> f64;

    /// `r` on the holdout; `None` when the holdout holds no bars.
    fn holdout(&self, h: &Self::Holdout, r: &Ranked) -> Option<SegmentRun>;

    /// A trial's training returns (bar times and per-bar returns of the series the gauntlet
    /// judges), for clustering the run's trials.
    fn training_returns(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
    ) -> (Vec<i64>, Vec<f64>);
}

/// Seed of the return-permuted copies' streams (XORed with the run's seed).
const NULL_STREAM: u64 = 0x6e75_6c6c_5eed_0001;

/// Seed of the cross-sectionally shuffled copies' streams (XORed with the run's seed).
const CROSS_STREAM: u64 = 0x7873_6e75_6c6c_0001;

/// The RNG of copy `k` of the nulls seeded by `seed ^ stream`.
fn copy_rng(seed: u64, stream: u64, k: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ stream);
    rng.set_stream(k as u64);
    rng
}

/// A single-coin run: each candidate on every coin of a segment, its Sharpe aggregated over
/// coins as evolution aggregates it (on the plain per-coin Sharpe), its return series the
/// equal-weight mean of its coins' per-bar returns.
pub struct CoinCandidates<'a> {
    pub problem: &'a UniverseProblem,
    /// How volatility regimes are measured for the figures per regime.
    pub regime: VolatilityParams,
}

impl CoinCandidates<'_> {
    /// The aggregation the gauntlet uses: the run's, on the plain Sharpe.
    fn plain(&self) -> Aggregation {
        Aggregation {
            sharpe: SharpeObjective::Plain,
            ..self.problem.aggregation
        }
    }

    /// The validation or the training segment's markets.
    fn markets(&self, validation: bool) -> &[Prepared] {
        if validation {
            &self.problem.validation
        } else {
            &self.problem.train
        }
    }

    fn targets(&self, r: &Ranked, p: &Prepared) -> Targets {
        self.problem
            .targets(r.seed_index, &r.genes, r.program.as_ref(), p)
    }

    /// Backtests targets of `targets_of` on `markets` and makes the segment run, with the
    /// figures per regime when `by_regime`.
    fn run_on(
        &self,
        markets: &[Prepared],
        targets_of: &dyn Fn(&Prepared) -> Targets,
        by_regime: bool,
    ) -> SegmentRun {
        self.run_with(markets, targets_of, by_regime, &self.problem.backtest)
    }

    /// [`Self::run_on`] under the engine `cfg`.
    fn run_with(
        &self,
        markets: &[Prepared],
        targets_of: &dyn Fn(&Prepared) -> Targets,
        by_regime: bool,
        cfg: &EngineConfig,
    ) -> SegmentRun {
        let mut metrics = Vec::with_capacity(markets.len());
        let mut series = Vec::with_capacity(markets.len());
        for p in markets {
            let (report, m) = backtest_targets(&targets_of(p), p, cfg);
            series.push((
                p.market.candles.ts.clone(),
                fitness::returns(&report.equity, report.cash),
            ));
            metrics.push(m);
        }
        let regimes: Vec<RegimeFigure> = if by_regime {
            let r: Vec<_> = markets.iter().map(|p| p.regimes(&self.regime)).collect();
            let parts: Vec<(&Regimes, &[f64])> = r
                .iter()
                .zip(&series)
                .map(|(g, (_, ret))| (g.as_ref(), ret.as_slice()))
                .collect();
            pooled_figures(&parts, self.bars_per_year())
        } else {
            Vec::new()
        };
        let (ts, returns) = fitness::mean_by_time(&series);
        SegmentRun {
            figures: Some(Figures::of(&metrics, &self.plain())),
            sharpe_se: None,
            regimes,
            ts,
            returns,
        }
    }

    fn sharpe_on(&self, markets: &[Prepared], targets_of: &dyn Fn(&Prepared) -> Targets) -> f64 {
        self.run_on(markets, targets_of, false)
            .figures
            .map_or(0.0, |f| f.sharpe)
    }
}

impl Candidates for CoinCandidates<'_> {
    type Holdout = Vec<Prepared>;
    const CROSS_SECTION: bool = false;

    fn engine(&self) -> &EngineConfig {
        &self.problem.backtest
    }

    fn bars_per_year(&self) -> f64 {
        self.problem
            .train
            .first()
            .map_or(365.0 * 24.0, |p| p.market.candles.bars_per_year())
    }

    fn train_bars(&self) -> usize {
        let mut ts: Vec<i64> = self
            .problem
            .train
            .iter()
            .flat_map(|p| p.market.candles.ts.iter().copied())
            .collect();
        ts.sort_unstable();
        ts.dedup();
        ts.len()
    }

    fn segment(&self, r: &Ranked, validation: bool) -> SegmentRun {
        self.run_on(self.markets(validation), &|p| self.targets(r, p), true)
    }

    fn flipped_sharpe(&self, r: &Ranked) -> f64 {
        self.sharpe_on(&self.problem.validation, &|p| {
            self.targets(r, p).flipped(&p.market.candles.close)
        })
    }

    fn stressed_sharpe(
        &self,
        r: &Ranked,
        validation: bool,
        cost_multiple: f64,
        delay: usize,
    ) -> f64 {
        let cfg = self.problem.backtest.costs_scaled(cost_multiple);
        let targets_of = |p: &Prepared| self.targets(r, p).delayed(delay);
        self.run_with(self.markets(validation), &targets_of, false, &cfg)
            .figures
            .map_or(0.0, |f| f.sharpe)
    }

    fn null_sharpe(&self, r: &Ranked, seed: u64, k: usize) -> f64 {
        let mut rng = copy_rng(seed, NULL_STREAM, k);
        let copy: Vec<Prepared> = self
            .problem
            .validation
            .iter()
            .map(|p| Prepared::new(permute_market(&p.market, &mut rng)))
            .collect();
        self.sharpe_on(&copy, &|p| self.targets(r, p))
    }

    fn cross_section_sharpe(&self, _r: &Ranked, _seed: u64, _k: usize) -> f64 {
        unreachable!("single-coin strategies have no cross-sectional null")
    }

    fn holdout(&self, h: &Vec<Prepared>, r: &Ranked) -> Option<SegmentRun> {
        (!h.is_empty()).then(|| self.run_on(h, &|p| self.targets(r, p), true))
    }

    fn training_returns(
        &self,
        seed: u16,
        genes: &[f64],
        program: Option<&Program>,
    ) -> (Vec<i64>, Vec<f64>) {
        let parts: Vec<(Vec<i64>, Vec<f64>)> = self
            .problem
            .train
            .iter()
            .map(|p| {
                let targets = self.problem.targets(seed, genes, program, p);
                let (report, _) = backtest_targets(&targets, p, &self.problem.backtest);
                (
                    p.market.candles.ts.clone(),
                    fitness::returns(&report.equity, report.cash),
                )
            })
            .collect();
        fitness::mean_by_time(&parts)
    }
}

/// A portfolio run: each candidate as one account over the universe, its Sharpe the plain
/// Sharpe of the account's per-bar equity returns (whatever the run's Sharpe objective). The
/// validation segment's copies keep its warm-up bars as they are and change its own bars only:
/// the return-permuted ones shuffle its grid bars together
/// ([`crate::market::permute::permute_panel_from`]: correlation kept, time structure lost), the
/// cross-sectional ones deal each bar's moves among the coins.
pub struct PortfolioCandidates<'a> {
    pub problem: &'a PortfolioProblem,
}

impl PortfolioCandidates<'_> {
    fn run_on(&self, r: &PortfolioRunResult, seg: &PanelSegment) -> SegmentRun {
        let figures = self.problem.figures_of(r, seg, SharpeObjective::Plain);
        let bars = r.report.equity.len();
        SegmentRun {
            figures: Some(figures),
            sharpe_se: Some(sharpe_standard_error(
                figures.sharpe,
                bars,
                seg.panel.bars_per_year(),
            )),
            regimes: Vec::new(),
            ts: seg.ts().to_vec(),
            returns: fitness::returns(&r.report.equity, r.report.cash),
        }
    }

    /// The validation or the training segment.
    fn seg(&self, validation: bool) -> &PanelSegment {
        if validation {
            &self.problem.validation
        } else {
            &self.problem.train
        }
    }

    fn sharpe(&self, r: &Ranked, seg: &PanelSegment) -> f64 {
        self.problem
            .backtest(r.seed_index, &r.genes, seg)
            .figures
            .sharpe
    }

    /// The validation segment with its coins replaced by `markets` (same coins, same bar
    /// times): the same grid, warm-up and doubted bars.
    fn copy_of_validation(&self, markets: Vec<Market>) -> PanelSegment {
        let v = &self.problem.validation;
        let mut panel = Panel::new(markets);
        for (c, o) in panel.coins.iter_mut().zip(&v.panel.coins) {
            c.doubted.clone_from(&o.doubted);
        }
        PanelSegment::new(panel, v.start, self.problem.membership)
    }
}

impl Candidates for PortfolioCandidates<'_> {
    type Holdout = PanelSegment;
    const CROSS_SECTION: bool = true;

    fn engine(&self) -> &EngineConfig {
        &self.problem.backtest
    }

    fn bars_per_year(&self) -> f64 {
        self.problem.train.panel.bars_per_year()
    }

    fn train_bars(&self) -> usize {
        self.problem.train.ts().len()
    }

    fn segment(&self, r: &Ranked, validation: bool) -> SegmentRun {
        let seg = self.seg(validation);
        self.run_on(&self.problem.backtest(r.seed_index, &r.genes, seg), seg)
    }

    fn flipped_sharpe(&self, r: &Ranked) -> f64 {
        let seg = &self.problem.validation;
        let mut schedule = self.problem.schedule(r.seed_index, &r.genes, seg);
        for reb in &mut schedule {
            for w in &mut reb.weights {
                *w = -*w;
            }
        }
        self.problem.book(schedule, seg).figures.sharpe
    }

    fn stressed_sharpe(
        &self,
        r: &Ranked,
        validation: bool,
        cost_multiple: f64,
        delay: usize,
    ) -> f64 {
        let seg = self.seg(validation);
        let n = seg.panel.len();
        let schedule: Vec<Rebalance> = self
            .problem
            .schedule(r.seed_index, &r.genes, seg)
            .into_iter()
            .filter_map(|mut reb| {
                reb.t += delay;
                (reb.t < n).then_some(reb)
            })
            .collect();
        let cfg = self.problem.backtest.costs_scaled(cost_multiple);
        self.problem.book_with(schedule, seg, &cfg).figures.sharpe
    }

    fn null_sharpe(&self, r: &Ranked, seed: u64, k: usize) -> f64 {
        let v = &self.problem.validation;
        let mut rng = copy_rng(seed, NULL_STREAM, k);
        let markets = permute_panel_from(&v.panel, v.start, &mut rng);
        self.sharpe(r, &self.copy_of_validation(markets))
    }

    fn cross_section_sharpe(&self, r: &Ranked, seed: u64, k: usize) -> f64 {
        let v = &self.problem.validation;
        let mut rng = copy_rng(seed, CROSS_STREAM, k);
        let markets = shuffle_cross_section_from(&v.panel, v.start, &mut rng);
        self.sharpe(r, &self.copy_of_validation(markets))
    }

    fn holdout(&self, h: &PanelSegment, r: &Ranked) -> Option<SegmentRun> {
        (h.start < h.panel.len())
            .then(|| self.run_on(&self.problem.backtest(r.seed_index, &r.genes, h), h))
    }

    fn training_returns(
        &self,
        seed: u16,
        genes: &[f64],
        _program: Option<&Program>,
    ) -> (Vec<i64>, Vec<f64>) {
        let t = &self.problem.train;
        let r = self.problem.backtest(seed, genes, t);
        (
            t.ts().to_vec(),
            fitness::returns(&r.report.equity, r.report.cash),
        )
    }
}
