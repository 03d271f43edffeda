//! What every strategy produces: per-bar [`Targets`] (the side and fraction of equity wanted
//! after each bar closes, and the stop-loss / take-profit levels of an entry signalled at that
//! bar), and the crossing helpers the rule seeds and the benchmark kernels share.
//!
//! This module knows nothing of fills, fees or the backtester: strategies only say what they
//! want; the execution engine decides what that costs.

pub mod portfolio;
pub mod regime;

/// What a strategy wants after one bar closes.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// Signed fraction of equity (`> 0` long, `< 0` short, `0` flat).
    pub position: f64,
    /// Stop-loss price for an entry made on this signal.
    pub stop: Option<f64>,
    /// Take-profit price for an entry made on this signal.
    pub take: Option<f64>,
}

impl Target {
    /// Flat, no levels.
    pub const FLAT: Target = Target {
        position: 0.0,
        stop: None,
        take: None,
    };

    /// A target from the arrays' form: an undefined position is flat, a `NaN` level absent.
    pub fn of(position: f64, stop: f64, take: f64) -> Target {
        Target {
            position: if position.is_nan() { 0.0 } else { position },
            stop: level(stop),
            take: level(take),
        }
    }
}

/// Per-bar targets of a whole history (struct of arrays, one entry per bar).
///
/// Inside the arrays an absent level or an undefined position is `NaN` (the kernels' form);
/// outside the crate levels are read as `Option`s through [`Targets::at`], [`Targets::stop`]
/// and [`Targets::take`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Targets {
    /// Signed fraction of equity wanted after the bar (`NaN` counts as flat).
    pub position: Vec<f64>,
    /// Stop-loss price for an entry signalled at this bar (`NaN` = none).
    pub(crate) stop: Vec<f64>,
    /// Take-profit price for an entry signalled at this bar (`NaN` = none).
    pub(crate) take: Vec<f64>,
}

fn level(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

impl Targets {
    /// Flat targets with no stops for `n` bars.
    pub fn flat(n: usize) -> Self {
        Self {
            position: vec![0.0; n],
            stop: vec![f64::NAN; n],
            take: vec![f64::NAN; n],
        }
    }

    /// Number of bars.
    pub fn len(&self) -> usize {
        self.position.len()
    }

    /// The targets of bars `range` (targets computed on a longer history, so that indicators
    /// are warm at the range's first bar).
    ///
    /// # Panics
    /// When `range` is out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Self {
            position: self.position[range.clone()].to_vec(),
            stop: self.stop[range.clone()].to_vec(),
            take: self.take[range].to_vec(),
        }
    }

    /// True when there are no bars.
    pub fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    /// The target after bar `t` (an undefined position is flat).
    ///
    /// # Panics
    /// When `t` is past the end.
    pub fn at(&self, t: usize) -> Target {
        Target::of(self.position[t], self.stop[t], self.take[t])
    }

    /// Stop-loss level of an entry signalled at bar `t`.
    pub fn stop(&self, t: usize) -> Option<f64> {
        level(self.stop[t])
    }

    /// Take-profit level of an entry signalled at bar `t`.
    pub fn take(&self, t: usize) -> Option<f64> {
        level(self.take[t])
    }

    /// The same decisions acted on `bars` bars late: the target of bar `t` is the one decided
    /// at bar `t − bars` (with its stop-loss and take-profit levels), flat before that.
    pub fn delayed(&self, bars: usize) -> Self {
        let n = self.len();
        let k = bars.min(n);
        let late = |v: &[f64], empty: f64| -> Vec<f64> {
            let mut out = vec![empty; k];
            out.extend_from_slice(&v[..n - k]);
            out
        };
        Self {
            position: late(&self.position, 0.0),
            stop: late(&self.stop, f64::NAN),
            take: late(&self.take, f64::NAN),
        }
    }

    /// The opposite strategy: every position negated (long ↔ short), and each stop-loss and
    /// take-profit mirrored around its signal bar's close (`2·close − level`), so a long's stop
    /// 2 % below becomes a short's stop 2 % above. `close` has one price per bar.
    ///
    /// # Panics
    /// When `close` is shorter than the targets.
    pub fn flipped(&self, close: &[f64]) -> Self {
        let mirror = |levels: &[f64]| -> Vec<f64> {
            levels
                .iter()
                .zip(close)
                .map(|(&l, &c)| if l.is_nan() { l } else { 2.0 * c - l })
                .collect()
        };
        assert!(close.len() >= self.len(), "one close per bar");
        Self {
            position: self.position.iter().map(|p| -p).collect(),
            stop: mirror(&self.stop),
            take: mirror(&self.take),
        }
    }

    /// Sets the levels of an entry signalled at bar `t`.
    pub fn set_levels(&mut self, t: usize, stop: Option<f64>, take: Option<f64>) {
        self.stop[t] = stop.unwrap_or(f64::NAN);
        self.take[t] = take.unwrap_or(f64::NAN);
    }
}

/// `fast` crossed above `slow` at bar `t` (`t ≥ 1`): `f[t] > s[t] && f[t−1] <= s[t−1]`.
/// `NaN` (undefined lines) never signals.
#[inline(always)]
pub fn crossed_above(f: &[f64], s: &[f64], t: usize) -> bool {
    f[t] > s[t] && f[t - 1] <= s[t - 1]
}

/// `fast` crossed below `slow` at bar `t` (`t ≥ 1`): `f[t] < s[t] && f[t−1] >= s[t−1]`.
#[inline(always)]
pub fn crossed_below(f: &[f64], s: &[f64], t: usize) -> bool {
    f[t] < s[t] && f[t - 1] >= s[t - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_negates_and_mirrors() {
        let mut t = Targets::flat(3);
        t.position = vec![0.5, -1.0, f64::NAN];
        t.set_levels(0, Some(98.0), Some(104.0));
        let f = t.flipped(&[100.0, 50.0, 10.0]);
        assert_eq!(f.at(0).position, -0.5);
        assert_eq!(f.at(1).position, 1.0);
        assert_eq!(f.at(2).position, 0.0);
        // Stop 2 below the close of 100 becomes 2 above; take 4 above becomes 4 below.
        assert_eq!(f.stop(0), Some(102.0));
        assert_eq!(f.take(0), Some(96.0));
        assert_eq!(f.stop(1), None);
    }

    #[test]
    fn delayed_acts_on_each_decision_bars_late() {
        let mut t = Targets::flat(4);
        t.position = vec![0.5, -1.0, 0.25, 1.0];
        t.set_levels(1, Some(98.0), Some(104.0));
        let d = t.delayed(2);
        assert_eq!(d.position, vec![0.0, 0.0, 0.5, -1.0]);
        assert_eq!(d.stop(3), Some(98.0));
        assert_eq!(d.take(3), Some(104.0));
        assert_eq!(d.stop(1), None);
        assert_eq!(t.delayed(0).position, t.position);
        assert_eq!(t.delayed(9).position, vec![0.0; 4]);
    }

    #[test]
    fn levels_are_options_outside() {
        let mut t = Targets::flat(3);
        t.position[1] = f64::NAN;
        t.set_levels(2, Some(95.0), None);
        assert_eq!(t.at(1), Target::FLAT);
        assert_eq!(t.stop(2), Some(95.0));
        assert_eq!(t.take(2), None);
        assert!(t.stop[0].is_nan());
    }

    #[test]
    fn crossings_need_both_bars_defined() {
        let f = [1.0, 2.0, 1.0, f64::NAN, 3.0];
        let s = [1.5, 1.5, 1.5, 1.5, 1.5];
        assert!(crossed_above(&f, &s, 1));
        assert!(crossed_below(&f, &s, 2));
        assert!(!crossed_above(&f, &s, 4));
        assert!(!crossed_below(&f, &s, 3));
    }
}
