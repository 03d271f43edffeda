//! Return-permuted markets: the null hypothesis made concrete.
//!
//! A permuted copy keeps every bar's own shape and size — its open, high, low and close relative
//! to the previous close, and its volume — but shuffles the order of the bars (Fisher–Yates, one
//! seeded ChaCha8 stream), then rebuilds prices from the first close. Timestamps, funding and the
//! Fear & Greed index stay where they were. The distribution of moves is the real one; any
//! structure in time (trends, mean reversion, volatility clustering, what funding or sentiment
//! says about the next bars) is destroyed. A strategy search that finds as much "edge" here as
//! on the real data is finding luck.
//!
//! A **cross-sectionally shuffled** copy ([`shuffle_cross_section`]) keeps time and destroys
//! the cross-section instead: at each grid bar, the moves of the coins that trade there (each
//! bar's open, high, low and close relative to the coin's own previous close) are dealt out
//! among those coins in a random order, and every coin's prices are rebuilt from its first
//! close. Each bar's set of moves — so the market's equal-weight move, its trends and its
//! volatility clustering — is the real one; which coin made which move is luck. A rule that
//! only rides the market's move earns on it what it earned on the real data; a rule that picks
//! coins must do better on the real data than on its shuffled copies. Volume, funding and
//! timestamps stay with their coin.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{panel::Panel, Candles, Market, Universe};

/// The permuted copy of one market, drawing from `rng`.
pub fn permute_market(m: &Market, rng: &mut ChaCha8Rng) -> Market {
    let c = &m.candles;
    let n = c.len();
    if n < 3 {
        return m.slice(0..n);
    }
    let mut order: Vec<usize> = (1..n).collect();
    for i in (1..order.len()).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
    let mut p = Market::new(m.coin.clone(), from_moves(c, &order), m.funding.clone());
    p.fear_greed = m.fear_greed.clone();
    p
}

/// Candles whose bar `t ≥ 1` makes source bar `order[t − 1]`'s moves (open, high, low and
/// close relative to its previous close) from the previous rebuilt close, with the source
/// bar's volume; times, bar 0 and with it the price level kept. A permutation of `1..n` makes
/// a return-permuted copy; a resample of it a bootstrapped one.
pub fn from_moves(c: &Candles, order: &[usize]) -> Candles {
    let n = c.len();
    let mut out = Candles::with_capacity(n);
    if n == 0 {
        return out;
    }
    // Bar s ≥ 1 as moves relative to the previous close.
    let rel = |s: usize| {
        let p = c.close[s - 1];
        (c.open[s] / p, c.high[s] / p, c.low[s] / p, c.close[s] / p)
    };
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
    out
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

/// The return-permuted copy of `panel`'s coins with its bars shuffled together
/// ([`permute_panel_from`] from the first bar), drawing from one ChaCha8 stream seeded by
/// `seed`.
pub fn permute_panel(panel: &Panel, seed: u64) -> Vec<Market> {
    permute_panel_from(panel, 0, &mut ChaCha8Rng::seed_from_u64(seed))
}

/// The return-permuted copy of `panel`'s coins from grid bar `from` on, the grid's bars
/// shuffled **together**: one random order of the grid bars `from..`, drawn from `rng`, and
/// every coin takes its own moves in that order (a coin that has no bar at some grid bars skips
/// them), on its own bars from `from` on; the bars before `from` stay as they are and prices
/// go on from them. Each bar's cross-section of moves stays together, so the coins keep their
/// correlation and each its own moves and drift, while any structure in time (what a score
/// computed from the past says about the next bars) is destroyed. Permuting each coin on its
/// own instead would also take away the correlation, and with it most of the risk of a
/// portfolio long some coins against others: a null it would be too easy to lose to.
pub fn permute_panel_from(panel: &Panel, from: usize, rng: &mut ChaCha8Rng) -> Vec<Market> {
    let mut order: Vec<usize> = (from..panel.len()).collect();
    for i in (1..order.len()).rev() {
        let j = rng.gen_range(0..=i);
        order.swap(i, j);
    }
    panel
        .coins
        .iter()
        .map(|c| {
            let k = &c.market.candles;
            // The coin's own bars before `from` (at least its first) are kept.
            let start = panel.ts.get(from).copied().unwrap_or(i64::MAX);
            let keep = k.ts.partition_point(|&t| t < start).max(1).min(k.len());
            // Its moves in the shuffled grid order.
            let moves = order
                .iter()
                .filter_map(|&t| c.bar(t).filter(|&b| b >= keep));
            let mut out = Candles::with_capacity(k.len());
            for b in 0..keep {
                out.push(
                    k.ts[b],
                    k.open[b],
                    k.high[b],
                    k.low[b],
                    k.close[b],
                    k.volume[b],
                );
            }
            let mut prev = k.close[keep - 1];
            for (b, s) in (keep..k.len()).zip(moves) {
                let p = k.close[s - 1];
                out.push(
                    k.ts[b],
                    prev * (k.open[s] / p),
                    prev * (k.high[s] / p),
                    prev * (k.low[s] / p),
                    prev * (k.close[s] / p),
                    k.volume[s],
                );
                prev *= k.close[s] / p;
            }
            let mut m = Market::new(c.market.coin.clone(), out, c.market.funding.clone());
            m.fear_greed = c.market.fear_greed.clone();
            m
        })
        .collect()
}

/// The cross-sectionally shuffled copy of `panel`'s coins (see the module documentation), in
/// panel order, drawing from one ChaCha8 stream seeded by `seed`, bar by bar in grid order. A
/// coin's first bar, and a bar where fewer than two coins trade, are kept as they are.
pub fn shuffle_cross_section(panel: &Panel, seed: u64) -> Vec<Market> {
    shuffle_cross_section_from(panel, 0, &mut ChaCha8Rng::seed_from_u64(seed))
}

/// [`shuffle_cross_section`] of the grid bars from `from` on, drawing from `rng`: the bars
/// before `from` keep their own moves (warm-up), and each coin's prices go on from them.
pub fn shuffle_cross_section_from(panel: &Panel, from: usize, rng: &mut ChaCha8Rng) -> Vec<Market> {
    let coins = &panel.coins;
    // New closes per coin, filled bar by bar; each coin's first bar is its own.
    let mut bars: Vec<Candles> = coins
        .iter()
        .map(|c| {
            let k = &c.market.candles;
            let mut out = Candles::with_capacity(k.len());
            out.push(
                k.ts[0],
                k.open[0],
                k.high[0],
                k.low[0],
                k.close[0],
                k.volume[0],
            );
            out
        })
        .collect();
    let mut movers: Vec<(usize, usize)> = Vec::with_capacity(coins.len());
    for t in 0..panel.len() {
        movers.clear();
        movers.extend(
            coins
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.bar(t).filter(|&b| b > 0).map(|b| (i, b))),
        );
        let mut deal: Vec<usize> = (0..movers.len()).collect();
        if t >= from {
            for i in (1..deal.len()).rev() {
                let j = rng.gen_range(0..=i);
                deal.swap(i, j);
            }
        }
        for (slot, &(i, b)) in movers.iter().enumerate() {
            let (j, bj) = movers[deal[slot]];
            let src = &coins[j].market.candles;
            let p = src.close[bj - 1];
            let own = &coins[i].market.candles;
            let prev = bars[i].close[b - 1];
            bars[i].push(
                own.ts[b],
                prev * (src.open[bj] / p),
                prev * (src.high[bj] / p),
                prev * (src.low[bj] / p),
                prev * (src.close[bj] / p),
                own.volume[b],
            );
        }
    }
    coins
        .iter()
        .zip(bars)
        .map(|(c, k)| {
            let mut m = Market::new(c.market.coin.clone(), k, c.market.funding.clone());
            m.fear_greed = c.market.fear_greed.clone();
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{FundingSeries, HOUR_MS};

    #[test]
    fn a_rebuilt_bar_makes_its_source_bars_moves() {
        let mut c = Candles::with_capacity(4);
        for (t, (o, h, l, cl)) in [
            (100.0, 101.0, 99.0, 100.0),
            (100.0, 112.0, 98.0, 110.0),
            (110.0, 111.0, 95.0, 99.0),
            (99.0, 100.0, 90.0, 99.0),
        ]
        .into_iter()
        .enumerate()
        {
            c.push(t as i64 * 3_600_000, o, h, l, cl, 1.0 + t as f64);
        }
        // Bars 1, 2, 3 made of source bars 2, 1, 1: −10 %, +10 %, +10 %.
        let r = from_moves(&c, &[2, 1, 1]);
        assert_eq!(r.ts, c.ts);
        let close: Vec<f64> = r.close.iter().map(|x| (x * 1e9).round() / 1e9).collect();
        assert_eq!(close, vec![100.0, 90.0, 99.0, 108.9]);
        // Bar 1 from source 2: open 110/110 = 1, high 111/110, low 95/110 of the close 100.
        assert!((r.high[1] - 100.0 * 111.0 / 110.0).abs() < 1e-9);
        assert!((r.low[1] - 100.0 * 95.0 / 110.0).abs() < 1e-9);
        assert_eq!(r.volume[1..], [3.0, 2.0, 2.0]);
    }

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

    /// Three coins by hand: A and B from bar 0, C listed at bar 2; bars 1.. move A +10 %,
    /// B −5 %, C +20 % at its second bar.
    fn three() -> Panel {
        let coin = |name: &str, from: i64, closes: &[f64]| {
            let mut c = Candles::with_capacity(closes.len());
            for (k, &cl) in closes.iter().enumerate() {
                let o = if k == 0 { cl } else { closes[k - 1] };
                c.push(
                    (from + k as i64) * HOUR_MS,
                    o,
                    o.max(cl) * 1.01,
                    o.min(cl) * 0.99,
                    cl,
                    10.0 + k as f64,
                );
            }
            Market::new(name, c, FundingSeries::default())
        };
        Panel::new(vec![
            coin("A", 0, &[100.0, 110.0, 121.0, 133.1]),
            coin("B", 0, &[50.0, 47.5, 45.125, 42.86875]),
            coin("C", 2, &[10.0, 12.0]),
        ])
    }

    #[test]
    fn cross_section_shuffled_keeps_each_bar_s_moves() {
        let p = three();
        let s = shuffle_cross_section(&p, 5);
        for (orig, new) in p.coins.iter().zip(&s) {
            let (o, n) = (&orig.market.candles, &new.candles);
            assert_eq!(o.ts, n.ts, "{}", new.coin);
            assert_eq!(o.volume, n.volume, "volume stays with {}", new.coin);
            assert_eq!((o.close[0], o.open[0]), (n.close[0], n.open[0]));
        }
        // Bar by bar, the coins that moved share out the same moves: {+10 %, −5 %} at bars 1
        // and 2, {+10 %, −5 %, +20 %} at bar 3 (C's first bar, at grid bar 2, is its own).
        let moves = |t: usize| {
            let mut v: Vec<i64> = p
                .coins
                .iter()
                .zip(&s)
                .filter_map(|(c, m)| {
                    let b = c.bar(t).filter(|&b| b > 0)?;
                    Some((m.candles.close[b] / m.candles.close[b - 1] * 1e9).round() as i64)
                })
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(moves(1), vec![950_000_000, 1_100_000_000]);
        assert_eq!(moves(2), vec![950_000_000, 1_100_000_000]);
        assert_eq!(moves(3), vec![950_000_000, 1_100_000_000, 1_200_000_000]);
        // Each bar keeps its shape: the high is 1 % above the larger of open and close.
        for m in &s {
            let k = &m.candles;
            for b in 1..k.len() {
                let top = k.open[b].max(k.close[b]) * 1.01;
                assert!((k.high[b] / top - 1.0).abs() < 1e-12, "{} bar {b}", m.coin);
            }
        }
        // One seed, one copy; across seeds, the deals differ.
        assert_eq!(shuffle_cross_section(&p, 5), s);
        let deals: std::collections::BTreeSet<Vec<i64>> = (0..20)
            .map(|seed| {
                shuffle_cross_section(&p, seed)
                    .iter()
                    .map(|m| (m.candles.close[m.candles.len() - 1] * 1e6).round() as i64)
                    .collect()
            })
            .collect();
        assert!(deals.len() > 1);
    }

    #[test]
    fn warm_up_bars_are_kept_and_the_rest_shuffled() {
        // From grid bar 2: bar 1 keeps A's +10 % and B's −5 %; bars 2 and 3 deal their moves.
        let p = three();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let s = shuffle_cross_section_from(&p, 2, &mut rng);
        let near = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x / y - 1.0).abs() < 1e-12);
        assert!(near(&s[0].candles.close[..2], &[100.0, 110.0]));
        assert!(near(&s[1].candles.close[..2], &[50.0, 47.5]));
        // Over 40 streams, bar 2's moves land on A both ways round.
        let a_moves: std::collections::BTreeSet<i64> = (0..40)
            .map(|k| {
                let mut rng = ChaCha8Rng::seed_from_u64(k);
                let s = shuffle_cross_section_from(&p, 2, &mut rng);
                let c = &s[0].candles.close;
                (c[2] / c[1] * 1e9).round() as i64
            })
            .collect();
        assert_eq!(a_moves, [950_000_000, 1_100_000_000].into());
    }

    #[test]
    fn a_panel_permuted_together_keeps_each_bar_s_cross_section() {
        // A and B over grid bars 0..=3, C from grid bar 2; permuted from grid bar 1.
        let p = three();
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..30 {
            let q = permute_panel_from(&p, 1, &mut ChaCha8Rng::seed_from_u64(seed));
            let mv = |m: &Market, b: usize| {
                (m.candles.close[b] / m.candles.close[b - 1] * 1e9).round() as i64
            };
            // A moves +10 % at every bar and B −5 %: whatever the order, the same.
            for b in 1..4 {
                assert_eq!(mv(&q[0], b), 1_100_000_000);
                assert_eq!(mv(&q[1], b), 950_000_000);
            }
            // C's one move (+20 %) stays with C; its first bar is its own.
            assert_eq!(q[2].candles.close[0], 10.0);
            assert_eq!(mv(&q[2], 1), 1_200_000_000);
            for (a, b) in p.coins.iter().zip(&q) {
                assert_eq!(a.market.candles.ts, b.candles.ts);
                assert_eq!(a.market.candles.close[0], b.candles.close[0]);
            }
            seen.insert(
                q[0].candles
                    .volume
                    .iter()
                    .map(|v| *v as i64)
                    .collect::<Vec<_>>(),
            );
        }
        // The bars' volumes move with them: A's volume order differs between streams.
        assert!(seen.len() > 1);
        // Two coins with moves 1..=5 % and 10..=50 %: bar by bar the pair stays together.
        let coin = |name: &str, step: f64| {
            let mut c = Candles::with_capacity(6);
            let mut close = 100.0;
            for k in 0..6 {
                if k > 0 {
                    close *= 1.0 + step * k as f64;
                }
                c.push(k as i64 * HOUR_MS, close, close, close, close, 1.0);
            }
            Market::new(name, c, FundingSeries::default())
        };
        let two = Panel::new(vec![coin("X", 0.01), coin("Y", 0.10)]);
        let q = permute_panel_from(&two, 2, &mut ChaCha8Rng::seed_from_u64(4));
        let pct = |m: &Market| -> Vec<i64> {
            (1..6)
                .map(|t| ((m.candles.close[t] / m.candles.close[t - 1] - 1.0) * 1e4).round() as i64)
                .collect()
        };
        let (x, y) = (pct(&q[0]), pct(&q[1]));
        assert_eq!(x[0], 100);
        for (a, b) in x.iter().zip(&y) {
            assert_eq!(*b, 10 * a, "{x:?} {y:?}");
        }
        let mut tail = x[1..].to_vec();
        tail.sort_unstable();
        assert_eq!(tail, [200, 300, 400, 500]);
    }

    #[test]
    fn a_planted_factor_does_not_survive_the_shuffle() {
        use crate::market::synthetic::{generate, planted_factor, SyntheticParams};
        let params = SyntheticParams {
            bars: 4_000,
            coins: (1..=12).map(|i| format!("X{i:02}")).collect(),
            annual_vol: vec![0.8; 12],
            start_price: vec![10.0; 12],
            xs_edge: 0.05,
            ..SyntheticParams::default()
        };
        let u = generate(&params);
        let latent = planted_factor(&params);
        let panel = Panel::new(u.markets.clone());
        // The rank correlation, every 24 bars, of the latent scores with the next 24 bars'
        // returns: the factor's information coefficient, on the market and on a shuffled copy.
        let ic = |markets: &[Market]| {
            let (mut sum, mut n) = (0.0, 0);
            for t in (0..params.bars - 24).step_by(24) {
                let score: Vec<f64> = latent.iter().map(|(_, s)| s[t]).collect();
                let fwd: Vec<f64> = markets
                    .iter()
                    .map(|m| m.candles.close[t + 24] / m.candles.close[t] - 1.0)
                    .collect();
                sum += crate::fitness::portfolio::rank_correlation(&score, &fwd).unwrap();
                n += 1;
            }
            sum / n as f64
        };
        let names: Vec<&str> = u.markets.iter().map(|m| m.coin.as_str()).collect();
        let latent_names: Vec<&str> = latent.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, latent_names);
        let real = ic(&u.markets);
        let shuffled: Vec<f64> = (1..=3)
            .map(|seed| ic(&shuffle_cross_section(&panel, seed)))
            .collect();
        assert!(real > 0.2, "{real}");
        for s in &shuffled {
            assert!(s.abs() < 0.05, "{shuffled:?} (market {real})");
        }
        // The market's equal-weight move at every bar is the same on every copy.
        let copy = shuffle_cross_section(&panel, 1);
        for t in 1..params.bars {
            let mean = |ms: &[Market]| {
                let mut r: Vec<f64> = ms
                    .iter()
                    .map(|m| m.candles.close[t] / m.candles.close[t - 1])
                    .collect();
                r.sort_by(f64::total_cmp);
                r.iter().sum::<f64>()
            };
            assert!((mean(&u.markets) - mean(&copy)).abs() < 1e-9, "bar {t}");
        }
    }
}
