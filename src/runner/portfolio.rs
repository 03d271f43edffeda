//! A portfolio strategy bar by bar: at each new grid bar, the genome's rebalance there decided
//! from the bars up to it alone, then the portfolio book stepped by the backtest's own
//! [`Stepper`]. Over stored bars it books exactly what `backtest --portfolio` books (the
//! runner test checks every portfolio seed), which is what shows a portfolio seed looks at no
//! bar after the one it decides on.

use crate::{
    backtest::portfolio::{PortfolioReport, Stepper},
    execution::{portfolio::Limits, EngineConfig},
    market::{membership::MembershipRule, panel::Panel},
    seeds::portfolio::{PanelContext, PortfolioGenome},
    strategy::portfolio::{Construction, Rebalance},
};

/// One portfolio genome traded bar by bar over a panel's coins.
#[derive(Debug, Clone)]
pub struct PortfolioRunner {
    genome: PortfolioGenome,
    construction: Construction,
    rule: MembershipRule,
    limits: Limits,
    stepper: Stepper,
    /// The grid's bar length (ms), from the panel it was made for.
    interval: i64,
    /// The next grid bar to step.
    next: usize,
}

impl PortfolioRunner {
    /// A flat book of `cfg.cash` over `panel`'s coins.
    pub fn new(
        genome: PortfolioGenome,
        rule: MembershipRule,
        limits: Limits,
        panel: &Panel,
        cfg: &EngineConfig,
    ) -> Self {
        Self {
            construction: genome.construction(),
            genome,
            rule,
            limits,
            stepper: Stepper::new(panel, cfg),
            interval: panel.interval_ms(),
            next: 0,
        }
    }

    /// The rebalance at grid bar `t` of `panel`, decided from the panel cut after `t` (every
    /// coin's bars up to `t`; `interval` is the grid's bar length, a property of the data);
    /// `None` when `t` is not a rebalance bar. Weights and scores are per coin of `panel`.
    pub fn decide(&self, panel: &Panel, t: usize, interval: i64) -> Option<Rebalance> {
        // Whether `t` is a rebalance bar depends on its time alone: no need to cut the panel
        // on the bars between rebalances.
        if !self.construction.is_rebalance(panel.ts[t], interval) {
            return None;
        }
        let seen = panel.between(panel.ts[0], panel.ts[t] + 1);
        let mut cx = PanelContext::new(&seen);
        cx.interval = interval;
        let scores = self.genome.scores(&seen);
        let r = self.genome.rebalance_at(
            &self.construction,
            &seen,
            &cx,
            &self.rule,
            &scores,
            seen.len() - 1,
        )?;
        // The cut panel holds the coins listed by `t`, in the same order: map them back.
        let (mut weights, mut kept) = (
            vec![0.0; panel.coins.len()],
            vec![f64::NAN; panel.coins.len()],
        );
        let mut j = 0;
        for (i, c) in panel.coins.iter().enumerate() {
            if seen
                .coins
                .get(j)
                .is_some_and(|s| s.market.coin == c.market.coin)
            {
                weights[i] = r.weights[j];
                kept[i] = r.scores[j];
                j += 1;
            }
        }
        Some(Rebalance {
            t,
            weights,
            scores: kept,
        })
    }

    /// Steps the next grid bar of `panel` (the stored bars): decides at its close from the bars
    /// up to it, then books it. Returns the bar and the equity after it, or `None` when every
    /// bar is stepped.
    pub fn step(&mut self, panel: &Panel) -> Option<(usize, f64)> {
        let t = self.next;
        if t >= panel.len() {
            return None;
        }
        let decision = self.decide(panel, t, self.interval);
        let equity = self.stepper.bar(panel, t, decision.as_ref(), &self.limits);
        self.next += 1;
        Some((t, equity))
    }

    /// What was booked.
    pub fn finish(self) -> PortfolioReport {
        self.stepper.finish()
    }
}
