//! What comes after evolution: the validation gauntlet, the strategy registry and the reports
//! (see DESIGN.md).

pub mod candidates;
pub mod gauntlet;
pub mod registry;
pub mod report;
pub mod svg;

use serde::{Deserialize, Serialize};

use crate::settings::{count, range, Invalid};

/// Null copies per candidate (`promotion.nulls`, `promotion.cross_nulls`, `--nulls`).
pub const MAX_NULLS: usize = 100_000;

/// `[promotion]`: the validation gauntlet's thresholds and the strategy registry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionConfig {
    pub registry: String,
    pub top: usize,
    /// The `costs` stage also asks a positive Sharpe at twice the fees and slippage, on
    /// training and validation.
    pub double_costs: bool,
    pub nulls: usize,
    pub null_quantile: f64,
    pub search_null_quantile: f64,
    pub cross_nulls: usize,
    pub cross_quantile: f64,
    pub oos_fraction: f64,
    pub oos_windows: usize,
    pub min_dsr: f64,
    pub trial_variance: gauntlet::TrialVariance,
    pub trials: gauntlet::TrialCount,
    pub cluster_sample: usize,
    pub pbo_blocks: usize,
    pub max_pbo: f64,
    pub holdout_fraction: f64,
    pub max_correlation: f64,
}

impl PromotionConfig {
    /// Checks every key of the section.
    ///
    /// # Errors
    /// [`Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.registry.trim().is_empty() {
            return Err(Invalid::new("promotion.registry", "must not be empty"));
        }
        let nulls = " (each copy is one more backtest of every candidate's validation span)";
        count("promotion.top", self.top, 1, 1000, "")?;
        count("promotion.nulls", self.nulls, 1, MAX_NULLS, nulls)?;
        count(
            "promotion.cross_nulls",
            self.cross_nulls,
            1,
            MAX_NULLS,
            nulls,
        )?;
        count("promotion.oos_windows", self.oos_windows, 1, 1000, "")?;
        count(
            "promotion.pbo_blocks",
            self.pbo_blocks,
            2,
            crate::fitness::pbo::MAX_BLOCKS,
            "",
        )?;
        if !self.pbo_blocks.is_multiple_of(2) {
            return Err(Invalid::new(
                "promotion.pbo_blocks",
                format!("{} must be even", self.pbo_blocks),
            ));
        }
        range("promotion.null_quantile", self.null_quantile, 0.5, 1.0)?;
        range("promotion.cross_quantile", self.cross_quantile, 0.5, 1.0)?;
        range(
            "promotion.search_null_quantile",
            self.search_null_quantile,
            0.5,
            1.0,
        )?;
        range("promotion.oos_fraction", self.oos_fraction, 0.0, 10.0)?;
        range("promotion.min_dsr", self.min_dsr, 0.0, 1.0)?;
        count(
            "promotion.cluster_sample",
            self.cluster_sample,
            10,
            5000,
            "",
        )?;
        range("promotion.max_pbo", self.max_pbo, 0.0, 1.0)?;
        range(
            "promotion.holdout_fraction",
            self.holdout_fraction,
            0.0,
            10.0,
        )?;
        range("promotion.max_correlation", self.max_correlation, -1.0, 1.0)
    }
}
