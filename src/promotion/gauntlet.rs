//! The validation gauntlet: what a strategy found by evolution must survive before it is
//! promoted.
//!
//! Search over past data finds "edges" in pure noise, so each candidate of a run's first front
//! (in the order `runs show` ranks them) goes through the stages below, stopping at the first it
//! fails. Each stage reports its figures and its rule; every threshold is in `[promotion]`.
//!
//! 1. **Costs**: net total return and Sharpe on training, after fees, slippage and funding,
//!    both positive (and a run evolved with neither fees nor slippage fails).
//! 2. **Cross-section** (portfolio strategies only): the validation Sharpe beats the
//!    `cross_quantile` quantile of its Sharpe on `cross_nulls` cross-sectionally shuffled copies
//!    of the validation span ([`cross_section`]): each bar's coin moves dealt out among the
//!    coins, so the market's move is kept and which coin made it is lost. What a strategy earns
//!    from the market's move alone, it earns on every copy.
//! 3. **Nulls**: the validation Sharpe beats the same strategy with its signal flipped, and the
//!    `null_quantile` quantile of its Sharpe on `nulls` return-permuted copies of the validation
//!    span (see [`crate::market::permute`]; copy `k` draws from its own seeded stream; a
//!    portfolio's universe is permuted with its bars together, so the coins keep their
//!    correlation).
//! 4. **Out of sample**: validation Sharpe > 0 and ≥ `oos_fraction` × training Sharpe, and
//!    positive in more than half of `oos_windows` equal windows of the validation span.
//! 5. **Deflated Sharpe** ([`crate::fitness::luck::deflated_sharpe`]): the training Sharpe
//!    against the expected best of all the run's trials (every distinct genome or program in its
//!    fitness cache, with the variance of their training Sharpe ratios); at least `min_dsr`.
//! 6. **Overfitting** ([`crate::fitness::pbo`]): the probability of backtest overfitting of
//!    the whole front, by CSCV over its training-and-validation returns; above `max_pbo` no
//!    candidate of the run is promoted.
//! 7. **Holdout**: the split's last segment, read here and only here (the caller records each
//!    read before it happens): holdout Sharpe > 0 and ≥ `holdout_fraction` × validation Sharpe.
//! 8. **Diversity**: among those that pass, up to `top` are admitted greedily in rank order,
//!    each only if its daily returns correlate at most `max_correlation` with every one
//!    admitted before it.
//!
//! For single-coin strategies every Sharpe here is the annualized Sharpe aggregated over coins
//! as evolution aggregates it (`(1 − w)·mean + w·worst`, `evolution.worst_coin_weight`), on the
//! plain per-coin Sharpe whatever the run's Sharpe objective was, and a strategy's return
//! series (for windows, PBO, the deflated Sharpe's moments and correlations) is the
//! equal-weight mean of its coins' per-bar returns. A portfolio strategy is one account: its
//! Sharpe is the plain Sharpe of the account's per-bar returns, its return series those
//! returns ([`super::candidates`]).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use super::candidates::{Candidates, CoinCandidates, PortfolioCandidates};
use crate::{
    evolution::{
        problem::{Figures, SharpeObjective},
        summary::Ranked,
        CacheKey,
    },
    fitness::{
        self, luck,
        pbo::Pbo,
        regime::{policy_from_figures, RegimeFigure},
        trials::EffectiveTrials,
    },
    strategy::regime::Policy,
};

/// The stages, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Costs,
    CrossSection,
    Nulls,
    SearchNulls,
    OutOfSample,
    DeflatedSharpe,
    Overfitting,
    Holdout,
    Diversity,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 9] = [
        Self::Costs,
        Self::CrossSection,
        Self::Nulls,
        Self::SearchNulls,
        Self::OutOfSample,
        Self::DeflatedSharpe,
        Self::Overfitting,
        Self::Holdout,
        Self::Diversity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Costs => "costs",
            Self::CrossSection => "cross_section",
            Self::Nulls => "nulls",
            Self::SearchNulls => "search_nulls",
            Self::OutOfSample => "out_of_sample",
            Self::DeflatedSharpe => "deflated_sharpe",
            Self::Overfitting => "overfitting",
            Self::Holdout => "holdout",
            Self::Diversity => "diversity",
        }
    }
}

/// One stage's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub stage: Stage,
    pub passed: bool,
    /// The rule, with its thresholds.
    pub rule: String,
    /// What was found, in words.
    pub reason: String,
    /// The inputs and results, by name.
    pub figures: StageFigures,
}

/// An outcome as stored: its figures are read by its stage.
#[derive(Deserialize)]
struct StoredOutcome {
    stage: Stage,
    passed: bool,
    rule: String,
    reason: String,
    figures: serde_json::Value,
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let o = StoredOutcome::deserialize(d)?;
        let figures = StageFigures::read(o.stage, o.figures).map_err(|e| {
            serde::de::Error::custom(format!("the {} stage's figures: {e}", o.stage.as_str()))
        })?;
        Ok(outcome(o.stage, o.passed, o.rule, o.reason, figures))
    }
}

/// What a stage measured (stored with each strategy; the fields of each in alphabetical order,
/// the order they are written in).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StageFigures {
    Costs(CostFigures),
    CrossSection(CrossSectionFigures),
    Nulls(NullFigures),
    SearchNulls(SearchNullFigures),
    OutOfSample(OutOfSampleFigures),
    DeflatedSharpe(DeflatedFigures),
    /// The trials' Sharpe variance is unknown (another Sharpe objective): only their count.
    DeflatedUnknown {
        trials: usize,
    },
    Overfitting(OverfitFigures),
    /// The PBO is not computable: `{"pbo": null}`.
    OverfitUnknown {
        pbo: Option<f64>,
    },
    Holdout(HoldoutFigures),
    Diversity(DiversityFigures),
    /// Nothing measured (a holdout without bars).
    Nothing {},
}

impl StageFigures {
    /// The figures of `stage` from their JSON.
    fn read(stage: Stage, v: serde_json::Value) -> serde_json::Result<Self> {
        use serde_json::from_value as from;
        let empty = v.as_object().is_some_and(serde_json::Map::is_empty);
        Ok(match stage {
            _ if empty => Self::Nothing {},
            Stage::Costs => Self::Costs(from(v)?),
            Stage::CrossSection => Self::CrossSection(from(v)?),
            Stage::Nulls => Self::Nulls(from(v)?),
            Stage::SearchNulls => Self::SearchNulls(from(v)?),
            Stage::OutOfSample => Self::OutOfSample(from(v)?),
            Stage::DeflatedSharpe if v.get("dsr").is_none() => Self::DeflatedUnknown {
                trials: from(v["trials"].clone())?,
            },
            Stage::DeflatedSharpe => Self::DeflatedSharpe(from(v)?),
            Stage::Overfitting if v.get("pbo").is_some_and(serde_json::Value::is_null) => {
                Self::OverfitUnknown { pbo: None }
            }
            Stage::Overfitting => Self::Overfitting(from(v)?),
            Stage::Holdout => Self::Holdout(from(v)?),
            Stage::Diversity => Self::Diversity(from(v)?),
        })
    }
}

/// Stage 1's figures ([`costs`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostFigures {
    #[serde(deserialize_with = "crate::store::real")]
    pub fee: f64,
    pub funding: bool,
    /// The Sharpe under other costs and delays ([`sensitivity`]; absent from strategies
    /// promoted before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<CostSensitivity>,
    #[serde(deserialize_with = "crate::store::real")]
    pub slippage: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub train_sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub train_total_return: f64,
    pub train_trades: usize,
}

/// The cost multiples the sensitivity gives the Sharpe at (fees and slippage × each).
pub const COST_MULTIPLES: [f64; 4] = [0.5, 1.0, 2.0, 3.0];

/// The delays, in bars, it gives the Sharpe with (at the run's costs).
pub const DELAYS: [usize; 2] = [1, 2];

/// The highest cost multiple the break-even search tries.
pub const MAX_BREAK_EVEN: f64 = 10.0;

/// The cost multiple the `costs` stage asks a positive Sharpe at (`promotion.double_costs`).
pub const STRESS_MULTIPLE: f64 = 2.0;

/// The Sharpe at one cost multiple.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CostPoint {
    #[serde(deserialize_with = "crate::store::real")]
    pub multiple: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe: f64,
}

/// The Sharpe with decisions acted on `bars` bars late.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DelayPoint {
    pub bars: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe: f64,
}

/// How one segment's Sharpe answers costs and delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentSensitivity {
    /// The multiple of the run's fees and slippage at which the Sharpe falls to zero, to
    /// 0.01: 0 when it loses even without costs, `None` when it is still positive at
    /// [`MAX_BREAK_EVEN`] times them.
    pub break_even_multiple: Option<f64>,
    /// At each of [`COST_MULTIPLES`].
    pub costs: Vec<CostPoint>,
    /// With each of [`DELAYS`], at the run's costs.
    pub delays: Vec<DelayPoint>,
}

impl SegmentSensitivity {
    /// The Sharpe at cost multiple `m` (one of [`COST_MULTIPLES`]).
    pub fn at_costs(&self, m: f64) -> Option<f64> {
        self.costs
            .iter()
            .find(|p| p.multiple == m)
            .map(|p| p.sharpe)
    }
}

/// A candidate's cost and delay sensitivity on training and on validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostSensitivity {
    pub train: SegmentSensitivity,
    pub validation: SegmentSensitivity,
}

/// The cost multiple in `[0, MAX_BREAK_EVEN]` at which `sharpe_at` (decreasing in it) falls
/// to zero, by bisection to 0.01; 0 when it is not positive without costs, `None` when it is
/// still positive at the top.
pub fn break_even(sharpe_at: &(dyn Fn(f64) -> f64 + Sync)) -> Option<f64> {
    let positive = |m: f64| sharpe_at(m) > 0.0;
    if !positive(0.0) {
        return Some(0.0);
    }
    if positive(MAX_BREAK_EVEN) {
        return None;
    }
    let (mut lo, mut hi) = (0.0, MAX_BREAK_EVEN);
    while hi - lo > 0.01 {
        let mid = 0.5 * (lo + hi);
        if positive(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((50.0 * (lo + hi)).round() / 100.0)
}

/// Candidate `r`'s Sharpe on training and validation at each of [`COST_MULTIPLES`] times the
/// run's fees and slippage and with each of [`DELAYS`], and its break-even cost multiple.
pub fn sensitivity<C: Candidates>(c: &C, r: &Ranked) -> CostSensitivity {
    let segment = |validation: bool| {
        let sharpe = |m: f64, delay: usize| c.stressed_sharpe(r, validation, m, delay);
        let costs = COST_MULTIPLES
            .par_iter()
            .map(|&multiple| CostPoint {
                multiple,
                sharpe: sharpe(multiple, 0),
            })
            .collect();
        let delays = DELAYS
            .par_iter()
            .map(|&bars| DelayPoint {
                bars,
                sharpe: sharpe(1.0, bars),
            })
            .collect();
        SegmentSensitivity {
            break_even_multiple: break_even(&|m| sharpe(m, 0)),
            costs,
            delays,
        }
    };
    let (train, validation) = rayon::join(|| segment(false), || segment(true));
    CostSensitivity { train, validation }
}

/// The cross-section stage's figures ([`cross_section`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossSectionFigures {
    pub copies: usize,
    pub copies_at_or_above: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub quantile: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe_at_quantile: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe_mean: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub validation_sharpe: f64,
}

/// The nulls stage's figures ([`nulls`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NullFigures {
    #[serde(deserialize_with = "crate::store::real")]
    pub flipped_sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub null_quantile: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub null_sharpe_at_quantile: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub null_sharpe_mean: f64,
    pub nulls: usize,
    pub nulls_at_or_above: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub validation_sharpe: f64,
}

/// The search-nulls stage's figures ([`search_nulls`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchNullFigures {
    #[serde(deserialize_with = "crate::store::real")]
    pub quantile: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe_at_quantile: f64,
    /// The run's null searches (0: it has none and the stage was skipped).
    pub searches: usize,
    pub searches_at_or_above: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub validation_sharpe: f64,
}

/// The out-of-sample stage's figures ([`out_of_sample`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutOfSampleFigures {
    pub positive_windows: usize,
    /// Validation over training Sharpe (`NaN` for a training Sharpe of 0).
    #[serde(deserialize_with = "crate::store::real")]
    pub ratio: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub train_sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub validation_sharpe: f64,
    #[serde(deserialize_with = "crate::store::reals")]
    pub window_sharpes: Vec<f64>,
}

/// The deflated Sharpe stage's figures ([`deflated`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeflatedFigures {
    #[serde(deserialize_with = "crate::store::real")]
    pub dsr: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub expected_max_sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub expected_max_sharpe_per_bar: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub kurtosis: f64,
    /// `None` where no track record is long enough.
    pub min_track_record_bars: Option<f64>,
    #[serde(deserialize_with = "crate::store::real")]
    pub null_sharpe_var: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub psr: f64,
    pub raw_trials: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub sharpe_per_bar: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub skew: f64,
    pub t: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub trial_sharpe_var: f64,
    pub trials: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub used_sharpe_var: f64,
    /// `capped` or `empirical` (`promotion.trial_variance`).
    pub variance: String,
}

/// The overfitting stage's figures: the front's [`Pbo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverfitFigures {
    pub block_rows: usize,
    pub combinations: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub median_logit: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub pbo: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub prob_oos_loss: f64,
    pub strategies: usize,
}

impl From<&Pbo> for OverfitFigures {
    fn from(p: &Pbo) -> Self {
        Self {
            block_rows: p.block_rows,
            combinations: p.combinations,
            median_logit: p.median_logit,
            pbo: p.pbo,
            prob_oos_loss: p.prob_oos_loss,
            strategies: p.strategies,
        }
    }
}

/// The holdout stage's figures ([`holdout`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutFigures {
    pub earlier_reads: usize,
    #[serde(deserialize_with = "crate::store::real")]
    pub holdout_sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub validation_sharpe: f64,
}

/// The diversity stage's figures ([`diversify`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiversityFigures {
    pub admitted_before: usize,
    /// The highest correlation with one admitted before it (`None` for the first).
    pub max_correlation: Option<f64>,
    /// Which one (its rank, from 0).
    pub with: Option<usize>,
}

fn outcome(
    stage: Stage,
    passed: bool,
    rule: String,
    reason: String,
    figures: StageFigures,
) -> Outcome {
    Outcome {
        stage,
        passed,
        rule,
        reason,
        figures,
    }
}

/// Stage 1 on a candidate's training figures, the run's costs and the candidate's
/// [`sensitivity`] to them. With `double_costs` (`promotion.double_costs`), the Sharpe at
/// twice the fees and slippage must be positive on training and on validation too.
pub fn costs(
    train: &Figures,
    fee: f64,
    slippage: f64,
    funding: bool,
    sensitivity: Option<CostSensitivity>,
    double_costs: bool,
) -> Outcome {
    let doubled = sensitivity.as_ref().map(|s| {
        (
            s.train.at_costs(STRESS_MULTIPLE).unwrap_or(f64::NAN),
            s.validation.at_costs(STRESS_MULTIPLE).unwrap_or(f64::NAN),
            s.validation.break_even_multiple,
        )
    });
    let figures = StageFigures::Costs(CostFigures {
        fee,
        funding,
        sensitivity,
        slippage,
        train_sharpe: train.sharpe,
        train_total_return: train.total_return,
        train_trades: train.trades,
    });
    let mut rule =
        "training net return > 0 and Sharpe > 0 after fees, slippage and funding".to_string();
    if double_costs {
        rule.push_str("; Sharpe > 0 at 2x fees and slippage on training and validation");
    }
    let break_even = |b: Option<f64>| match b {
        Some(m) => format!("{m:.2}x"),
        None => format!("above {MAX_BREAK_EVEN}x"),
    };
    let (passed, reason) = if fee <= 0.0 && slippage <= 0.0 {
        (
            false,
            "the run was evolved without fees or slippage: its figures are not net of costs".into(),
        )
    } else if !train.feasible {
        (
            false,
            format!(
                "too few trades on training ({} over all coins) for the run's minimum \
                 (evolution.min_trades per coin)",
                train.trades
            ),
        )
    } else if train.total_return <= 0.0 {
        (
            false,
            format!(
                "loses after costs on training: return {:+.2} %, Sharpe {:.2}",
                train.total_return * 100.0,
                train.sharpe
            ),
        )
    } else if train.sharpe <= 0.0 {
        // A gain in mean return with a Sharpe at or below zero: over several coins, the Sharpe
        // is combined as evolution combines it, and a losing coin weighs in.
        (
            false,
            format!(
                "no risk-adjusted gain after costs on training: Sharpe {:.2} (the coins' \
                 Sharpe combined as evolution combines it, the worst coin weighing in), though \
                 the mean return is {:+.2} %",
                train.sharpe,
                train.total_return * 100.0
            ),
        )
    } else {
        match doubled {
            Some((t2, v2, be)) if double_costs && !(t2 > 0.0 && v2 > 0.0) => (
                false,
                format!(
                    "the edge does not survive twice the costs: Sharpe {t2:.2} on training and \
                     {v2:.2} on validation at 2x fees and slippage (validation breaks even at \
                     {} the run's costs)",
                    break_even(be)
                ),
            ),
            Some((t2, v2, be)) => (
                true,
                format!(
                    "return {:+.2} %, Sharpe {:.2} on training after costs; at 2x costs Sharpe \
                     {t2:.2} on training, {v2:.2} on validation (validation breaks even at {} \
                     the run's costs)",
                    train.total_return * 100.0,
                    train.sharpe,
                    break_even(be)
                ),
            ),
            None => (
                true,
                format!(
                    "return {:+.2} %, Sharpe {:.2} on training after costs",
                    train.total_return * 100.0,
                    train.sharpe
                ),
            ),
        }
    };
    outcome(Stage::Costs, passed, rule, reason, figures)
}

/// The search-nulls stage: a candidate's validation Sharpe (as the run ranks it) against the
/// best validation Sharpes of the run's null searches (`evolve --null-searches`): above their
/// `q` quantile, or what the search finds on data with no edge could have found it. Skipped
/// (passed, and said) when the run has none.
pub fn search_nulls(validation: f64, bests: &[f64], q: f64) -> Outcome {
    let bar = quantile(bests, q);
    let beaten = bests.iter().filter(|&&s| s >= validation).count();
    let figures = StageFigures::SearchNulls(SearchNullFigures {
        quantile: q,
        sharpe_at_quantile: bar,
        searches: bests.len(),
        searches_at_or_above: beaten,
        validation_sharpe: validation,
    });
    let rule = format!(
        "validation Sharpe > the {:.0}th percentile of the best validation Sharpes of the run's \
         null searches (the same search on data with no edge)",
        q * 100.0
    );
    let (passed, reason) = if bests.is_empty() {
        (
            true,
            "skipped: the run has no null searches (evolve --null-searches K runs them)".into(),
        )
    } else if validation.partial_cmp(&bar) != Some(std::cmp::Ordering::Greater) {
        (
            false,
            format!(
                "the search finds as much without an edge: validation Sharpe {validation:.2} is \
                 not above {bar:.2}, the {:.0}th percentile of the best of {} null searches \
                 ({beaten} of them did as well)",
                q * 100.0,
                bests.len()
            ),
        )
    } else {
        (
            true,
            format!(
                "validation Sharpe {validation:.2} > {bar:.2}, the {:.0}th percentile of the best \
                 of {} null searches",
                q * 100.0,
                bests.len()
            ),
        )
    };
    outcome(Stage::SearchNulls, passed, rule, reason, figures)
}

pub use crate::fitness::quantile;

/// Stage 2: validation Sharpe against the flipped signal's and the nulls' `quantile`.
pub fn nulls(validation: f64, flipped: f64, null_sharpes: &[f64], q: f64) -> Outcome {
    let bar = quantile(null_sharpes, q);
    let mean = null_sharpes.iter().sum::<f64>() / null_sharpes.len().max(1) as f64;
    let beaten = null_sharpes.iter().filter(|&&s| s >= validation).count();
    let figures = StageFigures::Nulls(NullFigures {
        flipped_sharpe: flipped,
        null_quantile: q,
        null_sharpe_at_quantile: bar,
        null_sharpe_mean: mean,
        nulls: null_sharpes.len(),
        nulls_at_or_above: beaten,
        validation_sharpe: validation,
    });
    let rule = format!(
        "validation Sharpe > the flipped signal's and > the {:.0}th percentile of {} permuted copies",
        q * 100.0,
        null_sharpes.len()
    );
    let (passed, reason) = if validation <= flipped {
        (
            false,
            format!(
                "no better than its own signal flipped: validation Sharpe {validation:.2}, flipped {flipped:.2}"
            ),
        )
    } else if validation.partial_cmp(&bar) != Some(std::cmp::Ordering::Greater) {
        (
            false,
            format!(
                "indistinguishable from noise: validation Sharpe {validation:.2} is not above {bar:.2}, \
                 the {:.0}th percentile on permuted data ({beaten} of {} copies did as well)",
                q * 100.0,
                null_sharpes.len()
            ),
        )
    } else {
        (
            true,
            format!(
                "validation Sharpe {validation:.2} > flipped {flipped:.2} and > null {:.0}th percentile {bar:.2}",
                q * 100.0
            ),
        )
    };
    outcome(Stage::Nulls, passed, rule, reason, figures)
}

/// Annualized Sharpe differences smaller than this are no difference: a copy whose Sharpe is
/// within it of the candidate's counts as doing as well. A rule that holds every coin alike
/// earns on every cross-sectionally shuffled copy what it earns on the market, to within about
/// 1e-4 (rounding, and the book skipping a resize too small to pay its costs, which makes a
/// coin's position depend a little on its own path).
pub const SHARPE_TIE: f64 = 1e-3;

/// The stage of portfolio strategies before the nulls: validation Sharpe against the `q`
/// quantile of its Sharpe on cross-sectionally shuffled copies of the validation segment
/// (ties within [`SHARPE_TIE`] count against it). Each copy keeps every bar's
/// set of coin moves (the market's move) and deals them out among the coins at random, so what
/// a strategy earns from the market's move alone it earns on every copy; only picking the
/// coins that made which move beats them.
pub fn cross_section(validation: f64, cross_sharpes: &[f64], q: f64) -> Outcome {
    let bar = quantile(cross_sharpes, q);
    let n = cross_sharpes.len();
    let mean = cross_sharpes.iter().sum::<f64>() / n.max(1) as f64;
    let beaten = cross_sharpes
        .iter()
        .filter(|&&s| s >= validation - SHARPE_TIE)
        .count();
    let figures = StageFigures::CrossSection(CrossSectionFigures {
        copies: n,
        copies_at_or_above: beaten,
        quantile: q,
        sharpe_at_quantile: bar,
        sharpe_mean: mean,
        validation_sharpe: validation,
    });
    let rule = format!(
        "validation Sharpe > the {:.0}th percentile of {n} cross-sectionally shuffled copies \
         (each bar's coin moves dealt out among the coins: the market's move kept, which coin \
         made it lost)",
        q * 100.0
    );
    let passed = n > 0 && validation - SHARPE_TIE > bar;
    let reason = if n == 0 {
        "no shuffled copy was measured".to_string()
    } else if passed {
        format!(
            "validation Sharpe {validation:.2} > shuffled {:.0}th percentile {bar:.2} (mean \
             {mean:.2}): it picks coins",
            q * 100.0
        )
    } else {
        format!(
            "no coin selection: validation Sharpe {validation:.2} is not above {bar:.2}, the \
             {:.0}th percentile with the coins' moves shuffled among them ({beaten} of {n} \
             copies did as well; mean {mean:.2}): the moves dealt out to the coins at random earn \
             as much",
            q * 100.0
        )
    };
    outcome(Stage::CrossSection, passed, rule, reason, figures)
}

/// Stage 3: validation against training, and the validation span's windows.
pub fn out_of_sample(train: f64, validation: f64, windows: &[f64], fraction: f64) -> Outcome {
    let positive = windows.iter().filter(|&&s| s > 0.0).count();
    let figures = StageFigures::OutOfSample(OutOfSampleFigures {
        positive_windows: positive,
        ratio: if train != 0.0 {
            validation / train
        } else {
            f64::NAN
        },
        train_sharpe: train,
        validation_sharpe: validation,
        window_sharpes: windows.to_vec(),
    });
    let rule = format!(
        "validation Sharpe > 0 and >= {fraction} x training Sharpe; positive in more than half of {} windows",
        windows.len()
    );
    let (passed, reason) = if validation <= 0.0 {
        (
            false,
            format!("validation Sharpe {validation:.2} is not positive"),
        )
    } else if validation < fraction * train {
        (
            false,
            format!(
                "validation Sharpe {validation:.2} is below {fraction} x training Sharpe {train:.2}"
            ),
        )
    } else if positive * 2 <= windows.len() {
        (
            false,
            format!(
                "positive in only {positive} of {} validation windows",
                windows.len()
            ),
        )
    } else {
        (
            true,
            format!(
                "validation Sharpe {validation:.2} vs training {train:.2}; {positive} of {} windows positive",
                windows.len()
            ),
        )
    };
    outcome(Stage::OutOfSample, passed, rule, reason, figures)
}

/// The inputs of the deflated Sharpe ratio.
///
/// `sharpe` and `trial_var` are the statistic evolution scored (the Sharpe combined over coins,
/// `(1 − w)·mean + w·worst`), so the candidate is compared with its trials on the same footing;
/// `t`, `skew` and `kurtosis` are those of the candidate's equal-weight portfolio returns, the
/// one return series it has. The two are close but not the same statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DsrInput {
    /// The candidate's annualized training Sharpe.
    pub sharpe: f64,
    pub bars_per_year: f64,
    /// Returns in the training series.
    pub t: usize,
    pub skew: f64,
    /// Non-excess kurtosis.
    pub kurtosis: f64,
    /// Trials the run made (distinct genomes and programs evaluated).
    pub trials: usize,
    /// Variance (ddof 1) of the trials' annualized training Sharpe ratios; `None` when the run
    /// did not record them (a Sharpe objective other than the plain Sharpe).
    pub trial_var: Option<f64>,
    /// Cap the trials' variance at the null's (see [`deflated`]).
    pub capped: bool,
    /// Every trial the run made, when `trials` counts clusters of them.
    pub raw_trials: usize,
}

/// The variance (per period) that the deflated Sharpe uses for the trials' Sharpe ratios.
///
/// The expected maximum `SR₀` is that of `N` trials whose true Sharpe is zero, so the variance
/// it needs is the variance of a Sharpe *estimate* under that null. Bailey & López de Prado
/// estimate it by the variance `V` of the trials' Sharpe ratios, which is right when the trials
/// are independent and all null. When a market has real structure, strategies differ truly
/// (followers of a trend gain, faders lose) and `V` measures that spread too: the best of the
/// trials then sits near `√V · E[max]` by construction and no strategy can pass, however real
/// its edge. Under the null a Sharpe estimate from `T` returns has variance `1 / (T − 1)` per
/// period (at `SR = 0` skew and kurtosis drop out of the PSR variance), so `capped` uses
/// `min(V, 1 / (T − 1))`: `V` when the trials are no more dispersed than noise makes them
/// (correlated trials disperse less, which offsets counting them as `N` independent ones), and
/// the null's variance when they are more dispersed than noise can explain. Not capped, it is
/// the paper's `V` as is (`promotion.trial_variance = "empirical"`).
pub fn dsr_variance(trial_var_annual: f64, bars_per_year: f64, t: usize, capped: bool) -> f64 {
    let v = trial_var_annual / bars_per_year;
    if capped && t >= 2 {
        v.min(1.0 / (t - 1) as f64)
    } else {
        v
    }
}

/// Stage 4: the deflated Sharpe ratio of the training Sharpe over all trials.
pub fn deflated(d: &DsrInput, min_dsr: f64) -> Outcome {
    let rule = if d.trials == d.raw_trials {
        format!("deflated Sharpe ratio >= {min_dsr} over all trials")
    } else {
        format!(
            "deflated Sharpe ratio >= {min_dsr} over the trials' clusters ({} of {} trials)",
            d.trials, d.raw_trials
        )
    };
    let Some(var_annual) = d.trial_var else {
        return outcome(
            Stage::DeflatedSharpe,
            false,
            rule,
            "the run's trials are scored by another Sharpe objective (evolution.sharpe_objective), \
             so their Sharpe variance is unknown and the deflated Sharpe cannot be computed; \
             promote runs evolved with sharpe_objective = \"sharpe\""
                .into(),
            StageFigures::DeflatedUnknown { trials: d.trials },
        );
    };
    let root = d.bars_per_year.sqrt();
    let sr = d.sharpe / root;
    let var = dsr_variance(var_annual, d.bars_per_year, d.t, d.capped);
    let null_var = if d.t >= 2 {
        d.bars_per_year / (d.t - 1) as f64
    } else {
        f64::NAN
    };
    let sr0 = luck::expected_max_sharpe(d.trials, var);
    let dsr = luck::deflated_sharpe(sr, d.t, d.skew, d.kurtosis, d.trials, var);
    let psr = luck::psr(sr, d.t, d.skew, d.kurtosis, 0.0);
    let min_trl = luck::min_track_record(sr, d.skew, d.kurtosis, sr0, min_dsr);
    let figures = StageFigures::DeflatedSharpe(DeflatedFigures {
        dsr,
        expected_max_sharpe: sr0 * root,
        expected_max_sharpe_per_bar: sr0,
        kurtosis: d.kurtosis,
        min_track_record_bars: min_trl.is_finite().then_some(min_trl),
        null_sharpe_var: null_var,
        psr,
        raw_trials: d.raw_trials,
        sharpe: d.sharpe,
        sharpe_per_bar: sr,
        skew: d.skew,
        t: d.t,
        trial_sharpe_var: var_annual,
        trials: d.trials,
        used_sharpe_var: var * d.bars_per_year,
        variance: if d.capped { "capped" } else { "empirical" }.into(),
    });
    let (passed, reason) = if dsr.is_nan() {
        (
            false,
            "the deflated Sharpe is undefined (too few returns, or skew too strong for this Sharpe)"
                .into(),
        )
    } else if dsr < min_dsr {
        (
            false,
            format!(
                "could be luck: DSR {dsr:.3} < {min_dsr}; the best of {} trials reaches a Sharpe of \
                 {:.2} by chance, this one has {:.2} (PSR against 0: {psr:.3})",
                d.trials,
                sr0 * root,
                d.sharpe
            ),
        )
    } else {
        (
            true,
            format!(
                "DSR {dsr:.3}: Sharpe {:.2} against {:.2} expected from the best of {} trials",
                d.sharpe,
                sr0 * root,
                d.trials
            ),
        )
    };
    outcome(Stage::DeflatedSharpe, passed, rule, reason, figures)
}

/// Stage 5: the run's probability of backtest overfitting.
pub fn overfitting(pbo: Option<&Pbo>, max_pbo: f64) -> Outcome {
    let rule = format!("the front's probability of backtest overfitting (CSCV) <= {max_pbo}");
    match pbo {
        None => outcome(
            Stage::Overfitting,
            true,
            rule,
            "not computable (fewer than two distinct strategies in the front, or too few bars); \
             the other stages stand alone"
                .into(),
            StageFigures::OverfitUnknown { pbo: None },
        ),
        Some(p) => {
            let figures = StageFigures::Overfitting(p.into());
            if p.pbo > max_pbo {
                outcome(
                    Stage::Overfitting,
                    false,
                    rule,
                    format!(
                        "the run is overfit: PBO {:.2} > {max_pbo} (the in-sample best of the front is below the \
                         out-of-sample median in {:.0} % of {} splits); nothing from this run is promoted",
                        p.pbo,
                        p.pbo * 100.0,
                        p.combinations
                    ),
                    figures,
                )
            } else {
                outcome(
                    Stage::Overfitting,
                    true,
                    rule,
                    format!("PBO {:.2} over {} splits", p.pbo, p.combinations),
                    figures,
                )
            }
        }
    }
}

/// Stage 6: the sealed holdout against validation. `earlier_reads` is how often this
/// strategy's holdout was read before (reported: a holdout read often is no longer sealed).
pub fn holdout(validation: f64, holdout: f64, fraction: f64, earlier_reads: usize) -> Outcome {
    let figures = StageFigures::Holdout(HoldoutFigures {
        earlier_reads,
        holdout_sharpe: holdout,
        validation_sharpe: validation,
    });
    let rule = format!("holdout Sharpe > 0 and >= {fraction} x validation Sharpe");
    let note = if earlier_reads > 0 {
        format!(" (its holdout was read {earlier_reads} time(s) before: not a first look)")
    } else {
        String::new()
    };
    let (passed, reason) = if holdout <= 0.0 {
        (
            false,
            format!("holdout Sharpe {holdout:.2} is not positive{note}"),
        )
    } else if holdout < fraction * validation {
        (
            false,
            format!(
                "holdout Sharpe {holdout:.2} is below {fraction} x validation Sharpe {validation:.2}{note}"
            ),
        )
    } else {
        (
            true,
            format!("holdout Sharpe {holdout:.2} vs validation {validation:.2}{note}"),
        )
    };
    outcome(Stage::Holdout, passed, rule, reason, figures)
}

/// Stage 7: which of `daily` (each strategy's daily returns, in rank order, on the same days)
/// are admitted: greedily, at most `top`, each correlating at most `max_corr` with every one
/// admitted before it.
pub fn diversify(daily: &[Vec<f64>], max_corr: f64, top: usize) -> Vec<Outcome> {
    let mut chosen: Vec<usize> = Vec::new();
    let rule = format!(
        "at most {top} admitted, in rank order, each with daily-return correlation <= {max_corr} to those before it"
    );
    daily
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let worst = chosen
                .iter()
                .map(|&j| (j, fitness::correlation(d, &daily[j])))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let figures = StageFigures::Diversity(DiversityFigures {
                admitted_before: chosen.len(),
                max_correlation: worst.map(|w| w.1),
                with: worst.map(|w| w.0),
            });
            let (passed, reason) = if chosen.len() >= top {
                (false, format!("{top} strategies already admitted (--top)"))
            } else if let Some((j, c)) = worst.filter(|w| w.1 > max_corr) {
                (
                    false,
                    format!(
                        "correlates {c:.2} with candidate #{} admitted before it",
                        j + 1
                    ),
                )
            } else {
                chosen.push(i);
                (
                    true,
                    match worst {
                        Some((_, c)) => format!("admitted; highest correlation {c:.2}"),
                        None => "admitted first".into(),
                    },
                )
            };
            outcome(Stage::Diversity, passed, rule.clone(), reason, figures)
        })
        .collect()
}

/// How the deflated Sharpe takes the trials' Sharpe variance (`promotion.trial_variance`): as
/// measured, or capped at the null's ([`dsr_variance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialVariance {
    Capped,
    Empirical,
}

/// What the deflated Sharpe counts as trials (`promotion.trials`): every one the run made, or
/// the clusters of their training returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialCount {
    Raw,
    Clustered,
}

/// The run's trials: what the deflated Sharpe deflates by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trials {
    /// Distinct genomes and programs evaluated.
    pub count: usize,
    /// See [`DsrInput::trial_var`].
    pub sharpe_var: Option<f64>,
    /// The trials clustered by their training returns ([`cluster_trials`]), when computed.
    pub effective: Option<EffectiveTrials>,
    /// Whether the deflated Sharpe counts the clusters (`promotion.trials = "clustered"`)
    /// instead of every trial.
    pub clustered: bool,
}

impl Trials {
    /// The trials of a run's fitness cache, whose Sharpe objective is `objective`.
    pub fn of<'a>(
        evaluations: impl Iterator<Item = &'a crate::evolution::Evaluation>,
        objective: SharpeObjective,
    ) -> Self {
        let sharpes: Vec<f64> = evaluations
            .map(|e| e.sharpe())
            .filter(|s| s.is_finite())
            .collect();
        let n = sharpes.len();
        let var = (n >= 2 && objective == SharpeObjective::Plain).then(|| {
            let m = sharpes.iter().sum::<f64>() / n as f64;
            sharpes.iter().map(|s| (s - m) * (s - m)).sum::<f64>() / (n - 1) as f64
        });
        Self {
            count: n,
            sharpe_var: var,
            effective: None,
            clustered: false,
        }
    }

    /// The number of trials and their Sharpe variance (annual) the deflated Sharpe uses: the
    /// clusters' when counting clusters and they are known, else every trial's.
    pub fn for_dsr(&self) -> (usize, Option<f64>) {
        match (self.clustered, self.effective) {
            (true, Some(e)) => (e.clusters, e.sharpe_var),
            _ => (self.count, self.sharpe_var),
        }
    }
}

/// The annualized Sharpe the best of `n` zero-Sharpe trials reaches by chance, with the trials'
/// annual Sharpe variance `var_annual` over `t` returns ([`dsr_variance`]).
pub fn noise_max_sharpe(
    n: usize,
    var_annual: f64,
    bars_per_year: f64,
    t: usize,
    capped: bool,
) -> f64 {
    let var = dsr_variance(var_annual, bars_per_year, t, capped);
    luck::expected_max_sharpe(n, var) * bars_per_year.sqrt()
}

/// Seed of the sample of trials that is clustered (XORed with the run's seed).
const CLUSTER_STREAM: u64 = 0x636c_7573_7465_7201;

/// The effective number of trials of a run: up to `sample` of its trials (`keys`, the fitness
/// cache's genomes; a seeded sample when there are more) backtested on the training segment,
/// each as the daily sums of the return series the gauntlet judges
/// ([`Candidates::training_returns`]), clustered by correlation ([`crate::fitness::trials`]).
/// Costs one training backtest per sampled trial, in parallel, and no disk.
pub fn cluster_trials<C: Candidates>(
    candidates: &C,
    keys: &[&CacheKey],
    sample: usize,
    seed: u64,
) -> EffectiveTrials {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ CLUSTER_STREAM);
    let mut picked: Vec<usize> = if keys.len() > sample {
        rand::seq::index::sample(&mut rng, keys.len(), sample).into_vec()
    } else {
        (0..keys.len()).collect()
    };
    picked.sort_unstable();
    let series: Vec<Vec<f64>> = picked
        .par_iter()
        .filter_map(|&i| {
            let (seed_index, bits, text) = keys[i];
            let genes: Vec<f64> = bits.iter().map(|b| f64::from_bits(*b)).collect();
            let program = match text {
                Some(t) => Some(crate::genome::program::parse(t, &crate::seeds::spec_of).ok()?),
                None => None,
            };
            let (ts, r) = candidates.training_returns(*seed_index, &genes, program.as_ref());
            Some(daily_sums(&ts, &r))
        })
        .collect();
    crate::fitness::trials::effective_trials(&series, 365.0, seed)
}

/// Per-bar returns summed per UTC day.
fn daily_sums(ts: &[i64], r: &[f64]) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    let mut day = i64::MIN;
    for (&t, &x) in ts.iter().zip(r) {
        let d = t.div_euclid(crate::market::membership::DAY_MS);
        if d != day {
            out.push(0.0);
            day = d;
        }
        if let Some(last) = out.last_mut() {
            *last += x;
        }
    }
    out
}

/// A strategy's returns on one segment.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SegmentRun {
    pub figures: Option<Figures>,
    /// The standard error of the Sharpe (Lo) where the Sharpe is that of one return series
    /// (a portfolio's account); `None` for a Sharpe aggregated over coins.
    pub sharpe_se: Option<f64>,
    /// The Sharpe each regime decided, pooled over coins (training, validation, holdout).
    pub regimes: Vec<RegimeFigure>,
    /// The equal-weight portfolio of its coins: timestamps and per-bar returns.
    #[serde(skip)]
    pub ts: Vec<i64>,
    #[serde(skip)]
    pub returns: Vec<f64>,
}

/// One candidate's passage through the gauntlet.
#[derive(Debug, Clone, Serialize)]
pub struct Judged {
    /// Its place in the ranking (0 = first).
    pub rank: usize,
    /// The member hash of `runs show`.
    pub id: String,
    pub seed: String,
    pub stages: Vec<Outcome>,
    /// Passed every stage up to the holdout.
    pub passed: bool,
    /// Admitted by the diversity stage.
    pub admitted: bool,
    #[serde(skip)]
    pub train: SegmentRun,
    #[serde(skip)]
    pub validation: SegmentRun,
    #[serde(skip)]
    pub holdout: Option<SegmentRun>,
    /// Validation Sharpe on each permuted copy (empty if it stopped before the nulls).
    #[serde(skip)]
    pub null_sharpes: Vec<f64>,
    /// Validation Sharpe on each cross-sectionally shuffled copy (empty for single-coin
    /// strategies and where it stopped before that stage).
    #[serde(skip)]
    pub cross_sharpes: Vec<f64>,
    /// The regime policy its validation figures suggest: flat where it lost over at least a
    /// month of bars ([`policy_from_figures`]).
    pub regime_policy: Policy,
}

impl Judged {
    /// The stage where it stopped: the first failed one.
    pub fn stopped_at(&self) -> Option<&Outcome> {
        self.stages.iter().find(|o| !o.passed)
    }
}

/// What the gauntlet needs besides the ranked candidates.
pub struct Setup<'a, C: Candidates> {
    /// The run's candidates, backtested.
    pub candidates: &'a C,
    /// The run's seed (the null copies' streams derive from it).
    pub seed: u64,
    pub cfg: &'a super::PromotionConfig,
    pub trials: Trials,
    /// How many admissions this promotion may make.
    pub top: usize,
    /// The best validation Sharpes of the run's null searches (empty: it has none).
    pub search_nulls: Vec<f64>,
}

/// The gauntlet's result for a run.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub candidates: Vec<Judged>,
    pub pbo: Option<Pbo>,
    pub trials: Trials,
    /// The expected best Sharpe of noise, raw and clustered (`None` without the trials'
    /// Sharpe variance).
    pub noise: Option<NoiseSharpe>,
    /// Whether the holdout was loaded (some candidate reached it).
    pub holdout_read: bool,
}

/// Annualized Sharpe of each of `k` equal contiguous windows of `returns`.
pub fn window_sharpes(returns: &[f64], k: usize, bars_per_year: f64) -> Vec<f64> {
    let n = returns.len();
    (0..k)
        .map(|i| {
            let (a, b) = (i * n / k, (i + 1) * n / k);
            fitness::sharpe(&returns[a..b], bars_per_year)
        })
        .collect()
}

/// Runs the gauntlet on `ranked` (a run's first front, in rank order). `read_holdout` is called
/// once per candidate that reaches the holdout, before it is read, with the candidate's index in
/// `ranked`; it returns how often that strategy's holdout was read before, or an error that
/// stops the gauntlet. `load_holdout` loads the holdout segment (called at most once).
///
/// # Errors
/// The first error of `read_holdout` or `load_holdout`.
pub fn run<C: Candidates, E>(
    ranked: &[Ranked],
    setup: &Setup<'_, C>,
    read_holdout: &mut dyn FnMut(usize) -> Result<usize, E>,
    load_holdout: &mut dyn FnMut() -> Result<C::Holdout, E>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Verdict, E> {
    let c = setup.candidates;
    let bpy = c.bars_per_year();
    let cfg = setup.cfg;
    let seed = setup.seed;
    progress(&format!(
        "backtesting {} candidates on training and validation",
        ranked.len()
    ));
    let runs: Vec<(SegmentRun, SegmentRun)> = ranked
        .par_iter()
        .map(|r| (c.segment(r, false), c.segment(r, true)))
        .collect();
    progress(&format!(
        "measuring {} candidates' Sharpe under other costs and delays",
        ranked.len()
    ));
    let sensitivities: Vec<CostSensitivity> =
        ranked.par_iter().map(|r| sensitivity(c, r)).collect();
    // PBO over the front: each candidate's training then validation returns.
    let columns: Vec<Vec<f64>> = runs
        .iter()
        .map(|(t, v)| t.returns.iter().chain(&v.returns).copied().collect())
        .collect();
    let pbo = fitness::pbo::pbo(&columns, cfg.pbo_blocks);
    let b = c.engine();
    let mut holdout_data: Option<C::Holdout> = None;
    let mut out = Vec::with_capacity(ranked.len());
    for (i, (r, (train, validation))) in ranked.iter().zip(runs).enumerate() {
        let mut judged = Judged {
            rank: i,
            id: r.id.clone(),
            seed: r.seed.clone(),
            stages: Vec::new(),
            passed: false,
            admitted: false,
            train,
            validation,
            holdout: None,
            null_sharpes: Vec::new(),
            cross_sharpes: Vec::new(),
            regime_policy: Policy::TRADE,
        };
        // A month of bars per regime before a loss there counts.
        judged.regime_policy =
            policy_from_figures(&judged.validation.regimes, (bpy / 12.0) as usize);
        let tf = judged.train.figures.unwrap_or(r.train);
        let vf = judged.validation.figures.unwrap_or(r.validation);
        let go = |o: Outcome, stages: &mut Vec<Outcome>| {
            let ok = o.passed;
            stages.push(o);
            ok
        };
        let stages = &mut judged.stages;
        'stages: {
            let sens = Some(sensitivities[i].clone());
            if !go(
                costs(&tf, b.fee, b.slippage, b.funding, sens, cfg.double_costs),
                stages,
            ) {
                break 'stages;
            }
            if C::CROSS_SECTION {
                progress(&format!(
                    "candidate {} of {} ({}): {} cross-sectionally shuffled copies",
                    i + 1,
                    ranked.len(),
                    r.id,
                    cfg.cross_nulls
                ));
                let cross: Vec<f64> = (0..cfg.cross_nulls)
                    .into_par_iter()
                    .map(|k| c.cross_section_sharpe(r, seed, k))
                    .collect();
                let ok = go(cross_section(vf.sharpe, &cross, cfg.cross_quantile), stages);
                judged.cross_sharpes = cross;
                if !ok {
                    break 'stages;
                }
            }
            progress(&format!(
                "candidate {} of {} ({}): {} permuted copies",
                i + 1,
                ranked.len(),
                r.id,
                cfg.nulls
            ));
            let flipped = c.flipped_sharpe(r);
            let null_sharpes: Vec<f64> = (0..cfg.nulls)
                .into_par_iter()
                .map(|k| c.null_sharpe(r, seed, k))
                .collect();
            let ok = go(
                nulls(vf.sharpe, flipped, &null_sharpes, cfg.null_quantile),
                stages,
            );
            judged.null_sharpes = null_sharpes;
            if !ok {
                break 'stages;
            }
            if !go(
                search_nulls(
                    r.validation.sharpe,
                    &setup.search_nulls,
                    cfg.search_null_quantile,
                ),
                stages,
            ) {
                break 'stages;
            }
            let windows = window_sharpes(&judged.validation.returns, cfg.oos_windows, bpy);
            if !go(
                out_of_sample(tf.sharpe, vf.sharpe, &windows, cfg.oos_fraction),
                stages,
            ) {
                break 'stages;
            }
            let (skew, kurtosis) = luck::moments(&judged.train.returns);
            let (trials, trial_var) = setup.trials.for_dsr();
            let d = DsrInput {
                sharpe: tf.sharpe,
                bars_per_year: bpy,
                t: judged.train.returns.len(),
                skew,
                kurtosis,
                trials,
                trial_var,
                capped: setup.cfg.trial_variance == TrialVariance::Capped,
                raw_trials: setup.trials.count,
            };
            if !go(deflated(&d, cfg.min_dsr), stages) {
                break 'stages;
            }
            if !go(overfitting(pbo.as_ref(), cfg.max_pbo), stages) {
                break 'stages;
            }
            let earlier = read_holdout(i)?;
            if holdout_data.is_none() {
                progress("reading the holdout");
                holdout_data = Some(load_holdout()?);
            }
            let Some(h) = holdout_data.as_ref().and_then(|h| c.holdout(h, r)) else {
                go(
                    outcome(
                        Stage::Holdout,
                        false,
                        "holdout Sharpe > 0".into(),
                        "the run's holdout holds no bars (train_fraction + validation_fraction \
                         leaves nothing)"
                            .into(),
                        StageFigures::Nothing {},
                    ),
                    stages,
                );
                break 'stages;
            };
            let hs = h.figures.map_or(0.0, |f| f.sharpe);
            judged.holdout = Some(h);
            if !go(
                holdout(vf.sharpe, hs, cfg.holdout_fraction, earlier),
                stages,
            ) {
                break 'stages;
            }
            judged.passed = true;
        }
        out.push(judged);
    }
    // Diversity over the passers, on daily returns of all three segments.
    let passers: Vec<usize> = (0..out.len()).filter(|&i| out[i].passed).collect();
    let daily: Vec<Vec<(i64, f64)>> = passers
        .iter()
        .map(|&i| {
            let j = &out[i];
            let mut ts = j.train.ts.clone();
            let mut r = j.train.returns.clone();
            for s in std::iter::once(&j.validation).chain(j.holdout.as_ref()) {
                ts.extend(&s.ts);
                r.extend(&s.returns);
            }
            fitness::daily_returns(&ts, &r)
        })
        .collect();
    let aligned = align_days(&daily);
    for (k, o) in diversify(&aligned, cfg.max_correlation, setup.top)
        .into_iter()
        .enumerate()
    {
        let j = &mut out[passers[k]];
        j.admitted = o.passed;
        j.stages.push(o);
    }
    let t = c.train_bars();
    let capped = cfg.trial_variance == TrialVariance::Capped;
    let noise = setup.trials.sharpe_var.map(|v| NoiseSharpe {
        raw: noise_max_sharpe(setup.trials.count, v, bpy, t, capped),
        clustered: setup
            .trials
            .effective
            .and_then(|e| Some(noise_max_sharpe(e.clusters, e.sharpe_var?, bpy, t, capped))),
    });
    Ok(Verdict {
        candidates: out,
        pbo,
        trials: setup.trials,
        noise,
        holdout_read: holdout_data.is_some(),
    })
}

/// The annualized Sharpe the best trial reaches by chance ([`noise_max_sharpe`]), counting
/// every trial and counting the trials' clusters, over the training span.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NoiseSharpe {
    pub raw: f64,
    pub clustered: Option<f64>,
}

/// The values of several daily series on the days all of them have.
fn align_days(series: &[Vec<(i64, f64)>]) -> Vec<Vec<f64>> {
    let Some(first) = series.first() else {
        return Vec::new();
    };
    let common: Vec<i64> = first
        .iter()
        .map(|d| d.0)
        .filter(|day| {
            series
                .iter()
                .all(|s| s.binary_search_by_key(day, |d| d.0).is_ok())
        })
        .collect();
    series
        .iter()
        .map(|s| {
            common
                .iter()
                .filter_map(|day| s.binary_search_by_key(day, |d| d.0).ok().map(|i| s[i].1))
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(sharpe: f64, total_return: f64) -> Figures {
        Figures {
            sharpe,
            consistency: 0.5,
            max_drawdown: 0.1,
            turnover: 10.0,
            total_return,
            trades: 40,
            feasible: true,
            portfolio: None,
        }
    }

    #[test]
    fn search_nulls_on_both_sides_and_skipped_without_them() {
        // The 0.9 quantile of 0, 1, 2, 3, 4: position 3.6 -> 3.6.
        let bests = [0.0, 1.0, 2.0, 3.0, 4.0];
        let o = search_nulls(3.7, &bests, 0.9);
        assert!(o.passed, "{}", o.reason);
        let o = search_nulls(3.6, &bests, 0.9);
        assert!(!o.passed);
        assert!(
            o.reason.contains("not above 3.60") && o.reason.contains("(1 of them did as well)"),
            "{}",
            o.reason
        );
        let StageFigures::SearchNulls(f) = &o.figures else {
            panic!("{:?}", o.figures)
        };
        assert_eq!((f.searches, f.searches_at_or_above), (5, 1));
        let o = search_nulls(-1.0, &[], 0.9);
        assert!(o.passed && o.reason.starts_with("skipped"), "{}", o.reason);
    }

    #[test]
    fn break_even_is_where_the_sharpe_crosses_zero() {
        // 2 − 0.8·m crosses zero at m = 2.5.
        assert_eq!(break_even(&|m| 2.0 - 0.8 * m), Some(2.5));
        // 0.3 − 0.1·m at m = 3.
        assert_eq!(break_even(&|m| 0.3 - 0.1 * m), Some(3.0));
        // Losing without costs; still winning at 10×; NaN counts as no gain.
        assert_eq!(break_even(&|m| -0.1 - m), Some(0.0));
        assert_eq!(break_even(&|m| 5.0 - 0.1 * m), None);
        assert_eq!(break_even(&|_| f64::NAN), Some(0.0));
    }

    /// A sensitivity whose Sharpe falls by `slope` per cost multiple from `train` / `valid`
    /// without costs.
    fn sloped(train: f64, valid: f64, slope: f64) -> CostSensitivity {
        let segment = |s0: f64| SegmentSensitivity {
            break_even_multiple: break_even(&|m| s0 - slope * m),
            costs: COST_MULTIPLES
                .map(|multiple| CostPoint {
                    multiple,
                    sharpe: s0 - slope * multiple,
                })
                .to_vec(),
            delays: Vec::new(),
        };
        CostSensitivity {
            train: segment(train),
            validation: segment(valid),
        }
    }

    #[test]
    fn twice_the_costs_must_leave_a_gain_when_asked() {
        let with = |valid: f64, double_costs: bool| {
            let s = sloped(1.6, valid, 0.4);
            costs(
                &figures(1.2, 0.3),
                0.00045,
                0.0005,
                true,
                Some(s),
                double_costs,
            )
        };
        // Validation: 1.0 − 0.4·2 = 0.2 at 2× (break-even 2.5×): passes, and says so.
        let o = with(1.0, true);
        assert!(o.passed, "{}", o.reason);
        assert!(
            o.reason
                .contains("at 2x costs Sharpe 0.80 on training, 0.20 on validation")
                && o.reason.contains("breaks even at 2.50x"),
            "{}",
            o.reason
        );
        // Validation: 0.7 − 0.4·2 = −0.1 at 2× (break-even 1.75×): refused, unless the
        // option is off.
        let o = with(0.7, true);
        assert!(!o.passed);
        assert!(
            o.reason.contains("does not survive twice the costs")
                && o.reason.contains("-0.10 on validation")
                && o.reason.contains("1.75x"),
            "{}",
            o.reason
        );
        assert!(o.rule.contains("2x fees and slippage"));
        let o = with(0.7, false);
        assert!(o.passed && !o.rule.contains("2x"), "{}", o.rule);
        let StageFigures::Costs(f) = &o.figures else {
            panic!("{:?}", o.figures)
        };
        assert_eq!(
            f.sensitivity.as_ref().unwrap().validation.at_costs(3.0),
            Some(0.7 - 0.4 * 3.0)
        );
    }

    #[test]
    fn costs_on_both_sides() {
        assert!(costs(&figures(1.2, 0.3), 0.00045, 0.0005, true, None, true).passed);
        let o = costs(&figures(1.2, -0.01), 0.00045, 0.0005, true, None, true);
        assert!(
            !o.passed && o.reason.contains("loses after costs"),
            "{}",
            o.reason
        );
        // A positive mean return with a Sharpe below zero is not called a loss.
        let o = costs(&figures(-0.1, 0.0175), 0.00045, 0.0005, true, None, true);
        assert!(!o.passed);
        assert!(
            !o.reason.contains("loses")
                && o.reason.contains("Sharpe -0.10")
                && o.reason.contains("mean return is +1.75 %"),
            "{}",
            o.reason
        );
        let thin = Figures {
            feasible: false,
            ..figures(1.2, 0.3)
        };
        let o = costs(&thin, 0.00045, 0.0005, true, None, true);
        assert!(
            !o.passed && o.reason.contains("too few trades"),
            "{}",
            o.reason
        );
        let o = costs(&figures(1.2, 0.3), 0.0, 0.0, true, None, true);
        assert!(
            !o.passed && o.reason.contains("without fees"),
            "{}",
            o.reason
        );
    }

    #[test]
    fn quantile_by_hand() {
        // Sorted 1..=5: the 0.95 quantile sits at position 0.95·4 = 3.8 → 4 + 0.8·1 = 4.8.
        assert!((quantile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.95) - 4.8).abs() < 1e-12);
        assert_eq!(quantile(&[2.0], 0.95), 2.0);
        assert_eq!(quantile(&[0.0, 10.0], 0.5), 5.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn nulls_on_both_sides() {
        let null: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect(); // 0.00 .. 0.99
                                                                           // 95th percentile: position 94.05 → 0.94 + 0.05·0.01 = 0.9405.
        let bar = quantile(&null, 0.95);
        assert!((bar - 0.9405).abs() < 1e-12);
        let o = nulls(0.95, -0.5, &null, 0.95);
        assert!(o.passed, "{}", o.reason);
        let o = nulls(0.94, -0.5, &null, 0.95);
        assert!(!o.passed && o.reason.contains("noise"), "{}", o.reason);
        // 0.94 ..= 0.99: six copies did as well.
        let StageFigures::Nulls(f) = &o.figures else {
            panic!("{:?}", o.figures)
        };
        assert_eq!(f.nulls_at_or_above, 6);
        // Beating the nulls is not enough when the flipped signal does better.
        let o = nulls(2.0, 2.1, &null, 0.95);
        assert!(!o.passed && o.reason.contains("flipped"), "{}", o.reason);
    }

    /// Every stage's figures read back as written from the registry's JSON, by stage, the
    /// special shapes (an unknown deflated Sharpe, no PBO, a holdout without bars) included; a
    /// NaN (written as null) reads back as NaN.
    #[test]
    fn stage_figures_read_back_by_stage() {
        let train = Figures {
            sharpe: 1.2,
            consistency: 0.75,
            max_drawdown: 0.1,
            turnover: 30.0,
            total_return: 0.3,
            trades: 57,
            feasible: true,
            portfolio: None,
        };
        let dsr = DsrInput {
            sharpe: 2.5,
            bars_per_year: 8760.0,
            t: 5000,
            skew: -0.2,
            kurtosis: 6.0,
            trials: 300,
            trial_var: Some(2.0),
            capped: true,
            raw_trials: 300,
        };
        let pbo = Pbo {
            pbo: 0.25,
            prob_oos_loss: 0.1,
            combinations: 70,
            strategies: 8,
            block_rows: 100,
            median_logit: 0.9,
        };
        let outcomes = vec![
            costs(&train, 0.00045, 0.0001, true, None, true),
            cross_section(1.9, &[0.5, 1.0, 2.0], 0.95),
            nulls(0.95, -0.5, &[0.1, 0.2], 0.95),
            out_of_sample(0.0, 0.5, &[0.4, -0.1], 0.5),
            deflated(&dsr, 0.95),
            deflated(
                &DsrInput {
                    trial_var: None,
                    ..dsr
                },
                0.95,
            ),
            overfitting(Some(&pbo), 0.5),
            overfitting(None, 0.5),
            holdout(1.0, 0.8, 0.5, 2),
            diversify(&[vec![0.01, -0.02, 0.03], vec![0.02, -0.01, 0.0]], 0.7, 3)[1].clone(),
            outcome(
                Stage::Holdout,
                false,
                "r".into(),
                "no bars".into(),
                StageFigures::Nothing {},
            ),
        ];
        let json = serde_json::to_string(&outcomes).unwrap();
        let back: Vec<Outcome> = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        // Out of sample on a training Sharpe of 0: the ratio is NaN, null in JSON.
        assert!(json.contains(r#""ratio":null"#), "{json}");
        let StageFigures::OutOfSample(f) = &back[3].figures else {
            panic!("{:?}", back[3].figures)
        };
        assert!(f.ratio.is_nan());
        assert_eq!(f.window_sharpes, vec![0.4, -0.1]);
        assert_eq!(
            back[5].figures,
            StageFigures::DeflatedUnknown { trials: 300 }
        );
        assert_eq!(back[7].figures, StageFigures::OverfitUnknown { pbo: None });
        assert_eq!(back[10].figures, StageFigures::Nothing {});
        assert_eq!(back[6], outcomes[6]);
        assert_eq!(back[8], outcomes[8]);
        // A stage's figures that are not its own are refused, naming the stage.
        let wrong = json.replacen(r#""stage":"costs""#, r#""stage":"nulls""#, 1);
        let e = serde_json::from_str::<Vec<Outcome>>(&wrong).unwrap_err();
        assert!(e.to_string().contains("the nulls stage's figures"), "{e}");
    }

    fn cross(o: &Outcome) -> &CrossSectionFigures {
        let StageFigures::CrossSection(f) = &o.figures else {
            panic!("{:?}", o.figures)
        };
        f
    }

    fn dsr_of(o: &Outcome) -> &DeflatedFigures {
        let StageFigures::DeflatedSharpe(f) = &o.figures else {
            panic!("{:?}", o.figures)
        };
        f
    }

    #[test]
    fn cross_section_on_both_sides() {
        // Copies 0.0, 0.1, …, 1.9: the 0.95 quantile sits at position 18.05 → 1.805.
        let copies: Vec<f64> = (0..20).map(|i| f64::from(i) / 10.0).collect();
        let o = cross_section(1.9, &copies, 0.95);
        assert!(o.passed, "{}", o.reason);
        assert!((cross(&o).sharpe_at_quantile - 1.805).abs() < 1e-12);
        assert_eq!(cross(&o).copies_at_or_above, 1);
        let o = cross_section(1.5, &copies, 0.95);
        assert!(
            !o.passed && o.reason.contains("no coin selection"),
            "{}",
            o.reason
        );
        assert_eq!(cross(&o).copies_at_or_above, 5);
        // Every copy as good as the market to within the tie: stopped, all 20 counted.
        let same = vec![2.24; 20];
        let o = cross_section(2.2404, &same, 0.95);
        assert!(!o.passed);
        assert_eq!(cross(&o).copies_at_or_above, 20);
        assert!(!cross_section(2.0, &[], 0.95).passed);
    }

    #[test]
    fn out_of_sample_on_both_sides() {
        let w = [0.5, 1.0, -0.2, 0.3];
        assert!(out_of_sample(2.0, 1.0, &w, 0.5).passed);
        assert!(!out_of_sample(2.0, 0.99, &w, 0.5).passed);
        assert!(!out_of_sample(-1.0, -0.1, &w, 0.5).passed);
        // Two of four windows positive is not "most".
        let o = out_of_sample(2.0, 1.5, &[0.5, 1.0, -0.2, -0.3], 0.5);
        assert!(!o.passed && o.reason.contains("2 of 4"), "{}", o.reason);
    }

    #[test]
    fn window_sharpes_cut_evenly() {
        // Six returns in three windows of two: [1, 3] (mean 2, std √2), [−1, −1] (std 0 → 0),
        // [2, 4] (mean 3, std √2); one bar per "year" so nothing is scaled.
        let s = window_sharpes(&[1.0, 3.0, -1.0, -1.0, 2.0, 4.0], 3, 1.0);
        assert!((s[0] - 2.0 / 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s[1], 0.0);
        assert!((s[2] - 3.0 / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn the_deflated_sharpe_counts_clusters_only_when_asked_and_known() {
        let mut t = Trials {
            count: 641,
            sharpe_var: Some(1.048),
            effective: Some(EffectiveTrials {
                clustered: 400,
                clusters: 2,
                sharpe_var: Some(2.751),
            }),
            clustered: false,
        };
        assert_eq!(t.for_dsr(), (641, Some(1.048)));
        t.clustered = true;
        assert_eq!(t.for_dsr(), (2, Some(2.751)));
        t.effective = None;
        assert_eq!(t.for_dsr(), (641, Some(1.048)));
        // Daily sums of per-bar returns by UTC day.
        let h = 3_600_000;
        let d = crate::market::membership::DAY_MS;
        assert_eq!(
            daily_sums(&[0, h, d, d + h, 3 * d], &[0.1, 0.2, 0.3, -0.1, 0.5]),
            vec![0.1 + 0.2, 0.3 - 0.1, 0.5]
        );
    }

    #[test]
    fn deflated_on_both_sides() {
        // The paper's example (annual SR 2.5 over 1,250 daily returns, 100 trials with Sharpe
        // variance 0.5, skew −3, kurtosis 10) gives DSR 0.9004: below 0.95, above 0.9.
        let d = DsrInput {
            sharpe: 2.5,
            bars_per_year: 250.0,
            t: 1250,
            skew: -3.0,
            kurtosis: 10.0,
            trials: 100,
            trial_var: Some(0.5),
            capped: false,
            raw_trials: 100,
        };
        let o = deflated(&d, 0.95);
        assert!(
            !o.passed && o.reason.contains("could be luck"),
            "{}",
            o.reason
        );
        let dsr = dsr_of(&o).dsr;
        assert!((dsr - 0.9004).abs() < 5e-4, "{dsr}");
        let sr0 = dsr_of(&o).expected_max_sharpe_per_bar;
        assert!((sr0 - 0.1132).abs() < 5e-5, "{sr0}");
        assert!(deflated(&d, 0.90).passed);
        // Capped: the null's variance, 1/1249 per day (0.2002 a year), is below the trials'
        // 0.5/250, so SR0 = √(1/1249)·(0.4228·Φ⁻¹(0.99) + 0.5772·Φ⁻¹(1 − 1/(100e)))
        // = 0.028296·(0.4228·2.32635 + 0.5772·2.68009) = 0.07160 per day; then
        // z = (0.158114 − 0.071605)·√1249 / √(1 + 3·0.158114 + 2.25·0.025) = 3.05731 / 1.23717
        // = 2.4712 → Φ = 0.99327.
        let capped = deflated(&DsrInput { capped: true, ..d }, 0.95);
        assert!(capped.passed, "{}", capped.reason);
        let sr0 = dsr_of(&capped).expected_max_sharpe_per_bar;
        assert!((sr0 - 0.07160).abs() < 5e-5, "{sr0}");
        let dsr = dsr_of(&capped).dsr;
        assert!((dsr - 0.99327).abs() < 5e-5, "{dsr}");
        // Trials less dispersed than noise keep their own variance.
        assert_eq!(dsr_variance(0.1, 250.0, 1250, true), 0.1 / 250.0);
        let o = deflated(
            &DsrInput {
                trial_var: None,
                ..d
            },
            0.5,
        );
        assert!(
            !o.passed && o.reason.contains("sharpe_objective"),
            "{}",
            o.reason
        );
    }

    #[test]
    fn overfitting_on_both_sides() {
        let p = |v: f64| Pbo {
            pbo: v,
            prob_oos_loss: 0.1,
            combinations: 12870,
            strategies: 10,
            block_rows: 100,
            median_logit: 0.3,
        };
        assert!(overfitting(Some(&p(0.5)), 0.5).passed);
        let o = overfitting(Some(&p(0.51)), 0.5);
        assert!(
            !o.passed && o.reason.contains("nothing from this run"),
            "{}",
            o.reason
        );
        assert!(overfitting(None, 0.5).passed);
    }

    #[test]
    fn holdout_on_both_sides() {
        assert!(holdout(2.0, 1.0, 0.5, 0).passed);
        assert!(!holdout(2.0, 0.99, 0.5, 0).passed);
        assert!(!holdout(-1.0, -0.01, 0.5, 0).passed);
        let o = holdout(2.0, 1.5, 0.5, 3);
        assert!(o.passed && o.reason.contains("read 3 time"), "{}", o.reason);
    }

    #[test]
    fn diversity_is_greedy_in_rank_order() {
        let a = vec![1.0, 2.0, 3.0, 4.0, 5.0];
        let a2 = vec![1.1, 2.0, 3.1, 4.0, 5.2]; // correlation ~0.998 with a
                                                // Deviations −2 −1 0 1 2 and 2 −2 1 −1 0: Σxy = −3, Σx² = Σy² = 10 → −0.3.
        let b = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        let c = vec![2.0, 1.0, 2.0, 1.0, 2.0];
        let o = diversify(&[a.clone(), a2, b, c], 0.7, 2);
        assert!(o[0].passed);
        assert!(
            !o[1].passed && o[1].reason.contains("candidate #1"),
            "{}",
            o[1].reason
        );
        assert!(o[2].passed);
        let StageFigures::Diversity(f) = &o[2].figures else {
            panic!("{:?}", o[2].figures)
        };
        assert!((f.max_correlation.unwrap() + 0.3).abs() < 1e-12);
        assert!(!o[3].passed && o[3].reason.contains("already admitted"));
    }

    #[test]
    fn trials_from_evaluations() {
        use crate::evolution::Evaluation;
        let e: Vec<Evaluation> = [1.0, 2.0, 3.0, f64::NAN]
            .iter()
            .map(|&s| Evaluation::new(s, 0.5, 0.1, 1.0, 0.0))
            .collect();
        let t = Trials::of(e.iter(), SharpeObjective::Plain);
        assert_eq!(t.count, 3);
        assert_eq!(t.sharpe_var, Some(1.0));
        assert_eq!(
            Trials::of(e.iter(), SharpeObjective::Folds).sharpe_var,
            None
        );
    }

    #[test]
    fn days_align_on_common_days() {
        let a = vec![(1, 0.1), (2, 0.2), (3, 0.3)];
        let b = vec![(2, 1.0), (3, 2.0), (4, 3.0)];
        assert_eq!(align_days(&[a, b]), vec![vec![0.2, 0.3], vec![1.0, 2.0]]);
    }
}
