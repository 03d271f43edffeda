//! The two machine-learning seeds, trained walk-forward without look-ahead: a linear SVC, and
//! PCA followed by a decision tree. All three models are organism's own: the SVC
//! ([`super::svc`]) solves exactly as linfa-svm 0.7 does, bit for bit, many times faster; PCA
//! ([`principal_axes`]) because linfa-reduction 0.7's PCA (a randomized LOBPCG truncated SVD)
//! panics with "NaN values in array" on some feature windows; the tree ([`super::tree`])
//! because linfa-trees 0.7 is not deterministic. All are exact and deterministic.
//!
//! Features at bar `t` use data up to `t` only: log returns over 1, 4 and 24 bars, RSI(14)
//! centred, z-score of the close over 48 bars, ATR(14)/close and MACD(12, 26, 9)
//! histogram/close. A model is refitted every `refit` bars; the fit at bar `t` trains on the
//! samples `i` of the trailing `window` whose label is known by then (`i + horizon <= t`),
//! standardizes features with the mean and standard deviation of those training rows only, and
//! predicts bars `t .. t + refit`. Until the first fit, and whenever a fit fails (for example all
//! labels equal), the seed stays flat. Everything is deterministic.
//!
//! A fit depends only on the seed's fit genes and its training rows `start..end`, never on later
//! bars, so fitted models are kept in a [`ModelCache`] keyed by exactly those: genomes that differ
//! only in other genes share fits, and a runner that recomputes the newest target after each new
//! bar refits only when the walk-forward schedule reaches a new refit bar.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use ndarray::{Array1, Array2};

use super::{svc::LinearSvc, tree::Tree, Key, Prepared, RawBar, Seed};
use crate::{genome::Genes, strategy::Targets};

/// Number of features per bar.
pub const N_FEATURES: usize = 7;

/// The seeds in this module, by name.
pub const SEEDS: [&str; 2] = [SVC_NAME, PCA_TREE_NAME];
const SVC_NAME: &str = "linear_svc_classifier";
const PCA_TREE_NAME: &str = "pca_tree_quantile";
/// Fewest training rows a fit needs.
const MIN_SAMPLES: usize = 100;

/// The feature matrix of a market: one row per bar, defined from `first` on (`first` is the
/// number of rows while none is).
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub rows: Vec<[f64; N_FEATURES]>,
    pub first: usize,
}

impl Features {
    fn compute(d: &Prepared) -> Features {
        let mut f = Features::default();
        f.extend(d);
        f
    }

    /// The rows of `d`'s bars after those held (`d` extends the market they were computed
    /// over: a row reads its bar and the ones before).
    pub(crate) fn extend(&mut self, d: &Prepared) {
        let close = &d.market.candles.close;
        let rsi = d.get(Key::Rsi(14));
        let z = d.get(Key::Zscore(48));
        let atr = d.get(Key::Atr(14));
        let hist = d.get(Key::MacdHist(12, 26, 9));
        let lr = |t: usize, k: usize| {
            if t >= k {
                (close[t] / close[t - k]).ln()
            } else {
                f64::NAN
            }
        };
        let from = self.rows.len();
        self.rows.extend((from..close.len()).map(|t| {
            [
                lr(t, 1),
                lr(t, 4),
                lr(t, 24),
                rsi[t] / 100.0 - 0.5,
                z[t],
                atr[t] / close[t],
                hist[t] / close[t],
            ]
        }));
        if self.first == from {
            self.first += self.rows[from..]
                .iter()
                .position(|r| r.iter().all(|v| v.is_finite()))
                .unwrap_or(self.rows.len() - from);
        }
    }
}

fn features(d: &Prepared) -> std::sync::Arc<Features> {
    d.features
        .get_or_init(|| std::sync::Arc::new(Features::compute(d)))
        .clone()
}

/// Mean and standard deviation of each feature over `rows` (std 1 where it is 0).
fn standardizer(
    f: &Features,
    rows: std::ops::Range<usize>,
) -> ([f64; N_FEATURES], [f64; N_FEATURES]) {
    let n = rows.len() as f64;
    let mut mean = [0.0; N_FEATURES];
    let mut sd = [0.0; N_FEATURES];
    for r in &f.rows[rows.clone()] {
        for j in 0..N_FEATURES {
            mean[j] += r[j] / n;
        }
    }
    for r in &f.rows[rows] {
        for j in 0..N_FEATURES {
            sd[j] += (r[j] - mean[j]).powi(2) / n;
        }
    }
    for s in &mut sd {
        *s = if *s > 0.0 { s.sqrt() } else { 1.0 };
    }
    (mean, sd)
}

fn matrix(
    f: &Features,
    rows: std::ops::Range<usize>,
    mean: &[f64; N_FEATURES],
    sd: &[f64; N_FEATURES],
) -> Array2<f64> {
    let mut m = Array2::zeros((rows.len(), N_FEATURES));
    for (i, t) in rows.enumerate() {
        for j in 0..N_FEATURES {
            m[[i, j]] = (f.rows[t][j] - mean[j]) / sd[j];
        }
    }
    m
}

/// The rows of a standardized matrix (built by [`matrix`]: standard layout, so contiguous).
fn rows(m: &Array2<f64>) -> std::slice::Chunks<'_, f64> {
    let slice = m.as_slice().unwrap_or(&[]);
    slice.chunks(m.ncols().max(1))
}

/// A fitted model of one walk-forward step.
#[derive(Debug)]
enum Model {
    Svc(LinearSvc),
    /// Projection on the leading principal axes, then a tree over `quantiles` classes.
    PcaTree {
        axes: Array2<f64>,
        tree: Tree,
        quantiles: usize,
    },
}

impl Model {
    /// The side of each standardized row: the SVC's sign; the tree's top quantile long, its
    /// bottom one short, the rest flat.
    fn sides(&self, pred: &Array2<f64>) -> Vec<f64> {
        match self {
            Model::Svc(svm) => rows(pred)
                .map(|x| if svm.up(x) { 1.0 } else { -1.0 })
                .collect(),
            Model::PcaTree {
                axes,
                tree,
                quantiles,
            } => pred
                .dot(axes)
                .outer_iter()
                .map(|x| match x.as_slice() {
                    Some(row) => tree.predict(row),
                    None => tree.predict(&x.to_vec()),
                })
                .map(|cls| {
                    if cls + 1 == *quantiles {
                        1.0
                    } else if cls == 0 {
                        -1.0
                    } else {
                        0.0
                    }
                })
                .collect(),
        }
    }
}

/// One walk-forward fit: the standardization of its training rows and the model (`None` when
/// the fit failed and the seed stays flat).
#[derive(Debug)]
pub struct Fitted {
    mean: [f64; N_FEATURES],
    sd: [f64; N_FEATURES],
    model: Option<Model>,
}

/// What determines a fit: the seed, its fit genes (as bits) and the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelKey {
    seed: u8,
    genes: [u64; 4],
    start: usize,
    end: usize,
}

/// Most fits one cache keeps; beyond it new fits are computed but not kept.
pub const MAX_CACHED_MODELS: usize = 2048;

/// Fitted walk-forward models of one market (and of any longer history with the same first
/// bar: a fit only reads rows before its `end`). Shared by threads; a fit computed twice at
/// once gives the same model, so races never change a result.
#[derive(Debug, Default)]
pub struct ModelCache {
    map: Mutex<HashMap<ModelKey, Arc<Fitted>>>,
}

impl ModelCache {
    fn get_or_fit(&self, key: ModelKey, fit: impl FnOnce() -> Fitted) -> Arc<Fitted> {
        if let Some(m) = self.map.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return m;
        }
        let fitted = Arc::new(fit());
        let mut map = match self.map.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() < MAX_CACHED_MODELS {
            map.entry(key).or_insert_with(|| fitted.clone()).clone()
        } else {
            fitted
        }
    }
}

/// One ML seed's walk-forward: at each refit bar `t` the model of the training rows
/// `start..end` (from the cache, or `fit(standardized training rows, start..end)`) predicts the
/// standardized rows of bars `t .. t+refit`.
struct WalkForward<'a, F> {
    d: &'a Prepared,
    f: Arc<Features>,
    seed: u8,
    genes: [u64; 4],
    window: usize,
    refit: usize,
    horizon: usize,
    fit: F,
}

impl<'a, F: Fn(&Array2<f64>, std::ops::Range<usize>) -> Option<Model>> WalkForward<'a, F> {
    /// Seed `seed`'s walk-forward over `d` with the `window`, `refit` and `horizon` genes of
    /// `g`, fits keyed by `genes` (the genes a fit depends on, as bits).
    fn new(g: Genes<'_>, d: &'a Prepared, seed: u8, genes: [u64; 4], fit: F) -> Self {
        WalkForward {
            d,
            f: features(d),
            seed,
            genes,
            window: g.period("window"),
            refit: g.period("refit"),
            horizon: g.period("horizon"),
            fit,
        }
    }

    /// The first refit bar: exactly MIN_SAMPLES labelled rows, the last one labelled by this
    /// bar's close.
    fn first_refit(&self) -> usize {
        self.f.first + MIN_SAMPLES + self.horizon - 1
    }

    /// Writes the sides every fit predicts into `out`.
    fn run(&self, out: &mut Targets) {
        let n = self.f.rows.len();
        let mut t = self.first_refit();
        while t < n {
            let pred_end = (t + self.refit).min(n);
            self.predict(t, t..pred_end, &mut out.position[t..pred_end]);
            t = pred_end;
        }
    }

    /// The side at bar `t` alone: what [`WalkForward::run`] writes there.
    fn at(&self, t: usize) -> f64 {
        let first = self.first_refit();
        let mut side = [0.0];
        if t >= first && t < self.f.rows.len() {
            let refit_bar = first + (t - first) / self.refit * self.refit;
            self.predict(refit_bar, t..t + 1, &mut side);
        }
        side[0]
    }

    /// The sides of the bars `rows` as the fit of refit bar `t` predicts them, into `out`
    /// (left as they are without a fit).
    fn predict(&self, t: usize, rows: std::ops::Range<usize>, out: &mut [f64]) {
        let f = &self.f;
        let end = t + 1 - self.horizon; // training rows i < end satisfy i + horizon <= t
        let start = end.saturating_sub(self.window).max(f.first);
        if end < start + MIN_SAMPLES {
            return;
        }
        let key = ModelKey {
            seed: self.seed,
            genes: self.genes,
            start,
            end,
        };
        let fitted = self.d.models.get_or_fit(key, || {
            let (mean, sd) = standardizer(f, start..end);
            let train = matrix(f, start..end, &mean, &sd);
            Fitted {
                mean,
                sd,
                model: (self.fit)(&train, start..end),
            }
        });
        if let Some(model) = &fitted.model {
            let pred = matrix(f, rows, &fitted.mean, &fitted.sd);
            out.copy_from_slice(&model.sides(&pred));
        }
    }
}

/// An ML seed: its name, its signals (the walk-forward over every bar) and its next bar (the
/// side of that bar alone; an ML seed has no state of its own).
macro_rules! walk_forward_seed {
    ($seed:ty, $name:expr) => {
        impl Seed for $seed {
            fn name(&self) -> &'static str {
                $name
            }
            fn signals(&self, g: Genes<'_>, d: &Prepared, out: &mut Targets) {
                <$seed>::walk(g, d).run(out);
            }
            fn next(&self, g: Genes<'_>, d: &Prepared, t: usize, _: f64) -> Option<RawBar> {
                Some(RawBar::side(<$seed>::walk(g, d).at(t)))
            }
        }
    };
}

/// The `k` leading principal axes (columns, `N_FEATURES × k`) of the centred rows of `x`:
/// eigenvectors of the covariance matrix by cyclic Jacobi rotations, ordered by eigenvalue
/// (largest first), each with its largest-magnitude component made positive so the result is
/// unique.
pub fn principal_axes(x: &Array2<f64>, k: usize) -> Array2<f64> {
    let d = x.ncols();
    let n = x.nrows().max(2) as f64;
    let mean = x
        .mean_axis(ndarray::Axis(0))
        .unwrap_or_else(|| Array1::zeros(d));
    let centred = x - &mean;
    let mut a = centred.t().dot(&centred) / (n - 1.0);
    let mut v = Array2::<f64>::eye(d);
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[[i, j]] * a[[i, j]])
            .sum();
        if off < 1e-24 {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                if a[[p, q]].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * a[[p, q]]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..d {
                    let (arp, arq) = (a[[r, p]], a[[r, q]]);
                    a[[r, p]] = c * arp - s * arq;
                    a[[r, q]] = s * arp + c * arq;
                }
                for r in 0..d {
                    let (apr, aqr) = (a[[p, r]], a[[q, r]]);
                    a[[p, r]] = c * apr - s * aqr;
                    a[[q, r]] = s * apr + c * aqr;
                }
                for r in 0..d {
                    let (vrp, vrq) = (v[[r, p]], v[[r, q]]);
                    v[[r, p]] = c * vrp - s * vrq;
                    v[[r, q]] = s * vrp + c * vrq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&i, &j| a[[j, j]].total_cmp(&a[[i, i]]).then(i.cmp(&j)));
    let k = k.clamp(1, d);
    let mut axes = Array2::zeros((d, k));
    for (col, &i) in order.iter().take(k).enumerate() {
        let mut vec = v.column(i).to_owned();
        let big = vec
            .iter()
            .copied()
            .fold(0.0_f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            vec.mapv_inplace(|x| -x);
        }
        axes.column_mut(col).assign(&vec);
    }
    axes
}

/// Forward log return of bar `i` over `h` bars.
fn forward(close: &[f64], i: usize, h: usize) -> f64 {
    (close[i + h] / close[i]).ln()
}

/// Linear SVC on the features predicting the sign of the `horizon`-bar forward return.
pub struct LinearSvcClassifier;

walk_forward_seed!(LinearSvcClassifier, SVC_NAME);

impl LinearSvcClassifier {
    fn walk<'a>(
        g: Genes<'_>,
        d: &'a Prepared,
    ) -> WalkForward<'a, impl Fn(&Array2<f64>, std::ops::Range<usize>) -> Option<Model> + 'a> {
        let h = g.period("horizon");
        let c = g.float("c");
        let close = &d.market.candles.close;
        WalkForward::new(
            g,
            d,
            0,
            [h as u64, c.to_bits(), 0, 0],
            move |train: &Array2<f64>, rows: std::ops::Range<usize>| {
                let labels: Vec<bool> = rows.map(|i| forward(close, i, h) > 0.0).collect();
                let ups = labels.iter().filter(|&&b| b).count();
                if ups == 0 || ups == labels.len() {
                    return None;
                }
                let x: Vec<&[f64]> = self::rows(train).collect();
                // LIBSVM's tolerance; linfa's default 1e-7 costs many times the time. (linfa's
                // shrinking heuristic is left off, as it was when the seed ran on linfa-svm
                // 0.7.2, where it can index out of bounds.)
                Some(Model::Svc(LinearSvc::fit(&x, &labels, c, 1e-3)))
            },
        )
    }
}

/// PCA of the features, then a decision tree classifying the forward-return quantile.
pub struct PcaTreeQuantile;

walk_forward_seed!(PcaTreeQuantile, PCA_TREE_NAME);

impl PcaTreeQuantile {
    fn walk<'a>(
        g: Genes<'_>,
        d: &'a Prepared,
    ) -> WalkForward<'a, impl Fn(&Array2<f64>, std::ops::Range<usize>) -> Option<Model> + 'a> {
        let h = g.period("horizon");
        let k = g.period("components").min(N_FEATURES);
        let depth = g.period("depth");
        let q = g.period("quantiles").max(2);
        let close = &d.market.candles.close;
        WalkForward::new(
            g,
            d,
            1,
            [h as u64, k as u64, depth as u64, q as u64],
            move |train: &Array2<f64>, rows: std::ops::Range<usize>| {
                let fwd: Vec<f64> = rows.map(|i| forward(close, i, h)).collect();
                let mut sorted = fwd.clone();
                sorted.sort_by(f64::total_cmp);
                let cuts: Vec<f64> = (1..q).map(|j| sorted[j * sorted.len() / q]).collect();
                let labels: Vec<usize> = fwd
                    .iter()
                    .map(|r| cuts.iter().filter(|c| r >= c).count())
                    .collect();
                let axes = principal_axes(train, k);
                let emb_train = train.dot(&axes);
                let rows: Vec<Vec<f64>> = emb_train.outer_iter().map(|r| r.to_vec()).collect();
                let tree = Tree::fit(&rows, &labels, q, depth);
                Some(Model::PcaTree {
                    axes,
                    tree,
                    quantiles: q,
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::synthetic;
    use linfa::prelude::*;

    #[test]
    fn the_svc_fits_of_a_market_are_linfa_svm_s() {
        // The seed's own training windows on the bundled market's first coin: standardized
        // features, labels of the next bar's move, the C values of its range. linfa-svm 0.7
        // (what the seed ran on before) must give the same side for every bar its model
        // predicts. (svc.rs compares the fits themselves bit for bit.)
        let m = synthetic::generate(&synthetic::SyntheticParams::default())
            .markets
            .remove(0);
        let d = Prepared::new(m);
        let f = features(&d);
        let close = &d.market.candles.close;
        let (mut checked, mut ups) = (0, 0);
        for (k, (window, c)) in [(200, 0.01), (500, 0.1), (1000, 2.0)]
            .into_iter()
            .enumerate()
        {
            let end = f.first + window + 1500 * (k + 1);
            let (start, pred_end) = (end - window, end + 336);
            let (mean, sd) = standardizer(&f, start..end);
            let train = matrix(&f, start..end, &mean, &sd);
            let pred = matrix(&f, end..pred_end, &mean, &sd);
            let labels: Vec<bool> = (start..end).map(|i| forward(close, i, 1) > 0.0).collect();
            let ours = LinearSvc::fit(&rows(&train).collect::<Vec<_>>(), &labels, c, 1e-3);
            let theirs = linfa_svm::Svm::<f64, bool>::params()
                .pos_neg_weights(c, c)
                .eps(1e-3)
                .linear_kernel()
                .fit(&Dataset::new(train.clone(), Array1::from(labels)))
                .unwrap();
            let sides: Array1<bool> = theirs.predict(&pred);
            for (x, up) in rows(&pred).zip(sides.iter()) {
                assert_eq!(ours.up(x), *up, "window {window}, C {c}");
                ups += usize::from(*up);
                checked += 1;
            }
        }
        assert_eq!(checked, 3 * 336);
        assert!(
            ups > 0 && ups < checked,
            "{ups} of {checked} up: both sides predicted"
        );
    }

    #[test]
    fn principal_axes_of_a_known_covariance() {
        // Points t·(1, 2) + w·(−2, 1) with t and w uncorrelated and both centred: the first
        // axis is (1, 2)/sqrt(5), the second (−2, 1)/sqrt(5), flipped so its largest part is
        // positive.
        let wobble = [0.01, -0.02, 0.01, 0.01, -0.02, 0.01];
        let mut x = Array2::zeros((6, 2));
        for i in 0..6 {
            let t = i as f64 - 2.5;
            let w = wobble[i];
            x[[i, 0]] = t - 2.0 * w;
            x[[i, 1]] = 2.0 * t + w;
        }
        let a = principal_axes(&x, 2);
        let s5 = 5f64.sqrt();
        assert!(
            (a[[0, 0]] - 1.0 / s5).abs() < 1e-9 && (a[[1, 0]] - 2.0 / s5).abs() < 1e-9,
            "{a}"
        );
        assert!(
            (a[[0, 1]] - 2.0 / s5).abs() < 1e-9 && (a[[1, 1]] + 1.0 / s5).abs() < 1e-9,
            "{a}"
        );
        // Axes are orthonormal.
        let g = a.t().dot(&a);
        assert!((g[[0, 0]] - 1.0).abs() < 1e-12 && g[[0, 1]].abs() < 1e-12);
    }
}
