//! organism's linear SVC: the C-SVC dual solved by the SMO method that linfa-svm 0.7.2 uses
//! (LIBSVM's maximal-violating-pair first index, second-order choice of the second), step for
//! step and floating-point operation for operation, with shrinking off as the seed runs it. Its
//! models are bit-identical to `Svm::<f64, bool>::params().pos_neg_weights(c, c).eps(eps)
//! .linear_kernel().fit(..)` (a test compares them on random and on market problems), at a
//! fraction of the cost: linfa builds its kernel matrix with one allocation per entry and copies
//! a strided column of it, re-signed, into a fresh vector three times per step; here the signed
//! matrix `Q_ij = y_i y_j x_i·x_j` is built once, row-major, and each step reads two of its rows
//! in place.
//!
//! The dual: minimise `½ αᵀQα − Σα` subject to `0 ≤ α_i ≤ C` and `Σ y_i α_i = 0`; the model
//! predicts up when `w·x − ρ ≥ 0`, with `w = Σ y_i α_i x_i` and `ρ` from the final gradient.

/// A fitted linear SVC: the separating hyperplane `w·x − rho`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSvc {
    w: Vec<f64>,
    rho: f64,
}

/// `a·b` summed as ndarray 0.15 sums an elementwise product of fewer than eight elements
/// (linfa's linear kernel, `a.mul(&b).sum()`): from zero, left to right. Longer rows are summed
/// with ndarray's eight partial sums, so the value is the same for any length.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut p = [0.0_f64; 8];
    let mut chunks = a.chunks_exact(8).zip(b.chunks_exact(8));
    for (x, y) in chunks.by_ref() {
        for k in 0..8 {
            p[k] += x[k] * y[k];
        }
    }
    let mut acc = 0.0;
    for k in 0..4 {
        acc += p[k] + p[k + 4];
    }
    let tail = a.len() - a.len() % 8;
    for (x, y) in a[tail..].iter().zip(&b[tail..]) {
        acc += x * y;
    }
    acc
}

impl LinearSvc {
    /// Fits the rows `x` (each of the same length) with labels `y` (true = up), penalty `c` on
    /// both classes and stopping tolerance `eps` on the maximal violation.
    ///
    /// # Panics
    /// If `x` and `y` differ in length or the rows differ in length (a caller's bug).
    pub fn fit(x: &[&[f64]], y: &[bool], c: f64, eps: f64) -> LinearSvc {
        Self::solve(x, y, c, eps).0
    }

    /// [`LinearSvc::fit`] and the dual solution α.
    fn solve(x: &[&[f64]], y: &[bool], c: f64, eps: f64) -> (LinearSvc, Vec<f64>) {
        let n = y.len();
        assert_eq!(x.len(), n, "one label per row");
        let dim = x.first().map_or(0, |r| r.len());
        assert!(x.iter().all(|r| r.len() == dim), "rows of one length");
        // The kernel K_ij = x_i · x_j, row-major. The product is commutative, so computing each
        // pair once gives linfa's symmetric matrix exactly.
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = dot(x[i], x[j]);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
        }
        let diag: Vec<f64> = (0..n).map(|i| k[i * n + i]).collect();
        let sign = |t: usize| if y[t] { 1.0 } else { -1.0 };
        let upper = |a: f64| a >= c;
        let lower = |a: f64| a == 0.0;
        // Whether variable t may take part in the first maximum (I_up: its α can move up along
        // y_t) and in the second (I_low).
        let flags = |t: usize, a: f64| {
            if y[t] {
                (!upper(a), !lower(a))
            } else {
                (!lower(a), !upper(a))
            }
        };
        let mut alpha = vec![0.0_f64; n];
        // linfa keeps the gradient ∇ = Qα − 1 with Q_ij = y_i y_j K_ij; this keeps y_t ∇_t, the
        // only form every step reads. Sign changes are exact in IEEE arithmetic (rounding is
        // symmetric), so y_t ∇_t here equals y_t times linfa's ∇_t bit for bit, and its update
        // `Σ K_tk (y_k Δα_k)` needs no signs inside the loop.
        let mut yg: Vec<f64> = (0..n).map(|t| -sign(t)).collect();
        let (mut up_ok, mut low_ok): (Vec<bool>, Vec<bool>) =
            (0..n).map(|t| flags(t, alpha[t])).unzip();
        // The maximal violations: max over I_up of −y_t∇_t (with its index, the last of ties as
        // linfa's `>=` scan picks) and max over I_low of y_t∇_t.
        // (Ineligible entries compare as NaN, which no `>=` takes: no branch on the flags.)
        let scan = |t: usize, v: f64, up: bool, low: bool, m1: &mut (f64, usize), m2: &mut f64| {
            let c1 = if up { -v } else { f64::NAN };
            if c1 >= m1.0 {
                *m1 = (c1, t);
            }
            let c2 = if low { v } else { f64::NAN };
            if c2 >= *m2 {
                *m2 = c2;
            }
        };
        let mut m1 = (f64::NEG_INFINITY, usize::MAX);
        let mut m2 = f64::NEG_INFINITY;
        for t in 0..n {
            scan(t, yg[t], up_ok[t], low_ok[t], &mut m1, &mut m2);
        }
        let max_iter = usize::max(10_000_000, n.saturating_mul(100));
        let mut iter = 0;
        while iter < max_iter {
            // The second index: the largest decrease of the objective along (i, j), over I_low.
            // Its curvature K_ii + K_jj − 2 y_i y_j Q_ij is K_ii + K_jj − 2 K_ij for either label.
            let (gm, i) = m1;
            let mut best = (f64::INFINITY, usize::MAX);
            if i != usize::MAX {
                let ki = &k[i * n..(i + 1) * n];
                for j in 0..n {
                    let grad_diff = if low_ok[j] { gm + yg[j] } else { f64::NAN };
                    if grad_diff > 0.0 {
                        let quad = diag[i] + diag[j] - 2.0 * ki[j];
                        let obj = -(grad_diff * grad_diff) / if quad > 0.0 { quad } else { 1e-10 };
                        if obj <= best.0 {
                            best = (obj, j);
                        }
                    }
                }
            }
            if gm + m2 < eps || best.1 == usize::MAX {
                break;
            }
            iter += 1;
            let j = best.1;
            let (old_i, old_j) = (alpha[i], alpha[j]);
            let (gi, gj) = (sign(i) * yg[i], sign(j) * yg[j]);
            let (mut ai, mut aj) = (old_i, old_j);
            if y[i] != y[j] {
                let mut quad = diag[i] + diag[j] + 2.0 * -k[i * n + j];
                if quad <= 0.0 {
                    quad = 1e-10;
                }
                let delta = -(gi + gj) / quad;
                let diff = ai - aj;
                ai += delta;
                aj += delta;
                if diff > 0.0 {
                    if aj < 0.0 {
                        aj = 0.0;
                        ai = diff;
                    }
                } else if ai < 0.0 {
                    ai = 0.0;
                    aj = -diff;
                }
                // Both bounds are `c` (finite): linfa's `diff > bound_i - bound_j` is `diff > 0`.
                if diff > 0.0 {
                    if ai > c {
                        ai = c;
                        aj = c - diff;
                    }
                } else if aj > c {
                    aj = c;
                    ai = c + diff;
                }
            } else {
                let mut quad = diag[i] + diag[j] - 2.0 * k[i * n + j];
                if quad <= 0.0 {
                    quad = 1e-10;
                }
                let delta = (gi - gj) / quad;
                let sum = ai + aj;
                ai -= delta;
                aj += delta;
                // linfa clips i against j, then j against i, the same way.
                let clip = |x: &mut f64, y: &mut f64| {
                    if sum > c {
                        if *x > c {
                            *x = c;
                            *y = sum - c;
                        }
                    } else if *y < 0.0 {
                        *y = 0.0;
                        *x = sum;
                    }
                };
                clip(&mut ai, &mut aj);
                clip(&mut aj, &mut ai);
            }
            alpha[i] = ai;
            alpha[j] = aj;
            (up_ok[i], low_ok[i]) = flags(i, ai);
            (up_ok[j], low_ok[j]) = flags(j, aj);
            // The gradient's update and the next step's maximal violations in one pass.
            let (ci, cj) = (sign(i) * (ai - old_i), sign(j) * (aj - old_j));
            let (ki, kj) = (&k[i * n..(i + 1) * n], &k[j * n..(j + 1) * n]);
            m1 = (f64::NEG_INFINITY, usize::MAX);
            m2 = f64::NEG_INFINITY;
            for t in 0..n {
                let v = yg[t] + (ki[t] * ci + kj[t] * cj);
                yg[t] = v;
                scan(t, v, up_ok[t], low_ok[t], &mut m1, &mut m2);
            }
        }
        // ρ: the mean of y_i ∇_i over the free variables, else the middle of the bounds.
        let (mut nfree, mut sum_free) = (0_usize, 0.0_f64);
        let (mut ub, mut lb) = (f64::INFINITY, f64::NEG_INFINITY);
        for t in 0..n {
            let v = yg[t];
            if upper(alpha[t]) {
                if y[t] {
                    lb = lb.max(v);
                } else {
                    ub = ub.min(v);
                }
            } else if lower(alpha[t]) {
                if y[t] {
                    ub = ub.min(v);
                } else {
                    lb = lb.max(v);
                }
            } else {
                nfree += 1;
                sum_free += v;
            }
        }
        let rho = if nfree > 0 {
            sum_free / nfree as f64
        } else {
            (ub + lb) / 2.0
        };
        let mut w = vec![0.0; dim];
        for (t, row) in x.iter().enumerate() {
            let s = sign(t) * alpha[t];
            for (wk, xk) in w.iter_mut().zip(row.iter()) {
                *wk += s * xk;
            }
        }
        (LinearSvc { w, rho }, alpha)
    }

    /// Whether the model predicts up for the row `x`: `w·x − ρ ≥ 0`.
    pub fn up(&self, x: &[f64]) -> bool {
        dot(&self.w, x) - self.rho >= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::prelude::*;
    use linfa_svm::Svm;
    use ndarray::{Array1, Array2};
    use rand::{Rng, SeedableRng};

    /// linfa-svm's model of the same problem.
    fn linfa(x: &Array2<f64>, y: &[bool], c: f64, eps: f64) -> Svm<f64, bool> {
        let ds = Dataset::new(x.clone(), Array1::from(y.to_vec()));
        Svm::<f64, bool>::params()
            .pos_neg_weights(c, c)
            .eps(eps)
            .linear_kernel()
            .fit(&ds)
            .unwrap()
    }

    fn rows(x: &Array2<f64>) -> Vec<&[f64]> {
        let d = x.ncols();
        x.as_slice().unwrap().chunks(d).collect()
    }

    /// Asserts that our fit of `x`, `y` equals linfa-svm's bit for bit (α, ρ, w·x of every
    /// row, the side) and says whether the solution has free variables (0 < α < C).
    fn same_as_linfa(x: &Array2<f64>, y: &[bool], c: f64, eps: f64, case: &str) -> bool {
        let theirs = linfa(x, y, c, eps);
        let (ours, alpha) = LinearSvc::solve(&rows(x), y, c, eps);
        assert_eq!(ours.rho.to_bits(), theirs.rho.to_bits(), "{case}: rho");
        // linfa reports the dual signed by the label.
        let signed: Vec<u64> = alpha
            .iter()
            .zip(y)
            .map(|(a, up)| if *up { *a } else { -a }.to_bits())
            .collect();
        let their_alpha: Vec<u64> = theirs.alpha.iter().map(|a| a.to_bits()).collect();
        assert_eq!(signed, their_alpha, "{case}: alpha");
        let pred: Array1<bool> = theirs.predict(x);
        for (r, p) in x.outer_iter().zip(pred.iter()) {
            let r = r.as_slice().unwrap();
            assert_eq!(
                dot(&ours.w, r).to_bits(),
                theirs.weighted_sum(&ndarray::ArrayView1::from(r)).to_bits(),
                "{case}: w·x"
            );
            assert_eq!(ours.up(r), *p, "{case}");
        }
        alpha.iter().any(|a| *a > 0.0 && *a < c)
    }

    #[test]
    fn degenerate_problems_are_solved_as_linfa_solves_them() {
        // All rows zero (a window whose features did not move): every curvature is zero and
        // takes linfa's 1e-10 floor. Repeated rows with both labels. One row of each label.
        let zeros = Array2::zeros((120, 7));
        let y: Vec<bool> = (0..120).map(|i| i % 3 == 0).collect();
        same_as_linfa(&zeros, &y, 0.1, 1e-3, "zero rows");
        let rep =
            Array2::from_shape_fn((150, 7), |(i, j)| ((i % 5) as f64 - 2.0) * (j as f64 + 1.0));
        let y: Vec<bool> = (0..150).map(|i| i % 2 == 0).collect();
        same_as_linfa(&rep, &y, 2.0, 1e-3, "repeated rows");
        let two = Array2::from_shape_vec((2, 2), vec![1.0, 0.0, -1.0, 0.0]).unwrap();
        same_as_linfa(&two, &[true, false], 0.5, 1e-3, "two rows");
    }

    #[test]
    fn dot_sums_like_ndarray() {
        for len in [1, 7, 8, 9, 17] {
            let a: Vec<f64> = (0..len).map(|k| 0.1 * k as f64 + 1.0 / 3.0).collect();
            let b: Vec<f64> = (0..len).map(|k| 1e8 - 7.7 * k as f64).collect();
            let nd = (&Array1::from(a.clone()) * &Array1::from(b.clone())).sum();
            assert_eq!(dot(&a, &b).to_bits(), nd.to_bits(), "length {len}");
        }
    }

    #[test]
    fn fits_are_bit_identical_to_linfa_svm() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Cases whose solution has free variables (0 < α < C), where ρ is their mean.
        let mut with_free = 0;
        for case in 0..24 {
            let n = 60 + 37 * case;
            let d = 7;
            // Noisy labels from a random plane: overlapping classes, as in the seed.
            let plane: Vec<f64> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-2.0..2.0));
            let y: Vec<bool> = x
                .outer_iter()
                .map(|r| {
                    r.iter().zip(&plane).map(|(a, b)| a * b).sum::<f64>() + rng.gen_range(-1.5..1.5)
                        > 0.0
                })
                .collect();
            let c = [0.01, 0.1, 0.7, 2.0][case % 4];
            let eps = if case % 3 == 0 { 1e-5 } else { 1e-3 };
            if same_as_linfa(&x, &y, c, eps, &format!("case {case}")) {
                with_free += 1;
            }
        }
        assert!(
            with_free >= 12,
            "{with_free} of 24 cases with free variables"
        );
    }
}
