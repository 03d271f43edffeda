//! Return-permuted markets: the null hypothesis made concrete.
//!
//! A permuted copy keeps every bar's own shape and size — its open, high, low and close relative
//! to the previous close, and its volume — but shuffles the order of the bars (Fisher–Yates, one
//! seeded ChaCha8 stream), then rebuilds prices from the first close. Timestamps, funding and the
//! Fear & Greed index stay where they were. The distribution of moves is the real one; any
//! structure in time (trends, mean reversion, volatility clustering, what funding or sentiment
//! says about the next bars) is destroyed. A strategy search that finds as much "edge" here as
//! on the real data is finding luck.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Candles, Market, Universe};

/// The permuted copy of one market, drawing from `rng`.
pub fn permute_market(m: &Market, rng: &mut ChaCha8Rng) -> Market {
    let c = &m.candles;
    let n = c.len();
    if n < 3 {
        return m.slice(0..n);
    }
    // Bar t ≥ 1 as moves relative to the previous close.
    let rel = |t: usize| {
        let p = c.close[t - 1];
        (c.open[t] / p, c.high[t] / p, c.low[t] / p, c.close[t] / p)
    };
    let mut order: Vec<usize> = (1..n).collect();
    for i in (1..order.len()).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
    let mut out = Candles::with_capacity(n);
    out.push(
        c.ts[0],
        c.open[0],
        c.high[0],
        c.low[0],
        c.close[0],
        c.volume[0],
    );
    let mut prev = c.close[0];
    for (t, &s) in (1..n).zip(&order) {
        let (o, h, l, cl) = rel(s);
        out.push(
            c.ts[t],
            prev * o,
            prev * h,
            prev * l,
            prev * cl,
            c.volume[s],
        );
        prev *= cl;
    }
    let mut p = Market::new(m.coin.clone(), out, m.funding.clone());
    p.fear_greed = m.fear_greed.clone();
    p
}

/// The permuted copy of a universe with RNG seed `seed` (coins in order, one stream).
pub fn permute(u: &Universe, seed: u64) -> Universe {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Universe {
        markets: u
            .markets
            .iter()
            .map(|m| permute_market(m, &mut rng))
            .collect(),
        origin: format!("{} (returns permuted, seed {seed})", u.origin),
        notes: u.notes.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{FundingSeries, HOUR_MS};

    #[test]
    fn bars_are_shuffled_whole_and_prices_rebuilt() {
        let mut c = Candles::with_capacity(4);
        // Closes 100, 110 (+10 %), 99 (−10 %), 99 (flat); each bar's range is known.
        c.push(0, 100.0, 101.0, 99.0, 100.0, 1.0);
        c.push(HOUR_MS, 100.0, 112.0, 100.0, 110.0, 2.0);
        c.push(2 * HOUR_MS, 110.0, 110.0, 98.0, 99.0, 3.0);
        c.push(3 * HOUR_MS, 99.0, 100.0, 98.0, 99.0, 4.0);
        let m = Market::new("T", c, FundingSeries::default());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = permute_market(&m, &mut rng);
        let pc = &p.candles;
        assert_eq!(pc.ts, m.candles.ts);
        assert_eq!(
            (pc.open[0], pc.high[0], pc.low[0], pc.close[0]),
            (100.0, 101.0, 99.0, 100.0)
        );
        // The moves are the same multiset: the last close is 100 × 1.1 × 0.9 × 1.0 whatever
        // the order, and each bar's volume travels with its move.
        let moves: Vec<(f64, f64)> = (1..4)
            .map(|t| (pc.close[t] / pc.close[t - 1], pc.volume[t]))
            .collect();
        let mut sorted: Vec<(i64, i64)> = moves
            .iter()
            .map(|(r, v)| ((r * 1e9).round() as i64, *v as i64))
            .collect();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            vec![(900_000_000, 3), (1_000_000_000, 4), (1_100_000_000, 2)]
        );
        assert!((pc.close[3] - 99.0).abs() < 1e-9);
        // Each bar keeps its shape relative to its previous close.
        for t in 1..4 {
            let v = pc.volume[t] as usize; // volume t+1 marks source bar t
            let src = v - 1;
            let prev = pc.close[t - 1];
            let sp = m.candles.close[src - 1];
            assert!((pc.high[t] / prev - m.candles.high[src] / sp).abs() < 1e-12);
            assert!((pc.low[t] / prev - m.candles.low[src] / sp).abs() < 1e-12);
            assert!((pc.open[t] / prev - m.candles.open[src] / sp).abs() < 1e-12);
        }
        // Seeded: the same seed, the same copy; another seed, another order (most of the time).
        let again = permute_market(&m, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(again.candles, p.candles);
    }

    #[test]
    fn permuting_destroys_autocorrelation_but_keeps_the_distribution() {
        // A market with strong momentum: each return repeats the sign of the last.
        let mut c = Candles::with_capacity(2001);
        let mut px = 100.0;
        c.push(0, px, px, px, px, 1.0);
        let mut sign = 1.0;
        for t in 1..2001 {
            if t % 50 == 0 {
                sign = -sign;
            }
            let next = px * (1.0 + sign * 0.01);
            c.push(
                t as i64 * HOUR_MS,
                px,
                px.max(next),
                px.min(next),
                next,
                1.0,
            );
            px = next;
        }
        let m = Market::new("T", c, FundingSeries::default());
        let p = permute_market(&m, &mut ChaCha8Rng::seed_from_u64(1));
        let rets = |c: &Candles| -> Vec<f64> {
            (1..c.len())
                .map(|t| c.close[t] / c.close[t - 1] - 1.0)
                .collect()
        };
        let lag1 = |r: &[f64]| {
            let same = r.windows(2).filter(|w| w[0] * w[1] > 0.0).count();
            same as f64 / (r.len() - 1) as f64
        };
        let (a, b) = (rets(&m.candles), rets(&p.candles));
        // Same number of up moves; the real series keeps its sign 98 % of the time, the
        // permuted one about half the time.
        let ups = |r: &[f64]| r.iter().filter(|x| **x > 0.0).count();
        assert_eq!(ups(&a), ups(&b));
        assert!(lag1(&a) > 0.97, "{}", lag1(&a));
        assert!((lag1(&b) - 0.5).abs() < 0.05, "{}", lag1(&b));
    }
}
