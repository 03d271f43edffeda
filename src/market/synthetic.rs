//! The bundled default market: a seeded, deterministic generator of several correlated coins
//! (hourly candles with volume, hourly funding) with the stylized facts of crypto perps.
//!
//! The market is synthetic. It exists so that `organism` runs on a fresh clone with no network
//! and no data files (real market data may not be committed). Use real data with `--data DIR`.
//!
//! Model, per hour `t`:
//! * a market factor with GARCH(1,1) variance and Student-t shocks (fat tails, volatility
//!   clustering), shared by all coins with weight `sqrt(common_share)`;
//! * an idiosyncratic GARCH/Student-t component per coin with weight `sqrt(1 - common_share)`,
//!   so the correlation between two coins is about `common_share`;
//! * a three-state Markov regime (bull trend, bear trend, range): trends add a drift, the range
//!   regime pulls log price back to an anchor (`range_pull` per hour) and damps volatility;
//! * each coin's returns are scaled to its annualized volatility;
//! * high and low extend the open–close body by half-normal excursions; volume rises with
//!   volatility and the size of the move;
//! * the hourly funding rate is the 0.00125 %/h baseline plus a term that leans with the
//!   trailing three-day return (`funding_trend`; longs pay more in up-trends) plus noise;
//! * optionally, a **planted edge** (`trend_edge` > 0, off by default): each coin's expected
//!   return gets a persistent drift `trend_edge · σ_t · d_t`, where `d_t` is a unit-variance
//!   AR(1) process of mean life `trend_edge_hours` and `σ_t` the bar's volatility. Past returns
//!   then predict the next ones (momentum), so a trend follower has a real, known edge, of
//!   annualized Sharpe up to about `trend_edge · √8760` before costs. A return permutation
//!   ([`super::permute`]) keeps every bar's move but destroys the edge, which makes the pair a
//!   market with a known edge and one without. Its draws come from their own RNG stream, so
//!   the market without an edge is unchanged.
//!
//! * optionally, a **planted cross-sectional factor** (`xs_edge` > 0, off by default): each coin
//!   has a latent score `c_i,t`, a unit AR(1) process of mean life `xs_edge_hours`, and its
//!   expected return gets `xs_edge · σ_t · (c_i,t − mean_j c_j,t)`: across coins the drifts sum
//!   to zero, so only a portfolio that holds the high scores against the low ones earns it.
//!   Scores are latent; their trace is in each coin's past returns (cross-sectional momentum).
//!   [`xs_oracle_sharpe`] measures the factor-sorted long–short portfolio's Sharpe. Its own RNG
//!   stream too.
//!
//! Calibrated against Hyperliquid hourly data (2024-09 → 2025-07); the test
//! `tests/synthetic_market.rs` checks the fit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, StudentT};
use serde::{Deserialize, Serialize};

use super::{Candles, FundingSeries, Market, Universe, HOUR_MS};
use crate::settings::{count, num, range, Invalid};

/// Parameters of the synthetic market (from `[synthetic]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticParams {
    /// RNG seed; the same seed always gives the same market.
    pub seed: u64,
    /// Number of hourly bars per coin.
    pub bars: usize,
    /// Open time of the first bar, UTC milliseconds.
    pub start_ms: i64,
    /// Coin names.
    pub coins: Vec<String>,
    /// Annualized volatility of each coin (same order as `coins`).
    pub annual_vol: Vec<f64>,
    /// Starting price of each coin.
    pub start_price: Vec<f64>,
    /// Share of each coin's variance that comes from the common market factor.
    pub common_share: f64,
    /// Strength of the planted momentum edge: the drift's standard deviation as a fraction of
    /// each bar's volatility (0 = no edge).
    pub trend_edge: f64,
    /// Mean life of the planted drift, in hours.
    pub trend_edge_hours: f64,
    /// Strength of the planted cross-sectional factor: each coin's drift leans with its latent
    /// score less the cross-sectional mean, as a fraction of the bar's volatility (0 = none).
    pub xs_edge: f64,
    /// Mean life of the latent scores, in hours.
    pub xs_edge_hours: f64,
    /// How hard the range regime pulls log price back to its anchor, per hour (0 = not at all:
    /// no mean reversion in ranges).
    pub range_pull: f64,
    /// How much the funding rate leans with the trailing three-day return, per unit of
    /// annualized trend (0 = funding is the baseline plus noise).
    pub funding_trend: f64,
    /// How much the planted factor shows in funding: each coin's hourly rate gets
    /// `−xs_funding · (c_i,t − mean_j c_j,t)` (coins the factor favours have lower funding, as
    /// in a carry trade), so a strategy can observe the latent score; 0 hides it.
    pub xs_funding: f64,
}

/// Coin-bars a synthetic market may have (`synthetic.bars` x coins; six numbers each in memory).
pub const MAX_CELLS: usize = 20_000_000;

impl SyntheticParams {
    /// Checks every key of `[synthetic]`: settings whose market cannot be computed (prices far
    /// from 1, dates outside 2009–2100, a coin twice, more coin-bars than memory holds) are
    /// refused.
    ///
    /// # Errors
    /// [`Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), Invalid> {
        range("synthetic.common_share", self.common_share, 0.0, 0.99)?;
        range("synthetic.trend_edge", self.trend_edge, 0.0, 1.0)?;
        range("synthetic.xs_edge", self.xs_edge, 0.0, 1.0)?;
        range("synthetic.range_pull", self.range_pull, 0.0, 0.1)?;
        range("synthetic.funding_trend", self.funding_trend, 0.0, 0.001)?;
        range("synthetic.xs_funding", self.xs_funding, 0.0, 0.001)?;
        range("synthetic.xs_edge_hours", self.xs_edge_hours, 1.0, 1e6)?;
        range(
            "synthetic.trend_edge_hours",
            self.trend_edge_hours,
            1.0,
            1e6,
        )?;
        count("synthetic.bars", self.bars, 100, 10_000_000, "")?;
        // A coin name becomes part of a file name (`data generate`).
        super::types::coin_list(&self.coins).map_err(|m| Invalid::new("synthetic.coins", m))?;
        // Every coin's bars are held in memory at once.
        let cells = self.bars.saturating_mul(self.coins.len());
        if cells > MAX_CELLS {
            return Err(Invalid::new(
                "synthetic.bars",
                format!(
                    "{} bars x {} coins = {cells} coin-bars is over the limit of {MAX_CELLS} \
                     (about 1 GB of candles in memory); use fewer bars or coins",
                    self.bars,
                    self.coins.len()
                ),
            ));
        }
        let span = (self.bars as i64).saturating_mul(HOUR_MS);
        let first = super::csv::FIRST_MS;
        if self.start_ms < first || self.start_ms.saturating_add(span) > super::csv::END_MS {
            return Err(Invalid::new(
                "synthetic.start_ms",
                format!(
                    "{} is out of range: the market's {} hourly bars must fall between 2009 and \
                     2100 (start_ms in [{first}, {}]), the span data files may hold",
                    self.start_ms,
                    self.bars,
                    (super::csv::END_MS - span).max(first)
                ),
            ));
        }
        if self.start_ms % 60_000 != 0 {
            return Err(Invalid::new(
                "synthetic.start_ms",
                format!(
                    "{} is not a whole minute: the bars open on the grid data files hold",
                    self.start_ms
                ),
            ));
        }
        for (key, v) in [
            ("synthetic.annual_vol", &self.annual_vol),
            ("synthetic.start_price", &self.start_price),
        ] {
            if v.len() != self.coins.len() {
                return Err(Invalid::new(
                    key,
                    format!(
                        "has {} values but synthetic.coins has {}",
                        v.len(),
                        self.coins.len()
                    ),
                ));
            }
        }
        for (i, v) in self.annual_vol.iter().enumerate() {
            if !(v.is_finite() && *v > 0.0 && *v <= 5.0) {
                return Err(Invalid::new(
                    "synthetic.annual_vol",
                    format!(
                        "{} (coin {}) is out of range: must be in (0, 5]",
                        num(*v),
                        i + 1
                    ),
                ));
            }
        }
        // Prices far from 1 lose every digit a fee or a return needs (1e308 overflows to inf).
        for (i, v) in self.start_price.iter().enumerate() {
            if !(v.is_finite() && *v >= 1e-6 && *v <= 1e9) {
                return Err(Invalid::new(
                    "synthetic.start_price",
                    format!(
                        "{} (coin {}) is out of range: must be in [1e-06, 1e9]",
                        num(*v),
                        i + 1
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Default for SyntheticParams {
    fn default() -> Self {
        Self {
            seed: 7,
            bars: 17_520,
            start_ms: 1_704_067_200_000,
            coins: ["BTC", "ETH", "SOL", "DOGE"].map(String::from).to_vec(),
            annual_vol: vec![0.50, 0.72, 0.90, 1.05],
            start_price: vec![42_000.0, 2_300.0, 100.0, 0.09],
            common_share: 0.77,
            trend_edge: 0.0,
            trend_edge_hours: 48.0,
            xs_edge: 0.0,
            xs_edge_hours: 336.0,
            range_pull: 0.004,
            funding_trend: 0.000014,
            xs_funding: 0.0,
        }
    }
}

/// Seed of the planted trend edge's stream (XORed with the market's seed).
const EDGE_STREAM: u64 = 0xed6e_5eed;

/// Seed of the cross-sectional factor's stream (XORed with the market's seed).
const XS_STREAM: u64 = 0x0078_5f65_6467_6531;

/// The latent scores of the planted cross-sectional factor, per coin in `p.coins` order, per
/// bar: unit AR(1) processes of mean life `xs_edge_hours`, from their own stream.
fn xs_scores(p: &SyntheticParams) -> Vec<Vec<f64>> {
    if p.xs_edge <= 0.0 {
        return vec![Vec::new(); p.coins.len()];
    }
    ar1_states(p.seed ^ XS_STREAM, p.coins.len(), p.bars, p.xs_edge_hours)
}

/// The planted cross-sectional factor's latent scores (sorted by coin name, as [`generate`]
/// returns the coins), one per bar; empty when `xs_edge` is 0. For checking the factor (an
/// oracle), never for strategies.
pub fn planted_factor(p: &SyntheticParams) -> Vec<(String, Vec<f64>)> {
    by_name(p, xs_scores(p))
}

/// The annualized Sharpe, before costs, of the factor-sorted long–short portfolio on `u` (the
/// market of `p`): before each bar, long the fifth of the coins with the highest latent score and
/// short the fifth with the lowest (at least one each), equal weights, gross 1, held for the
/// bar. `None` without a planted factor or with fewer than two coins.
pub fn xs_oracle_sharpe(p: &SyntheticParams, u: &Universe) -> Option<f64> {
    let f = planted_factor(p);
    let k = f.len();
    if p.xs_edge <= 0.0 || k < 2 {
        return None;
    }
    let side = (k / 5).max(1);
    let n = p.bars;
    let mut r = Vec::with_capacity(n);
    let mut order: Vec<usize> = (0..k).collect();
    for t in 0..n {
        order.sort_by(|&a, &b| f[b].1[t].total_cmp(&f[a].1[t]).then(a.cmp(&b)));
        let ret = |i: usize| {
            let c = &u.markets[i].candles;
            c.close[t] / c.open[t] - 1.0
        };
        let long: f64 = order[..side].iter().map(|&i| ret(i)).sum::<f64>() / side as f64;
        let short: f64 = order[k - side..].iter().map(|&i| ret(i)).sum::<f64>() / side as f64;
        r.push((long - short) / 2.0);
    }
    // mean / std (ddof 1) · √8760, as fitness::sharpe defines it (market cannot import it).
    let m = r.iter().sum::<f64>() / n as f64;
    let var = r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n.max(2) - 1) as f64;
    Some(if var > 0.0 {
        m / var.sqrt() * 8760f64.sqrt()
    } else {
        0.0
    })
}

/// GARCH(1,1) with unit unconditional variance and Student-t shocks of unit variance.
struct Garch {
    alpha: f64,
    beta: f64,
    h: f64,
    prev: f64,
    t: StudentT<f64>,
    t_scale: f64,
}

impl Garch {
    fn new(alpha: f64, beta: f64, nu: f64) -> Self {
        Self {
            alpha,
            beta,
            h: 1.0,
            prev: 0.0,
            // nu > 2 is a constant here, so the constructor cannot fail.
            t: StudentT::new(nu).unwrap_or_else(|_| unreachable!("nu > 2")),
            t_scale: ((nu - 2.0) / nu).sqrt(),
        }
    }

    fn step(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        self.h = (1.0 - self.alpha - self.beta)
            + self.alpha * self.prev * self.prev
            + self.beta * self.h;
        let z = self.t.sample(rng) * self.t_scale;
        self.prev = self.h.sqrt() * z;
        self.prev
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Regime {
    Bull,
    Bear,
    Range,
}

/// The planted edge's unit AR(1) state `d_t` of every coin (sorted by coin name, as
/// [`generate`] returns them), one value per bar: the drift of bar `t` is
/// `trend_edge · σ_t · d_t`. Empty series when `trend_edge` is 0. For checking the edge (an
/// oracle that knows `d_t`), never for strategies.
pub fn planted_signal(p: &SyntheticParams) -> Vec<(String, Vec<f64>)> {
    by_name(p, trend_states(p))
}

/// The planted trend edge's states, per coin in `p.coins` order (empty when it is off).
fn trend_states(p: &SyntheticParams) -> Vec<Vec<f64>> {
    if p.trend_edge <= 0.0 {
        return vec![Vec::new(); p.coins.len()];
    }
    ar1_states(
        p.seed ^ EDGE_STREAM,
        p.coins.len(),
        p.bars,
        p.trend_edge_hours,
    )
}

/// `k` unit-variance AR(1) processes of mean life `hours` over `bars` bars, from their own RNG
/// stream `seed`: `k` stationary starting draws, then one draw per coin per bar, coin by coin.
/// The planted trend edge and the planted cross-sectional factor both are such processes.
fn ar1_states(seed: u64, k: usize, bars: usize, hours: f64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let phi = (-1.0 / hours.max(1.0)).exp();
    let eta = (1.0 - phi * phi).sqrt();
    let mut x: Vec<f64> = (0..k)
        .map(|_| rng.sample::<f64, _>(StandardNormal))
        .collect();
    let mut out = vec![Vec::with_capacity(bars); k];
    for _ in 0..bars {
        for i in 0..k {
            let z: f64 = rng.sample(StandardNormal);
            x[i] = phi * x[i] + eta * z;
            out[i].push(x[i]);
        }
    }
    out
}

/// Per-coin series (in `p.coins` order) paired with their coin and sorted by coin name, as
/// [`generate`] returns the coins.
fn by_name(p: &SyntheticParams, series: Vec<Vec<f64>>) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = p.coins.iter().cloned().zip(series).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The `trend_edge` whose planted signal gives a long-or-flat oracle (long when `d_t > 0`,
/// before costs) the annualized Sharpe `sharpe` on hourly bars. With returns
/// `σ_t·(e·d_t + ε_t)`, the oracle earns `e·φ(0)` per unit of volatility with variance
/// `1/2 + e²·(1/2 − 1/(2π))`, so its per-bar Sharpe is
/// `κ · (e/√(2π)) / √(1/2 + e²(1/2 − 1/(2π)))`, where `κ = E[σ]/√E[σ²]` is what the market's
/// volatility clustering takes off ([`ORACLE_KAPPA`], measured). Solved for `e`.
pub fn trend_edge_for_sharpe(sharpe: f64) -> f64 {
    if sharpe <= 0.0 {
        return 0.0;
    }
    let s = sharpe / 8760f64.sqrt() / ORACLE_KAPPA;
    let a = 1.0 / (2.0 * std::f64::consts::PI);
    // s² (1/2 + e²(1/2 − a)) = a e²  →  e² = s²/2 / (a − s²(1/2 − a))
    let den = a - s * s * (0.5 - a);
    if den <= 0.0 {
        return 1.0;
    }
    (s * s / 2.0 / den).sqrt().min(1.0)
}

/// `E[σ]/√E[σ²]` of the synthetic market's bar volatility (GARCH, regimes, seasonality, the slow
/// factor): how much of the planted edge's Sharpe volatility clustering leaves. Measured with
/// the oracle over 120 coin-years at true Sharpe 0.5 to 5 (ratios 0.95, 0.90, 0.88, 0.87, 0.87 with
/// κ = 1: the larger edges settle at 0.87); `tests/synthetic_market.rs` checks the mapping on
/// other seeds.
pub const ORACLE_KAPPA: f64 = 0.87;

/// Generates the synthetic universe. Deterministic for given parameters.
///
/// # Panics
/// Never for parameters that passed config validation (vectors as long as `coins`).
pub fn generate(p: &SyntheticParams) -> Universe {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let n = p.bars;
    let k = p.coins.len();
    let hours_per_year = 8760.0_f64;
    let mut market = Garch::new(0.10, 0.86, 5.0);
    let mut idio: Vec<Garch> = (0..k).map(|_| Garch::new(0.08, 0.88, 5.0)).collect();
    let mut candles: Vec<Candles> = (0..k).map(|_| Candles::with_capacity(n)).collect();
    let mut funding: Vec<FundingSeries> = (0..k).map(|_| FundingSeries::default()).collect();
    let mut log_p: Vec<f64> = p.start_price.iter().map(|x| x.ln()).collect();
    let mut anchor = log_p.clone();
    let mut trail = vec![0.0_f64; k]; // EMA of hourly log returns (span 72)
    let trail_a = 2.0 / 73.0;
    let sig_h: Vec<f64> = p
        .annual_vol
        .iter()
        .map(|v| v / hours_per_year.sqrt())
        .collect();
    let w_common = p.common_share.sqrt();
    let w_idio = (1.0 - p.common_share).sqrt();
    let mut regime = Regime::Range;
    // Slow log-volatility factor (half-life about ten days) normalized so E[mult^2] = 1.
    let slow_phi: f64 = 1.0 - 1.0 / 240.0;
    let slow_sd = 0.30_f64;
    let slow_eta = slow_sd * (1.0 - slow_phi * slow_phi).sqrt();
    let mut slow = 0.0_f64;
    // Rare jumps in the market factor; the diffusion is scaled down so total variance stays 1.
    let (jump_p, jump_sd) = (0.003_f64, 4.5_f64);
    let diffusion_scale = 1.0 / (1.0 + jump_p * jump_sd * jump_sd).sqrt();
    let base_volume: Vec<f64> = p.start_price.iter().map(|px| 4.0e6 / px).collect();
    // The planted edge: one AR(1) drift per coin with unit stationary variance, from its own
    // stream so the rest of the market does not change with it.
    let edge = trend_states(p);
    // The planted cross-sectional factor: latent scores from their own stream.
    let xs = xs_scores(p);
    for t in 0..n {
        let xs_mean = if p.xs_edge > 0.0 {
            xs.iter().map(|c| c[t]).sum::<f64>() / k as f64
        } else {
            0.0
        };
        // Regime switches: trends last about three weeks, ranges about a month.
        let u: f64 = rng.gen();
        regime = match regime {
            Regime::Bull | Regime::Bear if u < 1.0 / 500.0 => Regime::Range,
            Regime::Range if u < 1.0 / 720.0 => {
                if rng.gen::<bool>() {
                    Regime::Bull
                } else {
                    Regime::Bear
                }
            }
            r => r,
        };
        let (drift_annual, vol_mult) = match regime {
            Regime::Bull => (1.1, 1.1),
            Regime::Bear => (-1.1, 1.25),
            Regime::Range => (0.0, 0.95),
        };
        let eta: f64 = rng.sample(StandardNormal);
        slow = slow_phi * slow + slow_eta * eta;
        let ts = p.start_ms + t as i64 * HOUR_MS;
        // Intraday seasonality: busiest around 15:00 UTC, quietest around 03:00 UTC.
        let hour = ((ts / HOUR_MS) % 24) as f64;
        let season = (1.0 + 0.3 * ((hour - 15.0) / 24.0 * std::f64::consts::TAU).cos())
            / (1.0_f64 + 0.5 * 0.3 * 0.3).sqrt();
        let vol_mult = vol_mult * season * (slow - slow_sd * slow_sd).exp();
        let mut m = market.step(&mut rng) * diffusion_scale;
        if rng.gen::<f64>() < jump_p {
            let j: f64 = rng.sample(StandardNormal);
            m += jump_sd * j;
        }
        for i in 0..k {
            let e = w_common * m + w_idio * idio[i].step(&mut rng) * diffusion_scale;
            let s = sig_h[i] * vol_mult;
            let mut mu = drift_annual * p.annual_vol[i] / hours_per_year;
            if regime == Regime::Range {
                mu -= p.range_pull * (log_p[i] - anchor[i]);
            } else {
                anchor[i] = log_p[i];
            }
            if p.trend_edge > 0.0 {
                mu += p.trend_edge * s * edge[i][t];
            }
            if p.xs_edge > 0.0 {
                mu += p.xs_edge * s * (xs[i][t] - xs_mean);
            }
            let r = mu - 0.5 * s * s + s * e;
            let open = log_p[i].exp();
            log_p[i] += r;
            let close = log_p[i].exp();
            let n1: f64 = rng.sample(StandardNormal);
            let n2: f64 = rng.sample(StandardNormal);
            let ex = 0.55 * s * (e.abs() * 0.5 + 0.6);
            let high = open.max(close) * (ex * n1.abs()).exp();
            let low = open.min(close) * (-ex * n2.abs()).exp();
            let vn: f64 = rng.sample(StandardNormal);
            let volume =
                base_volume[i] * (1.0 + 1.5 * (r.abs() / sig_h[i])) * (0.35 * vn).exp() * vol_mult;
            candles[i].push(ts, open, high, low, close, volume);
            trail[i] += trail_a * (r - trail[i]);
            let fnoise: f64 = rng.sample(StandardNormal);
            let trend_annual = trail[i] * hours_per_year / p.annual_vol[i];
            let mut rate = 0.0000125 + p.funding_trend * trend_annual + 0.000018 * fnoise;
            if p.xs_edge > 0.0 {
                rate -= p.xs_funding * (xs[i][t] - xs_mean);
            }
            let rate = rate.clamp(-0.004, 0.004);
            funding[i].ts.push(ts);
            funding[i].rate.push(rate);
        }
    }
    let mut markets: Vec<Market> = p
        .coins
        .iter()
        .zip(candles)
        .zip(funding)
        .map(|((coin, c), f)| Market::new(coin.clone(), c, f))
        .collect();
    markets.sort_by(|a, b| a.coin.cmp(&b.coin));
    Universe {
        markets,
        origin: format!("synthetic market (seed {}, {} hourly bars)", p.seed, n),
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_market_and_valid_candles() {
        let p = SyntheticParams {
            bars: 500,
            ..SyntheticParams::default()
        };
        let a = generate(&p);
        let b = generate(&p);
        assert_eq!(a, b);
        assert_eq!(a.coins(), vec!["BTC", "DOGE", "ETH", "SOL"]);
        for m in &a.markets {
            assert_eq!(m.candles.len(), 500);
            m.candles.validate().unwrap();
            assert_eq!(m.candles.gaps().gaps, 0);
            assert_eq!(m.funding.ts.len(), 500);
        }
        let c = generate(&SyntheticParams {
            seed: 8,
            ..p.clone()
        });
        assert_ne!(a.markets[0].candles.close, c.markets[0].candles.close);
    }
}
