//! Perturbed worlds (`evolution.worlds`): a genome's fitness taken not from the one history that
//! happened but across M perturbed copies of its training data as well, so that evolution
//! prefers what survives worse costs, a slower hand and another path of the same market.
//!
//! World `w` (drawn from stream `w` of the run's seed, once per run, so scores are cached, exact
//! on resume and independent of threads): fees and slippage scaled by a factor drawn from
//! [0.5, 2.5]; every decision acted on one bar late; each coin's bars resampled by a stationary
//! block bootstrap (Politis & Romano 1994: blocks of consecutive bars with geometric lengths of
//! mean `block`, each bar keeping its moves relative to the previous close); its funding, bar by
//! bar, replaced by a copy of its own history shuffled in blocks of `block` bars. Each objective is
//! then the `quantile` across the real world and the M perturbed ones, on the side of doubt: the
//! `quantile` of what is better higher (Sharpe, consistency), `1 − quantile` of what is better
//! lower (drawdown, turnover).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Evaluation;
use crate::{
    market::{Candles, Market},
    seeds::Prepared,
};

/// Most perturbed worlds per genome.
pub const MAX_WORLDS: usize = 64;

/// Seed of the worlds' streams (XORed with the run's seed).
const WORLD_STREAM: u64 = 0x776f_726c_6473_0001;

/// How many worlds, which quantile of them, and the bootstrap's mean block length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorldSpec {
    /// Perturbed worlds besides the real one (0: the point estimate, as without worlds).
    pub count: usize,
    /// The quantile across worlds the objectives take (0.25: a bad world of four).
    pub quantile: f64,
    /// Mean length, in bars, of the bootstrap's blocks and the funding shuffle's blocks.
    pub block: f64,
}

impl WorldSpec {
    /// No perturbed worlds.
    pub const NONE: Self = Self {
        count: 0,
        quantile: 0.25,
        block: 24.0,
    };
}

impl Default for WorldSpec {
    fn default() -> Self {
        Self::NONE
    }
}

/// One perturbed world: its training markets and its cost multiple.
pub struct World {
    pub markets: Vec<Prepared>,
    /// The multiple of the run's fees and slippage.
    pub cost: f64,
}

/// The bars its decisions are acted on late in every perturbed world.
pub const DELAY: usize = 1;

/// The perturbed worlds of a run's training markets `train` (see the module documentation).
pub fn build(train: &[Prepared], spec: &WorldSpec, seed: u64) -> Vec<World> {
    (0..spec.count)
        .map(|w| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ WORLD_STREAM);
            rng.set_stream(w as u64);
            let cost = rng.gen_range(0.5..=2.5);
            let markets = train
                .iter()
                .map(|p| Prepared::new(perturbed(&p.market, spec.block, &mut rng)))
                .collect();
            World { markets, cost }
        })
        .collect()
}

/// One coin's market resampled by the stationary block bootstrap, its funding block-shuffled.
fn perturbed(m: &Market, block: f64, rng: &mut ChaCha8Rng) -> Market {
    let order = stationary_bootstrap(m.candles.len(), block, rng);
    Market {
        coin: m.coin.clone(),
        candles: rebuilt(&m.candles, &order),
        funding: m.funding.clone(),
        funding_per_bar: block_shuffled(&m.funding_per_bar, block.round().max(1.0) as usize, rng),
        fear_greed: m.fear_greed.clone(),
    }
}

/// The source bar of each bar `1..n` of a resample of `n` bars (bar 0 stays): blocks of
/// consecutive bars (wrapping past the last to bar 1) with a new block starting at each bar with
/// probability `1 / block`, at a bar drawn uniformly.
pub fn stationary_bootstrap(n: usize, block: f64, rng: &mut ChaCha8Rng) -> Vec<usize> {
    if n < 2 {
        return Vec::new();
    }
    let p_new = 1.0 / block.max(1.0);
    let mut out = Vec::with_capacity(n - 1);
    let mut s = rng.gen_range(1..n);
    for _ in 1..n {
        out.push(s);
        s = if rng.gen::<f64>() < p_new {
            rng.gen_range(1..n)
        } else if s + 1 < n {
            s + 1
        } else {
            1
        };
    }
    out
}

/// Candles whose bar `t ≥ 1` makes source bar `order[t − 1]`'s moves relative to its previous
/// close, from the previous rebuilt close; times, bar 0 and the first price level kept. (The
/// permuted copies' [`from_moves`](crate::market::permute::from_moves) does the same with
/// another order of operations; the worlds keep theirs, so their figures stay as measured.)
fn rebuilt(c: &Candles, order: &[usize]) -> Candles {
    let n = c.len();
    let mut out = Candles::with_capacity(n);
    if n == 0 {
        return out;
    }
    out.push(
        c.ts[0],
        c.open[0],
        c.high[0],
        c.low[0],
        c.close[0],
        c.volume[0],
    );
    let mut prev = c.close[0];
    for (t, &s) in (1..n).zip(order) {
        let base = c.close[s - 1];
        let close = prev * c.close[s] / base;
        out.push(
            c.ts[t],
            prev * c.open[s] / base,
            prev * c.high[s] / base,
            prev * c.low[s] / base,
            close,
            c.volume[s],
        );
        prev = close;
    }
    out
}

/// `x` cut into blocks of `block` values (the last may be shorter), the blocks in a random order.
pub fn block_shuffled(x: &[f64], block: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let mut blocks: Vec<&[f64]> = x.chunks(block.max(1)).collect();
    for i in (1..blocks.len()).rev() {
        let j = rng.gen_range(0..=i);
        blocks.swap(i, j);
    }
    blocks.concat()
}

/// The evaluation across `worlds` (the real one first) at `quantile`: each objective the
/// `1 − quantile` quantile of its minimization values (the `quantile` of a maximized figure);
/// the real world's constraint violation.
pub fn combine(worlds: &[Evaluation], quantile: f64) -> Evaluation {
    let Some(real) = worlds.first() else {
        return Evaluation::new(0.0, 0.0, 0.0, 0.0, 0.0);
    };
    let mut out = *real;
    for (i, o) in out.objectives.iter_mut().enumerate() {
        let v: Vec<f64> = worlds.iter().map(|e| e.objectives[i]).collect();
        *o = crate::fitness::quantile(&v, 1.0 - quantile);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_keeps_blocks_of_consecutive_bars() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 10_000;
        let order = stationary_bootstrap(n, 24.0, &mut rng);
        assert_eq!(order.len(), n - 1);
        assert!(order.iter().all(|&s| (1..n).contains(&s)));
        // New blocks start with probability 1/24: about 9,999 / 24 = 417 of them.
        let starts = order
            .windows(2)
            .filter(|w| w[1] != w[0] + 1 && !(w[0] == n - 1 && w[1] == 1))
            .count();
        assert!((350..480).contains(&starts), "{starts}");
        // A block length of one bar: every bar drawn anew.
        let one = stationary_bootstrap(n, 1.0, &mut rng);
        let runs = one.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(runs < 10, "{runs}");
    }

    #[test]
    fn funding_is_shuffled_in_whole_blocks() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f64> = (0..10).map(f64::from).collect();
        let y = block_shuffled(&x, 4, &mut rng);
        let mut sorted = y.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted, x);
        // Blocks [0..4), [4..8), [8, 9] each kept in order.
        for b in [
            vec![0.0, 1.0, 2.0, 3.0],
            vec![4.0, 5.0, 6.0, 7.0],
            vec![8.0, 9.0],
        ] {
            assert!(y.windows(b.len()).any(|w| w == b.as_slice()), "{y:?}");
        }
    }

    #[test]
    fn objectives_take_the_doubtful_side_of_the_worlds() {
        // Sharpe 2, 1, 0, −1, 3 across five worlds (real first); drawdown 0.1 … 0.5.
        let e = |s: f64, dd: f64| Evaluation::new(s, 0.5, dd, 10.0, 0.0);
        let worlds = [
            e(2.0, 0.1),
            e(1.0, 0.2),
            e(0.0, 0.3),
            e(-1.0, 0.4),
            e(3.0, 0.5),
        ];
        let c = combine(&worlds, 0.25);
        // The 0.25 quantile of the Sharpes (−1, 0, 1, 2, 3): position 1 → 0; of drawdown the
        // 0.75 quantile: 0.4.
        assert_eq!(c.sharpe(), 0.0);
        assert!((c.objectives[2] - 0.4).abs() < 1e-12);
        assert_eq!(c.objectives[3], 10.0);
        // The median, and the real world alone.
        assert_eq!(combine(&worlds, 0.5).sharpe(), 1.0);
        assert_eq!(combine(&worlds[..1], 0.25), worlds[0]);
    }
}
