//! How much of a Sharpe ratio could be luck (Bailey & López de Prado).
//!
//! All Sharpe ratios here are **per period** (per bar or per day: not annualized), estimated
//! from `t` returns with skewness `skew` and **non-excess** kurtosis `kurt` (3 for a normal
//! distribution).
//!
//! * [`psr`]: the probabilistic Sharpe ratio, the probability that the true Sharpe exceeds a
//!   benchmark `sr_star` given the estimate, the sample length and the shape of the returns:
//!   `Φ((SR − SR*)·√(t − 1) / √(1 − skew·SR + (kurt − 1)/4·SR²))` (2012).
//! * [`expected_max_sharpe`]: the Sharpe the best of `n` independent trials of zero true Sharpe
//!   reaches by luck, given the variance `var` of the trials' Sharpe ratios:
//!   `√var·((1 − γ)·Φ⁻¹(1 − 1/n) + γ·Φ⁻¹(1 − 1/(n·e)))`, γ Euler–Mascheroni (2014).
//! * [`deflated_sharpe`]: [`psr`] against that expected maximum: the probability that the best
//!   of `n` trials is not luck.
//! * [`min_track_record`]: the fewest returns for [`psr`] to reach `prob`.

use statrs::distribution::{ContinuousCDF, Normal};

/// Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

fn std_normal() -> Normal {
    // Mean 0, standard deviation 1: always valid.
    Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("N(0, 1) is a valid distribution"))
}

/// The denominator `√(1 − skew·SR + (kurt − 1)/4·SR²)`; `None` when the shape makes it
/// non-positive (extreme skew for a large Sharpe).
fn shape(sr: f64, skew: f64, kurt: f64) -> Option<f64> {
    let v = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr;
    (v > 0.0).then(|| v.sqrt())
}

/// Probabilistic Sharpe ratio of a per-period Sharpe `sr` from `t` returns against `sr_star`.
/// `NaN` for fewer than two returns or a shape that makes the variance non-positive.
pub fn psr(sr: f64, t: usize, skew: f64, kurt: f64, sr_star: f64) -> f64 {
    if t < 2 {
        return f64::NAN;
    }
    match shape(sr, skew, kurt) {
        Some(s) => std_normal().cdf((sr - sr_star) * ((t - 1) as f64).sqrt() / s),
        None => f64::NAN,
    }
}

/// Expected maximum per-period Sharpe of `n` trials of zero true Sharpe whose Sharpe ratios
/// have variance `var`; 0 for one trial or none.
pub fn expected_max_sharpe(n: usize, var: f64) -> f64 {
    if n < 2 || var <= 0.0 {
        return 0.0;
    }
    let z = std_normal();
    let n = n as f64;
    var.sqrt()
        * ((1.0 - EULER_GAMMA) * z.inverse_cdf(1.0 - 1.0 / n)
            + EULER_GAMMA * z.inverse_cdf(1.0 - 1.0 / (n * std::f64::consts::E)))
}

/// Deflated Sharpe ratio: [`psr`] against [`expected_max_sharpe`] of `n` trials with Sharpe
/// variance `var`.
pub fn deflated_sharpe(sr: f64, t: usize, skew: f64, kurt: f64, n: usize, var: f64) -> f64 {
    psr(sr, t, skew, kurt, expected_max_sharpe(n, var))
}

/// Minimum track record length: the fewest returns for [`psr`] against `sr_star` to reach
/// `prob`, `1 + (1 − skew·SR + (kurt − 1)/4·SR²)·(Φ⁻¹(prob) / (SR − SR*))²`; infinite when
/// `sr ≤ sr_star`.
pub fn min_track_record(sr: f64, skew: f64, kurt: f64, sr_star: f64, prob: f64) -> f64 {
    if sr <= sr_star {
        return f64::INFINITY;
    }
    match shape(sr, skew, kurt) {
        Some(s) => 1.0 + s * s * (std_normal().inverse_cdf(prob) / (sr - sr_star)).powi(2),
        None => f64::INFINITY,
    }
}

/// Sample skewness and non-excess kurtosis of `x` (population moments, as the papers use);
/// `(0, 3)` for fewer than two values or no variance.
pub fn moments(x: &[f64]) -> (f64, f64) {
    super::Moments::of(x).shape()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_worked_example() {
        // Bailey & López de Prado (2014), the deflated Sharpe ratio's example: an annualized
        // Sharpe of 2.5 over 1,250 daily returns (250 a year), the best of 100 trials whose
        // annualized Sharpe ratios have variance 0.5, skewness −3, kurtosis 10.
        let sr = 2.5 / 250.0_f64.sqrt();
        let var = 0.5 / 250.0;
        let sr0 = expected_max_sharpe(100, var);
        assert!((sr0 - 0.1132).abs() < 5e-5, "SR0 {sr0}");
        let dsr = deflated_sharpe(sr, 1250, -3.0, 10.0, 100, var);
        assert!((dsr - 0.9004).abs() < 5e-4, "DSR {dsr}");
    }

    #[test]
    fn psr_and_track_record_agree() {
        // Normal returns (skew 0, kurtosis 3), SR 0.1 per period over 400 returns against 0:
        // z = 0.1·√399 / √(1 + 0.5·0.01) = 1.99252 -> Φ = 0.97684.
        let p = psr(0.1, 400, 0.0, 3.0, 0.0);
        assert!((p - 0.97684).abs() < 1e-4, "{p}");
        // The track record that reaches exactly that probability is 400 returns.
        let n = min_track_record(0.1, 0.0, 3.0, 0.0, p);
        assert!((n - 400.0).abs() < 1e-6, "{n}");
        // Negative skew and fat tails need a longer record for the same Sharpe.
        assert!(
            min_track_record(0.1, -2.0, 9.0, 0.0, 0.95)
                > min_track_record(0.1, 0.0, 3.0, 0.0, 0.95)
        );
        assert_eq!(min_track_record(0.0, 0.0, 3.0, 0.0, 0.95), f64::INFINITY);
        assert!(psr(0.1, 1, 0.0, 3.0, 0.0).is_nan());
        assert_eq!(expected_max_sharpe(1, 0.5), 0.0);
    }

    #[test]
    fn moments_by_hand() {
        // 1, 2, 3, 10: mean 4; deviations −3 −2 −1 6; m2 = 12.5, m3 = 45 / ... by hand:
        // m2 = (9+4+1+36)/4 = 12.5; m3 = (−27−8−1+216)/4 = 45; m4 = (81+16+1+1296)/4 = 348.5.
        let (s, k) = moments(&[1.0, 2.0, 3.0, 10.0]);
        assert!((s - 45.0 / 12.5_f64.powf(1.5)).abs() < 1e-12);
        assert!((k - 348.5 / 156.25).abs() < 1e-12);
        assert_eq!(moments(&[2.0, 2.0]), (0.0, 3.0));
    }
}
