//! The cross-sectional (portfolio) seeds: each turns every coin of a panel into a per-bar
//! score, computed column-wise over that coin's own bars from data up to each bar; at each
//! rebalance the members' scores become signed target weights of one account through the
//! shared construction genes (`seeds/construction.toml`, [`crate::strategy::portfolio`]).
//!
//! | seed | score of a coin at bar *t* |
//! |---|---|
//! | `xs_momentum` | `close[t−skip] / close[t−skip−lookback] − 1`; with `scale = volatility`, over `√Σ ln(close[u]/close[u−1])²` of the window's bars |
//! | `xs_reversal` | `−(close[t] / close[t−lookback] − 1)` |
//! | `xs_low_volatility` | `−std(bar returns over the last lookback bars)` (ddof 1) |
//! | `xs_funding_carry` | `−mean(funding rate per bar over the last lookback bars)` |
//! | `xs_rule_rank` | the rule seed's position after bar *t* (default genes), plus `0.001·tanh(42-bar return)` to order ties |
//!
//! A score is `NaN` until a coin has the bars it needs; a `NaN` score is never held.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::{find, Prepared};
use crate::{
    genome::{parse_risk_genes, Genes, GenomeError, SeedSpec},
    market::{
        membership::{Membership, MembershipRule},
        panel::Panel,
        Market,
    },
    strategy::portfolio::{
        construct, grid_returns, Construction, Direction, Rebalance, Selection, Weighting,
    },
};

/// The score function of a portfolio seed: one score per bar of the coin's own history.
type ScoreFn = fn(&Genes<'_>, &Market) -> Vec<f64>;

/// A portfolio seed: its spec (its own genes, then the construction genes) and its score.
pub struct PortfolioEntry {
    pub spec: SeedSpec,
    score: ScoreFn,
}

impl std::fmt::Debug for PortfolioEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortfolioEntry")
            .field("spec", &self.spec)
            .finish()
    }
}

const CONSTRUCTION_FILE: (&str, &str) = (
    "seeds/construction.toml",
    include_str!("../../seeds/construction.toml"),
);

const SPEC_FILES: [(&str, &str, ScoreFn); 5] = [
    (
        "seeds/xs_momentum.toml",
        include_str!("../../seeds/xs_momentum.toml"),
        momentum,
    ),
    (
        "seeds/xs_reversal.toml",
        include_str!("../../seeds/xs_reversal.toml"),
        reversal,
    ),
    (
        "seeds/xs_low_volatility.toml",
        include_str!("../../seeds/xs_low_volatility.toml"),
        low_volatility,
    ),
    (
        "seeds/xs_funding_carry.toml",
        include_str!("../../seeds/xs_funding_carry.toml"),
        funding_carry,
    ),
    (
        "seeds/xs_rule_rank.toml",
        include_str!("../../seeds/xs_rule_rank.toml"),
        rule_rank,
    ),
];

/// Every portfolio seed, loaded once.
///
/// # Errors
/// [`GenomeError`] naming the file of a malformed spec.
pub fn registry() -> Result<&'static [PortfolioEntry], GenomeError> {
    static REGISTRY: OnceLock<Vec<PortfolioEntry>> = OnceLock::new();
    if let Some(r) = REGISTRY.get() {
        return Ok(r);
    }
    let construction = parse_risk_genes(CONSTRUCTION_FILE.0, CONSTRUCTION_FILE.1)?;
    let loaded = SPEC_FILES
        .iter()
        .map(|&(file, text, score)| {
            let spec = SeedSpec::parse(file, text, &construction)?;
            Ok(PortfolioEntry { spec, score })
        })
        .collect::<Result<Vec<_>, GenomeError>>()?;
    Ok(REGISTRY.get_or_init(|| loaded))
}

/// Whether `name` is a portfolio seed.
pub fn is_portfolio_seed(name: &str) -> bool {
    find_portfolio(name).is_ok()
}

/// The portfolio seed called `name`.
///
/// # Errors
/// A message listing the portfolio seeds when there is none of that name.
pub fn find_portfolio(name: &str) -> Result<&'static PortfolioEntry, String> {
    let reg = registry().map_err(|e| e.to_string())?;
    super::by_name(reg, name, "portfolio seed", |e| &e.spec)
}

/// A portfolio seed with its genes (in bounds).
#[derive(Debug, Clone)]
pub struct PortfolioGenome {
    pub entry: &'static PortfolioEntry,
    pub genes: Vec<f64>,
}

impl PortfolioGenome {
    /// Seed `name` with its defaults, then `genes` (name, value as text).
    ///
    /// # Errors
    /// A message for an unknown seed or a gene that does not exist or is out of bounds.
    pub fn of(name: &str, genes: &[(String, String)]) -> Result<Self, String> {
        let entry = find_portfolio(name)?;
        let mut g = entry.spec.default_genome();
        for (k, v) in genes {
            entry
                .spec
                .set(&mut g, k, v)
                .map_err(|e| format!("genes.{k}: {e}"))?;
        }
        Ok(Self { entry, genes: g })
    }

    /// The genes as `name=value`, for one line of output.
    pub fn describe(&self) -> String {
        self.entry
            .spec
            .genes
            .iter()
            .zip(&self.genes)
            .map(|(g, v)| format!("{}={}", g.name, g.format_short(*v)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The construction genes.
    pub fn construction(&self) -> Construction {
        let g = self.entry.spec.view(&self.genes);
        Construction {
            direction: match g.choice("direction") {
                "long_short" => Direction::LongShort,
                "long_only" => Direction::LongOnly,
                _ => Direction::ShortOnly,
            },
            selection: match g.choice("selection") {
                "quantile" => Selection::Quantile(g.float("quantile")),
                _ => Selection::Count(g.period("count")),
            },
            weighting: match g.choice("weighting") {
                "equal" => Weighting::Equal,
                "inverse_volatility" => Weighting::InverseVolatility,
                _ => Weighting::Score,
            },
            rebalance: g.period("rebalance"),
            gross: g.float("gross"),
            vol_target: g.float("vol_target"),
            vol_lookback: g.period("vol_lookback"),
        }
    }

    /// Every coin's score at each of its own bars.
    pub fn scores(&self, panel: &Panel) -> Vec<Vec<f64>> {
        let g = self.entry.spec.view(&self.genes);
        panel
            .coins
            .par_iter()
            .map(|c| (self.entry.score)(&g, &c.market))
            .collect()
    }

    /// The rebalances over `panel`: at every rebalance bar, the members of `rule` ranked by
    /// their score there and weighted by the construction genes. From bars up to each
    /// rebalance only.
    pub fn schedule(&self, panel: &Panel, rule: &MembershipRule) -> Vec<Rebalance> {
        self.schedule_with(panel, rule, &self.scores(panel))
    }

    /// [`PortfolioGenome::schedule`] with the scores already computed.
    pub fn schedule_with(
        &self,
        panel: &Panel,
        rule: &MembershipRule,
        scores: &[Vec<f64>],
    ) -> Vec<Rebalance> {
        self.schedule_on(panel, &PanelContext::new(panel), rule, scores)
    }

    /// [`PortfolioGenome::schedule`] on a panel whose membership and returns are computed
    /// once (what evolution does for every genome).
    pub fn schedule_on(
        &self,
        panel: &Panel,
        cx: &PanelContext,
        rule: &MembershipRule,
        scores: &[Vec<f64>],
    ) -> Vec<Rebalance> {
        self.schedule_from(panel, cx, rule, scores, 0)
    }

    /// [`PortfolioGenome::schedule_on`] from grid bar `from` on (the bars before are warm-up:
    /// scores and membership see them, nothing is decided there).
    pub fn schedule_from(
        &self,
        panel: &Panel,
        cx: &PanelContext,
        rule: &MembershipRule,
        scores: &[Vec<f64>],
        from: usize,
    ) -> Vec<Rebalance> {
        let c = self.construction();
        (from..panel.len())
            .filter_map(|t| self.rebalance_at(&c, panel, cx, rule, scores, t))
            .collect()
    }

    /// The rebalance at grid bar `t`, if `t` is a rebalance bar: the members of `rule` there,
    /// ranked by their score at `t` and weighted by the construction genes `c`. Reads bars up
    /// to `t` only — what a bar-by-bar driver calls at the newest bar.
    pub fn rebalance_at(
        &self,
        c: &Construction,
        panel: &Panel,
        cx: &PanelContext,
        rule: &MembershipRule,
        scores: &[Vec<f64>],
        t: usize,
    ) -> Option<Rebalance> {
        if !c.is_rebalance(panel.ts[t], cx.interval) {
            return None;
        }
        let members = cx.members(panel, rule, t);
        let now: Vec<f64> = panel
            .coins
            .iter()
            .enumerate()
            .map(|(i, coin)| coin.bar(t).map_or(f64::NAN, |b| scores[i][b]))
            .collect();
        let per_year = crate::market::panel::bars_per_year(cx.interval);
        let weights = construct(c, &members, &now, &cx.returns, t, per_year);
        let mut kept = vec![f64::NAN; now.len()];
        for &i in members.iter() {
            kept[i] = now[i];
        }
        Some(Rebalance {
            t,
            weights,
            scores: kept,
        })
    }
}

/// What every genome's schedule on one panel shares: its membership volumes, its grid returns
/// and its bar interval, computed once — and, for one membership rule (evolution's), the
/// members at each bar, computed the first time a genome asks and then reused (membership does
/// not depend on the genome).
#[derive(Debug, Clone, PartialEq)]
pub struct PanelContext {
    pub membership: Membership,
    pub returns: Vec<Vec<f64>>,
    /// The grid's bar length (ms): the panel's shortest step.
    pub interval: i64,
    /// The rule whose members are kept, and the members per grid bar.
    kept: Option<(MembershipRule, Vec<OnceLock<Vec<usize>>>)>,
}

impl PanelContext {
    /// The members of `rule` at grid bar `t` (kept ones when `rule` is the kept rule).
    pub fn members(
        &self,
        panel: &Panel,
        rule: &MembershipRule,
        t: usize,
    ) -> std::borrow::Cow<'_, [usize]> {
        match &self.kept {
            Some((r, at)) if r == rule => at[t]
                .get_or_init(|| self.membership.members(panel, rule, t))
                .as_slice()
                .into(),
            _ => self.membership.members(panel, rule, t).into(),
        }
    }

    /// The context of `panel`, keeping the members of `rule` as they are asked for.
    pub fn keeping(panel: &Panel, rule: MembershipRule) -> Self {
        let mut cx = Self::new(panel);
        cx.kept = Some((rule, (0..panel.len()).map(|_| OnceLock::new()).collect()));
        cx
    }

    pub fn new(panel: &Panel) -> Self {
        Self {
            kept: None,
            interval: panel.interval_ms(),
            membership: Membership::new(panel),
            returns: grid_returns(panel),
        }
    }
}

fn momentum(g: &Genes<'_>, m: &Market) -> Vec<f64> {
    let (lookback, skip) = (g.period("lookback"), g.float("skip") as usize);
    let scaled = g.choice("scale") == "volatility";
    let c = &m.candles.close;
    // Prefix sums of squared log returns, for the volatility of the window's bars.
    let mut sq = vec![0.0; c.len()];
    if scaled {
        for t in 1..c.len() {
            sq[t] = sq[t - 1] + (c[t] / c[t - 1]).ln().powi(2);
        }
    }
    (0..c.len())
        .map(|t| {
            if t < skip + lookback {
                return f64::NAN;
            }
            let (a, b) = (t - skip - lookback, t - skip);
            let r = c[b] / c[a] - 1.0;
            if !scaled {
                return r;
            }
            // σ·√lookback = √(sum of squared log returns of bars a+1..=b).
            let vol = (sq[b] - sq[a]).max(0.0).sqrt();
            if vol > 0.0 {
                r / vol
            } else {
                f64::NAN
            }
        })
        .collect()
}

fn reversal(g: &Genes<'_>, m: &Market) -> Vec<f64> {
    let lookback = g.period("lookback");
    let c = &m.candles.close;
    (0..c.len())
        .map(|t| {
            if t < lookback {
                f64::NAN
            } else {
                -(c[t] / c[t - lookback] - 1.0)
            }
        })
        .collect()
}

fn low_volatility(g: &Genes<'_>, m: &Market) -> Vec<f64> {
    let n = g.period("lookback");
    let c = &m.candles.close;
    let r: Vec<f64> = (0..c.len())
        .map(|t| if t == 0 { 0.0 } else { c[t] / c[t - 1] - 1.0 })
        .collect();
    // Rolling sums over the last n returns (bars 1..=t), exact enough in f64 for returns.
    let (mut s, mut s2) = (0.0, 0.0);
    let mut out = vec![f64::NAN; c.len()];
    for t in 1..c.len() {
        s += r[t];
        s2 += r[t] * r[t];
        if t > n {
            s -= r[t - n];
            s2 -= r[t - n] * r[t - n];
        }
        if t >= n {
            let k = n as f64;
            let var = ((s2 - s * s / k) / (k - 1.0)).max(0.0);
            out[t] = -var.sqrt();
        }
    }
    out
}

fn funding_carry(g: &Genes<'_>, m: &Market) -> Vec<f64> {
    let n = g.period("lookback");
    let f = &m.funding_per_bar;
    let mut out = vec![f64::NAN; f.len()];
    // A coin without funding data (spot, or before its series starts) has no carry to rank.
    let Some(&first) = m.funding.ts.first() else {
        return out;
    };
    let ts = &m.candles.ts;
    let start = ts.partition_point(|&x| x <= first).saturating_sub(1);
    let mut s = 0.0;
    for t in 0..f.len() {
        s += f[t];
        if t >= n {
            s -= f[t - n];
        }
        if t + 1 >= start + n {
            out[t] = -s / n as f64;
        }
    }
    out
}

fn rule_rank(g: &Genes<'_>, m: &Market) -> Vec<f64> {
    let name = g.choice("rule");
    let Ok(entry) = find(name) else {
        return vec![f64::NAN; m.candles.len()];
    };
    let data = Prepared::new(m.clone());
    let targets = entry.targets(&entry.spec.default_genome(), &data);
    let c = &m.candles.close;
    (0..c.len())
        .map(|t| {
            let p = targets.position[t];
            if t < 42 || !p.is_finite() {
                return f64::NAN;
            }
            p + 0.001 * (c[t] / c[t - 42] - 1.0).tanh()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{Candles, FundingSeries, HOUR_MS};

    fn market(close: &[f64], funding: &[f64]) -> Market {
        let mut c = Candles::default();
        for (i, &x) in close.iter().enumerate() {
            c.push(i as i64 * HOUR_MS, x, x, x, x, 1.0);
        }
        let f = FundingSeries {
            ts: (0..funding.len() as i64).map(|i| i * HOUR_MS).collect(),
            rate: funding.to_vec(),
        };
        Market::new("X", c, f)
    }

    fn genes(name: &str, set: &[(&str, &str)]) -> PortfolioGenome {
        let set: Vec<(String, String)> = set
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PortfolioGenome::of(name, &set).unwrap()
    }

    #[test]
    fn scores_by_hand() {
        let m = market(
            &[10.0, 11.0, 12.1, 9.68, 10.648],
            &[0.001, 0.002, 0.0, -0.003, 0.0],
        );
        let g = genes("xs_momentum", &[("lookback", "2"), ("skip", "1")]);
        let s = momentum(&g.entry.spec.view(&g.genes), &m);
        // t = 3: close[2] / close[0] − 1 = 0.21; t = 4: close[3] / close[1] − 1 = −0.12.
        assert!(s[..3].iter().all(|x| x.is_nan()));
        assert!(
            (s[3] - 0.21).abs() < 1e-12 && (s[4] + 0.12).abs() < 1e-12,
            "{s:?}"
        );
        let g = genes("xs_reversal", &[("lookback", "1")]);
        let s = reversal(&g.entry.spec.view(&g.genes), &m);
        // −(12.1/11 − 1) = −0.1; −(9.68/12.1 − 1) = 0.2; −(10.648/9.68 − 1) = −0.1.
        assert!(
            (s[2] + 0.1).abs() < 1e-12 && (s[3] - 0.2).abs() < 1e-12,
            "{s:?}"
        );
        assert!((s[4] + 0.1).abs() < 1e-12);
        let g = genes("xs_low_volatility", &[("lookback", "5")]);
        let s = low_volatility(&g.entry.spec.view(&g.genes), &market(&[1.0; 7], &[]));
        // Flat prices: volatility 0 once five returns are known (bar 5).
        assert!(s[4].is_nan() && s[5] == 0.0 && s[6] == 0.0, "{s:?}");
        let g = genes("xs_low_volatility", &[("lookback", "5")]);
        let s = low_volatility(&g.entry.spec.view(&g.genes), &m);
        assert!(s.iter().all(|x| x.is_nan()), "five returns need six bars");
        let closes = [10.0, 11.0, 12.1, 9.68, 10.648, 10.648];
        let s = low_volatility(&g.entry.spec.view(&g.genes), &market(&closes, &[]));
        // Returns 0.1, 0.1, −0.2, 0.1, 0: mean 0.02, var (0.0064·3 + 0.0484 + 0.0004)/4.
        let var: f64 = (3.0 * 0.0064 + 0.0484 + 0.0004) / 4.0;
        assert!((s[5] + var.sqrt()).abs() < 1e-12, "{s:?}");
        let g = genes("xs_funding_carry", &[("lookback", "2")]);
        let s = funding_carry(&g.entry.spec.view(&g.genes), &m);
        // −mean of the last two bars' funding: bar 1 −0.0015, bar 2 −0.001, bar 3 0.0015.
        assert!(s[0].is_nan());
        assert!((s[1] + 0.0015).abs() < 1e-15 && (s[2] + 0.001).abs() < 1e-15);
        assert!((s[3] - 0.0015).abs() < 1e-15 && (s[4] - 0.0015).abs() < 1e-15);
        // No funding data: nothing to rank.
        let s = funding_carry(&g.entry.spec.view(&g.genes), &market(&[1.0; 5], &[]));
        assert!(s.iter().all(|x| x.is_nan()), "{s:?}");
    }

    #[test]
    fn every_spec_loads_with_the_construction_genes() {
        let reg = registry().unwrap();
        assert_eq!(reg.len(), 5);
        for e in reg {
            for gene in ["direction", "selection", "weighting", "rebalance", "gross"] {
                assert!(e.spec.index(gene).is_some(), "{}: {gene}", e.spec.name);
            }
        }
        let g = genes("xs_momentum", &[]);
        let c = g.construction();
        assert_eq!(c.direction, Direction::LongShort);
        assert_eq!(c.selection, Selection::Quantile(0.2));
        assert_eq!(c.weighting, Weighting::Equal);
        assert_eq!((c.rebalance, c.gross, c.vol_target), (6, 1.0, 0.0));
        assert!(PortfolioGenome::of("nope", &[])
            .unwrap_err()
            .contains("xs_momentum"));
    }
}
