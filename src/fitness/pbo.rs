//! The probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation
//! (CSCV; Bailey, Borwein, López de Prado & Zhu, "The probability of backtest overfitting",
//! 2016).
//!
//! The input is a matrix of `T` returns (rows, in time order) of `N` strategy configurations
//! (columns), all over the same bars. The first `T mod S` rows are dropped and the rest is cut
//! into `S` (even) contiguous blocks of `T / S` rows. For each of the `C(S, S/2)` ways to
//! choose half the blocks as the in-sample set (the other half, in order, is out of sample):
//!
//! 1. every column's Sharpe ratio (mean / standard deviation, ddof 1, not annualized) is
//!    computed in sample and out of sample;
//! 2. `n*` is the column with the best in-sample Sharpe (the first on ties);
//! 3. `ω = rank(n*) / (N + 1)`, where `rank` is `n*`'s rank among the out-of-sample Sharpe
//!    ratios, from 1 (worst) to `N` (best), ties sharing their average rank;
//! 4. the logit is `λ = ln(ω / (1 − ω))`: positive when the in-sample winner is above the
//!    out-of-sample median.
//!
//! `PBO` is the share of combinations with `λ ≤ 0`: how often the configuration chosen in sample
//! is no better than the median out of sample. Near 0 the selection carries information; near
//! 0.5 and above it is as good as (or worse than) picking at random. The probability of
//! out-of-sample loss is the share of combinations where `n*`'s out-of-sample Sharpe is below 0.
//! (pypbo's `pbo` computes the same, with the same conventions.)

use serde::Serialize;

/// The result of [`pbo`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pbo {
    /// Share of combinations whose logit is `≤ 0`.
    pub pbo: f64,
    /// Share of combinations where the in-sample best has an out-of-sample Sharpe below 0.
    pub prob_oos_loss: f64,
    /// Number of combinations, `C(S, S/2)`.
    pub combinations: usize,
    /// Strategy configurations (columns).
    pub strategies: usize,
    /// Rows per block.
    pub block_rows: usize,
    /// Median of the logits.
    pub median_logit: f64,
}

/// Sum, sum of squares and count of one column over one block.
#[derive(Clone, Copy, Default)]
struct Acc {
    sum: f64,
    sq: f64,
    n: usize,
}

impl Acc {
    fn add(&mut self, o: &Acc) {
        self.sum += o.sum;
        self.sq += o.sq;
        self.n += o.n;
    }
    /// Mean / std (ddof 1); 0 when the std is 0 or fewer than two rows.
    fn sharpe(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        let mean = self.sum / n;
        let var = (self.sq - n * mean * mean) / (n - 1.0);
        if var > 0.0 {
            mean / var.sqrt()
        } else {
            0.0
        }
    }
}

/// Rank (1 = lowest, ties averaged) of element `i` among `x`.
fn average_rank(x: &[f64], i: usize) -> f64 {
    let v = x[i];
    let below = x.iter().filter(|&&y| y < v).count();
    let equal = x.iter().filter(|&&y| y == v).count();
    below as f64 + (equal as f64 + 1.0) / 2.0
}

/// Most blocks [`pbo`] takes (`C(24, 12)` = 2.7 million combinations).
pub const MAX_BLOCKS: usize = 24;

/// PBO of `columns` (one return series per strategy, all of the same length) cut into `blocks`
/// blocks. `None` when there are fewer than two strategies, `blocks` is odd or outside
/// 2..=[`MAX_BLOCKS`], the
/// columns differ in length, or there are fewer than two rows per block.
pub fn pbo(columns: &[Vec<f64>], blocks: usize) -> Option<Pbo> {
    let n = columns.len();
    if n < 2 || !(2..=MAX_BLOCKS).contains(&blocks) || !blocks.is_multiple_of(2) {
        return None;
    }
    let t = columns[0].len();
    if columns.iter().any(|c| c.len() != t) {
        return None;
    }
    let rows = t / blocks;
    if rows < 2 {
        return None;
    }
    let skip = t % blocks;
    // acc[b][j]: block b of column j.
    let acc: Vec<Vec<Acc>> = (0..blocks)
        .map(|b| {
            columns
                .iter()
                .map(|c| {
                    let mut a = Acc::default();
                    for &x in &c[skip + b * rows..skip + (b + 1) * rows] {
                        a.sum += x;
                        a.sq += x * x;
                        a.n += 1;
                    }
                    a
                })
                .collect()
        })
        .collect();
    let half = blocks / 2;
    let mut logits = Vec::new();
    let mut losses = 0usize;
    let mut is_sr = vec![0.0; n];
    let mut oos_sr = vec![0.0; n];
    // Every subset of `half` blocks, as a bit mask.
    for mask in 0u32..(1u32 << blocks) {
        if mask.count_ones() as usize != half {
            continue;
        }
        for j in 0..n {
            let (mut i, mut o) = (Acc::default(), Acc::default());
            for (b, block) in acc.iter().enumerate() {
                if mask & (1 << b) != 0 {
                    i.add(&block[j]);
                } else {
                    o.add(&block[j]);
                }
            }
            is_sr[j] = i.sharpe();
            oos_sr[j] = o.sharpe();
        }
        let best = (0..n).fold(0, |b, j| if is_sr[j] > is_sr[b] { j } else { b });
        let w = average_rank(&oos_sr, best) / (n as f64 + 1.0);
        logits.push((w / (1.0 - w)).ln());
        if oos_sr[best] < 0.0 {
            losses += 1;
        }
    }
    let combinations = logits.len();
    let overfit = logits.iter().filter(|&&l| l <= 0.0).count();
    let mut sorted = logits.clone();
    sorted.sort_by(f64::total_cmp);
    let median_logit = if combinations % 2 == 1 {
        sorted[combinations / 2]
    } else {
        (sorted[combinations / 2 - 1] + sorted[combinations / 2]) / 2.0
    };
    Some(Pbo {
        pbo: overfit as f64 / combinations as f64,
        prob_oos_loss: losses as f64 / combinations as f64,
        combinations,
        strategies: n,
        block_rows: rows,
        median_logit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_blocks_by_hand() {
        // S = 2: two combinations, {block 0} in sample and {block 1}.
        // Strategy A: block 0 = [1, 3] (mean 2, std √2, SR 1.414), block 1 = [−1, −3] (SR −1.414).
        // Strategy B: block 0 = [0, 1] (mean .5, std .707, SR .707), block 1 = [1, 2] (SR 2.121).
        // Block 0 in sample: A wins (1.414 > .707); out of sample A (−1.414) is below B
        // (2.121): rank 1 of 2, ω = 1/3, λ = ln(1/2) < 0; A loses out of sample.
        // Block 1 in sample: B wins (2.121 > −1.414); out of sample B (.707) is below A
        // (1.414): rank 1, λ < 0; B does not lose (SR .707 > 0).
        // PBO = 2/2 = 1, probability of loss 1/2.
        let a = vec![1.0, 3.0, -1.0, -3.0];
        let b = vec![0.0, 1.0, 1.0, 2.0];
        let r = pbo(&[a, b], 2).unwrap();
        assert_eq!(r.combinations, 2);
        assert_eq!(r.pbo, 1.0);
        assert_eq!(r.prob_oos_loss, 0.5);
        assert!((r.median_logit - (0.5f64).ln()).abs() < 1e-12);
    }

    #[test]
    fn a_consistent_winner_is_not_overfit() {
        // Four blocks of two rows, three strategies. C(4, 2) = 6 combinations. Strategy 0
        // has the best Sharpe in every block, so it wins in sample and ranks 3 of 3 out of
        // sample every time: ω = 3/4, λ = ln 3 > 0, PBO = 0.
        // Over any four rows: best SR 2.5/0.577 = 4.33, mid 0.866, bad −0.866.
        let best = vec![2.0, 3.0, 2.0, 3.0, 2.0, 3.0, 2.0, 3.0];
        let mid = vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let bad = vec![-1.0, 0.0, -1.0, 0.0, -1.0, 0.0, -1.0, 0.0];
        let r = pbo(&[mid, best, bad], 4).unwrap();
        assert_eq!(r.combinations, 6);
        assert_eq!(r.pbo, 0.0);
        assert_eq!(r.prob_oos_loss, 0.0);
        assert!((r.median_logit - 3.0f64.ln()).abs() < 1e-12);
        assert_eq!(r.block_rows, 2);
    }

    #[test]
    fn leading_rows_are_dropped_and_bad_inputs_refused() {
        // 9 rows in 4 blocks: the first row is dropped; a huge first value changes nothing.
        let a = vec![1e9, 2.0, 3.0, 2.0, 3.0, 2.0, 3.0, 2.0, 3.0];
        let b = vec![-1e9, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0];
        let r = pbo(&[a, b], 4).unwrap();
        assert_eq!(r.pbo, 0.0);
        assert!(pbo(&[vec![1.0; 8]], 4).is_none());
        assert!(pbo(&[vec![1.0; 8], vec![1.0; 8]], 3).is_none());
        assert!(pbo(&[vec![1.0; 8], vec![1.0; 7]], 4).is_none());
        assert!(pbo(&[vec![1.0; 7], vec![1.0; 7]], 4).is_none());
    }

    #[test]
    fn ties_share_their_rank() {
        // Identical columns: every Sharpe ties, the first column wins in sample and shares the
        // middle rank (1.5 of 2): ω = 0.5, λ = 0 → counted as overfit.
        let a = vec![1.0, 2.0, 1.0, 3.0];
        let r = pbo(&[a.clone(), a], 2).unwrap();
        assert_eq!(r.pbo, 1.0);
        assert_eq!(average_rank(&[1.0, 2.0, 2.0, 3.0], 1), 2.5);
    }
}
