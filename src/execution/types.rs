//! Money at the venue boundary: [`Price`] and [`Qty`] in `rust_decimal`, rounded to a venue's
//! tick and lot rules ([`VenueRules`]). The simulator works in `f64`; everything that reaches an
//! exchange or a ledger passes through these types.
//!
//! Hyperliquid perps: a price has at most 5 significant figures and at most `6 − szDecimals`
//! decimals, and an integer price is always allowed; a size has at most `szDecimals` decimals;
//! an order's value must be at least $10.

use rust_decimal::{prelude::FromPrimitive, Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Errors building money values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    #[error("{what} {value} is not a finite positive number")]
    NotPositive { what: &'static str, value: String },
    #[error("{what} {value} rounds to zero at {decimals} decimals")]
    RoundsToZero {
        what: &'static str,
        value: String,
        decimals: u32,
    },
    #[error("order value {value} is below the venue minimum {minimum}")]
    BelowMinimum { value: Decimal, minimum: Decimal },
}

/// A price that satisfies its venue's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Price(Decimal);

/// A size in coins that satisfies its venue's lot rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Qty(Decimal);

impl Price {
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl Qty {
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl std::fmt::Display for Price {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.normalize().fmt(f)
    }
}

impl std::fmt::Display for Qty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.normalize().fmt(f)
    }
}

/// Tick and lot rules of one instrument at one venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueRules {
    /// Decimals of a size (`szDecimals`).
    pub sz_decimals: u32,
    /// Most decimals of a price before `sz_decimals` is subtracted (6 for Hyperliquid perps).
    pub max_decimals: u32,
    /// Most significant figures of a non-integer price (5 on Hyperliquid).
    pub sig_figs: u32,
    /// Smallest order value in quote currency ($10 on Hyperliquid).
    pub min_notional: Decimal,
}

impl VenueRules {
    /// Hyperliquid perpetuals with the asset's `szDecimals`.
    pub fn hyperliquid_perp(sz_decimals: u32) -> Self {
        Self {
            sz_decimals,
            max_decimals: 6,
            sig_figs: 5,
            min_notional: Decimal::TEN,
        }
    }

    /// Rounds `px` (to nearest, ties to even) to a valid price: an integer price is kept; a
    /// price with five or more integer digits is rounded to an integer; otherwise to the fewer
    /// of `sig_figs` significant figures and `max_decimals − sz_decimals` decimals.
    ///
    /// # Errors
    /// [`MoneyError`] for a non-finite or non-positive price, or one that rounds to zero.
    pub fn price(&self, px: f64) -> Result<Price, MoneyError> {
        let d = positive("price", px)?;
        self.price_decimal(d)
    }

    /// As [`VenueRules::price`] for a decimal.
    ///
    /// # Errors
    /// As [`VenueRules::price`].
    pub fn price_decimal(&self, d: Decimal) -> Result<Price, MoneyError> {
        if d.fract().is_zero() {
            return Ok(Price(d.trunc()));
        }
        let max_dp = self.max_decimals.saturating_sub(self.sz_decimals);
        // Decimals that leave `sig_figs` significant figures: sig_figs − integer digits, or,
        // below 1, sig_figs plus the zeros after the point.
        let int_digits = integer_digits(d);
        let sig_dp = if int_digits > 0 {
            i64::from(self.sig_figs) - int_digits
        } else {
            i64::from(self.sig_figs) + leading_fraction_zeros(d)
        };
        let dp = sig_dp.clamp(0, i64::from(max_dp)) as u32;
        let r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
        if r.is_zero() {
            return Err(MoneyError::RoundsToZero {
                what: "price",
                value: d.to_string(),
                decimals: dp,
            });
        }
        Ok(Price(r.normalize()))
    }

    /// Rounds `size` down to `sz_decimals` (never more than asked for).
    ///
    /// # Errors
    /// [`MoneyError`] for a non-finite or non-positive size, or one below one lot.
    pub fn qty(&self, size: f64) -> Result<Qty, MoneyError> {
        self.qty_decimal(positive("size", size)?)
    }

    /// Rounds a decimal `size` down to the lot.
    ///
    /// # Errors
    /// As [`VenueRules::qty`].
    pub fn qty_decimal(&self, d: Decimal) -> Result<Qty, MoneyError> {
        if d <= Decimal::ZERO {
            return Err(MoneyError::NotPositive {
                what: "size",
                value: d.to_string(),
            });
        }
        let r = d.round_dp_with_strategy(self.sz_decimals, RoundingStrategy::ToZero);
        if r.is_zero() {
            return Err(MoneyError::RoundsToZero {
                what: "size",
                value: d.to_string(),
                decimals: self.sz_decimals,
            });
        }
        Ok(Qty(r.normalize()))
    }

    /// Whether `px` is a valid price as it is (what the exchange checks).
    pub fn is_valid_price(&self, px: Decimal) -> bool {
        px > Decimal::ZERO && self.price_decimal(px).is_ok_and(|p| p.0 == px)
    }

    /// Whether `size` is a valid size as it is.
    pub fn is_valid_qty(&self, size: Decimal) -> bool {
        self.qty_decimal(size).is_ok_and(|q| q.0 == size)
    }

    /// Checks the venue's minimum order value.
    ///
    /// # Errors
    /// [`MoneyError::BelowMinimum`] when `px · qty` is below it.
    pub fn check_notional(&self, px: Price, qty: Qty) -> Result<Decimal, MoneyError> {
        let value = px.0 * qty.0;
        if value < self.min_notional {
            return Err(MoneyError::BelowMinimum {
                value,
                minimum: self.min_notional,
            });
        }
        Ok(value)
    }
}

fn positive(what: &'static str, x: f64) -> Result<Decimal, MoneyError> {
    let bad = || MoneyError::NotPositive {
        what,
        value: x.to_string(),
    };
    if !(x.is_finite() && x > 0.0) {
        return Err(bad());
    }
    // The shortest decimal that reads back as `x` (what `x` prints as), not its binary expansion.
    Decimal::from_str_exact(&format!("{x}"))
        .or_else(|_| Decimal::from_f64(x).ok_or(()))
        .map_err(|()| bad())
}

/// Digits before the decimal point of a positive decimal (0 below 1).
fn integer_digits(d: Decimal) -> i64 {
    let int = d.trunc();
    if int.is_zero() {
        0
    } else {
        int.to_string().trim_start_matches('-').len() as i64
    }
}

/// Zeros right after the decimal point of a positive decimal below 1 (0.00123 → 2).
fn leading_fraction_zeros(d: Decimal) -> i64 {
    let mut x = d;
    let mut zeros = 0;
    while x < Decimal::new(1, 1) && zeros < 28 {
        x *= Decimal::TEN;
        zeros += 1;
    }
    zeros
}

/// The shortest decimal that reads back as `x` (`0` for a non-finite value, which the engine
/// never books).
pub fn decimal(x: f64) -> Decimal {
    use rust_decimal::prelude::FromPrimitive;
    if !x.is_finite() {
        return Decimal::ZERO;
    }
    Decimal::from_str_exact(&format!("{x}"))
        .ok()
        .or_else(|| Decimal::from_f64(x))
        .unwrap_or(Decimal::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(rules: &VenueRules, x: f64) -> String {
        rules.price(x).unwrap().to_string()
    }

    #[test]
    fn hyperliquid_price_rules() {
        // Hyperliquid's documented examples: 1234.5 is valid, 1234.56 is not (5 significant
        // figures); 0.001234 is valid, 0.0012345 is not (6 decimals); 123456 is valid.
        let r0 = VenueRules::hyperliquid_perp(0);
        assert_eq!(px(&r0, 1234.5), "1234.5");
        assert_eq!(px(&r0, 1234.56), "1234.6");
        assert_eq!(px(&r0, 1234.54), "1234.5");
        assert_eq!(px(&r0, 0.001234), "0.001234");
        assert_eq!(px(&r0, 0.0012345), "0.001234"); // ties to even at 6 decimals
        assert_eq!(px(&r0, 0.0012355), "0.001236");
        assert_eq!(px(&r0, 123456.0), "123456");
        assert_eq!(px(&r0, 12345.6), "12346");
        assert_eq!(px(&r0, 98765.4321), "98765");
        // "If szDecimals = 1, 0.01234 is valid but 0.012345 is not (more than 6 - szDecimals
        // decimal places)": it rounds to 5 decimals, ties to even.
        let r1 = VenueRules::hyperliquid_perp(1);
        assert_eq!(px(&r1, 0.01234), "0.01234");
        assert_eq!(px(&r1, 0.012345), "0.01234");
        assert_eq!(px(&r1, 0.012355), "0.01236");
        // BTC has szDecimals 5: at most 1 decimal.
        let btc = VenueRules::hyperliquid_perp(5);
        assert_eq!(px(&btc, 4321.27), "4321.3");
        assert_eq!(px(&btc, 97123.5), "97124");
        // szDecimals 2 allows 4 decimals: 5 significant figures bind first at 1.23456.
        let r2 = VenueRules::hyperliquid_perp(2);
        assert_eq!(px(&r2, 1.23456), "1.2346");
        assert_eq!(px(&r2, 0.123456), "0.1235");
        assert!(matches!(
            r2.price(0.00001),
            Err(MoneyError::RoundsToZero { .. })
        ));
        assert!(r2.price(f64::NAN).is_err());
        assert!(r2.price(-1.0).is_err());
        // What the exchange accepts as written.
        let eth = VenueRules::hyperliquid_perp(4);
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert!(eth.is_valid_price(d("1891.4")));
        assert!(eth.is_valid_price(d("123457")));
        assert!(!eth.is_valid_price(d("1891.41")));
        assert!(!eth.is_valid_price(d("12.345")));
        assert!(!eth.is_valid_price(d("0")));
        assert!(eth.is_valid_qty(d("0.1234")));
        assert!(!eth.is_valid_qty(d("0.12345")));
        assert_eq!(
            eth.qty_decimal(d("0.123456")).unwrap().to_string(),
            "0.1234"
        );
    }

    #[test]
    fn hyperliquid_size_and_minimum() {
        // "If szDecimals = 3 then 1.001 is a valid size but 1.0001 is not": sizes round down.
        let r = VenueRules::hyperliquid_perp(3);
        assert_eq!(r.qty(1.001).unwrap().to_string(), "1.001");
        assert_eq!(r.qty(1.0001).unwrap().to_string(), "1");
        assert_eq!(r.qty(1.0019).unwrap().to_string(), "1.001");
        assert_eq!(
            r.qty(0.0009).unwrap_err().to_string(),
            "size 0.0009 rounds to zero at 3 decimals"
        );
        let q = r.qty(0.004).unwrap();
        let p = r.price(2500.0).unwrap();
        assert_eq!(r.check_notional(p, q).unwrap(), Decimal::TEN);
        let q = r.qty(0.003).unwrap();
        assert!(matches!(
            r.check_notional(p, q),
            Err(MoneyError::BelowMinimum { .. })
        ));
    }
}
